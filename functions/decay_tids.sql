-- Decay's one set-based statement (rules: functions/decay.sql), over the players stored at a
-- range of TIDs of nikita.users. Longer than ~300 lines because it is one statement and its
-- comments: splitting it would split the statement, not the topic.

CREATE OR REPLACE FUNCTION nikita._decay_tids(p_now timestamptz, p_lo tid, p_hi tid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    v_due integer;
    v_decayed integer;
    v_points numeric;
    v_game_over uuid[];
    v_below numeric[];      -- decay warnings' thresholds, ascending (functions/decay_warnings.sql)
    v_warn_users uuid[];
    v_warn_below numeric[];
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    v_below := nikita._decay_warning_thresholds();
    WITH rules AS MATERIALIZED (
        -- Per chapter, computed once (not per player): the horizon. An accrual longer than
        -- that empties any score (at most 100) whatever its length: whole local days of 20
        -- hours or more each take at least least(cap, 20 h of points); 3 days of margin for
        -- the partial first and last days. So a sentinel such as 1900-01-01 (or -infinity)
        -- costs a few days of arithmetic, not a century of day-by-day clock changes, and ends
        -- at 0 all the same.
        SELECT
            r.chapter,
            r.grace,
            r.points_per_hour,
            r.daily_cap,
            p_now - pg_catalog.make_interval(days => (
                ceil(100 / least(r.daily_cap, 20 * r.points_per_hour)) + 3
            )::integer) AS horizon
        FROM nikita.decay_rules AS r
    ),

    due AS (
        -- Players of the batch with accrual to apply. Not locked: the UPDATE below only takes
        -- a row that is still as read here (see its WHERE), which is cheaper than FOR UPDATE.
        SELECT
            u.id,
            u.relationship_score,
            u.chapter,
            u.timezone,
            u.decayed_through,
            u.last_interaction_at,
            r.points_per_hour,
            r.daily_cap,
            coalesce(u.last_interaction_at, u.created_at) + r.grace AS idle_from,
            -- From the chapter's horizon at the latest (see rules).
            greatest(
                coalesce(u.last_interaction_at, u.created_at) + r.grace,
                u.decayed_through,
                r.horizon
            ) AS accrue_from
        FROM nikita.users AS u
        INNER JOIN rules AS r ON r.chapter = u.chapter
        WHERE
            u.game_status = 'active'
            AND u.onboarding_status IN ('completed', 'skipped')
            AND u.ctid >= p_lo
            AND u.ctid < p_hi
            -- greatest(coalesce(last_interaction_at, created_at) + grace, decayed_through)
            -- < p_now, written so that no timestamp the columns accept overflows (a last
            -- interaction near 294276 AD plus the grace would).
            AND coalesce(u.last_interaction_at, u.created_at) < p_now - r.grace
            AND (u.decayed_through IS NULL OR u.decayed_through < p_now)
    ),

    -- Materialized, like calc: each time zone conversion is computed once per player.
    days AS MATERIALIZED (
        SELECT
            d.*,
            (d.accrue_from AT TIME ZONE d.timezone)::date AS first_day,
            (p_now AT TIME ZONE d.timezone)::date AS last_day,
            ((d.accrue_from AT TIME ZONE d.timezone)::date)::timestamp AT TIME ZONE d.timezone
                AS first_day_start
        FROM due AS d
    ),

    -- Materialized: the history lookup below runs once per player, not once per use.
    base AS MATERIALIZED (
        SELECT
            y.*,
            -- What earlier runs already took from the first local day of this accrual.
            CASE
                -- No run has reached into that day yet.
                WHEN y.decayed_through IS NULL OR y.decayed_through <= y.first_day_start THEN 0
                -- The idle period covers that day from its start: its runs took exactly what
                -- accrued from the day's start to the watermark (capped).
                WHEN y.idle_from <= y.first_day_start THEN least(
                    y.daily_cap,
                    greatest(
                        extract(EPOCH FROM y.decayed_through - y.first_day_start) / 3600, 0
                    ) * y.points_per_hour
                )
                -- The player talked that day: an earlier idle period may have decayed it too.
                -- The latest decay row records how much its last local day had taken.
                ELSE coalesce((
                    SELECT (h.event_details ->> 'last_day_total')::numeric
                    FROM nikita.score_history AS h
                    WHERE
                        h.user_id = y.id
                        AND h.recorded_at >= y.decayed_through
                        AND h.event_type = 'decay'
                        AND h.event_details ->> 'last_day' = y.first_day::text
                    ORDER BY h.recorded_at
                    LIMIT 1
                ), 0)
            END AS taken
        FROM days AS y
    ),

    -- The accrual split at the player's local midnights, each day capped: the first day (less
    -- what was taken), the whole days between (23, 24 or 25 hours; computed only when there
    -- are any), the last day. Within one local day first and last are the same segment.
    parts AS (
        SELECT
            b.*,
            extract(EPOCH FROM p_now - b.accrue_from) / 3600 AS hours,
            least(
                greatest(b.daily_cap - b.taken, 0),
                extract(
                    EPOCH FROM least(
                        p_now, (b.first_day + 1)::timestamp AT TIME ZONE b.timezone
                    ) - b.accrue_from
                ) / 3600 * b.points_per_hour
            ) AS first_amount,
            CASE
                WHEN b.last_day > b.first_day THEN extract(
                    EPOCH FROM p_now - (b.last_day::timestamp AT TIME ZONE b.timezone)
                ) / 3600 * b.points_per_hour
                ELSE 0
            END AS last_accrued,
            CASE
                WHEN b.last_day - b.first_day < 2 THEN 0
                -- Whole days of 24 hours (no clock change between): each takes the same.
                WHEN extract(
                    EPOCH FROM (b.last_day::timestamp AT TIME ZONE b.timezone)
                    - ((b.first_day + 1)::timestamp AT TIME ZONE b.timezone)
                ) = 86400::numeric * (b.last_day - b.first_day - 1)
                    THEN (b.last_day - b.first_day - 1) * least(b.daily_cap, 24 * b.points_per_hour)
                -- A clock change among them: day by day (23 or 25 hours, or stranger).
                ELSE (
                    SELECT
                        sum(least(
                            b.daily_cap,
                            extract(
                                EPOCH FROM
                                (b.first_day + k.k + 1)::timestamp AT TIME ZONE b.timezone
                                - (b.first_day + k.k)::timestamp AT TIME ZONE b.timezone
                            ) / 3600 * b.points_per_hour
                        ))
                    FROM pg_catalog.generate_series(1, b.last_day - b.first_day - 1) AS k (k)
                )
            END AS middle_amount
        FROM base AS b
    ),

    totals AS (
        SELECT
            x.*,
            least(x.daily_cap, x.last_accrued) AS last_amount,
            x.first_amount + x.middle_amount + least(x.daily_cap, x.last_accrued) AS total,
            -- What accrued at the very end of the run at the full rate (not capped): the
            -- watermark can stop short inside it.
            CASE
                WHEN x.last_day > x.first_day THEN
                    CASE WHEN x.last_accrued <= x.daily_cap THEN x.last_accrued ELSE 0 END
                WHEN x.first_amount < x.daily_cap - x.taken THEN x.first_amount
                ELSE 0
            END AS open_tail
        FROM parts AS x
    ),

    -- Materialized: computed once per player, not once per use in the statements below.
    calc AS MATERIALIZED (
        SELECT
            t.id,
            t.relationship_score AS old_score,
            t.chapter,
            t.timezone,
            t.accrue_from,
            t.decayed_through,
            t.last_interaction_at,
            t.hours,
            t.last_day,
            t.points_per_hour,
            t.total,
            t.open_tail,
            t.taken,
            t.first_amount,
            t.last_amount,
            t.first_day,
            trunc(t.total + 0.000000001, 2) AS applied
        FROM totals AS t
    ),

    settled AS (
        SELECT
            c.*,
            c.old_score - least(c.applied, c.old_score) AS new_score,
            -- The watermark keeps the sub-cent rest: it stops where what accrued equals what
            -- was applied, so the next run accrues the rest again (nothing carried, nothing
            -- lost). When the rest does not fit in the run's open tail (a capped or very short
            -- last segment), the watermark is p_now and the rest (under a cent) is dropped.
            CASE
                WHEN c.total - c.applied > 0 AND c.open_tail >= c.total - c.applied
                    THEN p_now - pg_catalog.make_interval(
                        secs => ((c.total - c.applied) / c.points_per_hour * 3600)::double precision
                    )
                ELSE p_now
            END AS watermark,
            -- What the last local day has taken once this run is applied.
            CASE
                WHEN c.last_day > c.first_day THEN c.last_amount
                ELSE c.taken + c.first_amount
            END - CASE
                WHEN c.total - c.applied > 0 AND c.open_tail >= c.total - c.applied
                    THEN c.total - c.applied
                ELSE 0
            END AS last_day_total
        FROM calc AS c
        WHERE c.applied > 0
    ),

    upd AS (
        UPDATE nikita.users AS u
        SET
            relationship_score = s.new_score,
            decayed_through = s.watermark,
            -- What the touch trigger would write; setting it skips the trigger (0007).
            updated_at = pg_catalog.now(),
            game_status = CASE WHEN s.new_score = 0 THEN 'game_over' ELSE u.game_status END
        FROM settled AS s
        WHERE
            u.id = s.id
            AND u.ctid >= p_lo
            AND u.ctid < p_hi
            -- Still as read: a concurrent run (which moved the watermark) or the app (which
            -- changed the score, the last interaction, ...) since the read makes the row skip
            -- this run. Its watermark stays, so the next run decays it, exactly. Under READ
            -- COMMITTED a row updated meanwhile is re-checked against these conditions, so two
            -- runs at the same instant decay once.
            AND u.decayed_through IS NOT DISTINCT FROM s.decayed_through
            AND u.last_interaction_at IS NOT DISTINCT FROM s.last_interaction_at
            AND u.relationship_score = s.old_score
            AND u.chapter = s.chapter
            AND u.timezone = s.timezone
            AND u.game_status = 'active'
            AND u.onboarding_status IN ('completed', 'skipped')
        RETURNING
            s.id, s.old_score, s.new_score, s.chapter, s.accrue_from, s.watermark, s.hours,
            s.last_day, s.last_day_total
    ),

    -- One decay row per player and local day (sql/0022): the day's first run inserts it,
    -- the day's later runs update it in place (the day's cumulative delta, the latest score,
    -- the latest run's recorded_at and watermark; 'from' and 'hours' of the whole day).
    -- The row's last_day_total is the day's, read by the next run of the same day (base).
    hist AS (
        INSERT INTO nikita.score_history AS h (
            user_id, score, delta, chapter, event_type, event_details, recorded_at, decay_day
        )
        SELECT
            up.id,
            up.new_score,
            up.new_score - up.old_score,
            up.chapter,
            'decay',
            pg_catalog.jsonb_build_object(
                'hours', round(up.hours, 4),
                'from', up.accrue_from,
                'to', up.watermark,
                'last_day', up.last_day,
                'last_day_total', round(up.last_day_total, 6),
                'runs', 1
            ),
            p_now,
            up.last_day
        FROM upd AS up
        UNION ALL
        SELECT
            up.id,
            0,
            0,
            up.chapter,
            'decay_game_over',
            pg_catalog.jsonb_build_object('reason', 'score reached 0 by decay', 'at', p_now),
            p_now,
            NULL
        FROM upd AS up
        WHERE up.new_score = 0
        ON CONFLICT (user_id, decay_day) WHERE decay_day IS NOT NULL DO UPDATE
            SET
                score = excluded.score,
                delta = h.delta + excluded.delta,
                chapter = excluded.chapter,
                recorded_at = excluded.recorded_at,
                event_details = excluded.event_details || pg_catalog.jsonb_build_object(
                    'from', h.event_details -> 'from',
                    'hours', round(
                        coalesce((h.event_details ->> 'hours')::numeric, 0)
                        + (excluded.event_details ->> 'hours')::numeric,
                        4
                    ),
                    'runs', coalesce((h.event_details ->> 'runs')::integer, 1) + 1
                )
        RETURNING 1
    )

    SELECT
        (SELECT count(*)::integer FROM calc),
        count(*)::integer,
        coalesce(sum(up.old_score - up.new_score), 0),
        pg_catalog.array_agg(up.id) FILTER (WHERE up.new_score = 0),
        pg_catalog.array_agg(up.id) FILTER (WHERE up.warn_below IS NOT NULL),
        pg_catalog.array_agg(up.warn_below) FILTER (WHERE up.warn_below IS NOT NULL)
    INTO v_due, v_decayed, v_points, v_game_over, v_warn_users, v_warn_below
    FROM (
        -- Decay warnings: the lowest threshold this decay took the score from at least to
        -- under; none at 0 (the game over's message only). The CASE spares the look-up for
        -- every score not under the highest threshold.
        SELECT
            u.*,
            CASE WHEN u.new_score > 0 AND u.new_score < v_below[pg_catalog.cardinality(v_below)]
                THEN (
                    SELECT min(b.b) FROM pg_catalog.unnest(v_below) AS b (b)
                    WHERE u.old_score >= b.b AND u.new_score < b.b
                )
            END AS warn_below
        FROM upd AS u
    ) AS up;

    -- The game-over path, shared with the boss-fight timeout (functions/game_over.sql).
    PERFORM nikita._end_game(v_game_over, p_now);

    -- Decay warnings, a step of its own after the game overs (functions/decay_warnings.sql).
    IF v_warn_users IS NOT NULL THEN
        PERFORM nikita._queue_decay_warnings(p_now, v_warn_users, v_warn_below);
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'due', v_due,
        'decayed', v_decayed,
        'game_overs', coalesce(pg_catalog.cardinality(v_game_over), 0),
        'points', v_points
    );
END
$$;
COMMENT ON FUNCTION nikita._decay_tids(timestamptz, tid, tid) IS
'Internal: decay, as of p_now, the eligible players whose row is stored at a TID in [p_lo, '
'p_hi), set-based, game overs included. Returns {due, decayed, game_overs, points}. Called by '
'apply_decay_batch for its page range, and for parts of it down to one row when it fails.';
REVOKE EXECUTE ON FUNCTION nikita._decay_tids(timestamptz, tid, tid) FROM PUBLIC;
