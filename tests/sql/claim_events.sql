-- nikita.claim_events: due rows only, oldest first, lease and token, attempts, per-user
-- exclusivity (in one batch and against events in flight), ops_alert unlimited, lateness, bad
-- input, the voice cap. Concurrency (SKIP LOCKED, the per-user lock, the re-check) is proven
-- with real connections in tests/shim/db/test_queue_concurrency.py.
BEGIN;
SELECT plan(64);

INSERT INTO nikita.users (id, telegram_id, phone)
SELECT ('00000000-0000-0000-0000-0000000000d' || i)::uuid, 3000 + i, '+4930123456' || i
FROM generate_series(1, 6) AS i;

\ir _shared/events.psql
CREATE PROCEDURE pg_temp.sched(p_name text, p_user int, p_ago interval, p_platform text DEFAULT 'telegram')
LANGUAGE sql AS $$
    INSERT INTO ev SELECT p_name, nikita.schedule_event(
        CASE WHEN p_user IS NULL THEN NULL
             ELSE ('00000000-0000-0000-0000-0000000000d' || p_user)::uuid END,
        p_platform,
        CASE WHEN p_user IS NULL THEN 'ops_alert' ELSE 'message_delivery' END,
        CASE WHEN p_platform = 'voice' THEN '{}'::jsonb
             ELSE jsonb_build_object('text', p_name, 'chat_id', -1) END,
        now() - p_ago)
$$;

CALL pg_temp.sched('u1_old', 1, '10 minutes');
CALL pg_temp.sched('u1_new', 1, '5 minutes');
CALL pg_temp.sched('u2_voice', 2, '8 minutes', 'voice');
CALL pg_temp.sched('ops_1', NULL, '7 minutes');
CALL pg_temp.sched('ops_2', NULL, '6 minutes');
CALL pg_temp.sched('u3_future', 3, '-1 minute');
CALL pg_temp.sched('u4_too_late', 4, '25 hours');
CALL pg_temp.sched('u4_fresh', 4, '4 minutes');
CALL pg_temp.sched('u5_busy', 5, '9 minutes');
CALL pg_temp.sched('u5_waiting', 5, '3 minutes');
CALL pg_temp.sched('u6_now', 6, '0');
-- u5 has an event in flight (claimed by another worker).
UPDATE nikita.scheduled_events SET status = 'sending', attempts = 1, locked_by = 'other',
    locked_until = now() + interval '1 minute', lock_token = gen_random_uuid()
WHERE id = pg_temp.ev('u5_busy');

CREATE TEMP TABLE c1 AS SELECT * FROM nikita.claim_events('w1', 10);

SELECT results_eq(
    $$SELECT e.name FROM c1 JOIN ev AS e USING (id) ORDER BY c1.scheduled_at$$,
    $$VALUES ('u1_old'), ('u2_voice'), ('ops_1'), ('ops_2'), ('u4_fresh'), ('u6_now')$$,
    'due events, oldest first; one per user; ops alerts unlimited; due exactly now included'
);
SELECT ok(NOT EXISTS (SELECT 1 FROM c1 WHERE id = pg_temp.ev('u1_new')),
    'a user''s second due event is not in the same batch');
SELECT ok(NOT EXISTS (SELECT 1 FROM c1 WHERE id = pg_temp.ev('u3_future')),
    'a future event is not claimed');
SELECT ok(NOT EXISTS (SELECT 1 FROM c1 WHERE id = pg_temp.ev('u5_waiting')),
    'a user with an event in flight gets nothing');
SELECT ok(NOT EXISTS (SELECT 1 FROM c1 WHERE id = pg_temp.ev('u4_too_late')),
    'an event past max_lateness is not claimed (sweep_events fails it)');
SELECT ok(EXISTS (SELECT 1 FROM c1 WHERE id = pg_temp.ev('u4_fresh')),
    '... nor does it hold back its user''s newer due event');
SELECT is((SELECT array_agg(DISTINCT attempts) FROM c1), ARRAY[1],
    'attempts counts this claim: first delivery = 1');
SELECT is((SELECT count(DISTINCT lock_token)::int FROM c1 WHERE lock_token IS NOT NULL), 6,
    'a fresh lock token per row');
