-- A fast users_timezone_iana check: decay updates every eligible player each hour.
--
-- PostgreSQL evaluates every CHECK constraint on every UPDATE of a row, and the original
-- nikita.is_valid_timezone() reads pg_timezone_names, which walks the whole tz directory: about
-- 55 ms per call on the reference machine, so one hourly decay of 1,000,000 players would have
-- spent 15 hours in that check. Same answer, new body:
--   * the names of pg_timezone_names, frozen here into a jsonb constant: `?` is a binary search;
--   * any other name falls back to the original lookup (now nikita.timezone_name_listed), so a
--     zone added by a later tzdata update is still accepted, only slowly.
-- The body is a single expression with no SET clause and every operator qualified, so the
-- planner inlines it into the CHECK (about 0.1 µs per row); it is not STRICT (an inlined strict
-- function must be strict all through) and a NULL name still yields NULL.

CREATE FUNCTION nikita.timezone_name_listed(p_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = p_name)
$$;
COMMENT ON FUNCTION nikita.timezone_name_listed(text)
IS 'True when p_name is in pg_timezone_names (slow: reads the tz directory).';
REVOKE EXECUTE ON FUNCTION nikita.timezone_name_listed(text) FROM PUBLIC;

DO $do$
BEGIN
    EXECUTE pg_catalog.format(
        $f$
        CREATE OR REPLACE FUNCTION nikita.is_valid_timezone(p_name text)
        RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS %L
        $f$,
        pg_catalog.format(
            'SELECT %L::pg_catalog.jsonb OPERATOR(pg_catalog.?) p_name '
            'OR nikita.timezone_name_listed(p_name)',
            (SELECT pg_catalog.jsonb_object_agg(z.name, 1) FROM pg_catalog.pg_timezone_names AS z)
        )
    );
END
$do$;
COMMENT ON FUNCTION nikita.is_valid_timezone(text)
IS 'True when p_name is an IANA time zone name known to this server (pg_timezone_names; the '
'names known at install are looked up in a constant, others in pg_timezone_names).';
REVOKE EXECUTE ON FUNCTION nikita.is_valid_timezone(text) FROM PUBLIC;
