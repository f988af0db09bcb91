-- Decay (DESIGN.md "Decay, exactly").
--
--   nikita.apply_decay(p_now)                     the whole run in one call (one transaction)
--   nikita.apply_decay_batch(p_now, p_after, n)   one batch: the next n eligible players by id
--                                                 after p_after; what run_job('decay') commits
--                                                 one by one, every batch pinned to one p_now
--
-- The rules, per eligible player (game_status active, onboarding completed or skipped):
--   accrual runs from greatest(coalesce(last_interaction_at, created_at) + grace,
--   decayed_through) to p_now at the chapter's points_per_hour, split at the player's local
--   midnights (users.timezone); what accrues inside one local day is capped at daily_cap,
--   counting what earlier runs already took from that day (the last decay row, found at
--   recorded_at = decayed_through, carries last_day / last_day_total).
--   The score drops by the accrual truncated to the cent (a 1e-9 tolerance absorbs repeating
--   fractions such as 50 minutes = 0.8333... h); the sub-cent rest is carried in the
--   history row (remainder) to the next run while the accrual is uninterrupted, so hourly runs
--   and one catch-up run end on the same score. A player whose accrual is below one cent (or
--   whose day is capped) is not touched: the watermark stays, nothing is lost.
--   A player who decays gets decayed_through = p_now and exactly one 'decay' history row.
--   Score reaching 0: game_status game_over, a 'decay_game_over' row, pending events cancelled
--   and a game_over Telegram message queued (setting game_over_text), in the same transaction.
--
-- Errors: 22004 p_now is NULL; 22023 p_now is infinite, or a batch size below 1.

CREATE OR REPLACE FUNCTION nikita.apply_decay_batch(
    p_now timestamptz,
    p_after uuid,
    p_limit integer
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    -- The lowest uuid: the batch range starts here when p_after is NULL.
    v_lo uuid := coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid);
    v_scanned integer;
    v_last uuid;
    v_decayed integer;
    v_points numeric;
    v_game_over uuid[];
    v_text text;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'batch size must be at least 1, got %', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;

    -- The batch: the next p_limit eligible players by id (users_decay_eligible_idx).
    SELECT count(*)::integer, (pg_catalog.array_agg(b.id ORDER BY b.id DESC))[1]
    INTO v_scanned, v_last
    FROM (
        SELECT u.id
        FROM nikita.users AS u
        WHERE
            u.game_status = 'active'
            AND u.onboarding_status IN ('completed', 'skipped')
            AND u.id >= v_lo
            AND u.id IS DISTINCT FROM p_after
        ORDER BY u.id
        LIMIT p_limit
    ) AS b;

    IF v_scanned = 0 THEN
        RETURN pg_catalog.jsonb_build_object(
            'scanned', 0, 'last_id', NULL, 'decayed', 0, 'game_overs', 0, 'points', 0
        );
    END IF;

    WITH locked AS (
        -- Players of the batch with accrual to apply, locked: a concurrent run waits here and
        -- then sees the new watermark, so two runs at the same instant decay once.
        SELECT
            u.id,
            u.relationship_score,
            u.chapter,
            u.timezone,
            u.decayed_through,
            r.points_per_hour,
            r.daily_cap,
            greatest(coalesce(u.last_interaction_at, u.created_at) + r.grace, u.decayed_through)
                AS accrue_from
        FROM nikita.users AS u
        INNER JOIN nikita.decay_rules AS r ON r.chapter = u.chapter
        WHERE
            u.game_status = 'active'
            AND u.onboarding_status IN ('completed', 'skipped')
            AND u.id >= v_lo
            AND u.id IS DISTINCT FROM p_after
            AND u.id <= v_last
            AND greatest(coalesce(u.last_interaction_at, u.created_at) + r.grace,
                u.decayed_through) < p_now
        FOR UPDATE OF u
    ),

    calc AS (
        SELECT
            l.id,
            l.relationship_score AS old_score,
            l.chapter,
            l.timezone,
            l.points_per_hour,
            l.daily_cap,
            l.accrue_from,
            a.hours,
            a.last_day,
            a.last_day_total,
            a.accrued + coalesce(
                CASE WHEN l.accrue_from = l.decayed_through THEN p.remainder END, 0
            ) AS total
        FROM locked AS l
        -- The previous run's row: how much of its last local day was taken, and its rest.
        LEFT JOIN LATERAL (
            SELECT
                (h.event_details ->> 'last_day')::date AS last_day,
                (h.event_details ->> 'last_day_total')::numeric AS last_day_total,
                (h.event_details ->> 'remainder')::numeric AS remainder
            FROM nikita.score_history AS h
            WHERE
                h.user_id = l.id
                AND h.recorded_at = l.decayed_through
                AND h.event_type = 'decay'
                AND h.event_details ? 'last_day'
            LIMIT 1
        ) AS p ON true
        -- Per local day of the accrual: its hours, what the cap still allows, the amount.
        CROSS JOIN LATERAL (
            SELECT
                sum(d.hours) AS hours,
                sum(d.amount) AS accrued,
                max(d.day) AS last_day,
                (pg_catalog.array_agg(d.taken + d.amount ORDER BY d.day DESC))[1]
                    AS last_day_total
            FROM (
                SELECT
                    s.day,
                    s.hours,
                    s.taken,
                    least(greatest(l.daily_cap - s.taken, 0), s.hours * l.points_per_hour)
                        AS amount
                FROM (
                    SELECT
                        g.day,
                        extract(
                            EPOCH FROM
                            least(p_now, (g.day + 1)::timestamp AT TIME ZONE l.timezone)
                            - greatest(l.accrue_from, g.day::timestamp AT TIME ZONE l.timezone)
                        ) / 3600 AS hours,
                        CASE WHEN g.day = p.last_day THEN p.last_day_total ELSE 0 END AS taken
                    FROM (
                        SELECT (l.accrue_from AT TIME ZONE l.timezone)::date + k.k AS day
                        FROM pg_catalog.generate_series(
                            0,
                            (p_now AT TIME ZONE l.timezone)::date
                            - (l.accrue_from AT TIME ZONE l.timezone)::date
                        ) AS k (k)
                    ) AS g
                ) AS s
                WHERE s.hours > 0
            ) AS d
        ) AS a
    ),

    settled AS (
        SELECT
            c.*,
            trunc(c.total + 0.000000001, 2) AS applied,
            c.old_score - least(trunc(c.total + 0.000000001, 2), c.old_score) AS new_score
        FROM calc AS c
        WHERE trunc(c.total + 0.000000001, 2) > 0
    ),

    upd AS (
        UPDATE nikita.users AS u
        SET
            relationship_score = s.new_score,
            decayed_through = p_now,
            game_status = CASE WHEN s.new_score = 0 THEN 'game_over' ELSE u.game_status END
        FROM settled AS s
        WHERE u.id = s.id
        RETURNING
            s.id, s.old_score, s.new_score, s.chapter, s.timezone, s.points_per_hour,
            s.daily_cap, s.accrue_from, s.hours, s.last_day, s.last_day_total, s.total,
            s.applied
    ),

    hist AS (
        INSERT INTO nikita.score_history (
            user_id, score, delta, chapter, event_type, event_details, recorded_at
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
                'to', p_now,
                'rate', up.points_per_hour,
                'daily_cap', up.daily_cap,
                'timezone', up.timezone,
                'last_day', up.last_day,
                'last_day_total', round(up.last_day_total, 12),
                'remainder', round(up.total - up.applied, 12)
            ),
            p_now
        FROM upd AS up
        UNION ALL
        SELECT
            up.id,
            0,
            0,
            up.chapter,
            'decay_game_over',
            pg_catalog.jsonb_build_object('reason', 'score reached 0 by decay', 'at', p_now),
            p_now
        FROM upd AS up
        WHERE up.new_score = 0
        RETURNING 1
    )

    SELECT
        count(*)::integer,
        coalesce(sum(up.old_score - up.new_score), 0),
        pg_catalog.array_agg(up.id) FILTER (WHERE up.new_score = 0)
    INTO v_decayed, v_points, v_game_over
    FROM upd AS up;

    IF v_game_over IS NOT NULL THEN
        -- Cancel first, then queue: the game_over message must not be cancelled with the rest.
        PERFORM nikita.cancel_user_events(g.id) FROM pg_catalog.unnest(v_game_over) AS g (id);
        v_text := nikita.setting_text('game_over_text');
        IF coalesce(v_text, '') <> '' THEN
            PERFORM nikita.schedule_event(
                u.id, 'telegram', 'game_over', pg_catalog.jsonb_build_object('text', v_text),
                p_now, 'game_over:' || u.id::text
            )
            FROM nikita.users AS u
            WHERE u.id = ANY(v_game_over) AND u.telegram_id IS NOT NULL;
        END IF;
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'scanned', v_scanned,
        'last_id', v_last,
        'decayed', v_decayed,
        'game_overs', coalesce(pg_catalog.cardinality(v_game_over), 0),
        'points', v_points
    );