SELECT results_eq(
    $$SELECT DISTINCT status, locked_by, locked_until = now() + interval '2 minutes', attempts
      FROM nikita.scheduled_events WHERE id IN (SELECT id FROM c1)$$,
    $$VALUES ('sending', 'w1', true, 1)$$,
    'claimed rows: sending, locked by the worker, default lease 2 minutes, attempts 1'
);
SELECT set_eq(
    $$SELECT id, lock_token, user_id, platform, event_type, content, scheduled_at FROM c1$$,
    $$SELECT id, lock_token, user_id, platform, event_type, content, scheduled_at
      FROM nikita.scheduled_events WHERE status = 'sending' AND locked_by = 'w1'$$,
    'the returned columns are the stored row'
);
SELECT is(
    (SELECT content FROM c1 WHERE id = pg_temp.ev('u2_voice')),
    '{"to_number": "+49301234562"}'::jsonb, 'content is returned as stored'
);
SELECT results_eq(
    $$SELECT status FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('u1_new'), pg_temp.ev('u3_future'), pg_temp.ev('u4_too_late'),
                   pg_temp.ev('u5_waiting'))$$,
    $$VALUES ('pending'), ('pending'), ('pending'), ('pending')$$,
    'unclaimed rows stay pending'
);

SELECT is((SELECT count(*)::int FROM nikita.claim_events('w2', 10)), 0,
    'a second claim finds nothing: every due user is in flight');

-- Settling u1's event frees u1: its next event is claimable.
SELECT ok(nikita.complete_event(pg_temp.ev('u1_old'), (SELECT lock_token FROM c1 WHERE id = pg_temp.ev('u1_old'))),
    'u1''s first event completed');
CREATE TEMP TABLE c2 AS SELECT * FROM nikita.claim_events('w2', 10, '30 seconds');
SELECT results_eq('SELECT id FROM c2', ARRAY[pg_temp.ev('u1_new')],
    'after it settles, the user''s next event is claimed');
SELECT is((SELECT locked_until FROM nikita.scheduled_events WHERE id = pg_temp.ev('u1_new')),
    now() + interval '30 seconds', 'the lease is the one asked for');

-- p_max bounds the batch; the oldest go first.
UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 second'
WHERE id = pg_temp.ev('u3_future');
CALL pg_temp.sched('ops_3', NULL, '2 minutes');
CALL pg_temp.sched('ops_4', NULL, '1 minute');
SELECT results_eq(
    $$SELECT id FROM nikita.claim_events('w3', 2)$$,
    ARRAY[pg_temp.ev('ops_3'), pg_temp.ev('ops_4')],
    'max = 2: the two oldest due events'
);
SELECT results_eq(
    $$SELECT id FROM nikita.claim_events('w3', 1)$$,
    ARRAY[pg_temp.ev('u3_future')],
    'an event that has become due (backdated) is claimed'
);

-- Attempts keep counting across claims (retry).
UPDATE nikita.scheduled_events SET status = 'pending', attempts = 2, locked_by = NULL,
    locked_until = NULL, lock_token = NULL, scheduled_at = now() - interval '1 second'
WHERE id = pg_temp.ev('u3_future');
SELECT results_eq(
    $$SELECT attempts FROM nikita.claim_events('w3', 5) WHERE id = pg_temp.ev('u3_future')$$,
    ARRAY[3], 'a third claim returns attempts = 3'
);

-- Ties on scheduled_at within one user: exactly one of them.
CALL pg_temp.sched('u6_tie_a', 6, '1 hour');
CALL pg_temp.sched('u6_tie_b', 6, '1 hour');
UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 hour'
WHERE id IN (pg_temp.ev('u6_tie_a'), pg_temp.ev('u6_tie_b'));
SELECT ok(nikita.complete_event(pg_temp.ev('u6_now'), (SELECT lock_token FROM c1 WHERE id = pg_temp.ev('u6_now'))),
    'u6''s first event completed');
SELECT is(
    (SELECT count(*)::int FROM nikita.claim_events('w4', 10) WHERE user_id = '00000000-0000-0000-0000-0000000000d6'),
    1, 'two events of a user due at the same instant: one claimed'
);

-- p_max_voice: at most that many voice events in one claim (NULL: no limit; 0: none), the
-- oldest first; the other platforms fill the batch up to p_max.
UPDATE nikita.scheduled_events SET status = 'cancelled' WHERE status = 'pending';
INSERT INTO nikita.users (id, telegram_id, phone)
SELECT ('00000000-0000-0000-0000-0000000000e' || i)::uuid, 3100 + i, '+4930223456' || i
FROM generate_series(1, 6) AS i;
CREATE PROCEDURE pg_temp.sched_e(p_name text, p_user int, p_ago interval, p_platform text)
LANGUAGE sql AS $$
    INSERT INTO ev SELECT p_name, nikita.schedule_event(
        ('00000000-0000-0000-0000-0000000000e' || p_user)::uuid, p_platform, 'message_delivery',
        CASE WHEN p_platform = 'voice' THEN '{}'::jsonb
             ELSE jsonb_build_object('text', p_name) END,
        now() - p_ago)
