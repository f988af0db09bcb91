-- run_job: how pg_cron runs every job (`CALL nikita.run_job('decay')`), see docs/jobs.md.
-- It knows no job: the catalog (functions/job_catalog.sql) names each job's step function, and
-- the job owns its batching and its counters.
--
-- A PROCEDURE, so that it can COMMIT between its steps:
--   1. the job's advisory lock (session level, (_job_lock_class(), lock_key)); when another
--      session holds it, a 'skipped' row is written and the call returns at once;
--   2. any 'running' row left by a dead run of this job is failed as abandoned, a 'running' row
--      is written, COMMIT (the run is visible, and survives whatever the job does);
--   3. the job's step runs, each call inside a subtransaction (an exception block) and pinned
--      to one p_now, with the state the previous call returned, COMMIT after each call until
--      one says done (a one-step job: the first);
--   4. the row becomes 'completed' (the last state's result, duration_ms) or 'failed' (error;
--      the failing step is rolled back, the steps committed before it and the row are not, and
--      the row keeps the last committed state's result), an ops_alert is queued for a failure,
--      COMMIT, unlock.
-- Consequences: run_job must be CALLed outside a transaction block (it begins with a COMMIT, so
-- inside one it fails at once with SQLSTATE 2D000 before taking any lock), and it cannot be
-- SECURITY DEFINER nor carry SET options (PostgreSQL forbids transaction control there): it
-- runs with the rights of its caller, the pg_cron job's owner (the role nikita_jobs, see
-- sql/0011_jobs_role.sql and cron/schedule.sql).
--
-- Search path: whatever resolves through the caller's search_path could run an object planted
-- in `public` or in a schema named after the caller, with the caller's rights. So run_job pins
-- the path for the transaction as its first statement and again after every COMMIT (a
-- transaction-local setting ends with the transaction), the DECLARE defaults (which run before
-- the first statement) call only qualified functions, every operator has operands of exactly
-- the types of a pg_catalog operator (`->> 'done'::text`), and the step is called by its
-- qualified, quoted name (_job_step_function). Everything else runs in the SECURITY DEFINER
-- _job_* internals below and in the steps, which pin search_path like every function here.
--
-- Rights: the jobs role executes run_job, these internals and the steps, and holds no table
-- privilege; the internals and the steps run as the owner.

CREATE OR REPLACE FUNCTION nikita._job_alert(
    p_job text,
    p_error text,
    p_now timestamptz DEFAULT pg_catalog.now()
)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_chat bigint := nikita._setting_bigint('alert_chat_id');
BEGIN
    p_now := nikita._checked_now(p_now);
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
COMMENT ON FUNCTION nikita._job_alert(text, text, timestamptz) IS
'Queue an ops_alert Telegram event to setting alert_chat_id saying job p_job failed with '
'p_error; NULL when no alert chat is set or this job already alerted within the hour. '
'Internal to run_job (SECURITY DEFINER: the jobs role has no right on the events).';

-- The job's lock key, which also validates the name (run_job's only check before its COMMIT).
CREATE OR REPLACE FUNCTION nikita._job_lock_key(p_name text)
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
            USING ERRCODE = '22023', HINT = 'one of: ' || (
                SELECT pg_catalog.string_agg(c.job_name, ', ' ORDER BY c.lock_key)
                FROM nikita.job_catalog AS c
            );
    END IF;
    RETURN v_key;
END
$$;
COMMENT ON FUNCTION nikita._job_lock_key(text) IS
'Internal to run_job: the second advisory lock key of job p_name (job_catalog.lock_key). '
'NULL name: 22004; unknown name: 22023.';

CREATE OR REPLACE FUNCTION nikita._job_record_skipped(p_name text)
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
COMMENT ON FUNCTION nikita._job_record_skipped(text) IS
'Internal to run_job: a skipped job_executions row for job p_name (its lock was held).';

