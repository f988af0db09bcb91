-- nikita._telegram_content: the keys the game's producers add to Telegram events
-- (response_id on replies, meta), through schedule_event and schedule_reply; everything else
-- still refused. The older keys are covered by tests/sql/schedule_event.sql.
BEGIN;
SELECT plan(18);

INSERT INTO nikita.users (id, telegram_id, chapter) VALUES
('00000000-0000-0000-0000-0000000000e1', 5001, 5);

CREATE FUNCTION pg_temp.stored(p_content jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := nikita.schedule_event(
        '00000000-0000-0000-0000-0000000000e1', 'telegram', 'message_delivery', p_content);
BEGIN
    RETURN (SELECT content FROM nikita.scheduled_events WHERE id = v_id);
END
$$;
CREATE FUNCTION pg_temp.bad(p_content jsonb, p_message text, p_what text)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(
        format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
            '00000000-0000-0000-0000-0000000000e1', 'telegram', 'message_delivery', p_content),
        '22023', p_message, p_what)
$$;

-- What the game's store_pending_response writes.
SELECT is(
    pg_temp.stored('{"chat_id": 5001, "text": "hey", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}'),
    '{"chat_id": 5001, "text": "hey", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}'::jsonb,
    'the game''s reply content (chat_id, text, response_id) is accepted as is'
);
SELECT is(
    pg_temp.stored('{"text": "x", "response_id": "0B8E6F2A-3C1D-4E5F-8A9B-0C1D2E3F4A5B"}') ->> 'response_id',
    '0B8E6F2A-3C1D-4E5F-8A9B-0C1D2E3F4A5B', 'response_id in upper case');
SELECT is(pg_temp.stored('{"text": "x", "meta": {"source": "handler", "k": [1, true, null]}}') -> 'meta',
    '{"source": "handler", "k": [1, true, null]}'::jsonb, 'meta kept as given');
SELECT is(pg_temp.stored('{"text": "x", "meta": {}}') -> 'meta', '{}'::jsonb, 'an empty meta');
SELECT is(pg_temp.stored('{"text": "x", "response_id": null, "meta": null}'),
    '{"text": "x", "chat_id": 5001}'::jsonb, 'null response_id and meta are dropped');

SELECT pg_temp.bad('{"text": "x", "response_id": 12}',
    'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got 12',
    'response_id a number');
SELECT pg_temp.bad('{"text": "x", "response_id": "0b8e6f2a3c1d4e5f8a9b0c1d2e3f4a5b"}',
    'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got "0b8e6f2a3c1d4e5f8a9b0c1d2e3f4a5b"',
    'response_id without dashes');
SELECT pg_temp.bad('{"text": "x", "response_id": "{0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b}"}',
    'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got "{0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b}"',
    'response_id in braces');
SELECT pg_temp.bad('{"text": "x", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5g"}',
    'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5g"',
    'response_id not hex');
SELECT pg_temp.bad('{"text": "x", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b\n"}',
    'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b\n"',
    'response_id with a trailing newline');
SELECT pg_temp.bad('{"text": "x", "meta": [1]}', 'content.meta must be a JSON object, got array',
    'meta an array');
SELECT pg_temp.bad(jsonb_build_object('text', 'x', 'meta', ('{"a": "' || repeat('x', 4088) || '"}')::jsonb),
    'content.meta is 4097 bytes; at most 4096', 'meta of 4097 bytes');
SELECT pg_temp.bad('{"text": "x", "meta": {"a": {"b": {"c": {"d": {"e": 1}}}}}}',
    'content.meta is nested too deeply: at most 4 levels below meta', 'meta 5 levels deep');
SELECT pg_temp.bad('{"text": "x", "source_platform": "telegram"}',
    'content has unknown key(s) for telegram: source_platform',
    'voice-only keys are unknown to Telegram');
SELECT pg_temp.bad('{"text": "x", "responseId": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}',
    'content has unknown key(s) for telegram: responseId', 'unknown keys still refused');

-- schedule_reply: the game's reply path with its response id.
CREATE TEMP TABLE reply AS SELECT nikita.schedule_reply(
    '00000000-0000-0000-0000-0000000000e1', 'hi', NULL, NULL,
    '{"response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5c", "meta": {"turn": 3}}') AS id;
SELECT is(
    (SELECT content FROM nikita.scheduled_events
      WHERE id = (SELECT id FROM reply)),
    '{"chat_id": 5001, "text": "hi", "response_id": "0b8e6f2a-3c1d-4e5f-8a9b-0c1d2e3f4a5c",
      "meta": {"turn": 3}}'::jsonb,
    'schedule_reply: options response_id and meta are stored');
SELECT throws_ok(
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-0000000000e1', 'hi', NULL, NULL,
        '{"response_id": "r-1"}')$$,
    '22023', 'content.response_id must be a UUID string (8-4-4-4-12 hex digits), got "r-1"',
    'schedule_reply: a bad response_id is refused');

SELECT is((SELECT count(*) FROM nikita.scheduled_events
    WHERE user_id = '00000000-0000-0000-0000-0000000000e1'), 6::bigint,
    'nothing refused was stored');

SELECT * FROM finish();
ROLLBACK;
