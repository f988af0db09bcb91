-- When the shim should wake up next: the earliest pending event it could claim.

CREATE OR REPLACE FUNCTION nikita.next_due_at()
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- The claimable pending rows in claim order (scheduled_events_claim_idx): a user's event
    -- waiting behind one in flight, or one past max_lateness (left to sweep_events), does not
    -- count, or an idle shim would wake for work it cannot claim.
    SELECT e.scheduled_at
    FROM nikita.scheduled_events AS e
    WHERE e.status = 'pending'
      AND e.scheduled_at >= now() - nikita.setting_interval('max_lateness')
      AND (
          e.user_id IS NULL
          OR NOT EXISTS (
              SELECT 1 FROM nikita.scheduled_events AS s
              WHERE s.user_id = e.user_id AND s.status = 'sending'
          )
      )
    ORDER BY e.scheduled_at
    LIMIT 1
$$;
COMMENT ON FUNCTION nikita.next_due_at()
IS 'scheduled_at of the earliest pending event that claim_events could take (possibly in the '
'past: due now), ignoring users with an event in flight and events past max_lateness; NULL '
'when there is none.';
REVOKE EXECUTE ON FUNCTION nikita.next_due_at() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.next_due_at() TO nikita_worker;
