-- nikita.schedule_event: content validation, recipient defaults, dedupe, every bad input.
BEGIN;
SELECT plan(100);

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
    'game_over, ops_alert, decay_warning; got "birthday"',
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

-- ---------------------------------------------------------- bounds (issue 9, item 2; 0009)
-- Every member has a depth and a size limit; Telegram's own limits where it has them.
CREATE FUNCTION pg_temp.bad(p_platform text, p_content jsonb, p_message text, p_what text)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(
        format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
            '00000000-0000-0000-0000-0000000000a1', p_platform, 'message_delivery', p_content),
        '22023', p_message, p_what)
$$;
-- n levels of {"a": ...} around 1.
CREATE FUNCTION pg_temp.nest(p_levels int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT (repeat('{"a": ', p_levels) || '1' || repeat('}', p_levels))::jsonb
$$;
-- A row of p_n inline buttons.
CREATE FUNCTION pg_temp.row_(p_n int, p_button jsonb DEFAULT '{"text": "b", "callback_data": "c"}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(p_button), '[]') FROM generate_series(1, p_n)
$$;

SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', pg_temp.nest(3000)),
    'content.reply_markup is nested too deeply: at most 16 levels below content',
    'a reply_markup nested 3,000 levels deep is refused, naming the member');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        jsonb_build_array(jsonb_build_array(
            jsonb_build_object('text', 'b', 'x', pg_temp.nest(12)))))),
    'content.reply_markup is nested too deeply: at most 16 levels below content',
    'a value 17 levels below content is refused (the button''s x holds it at level 17)');
SELECT pg_temp.bad('voice', jsonb_build_object('dynamic_variables', pg_temp.nest(16)),
    'content.dynamic_variables is nested too deeply: at most 16 levels below content',
    'voice: depth is bounded for every member (dynamic_variables)');
SELECT pg_temp.bad('telegram', jsonb_build_object('text', 'x', 'junk', repeat('j', 300000)),
    format('content is %s bytes; at most 262144 (largest member: junk, %s bytes)',
        pg_column_size(jsonb_build_object('text', 'x', 'junk', repeat('j', 300000))),
        pg_column_size(to_jsonb(repeat('j', 300000)))),
    'content over 262144 bytes is refused before anything else, naming its largest member');
SELECT pg_temp.bad('telegram', jsonb_build_object('text', U&'\00A0\200B'),
    'content.text must not be empty or blank',
    'a text of only U+00A0 and U+200B is blank');
SELECT pg_temp.bad('telegram', jsonb_build_object('text', U&'\FEFF\3000\2028'),
    'content.text must not be empty or blank',
    'a text of only U+FEFF, U+3000, U+2028 is blank');

-- reply_markup: Telegram's ReplyMarkup types and limits.
SELECT pg_temp.bad('telegram', '{"text": "x", "reply_markup": {"selective": true}}',
    'content.reply_markup must have exactly one of inline_keyboard, keyboard, remove_keyboard, '
    'force_reply; got none', 'reply_markup: no keyboard kind');
SELECT pg_temp.bad('telegram',
    '{"text": "x", "reply_markup": {"inline_keyboard": [], "force_reply": true}}',
    'content.reply_markup must have exactly one of inline_keyboard, keyboard, remove_keyboard, '
    'force_reply; got force_reply, inline_keyboard', 'reply_markup: two kinds');
SELECT pg_temp.bad('telegram',
    '{"text": "x", "reply_markup": {"inline_keyboard": [], "resize_keyboard": true}}',
    'content.reply_markup has unknown key(s) for inline_keyboard: resize_keyboard',
    'reply_markup: a key of another kind');
SELECT pg_temp.bad('telegram', '{"text": "x", "reply_markup": {"remove_keyboard": false}}',
    'content.reply_markup.remove_keyboard must be true', 'reply_markup: remove_keyboard false');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup',
        jsonb_build_object('force_reply', true, 'input_field_placeholder', repeat('p', 65))),
    'content.reply_markup.input_field_placeholder must be a string of 1 to 64 characters',
    'reply_markup: input_field_placeholder of 65 characters');
SELECT pg_temp.bad('telegram', '{"text": "x", "reply_markup": {"keyboard": [["a"]], "selective": 1}}',
    'content.reply_markup: selective must be boolean', 'reply_markup: a flag not boolean');
SELECT pg_temp.bad('telegram', '{"text": "x", "reply_markup": {"inline_keyboard": {"a": 1}}}',
    'content.reply_markup.inline_keyboard must be an array of rows',
    'inline_keyboard not an array');
