-- cancel_event, cancel_user_events, next_due_at, the queue_health view, the NOTIFY triggers.
BEGIN;
SELECT plan(26);

INSERT INTO nikita.users (id, telegram_id, phone)
SELECT ('00000000-0000-0000-0000-00000000001' || i)::uuid, 6000 + i, '+4420123456' || i
FROM generate_series(1, 4) AS i;

\ir _shared/events.psql
CREATE PROCEDURE pg_temp.sched(p_name text, p_user int, p_at interval, p_platform text DEFAULT 'telegram')
LANGUAGE sql AS $$
    INSERT INTO ev SELECT p_name, nikita.schedule_event(
        ('00000000-0000-0000-0000-00000000001' || p_user)::uuid, p_platform, 'follow_up',
        CASE WHEN p_platform = 'voice' THEN '{}'::jsonb ELSE '{"text": "x"}'::jsonb END,
        now() + p_at);
    -- Backdated here: schedule_event stores a time beyond max_lateness as now (0009).
    UPDATE nikita.scheduled_events SET scheduled_at = now() + p_at
    WHERE id = (SELECT id FROM ev WHERE name = p_name);
$$;

-- ------------------------------------------------------------------------ cancel
CALL pg_temp.sched('a1', 1, '-3 minutes');
CALL pg_temp.sched('a2', 1, '1 hour');
CALL pg_temp.sched('a3', 1, '2 hours', 'voice');
CALL pg_temp.sched('b1', 2, '-1 minute');
CREATE TEMP TABLE claimed AS SELECT * FROM nikita.claim_events('w', 10);
SELECT set_eq('SELECT id FROM claimed', ARRAY[pg_temp.ev('a1'), pg_temp.ev('b1')],
    'a1 and b1 are in flight');

SELECT is(nikita.cancel_event(pg_temp.ev('a2')), true, 'cancel_event on a pending event: true');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('a2')), 'cancelled',
    '... it is cancelled');
SELECT is(nikita.cancel_event(pg_temp.ev('a2')), false, 'cancelling it again: false');
SELECT is(nikita.cancel_event(pg_temp.ev('a1')), false, 'an event in flight cannot be cancelled');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('a1')), 'sending',
    '... it stays in flight');
SELECT is(nikita.cancel_event(gen_random_uuid()), false, 'an unknown event: false');
SELECT throws_ok($$SELECT nikita.cancel_event(NULL)$$, '22004', 'id must not be null', 'null id');

CALL pg_temp.sched('a4', 1, '3 hours');
CALL pg_temp.sched('a5', 1, '4 hours');
SELECT is(nikita.cancel_user_events('00000000-0000-0000-0000-000000000011'), 3,
    'cancel_user_events: the user''s three pending events');
SELECT results_eq(
    $$SELECT status FROM nikita.scheduled_events WHERE user_id = '00000000-0000-0000-0000-000000000011'
      ORDER BY scheduled_at$$,
    $$VALUES ('sending'), ('cancelled'), ('cancelled'), ('cancelled'), ('cancelled')$$,
    '... the one in flight stays, everything pending is cancelled'
);
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('b1')), 'sending',
    'another user''s events are untouched');
SELECT is(nikita.cancel_user_events('00000000-0000-0000-0000-000000000011'), 0, 'again: 0');
SELECT is(nikita.cancel_user_events(gen_random_uuid()), 0, 'an unknown user has nothing to cancel');
SELECT throws_ok($$SELECT nikita.cancel_user_events(NULL)$$, '22004', 'user_id must not be null',
    'null user');

-- ------------------------------------------------------------------------ next_due_at
DELETE FROM nikita.scheduled_events;
SELECT is(nikita.next_due_at(), NULL, 'next_due_at: NULL on an empty queue');
CALL pg_temp.sched('f1', 1, '10 minutes');
CALL pg_temp.sched('f2', 2, '5 minutes');
SELECT is(nikita.next_due_at(), now() + interval '5 minutes', 'the earliest future event');
CALL pg_temp.sched('due', 3, '-30 seconds');
SELECT is(nikita.next_due_at(), now() - interval '30 seconds', 'a due event: its (past) time');
CALL pg_temp.sched('late', 4, '-25 hours');
SELECT is(nikita.next_due_at(), now() - interval '30 seconds',
    'an event past max_lateness (left to the sweep) does not count');
