-- Bounds: the blank rule, settings ranges, free-text length
-- limits and a depth/size bound on event content, enforced where rows are written.
--
-- 1. nikita.is_blank(text): the one SQL definition of "blank" (shared with the shim, see
--    shim/nikita_shim/blank.py): empty once every Unicode White_Space character and the
--    invisible format characters U+180E, U+200B-U+200D, U+2060, U+FEFF are removed. Used by
--    the settings check below and by schedule_event (Telegram text, button labels).
-- 2. Settings: every setting of the package has its type and range, checked on every write by
--    CHECK settings_value_valid. A bad value is refused with SQLSTATE 23514 (check_violation,
--    the SQLSTATE of the existing settings_value_matches_type: both are table constraints) and
--    a message naming the key and its rule. Keys the package does not know are left to the
--    type check. The shipped values pass; an install whose operator already stored a value out
--    of range stops here with that message: fix the value and migrate again.
-- 3. Free-text columns get a length limit (CHECK ... NOT VALID, then VALIDATE). Longer values
--    already stored are cut first (error texts, worker names, provider refs, summaries: their
--    head is what anybody reads); a signup session with an e-mail over 254 characters (no
--    deliverable address is longer, RFC 5321) is deleted: it expires within minutes anyway.
-- 4. Event content: at most 262,144 bytes (jsonb) and no value more than 16 levels below the
--    content object, as a table CHECK so that no direct write bypasses schedule_event. A live
--    event already stored beyond that (e.g. a reply_markup nested 3,000 levels, which stopped
--    every delivery) is failed here with its reason; settled rows keep their content, so the
--    constraint stays NOT VALID (PostgreSQL still enforces it on every new or updated row).