$$;
CALL pg_temp.sched_e('v1', 1, '50 minutes', 'voice');
CALL pg_temp.sched_e('v2', 2, '40 minutes', 'voice');
CALL pg_temp.sched_e('v3', 3, '30 minutes', 'voice');
CALL pg_temp.sched_e('t4', 4, '45 minutes', 'telegram');
CALL pg_temp.sched_e('t5', 5, '35 minutes', 'telegram');
-- user 6: a voice call first, then a message; the message must wait for the call
CALL pg_temp.sched_e('v6', 6, '20 minutes', 'voice');
CALL pg_temp.sched_e('t6', 6, '10 minutes', 'telegram');
CREATE FUNCTION pg_temp.claim_names(p_max int, p_max_voice int) RETURNS text[]
LANGUAGE sql AS $$
    SELECT array_agg(ev.name ORDER BY ev.name)
    FROM nikita.claim_events('wv', p_max, '2 minutes', p_max_voice) AS c JOIN ev USING (id)
$$;
CREATE PROCEDURE pg_temp.unclaim() LANGUAGE sql AS $$
    UPDATE nikita.scheduled_events SET status = 'pending', attempts = 0, locked_by = NULL,
        locked_until = NULL, lock_token = NULL
    WHERE status = 'sending' AND locked_by = 'wv'
$$;

SELECT is(pg_temp.claim_names(10, 0), ARRAY['t4', 't5'],
    'max_voice 0: no voice event; a user whose oldest event is a call gets nothing');
CALL pg_temp.unclaim();
SELECT is(pg_temp.claim_names(10, 1), ARRAY['t4', 't5', 'v1'],
    'max_voice 1: the oldest voice event and every other due event');
CALL pg_temp.unclaim();
SELECT is(pg_temp.claim_names(10, 2), ARRAY['t4', 't5', 'v1', 'v2'], 'max_voice 2: two calls');
CALL pg_temp.unclaim();
SELECT is(pg_temp.claim_names(10, NULL), ARRAY['t4', 't5', 'v1', 'v2', 'v3', 'v6'],
    'max_voice NULL: no limit (one event per user)');
CALL pg_temp.unclaim();
SELECT is(pg_temp.claim_names(3, 2), ARRAY['t4', 'v1', 'v2'],
    'max bounds the whole batch: voice up to its cap, then the oldest others');
CALL pg_temp.unclaim();
SELECT is(pg_temp.claim_names(2, 5), ARRAY['v1', 'v2'], 'a voice cap above max: max wins');
CALL pg_temp.unclaim();
SELECT is(
    (SELECT array_agg(ev.name ORDER BY ev.name) FROM nikita.claim_events('wv', 10) JOIN ev USING (id)),
    ARRAY['t4', 't5', 'v1', 'v2', 'v3', 'v6'], 'three arguments (the old form): no voice limit'
);
CALL pg_temp.unclaim();
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 5, '1 minute', -1)$$, '22023',
    'max_voice must not be negative, got -1', 'negative max_voice');
SELECT is(
    (SELECT count(*)::int FROM nikita.scheduled_events WHERE status = 'sending' AND locked_by = 'wv'),
    0, 'a refused claim claims nothing'
);
SELECT is(
    (SELECT obj_description('nikita.claim_events(text, integer, interval, integer)'::regprocedure,
        'pg_proc') ~ '22023.*negative max_voice'),
    true, 'the comment states the max_voice contract'
);
SELECT is(to_regprocedure('nikita.claim_events(text, integer, interval)'), NULL,
    'the old three-argument function is gone (one claim_events)');
SELECT ok(has_function_privilege('nikita_worker',
    'nikita.claim_events(text, integer, interval, integer)', 'EXECUTE'),
    'nikita_worker may claim');

-- ------------------------------------------------------------------ per-user order (0010)
-- A user's events go out in (scheduled_at, creation) order; a later event waits while the
-- head waits for a retry or a defer; a head that ends failed or cancelled releases the rest.
UPDATE nikita.scheduled_events SET status = 'cancelled' WHERE status = 'pending';
UPDATE nikita.scheduled_events SET status = 'delivered', delivered_at = now(), locked_by = NULL,
    locked_until = NULL, lock_token = NULL WHERE status = 'sending';
