-- The boss-fight timeout (docs/jobs.md "Boss-fight timeout"): a fight that started at least
-- setting boss_timeout before p_now is a failed attempt, as the game's /tasks/boss-timeout does
-- (yangsi7/nikita nikita/api/routes/tasks.py). Below boss_max_attempts the player is 'active'
-- again in the same chapter; at the maximum the game is over by decay's path (nikita._end_game).
-- The job (its step, batches, expire_boss_fights) is in functions/boss_timeout_job.sql.

CREATE OR REPLACE FUNCTION nikita._expire_boss_rows(
    p_now timestamptz, p_ids uuid[], p_cutoff timestamptz, p_max integer, p_text text
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_over uuid[];
    v_back uuid[];
    v_starts timestamptz[];
    v_messages integer := 0;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    WITH upd AS (
        UPDATE nikita.users AS u
        SET
            boss_attempts = f.attempts,
            game_status = CASE WHEN f.attempts >= p_max THEN 'game_over' ELSE 'active' END,
            boss_fight_started_at = NULL,
            -- Back to active: decay starts from here, not from the last interaction before the
            -- fight (decay skips a fight; the fight's hours are not idleness to punish). The
            -- last interaction stays the app's fact. Game over: decay never reads it again.
            decayed_through = CASE
                WHEN f.attempts >= p_max THEN u.decayed_through
                ELSE greatest(u.decayed_through, p_now)
            END,
            updated_at = pg_catalog.now()  -- what the touch trigger would write (0007)
        FROM (
            SELECT
                x.id,
                x.boss_fight_started_at AS started_at,
                least(x.boss_attempts + 1, 10) AS attempts
            FROM nikita.users AS x
            WHERE x.id = ANY(p_ids)
        ) AS f
        WHERE
            u.id = f.id
            AND u.game_status = 'boss_fight'
            AND u.boss_fight_started_at <= p_cutoff
        RETURNING u.id, u.game_status, u.boss_attempts, u.relationship_score, u.chapter,
            f.started_at
    ),

    hist AS (
        -- As the game logs it: score unchanged (delta 0), the attempts and the new status.
        INSERT INTO nikita.score_history (
            user_id, score, delta, chapter, event_type, event_details, recorded_at
        )
        SELECT
            up.id,
            up.relationship_score,
            0,
            up.chapter,
            'boss_timeout',
            pg_catalog.jsonb_build_object(
                'boss_attempts', up.boss_attempts,
                'max_attempts', p_max,
                'new_status', up.game_status,
                'started_at', up.started_at
            ),
            p_now
        FROM upd AS up
        RETURNING 1
    )

    SELECT
        pg_catalog.array_agg(up.id) FILTER (WHERE up.game_status = 'game_over'),
        pg_catalog.array_agg(up.id) FILTER (WHERE up.game_status = 'active'),
        pg_catalog.array_agg(up.started_at) FILTER (WHERE up.game_status = 'active')
    INTO v_over, v_back, v_starts
    FROM upd AS up;  -- hist runs to completion all the same (a data-modifying WITH always does)

    v_messages := nikita._end_game(v_over, p_now);
    IF v_back IS NOT NULL AND coalesce(p_text, '') <> '' THEN
        -- One message per fight: the key names the fight by its start.
        SELECT v_messages + count(nikita.schedule_event(
            u.id, 'telegram', 'follow_up', pg_catalog.jsonb_build_object('text', p_text), p_now,
            'boss_timeout:' || u.id::text || ':' || extract(EPOCH FROM b.started_at)::text
        ))::integer
        INTO v_messages
        FROM unnest(v_back, v_starts) AS b (id, started_at)  -- multi-argument: unqualified
        INNER JOIN nikita.users AS u ON u.id = b.id
        WHERE u.telegram_id IS NOT NULL;
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'returned', coalesce(pg_catalog.cardinality(v_back), 0),
        'game_overs', coalesce(pg_catalog.cardinality(v_over), 0),
        'messages', v_messages
    );
END
$$;
COMMENT ON FUNCTION nikita._expire_boss_rows(timestamptz, uuid[], timestamptz, integer, text) IS
'Internal: end, as of p_now, the boss fights of p_ids that started at or before p_cutoff, '
'set-based: one failed attempt each, active again below p_max, else game over (_end_game); '
'one score_history row boss_timeout each; the text p_text (none when empty) to each player '
'back to active. Returns {returned, game_overs, messages}.';
REVOKE EXECUTE ON FUNCTION nikita._expire_boss_rows(timestamptz, uuid[], timestamptz, integer, text)
FROM PUBLIC;

-- One ops alert per run when players were skipped (every batch of a run shares p_now, hence the
-- key), to setting alert_chat_id when set, as decay does. Its failure is reported, never fails
-- the batch.
CREATE OR REPLACE FUNCTION nikita._boss_skipped_alert(p_now timestamptz, p_rows jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_chat bigint;
    v_key text;
    v_error text;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    BEGIN  -- the guard above stays outside: a moved clock must raise, not be reported
        v_chat := nikita._setting_bigint('alert_chat_id');
        v_key := 'ops_alert:boss_timeout_skipped:'
            || pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US');
        IF v_chat IS NULL OR EXISTS (
            SELECT 1 FROM nikita.scheduled_events AS e
            WHERE e.event_type = 'ops_alert' AND e.dedupe_key = v_key
        ) THEN
            RETURN '{}'::jsonb;
        END IF;
        RETURN pg_catalog.jsonb_build_object('alert_event_id', nikita.schedule_event(
            NULL, 'telegram', 'ops_alert',
            pg_catalog.jsonb_build_object('chat_id', v_chat, 'text', pg_catalog.format(
                'nikita-tasks: boss_timeout at %s UTC in database %s skipped player(s) it '
                || 'could not end, first %s: %s (SQLSTATE %s). Every other fight was ended; '
                || 'see the result of the boss_timeout job (skipped_rows).',
                pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                pg_catalog.current_database(), p_rows -> 0 ->> 'user_id',
                pg_catalog.left(p_rows -> 0 ->> 'error', 1000), p_rows -> 0 ->> 'sqlstate'
            )),
            p_now, v_key
        ));
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
        RETURN pg_catalog.jsonb_build_object('alert_error', v_error);
    END;
END
$$;
COMMENT ON FUNCTION nikita._boss_skipped_alert(timestamptz, jsonb) IS
'Internal: one ops_alert per boss_timeout run (key ops_alert:boss_timeout_skipped:<p_now>) to '
'setting alert_chat_id naming the first of p_rows (skipped players). Returns {alert_event_id} '
'or {alert_error}, {} when no chat is set or the run already alerted; never raises.';
REVOKE EXECUTE ON FUNCTION nikita._boss_skipped_alert(timestamptz, jsonb) FROM PUBLIC;
