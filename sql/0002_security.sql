-- Roles, grants and row level security (docs/install.md, "Roles" and "Security model").
--
-- Group roles (NOLOGIN; grant them to the login roles that need them):
--   nikita_worker    the shim: only the queue functions it calls (granted by functions/)
--   nikita_app       the game app: game tables, schedule/cancel functions
--   nikita_readonly  dashboards: the health views
-- Nothing in schema nikita is granted to PUBLIC.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['nikita_worker', 'nikita_app', 'nikita_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

REVOKE ALL ON SCHEMA nikita FROM PUBLIC;
GRANT USAGE ON SCHEMA nikita TO nikita_worker, nikita_app, nikita_readonly;

-- Functions are executable by PUBLIC by default; not here. Every function file grants its own.
ALTER DEFAULT PRIVILEGES IN SCHEMA nikita REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA nikita FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA nikita FROM PUBLIC;

-- The app owns the game's data; it writes events only through schedule_event().
GRANT SELECT, INSERT, UPDATE, DELETE
ON nikita.users, nikita.conversations, nikita.score_history, nikita.daily_summaries,
nikita.signup_sessions
TO nikita_app;
GRANT SELECT ON nikita.decay_rules, nikita.reply_delays TO nikita_app;

-- The player behind the current request: Supabase's auth.uid() when that exists, else the
-- `sub` claim PostgREST puts in request.jwt.claims (or the older request.jwt.claim.sub).
CREATE FUNCTION nikita.current_user_id()
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sub text;
    v_id uuid;
    -- Dynamic so the function also compiles where schema auth does not exist.
    v_auth_uid constant text := 'SELECT auth.uid()';
BEGIN
    IF pg_catalog.to_regprocedure('auth.uid()') IS NOT NULL THEN
        EXECUTE v_auth_uid INTO v_id;
        RETURN v_id;
    END IF;
    v_sub := coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
        nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), '')
    );
    IF v_sub IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        RETURN v_sub::uuid;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'JWT sub claim is not a uuid: %', v_sub
            USING ERRCODE = '22P02', HINT = 'nikita players are identified by their users.id';
    END;
END
$$;
COMMENT ON FUNCTION nikita.current_user_id()
IS 'The player (users.id) of the current request: auth.uid() on Supabase, else the JWT sub claim.';
REVOKE EXECUTE ON FUNCTION nikita.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nikita.current_user_id() TO nikita_app;

-- Row level security. Player-facing tables: a player reads only their own rows. The app role
-- works for every player (the bot's server side); no policy applies to all roles with true.
ALTER TABLE nikita.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE nikita.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE nikita.score_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE nikita.daily_summaries ENABLE ROW LEVEL SECURITY;
ALTER TABLE nikita.scheduled_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE nikita.signup_sessions ENABLE ROW LEVEL SECURITY;

CREATE POLICY users_owner_select ON nikita.users
FOR SELECT USING (id = nikita.current_user_id());
CREATE POLICY conversations_owner_select ON nikita.conversations
FOR SELECT USING (user_id = nikita.current_user_id());
CREATE POLICY score_history_owner_select ON nikita.score_history
FOR SELECT USING (user_id = nikita.current_user_id());
CREATE POLICY daily_summaries_owner_select ON nikita.daily_summaries
FOR SELECT USING (user_id = nikita.current_user_id());
CREATE POLICY scheduled_events_owner_select ON nikita.scheduled_events
FOR SELECT USING (user_id = nikita.current_user_id());

CREATE POLICY users_app_all ON nikita.users
FOR ALL TO nikita_app USING (true) WITH CHECK (true);
CREATE POLICY conversations_app_all ON nikita.conversations
FOR ALL TO nikita_app USING (true) WITH CHECK (true);
CREATE POLICY score_history_app_all ON nikita.score_history
FOR ALL TO nikita_app USING (true) WITH CHECK (true);
CREATE POLICY daily_summaries_app_all ON nikita.daily_summaries
FOR ALL TO nikita_app USING (true) WITH CHECK (true);
CREATE POLICY signup_sessions_app_all ON nikita.signup_sessions
FOR ALL TO nikita_app USING (true) WITH CHECK (true);
