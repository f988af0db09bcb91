-- Schedule the package's five jobs in pg_cron (times are UTC: cron.timezone = 'UTC').
-- scripts/migrate.sh applies this file in one transaction wherever pg_cron is installed.
--
-- Idempotent: cron.schedule(job_name, ...) updates a job of the same name (pg_cron >= 1.3), so
-- re-running leaves exactly the jobs of nikita.job_catalog, current, with their job ids; a
-- nikita-* job of this database that the catalog no longer names is removed.
-- Every job is `CALL nikita.run_job('<name>')`: a procedure that commits as it goes, which is
-- why pg_cron must send it alone, outside any transaction block (it does).

SELECT cron.schedule(c.cron_name, c.schedule, format('CALL nikita.run_job(%L)', c.job_name))
FROM nikita.job_catalog AS c
ORDER BY c.lock_key;

SELECT cron.unschedule(j.jobid)
FROM cron.job AS j
WHERE
    j.jobname LIKE 'nikita-%'
    AND j.database = current_database()
    AND j.jobname NOT IN (SELECT c.cron_name FROM nikita.job_catalog AS c);
