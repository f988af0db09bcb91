-- Postponing a claimed event without consuming an attempt (rate limits, a release at shutdown):
-- sending -> pending at p_until (a time in the past: now), and the claim's attempt is given
-- back. The event keeps its place in its user's order: the user's later events wait for it.

CREATE OR REPLACE FUNCTION nikita.defer_event(
    p_id uuid,
    p_lock_token uuid,
    p_until timestamptz
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_lock_token IS NULL THEN
        RAISE EXCEPTION 'lock_token must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_until IS NULL THEN
        RAISE EXCEPTION 'until must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_until) THEN
        RAISE EXCEPTION 'until must be a finite time, got %', p_until USING ERRCODE = '22023';
    END IF;

    -- A time in the past means "again now": claimable at once, and never expired by the next
    -- sweep for a lateness it did not have. The event keeps its place in the user's line.
    UPDATE nikita.scheduled_events AS e
    SET status = 'pending',
        scheduled_at = greatest(p_until, pg_catalog.now()),
        order_at = coalesce(e.order_at, e.scheduled_at),
        attempts = e.attempts - 1,
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL,
        updated_at = pg_catalog.now()
    WHERE e.id = p_id AND e.lock_token = p_lock_token AND e.status = 'sending';
    IF FOUND THEN
        RETURN true;
    END IF;

    PERFORM nikita._warn_lease_lost('defer_event', p_id, 'deferred');
    RETURN false;
END
$$;
COMMENT ON FUNCTION nikita.defer_event(uuid, uuid, timestamptz)
IS 'Put a claimed event back to pending at p_until (a past time counts as now) without '
'consuming an attempt (the claim''s attempt is given back): rate limits, release at shutdown. '
'It keeps its place in the user''s order. False with a WARNING when the lease was lost. 22004 '
'null argument, 22023 infinite time.';
REVOKE EXECUTE ON FUNCTION nikita.defer_event(uuid, uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.defer_event(uuid, uuid, timestamptz) TO nikita_worker;
