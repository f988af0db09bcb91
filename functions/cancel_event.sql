-- Cancelling events that have not been sent: pending -> cancelled. An event in flight
-- ('sending') cannot be recalled, and settled events stay as they are.

CREATE OR REPLACE FUNCTION nikita.cancel_event(p_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE nikita.scheduled_events AS e
    SET status = 'cancelled'
    WHERE e.id = p_id AND e.status = 'pending';
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION nikita.cancel_event(uuid)
IS 'Cancel a pending event. True when cancelled; false when it is unknown, in flight or '
'already settled (it is left as it is). 22004 for a null id.';
REVOKE EXECUTE ON FUNCTION nikita.cancel_event(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.cancel_event(uuid) TO nikita_app;

CREATE OR REPLACE FUNCTION nikita.cancel_user_events(p_user_id uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE nikita.scheduled_events AS e
    SET status = 'cancelled'
    WHERE e.user_id = p_user_id AND e.status = 'pending';
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION nikita.cancel_user_events(uuid)
IS 'Cancel every pending event of a user (e.g. game over); returns how many. Events in flight '
'are not recalled. An unknown user has nothing to cancel (0). 22004 for a null user_id.';
REVOKE EXECUTE ON FUNCTION nikita.cancel_user_events(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.cancel_user_events(uuid) TO nikita_app;
