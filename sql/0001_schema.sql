-- The whole data model: game tables, package tables, seeds (docs/schema.sql: as it is now).
-- Applied once, in one transaction, by scripts/migrate.sh.

-- Validators used by CHECK constraints. Declared IMMUTABLE so CHECKs may use them; the time
-- zone list only grows between PostgreSQL releases, so a stored row never turns invalid.
CREATE FUNCTION nikita.is_valid_timezone(p_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = p_name)
$$;
COMMENT ON FUNCTION nikita.is_valid_timezone(text)
IS 'True when p_name is an IANA time zone name known to this server (pg_timezone_names).';

CREATE FUNCTION nikita.is_e164(p_phone text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_phone ~ '^\+[1-9][0-9]{6,14}$'
$$;
COMMENT ON FUNCTION nikita.is_e164(text)
IS 'True when p_phone is an E.164 number: +, a non-zero digit, 7 to 15 digits in all.';

-- Settings are typed: the value must read as its declared type.
CREATE FUNCTION nikita.is_setting_value(p_type text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) = 'null' THEN
        RETURN true;  -- an unset optional knob (e.g. no alert chat)
    END IF;
    CASE p_type
        WHEN 'interval' THEN
            PERFORM (p_value #>> '{}')::interval;
            RETURN pg_catalog.jsonb_typeof(p_value) = 'string';
        WHEN 'integer' THEN
            RETURN pg_catalog.jsonb_typeof(p_value) = 'number'
                AND (p_value #>> '{}')::numeric = trunc((p_value #>> '{}')::numeric);
        WHEN 'number' THEN
            RETURN pg_catalog.jsonb_typeof(p_value) = 'number';
        WHEN 'boolean' THEN
            RETURN pg_catalog.jsonb_typeof(p_value) = 'boolean';
        WHEN 'text' THEN
            RETURN pg_catalog.jsonb_typeof(p_value) = 'string';
        ELSE
            RETURN false;
    END CASE;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
          OR invalid_text_representation OR interval_field_overflow THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION nikita.is_setting_value(text, jsonb)
IS 'True when p_value (JSON) reads as a value of setting type p_type.';

CREATE FUNCTION nikita.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Game tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE nikita.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id bigint CONSTRAINT users_telegram_id_key UNIQUE
        CONSTRAINT users_telegram_id_positive CHECK (telegram_id > 0),
    phone text CONSTRAINT users_phone_e164 CHECK (nikita.is_e164(phone)),
    chapter smallint NOT NULL DEFAULT 1
        CONSTRAINT users_chapter_range CHECK (chapter BETWEEN 1 AND 5),
    relationship_score numeric(5, 2) NOT NULL DEFAULT 50
        CONSTRAINT users_score_range CHECK (relationship_score BETWEEN 0 AND 100),
    game_status text NOT NULL DEFAULT 'active'
        CONSTRAINT users_game_status_valid
        CHECK (game_status IN ('active', 'boss_fight', 'game_over', 'won')),
    onboarding_status text NOT NULL DEFAULT 'pending'
        CONSTRAINT users_onboarding_status_valid
        CHECK (onboarding_status IN ('pending', 'in_progress', 'completed', 'skipped')),
    timezone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT users_timezone_iana CHECK (nikita.is_valid_timezone(timezone)),
    notifications_enabled boolean NOT NULL DEFAULT true,
    last_interaction_at timestamptz,
    decayed_through timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE nikita.users IS 'Players. telegram_id is the private chat id.';
COMMENT ON COLUMN nikita.users.decayed_through
IS 'Decay watermark: decay has been applied up to this instant.';

-- The decay scan reads only eligible players.
CREATE INDEX users_decay_eligible_idx ON nikita.users (id)
WHERE game_status = 'active' AND onboarding_status IN ('completed', 'skipped');

CREATE TRIGGER users_touch BEFORE UPDATE ON nikita.users
FOR EACH ROW EXECUTE FUNCTION nikita.touch_updated_at();

CREATE TABLE nikita.conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A player's conversations go with the player.
    user_id uuid NOT NULL REFERENCES nikita.users (id) ON DELETE CASCADE,
    platform text NOT NULL
        CONSTRAINT conversations_platform_valid CHECK (platform IN ('telegram', 'voice')),
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT conversations_status_valid
        CHECK (status IN ('active', 'ended', 'processing', 'processed', 'failed')),
    started_at timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    processing_attempts integer NOT NULL DEFAULT 0
        CONSTRAINT conversations_attempts_nonnegative CHECK (processing_attempts >= 0),
    locked_by text,
    locked_until timestamptz,
    lock_token uuid,
    error text,
    summary text,
    emotional_tone text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_last_message_after_start CHECK (last_message_at >= started_at),
    CONSTRAINT conversations_ended_at_when_ended
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CONSTRAINT conversations_lease_when_processing
    CHECK ((status = 'processing')
        = (lock_token IS NOT NULL AND locked_until IS NOT NULL AND locked_by IS NOT NULL))
);
CREATE INDEX conversations_user_idx ON nikita.conversations (user_id, started_at);
CREATE INDEX conversations_active_idx ON nikita.conversations (last_message_at)
WHERE status = 'active';
CREATE INDEX conversations_ended_idx ON nikita.conversations (ended_at)
WHERE status = 'ended';
CREATE INDEX conversations_lease_idx ON nikita.conversations (locked_until)
WHERE status = 'processing';
CREATE TRIGGER conversations_touch BEFORE UPDATE ON nikita.conversations
FOR EACH ROW EXECUTE FUNCTION nikita.touch_updated_at();

CREATE TABLE nikita.score_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES nikita.users (id) ON DELETE CASCADE,
    score numeric(5, 2) NOT NULL
        CONSTRAINT score_history_score_range CHECK (score BETWEEN 0 AND 100),
    delta numeric(6, 2) NOT NULL
        CONSTRAINT score_history_delta_range CHECK (delta BETWEEN -100 AND 100),
    chapter smallint NOT NULL
        CONSTRAINT score_history_chapter_range CHECK (chapter BETWEEN 1 AND 5),
    event_type text NOT NULL
        CONSTRAINT score_history_event_type_valid CHECK (event_type IN (
            'conversation', 'decay', 'decay_game_over', 'boss_pass', 'boss_fail',
            'boss_timeout', 'chapter_advance', 'manual_adjustment'
        )),
    event_details jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT score_history_details_object CHECK (jsonb_typeof(event_details) = 'object'),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX score_history_user_time_idx ON nikita.score_history (user_id, recorded_at);

CREATE TABLE nikita.daily_summaries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES nikita.users (id) ON DELETE CASCADE,
    date date NOT NULL,
    score_start numeric(5, 2) NOT NULL
        CONSTRAINT daily_summaries_score_start_range CHECK (score_start BETWEEN 0 AND 100),
    score_end numeric(5, 2) NOT NULL
        CONSTRAINT daily_summaries_score_end_range CHECK (score_end BETWEEN 0 AND 100),
    decay_applied numeric(6, 2) NOT NULL DEFAULT 0
        CONSTRAINT daily_summaries_decay_nonnegative CHECK (decay_applied >= 0),
    conversations_count integer NOT NULL DEFAULT 0
        CONSTRAINT daily_summaries_conversations_nonnegative CHECK (conversations_count >= 0),
    summary_text text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT daily_summaries_user_date_key UNIQUE (user_id, date)
);

-- Pending Telegram registrations. Decided (docs/decisions.md): the bot's
-- e-mail sign-up flow asks for an e-mail, then a one-time code.
CREATE TABLE nikita.signup_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    telegram_id bigint NOT NULL
        CONSTRAINT signup_sessions_telegram_id_key UNIQUE
        CONSTRAINT signup_sessions_telegram_id_positive CHECK (telegram_id > 0),
    chat_id bigint NOT NULL,
    email text CONSTRAINT signup_sessions_email_valid
        CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    signup_state text NOT NULL DEFAULT 'awaiting_email'
        CONSTRAINT signup_sessions_state_valid
        CHECK (signup_state IN ('awaiting_email', 'awaiting_code', 'verified')),
    attempts integer NOT NULL DEFAULT 0
        CONSTRAINT signup_sessions_attempts_range CHECK (attempts BETWEEN 0 AND 10),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '10 minutes',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signup_sessions_email_when_awaiting_code
    CHECK (signup_state = 'awaiting_email' OR email IS NOT NULL)
);
CREATE INDEX signup_sessions_expires_idx ON nikita.signup_sessions (expires_at);

