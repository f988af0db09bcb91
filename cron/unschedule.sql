-- Remove the package's pg_cron jobs (make cron-remove). Safe where pg_cron is not installed.
-- Their past runs stay in cron.job_run_details; nikita.job_executions is untouched.
DO $$
DECLARE
    v_removed integer;
BEGIN
    IF to_regclass('cron.job') IS NULL THEN
        RAISE NOTICE 'pg_cron is not installed in this database: no job to remove';
        RETURN;
    END IF;
    SELECT count(cron.unschedule(j.jobid)) INTO v_removed
    FROM cron.job AS j
    WHERE j.jobname LIKE 'nikita-%' AND j.database = current_database();
    RAISE NOTICE 'removed % nikita job(s) from pg_cron', v_removed;
END
$$;
