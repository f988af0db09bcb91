-- The package's advisory lock classes: the first key of every two-key advisory lock it takes,
-- named once here so that no two uses collide. IMMUTABLE with no argument: the planner folds a
-- call to its constant when it plans the statement (claim_events pays nothing per row).

CREATE OR REPLACE FUNCTION nikita._job_lock_class()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1313559617  -- 'NKTA'
$$;
COMMENT ON FUNCTION nikita._job_lock_class()
IS 'Internal: first key of every job advisory lock, (_job_lock_class(), job_catalog.lock_key), '
'session level, held by run_job. job_health writes it as the literal 1313559617 (its readers '
'may execute no function).';
REVOKE EXECUTE ON FUNCTION nikita._job_lock_class() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita._job_lock_class() TO nikita_jobs;

CREATE OR REPLACE FUNCTION nikita._user_lock_class()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1852535157  -- 'nkqu'
$$;
COMMENT ON FUNCTION nikita._user_lock_class()
IS 'Internal: first key of the per-user transaction advisory lock claim_events takes, '
'(_user_lock_class(), hashtext(user_id)), so that one user has one event in flight.';
REVOKE EXECUTE ON FUNCTION nikita._user_lock_class() FROM PUBLIC;
