-- nikita.sweep_events(p_now): expired leases (Telegram re-queued or failed when no attempt is
-- left, voice failed "outcome unknown"), stale pending events expired, counts, the pinned clock.
-- Time is moved by backdating rows and by p_now, never by sleeping.
BEGIN;
SELECT plan(37);

INSERT INTO nikita.users (id, telegram_id, phone)
SELECT ('00000000-0000-0000-0000-0000000000f' || i)::uuid, 5000 + i, '+3361234567' || i
FROM generate_series(1, 9) AS i;

\ir _shared/events.psql
CREATE PROCEDURE pg_temp.make(p_name text, p_user int, p_platform text, p_status text,
    p_scheduled interval, p_lease interval DEFAULT NULL, p_attempts int DEFAULT 0)
LANGUAGE sql AS $$
    INSERT INTO ev SELECT p_name, nikita.schedule_event(
        ('00000000-0000-0000-0000-0000000000f' || p_user)::uuid, p_platform, 'message_delivery',
        CASE WHEN p_platform = 'voice' THEN '{}'::jsonb ELSE '{"text": "x"}'::jsonb END,
        now() + p_scheduled);
    -- Backdated here: schedule_event stores a time beyond max_lateness as now (0009).
    UPDATE nikita.scheduled_events
    SET status = p_status, attempts = p_attempts, scheduled_at = now() + p_scheduled,
        locked_by = CASE WHEN p_status = 'sending' THEN 'crashed-worker' END,
        locked_until = CASE WHEN p_status = 'sending' THEN now() + p_lease END,
        lock_token = CASE WHEN p_status = 'sending' THEN gen_random_uuid() END
    WHERE id = (SELECT id FROM ev WHERE name = p_name);
$$;

CALL pg_temp.make('tg_expired', 1, 'telegram', 'sending', '-10 minutes', '-1 second', 1);
CALL pg_temp.make('tg_expired_last', 2, 'telegram', 'sending', '-10 minutes', '-1 second', 4);
CALL pg_temp.make('voice_expired', 3, 'voice', 'sending', '-10 minutes', '-1 second', 1);
CALL pg_temp.make('tg_leased', 4, 'telegram', 'sending', '-10 minutes', '1 minute', 1);
CALL pg_temp.make('stale', 5, 'telegram', 'pending', '-25 hours');
CALL pg_temp.make('stale_edge', 6, 'telegram', 'pending', '-24 hours');
CALL pg_temp.make('recent', 7, 'telegram', 'pending', '-1 hour');
CALL pg_temp.make('future', 8, 'telegram', 'pending', '1 hour');

CREATE TEMP TABLE r1 AS SELECT nikita.sweep_events(now()) AS r;

SELECT is(
    (SELECT r - 'oldest_due_at' FROM r1),
    '{"requeued": 1, "lease_failed": 2, "expired": 1, "notified": true}'::jsonb,
    'counts: one lease re-queued, two leases failed, one event expired; due work notified'
);
SELECT is((SELECT (r ->> 'oldest_due_at')::timestamptz FROM r1),
    (SELECT scheduled_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('stale_edge')),
    'oldest_due_at: the earliest claimable due event');

SELECT results_eq(
    $$SELECT status, attempts, scheduled_at = now() - interval '10 minutes', last_error,
             locked_by, lock_token, (errors -> -1) - 'at'
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('tg_expired')$$,
    $$VALUES ('pending', 1, true, 'lease expired', NULL::text, NULL::uuid,
              '{"attempt": 1, "error": "lease expired", "retryable": true}'::jsonb)$$,
    'Telegram, lease expired: pending again at its place, the attempt stays consumed, history'
);
SELECT results_eq(
    $$SELECT status, attempts, last_error FROM nikita.scheduled_events
      WHERE id = pg_temp.ev('tg_expired_last')$$,
    $$VALUES ('failed', 4, 'lease expired; no attempt left')$$,
    'Telegram, lease expired on the last attempt: failed'
);
SELECT results_eq(
    $$SELECT status, attempts, last_error, locked_by, (errors -> -1) - 'at'
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('voice_expired')$$,
    $$VALUES ('failed', 1, 'outcome unknown: lease expired', NULL::text,
              '{"attempt": 1, "error": "outcome unknown: lease expired", "retryable": false}'::jsonb)$$,
    'voice, lease expired: failed "outcome unknown", never called again'
);
SELECT results_eq(
    $$SELECT status, locked_by FROM nikita.scheduled_events WHERE id = pg_temp.ev('tg_leased')$$,
    $$VALUES ('sending', 'crashed-worker')$$, 'a lease still running is left alone'
);
SELECT results_eq(
    $$SELECT status, last_error, (errors -> -1) - 'at'
      FROM nikita.scheduled_events WHERE id = pg_temp.ev('stale')$$,
    $$VALUES ('failed', 'expired', '{"attempt": 0, "error": "expired", "retryable": false}'::jsonb)$$,
    'pending more than max_lateness (24 h) past due: failed "expired"'
);
SELECT is((SELECT (errors -> -1 ->> 'at')::timestamptz FROM nikita.scheduled_events
           WHERE id = pg_temp.ev('stale')), now(), 'the history says when (p_now)');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('stale_edge')), 'pending',
    'exactly max_lateness past due: not yet expired');
