-- A failed delivery attempt. Retryable with attempts left: back to pending after a backoff of
-- 2^(attempt-1) minutes with +-10 % jitter, capped at 1 hour, keeping its place in the user's
-- order (order_at keeps the time the app asked for): the user's later events wait for it.
-- Permanent, or attempts exhausted: failed, which releases the user's later events. Every
-- error is appended to the row's errors history and kept in last_error.

CREATE OR REPLACE FUNCTION nikita.fail_event(
    p_id uuid,
    p_lock_token uuid,
    p_error text,
    p_retryable boolean DEFAULT true
)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_error text;
    v_status text;
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_lock_token IS NULL THEN
        RAISE EXCEPTION 'lock_token must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_error IS NULL THEN
        RAISE EXCEPTION 'error must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_retryable IS NULL THEN
        RAISE EXCEPTION 'retryable must not be null' USING ERRCODE = '22004';
    END IF;
    -- Bounded rows: an error text is kept to 2,000 characters.
    v_error := pg_catalog.left(p_error, 2000);

    UPDATE nikita.scheduled_events AS e
    SET status = CASE WHEN p_retryable AND e.attempts < e.max_attempts
        THEN 'pending' ELSE 'failed' END,
        scheduled_at = CASE WHEN p_retryable AND e.attempts < e.max_attempts
            THEN pg_catalog.now() + nikita._backoff(e.attempts)
            ELSE e.scheduled_at END,
        -- the retry waits at its place in the user's line (0010)
        order_at = coalesce(e.order_at, e.scheduled_at),
        last_error = v_error,
        errors = e.errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'at', pg_catalog.now(),
            'attempt', e.attempts,
            'error', v_error,
            'retryable', p_retryable
        )),
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL,
        updated_at = pg_catalog.now()
    WHERE e.id = p_id AND e.lock_token = p_lock_token AND e.status = 'sending'
    RETURNING e.status INTO v_status;
    IF FOUND THEN
        RETURN v_status;
    END IF;

    PERFORM nikita._warn_lease_lost('fail_event', p_id, 'changed');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION nikita.fail_event(uuid, uuid, text, boolean)
IS 'Record a failed delivery attempt of a claimed event. Retryable and attempts < max_attempts: '
'pending again at now + 2^(attempt-1) min +-10 % (at most 1 h), keeping its place in the '
'user''s order (later events of the user wait for it); else failed. Appends '
'{at, attempt, error, retryable} to errors, sets last_error (2,000 chars max). Returns the new '
'status, or NULL with a WARNING when the lease was lost. 22004 for null arguments.';
REVOKE EXECUTE ON FUNCTION nikita.fail_event(uuid, uuid, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.fail_event(uuid, uuid, text, boolean) TO nikita_worker;
