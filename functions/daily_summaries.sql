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

CREATE OR REPLACE FUNCTION nikita.generate_daily_summaries(
    p_now timestamptz DEFAULT pg_catalog.now(),
    p_lookback interval DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    v_lookback interval := p_lookback;
    v_last_run timestamptz;
    v_inserted integer;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF v_lookback IS NULL THEN
        SELECT max(e.started_at) INTO v_last_run
        FROM nikita.job_executions AS e
        WHERE e.job_name = 'summary' AND e.status = 'completed' AND e.started_at <= p_now;
        v_lookback := CASE
            WHEN v_last_run IS NULL THEN interval '2 days'
            ELSE least(
                interval '7 days',
                greatest(interval '2 hours', p_now - v_last_run + interval '1 hour')
            )
        END;
    ELSIF v_lookback <= interval '0' OR v_lookback > interval '366 days' THEN
        RAISE EXCEPTION 'lookback must be positive and at most 366 days, got %', v_lookback
            USING ERRCODE = '22023';
    END IF;

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
            SELECT ((p_now - v_lookback) AT TIME ZONE u.timezone)::date + k.k AS day
            FROM pg_catalog.generate_series(
                0,
                (p_now AT TIME ZONE u.timezone)::date
                - ((p_now - v_lookback) AT TIME ZONE u.timezone)::date - 1
            ) AS k (k)
        ) AS d
        WHERE NOT EXISTS (
            SELECT 1 FROM nikita.daily_summaries AS s
            WHERE s.user_id = u.id AND s.date = d.day
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

    RETURN pg_catalog.jsonb_build_object('summaries', v_inserted, 'lookback', v_lookback);
END
$$;
COMMENT ON FUNCTION nikita.generate_daily_summaries(timestamptz, interval) IS
'The summary job as of p_now: a daily_summaries row for every player whose local day ended '
'within p_lookback (NULL: since the last summary run) with activity that day and no row yet. '
'Idempotent. Returns {summaries, lookback}.';

REVOKE EXECUTE ON FUNCTION nikita.generate_daily_summaries(timestamptz, interval) FROM PUBLIC;

-- The summary job's step (job_catalog.step): one step, done at once.
CREATE OR REPLACE FUNCTION nikita._job_summary_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);
    RETURN pg_catalog.jsonb_build_object(
        'done', true, 'result', nikita.generate_daily_summaries(p_now)
    );
END
$$;
COMMENT ON FUNCTION nikita._job_summary_step(timestamptz, jsonb) IS
'Internal: the summary job''s only step: generate_daily_summaries (its default lookback) as '
'of p_now, as the owner (p_state unused).';
REVOKE EXECUTE ON FUNCTION nikita._job_summary_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_summary_step(timestamptz, jsonb) TO nikita_jobs;