CREATE TEMP TABLE c2 AS SELECT * FROM nikita.claim_events('w', 1);
SELECT results_eq('SELECT id FROM c2', ARRAY[pg_temp.ev('due')], 'the due event is claimed');
CALL pg_temp.sched('behind', 3, '-10 seconds');
SELECT is(nikita.next_due_at(), now() + interval '5 minutes',
    'an event behind its user''s event in flight does not count (no busy wake-ups)');

-- ------------------------------------------------------------------------ queue_health
CALL pg_temp.sched('v1', 4, '-2 minutes', 'voice');
INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status, delivered_at, updated_at)
VALUES
('00000000-0000-0000-0000-000000000011', 'telegram', 'follow_up', '{"chat_id": 1, "text": "d"}', 'delivered', now(), now()),
('00000000-0000-0000-0000-000000000011', 'telegram', 'follow_up', '{"chat_id": 1, "text": "d"}', 'delivered', now() - interval '2 days', now() - interval '2 days'),
('00000000-0000-0000-0000-000000000011', 'voice', 'follow_up', '{"to_number": "+4420123456"}', 'failed', NULL, now()),
('00000000-0000-0000-0000-000000000011', 'telegram', 'follow_up', '{"chat_id": 1, "text": "d"}', 'cancelled', NULL, now());
-- The touch trigger sets updated_at on UPDATE only: the backdated row keeps its age.
SELECT results_eq(
    $$SELECT platform, pending, due_now, oldest_due_lag_s, in_flight, delivered_24h, failed_24h
      FROM nikita.queue_health ORDER BY platform$$,
    $$VALUES ('telegram', 4::bigint, 2::bigint, 90000.000, 1::bigint, 1::bigint, 0::bigint),
             ('voice', 1::bigint, 1::bigint, 120.000, 0::bigint, 0::bigint, 1::bigint)$$,
    'queue_health: per platform pending, due now, oldest due lag (s), in flight, settled 24 h'
);
DELETE FROM nikita.scheduled_events;
SELECT results_eq(
    $$SELECT platform, pending, due_now, oldest_due_lag_s, in_flight, delivered_24h, failed_24h
      FROM nikita.queue_health ORDER BY platform$$,
    $$VALUES ('telegram', 0::bigint, 0::bigint, 0::numeric, 0::bigint, 0::bigint, 0::bigint),
             ('voice', 0::bigint, 0::bigint, 0::numeric, 0::bigint, 0::bigint, 0::bigint)$$,
    'queue_health: both platforms listed with zeros on an empty queue'
);

-- ------------------------------------------------------------------------ notify triggers
SELECT has_trigger('nikita', 'scheduled_events', 'scheduled_events_notify_insert', 'insert trigger');
SELECT has_trigger('nikita', 'scheduled_events', 'scheduled_events_notify_update', 'update trigger');
SELECT is(
    (SELECT string_agg(format('%s %s %s %s', tgname, tgtype::int & 1, tgoldtable, tgnewtable), '; '
                       ORDER BY tgname)
       FROM pg_trigger WHERE tgrelid = 'nikita.scheduled_events'::regclass AND tgname LIKE '%notify%'),
    'scheduled_events_notify_insert 0  new_rows; scheduled_events_notify_update 0 old_rows new_rows',
    'both are statement-level (FOR EACH ROW bit clear) with transition tables'
);
SELECT is(nikita._iso8601('2026-11-28 15:04:05.123456+01'),
    '2026-11-28T14:04:05.123456Z', 'payload format: ISO 8601 in UTC');

SELECT * FROM finish();
ROLLBACK;
