-- Operator API (sql/0020_ops_role.sql): the jobs and their runs (nikita.job_executions).

CREATE OR REPLACE FUNCTION nikita.list_jobs()
RETURNS TABLE (job_name text, schedule text, run_interval interval, step text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.job_name, c.schedule, c.run_interval, c.step
    FROM nikita.job_catalog AS c
    ORDER BY c.lock_key;
$$;
COMMENT ON FUNCTION nikita.list_jobs()
IS 'Operator API: the jobs of nikita.job_catalog (name, pg_cron schedule in UTC, expected '
'interval, step function). Executable by nikita_ops.';

CREATE OR REPLACE FUNCTION nikita.list_job_runs(
    p_job_name text DEFAULT NULL,
    p_status text DEFAULT NULL,
    p_from timestamptz DEFAULT NULL,
    p_to timestamptz DEFAULT NULL,
    p_limit integer DEFAULT 50
)
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
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_job_name IS NOT NULL THEN
        PERFORM nikita._job_lock_key(p_job_name);  -- unknown job: 22023 naming the jobs
    END IF;
    IF p_status IS NOT NULL AND p_status NOT IN ('running', 'completed', 'failed', 'skipped') THEN
        RAISE EXCEPTION 'status must be one of running, completed, failed, skipped, not "%"',
            p_status
            USING ERRCODE = '22023';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000, not %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_from > p_to THEN
        RAISE EXCEPTION 'time range is empty: from % is after to %', p_from, p_to
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT
        e.id, e.job_name, e.status, e.started_at, e.completed_at, e.duration_ms, e.result,
        e.error
    FROM nikita.job_executions AS e
    WHERE
        (p_job_name IS NULL OR e.job_name = p_job_name)
        AND (p_status IS NULL OR e.status = p_status)
        AND (p_from IS NULL OR e.started_at >= p_from)
        AND (p_to IS NULL OR e.started_at < p_to)
    ORDER BY e.started_at DESC, e.id DESC
    LIMIT p_limit;
END
$$;
COMMENT ON FUNCTION nikita.list_job_runs(text, text, timestamptz, timestamptz, integer)
IS 'Operator API: job_executions rows by job, status and start time in [p_from, p_to), newest '
'first, at most p_limit (1..1000). 22023: unknown job or status, limit out of range, p_from '
'after p_to. Executable by nikita_ops.';

REVOKE EXECUTE ON FUNCTION
nikita.list_jobs(),
nikita.list_job_runs(text, text, timestamptz, timestamptz, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.list_jobs(),
nikita.list_job_runs(text, text, timestamptz, timestamptz, integer)
TO nikita_ops;
