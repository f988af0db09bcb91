-- The summary job: one daily_summaries row per player and closed local day with activity.
--
-- A local day D of a player (users.timezone) runs from local midnight to local midnight, so
-- it lasts 23 or 25 hours across a daylight-saving change. D is summarised once it has ended
-- (p_now >= its end), when the player had activity on D (a score_history row recorded or a
-- conversation started inside it) and has no row for D yet:
--   score_start    the score when D began: the last history row before D's start, else the
--                  score before the first row after it (score - delta), else the current score
--   score_end      the same at D's end
--   decay_applied  the decay recorded on D (a positive number)
--   conversations  conversations started on D
--   summary_text   a short factual sentence built from those figures and D's notable events
-- Days considered: those that ended within p_lookback before p_now. NULL (the job): since the
-- previous completed summary run plus an hour (at least 2 hours, at most 7 days; 2 days when
-- there is none), so a run after an outage catches up the days it missed. Re-running inserts
-- nothing new (ON CONFLICT DO NOTHING on (user_id, date)).
--
-- Batches. generate_daily_summaries (the public whole run) is one statement over every player,
-- in the caller's transaction. The scheduled job (run_job('summary'), step
-- nikita._job_summary_step) runs the same statement over at most _summary_batch_size() players
-- per step, in user id order after a keyset cursor, committing each step: at a million players
-- whose day closes at once, one statement was one ~80 s transaction. All steps use the run's
-- p_now and the lookback fixed by its first step. Each step's INSERT fires the
-- daily_summaries_notify_inserted trigger once (functions/summary_writer.sql), so a writer is
-- woken per committed batch with that batch's count of pending rows. A run that fails after
-- some committed steps leaves their rows; its re-run (whose lookback still reaches back to the
-- last completed run) skips them by NOT EXISTS / ON CONFLICT and writes the rest once.
-- A player created during a run behind the cursor is left to the next hourly run, whose
-- lookback (at least 2 hours) still covers the day that just closed.

