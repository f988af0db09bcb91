-- list_jobs, list_job_runs (functions/admin_job_runs.sql): filters, order, limit, bad input.
BEGIN;
SELECT plan(10);

INSERT INTO nikita.job_executions (job_name, status, started_at, completed_at, result, error)
VALUES
('decay', 'completed', now() - interval '3 hours', now() - interval '3 hours', '{}', NULL),
('decay', 'failed', now() - interval '2 hours', now() - interval '2 hours', '{}', 'boom'),
('sweep', 'completed', now() - interval '1 hour', now() - interval '1 hour', '{}', NULL);

SELECT results_eq($$SELECT job_name FROM nikita.list_jobs() LIMIT 2$$, ARRAY['decay', 'sweep'],
    'list_jobs: the catalog in lock order');
SELECT results_eq($$SELECT job_name, status FROM nikita.list_job_runs()$$,
    $$VALUES ('sweep', 'completed'), ('decay', 'failed'), ('decay', 'completed')$$, 'newest first');
SELECT results_eq($$SELECT error FROM nikita.list_job_runs(p_job_name => 'decay', p_status => 'failed')$$,
    ARRAY['boom'], 'by job and status');
SELECT is((SELECT count(*)::int FROM nikita.list_job_runs(p_from => now() - interval '150 minutes',
    p_to => now() - interval '30 minutes')), 2, 'by start time');
SELECT is((SELECT count(*)::int FROM nikita.list_job_runs(p_limit => 1)), 1, 'limit');
SELECT throws_like($$SELECT * FROM nikita.list_job_runs(p_job_name => 'nope')$$,
    'unknown job "nope"', 'unknown job');
SELECT throws_ok($$SELECT * FROM nikita.list_job_runs(p_status => 'done')$$, '22023', NULL,
    'unknown status');
SELECT throws_ok($$SELECT * FROM nikita.list_job_runs(p_limit => 0)$$, '22023', NULL, 'limit 0');
SELECT throws_ok($$SELECT * FROM nikita.list_job_runs(p_from => now(), p_to => now() - interval '1 s')$$,
    '22023', NULL, 'from after to');
SELECT throws_ok($$SELECT * FROM nikita.list_job_runs(p_job_name => 'nope')$$, '22023', NULL,
    '... 22023');

SELECT * FROM finish();
ROLLBACK;
