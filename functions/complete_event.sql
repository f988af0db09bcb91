-- Settling a delivered event: sending -> delivered, only with the lock token of the current
-- claim. A stale token (the lease expired and the sweep re-queued or failed the event, or
-- another worker claimed it again) changes nothing: false, and a WARNING saying so.

CREATE OR REPLACE FUNCTION nikita.complete_event(
    p_id uuid,
    p_lock_token uuid,
    p_provider_ref text DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'id must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_lock_token IS NULL THEN
        RAISE EXCEPTION 'lock_token must not be null' USING ERRCODE = '22004';
    END IF;

    UPDATE nikita.scheduled_events AS e
    SET status = 'delivered',
        delivered_at = pg_catalog.now(),
        -- Cut, never refused: a delivered event must settle (a refusal would send it twice).
        provider_ref = pg_catalog.left(p_provider_ref, 1024),
        locked_by = NULL,
        locked_until = NULL,
        lock_token = NULL,
        updated_at = pg_catalog.now()
    WHERE e.id = p_id AND e.lock_token = p_lock_token AND e.status = 'sending';
    IF FOUND THEN
        RETURN true;
    END IF;

    PERFORM nikita._warn_lease_lost('complete_event', p_id, 'completed');
    RETURN false;
END
$$;
COMMENT ON FUNCTION nikita.complete_event(uuid, uuid, text)
IS 'Mark a claimed event delivered (provider_ref: Telegram message_id or call id). True when '
'done; false with a WARNING when the lock token is no longer the current claim (lease lost). '
'22004 for a null id or token.';
REVOKE EXECUTE ON FUNCTION nikita.complete_event(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.complete_event(uuid, uuid, text) TO nikita_worker;

CREATE OR REPLACE FUNCTION nikita.complete_events(
    p_ids uuid[],
    p_lock_tokens uuid[],
    p_provider_refs text[] DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_done integer;
    v_voice boolean;
BEGIN
    IF p_ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_lock_tokens IS NULL THEN
        RAISE EXCEPTION 'lock_tokens must not be null' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.cardinality(p_lock_tokens) <> pg_catalog.cardinality(p_ids) THEN
        RAISE EXCEPTION 'lock_tokens has % elements, ids has %',
            pg_catalog.cardinality(p_lock_tokens), pg_catalog.cardinality(p_ids)
            USING ERRCODE = '22023';
    END IF;
    IF p_provider_refs IS NOT NULL
        AND pg_catalog.cardinality(p_provider_refs) <> pg_catalog.cardinality(p_ids) THEN
        RAISE EXCEPTION 'provider_refs has % elements, ids has %',
            pg_catalog.cardinality(p_provider_refs), pg_catalog.cardinality(p_ids)
            USING ERRCODE = '22023';
    END IF;

    -- unnest() of several arrays (special syntax, not pg_catalog.unnest) pads a NULL
    -- provider_refs with NULLs.
    WITH done AS (
        UPDATE nikita.scheduled_events AS e
        SET status = 'delivered',
            delivered_at = pg_catalog.now(),
            provider_ref = pg_catalog.left(i.provider_ref, 1024),
            locked_by = NULL,
            locked_until = NULL,
            lock_token = NULL,
            updated_at = pg_catalog.now()
        FROM unnest(p_ids, p_lock_tokens, p_provider_refs)
            AS i (id, lock_token, provider_ref)
        -- A lock token is set only while the event is 'sending' (CHECK
        -- scheduled_events_lease_when_sending), so the token match is the state check.
        -- Spelling out status = 'sending' would invite a scan of the partial index of
        -- in-flight rows, which is full of dead entries during a fast drain; the primary key
        -- is the way in.
        WHERE e.id = i.id AND e.lock_token = i.lock_token
        RETURNING e.platform
    )

    SELECT pg_catalog.count(*)::integer, coalesce(pg_catalog.bool_or(d.platform = 'voice'), false)
    INTO v_done, v_voice
    FROM done AS d;

    -- Opt-in (docs/shim.md, "Telegram durability"): completions of Telegram events only commit
    -- asynchronously when the session asks for it; a batch with a voice outcome stays
    -- synchronous.
    IF v_done > 0 AND NOT v_voice
        AND pg_catalog.current_setting('nikita.telegram_durability', true) = 'async' THEN
        PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
    END IF;

    IF v_done < pg_catalog.cardinality(p_ids) THEN
        RAISE WARNING 'complete_events: % of % events not completed: lease lost',
            pg_catalog.cardinality(p_ids) - v_done, pg_catalog.cardinality(p_ids)
            USING ERRCODE = '01000';
    END IF;
    RETURN v_done;
END
$$;
COMMENT ON FUNCTION nikita.complete_events(uuid[], uuid[], text[])
IS 'Batch complete_event: ids, lock tokens and (optional) provider refs as parallel arrays. '
'Returns how many were completed; the others lost their lease (one WARNING). A session with '
'nikita.telegram_durability = async commits a batch without voice events asynchronously. '
'22004 null array, 22023 arrays of different lengths.';
REVOKE EXECUTE ON FUNCTION nikita.complete_events(uuid[], uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.complete_events(uuid[], uuid[], text[]) TO nikita_worker;
