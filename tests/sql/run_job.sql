-- run_job and the jobs' house rules, as far as a transaction block allows: run_job COMMITs, so
-- its completed / failed / skipped paths are tested by tests/shim/db/test_jobs_run_job.py.
BEGIN;
SELECT plan(22);

SELECT results_eq(
    $$SELECT job_name, cron_name, schedule, run_interval FROM nikita.job_catalog
      ORDER BY lock_key$$,
    $$VALUES ('decay', 'nikita-decay', '0 * * * *', interval '1 hour'),
             ('sweep', 'nikita-sweep', '* * * * *', interval '1 minute'),
             ('summary', 'nikita-summary', '5 * * * *', interval '1 hour'),
             ('cleanup', 'nikita-cleanup', '30 * * * *', interval '1 hour'),
             ('conversations', 'nikita-conversations', '* * * * *', interval '1 minute'),
             ('boss_timeout', 'nikita-boss-timeout', '*/5 * * * *', interval '5 minutes')$$,
    'the six jobs (DESIGN''s five and the boss-fight timeout) with their pg_cron names and schedules'
);

SELECT throws_ok($$CALL nikita.run_job('nope')$$, '22023', 'unknown job "nope"',
    'an unknown job name is a clear error');
SELECT throws_ok($$CALL nikita.run_job(NULL)$$, '22004', 'job name must not be null',
    'a NULL job name is refused');
SELECT throws_ok($$CALL nikita.run_job('decay')$$, '2D000', 'invalid transaction termination',
    'inside a transaction block run_job stops at once (it must be CALLed alone)');
SELECT is_empty('SELECT * FROM nikita.job_executions', '... and none of these writes a row');
SELECT is_empty(
    $$SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()$$,
    '... or keeps a job lock'
);

-- _job_alert: an ops_alert to the alert chat, at most one per job per hour.
SELECT is(nikita._job_alert('decay', 'boom', '2026-11-28 12:00Z'), NULL,
    'no alert chat set: no alert');
SELECT is_empty('SELECT 1 FROM nikita.scheduled_events', '... and no event');
UPDATE nikita.settings SET value = '-1001234567890' WHERE key = 'alert_chat_id';
SELECT isnt(nikita._job_alert('decay', 'boom', '2026-11-28 12:00Z'), NULL,
    'with an alert chat: an event id');
SELECT results_eq(
    $$SELECT user_id, platform, event_type, (content ->> 'chat_id')::bigint, content ->> 'text',
             status
      FROM nikita.scheduled_events$$,
    $$VALUES (NULL::uuid, 'telegram', 'ops_alert', -1001234567890::bigint,
              'nikita-tasks: job decay failed at 2026-11-28 12:00:00 UTC in database '
              || current_database()::text COLLATE "default" || ': boom', 'pending')$$,
    'the alert is a pending Telegram ops_alert to the alert chat naming job, time and error'
);
INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, error, result)
VALUES ('decay', '2026-11-28 11:30Z', '2026-11-28 11:30:01Z', 'failed', 'boom',
        jsonb_build_object('alert_event_id', gen_random_uuid()));
SELECT is(nikita._job_alert('decay', 'boom again', '2026-11-28 12:20Z'), NULL,
    'a job that alerted within the hour does not alert again');
SELECT isnt(nikita._job_alert('sweep', 'other', '2026-11-28 12:20Z'), NULL,
    '... another job does');

