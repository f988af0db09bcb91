-- Roles, grants and row level security of DESIGN.md "Security".
BEGIN;
SELECT plan(15);

SELECT has_role('nikita_worker');
SELECT has_role('nikita_app');
SELECT has_role('nikita_readonly');
SELECT is(
    (SELECT count(*)::int FROM pg_roles
      WHERE rolname IN ('nikita_worker', 'nikita_app', 'nikita_readonly') AND rolcanlogin),
    0, 'the group roles cannot log in'
);

-- Nothing in schema nikita is granted to PUBLIC: schema, tables, functions.
SELECT ok(NOT has_schema_privilege('public', 'nikita', 'USAGE'), 'PUBLIC has no USAGE on nikita');
SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY c.relname)
       FROM pg_class c
      WHERE c.relnamespace = 'nikita'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S')
        AND EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                     WHERE a.grantee = 0)),
    NULL, 'no table, view or sequence of nikita is granted to PUBLIC'
);
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
       FROM pg_proc p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                     WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')),
    NULL, 'no function of nikita is executable by PUBLIC'
);
SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY c.relname)
       FROM pg_class c
      WHERE c.relnamespace = 'nikita'::regnamespace AND c.relkind = 'r'
        AND c.relname IN ('users', 'conversations', 'score_history', 'daily_summaries',
                          'scheduled_events', 'signup_sessions')
        AND NOT c.relrowsecurity),
    NULL, 'row level security is on for every player-facing table'
);
-- What the policies do (each player-facing table, by behaviour) is tests/sql/schema_rls.sql.
SELECT table_privs_are('nikita', 'users', 'nikita_app',
    ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'the app reads and writes players');
SELECT table_privs_are('nikita', 'scheduled_events', 'nikita_app', ARRAY[]::text[],
    'the app writes events only through schedule_event()');
SELECT table_privs_are('nikita', 'scheduled_events', 'nikita_worker', ARRAY[]::text[],
    'the worker has no direct access to the events table');

CREATE ROLE nikita_test_stranger NOLOGIN;

-- The app writes players; the CHECKs it triggers (E.164, IANA zone) run with its privileges.
SET LOCAL ROLE nikita_app;
SELECT lives_ok(
    $$INSERT INTO nikita.users (id, telegram_id, phone, timezone) VALUES
      ('00000000-0000-0000-0000-00000000000c', 503, '+4915112345678', 'Europe/Berlin')$$,
    'the app creates a player with a phone and a time zone'
);
SELECT lives_ok(
    $$UPDATE nikita.users SET timezone = 'Asia/Tokyo', phone = '+819012345678'
      WHERE id = '00000000-0000-0000-0000-00000000000c'$$,
    'the app changes a player''s phone and time zone'
);
SELECT throws_ok(
    $$UPDATE nikita.users SET timezone = 'Mars/Base' WHERE id = '00000000-0000-0000-0000-00000000000c'$$,
    '23514', NULL, 'the app still meets the time zone CHECK'
);
RESET ROLE;

SET LOCAL ROLE nikita_test_stranger;
SELECT throws_ok('SELECT * FROM nikita.users', '42501', NULL,
    'a role without grants reads nothing');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
