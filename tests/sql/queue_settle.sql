-- Settling claimed events: complete_event, complete_events, fail_event (backoff, history,
-- exhaustion), defer_event; stale lock tokens change nothing.
BEGIN;
SELECT plan(66);
-- Lease-lost WARNINGs are expected here (their text is tested in tests/shim/db/test_queue_*.py).
SET LOCAL client_min_messages = error;

INSERT INTO nikita.users (id, telegram_id)
SELECT ('00000000-0000-0000-0000-0000000000e' || i)::uuid, 4000 + i FROM generate_series(1, 9) AS i;

\ir _shared/events.psql
-- One due event per user; claimed through claim_events so the tokens are real.
INSERT INTO ev SELECT 'e' || i, nikita.schedule_event(
    ('00000000-0000-0000-0000-0000000000e' || i)::uuid, 'telegram', 'message_delivery',
    jsonb_build_object('text', 'e' || i), now() - i * interval '1 second')
FROM generate_series(1, 9) AS i;
CREATE TEMP TABLE claim AS SELECT * FROM nikita.claim_events('w', 50);
-- Back to due and claimed again (what the next claim after a backoff would do).
CREATE FUNCTION pg_temp.reclaim(p_name text) RETURNS integer LANGUAGE sql AS $$
    UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 second'
    WHERE id = pg_temp.ev(p_name);
    SELECT c.attempts FROM nikita.claim_events('w', 50) AS c WHERE c.id = pg_temp.ev(p_name);
$$;
SELECT is((SELECT count(*)::int FROM claim), 9, 'nine events claimed');

-- ------------------------------------------------------------------------ complete_event
SELECT ok(nikita.complete_event(pg_temp.ev('e1'), pg_temp.tok('e1'), '12345'),
    'complete_event with the current token: true');
SELECT results_eq(
    $$SELECT status, delivered_at = now(), provider_ref, locked_by, locked_until, lock_token, attempts
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('e1')$$,
    $$VALUES ('delivered', true, '12345', NULL::text, NULL::timestamptz, NULL::uuid, 1)$$,
    'delivered: delivered_at, provider_ref, lease cleared, attempt kept'
);
SELECT is(nikita.complete_event(pg_temp.ev('e1'), gen_random_uuid()), false,
    'completing a settled event again: false');
SELECT is(nikita.complete_event(pg_temp.ev('e2'), gen_random_uuid()), false,
    'a stale (wrong) token: false');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('e2')), 'sending',
    '... and the event is unchanged');
SELECT is(nikita.complete_event(gen_random_uuid(), gen_random_uuid()), false, 'an unknown event: false');
SELECT throws_ok($$SELECT nikita.complete_event(NULL, gen_random_uuid())$$, '22004',
    'id must not be null', 'complete_event: null id');
SELECT throws_ok($$SELECT nikita.complete_event(gen_random_uuid(), NULL)$$, '22004',
    'lock_token must not be null', 'complete_event: null token');

-- ------------------------------------------------------------------------ complete_events
SELECT is(
    nikita.complete_events(
        ARRAY[pg_temp.ev('e2'), pg_temp.ev('e3'), pg_temp.ev('e4')],
        ARRAY[pg_temp.tok('e2'), gen_random_uuid(), pg_temp.tok('e4')],
        ARRAY['m2', 'm3', NULL]
    ),
    2, 'complete_events: the number completed (one stale token skipped)'
);
SELECT results_eq(
    $$SELECT status, provider_ref FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('e2'), pg_temp.ev('e3'), pg_temp.ev('e4')) ORDER BY content ->> 'text'$$,
    $$VALUES ('delivered', 'm2'), ('sending', NULL), ('delivered', NULL)$$,
    'each row gets its own provider_ref; the stale one stays in flight'
);
SELECT is(nikita.complete_events(ARRAY[pg_temp.ev('e3')], ARRAY[pg_temp.tok('e3')]), 1,
    'provider_refs may be omitted');
SELECT is(nikita.complete_events('{}', '{}', '{}'), 0, 'empty arrays: 0');
SELECT throws_ok($$SELECT nikita.complete_events(NULL, '{}')$$, '22004',
    'ids must not be null', 'complete_events: null ids');
SELECT throws_ok($$SELECT nikita.complete_events('{}', NULL)$$, '22004',
    'lock_tokens must not be null', 'complete_events: null tokens');
SELECT throws_ok(
    $$SELECT nikita.complete_events(ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid(), gen_random_uuid()])$$,
    '22023', 'lock_tokens has 2 elements, ids has 1', 'complete_events: tokens of another length'
);
SELECT throws_ok(
    $$SELECT nikita.complete_events(ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], ARRAY['a', 'b'])$$,
    '22023', 'provider_refs has 2 elements, ids has 1', 'complete_events: refs of another length'
);

-- ------------------------------------------------------------------------ fail_event
SELECT is(nikita.fail_event(pg_temp.ev('e5'), pg_temp.tok('e5'), 'HTTP 502'), 'pending',
    'a retryable failure with attempts left: pending');