-- Players per step of the summary job. A constant, not a setting (a setting would need a
-- migration): 1,000 players are at most ~1,000 summaries per closed day (8,000 for a 7-day
-- catch-up). Measured (bench/summaries_bench.sh, midnight: every player's day closing at once,
-- 2 cores under load 6): steps of ~0.1 s, the longest 0.2-0.35 s, at 100,000 players, where the
-- one-statement run was one transaction of ~11 s; the whole run ~20 % longer (a commit and a
-- plan per step). At 1,000,000 (load ~2): steps of 0.26 s median, 0.6 s at most, against one
-- 108 s transaction, but the whole run 2.6x longer: batches in user id order read the day's
-- score_history rows at random, where one scan of users in physical order read them nearly in
-- order (a page cursor as decay's would keep that order). A function, so that a test database
-- can lower it.
CREATE OR REPLACE FUNCTION nikita._summary_batch_size()
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1000
$$;
COMMENT ON FUNCTION nikita._summary_batch_size()
IS 'Internal: players per step of the summary job (a constant: 1000).';

-- The run's lookback: p_lookback checked, or the default derived from the last completed run.
CREATE OR REPLACE FUNCTION nikita._summary_lookback(p_now timestamptz, p_lookback interval)
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_last_run timestamptz;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_lookback IS NULL THEN
        SELECT max(e.started_at) INTO v_last_run
        FROM nikita.job_executions AS e
        WHERE e.job_name = 'summary' AND e.status = 'completed' AND e.started_at <= p_now;
        RETURN CASE
            WHEN v_last_run IS NULL THEN interval '2 days'
            ELSE least(
                interval '7 days',
                greatest(interval '2 hours', p_now - v_last_run + interval '1 hour')
            )
        END;
    ELSIF p_lookback <= interval '0' OR p_lookback > interval '366 days' THEN
        RAISE EXCEPTION 'lookback must be positive and at most 366 days, got %', p_lookback
            USING ERRCODE = '22023';
    END IF;
    RETURN p_lookback;
END
$$;
COMMENT ON FUNCTION nikita._summary_lookback(timestamptz, interval) IS
'Internal: the summary run''s lookback as of p_now: p_lookback (22023 unless in (0, 366 days]) '
'or, when NULL, since the last completed summary run plus an hour (2 hours..7 days; 2 days '
'without one).';

-- The statement itself: the summaries of players p_ids (NULL: every player) as of p_now over
-- days that ended within p_lookback. Custom plans only: with p_ids given, the planner folds
-- "p_ids IS NULL" away and reads those players by primary key; a generic plan (which PL/pgSQL
-- would switch to after a few steps of one session) would scan every player at every step.
CREATE OR REPLACE FUNCTION nikita._daily_summaries_insert(
    p_now timestamptz,
    p_lookback interval,
    p_ids uuid[]
)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_inserted integer;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    WITH candidate AS (
        SELECT
            u.id AS user_id,
            u.timezone,
            u.relationship_score,
            d.day,
            d.day::timestamp AT TIME ZONE u.timezone AS day_start,
            (d.day + 1)::timestamp AT TIME ZONE u.timezone AS day_end
        FROM nikita.users AS u
        CROSS JOIN LATERAL (
            SELECT ((p_now - p_lookback) AT TIME ZONE u.timezone)::date + k.k AS day
            FROM pg_catalog.generate_series(
                0,
                (p_now AT TIME ZONE u.timezone)::date
                - ((p_now - p_lookback) AT TIME ZONE u.timezone)::date - 1
            ) AS k (k)
        ) AS d
        WHERE
            (p_ids IS NULL OR u.id = ANY (p_ids))
            AND NOT EXISTS (
                SELECT 1 FROM nikita.daily_summaries AS s
                WHERE
                    s.user_id = u.id AND s.date = d.day
                    -- Redundant, for the plan: the planner (which guesses 1000 days per player)
                    -- may make this a merge anti join, which without this bound reads the
                    -- unique index from its start, i.e. the summaries of every player before
                    -- the cursor at every step (quadratic over a run).
                    AND (p_ids IS NULL OR s.user_id = ANY (p_ids))
            )
    ),

    -- Materialized: each figure is computed once, not once per use in the text below.
    figures AS MATERIALIZED (
        SELECT
            c.*,
            (
                SELECT count(*)::integer FROM nikita.conversations AS v
                WHERE
                    v.user_id = c.user_id
                    AND v.started_at >= c.day_start AND v.started_at < c.day_end
            ) AS conversations,
            h.events,
            h.decay,
            h.notes,
            greatest(0, least(100, coalesce(
                (
                    SELECT b.score FROM nikita.score_history AS b
                    WHERE b.user_id = c.user_id AND b.recorded_at < c.day_start
                    ORDER BY b.recorded_at DESC, b.id DESC LIMIT 1
                ),
                (
                    SELECT a.score - a.delta FROM nikita.score_history AS a
                    WHERE a.user_id = c.user_id AND a.recorded_at >= c.day_start
                    ORDER BY a.recorded_at, a.id LIMIT 1
                ),
                c.relationship_score
            ))) AS score_start,
            greatest(0, least(100, coalesce(
                (
                    SELECT b.score FROM nikita.score_history AS b
                    WHERE b.user_id = c.user_id AND b.recorded_at < c.day_end
                    ORDER BY b.recorded_at DESC, b.id DESC LIMIT 1
                ),
                (
                    SELECT a.score - a.delta FROM nikita.score_history AS a
                    WHERE a.user_id = c.user_id AND a.recorded_at >= c.day_end
                    ORDER BY a.recorded_at, a.id LIMIT 1
                ),
                c.relationship_score
            ))) AS score_end
        FROM candidate AS c
        CROSS JOIN LATERAL (
            SELECT
                count(*)::integer AS events,
                coalesce(-sum(x.delta) FILTER (WHERE x.event_type = 'decay'), 0) AS decay,
                pg_catalog.string_agg(
                    DISTINCT CASE x.event_type
                        WHEN 'chapter_advance' THEN '1 chapter advanced'
                        WHEN 'boss_pass' THEN '2 boss passed'
                        WHEN 'boss_fail' THEN '3 boss failed'
                        WHEN 'boss_timeout' THEN '4 boss timed out'
                        WHEN 'manual_adjustment' THEN '5 manual adjustment'
                        WHEN 'decay_game_over' THEN '6 game over'
                    END, '; '
                ) AS notes
            FROM nikita.score_history AS x
            WHERE
                x.user_id = c.user_id
                AND x.recorded_at >= c.day_start AND x.recorded_at < c.day_end
        ) AS h
    ),

    inserted AS (
        INSERT INTO nikita.daily_summaries (
            user_id, date, score_start, score_end, decay_applied, conversations_count,
            summary_text
        )
        SELECT
            f.user_id,
            f.day,
            f.score_start,
            f.score_end,
            f.decay,
            f.conversations,
            pg_catalog.format(
                '%s (%s): %s. Score %s -> %s (%s%s)%s.%s',
                pg_catalog.to_char(f.day, 'Dy DD Mon YYYY'),
                f.timezone,
                CASE f.conversations
                    WHEN 0 THEN 'no conversations'
                    WHEN 1 THEN '1 conversation'
                    ELSE f.conversations || ' conversations'
                END,
                f.score_start,
                f.score_end,
                CASE WHEN f.score_end >= f.score_start THEN '+' ELSE '' END,
                f.score_end - f.score_start,
                CASE WHEN f.decay > 0 THEN ', decay -' || f.decay ELSE '' END,
                CASE
                    WHEN f.notes IS NULL THEN ''
                    -- Each note starts with a sort digit and a space (string_agg orders them).
                    ELSE ' Events: '
                        || pg_catalog.regexp_replace(f.notes, '(^|; )[0-9] ', '\1', 'g') || '.'
                END
            )
        FROM figures AS f
        WHERE f.conversations > 0 OR f.events > 0
        ON CONFLICT (user_id, date) DO NOTHING
        RETURNING 1
    )

    SELECT count(*)::integer INTO v_inserted FROM inserted;
    RETURN v_inserted;
END
$$;
COMMENT ON FUNCTION nikita._daily_summaries_insert(timestamptz, interval, uuid[]) IS
'Internal: insert the daily summaries of players p_ids (NULL: every player) for their days '
'that ended within p_lookback before p_now (one statement; existing rows skipped). Returns '
'the number inserted.';

CREATE OR REPLACE FUNCTION nikita.generate_daily_summaries(
    p_now timestamptz DEFAULT pg_catalog.now(),
    p_lookback interval DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lookback interval;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    v_lookback := nikita._summary_lookback(p_now, p_lookback);
    RETURN pg_catalog.jsonb_build_object(
        'summaries', nikita._daily_summaries_insert(p_now, v_lookback, NULL),
        'lookback', v_lookback
    );
END
$$;
COMMENT ON FUNCTION nikita.generate_daily_summaries(timestamptz, interval) IS
'The summary job as of p_now: a daily_summaries row for every player whose local day ended '
'within p_lookback (NULL: since the last summary run) with activity that day and no row yet. '
'Idempotent. One statement, in the caller''s transaction (the scheduled job runs the same in '
'committed batches, nikita._job_summary_step). Returns {summaries, lookback}.';

-- The summary job's step (job_catalog.step). State: {"done", "after" (the last player id
-- done: the keyset cursor), "batch" (players per step, fixed by the first call), "players"
-- (players scanned so far), "result": {summaries (summed over the steps), lookback (fixed by
-- the first call)}}. The first call (p_state NULL) only fixes the lookback and the batch, like
-- decay's: a run failing at its first batch still records its lookback and zero summaries.
CREATE OR REPLACE FUNCTION nikita._job_summary_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_r jsonb := p_state -> 'result';
    v_after uuid := (p_state ->> 'after')::uuid;
    v_batch integer := (p_state ->> 'batch')::integer;
    v_ids uuid[];
    v_n integer;
    v_inserted integer := 0;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF p_state IS NULL THEN
        RETURN pg_catalog.jsonb_build_object(
            'done', false,
            'after', NULL,
            'batch', nikita._summary_batch_size(),
            'players', 0,
            'result', pg_catalog.jsonb_build_object(
                'summaries', 0, 'lookback', nikita._summary_lookback(p_now, NULL)
            )
        );
    END IF;
    IF v_batch IS NULL OR v_batch NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'summary batch must be between 1 and 100000, got %',
            coalesce(v_batch::text, 'NULL') USING ERRCODE = '22023';
    END IF;

    -- Two statements rather than "v_after IS NULL OR id > v_after": each is an index range.
    IF v_after IS NULL THEN
        SELECT pg_catalog.array_agg(c.id ORDER BY c.id) INTO v_ids
        FROM (SELECT u.id FROM nikita.users AS u ORDER BY u.id LIMIT v_batch) AS c;
    ELSE
        SELECT pg_catalog.array_agg(c.id ORDER BY c.id) INTO v_ids
        FROM (
            SELECT u.id FROM nikita.users AS u WHERE u.id > v_after ORDER BY u.id LIMIT v_batch
        ) AS c;
    END IF;
    v_n := coalesce(pg_catalog.cardinality(v_ids), 0);
    IF v_n > 0 THEN
        v_inserted := nikita._daily_summaries_insert(
            p_now, (v_r ->> 'lookback')::interval, v_ids
        );
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'done', v_n < v_batch,
        'after', coalesce(v_ids[v_n]::text, p_state ->> 'after'),
        'batch', v_batch,
        'players', (p_state ->> 'players')::bigint + v_n,
        'result', pg_catalog.jsonb_build_object(
            'summaries', (v_r ->> 'summaries')::bigint + v_inserted,
            'lookback', v_r -> 'lookback'
        )
    );
END
$$;
COMMENT ON FUNCTION nikita._job_summary_step(timestamptz, jsonb) IS
'Internal: the summary job''s step (job_catalog.step): the summaries of the next batch of '
'players (p_state.batch, from _summary_batch_size(); user id order after p_state.after) as of '
'p_now over the run''s lookback, summed into the state''s result {summaries, lookback}; the '
'first call (p_state NULL) only fixes the lookback (generate_daily_summaries'' default) and the '
'batch. See functions/daily_summaries.sql and functions/job_catalog.sql.';

REVOKE EXECUTE ON FUNCTION nikita._summary_batch_size(),
nikita._summary_lookback(timestamptz, interval),
nikita._daily_summaries_insert(timestamptz, interval, uuid[]),
nikita.generate_daily_summaries(timestamptz, interval),
nikita._job_summary_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_summary_step(timestamptz, jsonb) TO nikita_jobs;