INSERT INTO nikita.users (id, telegram_id)
SELECT ('00000000-0000-0000-0000-0000000000a' || i)::uuid, 3200 + i FROM generate_series(1, 6) AS i;
CREATE PROCEDURE pg_temp.sched_a(p_name text, p_user int, p_ago interval)
LANGUAGE sql AS $$
    INSERT INTO ev SELECT p_name, nikita.schedule_event(
        ('00000000-0000-0000-0000-0000000000a' || p_user)::uuid, 'telegram', 'message_delivery',
        jsonb_build_object('text', p_name), now() - p_ago)
$$;
-- The names claimed for the a-users, one claim.
CREATE FUNCTION pg_temp.claim_a() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(ev.name ORDER BY ev.name), '{}')
    FROM nikita.claim_events('wo', 50) AS c JOIN ev USING (id)
    WHERE c.user_id::text LIKE '00000000-0000-0000-0000-0000000000a%'
$$;
-- "The backoff or defer time has passed": the event's due time moves to now - 1 s.
CREATE PROCEDURE pg_temp.elapse(p_name text) LANGUAGE sql AS $$
    UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 second'
    WHERE id = pg_temp.ev(p_name)
$$;

CALL pg_temp.sched_a('a1_first', 1, '10 minutes');
CALL pg_temp.sched_a('a1_second', 1, '5 minutes');
CALL pg_temp.sched_a('a1_third', 1, '1 minute');
CALL pg_temp.sched_a('a2_first', 2, '10 minutes');
CALL pg_temp.sched_a('a2_second', 2, '5 minutes');
SELECT is(pg_temp.claim_a(), ARRAY['a1_first', 'a2_first'], 'order: each user''s first event');

-- a1: a retryable failure; a2: a defer (a 429).
SELECT is(nikita.fail_event(pg_temp.ev('a1_first'), pg_temp.tok('a1_first'), 'HTTP 502'),
    'pending', 'a1_first fails (retryable)');
SELECT ok(nikita.defer_event(pg_temp.ev('a2_first'), pg_temp.tok('a2_first'),
    now() + interval '30 seconds'), 'a2_first is deferred 30 s');
SELECT is(pg_temp.claim_a(), '{}'::text[],
    'a user''s later due events wait while the first waits for its backoff or defer time');
SELECT is(nikita.next_due_at(),
    (SELECT min(scheduled_at) FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('a1_first'), pg_temp.ev('a2_first'))),
    'next_due_at: the waiting heads'' times, not the due events behind them');
SELECT is(
    (SELECT scheduled_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('a2_first')),
    now() + interval '30 seconds', 'the deferred event is due at the defer time');

CALL pg_temp.elapse('a1_first');
CALL pg_temp.elapse('a2_first');
SELECT is(pg_temp.claim_a(), ARRAY['a1_first', 'a2_first'],
    'once due again, the first events go out first');
SELECT is(
    (SELECT array_agg(attempts ORDER BY attempts) FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('a1_first'), pg_temp.ev('a2_first'))),
    ARRAY[1, 2], 'the retry counts an attempt, the defer does not');
-- a1 fails again, permanently: it stops holding a1's other events back. a2 is deferred again
-- and the app cancels it (a deferred event is pending): that releases a2's next event.
SELECT is(nikita.fail_event(pg_temp.ev('a1_first'), pg_temp.tok('a1_first'), 'blocked', false),
    'failed', 'a1_first fails permanently');
SELECT ok(nikita.defer_event(pg_temp.ev('a2_first'), pg_temp.tok('a2_first'),
    now() + interval '1 hour'), 'a2_first deferred an hour');
SELECT ok(nikita.cancel_event(pg_temp.ev('a2_first')), 'the app cancels the deferred a2_first');
SELECT is(pg_temp.claim_a(), ARRAY['a1_second', 'a2_second'],
    'a failed or cancelled first event releases the next one');
SELECT ok(nikita.complete_event(pg_temp.ev('a1_second'), pg_temp.tok('a1_second')), 'a1_second sent');
SELECT is(pg_temp.claim_a(), ARRAY['a1_third'], 'then the third');
SELECT ok(nikita.complete_event(pg_temp.ev('a1_third'), pg_temp.tok('a1_third')), 'a1_third sent');
SELECT ok(nikita.complete_event(pg_temp.ev('a2_second'), pg_temp.tok('a2_second')), 'a2_second sent');

