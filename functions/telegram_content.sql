-- The Telegram content rules: the one definition (docs/queue.md "The Telegram content
-- contract" says what the shim relies on). schedule_event and schedule_reply call
-- _telegram_content on every Telegram event; the table CHECK scheduled_events_telegram_content
-- (sql/0001) is a cheaper floor, not widened to this function because a CHECK runs on every
-- UPDATE of the row and every claim and settle updates it.
--
--   chat_id                a JSON number, a non-zero integer within bigint; missing: the
--                          recipient the caller passes (the user's telegram_id, or the
--                          alert_chat_id setting for an ops_alert), none: 22023
--   text                   a JSON string, 1..32,768 characters, not blank (nikita.is_blank)
--   parse_mode             "HTML" or "MarkdownV2" exactly
--   reply_markup           a JSON object within the Bot API's limits (_check_reply_markup)
--   disable_notification   a JSON boolean
--   response_id            a JSON string holding a UUID (8-4-4-4-12 hex digits): the game's
--                          reply id (yangsi7/nikita agents/text/handler.py
--                          store_pending_response); kept, never sent to Telegram
--   meta                   a bounded JSON object (content_bounds.sql _check_meta), never sent
--   any other key          22023
-- Every error is 22023 naming the member.

CREATE OR REPLACE FUNCTION nikita._telegram_content(
    p_content jsonb, p_user_id uuid, p_default_chat bigint
)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_content jsonb := p_content;
    v_unknown text;
    v_value jsonb;
    v_chat numeric;
    v_text text;
BEGIN
    SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
    FROM pg_catalog.jsonb_object_keys(v_content) AS k (key)
    WHERE k.key NOT IN ('chat_id', 'text', 'parse_mode', 'reply_markup',
        'disable_notification', 'response_id', 'meta');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content has unknown key(s) for telegram: %', v_unknown
            USING ERRCODE = '22023',
            HINT = 'allowed: chat_id, text, parse_mode, reply_markup, disable_notification, '
                'response_id, meta';
    END IF;

    v_value := v_content -> 'chat_id';
    IF v_value IS NULL THEN
        IF p_default_chat IS NULL THEN
            IF p_user_id IS NOT NULL THEN
                RAISE EXCEPTION 'content.chat_id is missing and user % has no telegram_id',
                    p_user_id
                    USING ERRCODE = '22023', HINT = 'no recipient for a Telegram event';
            END IF;
            RAISE EXCEPTION 'content.chat_id is missing and no alert_chat_id is set'
                USING ERRCODE = '22023', HINT = 'no recipient for an ops_alert event';
        END IF;
        v_content := v_content || pg_catalog.jsonb_build_object('chat_id', p_default_chat);
    ELSE
        IF pg_catalog.jsonb_typeof(v_value) <> 'number' THEN
            RAISE EXCEPTION 'content.chat_id must be an integer chat id, got %', v_value
                USING ERRCODE = '22023';
        END IF;
        v_chat := (v_value #>> '{}')::numeric;
        IF v_chat <> trunc(v_chat) OR v_chat = 0
            OR abs(v_chat) > 9223372036854775807 THEN
            RAISE EXCEPTION 'content.chat_id must be a non-zero integer chat id, got %',
                v_value
                USING ERRCODE = '22023';
        END IF;
    END IF;

    v_value := v_content -> 'text';
    IF v_value IS NULL OR pg_catalog.jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION 'content.text is required and must be a string'
            USING ERRCODE = '22023';
    END IF;
    v_text := v_value #>> '{}';
    IF nikita.is_blank(v_text) THEN
        RAISE EXCEPTION 'content.text must not be empty or blank' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(v_text) > 32768 THEN
        RAISE EXCEPTION 'content.text is % characters long; at most 32768',
            pg_catalog.length(v_text)
            USING ERRCODE = '22023';
    END IF;

    v_value := v_content -> 'parse_mode';
    IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR v_value #>> '{}' NOT IN ('HTML', 'MarkdownV2')) THEN
        RAISE EXCEPTION 'content.parse_mode must be "HTML" or "MarkdownV2", got %', v_value
            USING ERRCODE = '22023';
    END IF;
    PERFORM nikita._check_optional_key(
        v_content, 'reply_markup', 'object', 'a JSON object'
    );
    IF v_content ? 'reply_markup' THEN
        PERFORM nikita._check_reply_markup(v_content -> 'reply_markup');
    END IF;
    PERFORM nikita._check_optional_key(
        v_content, 'disable_notification', 'boolean', 'a boolean'
    );
    v_value := v_content -> 'response_id';
    IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR (v_value #>> '{}') !~
            '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$') THEN
        RAISE EXCEPTION 'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got %',
            pg_catalog.left(v_value::text, 200)
            USING ERRCODE = '22023';
    END IF;
    PERFORM nikita._check_meta(v_content);
    RETURN v_content;
END
$$;
COMMENT ON FUNCTION nikita._telegram_content(jsonb, uuid, bigint)
IS 'Internal: p_content (JSON nulls already dropped) checked against the Telegram content rules '
'(functions/telegram_content.sql), chat_id filled in with p_default_chat when missing; 22023 '
'naming the member otherwise. p_user_id only words the no-recipient error.';
REVOKE EXECUTE ON FUNCTION nikita._telegram_content(jsonb, uuid, bigint) FROM PUBLIC;

-- The reply_markup of a Telegram message, against the Bot API's ReplyMarkup types and the
-- limits Telegram has (python-telegram-bot's constants InlineKeyboardMarkupLimit,
-- InlineKeyboardButtonLimit, ReplyLimit). Unknown keys of a button pass (the Bot API adds
-- button fields; the shim passes them through); unknown keys of the markup itself do not.
-- Internal; granted to nobody. Raises 22023 naming the member.
CREATE OR REPLACE FUNCTION nikita._check_reply_markup(p_markup jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kinds text[];
    v_kind text;
    v_unknown text;
    v_rows jsonb;
    v_row jsonb;
    v_button jsonb;
    v_where text;
    v_text text;
    v_value jsonb;
    v_total integer := 0;
    v_size integer := pg_catalog.pg_column_size(p_markup);
BEGIN
    IF v_size > 16384 THEN
        RAISE EXCEPTION 'content.reply_markup is % bytes; at most 16384', v_size
            USING ERRCODE = '22023';
    END IF;
    v_kinds := ARRAY(
        SELECT k.key FROM pg_catalog.jsonb_object_keys(p_markup) AS k (key)
        WHERE k.key IN ('inline_keyboard', 'keyboard', 'remove_keyboard', 'force_reply')
        ORDER BY k.key
    );
    IF pg_catalog.cardinality(v_kinds) <> 1 THEN
        RAISE EXCEPTION 'content.reply_markup must have exactly one of inline_keyboard, keyboard, '
            'remove_keyboard, force_reply; got %',
            coalesce(nullif(pg_catalog.array_to_string(v_kinds, ', '), ''), 'none')
            USING ERRCODE = '22023';
    END IF;
    v_kind := v_kinds[1];
    SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
    FROM pg_catalog.jsonb_object_keys(p_markup) AS k (key)
    WHERE NOT k.key = ANY (CASE v_kind
        WHEN 'inline_keyboard' THEN ARRAY['inline_keyboard']
        WHEN 'keyboard' THEN ARRAY['keyboard', 'is_persistent', 'resize_keyboard',
            'one_time_keyboard', 'input_field_placeholder', 'selective']
        WHEN 'remove_keyboard' THEN ARRAY['remove_keyboard', 'selective']
        ELSE ARRAY['force_reply', 'input_field_placeholder', 'selective']
    END);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content.reply_markup has unknown key(s) for %: %', v_kind, v_unknown
            USING ERRCODE = '22023';
    END IF;

    IF v_kind IN ('remove_keyboard', 'force_reply') THEN
        IF p_markup -> v_kind IS DISTINCT FROM 'true'::jsonb THEN
            RAISE EXCEPTION 'content.reply_markup.% must be true', v_kind USING ERRCODE = '22023';
        END IF;
    END IF;
    v_value := p_markup -> 'input_field_placeholder';
    IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR pg_catalog.length(v_value #>> '{}') NOT BETWEEN 1 AND 64) THEN
        RAISE EXCEPTION 'content.reply_markup.input_field_placeholder must be a string of 1 to 64 '
            'characters'
            USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
    FROM pg_catalog.jsonb_each(p_markup) AS k
    WHERE k.key IN ('is_persistent', 'resize_keyboard', 'one_time_keyboard', 'selective')
        AND pg_catalog.jsonb_typeof(k.value) <> 'boolean';
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content.reply_markup: % must be boolean', v_unknown
            USING ERRCODE = '22023';
    END IF;
    IF v_kind NOT IN ('inline_keyboard', 'keyboard') THEN
        RETURN;
    END IF;

    -- A keyboard: an array of rows, each an array of buttons.
    v_rows := p_markup -> v_kind;
    IF pg_catalog.jsonb_typeof(v_rows) <> 'array' THEN
        RAISE EXCEPTION 'content.reply_markup.% must be an array of rows', v_kind
            USING ERRCODE = '22023';
    END IF;
    FOR r IN 0 .. pg_catalog.jsonb_array_length(v_rows) - 1 LOOP
        v_row := v_rows -> r;
        IF pg_catalog.jsonb_typeof(v_row) <> 'array' THEN
            RAISE EXCEPTION 'content.reply_markup.%[%] must be an array of buttons', v_kind, r
                USING ERRCODE = '22023';
        END IF;
        IF v_kind = 'inline_keyboard' AND pg_catalog.jsonb_array_length(v_row) > 8 THEN
            RAISE EXCEPTION 'content.reply_markup.inline_keyboard[%] has % buttons; at most 8 a row',
                r, pg_catalog.jsonb_array_length(v_row)
                USING ERRCODE = '22023';
        END IF;
        v_total := v_total + pg_catalog.jsonb_array_length(v_row);
        IF v_kind = 'inline_keyboard' AND v_total > 100 THEN
            RAISE EXCEPTION 'content.reply_markup.inline_keyboard has more than 100 buttons'
                USING ERRCODE = '22023';
        END IF;
        FOR b IN 0 .. pg_catalog.jsonb_array_length(v_row) - 1 LOOP
            v_button := v_row -> b;
            v_where := pg_catalog.format('content.reply_markup.%s[%s][%s]', v_kind, r, b);
            -- A reply keyboard button may be just its text.
            IF v_kind = 'keyboard' AND pg_catalog.jsonb_typeof(v_button) = 'string' THEN
                v_button := pg_catalog.jsonb_build_object('text', v_button);
            END IF;
            IF pg_catalog.jsonb_typeof(v_button) <> 'object' THEN
                RAISE EXCEPTION '% must be a button object', v_where USING ERRCODE = '22023';
            END IF;
            v_value := v_button -> 'text';
            IF pg_catalog.jsonb_typeof(v_value) IS DISTINCT FROM 'string'
                OR nikita.is_blank(v_value #>> '{}') THEN
                RAISE EXCEPTION '%.text is required and must not be blank', v_where
                    USING ERRCODE = '22023';
            END IF;
            v_text := v_value #>> '{}';
            IF pg_catalog.length(v_text) > 256 THEN
                RAISE EXCEPTION '%.text is % characters long; at most 256', v_where,
                    pg_catalog.length(v_text)
                    USING ERRCODE = '22023';
            END IF;
            v_value := v_button -> 'callback_data';
            IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
                OR pg_catalog.octet_length(v_value #>> '{}') NOT BETWEEN 1 AND 64) THEN
                RAISE EXCEPTION '%.callback_data must be a string of 1 to 64 bytes, got % bytes',
                    v_where, pg_catalog.octet_length(v_value #>> '{}')
                    USING ERRCODE = '22023';
            END IF;
            v_value := v_button #> '{copy_text,text}';
            IF v_button ? 'copy_text' AND (pg_catalog.jsonb_typeof(v_value) IS DISTINCT FROM 'string'
                OR pg_catalog.length(v_value #>> '{}') NOT BETWEEN 1 AND 256) THEN
                RAISE EXCEPTION '%.copy_text.text must be a string of 1 to 256 characters',
                    v_where
                    USING ERRCODE = '22023';
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION nikita._check_reply_markup(jsonb)
IS 'Internal: 22023 naming the member unless p_markup is a Telegram reply_markup within the '
'Bot API''s limits (see functions/schedule_event.sql).';
REVOKE EXECUTE ON FUNCTION nikita._check_reply_markup(jsonb) FROM PUBLIC;
