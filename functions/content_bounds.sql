-- Bounds every event content obeys, whatever its platform (issue: a reply_markup nested 3,000
-- levels deep was accepted and stopped every delivery): at most 262,144 bytes (jsonb) and no
-- value more than 16 levels below the content object, the same expression as the CHECK
-- scheduled_events_content_bounded (sql/0009). schedule_event checks them first, before any
-- other work on the content. Plus the type check of an optional key, shared by both platforms.

CREATE OR REPLACE FUNCTION nikita._check_content_bounds(p_content jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_size integer;
BEGIN
    -- Bounds before any other work on the content (same expression as CHECK
    -- scheduled_events_content_bounded). pg_column_size reads the header only.
    v_size := pg_catalog.pg_column_size(p_content);
    IF v_size > 262144 THEN
        RAISE EXCEPTION 'content is % bytes; at most 262144 (largest member: %)', v_size, (
            SELECT pg_catalog.format('%s, %s bytes', kv.key, pg_catalog.pg_column_size(kv.value))
            FROM pg_catalog.jsonb_each(p_content) AS kv
            ORDER BY pg_catalog.pg_column_size(kv.value) DESC, kv.key LIMIT 1
        )
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_path_exists(p_content, 'strict $.**{17}') THEN
        RAISE EXCEPTION 'content.% is nested too deeply: at most 16 levels below content',
            nikita._too_deep_member(p_content)
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita._check_content_bounds(jsonb)
IS 'Internal: 22023 naming the largest or the too deep member unless p_content is at most '
'262144 bytes and 16 levels deep.';
REVOKE EXECUTE ON FUNCTION nikita._check_content_bounds(jsonb) FROM PUBLIC;

-- The first member of p_content (in key order) that nests more than 16 levels below the content
-- object, for the error message; called only when the content is too deep. Internal.
CREATE OR REPLACE FUNCTION nikita._too_deep_member(p_content jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT kv.key FROM pg_catalog.jsonb_each(p_content) AS kv
    WHERE pg_catalog.jsonb_path_exists(kv.value, 'strict $.**{16}')
    ORDER BY kv.key LIMIT 1
$$;
COMMENT ON FUNCTION nikita._too_deep_member(jsonb)
IS 'Internal: the first member of p_content nested more than 16 levels below the content.';
REVOKE EXECUTE ON FUNCTION nikita._too_deep_member(jsonb) FROM PUBLIC;

-- An optional content key, when present, must have one JSON type. Internal; granted to nobody.
CREATE OR REPLACE FUNCTION nikita._check_optional_key(
    p_content jsonb, p_key text, p_type text, p_what text
)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := pg_catalog.jsonb_typeof(p_content -> p_key);
BEGIN
    IF v_type IS NOT NULL AND v_type <> p_type THEN
        RAISE EXCEPTION 'content.% must be %, got %', p_key, p_what, v_type
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita._check_optional_key(jsonb, text, text, text)
IS 'Internal: 22023 unless p_content has no p_key or its value is of JSON type p_type.';
REVOKE EXECUTE ON FUNCTION nikita._check_optional_key(jsonb, text, text, text) FROM PUBLIC;

-- content.meta (both platforms): the game's own data, kept and never sent (docs/queue.md
-- "meta"). Bounded on its own so it cannot crowd out the message: at most 4,096 bytes of its
-- JSON text as PostgreSQL writes it, and no value more than 4 levels below it. Internal.
CREATE OR REPLACE FUNCTION nikita._check_meta(p_content jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_meta jsonb := p_content -> 'meta';
    v_size integer;
BEGIN
    IF v_meta IS NULL THEN
        RETURN;
    END IF;
    PERFORM nikita._check_optional_key(p_content, 'meta', 'object', 'a JSON object');
    v_size := pg_catalog.octet_length(v_meta::text);
    IF v_size > 4096 THEN
        RAISE EXCEPTION 'content.meta is % bytes; at most 4096', v_size
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_path_exists(v_meta, 'strict $.**{5}') THEN
        RAISE EXCEPTION 'content.meta is nested too deeply: at most 4 levels below meta'
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION nikita._check_meta(jsonb)
IS 'Internal: 22023 naming content.meta unless p_content has no meta or it is a JSON object of '
'at most 4096 bytes (its text) and 4 levels.';
REVOKE EXECUTE ON FUNCTION nikita._check_meta(jsonb) FROM PUBLIC;
