-- Operator API (sql/0020_ops_role.sql): one event with its whole error history. What of the
-- content is shown: see functions/admin_find_events.sql.

CREATE OR REPLACE FUNCTION nikita.show_event(p_id uuid, p_with_text boolean DEFAULT false)
RETURNS TABLE (
    id uuid,
    user_id uuid,
    platform text,
    event_type text,
    status text,
    order_time timestamptz,
    scheduled_at timestamptz,
    seq bigint,
    attempts integer,
    max_attempts integer,
    locked_by text,
    locked_until timestamptz,
    provider_ref text,
    dedupe_key text,
    source_conversation_id uuid,
    last_error text,
    errors jsonb,
    delivered_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    content jsonb
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_with_text IS NULL THEN
        RAISE EXCEPTION 'with_text must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN QUERY
    SELECT
        e.id, e.user_id, e.platform, e.event_type, e.status,
        coalesce(e.order_at, e.scheduled_at), e.scheduled_at, e.seq, e.attempts, e.max_attempts,
        e.locked_by, e.locked_until, e.provider_ref, e.dedupe_key, e.source_conversation_id,
        e.last_error, e.errors, e.delivered_at, e.created_at, e.updated_at,
        CASE WHEN p_with_text THEN e.content
            ELSE nikita._admin_content(e.platform, e.content) END
    FROM nikita.scheduled_events AS e
    WHERE e.id = p_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no event %', p_id USING ERRCODE = 'P0002';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita.show_event(uuid, boolean)
IS 'Operator API: event p_id with its errors history ([{at, attempt, error, retryable, ...}], '
'oldest first) and lease; content summarised unless p_with_text (see find_events). '
'P0002: no such event; 22004: null argument. Executable by nikita_ops.';
REVOKE EXECUTE ON FUNCTION nikita.show_event(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.show_event(uuid, boolean) TO nikita_ops;
