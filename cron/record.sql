-- Record in the game's database what cron/schedule.sql or cron/unschedule.sql did (psql
-- variables: result, their JSON output; cron_db, the database where pg_cron keeps the jobs).
-- A job removed from pg_cron keeps its row (the operator's settings) with no job id, unless the
-- catalog no longer names it.
WITH r AS (
    SELECT *
    FROM jsonb_to_recordset(:'result'::jsonb) AS x (job_name text, cron_job_id bigint)
),

gone AS (
    DELETE FROM nikita.cron_jobs AS o
    USING r
    WHERE
        o.job_name = r.job_name
        AND r.cron_job_id IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM nikita.job_catalog AS c
            WHERE c.job_name = o.job_name
        )
)

INSERT INTO nikita.cron_jobs AS o (job_name, cron_job_id, cron_database, scheduled_at)
SELECT
    r.job_name,
    r.cron_job_id,
    CASE WHEN r.cron_job_id IS NOT NULL THEN :'cron_db' END AS cron_database,
    CASE WHEN r.cron_job_id IS NOT NULL THEN now() END AS scheduled_at
FROM r
WHERE EXISTS (
    SELECT 1 FROM nikita.job_catalog AS c
    WHERE c.job_name = r.job_name
)
ON CONFLICT (job_name) DO UPDATE SET
    cron_job_id = excluded.cron_job_id,
    cron_database = excluded.cron_database,
    scheduled_at = coalesce(excluded.scheduled_at, o.scheduled_at),
    updated_at = now();
