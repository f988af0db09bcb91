-- Typed readers of nikita.settings. Internal: used by the package's own functions, which run as
-- their owner; not granted to anyone.
--
-- What a reader gets is in range: every write of a package setting is checked by CHECK
-- settings_value_valid (nikita._check_setting_value, sql/0009_bounds.sql), which refuses a bad
-- value with 23514 naming the key and its rule, e.g. max_lateness 1 minute..30 days,
-- game_over_text not blank (nikita.is_blank). The jobs' own guards stay as a second line.

CREATE OR REPLACE FUNCTION nikita._setting(p_key text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    SELECT s.value INTO v_value FROM nikita.settings AS s WHERE s.key = p_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting "%"', p_key
            USING ERRCODE = '22023', HINT = 'see SELECT key FROM nikita.settings';
    END IF;
    RETURN v_value;
END
$$;
COMMENT ON FUNCTION nikita._setting(text)
IS 'The JSON value of setting p_key (SQL NULL when unset); an unknown key is an error (22023).';

CREATE OR REPLACE FUNCTION nikita._setting_interval(p_key text)
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (nikita._setting(p_key) #>> '{}')::interval
$$;
COMMENT ON FUNCTION nikita._setting_interval(text) IS 'Setting p_key read as an interval.';

CREATE OR REPLACE FUNCTION nikita._setting_bigint(p_key text)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (nikita._setting(p_key) #>> '{}')::bigint
$$;
COMMENT ON FUNCTION nikita._setting_bigint(text) IS 'Setting p_key read as a bigint.';

CREATE OR REPLACE FUNCTION nikita._setting_text(p_key text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nikita._setting(p_key) #>> '{}'
$$;
COMMENT ON FUNCTION nikita._setting_text(text) IS 'Setting p_key read as text.';

REVOKE EXECUTE ON FUNCTION nikita._setting(text), nikita._setting_interval(text),
nikita._setting_bigint(text), nikita._setting_text(text) FROM PUBLIC;
