-- find_events (functions/admin_find_events.sql): filters, order, limit, what of the content an
-- operator sees, bad input.
BEGIN;
SELECT plan(17);
\ir _shared/events.psql
\ir _shared/admin.psql

CALL pg_temp.sched('a1', 1, '-3 minutes');
CALL pg_temp.sched('a2', 1, '1 hour', 'message_delivery');
CALL pg_temp.sched('b1', 2, '2 hours', 'call_reminder', 'voice');
CALL pg_temp.sched('c1', 3, '-5 minutes');

SELECT set_eq($$SELECT id FROM nikita.find_events(p_user_id => pg_temp.u(1))$$,
    ARRAY[pg_temp.ev('a1'), pg_temp.ev('a2')], 'by player');
SELECT results_eq($$SELECT id FROM nikita.find_events()$$,
    ARRAY[pg_temp.ev('b1'), pg_temp.ev('a2'), pg_temp.ev('a1'), pg_temp.ev('c1')],
    'newest first by the time the app asked for');
SELECT results_eq($$SELECT id FROM nikita.find_events(p_event_type => 'call_reminder',
    p_status => 'pending')$$, ARRAY[pg_temp.ev('b1')], 'by type and status');
SELECT results_eq($$SELECT id FROM nikita.find_events(p_from => now(),
    p_to => now() + interval '90 minutes')$$, ARRAY[pg_temp.ev('a2')], 'by time range [from, to)');
SELECT results_eq($$SELECT id FROM nikita.find_events(p_limit => 2)$$,
    ARRAY[pg_temp.ev('b1'), pg_temp.ev('a2')], 'limit');
SELECT is_empty($$SELECT 1 FROM nikita.find_events(p_status => 'failed')$$, 'no failed event yet');

CALL pg_temp.fail('c1');
SELECT results_eq($$SELECT id, error_count, last_error FROM nikita.find_events(p_status => 'failed')$$,
    $$VALUES (pg_temp.ev('c1'), 1, 'chat not found')$$, 'a failed event with its error');

-- What an operator sees of the content.
SELECT is((SELECT content FROM nikita.find_events(p_user_id => pg_temp.u(1), p_event_type => 'message_delivery')),
    '{"keys": ["chat_id", "text"], "chat_id": 6101, "text_chars": 11}'::jsonb,
    'by default: the keys, the chat and the text''s length, not the text');
SELECT is((SELECT content ->> 'text' FROM nikita.find_events(p_user_id => pg_temp.u(1),
    p_event_type => 'message_delivery', p_with_text => true)), 'hello there',
    'with_text: the message');
SELECT is((SELECT content ->> 'to_number' FROM nikita.find_events(p_event_type => 'call_reminder')),
    '+44*****4562', 'a voice number is masked to its last 4 digits');

SELECT throws_ok($$SELECT * FROM nikita.find_events(p_status => 'lost')$$, '22023',
    'status must be one of pending, sending, delivered, failed, cancelled, not "lost"', 'bad status');
SELECT throws_ok($$SELECT * FROM nikita.find_events(p_event_type => 'sms')$$, '22023', NULL,
    'bad event type');
SELECT throws_ok($$SELECT * FROM nikita.find_events(p_limit => 0)$$, '22023',
    'limit must be between 1 and 1000, not 0', 'limit 0');
SELECT throws_ok($$SELECT * FROM nikita.find_events(p_limit => 1001)$$, '22023', NULL, 'limit 1001');
SELECT throws_ok($$SELECT * FROM nikita.find_events(p_limit => NULL)$$, '22023', NULL, 'limit NULL');
SELECT throws_like($$SELECT * FROM nikita.find_events(p_from => now(), p_to => now() - interval '1 s')$$,
    'time range is empty%', 'from after to');
SELECT throws_ok($$SELECT * FROM nikita.find_events(p_with_text => NULL)$$, '22004', NULL,
    'null with_text');

SELECT * FROM finish();
ROLLBACK;