SELECT results_eq(
    $$SELECT status FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('recent'), pg_temp.ev('future'))$$,
    $$VALUES ('pending'), ('pending')$$, 'recent and future events are untouched'
);

-- Idempotent at the same instant.
SELECT is(
    nikita.sweep_events(now()) - 'oldest_due_at',
    '{"requeued": 0, "lease_failed": 0, "expired": 0, "notified": true}'::jsonb,
    'a second sweep at the same instant changes nothing'
);

-- The clock is p_now, never another reading: a sweep "tomorrow" reaps what is due by then.
SELECT is(
    nikita.sweep_events(now() - interval '2 days'),
    '{"requeued": 0, "lease_failed": 0, "expired": 0, "notified": false, "oldest_due_at": null}'::jsonb,
    'a sweep pinned two days back: nothing expired, nothing due'
);
SELECT is(
    nikita.sweep_events(now() + interval '1 day 1 second') - 'oldest_due_at',
    '{"requeued": 1, "lease_failed": 0, "expired": 4, "notified": true}'::jsonb,
    'a sweep pinned a day ahead: the running lease expired (re-queued), four events too late'
);
SELECT results_eq(
    $$SELECT status FROM nikita.scheduled_events
      WHERE id IN (pg_temp.ev('stale_edge'), pg_temp.ev('recent'), pg_temp.ev('tg_expired'),
                   pg_temp.ev('tg_leased'), pg_temp.ev('future'))
      ORDER BY scheduled_at$$,
    $$VALUES ('failed'), ('failed'), ('failed'), ('failed'), ('pending')$$,
    '... expired: the stale edge, recent, both re-queued ones (now a day late); future is due'
);
SELECT is(
    (SELECT jsonb_path_query_array(errors, '$[*].error') FROM nikita.scheduled_events
      WHERE id = pg_temp.ev('tg_leased')),
    '["lease expired", "expired"]'::jsonb,
    'the leased one: re-queued, then expired in the same sweep, both in its history'
);

-- max_lateness is the operator's setting.
CALL pg_temp.make('late_1h', 9, 'telegram', 'pending', '-61 minutes');
UPDATE nikita.settings SET value = '"1 hour"' WHERE key = 'max_lateness';
SELECT is((nikita.sweep_events(now()) ->> 'expired')::int, 1, 'max_lateness 1 hour: 61 minutes late expires');
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('late_1h')), 'failed',
    '... that event');

-- Voice events re-queued? Never: also a voice lease that expires on its first attempt fails.
SELECT is(
    (SELECT count(*)::int FROM nikita.scheduled_events
      WHERE platform = 'voice' AND status = 'pending' AND attempts > 0),
    0, 'no voice event was ever put back to pending after a lease expiry'
);

-- A user's event waiting behind one in flight is not "due work" for the NOTIFY.
DELETE FROM nikita.scheduled_events;
UPDATE nikita.settings SET value = '"24 hours"' WHERE key = 'max_lateness';
CALL pg_temp.make('busy', 1, 'telegram', 'sending', '-2 minutes', '1 minute', 1);
CALL pg_temp.make('behind', 1, 'telegram', 'pending', '-1 minute');
SELECT is(nikita.sweep_events(now()) ->> 'notified', 'false',
    'no NOTIFY when the only due event waits behind its user''s event in flight');
CALL pg_temp.make('ops', 2, 'telegram', 'pending', '-1 minute');
SELECT is(nikita.sweep_events(now()) ->> 'notified', 'true', 'NOTIFY once claimable work is due');

