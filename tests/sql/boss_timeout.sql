-- The boss-fight timeout (functions/boss_timeout.sql, docs/jobs.md "Boss-fight timeout"): each
-- branch, the boundaries, a second run at the same instant, odd starts, the settings, the
-- users constraints, one bad row skipped, the p_now guard. The run's instant T is pinned.
BEGIN;
SELECT plan(43);
SET LOCAL timezone = 'UTC';

-- A player numbered n in a boss fight that started p_started, with p_attempts failed attempts.
CREATE FUNCTION pg_temp.id(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
CREATE FUNCTION pg_temp.fighter(
    p_n integer, p_attempts integer, p_started timestamptz, p_telegram boolean DEFAULT true,
    p_status text DEFAULT 'boss_fight'
) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, game_status,
                              onboarding_status, boss_attempts, boss_fight_started_at,
                              last_interaction_at, created_at)
    VALUES (pg_temp.id(p_n), CASE WHEN p_telegram THEN 2000 + p_n END, 2, 61.5, p_status,
            'completed', p_attempts, p_started, timestamptz '2026-11-27 10:00Z', '2026-01-01Z')
    RETURNING id
$$;
CREATE FUNCTION pg_temp.state(p_n integer) RETURNS TABLE (s text, a int, started timestamptz)
LANGUAGE sql AS $$
    SELECT game_status, boss_attempts::int, boss_fight_started_at FROM nikita.users
    WHERE id = pg_temp.id(p_n)
$$;

SELECT pg_temp.fighter(1, 0, timestamptz '2026-11-28 12:00Z' - interval '24 hours');
SELECT pg_temp.fighter(2, 0, '2026-11-27 12:00:01Z');         -- one second short of 24 h
SELECT pg_temp.fighter(3, 2, timestamptz '2026-11-27 11:00Z');
SELECT pg_temp.fighter(4, 1, '1900-01-01Z');
SELECT pg_temp.fighter(5, 0, '2026-12-08 12:00Z');            -- a start in the future
SELECT pg_temp.fighter(6, 0, '2026-11-27 06:00Z', false);     -- no telegram_id
SELECT pg_temp.fighter(7, 0, NULL, true, 'active');           -- not fighting
-- Player 3 has a pending message, which the game over cancels.
SELECT nikita.schedule_event(pg_temp.id(3), 'telegram', 'follow_up', '{"text": "later"}',
    now() + interval '1 day');

-- ------------------------------------------------------------------------------ the run
SELECT is(
    nikita.expire_boss_fights('2026-11-28 12:00Z'),
    '{"timed_out": 4, "returned": 3, "game_overs": 1, "messages": 3, "batches": 1,
      "skipped": 0, "skipped_rows": []}'::jsonb,
    'the run reports timed-out fights, returns to active, game overs and messages'
);
SELECT results_eq($$SELECT * FROM pg_temp.state(1)$$, $$VALUES ('active', 1, NULL::timestamptz)$$,
    'exactly at the timeout: a failed attempt, active again, the start cleared');
SELECT results_eq($$SELECT * FROM pg_temp.state(2)$$,
    $$VALUES ('boss_fight', 0, timestamptz '2026-11-27 12:00:01Z')$$,
    'one second before the timeout: untouched');
SELECT results_eq($$SELECT * FROM pg_temp.state(3)$$,
    $$VALUES ('game_over', 3, NULL::timestamptz)$$,
    'the third failed attempt (boss_max_attempts 3): game over');
SELECT results_eq($$SELECT * FROM pg_temp.state(4)$$, $$VALUES ('active', 2, NULL::timestamptz)$$,
    'a start in 1900 times out like any other');
SELECT results_eq($$SELECT * FROM pg_temp.state(5)$$,
    $$VALUES ('boss_fight', 0, timestamptz '2026-12-08 12:00Z')$$,
    'a start in the future is left alone');
SELECT results_eq($$SELECT * FROM pg_temp.state(7)$$, $$VALUES ('active', 0, NULL::timestamptz)$$,
    'a player not in a fight is untouched');
