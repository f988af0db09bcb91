-- Scheduling an event: validation of the content per platform, recipient defaults, dedupe.
--
-- Errors (nothing is stored):
--   22004 null_value_not_allowed   a required argument is NULL (user_id unless ops_alert,
--                                  platform, event_type, content, scheduled_at)
--   22023 invalid_parameter_value  unknown platform or event type, content not an object, an
--                                  unknown content key, a bad field, no recipient, bad dedupe_key
--   23503 foreign_key_violation    user_id (or source conversation) does not exist
--   23505 unique_violation         the dedupe_key is live on another user's event
--
-- Bounds (issue 9: a reply_markup nested 3,000 levels deep was accepted and stopped every
-- delivery). Checked first, before any other work on the content, each error naming the member
-- and the limit (22023):
--   content            at most 262,144 bytes (jsonb) and no value more than 16 levels below the
--                      content object (reply_markup.inline_keyboard[0][0].login_url.url is 6);
--                      the same expression is CHECK scheduled_events_content_bounded (0009)
--   text               1..32,768 characters, not blank (nikita.is_blank: Unicode white space
--                      and zero-width characters count as blank)
--   reply_markup       at most 16,384 bytes; exactly one of inline_keyboard, keyboard,
--                      remove_keyboard (true), force_reply (true); Telegram's limits: inline
--                      keyboard at most 100 buttons, 8 a row; callback_data 1..64 bytes;
--                      copy_text.text 1..256 characters; input_field_placeholder 1..64
--                      characters; every button has a text, not blank, at most 256 characters
--                      (ours: Telegram documents none)
--   prompt             at most 32,768 characters; first_message at most 4,096
--   dynamic_variables  at most 100 entries, names 1..128 characters, string values at most
--                      4,096 characters, at most 65,536 bytes
-- Telegram has no documented limit for the other strings of a keyboard (url, switch_inline_
-- query ...): the reply_markup size bounds them.
--
-- scheduled_at far in the past (earlier than now() - setting max_lateness, when the next sweep
-- would expire the event unsent) is stored as now(); a past time within max_lateness is kept
-- (the event goes out in its place in line).

-- An optional content key, when present, must have one JSON type. Internal; granted to nobody.
CREATE OR REPLACE FUNCTION nikita.queue_check_optional_key(
    p_content jsonb, p_key text, p_type text, p_what text
)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := pg_catalog.jsonb_typeof(p_content -> p_key);
BEGIN
    IF v_type IS NOT NULL AND v_type <> p_type THEN
        RAISE EXCEPTION 'content.% must be %, got %', p_key, p_what, v_type
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita.queue_check_optional_key(jsonb, text, text, text)
IS 'Internal: 22023 unless p_content has no p_key or its value is of JSON type p_type.';
REVOKE EXECUTE ON FUNCTION nikita.queue_check_optional_key(jsonb, text, text, text) FROM PUBLIC;

-- The reply_markup of a Telegram message, against the Bot API's ReplyMarkup types and the
-- limits Telegram has (python-telegram-bot's constants InlineKeyboardMarkupLimit,
-- InlineKeyboardButtonLimit, ReplyLimit). Unknown keys of a button pass (the Bot API adds
-- button fields; the shim passes them through); unknown keys of the markup itself do not.
-- Internal; granted to nobody. Raises 22023 naming the member.
CREATE OR REPLACE FUNCTION nikita.queue_check_reply_markup(p_markup jsonb)
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
COMMENT ON FUNCTION nikita.queue_check_reply_markup(jsonb)
IS 'Internal: 22023 naming the member unless p_markup is a Telegram reply_markup within the '
'Bot API''s limits (see functions/schedule_event.sql).';
REVOKE EXECUTE ON FUNCTION nikita.queue_check_reply_markup(jsonb) FROM PUBLIC;

