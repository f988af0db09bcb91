-- The cleanup job (DESIGN.md "Jobs"): retention and abandoned job rows, as of p_now.
--
-- Every DELETE takes at most setting cleanup_batch_size rows and is repeated until nothing is
-- left, so no statement grows with the backlog; one call clears everything that is due.
--   signup_sessions       expires_at < p_now
--   scheduled_events      delivered / cancelled settled (updated_at) before p_now -
--                         event_retention; failed before p_now - failed_event_retention
--   job_executions        settled rows started before p_now - job_retention
--   cron.job_run_details  runs of the nikita-* jobs that ended before p_now -
--                         cron_run_retention, when pg_cron is installed here (dynamic SQL,
--                         so this compiles and runs without it). Other jobs' history is left
--                         to their owners.
--   job_executions        'running' rows whose job lock is held by no session: failed as
--                         abandoned (the session that ran them died).

CREATE OR REPLACE FUNCTION nikita.cleanup(p_now timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- Row estimates over lateral series are rough: JIT would compile for a second, for nothing.
SET jit = off
AS $$
DECLARE
    v_batch bigint := nikita._setting_bigint('cleanup_batch_size');
    v_event_keep interval := nikita._setting_interval('event_retention');
    v_failed_keep interval := nikita._setting_interval('failed_event_retention');
    v_job_keep interval := nikita._setting_interval('job_retention');
    v_cron_keep interval := nikita._setting_interval('cron_run_retention');
    v_n bigint;
    v_sessions bigint := 0;
    v_events bigint := 0;
    v_failed_events bigint := 0;
    v_jobs bigint := 0;
    v_cron bigint := 0;
    v_abandoned bigint;
    v_cron_sql constant text := $sql$
        DELETE FROM cron.job_run_details
        WHERE runid IN (
            SELECT d.runid
            FROM cron.job_run_details AS d
            WHERE d.jobid IN (SELECT j.jobid FROM cron.job AS j WHERE j.jobname LIKE 'nikita-%')
              AND coalesce(d.end_time, d.start_time) < $1
            LIMIT $2
        )
    $sql$;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT pg_catalog.isfinite(p_now) THEN
        RAISE EXCEPTION 'p_now must be a finite time, got %', p_now USING ERRCODE = '22023';
    END IF;
    IF v_batch IS NULL OR v_batch < 1 THEN
        RAISE EXCEPTION 'setting cleanup_batch_size must be at least 1, got %',
            coalesce(v_batch::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF v_event_keep IS NULL OR v_failed_keep IS NULL OR v_job_keep IS NULL
        OR v_cron_keep IS NULL THEN
        RAISE EXCEPTION 'retention settings must be set (event_retention, '
            'failed_event_retention, job_retention, cron_run_retention)'
            USING ERRCODE = '22023';
    END IF;

    LOOP
        DELETE FROM nikita.signup_sessions AS s
        WHERE s.id IN (
            SELECT x.id FROM nikita.signup_sessions AS x
            WHERE x.expires_at < p_now
            LIMIT v_batch
        );
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_sessions := v_sessions + v_n;
        EXIT WHEN v_n < v_batch;
    END LOOP;

    LOOP
        DELETE FROM nikita.scheduled_events AS e
        WHERE e.id IN (
            SELECT x.id FROM nikita.scheduled_events AS x
            WHERE x.status IN ('delivered', 'cancelled') AND x.updated_at < p_now - v_event_keep
            LIMIT v_batch
        );
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_events := v_events + v_n;
        EXIT WHEN v_n < v_batch;
    END LOOP;

    LOOP
        DELETE FROM nikita.scheduled_events AS e
        WHERE e.id IN (
            SELECT x.id FROM nikita.scheduled_events AS x
            WHERE x.status = 'failed' AND x.updated_at < p_now - v_failed_keep
            LIMIT v_batch
        );
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_failed_events := v_failed_events + v_n;
        EXIT WHEN v_n < v_batch;
    END LOOP;

    LOOP
        DELETE FROM nikita.job_executions AS j
        WHERE j.id IN (
            SELECT x.id FROM nikita.job_executions AS x
            WHERE x.status <> 'running' AND x.started_at < p_now - v_job_keep
            LIMIT v_batch
        );
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_jobs := v_jobs + v_n;
        EXIT WHEN v_n < v_batch;
    END LOOP;

    IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
        LOOP
            EXECUTE v_cron_sql USING p_now - v_cron_keep, v_batch;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            v_cron := v_cron + v_n;
            EXIT WHEN v_n < v_batch;
        END LOOP;
    END IF;

    -- A running row of a job whose advisory lock nobody holds was abandoned. (A live run takes
    -- the lock before it writes its row and releases it after settling the row.)
    UPDATE nikita.job_executions AS j
    SET
        status = 'failed',
        completed_at = p_now,
        error = 'abandoned: the run ended without recording a result'
    FROM nikita.job_catalog AS c
    WHERE
        j.job_name = c.job_name
        AND j.status = 'running'
        AND j.started_at <= p_now
        AND NOT EXISTS (
            SELECT 1
            FROM pg_catalog.pg_locks AS l
            WHERE
                l.locktype = 'advisory'
                AND l.granted
                AND l.database = (
                    SELECT d.oid FROM pg_catalog.pg_database AS d
                    WHERE d.datname = pg_catalog.current_database()
                )
                AND l.classid = nikita._job_lock_class()::oid
                AND l.objid = c.lock_key::oid
                AND l.objsubid = 2
        );
    GET DIAGNOSTICS v_abandoned = ROW_COUNT;

    RETURN pg_catalog.jsonb_build_object(
        'signup_sessions', v_sessions,
        'events', v_events,
        'failed_events', v_failed_events,
        'job_executions', v_jobs,
        'cron_run_details', v_cron,
        'abandoned_jobs', v_abandoned
    );
END
$$;
COMMENT ON FUNCTION nikita.cleanup(timestamptz) IS
'The cleanup job as of p_now: expired signup sessions; delivered/cancelled events past '
'event_retention, failed past failed_event_retention; job rows past job_retention; nikita-* '
'cron.job_run_details past cron_run_retention; abandoned running job rows -> failed. Deletes '
'in batches of cleanup_batch_size. Returns the counts.';

REVOKE EXECUTE ON FUNCTION nikita.cleanup(timestamptz) FROM PUBLIC;

-- The cleanup job's step (job_catalog.step): one step, done at once.
CREATE OR REPLACE FUNCTION nikita._job_cleanup_step(p_now timestamptz, p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    p_now := nikita._checked_now(p_now);
    RETURN pg_catalog.jsonb_build_object('done', true, 'result', nikita.cleanup(p_now));
END
$$;
COMMENT ON FUNCTION nikita._job_cleanup_step(timestamptz, jsonb) IS
'Internal: the cleanup job''s only step: cleanup as of p_now, as the '
'owner (p_state unused).';
REVOKE EXECUTE ON FUNCTION nikita._job_cleanup_step(timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_cleanup_step(timestamptz, jsonb) TO nikita_jobs;
