-- The minutely sweep of the queue (run_job('sweep')), also run by the shim after a (re)connect:
--  1. expired leases: Telegram -> pending again (at-least-once; the attempt stays consumed, and
--     with no attempt left -> failed), at its place (scheduled_at and order unchanged: still
--     its user's head); voice -> failed 'outcome unknown: lease expired' (a call
--     may have been placed: never call twice);
--  2. pending events more than max_lateness past due -> failed 'expired';
--  3. NOTIFY nikita_events when claimable work is due (a user's head or an ops alert, as
--     next_due_at).
-- All with p_now, never another reading of the clock.

CREATE OR REPLACE FUNCTION nikita.sweep_events(p_now timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_requeued integer;
    v_lease_failed integer;
    v_expired integer;
    v_due timestamptz;
    v_lateness interval;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    v_lateness := nikita._setting_interval('max_lateness');

    -- 1. Expired leases. A row being settled right now by its worker is skipped (next sweep).
    WITH expired AS (
        SELECT e.id,
            CASE
                WHEN e.platform = 'voice' THEN 'outcome unknown: lease expired'
                WHEN e.attempts >= e.max_attempts THEN 'lease expired; no attempt left'
                ELSE 'lease expired'
            END AS reason,
            e.platform = 'telegram' AND e.attempts < e.max_attempts AS requeue
        FROM nikita.scheduled_events AS e
        WHERE e.status = 'sending' AND e.locked_until < p_now
        FOR UPDATE SKIP LOCKED
    ),

    reaped AS (
        UPDATE nikita.scheduled_events AS e
        SET status = CASE WHEN x.requeue THEN 'pending' ELSE 'failed' END,
            last_error = x.reason,
            errors = e.errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'at', p_now,
                'attempt', e.attempts,
                'error', x.reason,
                'retryable', x.requeue
            )),
            locked_by = NULL,
            locked_until = NULL,
            lock_token = NULL
        FROM expired AS x
        WHERE e.id = x.id
        RETURNING x.requeue
    )

    SELECT count(*) FILTER (WHERE r.requeue), count(*) FILTER (WHERE NOT r.requeue)
    INTO v_requeued, v_lease_failed
    FROM reaped AS r;

    -- 2. Too late to be worth sending.
    WITH stale AS (
        SELECT e.id
        FROM nikita.scheduled_events AS e
        WHERE e.status = 'pending' AND e.scheduled_at < p_now - v_lateness
        FOR UPDATE SKIP LOCKED
    )

    UPDATE nikita.scheduled_events AS e
    SET status = 'failed',
        last_error = 'expired',
        errors = e.errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'at', p_now,
            'attempt', e.attempts,
            'error', 'expired',
            'retryable', false
        ))
    FROM stale
    WHERE e.id = stale.id;
    GET DIAGNOSTICS v_expired = ROW_COUNT;

    -- 3. Wake the shim when claimable work is due (the re-queue above notified already,
    --    through the trigger; a second identical NOTIFY in one transaction is folded).
    v_due := nikita._first_claimable(p_now - v_lateness, p_now);
    IF v_due IS NOT NULL THEN
        PERFORM pg_catalog.pg_notify('nikita_events', nikita._iso8601(v_due));
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'requeued', v_requeued,
        'lease_failed', v_lease_failed,
        'expired', v_expired,
        'notified', v_due IS NOT NULL,
        'oldest_due_at', v_due
    );
END
$$;
COMMENT ON FUNCTION nikita.sweep_events(timestamptz)
IS 'Queue maintenance at p_now: expired leases (Telegram re-queued, or failed when no attempt '
'is left; voice failed "outcome unknown: lease expired"), pending events more than '
'max_lateness past due failed "expired", NOTIFY nikita_events when claimable work is due. '
'Returns {requeued, lease_failed, expired, notified, oldest_due_at}.';
REVOKE EXECUTE ON FUNCTION nikita.sweep_events(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.sweep_events(timestamptz) TO nikita_worker;

-- The sweep job's step (job_catalog.step): one step, done at once.
CREATE OR REPLACE FUNCTION nikita._job_sweep_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);
    RETURN pg_catalog.jsonb_build_object('done', true, 'result', nikita.sweep_events(p_now));
END
$$;
COMMENT ON FUNCTION nikita._job_sweep_step(timestamptz, jsonb) IS
'Internal: the sweep job''s only step: sweep_events as of p_now, as the '
'owner (p_state unused).';
REVOKE EXECUTE ON FUNCTION nikita._job_sweep_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_sweep_step(timestamptz, jsonb) TO nikita_jobs;