-- Per-user order across lease expiry (0010): a Telegram event whose lease expired goes back to
-- its place, still ahead of its user's later events, also after a retry moved its due time; a
-- voice event whose lease expired fails and releases the user's next event.
DELETE FROM nikita.scheduled_events;
CREATE FUNCTION pg_temp.claim_names() RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(ev.name ORDER BY ev.name), '{}')
    FROM nikita.claim_events('wo', 50) AS c JOIN ev USING (id)
$$;
CALL pg_temp.make('o_first', 1, 'telegram', 'pending', '-10 minutes');
CALL pg_temp.make('o_second', 1, 'telegram', 'pending', '-5 minutes');
SELECT is(pg_temp.claim_names(), ARRAY['o_first'], 'order: the first event is claimed');
SELECT is(nikita.fail_event(pg_temp.ev('o_first'), pg_temp.tok('o_first'), 'HTTP 502'), 'pending',
    'it fails (retryable)');
-- the backoff has passed
UPDATE nikita.scheduled_events SET scheduled_at = now() - interval '1 second'
WHERE id = pg_temp.ev('o_first');
SELECT is(pg_temp.claim_names(), ARRAY['o_first'], 'the retry goes before the user''s next event');
UPDATE nikita.scheduled_events SET locked_until = now() - interval '1 second'
WHERE id = pg_temp.ev('o_first');
SELECT is(pg_temp.claim_names(), '{}'::text[],
    'an expired lease not yet swept still holds the user''s next event back');
SELECT is(nikita.sweep_events(now()) -> 'requeued', '1'::jsonb, 'the sweep re-queues it');
SELECT is(pg_temp.claim_names(), ARRAY['o_first'],
    'after the lease expiry it is claimed again before the user''s next event');
SELECT is((SELECT attempts FROM nikita.scheduled_events WHERE id = pg_temp.ev('o_first')), 3,
    '... as its third attempt');

CALL pg_temp.make('v_head', 2, 'voice', 'sending', '-10 minutes', '-1 second', 1);
CALL pg_temp.make('v_next', 2, 'telegram', 'pending', '-5 minutes');
SELECT is(nikita.sweep_events(now()) -> 'lease_failed', '1'::jsonb,
    'a voice lease expired: failed (outcome unknown)');
SELECT is(pg_temp.claim_names(), ARRAY['v_next'], 'the failed call releases the user''s next event');

-- The NOTIFY of due work counts only what a claim could take: a user's event due behind a
-- head that waits for its retry time is not.
UPDATE nikita.scheduled_events SET status = 'delivered', delivered_at = now(), locked_by = NULL,
    locked_until = NULL, lock_token = NULL
WHERE status = 'sending';
UPDATE nikita.scheduled_events SET status = 'cancelled' WHERE status = 'pending';
CALL pg_temp.make('r_head', 3, 'telegram', 'pending', '-10 minutes');
CALL pg_temp.make('r_next', 3, 'telegram', 'pending', '-5 minutes');
SELECT is(pg_temp.claim_names(), ARRAY['r_head'], 'r_head claimed');
SELECT is(nikita.fail_event(pg_temp.ev('r_head'), pg_temp.tok('r_head'), 'HTTP 502'), 'pending',
    'r_head fails (retryable)');
SELECT is(nikita.sweep_events(now()) ->> 'notified', 'false',
    'no NOTIFY for an event due behind a head waiting for its retry');
SELECT is(nikita.next_due_at(),
    (SELECT scheduled_at FROM nikita.scheduled_events WHERE id = pg_temp.ev('r_head')),
    'next_due_at: the head''s retry time');

-- Empty queue.
DELETE FROM nikita.scheduled_events;
SELECT is(
    nikita.sweep_events(),
    '{"requeued": 0, "lease_failed": 0, "expired": 0, "notified": false, "oldest_due_at": null}'::jsonb,
    'an empty queue: zero counts, p_now defaults to now()'
);

SELECT throws_ok($$SELECT nikita.sweep_events(NULL)$$, '22004', 'now must not be null', 'null p_now');
SELECT throws_ok($$SELECT nikita.sweep_events('infinity')$$, '22023',
    'now must be a finite time, got infinity', 'infinite p_now');
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events), 0, 'bad input stored nothing');

SELECT * FROM finish();
ROLLBACK;
