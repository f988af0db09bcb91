-- The boss-fight timeout job: its step (what run_job('boss_timeout') calls until done, committing
-- each step) and expire_boss_fights (the same steps in one transaction). The rules, the
-- set-based statement and the skipped-rows alert are in functions/boss_timeout.sql.
--
-- Batches: at most 1,000 fights per step, oldest start first, taken FOR UPDATE SKIP LOCKED (a
-- row the app holds is left to the next run), in keyset order (start, id) so that a skipped or
-- bad row never stops the run from moving on. Each batch is one set-based statement; when it
-- fails, its players are retried one by one, each in its own subtransaction, and a player who
-- fails alone is skipped and reported (fights are few: no need for decay's splitting).
--
-- State: {"done", "after_at", "after_id" (the keyset cursor), "result": {timed_out, returned,
-- game_overs, messages, batches, skipped, skipped_rows (the first 20), p_now, and
-- alert_event_id / alert_error when a skipped player raised an ops alert}}. The first call
-- (p_state NULL) does no work and cannot fail, like decay's.

CREATE OR REPLACE FUNCTION nikita._job_boss_timeout_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_batch constant integer := 1000;
    v_r jsonb := p_state -> 'result';
    v_after_at timestamptz := (p_state ->> 'after_at')::timestamptz;
    v_after_id uuid := (p_state ->> 'after_id')::uuid;
    v_timeout interval;
    v_max bigint;
    v_text text;
    v_cutoff timestamptz;
    v_ids uuid[];
    v_starts timestamptz[];
    v_n integer;
    v_res jsonb;
    v_part jsonb;
    v_skipped integer := 0;
    v_rows jsonb := '[]'::jsonb;
    v_id uuid;
    v_state text;
    v_error text;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF p_state IS NULL THEN
        RETURN pg_catalog.jsonb_build_object(
            'done', false,
            'result', pg_catalog.jsonb_build_object(
                'timed_out', 0, 'returned', 0, 'game_overs', 0, 'messages', 0, 'batches', 0,
                'skipped', 0, 'skipped_rows', '[]'::jsonb, 'p_now', p_now
            )
        );
    END IF;

    -- The settings' CHECK (sql/0013) bounds them; this is the second line.
    v_timeout := nikita._setting_interval('boss_timeout');
    v_max := nikita._setting_bigint('boss_max_attempts');
    IF v_timeout IS NULL OR v_timeout < interval '1 minute' THEN
        RAISE EXCEPTION 'setting "boss_timeout" must be at least 1 minute, got %',
            coalesce(v_timeout::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF v_max IS NULL OR v_max NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'setting "boss_max_attempts" must be from 1 to 10, got %',
            coalesce(v_max::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_text := nikita._setting_text('boss_timeout_text');
    -- Compared with the start, never computed from it: a start in 294276 AD cannot overflow.
    v_cutoff := p_now - v_timeout;

    SELECT
        pg_catalog.array_agg(c.id ORDER BY c.started_at, c.id),
        pg_catalog.array_agg(c.started_at ORDER BY c.started_at, c.id)
    INTO v_ids, v_starts
    FROM (
        SELECT u.id, u.boss_fight_started_at AS started_at
        FROM nikita.users AS u
        WHERE
            u.game_status = 'boss_fight'
            AND u.boss_fight_started_at <= v_cutoff
            AND (v_after_id IS NULL OR (u.boss_fight_started_at, u.id) > (v_after_at, v_after_id))
        ORDER BY u.boss_fight_started_at, u.id
        LIMIT c_batch
        FOR UPDATE SKIP LOCKED
    ) AS c;
    v_n := coalesce(pg_catalog.cardinality(v_ids), 0);

    IF v_n > 0 THEN
        BEGIN
            v_res := nikita._expire_boss_rows(p_now, v_ids, v_cutoff, v_max::integer, v_text);
        EXCEPTION WHEN OTHERS THEN
            -- Not a row's fault (as in decay: resources, locks, shutdown, internal, 40xxx):
            -- the run fails; run_job records and alerts.
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
            IF pg_catalog.left(v_state, 2) IN ('40', '53', '55', '57', '58', 'XX') THEN
                RAISE;
            END IF;
            -- One bad row must not stop the others: each player alone.
            v_res := '{"returned": 0, "game_overs": 0, "messages": 0}'::jsonb;
            FOREACH v_id IN ARRAY v_ids LOOP
                BEGIN
                    v_part := nikita._expire_boss_rows(
                        p_now, ARRAY[v_id], v_cutoff, v_max::integer, v_text
                    );
                    v_res := pg_catalog.jsonb_build_object(
                        'returned',
                        (v_res ->> 'returned')::bigint + (v_part ->> 'returned')::bigint,
                        'game_overs',
                        (v_res ->> 'game_overs')::bigint + (v_part ->> 'game_overs')::bigint,
                        'messages', (v_res ->> 'messages')::bigint + (v_part ->> 'messages')::bigint
                    );
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
                    IF pg_catalog.left(v_state, 2) IN ('40', '53', '55', '57', '58', 'XX') THEN
                        RAISE;
                    END IF;
                    v_skipped := v_skipped + 1;
                    v_rows := v_rows || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                        'user_id', v_id, 'sqlstate', v_state, 'error', pg_catalog.left(v_error, 500)
                    ));
                END;
            END LOOP;
        END;
    ELSE
        v_res := '{"returned": 0, "game_overs": 0, "messages": 0}'::jsonb;
    END IF;

    IF v_skipped > 0 AND NOT (v_r ? 'alert_event_id') THEN
        v_r := v_r || nikita._boss_skipped_alert(p_now, v_rows);
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'done', v_n < c_batch,
        'after_at', v_starts[v_n],
        'after_id', v_ids[v_n],
        'result', pg_catalog.jsonb_build_object(
            'timed_out', (v_r ->> 'timed_out')::bigint + (v_res ->> 'returned')::bigint
            + (v_res ->> 'game_overs')::bigint,
            'returned', (v_r ->> 'returned')::bigint + (v_res ->> 'returned')::bigint,
            'game_overs', (v_r ->> 'game_overs')::bigint + (v_res ->> 'game_overs')::bigint,
            'messages', (v_r ->> 'messages')::bigint + (v_res ->> 'messages')::bigint,
            'batches', (v_r ->> 'batches')::integer + 1,
            'skipped', (v_r ->> 'skipped')::bigint + v_skipped,
            'skipped_rows', pg_catalog.jsonb_path_query_array(
                (v_r -> 'skipped_rows') || v_rows, '$[0 to 19]'
            ),
            'p_now', v_r -> 'p_now'
        ) || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'alert_event_id', v_r -> 'alert_event_id', 'alert_error', v_r -> 'alert_error'
        ))
    );
