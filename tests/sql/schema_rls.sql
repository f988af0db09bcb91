-- Row level security by behaviour, on every player-facing table (DESIGN.md "Security"; issue 9
-- item 9): as a player role granted every privilege on the tables (so that only the policies
-- stand between), with nikita.current_user_id() resolving to player A, A sees exactly A's rows,
-- cannot read, update or delete B's rows, cannot insert a row for B; with no claim, no rows.
-- Every player-facing table is the catalog's: the tables of nikita with row level security on.
-- A policy weakened to `... OR true` or `user_id IS NOT NULL` fails the read assertions; a
-- permissive write policy fails the write assertions.
BEGIN;
SELECT plan(50);

SELECT is(
    (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
      WHERE c.relnamespace = 'nikita'::regnamespace AND c.relkind = 'r' AND c.relrowsecurity),
    ARRAY['conversations', 'daily_summaries', 'scheduled_events', 'score_history',
          'signup_sessions', 'users'],
    'the player-facing tables (row level security on) are the six tested here'
);

-- Players A and B (and C, never inserted by the owner), rows of each in every table.
INSERT INTO nikita.users (id, telegram_id) VALUES
('00000000-0000-0000-0000-0000000005aa', 601),
('00000000-0000-0000-0000-0000000005bb', 602);
INSERT INTO nikita.conversations (user_id, platform) VALUES
('00000000-0000-0000-0000-0000000005aa', 'telegram'),
('00000000-0000-0000-0000-0000000005bb', 'voice'),
('00000000-0000-0000-0000-0000000005bb', 'telegram');
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type) VALUES
('00000000-0000-0000-0000-0000000005aa', 49, -1, 1, 'decay'),
('00000000-0000-0000-0000-0000000005bb', 48, -2, 1, 'decay'),
('00000000-0000-0000-0000-0000000005bb', 47, -1, 1, 'decay');
INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end) VALUES
('00000000-0000-0000-0000-0000000005aa', '2026-11-27', 50, 49),
('00000000-0000-0000-0000-0000000005aa', '2026-11-28', 49, 49),
('00000000-0000-0000-0000-0000000005bb', '2026-11-27', 50, 48);
SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000005aa', 'telegram',
    'message_delivery', '{"text": "to A"}', now() + interval '1 hour');
SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000005bb', 'telegram',
    'message_delivery', '{"text": "to B"}', now() + interval '1 hour');
SELECT nikita.schedule_event('00000000-0000-0000-0000-0000000005bb', 'telegram',
    'follow_up', '{"text": "to B again"}', now() + interval '2 hours');
SELECT nikita.schedule_event(NULL, 'telegram', 'ops_alert', '{"chat_id": -100, "text": "ops"}',
    now() + interval '1 hour');
INSERT INTO nikita.signup_sessions (telegram_id, chat_id) VALUES (601, 601), (603, 603);

-- The tables, their player column, a write that would change a row, and an insert for B.
CREATE TEMP TABLE rls_tables (tbl text PRIMARY KEY, uid text, upd text, ins text);
INSERT INTO rls_tables VALUES
('users', 'id', 'relationship_score = 0',
 $$INSERT INTO nikita.users (id, telegram_id) VALUES ('00000000-0000-0000-0000-0000000005cc', 604)$$),
('conversations', 'user_id', $$summary = 'written by A'$$,
 $$INSERT INTO nikita.conversations (user_id, platform)
   VALUES ('00000000-0000-0000-0000-0000000005bb', 'telegram')$$),
('score_history', 'user_id', 'delta = 99',
 $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type)
   VALUES ('00000000-0000-0000-0000-0000000005bb', 100, 52, 1, 'manual_adjustment')$$),
('daily_summaries', 'user_id', $$summary_text = 'written by A'$$,
 $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end)
   VALUES ('00000000-0000-0000-0000-0000000005bb', '2026-11-29', 1, 1)$$),
