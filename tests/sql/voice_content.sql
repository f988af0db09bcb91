-- nikita._voice_content through schedule_event: the per-call fields the game's scheduler
-- stores (docs/queue.md "Voice"), each accepted with its type, each bad value refused with
-- 22023 naming the key; meta bounds (functions/content_bounds.sql _check_meta).
BEGIN;
SELECT plan(46);

INSERT INTO nikita.users (id, telegram_id, phone) VALUES
('00000000-0000-0000-0000-0000000000d1', 4001, '+4915112345678');

-- The stored content of a voice event scheduled with p_content.
-- (plpgsql: the SELECT must see the row the call inserted)
CREATE FUNCTION pg_temp.stored(p_content jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid := nikita.schedule_event(
        '00000000-0000-0000-0000-0000000000d1', 'voice', 'call_reminder', p_content);
BEGIN
    RETURN (SELECT content FROM nikita.scheduled_events WHERE id = v_id);
END
$$;
CREATE FUNCTION pg_temp.bad(p_content jsonb, p_message text, p_what text)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(
        format('SELECT nikita.schedule_event(%L, %L, %L, %L)',
            '00000000-0000-0000-0000-0000000000d1', 'voice', 'call_reminder', p_content),
        '22023', p_message, p_what)
$$;
-- n levels of {"a": ...} around 1.
CREATE FUNCTION pg_temp.nest(p_levels int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT (repeat('{"a": ', p_levels) || '1' || repeat('}', p_levels))::jsonb
$$;

-- ------------------------------------------------------------------------------ accepted
-- What the game's build_scheduled_outbound_override sends, as stored content.
SELECT is(
    pg_temp.stored('{"agent_id": "agent_01jx-Nikita", "prompt": "p", "first_message": "hey",
        "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM", "stability": 0.35, "similarity_boost": 0.8,
                "speed": 1.05, "expressive_mode": true},
        "dynamic_variables": {"user_name": "Ana", "chapter": 3, "boss": false},
        "source_platform": "telegram", "meta": {"reason": "follow_up", "n": [1, {"b": null}]}}'),
    '{"to_number": "+4915112345678", "agent_id": "agent_01jx-Nikita", "prompt": "p",
      "first_message": "hey",
      "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM", "stability": 0.35, "similarity_boost": 0.8,
              "speed": 1.05, "expressive_mode": true},
      "dynamic_variables": {"user_name": "Ana", "chapter": 3, "boss": false},
      "source_platform": "telegram", "meta": {"reason": "follow_up", "n": [1, {"b": null}]}}'::jsonb,
    'every per-call field is accepted and stored as given, to_number filled in'
);
-- What the game's schedule_voice_call stores today.
SELECT is(
    pg_temp.stored('{"voice_prompt": "call about the date", "agent_id": "nikita_ch3",
        "source_platform": null}'),
    '{"to_number": "+4915112345678", "prompt": "call about the date", "agent_id": "nikita_ch3"}'::jsonb,
    'the game''s voice_prompt is stored as prompt; a null source_platform is dropped'
);
SELECT is(pg_temp.stored('{"source_platform": "voice"}') -> 'source_platform', '"voice"'::jsonb,
    'source_platform voice');
SELECT is(pg_temp.stored('{"tts": {}}') -> 'tts', '{}'::jsonb, 'an empty tts object');
SELECT is(
    pg_temp.stored('{"tts": {"stability": 0, "similarity_boost": 1, "speed": 0.7}}') -> 'tts',
    '{"stability": 0, "similarity_boost": 1, "speed": 0.7}'::jsonb, 'tts lower bounds and 1');
SELECT is(pg_temp.stored('{"tts": {"speed": 1.2, "stability": 1}}') -> 'tts',
    '{"speed": 1.2, "stability": 1}'::jsonb, 'tts upper bounds');
SELECT ok(pg_temp.stored(jsonb_build_object('agent_id', repeat('a', 128))) ->> 'agent_id'
    = repeat('a', 128), 'agent_id of 128 characters');
