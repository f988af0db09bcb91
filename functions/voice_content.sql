-- The voice content rules (ElevenLabs outbound call), checked by schedule_event: to_number an
-- E.164 string (missing: the user's phone), prompt and first_message strings within bounds,
-- dynamic_variables an object of strings, numbers or booleans within bounds; no other key.
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
    WHERE k.key NOT IN ('to_number', 'prompt', 'first_message', 'dynamic_variables');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'content has unknown key(s) for voice: %', v_unknown
            USING ERRCODE = '22023',
            HINT = 'allowed: to_number, prompt, first_message, dynamic_variables';
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
