-- 0013: the boss-fight timeout (docs/jobs.md "Boss-fight timeout").
--
-- users gains the fight's start and the failed attempts so far, as the game stores them
-- (yangsi7/nikita: users.boss_fight_started_at, users.boss_attempts); three settings drive the
-- job nikita.expire_boss_fights (functions/boss_timeout.sql), validated by an additive CHECK
-- of their own (settings_boss_valid) so that nikita._check_setting_value stays untouched.
-- score_history_event_type_valid already lists 'boss_timeout' (0001): nothing to widen.

ALTER TABLE nikita.users
ADD COLUMN boss_fight_started_at timestamptz,
ADD COLUMN boss_attempts smallint NOT NULL DEFAULT 0;
COMMENT ON COLUMN nikita.users.boss_fight_started_at IS
'When the current boss fight started; set exactly while game_status = ''boss_fight'' (CHECK '
'users_boss_fight_started; trigger users_boss_fight_stamp fills / clears it when the app '
'changes game_status without it). The boss_timeout job ends fights older than boss_timeout.';
COMMENT ON COLUMN nikita.users.boss_attempts IS
'Failed boss attempts in the current chapter (the app resets it when a boss is passed); at '
'setting boss_max_attempts the game is over. 0..10 (boss_max_attempts is at most 10).';

-- 10, not the setting: a CHECK cannot read a settings row; boss_max_attempts is bounded 1..10.
ALTER TABLE nikita.users
ADD CONSTRAINT users_boss_attempts_range CHECK (boss_attempts BETWEEN 0 AND 10);

-- Keep the pair consistent when the app writes game_status alone: entering a fight without a
-- start stamps now(); leaving one clears the start. The WHEN clause keeps decay's updates (which
-- list game_status) from calling any function. An app that writes the start itself (the game
-- does) keeps its value.
CREATE OR REPLACE FUNCTION nikita._stamp_boss_fight()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.game_status = 'boss_fight' THEN
        NEW.boss_fight_started_at := pg_catalog.now();
    ELSE
        NEW.boss_fight_started_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION nikita._stamp_boss_fight() IS
'Internal trigger: boss_fight_started_at := now() when a row enters boss_fight without one, '
'NULL when it leaves boss_fight (users_boss_fight_stamp).';
REVOKE EXECUTE ON FUNCTION nikita._stamp_boss_fight() FROM PUBLIC;

CREATE TRIGGER users_boss_fight_stamp
BEFORE INSERT OR UPDATE OF game_status, boss_fight_started_at ON nikita.users
FOR EACH ROW
WHEN (
    (new.game_status = 'boss_fight' AND new.boss_fight_started_at IS NULL)
    OR (new.game_status <> 'boss_fight' AND new.boss_fight_started_at IS NOT NULL)
)
EXECUTE FUNCTION nikita._stamp_boss_fight();

-- Existing fights have no start: they start now, so each gets the whole timeout after the
-- upgrade (nobody loses a fight to the install itself). NOT VALID, backfill, then VALIDATE, in
-- this migration's transaction.
ALTER TABLE nikita.users
ADD CONSTRAINT users_boss_fight_started
CHECK ((game_status = 'boss_fight') = (boss_fight_started_at IS NOT NULL)) NOT VALID;
UPDATE nikita.users SET boss_fight_started_at = now()
WHERE game_status = 'boss_fight' AND boss_fight_started_at IS NULL;
ALTER TABLE nikita.users VALIDATE CONSTRAINT users_boss_fight_started;

-- The job's scan: the fights, oldest start first (keyset order of its batches).
CREATE INDEX users_boss_fight_idx ON nikita.users (boss_fight_started_at, id)
WHERE game_status = 'boss_fight';

-- ---------------------------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------------------------
-- Raises 23514 naming the key and its rule, like nikita._check_setting_value (0009).
CREATE OR REPLACE FUNCTION nikita._check_boss_setting(p_key text, p_type text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text;
    v_rule text;
    v_ok boolean;
    v_text text;
BEGIN
    CASE p_key
        WHEN 'boss_timeout' THEN
            v_type := 'interval'; v_rule := 'an interval from 1 minute to 30 days';
        WHEN 'boss_max_attempts' THEN
            v_type := 'integer'; v_rule := 'an integer from 1 to 10';
        WHEN 'boss_timeout_text' THEN
            v_type := 'text';
            v_rule := 'empty or null (no message), or a text of 1 to 4096 characters, not blank';
        ELSE
            RETURN true;
    END CASE;

    IF p_type IS DISTINCT FROM v_type THEN
        RAISE EXCEPTION 'setting "%" must have value_type %, got %', p_key, v_type,
            coalesce(p_type, 'NULL')
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value_type', CONSTRAINT = 'settings_boss_valid';
    END IF;
    IF p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) = 'null' THEN
        IF p_key = 'boss_timeout_text' THEN
            RETURN true;
        END IF;
        RAISE EXCEPTION 'setting "%" must be set: %, got null', p_key, v_rule
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_boss_valid';
    END IF;
    IF NOT nikita.is_setting_value(p_type, p_value) THEN
        RETURN true;  -- settings_value_matches_type refuses it
    END IF;

    CASE v_type
        WHEN 'interval' THEN
            v_ok := (p_value #>> '{}')::interval BETWEEN interval '1 minute' AND interval '30 days';
        WHEN 'integer' THEN
            v_ok := (p_value #>> '{}')::numeric BETWEEN 1 AND 10;
        ELSE
            v_text := p_value #>> '{}';
            v_ok := v_text = ''
                OR (pg_catalog.length(v_text) <= 4096 AND NOT nikita.is_blank(v_text));
    END CASE;
    IF NOT v_ok THEN
        RAISE EXCEPTION 'setting "%" must be %, got %', p_key, v_rule,
            pg_catalog.left(p_value::text, 200)
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_boss_valid';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION nikita._check_boss_setting(text, text, jsonb) IS
'CHECK settings_boss_valid: true, or 23514 naming the key and its rule. boss_timeout 1 '
'minute..30 days; boss_max_attempts 1..10; boss_timeout_text empty or NULL (no message) or '
'1..4096 characters, not blank. Other keys: no rule here.';
REVOKE EXECUTE ON FUNCTION nikita._check_boss_setting(text, text, jsonb) FROM PUBLIC;

INSERT INTO nikita.settings (key, value_type, value, description) VALUES
('boss_timeout', 'interval', '"24 hours"',
 'A boss fight older than this is ended by the boss_timeout job as a failed attempt.'),
('boss_max_attempts', 'integer', '3',
 'Failed boss attempts that end the game (the timeout''s attempt included).'),
('boss_timeout_text', 'text',
 '"You just disappeared on me in the middle of something that mattered. Fine. I''ll give you '
 'another chance, but don''t make me wait like that again."',
 'Text of the Telegram message queued when a boss fight times out and the player may try '
 'again; empty or null: no message. At the last attempt the game_over message goes instead.');

ALTER TABLE nikita.settings
ADD CONSTRAINT settings_boss_valid CHECK (
    key NOT IN ('boss_timeout', 'boss_max_attempts', 'boss_timeout_text')
    OR nikita._check_boss_setting(key, value_type, value)
);
