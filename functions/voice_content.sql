-- The voice content rules (ElevenLabs outbound call), checked by schedule_event; the contract,
-- with the request field each key becomes, is docs/queue.md "Voice". The keys are those the
-- game's scheduler stores and its outbound call sends (yangsi7/nikita:
-- agents/voice/scheduling.py schedule_voice_call, scheduling_overrides.py, service.py
-- make_outbound_call):
--   to_number          E.164 string; missing: the user's phone
--   agent_id           1..128 of [A-Za-z0-9_-]
--   prompt             string, at most 32,768 characters; voice_prompt (the game's name) is
--                      stored as prompt, both: error
--   first_message      string, at most 4,096 characters
--   tts                object of voice_id (1..64 of [A-Za-z0-9_-]), stability 0..1,
--                      similarity_boost 0..1, speed 0.7..1.2, expressive_mode boolean
--   dynamic_variables  object of strings, numbers or booleans within bounds; no secret__ name
--                      (the shim adds the call's secrets at call time, never stored)
--   source_platform    "telegram" or "voice" (kept for the game, never sent)
--   meta               bounded object (content_bounds.sql _check_meta), never sent
--   any other key      refused
-- Every error is 22023 naming the member.

CREATE OR REPLACE FUNCTION nikita._voice_content(p_content jsonb, p_user_id uuid, p_phone text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_content jsonb := p_content;
    v_unknown text;
    v_value jsonb;
BEGIN
    SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
    FROM pg_catalog.jsonb_object_keys(v_content) AS k (key)
    WHERE k.key NOT IN ('to_number', 'agent_id', 'prompt', 'voice_prompt', 'first_message',
        'tts', 'dynamic_variables', 'source_platform', 'meta');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content has unknown key(s) for voice: %', v_unknown
            USING ERRCODE = '22023',
            HINT = 'allowed: to_number, agent_id, prompt, voice_prompt, first_message, tts, '
                'dynamic_variables, source_platform, meta';
    END IF;
    -- The game stores the prompt as voice_prompt; the shim reads one name.
    IF v_content ? 'voice_prompt' THEN
        IF v_content ? 'prompt' THEN
            RAISE EXCEPTION 'content has both prompt and voice_prompt; give one'
                USING ERRCODE = '22023';
        END IF;
        v_content := (v_content - 'voice_prompt')
            || pg_catalog.jsonb_build_object('prompt', v_content -> 'voice_prompt');
    END IF;

    v_value := v_content -> 'to_number';
    IF v_value IS NULL THEN
        IF p_phone IS NULL THEN
            RAISE EXCEPTION 'content.to_number is missing and %',
                CASE WHEN p_user_id IS NULL THEN 'the event has no user'
                    ELSE format('user %s has no phone', p_user_id) END
                USING ERRCODE = '22023', HINT = 'no recipient for a voice event';
        END IF;
        v_content := v_content || pg_catalog.jsonb_build_object('to_number', p_phone);
    ELSIF pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR NOT nikita.is_e164(v_value #>> '{}') THEN
        RAISE EXCEPTION 'content.to_number must be an E.164 number (+ and 7 to 15 digits), '
            'got %', v_value
            USING ERRCODE = '22023';
    END IF;

    v_value := v_content -> 'agent_id';
    IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR (v_value #>> '{}') !~ '^[A-Za-z0-9_-]{1,128}$') THEN
        RAISE EXCEPTION 'content.agent_id must be a string of 1 to 128 letters, digits, _ or -, '
            'got %', pg_catalog.left(v_value::text, 200)
            USING ERRCODE = '22023';
    END IF;
    v_value := v_content -> 'source_platform';
    IF v_value IS NOT NULL AND v_value NOT IN ('"telegram"'::jsonb, '"voice"'::jsonb) THEN
        RAISE EXCEPTION 'content.source_platform must be "telegram" or "voice", got %',
            pg_catalog.left(v_value::text, 200)
            USING ERRCODE = '22023';
    END IF;
    PERFORM nikita._check_voice_tts(v_content);
    PERFORM nikita._check_meta(v_content);
    PERFORM nikita._check_optional_key(v_content, 'prompt', 'string', 'a string');
    PERFORM nikita._check_optional_key(v_content, 'first_message', 'string', 'a string');
    PERFORM nikita._check_optional_key(
        v_content, 'dynamic_variables', 'object', 'a JSON object'
    );
    IF pg_catalog.length(v_content ->> 'prompt') > 32768 THEN
        RAISE EXCEPTION 'content.prompt is % characters long; at most 32768',
            pg_catalog.length(v_content ->> 'prompt')
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.length(v_content ->> 'first_message') > 4096 THEN
        RAISE EXCEPTION 'content.first_message is % characters long; at most 4096',
            pg_catalog.length(v_content ->> 'first_message')
            USING ERRCODE = '22023';
    END IF;
    v_value := v_content -> 'dynamic_variables';
    IF v_value IS NOT NULL THEN
        IF pg_catalog.pg_column_size(v_value) > 65536 THEN
            RAISE EXCEPTION 'content.dynamic_variables is % bytes; at most 65536',
                pg_catalog.pg_column_size(v_value)
                USING ERRCODE = '22023';
        END IF;
        IF (SELECT count(*) FROM pg_catalog.jsonb_object_keys(v_value)) > 100 THEN
            RAISE EXCEPTION 'content.dynamic_variables has % entries; at most 100',
                (SELECT count(*) FROM pg_catalog.jsonb_object_keys(v_value))
                USING ERRCODE = '22023';
        END IF;
        SELECT string_agg(kv.key, ', ' ORDER BY kv.key) INTO v_unknown
        FROM pg_catalog.jsonb_each(v_value) AS kv
        WHERE pg_catalog.length(kv.key) NOT BETWEEN 1 AND 128
            OR (pg_catalog.jsonb_typeof(kv.value) = 'string'
                AND pg_catalog.length(kv.value #>> '{}') > 4096);
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'content.dynamic_variables: names must be 1 to 128 characters and '
                'string values at most 4096; not: %', pg_catalog.left(v_unknown, 200)
                USING ERRCODE = '22023';
        END IF;
        SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
        FROM pg_catalog.jsonb_object_keys(v_value) AS k (key)
        WHERE pg_catalog.starts_with(k.key, 'secret__');
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'content.dynamic_variables must not hold secret__ names (the shim '
                'adds them at call time): %', pg_catalog.left(v_unknown, 200)
                USING ERRCODE = '22023';
        END IF;
        SELECT string_agg(kv.key, ', ' ORDER BY kv.key) INTO v_unknown
        FROM pg_catalog.jsonb_each(v_value) AS kv
        WHERE pg_catalog.jsonb_typeof(kv.value) NOT IN ('string', 'number', 'boolean');
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'content.dynamic_variables values must be strings, numbers or '
                'booleans; not: %', v_unknown
                USING ERRCODE = '22023';
        END IF;
    END IF;
    RETURN v_content;
END
$$;
COMMENT ON FUNCTION nikita._voice_content(jsonb, uuid, text)
IS 'Internal: p_content (JSON nulls already dropped) checked against the voice content rules '
'(functions/voice_content.sql), to_number filled in with p_phone when missing; 22023 naming '
'the member otherwise. p_user_id only words the no-recipient error.';
REVOKE EXECUTE ON FUNCTION nikita._voice_content(jsonb, uuid, text) FROM PUBLIC;

-- content.tts: the per-call voice settings of the game's conversation_config_override.tts
-- (its TTSSettings ranges; ElevenLabs documents the same for stability, similarity_boost and
-- speed). Members are optional, never null; any other member is refused. Internal.
CREATE OR REPLACE FUNCTION nikita._check_voice_tts(p_content jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tts jsonb := p_content -> 'tts';
    v_unknown text;
    v_value jsonb;
    v_range record;
BEGIN
    IF v_tts IS NULL THEN
        RETURN;
    END IF;
    PERFORM nikita._check_optional_key(p_content, 'tts', 'object', 'a JSON object');
    SELECT string_agg(k.key, ', ' ORDER BY k.key) INTO v_unknown
    FROM pg_catalog.jsonb_object_keys(v_tts) AS k (key)
    WHERE k.key NOT IN ('voice_id', 'stability', 'similarity_boost', 'speed', 'expressive_mode');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content.tts has unknown key(s): %', pg_catalog.left(v_unknown, 200)
            USING ERRCODE = '22023',
            HINT = 'allowed: voice_id, stability, similarity_boost, speed, expressive_mode';
    END IF;
    v_value := v_tts -> 'voice_id';
    IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'string'
        OR (v_value #>> '{}') !~ '^[A-Za-z0-9_-]{1,64}$') THEN
        RAISE EXCEPTION 'content.tts.voice_id must be a string of 1 to 64 letters, digits, _ '
            'or -, got %', pg_catalog.left(v_value::text, 200)
            USING ERRCODE = '22023';
    END IF;
    FOR v_range IN
        SELECT * FROM (VALUES ('stability', 0.0, 1.0), ('similarity_boost', 0.0, 1.0),
            ('speed', 0.7, 1.2)) AS r (key, lo, hi)
    LOOP
        v_value := v_tts -> v_range.key;
        IF v_value IS NOT NULL AND (pg_catalog.jsonb_typeof(v_value) <> 'number'
            OR (v_value #>> '{}')::numeric NOT BETWEEN v_range.lo AND v_range.hi) THEN
            RAISE EXCEPTION 'content.tts.% must be a number from % to %, got %', v_range.key,
                v_range.lo, v_range.hi, pg_catalog.left(v_value::text, 200)
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    v_value := v_tts -> 'expressive_mode';
    IF v_value IS NOT NULL AND pg_catalog.jsonb_typeof(v_value) <> 'boolean' THEN
        RAISE EXCEPTION 'content.tts.expressive_mode must be a boolean, got %',
            pg_catalog.left(v_value::text, 200)
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita._check_voice_tts(jsonb)
IS 'Internal: 22023 naming the member unless p_content has no tts or it holds only voice_id, '
'stability, similarity_boost, speed, expressive_mode within their ranges.';
REVOKE EXECUTE ON FUNCTION nikita._check_voice_tts(jsonb) FROM PUBLIC;
