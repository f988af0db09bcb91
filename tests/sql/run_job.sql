-- run_job and the jobs' house rules, as far as a transaction block allows: run_job COMMITs, so
-- its completed / failed / skipped paths are tested by tests/shim/test_jobs_run_job.py.
BEGIN;
SELECT plan(16);

SELECT results_eq(
    $$SELECT job_name, cron_name, schedule, run_interval FROM nikita.job_catalog
      ORDER BY lock_key$$,
    $$VALUES ('decay', 'nikita-decay', '0 * * * *', interval '1 hour'),
             ('sweep', 'nikita-sweep', '* * * * *', interval '1 minute'),
             ('summary', 'nikita-summary', '5 * * * *', interval '1 hour'),
             ('cleanup', 'nikita-cleanup', '30 * * * *', interval '1 hour'),
             ('conversations', 'nikita-conversations', '* * * * *', interval '1 minute')$$,
    'the five jobs of DESIGN with their pg_cron names and schedules'
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

-- queue_job_alert: an ops_alert to the alert chat, at most one per job per hour.
SELECT is(nikita.queue_job_alert('decay', 'boom', '2026-11-28 12:00Z'), NULL,
    'no alert chat set: no alert');
SELECT is_empty('SELECT 1 FROM nikita.scheduled_events', '... and no event');
UPDATE nikita.settings SET value = '-1001234567890' WHERE key = 'alert_chat_id';
SELECT isnt(nikita.queue_job_alert('decay', 'boom', '2026-11-28 12:00Z'), NULL,
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
SELECT is(nikita.queue_job_alert('decay', 'boom again', '2026-11-28 12:20Z'), NULL,
    'a job that alerted within the hour does not alert again');
SELECT isnt(nikita.queue_job_alert('sweep', 'other', '2026-11-28 12:20Z'), NULL,
    '... another job does');

-- House rules for every function of the jobs.
CREATE TEMP TABLE jobs_api (sig regprocedure, definer boolean, worker boolean);
INSERT INTO jobs_api VALUES
('nikita.apply_decay(timestamptz)', false, false),
('nikita.apply_decay_batch(timestamptz,bigint,integer)', false, false),
('nikita.decay_batch_pages()', false, false),
('nikita.generate_daily_summaries(timestamptz,interval)', false, false),
('nikita.detect_stale_conversations(timestamptz)', false, false),
('nikita.conversation_max_attempts()', false, false),
('nikita.claim_conversations(text,integer,interval)', true, true),
('nikita.complete_conversation(uuid,uuid,text,text)', true, true),
('nikita.fail_conversation(uuid,uuid,text)', true, true),
('nikita.cleanup(timestamptz)', false, false),
('nikita.queue_job_alert(text,text,timestamptz)', false, false),
('nikita.job_lock_class()', false, false),
('nikita.run_job(text)', false, false);

SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY a.sig::text) FROM jobs_api a
      JOIN pg_proc p ON p.oid = a.sig
      WHERE p.prosecdef <> a.definer
         OR (p.prokind = 'f' AND p.proconfig[1] IS DISTINCT FROM 'search_path=pg_catalog, pg_temp')
         OR obj_description(p.oid, 'pg_proc') IS NULL),
    NULL,
    'SECURITY DEFINER only where the worker calls; search_path pinned; every one has a COMMENT'
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
    (SELECT prokind::text || coalesce(array_length(proconfig, 1), 0)
       FROM pg_proc WHERE oid = 'nikita.run_job(text)'::regprocedure),
    'p0', 'run_job is a procedure without SET options (so that it may COMMIT)'
);

SELECT * FROM finish();
ROLLBACK;
