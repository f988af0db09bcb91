-- Only the owner may move the clock (issue 9 item 5, functions/clock.sql): no role other than
-- the owner of schema nikita (or a member of nikita_jobs) may pass a p_now other than now().
BEGIN;
SELECT plan(
    21 + (
        SELECT count(*)::int FROM pg_proc
        WHERE pronamespace = 'nikita'::regnamespace AND 'p_now' = ANY(proargnames)
    )
);

SELECT is(
    (SELECT count(*)::int FROM pg_proc
      WHERE pronamespace = 'nikita'::regnamespace AND 'p_now' = ANY(proargnames)) >= 6,
    true, 'the job functions that take p_now are found in pg_proc'
);

-- A leased event (its lease ends in an hour) and an event due in ten days: a sweep thirty days
-- ahead would reap the one and expire the other.
INSERT INTO nikita.users (id, telegram_id) VALUES
('00000000-0000-0000-0000-0000000c10c1', 7101),
('00000000-0000-0000-0000-0000000c10c2', 7102);
CREATE TEMP TABLE ev AS
SELECT
    nikita.schedule_event('00000000-0000-0000-0000-0000000c10c1', 'telegram', 'message_delivery',
        '{"text": "leased"}', now() + interval '1 minute') AS leased,
    nikita.schedule_event('00000000-0000-0000-0000-0000000c10c2', 'telegram', 'message_delivery',
        '{"text": "in ten days"}', now() + interval '10 days') AS later;
UPDATE nikita.scheduled_events
SET status = 'sending', attempts = 1, locked_by = 'w', locked_until = now() + interval '1 hour',
    lock_token = gen_random_uuid()
WHERE id = (SELECT leased FROM ev);
CREATE TEMP TABLE before_ AS
SELECT id, status, attempts, locked_until, last_error, updated_at FROM nikita.scheduled_events;
GRANT SELECT ON before_, ev TO PUBLIC;
CREATE FUNCTION pg_temp.unchanged() RETURNS boolean LANGUAGE sql SECURITY DEFINER AS $$
    SELECT NOT EXISTS (
        (SELECT id, status, attempts, locked_until, last_error, updated_at
         FROM nikita.scheduled_events)
        EXCEPT ALL SELECT * FROM before_
    ) AND (SELECT count(*) FROM nikita.scheduled_events) = (SELECT count(*) FROM before_)
$$;

