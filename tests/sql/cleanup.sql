-- cleanup(): expired signup sessions, event and job retention, cron history of the nikita jobs,
-- abandoned running job rows; bounded batches; bad input.
BEGIN;
SELECT plan(16);
SET LOCAL timezone = 'UTC';
SET LOCAL client_min_messages = warning;

-- pg_cron cannot be created in this database: stand in for its two tables, same columns.
CREATE SCHEMA cron;
CREATE TABLE cron.job (jobid bigint PRIMARY KEY, jobname text);
CREATE TABLE cron.job_run_details (
    runid bigint PRIMARY KEY, jobid bigint, start_time timestamptz, end_time timestamptz
);
INSERT INTO cron.job VALUES (1, 'nikita-sweep'), (2, 'someone-else');
INSERT INTO cron.job_run_details VALUES
(1, 1, '2026-11-20 00:00Z', '2026-11-20 00:00:01Z'),  -- 8 days old: deleted
(2, 1, '2026-11-22 00:00Z', '2026-11-22 00:00:01Z'),  -- 6 days: kept
(3, 2, '2026-11-01 00:00Z', '2026-11-01 00:00:01Z'),  -- not ours: kept
(4, 1, '2026-11-19 00:00Z', NULL);                    -- never ended, started 9 days ago

UPDATE nikita.settings SET value = '2' WHERE key = 'cleanup_batch_size';

-- Signup sessions: 5 expired (more than two batches), one expiring exactly now, one later.
INSERT INTO nikita.signup_sessions (telegram_id, chat_id, expires_at)
SELECT 100 + i, 100 + i, timestamptz '2026-11-28 12:00Z' - i * interval '1 minute'
FROM generate_series(1, 5) AS i;
INSERT INTO nikita.signup_sessions (telegram_id, chat_id, expires_at) VALUES
(200, 200, '2026-11-28 12:00Z'), (201, 201, '2026-11-28 12:10Z');

-- Events, settled at updated_at.
INSERT INTO nikita.users (id, telegram_id) VALUES ('00000000-0000-0000-0000-0000000000c1', 7);
INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status,
    delivered_at, updated_at, last_error)
SELECT '00000000-0000-0000-0000-0000000000c1', 'telegram', 'message_delivery',
       jsonb_build_object('chat_id', 7, 'text', v.tag), v.status,
       CASE WHEN v.status = 'delivered' THEN v.settled END, v.settled, NULL
FROM (VALUES
    ('delivered-31d', 'delivered', timestamptz '2026-10-28 11:59Z'),
    ('delivered-29d', 'delivered', timestamptz '2026-10-30 12:00Z'),
    ('cancelled-31d', 'cancelled', timestamptz '2026-10-28 11:59Z'),
    ('failed-31d', 'failed', timestamptz '2026-10-28 11:59Z'),
    ('failed-91d', 'failed', timestamptz '2026-08-29 11:59Z'),
    ('pending-100d', 'pending', timestamptz '2026-08-20 12:00Z')
) AS v (tag, status, settled);

-- Job rows: old settled ones, an abandoned running row, a live running row (its lock held).
INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, result, error)
VALUES
('sweep', '2026-10-28 11:00Z', '2026-10-28 11:00:01Z', 'completed', '{}', NULL),
('sweep', '2026-10-28 11:01Z', '2026-10-28 11:01:01Z', 'skipped', '{}', NULL),
('sweep', '2026-10-28 11:02Z', '2026-10-28 11:02:01Z', 'failed', NULL, 'x'),
('summary', '2026-10-30 12:00Z', '2026-10-30 12:00:01Z', 'failed', NULL, 'kept'),
('cleanup', '2026-11-28 10:00Z', NULL, 'running', NULL, NULL),
('decay', '2026-11-28 11:00Z', NULL, 'running', NULL, NULL);
SELECT pg_advisory_xact_lock(nikita._job_lock_class(), (SELECT lock_key FROM nikita.job_catalog
                                           WHERE job_name = 'decay'));

