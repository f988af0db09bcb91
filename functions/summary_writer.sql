-- The summary writer's hand-off (columns in sql/0015_summary_writer.sql):
--   pending --claim--> processing (lease, token, one attempt counted)
--   processing --complete--> written (nikita_summary_text, emotional_tone)
--   processing --fail (retryable) / lease expired--> pending, or failed once
--                                                     summary_writer_max_attempts were claimed
--   processing --fail (not retryable)--> failed
-- Mirrors conversations (functions/conversations.sql). Expired leases are returned by
-- claim_summaries itself, before it picks: a writer exists only where claims happen, so no job
-- has to sweep for it. summary_text (the job's factual text) is never touched here.
-- claim/complete/fail are SECURITY DEFINER and granted to nikita_worker only (the shim).

CREATE OR REPLACE FUNCTION nikita._summary_writer_max_attempts()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max bigint := nikita._setting_bigint('summary_writer_max_attempts');
BEGIN
    -- Second line: CHECK settings_summary_writer_valid refuses such a value on write.
    IF v_max IS NULL OR v_max < 1 OR v_max > 100 THEN
        RAISE EXCEPTION 'setting summary_writer_max_attempts must be between 1 and 100, got %',
            coalesce(v_max::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN v_max::integer;
END
$$;
COMMENT ON FUNCTION nikita._summary_writer_max_attempts()
IS 'Setting summary_writer_max_attempts, checked (1..100; 22023 otherwise).';

CREATE OR REPLACE FUNCTION nikita.claim_summaries(
    p_worker text,
    p_max integer DEFAULT 10,
    p_lease interval DEFAULT '5 minutes'
)
RETURNS TABLE (
    id bigint,
    lock_token uuid,
    user_id uuid,
    date date,
    timezone text,
    day_start timestamptz,
    day_end timestamptz,
    score_start numeric,
    score_end numeric,
    decay_applied numeric,
    conversations_count integer,
    summary_text text,
    chapter smallint,
    game_status text,
    writer_attempts integer
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max_attempts integer := nikita._summary_writer_max_attempts();
BEGIN
    IF p_worker IS NULL OR nikita.is_blank(p_worker) THEN
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

    -- Expired leases: the attempt is spent; back to pending, or failed when none is left.
    -- SKIP LOCKED: a row another session is settling right now is its business.
    WITH expired AS (
        SELECT s.id FROM nikita.daily_summaries AS s
        WHERE s.writer_state = 'processing' AND s.locked_until <= pg_catalog.now()
        FOR UPDATE SKIP LOCKED
    )

    UPDATE nikita.daily_summaries AS s
    SET
        writer_state = CASE
            WHEN s.writer_attempts >= v_max_attempts THEN 'failed' ELSE 'pending'
        END,
        writer_error = pg_catalog.left(pg_catalog.format(
            'lease of %s expired at %s (attempt %s of %s)',
            s.locked_by, s.locked_until, s.writer_attempts, v_max_attempts
        ), 4000),
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL
    FROM expired AS e
    WHERE s.id = e.id;

    RETURN QUERY
    WITH picked AS (
        SELECT s.id
        FROM nikita.daily_summaries AS s
        WHERE s.writer_state = 'pending'
        ORDER BY s.created_at, s.id
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ),

    claimed AS (
        UPDATE nikita.daily_summaries AS s
        SET
            writer_state = 'processing',
            writer_attempts = s.writer_attempts + 1,
            locked_by = pg_catalog.left(p_worker, 200),
            locked_until = pg_catalog.now() + p_lease,
            lock_token = pg_catalog.gen_random_uuid()
        FROM picked AS p
        WHERE s.id = p.id
        RETURNING s.*
    )

    SELECT
        c.id, c.lock_token, c.user_id, c.date, u.timezone,
        c.date::timestamp AT TIME ZONE u.timezone,
        (c.date + 1)::timestamp AT TIME ZONE u.timezone,
        c.score_start::numeric, c.score_end::numeric, c.decay_applied::numeric,
        c.conversations_count, c.summary_text, u.chapter, u.game_status, c.writer_attempts
    FROM claimed AS c
    JOIN nikita.users AS u ON u.id = c.user_id
    ORDER BY c.created_at, c.id;
END
$$;
COMMENT ON FUNCTION nikita.claim_summaries(text, integer, interval) IS
'Claim up to p_max pending daily summaries (oldest first, SKIP LOCKED) for worker p_worker with '
'a lease of p_lease; each claim counts one writer attempt. First returns expired leases to '
'pending (failed after summary_writer_max_attempts). Returns the day''s facts (date is the '
'player''s local date; day_start/day_end its bounds; chapter and game_status are the player''s '
'current ones; summary_text the factual text) and the lock_token that complete_summary / '
'fail_summary need. 22023: blank worker, max outside 1..1000, lease outside 1 s..1 day.';

CREATE OR REPLACE FUNCTION nikita.complete_summary(
    p_id bigint,
    p_lock_token uuid,
    p_text text,
    p_emotional_tone text DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL OR p_lock_token IS NULL THEN
        RAISE EXCEPTION 'summary id and lock token must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_text IS NULL OR nikita.is_blank(p_text) THEN
        RAISE EXCEPTION 'summary text must not be blank' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(p_text) > 8000 THEN
        RAISE EXCEPTION 'summary text must be at most 8000 characters, got %',
            pg_catalog.length(p_text) USING ERRCODE = '22001';
    END IF;
    IF p_emotional_tone IS NOT NULL AND nikita.is_blank(p_emotional_tone) THEN
        RAISE EXCEPTION 'emotional tone must be NULL or not blank' USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(p_emotional_tone) > 200 THEN
        RAISE EXCEPTION 'emotional tone must be at most 200 characters, got %',
            pg_catalog.length(p_emotional_tone) USING ERRCODE = '22001';
    END IF;
    UPDATE nikita.daily_summaries AS s
    SET
        writer_state = 'written',
        nikita_summary_text = p_text,
        emotional_tone = p_emotional_tone,
        written_at = pg_catalog.now(),
        writer_error = NULL,
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL
    WHERE s.id = p_id AND s.writer_state = 'processing' AND s.lock_token = p_lock_token;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION nikita.complete_summary(bigint, uuid, text, text) IS
'Record the writer''s text (and optional emotional tone) of a claimed daily summary: written. '
'summary_text (the facts) is kept. False when the lease was lost (token no longer current): '
'the text is dropped. 22004: NULL id or token; 22023: blank text, blank tone; 22001: text over '
'8000 or tone over 200 characters (nothing written).';

CREATE OR REPLACE FUNCTION nikita.fail_summary(
    p_id bigint,
    p_lock_token uuid,
    p_error text,
    p_retryable boolean DEFAULT true
)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max integer := nikita._summary_writer_max_attempts();
    v_state text;
BEGIN
    IF p_id IS NULL OR p_lock_token IS NULL THEN
        RAISE EXCEPTION 'summary id and lock token must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE nikita.daily_summaries AS s
    SET
        writer_state = CASE
            WHEN coalesce(p_retryable, true) AND s.writer_attempts < v_max THEN 'pending'
            ELSE 'failed'
        END,
        writer_error = pg_catalog.left(coalesce(p_error, 'unknown error'), 4000),
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL
    WHERE s.id = p_id AND s.writer_state = 'processing' AND s.lock_token = p_lock_token
    RETURNING s.writer_state INTO v_state;
    RETURN v_state;
END
$$;
COMMENT ON FUNCTION nikita.fail_summary(bigint, uuid, text, boolean) IS
'Record a failed writer attempt; the factual summary_text stays. Retryable (default; NULL '
'counts as retryable): back to pending while attempts remain, failed after '
'summary_writer_max_attempts; not retryable: failed. Returns the new state, NULL when the lease '
'was lost. 22004: NULL id or token.';

-- One NOTIFY nikita_summaries per statement that inserted pending rows (the summary job inserts
-- each step's rows, up to 1,000 players, in one statement): a running writer starts at once
-- instead of at its next poll. Payload: the number of pending rows inserted.
CREATE OR REPLACE FUNCTION nikita._summaries_notify_inserted()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
-- @plpgsql_check_options: newtable = new_rows
DECLARE
    v_n bigint;
BEGIN
    SELECT count(*) INTO v_n FROM new_rows AS n WHERE n.writer_state = 'pending';
    IF v_n > 0 THEN
        PERFORM pg_catalog.pg_notify('nikita_summaries', v_n::text);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION nikita._summaries_notify_inserted()
IS 'Trigger (AFTER INSERT, statement) of daily_summaries: NOTIFY nikita_summaries with the '
'number of pending rows inserted, when there are any.';

CREATE OR REPLACE TRIGGER daily_summaries_notify_inserted
AFTER INSERT ON nikita.daily_summaries
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION nikita._summaries_notify_inserted();

REVOKE EXECUTE ON FUNCTION nikita._summary_writer_max_attempts(),
nikita._summaries_notify_inserted(),
nikita.claim_summaries(text, integer, interval),
nikita.complete_summary(bigint, uuid, text, text),
nikita.fail_summary(bigint, uuid, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.claim_summaries(text, integer, interval),
nikita.complete_summary(bigint, uuid, text, text),
nikita.fail_summary(bigint, uuid, text, boolean) TO nikita_worker;
