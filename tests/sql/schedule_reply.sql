-- nikita.schedule_reply: chapter delays, content, conversation link, bad input.
BEGIN;
SELECT plan(23);

INSERT INTO nikita.users (id, telegram_id, chapter) VALUES
('00000000-0000-0000-0000-0000000000b1', 2001, 1),
('00000000-0000-0000-0000-0000000000b3', 2003, 3),
('00000000-0000-0000-0000-0000000000b5', 2005, 5),
('00000000-0000-0000-0000-0000000000b0', NULL, 2);
INSERT INTO nikita.conversations (id, user_id, platform) VALUES
('00000000-0000-0000-0000-00000000c001', '00000000-0000-0000-0000-0000000000b1', 'telegram'),
('00000000-0000-0000-0000-00000000c003', '00000000-0000-0000-0000-0000000000b3', 'telegram');

-- 200 replies per chapter: every delay within the chapter's range, and spread over it.
CREATE TEMP TABLE scheduled AS
SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', 'r' || i) AS id
FROM generate_series(1, 200) AS i
UNION ALL
SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b3', 'r' || i)
FROM generate_series(1, 200) AS i
UNION ALL
SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b5', 'r' || i)
FROM generate_series(1, 20) AS i;

CREATE TEMP VIEW delays AS
SELECT u.chapter, e.scheduled_at - now() AS delay
FROM nikita.scheduled_events AS e JOIN nikita.users AS u ON u.id = e.user_id;

SELECT ok((SELECT bool_and(delay BETWEEN '2 minutes' AND '5 minutes') FROM delays WHERE chapter = 1),
    'chapter 1: every delay within 2 to 5 minutes');
SELECT ok((SELECT max(delay) - min(delay) > interval '2 minutes' FROM delays WHERE chapter = 1),
    'chapter 1: delays spread over the range (uniform), not a constant');
SELECT ok((SELECT count(*) FILTER (WHERE delay < '3 minutes 30 seconds') BETWEEN 50 AND 150
           FROM delays WHERE chapter = 1),
    'chapter 1: about half below the midpoint');
SELECT ok((SELECT bool_and(delay BETWEEN '30 seconds' AND '2 minutes') FROM delays WHERE chapter = 3),
    'chapter 3: every delay within 30 s to 2 min');
SELECT ok((SELECT max(delay) - min(delay) > interval '45 seconds' FROM delays WHERE chapter = 3),
    'chapter 3: delays spread over the range');
SELECT is((SELECT max(delay) FROM delays WHERE chapter = 5), interval '0',
    'chapter 5: immediate (due now)');

SELECT results_eq(
    $$SELECT DISTINCT platform, event_type, status, content ? 'chat_id'
      FROM nikita.scheduled_events$$,
    $$VALUES ('telegram', 'message_delivery', 'pending', true)$$,
    'replies are pending Telegram message_delivery events to the user''s chat'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events WHERE user_id = '00000000-0000-0000-0000-0000000000b5'
      AND content ->> 'text' = 'r7'),
    '{"text": "r7", "chat_id": 2005}'::jsonb, 'content is the text and the chat'
);

-- Options, conversation link, dedupe.
INSERT INTO scheduled SELECT nikita.schedule_reply(
    '00000000-0000-0000-0000-0000000000b3', '<i>hm</i>', '00000000-0000-0000-0000-00000000c003',
    'reply:c003', '{"parse_mode": "HTML", "disable_notification": true}'
);
SELECT is(
    (SELECT content FROM nikita.scheduled_events WHERE dedupe_key = 'reply:c003'),
    '{"text": "<i>hm</i>", "chat_id": 2003, "parse_mode": "HTML", "disable_notification": true}'::jsonb,
    'options are merged into the content'
);
SELECT is(
    (SELECT source_conversation_id FROM nikita.scheduled_events WHERE dedupe_key = 'reply:c003'),
    '00000000-0000-0000-0000-00000000c003'::uuid, 'source_conversation_id is stored'
);
SELECT is(
    nikita.schedule_reply('00000000-0000-0000-0000-0000000000b3', 'again', NULL, 'reply:c003'),
    (SELECT id FROM nikita.scheduled_events WHERE dedupe_key = 'reply:c003'),
    'a live duplicate dedupe_key returns the existing reply'
);

-- Bad input: nothing stored.
CREATE TEMP TABLE before AS SELECT id FROM nikita.scheduled_events;
SELECT throws_ok(
    $$SELECT nikita.schedule_reply(NULL, 'x')$$, '22004', 'user_id must not be null', 'null user'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', NULL)$$,
    '22004', 'text must not be null', 'null text'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000ff', 'x')$$,
    '23503', 'user_id 00000000-0000-0000-0000-0000000000ff does not exist', 'unknown user'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', ' ')$$,
    '22023', 'content.text must not be empty or blank', 'blank text'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b0', 'x')$$,
    '22023',
    'content.chat_id is missing and user 00000000-0000-0000-0000-0000000000b0 has no telegram_id',
    'user without a Telegram chat'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', 'x',
        '00000000-0000-0000-0000-00000000c0ff')$$,
    '23503', 'source_conversation_id 00000000-0000-0000-0000-00000000c0ff does not exist',
    'unknown conversation'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', 'x',
        '00000000-0000-0000-0000-00000000c003')$$,
    '22023', 'source_conversation_id 00000000-0000-0000-0000-00000000c003 belongs to another user',
    'another user''s conversation'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000b1', 'x', NULL, NULL,
        '{"text": "y"}')$$,
    '22023', 'options must not contain text (pass it as p_text)', 'text in options'
);
-- The bounds of schedule_event apply (0009).
SELECT throws_ok(
    format('SELECT nikita.schedule_reply(%L, %L)', '00000000-0000-0000-0000-0000000000b1',
        U&'\00A0\200B\00A0'),
    '22023', 'content.text must not be empty or blank',
    'a text of only non-breaking and zero-width spaces is blank');
SELECT throws_ok(
    format('SELECT nikita.schedule_reply(%L, %L, NULL, NULL, %L)',
        '00000000-0000-0000-0000-0000000000b1', 'x',
        jsonb_build_object('reply_markup',
            (repeat('{"a": ', 3000) || '1' || repeat('}', 3000))::jsonb)),
    '22023', 'content.reply_markup is nested too deeply: at most 16 levels below content',
    'options with a reply_markup nested 3,000 levels deep');
SELECT throws_ok(
    format('SELECT nikita.schedule_reply(%L, %L, NULL, NULL, %L)',
        '00000000-0000-0000-0000-0000000000b1', 'x',
        jsonb_build_object('reply_markup', jsonb_build_object('inline_keyboard',
            jsonb_build_array(jsonb_build_array(
                jsonb_build_object('text', 'b', 'callback_data', repeat('c', 65))))))),
    '22023',
    'content.reply_markup.inline_keyboard[0][0].callback_data must be a string of 1 to 64 bytes, '
    'got 65 bytes',
    'options with a callback_data of 65 bytes');
SELECT set_eq('SELECT id FROM nikita.scheduled_events', 'SELECT id FROM before',
    'no bad input stored anything');

SELECT * FROM finish();
ROLLBACK;
