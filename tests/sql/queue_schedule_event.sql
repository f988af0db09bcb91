-- nikita.schedule_event: content validation, recipient defaults, dedupe, every bad input.
BEGIN;
SELECT plan(61);

INSERT INTO nikita.users (id, telegram_id, phone) VALUES
('00000000-0000-0000-0000-0000000000a1', 1001, '+4915112345678'),
('00000000-0000-0000-0000-0000000000a2', NULL, NULL),
('00000000-0000-0000-0000-0000000000a3', 1003, NULL);

CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);

-- ---------------------------------------------------------------------------------- valid
INSERT INTO ids SELECT 'tg_default', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery', '{"text": "hi"}'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'tg_default')),
    '{"text": "hi", "chat_id": 1001}'::jsonb,
    'telegram: chat_id defaults to users.telegram_id'
);
SELECT results_eq(
    $$SELECT status, attempts, max_attempts, scheduled_at = now(), user_id::text, platform, event_type
      FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'tg_default')$$,
    $$VALUES ('pending', 0, 4, true, '00000000-0000-0000-0000-0000000000a1', 'telegram',
              'message_delivery')$$,
    'a new event is pending, 0 attempts, max 4, due now by default'
);

INSERT INTO ids SELECT 'tg_full', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'telegram', 'boss_prompt',
    '{"text": "<b>boss</b>", "chat_id": -100123, "parse_mode": "HTML",
      "reply_markup": {"inline_keyboard": []}, "disable_notification": true}',
    now() + interval '1 hour'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'tg_full')),
    '{"text": "<b>boss</b>", "chat_id": -100123, "parse_mode": "HTML",
      "reply_markup": {"inline_keyboard": []}, "disable_notification": true}'::jsonb,
    'telegram: explicit chat_id and every optional key are kept as given'
);
SELECT is(
    (SELECT scheduled_at FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'tg_full')),
    now() + interval '1 hour', 'scheduled_at is stored as given'
);

INSERT INTO ids SELECT 'tg_md', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "*x*", "parse_mode": "MarkdownV2", "reply_markup": null}'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'tg_md')),
    '{"text": "*x*", "chat_id": 1003, "parse_mode": "MarkdownV2"}'::jsonb,
    'MarkdownV2 accepted; an optional key given as JSON null is dropped'
);

INSERT INTO ids SELECT 'tg_long', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
    jsonb_build_object('text', repeat('é', 32768))
);
SELECT is(
    (SELECT length(content ->> 'text') FROM nikita.scheduled_events
      WHERE id = (SELECT id FROM ids WHERE name = 'tg_long')),
    32768, 'text of exactly 32,768 characters (not bytes) is accepted'
);

INSERT INTO ids SELECT 'voice_default', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'voice', 'call_reminder',
    '{"prompt": "be nice", "first_message": "Hey!", "dynamic_variables": {"name": "Ann", "n": 2, "ok": true}}'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events
      WHERE id = (SELECT id FROM ids WHERE name = 'voice_default')),
    '{"to_number": "+4915112345678", "prompt": "be nice", "first_message": "Hey!",
      "dynamic_variables": {"name": "Ann", "n": 2, "ok": true}}'::jsonb,
    'voice: to_number defaults to users.phone; prompt, first_message, dynamic_variables kept'
);
INSERT INTO ids SELECT 'voice_explicit', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a2', 'voice', 'call_reminder', '{"to_number": "+14155550100"}'
);
SELECT is(
    (SELECT content ->> 'to_number' FROM nikita.scheduled_events
      WHERE id = (SELECT id FROM ids WHERE name = 'voice_explicit')),
    '+14155550100', 'voice: an explicit E.164 to_number for a user without a phone'
);

-- ops_alert: no user; the chat is explicit or the alert_chat_id setting.
INSERT INTO ids SELECT 'ops_explicit', nikita.schedule_event(
    NULL, 'telegram', 'ops_alert', '{"text": "job failed", "chat_id": -42}'
);
SELECT is(
    (SELECT user_id FROM nikita.scheduled_events WHERE id = (SELECT id FROM ids WHERE name = 'ops_explicit')),
    NULL, 'ops_alert without a user is accepted'
);
UPDATE nikita.settings SET value = '-777' WHERE key = 'alert_chat_id';
INSERT INTO ids SELECT 'ops_setting', nikita.schedule_event(
    NULL, 'telegram', 'ops_alert', '{"text": "job failed"}'
);
SELECT is(
    (SELECT content -> 'chat_id' FROM nikita.scheduled_events
      WHERE id = (SELECT id FROM ids WHERE name = 'ops_setting')),
    '-777'::jsonb, 'ops_alert: chat_id defaults to the alert_chat_id setting'
);
UPDATE nikita.settings SET value = NULL WHERE key = 'alert_chat_id';

