-- The warning every settle function (complete, fail, defer) gives when its lock token is no
-- longer the event's current claim. Internal: called by those SECURITY DEFINER functions as
-- their owner; granted to nobody.

CREATE OR REPLACE FUNCTION nikita._warn_lease_lost(
    p_caller text, p_id uuid, p_outcome text
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT e.status INTO v_status FROM nikita.scheduled_events AS e WHERE e.id = p_id;
    RAISE WARNING '%: event % not %: lease lost (%)', p_caller, p_id, p_outcome,
        coalesce('event is now ' || v_status, 'no such event')
        USING ERRCODE = '01000';
END
$$;
COMMENT ON FUNCTION nikita._warn_lease_lost(text, uuid, text)
IS 'Internal: WARNING (01000) that p_caller did not settle event p_id because its lease was lost.';
REVOKE EXECUTE ON FUNCTION nikita._warn_lease_lost(text, uuid, text) FROM PUBLIC;