SELECT ok(pg_temp.stored(jsonb_build_object('tts', jsonb_build_object('voice_id', repeat('v', 64))))
    #>> '{tts,voice_id}' = repeat('v', 64), 'voice_id of 64 characters');
SELECT ok(pg_temp.stored(jsonb_build_object('meta', ('{"a": "' || repeat('x', 4087) || '"}')::jsonb))
    #>> '{meta,a}' = repeat('x', 4087), 'meta of exactly 4096 bytes');
SELECT is(pg_temp.stored(jsonb_build_object('meta', pg_temp.nest(4))) -> 'meta', pg_temp.nest(4),
    'meta 4 levels deep');
SELECT is(pg_temp.stored('{"meta": {"a": [[[1]]]}}') -> 'meta', '{"a": [[[1]]]}'::jsonb,
    'meta: arrays count as levels, 4 deep');
SELECT is(pg_temp.stored('{"dynamic_variables": {"secret_user": "x"}}') -> 'dynamic_variables',
    '{"secret_user": "x"}'::jsonb, 'a name merely starting with secret_ is fine');

-- ------------------------------------------------------------------------------ refused
SELECT pg_temp.bad('{"voice_prompt": "a", "prompt": "b"}',
    'content has both prompt and voice_prompt; give one', 'prompt and voice_prompt together');
SELECT pg_temp.bad('{"voice_prompt": 7}', 'content.prompt must be a string, got number',
    'voice_prompt not a string');
SELECT pg_temp.bad(jsonb_build_object('voice_prompt', repeat('p', 32769)),
    'content.prompt is 32769 characters long; at most 32768', 'voice_prompt too long');
SELECT pg_temp.bad('{"agent_id": 12}',
    'content.agent_id must be a string of 1 to 128 letters, digits, _ or -, got 12',
    'agent_id a number');
SELECT pg_temp.bad('{"agent_id": ""}',
    'content.agent_id must be a string of 1 to 128 letters, digits, _ or -, got ""',
    'agent_id empty');
SELECT pg_temp.bad('{"agent_id": "agent 1"}',
    'content.agent_id must be a string of 1 to 128 letters, digits, _ or -, got "agent 1"',
    'agent_id with a space');
SELECT pg_temp.bad(jsonb_build_object('agent_id', repeat('a', 129)),
    format('content.agent_id must be a string of 1 to 128 letters, digits, _ or -, got "%s"',
        repeat('a', 129)),
    'agent_id of 129 characters');
SELECT pg_temp.bad('{"source_platform": "sms"}',
    'content.source_platform must be "telegram" or "voice", got "sms"', 'source_platform unknown');
SELECT pg_temp.bad('{"source_platform": true}',
    'content.source_platform must be "telegram" or "voice", got true', 'source_platform boolean');
SELECT pg_temp.bad('{"tts": [1]}', 'content.tts must be a JSON object, got array', 'tts an array');
SELECT pg_temp.bad('{"tts": {"pitch": 1, "speed": 1}}', 'content.tts has unknown key(s): pitch',
    'tts unknown member');
SELECT pg_temp.bad('{"tts": {"voice_id": null}}',
    'content.tts.voice_id must be a string of 1 to 64 letters, digits, _ or -, got null',
    'tts.voice_id null');
SELECT pg_temp.bad(jsonb_build_object('tts', jsonb_build_object('voice_id', repeat('v', 65))),
    format('content.tts.voice_id must be a string of 1 to 64 letters, digits, _ or -, got "%s"',
        repeat('v', 65)),
    'tts.voice_id of 65 characters');
SELECT pg_temp.bad('{"tts": {"stability": 1.01}}',
    'content.tts.stability must be a number from 0.0 to 1.0, got 1.01', 'stability above 1');
SELECT pg_temp.bad('{"tts": {"stability": -0.1}}',
    'content.tts.stability must be a number from 0.0 to 1.0, got -0.1', 'stability below 0');
SELECT pg_temp.bad('{"tts": {"similarity_boost": "0.5"}}',
    'content.tts.similarity_boost must be a number from 0.0 to 1.0, got "0.5"',
    'similarity_boost a string');
SELECT pg_temp.bad('{"tts": {"speed": 0.69}}',
    'content.tts.speed must be a number from 0.7 to 1.2, got 0.69', 'speed below 0.7');
SELECT pg_temp.bad('{"tts": {"speed": 1.21}}',
    'content.tts.speed must be a number from 0.7 to 1.2, got 1.21', 'speed above 1.2');
SELECT pg_temp.bad('{"tts": {"expressive_mode": "yes"}}',
    'content.tts.expressive_mode must be a boolean, got "yes"', 'expressive_mode a string');
SELECT pg_temp.bad('{"dynamic_variables": {"secret__signed_token": "t", "secret__user_id": "u"}}',
    'content.dynamic_variables must not hold secret__ names (the shim adds them at call time): '
    'secret__signed_token, secret__user_id',
    'stored secret__ dynamic variables are refused (the token is made at call time)');
SELECT pg_temp.bad('{"meta": [1]}', 'content.meta must be a JSON object, got array',
    'meta an array');
SELECT pg_temp.bad('{"meta": "x"}', 'content.meta must be a JSON object, got string',
    'meta a string');
SELECT pg_temp.bad(jsonb_build_object('meta', ('{"a": "' || repeat('x', 4088) || '"}')::jsonb),
    'content.meta is 4097 bytes; at most 4096', 'meta of 4097 bytes');
SELECT pg_temp.bad(jsonb_build_object('meta', ('{"a": "' || repeat('é', 2044) || '"}')::jsonb),
    'content.meta is 4097 bytes; at most 4096', 'meta size is in bytes, not characters');
SELECT pg_temp.bad(jsonb_build_object('meta', pg_temp.nest(5)),
    'content.meta is nested too deeply: at most 4 levels below meta', 'meta 5 levels deep');
SELECT pg_temp.bad('{"meta": {"a": [[[[1]]]]}}',
    'content.meta is nested too deeply: at most 4 levels below meta', 'meta: 5 levels with arrays');
SELECT pg_temp.bad('{"agent": "x", "voice_settings": {}}',
    'content has unknown key(s) for voice: agent, voice_settings', 'unknown keys still refused');
SELECT pg_temp.bad('{"conversation_config_override": {}}',
    'content has unknown key(s) for voice: conversation_config_override',
    'no raw override: its parts have their own keys');
-- The content bounds still apply, before any of this.
SELECT pg_temp.bad(jsonb_build_object('meta', jsonb_build_object('a', pg_temp.nest(16))),
    'content.meta is nested too deeply: at most 16 levels below content',
    'content bounds are checked first');

-- The game's schedule_voice_call with its source conversation: the seven-argument form.
INSERT INTO nikita.users (id, telegram_id) VALUES ('00000000-0000-0000-0000-0000000000d2', 4002);
INSERT INTO nikita.conversations (id, user_id, platform) VALUES
('00000000-0000-0000-0000-00000000d001', '00000000-0000-0000-0000-0000000000d1', 'telegram'),
('00000000-0000-0000-0000-00000000d002', '00000000-0000-0000-0000-0000000000d2', 'telegram');
CREATE TEMP TABLE linked AS SELECT nikita.schedule_event(
    '00000000-0000-0000-0000-0000000000d1', 'voice', 'call_reminder',
    '{"voice_prompt": "p", "agent_id": "nikita_ch3", "source_platform": "telegram"}',
    now() + interval '2 hours', NULL, '00000000-0000-0000-0000-00000000d001') AS id;
SELECT results_eq(
    $$SELECT source_conversation_id::text, scheduled_at - now(), content
      FROM nikita.scheduled_events WHERE id = (SELECT id FROM linked)$$,
    $$VALUES ('00000000-0000-0000-0000-00000000d001', interval '2 hours',
      '{"to_number": "+4915112345678", "prompt": "p", "agent_id": "nikita_ch3",
        "source_platform": "telegram"}'::jsonb)$$,
    'schedule_event with a source conversation links it (the game''s schedule_voice_call)'
);
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000d1', 'voice',
        'call_reminder', '{}', now(), NULL, '00000000-0000-0000-0000-00000000d002')$$,
    '22023', 'source_conversation_id 00000000-0000-0000-0000-00000000d002 belongs to another user',
    'a conversation of another user is refused');
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000d1', 'voice',
        'call_reminder', '{}', now(), NULL, '00000000-0000-0000-0000-00000000d009')$$,
    '23503', 'source_conversation_id 00000000-0000-0000-0000-00000000d009 does not exist',
    'an unknown conversation is refused');
SELECT throws_ok(
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000000d1', 'voice',
        'call_reminder', '{}', NULL, NULL, NULL::uuid)$$,
    '22004', 'scheduled_at must not be null', 'the seven-argument form: scheduled_at required');

SELECT is((SELECT count(*) FROM nikita.scheduled_events WHERE status = 'pending'
    AND user_id = '00000000-0000-0000-0000-0000000000d1'), 13::bigint,
    'nothing refused was stored');

SELECT * FROM finish();
ROLLBACK;
