-- The first event a claim could take: what next_due_at() and sweep_events() ask.

-- Internal, shared by next_due_at() and sweep_events(): the scheduled_at of the first pending
-- event, in claim order (scheduled_events_claim_idx), between p_oldest (max_lateness) and
-- p_until that claim_events could take: an ops alert, or a user's head (0010) of a user with
-- nothing in flight. A user's event waiting behind a head that waits for its retry or defer
-- time does not count, or an idle shim would wake again and again for work it cannot claim.
CREATE OR REPLACE FUNCTION nikita._first_claimable(
    p_oldest timestamptz, p_until timestamptz
)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.scheduled_at
    FROM nikita.scheduled_events AS e
    WHERE e.status = 'pending'
      AND e.scheduled_at >= p_oldest
      AND e.scheduled_at <= p_until
      AND CASE
          WHEN e.user_id IS NULL THEN true
          WHEN e.user_id IN (
              SELECT s.user_id FROM nikita.scheduled_events AS s WHERE s.status = 'sending'
          ) THEN false
          ELSE e.seq = (
              SELECT o.seq FROM nikita.scheduled_events AS o
              WHERE o.user_id = e.user_id
                AND o.status = 'pending'
                AND o.scheduled_at >= p_oldest
              ORDER BY o.user_id, coalesce(o.order_at, o.scheduled_at), o.seq
              LIMIT 1
          )
      END
    ORDER BY e.scheduled_at
    LIMIT 1
$$;
COMMENT ON FUNCTION nikita._first_claimable(timestamptz, timestamptz)
IS 'Internal: scheduled_at of the first claimable pending event (an ops alert, or the head of a '
'user with nothing in flight) between p_oldest and p_until; NULL when none.';
REVOKE EXECUTE ON FUNCTION nikita._first_claimable(timestamptz, timestamptz) FROM PUBLIC;
