-- The jobs: nikita.job_catalog is the one list of them (DESIGN.md "Jobs").
--
-- Adding a job: one row here and one file holding its step function, no migration. Who reads
-- the catalog:
--   run_job (functions/run_job.sql)   validates the name, takes the job's advisory lock
--                                     (nikita._job_lock_class(), lock_key), runs `step`
--   job_executions                    CHECK job_executions_job_name_valid (sql/0012)
--   cron/schedule.sql                 schedules cron_name at schedule
--   job_health (functions/job_health.sql) reports on every job (overdue: 2 run_interval)
-- A view (not a function) so that job_health, read by roles that may execute nothing in schema
-- nikita, needs no function grant.
--
-- A job's step: `nikita._job_<name>_step(p_now timestamptz, p_state jsonb) RETURNS jsonb`,
-- SECURITY DEFINER (run_job runs as the jobs role, which holds no table privilege), granted to
-- nikita_jobs only, starting with p_now := nikita._checked_now(p_now). It does one bounded piece
-- of work as of p_now and returns the job's whole state: {"done": boolean, "result": the job's
-- JSON result so far, ...the job's own fields}. The first call gets p_state NULL. run_job calls
-- it until done, committing after each call that is not the last; a one-step job returns done
-- at once. On a failure run_job records the last state's result (the committed steps' counts).

CREATE OR REPLACE VIEW nikita.job_catalog AS
SELECT
    j.job_name,
    j.cron_name,
    j.schedule,
    j.run_interval,
    j.lock_key,
    j.step
FROM (
    VALUES
    ('decay', 'nikita-decay', '0 * * * *', interval '1 hour', 1,
        'nikita._job_decay_step(timestamptz,jsonb)'),
    ('sweep', 'nikita-sweep', '* * * * *', interval '1 minute', 2,
        'nikita._job_sweep_step(timestamptz,jsonb)'),
    ('summary', 'nikita-summary', '5 * * * *', interval '1 hour', 3,
        'nikita._job_summary_step(timestamptz,jsonb)'),
    ('cleanup', 'nikita-cleanup', '30 * * * *', interval '1 hour', 4,
        'nikita._job_cleanup_step(timestamptz,jsonb)'),
    ('conversations', 'nikita-conversations', '* * * * *', interval '1 minute', 5,
        'nikita._job_conversations_step(timestamptz,jsonb)'),
    ('boss_timeout', 'nikita-boss-timeout', '*/5 * * * *', interval '5 minutes', 6,
        'nikita._job_boss_timeout_step(timestamptz,jsonb)')
) AS j (job_name, cron_name, schedule, run_interval, lock_key, step);
COMMENT ON VIEW nikita.job_catalog IS
'The package''s jobs: name, pg_cron job name, schedule (UTC), expected interval, the second '
'key of the job''s advisory lock (the first is nikita._job_lock_class()), and the step function '
'run_job calls until the job is done (see functions/job_catalog.sql).';
REVOKE ALL ON nikita.job_catalog FROM PUBLIC;

-- One transaction, every step: the non-committing form of run_job's loop, shared by the jobs'
-- own "whole run" functions (apply_decay, expire_boss_fights).
CREATE OR REPLACE FUNCTION nikita._job_run_steps(p_name text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_step text := nikita._job_step_function(p_name);
    v_state jsonb;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    IF v_step IS NULL THEN
        RAISE EXCEPTION 'unknown job "%"', p_name USING ERRCODE = '22023';
    END IF;
    LOOP
        EXECUTE pg_catalog.format('SELECT nikita.%I($1, $2)', v_step)
        INTO v_state USING p_now, v_state;
        EXIT WHEN (v_state ->> 'done')::boolean;
    END LOOP;
    RETURN v_state -> 'result';
END
$$;
COMMENT ON FUNCTION nikita._job_run_steps(text, timestamptz) IS
'Internal: run job p_name''s step (job_catalog.step) as of p_now until done, in the caller''s '
'transaction; the last state''s result. Unknown job: 22023.';
REVOKE EXECUTE ON FUNCTION nikita._job_run_steps(text, timestamptz) FROM PUBLIC;
