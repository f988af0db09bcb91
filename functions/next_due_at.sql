-- When the shim should wake up next: the earliest pending event it could claim.

CREATE OR REPLACE FUNCTION nikita.next_due_at()
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Events past max_lateness are left to sweep_events.
    SELECT nikita._first_claimable(
        now() - nikita._setting_interval('max_lateness'), 'infinity'
    )
$$;
COMMENT ON FUNCTION nikita.next_due_at()
IS 'scheduled_at of the earliest pending event that claim_events could take (possibly in the '
'past: due now): ops alerts and the head of each user with nothing in flight (a user''s later '
'event waits behind its head), ignoring events past max_lateness; NULL when there is none.';
REVOKE EXECUTE ON FUNCTION nikita.next_due_at() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.next_due_at() TO nikita_worker;
