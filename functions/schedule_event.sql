-- Scheduling an event: validation of the content per platform, recipient defaults, dedupe.
--
-- Errors (nothing is stored):
--   22004 null_value_not_allowed   a required argument is NULL (user_id unless ops_alert,
--                                  platform, event_type, content, scheduled_at)
--   22023 invalid_parameter_value  unknown platform or event type, content not an object, an
--                                  unknown content key, a bad field, no recipient, bad dedupe_key
--   23503 foreign_key_violation    user_id (or source conversation) does not exist
--   23505 unique_violation         the dedupe_key is live on another user's event

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
    IF p_scheduled_at IS NULL THEN
        RAISE EXCEPTION 'scheduled_at must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_scheduled_at) THEN
        RAISE EXCEPTION 'scheduled_at must be a finite time, got %', p_scheduled_at
            USING ERRCODE = '22023';
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
        IF pg_catalog.btrim(v_text, E' \t\r\n') = '' THEN
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
        v_value := v_content -> 'dynamic_variables';
        IF v_value IS NOT NULL THEN
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

    -- Race-safe dedupe: the conflict target is the partial unique index
    -- scheduled_events_dedupe_live_key (same predicate). A concurrent insert of the same key
    -- waits for ours and then returns our id. The loop covers a live duplicate that settles
    -- between the conflict and the look-up.
    FOR i IN 1..5 LOOP
        INSERT INTO nikita.scheduled_events AS e (
            user_id, platform, event_type, content, scheduled_at, dedupe_key,
            source_conversation_id
        ) VALUES (
            p_user_id, p_platform, p_event_type, v_content, p_scheduled_at, p_dedupe_key,
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
'Unknown keys are rejected. A live event with the same dedupe_key returns its id. '
'Errors: 22004 null argument, 22023 bad value/content/no recipient, 23503 unknown user, '
'23505 dedupe_key live for another user.';
REVOKE EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) TO nikita_app;
