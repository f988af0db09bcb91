-- Decay (DESIGN.md "Decay, exactly").
--
--   nikita.apply_decay(p_now)                        the whole run in one call (one transaction),
--                                                    functions/decay_job.sql
--   nikita._job_decay_step(p_now, state)             the decay job's step: one batch and the
--                                                    run's counts; run_job('decay') commits each
--                                                    step, every one pinned to one p_now
--                                                    (functions/decay_job.sql)
--   nikita.apply_decay_batch(p_now, first_page, n)   one batch: the players stored on n pages of
--                                                    nikita.users from first_page on
--   nikita._decay_batch_pages()                      internal: pages per batch for setting
--                                                    decay_batch_size (players per batch)
--   nikita._decay_tids(p_now, lo, hi)                internal: the set-based statement over
--                                                    the rows stored at TIDs [lo, hi)
--                                                    (functions/_decay_tids.sql)
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
--   surely spent (see _decay_tids), so the result is the same and the cost bounded.
--   A player that cannot be decayed (its row makes the statement fail) is skipped and reported
--   (skipped, skipped_rows), every other player decayed: a failing batch is re-run in halves
--   down to single players (apply_decay_batch); one ops_alert per run when some were skipped.
--
-- Errors: 22004 p_now is NULL; 42501 p_now is not now() for a caller other than the owner
-- (functions/clock.sql); 22023 p_now is infinite, a bad page range, or a batch size
-- (decay_batch_size) outside 1 .. 1000000.

-- The first version batched by id; its signature is gone.
DROP FUNCTION IF EXISTS nikita.apply_decay_batch(timestamptz, uuid, integer);

CREATE OR REPLACE FUNCTION nikita._decay_batch_pages()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_size bigint := nikita._setting_bigint('decay_batch_size');
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
COMMENT ON FUNCTION nikita._decay_batch_pages()
IS 'Pages of nikita.users per decay batch: setting decay_batch_size over players per page.';

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
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
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
        v_res := nikita._decay_tids(p_now, v_lo, v_hi);
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
                v_part := nikita._decay_tids(p_now, v_tids[v_i], v_top);
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
            v_chat := nikita._setting_bigint('alert_chat_id');
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

REVOKE EXECUTE ON FUNCTION nikita.apply_decay_batch(timestamptz, bigint, integer),
nikita._decay_batch_pages() FROM PUBLIC;
