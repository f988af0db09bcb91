-- The notification opt-out (functions/notifications.sql, _schedule in
-- functions/schedule_event.sql, trigger users_notifications_opt_out in sql/0014): a proactive
-- event for a player who opted out ends cancelled with the reason, at scheduling or when the
-- player opts out with events pending; answers and operator alerts always go.
BEGIN;
SELECT plan(20);
\ir _shared/events.psql

INSERT INTO nikita.users (id, telegram_id, phone, notifications_enabled) VALUES
('00000000-0000-0000-0000-0000000000b1', 2001, '+4915112345678', false),  -- opted out
('00000000-0000-0000-0000-0000000000b2', 2002, '+4915112345679', true);
CREATE FUNCTION pg_temp.out_() RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT '00000000-0000-0000-0000-0000000000b1'::uuid $$;
CREATE FUNCTION pg_temp.in_() RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT '00000000-0000-0000-0000-0000000000b2'::uuid $$;
CREATE FUNCTION pg_temp.st(p_name text) RETURNS TABLE (status text, last_error text)
LANGUAGE sql AS $$
    SELECT status, last_error FROM nikita.scheduled_events WHERE id = pg_temp.ev(p_name)
$$;
CREATE FUNCTION pg_temp.reason() RETURNS text LANGUAGE sql AS $$
    SELECT 'cancelled: the player turned notifications off (users.notifications_enabled = '
        || 'false); proactive messages are not delivered'
$$;

SELECT results_eq(
    $$SELECT t, nikita._is_proactive_event(t) FROM unnest(ARRAY['message_delivery',
      'call_reminder', 'boss_prompt', 'follow_up', 'game_over', 'ops_alert', 'decay_warning'])
      AS t ORDER BY t$$,
    $$VALUES ('boss_prompt', false), ('call_reminder', true), ('decay_warning', true),
             ('follow_up', true), ('game_over', true), ('message_delivery', false),
             ('ops_alert', false)$$,
    'proactive: call_reminder, decay_warning, follow_up, game_over; answers and alerts are not'
);

-- ---------------------------------------------------------------------------------------------
-- Scheduled for a player who opted out
-- ---------------------------------------------------------------------------------------------
INSERT INTO ev VALUES
('out_follow', nikita.schedule_event(pg_temp.out_(), 'telegram', 'follow_up', '{"text": "a"}')),
('out_warn', nikita.schedule_event(pg_temp.out_(), 'telegram', 'decay_warning', '{"text": "b"}',
    now(), 'k:out_warn')),
('out_over', nikita.schedule_event(pg_temp.out_(), 'telegram', 'game_over', '{"text": "c"}')),
('out_call', nikita.schedule_event(pg_temp.out_(), 'voice', 'call_reminder', '{}')),
('out_reply', nikita.schedule_event(pg_temp.out_(), 'telegram', 'message_delivery',
    '{"text": "d"}')),
('out_boss', nikita.schedule_event(pg_temp.out_(), 'telegram', 'boss_prompt', '{"text": "e"}')),
('out_sreply', nikita.schedule_reply(pg_temp.out_(), 'f')),
('in_follow', nikita.schedule_event(pg_temp.in_(), 'telegram', 'follow_up', '{"text": "g"}'));

SELECT results_eq(
    $$SELECT e.name, s.status, s.last_error FROM ev AS e, pg_temp.st(e.name) AS s
      WHERE e.name IN ('out_follow', 'out_warn', 'out_over', 'out_call') ORDER BY e.name$$,
    $$SELECT n, 'cancelled', pg_temp.reason()
      FROM unnest(ARRAY['out_call', 'out_follow', 'out_over', 'out_warn']) AS n$$,
    'opted out: each proactive event is stored cancelled, the reason in last_error'
);
SELECT results_eq(
    $$SELECT content, dedupe_key, event_type FROM nikita.scheduled_events
      WHERE id = pg_temp.ev('out_warn')$$,
    $$VALUES ('{"text": "b", "chat_id": 2001}'::jsonb, 'k:out_warn', 'decay_warning')$$,
    'the cancelled event is stored as validated (recipient, dedupe key): a record of what was not sent'
);
SELECT results_eq(
    $$SELECT e.name, s.status, s.last_error FROM ev AS e, pg_temp.st(e.name) AS s
      WHERE e.name IN ('out_reply', 'out_boss', 'out_sreply', 'in_follow') ORDER BY e.name$$,
    $$VALUES ('in_follow', 'pending', NULL::text), ('out_boss', 'pending', NULL),
             ('out_reply', 'pending', NULL), ('out_sreply', 'pending', NULL)$$,
    'replies (message_delivery, schedule_reply, boss_prompt) always go; an opted-in player gets all'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event(pg_temp.out_(), 'telegram', 'follow_up', '{"text": " "}')$$,
    '22023', NULL, 'opted out: bad content is still refused...'
);
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events WHERE user_id = pg_temp.out_()), 7,
    '...and nothing is stored for it');
-- Not live: the same key may be scheduled again (and is cancelled again).
SELECT isnt(
    nikita.schedule_event(pg_temp.out_(), 'telegram', 'decay_warning', '{"text": "b"}', now(),
        'k:out_warn'),
    pg_temp.ev('out_warn'),
    'a cancelled event is not live: its dedupe key does not return it'
);
UPDATE nikita.settings SET value = '-777' WHERE key = 'alert_chat_id';
INSERT INTO ev VALUES
('ops', nikita.schedule_event(NULL, 'telegram', 'ops_alert', '{"text": "ops"}'));
SELECT is((SELECT status FROM pg_temp.st('ops')), 'pending',
    'ops_alert has no player: always pending');

