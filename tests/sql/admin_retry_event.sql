-- retry_event (functions/admin_retry_event.sql): failed -> pending, attempts reset, history
-- kept and the retry recorded, its place in the player's order, bad input.
BEGIN;
SELECT plan(21);
\ir _shared/events.psql
\ir _shared/admin.psql

CALL pg_temp.sched('a1', 1, '-10 minutes');
CALL pg_temp.fail('a1');
-- Queued after a1 failed, asked for later than a1: it waits behind a1 once a1 is retried.
CALL pg_temp.sched('a2', 1, '-1 minute');
CREATE TEMP TABLE before AS SELECT * FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1');

SELECT is(nikita.retry_event(pg_temp.ev('a1')), now(), 'retry now: due now');
SELECT results_eq($$SELECT status, attempts FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')$$,
    $$VALUES ('pending'::text, 0)$$, 'pending again, attempts reset');
SELECT is((SELECT jsonb_array_length(errors) FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')), 2,
    'history kept, the retry appended');
SELECT is((SELECT errors -> 0 FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')),
    (SELECT errors -> 0 FROM before), '... the failure is still there');
SELECT results_eq($$SELECT (errors -> 1 ->> 'operator_retry')::boolean, errors -> 1 ->> 'by',
    (errors -> 1 ->> 'attempt')::int FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')$$,
    $$VALUES (true, session_user::text COLLATE "default", 1)$$, '... the retry: by whom, after which attempt');
SELECT is((SELECT last_error FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')), 'chat not found',
    'last_error still tells the last delivery error');
SELECT is((SELECT order_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')),
    (SELECT scheduled_at FROM before), 'order_at keeps the time the app asked for');
SELECT results_eq($$SELECT id FROM nikita.claim_events('w', 10) WHERE user_id = pg_temp.u(1)$$,
    ARRAY[pg_temp.ev('a1')], 'the retried event goes first: the player''s later event waits');
SELECT is(nikita.complete_events(ARRAY[pg_temp.ev('a1')], ARRAY[pg_temp.tok('a1')], ARRAY['r1']), 1,
    '... delivered');
SELECT throws_ok(format('SELECT nikita.retry_event(%L)', pg_temp.ev('a1')), '55000',
    format('event %s is delivered: only a failed event can be retried', pg_temp.ev('a1')),
    'a delivered event is not retried');
SELECT throws_ok(format('SELECT nikita.retry_event(%L)', pg_temp.ev('a2')), '55000', NULL,
    'a pending event is not retried');

-- Retry at a later time: the player's later events wait for it.
CALL pg_temp.sched('b1', 2, '-10 minutes');
CALL pg_temp.fail('b1');
CALL pg_temp.sched('b2', 2, '-1 minute');
SELECT is(nikita.retry_event(pg_temp.ev('b1'), now() + interval '1 hour'), now() + interval '1 hour',
    'retry at a given time');
SELECT is((SELECT scheduled_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('b1')),
    now() + interval '1 hour', '... due then');
SELECT is_empty($$SELECT 1 FROM nikita.claim_events('w', 10) WHERE user_id = pg_temp.u(2)$$,
    '... and the player''s later event waits for it');

-- A live event holding the dedupe key.
INSERT INTO ev SELECT 'd1', nikita.schedule_event(pg_temp.u(3), 'telegram', 'follow_up',
    '{"text": "x"}', now() - interval '2 minutes', 'k1');
CALL pg_temp.fail('d1');
INSERT INTO ev SELECT 'd2', nikita.schedule_event(pg_temp.u(3), 'telegram', 'follow_up',
    '{"text": "x"}', now() + interval '1 hour', 'k1');
SELECT throws_like(format('SELECT nikita.retry_event(%L)', pg_temp.ev('d1')),
    '%has dedupe key "k1", which live event%', 'a live event holds its dedupe key: 23505');

-- Expired by the sweep (order_at never set): the retry keeps the time the app asked for.
CALL pg_temp.sched('e1', 3, '-2 days');
CREATE TEMP TABLE e1_before AS SELECT scheduled_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('e1');
SELECT nikita.sweep_events();
SELECT results_eq($$SELECT status, last_error FROM nikita.scheduled_events WHERE id = pg_temp.ev('e1')$$,
    $$VALUES ('failed'::text, 'expired'::text)$$, 'e1 expired');
SELECT nikita.retry_event(pg_temp.ev('e1'));
SELECT is((SELECT order_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('e1')),
    (SELECT scheduled_at FROM e1_before), 'an expired event retried keeps its place too');

SELECT throws_ok($$SELECT nikita.retry_event('00000000-0000-0000-0000-0000000000ff')$$, 'P0002',
    NULL, 'unknown event');
SELECT throws_ok($$SELECT nikita.retry_event(NULL)$$, '22004', NULL, 'null id');
SELECT throws_ok(format('SELECT nikita.retry_event(%L, now() - interval ''1 hour'')', pg_temp.ev('d1')),
    '22023', NULL, 'a time in the past');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('d1')), 'failed',
    'a refused retry changes nothing');

SELECT * FROM finish();
ROLLBACK;