SELECT pg_temp.bad('telegram', '{"text": "x", "reply_markup": {"inline_keyboard": ["b"]}}',
    'content.reply_markup.inline_keyboard[0] must be an array of buttons',
    'inline_keyboard row not an array');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup',
        jsonb_build_object('inline_keyboard', jsonb_build_array(pg_temp.row_(9)))),
    'content.reply_markup.inline_keyboard[0] has 9 buttons; at most 8 a row',
    'inline keyboard: 9 buttons in a row');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        (SELECT jsonb_agg(pg_temp.row_(8)) FROM generate_series(1, 13)))),
    'content.reply_markup.inline_keyboard has more than 100 buttons',
    'inline keyboard: 104 buttons');
SELECT pg_temp.bad('telegram',
    '{"text": "x", "reply_markup": {"inline_keyboard": [[{"text": "ok", "url": "u"}, "b"]]}}',
    'content.reply_markup.inline_keyboard[0][1] must be a button object',
    'inline button not an object');
SELECT pg_temp.bad('telegram',
    '{"text": "x", "reply_markup": {"inline_keyboard": [[{"callback_data": "c"}]]}}',
    'content.reply_markup.inline_keyboard[0][0].text is required and must not be blank',
    'inline button without text');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('keyboard',
        jsonb_build_array(jsonb_build_array('ok', U&'\00A0\200B')))),
    'content.reply_markup.keyboard[0][1].text is required and must not be blank',
    'reply keyboard: a blank button (U+00A0, U+200B)');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        jsonb_build_array(pg_temp.row_(1, jsonb_build_object('text', repeat('t', 257)))))),
    'content.reply_markup.inline_keyboard[0][0].text is 257 characters long; at most 256',
    'button text of 257 characters');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        jsonb_build_array(pg_temp.row_(1,
            jsonb_build_object('text', 'b', 'callback_data', repeat('é', 33)))))),
    'content.reply_markup.inline_keyboard[0][0].callback_data must be a string of 1 to 64 bytes, '
    'got 66 bytes',
    'callback_data of 33 characters but 66 bytes (Telegram counts bytes)');
SELECT pg_temp.bad('telegram',
    '{"text": "x", "reply_markup": {"inline_keyboard": [[{"text": "b", "callback_data": ""}]]}}',
    'content.reply_markup.inline_keyboard[0][0].callback_data must be a string of 1 to 64 bytes, '
    'got 0 bytes', 'empty callback_data');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        jsonb_build_array(pg_temp.row_(1, jsonb_build_object('text', 'b', 'copy_text',
            jsonb_build_object('text', repeat('c', 257))))))),
    'content.reply_markup.inline_keyboard[0][0].copy_text.text must be a string of 1 to 256 '
    'characters', 'copy_text.text of 257 characters');
SELECT pg_temp.bad('telegram',
    jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
        (SELECT jsonb_agg(pg_temp.row_(5, jsonb_build_object('text', 'b', 'url',
            'https://example.org/' || repeat('u', 500)))) FROM generate_series(1, 8)))),
    format('content.reply_markup is %s bytes; at most 16384',
        pg_column_size(jsonb_build_object('inline_keyboard',
        (SELECT jsonb_agg(pg_temp.row_(5, jsonb_build_object('text', 'b', 'url',
            'https://example.org/' || repeat('u', 500)))) FROM generate_series(1, 8))))),
    'reply_markup over 16384 bytes (40 buttons with long urls)');

-- Voice members.
SELECT pg_temp.bad('voice', jsonb_build_object('prompt', repeat('p', 32769)),
    'content.prompt is 32769 characters long; at most 32768', 'voice: prompt too long');
SELECT pg_temp.bad('voice', jsonb_build_object('first_message', repeat('f', 4097)),
    'content.first_message is 4097 characters long; at most 4096',
    'voice: first_message too long');
SELECT pg_temp.bad('voice',
    jsonb_build_object('dynamic_variables',
        (SELECT jsonb_object_agg('v' || i, i) FROM generate_series(1, 101) AS i)),
    'content.dynamic_variables has 101 entries; at most 100', 'voice: 101 dynamic variables');
SELECT pg_temp.bad('voice',
    jsonb_build_object('dynamic_variables',
        jsonb_build_object(repeat('n', 129), 1, 'ok', 'fine', 'long', repeat('v', 4097))),
    'content.dynamic_variables: names must be 1 to 128 characters and string values at most '
    '4096; not: long, ' || repeat('n', 129),
    'voice: a dynamic variable name over 128 characters, a value over 4096');
SELECT pg_temp.bad('voice',
    jsonb_build_object('dynamic_variables',
        (SELECT jsonb_object_agg('v' || i, repeat('v', 4000)) FROM generate_series(1, 20) AS i)),
    format('content.dynamic_variables is %s bytes; at most 65536',
        pg_column_size((SELECT jsonb_object_agg('v' || i, repeat('v', 4000))
            FROM generate_series(1, 20) AS i))),
    'voice: dynamic_variables over 65536 bytes');

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