SELECT results_eq(
    $$SELECT chapter::int, relationship_score, decayed_through, last_interaction_at
      FROM nikita.users WHERE id = pg_temp.id(1)$$,
    $$VALUES (2, 61.50::numeric, timestamptz '2026-11-28 12:00Z',
              timestamptz '2026-11-27 10:00Z')$$,
    'back to active in the same chapter, score kept, decay resumes from the timeout (the '
    'watermark), the last interaction kept'
);
SELECT results_eq(
    $$SELECT user_id, score, delta, chapter::int, event_details ->> 'new_status',
             (event_details ->> 'boss_attempts')::int, recorded_at
      FROM nikita.score_history WHERE event_type = 'boss_timeout' ORDER BY user_id$$,
    $$VALUES (pg_temp.id(1), 61.50::numeric, 0.00::numeric, 2, 'active', 1,
              timestamptz '2026-11-28 12:00Z'),
             (pg_temp.id(3), 61.50, 0.00, 2, 'game_over', 3, timestamptz '2026-11-28 12:00Z'),
             (pg_temp.id(4), 61.50, 0.00, 2, 'active', 2, timestamptz '2026-11-28 12:00Z'),
             (pg_temp.id(6), 61.50, 0.00, 2, 'active', 1, timestamptz '2026-11-28 12:00Z')$$,
    'one boss_timeout history row per timeout: score, delta 0, chapter, attempts, new status'
);
SELECT is((SELECT count(*)::int FROM nikita.score_history WHERE event_type <> 'boss_timeout'), 0,
    'no other history row (no decay_game_over: the game logs the timeout only)');
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT results_eq(
    $$SELECT relationship_score, (SELECT count(*)::int FROM nikita.score_history
                                  WHERE user_id = pg_temp.id(1) AND event_type = 'decay')
      FROM nikita.users WHERE id = pg_temp.id(1)$$,
    $$VALUES (61.50::numeric, 0)$$,
    'decay right after the timeout takes nothing for the fight''s hours (idle 26 h since the '
    'last interaction)'
);
SELECT results_eq(
    $$SELECT status, event_type FROM nikita.scheduled_events WHERE user_id = pg_temp.id(3)
      ORDER BY event_type$$,
    $$VALUES ('cancelled', 'follow_up'), ('pending', 'game_over')$$,
    'game over: the pending event cancelled, then exactly one game_over message'
);
SELECT results_eq(
    $$SELECT content ->> 'text', dedupe_key FROM nikita.scheduled_events
      WHERE user_id = pg_temp.id(3) AND event_type = 'game_over'$$,
    $$SELECT (SELECT value #>> '{}' FROM nikita.settings WHERE key = 'game_over_text'),
             'game_over:' || pg_temp.id(3)$$,
    '... decay''s message: game_over_text, key game_over:<user id>'
);
SELECT results_eq(
    $$SELECT user_id, platform, event_type, content ->> 'text', scheduled_at, dedupe_key
      FROM nikita.scheduled_events WHERE event_type = 'follow_up' AND status = 'pending'
      ORDER BY user_id$$,
    $$SELECT pg_temp.id(n), 'telegram', 'follow_up',
             (SELECT value #>> '{}' FROM nikita.settings WHERE key = 'boss_timeout_text'),
             now(), 'boss_timeout:' || pg_temp.id(n) || ':' || extract(EPOCH FROM s)::text
      FROM (VALUES (1, timestamptz '2026-11-27 12:00Z'), (4, timestamptz '1900-01-01Z')) AS v (n, s)
      ORDER BY 1$$,
    'back to active: boss_timeout_text, one per fight (key boss_timeout:<user>:<start>); '
    'none without telegram_id (player 6)'
);

-- ------------------------------------------------------------------------------ idempotence
CREATE TEMP TABLE snap AS
SELECT (SELECT count(*) FROM nikita.score_history) AS h,
       (SELECT count(*) FROM nikita.scheduled_events) AS e,
       (SELECT string_agg(u::text, ',' ORDER BY id) FROM nikita.users AS u) AS users;
SELECT is(
    nikita.expire_boss_fights('2026-11-28 12:00Z'),
    '{"timed_out": 0, "returned": 0, "game_overs": 0, "messages": 0, "batches": 1,
      "skipped": 0, "skipped_rows": []}'::jsonb,
    'a second run at the same instant finds nothing'
);
SELECT is(
    (SELECT (count(*), (SELECT count(*) FROM nikita.scheduled_events),
             (SELECT string_agg(u::text, ',' ORDER BY id) FROM nikita.users AS u))::text
     FROM nikita.score_history),
    (SELECT (h, e, users)::text FROM snap),
    '... and changes nothing (users, history, events)'
);
SELECT is(nikita.expire_boss_fights('2026-11-28 12:00:01Z') -> 'returned', '1'::jsonb,
    'one second later the fight of player 2 times out');
SELECT results_eq($$SELECT * FROM pg_temp.state(2)$$, $$VALUES ('active', 1, NULL::timestamptz)$$,
    '... a failed attempt, active again');

-- ------------------------------------------------------------------------------ settings
UPDATE nikita.settings SET value = '""' WHERE key = 'boss_timeout_text';
SELECT pg_temp.fighter(8, 0, '2026-11-27 00:00Z');
SELECT is(nikita.expire_boss_fights('2026-11-28 12:00Z') -> 'messages', '0'::jsonb,
    'an empty boss_timeout_text: the fight ends, no message');
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events WHERE user_id = pg_temp.id(8)), 0,
    '... none queued');
