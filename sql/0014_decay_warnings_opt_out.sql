-- Decay warnings and the notification opt-out (docs/jobs.md, docs/queue.md).
--
-- 1. A settings value_type 'json' (a list of thresholds is neither text nor a number) and the
--    setting decay_warnings: [{"below": 40, "text": ...}, {"below": 30, "text": ...}], validated
--    by CHECK settings_decay_warnings_valid (23514 naming the key and the rule). The rules of
--    decay warnings: functions/decay_warnings.sql, docs/jobs.md "Decay warnings".
-- 2. The event type decay_warning.
-- 3. users_notifications_opt_out: when a player turns notifications_enabled off, their pending
--    proactive events are cancelled (the function: functions/notifications.sql; docs/queue.md
--    "Notification opt-out").
--
-- The two IN-list CHECKs are widened from their current list (read from the catalog), not
-- rewritten from a list of our own, so that a migration of another branch widening the same
-- constraint keeps its values whichever order the two run in.
DO $$
DECLARE
    r record;
    v_values text[];
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('nikita.settings'::regclass, 'settings_value_type_valid', 'value_type', 'json'),
            ('nikita.scheduled_events'::regclass, 'scheduled_events_event_type_valid',
             'event_type', 'decay_warning')
        ) AS v (tbl, con, col, added)
    LOOP
        SELECT array_agg(m[1] ORDER BY o) INTO v_values
        FROM pg_catalog.pg_constraint AS c,
            regexp_matches(pg_catalog.pg_get_constraintdef(c.oid), '''([^'']*)''', 'g')
            WITH ORDINALITY AS x (m, o)
        WHERE c.conrelid = r.tbl AND c.conname = r.con;
        IF v_values IS NULL THEN
            RAISE EXCEPTION 'constraint % of % not found', r.con, r.tbl;
        END IF;
        IF NOT r.added = ANY (v_values) THEN
            v_values := v_values || r.added;
            EXECUTE format(
                'ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK (%I IN (%s))',
                r.tbl, r.con, r.con, r.col,
                (SELECT string_agg(quote_literal(v), ', ') FROM unnest(v_values) AS v)
            );
        END IF;
    END LOOP;
END
$$;

-- is_setting_value (0001) knows the scalar types only; a 'json' setting's shape is its own
-- CHECK's business (below).
ALTER TABLE nikita.settings DROP CONSTRAINT settings_value_matches_type,
ADD CONSTRAINT settings_value_matches_type
CHECK (value_type = 'json' OR nikita.is_setting_value(value_type, value));

-- Raises (23514, naming the key and the rule) instead of returning false, as
-- _check_setting_value (0009) does. In a migration: a CHECK calls it.
CREATE FUNCTION nikita._check_decay_warnings_setting(p_key text, p_type text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule constant text := 'a JSON array of at most 10 objects {"below": a number greater '
        || 'than 0 and at most 100, "text": 1 to 4096 characters, not blank}, each "below" '
        || 'once (an empty array: no warnings)';
    v_item jsonb;
    v_ok boolean := true;
BEGIN
    IF p_type IS DISTINCT FROM 'json' THEN
        RAISE EXCEPTION 'setting "%" must have value_type json, got %', p_key,
            coalesce(p_type, 'NULL')
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value_type', CONSTRAINT = 'settings_decay_warnings_valid';
    END IF;
    IF p_value IS NULL OR pg_catalog.jsonb_typeof(p_value) <> 'array'
        OR pg_catalog.jsonb_array_length(p_value) > 10 THEN
        v_ok := false;
    ELSE
        FOR v_item IN SELECT a.value FROM pg_catalog.jsonb_array_elements(p_value) AS a LOOP
            -- Nested: the casts below only once the types are known.
            v_ok := pg_catalog.jsonb_typeof(v_item) = 'object';
            IF v_ok THEN
                v_ok := coalesce((SELECT pg_catalog.array_agg(k ORDER BY k)
                         FROM pg_catalog.jsonb_object_keys(v_item) AS k) = ARRAY['below', 'text'],
                         false)
                    AND pg_catalog.jsonb_typeof(v_item -> 'below') = 'number'
                    AND pg_catalog.jsonb_typeof(v_item -> 'text') = 'string';
            END IF;
            IF v_ok THEN
                v_ok := (v_item ->> 'below')::numeric > 0
                    AND (v_item ->> 'below')::numeric <= 100
                    AND pg_catalog.length(v_item ->> 'text') BETWEEN 1 AND 4096
                    AND NOT nikita.is_blank(v_item ->> 'text');
            END IF;
            EXIT WHEN NOT v_ok;
        END LOOP;
        IF v_ok AND (
            SELECT count(DISTINCT (a.value ->> 'below')::numeric) <> count(*)
            FROM pg_catalog.jsonb_array_elements(p_value) AS a
        ) THEN
            v_ok := false;
        END IF;
    END IF;
    IF NOT coalesce(v_ok, false) THEN
        RAISE EXCEPTION 'setting "%" must be %, got %', p_key, v_rule,
            pg_catalog.left(coalesce(p_value::text, 'null'), 200)
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_decay_warnings_valid';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION nikita._check_decay_warnings_setting(text, text, jsonb) IS
'Internal (CHECK settings_decay_warnings_valid): true, or 23514 naming the key and the rule: '
'value_type json, an array of at most 10 {below: number in (0, 100], text: 1..4096 '
'characters, not blank}, each below once.';
REVOKE EXECUTE ON FUNCTION nikita._check_decay_warnings_setting(text, text, jsonb) FROM PUBLIC;

ALTER TABLE nikita.settings ADD CONSTRAINT settings_decay_warnings_valid
CHECK (key <> 'decay_warnings' OR nikita._check_decay_warnings_setting(key, value_type, value));

-- The game warns below 40 (a touchpoint in Nikita's voice, nikita/engine/decay/processor.py
-- and nikita/touchpoints/engine.py) and below 30 (a push "Don't forget about me...").
INSERT INTO nikita.settings (key, value_type, value, description) VALUES
('decay_warnings', 'json',
 '[{"below": 40, "text": "hey... you still there?"},
   {"below": 30, "text": "Don''t forget about me..."}]',
 'Decay warnings: when decay takes a score from at least "below" to under it, one Telegram '
 'message with "text" (the lowest threshold crossed in a run). [] sends none.');

-- Stub: the body is functions/notifications.sql (re-applied on every migrate). A trigger needs
-- its function to exist.
CREATE FUNCTION nikita._cancel_proactive_events_on_opt_out()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION nikita._cancel_proactive_events_on_opt_out() FROM PUBLIC;

-- Only when the column is in the UPDATE's SET list and turns false: decay's updates never fire it.
CREATE TRIGGER users_notifications_opt_out
AFTER UPDATE OF notifications_enabled ON nikita.users
FOR EACH ROW
WHEN (old.notifications_enabled AND NOT new.notifications_enabled)
EXECUTE FUNCTION nikita._cancel_proactive_events_on_opt_out();