-- ------------------------------------------------------------- bounds: the limits themselves
SELECT lives_ok(
    format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
        '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
        jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
            jsonb_build_array(jsonb_build_array(
                jsonb_build_object('text', 'b', 'x', pg_temp.nest(11))))))),
    'a value exactly 16 levels below content is accepted');
SELECT lives_ok(
    format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
        '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
        jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
            (SELECT jsonb_agg(pg_temp.row_(CASE WHEN r <= 12 THEN 8 ELSE 4 END,
                jsonb_build_object('text', 'b', 'callback_data', repeat('é', 32))))
             FROM generate_series(1, 13) AS r)))),
    'an inline keyboard of 100 buttons, 8 a row, callback_data of 64 bytes is accepted');
SELECT lives_ok(
    format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
        '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
        jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object('inline_keyboard',
            jsonb_build_array(jsonb_build_array(jsonb_build_object('text', repeat('t', 256),
                'copy_text', jsonb_build_object('text', repeat('c', 256)))))))),
    'button text and copy_text.text of 256 characters are accepted');
SELECT lives_ok(
    format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
        '00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery',
        jsonb_build_object('text', 'x', 'reply_markup', jsonb_build_object(
            'keyboard', jsonb_build_array(jsonb_build_array('yes', jsonb_build_object('text', 'no'))),
            'one_time_keyboard', true, 'input_field_placeholder', repeat('p', 64)))),
    'a reply keyboard (string and object buttons) with a 64-character placeholder is accepted');
SELECT lives_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000a1', 'telegram',
        'message_delivery', '{"text": "x", "reply_markup": {"remove_keyboard": true}}')$$,
    'remove_keyboard true is accepted');
SELECT lives_ok(
    format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
        '00000000-0000-0000-0000-0000000000a1', 'voice', 'call_reminder',
        jsonb_build_object('prompt', repeat('p', 32768), 'first_message', repeat('f', 4096),
            'dynamic_variables', (SELECT jsonb_object_agg(repeat('n', 120) || i, 'v')
                FROM generate_series(1, 100) AS i))),
    'voice: prompt 32768, first_message 4096 characters, 100 dynamic variables are accepted');

-- ------------------------------------------------------------ scheduled_at far in the past
-- Earlier than now() - max_lateness (24 h) the next sweep would expire the event unsent: it is
-- stored as due now. Within max_lateness a past time is kept (its place in line).
CREATE TEMP TABLE past (name text PRIMARY KEY, id uuid);
INSERT INTO past VALUES
('25h', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "late"}', now() - interval '25 hours')),
('24h', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "edge"}', now() - interval '24 hours')),
('23h', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "recent"}', now() - interval '23 hours')),
('1900', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "ancient"}', '1900-01-01Z'));
SELECT results_eq(
    $$SELECT p.name, e.scheduled_at - now() FROM past AS p
      JOIN nikita.scheduled_events AS e ON e.id = p.id ORDER BY p.name$$,
    $$VALUES ('1900', interval '0'), ('23h', interval '-23 hours'), ('24h', interval '-24 hours'),
             ('25h', interval '0')$$,
    'beyond max_lateness: stored as now; exactly max_lateness or less: kept'
);
SELECT is(nikita.sweep_events(now()) ->> 'expired', '0',
    'so the next sweep expires none of them');
UPDATE nikita.settings SET value = '"1 hour"' WHERE key = 'max_lateness';
INSERT INTO past VALUES
('2h', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "2h"}', now() - interval '2 hours')),
('59m', nikita.schedule_event('00000000-0000-0000-0000-0000000000a3', 'telegram', 'follow_up',
    '{"text": "59m"}', now() - interval '59 minutes'));
SELECT results_eq(
    $$SELECT p.name, e.scheduled_at - now() FROM past AS p
      JOIN nikita.scheduled_events AS e ON e.id = p.id WHERE p.name IN ('2h', '59m')
      ORDER BY p.name$$,
    $$VALUES ('2h', interval '0'), ('59m', interval '-59 minutes')$$,
    '"far" follows the max_lateness setting'
);
UPDATE nikita.settings SET value = '"24 hours"' WHERE key = 'max_lateness';

-- The content bound stands behind the function for direct writes too.
SELECT throws_ok(
    format($$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content)
      VALUES ('00000000-0000-0000-0000-0000000000a1', 'telegram', 'message_delivery', %L)$$,
      jsonb_build_object('chat_id', 1, 'text', 'x', 'reply_markup', pg_temp.nest(3000))),
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_content_bounded"',
    'the table refuses content nested 3,000 levels deep written directly'
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