-- The first member of p_content (in key order) that nests more than 16 levels below the content
-- object, for the error message; called only when the content is too deep. Internal.
CREATE OR REPLACE FUNCTION nikita.queue_too_deep_member(p_content jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT kv.key FROM pg_catalog.jsonb_each(p_content) AS kv
    WHERE pg_catalog.jsonb_path_exists(kv.value, 'strict $.**{16}')
    ORDER BY kv.key LIMIT 1
$$;
COMMENT ON FUNCTION nikita.queue_too_deep_member(jsonb)
IS 'Internal: the first member of p_content nested more than 16 levels below the content.';
REVOKE EXECUTE ON FUNCTION nikita.queue_too_deep_member(jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita.queue_schedule(
    p_user_id uuid,
    p_platform text,
    p_event_type text,
    p_content jsonb,
    p_scheduled_at timestamptz,
    p_dedupe_key text,
    p_source_conversation_id uuid
)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_telegram_id bigint;
    v_phone text;
    v_content jsonb;
    v_unknown text;
    v_value jsonb;
    v_chat numeric;
    v_text text;
    v_id uuid;
    v_owner uuid;
    v_conversation_user uuid;
    v_scheduled_at timestamptz := p_scheduled_at;
    v_size integer;
BEGIN
    IF p_platform IS NULL THEN
        RAISE EXCEPTION 'platform must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_platform NOT IN ('telegram', 'voice') THEN
        RAISE EXCEPTION 'platform must be telegram or voice, got "%"', p_platform
            USING ERRCODE = '22023';
    END IF;
    IF p_event_type IS NULL THEN
        RAISE EXCEPTION 'event_type must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_event_type NOT IN (
        'message_delivery', 'call_reminder', 'boss_prompt', 'follow_up', 'game_over', 'ops_alert'
    ) THEN
        RAISE EXCEPTION 'event_type must be one of message_delivery, call_reminder, '
            'boss_prompt, follow_up, game_over, ops_alert; got "%"', p_event_type
            USING ERRCODE = '22023';
    END IF;
    IF p_content IS NULL THEN
        RAISE EXCEPTION 'content must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(p_content) <> 'object' THEN
        RAISE EXCEPTION 'content must be a JSON object, got %', pg_catalog.jsonb_typeof(p_content)
            USING ERRCODE = '22023';
    END IF;
    -- Bounds before any other work on the content (same expression as CHECK
    -- scheduled_events_content_bounded). pg_column_size reads the header only.
    v_size := pg_catalog.pg_column_size(p_content);
    IF v_size > 262144 THEN
        RAISE EXCEPTION 'content is % bytes; at most 262144 (largest member: %)', v_size, (
            SELECT pg_catalog.format('%s, %s bytes', kv.key, pg_catalog.pg_column_size(kv.value))
            FROM pg_catalog.jsonb_each(p_content) AS kv
            ORDER BY pg_catalog.pg_column_size(kv.value) DESC, kv.key LIMIT 1
        )
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_path_exists(p_content, 'strict $.**{17}') THEN
        RAISE EXCEPTION 'content.% is nested too deeply: at most 16 levels below content',
            nikita.queue_too_deep_member(p_content)
            USING ERRCODE = '22023';
    END IF;
    IF p_scheduled_at IS NULL THEN
        RAISE EXCEPTION 'scheduled_at must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_scheduled_at) THEN
        RAISE EXCEPTION 'scheduled_at must be a finite time, got %', p_scheduled_at
            USING ERRCODE = '22023';
    END IF;
    -- Far in the past: earlier than now() - max_lateness the next sweep would expire the event
    -- unsent; it is due now instead. max_lateness is at least a minute (CHECK
    -- settings_value_valid), so an event due now or later skips the setting look-up.
    IF p_scheduled_at < pg_catalog.now() - interval '1 minute'
        AND p_scheduled_at < pg_catalog.now() - nikita.setting_interval('max_lateness') THEN
        v_scheduled_at := pg_catalog.now();
    END IF;
    IF p_dedupe_key IS NOT NULL AND pg_catalog.length(p_dedupe_key) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'dedupe_key must be 1 to 200 characters, got %',
            pg_catalog.length(p_dedupe_key)
            USING ERRCODE = '22023';
    END IF;

    IF p_user_id IS NULL THEN
        IF p_event_type <> 'ops_alert' THEN
            RAISE EXCEPTION 'user_id must not be null (only ops_alert events have no user)'
                USING ERRCODE = '22004';
        END IF;
    ELSE
        SELECT u.telegram_id, u.phone INTO v_telegram_id, v_phone
        FROM nikita.users AS u WHERE u.id = p_user_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'user_id % does not exist', p_user_id
                USING ERRCODE = '23503', HINT = 'events are scheduled for rows of nikita.users';
        END IF;
    END IF;

    IF p_source_conversation_id IS NOT NULL THEN
        SELECT c.user_id INTO v_conversation_user
        FROM nikita.conversations AS c WHERE c.id = p_source_conversation_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'source_conversation_id % does not exist', p_source_conversation_id
                USING ERRCODE = '23503';
        END IF;
        IF v_conversation_user IS DISTINCT FROM p_user_id THEN
            RAISE EXCEPTION 'source_conversation_id % belongs to another user',
                p_source_conversation_id
                USING ERRCODE = '22023';
        END IF;
    END IF;

    -- Optional keys given as JSON null are dropped (null means "not given").
    v_content := p_content - ARRAY(
        SELECT kv.key FROM pg_catalog.jsonb_each(p_content) AS kv
        WHERE pg_catalog.jsonb_typeof(kv.value) = 'null'
    );

    IF p_platform = 'telegram' THEN
        SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
        FROM pg_catalog.jsonb_object_keys(v_content) AS k (key)
        WHERE k.key NOT IN ('chat_id', 'text', 'parse_mode', 'reply_markup',
            'disable_notification');
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'content has unknown key(s) for telegram: %', v_unknown
                USING ERRCODE = '22023',
                HINT = 'allowed: chat_id, text, parse_mode, reply_markup, disable_notification';
        END IF;

        v_value := v_content -> 'chat_id';
        IF v_value IS NULL THEN
            IF p_user_id IS NOT NULL THEN
                IF v_telegram_id IS NULL THEN
                    RAISE EXCEPTION 'content.chat_id is missing and user % has no telegram_id',
                        p_user_id
                        USING ERRCODE = '22023', HINT = 'no recipient for a Telegram event';
                END IF;
                v_content := v_content || pg_catalog.jsonb_build_object('chat_id', v_telegram_id);
            ELSE
                v_chat := nikita.setting_bigint('alert_chat_id');
                IF v_chat IS NULL THEN
                    RAISE EXCEPTION 'content.chat_id is missing and no alert_chat_id is set'
                        USING ERRCODE = '22023', HINT = 'no recipient for an ops_alert event';
                END IF;
                v_content := v_content || pg_catalog.jsonb_build_object('chat_id', v_chat);
            END IF;
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
        PERFORM nikita.queue_check_optional_key(
            v_content, 'reply_markup', 'object', 'a JSON object'
        );
        IF v_content ? 'reply_markup' THEN
            PERFORM nikita.queue_check_reply_markup(v_content -> 'reply_markup');
        END IF;
        PERFORM nikita.queue_check_optional_key(
            v_content, 'disable_notification', 'boolean', 'a boolean'
        );
    ELSE
        SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
        FROM pg_catalog.jsonb_object_keys(v_content) AS k (key)
        WHERE k.key NOT IN ('to_number', 'prompt', 'first_message', 'dynamic_variables');
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'content has unknown key(s) for voice: %', v_unknown
                USING ERRCODE = '22023',
                HINT = 'allowed: to_number, prompt, first_message, dynamic_variables';
        END IF;

        v_value := v_content -> 'to_number';
        IF v_value IS NULL THEN
            IF v_phone IS NULL THEN
                RAISE EXCEPTION 'content.to_number is missing and %',
                    CASE WHEN p_user_id IS NULL THEN 'the event has no user'
                        ELSE format('user %s has no phone', p_user_id) END
                    USING ERRCODE = '22023', HINT = 'no recipient for a voice event';
            END IF;
            v_content := v_content || pg_catalog.jsonb_build_object('to_number', v_phone);
        ELSIF pg_catalog.jsonb_typeof(v_value) <> 'string'
            OR NOT nikita.is_e164(v_value #>> '{}') THEN
            RAISE EXCEPTION 'content.to_number must be an E.164 number (+ and 7 to 15 digits), '
                'got %', v_value
                USING ERRCODE = '22023';
        END IF;

        PERFORM nikita.queue_check_optional_key(v_content, 'prompt', 'string', 'a string');
        PERFORM nikita.queue_check_optional_key(v_content, 'first_message', 'string', 'a string');
        PERFORM nikita.queue_check_optional_key(
            v_content, 'dynamic_variables', 'object', 'a JSON object'
        );
        IF pg_catalog.length(v_content ->> 'prompt') > 32768 THEN
            RAISE EXCEPTION 'content.prompt is % characters long; at most 32768',
                pg_catalog.length(v_content ->> 'prompt')
                USING ERRCODE = '22023';
        END IF;
        IF pg_catalog.length(v_content ->> 'first_message') > 4096 THEN
            RAISE EXCEPTION 'content.first_message is % characters long; at most 4096',
                pg_catalog.length(v_content ->> 'first_message')
                USING ERRCODE = '22023';
        END IF;
        v_value := v_content -> 'dynamic_variables';
        IF v_value IS NOT NULL THEN
            IF pg_catalog.pg_column_size(v_value) > 65536 THEN
                RAISE EXCEPTION 'content.dynamic_variables is % bytes; at most 65536',
                    pg_catalog.pg_column_size(v_value)
                    USING ERRCODE = '22023';
            END IF;
            IF (SELECT count(*) FROM pg_catalog.jsonb_object_keys(v_value)) > 100 THEN
                RAISE EXCEPTION 'content.dynamic_variables has % entries; at most 100',
                    (SELECT count(*) FROM pg_catalog.jsonb_object_keys(v_value))
                    USING ERRCODE = '22023';
            END IF;
            SELECT string_agg(kv.key, ', ' ORDER BY kv.key) INTO v_unknown
            FROM pg_catalog.jsonb_each(v_value) AS kv
            WHERE pg_catalog.length(kv.key) NOT BETWEEN 1 AND 128
                OR (pg_catalog.jsonb_typeof(kv.value) = 'string'
                    AND pg_catalog.length(kv.value #>> '{}') > 4096);
            IF v_unknown IS NOT NULL THEN
                RAISE EXCEPTION 'content.dynamic_variables: names must be 1 to 128 characters and '
                    'string values at most 4096; not: %', pg_catalog.left(v_unknown, 200)
                    USING ERRCODE = '22023';
            END IF;
            SELECT string_agg(kv.key, ', ' ORDER BY kv.key) INTO v_unknown
            FROM pg_catalog.jsonb_each(v_value) AS kv
            WHERE pg_catalog.jsonb_typeof(kv.value) NOT IN ('string', 'number', 'boolean');
            IF v_unknown IS NOT NULL THEN
                RAISE EXCEPTION 'content.dynamic_variables values must be strings, numbers or '
                    'booleans; not: %', v_unknown
                    USING ERRCODE = '22023';
            END IF;
        END IF;
    END IF;

    -- The recipient filled in may add a few bytes.
    IF pg_catalog.pg_column_size(v_content) > 262144 THEN
        RAISE EXCEPTION 'content is % bytes with its recipient; at most 262144',
            pg_catalog.pg_column_size(v_content)
            USING ERRCODE = '22023';
    END IF;

    -- Race-safe dedupe: the conflict target is the partial unique index
    -- scheduled_events_dedupe_live_key (same predicate). A concurrent insert of the same key
    -- waits for ours and then returns our id. The loop covers a live duplicate that settles
    -- between the conflict and the look-up.
    FOR i IN 1..5 LOOP
        INSERT INTO nikita.scheduled_events AS e (
            user_id, platform, event_type, content, scheduled_at, dedupe_key,
            source_conversation_id
        ) VALUES (
            p_user_id, p_platform, p_event_type, v_content, v_scheduled_at, p_dedupe_key,
            p_source_conversation_id
        )
        ON CONFLICT (dedupe_key)
        WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'sending')
        DO NOTHING
        RETURNING e.id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        SELECT e.id, e.user_id INTO v_id, v_owner
        FROM nikita.scheduled_events AS e
        WHERE e.dedupe_key = p_dedupe_key AND e.status IN ('pending', 'sending');
        IF FOUND THEN
            IF v_owner IS DISTINCT FROM p_user_id THEN
                RAISE EXCEPTION 'dedupe_key "%" is live on event % of another user',
                    p_dedupe_key, v_id
                    USING ERRCODE = '23505', HINT = 'dedupe keys are global: prefix them';
            END IF;
            RETURN v_id;
        END IF;
        RAISE DEBUG 'dedupe_key % settled between conflict and look-up (try %)', p_dedupe_key, i;
    END LOOP;
    RAISE EXCEPTION 'dedupe_key "%": could not insert nor find the live event', p_dedupe_key
        USING ERRCODE = '40001';
END
$$;
COMMENT ON FUNCTION nikita.queue_schedule(uuid, text, text, jsonb, timestamptz, text, uuid)
IS 'Internal: validates and inserts one event (schedule_event, schedule_reply); see their docs.';
REVOKE EXECUTE ON FUNCTION
nikita.queue_schedule(uuid, text, text, jsonb, timestamptz, text, uuid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita.schedule_event(
    p_user_id uuid,
    p_platform text,
    p_event_type text,
    p_content jsonb,
    p_scheduled_at timestamptz DEFAULT now(),
    p_dedupe_key text DEFAULT NULL
)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nikita.queue_schedule(
        p_user_id, p_platform, p_event_type, p_content, p_scheduled_at, p_dedupe_key, NULL
    )
$$;
COMMENT ON FUNCTION nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text)
IS 'Queue a Telegram message or a voice call for a user at scheduled_at (default now). '
'Telegram content: text (1..32768 chars, not blank), chat_id (default users.telegram_id), '
'parse_mode HTML|MarkdownV2, reply_markup object, disable_notification boolean. Voice content: '
'to_number (E.164, default users.phone), prompt, first_message, dynamic_variables object. '
'Unknown keys are rejected. Bounds (22023 naming the member and the limit): content at most '
'262144 bytes and 16 levels below the content object; text not blank (Unicode white space and '
'zero-width characters count as blank); reply_markup at most 16384 bytes, one of '
'inline_keyboard (at most 100 buttons, 8 a row), keyboard, remove_keyboard, force_reply, '
'callback_data 1..64 bytes, button text not blank and at most 256 characters, '
'input_field_placeholder 1..64 characters, copy_text.text 1..256; prompt at most 32768 '
'characters, first_message 4096, dynamic_variables at most 100 entries (names 1..128 '
'characters, string values 4096, 65536 bytes). A scheduled_at earlier than now() minus the '
'max_lateness setting (which the next sweep would expire unsent) is stored as now(); a past '
'time within max_lateness is kept. A live event with the same dedupe_key returns its id. '
'Errors: 22004 null argument, 22023 bad value/content/no recipient/out of bounds, '
'23503 unknown user, 23505 dedupe_key live for another user.';
REVOKE EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) TO nikita_app;
