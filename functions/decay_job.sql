-- The decay job: its step (what run_job('decay') calls until done, committing each step) and
-- apply_decay (the same steps in one transaction). The rules are in functions/decay.sql.
--
-- State: {"done", "page" (next first page), "pages" (pages per batch, from the first batch on),
-- "result": {decayed, game_overs, points, due, batches, skipped, skipped_rows (the first 20),
-- max_batch_ms (the slowest batch, its COMMIT not included), p_now}}. The first call (p_state
-- NULL) does no work and cannot fail, so that a run failing at its first batch still records
-- zero counts. A batch ends the run when its
-- next_page reaches the table's size, read by that batch (the table may grow while rows move,
-- and the run follows it).

CREATE OR REPLACE FUNCTION nikita._job_decay_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_t0 timestamptz := pg_catalog.clock_timestamp();
    v_r jsonb := p_state -> 'result';
    v_pages integer := (p_state ->> 'pages')::integer;
    v_batch jsonb;
    v_ms numeric;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_state IS NULL THEN
        RETURN pg_catalog.jsonb_build_object(
            'done', false,
            'page', 0,
            'result', pg_catalog.jsonb_build_object(
                'decayed', 0, 'game_overs', 0, 'points', 0, 'due', 0, 'batches', 0,
                'skipped', 0, 'skipped_rows', '[]'::jsonb, 'max_batch_ms', 0, 'p_now', p_now
            )
        );
    END IF;
    v_pages := coalesce(v_pages, nikita._decay_batch_pages());
    v_batch := nikita.apply_decay_batch(p_now, (p_state ->> 'page')::bigint, v_pages);
    v_ms := extract(EPOCH FROM pg_catalog.clock_timestamp() - v_t0) * 1000;
    RETURN pg_catalog.jsonb_build_object(
        'done', (v_batch ->> 'next_page')::bigint >= (v_batch ->> 'table_pages')::bigint,
        'page', (v_batch ->> 'next_page')::bigint,
        'pages', v_pages,
        'result', pg_catalog.jsonb_build_object(
            'decayed', (v_r ->> 'decayed')::bigint + (v_batch ->> 'decayed')::bigint,
            'game_overs', (v_r ->> 'game_overs')::bigint + (v_batch ->> 'game_overs')::bigint,
            'points', (v_r ->> 'points')::numeric + (v_batch ->> 'points')::numeric,
            'due', (v_r ->> 'due')::bigint + (v_batch ->> 'due')::bigint,
            'batches', (v_r ->> 'batches')::integer + 1,
            'skipped', (v_r ->> 'skipped')::bigint
            + coalesce((v_batch ->> 'skipped')::bigint, 0),
            'skipped_rows', pg_catalog.jsonb_path_query_array(
                (v_r -> 'skipped_rows') || coalesce(v_batch -> 'skipped_rows', '[]'::jsonb),
                '$[0 to 19]'
            ),
            'max_batch_ms', greatest(
                (v_r ->> 'max_batch_ms')::numeric, pg_catalog.round(v_ms, 1)
            ),
            'p_now', v_r -> 'p_now'
        )
    );
END
$$;
COMMENT ON FUNCTION nikita._job_decay_step(timestamptz, jsonb) IS
'Internal: the decay job''s step (job_catalog.step): one batch of apply_decay_batch as of '
'p_now from the page p_state names, the run''s counts folded into the state''s result; the '
'first call (p_state NULL) only starts the state. See functions/job_catalog.sql.';
REVOKE EXECUTE ON FUNCTION nikita._job_decay_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_decay_step(timestamptz, jsonb) TO nikita_jobs;

CREATE OR REPLACE FUNCTION nikita.apply_decay(p_now timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    -- The pinned instant (and decay's batch timing) belong to the job's row, not to this result.
    RETURN nikita._job_run_steps('decay', p_now) - 'max_batch_ms' - 'p_now';
END
$$;
COMMENT ON FUNCTION nikita.apply_decay(timestamptz) IS
'Apply decay to every eligible player as of p_now, in one transaction (batches of about '
'setting decay_batch_size players). Returns {decayed, game_overs, points, due, batches, '
'skipped, skipped_rows}: a player that cannot be decayed is skipped and reported (at most 20 '
'rows listed), never stops the run. The scheduled job (run_job(''decay'')) runs the same '
'steps (nikita._job_decay_step) committing each one.';
REVOKE EXECUTE ON FUNCTION nikita.apply_decay(timestamptz) FROM PUBLIC;
