-- run_job: how pg_cron runs every job (`CALL nikita.run_job('decay')`), see docs/jobs.md.
--
-- A PROCEDURE, so that it can COMMIT between its steps:
--   1. the job's advisory lock (session level, (job_lock_class(), lock_key)); when another
--      session holds it, a 'skipped' row is written and the call returns at once;
--   2. any 'running' row left by a dead run of this job is failed as abandoned, a 'running' row
--      is written, COMMIT (the run is visible, and survives whatever the job does);
--   3. the job runs inside a subtransaction (an exception block), pinned to one p_now: decay as
--      batches of about decay_batch_size players (ranges of pages of nikita.users), each
--      committed on its own; the others in one step;
--   4. the row becomes 'completed' (result, duration_ms) or 'failed' (error; the job's work is
--      rolled back, the row is not), an ops_alert is queued for a failure, COMMIT, unlock.
-- Consequences: run_job must be CALLed outside a transaction block (it begins with a COMMIT, so
-- inside one it fails at once with SQLSTATE 2D000 before taking any lock), and it cannot be
-- SECURITY DEFINER nor carry SET options (PostgreSQL forbids transaction control there): it
-- runs with the rights of its caller, the pg_cron job's owner, and qualifies every name.

CREATE OR REPLACE FUNCTION nikita.queue_job_alert(
    p_job text,
    p_error text,
    p_now timestamptz DEFAULT pg_catalog.now()
)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_chat bigint := nikita.setting_bigint('alert_chat_id');
BEGIN
    IF v_chat IS NULL THEN
        RETURN NULL;  -- alerts disabled
    END IF;
    -- At most one alert per job per hour: a minutely job failing all day is one alert an hour.
    IF EXISTS (
        SELECT 1
        FROM nikita.job_executions AS e
        WHERE
            e.job_name = p_job
            AND e.started_at > p_now - interval '1 hour'
            AND e.status = 'failed'
            AND e.result ? 'alert_event_id'
    ) THEN
        RETURN NULL;
    END IF;
    RETURN nikita.schedule_event(
        NULL,
        'telegram',
        'ops_alert',
        pg_catalog.jsonb_build_object(
            'chat_id', v_chat,
            'text', pg_catalog.format(
                'nikita-tasks: job %s failed at %s UTC in database %s: %s',
                p_job,
                pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                pg_catalog.current_database(),
                pg_catalog.left(coalesce(p_error, 'unknown error'), 2000)
            )
        ),
        p_now,
        'ops_alert:job_failed:' || p_job
    );
END
$$;
COMMENT ON FUNCTION nikita.queue_job_alert(text, text, timestamptz) IS
'Queue an ops_alert Telegram event to setting alert_chat_id saying job p_job failed with '
'p_error; NULL when no alert chat is set or this job already alerted within the hour.';

