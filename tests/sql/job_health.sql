-- job_health: one row per job, last run / success / failure, running now (the job's advisory
-- lock), overdue (no success within twice the interval); who may read it.
BEGIN;
SELECT plan(13);

SELECT columns_are('nikita', 'job_health', ARRAY[
    'job_name', 'last_run_at', 'last_success_at', 'last_failure_at', 'running_now', 'overdue',
    'enabled'
]);
UPDATE nikita.schema_migrations SET applied_at = now();  -- installed just now
SELECT results_eq(
    $$SELECT job_name, last_run_at, running_now, overdue FROM nikita.job_health ORDER BY 1$$,
    $$VALUES ('boss_timeout', NULL::timestamptz, false, false),
             ('cleanup', NULL, false, false), ('conversations', NULL, false, false),
             ('decay', NULL, false, false), ('summary', NULL, false, false),
             ('sweep', NULL, false, false)$$,
    'six jobs; none has run, none is overdue right after the install'
);

INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, result, error)
VALUES
('decay', now() - interval '70 minutes', now() - interval '69 minutes', 'completed', '{}', NULL),
('decay', now() - interval '10 minutes', now() - interval '9 minutes', 'failed', NULL, 'boom'),
('decay', now() - interval '1 minute', now() - interval '1 minute', 'skipped', '{}', NULL),
('sweep', now() - interval '3 minutes', now() - interval '3 minutes', 'completed', '{}', NULL),
('conversations', now() - interval '90 seconds', now() - interval '89 seconds', 'completed',
 '{}', NULL);

SELECT results_eq(
    $$SELECT last_run_at, last_success_at, last_failure_at FROM nikita.job_health
      WHERE job_name = 'decay'$$,
    $$VALUES (now() - interval '10 minutes', now() - interval '69 minutes',
              now() - interval '9 minutes')$$,
    'last run (a skipped overlap is not a run), last success, last failure'
);
SELECT results_eq(
    $$SELECT job_name, overdue FROM nikita.job_health ORDER BY 1$$,
    $$VALUES ('boss_timeout', false), ('cleanup', false), ('conversations', false),
             ('decay', false), ('summary', false), ('sweep', true)$$,
    'overdue: no success within twice the interval (sweep: 3 min > 2 min; decay: 69 min < 2 h)'
);
UPDATE nikita.schema_migrations SET applied_at = now() - interval '3 hours';
SELECT results_eq(
    $$SELECT job_name FROM nikita.job_health WHERE overdue ORDER BY 1$$,
    $$VALUES ('boss_timeout'), ('cleanup'), ('summary'), ('sweep')$$,
    'a job that never succeeded is overdue twice its interval after the install'
);

SELECT pg_advisory_xact_lock(nikita._job_lock_class(), 2);  -- sweep's lock (the view repeats the class as a literal: this checks they agree)
SELECT results_eq(
    $$SELECT job_name FROM nikita.job_health WHERE running_now$$,
    $$VALUES ('sweep')$$,
    'running_now: the job''s advisory lock is held'
);

SELECT isnt(obj_description('nikita.job_health'::regclass, 'pg_class'), NULL,
    'job_health has a COMMENT');
SELECT table_privs_are('nikita', 'job_health', 'nikita_readonly', ARRAY['SELECT'],
    'nikita_readonly reads job_health');
SELECT table_privs_are('nikita', 'job_health', 'nikita_worker', ARRAY['SELECT'],
    'nikita_worker reads job_health (nikita-shim status)');
SELECT table_privs_are('nikita', 'job_health', 'nikita_app', ARRAY[]::text[],
    'nikita_app does not');
SELECT table_privs_are('nikita', 'job_catalog', 'nikita_readonly', ARRAY[]::text[],
    'the catalog behind it is granted to nobody');

SET LOCAL ROLE nikita_readonly;
SELECT is((SELECT count(*)::int FROM nikita.job_health), 6,
    'nikita_readonly reads it without any other grant');
RESET ROLE;
CREATE ROLE nikita_test_nobody NOLOGIN;
SET LOCAL ROLE nikita_test_nobody;
SELECT throws_ok('SELECT * FROM nikita.job_health', '42501', NULL,
    'a role without the grant cannot');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
