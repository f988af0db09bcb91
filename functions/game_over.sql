-- The game-over path shared by decay (functions/decay_tids.sql) and the boss-fight timeout
-- (functions/boss_timeout.sql): one place, so both end a game exactly alike.

CREATE OR REPLACE FUNCTION nikita._end_game(p_user_ids uuid[], p_now timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text text;
    v_queued integer := 0;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_user_ids IS NULL OR pg_catalog.cardinality(p_user_ids) = 0 THEN
        RETURN 0;
    END IF;
    -- Cancel first, then queue: the game_over message must not be cancelled with the rest.
    PERFORM nikita.cancel_user_events(g.id) FROM pg_catalog.unnest(p_user_ids) AS g (id);
    v_text := nikita._setting_text('game_over_text');
    IF coalesce(v_text, '') <> '' THEN
        SELECT count(nikita.schedule_event(
            u.id, 'telegram', 'game_over', pg_catalog.jsonb_build_object('text', v_text),
            p_now, 'game_over:' || u.id::text
        ))::integer
        INTO v_queued
        FROM nikita.users AS u
        WHERE u.id = ANY(p_user_ids) AND u.telegram_id IS NOT NULL;
    END IF;
    RETURN v_queued;
END
$$;
COMMENT ON FUNCTION nikita._end_game(uuid[], timestamptz) IS
'Internal: the game-over path for players whose game_status the caller has just set to '
'game_over (same transaction): their pending events cancelled (cancel_user_events), then one '
'game_over Telegram message each (setting game_over_text, due p_now, dedupe key '
'game_over:<user id>; none for an empty setting or a player without telegram_id). Returns the '
'messages queued. Called by decay and by the boss-fight timeout.';
REVOKE EXECUTE ON FUNCTION nikita._end_game(uuid[], timestamptz) FROM PUBLIC;