END
$$;
COMMENT ON FUNCTION nikita.apply_decay_batch(timestamptz, uuid, integer) IS
'Decay, as of p_now, the next p_limit eligible players by id after p_after (NULL: from the '
'start). Returns {scanned, last_id, decayed, game_overs, points}; the caller continues after '
'last_id while scanned = p_limit. run_job(''decay'') commits each batch separately.';

CREATE OR REPLACE FUNCTION nikita.apply_decay(p_now timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    v_size bigint;
    v_after uuid;
    v_batch jsonb;
    v_batches integer := 0;
    v_scanned bigint := 0;
    v_decayed bigint := 0;
    v_game_overs bigint := 0;
    v_points numeric := 0;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    v_size := nikita.setting_bigint('decay_batch_size');
    IF v_size IS NULL OR v_size < 1 OR v_size > 1000000 THEN
        RAISE EXCEPTION 'setting decay_batch_size must be between 1 and 1000000, got %',
            coalesce(v_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    LOOP
        v_batch := nikita.apply_decay_batch(p_now, v_after, v_size::integer);
        v_batches := v_batches + 1;
        v_scanned := v_scanned + (v_batch ->> 'scanned')::bigint;
        v_decayed := v_decayed + (v_batch ->> 'decayed')::bigint;
        v_game_overs := v_game_overs + (v_batch ->> 'game_overs')::bigint;
        v_points := v_points + (v_batch ->> 'points')::numeric;
        EXIT WHEN (v_batch ->> 'scanned')::bigint < v_size;
        v_after := (v_batch ->> 'last_id')::uuid;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object(
        'decayed', v_decayed,
        'game_overs', v_game_overs,
        'points', v_points,
        'scanned', v_scanned,
        'batches', v_batches
    );
END
$$;
COMMENT ON FUNCTION nikita.apply_decay(timestamptz) IS
'Apply decay to every eligible player as of p_now, in one transaction (batches of setting '
'decay_batch_size). Returns {decayed, game_overs, points, scanned, batches}. The scheduled job '
'(run_job(''decay'')) runs the same batches committing each one.';

REVOKE EXECUTE ON FUNCTION nikita.apply_decay_batch(timestamptz, uuid, integer),
nikita.apply_decay(timestamptz) FROM PUBLIC;