UPDATE nikita.settings SET value = '1' WHERE key = 'boss_max_attempts';
UPDATE nikita.settings SET value = '"30 minutes"' WHERE key = 'boss_timeout';
SELECT pg_temp.fighter(9, 0, '2026-11-28 11:30Z');
SELECT is(nikita.expire_boss_fights('2026-11-28 12:00Z') -> 'game_overs', '1'::jsonb,
    'boss_timeout and boss_max_attempts are read: 30 minutes, 1 attempt: game over');

CREATE FUNCTION pg_temp.refused(p_key text, p_value jsonb, p_message text)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(
        format('UPDATE nikita.settings SET value = %L WHERE key = %L', p_value, p_key),
        '23514', p_message, format('%s = %s is refused', p_key, coalesce(p_value::text, 'NULL'))
    )
$$;
SELECT pg_temp.refused('boss_timeout', '"59 seconds"',
    'setting "boss_timeout" must be an interval from 1 minute to 30 days, got "59 seconds"');
SELECT pg_temp.refused('boss_timeout', '"31 days"',
    'setting "boss_timeout" must be an interval from 1 minute to 30 days, got "31 days"');
SELECT pg_temp.refused('boss_timeout', NULL,
    'setting "boss_timeout" must be set: an interval from 1 minute to 30 days, got null');
SELECT pg_temp.refused('boss_max_attempts', '0',
    'setting "boss_max_attempts" must be an integer from 1 to 10, got 0');
SELECT pg_temp.refused('boss_max_attempts', '11',
    'setting "boss_max_attempts" must be an integer from 1 to 10, got 11');
SELECT pg_temp.refused('boss_timeout_text', to_jsonb(U&'  \200B '::text),
    'setting "boss_timeout_text" must be empty or null (no message), or a text of 1 to 4096 '
    || 'characters, not blank, got "  ' || U&'\200B' || ' "');
SELECT throws_ok(
    $$UPDATE nikita.settings SET value_type = 'text', value = '"3"'
      WHERE key = 'boss_max_attempts'$$,
    '23514', 'setting "boss_max_attempts" must have value_type integer, got text',
    'boss_max_attempts must stay an integer');
SELECT lives_ok($$UPDATE nikita.settings SET value = NULL WHERE key = 'boss_timeout_text'$$,
    'boss_timeout_text may be null (no message)');

-- ------------------------------------------------------------------------------ users
SELECT throws_ok(
    $$UPDATE nikita.users SET boss_attempts = 11 WHERE id = pg_temp.id(7)$$, '23514', NULL,
    'boss_attempts above 10 is refused');
SELECT throws_ok(
    $$UPDATE nikita.users SET boss_attempts = -1 WHERE id = pg_temp.id(7)$$, '23514', NULL,
    'boss_attempts below 0 is refused');
UPDATE nikita.users SET game_status = 'boss_fight' WHERE id = pg_temp.id(7);
SELECT is((SELECT boss_fight_started_at FROM nikita.users WHERE id = pg_temp.id(7)), now(),
    'entering a fight without a start stamps now() (users_boss_fight_stamp)');
UPDATE nikita.users SET game_status = 'active' WHERE id = pg_temp.id(7);
SELECT is((SELECT boss_fight_started_at FROM nikita.users WHERE id = pg_temp.id(7)), NULL,
    'leaving it clears the start');
ALTER TABLE nikita.users DISABLE TRIGGER users_boss_fight_stamp;
SELECT throws_ok(
    $$UPDATE nikita.users SET game_status = 'boss_fight' WHERE id = pg_temp.id(7)$$, '23514',
    'new row for relation "users" violates check constraint "users_boss_fight_started"',
    'without the trigger, the CHECK holds: a start exactly while in a fight');
