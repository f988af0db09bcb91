-- Conversation hand-off (DESIGN.md "Conversations"):
--   active --(idle >= conversation_idle_timeout)--> ended --claim--> processing (lease, token)
--   processing --complete--> processed
--   processing --fail / lease expired--> ended, or failed once conversation_max_attempts
--                                         attempts were claimed
-- An attempt is counted when it is claimed, so a worker that dies mid-attempt still uses one;
-- the conversations job returns every expired lease, so nothing stays in processing.
-- The pipeline itself is the game app's; the shim (role nikita_worker) calls claim/complete/
-- fail, which are SECURITY DEFINER and the only functions of this file granted to anyone.

CREATE OR REPLACE FUNCTION nikita._conversation_max_attempts()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max bigint := nikita._setting_bigint('conversation_max_attempts');
BEGIN
    IF v_max IS NULL OR v_max < 1 OR v_max > 100 THEN
        RAISE EXCEPTION 'setting conversation_max_attempts must be between 1 and 100, got %',
            coalesce(v_max::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN v_max::integer;
END
$$;
COMMENT ON FUNCTION nikita._conversation_max_attempts()
IS 'Setting conversation_max_attempts, checked (1..100; 22023 otherwise).';

CREATE OR REPLACE FUNCTION nikita.detect_stale_conversations(
    p_now timestamptz DEFAULT pg_catalog.now()
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    v_idle interval := nikita._setting_interval('conversation_idle_timeout');
    v_max integer := nikita._conversation_max_attempts();
    v_ended integer;
    v_recovered integer;
    v_failed integer;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF v_idle IS NULL OR v_idle <= interval '0' THEN
        RAISE EXCEPTION 'setting conversation_idle_timeout must be positive, got %',
            coalesce(v_idle::text, 'NULL') USING ERRCODE = '22023';
    END IF;

    -- Idle conversations end; ended_at is the last message, when the talk actually stopped.
    UPDATE nikita.conversations AS c
    SET status = 'ended', ended_at = c.last_message_at
    WHERE c.status = 'active' AND c.last_message_at <= p_now - v_idle;
    GET DIAGNOSTICS v_ended = ROW_COUNT;

    -- Expired leases: the attempt is spent; back to ended, or failed when none is left.
    WITH expired AS (
        UPDATE nikita.conversations AS c
        SET
            status = CASE WHEN c.processing_attempts >= v_max THEN 'failed' ELSE 'ended' END,
            error = pg_catalog.format(
                'lease of %s expired at %s (attempt %s of %s)',
                c.locked_by, c.locked_until, c.processing_attempts, v_max
            ),
            locked_by = NULL,
            locked_until = NULL,
            lock_token = NULL
        WHERE c.status = 'processing' AND c.locked_until <= p_now
        RETURNING c.status
    )

    SELECT
        count(*) FILTER (WHERE e.status = 'ended'),
        count(*) FILTER (WHERE e.status = 'failed')
    INTO v_recovered, v_failed
    FROM expired AS e;

    IF v_ended + v_recovered > 0 THEN
        -- One notification per run: the shim claims in batches anyway.
        PERFORM pg_catalog.pg_notify(
            'nikita_conversations',
            pg_catalog.jsonb_build_object('ended', v_ended, 'recovered', v_recovered)::text
        );
    END IF;
    RETURN pg_catalog.jsonb_build_object(
        'ended', v_ended, 'recovered', v_recovered, 'failed', v_failed
    );
END
$$;
COMMENT ON FUNCTION nikita.detect_stale_conversations(timestamptz) IS
'The conversations job, as of p_now: active conversations idle for conversation_idle_timeout '
'become ended, expired processing leases go back to ended (failed after the last attempt); one '
'NOTIFY nikita_conversations when any became claimable. Returns {ended, recovered, failed}.';

CREATE OR REPLACE FUNCTION nikita.claim_conversations(
    p_worker text,
    p_max integer DEFAULT 10,
    p_lease interval DEFAULT '5 minutes'
)
RETURNS TABLE (
    id uuid,
    lock_token uuid,
    user_id uuid,
    platform text,
    started_at timestamptz,
    ended_at timestamptz,
    processing_attempts integer
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_worker IS NULL OR pg_catalog.btrim(p_worker) = '' THEN
        RAISE EXCEPTION 'worker must be a non-empty name' USING ERRCODE = '22023';
    END IF;
    IF p_max IS NULL OR p_max < 1 OR p_max > 1000 THEN
        RAISE EXCEPTION 'max must be between 1 and 1000, got %', coalesce(p_max::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_lease IS NULL OR p_lease < interval '1 second' OR p_lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be between 1 second and 1 day, got %',
            coalesce(p_lease::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT c.id
        FROM nikita.conversations AS c
        WHERE c.status = 'ended'
        ORDER BY c.ended_at, c.id
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    )

    UPDATE nikita.conversations AS c
    SET
        status = 'processing',
        processing_attempts = c.processing_attempts + 1,
        locked_by = pg_catalog.left(p_worker, 200),
        locked_until = pg_catalog.now() + p_lease,
        lock_token = pg_catalog.gen_random_uuid()
    FROM picked AS p
    WHERE c.id = p.id
    RETURNING
        c.id, c.lock_token, c.user_id, c.platform, c.started_at, c.ended_at,
        c.processing_attempts;
END
$$;
COMMENT ON FUNCTION nikita.claim_conversations(text, integer, interval) IS
'Claim up to p_max ended conversations (oldest end first, SKIP LOCKED) for worker p_worker '
'with a lease of p_lease; each claim counts one processing attempt. Returns the lock_token '
'that complete_conversation / fail_conversation need.';

CREATE OR REPLACE FUNCTION nikita.complete_conversation(
    p_id uuid,
    p_lock_token uuid,
    p_summary text,
    p_emotional_tone text
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL OR p_lock_token IS NULL THEN
        RAISE EXCEPTION 'conversation id and lock token must not be null'
            USING ERRCODE = '22004';
    END IF;
    UPDATE nikita.conversations AS c
    SET
        status = 'processed',
        summary = p_summary,
        emotional_tone = p_emotional_tone,
        error = NULL,
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL
    WHERE c.id = p_id AND c.status = 'processing' AND c.lock_token = p_lock_token;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION nikita.complete_conversation(uuid, uuid, text, text) IS
'Mark a claimed conversation processed with its summary and emotional tone. False when the '
'lease was lost (token no longer current): the result is dropped.';

CREATE OR REPLACE FUNCTION nikita.fail_conversation(
    p_id uuid,
    p_lock_token uuid,
    p_error text
)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max integer := nikita._conversation_max_attempts();
    v_status text;
BEGIN
    IF p_id IS NULL OR p_lock_token IS NULL THEN
        RAISE EXCEPTION 'conversation id and lock token must not be null'
            USING ERRCODE = '22004';
    END IF;
    UPDATE nikita.conversations AS c
    SET
        status = CASE WHEN c.processing_attempts >= v_max THEN 'failed' ELSE 'ended' END,
        error = pg_catalog.left(coalesce(p_error, 'unknown error'), 4000),
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL
    WHERE c.id = p_id AND c.status = 'processing' AND c.lock_token = p_lock_token
    RETURNING c.status INTO v_status;
    RETURN v_status;
END
$$;
COMMENT ON FUNCTION nikita.fail_conversation(uuid, uuid, text) IS
'Record a failed processing attempt: back to ended (to be claimed again) while attempts remain, '
'failed after conversation_max_attempts. Returns the new status, NULL when the lease was lost.';

REVOKE EXECUTE ON FUNCTION nikita._conversation_max_attempts(),
nikita.detect_stale_conversations(timestamptz),
nikita.claim_conversations(text, integer, interval),
nikita.complete_conversation(uuid, uuid, text, text),
nikita.fail_conversation(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.claim_conversations(text, integer, interval),
nikita.complete_conversation(uuid, uuid, text, text),
nikita.fail_conversation(uuid, uuid, text) TO nikita_worker;

-- The conversations job's step (job_catalog.step): one step, done at once.
CREATE OR REPLACE FUNCTION nikita._job_conversations_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);
    RETURN pg_catalog.jsonb_build_object(
        'done', true, 'result', nikita.detect_stale_conversations(p_now)
    );
END
$$;
COMMENT ON FUNCTION nikita._job_conversations_step(timestamptz, jsonb) IS
'Internal: the conversations job''s only step: detect_stale_conversations as of p_now, as the '
'owner (p_state unused).';
REVOKE EXECUTE ON FUNCTION nikita._job_conversations_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_conversations_step(timestamptz, jsonb) TO nikita_jobs;
