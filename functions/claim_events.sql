-- Claiming due events: oldest first, FOR UPDATE SKIP LOCKED on the partial index
-- scheduled_events_claim_idx, a fresh lock token and lease per row, at most one event in flight
-- per user.
--
-- Per-user exclusivity, also between concurrent claimers (READ COMMITTED), in two statements:
--  1. candidates: a due pending event that is its user's head - the user's first pending
--     event in the order key (coalesce(order_at, scheduled_at), seq), not past max_lateness
--     (0010) - so one batch never holds two events of a user and a user's later event waits
--     while the head waits for its retry or defer time; of a user not seen in flight by this
--     statement's snapshot, row-locked (SKIP LOCKED), and for which a transaction-level
--     advisory try-lock on the user succeeds (a user being claimed by another transaction is
--     skipped);
--  2. the update to 'sending', in a second statement whose snapshot is taken after every lock
--     of step 1 was granted: a candidate whose user has an in-flight ('sending') row in that
--     snapshot is dropped. A claimer that committed before we got a user's lock is therefore
--     seen, one that has not cannot hold it. Step 1's snapshot alone could miss a claim
--     committed after the statement started.
-- One fresh snapshot per claim instead of one per candidate (the former per-candidate PL/pgSQL
-- helper cost ~50 µs a row under load; see docs/queue.md, "Performance").
-- Events without a user (ops_alert) have no per-user limit.
--
-- p_max_voice (the shim: its free call slots) caps the voice events of one claim, so that a
-- voice event is claimed only when a call can start at once. With a cap, voice candidates are
-- collected first (at most the cap, from the voice rows' own index), then the other platforms,
-- skipping the users already taken (the two statements have different snapshots: a user's head
-- can change in between).

-- The 3-argument form is replaced by the one with p_max_voice (same defaults for old callers).
DROP FUNCTION IF EXISTS nikita.claim_events(text, integer, interval);

CREATE OR REPLACE FUNCTION nikita.claim_events(
    p_worker text,
    p_max integer DEFAULT 50,
    p_lease interval DEFAULT '2 minutes',
    p_max_voice integer DEFAULT NULL
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
    v_ids uuid[] := ARRAY[]::uuid[];
    v_users uuid[] := ARRAY[]::uuid[];
    v_voice boolean := false;
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
    IF p_max_voice < 0 THEN
        RAISE EXCEPTION 'max_voice must not be negative, got %', p_max_voice
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'claim_events must run in a READ COMMITTED transaction, not %',
            pg_catalog.current_setting('transaction_isolation')
            USING ERRCODE = '25000',
            HINT = 'per-user exclusivity relies on fresh snapshots; use autocommit';
    END IF;

    -- Events later than max_lateness are never delivered: sweep_events fails them.
    v_oldest := pg_catalog.now() - nikita._setting_interval('max_lateness');

    -- 1. Candidates, in this statement's snapshot: row-locked (SKIP LOCKED) and, for players,
    --    advisory-locked. The CASE keeps the order of the checks: only a user's head, of a user
    --    not known to be in flight, costs a try-lock. Without a voice cap one statement over
    --    every platform; with a cap, first the voice statement (at most the cap; none for 0),
    --    then the same over the other platforms. The two differ only in the platform filter
    --    and the index it lets the planner take: keep their CASE in step.
    IF p_max_voice > 0 THEN
        SELECT pg_catalog.array_agg(p.id),
            pg_catalog.array_agg(p.user_id) FILTER (WHERE p.user_id IS NOT NULL)
        INTO v_ids, v_users
        FROM (
            SELECT e.id, e.user_id
            FROM nikita.scheduled_events AS e
            WHERE e.status = 'pending'
              AND e.platform = 'voice'
              AND e.scheduled_at <= pg_catalog.now()
              AND e.scheduled_at >= v_oldest
              AND CASE
                  WHEN e.user_id IS NULL THEN true
                  WHEN e.user_id IN (
                      SELECT s.user_id FROM nikita.scheduled_events AS s
                      WHERE s.status = 'sending'
                  ) THEN false
                  WHEN (
                      SELECT o.seq FROM nikita.scheduled_events AS o
                      WHERE o.user_id = e.user_id
                        AND o.status = 'pending'
                        AND o.scheduled_at >= v_oldest
                      ORDER BY o.user_id, coalesce(o.order_at, o.scheduled_at), o.seq
                      LIMIT 1
                  ) <> e.seq THEN false
                  ELSE pg_catalog.pg_try_advisory_xact_lock(
                      nikita._user_lock_class(), pg_catalog.hashtext(e.user_id::text)
                  )
              END
            ORDER BY e.scheduled_at
            LIMIT least(p_max_voice, p_max)
            FOR UPDATE SKIP LOCKED
        ) AS p;
        v_ids := coalesce(v_ids, ARRAY[]::uuid[]);
        v_users := coalesce(v_users, ARRAY[]::uuid[]);
        v_voice := pg_catalog.cardinality(v_ids) > 0;
    END IF;

    IF pg_catalog.cardinality(v_ids) < p_max THEN
        SELECT v_ids || coalesce(pg_catalog.array_agg(p.id), ARRAY[]::uuid[]),
            v_voice OR coalesce(pg_catalog.bool_or(p.platform = 'voice'), false)
        INTO v_ids, v_voice
        FROM (
            SELECT e.id, e.platform
            FROM nikita.scheduled_events AS e
            WHERE e.status = 'pending'
              AND e.scheduled_at <= pg_catalog.now()
              AND e.scheduled_at >= v_oldest
              -- a voice cap: voice was the statement above's
              AND (p_max_voice IS NULL OR e.platform <> 'voice')
              AND CASE
                  WHEN e.user_id IS NULL THEN true
                  -- a user taken by the voice statement
                  WHEN e.user_id = ANY(v_users) THEN false
                  -- users known (to this statement's snapshot) to have an event in flight: one
                  -- hashed set per statement, so their queued rows cost a hash probe
                  WHEN e.user_id IN (
                      SELECT s.user_id FROM nikita.scheduled_events AS s
                      WHERE s.status = 'sending'
                  ) THEN false
                  -- only the user's head: one index-only probe of
                  -- scheduled_events_user_order_idx, whose order the ORDER BY names so that the
                  -- planner takes it even before the table has statistics. A head past
                  -- max_lateness, left to the sweep, does not hold the user's newer events
                  -- back; a head waiting for its retry or defer time (scheduled_at in the
                  -- future, so not a candidate itself) does.
                  WHEN (
                      SELECT o.seq FROM nikita.scheduled_events AS o
                      WHERE o.user_id = e.user_id
                        AND o.status = 'pending'
                        AND o.scheduled_at >= v_oldest
                      ORDER BY o.user_id, coalesce(o.order_at, o.scheduled_at), o.seq
                      LIMIT 1
                  ) <> e.seq THEN false
                  -- a user another claimer is claiming right now is skipped
                  ELSE pg_catalog.pg_try_advisory_xact_lock(
                      nikita._user_lock_class(), pg_catalog.hashtext(e.user_id::text)
                  )
              END
            ORDER BY e.scheduled_at
            LIMIT p_max - pg_catalog.cardinality(v_ids)
            FOR UPDATE SKIP LOCKED
        ) AS p;
    END IF;

    IF pg_catalog.cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;

    -- Opt-in (docs/shim.md, "Telegram durability"): a claim of Telegram events only commits
    -- asynchronously when the session asks for it. A claim holding a voice event stays
    -- synchronous whatever the session says: a call is never placed twice.
    IF NOT v_voice
        AND pg_catalog.current_setting('nikita.telegram_durability', true) = 'async' THEN
        PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
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
COMMENT ON FUNCTION nikita.claim_events(text, integer, interval, integer)
IS 'Claim up to p_max due pending events (oldest first, SKIP LOCKED) for worker p_worker with a '
'lease of p_lease: status sending, a fresh lock_token, attempts + 1 (returned: first delivery '
'= 1). At most p_max_voice of them voice events (NULL: no limit; 0: none). Per user only the '
'head (first pending event by the time the app asked for, then creation order) and at most one '
'event in flight, also across concurrent claimers; ops_alert events without a user are not '
'limited. Events more than max_lateness late are left to sweep_events. A session with '
'nikita.telegram_durability = async commits a claim without voice events asynchronously. '
'Must run in READ '
'COMMITTED (25000 otherwise); bad arguments: 22004 (null worker, max, lease), 22023 (worker '
'length, max outside 1..10000, lease outside 1 s..1 day, negative max_voice).';
REVOKE EXECUTE ON FUNCTION nikita.claim_events(text, integer, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.claim_events(text, integer, interval, integer) TO nikita_worker;