('scheduled_events', 'user_id', $$last_error = 'written by A', status = 'cancelled'$$,
 $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content)
   VALUES ('00000000-0000-0000-0000-0000000005bb', 'telegram', 'message_delivery',
           '{"text": "forged", "chat_id": 602}')$$);

-- What each player owns, counted as the owner (RLS does not apply to the table owner).
CREATE TEMP TABLE rls_expected (tbl text, uid uuid, n bigint);
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rls_tables LOOP
        EXECUTE format(
            'INSERT INTO rls_expected SELECT %L, %I, count(*) FROM nikita.%I GROUP BY 2',
            r.tbl, r.uid, r.tbl
        );
    END LOOP;
END
$$;
SELECT is(
    (SELECT array_agg(tbl || ':' || n ORDER BY tbl) FROM rls_expected
      WHERE uid = '00000000-0000-0000-0000-0000000005aa'),
    ARRAY['conversations:1', 'daily_summaries:2', 'scheduled_events:1', 'score_history:1',
          'users:1'],
    'A owns rows in every table (B owns others, and the ops alert no player)'
);

-- Everything, to compare after the player's attempts.
CREATE FUNCTION pg_temp.table_hash(p_tbl text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_h text;
BEGIN
    EXECUTE format('SELECT md5(string_agg(x::text, %L ORDER BY x::text)) FROM nikita.%I AS x',
        ',', p_tbl) INTO v_h;
    RETURN v_h;
END
$$;
CREATE TEMP TABLE rls_snapshot AS
SELECT t.tbl, pg_temp.table_hash(t.tbl) AS h
FROM (SELECT tbl FROM rls_tables UNION ALL SELECT 'signup_sessions') AS t;
SELECT is((SELECT count(*)::int FROM rls_snapshot WHERE h IS NOT NULL), 6,
    'a snapshot of every table, each with rows');

-- The player role: every privilege on the six tables; only the policies limit it.
CREATE ROLE nikita_test_rls_player NOLOGIN;
GRANT USAGE ON SCHEMA nikita TO nikita_test_rls_player;
GRANT EXECUTE ON FUNCTION nikita.current_user_id() TO nikita_test_rls_player;
GRANT SELECT, INSERT, UPDATE, DELETE ON nikita.users, nikita.conversations,
nikita.score_history, nikita.daily_summaries, nikita.scheduled_events, nikita.signup_sessions
TO nikita_test_rls_player;
GRANT SELECT ON rls_tables, rls_expected TO nikita_test_rls_player;

-- Rows a statement changed (0: the policies let it change nothing).
CREATE FUNCTION pg_temp.changed(p_sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_n bigint;
BEGIN
    EXECUTE p_sql;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- For each table, as the current role and claim: what is visible is exactly p_who's rows.
CREATE FUNCTION pg_temp.sees_exactly(p_who uuid, p_label text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rls_tables ORDER BY tbl LOOP
        RETURN NEXT results_eq(
            format('SELECT %I, count(*) FROM nikita.%I GROUP BY 1', r.uid, r.tbl),
            format('SELECT uid, n FROM rls_expected WHERE tbl = %L AND uid = %L', r.tbl, p_who),
            format('%s: %s sees exactly their own rows', r.tbl, p_label)
        );
    END LOOP;
END
$$;

-- A's attempts on B's rows, in every table.
CREATE FUNCTION pg_temp.writes_refused() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_b constant text := '00000000-0000-0000-0000-0000000005bb';
BEGIN
    FOR r IN SELECT * FROM rls_tables ORDER BY tbl LOOP
        RETURN NEXT is(
            pg_temp.changed(format('UPDATE nikita.%I SET %s WHERE %I = %L', r.tbl, r.upd, r.uid,
                v_b)),
            0::bigint, format('%s: A cannot update B''s rows', r.tbl)
        );
        RETURN NEXT is(
            pg_temp.changed(format('DELETE FROM nikita.%I WHERE %I = %L', r.tbl, r.uid, v_b)),
            0::bigint, format('%s: A cannot delete B''s rows', r.tbl)
        );
        RETURN NEXT throws_ok(
            r.ins, '42501',
            format('new row violates row-level security policy for table "%s"', r.tbl),
            format('%s: A cannot insert a row for B (or a player)', r.tbl)
        );
    END LOOP;
END
$$;

SET LOCAL ROLE nikita_test_rls_player;

-- Player A, by the JWT claims PostgREST sets.
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000005aa"}', true);
SELECT * FROM pg_temp.sees_exactly('00000000-0000-0000-0000-0000000005aa', 'A');
SELECT * FROM pg_temp.writes_refused();
SELECT is(
    pg_temp.changed($$UPDATE nikita.users SET relationship_score = 0$$), 0::bigint,
    'users: an UPDATE without WHERE changes no row (not even A''s: players only read)'
);
SELECT is(
    pg_temp.changed($$DELETE FROM nikita.scheduled_events$$), 0::bigint,
    'scheduled_events: a DELETE without WHERE deletes nothing'
);
-- signup_sessions has no player column and no player policy: a player sees and changes none.
SELECT is_empty('SELECT * FROM nikita.signup_sessions', 'signup_sessions: A sees no session');
SELECT is(pg_temp.changed($$UPDATE nikita.signup_sessions SET attempts = 9$$), 0::bigint,
    'signup_sessions: A updates none');
SELECT is(pg_temp.changed($$DELETE FROM nikita.signup_sessions$$), 0::bigint,
    'signup_sessions: A deletes none');
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id) VALUES (605, 605)$$, '42501',
    'new row violates row-level security policy for table "signup_sessions"',
    'signup_sessions: A inserts none'
);

-- Player B, by the older request.jwt.claim.sub setting.
SELECT set_config('request.jwt.claims', '', true);
SELECT set_config('request.jwt.claim.sub', '00000000-0000-0000-0000-0000000005bb', true);
SELECT * FROM pg_temp.sees_exactly('00000000-0000-0000-0000-0000000005bb', 'B');

-- No claim at all: no rows anywhere (this is also what any role without a claim sees, so no
-- policy lets every role through).
SELECT set_config('request.jwt.claim.sub', '', true);
SELECT is(nikita.current_user_id(), NULL, 'no claim: no player');
SELECT is_empty(format('SELECT * FROM nikita.%I', tbl), tbl || ': no claim, no rows')
FROM (SELECT tbl FROM rls_tables UNION ALL SELECT 'signup_sessions') AS t ORDER BY tbl;

-- A claim for a player that does not exist, and a malformed one.
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000005cc"}', true);
SELECT is_empty('SELECT * FROM nikita.score_history', 'an unknown player sees no rows');
SELECT set_config('request.jwt.claims', '{"sub": "not-a-uuid"}', true);
SELECT throws_ok('SELECT * FROM nikita.users', '22P02',
    'JWT sub claim is not a uuid: not-a-uuid', 'a malformed sub claim is a clear error');
SELECT set_config('request.jwt.claims', '', true);
RESET ROLE;

-- As the owner again: nothing the player tried changed anything.
SELECT is(pg_temp.table_hash(s.tbl), s.h, s.tbl || ': every row as it was')
FROM rls_snapshot AS s ORDER BY s.tbl;

-- Migration 0018: every player policy evaluates nikita.current_user_id() once per statement,
-- as a scalar subquery (an InitPlan), not once per row (Supabase's auth_rls_initplan advisor).
SELECT is(
    (SELECT array_agg(policyname::text ORDER BY policyname) FROM pg_policies
      WHERE schemaname = 'nikita' AND qual LIKE '%current_user_id()%'
        AND qual NOT LIKE '%( SELECT nikita.current_user_id() AS current_user_id)%'),
    NULL,
    'no policy calls nikita.current_user_id() per row'
);

SELECT * FROM finish();
ROLLBACK;