ALTER TABLE nikita.users ENABLE TRIGGER users_boss_fight_stamp;

-- ------------------------------------------------------------------------------ one bad row
UPDATE nikita.settings SET value = '3' WHERE key = 'boss_max_attempts';
SELECT pg_temp.fighter(10, 0, '2026-11-26 00:00Z');
SELECT pg_temp.fighter(11, 0, '2026-11-26 00:00Z');
CREATE FUNCTION pg_temp.refuse_10() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id = pg_temp.id(10) THEN
        RAISE EXCEPTION 'the app refuses this row' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER refuse_10 BEFORE INSERT ON nikita.score_history
FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_10();
UPDATE nikita.settings SET value = '-100123' WHERE key = 'alert_chat_id';
CREATE TEMP TABLE bad AS SELECT nikita.expire_boss_fights('2026-11-28 12:00Z') AS r;
SELECT is(
    (SELECT r - 'batches' - 'alert_event_id' FROM bad),
    jsonb_build_object('timed_out', 1, 'returned', 1, 'game_overs', 0, 'messages', 0,
        'skipped', 1, 'skipped_rows', jsonb_build_array(jsonb_build_object(
            'user_id', pg_temp.id(10), 'sqlstate', 'P0001', 'error', 'the app refuses this row'))),
    'a player who cannot be ended is skipped and reported; the others are ended'
);
SELECT results_eq(
    $$SELECT (SELECT s FROM pg_temp.state(10)), (SELECT s FROM pg_temp.state(11))$$,
    $$VALUES ('boss_fight', 'active')$$,
    '... the skipped one untouched, in its fight, for the next run'
);
SELECT results_eq(
    $$SELECT e.id, e.content ->> 'chat_id', e.dedupe_key,
             e.content ->> 'text' LIKE '%skipped player(s)%' || pg_temp.id(10) || '%P0001%'
      FROM nikita.scheduled_events AS e WHERE e.event_type = 'ops_alert'$$,
    $$SELECT (r ->> 'alert_event_id')::uuid, '-100123',
             'ops_alert:boss_timeout_skipped:2026-11-28T12:00:00.000000', true FROM bad$$,
    '... and one ops_alert names it (alert_chat_id set), its id in the result'
);
DROP TRIGGER refuse_10 ON nikita.score_history;
SELECT is(nikita.expire_boss_fights('2026-11-28 12:00Z') -> 'returned', '1'::jsonb,
    'the next run ends the skipped player''s fight once the cause is gone');

-- ------------------------------------------------------------------------------ odd starts
SELECT pg_temp.fighter(12, 0, '-infinity');
SELECT pg_temp.fighter(13, 0, 'infinity');
SELECT pg_temp.fighter(14, 0, '294276-12-31 23:59:59Z');
SELECT is(nikita.expire_boss_fights('2026-11-28 12:00Z') -> 'returned', '1'::jsonb,
    'starts at -infinity, infinity, 294276 AD: the run works');
SELECT results_eq(
    $$SELECT (SELECT s FROM pg_temp.state(12)), (SELECT s FROM pg_temp.state(13)),
             (SELECT s FROM pg_temp.state(14))$$,
    $$VALUES ('active', 'boss_fight', 'boss_fight')$$,
    '... -infinity times out, the far future waits'
);

-- ------------------------------------------------------------------------------ p_now
SELECT throws_ok($$SELECT nikita.expire_boss_fights(NULL)$$, '22004', 'p_now must not be null',
    'p_now NULL is refused');
SELECT throws_ok($$SELECT nikita.expire_boss_fights('infinity')$$, '22023', NULL,
    'p_now infinite is refused');
CREATE ROLE nikita_test_boss NOLOGIN;
GRANT USAGE ON SCHEMA nikita TO nikita_test_boss;
GRANT EXECUTE ON FUNCTION nikita.expire_boss_fights(timestamptz), nikita._checked_now(timestamptz)
TO nikita_test_boss;
SET LOCAL ROLE nikita_test_boss;
SELECT throws_ok($$SELECT nikita.expire_boss_fights(now() + interval '1 day')$$, '42501',
    'only the owner of schema nikita may pass a time other than now() (p_now)',
    'a role other than the owner cannot move the clock');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
