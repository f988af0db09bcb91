-- Claiming due events: oldest first, FOR UPDATE SKIP LOCKED on the partial index
-- scheduled_events_claim_idx, a fresh lock token and lease per row, at most one event in flight
-- per user.
--
-- Per-user exclusivity, also between concurrent claimers (READ COMMITTED), in two statements:
--  1. candidates: a user's oldest pending event (no older pending row of the same user, so one
--     batch never holds two events of a user), of a user not seen in flight by this statement's
--     snapshot, row-locked (SKIP LOCKED), and for which a transaction-level advisory try-lock
--     on the user succeeds (a user being claimed by another transaction is skipped);
--  2. the update to 'sending', in a second statement whose snapshot is taken after every lock
--     of step 1 was granted: a candidate whose user has an in-flight ('sending') row in that
--     snapshot is dropped. A claimer that committed before we got a user's lock is therefore
--     seen, one that has not cannot hold it. Step 1's snapshot alone could miss a claim
--     committed after the statement started.
-- One fresh snapshot per claim instead of one per candidate (the former per-candidate PL/pgSQL
-- helper cost ~50 µs a row under load; see docs/queue.md, "Performance").
-- Events without a user (ops_alert) have no per-user limit.

CREATE OR REPLACE FUNCTION nikita.claim_events(
    p_worker text,
    p_max integer DEFAULT 50,
    p_lease interval DEFAULT '2 minutes'
)
RETURNS TABLE (
    id uuid,
    lock_token uuid,
    user_id uuid,
    platform text,
    event_type text,
    content jsonb,
    scheduled_at timestamptz,
    attempts integer
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The candidate scan's estimate (the whole due range before LIMIT) can exceed jit_above_cost;
-- compiling the plan would cost ~15 ms for a statement that runs in a few.
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_oldest timestamptz;
    v_ids uuid[];
BEGIN
    IF p_worker IS NULL THEN
        RAISE EXCEPTION 'worker must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.length(p_worker) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'worker must be 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    IF p_max IS NULL THEN
        RAISE EXCEPTION 'max must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_max NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max must be between 1 and 10000, got %', p_max USING ERRCODE = '22023';
    END IF;
    IF p_lease IS NULL THEN
        RAISE EXCEPTION 'lease must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_lease < interval '1 second' OR p_lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be between 1 second and 1 day, got %', p_lease
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'claim_events must run in a READ COMMITTED transaction, not %',
            pg_catalog.current_setting('transaction_isolation')
            USING ERRCODE = '25000',
            HINT = 'per-user exclusivity relies on fresh snapshots; use autocommit';
    END IF;

    -- Events later than max_lateness are never delivered: sweep_events fails them.
    v_oldest := pg_catalog.now() - nikita.setting_interval('max_lateness');

    -- 1. Candidates, in this statement's snapshot: row-locked (SKIP LOCKED) and, for players,
    --    advisory-locked. The CASE keeps the order of the checks: only a user's oldest pending
    --    event, of a user not known to be in flight, costs a try-lock.
    SELECT pg_catalog.array_agg(p.id) INTO v_ids
    FROM (
        SELECT e.id
        FROM nikita.scheduled_events AS e
        WHERE e.status = 'pending'
          AND e.scheduled_at <= pg_catalog.now()
          AND e.scheduled_at >= v_oldest
          AND CASE
              WHEN e.user_id IS NULL THEN true
              -- users known (to this statement's snapshot) to have an event in flight: one
              -- hashed set per statement, so their queued rows cost a hash probe
              WHEN e.user_id IN (
                  SELECT s.user_id FROM nikita.scheduled_events AS s
                  WHERE s.status = 'sending'
              ) THEN false
              -- only the user's oldest pending event (one probe of
              -- scheduled_events_user_pending_idx, whose order the ORDER BY names so that the
              -- planner takes it even before the table has statistics); one past
              -- max_lateness, left to the sweep, does not hold the user's newer events back
              WHEN (
                  SELECT o.id FROM nikita.scheduled_events AS o
                  WHERE o.user_id = e.user_id
                    AND o.status = 'pending'
                    AND o.scheduled_at >= v_oldest
                  ORDER BY o.user_id, o.scheduled_at, o.id
                  LIMIT 1
              ) <> e.id THEN false
              -- a user another claimer is claiming right now is skipped
              ELSE pg_catalog.pg_try_advisory_xact_lock(
                  1852535157, pg_catalog.hashtext(e.user_id::text)
              )
          END
        ORDER BY e.scheduled_at
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ) AS p;

    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- 2. A new statement, so a new snapshot, taken after every lock of step 1 was granted: a
    --    claim of one of these users committed by another claimer is visible now, and one
    --    not yet committed would hold the user's lock. Users with an event in flight drop out.
    RETURN QUERY
    WITH claimed AS (
        UPDATE nikita.scheduled_events AS e
        SET status = 'sending',
            attempts = e.attempts + 1,
            locked_by = p_worker,
            locked_until = pg_catalog.now() + p_lease,
            lock_token = pg_catalog.gen_random_uuid(),
            updated_at = pg_catalog.now()
        WHERE e.id = ANY(v_ids)
          AND (
              e.user_id IS NULL
              OR NOT EXISTS (
                  SELECT 1 FROM nikita.scheduled_events AS s
                  WHERE s.user_id = e.user_id AND s.status = 'sending'
              )
          )
        RETURNING e.id, e.lock_token, e.user_id, e.platform, e.event_type, e.content,
        e.scheduled_at, e.attempts
    )

    SELECT c.id, c.lock_token, c.user_id, c.platform, c.event_type, c.content, c.scheduled_at,
        c.attempts
    FROM claimed AS c
    ORDER BY c.scheduled_at;
END
$$;
COMMENT ON FUNCTION nikita.claim_events(text, integer, interval)
IS 'Claim up to p_max due pending events (oldest first, SKIP LOCKED) for worker p_worker with a '
'lease of p_lease: status sending, a fresh lock_token, attempts + 1 (returned: first delivery '
'= 1). At most one event in flight per user, also across concurrent claimers; ops_alert '
'events without a user are not limited. Events more than max_lateness late are left to '
'sweep_events. Must run in READ COMMITTED (25000 otherwise); bad arguments: 22004, 22023.';
REVOKE EXECUTE ON FUNCTION nikita.claim_events(text, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.claim_events(text, integer, interval) TO nikita_worker;
