-- The jobs role (docs/install.md, "Who runs the jobs"): pg_cron runs a job as the role that
-- scheduled it (cron.job.username). Left to itself that is whoever ran cron/schedule.sql,
-- usually a superuser; cron/schedule.sql schedules the package's jobs as this role instead.
--
-- nikita_jobs:
--   LOGIN        pg_cron opens a libpq connection as the job's role (cron.host), or starts a
--                background worker as it; both need a role that may log in, and pg_cron refuses
--                to schedule a job for any other. No password is set: it is reached only the
--                way the cluster lets pg_cron in (e.g. trust or peer on the local socket).
--   no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, no membership in any role.
--   Rights: CONNECT on this database, USAGE on schema nikita, EXECUTE on nikita.run_job and
--   its internals (granted by functions/run_job.sql), no table privilege.
--   search_path pinned for its sessions: a second guard besides run_job's own.
-- Created once per cluster (roles are cluster-wide); an existing role is left as it is.
-- Its comment and search_path need CREATEROLE: an installing role without it (the role was
-- pre-created, docs/install.md "Installing without CREATEROLE") leaves both to the
-- administrator who created it, and says so.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nikita_jobs') THEN
        CREATE ROLE nikita_jobs LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
        NOBYPASSRLS;
    END IF;
    IF NOT (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles AS r
            WHERE r.rolname = current_user) THEN
        RAISE WARNING 'nikita_jobs exists and % has no CREATEROLE: its comment and search_path '
        'are left as the administrator set them (docs/install.md)', current_user;
        RETURN;
    END IF;
    COMMENT ON ROLE nikita_jobs IS
    'nikita-tasks: pg_cron runs the package''s jobs as this role (CALL nikita.run_job). '
    'Never make it a superuser or a member of the schema owner.';
    ALTER ROLE nikita_jobs SET search_path = pg_catalog, pg_temp;
END
$$;

DO $$
BEGIN
    EXECUTE pg_catalog.format(
        'GRANT CONNECT ON DATABASE %I TO nikita_jobs', pg_catalog.current_database()
    );
END
$$;
GRANT USAGE ON SCHEMA nikita TO nikita_jobs;
