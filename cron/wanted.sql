-- The jobs cron/schedule.sql and cron/unschedule.sql work on, read in the game's database by
-- scripts/cron.sh: one JSON array (see cron/schedule.sql) of the catalog's jobs, each with the
-- operator's recorded schedule and enabled flag (nikita.cron_jobs) over the catalog's defaults,
-- and of the recorded jobs the catalog no longer names (keep = false).
SELECT coalesce(jsonb_agg(jsonb_build_object(
    'job_name', coalesce(c.job_name, o.job_name),
    'cron_name', c.cron_name,
    'schedule', coalesce(o.schedule, c.schedule),
    'command',
    CASE WHEN c.job_name IS NOT NULL THEN format('CALL nikita.run_job(%L)', c.job_name) END,
    'active', coalesce(o.enabled, true),
    'cron_job_id', o.cron_job_id,
    'keep', c.job_name IS NOT NULL
) ORDER BY c.lock_key), '[]')
FROM nikita.job_catalog AS c
FULL JOIN nikita.cron_jobs AS o ON c.job_name = o.job_name;