-- ---------------------------------------------------------------------------------------------
-- Package tables
-- ---------------------------------------------------------------------------------------------

CREATE TABLE nikita.decay_rules (
    chapter smallint PRIMARY KEY
        CONSTRAINT decay_rules_chapter_range CHECK (chapter BETWEEN 1 AND 5),
    grace interval NOT NULL CONSTRAINT decay_rules_grace_nonnegative
        CHECK (grace >= interval '0'),
    points_per_hour numeric(6, 3) NOT NULL
        CONSTRAINT decay_rules_rate_positive CHECK (points_per_hour > 0),
    daily_cap numeric(6, 2) NOT NULL
        CONSTRAINT decay_rules_cap_positive CHECK (daily_cap > 0)
);
INSERT INTO nikita.decay_rules (chapter, grace, points_per_hour, daily_cap) VALUES
(1, '8 hours', 0.8, 12),
(2, '16 hours', 0.6, 10),
(3, '24 hours', 0.4, 8),
(4, '48 hours', 0.3, 6),
(5, '72 hours', 0.2, 4);

CREATE TABLE nikita.reply_delays (
    chapter smallint PRIMARY KEY
        CONSTRAINT reply_delays_chapter_range CHECK (chapter BETWEEN 1 AND 5),
    min_delay interval NOT NULL
        CONSTRAINT reply_delays_min_nonnegative CHECK (min_delay >= interval '0'),
    max_delay interval NOT NULL,
    CONSTRAINT reply_delays_max_not_below_min CHECK (max_delay >= min_delay)
);
INSERT INTO nikita.reply_delays (chapter, min_delay, max_delay) VALUES
(1, '2 minutes', '5 minutes'),
(2, '1 minute', '3 minutes'),
(3, '30 seconds', '2 minutes'),
(4, '10 seconds', '60 seconds'),
(5, '0', '0');