-- ---------------------------------------------------------------------------------- dedupe
INSERT INTO ids SELECT 'dedupe_1', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'telegram', 'follow_up', '{"text": "once"}',
    now(), 'follow-up:a1:1'
);
SELECT is(
    nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram', 'follow_up',
        '{"text": "twice"}', now() + interval '5 minutes', 'follow-up:a1:1'),
    (SELECT id FROM ids WHERE name = 'dedupe_1'),
    'a live duplicate dedupe_key returns the existing id'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.scheduled_events WHERE dedupe_key = 'follow-up:a1:1'), 1,
    '... and stores nothing'
);
SELECT is(
    (SELECT content ->> 'text' FROM nikita.scheduled_events WHERE dedupe_key = 'follow-up:a1:1'),
    'once', '... and leaves the existing event unchanged'
);
UPDATE nikita.scheduled_events SET status = 'sending', locked_by = 'w', locked_until = now(),
    lock_token = gen_random_uuid(), attempts = 1
WHERE dedupe_key = 'follow-up:a1:1';
SELECT is(
    nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram', 'follow_up',
        '{"text": "again"}', now(), 'follow-up:a1:1'),
    (SELECT id FROM ids WHERE name = 'dedupe_1'),
    'an event in flight is live too: its id is returned'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram',
        'follow_up', '{"text": "x"}', now(), 'follow-up:a1:1')$$,
    '23505',
    format('dedupe_key "follow-up:a1:1" is live on event %s of another user',
        (SELECT id FROM ids WHERE name = 'dedupe_1')),
    'a live dedupe_key of another user is an error, not someone else''s id'
);
UPDATE nikita.scheduled_events SET status = 'delivered', delivered_at = now(), locked_by = NULL,
    locked_until = NULL, lock_token = NULL
WHERE dedupe_key = 'follow-up:a1:1';
INSERT INTO ids SELECT 'dedupe_2', nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000a1', 'telegram', 'follow_up', '{"text": "new day"}',
    now(), 'follow-up:a1:1'
);
SELECT isnt(
    (SELECT id FROM ids WHERE name = 'dedupe_2'), (SELECT id FROM ids WHERE name = 'dedupe_1'),
    'a settled event''s dedupe_key may be used again: a new event'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.scheduled_events WHERE dedupe_key = 'follow-up:a1:1'), 2,
    '... stored next to the settled one'
);

-- ---------------------------------------------------------------------------------- errors
CREATE TEMP TABLE before AS SELECT * FROM nikita.scheduled_events;

SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000ff', 'telegram',
        'message_delivery', '{"text": "x"}')$$,
    '23503', 'user_id 00000000-0000-0000-0000-0000000000ff does not exist', 'unknown user'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event(NULL, 'telegram', 'message_delivery', '{"text": "x"}')$$,
    '22004', 'user_id must not be null (only ops_alert events have no user)',
    'no user for a player event'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', NULL,
        'message_delivery', '{"text": "x"}')$$,
    '22004', 'platform must not be null', 'null platform'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'sms',
        'message_delivery', '{"text": "x"}')$$,
    '22023', 'platform must be telegram or voice, got "sms"', 'unknown platform'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram', NULL,
        '{"text": "x"}')$$,
    '22004', 'event_type must not be null', 'null event type'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'birthday', '{"text": "x"}')$$,
    '22023',
    'event_type must be one of message_delivery, call_reminder, boss_prompt, follow_up, '
    'game_over, ops_alert; got "birthday"',
    'unknown event type'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', NULL)$$,
    '22004', 'content must not be null', 'null content'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '["text"]')$$,
    '22023', 'content must be a JSON object, got array', 'content an array'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '"hi"')$$,
    '22023', 'content must be a JSON object, got string', 'content a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x"}', NULL)$$,
    '22004', 'scheduled_at must not be null', 'null scheduled_at'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x"}', 'infinity')$$,
    '22023', 'scheduled_at must be a finite time, got infinity', 'infinite scheduled_at'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x"}', now(), '')$$,
    '22023', 'dedupe_key must be 1 to 200 characters, got 0', 'empty dedupe_key'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x"}', now(), repeat('k', 201))$$,
    '22023', 'dedupe_key must be 1 to 200 characters, got 201', 'dedupe_key too long'
);
-- Telegram content
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a2', 'telegram',
        'message_delivery', '{"text": "x"}')$$,
    '22023',
    'content.chat_id is missing and user 00000000-0000-0000-0000-0000000000a2 has no telegram_id',
    'telegram: no recipient at all'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event(NULL, 'telegram', 'ops_alert', '{"text": "x"}')$$,
    '22023', 'content.chat_id is missing and no alert_chat_id is set',
    'ops_alert: no chat and no alert chat configured'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "chat_id": "@channel"}')$$,
    '22023', 'content.chat_id must be an integer chat id, got "@channel"', 'chat_id a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "chat_id": 1.5}')$$,
    '22023', 'content.chat_id must be a non-zero integer chat id, got 1.5', 'chat_id fractional'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "chat_id": 0}')$$,
    '22023', 'content.chat_id must be a non-zero integer chat id, got 0', 'chat_id zero'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "chat_id": 1e30}')$$,
    '22023',
    'content.chat_id must be a non-zero integer chat id, got 1000000000000000000000000000000',
    'chat_id beyond bigint'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{}')$$,
    '22023', 'content.text is required and must be a string', 'text missing'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": 42}')$$,
    '22023', 'content.text is required and must be a string', 'text a number'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": ""}')$$,
    '22023', 'content.text must not be empty or blank', 'text empty'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": " \n\t "}')$$,
    '22023', 'content.text must not be empty or blank', 'text blank'
);
SELECT throws_ok(
    format($$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', %L)$$, jsonb_build_object('text', repeat('x', 32769))),
    '22023', 'content.text is 32769 characters long; at most 32768', 'text too long'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "parse_mode": "Markdown"}')$$,
    '22023', 'content.parse_mode must be "HTML" or "MarkdownV2", got "Markdown"',
    'parse_mode unknown'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "parse_mode": 1}')$$,
    '22023', 'content.parse_mode must be "HTML" or "MarkdownV2", got 1', 'parse_mode a number'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "reply_markup": "[]"}')$$,
    '22023', 'content.reply_markup must be a JSON object, got string', 'reply_markup a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "disable_notification": "yes"}')$$,
    '22023', 'content.disable_notification must be a boolean, got string',
    'disable_notification a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "disable_notifications": true, "to_number": "+1"}')$$,
    '22023', 'content has unknown key(s) for telegram: disable_notifications, to_number',
    'telegram: unknown keys (a typo) are rejected'
);
-- Voice content
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'voice',
        'call_reminder', '{}')$$,
    '22023',
    'content.to_number is missing and user 00000000-0000-0000-0000-0000000000a3 has no phone',
    'voice: no recipient at all'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event(NULL, 'voice', 'ops_alert', '{}')$$,
    '22023', 'content.to_number is missing and the event has no user',
    'voice ops_alert without a number'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"to_number": "015112345678"}')$$,
    '22023',
    'content.to_number must be an E.164 number (+ and 7 to 15 digits), got "015112345678"',
    'voice: to_number not E.164'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"to_number": 4915112345678}')$$,
    '22023',
    'content.to_number must be an E.164 number (+ and 7 to 15 digits), got 4915112345678',
    'voice: to_number a number'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"prompt": {"x": 1}}')$$,
    '22023', 'content.prompt must be a string, got object', 'voice: prompt not a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"first_message": 3}')$$,
    '22023', 'content.first_message must be a string, got number',
    'voice: first_message not a string'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"dynamic_variables": ["a"]}')$$,
    '22023', 'content.dynamic_variables must be a JSON object, got array',
    'voice: dynamic_variables not an object'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"dynamic_variables": {"a": {"b": 1}, "c": null, "d": "ok"}}')$$,
    '22023',
    'content.dynamic_variables values must be strings, numbers or booleans; not: a, c',
    'voice: nested or null dynamic variable values'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'voice',
        'call_reminder', '{"text": "hi"}')$$,
    '22023', 'content has unknown key(s) for voice: text', 'voice: unknown key'
);

SELECT is(
    (SELECT count(*)::int FROM nikita.scheduled_events), (SELECT count(*)::int FROM before),
    'no bad input stored anything'
);
SELECT set_eq(
    'SELECT id, status, content FROM nikita.scheduled_events',
    'SELECT id, status, content FROM before',
    'no bad input changed a stored event'
);

-- The CHECK constraints stand behind the function for direct writes.
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content)
      VALUES ('00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
              '{"text": ""}')$$,
    '23514', NULL, 'the table refuses an empty Telegram text written directly'
);

-- The function is the friendly layer: every public function has a comment.
SELECT isnt(obj_description('nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text)'::regprocedure),
    NULL, 'schedule_event has a comment');
SELECT is(
    (SELECT prosecdef FROM pg_proc
      WHERE oid = 'nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text)'::regprocedure),
    true, 'schedule_event is SECURITY DEFINER'
);
SELECT is(
    (SELECT proconfig FROM pg_proc
      WHERE oid = 'nikita.schedule_event(uuid, text, text, jsonb, timestamptz, text)'::regprocedure),
    ARRAY['search_path=pg_catalog, pg_temp'], 'schedule_event pins search_path'
);

SELECT * FROM finish();
ROLLBACK;