CREATE OR REPLACE PROCEDURE nikita.run_job(p_name text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_now timestamptz := pg_catalog.now();
    v_class integer := nikita.job_lock_class();
    v_key integer;
    v_id bigint;
    v_started timestamptz;
    v_result jsonb;
    v_error text;
    v_state text;
    v_alert uuid;
    v_alert_error text;
    -- decay
    v_pages integer;
    v_page bigint := 0;
    v_batch jsonb;
    v_t0 timestamptz;
    v_ms numeric;
    v_max_ms numeric := 0;
    v_batches integer := 0;
    v_due bigint := 0;
    v_decayed bigint := 0;
    v_game_overs bigint := 0;
    v_points numeric := 0;
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION 'job name must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c.lock_key INTO v_key FROM nikita.job_catalog AS c WHERE c.job_name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job "%"', p_name
            USING ERRCODE = '22023',
                HINT = 'one of: decay, sweep, summary, cleanup, conversations';
    END IF;

    -- Outside a transaction block this ends the caller's (empty) transaction; inside one it
    -- raises 2D000 before any lock is taken.
    COMMIT;

    IF NOT pg_catalog.pg_try_advisory_lock(v_class, v_key) THEN
        INSERT INTO nikita.job_executions (job_name, status, completed_at, duration_ms, result)
        VALUES (
            p_name, 'skipped', pg_catalog.clock_timestamp(), 0,
            pg_catalog.jsonb_build_object('reason', 'the previous run is still running')
        );
        COMMIT;
        RETURN;
    END IF;

    -- This session holds the job's lock: a 'running' row of this job belongs to a dead run.
    UPDATE nikita.job_executions AS e
    SET
        status = 'failed',
        completed_at = pg_catalog.clock_timestamp(),
        error = 'abandoned: the run ended without recording a result'
    WHERE e.job_name = p_name AND e.status = 'running';

    INSERT INTO nikita.job_executions (job_name, status)
    VALUES (p_name, 'running')
    RETURNING id, started_at INTO v_id, v_started;
    COMMIT;

    IF p_name = 'decay' THEN
        BEGIN
            v_pages := nikita.decay_batch_pages();
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        -- One transaction per batch (a range of pages of nikita.users), all pinned to v_now.
        WHILE v_error IS NULL LOOP
            v_t0 := pg_catalog.clock_timestamp();
            BEGIN
                v_batch := nikita.apply_decay_batch(v_now, v_page, v_pages);
            EXCEPTION WHEN OTHERS OR query_canceled THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
            END;
            EXIT WHEN v_error IS NOT NULL;
            COMMIT;
            v_ms := extract(EPOCH FROM pg_catalog.clock_timestamp() - v_t0) * 1000;
            v_max_ms := greatest(v_max_ms, v_ms);
            v_batches := v_batches + 1;
            v_due := v_due + (v_batch ->> 'due')::bigint;
            v_decayed := v_decayed + (v_batch ->> 'decayed')::bigint;
            v_game_overs := v_game_overs + (v_batch ->> 'game_overs')::bigint;
            v_points := v_points + (v_batch ->> 'points')::numeric;
            v_page := (v_batch ->> 'next_page')::bigint;
            EXIT WHEN v_page >= (v_batch ->> 'table_pages')::bigint;
        END LOOP;
        v_result := pg_catalog.jsonb_build_object(
            'decayed', v_decayed,
            'game_overs', v_game_overs,
            'points', v_points,
            'due', v_due,
            'batches', v_batches,
            'max_batch_ms', round(v_max_ms, 1),
            'p_now', v_now
        );
    ELSE
        BEGIN
            v_result := CASE p_name
                WHEN 'sweep' THEN nikita.sweep_events(v_now)
                WHEN 'summary' THEN nikita.generate_daily_summaries(v_now)
                WHEN 'cleanup' THEN nikita.cleanup(v_now)
                WHEN 'conversations' THEN nikita.detect_stale_conversations(v_now)
            END;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        END;
        IF v_result IS NOT NULL AND pg_catalog.jsonb_typeof(v_result) <> 'object' THEN
            v_result := pg_catalog.jsonb_build_object('result', v_result);
        END IF;
    END IF;

    IF v_error IS NULL THEN
        UPDATE nikita.job_executions AS e
        SET
            status = 'completed',
            completed_at = pg_catalog.clock_timestamp(),
            result = coalesce(v_result, '{}'::jsonb),
            duration_ms = (
                extract(EPOCH FROM pg_catalog.clock_timestamp() - v_started) * 1000
            )::integer
        WHERE e.id = v_id;
    ELSE
        v_error := v_error || ' (SQLSTATE ' || v_state || ')';
        BEGIN
            v_alert := nikita.queue_job_alert(p_name, v_error, v_now);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_alert_error = MESSAGE_TEXT;
        END;
        UPDATE nikita.job_executions AS e
        SET
            status = 'failed',
            completed_at = pg_catalog.clock_timestamp(),
            error = v_error,
            result = CASE
                WHEN p_name = 'decay' THEN v_result
                ELSE '{}'::jsonb
            END
            || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'alert_event_id', v_alert, 'alert_error', v_alert_error
            )),
            duration_ms = (
                extract(EPOCH FROM pg_catalog.clock_timestamp() - v_started) * 1000
            )::integer
        WHERE e.id = v_id;
    END IF;
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(v_class, v_key);
END
$$;
COMMENT ON PROCEDURE nikita.run_job (text) IS
'Run job p_name (decay, sweep, summary, cleanup, conversations) as pg_cron does: CALL '
'nikita.run_job(''decay'') outside a transaction block. Advisory lock per job (overlap: a '
'skipped row), a job_executions row running -> completed | failed that survives the job''s '
'rollback, an ops_alert on failure; decay commits batch by batch. Unknown name: 22023.';

REVOKE EXECUTE ON FUNCTION nikita.queue_job_alert(text, text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE nikita.run_job(text) FROM PUBLIC;
