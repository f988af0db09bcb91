-- Operator API (sql/0020_ops_role.sql): cancel the pending events of a player, of a type, or
-- of a type for a player. Events in flight ('sending') are not recalled, settled ones stay.
-- At least one filter: "cancel everything" is not an operator's one-liner.

CREATE OR REPLACE FUNCTION nikita.cancel_pending_events(
    p_user_id uuid DEFAULT NULL,
    p_event_type text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    IF p_user_id IS NULL AND p_event_type IS NULL THEN
        RAISE EXCEPTION 'give a user_id, an event_type or both' USING ERRCODE = '22004';
    END IF;
    PERFORM nikita._admin_check_filter('event_type', p_event_type);
    UPDATE nikita.scheduled_events AS e
    SET status = 'cancelled'
    WHERE
        e.status = 'pending'
        AND (p_user_id IS NULL OR e.user_id = p_user_id)
        AND (p_event_type IS NULL OR e.event_type = p_event_type);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION nikita.cancel_pending_events(uuid, text)
IS 'Operator API: cancel the pending events of user p_user_id and/or of type p_event_type '
'(both: that type of that user); returns how many (0: none). In-flight events are not '
'recalled. 22004: neither given; 22023: unknown event_type. Executable by nikita_ops.';
REVOKE EXECUTE ON FUNCTION nikita.cancel_pending_events(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.cancel_pending_events(uuid, text) TO nikita_ops;
