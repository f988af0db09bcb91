-- The retry delay of a failed delivery attempt (fail_event): 2^(attempt-1) minutes with +-10 %
-- jitter, capped at 1 hour. Internal; granted to nobody.

CREATE OR REPLACE FUNCTION nikita._backoff(p_attempt integer)
RETURNS interval
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The exponent stops at 6 (64 min > the cap) so large attempt numbers cannot overflow.
    SELECT least(
        interval '1 minute' * power(2, least(greatest(p_attempt, 1), 7) - 1)
        * (0.9 + 0.2 * random()),
        interval '1 hour'
    )
$$;
COMMENT ON FUNCTION nikita._backoff(integer)
IS 'Internal: retry delay after failed attempt p_attempt: 2^(p_attempt-1) min +-10 %, <= 1 h.';
REVOKE EXECUTE ON FUNCTION nikita._backoff(integer) FROM PUBLIC;
