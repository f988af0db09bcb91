-- A Telegram reply of the game, delayed like a person typing: a uniform random delay within the
-- reply_delays range of the user's chapter (chapter 5: 0, immediate).

CREATE OR REPLACE FUNCTION nikita.schedule_reply(
    p_user_id uuid,
    p_text text,
    p_source_conversation_id uuid DEFAULT NULL,
    p_dedupe_key text DEFAULT NULL,
    p_options jsonb DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_chapter smallint;
    v_min interval;
    v_max interval;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_text IS NULL THEN
        RAISE EXCEPTION 'text must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_options IS NOT NULL AND pg_catalog.jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object, got %', pg_catalog.jsonb_typeof(p_options)
            USING ERRCODE = '22023';
    END IF;
    IF p_options ? 'text' THEN
        RAISE EXCEPTION 'options must not contain text (pass it as p_text)'
            USING ERRCODE = '22023';
    END IF;

    SELECT u.chapter INTO v_chapter FROM nikita.users AS u WHERE u.id = p_user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user_id % does not exist', p_user_id
            USING ERRCODE = '23503', HINT = 'events are scheduled for rows of nikita.users';
    END IF;
    SELECT d.min_delay, d.max_delay INTO v_min, v_max
    FROM nikita.reply_delays AS d WHERE d.chapter = v_chapter;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no reply_delays row for chapter %', v_chapter USING ERRCODE = 'P0002';
    END IF;

    RETURN nikita._schedule(
        p_user_id,
        'telegram',
        'message_delivery',
        coalesce(p_options, '{}'::jsonb) || pg_catalog.jsonb_build_object('text', p_text),
        pg_catalog.now() + v_min + (v_max - v_min) * pg_catalog.random(),
        p_dedupe_key,
        p_source_conversation_id
    );
END
$$;
COMMENT ON FUNCTION nikita.schedule_reply(uuid, text, uuid, text, jsonb)
IS 'Queue a Telegram reply (message_delivery) to the user''s chat, due after a delay drawn '
'uniformly from reply_delays of the user''s chapter (chapter 5: now). p_options may add '
'parse_mode, reply_markup, disable_notification, chat_id, response_id or meta; '
'p_source_conversation_id links the reply to the conversation it answers; p_dedupe_key as in '
'schedule_event. Errors as schedule_event (22004, 22023, 23503, 23505).';
REVOKE EXECUTE ON FUNCTION nikita.schedule_reply(uuid, text, uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.schedule_reply(uuid, text, uuid, text, jsonb) TO nikita_app;
