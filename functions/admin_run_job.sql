-- Operator API (sql/0020_ops_role.sql): run a job now.
--
-- run_job (functions/run_job.sql) is a procedure that COMMITs between steps, so it can be
-- neither SECURITY DEFINER nor called from a function, and granting it to nikita_ops would mean
-- granting its internals and every step too. run_job_now is its non-committing equivalent, in
-- the caller's one transaction: the same lock (transaction level: a pg_cron run_job meanwhile is
-- 'skipped', and this is 'skipped' while one runs), the same job_executions row (abandoned
-- 'running' rows failed first), the same step loop pinned to one now(), each step in a
-- subtransaction; a failing step is rolled back and recorded as 'failed' with its SQLSTATE, the
-- steps before it are kept. Differences, all deliberate:
--   - nothing is visible until the caller commits (the CLI runs in autocommit: at the return);
--     a large batch job (decay with a big backlog) holds its row locks until then, so leave
--     big catch-ups to pg_cron;
--   - no ops_alert on failure: the operator who ran it is looking at the error;
--   - result carries "run_by": the session user.

CREATE OR REPLACE FUNCTION nikita.run_job_now(p_name text)
RETURNS TABLE (
    id bigint,
    job_name text,
    status text,
    started_at timestamptz,
    completed_at timestamptz,
    duration_ms integer,
    result jsonb,
    error text
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := pg_catalog.now();
    v_key integer;
    v_step text;
    v_id bigint;
    v_state jsonb;
    v_result jsonb;
    v_error text;
    v_sqlstate text;
BEGIN
    v_key := nikita._job_lock_key(p_name);  -- NULL: 22004; unknown: 22023
    v_step := nikita._job_step_function(p_name);
    IF NOT pg_catalog.pg_try_advisory_xact_lock(nikita._job_lock_class(), v_key) THEN
        PERFORM nikita._job_record_skipped(p_name);
        RETURN QUERY
        SELECT e.id, e.job_name, e.status, e.started_at, e.completed_at, e.duration_ms,
            e.result, e.error
        FROM nikita.job_executions AS e
        WHERE e.job_name = p_name AND e.status = 'skipped'
        ORDER BY e.id DESC
        LIMIT 1;
        RETURN;
    END IF;
    v_id := nikita._job_record_start(p_name);
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT nikita.%I($1, $2)', v_step)
            INTO v_state USING v_now, v_state;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        EXIT WHEN v_error IS NOT NULL OR coalesce((v_state ->> 'done')::boolean, true);
    END LOOP;
    v_result := v_state -> 'result';
    IF v_result IS NOT NULL AND pg_catalog.jsonb_typeof(v_result) <> 'object' THEN
        v_result := pg_catalog.jsonb_build_object('result', v_result);
    END IF;
    v_result := coalesce(v_result, '{}'::jsonb)
        || pg_catalog.jsonb_build_object('run_by', SESSION_USER::text);
    IF v_error IS NOT NULL THEN
        v_error := pg_catalog.left(v_error, 7900) || ' (SQLSTATE ' || v_sqlstate || ')';
    END IF;
    PERFORM nikita._job_record_end(v_id, v_result, v_error);
    RETURN QUERY
    SELECT e.id, e.job_name, e.status, e.started_at, e.completed_at, e.duration_ms, e.result,
        e.error
    FROM nikita.job_executions AS e
    WHERE e.id = v_id;
END
$$;
COMMENT ON FUNCTION nikita.run_job_now(text)
IS 'Operator API: run job p_name now, in the caller''s transaction (run_job without its '
'COMMITs, see functions/admin_run_job.sql); returns its job_executions row: completed, failed '
'(error with SQLSTATE; the failing step rolled back) or skipped (another run holds the job''s '
'lock). result has run_by (session user). No ops_alert. 22023: unknown job; 22004: null name. '
'Executable by nikita_ops.';
REVOKE EXECUTE ON FUNCTION nikita.run_job_now(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.run_job_now(text) TO nikita_ops;
