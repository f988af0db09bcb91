-- Times as text for the queue's wake-up signal: the nikita_events NOTIFY payload, sent by the
-- queue triggers (functions/queue_notify.sql) and by sweep_events. Internal; granted to nobody.

CREATE OR REPLACE FUNCTION nikita._iso8601(p_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
COMMENT ON FUNCTION nikita._iso8601(timestamptz)
IS 'Internal: p_at as ISO 8601 in UTC with microseconds (the nikita_events payload format).';
REVOKE EXECUTE ON FUNCTION nikita._iso8601(timestamptz) FROM PUBLIC;
