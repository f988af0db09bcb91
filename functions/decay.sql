-- Decay (DESIGN.md "Decay, exactly").
--
--   nikita.apply_decay(p_now)                        the whole run in one call (one transaction)
--   nikita.apply_decay_batch(p_now, first_page, n)   one batch: the players stored on n pages of
--                                                    nikita.users from first_page on; what
--                                                    run_job('decay') commits one by one, every
--                                                    batch pinned to one p_now
--   nikita.decay_batch_pages()                       pages per batch for setting
--                                                    decay_batch_size (players per batch)
--   nikita.decay_tids(p_now, lo, hi)                 internal: the set-based statement over
--                                                    the rows stored at TIDs [lo, hi)
--
-- Batches follow the table's physical order (TID ranges), not the ids: a batch reads, updates
-- and writes history for players stored together, so each page is touched by one batch only
-- (ids are random uuids: batches by id touched every page of the table in every batch).
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
--   Any timestamp the columns accept works (a 1900 sentinel, -infinity, 294276 AD; p_now up to
--   9999): no int4 arithmetic, and accrual computed from a horizon past which the score is
--   surely spent (see decay_tids), so the result is the same and the cost bounded.
--   A player that cannot be decayed (its row makes the statement fail) is skipped and reported
--   (skipped, skipped_rows), every other player decayed: a failing batch is re-run in halves
--   down to single players (apply_decay_batch); one ops_alert per run when some were skipped.
--
-- Errors: 22004 p_now is NULL; 42501 p_now is not now() for a caller other than the owner
-- (functions/clock.sql); 22023 p_now is infinite, a bad page range, or a batch size
-- (decay_batch_size) outside 1 .. 1000000.

-- The first version batched by id; its signature is gone.
DROP FUNCTION IF EXISTS nikita.apply_decay_batch(timestamptz, uuid, integer);

CREATE OR REPLACE FUNCTION nikita.decay_batch_pages()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_size bigint := nikita.setting_bigint('decay_batch_size');
    v_per_page double precision;
BEGIN
    IF v_size IS NULL OR v_size < 1 OR v_size > 1000000 THEN
        RAISE EXCEPTION 'setting decay_batch_size must be between 1 and 1000000, got %',
            coalesce(v_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    -- Players per page from the planner's statistics (30 before the first ANALYZE).
    SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages END
    INTO v_per_page
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = 'nikita.users'::pg_catalog.regclass;
    RETURN greatest(1, ceil(v_size / coalesce(v_per_page, 30)))::integer;
END
$$;
COMMENT ON FUNCTION nikita.decay_batch_pages()
IS 'Pages of nikita.users per decay batch: setting decay_batch_size over players per page.';

CREATE OR REPLACE FUNCTION nikita.decay_tids(p_now timestamptz, p_lo tid, p_hi tid)
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
    v_text text;
BEGIN
    p_now := nikita.checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
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
                'to', up.watermark,
                'last_day', up.last_day,
                'last_day_total', round(up.last_day_total, 6)
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
        (SELECT count(*)::integer FROM calc),
        count(*)::integer,
        coalesce(sum(up.old_score - up.new_score), 0),
        pg_catalog.array_agg(up.id) FILTER (WHERE up.new_score = 0)
    INTO v_due, v_decayed, v_points, v_game_over
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
        'due', v_due,
        'decayed', v_decayed,
        'game_overs', coalesce(pg_catalog.cardinality(v_game_over), 0),
        'points', v_points
    );
END
$$;
COMMENT ON FUNCTION nikita.decay_tids(timestamptz, tid, tid) IS
'Internal: decay, as of p_now, the eligible players whose row is stored at a TID in [p_lo, '
'p_hi), set-based, game overs included. Returns {due, decayed, game_overs, points}. Called by '
'apply_decay_batch for its page range, and for parts of it down to one row when it fails.';

CREATE OR REPLACE FUNCTION nikita.apply_decay_batch(
    p_now timestamptz,
    p_first_page bigint,
    p_pages integer
)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lo tid;
    v_hi tid;
    v_table_pages bigint;
    v_res jsonb;
    v_part jsonb;
    v_tids tid[];
    v_from integer[];
    v_to integer[];
    v_i integer;
    v_j integer;
    v_step integer;
    v_top tid;
    v_state text;
    v_error text;
    v_skipped integer := 0;
    v_rows jsonb := '[]'::jsonb;
    v_chat bigint;
    v_key text;
    v_alert uuid;
    v_alert_error text;
