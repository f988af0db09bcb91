-- Operator API (sql/0020_ops_role.sql, docs/queue.md "Operator API"): find events.
--
-- What an operator sees of an event's content: what diagnosis needs, not the message. By
-- default `content` is a summary (_admin_content): its keys, the Telegram chat_id and the
-- text's length, a voice number masked to its last 4 digits. The message itself only with
-- p_with_text => true, an explicit choice per call (the CLI's --with-text), never by default.
-- Error texts (last_error, errors) are providers' answers and always shown.

CREATE OR REPLACE FUNCTION nikita._admin_content(p_platform text, p_content jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'keys', (SELECT pg_catalog.jsonb_agg(k ORDER BY k) FROM pg_catalog.jsonb_object_keys(p_content) AS k),
        'chat_id', CASE WHEN p_platform = 'telegram' THEN p_content -> 'chat_id' END,
        'text_chars', pg_catalog.length(p_content ->> 'text'),
        'to_number', CASE WHEN p_content ? 'to_number' THEN
            pg_catalog.left(p_content ->> 'to_number', 3)
            || pg_catalog.repeat('*', greatest(pg_catalog.length(p_content ->> 'to_number') - 7, 0))
            || pg_catalog.right(p_content ->> 'to_number', 4) END
    ));
$$;
COMMENT ON FUNCTION nikita._admin_content(text, jsonb) IS
'Internal to the operator API: what an operator sees of an event''s content without '
'p_with_text: its keys, chat_id, the text''s length, the number masked to its last 4 digits.';

-- The filter values the API accepts (the CHECKs of scheduled_events, sql/0001; a new event type
-- is added here too, docs/development.md "Adding an event type").
CREATE OR REPLACE FUNCTION nikita._admin_check_filter(p_what text, p_value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_allowed text[] := CASE p_what
        WHEN 'status' THEN ARRAY['pending', 'sending', 'delivered', 'failed', 'cancelled']
        WHEN 'event_type' THEN ARRAY['message_delivery', 'call_reminder', 'boss_prompt',
            'follow_up', 'game_over', 'ops_alert']
    END;
BEGIN
    IF p_value IS NOT NULL AND NOT p_value = ANY (v_allowed) THEN
        RAISE EXCEPTION '% must be one of %, not "%"', p_what,
            pg_catalog.array_to_string(v_allowed, ', '), p_value
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita._admin_check_filter(text, text) IS
'Internal to the operator API: 22023 unless p_value (NULL: no filter) is a valid '
'scheduled_events status or event_type (p_what).';

CREATE OR REPLACE FUNCTION nikita.find_events(
    p_user_id uuid DEFAULT NULL,
    p_status text DEFAULT NULL,
    p_event_type text DEFAULT NULL,
    p_from timestamptz DEFAULT NULL,
    p_to timestamptz DEFAULT NULL,
    p_limit integer DEFAULT 50,
    p_with_text boolean DEFAULT false
)
RETURNS TABLE (
    id uuid,
    user_id uuid,
    platform text,
    event_type text,
    status text,
    order_time timestamptz,
    scheduled_at timestamptz,
    attempts integer,
    max_attempts integer,
    error_count integer,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    content jsonb
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM nikita._admin_check_filter('status', p_status);
    PERFORM nikita._admin_check_filter('event_type', p_event_type);
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000, not %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_with_text IS NULL THEN
        RAISE EXCEPTION 'with_text must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_from > p_to THEN
        RAISE EXCEPTION 'time range is empty: from % is after to %', p_from, p_to
            USING ERRCODE = '22023';
    END IF;
    -- The time range and the order are the user's order key: the time the app asked for.
    RETURN QUERY
    SELECT
        e.id, e.user_id, e.platform, e.event_type, e.status,
        coalesce(e.order_at, e.scheduled_at), e.scheduled_at, e.attempts, e.max_attempts,
        pg_catalog.jsonb_array_length(e.errors), e.last_error, e.delivered_at, e.created_at,
        e.updated_at,
        CASE WHEN p_with_text THEN e.content
            ELSE nikita._admin_content(e.platform, e.content) END
    FROM nikita.scheduled_events AS e
    WHERE
        (p_user_id IS NULL OR e.user_id = p_user_id)
        AND (p_status IS NULL OR e.status = p_status)
        AND (p_event_type IS NULL OR e.event_type = p_event_type)
        AND (p_from IS NULL OR coalesce(e.order_at, e.scheduled_at) >= p_from)
        AND (p_to IS NULL OR coalesce(e.order_at, e.scheduled_at) < p_to)
    ORDER BY coalesce(e.order_at, e.scheduled_at) DESC, e.seq DESC
    LIMIT p_limit;
END
$$;
COMMENT ON FUNCTION nikita.find_events(uuid, text, text, timestamptz, timestamptz, integer, boolean)
IS 'Operator API: events by user, status, event_type and time range [p_from, p_to) of the time '
'the app asked for (order_time = coalesce(order_at, scheduled_at)), newest first, at most '
'p_limit (1..1000). content is a summary (keys, chat_id, text_chars, masked to_number) unless '
'p_with_text. 22023: unknown status or event_type, limit out of range, p_from after p_to; '
'22004: null with_text. Executable by nikita_ops.';

REVOKE EXECUTE ON FUNCTION
nikita._admin_content(text, jsonb),
nikita._admin_check_filter(text, text),
nikita.find_events(uuid, text, text, timestamptz, timestamptz, integer, boolean)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
nikita.find_events(uuid, text, text, timestamptz, timestamptz, integer, boolean)
TO nikita_ops;
