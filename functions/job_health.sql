-- job_health: how each job of nikita.job_catalog (functions/job_catalog.sql) is doing.

-- running_now: the job's advisory lock is held by some session of this database (the truth;
-- a 'running' row whose lock is free was abandoned, see cleanup()).
-- overdue: no success within twice the job's interval, counted from the install when the job
-- never succeeded (a fresh install is not overdue before its first runs were due); never for a
-- disabled job.
-- enabled: the operator's setting (nikita.set_job_enabled, nikita.cron_jobs); a job with no row
-- there is enabled. Last column: CREATE OR REPLACE VIEW may only append.
CREATE OR REPLACE VIEW nikita.job_health AS
SELECT
    c.job_name,
    s.last_run_at,
    s.last_success_at,
    s.last_failure_at,
    (
        SELECT count(*)
        FROM pg_catalog.pg_locks AS l
        WHERE
            l.locktype = 'advisory'
            AND l.granted
            AND l.database = (
                SELECT d.oid FROM pg_catalog.pg_database AS d
                WHERE d.datname = pg_catalog.current_database()
            )
            -- nikita._job_lock_class(), written out: readers of this view execute no function.
            AND l.classid = 1313559617::oid
            AND l.objid = c.lock_key::oid
            AND l.objsubid = 2
    ) > 0 AS running_now,
    coalesce(o.enabled, true) AND coalesce(
        s.last_success_at,
        (SELECT min(m.applied_at) FROM nikita.schema_migrations AS m),
        '-infinity'
    ) < pg_catalog.now() - 2 * c.run_interval AS overdue,
    coalesce(o.enabled, true) AS enabled
FROM nikita.job_catalog AS c
LEFT JOIN nikita.cron_jobs AS o ON c.job_name = o.job_name
-- Each figure is the newest matching row through job_executions_job_time_idx (runs of one job
-- never overlap, so the newest start is also the newest end).
LEFT JOIN LATERAL (
    SELECT
        (
            SELECT e.started_at FROM nikita.job_executions AS e
            WHERE e.job_name = c.job_name AND e.status <> 'skipped'
            ORDER BY e.started_at DESC LIMIT 1
        ) AS last_run_at,
        (
            SELECT e.completed_at FROM nikita.job_executions AS e
            WHERE e.job_name = c.job_name AND e.status = 'completed'
            ORDER BY e.started_at DESC LIMIT 1
        ) AS last_success_at,
        (
            SELECT e.completed_at FROM nikita.job_executions AS e
            WHERE e.job_name = c.job_name AND e.status = 'failed'
            ORDER BY e.started_at DESC LIMIT 1
        ) AS last_failure_at
) AS s ON true;
COMMENT ON VIEW nikita.job_health IS
'Per job: last run (start), last success and failure (end), running now (its advisory lock is '
'held), overdue (no success within twice its interval since install; never when disabled), '
'enabled (nikita.set_job_enabled).';
REVOKE ALL ON nikita.job_health FROM PUBLIC;
GRANT SELECT ON nikita.job_health TO nikita_readonly, nikita_worker;
