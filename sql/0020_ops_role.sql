-- The operators' role (docs/queue.md "Operator API"): what an operator does when a player says
-- "Nikita never answered": find events, show one with its error history, retry a failed one,
-- cancel pending ones, list job runs and run a job now (functions/admin_*.sql).
--
-- nikita_ops:
--   NOLOGIN      a group role: grant it to the operators' own login roles
--                (GRANT nikita_ops TO alice), so that each action is done by a named person
--                (retry_event records session_user in the event's history).
--   Rights: USAGE on schema nikita and EXECUTE on the admin functions (granted by their files),
--   no table privilege, no right to claim or settle events (claim/complete/fail/defer are the
--   shim's, nikita_worker's), message text only when asked for (p_with_text).
-- Created once per cluster (roles are cluster-wide); an existing role is left as it is.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nikita_ops') THEN
        CREATE ROLE nikita_ops NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
        NOBYPASSRLS;
    END IF;
END
$$;

-- The comment needs CREATEROLE: an installer without it (the role was pre-created,
-- docs/install.md "Installing without CREATEROLE") leaves it to the administrator.
DO $$
BEGIN
    IF (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles AS r
        WHERE r.rolname = current_user) THEN
        COMMENT ON ROLE nikita_ops IS
        'nikita-tasks: operators (find, show, retry, cancel events; list and run jobs) through '
        'the admin functions only. Grant it to named login roles.';
    END IF;
END
$$;

DO $$
BEGIN
    EXECUTE pg_catalog.format(
        'GRANT CONNECT ON DATABASE %I TO nikita_ops', pg_catalog.current_database()
    );
END
$$;
GRANT USAGE ON SCHEMA nikita TO nikita_ops;