SELECT results_eq(
    $$SELECT scheduled_at BETWEEN now() + interval '54 seconds' AND now() + interval '66 seconds',
             attempts, last_error, locked_by, lock_token, jsonb_array_length(errors)
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')$$,
    $$VALUES (true, 1, 'HTTP 502', NULL::text, NULL::uuid, 1)$$,
    'attempt 1: retried after 1 min +-10 %, attempt kept, error recorded, lease cleared'
);
SELECT is((SELECT order_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')),
    now() - interval '5 seconds', 'the retry keeps the time the app asked for in order_at');
SELECT is(
    (SELECT (errors -> 0) - 'at' FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')),
    '{"attempt": 1, "error": "HTTP 502", "retryable": true}'::jsonb,
    'the history entry: attempt, error, retryable'
);
SELECT is(
    (SELECT (errors -> 0 ->> 'at')::timestamptz FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')),
    now(), '... and when'
);
SELECT is(pg_temp.reclaim('e5'), 2, 'claimed again: attempt 2');
SELECT is(nikita.fail_event(pg_temp.ev('e5'), pg_temp.tok('e5'), 'timeout'), 'pending', 'attempt 2 failed: pending');
SELECT ok(
    (SELECT scheduled_at BETWEEN now() + interval '108 seconds' AND now() + interval '132 seconds'
       FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')),
    'attempt 2: retried after 2 min +-10 %'
);
SELECT is(pg_temp.reclaim('e5'), 3, 'attempt 3');
SELECT is(nikita.fail_event(pg_temp.ev('e5'), pg_temp.tok('e5'), 'timeout'), 'pending', 'attempt 3 failed: pending');
SELECT ok(
    (SELECT scheduled_at BETWEEN now() + interval '216 seconds' AND now() + interval '264 seconds'
       FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')),
    'attempt 3: retried after 4 min +-10 %'
);
SELECT is(pg_temp.reclaim('e5'), 4, 'attempt 4 (the last of max_attempts 4)');
SELECT is(nikita.fail_event(pg_temp.ev('e5'), pg_temp.tok('e5'), 'HTTP 503', true), 'failed',
    'a retryable failure of the last attempt: failed');
SELECT results_eq(
    $$SELECT status, attempts, last_error, jsonb_array_length(errors),
             jsonb_path_query_array(errors, '$[*].attempt')
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('e5')$$,
    $$VALUES ('failed', 4, 'HTTP 503', 4, '[1, 2, 3, 4]'::jsonb)$$,
    'failed after 4 attempts, with all four errors in the history'
);
SELECT is(nikita.fail_event(pg_temp.ev('e6'), pg_temp.tok('e6'), 'chat not found', false), 'failed',
    'a permanent failure: failed at once');
SELECT is(
    (SELECT (errors -> 0) - 'at' FROM nikita.scheduled_events WHERE id = pg_temp.ev('e6')),
    '{"attempt": 1, "error": "chat not found", "retryable": false}'::jsonb,
    'the permanent error is in the history'
);
SELECT is(nikita.fail_event(pg_temp.ev('e7'), gen_random_uuid(), 'x'), NULL,
    'a stale token: NULL (lease lost)');
SELECT results_eq(
    $$SELECT status, last_error, errors FROM nikita.scheduled_events WHERE id = pg_temp.ev('e7')$$,
    $$VALUES ('sending', NULL::text, '[]'::jsonb)$$, '... and the event is unchanged'
);
SELECT is(nikita.fail_event(pg_temp.ev('e7'), pg_temp.tok('e7'), repeat('x', 5000)), 'pending',
    'a very long error is accepted');
SELECT is((SELECT length(last_error) FROM nikita.scheduled_events WHERE id = pg_temp.ev('e7')), 2000,
    '... and kept to 2,000 characters');
SELECT throws_ok($$SELECT nikita.fail_event(NULL, gen_random_uuid(), 'x')$$, '22004',
    'id must not be null', 'fail_event: null id');
SELECT throws_ok($$SELECT nikita.fail_event(gen_random_uuid(), NULL, 'x')$$, '22004',
    'lock_token must not be null', 'fail_event: null token');
SELECT throws_ok($$SELECT nikita.fail_event(gen_random_uuid(), gen_random_uuid(), NULL)$$, '22004',
    'error must not be null', 'fail_event: null error');
SELECT throws_ok($$SELECT nikita.fail_event(gen_random_uuid(), gen_random_uuid(), 'x', NULL)$$, '22004',
    'retryable must not be null', 'fail_event: null retryable');

-- Backoff bounds over many draws: 2^(n-1) min +-10 %, capped at 1 h, and jittered.
SELECT ok(
    (SELECT bool_and(nikita._backoff(1) BETWEEN interval '54 seconds' AND interval '66 seconds')
       FROM generate_series(1, 500)),
    'backoff after attempt 1 within 54..66 s'
);
SELECT ok(
    (SELECT count(DISTINCT nikita._backoff(1)) > 400 FROM generate_series(1, 500)),
    'backoff is jittered (not a constant)'
);
SELECT ok(
    (SELECT bool_and(nikita._backoff(6) BETWEEN interval '1728 seconds' AND interval '2112 seconds')
       FROM generate_series(1, 200)),
    'backoff after attempt 6: 32 min +-10 %'
);
SELECT ok(
    (SELECT bool_and(b <= interval '1 hour' AND b >= interval '54 minutes')
       FROM (SELECT nikita._backoff(n) AS b FROM generate_series(7, 100) AS n,
             generate_series(1, 20)) AS s),
    'backoff after attempt 7 and later: capped at 1 hour (no overflow at 100)'
);

-- ------------------------------------------------------------------------ defer_event
SELECT ok(nikita.defer_event(pg_temp.ev('e8'), pg_temp.tok('e8'), now() + interval '17 seconds'),
    'defer_event with the current token: true');
SELECT results_eq(
    $$SELECT status, scheduled_at, attempts, locked_by, lock_token, errors
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('e8')$$,
    $$VALUES ('pending', now() + interval '17 seconds', 0, NULL::text, NULL::uuid, '[]'::jsonb)$$,
    'deferred: pending at the given time, the claim''s attempt given back, no error recorded'
);
SELECT is(pg_temp.reclaim('e8'), 1, 'the next claim is attempt 1 again');
SELECT is(nikita.defer_event(pg_temp.ev('e8'), gen_random_uuid(), now()), false,
    'defer with a stale token: false');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('e8')), 'sending',
    '... and the event is unchanged');
-- A defer to a time in the past means "again now": never accepted as a far-past time and then
-- expired by the next sweep. The event keeps its place in its user's order.
SELECT ok(nikita.defer_event(pg_temp.ev('e8'), pg_temp.tok('e8'), now() - interval '2 days'),
    'defer_event to two days ago: true');
SELECT results_eq(
    $$SELECT status, scheduled_at, order_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('e8')$$,
    $$VALUES ('pending', now(), now() - interval '8 seconds')$$,
    'a defer to the past is due now; order_at keeps the time the app asked for'
);
SELECT is(nikita.sweep_events(now()) -> 'expired', '0'::jsonb, 'the next sweep expires nothing');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('e8')), 'pending',
    '... and the deferred event is still pending');
SELECT is(
    (SELECT c.attempts FROM nikita.claim_events('w', 50) AS c WHERE c.id = pg_temp.ev('e8')), 1,
    'it is claimed at once, attempt 1 again');
SELECT throws_ok($$SELECT nikita.defer_event(NULL, gen_random_uuid(), now())$$, '22004',
    'id must not be null', 'defer_event: null id');
SELECT throws_ok($$SELECT nikita.defer_event(gen_random_uuid(), NULL, now())$$, '22004',
    'lock_token must not be null', 'defer_event: null token');
SELECT throws_ok($$SELECT nikita.defer_event(gen_random_uuid(), gen_random_uuid(), NULL)$$, '22004',
    'until must not be null', 'defer_event: null time');
SELECT throws_ok($$SELECT nikita.defer_event(gen_random_uuid(), gen_random_uuid(), 'infinity')$$,
    '22023', 'until must be a finite time, got infinity', 'defer_event: infinite time');

-- ------------------------------------------------------------------------ lease lost, claimed again
-- e9's lease expires, the sweep re-queues it and another worker claims it: the first worker's
-- token is stale for every settling call, and the second claim is untouched by them.
CREATE TEMP TABLE old_claim AS SELECT pg_temp.tok('e9') AS token;
UPDATE nikita.scheduled_events SET locked_until = now() - interval '1 second' WHERE id = pg_temp.ev('e9');
SELECT is((nikita.sweep_events(now()) ->> 'requeued')::int, 1, 'the expired lease is re-queued');
SELECT is(pg_temp.reclaim('e9'), 2, 'claimed again by the next worker: attempt 2');
SELECT is(nikita.complete_event(pg_temp.ev('e9'), (SELECT token FROM old_claim)), false,
    'the first worker''s complete_event: false');
SELECT is(nikita.fail_event(pg_temp.ev('e9'), (SELECT token FROM old_claim), 'late'), NULL,
    'the first worker''s fail_event: NULL');
SELECT is(nikita.defer_event(pg_temp.ev('e9'), (SELECT token FROM old_claim), now()), false,
    'the first worker''s defer_event: false');
SELECT results_eq(
    $$SELECT status, attempts, lock_token IS NOT NULL AND lock_token <> (SELECT token FROM old_claim)
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('e9')$$,
    $$VALUES ('sending', 2, true)$$,
    '... and the second claim is intact'
);
SELECT ok(nikita.complete_event(pg_temp.ev('e9'), pg_temp.tok('e9'), 'm9'),
    'the second worker completes it');

SELECT * FROM finish();
ROLLBACK;
