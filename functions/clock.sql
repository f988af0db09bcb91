-- Who may move the clock (DESIGN.md "Jobs": only the owner may pass a time other than the
-- present). Every function of schema nikita that takes p_now starts with
--     p_now := nikita._checked_now(p_now);
-- tests/sql/security_clock.sql finds those functions in pg_proc and fails for one without it.

CREATE OR REPLACE FUNCTION nikita._checked_now(p_now timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller text;
    v_owner oid;
    v_jobs oid;
BEGIN
    IF p_now IS NULL THEN
        RAISE EXCEPTION 'p_now must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_now = pg_catalog.now() THEN
        RETURN p_now;
    END IF;
    -- The caller is the role of the session's SET ROLE, else the session user. Not
    -- current_user: inside a SECURITY DEFINER function (sweep_events) that is the owner.
    v_caller := coalesce(
        nullif(pg_catalog.current_setting('role'), 'none'), session_user::text
    );
    SELECT n.nspowner INTO v_owner FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'nikita';
    v_jobs := pg_catalog.to_regrole('nikita_jobs');
    IF (
        pg_catalog.pg_has_role(v_caller::name, v_owner, 'MEMBER')
        OR (v_jobs IS NOT NULL AND pg_catalog.pg_has_role(v_caller::name, v_jobs, 'MEMBER'))
    ) AND (
        -- The role the function runs as must be trusted too: the owner when the function is
        -- SECURITY DEFINER; a SECURITY DEFINER function of another role otherwise, so that a
        -- trusted session tricked into calling one cannot move the clock through it.
        pg_catalog.pg_has_role(v_owner, 'MEMBER')
        OR (v_jobs IS NOT NULL AND pg_catalog.pg_has_role(v_jobs, 'MEMBER'))
    ) THEN
        RETURN p_now;
    END IF;
    RAISE EXCEPTION 'only the owner of schema nikita may pass a time other than now() (p_now)'
        USING ERRCODE = '42501',
            DETAIL = pg_catalog.format('caller %s passed %s', v_caller, p_now),
            HINT = 'Call the function without p_now (it defaults to now()), or as the schema '
            || 'owner or a member of nikita_jobs.';
END
$$;
COMMENT ON FUNCTION nikita._checked_now(timestamptz) IS
'p_now if the caller may use it, else 42501. NULL: 22004. now(): always allowed. Any other '
'time only for a caller that is a member of the owner of schema nikita or of role nikita_jobs '
'(when it exists: the role pg_cron runs the jobs as; run_job pins one p_now across the batches '
'it commits, so its p_now is not now() after the first COMMIT). '
'The caller is coalesce(nullif(current_setting(''role''), ''none''), session_user), and '
'current_user must be trusted as well. Checked on PostgreSQL 15: SET ROLE sets the role setting '
'(session_user unchanged); SET SESSION AUTHORIZATION changes session_user and resets role to '
'none; SECURITY DEFINER functions, nested too, change current_user but neither session_user '
'nor role, and may not SET ROLE or set_config(''role'') (refused inside them); a session can '
'only set role to a role its session user is a member of; a login role that is a member of '
'nikita_worker has session_user = itself, role none. So the caller is the identity the '
'session authenticated as, or a role it may become, whatever definer functions lie between.';

REVOKE EXECUTE ON FUNCTION nikita._checked_now(timestamptz) FROM PUBLIC;
-- Not granted to nikita_jobs either: it reaches the job functions only through the jobs'
-- SECURITY DEFINER steps (functions/job_catalog.sql), which call them as the owner.