CREATE TABLE nikita.scheduled_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Deleting a player deletes what was still to be sent to them. Only operator alerts
    -- (ops_alert, to the alert chat) belong to no player.
    user_id uuid REFERENCES nikita.users (id) ON DELETE CASCADE,
    platform text NOT NULL
        CONSTRAINT scheduled_events_platform_valid CHECK (platform IN ('telegram', 'voice')),
    event_type text NOT NULL
        CONSTRAINT scheduled_events_event_type_valid CHECK (event_type IN (
            'message_delivery', 'call_reminder', 'boss_prompt', 'follow_up', 'game_over',
            'ops_alert'
        )),
    content jsonb NOT NULL,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT scheduled_events_status_valid
        CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 4
        CONSTRAINT scheduled_events_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 100),
    locked_by text,
    locked_until timestamptz,
    lock_token uuid,
    delivered_at timestamptz,
    provider_ref text,
    last_error text,
    errors jsonb NOT NULL DEFAULT '[]'
        CONSTRAINT scheduled_events_errors_array CHECK (jsonb_typeof(errors) = 'array'),
    dedupe_key text CONSTRAINT scheduled_events_dedupe_key_nonempty
        CHECK (length(dedupe_key) BETWEEN 1 AND 200),
    -- The conversation that produced a reply may be purged before the reply is; keep the reply.
    source_conversation_id uuid REFERENCES nikita.conversations (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scheduled_events_user_unless_ops_alert
    CHECK (user_id IS NOT NULL OR event_type = 'ops_alert'),
    CONSTRAINT scheduled_events_attempts_range CHECK (attempts BETWEEN 0 AND max_attempts),
    CONSTRAINT scheduled_events_lease_when_sending
    CHECK ((status = 'sending')
        = (lock_token IS NOT NULL AND locked_until IS NOT NULL AND locked_by IS NOT NULL)),
    CONSTRAINT scheduled_events_delivered_at_when_delivered
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    CONSTRAINT scheduled_events_content_object CHECK (jsonb_typeof(content) = 'object'),
    -- Fixed shapes: a Telegram event carries a numeric chat and a text a bot may send (split by
    -- the shim above 4,096); a voice event carries an E.164 number to call.
    CONSTRAINT scheduled_events_telegram_content CHECK (
        platform <> 'telegram' OR (
            jsonb_typeof(content -> 'chat_id') = 'number'
            AND jsonb_typeof(content -> 'text') = 'string'
            AND length(content ->> 'text') BETWEEN 1 AND 32768
        )
    ),
    CONSTRAINT scheduled_events_voice_content CHECK (
        platform <> 'voice' OR (
            jsonb_typeof(content -> 'to_number') = 'string'
            AND nikita.is_e164(content ->> 'to_number')
        )
    )
);
COMMENT ON TABLE nikita.scheduled_events
IS 'Outbound messages and calls. Written through schedule_event(), claimed by the shim.';

