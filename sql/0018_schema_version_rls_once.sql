-- 1. nikita.schema_version: the package version this database was last migrated with. The
--    migrator (scripts/migrate.sh, `nikita-shim migrate`) writes it at the end of every run;
--    the shim refuses to start against another version (docs/install.md, "Upgrading").
-- 2. The player policies evaluate nikita.current_user_id() once per statement, not once per
--    row: a scalar subquery becomes an InitPlan (Supabase's advisor, auth_rls_initplan).

CREATE TABLE nikita.schema_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version text NOT NULL CHECK (version ~ '^[0-9][0-9A-Za-z.+-]*$'),
    migrated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE nikita.schema_version IS
'nikita-tasks: the package version of the last migrate run (one row). Written by the migrator '
'only; the shim compares it with its own version and refuses to start on a mismatch.';

REVOKE ALL ON nikita.schema_version FROM PUBLIC;
GRANT SELECT ON nikita.schema_version TO nikita_worker, nikita_app, nikita_readonly;

ALTER POLICY users_owner_select ON nikita.users
USING (id = (SELECT nikita.current_user_id()));
ALTER POLICY conversations_owner_select ON nikita.conversations
USING (user_id = (SELECT nikita.current_user_id()));
ALTER POLICY score_history_owner_select ON nikita.score_history
USING (user_id = (SELECT nikita.current_user_id()));
ALTER POLICY daily_summaries_owner_select ON nikita.daily_summaries
USING (user_id = (SELECT nikita.current_user_id()));
ALTER POLICY scheduled_events_owner_select ON nikita.scheduled_events
USING (user_id = (SELECT nikita.current_user_id()));
