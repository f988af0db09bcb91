-- nikita.job_catalog (functions/job_catalog.sql): the one list of jobs. Each row must be
-- runnable as run_job runs it: a step that exists with the step protocol's signature, runs as
-- its owner, pins its path and is executable by the jobs role; names, pg_cron names and lock
-- keys unique; the CHECK of job_executions asks the catalog.
BEGIN;
SELECT plan(9);

SELECT is(
    (SELECT count(*)::int FROM nikita.job_catalog WHERE to_regprocedure(step) IS NULL),
    0, 'every step names an existing function'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.job_catalog AS c
     JOIN pg_proc AS p ON p.oid = to_regprocedure(c.step)
     WHERE p.pronamespace <> 'nikita'::regnamespace
        OR p.prorettype <> 'jsonb'::regtype
        OR pg_get_function_identity_arguments(p.oid)
           <> 'p_now timestamp with time zone, p_state jsonb'
        OR p.proname <> '_job_' || c.job_name || '_step'),
    0, 'every step is nikita._job_<name>_step(p_now timestamptz, p_state jsonb) returning jsonb'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.job_catalog AS c
     JOIN pg_proc AS p ON p.oid = to_regprocedure(c.step)
     WHERE NOT p.prosecdef
        OR NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']),
    0, 'every step is SECURITY DEFINER with a pinned search_path'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.job_catalog AS c
     WHERE NOT has_function_privilege('nikita_jobs', c.step, 'EXECUTE')
        OR has_function_privilege('nikita_worker', c.step, 'EXECUTE')
        OR has_function_privilege('nikita_app', c.step, 'EXECUTE')),
    0, 'every step is executable by nikita_jobs and by neither the worker nor the app'
);
SELECT is(
    (SELECT count(DISTINCT job_name) + count(DISTINCT cron_name) + count(DISTINCT lock_key)
     FROM nikita.job_catalog)::int,
    (SELECT 3 * count(*) FROM nikita.job_catalog)::int,
    'job names, pg_cron names and lock keys are unique'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.job_catalog
     WHERE cron_name <> 'nikita-' || replace(job_name, '_', '-')),
    0, 'every pg_cron name is nikita-<name>'
);
SELECT lives_ok(
    $$INSERT INTO nikita.job_executions (job_name, status)
      SELECT job_name, 'running' FROM nikita.job_catalog$$,
    'job_executions accepts every catalog name'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status) VALUES ('no_such_job', 'running')$$,
    '23514', NULL, 'job_executions refuses a name the catalog does not list'
);
-- A one-step job returns done at once with its result: the protocol run_job relies on.
SELECT is(
    (SELECT nikita._job_sweep_step(now(), NULL) ->> 'done'),
    'true', 'a one-step job is done after one call'
);

SELECT * FROM finish();
ROLLBACK;