BEGIN
    p_now := nikita.checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF p_first_page IS NULL OR p_first_page < 0 OR p_first_page >= 4294967295 THEN
        RAISE EXCEPTION 'first page must be between 0 and 4294967294, got %',
            coalesce(p_first_page::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF p_pages IS NULL OR p_pages < 1 THEN
        RAISE EXCEPTION 'pages per batch must be at least 1, got %',
            coalesce(p_pages::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    v_lo := pg_catalog.format('(%s,0)', p_first_page)::tid;
    v_hi := pg_catalog.format('(%s,0)', least(p_first_page + p_pages, 4294967295))::tid;
    v_table_pages := pg_catalog.pg_relation_size('nikita.users'::pg_catalog.regclass)
        / pg_catalog.current_setting('block_size')::bigint;

    BEGIN
        v_res := nikita.decay_tids(p_now, v_lo, v_hi);
    EXCEPTION WHEN OTHERS THEN
        -- Not a row's fault: resources (53: disk full, out of memory), lock or object state
        -- (55: lock_timeout), operator intervention (57), system (58), internal (XX), a
        -- serialization failure or deadlock (40). Retrying row by row would fail the same way
        -- for each: the batch fails, and with it the run (run_job records and alerts).
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
        IF pg_catalog.left(v_state, 2) IN ('40', '53', '55', '57', '58', 'XX') THEN
            RAISE;
        END IF;
        -- One bad row must not stop decay for everyone: the batch (rolled back to here) is
        -- re-run in eighths, each its own subtransaction, a failing part split again down to
        -- one player, who is skipped and reported. Every other player is decayed, set-based.
        -- Splitting rather than one statement per player: a bad row that stays costs about
        -- twice its batch each run, not one statement for each of the batch's players.
        v_res := '{"due": 0, "decayed": 0, "game_overs": 0, "points": 0}'::jsonb;
        SELECT pg_catalog.array_agg(u.ctid ORDER BY u.ctid) INTO v_tids
        FROM nikita.users AS u
        WHERE
            u.ctid >= v_lo
            AND u.ctid < v_hi
            AND u.game_status = 'active'
            AND u.onboarding_status IN ('completed', 'skipped');
        v_from := ARRAY[1];
        v_to := ARRAY[coalesce(pg_catalog.cardinality(v_tids), 0)];
        WHILE pg_catalog.cardinality(v_from) > 0 LOOP
            v_i := v_from[pg_catalog.cardinality(v_from)];
            v_j := v_to[pg_catalog.cardinality(v_to)];
            v_from := v_from[1:pg_catalog.cardinality(v_from) - 1];
            v_to := v_to[1:pg_catalog.cardinality(v_to) - 1];
            CONTINUE WHEN v_i > v_j;
            -- The TID just after the part's last row: [first row, that) holds the part.
            v_top := pg_catalog.format(
                '(%s,%s)',
                (v_tids[v_j]::text::point)[0]::bigint,
                (v_tids[v_j]::text::point)[1]::bigint + 1
            )::tid;
            BEGIN
                v_part := nikita.decay_tids(p_now, v_tids[v_i], v_top);
                v_res := pg_catalog.jsonb_build_object(
                    'due', (v_res ->> 'due')::bigint + (v_part ->> 'due')::bigint,
                    'decayed', (v_res ->> 'decayed')::bigint + (v_part ->> 'decayed')::bigint,
                    'game_overs',
                    (v_res ->> 'game_overs')::bigint + (v_part ->> 'game_overs')::bigint,
                    'points', (v_res ->> 'points')::numeric + (v_part ->> 'points')::numeric
                );
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
                IF pg_catalog.left(v_state, 2) IN ('40', '53', '55', '57', '58', 'XX') THEN
                    RAISE;  -- not a row's fault, as above
                END IF;
                IF v_i = v_j THEN
                    v_skipped := v_skipped + 1;
                    IF pg_catalog.jsonb_array_length(v_rows) < 20 THEN
                        v_rows := v_rows || pg_catalog.jsonb_build_array(
                            pg_catalog.jsonb_build_object(
                                'user_id',
                                (SELECT u.id FROM nikita.users AS u WHERE u.ctid = v_tids[v_i]),
                                'sqlstate', v_state,
                                'error', pg_catalog.left(v_error, 500)
                            )
                        );
                    END IF;
                ELSE
                    -- Eighths, pushed last first: the first runs next (the table's order).
                    v_step := ceil((v_j - v_i + 1) / 8.0)::integer;
                    FOR v_n IN REVERSE (v_j - v_i) / v_step .. 0 LOOP
                        v_from := v_from || (v_i + v_n * v_step);
                        v_to := v_to || least(v_j, v_i + (v_n + 1) * v_step - 1);
                    END LOOP;
                END IF;
            END;
        END LOOP;
    END;

    IF v_skipped > 0 THEN
        -- One ops alert per run (every batch of a run shares p_now, hence the key), when an
        -- alert chat is set. Its failure is reported, never fails the batch.
        BEGIN
            v_chat := nikita.setting_bigint('alert_chat_id');
            v_key := 'ops_alert:decay_skipped:'
                || pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US');
            IF v_chat IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM nikita.scheduled_events AS e
                WHERE e.event_type = 'ops_alert' AND e.dedupe_key = v_key
            ) THEN
                v_alert := nikita.schedule_event(
                    NULL,
                    'telegram',
                    'ops_alert',
                    pg_catalog.jsonb_build_object(
                        'chat_id', v_chat,
                        'text', pg_catalog.format(
                            'nikita-tasks: decay at %s UTC in database %s skipped player(s) it '
                            || 'could not decay, first %s: %s (SQLSTATE %s). Every other player '
                            || 'was decayed; see the result of the decay job (skipped_rows).',
                            pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                            pg_catalog.current_database(),
                            v_rows -> 0 ->> 'user_id',
                            pg_catalog.left(v_rows -> 0 ->> 'error', 1000),
                            v_rows -> 0 ->> 'sqlstate'
                        )
                    ),
                    p_now,
                    v_key
                );
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_alert_error = MESSAGE_TEXT;
        END;
    END IF;

    RETURN v_res || pg_catalog.jsonb_build_object(
        'skipped', v_skipped,
        'skipped_rows', v_rows,
        'next_page', p_first_page + p_pages,
        'table_pages', v_table_pages
    ) || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'alert_event_id', v_alert, 'alert_error', v_alert_error
    ));
