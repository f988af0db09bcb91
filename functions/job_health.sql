-- The five jobs of DESIGN.md "Jobs" and their health.
--
-- nikita.job_catalog is the one list of jobs: run_job() validates names against it, the
-- advisory lock of a job is (job_lock_class, lock_key), cron/schedule.sql schedules from it and
-- job_health reports on it. A view (not a function) so that job_health, read by roles that may
-- execute nothing in schema nikita, needs no function grant.

CREATE OR REPLACE VIEW nikita.job_catalog AS
SELECT
    j.job_name,
    j.cron_name,
    j.schedule,
    j.run_interval,
    j.lock_key
FROM (
    VALUES
    ('decay', 'nikita-decay', '0 * * * *', interval '1 hour', 1),
    ('sweep', 'nikita-sweep', '* * * * *', interval '1 minute', 2),
    ('summary', 'nikita-summary', '5 * * * *', interval '1 hour', 3),
    ('cleanup', 'nikita-cleanup', '30 * * * *', interval '1 hour', 4),
    ('conversations', 'nikita-conversations', '* * * * *', interval '1 minute', 5)
) AS j (job_name, cron_name, schedule, run_interval, lock_key);
COMMENT ON VIEW nikita.job_catalog IS
'The package''s jobs: name, pg_cron job name, schedule (UTC), expected interval, and the second '
'key of the job''s advisory lock (the first is nikita.job_lock_class(), 1313559617).';
REVOKE ALL ON nikita.job_catalog FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita.job_lock_class()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1313559617  -- 'NKTA'
$$;
COMMENT ON FUNCTION nikita.job_lock_class()
IS 'First key of every job advisory lock: pg_try_advisory_lock(job_lock_class(), lock_key).';
REVOKE EXECUTE ON FUNCTION nikita.job_lock_class() FROM PUBLIC;

-- running_now: the job's advisory lock is held by some session of this database (the truth;
-- a 'running' row whose lock is free was abandoned, see cleanup()).
-- overdue: no success within twice the job's interval, counted from the install when the job
-- never succeeded (a fresh install is not overdue before its first runs were due).
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
            AND l.classid = 1313559617::oid
            AND l.objid = c.lock_key::oid
            AND l.objsubid = 2
    ) > 0 AS running_now,
    coalesce(
        s.last_success_at,
        (SELECT min(m.applied_at) FROM nikita.schema_migrations AS m),
        '-infinity'
    ) < pg_catalog.now() - 2 * c.run_interval AS overdue
FROM nikita.job_catalog AS c
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
'held), overdue (no success within twice its interval since install).';
REVOKE ALL ON nikita.job_health FROM PUBLIC;
GRANT SELECT ON nikita.job_health TO nikita_readonly, nikita_worker;