-- An event scheduled earlier than a retried head goes before it: the order is the time the
-- app asked for, which the retry keeps.
CALL pg_temp.sched_a('a3_late', 3, '2 minutes');
SELECT is(pg_temp.claim_a(), ARRAY['a3_late'], 'a3_late claimed');
SELECT is(nikita.fail_event(pg_temp.ev('a3_late'), pg_temp.tok('a3_late'), 'timeout'), 'pending',
    'a3_late fails (retryable)');
CALL pg_temp.elapse('a3_late');
CALL pg_temp.sched_a('a3_early', 3, '3 minutes');
SELECT is(pg_temp.claim_a(), ARRAY['a3_early'],
    'an event the app scheduled before the retried one goes first');

-- Ties: events of a user with the same scheduled_at go out in creation order. In this
-- transaction now() is fixed, so these five replies share it.
CALL pg_temp.sched_a('a4_1', 4, '0');
CALL pg_temp.sched_a('a4_2', 4, '0');
CALL pg_temp.sched_a('a4_3', 4, '0');
CALL pg_temp.sched_a('a4_4', 4, '0');
CALL pg_temp.sched_a('a4_5', 4, '0');
CREATE TEMP TABLE tie_order (n serial, name text);
DO $$
DECLARE
    v record;
BEGIN
    FOR i IN 1..6 LOOP
        FOR v IN SELECT c.id, c.lock_token, ev.name
                 FROM nikita.claim_events('wt', 50) AS c JOIN ev USING (id)
                 WHERE ev.name LIKE 'a4_%' LOOP
            INSERT INTO tie_order (name) VALUES (v.name);
            PERFORM nikita.complete_event(v.id, v.lock_token);
        END LOOP;
    END LOOP;
END
$$;
SELECT is((SELECT array_agg(name ORDER BY n) FROM tie_order),
    ARRAY['a4_1', 'a4_2', 'a4_3', 'a4_4', 'a4_5'],
    'same scheduled_at: delivered in creation order (not the random id''s)');
-- The same with ids chosen against creation order (the old tie-break would invert them).
INSERT INTO nikita.scheduled_events (id, user_id, platform, event_type, content, scheduled_at)
VALUES ('ffffffff-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a5',
        'telegram', 'message_delivery', '{"text": "x", "chat_id": 1}', now() - interval '1 minute');
INSERT INTO nikita.scheduled_events (id, user_id, platform, event_type, content, scheduled_at)
VALUES ('00000000-ffff-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000a5',
        'telegram', 'message_delivery', '{"text": "y", "chat_id": 1}', now() - interval '1 minute');
SELECT results_eq(
    $$SELECT c.id FROM nikita.claim_events('wt', 50) AS c
      WHERE c.user_id = '00000000-0000-0000-0000-0000000000a5'$$,
    $$VALUES ('ffffffff-0000-0000-0000-000000000001'::uuid)$$,
    'a tie goes to the row created first, whatever its id'
);

-- Bad input: nothing claimed.
CREATE TEMP TABLE before AS SELECT id, status, attempts FROM nikita.scheduled_events;
SELECT throws_ok($$SELECT * FROM nikita.claim_events(NULL)$$, '22004',
    'worker must not be null', 'null worker');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('')$$, '22023',
    'worker must be 1 to 200 characters', 'empty worker');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', NULL)$$, '22004',
    'max must not be null', 'null max');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 0)$$, '22023',
    'max must be between 1 and 10000, got 0', 'max 0');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 10001)$$, '22023',
    'max must be between 1 and 10000, got 10001', 'max too large');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 5, NULL)$$, '22004',
    'lease must not be null', 'null lease');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 5, '0')$$, '22023',
    'lease must be between 1 second and 1 day, got 00:00:00', 'zero lease');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 5, '-1 minute')$$, '22023',
    'lease must be between 1 second and 1 day, got -00:01:00', 'negative lease');
SELECT throws_ok($$SELECT * FROM nikita.claim_events('w', 5, '2 days')$$, '22023',
    'lease must be between 1 second and 1 day, got 2 days', 'lease too long');
SELECT set_eq('SELECT id, status, attempts FROM nikita.scheduled_events',
    'SELECT id, status, attempts FROM before', 'bad input claims nothing');

SELECT * FROM finish();
ROLLBACK;
