-- cancel_pending_events (functions/admin_cancel_events.sql): by player, by type, both.
BEGIN;
SELECT plan(9);
\ir _shared/events.psql
\ir _shared/admin.psql

CALL pg_temp.sched('a1', 1, '-3 minutes');
CALL pg_temp.sched('a2', 1, '1 hour');
CALL pg_temp.sched('a3', 1, '2 hours', 'call_reminder', 'voice');
CALL pg_temp.sched('b1', 2, '1 hour', 'call_reminder', 'voice');
CALL pg_temp.sched('c1', 3, '1 hour');
SELECT is((SELECT count(*)::int FROM nikita.claim_events('w', 10)), 1, 'a1 is in flight');

SELECT is(nikita.cancel_pending_events(p_user_id => pg_temp.u(1), p_event_type => 'call_reminder'), 1,
    'a player''s events of a type: a3');
SELECT is(nikita.cancel_pending_events(p_event_type => 'call_reminder'), 1, 'of a type: b1');
SELECT is(nikita.cancel_pending_events(p_user_id => pg_temp.u(1)), 1,
    'a player''s: a2 (a1 in flight is not recalled)');
SELECT results_eq($$SELECT name, status FROM ev JOIN nikita.scheduled_events USING (id) ORDER BY name$$,
    $$VALUES ('a1', 'sending'), ('a2', 'cancelled'), ('a3', 'cancelled'), ('b1', 'cancelled'),
    ('c1', 'pending')$$, 'exactly those');
SELECT is(nikita.cancel_pending_events(p_user_id => pg_temp.u(1)), 0, 'nothing left: 0');
SELECT throws_ok($$SELECT nikita.cancel_pending_events()$$, '22004',
    'give a user_id, an event_type or both', 'no filter: refused');
SELECT throws_ok($$SELECT nikita.cancel_pending_events(p_event_type => 'sms')$$, '22023', NULL,
    'unknown type');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('c1')), 'pending',
    'refused calls cancel nothing');

SELECT * FROM finish();
ROLLBACK;