-- 1. The worker (SET ROLE, as the shim's login role does by membership).
SET LOCAL ROLE nikita_worker;
SELECT throws_ok(
    $$SELECT nikita.sweep_events(now() + interval '30 days')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'the worker cannot sweep thirty days ahead'
);
SELECT throws_ok(
    $$SELECT nikita.sweep_events(now() - interval '1 second')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'nor one second back'
);
SELECT throws_ok(
    $$SELECT nikita.sweep_events(now() + interval '1 microsecond')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'nor one microsecond ahead'
);
RESET ROLE;
SELECT ok(pg_temp.unchanged(), 'refused: no event changed');

SET LOCAL ROLE nikita_worker;
SELECT is(
    (SELECT nikita.sweep_events() - 'oldest_due_at'),
    '{"requeued": 0, "lease_failed": 0, "expired": 0, "notified": false}'::jsonb,
    'the worker sweeps at the present without an argument'
);
SELECT lives_ok($$SELECT nikita.sweep_events(now())$$, 'and with p_now = now()');
RESET ROLE;
SELECT ok(pg_temp.unchanged(), 'a sweep at the present changes nothing here');

-- 2. A login role that is a member of nikita_worker (SET SESSION AUTHORIZATION: session_user
-- is that role, the role setting is none), and the same after SET ROLE nikita_worker.
CREATE ROLE nikita_test_shim_login LOGIN IN ROLE nikita_worker;
SET LOCAL SESSION AUTHORIZATION nikita_test_shim_login;
SELECT is(session_user::text, 'nikita_test_shim_login', 'session user is the login role');
SELECT throws_ok(
    $$SELECT nikita.sweep_events(now() + interval '30 days')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'a login role in nikita_worker cannot move the clock'
);
SELECT lives_ok($$SELECT nikita.sweep_events()$$, 'it sweeps at the present');
SET LOCAL ROLE nikita_worker;
SELECT throws_ok(
    $$SELECT nikita.sweep_events(now() + interval '30 days')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'nor after SET ROLE nikita_worker'
);
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT ok(pg_temp.unchanged(), 'still nothing changed');

-- 3. A SECURITY DEFINER function of the owner that passes a time for its caller: the caller is
-- judged (not current_user, which is the owner in there).
CREATE FUNCTION nikita.test_sweep_ahead() RETURNS jsonb LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nikita.sweep_events(now() + interval '30 days') $$;
GRANT EXECUTE ON FUNCTION nikita.test_sweep_ahead() TO nikita_worker;
SET LOCAL ROLE nikita_worker;
SELECT throws_ok(
    $$SELECT nikita.test_sweep_ahead()$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'an owner''s SECURITY DEFINER function in between does not make the worker the owner'
);
RESET ROLE;
DROP FUNCTION nikita.test_sweep_ahead();

-- 4. A SECURITY DEFINER function of an untrusted role that the owner's session calls: the role
-- the job function runs as must be trusted too.
CREATE ROLE nikita_test_planter NOLOGIN;
GRANT USAGE ON SCHEMA nikita TO nikita_test_planter;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA nikita TO nikita_test_planter;
GRANT SELECT, UPDATE ON nikita.conversations, nikita.settings TO nikita_test_planter;
CREATE FUNCTION pg_temp.planted() RETURNS jsonb LANGUAGE sql SECURITY DEFINER
AS $$ SELECT nikita.detect_stale_conversations(now() + interval '30 days') $$;
ALTER FUNCTION pg_temp.planted() OWNER TO nikita_test_planter;
SELECT throws_ok(
    $$SELECT pg_temp.planted()$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'the owner''s session calling an untrusted role''s definer function cannot move the clock'
);

-- 5. nikita_jobs (the role pg_cron runs the jobs as; created here when the install has none)
-- may move the clock: run_job pins one p_now across the batches it commits.
DO $$
BEGIN
    IF to_regrole('nikita_jobs') IS NULL THEN
        CREATE ROLE nikita_jobs NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA nikita TO nikita_jobs;
GRANT EXECUTE ON FUNCTION nikita.sweep_events(timestamptz) TO nikita_jobs;
CREATE ROLE nikita_test_cron_login LOGIN IN ROLE nikita_jobs;
SET LOCAL SESSION AUTHORIZATION nikita_test_cron_login;
SELECT lives_ok(
    $$SELECT nikita.sweep_events(now() + interval '1 second')$$,
    'a member of nikita_jobs may pass a time other than now()'
);
RESET SESSION AUTHORIZATION;
SELECT ok(pg_temp.unchanged(), 'one second ahead changes nothing here');

-- 6. The owner may pass any time, and then the sweep does what the worker was refused.
SELECT is(
    (SELECT nikita.sweep_events(now() + interval '30 days') - 'oldest_due_at'),
    '{"requeued": 1, "lease_failed": 0, "expired": 2, "notified": false}'::jsonb,
    'the owner sweeps thirty days ahead: the lease reaped, both events expired'
);
SELECT is(
    (SELECT array_agg(status ORDER BY scheduled_at) FROM nikita.scheduled_events),
    ARRAY['failed', 'failed'], 'what the refused calls would have done'
);
SELECT throws_ok($$SELECT nikita._checked_now(NULL)$$, '22004', 'p_now must not be null',
    '_checked_now(NULL): 22004');
SELECT is(nikita._checked_now(now() - interval '1 year'), now() - interval '1 year',
    '_checked_now: the owner''s time is kept');

-- 7. Every function of schema nikita that takes p_now refuses a time ahead to a role other
-- than the owner, even one granted every routine and table of the schema (so that nothing but
-- the guard can refuse). The list is pg_proc's: a new function without the guard
-- (p_now := nikita._checked_now(p_now)) fails here. Each call passes p_now a day ahead and NULL
-- for the other arguments (the guard comes first).
CREATE ROLE nikita_test_mover NOLOGIN;
GRANT USAGE ON SCHEMA nikita TO nikita_test_mover;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA nikita TO nikita_test_mover;
GRANT ALL ON ALL TABLES IN SCHEMA nikita TO nikita_test_mover;

CREATE FUNCTION pg_temp.clock_checks() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_args text;
BEGIN
    FOR r IN
        SELECT p.oid, p.proname, p.prokind, p.proargnames, p.proargtypes
        FROM pg_proc AS p
        WHERE p.pronamespace = 'nikita'::regnamespace AND 'p_now' = ANY(p.proargnames)
        ORDER BY p.proname, p.oid
    LOOP
        SELECT string_agg(
            CASE WHEN r.proargnames[a.i] = 'p_now'
                THEN format('(now() + interval %L)::%s', '1 day', a.t::regtype)
                ELSE format('NULL::%s', a.t::regtype)
            END, ', ' ORDER BY a.i)
        INTO v_args
        FROM unnest(r.proargtypes::oid[]) WITH ORDINALITY AS a (t, i);
        RETURN NEXT throws_ok(
            format('%s nikita.%I(%s)',
                CASE WHEN r.prokind = 'p' THEN 'CALL' ELSE 'SELECT' END, r.proname, v_args),
            '42501', 'only the owner of schema nikita may pass a time other than now() (p_now)',
            format('%s refuses p_now a day ahead to a role other than the owner',
                r.oid::regprocedure)
        );
    END LOOP;
END
$$;
SET LOCAL ROLE nikita_test_mover;
SELECT * FROM pg_temp.clock_checks();
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
