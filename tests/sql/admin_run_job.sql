-- run_job_now (functions/admin_run_job.sql): run_job's step loop in the caller's transaction.
-- Overlap with another session's run (skipped) needs two sessions: tests/shim/db/test_admin_cli.py.
BEGIN;
SELECT plan(8);

INSERT INTO nikita.job_executions (job_name, status) VALUES ('sweep', 'running');

CREATE TEMP TABLE run AS SELECT * FROM nikita.run_job_now('sweep');
SELECT results_eq($$SELECT job_name, status, error FROM run$$,
    $$VALUES ('sweep'::text, 'completed'::text, NULL::text)$$, 'sweep ran: completed');
SELECT ok((SELECT result ? 'expired' AND result ->> 'run_by' = session_user::text FROM run),
    'its result: the job''s counts and who ran it');
SELECT is((SELECT count(*)::int FROM nikita.job_executions WHERE job_name = 'sweep' AND status = 'failed'
    AND error LIKE 'abandoned%'), 1, 'a running row left by a dead run is failed as abandoned');
SELECT ok((SELECT completed_at IS NOT NULL AND duration_ms >= 0 FROM run), 'settled, with a duration');
SELECT results_eq($$SELECT id FROM nikita.list_job_runs(p_job_name => 'sweep', p_limit => 1)$$,
    $$SELECT id FROM run$$, 'the run is the job''s newest row');
SELECT is((SELECT status FROM nikita.run_job_now('decay')), 'completed', 'decay runs too (batched job)');
SELECT throws_ok($$SELECT * FROM nikita.run_job_now('nope')$$, '22023', 'unknown job "nope"', 'unknown job');
SELECT throws_ok($$SELECT * FROM nikita.run_job_now(NULL)$$, '22004', NULL, 'null name');

SELECT * FROM finish();
ROLLBACK;
