-- Operator API (sql/0020_ops_role.sql): retry a failed event.
--
-- Only 'failed': a pending event is already waiting, a sending one is in flight, a delivered
-- one must not go twice, a cancelled one was cancelled on purpose (55000 for each).
-- Back to pending with attempts 0, due at p_at (default now); the errors history is kept and the
-- retry appended to it ({at, attempt, error: "retried by ...", retryable, operator_retry, by}),
-- last_error still tells the last delivery error.
--
-- Per-user order (docs/queue.md): the event takes back its place in the user's line, the time
-- the app asked for (order_at keeps it, as fail_event does). So it goes before the user's
-- pending events scheduled after it, and while it waits for p_at those wait too; events of the
-- user that were delivered after it failed stay delivered (the order is the order of what is
-- still to be sent).

CREATE OR REPLACE FUNCTION nikita.retry_event(p_id uuid, p_at timestamptz DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
    v_dedupe text;
    v_other uuid;
    v_at timestamptz := coalesce(p_at, pg_catalog.now());
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    -- A time in the past would be failed as expired by the sweep once past max_lateness.
    IF p_at < pg_catalog.now() THEN
        RAISE EXCEPTION 'retry time % is in the past', p_at
            USING ERRCODE = '22023', HINT = 'omit it to retry now';
    END IF;
    SELECT e.status, e.dedupe_key INTO v_status, v_dedupe
    FROM nikita.scheduled_events AS e
    WHERE e.id = p_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no event %', p_id USING ERRCODE = 'P0002';
    END IF;
    IF v_status <> 'failed' THEN
        RAISE EXCEPTION 'event % is %: only a failed event can be retried', p_id, v_status
            USING ERRCODE = '55000';
    END IF;
    -- Its dedupe key is unique among live events: a newer live event with it wins.
    IF v_dedupe IS NOT NULL THEN
        SELECT e.id INTO v_other
        FROM nikita.scheduled_events AS e
        WHERE e.dedupe_key = v_dedupe AND e.status IN ('pending', 'sending');
        IF FOUND THEN
            RAISE EXCEPTION 'event % has dedupe key "%", which live event % holds', p_id,
                v_dedupe, v_other
                USING ERRCODE = '23505', HINT = 'cancel that one first, or leave this one failed';
        END IF;
    END IF;

    UPDATE nikita.scheduled_events AS e
    SET
        status = 'pending',
        order_at = coalesce(e.order_at, e.scheduled_at),
        scheduled_at = v_at,
        errors = e.errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'at', pg_catalog.now(),
            'attempt', e.attempts,
            'error', pg_catalog.format('retried by operator %s, due %s', SESSION_USER, v_at),
            'retryable', true,
            'operator_retry', true,
            'by', SESSION_USER
        )),
        attempts = 0,
        updated_at = pg_catalog.now()
    WHERE e.id = p_id;
    RETURN v_at;
END
$$;
COMMENT ON FUNCTION nikita.retry_event(uuid, timestamptz)
IS 'Operator API: failed event p_id back to pending, due at p_at (NULL: now), attempts 0, '
'keeping its place in the user''s order (order_at) and its errors history, with the retry '
'appended to it ({..., operator_retry: true, by: session user}). Returns the due time. '
'P0002: no such event; 55000: not failed; 23505: a live event holds its dedupe key; '
'22023: p_at in the past; 22004: null id. Executable by nikita_ops.';
REVOKE EXECUTE ON FUNCTION nikita.retry_event(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.retry_event(uuid, timestamptz) TO nikita_ops;