-- The claim path: due pending rows, oldest first.
CREATE INDEX scheduled_events_claim_idx ON nikita.scheduled_events (scheduled_at)
WHERE status = 'pending';
-- Per-user exclusivity and lease reaping look at in-flight rows only.
CREATE INDEX scheduled_events_sending_user_idx ON nikita.scheduled_events (user_id)
WHERE status = 'sending';
CREATE INDEX scheduled_events_sending_lease_idx ON nikita.scheduled_events (locked_until)
WHERE status = 'sending';
CREATE INDEX scheduled_events_user_idx ON nikita.scheduled_events (user_id, status);
-- Retention and health read settled rows by age.
CREATE INDEX scheduled_events_settled_idx ON nikita.scheduled_events (status, updated_at)
WHERE status IN ('delivered', 'failed', 'cancelled');
-- A dedupe key is unique among live events only; a settled one may be reused.
CREATE UNIQUE INDEX scheduled_events_dedupe_live_key ON nikita.scheduled_events (dedupe_key)
WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'sending');
CREATE INDEX scheduled_events_source_conversation_idx
ON nikita.scheduled_events (source_conversation_id)
WHERE source_conversation_id IS NOT NULL;

CREATE TRIGGER scheduled_events_touch BEFORE UPDATE ON nikita.scheduled_events
FOR EACH ROW EXECUTE FUNCTION nikita.touch_updated_at();

CREATE TABLE nikita.job_executions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name text NOT NULL
        CONSTRAINT job_executions_job_name_valid
        CHECK (job_name IN ('decay', 'sweep', 'summary', 'cleanup', 'conversations')),
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at timestamptz,
    status text NOT NULL DEFAULT 'running'
        CONSTRAINT job_executions_status_valid
        CHECK (status IN ('running', 'completed', 'failed', 'skipped')),
    result jsonb CONSTRAINT job_executions_result_object CHECK (jsonb_typeof(result) = 'object'),
    error text,
    duration_ms integer CONSTRAINT job_executions_duration_nonnegative CHECK (duration_ms >= 0),
    CONSTRAINT job_executions_completed_when_settled
    CHECK ((status = 'running') = (completed_at IS NULL)),
    CONSTRAINT job_executions_error_when_failed CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX job_executions_job_time_idx ON nikita.job_executions (job_name, started_at DESC);
CREATE INDEX job_executions_running_idx ON nikita.job_executions (job_name)
WHERE status = 'running';

CREATE TABLE nikita.settings (
    key text PRIMARY KEY CONSTRAINT settings_key_format CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    value_type text NOT NULL
        CONSTRAINT settings_value_type_valid
        CHECK (value_type IN ('interval', 'integer', 'number', 'boolean', 'text')),
    value jsonb,
    description text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_value_matches_type CHECK (nikita.is_setting_value(value_type, value))
);
COMMENT ON TABLE nikita.settings
IS 'Operator knobs (typed). Not GUCs: managed PostgreSQL services forbid custom GUCs.';
CREATE TRIGGER settings_touch BEFORE UPDATE ON nikita.settings
FOR EACH ROW EXECUTE FUNCTION nikita.touch_updated_at();

INSERT INTO nikita.settings (key, value_type, value, description) VALUES
('max_lateness', 'interval', '"24 hours"',
 'A pending event this long past due is failed as expired.'),
('event_retention', 'interval', '"30 days"',
 'Delivered and cancelled events are deleted after this long.'),
('failed_event_retention', 'interval', '"90 days"',
 'Failed events are deleted after this long.'),
('job_retention', 'interval', '"30 days"', 'job_executions rows are deleted after this long.'),
('cron_run_retention', 'interval', '"7 days"',
 'cron.job_run_details rows are deleted after this long.'),
('conversation_idle_timeout', 'interval', '"15 minutes"',
 'An active conversation idle this long is ended.'),
('conversation_max_attempts', 'integer', '3',
 'Processing attempts before a conversation is failed.'),
('alert_chat_id', 'integer', NULL,
 'Telegram chat that receives ops_alert events for failed jobs; null disables alerts.'),
('game_over_text', 'text',
 '"I think we''re done. You stopped showing up, and I stopped waiting. Goodbye."',
 'Text of the Telegram message queued when decay ends a game.'),
('decay_batch_size', 'integer', '20000',
 'Players decayed per committed batch by the scheduled decay job.'),
('cleanup_batch_size', 'integer', '10000', 'Rows deleted per statement by cleanup.');
