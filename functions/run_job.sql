-- run_job: how pg_cron runs every job (`CALL nikita.run_job('decay')`), see docs/jobs.md.
--
-- A PROCEDURE, so that it can COMMIT between its steps:
--   1. the job's advisory lock (session level, (job_lock_class(), lock_key)); when another
--      session holds it, a 'skipped' row is written and the call returns at once;
--   2. any 'running' row left by a dead run of this job is failed as abandoned, a 'running' row
--      is written, COMMIT (the run is visible, and survives whatever the job does);
--   3. the job runs inside a subtransaction (an exception block), pinned to one p_now: decay as
--      batches of about decay_batch_size players (ranges of pages of nikita.users), each
--      committed on its own; the others in one step;
--   4. the row becomes 'completed' (result, duration_ms) or 'failed' (error; the job's work is
--      rolled back, the row is not), an ops_alert is queued for a failure, COMMIT, unlock.
-- Consequences: run_job must be CALLed outside a transaction block (it begins with a COMMIT, so
-- inside one it fails at once with SQLSTATE 2D000 before taking any lock), and it cannot be
-- SECURITY DEFINER nor carry SET options (PostgreSQL forbids transaction control there): it
-- runs with the rights of its caller, the pg_cron job's owner (the role nikita_jobs, see
-- sql/0011_jobs_role.sql and cron/schedule.sql).
--
-- Search path (issue 9, item 1): whatever resolves through the caller's search_path could run
-- an object planted in `public` or in a schema named after the caller, with the caller's rights.
-- So run_job pins the path for the transaction as its first statement and again after every
-- COMMIT (a transaction-local setting ends with the transaction), the DECLARE defaults (which
-- run before the first statement) call only qualified functions, and every operator has
-- operands of exactly the types of a pg_catalog operator (`* 1000::numeric`, `->> 'due'::text`),
-- so that nothing would resolve elsewhere even under another path. Everything else runs in the
-- SECURITY DEFINER job_* internals below, which pin search_path like every function here.
--
-- Rights: the jobs role executes run_job and these internals and holds no table privilege; the
-- internals run the job functions and write job_executions as the owner.

CREATE OR REPLACE FUNCTION nikita.queue_job_alert(
    p_job text,
    p_error text,
    p_now timestamptz DEFAULT pg_catalog.now()
)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_chat bigint := nikita.setting_bigint('alert_chat_id');
BEGIN
    p_now := nikita.checked_now(p_now);
    IF v_chat IS NULL THEN
        RETURN NULL;  -- alerts disabled
    END IF;
    -- At most one alert per job per hour: a minutely job failing all day is one alert an hour.
    IF EXISTS (
        SELECT 1
        FROM nikita.job_executions AS e
        WHERE
            e.job_name = p_job
            AND e.started_at > p_now - interval '1 hour'
            AND e.status = 'failed'
            AND e.result ? 'alert_event_id'
    ) THEN
        RETURN NULL;
    END IF;
    RETURN nikita.schedule_event(
        NULL,
        'telegram',
        'ops_alert',
        pg_catalog.jsonb_build_object(
            'chat_id', v_chat,
            'text', pg_catalog.format(
                'nikita-tasks: job %s failed at %s UTC in database %s: %s',
                p_job,
                pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                pg_catalog.current_database(),
                pg_catalog.left(coalesce(p_error, 'unknown error'), 2000)
            )
        ),
        p_now,
        'ops_alert:job_failed:' || p_job
    );
END
$$;
COMMENT ON FUNCTION nikita.queue_job_alert(text, text, timestamptz) IS
'Queue an ops_alert Telegram event to setting alert_chat_id saying job p_job failed with '
'p_error; NULL when no alert chat is set or this job already alerted within the hour. '
'Internal to run_job (SECURITY DEFINER: the jobs role has no right on the events).';

-- The job's lock key, which also validates the name (run_job's only check before its COMMIT).
CREATE OR REPLACE FUNCTION nikita.job_lock_key(p_name text)
RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key integer;
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION 'job name must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.lock_key INTO v_key FROM nikita.job_catalog AS c WHERE c.job_name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job "%"', p_name
            USING ERRCODE = '22023',
                HINT = 'one of: decay, sweep, summary, cleanup, conversations';
    END IF;
    RETURN v_key;
END
$$;
COMMENT ON FUNCTION nikita.job_lock_key(text) IS
'Internal to run_job: the second advisory lock key of job p_name (job_catalog.lock_key). '
'NULL name: 22004; unknown name: 22023.';