-- Called while this session holds the job's lock: a 'running' row of the job belongs to a dead
-- run. Returns the id of the new 'running' row.
CREATE OR REPLACE FUNCTION nikita._job_record_start(p_name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM nikita._job_lock_key(p_name);
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
COMMENT ON FUNCTION nikita._job_record_start(text) IS
'Internal to run_job: fail the running rows of job p_name as abandoned and write a new running '
'row; returns its id. Only while holding the job''s lock.';

CREATE OR REPLACE FUNCTION nikita._job_record_end(p_id bigint, p_result jsonb, p_error text)
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
COMMENT ON FUNCTION nikita._job_record_end(bigint, jsonb, text) IS
'Internal to run_job: settle running row p_id as completed with p_result, or as failed with '
'p_error (and p_result) when p_error is not NULL.';

-- The name of the job's step function in schema nikita, for run_job's EXECUTE (which quotes it
-- and qualifies it): the catalog's signature resolved, so a missing function is an error here.
CREATE OR REPLACE FUNCTION nikita._job_step_function(p_name text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.proname::text
    FROM nikita.job_catalog AS c
    JOIN pg_catalog.pg_proc AS p ON p.oid = c.step::pg_catalog.regprocedure
    WHERE c.job_name = p_name AND p.pronamespace = 'nikita'::pg_catalog.regnamespace;
$$;
COMMENT ON FUNCTION nikita._job_step_function(text) IS
'Internal to run_job: the name in schema nikita of job p_name''s step function '
'(job_catalog.step), NULL for an unknown job.';

CREATE OR REPLACE PROCEDURE nikita.run_job(p_name text)
LANGUAGE plpgsql
AS $$
DECLARE
    -- These run before the first statement, under the caller's search_path: qualified calls only.
    v_now pg_catalog.timestamptz := pg_catalog.now();
    v_class integer := nikita._job_lock_class();
    v_key integer;
    v_step pg_catalog.text;
    v_id bigint;
    v_state pg_catalog.jsonb;
    v_result pg_catalog.jsonb;
    v_error pg_catalog.text;
    v_sqlstate pg_catalog.text;
    v_alert pg_catalog.uuid;
    v_alert_error pg_catalog.text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    v_key := nikita._job_lock_key(p_name);  -- NULL: 22004; unknown: 22023
    v_step := nikita._job_step_function(p_name);

    -- Outside a transaction block this ends the caller's (empty) transaction; inside one it
    -- raises 2D000 before any lock is taken.
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    IF NOT pg_catalog.pg_try_advisory_lock(v_class, v_key) THEN
        PERFORM nikita._job_record_skipped(p_name);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        RETURN;
    END IF;

    -- This session holds the job's lock: a 'running' row of this job belongs to a dead run.
    v_id := nikita._job_record_start(p_name);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    -- One transaction per step, all pinned to v_now. The last step commits with the job row.
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT nikita.%I($1, $2)', v_step)
            INTO v_state USING v_now, v_state;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        EXIT WHEN v_error IS NOT NULL OR coalesce((v_state ->> 'done'::text)::boolean, true);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
    v_result := v_state -> 'result'::text;
    IF v_result IS NOT NULL AND pg_catalog.jsonb_typeof(v_result) <> 'object'::text THEN
        v_result := pg_catalog.jsonb_build_object('result', v_result);
    END IF;

    IF v_error IS NOT NULL THEN
        -- Cut to fit job_executions.error (8,000, sql/0009): the failure must be recorded.
        v_error := pg_catalog.left(v_error, 7900) || ' (SQLSTATE '::text || v_sqlstate
            || ')'::text;
        BEGIN
            v_alert := nikita._job_alert(p_name, v_error, v_now);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_alert_error = MESSAGE_TEXT;
        END;
        -- The result of the steps committed before the failure (none: {}).
        v_result := coalesce(v_result, '{}'::pg_catalog.jsonb)
            || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'alert_event_id', v_alert, 'alert_error', v_alert_error
            ));
    END IF;
    PERFORM nikita._job_record_end(v_id, v_result, v_error);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM pg_catalog.pg_advisory_unlock(v_class, v_key);
END
$$;
COMMENT ON PROCEDURE nikita.run_job (text) IS
'Run job p_name of nikita.job_catalog as pg_cron does: CALL nikita.run_job(''decay'') outside '
'a transaction block. Advisory lock per job (overlap: a skipped row), a job_executions row '
'running -> completed | failed that survives the job''s rollback, an ops_alert on failure; the '
'job''s step function runs until done, each step committed (decay: batch by batch). Unknown '
'name: 22023. Pins search_path itself (a procedure that commits cannot carry SET). Executable '
'by the jobs role nikita_jobs (which pg_cron runs it as) and the owner.';

-- Before sql/0012 run_job ran decay's batches itself through these (the other internals were
-- renamed by sql/0012).
DROP FUNCTION IF EXISTS nikita.job_decay_pages();
DROP FUNCTION IF EXISTS nikita.job_decay_batch(timestamptz, bigint, integer);
DROP FUNCTION IF EXISTS nikita.job_step(text, timestamptz);

-- Internals: nobody but the jobs role (and the owner) executes them. The steps are granted
-- beside their definitions.
REVOKE EXECUTE ON FUNCTION
nikita._job_alert(text, text, timestamptz),
nikita._job_lock_key(text),
nikita._job_step_function(text),
nikita._job_record_skipped(text),
nikita._job_record_start(text),
nikita._job_record_end(bigint, jsonb, text)
FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE nikita.run_job(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita._job_alert(text, text, timestamptz),
nikita._job_lock_key(text),
nikita._job_step_function(text),
nikita._job_record_skipped(text),
nikita._job_record_start(text),
nikita._job_record_end(bigint, jsonb, text)
TO nikita_jobs;
GRANT EXECUTE ON PROCEDURE nikita.run_job(text) TO nikita_jobs;
