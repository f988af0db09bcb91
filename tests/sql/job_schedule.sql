-- nikita.set_job_schedule / nikita.set_job_enabled (functions/job_schedule.sql): the operator's
-- settings are recorded in nikita.cron_jobs, bad input is refused (22023) with nothing written,
-- job_health shows a disabled job as disabled and never overdue, and who may call them.
-- The test database has no pg_cron: applying is a NOTICE here (tests/shim/db/test_jobs_cron.py
-- covers the real pg_cron).
BEGIN;
SELECT plan(22);

-- The syntax pg_cron 1.4 accepts (5 fields, no seconds).
SELECT is(
    array_agg(nikita._cron_schedule_error(s) ORDER BY s) FILTER (WHERE nikita._cron_schedule_error(s) IS NOT NULL),
    NULL,
    'valid: *, N, ranges, lists, steps, names, macros, extra blanks'
)
FROM unnest(ARRAY[
    '* * * * *', '*/5 * * * *', '0 1-5,9 * * *', '1-59/2 0 1 1 0', '0 0 31 12 7',
    '0 0 * jan-mar MON-fri', '@hourly', '@daily', ' 5  4 * * * ', '0,15,30,45 */2 1-15/3 * 1-5'
]) AS s;
SELECT is(nikita._cron_schedule_error('* * * * * *'),
    'a schedule has 5 fields (minute hour day-of-month month day-of-week), not 6 (pg_cron 1.4 has no seconds field)',
    'six fields (seconds) refused');
SELECT is(nikita._cron_schedule_error('* * * *'),
    'a schedule has 5 fields (minute hour day-of-month month day-of-week), not 4 (pg_cron 1.4 has no seconds field)',
    'four fields refused');
SELECT is(nikita._cron_schedule_error('60 * * * *'), 'minute field: "60" is not in 0-59', 'minute 60');
SELECT is(nikita._cron_schedule_error('* 24 * * *'), 'hour field: "24" is not in 0-23', 'hour 24');
SELECT is(nikita._cron_schedule_error('* * 0 * *'), 'day of month field: "0" is not in 1-31', 'day 0');
SELECT is(nikita._cron_schedule_error('* * * 13 *'), 'month field: "13" is not in 1-12', 'month 13');
SELECT is(nikita._cron_schedule_error('* * * * 8'), 'day of week field: "8" is not in 0-7', 'weekday 8');
SELECT is(nikita._cron_schedule_error('5/10 * * * *'),
    'minute field: "5/10" is not *, N, N-M or */S, N-M/S', 'a step on a single value');
SELECT is(nikita._cron_schedule_error('*/0 * * * *'), 'minute field: step "0" is not in 1-59', 'step 0');
SELECT is(nikita._cron_schedule_error('5-1 * * * *'), 'minute field: range "5-1" runs backwards',
    'a backwards range (pg_cron takes it and never runs it)');
SELECT is(nikita._cron_schedule_error('1,,2 * * * *'),
    'minute field: "" is not *, N, N-M or */S, N-M/S', 'an empty list item');
SELECT is(nikita._cron_schedule_error('@reboot'),
    'a schedule has 5 fields (minute hour day-of-month month day-of-week), not 1 (pg_cron 1.4 has no seconds field)',
    '@reboot is no schedule for a periodic job');

SELECT throws_ok($$SELECT nikita.set_job_schedule('nope', '* * * * *')$$, '22023',
    'unknown job "nope"', 'unknown job');
SELECT throws_ok($$SELECT nikita.set_job_schedule('decay', '61 * * * *')$$, '22023',
    'invalid schedule "61 * * * *" for job decay: minute field: "61" is not in 0-59', 'bad schedule');
SELECT throws_ok($$SELECT nikita.set_job_enabled('nope', false)$$, '22023',
    'unknown job "nope"', 'unknown job (enable)');
SELECT is((SELECT count(*) FROM nikita.cron_jobs)::integer, 0, 'nothing written by a refusal');

SELECT is(nikita.set_job_schedule('decay', ' 15 * * * * '), '15 * * * *', 'returns the schedule in effect');
SELECT is(nikita.set_job_enabled('sweep', false), false, 'sweep disabled');
SELECT results_eq(
    $$SELECT job_name, schedule, enabled, cron_job_id FROM nikita.cron_jobs ORDER BY 1$$,
    $$VALUES ('decay', '15 * * * *', true, NULL::bigint), ('sweep', NULL, false, NULL)$$,
    'recorded for the next migrate (no pg_cron here)'
);

-- Installed long ago, never run: every enabled job is overdue, the disabled one is not.
UPDATE nikita.schema_migrations SET applied_at = now() - interval '1 day';
SELECT results_eq(
    $$SELECT job_name, overdue, enabled FROM nikita.job_health
      WHERE job_name IN ('decay', 'sweep') ORDER BY 1$$,
    $$VALUES ('decay', true, true), ('sweep', false, false)$$,
    'job_health: disabled, not overdue'
);

SELECT is(
    (SELECT array_agg(r ORDER BY r) FROM unnest(ARRAY[
        'nikita_app', 'nikita_worker', 'nikita_readonly', 'nikita_jobs'
    ]) AS r
    WHERE has_function_privilege(r, 'nikita.set_job_schedule(text,text)', 'EXECUTE')
       OR has_function_privilege(r, 'nikita.set_job_enabled(text,boolean)', 'EXECUTE')
       OR has_table_privilege(r, 'nikita.cron_jobs', 'SELECT')),
    NULL,
    'no package role may change schedules or read nikita.cron_jobs'
);

SELECT * FROM finish();
ROLLBACK;