CREATE OR REPLACE FUNCTION nikita.job_record_skipped(p_name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO nikita.job_executions (job_name, status, completed_at, duration_ms, result)
    SELECT
        c.job_name, 'skipped', pg_catalog.clock_timestamp(), 0,
        pg_catalog.jsonb_build_object('reason', 'the previous run is still running')
    FROM nikita.job_catalog AS c
    WHERE c.job_name = p_name;
$$;
COMMENT ON FUNCTION nikita.job_record_skipped(text) IS
'Internal to run_job: a skipped job_executions row for job p_name (its lock was held).';

-- Called while this session holds the job's lock: a 'running' row of the job belongs to a dead
-- run. Returns the id of the new 'running' row.
CREATE OR REPLACE FUNCTION nikita.job_record_start(p_name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM nikita.job_lock_key(p_name);
    UPDATE nikita.job_executions AS e
    SET
        status = 'failed',
        completed_at = pg_catalog.clock_timestamp(),
        error = 'abandoned: the run ended without recording a result'
    WHERE e.job_name = p_name AND e.status = 'running';

    INSERT INTO nikita.job_executions (job_name, status)
    VALUES (p_name, 'running')
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION nikita.job_record_start(text) IS
'Internal to run_job: fail the running rows of job p_name as abandoned and write a new running '
'row; returns its id. Only while holding the job''s lock.';

CREATE OR REPLACE FUNCTION nikita.job_record_end(p_id bigint, p_result jsonb, p_error text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE nikita.job_executions AS e
    SET
        status = CASE WHEN p_error IS NULL THEN 'completed' ELSE 'failed' END,
        completed_at = pg_catalog.clock_timestamp(),
        result = coalesce(p_result, '{}'::jsonb),
        error = p_error,
        duration_ms = (
            extract(EPOCH FROM pg_catalog.clock_timestamp() - e.started_at) * 1000::numeric
        )::integer
    WHERE e.id = p_id AND e.status = 'running';
$$;
COMMENT ON FUNCTION nikita.job_record_end(bigint, jsonb, text) IS
'Internal to run_job: settle running row p_id as completed with p_result, or as failed with '
'p_error (and p_result) when p_error is not NULL.';

CREATE OR REPLACE FUNCTION nikita.job_decay_pages()
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nikita.decay_batch_pages();
$$;
COMMENT ON FUNCTION nikita.job_decay_pages() IS
'Internal to run_job: nikita.decay_batch_pages() as the owner.';

CREATE OR REPLACE FUNCTION nikita.job_decay_batch(
    p_now timestamptz,
    p_page bigint,
    p_pages integer
)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nikita.apply_decay_batch(p_now, p_page, p_pages);
$$;
COMMENT ON FUNCTION nikita.job_decay_batch(timestamptz, bigint, integer) IS
'Internal to run_job: one decay batch, nikita.apply_decay_batch(p_now, p_page, p_pages), as the '
'owner.';

CREATE OR REPLACE FUNCTION nikita.job_step(p_name text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita.checked_now(p_now);
    RETURN CASE p_name
        WHEN 'sweep' THEN nikita.sweep_events(p_now)
        WHEN 'summary' THEN nikita.generate_daily_summaries(p_now)
        WHEN 'cleanup' THEN nikita.cleanup(p_now)
        WHEN 'conversations' THEN nikita.detect_stale_conversations(p_now)
    END;
END
$$;
COMMENT ON FUNCTION nikita.job_step(text, timestamptz) IS
'Internal to run_job: the one-step job p_name (sweep, summary, cleanup, conversations) as of '
'p_now, as the owner; its JSON result (NULL for another name).';

CREATE OR REPLACE PROCEDURE nikita.run_job(p_name text)
LANGUAGE plpgsql
AS $$
DECLARE
    -- These run before the first statement, under the caller's search_path: qualified calls only.
    v_now pg_catalog.timestamptz := pg_catalog.now();
    v_class integer := nikita.job_lock_class();
    v_key integer;
    v_id bigint;
    v_result pg_catalog.jsonb;
    v_error pg_catalog.text;
    v_state pg_catalog.text;
    v_alert pg_catalog.uuid;
    v_alert_error pg_catalog.text;
    -- decay
    v_pages integer;
    v_page bigint := 0;
    v_batch pg_catalog.jsonb;
    v_t0 pg_catalog.timestamptz;
    v_ms numeric;
    v_max_ms numeric := 0;
    v_batches integer := 0;
    v_due bigint := 0;
    v_decayed bigint := 0;
    v_game_overs bigint := 0;
    v_points numeric := 0;
    v_skipped bigint := 0;
    -- Players decay skipped (one bad row never stops the run): at most 20 kept, as per batch.
    v_skipped_rows pg_catalog.jsonb := '[]'::pg_catalog.jsonb;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    v_key := nikita.job_lock_key(p_name);  -- NULL: 22004; unknown: 22023

    -- Outside a transaction block this ends the caller's (empty) transaction; inside one it
    -- raises 2D000 before any lock is taken.
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    IF NOT pg_catalog.pg_try_advisory_lock(v_class, v_key) THEN
        PERFORM nikita.job_record_skipped(p_name);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        RETURN;
    END IF;

    -- This session holds the job's lock: a 'running' row of this job belongs to a dead run.
    v_id := nikita.job_record_start(p_name);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    IF p_name = 'decay'::text THEN
        BEGIN
            v_pages := nikita.job_decay_pages();
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        -- One transaction per batch (a range of pages of nikita.users), all pinned to v_now.
        WHILE v_error IS NULL LOOP
            v_t0 := pg_catalog.clock_timestamp();
            BEGIN
                v_batch := nikita.job_decay_batch(v_now, v_page, v_pages);
            EXCEPTION WHEN OTHERS OR query_canceled THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
            END;
            EXIT WHEN v_error IS NOT NULL;
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            v_ms := extract(EPOCH FROM pg_catalog.clock_timestamp() - v_t0) * 1000::numeric;
            v_max_ms := greatest(v_max_ms, v_ms);
            v_batches := v_batches + 1;
            v_due := v_due + (v_batch ->> 'due'::text)::bigint;
            v_decayed := v_decayed + (v_batch ->> 'decayed'::text)::bigint;
            v_game_overs := v_game_overs + (v_batch ->> 'game_overs'::text)::bigint;
            v_points := v_points + (v_batch ->> 'points'::text)::numeric;
            v_skipped := v_skipped + coalesce((v_batch ->> 'skipped'::text)::bigint, 0::bigint);
            IF pg_catalog.jsonb_array_length(v_skipped_rows) < 20 THEN
                v_skipped_rows := pg_catalog.jsonb_path_query_array(
                    v_skipped_rows
                    || coalesce(v_batch -> 'skipped_rows'::text, '[]'::pg_catalog.jsonb),
                    '$[0 to 19]'
                );
            END IF;
            v_page := (v_batch ->> 'next_page'::text)::bigint;
            EXIT WHEN v_page >= (v_batch ->> 'table_pages'::text)::bigint;
        END LOOP;
        v_result := pg_catalog.jsonb_build_object(
            'decayed', v_decayed,
            'game_overs', v_game_overs,
            'points', v_points,
            'due', v_due,
            'batches', v_batches,
            'skipped', v_skipped,
            'skipped_rows', v_skipped_rows,
            'max_batch_ms', pg_catalog.round(v_max_ms, 1),
            'p_now', v_now
        );
    ELSE
        BEGIN
            v_result := nikita.job_step(p_name, v_now);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        IF v_result IS NOT NULL AND pg_catalog.jsonb_typeof(v_result) <> 'object'::text THEN
            v_result := pg_catalog.jsonb_build_object('result', v_result);
        END IF;
    END IF;

    IF v_error IS NOT NULL THEN
        -- Cut to fit job_executions.error (8,000, sql/0009): the failure must be recorded.
        v_error := pg_catalog.left(v_error, 7900) || ' (SQLSTATE '::text || v_state || ')'::text;
        BEGIN
            v_alert := nikita.queue_job_alert(p_name, v_error, v_now);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_alert_error = MESSAGE_TEXT;
        END;
        -- A failed decay keeps the counts of the batches that committed before the failure.
        v_result := CASE
            WHEN p_name = 'decay'::text THEN coalesce(v_result, '{}'::pg_catalog.jsonb)
            ELSE '{}'::pg_catalog.jsonb
        END
        || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'alert_event_id', v_alert, 'alert_error', v_alert_error
        ));
    END IF;
    PERFORM nikita.job_record_end(v_id, v_result, v_error);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM pg_catalog.pg_advisory_unlock(v_class, v_key);
END
$$;
COMMENT ON PROCEDURE nikita.run_job (text) IS
'Run job p_name (decay, sweep, summary, cleanup, conversations) as pg_cron does: CALL '
'nikita.run_job(''decay'') outside a transaction block. Advisory lock per job (overlap: a '
'skipped row), a job_executions row running -> completed | failed that survives the job''s '
'rollback, an ops_alert on failure; decay commits batch by batch. Unknown name: 22023. '
'Pins search_path itself (a procedure that commits cannot carry SET). Executable by the '
'jobs role nikita_jobs (which pg_cron runs it as) and the owner.';

-- Internals: nobody but the jobs role (and the owner) executes them.
REVOKE EXECUTE ON FUNCTION
nikita.queue_job_alert(text, text, timestamptz),
nikita.job_lock_key(text),
nikita.job_record_skipped(text),
nikita.job_record_start(text),
nikita.job_record_end(bigint, jsonb, text),
nikita.job_decay_pages(),
nikita.job_decay_batch(timestamptz, bigint, integer),
nikita.job_step(text, timestamptz)
FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE nikita.run_job(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.job_lock_class(),
nikita.queue_job_alert(text, text, timestamptz),
nikita.job_lock_key(text),
nikita.job_record_skipped(text),
nikita.job_record_start(text),
nikita.job_record_end(bigint, jsonb, text),
nikita.job_decay_pages(),
nikita.job_decay_batch(timestamptz, bigint, integer),
nikita.job_step(text, timestamptz)
TO nikita_jobs;
GRANT EXECUTE ON PROCEDURE nikita.run_job(text) TO nikita_jobs;