SELECT is(
    nikita.cleanup('2026-11-28 12:00Z'),
    '{"signup_sessions": 5, "events": 2, "failed_events": 1, "job_executions": 3,
      "cron_run_details": 2, "abandoned_jobs": 1}'::jsonb,
    'the run reports what it removed, in batches of cleanup_batch_size (2)'
);
SELECT results_eq(
    $$SELECT telegram_id FROM nikita.signup_sessions ORDER BY 1$$,
    $$VALUES (200::bigint), (201::bigint)$$,
    'sessions past expiry are deleted; one expiring at p_now and a later one stay'
);
SELECT results_eq(
    $$SELECT content ->> 'text' FROM nikita.scheduled_events ORDER BY 1$$,
    $$VALUES ('delivered-29d'), ('failed-31d'), ('pending-100d')$$,
    'delivered/cancelled go after 30 days, failed after 90, pending never'
);
SELECT results_eq(
    $$SELECT job_name, status FROM nikita.job_executions ORDER BY started_at$$,
    $$VALUES ('summary', 'failed'), ('cleanup', 'failed'), ('decay', 'running')$$,
    'settled job rows go after 30 days, younger ones stay'
);
SELECT results_eq(
    $$SELECT error, completed_at FROM nikita.job_executions WHERE job_name = 'cleanup'$$,
    $$VALUES ('abandoned: the run ended without recording a result',
              timestamptz '2026-11-28 12:00Z')$$,
    'a running row whose job lock nobody holds is failed as abandoned'
);
SELECT is(
    (SELECT status FROM nikita.job_executions WHERE job_name = 'decay'), 'running',
    'a running row whose job lock is held stays running'
);
SELECT results_eq(
    $$SELECT runid FROM cron.job_run_details ORDER BY runid$$,
    $$VALUES (2::bigint), (3::bigint)$$,
    'cron.job_run_details of nikita-* jobs older than 7 days go; other jobs'' rows stay'
);

SELECT is(
    nikita.cleanup('2026-11-28 12:00Z'),
    '{"signup_sessions": 0, "events": 0, "failed_events": 0, "job_executions": 0,
      "cron_run_details": 0, "abandoned_jobs": 0}'::jsonb,
    'a second run at the same instant removes nothing'
);

UPDATE nikita.settings SET value = '"1 day"' WHERE key = 'event_retention';
SELECT is(
    nikita.cleanup('2026-11-28 12:00Z') ->> 'events', '1',
    'retention is the event_retention setting'
);

-- Without pg_cron the cron step is skipped.
DROP SCHEMA cron CASCADE;
SELECT is(
    nikita.cleanup('2026-11-28 12:00Z') ->> 'cron_run_details', '0',
    'without pg_cron (no cron schema) the function still runs'
);

-- Bad input changes nothing.
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM nikita.signup_sessions) AS s,
       (SELECT count(*) FROM nikita.scheduled_events) AS e,
       (SELECT count(*) FROM nikita.job_executions) AS j;
INSERT INTO nikita.signup_sessions (telegram_id, chat_id, expires_at)
VALUES (300, 300, '2026-01-01Z');
SELECT throws_ok($$SELECT nikita.cleanup(NULL)$$, '22004', 'p_now must not be null',
    'p_now NULL is refused');
SELECT throws_ok($$SELECT nikita.cleanup('-infinity')$$, '22023',
    'p_now must be a finite time, got -infinity', 'an infinite p_now is refused');
-- Out-of-range settings cannot be stored any more (CHECK settings_value_valid, 0009).
SELECT throws_ok($$UPDATE nikita.settings SET value = '0' WHERE key = 'cleanup_batch_size'$$,
    '23514', 'setting "cleanup_batch_size" must be an integer from 1 to 1000000, got 0',
    'a batch size below 1 is refused');
SELECT throws_ok($$UPDATE nikita.settings SET value = NULL WHERE key = 'job_retention'$$,
    '23514', NULL, 'an unset retention is refused');
SELECT is(
    (SELECT count(*)::int FROM nikita.signup_sessions WHERE telegram_id = 300), 1,
    'refused runs delete nothing'
);
SELECT ok(
    has_function_privilege('nikita_worker', 'nikita.cleanup(timestamptz)', 'EXECUTE') IS FALSE
    AND has_function_privilege('nikita_app', 'nikita.cleanup(timestamptz)', 'EXECUTE') IS FALSE
    AND has_function_privilege('nikita_readonly', 'nikita.cleanup(timestamptz)', 'EXECUTE')
        IS FALSE,
    'cleanup is granted to nobody'
);

SELECT * FROM finish();
ROLLBACK;