-- The claim never sees them: only the opted-out player's answers are claimed.
SELECT results_eq(
    $$SELECT event_type FROM nikita.claim_events('w1', 50) WHERE user_id = pg_temp.out_()
      ORDER BY event_type$$,
    $$VALUES ('message_delivery')$$,
    'claim_events delivers the opted-out player''s head answer, never a cancelled event'
);

-- ---------------------------------------------------------------------------------------------
-- Opting out with events pending; opting back in
-- ---------------------------------------------------------------------------------------------
INSERT INTO ev VALUES
('in_call', nikita.schedule_event(pg_temp.in_(), 'voice', 'call_reminder', '{}',
    now() + interval '1 hour')),
('in_warn', nikita.schedule_event(pg_temp.in_(), 'telegram', 'decay_warning', '{"text": "w"}',
    now() + interval '1 hour')),
('in_reply', nikita.schedule_event(pg_temp.in_(), 'telegram', 'message_delivery',
    '{"text": "r"}', now() + interval '1 hour')),
('in_sent', nikita.schedule_event(pg_temp.in_(), 'telegram', 'follow_up', '{"text": "s"}',
    now() + interval '1 hour'));
-- in_follow was claimed above (sending): in flight, it is not recalled.
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('in_follow')),
    'sending', 'in_follow is in flight');
-- Another column changing does not fire the opt-out.
UPDATE nikita.users SET timezone = 'Europe/Berlin' WHERE id = pg_temp.in_();
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events
    WHERE user_id = pg_temp.in_() AND status = 'cancelled'), 0,
    'an update of another column cancels nothing');

UPDATE nikita.users SET notifications_enabled = false WHERE id = pg_temp.in_();
SELECT results_eq(
    $$SELECT e.name, s.status, s.last_error FROM ev AS e, pg_temp.st(e.name) AS s
      WHERE e.name IN ('in_call', 'in_warn', 'in_sent') ORDER BY e.name$$,
    $$SELECT n, 'cancelled', pg_temp.reason()
      FROM unnest(ARRAY['in_call', 'in_sent', 'in_warn']) AS n$$,
    'opting out cancels the player''s pending proactive events, with the reason'
);
SELECT results_eq(
    $$SELECT e.name, s.status FROM ev AS e, pg_temp.st(e.name) AS s
      WHERE e.name IN ('in_reply', 'in_follow') ORDER BY e.name$$,
    $$VALUES ('in_follow', 'sending'), ('in_reply', 'pending')$$,
    'the pending reply stays; the event in flight is not recalled'
);
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events
    WHERE user_id = pg_temp.out_() AND status = 'cancelled'), 5,
    'another player''s events are untouched by this opt-out');
INSERT INTO ev VALUES
('in_later', nikita.schedule_event(pg_temp.in_(), 'telegram', 'follow_up', '{"text": "later"}'));
SELECT is((SELECT status FROM pg_temp.st('in_later')), 'cancelled',
    'after opting out, a new proactive event is stored cancelled');

-- Opting back in: what was cancelled stays cancelled; new events go out again.
UPDATE nikita.users SET notifications_enabled = true WHERE id = pg_temp.in_();
SELECT is((SELECT status FROM nikita.scheduled_events WHERE id = pg_temp.ev('in_warn')),
    'cancelled', 'opting back in does not revive cancelled events');
INSERT INTO ev VALUES
('in_again', nikita.schedule_event(pg_temp.in_(), 'telegram', 'follow_up', '{"text": "again"}'));
SELECT results_eq(
    $$SELECT * FROM pg_temp.st('in_again')$$,
    $$VALUES ('pending', NULL::text)$$,
    'opted back in: a new proactive event is pending');
-- Turning it off when it is already off fires nothing (the trigger's WHEN): nothing to check
-- beyond that it works.
UPDATE nikita.users SET notifications_enabled = false WHERE id = pg_temp.out_();
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events
    WHERE user_id = pg_temp.out_() AND status = 'pending'), 2,
    'off again while off: the pending answers stay');

-- ---------------------------------------------------------------------------------------------
-- Decay: the game over and the warning of a player who opted out
-- ---------------------------------------------------------------------------------------------
INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
    timezone, last_interaction_at, created_at, notifications_enabled) VALUES
('00000000-0000-0000-0000-0000000000c1', 3001, 1, 1.00, 'completed', 'UTC',
 '2026-11-28 02:00Z', '2026-01-01Z', false),
('00000000-0000-0000-0000-0000000000c2', 3002, 1, 45.00, 'completed', 'UTC',
 '2026-11-27 18:00Z', '2026-01-01Z', false);  -- 45 -> 37
SELECT is(nikita.apply_decay('2026-11-28 12:00Z') ->> 'game_overs', '1', 'decay ends one game');
SELECT results_eq(
    $$SELECT user_id::text, event_type, status, last_error FROM nikita.scheduled_events
      WHERE user_id IN ('00000000-0000-0000-0000-0000000000c1',
                        '00000000-0000-0000-0000-0000000000c2') ORDER BY user_id$$,
    $$VALUES ('00000000-0000-0000-0000-0000000000c1', 'game_over', 'cancelled', pg_temp.reason()),
             ('00000000-0000-0000-0000-0000000000c2', 'decay_warning', 'cancelled',
              pg_temp.reason())$$,
    'decay''s game_over and warning messages to players who opted out: stored cancelled'
);
SELECT finish();
ROLLBACK;