-- ---------------------------------------------------------------------------------------------
-- 1. Blank
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION nikita.is_blank(p_text text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- White_Space: U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
    -- U+202F, U+205F, U+3000; invisible format characters: U+180E, U+200B, U+200C, U+200D,
    -- U+2060, U+FEFF.
    SELECT pg_catalog.btrim(
        p_text,
        U&'\0009\000A\000B\000C\000D\0020\0085\00A0\1680'
        OPERATOR(pg_catalog.||) U&'\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A'
        OPERATOR(pg_catalog.||) U&'\2028\2029\202F\205F\3000\180E\200B\200C\200D\2060\FEFF'
    ) = ''
$$;
COMMENT ON FUNCTION nikita.is_blank(text)
IS 'True when p_text is empty after removing every Unicode White_Space character and the '
'invisible format characters U+180E, U+200B, U+200C, U+200D, U+2060, U+FEFF (the shared '
'definition of blank; the shim has the same rule). NULL for NULL.';
REVOKE EXECUTE ON FUNCTION nikita.is_blank(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 2. Settings
-- ---------------------------------------------------------------------------------------------
-- Raises (23514, naming the key) instead of returning false, so that the operator reads which
-- setting and which range; returns true otherwise. Keys the package does not read, and values
-- that do not read as their value_type (settings_value_matches_type reports those), pass here.
CREATE OR REPLACE FUNCTION nikita.check_setting_value(p_key text, p_type text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text;
    v_rule text;
    v_nullable boolean := false;
    v_imin interval;
    v_imax interval;
    v_nmin numeric;
    v_nmax numeric;
    v_ok boolean;
    v_num numeric;
    v_text text;
BEGIN
    CASE p_key
        WHEN 'max_lateness' THEN
            -- At least a minute: the sweep runs every minute, and schedule_event relies on it.
            v_type := 'interval'; v_imin := interval '1 minute'; v_imax := interval '30 days';
        WHEN 'event_retention', 'failed_event_retention', 'job_retention',
            'cron_run_retention' THEN
            v_type := 'interval'; v_imin := interval '1 hour'; v_imax := interval '3650 days';
        WHEN 'conversation_idle_timeout' THEN
            v_type := 'interval'; v_imin := interval '1 minute'; v_imax := interval '7 days';
        WHEN 'conversation_max_attempts' THEN
            v_type := 'integer'; v_nmin := 1; v_nmax := 100;
        WHEN 'decay_batch_size', 'cleanup_batch_size' THEN
            v_type := 'integer'; v_nmin := 1; v_nmax := 1000000;
        WHEN 'alert_chat_id' THEN
            -- Any Telegram chat (groups are negative); null disables alerts.
            v_type := 'integer'; v_nullable := true;
            v_nmin := -9223372036854775807; v_nmax := 9223372036854775807;
        WHEN 'game_over_text' THEN
            v_type := 'text'; v_nmin := 1; v_nmax := 4096;
        ELSE
            RETURN true;
    END CASE;

    -- Said in the units it was written in ('1 minute', not 00:01:00).
    v_rule := CASE p_key
        WHEN 'max_lateness' THEN 'an interval from 1 minute to 30 days'
        WHEN 'conversation_idle_timeout' THEN 'an interval from 1 minute to 7 days'
        WHEN 'alert_chat_id' THEN 'a non-zero integer chat id or null'
        WHEN 'game_over_text' THEN 'a text of 1 to 4096 characters, not blank'
        ELSE CASE v_type
            WHEN 'interval' THEN 'an interval from 1 hour to 3650 days'
            ELSE pg_catalog.format('an integer from %s to %s', v_nmin, v_nmax)
        END
    END;

    IF p_type IS DISTINCT FROM v_type THEN
        RAISE EXCEPTION 'setting "%" must have value_type %, got %', p_key, v_type,
            coalesce(p_type, 'NULL')
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value_type', CONSTRAINT = 'settings_value_valid';
    END IF;
    IF p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) = 'null' THEN
        IF v_nullable THEN
            RETURN true;
        END IF;
        RAISE EXCEPTION 'setting "%" must be set: %, got null', p_key, v_rule
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_value_valid';
    END IF;
    IF NOT nikita.is_setting_value(p_type, p_value) THEN
        RETURN true;  -- settings_value_matches_type refuses it
    END IF;

    CASE v_type
        WHEN 'interval' THEN
            v_ok := (p_value #>> '{}')::interval BETWEEN v_imin AND v_imax;
        WHEN 'integer' THEN
            v_num := (p_value #>> '{}')::numeric;
            v_ok := v_num BETWEEN v_nmin AND v_nmax
                AND NOT (p_key = 'alert_chat_id' AND v_num = 0);
        ELSE
            v_text := p_value #>> '{}';
            v_ok := pg_catalog.length(v_text) BETWEEN v_nmin AND v_nmax
                AND NOT nikita.is_blank(v_text);
    END CASE;
    IF NOT v_ok THEN
        RAISE EXCEPTION 'setting "%" must be %, got %', p_key, v_rule,
            pg_catalog.left(p_value::text, 200)
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_value_valid';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION nikita.check_setting_value(text, text, jsonb)
IS 'CHECK settings_value_valid: true, or 23514 naming the key and its rule. max_lateness '
'1 minute..30 days; *_retention 1 hour..3650 days; conversation_idle_timeout 1 minute..7 days; '
'conversation_max_attempts 1..100; decay_batch_size, cleanup_batch_size 1..1000000; '
'alert_chat_id a non-zero bigint or null; game_over_text 1..4096 characters, not blank. '
'Every one but alert_chat_id must be set. Other keys: no rule.';
REVOKE EXECUTE ON FUNCTION nikita.check_setting_value(text, text, jsonb) FROM PUBLIC;

ALTER TABLE nikita.settings
ADD CONSTRAINT settings_value_valid
CHECK (nikita.check_setting_value(key, value_type, value));
ALTER TABLE nikita.settings
ADD CONSTRAINT settings_description_length CHECK (length(description) <= 1000);

-- ---------------------------------------------------------------------------------------------
-- 3. Free-text length limits. Generous: each is far above what the package or a sane app
--    writes, and small enough that a runaway value cannot bloat a hot row.
--    scheduled_events.provider_ref   1,024  comma-joined Telegram message ids of a split text
--                                           (a few dozen at most), or an ElevenLabs call id
--    scheduled_events.last_error     2,000  what fail_event keeps (its documented cut)
--    scheduled_events.locked_by        200  worker names; claim_conversations cuts at 200
--    conversations.locked_by           200  as above
--    conversations.error             4,000  what fail_conversation keeps
--    conversations.summary          16,000  an app's conversation summary (several pages)
--    conversations.emotional_tone      200  a label ("playful", "hurt, distant")
--    daily_summaries.summary_text    8,000  the job writes one sentence (< 300)
--    job_executions.error            8,000  a PostgreSQL error message and its SQLSTATE
--    signup_sessions.email             254  RFC 5321: no deliverable address is longer
--    settings.description            1,000  (above)
--    dedupe_key already has 1..200; users.phone (E.164) and timezone (a known name), and every
--    enumerated column, are bounded by their own CHECKs.
-- ---------------------------------------------------------------------------------------------
UPDATE nikita.scheduled_events SET provider_ref = left(provider_ref, 1024)
WHERE length(provider_ref) > 1024;
UPDATE nikita.scheduled_events SET last_error = left(last_error, 2000)
WHERE length(last_error) > 2000;
UPDATE nikita.scheduled_events SET locked_by = left(locked_by, 200)
WHERE length(locked_by) > 200;
UPDATE nikita.conversations SET locked_by = left(locked_by, 200)
WHERE length(locked_by) > 200;
UPDATE nikita.conversations SET error = left(error, 4000)
WHERE length(error) > 4000;
UPDATE nikita.conversations SET summary = left(summary, 16000)
WHERE length(summary) > 16000;
UPDATE nikita.conversations SET emotional_tone = left(emotional_tone, 200)
WHERE length(emotional_tone) > 200;
UPDATE nikita.daily_summaries SET summary_text = left(summary_text, 8000)
WHERE length(summary_text) > 8000;
UPDATE nikita.job_executions SET error = left(error, 8000)
WHERE length(error) > 8000;
DELETE FROM nikita.signup_sessions
WHERE length(email) > 254;

ALTER TABLE nikita.scheduled_events
ADD CONSTRAINT scheduled_events_provider_ref_length
CHECK (length(provider_ref) <= 1024) NOT VALID,
ADD CONSTRAINT scheduled_events_last_error_length
CHECK (length(last_error) <= 2000) NOT VALID,
ADD CONSTRAINT scheduled_events_locked_by_length
CHECK (length(locked_by) <= 200) NOT VALID;
ALTER TABLE nikita.conversations
ADD CONSTRAINT conversations_locked_by_length
CHECK (length(locked_by) <= 200) NOT VALID,
ADD CONSTRAINT conversations_error_length
CHECK (length(error) <= 4000) NOT VALID,
ADD CONSTRAINT conversations_summary_length
CHECK (length(summary) <= 16000) NOT VALID,
ADD CONSTRAINT conversations_emotional_tone_length
CHECK (length(emotional_tone) <= 200) NOT VALID;
ALTER TABLE nikita.daily_summaries
ADD CONSTRAINT daily_summaries_summary_text_length
CHECK (length(summary_text) <= 8000) NOT VALID;
ALTER TABLE nikita.job_executions
ADD CONSTRAINT job_executions_error_length
CHECK (length(error) <= 8000) NOT VALID;
ALTER TABLE nikita.signup_sessions
ADD CONSTRAINT signup_sessions_email_length
CHECK (length(email) <= 254) NOT VALID;

ALTER TABLE nikita.scheduled_events VALIDATE CONSTRAINT scheduled_events_provider_ref_length;
ALTER TABLE nikita.scheduled_events VALIDATE CONSTRAINT scheduled_events_last_error_length;
ALTER TABLE nikita.scheduled_events VALIDATE CONSTRAINT scheduled_events_locked_by_length;
ALTER TABLE nikita.conversations VALIDATE CONSTRAINT conversations_locked_by_length;
ALTER TABLE nikita.conversations VALIDATE CONSTRAINT conversations_error_length;
ALTER TABLE nikita.conversations VALIDATE CONSTRAINT conversations_summary_length;
ALTER TABLE nikita.conversations VALIDATE CONSTRAINT conversations_emotional_tone_length;
ALTER TABLE nikita.daily_summaries VALIDATE CONSTRAINT daily_summaries_summary_text_length;
ALTER TABLE nikita.job_executions VALIDATE CONSTRAINT job_executions_error_length;
ALTER TABLE nikita.signup_sessions VALIDATE CONSTRAINT signup_sessions_email_length;

-- ---------------------------------------------------------------------------------------------
-- 4. Event content: size and depth. The expression is the one schedule_event checks first
--    (functions/schedule_event.sql), so its 22023 comes before this 23514 for every caller of
--    the API; this catches direct writes. Cost: pg_column_size reads the header only;
--    jsonb_path_exists walks at most 17 levels (about 0.2 µs a row for a usual message).
-- ---------------------------------------------------------------------------------------------
UPDATE nikita.scheduled_events AS e
SET
    status = 'failed',
    last_error = 'content out of bounds: over 262144 bytes or nested over 16 levels',
    errors = e.errors || jsonb_build_array(jsonb_build_object(
        'at', now(), 'attempt', e.attempts,
        'error', 'content out of bounds: over 262144 bytes or nested over 16 levels',
        'retryable', false
    )),
    locked_by = NULL,
    locked_until = NULL,
    lock_token = NULL,
    updated_at = now()
WHERE
    e.status IN ('pending', 'sending')
    AND (pg_column_size(e.content) > 262144 OR jsonb_path_exists(e.content, 'strict $.**{17}'));

ALTER TABLE nikita.scheduled_events
ADD CONSTRAINT scheduled_events_content_bounded CHECK (
    pg_column_size(content) <= 262144
    AND NOT jsonb_path_exists(content, 'strict $.**{17}')
) NOT VALID;
COMMENT ON CONSTRAINT scheduled_events_content_bounded ON nikita.scheduled_events
IS 'Content at most 262144 bytes (jsonb) and no value more than 16 levels below the content '
'object. NOT VALID: settled rows from before 0009 may exceed it; live ones were failed.';