END
$$;
COMMENT ON FUNCTION nikita.apply_decay_batch(timestamptz, bigint, integer) IS
'Decay, as of p_now, the eligible players stored on pages p_first_page .. p_first_page + '
'p_pages - 1 of nikita.users. A player that cannot be decayed (an error for that row) is '
'skipped and reported, every other one is decayed, and one ops_alert per run goes to setting '
'alert_chat_id. Returns {due, decayed, game_overs, points, skipped, skipped_rows (at most 20 '
'of {user_id, sqlstate, error}), next_page, table_pages}; the caller continues at next_page '
'while it is below table_pages. run_job(''decay'') commits each batch separately. '
'Errors: 22004 p_now NULL, 22023 p_now infinite or a bad page range, 42501 p_now not now() '
'for a caller other than the owner.';

CREATE OR REPLACE FUNCTION nikita.apply_decay(p_now timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pages integer;
    v_page bigint := 0;
    v_batch jsonb;
    v_batches integer := 0;
    v_due bigint := 0;
    v_decayed bigint := 0;
    v_game_overs bigint := 0;
    v_points numeric := 0;
    v_skipped bigint := 0;
    v_rows jsonb := '[]'::jsonb;
BEGIN
    p_now := nikita.checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    v_pages := nikita.decay_batch_pages();
    LOOP
        v_batch := nikita.apply_decay_batch(p_now, v_page, v_pages);
        v_batches := v_batches + 1;
        v_due := v_due + (v_batch ->> 'due')::bigint;
        v_decayed := v_decayed + (v_batch ->> 'decayed')::bigint;
        v_game_overs := v_game_overs + (v_batch ->> 'game_overs')::bigint;
        v_points := v_points + (v_batch ->> 'points')::numeric;
        v_skipped := v_skipped + (v_batch ->> 'skipped')::bigint;
        IF pg_catalog.jsonb_array_length(v_rows) < 20 THEN
            v_rows := (
                SELECT coalesce(pg_catalog.jsonb_agg(r.value ORDER BY r.n), '[]'::jsonb)
                FROM pg_catalog.jsonb_array_elements(v_rows || (v_batch -> 'skipped_rows'))
                    WITH ORDINALITY AS r (value, n)
                WHERE r.n <= 20
            );
        END IF;
        v_page := (v_batch ->> 'next_page')::bigint;
        EXIT WHEN v_page >= (v_batch ->> 'table_pages')::bigint;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object(
        'decayed', v_decayed,
        'game_overs', v_game_overs,
        'points', v_points,
        'due', v_due,
        'batches', v_batches,
        'skipped', v_skipped,
        'skipped_rows', v_rows
    );
END
$$;
COMMENT ON FUNCTION nikita.apply_decay(timestamptz) IS
'Apply decay to every eligible player as of p_now, in one transaction (batches of about '
'setting decay_batch_size players). Returns {decayed, game_overs, points, due, batches, '
'skipped, skipped_rows}: a player that cannot be decayed is skipped and reported (at most 20 '
'rows listed), never stops the run. The '
'scheduled job '
'(run_job(''decay'')) runs the same batches committing each one.';

REVOKE EXECUTE ON FUNCTION nikita.apply_decay_batch(timestamptz, bigint, integer),
nikita.apply_decay(timestamptz), nikita.decay_batch_pages(),
nikita.decay_tids(timestamptz, tid, tid) FROM PUBLIC;