END
$$;
COMMENT ON FUNCTION nikita._job_boss_timeout_step(timestamptz, jsonb) IS
'Internal: the boss_timeout job''s step (job_catalog.step): one batch of at most 1000 expired '
'boss fights as of p_now after the keyset cursor of p_state, the run''s counts folded into '
'the state''s result; the first call (p_state NULL) only starts the state. See '
'functions/boss_timeout.sql and functions/job_catalog.sql.';
REVOKE EXECUTE ON FUNCTION nikita._job_boss_timeout_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_boss_timeout_step(timestamptz, jsonb) TO nikita_jobs;

CREATE OR REPLACE FUNCTION nikita.expire_boss_fights(p_now timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    -- The pinned instant (and decay's batch timing) belong to the job's row, not to this result.
    RETURN nikita._job_run_steps('boss_timeout', p_now) - 'p_now';
END
$$;
COMMENT ON FUNCTION nikita.expire_boss_fights(timestamptz) IS
'End, as of p_now, every boss fight that started at least setting boss_timeout (24 h) before: '
'one failed attempt (users.boss_attempts + 1) and one score_history row boss_timeout each; '
'below setting boss_max_attempts (3) the player is active again in the same chapter '
'(decayed_through moved to p_now) and gets setting boss_timeout_text (none when empty; dedupe '
'key boss_timeout:<user>:<start epoch>); at the maximum the game is over exactly as decay ends '
'it (pending events cancelled, one game_over message). Idempotent. One transaction, batches of '
'1000; run_job(''boss_timeout'') commits each batch. Returns {timed_out, returned, game_overs, '
'messages, batches, skipped, skipped_rows (at most 20 of {user_id, sqlstate, error})}: a '
'player who cannot be ended is skipped and reported. Errors: 22004 p_now NULL, 22023 p_now '
'infinite or a bad setting, 42501 p_now not now() for a caller other than the owner.';
REVOKE EXECUTE ON FUNCTION nikita.expire_boss_fights(timestamptz) FROM PUBLIC;
