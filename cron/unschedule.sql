-- Remove the package's pg_cron jobs (make cron-remove, via scripts/cron.sh remove), in the
-- database where pg_cron lives. The same psql variables and the same rule as cron/schedule.sql:
-- the recorded job ids, and the jobs an earlier version scheduled (the catalog's name in
-- target_db with the package's exact command); never a job guessed from its name, so the
-- game's own nikita-* jobs stay. Prints the JSON array cron/record.sql reads (every id null).
-- Their past runs stay in cron.job_run_details; nikita.job_executions is untouched.
SELECT
    set_config('nikita.cron_target', :'target_db', true) AS target_db,
    set_config('nikita.cron_wanted', :'jobs', true) AS jobs;

DO $$
DECLARE
    v_target text := current_setting('nikita.cron_target');
    v_removed integer;
BEGIN
    WITH w AS (
        SELECT *
        FROM jsonb_to_recordset(current_setting('nikita.cron_wanted')::jsonb) AS x (
            job_name text, cron_name text, command text, cron_job_id bigint
        )
    )
    SELECT count(cron.unschedule(j.jobid)) INTO v_removed
    FROM cron.job AS j
    WHERE
        j.database = v_target
        AND EXISTS (
            SELECT 1 FROM w
            WHERE w.cron_job_id = j.jobid OR (w.cron_name = j.jobname AND w.command = j.command)
        );
    RAISE NOTICE 'removed % nikita job(s) from pg_cron (database %, jobs of database %)',
        v_removed, current_database(), v_target;
END
$$;

SELECT coalesce(jsonb_agg(jsonb_build_object('job_name', x.job_name, 'cron_job_id', NULL)), '[]')
FROM jsonb_to_recordset(current_setting('nikita.cron_wanted')::jsonb) AS x (job_name text);
