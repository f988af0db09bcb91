-- Claiming due events: one statement, oldest first, FOR UPDATE SKIP LOCKED on the partial index
-- scheduled_events_claim_idx, a fresh lock token and lease per row, at most one event in flight
-- per user.
--
-- Per-user exclusivity, also between concurrent claimers (READ COMMITTED):
--  1. a candidate is the user's oldest pending event (no older pending row of the same user), so
--     one batch never holds two events of a user;
--  2. nikita.queue_try_claim_user() takes a transaction-level advisory lock on the user
--     (try-lock: a user being claimed by another transaction is skipped), and only then looks
--     for an in-flight ('sending') row of the user with a fresh snapshot. A claimer that
--     committed before we got the lock is therefore seen, one that has not cannot hold it.
--     The statement's own snapshot could miss a claim committed after the statement started.
-- Events without a user (ops_alert) have no per-user limit.

CREATE OR REPLACE FUNCTION nikita.queue_try_claim_user(p_user_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE COST 10000
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Key space (two int4 keys): 0x6e6b7175 ('nkqu') and the user's hash. Colliding users
    -- merely skip each other for the length of one claim transaction.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(1852535157, pg_catalog.hashtext(p_user_id::text))
    THEN
        RETURN false;
    END IF;
    -- VOLATILE: this query runs with a snapshot taken now, after the lock was granted.
    RETURN NOT EXISTS (
        SELECT 1 FROM nikita.scheduled_events AS s
        WHERE s.user_id = p_user_id AND s.status = 'sending'
    );
END
$$;
COMMENT ON FUNCTION nikita.queue_try_claim_user(uuid)
IS 'Internal (claim_events): advisory-lock the user for this transaction, then true when the '
'user has no event in flight, looked up with a fresh snapshot.';
REVOKE EXECUTE ON FUNCTION nikita.queue_try_claim_user(uuid) FROM PUBLIC;

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
-- The high COST of queue_try_claim_user inflates the estimate past jit_above_cost; compiling the
-- plan would cost ~15 ms for a statement that runs in a few.
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_oldest timestamptz;
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

    RETURN QUERY
    WITH picked AS (
        SELECT e.id
        FROM nikita.scheduled_events AS e
        WHERE e.status = 'pending'
          AND e.scheduled_at <= pg_catalog.now()
          AND e.scheduled_at >= v_oldest
          AND (
              e.user_id IS NULL
              OR (
                  -- the user's oldest pending event (one probe of
                  -- scheduled_events_user_pending_idx); one past max_lateness, left to the
                  -- sweep, does not hold the user's newer events back
                  NOT EXISTS (
                      SELECT 1 FROM nikita.scheduled_events AS o
                      WHERE o.user_id = e.user_id
                        AND o.status = 'pending'
                        AND o.scheduled_at >= v_oldest
                        AND (o.scheduled_at, o.id) < (e.scheduled_at, e.id)
                  )
                  -- users known (to this statement's snapshot) to have an event in flight:
                  -- one hashed set per statement, so their queued rows cost a hash probe
                  AND NOT EXISTS (
                      SELECT 1 FROM nikita.scheduled_events AS s
                      WHERE s.user_id = e.user_id AND s.status = 'sending'
                  )
                  -- lock the user, then look for its event in flight with a fresh snapshot
                  AND nikita.queue_try_claim_user(e.user_id)
              )
          )
        ORDER BY e.scheduled_at
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ),

    claimed AS (
        UPDATE nikita.scheduled_events AS e
        SET status = 'sending',
            attempts = e.attempts + 1,
            locked_by = p_worker,
            locked_until = pg_catalog.now() + p_lease,
            lock_token = pg_catalog.gen_random_uuid()
        FROM picked
        WHERE e.id = picked.id
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