-- House rules for every function of the jobs. `jobs`: the jobs role nikita_jobs executes it
-- (run_job and its SECURITY DEFINER internals; it holds no table privilege).
CREATE TEMP TABLE jobs_api (sig regprocedure, definer boolean, worker boolean, jobs boolean);
INSERT INTO jobs_api VALUES
('nikita.apply_decay(timestamptz)', false, false, false),
('nikita.apply_decay_batch(timestamptz,bigint,integer)', false, false, false),
('nikita._decay_batch_pages()', false, false, false),
('nikita.generate_daily_summaries(timestamptz,interval)', false, false, false),
('nikita.detect_stale_conversations(timestamptz)', false, false, false),
('nikita._conversation_max_attempts()', false, false, false),
('nikita.claim_conversations(text,integer,interval)', true, true, false),
('nikita.complete_conversation(uuid,uuid,text,text)', true, true, false),
('nikita.fail_conversation(uuid,uuid,text)', true, true, false),
('nikita.cleanup(timestamptz)', false, false, false),
('nikita._job_alert(text,text,timestamptz)', true, false, true),
('nikita._job_lock_class()', false, false, true),
('nikita._job_lock_key(text)', true, false, true),
('nikita._job_record_skipped(text)', true, false, true),
('nikita._job_record_start(text)', true, false, true),
('nikita._job_record_end(bigint,jsonb,text)', true, false, true),
('nikita._job_step_function(text)', true, false, true),
('nikita._job_decay_step(timestamptz,jsonb)', true, false, true),
('nikita._job_sweep_step(timestamptz,jsonb)', true, false, true),
('nikita._job_summary_step(timestamptz,jsonb)', true, false, true),
('nikita._job_cleanup_step(timestamptz,jsonb)', true, false, true),
('nikita._job_conversations_step(timestamptz,jsonb)', true, false, true),
('nikita._job_boss_timeout_step(timestamptz,jsonb)', true, false, true),
('nikita.expire_boss_fights(timestamptz)', false, false, false),
('nikita._expire_boss_rows(timestamptz,uuid[],timestamptz,integer,text)', false, false, false),
('nikita._end_game(uuid[],timestamptz)', false, false, false),
('nikita._boss_skipped_alert(timestamptz,jsonb)', false, false, false);

SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY a.sig::text) FROM jobs_api a
      JOIN pg_proc p ON p.oid = a.sig
      WHERE p.prosecdef <> a.definer
         OR (p.prokind = 'f' AND p.proconfig[1] IS DISTINCT FROM 'search_path=pg_catalog, pg_temp')
         OR obj_description(p.oid, 'pg_proc') IS NULL),
    NULL,
    'SECURITY DEFINER only where the worker or the jobs role calls; search_path pinned; COMMENTs'
);
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY a.sig::text) FROM jobs_api a
      CROSS JOIN (VALUES ('nikita_app'), ('nikita_readonly')) AS r (rolname)
      WHERE has_function_privilege(r.rolname, a.sig, 'EXECUTE')),
    NULL, 'nikita_app and nikita_readonly execute none of them'
);
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY a.sig::text) FROM jobs_api a
      WHERE has_function_privilege('nikita_worker', a.sig, 'EXECUTE') <> a.worker),
    NULL, 'nikita_worker executes exactly claim / complete / fail_conversation'
);
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY a.sig::text) FROM jobs_api a
      WHERE has_function_privilege('nikita_jobs', a.sig, 'EXECUTE') <> a.jobs),
    NULL, 'nikita_jobs executes exactly run_job''s internals, not the job functions themselves'
);
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND has_function_privilege('nikita_jobs', p.oid, 'EXECUTE')
        AND p.oid NOT IN (SELECT a.sig FROM jobs_api a WHERE a.jobs)),
    ARRAY['nikita.run_job(text)'],
    'and in all of schema nikita nothing else but run_job'
);
SELECT ok(has_function_privilege('nikita_jobs', 'nikita.run_job(text)', 'EXECUTE')
    AND NOT has_function_privilege('nikita_worker', 'nikita.run_job(text)', 'EXECUTE')
    AND NOT has_function_privilege('nikita_app', 'nikita.run_job(text)', 'EXECUTE'),
    'run_job is executable by nikita_jobs only');
SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY 1) FROM pg_class c
      WHERE c.relnamespace = 'nikita'::regnamespace
        AND (has_table_privilege('nikita_jobs', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
             OR (c.relkind = 'S' AND has_sequence_privilege('nikita_jobs', c.oid, 'USAGE, UPDATE')))),
    NULL, 'nikita_jobs holds no privilege on any table, view or sequence of nikita'
);
SELECT is(
    (SELECT ARRAY[rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls]
       FROM pg_roles WHERE rolname = 'nikita_jobs'),
    ARRAY[true, false, false, false, false, false],
    'nikita_jobs may log in (pg_cron connects as it) and has no other attribute'
);
SELECT is_empty(
    $$SELECT 1 FROM pg_auth_members m WHERE m.member = 'nikita_jobs'::regrole$$,
    'nikita_jobs is a member of no role'
);
SELECT is(
    (SELECT prokind::text || coalesce(array_length(proconfig, 1), 0)
       FROM pg_proc WHERE oid = 'nikita.run_job(text)'::regprocedure),
    'p0', 'run_job is a procedure without SET options (so that it may COMMIT)'
);

SELECT * FROM finish();
ROLLBACK;
