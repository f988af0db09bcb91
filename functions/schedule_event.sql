-- Scheduling an event: arguments, recipient defaults, content rules per platform, dedupe.
--
-- Errors (nothing is stored):
--   22004 null_value_not_allowed   a required argument is NULL (user_id unless ops_alert,
--                                  platform, event_type, content, scheduled_at)
--   22023 invalid_parameter_value  unknown platform or event type, content not an object, an
--                                  unknown content key, a bad field, no recipient, bad dedupe_key
--   23503 foreign_key_violation    user_id (or source conversation) does not exist
--   23505 unique_violation         the dedupe_key is live on another user's event
--
-- The content rules live in one function per concern: functions/content_bounds.sql (size and
-- depth, checked first), functions/telegram_content.sql (the Telegram rules, the one definition
-- the shim relies on: docs/queue.md), functions/voice_content.sql. In short, each error naming
-- the member and the limit (22023):
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
--   prompt             at most 32,768 characters (voice_prompt, the game's name, is stored as
--                      prompt); first_message at most 4,096; agent_id, tts, source_platform,
--                      meta: functions/voice_content.sql
--   response_id, meta  Telegram: a UUID string; meta at most 4,096 bytes and 4 levels
--   dynamic_variables  at most 100 entries, names 1..128 characters, string values at most
--                      4,096 characters, at most 65,536 bytes
-- Telegram has no documented limit for the other strings of a keyboard (url, switch_inline_
-- query ...): the reply_markup size bounds them.
--
-- scheduled_at far in the past (earlier than now() - setting max_lateness, when the next sweep
-- would expire the event unsent) is stored as now(); a past time within max_lateness is kept
-- (the event goes out in its place in line).
--
-- A proactive event type (nikita._is_proactive_event, functions/notifications.sql) for a player
-- whose notifications_enabled is false is validated as any other and stored 'cancelled', its
-- reason in last_error; its id is returned.

CREATE OR REPLACE FUNCTION nikita._schedule(
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
    v_id uuid;
    v_owner uuid;
    v_conversation_user uuid;
    v_scheduled_at timestamptz := p_scheduled_at;
    v_notify boolean := true;
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
        'message_delivery', 'call_reminder', 'boss_prompt', 'follow_up', 'game_over', 'ops_alert',
        'decay_warning'
    ) THEN
        RAISE EXCEPTION 'event_type must be one of message_delivery, call_reminder, '
            'boss_prompt, follow_up, game_over, ops_alert, decay_warning; got "%"', p_event_type
            USING ERRCODE = '22023';
    END IF;
    IF p_content IS NULL THEN
        RAISE EXCEPTION 'content must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.jsonb_typeof(p_content) <> 'object' THEN
        RAISE EXCEPTION 'content must be a JSON object, got %', pg_catalog.jsonb_typeof(p_content)
            USING ERRCODE = '22023';
    END IF;
    -- Bounds before any other work on the content (functions/content_bounds.sql).
    PERFORM nikita._check_content_bounds(p_content);
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
        AND p_scheduled_at < pg_catalog.now() - nikita._setting_interval('max_lateness') THEN
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
        IF nikita._is_proactive_event(p_event_type) THEN
            -- The opt-out (functions/notifications.sql): FOR SHARE orders us with a concurrent
            -- opt-out, whose trigger then sees this event.
            SELECT u.telegram_id, u.phone, u.notifications_enabled
            INTO v_telegram_id, v_phone, v_notify
            FROM nikita.users AS u WHERE u.id = p_user_id
            FOR SHARE OF u;
        ELSE
            SELECT u.telegram_id, u.phone INTO v_telegram_id, v_phone
            FROM nikita.users AS u WHERE u.id = p_user_id;
        END IF;
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
        v_content := nikita._telegram_content(
            v_content, p_user_id,
            CASE WHEN NOT v_content ? 'chat_id' THEN
                coalesce(v_telegram_id, CASE WHEN p_user_id IS NULL THEN
                    nikita._setting_bigint('alert_chat_id') END)
            END
        );
    ELSE
        v_content := nikita._voice_content(v_content, p_user_id, v_phone);
    END IF;

    -- The recipient filled in may add a few bytes.
    IF pg_catalog.pg_column_size(v_content) > 262144 THEN
        RAISE EXCEPTION 'content is % bytes with its recipient; at most 262144',
            pg_catalog.pg_column_size(v_content)
            USING ERRCODE = '22023';
    END IF;

    -- A proactive event for a player who opted out: stored cancelled at once, with the reason
    -- (validated all the same), so that the claim path checks nothing.
    IF NOT v_notify THEN
        INSERT INTO nikita.scheduled_events AS e (
            user_id, platform, event_type, content, scheduled_at, dedupe_key,
            source_conversation_id, status, last_error
        ) VALUES (
            p_user_id, p_platform, p_event_type, v_content, v_scheduled_at, p_dedupe_key,
            p_source_conversation_id, 'cancelled', nikita._opt_out_reason()
        )
        RETURNING e.id INTO v_id;
        RETURN v_id;
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
COMMENT ON FUNCTION nikita._schedule(uuid, text, text, jsonb, timestamptz, text, uuid)
IS 'Internal: validates and inserts one event (schedule_event, schedule_reply); see their docs.';
REVOKE EXECUTE ON FUNCTION
nikita._schedule(uuid, text, text, jsonb, timestamptz, text, uuid) FROM PUBLIC;

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
    SELECT nikita._schedule(
        p_user_id, p_platform, p_event_type, p_content, p_scheduled_at, p_dedupe_key, NULL
    )
$$;
COMMENT ON FUNCTION nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text)
IS 'Queue a Telegram message or a voice call for a user at scheduled_at (default now). '
'Telegram content: text (1..32768 chars, not blank), chat_id (default users.telegram_id), '
'parse_mode HTML|MarkdownV2, reply_markup object, disable_notification boolean. Voice content: '
'to_number (E.164, default users.phone), agent_id, prompt (or voice_prompt), first_message, tts, '
'dynamic_variables object (no secret__ names), source_platform, meta (docs/queue.md). '
'Telegram also response_id (UUID), meta (object, 4096 bytes, 4 levels). '
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
'A proactive event (call_reminder, follow_up, decay_warning, game_over) for a player whose '
'notifications_enabled is false is stored cancelled, the reason in last_error. '
'Errors: 22004 null argument, 22023 bad value/content/no recipient/out of bounds, '
'23503 unknown user, 23505 dedupe_key live for another user.';
REVOKE EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text) TO nikita_app;

-- The game's scheduler links an event to the conversation it follows (its
-- schedule_voice_call / schedule_follow_up / schedule_telegram_message take
-- source_conversation_id): the same call with the link. An overload with every argument
-- required, so the six-argument form above keeps resolving as before.
CREATE OR REPLACE FUNCTION nikita.schedule_event(
    p_user_id uuid,
    p_platform text,
    p_event_type text,
    p_content jsonb,
    p_scheduled_at timestamptz,
    p_dedupe_key text,
    p_source_conversation_id uuid
)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nikita._schedule(
        p_user_id, p_platform, p_event_type, p_content, p_scheduled_at, p_dedupe_key,
        p_source_conversation_id
    )
$$;
COMMENT ON FUNCTION nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text, uuid)
IS 'schedule_event with the conversation the event follows (p_source_conversation_id, NULL: '
'none; it must belong to p_user_id). Content, bounds and errors as the six-argument '
'schedule_event; also 23503 unknown conversation, 22023 a conversation of another user.';
REVOKE EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text, uuid) TO nikita_app;
