-- Decay, exactly (DESIGN.md): grace per chapter, rates, fractional hours, the local daily cap
-- in three time zones, catch-up, idempotence, eligibility, the game-over path, bad input.
-- The run's instant is pinned (p_now); rows are backdated relative to it.
BEGIN;
SELECT plan(61);
SET LOCAL timezone = 'UTC';

-- A player numbered n: chapter, idle time before 2026-11-28 12:00Z, time zone, score, status.
CREATE FUNCTION pg_temp.player(
    p_n integer, p_chapter integer, p_idle interval, p_tz text DEFAULT 'UTC',
    p_score numeric DEFAULT 50, p_status text DEFAULT 'active',
    p_onboarding text DEFAULT 'completed', p_telegram boolean DEFAULT true
) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, game_status,
                              onboarding_status, timezone, last_interaction_at, created_at)
    VALUES (('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid,
            CASE WHEN p_telegram THEN 1000 + p_n END, p_chapter, p_score, p_status,
            p_onboarding, p_tz, timestamptz '2026-11-28 12:00Z' - p_idle, '2026-01-01Z')
    RETURNING id
$$;
CREATE FUNCTION pg_temp.id(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
CREATE FUNCTION pg_temp.score(p_n integer) RETURNS numeric LANGUAGE sql AS $$
    SELECT relationship_score FROM nikita.users WHERE id = pg_temp.id(p_n)
$$;

-- ---------------------------------------------------------------------------------------------
-- Grace, rates, fractional hours
-- ---------------------------------------------------------------------------------------------
-- 11..15: idle exactly the chapter's grace (nothing accrued yet); 21..25: grace + 1 hour.
SELECT pg_temp.player(10 + r.chapter, r.chapter, r.grace) FROM nikita.decay_rules AS r;
SELECT pg_temp.player(20 + r.chapter, r.chapter, r.grace + interval '1 hour')
FROM nikita.decay_rules AS r;
SELECT pg_temp.player(31, 1, interval '8 hours 1 minute');   -- 0.0133 points
SELECT pg_temp.player(32, 5, interval '72 hours 1 minute');  -- 0.0033 points: under a cent
SELECT pg_temp.player(33, 2, interval '18 hours 30 minutes'); -- 2.5 h at 0.6

SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z'),
    '{"decayed": 7, "game_overs": 0, "points": 3.81, "due": 8, "batches": 1, "skipped": 0,
      "skipped_rows": []}'::jsonb,
    'the run reports decayed players, points, players with accrual (due) and batches'
);
SELECT results_eq(
    $$SELECT relationship_score, decayed_through FROM nikita.users
      WHERE id BETWEEN pg_temp.id(11) AND pg_temp.id(15) ORDER BY id$$,
    $$VALUES (50.00::numeric, NULL::timestamptz), (50.00, NULL), (50.00, NULL), (50.00, NULL),
             (50.00, NULL)$$,
    'every chapter: idle exactly its grace, nothing decays (just before the boundary)'
);
SELECT results_eq(
    $$SELECT relationship_score FROM nikita.users
      WHERE id BETWEEN pg_temp.id(21) AND pg_temp.id(25) ORDER BY id$$,
    $$VALUES (49.20::numeric), (49.40), (49.60), (49.70), (49.80)$$,
    'every chapter: one hour past grace decays by its points_per_hour (0.8 .. 0.2)'
);
SELECT is(pg_temp.score(31), 49.99, 'one minute past grace decays by that minute (0.01)');
SELECT results_eq(
    $$SELECT relationship_score, decayed_through FROM nikita.users WHERE id = pg_temp.id(32)$$,
    $$VALUES (50.00::numeric, NULL::timestamptz)$$,
    'an accrual under one cent leaves the player untouched (the time is not lost)'
);
SELECT is(pg_temp.score(33), 48.50, 'fractional hours: 2.5 h at 0.6 = 1.50');
SELECT results_eq(
    $$SELECT count(*)::int, count(DISTINCT user_id)::int, bool_and(recorded_at = '2026-11-28 12:00Z')
      FROM nikita.score_history WHERE event_type = 'decay'$$,
    $$VALUES (7, 7, true)$$,
    'exactly one decay history row per decayed player, recorded at p_now'
);
SELECT results_eq(
    $$SELECT score, delta, chapter::int, (event_details ->> 'hours')::numeric,
             (event_details ->> 'from')::timestamptz, (event_details ->> 'to')::timestamptz
      FROM nikita.score_history WHERE user_id = pg_temp.id(21)$$,
    $$VALUES (49.20::numeric, -0.80::numeric, 1, 1.0::numeric, timestamptz '2026-11-28 11:00Z',
              timestamptz '2026-11-28 12:00Z')$$,
    'the history row carries score, delta, chapter and hours/from/to'
);
SELECT results_eq(
    $$SELECT decayed_through, count(*)::int FROM nikita.users WHERE decayed_through IS NOT NULL
      GROUP BY 1 ORDER BY 1$$,
    $$VALUES (timestamptz '2026-11-28 11:59:45Z', 1), ('2026-11-28 12:00Z', 6)$$,
    'the watermark is p_now, or short of it by the sub-cent rest (0.0033 at 0.8/h = 15 s)'
);

SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z') ->> 'decayed', '0',
    'a second run at the same instant decays nobody'
);
SELECT results_eq(
    $$SELECT count(*)::int, sum(relationship_score) FROM nikita.users
      JOIN nikita.score_history h ON h.user_id = users.id$$,
    $$VALUES (7, 346.19)$$,
    '... and writes no history row and changes no score'
);

-- 59 more minutes: player 31's watermark kept its 0.0033 rest, so 1 h in all = 0.80 ... and
-- player 32's 1 h of rate 0.2 arrives whole although its first minute was never applied.
SELECT nikita.apply_decay('2026-11-28 12:59Z');
SELECT is(pg_temp.score(31), 49.20, 'the sub-cent rest is decayed by the next run (0.80 in all)');
SELECT is(pg_temp.score(32), 49.80, 'time left unapplied under a cent decays later, whole');

-- ---------------------------------------------------------------------------------------------
-- The daily cap, per local day, in three time zones
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
-- Chapter 1 (0.8/h, cap 12), accruing for 30 h up to 2026-11-28 12:00Z.
SELECT pg_temp.player(41, 1, interval '38 hours', 'UTC');
SELECT pg_temp.player(42, 1, interval '38 hours', 'Asia/Tokyo');
SELECT pg_temp.player(43, 1, interval '38 hours', 'America/Los_Angeles');
SELECT nikita.apply_decay('2026-11-28 12:00Z');
-- UTC: 18 h (14.4 -> 12) + 12 h (9.6). Tokyo: 9 h (7.2) + 21 h (16.8 -> 12).
-- Los Angeles: 2 h (1.6) + 24 h (19.2 -> 12) + 4 h (3.2).
SELECT results_eq(
    $$SELECT relationship_score FROM nikita.users ORDER BY id$$,
    $$VALUES (28.40::numeric), (30.80), (33.20)$$,
    'the cap applies per local calendar day: UTC, Asia/Tokyo, America/Los_Angeles'
);
SELECT results_eq(
    $$SELECT event_details ->> 'last_day', (event_details ->> 'last_day_total')::numeric
      FROM nikita.score_history ORDER BY user_id$$,
    $$VALUES ('2026-11-28', 9.6), ('2026-11-28', 12), ('2026-11-28', 3.2)$$,
    'the history row records what the last local day has taken so far'
);

-- ---------------------------------------------------------------------------------------------
-- The cap across runs of one day, and an interaction in the middle of the day
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
-- Both accrue from 2026-11-28 00:00Z; 52 talks at 10:00 (8.0 taken), decays again from 18:00.
SELECT pg_temp.player(51, 1, interval '20 hours');
SELECT pg_temp.player(52, 1, interval '20 hours');
DO $$
BEGIN
    FOR h IN 1..24 LOOP
        IF h = 11 THEN
            UPDATE nikita.users SET last_interaction_at = '2026-11-28 10:00Z'
            WHERE id = pg_temp.id(52);
        END IF;
        PERFORM nikita.apply_decay(timestamptz '2026-11-28 00:00Z' + h * interval '1 hour');
    END LOOP;
END
$$;
SELECT results_eq(
    $$SELECT count(*)::int, sum(delta), max((event_details ->> 'runs')::int)
      FROM nikita.score_history WHERE user_id = pg_temp.id(51)$$,
    $$VALUES (1, -12.00::numeric, 15)$$,
    'hourly runs inside one local day: 15 runs of 0.80 in the day''s one row, then capped'
);
SELECT is(pg_temp.score(51), 38.00, 'a whole day of hourly runs takes exactly the cap');
SELECT is(
    pg_temp.score(52), 38.00,
    'an interaction does not reset the day''s cap: 8.0 before, 4.0 (of 4.8 accrued) after'
);
SELECT nikita.apply_decay('2026-11-29 03:00Z');
SELECT is(pg_temp.score(51), 35.60, 'the next local day accrues again (3 h = 2.40)');

-- ---------------------------------------------------------------------------------------------
-- Catch-up after an outage equals the hourly runs it replaces
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
-- Chapter 3 (24 h grace, 0.4/h, cap 8), Tokyo, accruing from 2026-11-24 12:00Z (21:00 JST).
SELECT pg_temp.player(61, 3, interval '5 days', 'Asia/Tokyo', p_onboarding => 'in_progress');
SELECT pg_temp.player(62, 3, interval '5 days', 'Asia/Tokyo');
-- 62 is decayed every 50 minutes (sub-cent rests at every run); 61 is not eligible meanwhile.
DO $$
BEGIN
    FOR i IN 1..115 LOOP
        PERFORM nikita.apply_decay(timestamptz '2026-11-24 12:00Z' + i * interval '50 minutes');
    END LOOP;
    PERFORM nikita.apply_decay('2026-11-28 12:00Z');
END
$$;
SELECT is(pg_temp.score(61), 50.00, 'a player still onboarding is not decayed');
UPDATE nikita.users SET onboarding_status = 'skipped' WHERE id = pg_temp.id(61);
SELECT nikita.apply_decay('2026-11-28 12:00Z');
-- JST days: 24th 3 h (1.2), 25th..27th 8 each (capped), 28th 21 h (8.4 -> 8): 33.2.
SELECT is(pg_temp.score(61), 16.80, 'one run after four missed days: capped per local day');
SELECT is(pg_temp.score(62), 16.80, '... the same score as 116 runs 50 minutes apart');
SELECT is(
    (SELECT count(*)::int FROM nikita.score_history WHERE user_id = pg_temp.id(61)), 1,
    'the catch-up run writes one history row'
);

-- A 25-hour day among the whole days (America/New_York, 2026-11-01), with a cap of 4.9 at
-- 0.2/h: 10-31 takes 4.8 (24 h), 11-01 takes 4.9 (5.0 over 25 h, capped), 11-02 takes 4.8.
DELETE FROM nikita.users;
UPDATE nikita.decay_rules SET daily_cap = 4.9 WHERE chapter = 5;
INSERT INTO nikita.users (id, telegram_id, chapter, onboarding_status, timezone,
    last_interaction_at)
VALUES (pg_temp.id(63), 1063, 5, 'completed', 'America/New_York', '2026-10-28 04:00Z');
SELECT nikita.apply_decay('2026-11-03 05:00Z');
SELECT is(pg_temp.score(63), 35.50,
    'whole days across a clock change are capped one by one (23/24/25-hour days)');
UPDATE nikita.decay_rules SET daily_cap = 4 WHERE chapter = 5;

-- ---------------------------------------------------------------------------------------------
-- Who is eligible
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
SELECT pg_temp.player(81, 1, interval '30 hours', p_status => 'boss_fight');
SELECT pg_temp.player(82, 1, interval '30 hours', p_status => 'game_over');
SELECT pg_temp.player(83, 1, interval '30 hours', p_status => 'won');
SELECT pg_temp.player(84, 1, interval '30 hours', p_onboarding => 'pending');
SELECT pg_temp.player(85, 1, interval '30 hours', p_onboarding => 'in_progress');
SELECT pg_temp.player(86, 1, interval '30 hours', p_onboarding => 'skipped');
INSERT INTO nikita.users (id, telegram_id, onboarding_status, created_at)
VALUES (pg_temp.id(87), 1087, 'completed', '2026-11-28 02:00Z');  -- never interacted
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT results_eq(
    $$SELECT relationship_score, decayed_through FROM nikita.users
      WHERE id BETWEEN pg_temp.id(81) AND pg_temp.id(85) ORDER BY id$$,
    $$VALUES (50.00::numeric, NULL::timestamptz), (50.00, NULL), (50.00, NULL), (50.00, NULL),
             (50.00, NULL)$$,
    'boss_fight, game_over, won, onboarding pending / in progress: untouched'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.score_history WHERE user_id <> pg_temp.id(86)
        AND user_id <> pg_temp.id(87)),
    0, '... and no history row for them'
);
SELECT is(pg_temp.score(86), 32.40, 'onboarding skipped is eligible (8.0 + 9.6)');
SELECT is(pg_temp.score(87), 48.40,
    'no last interaction: accrual starts at created_at + grace (2 h = 1.60)');

-- ---------------------------------------------------------------------------------------------
-- Game over
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
UPDATE nikita.settings SET value = '"Custom goodbye"' WHERE key = 'game_over_text';
SELECT pg_temp.player(71, 1, interval '10 hours', p_score => 1.00);  -- 1.60 accrues
SELECT pg_temp.player(72, 1, interval '1 hour');
SELECT pg_temp.player(73, 1, interval '10 hours', p_score => 0.50, p_telegram => false);
SELECT nikita.schedule_event(pg_temp.id(71), 'telegram', 'message_delivery', '{"text": "a"}',
    '2026-11-28 13:00Z');
SELECT nikita.schedule_event(pg_temp.id(71), 'telegram', 'follow_up', '{"text": "b"}',
    '2026-11-29 13:00Z');
SELECT nikita.schedule_event(pg_temp.id(72), 'telegram', 'message_delivery', '{"text": "c"}',
    '2026-11-28 13:00Z');

SELECT is(nikita.apply_decay('2026-11-28 12:00Z') ->> 'game_overs', '2', 'two games end');
SELECT results_eq(
    $$SELECT game_status, relationship_score FROM nikita.users WHERE id = pg_temp.id(71)$$,
    $$VALUES ('game_over', 0.00::numeric)$$,
    'score reaching 0: game_status game_over, score floored at 0'
);
SELECT results_eq(
    $$SELECT event_type, score, delta FROM nikita.score_history
      WHERE user_id = pg_temp.id(71) ORDER BY id$$,
    $$VALUES ('decay', 0.00::numeric, -1.00::numeric), ('decay_game_over', 0.00, 0.00)$$,
    'a decay row (delta floored at the score) and a decay_game_over row'
);
SELECT results_eq(
    $$SELECT event_type, status FROM nikita.scheduled_events
      WHERE user_id = pg_temp.id(71)
      ORDER BY event_type = 'game_over' DESC, event_type DESC$$,
    $$VALUES ('game_over', 'pending'), ('message_delivery', 'cancelled'),
             ('follow_up', 'cancelled')$$,
    'the player''s pending events are cancelled and one game_over event is pending'
);
SELECT results_eq(
    $$SELECT platform, content ->> 'text', (content ->> 'chat_id')::bigint, scheduled_at
      FROM nikita.scheduled_events WHERE event_type = 'game_over'$$,
    -- p_now, or now() once p_now is beyond max_lateness (schedule_event, 0009).
    $$VALUES ('telegram', 'Custom goodbye', 1071::bigint, CASE
        WHEN timestamptz '2026-11-28 12:00Z' < now() - interval '24 hours' THEN now()
        ELSE timestamptz '2026-11-28 12:00Z' END)$$,
    'the game_over Telegram message uses the game_over_text setting, to the player''s chat'
);
SELECT results_eq(
    $$SELECT u.game_status, count(e.id)::int FROM nikita.users u
      LEFT JOIN nikita.scheduled_events e ON e.user_id = u.id
      WHERE u.id IN (pg_temp.id(72), pg_temp.id(73)) GROUP BY u.id, u.game_status ORDER BY u.id$$,
    $$VALUES ('active', 1), ('game_over', 0)$$,
    'other players keep their events; a player without Telegram ends without a message'
);

-- A failing game_over message undoes that player's decay, not the others': the player is
-- skipped and reported (tested further in "A row that cannot be decayed").
DELETE FROM nikita.users;
SELECT pg_temp.player(74, 1, interval '10 hours', p_score => 1.00);
SELECT pg_temp.player(75, 1, interval '10 hours');
CREATE FUNCTION nikita.test_refuse_game_over() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused by test' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER test_refuse BEFORE INSERT ON nikita.scheduled_events
FOR EACH ROW WHEN (NEW.event_type = 'game_over') EXECUTE FUNCTION nikita.test_refuse_game_over();
SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z') - 'points',
    jsonb_build_object('decayed', 1, 'game_overs', 0, 'due', 1, 'batches', 1, 'skipped', 1,
        'skipped_rows', jsonb_build_array(jsonb_build_object(
            'user_id', pg_temp.id(74), 'sqlstate', 'P0001', 'error', 'refused by test'))),
    'a failure while queueing one game_over message skips that player and reports it'
);
SELECT results_eq(
    $$SELECT game_status, relationship_score, decayed_through,
             (SELECT count(*)::int FROM nikita.score_history h WHERE h.user_id = u.id)
      FROM nikita.users u ORDER BY id$$,
    $$VALUES ('active', 1.00::numeric, NULL::timestamptz, 0),
             ('active', 48.40, timestamptz '2026-11-28 12:00Z', 1)$$,
    '... nothing of it remains for that player (status, score, watermark, history); '
    || 'the other is decayed'
);
DROP TRIGGER test_refuse ON nikita.scheduled_events;

-- updated_at: decay stamps its rows itself (the touch trigger is skipped); other updates are
-- still stamped by the trigger.
DELETE FROM nikita.users;
SELECT pg_temp.player(97, 1, interval '9 hours');
SELECT pg_temp.player(98, 1, interval '1 hour');
UPDATE nikita.users SET updated_at = '2026-01-01Z';
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT results_eq(
    $$SELECT updated_at FROM nikita.users ORDER BY id$$,
    $$VALUES (now()), (timestamptz '2026-01-01Z')$$,
    'a decayed player''s updated_at is the time of the update; an untouched one keeps its own'
);
UPDATE nikita.users SET chapter = 2 WHERE id = pg_temp.id(98);
SELECT is((SELECT updated_at FROM nikita.users WHERE id = pg_temp.id(98)), now(),
    'any other update of a player is still stamped by the touch trigger');
UPDATE nikita.users SET chapter = 3, updated_at = '2026-02-02Z' WHERE id = pg_temp.id(98);
SELECT is((SELECT updated_at FROM nikita.users WHERE id = pg_temp.id(98)),
    timestamptz '2026-02-02Z', 'an update that sets updated_at itself skips the trigger');

-- ---------------------------------------------------------------------------------------------
-- Far times: a 1900 sentinel, -infinity, 294276 AD, p_now in 9999 (int4 overflowed before)
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
SELECT pg_temp.player(200, 1, interval '0');
SELECT pg_temp.player(201, 5, interval '0', 'Europe/Berlin');
SELECT pg_temp.player(202, 3, interval '0', 'America/New_York');
SELECT pg_temp.player(203, 1, interval '10 hours');
SELECT pg_temp.player(204, 1, interval '0');
UPDATE nikita.users SET last_interaction_at = '1900-01-01Z' WHERE id = pg_temp.id(200);
UPDATE nikita.users SET last_interaction_at = '1900-01-01Z', decayed_through = '1901-01-01Z'
WHERE id = pg_temp.id(201);
UPDATE nikita.users SET last_interaction_at = '-infinity' WHERE id = pg_temp.id(202);
UPDATE nikita.users SET last_interaction_at = '294276-12-31 23:00Z' WHERE id = pg_temp.id(204);
SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z') - 'points',
    '{"decayed": 4, "game_overs": 3, "due": 4, "batches": 1, "skipped": 0,
      "skipped_rows": []}'::jsonb,
    'a 1900 sentinel (also with a 1901 watermark, in a zone with clock changes), -infinity and '
    || 'a far-future last interaction: nothing fails, nobody is skipped'
);
SELECT results_eq(
    $$SELECT game_status, relationship_score FROM nikita.users ORDER BY id$$,
    $$VALUES ('game_over', 0.00::numeric), ('game_over', 0.00), ('game_over', 0.00),
             ('active', 48.40), ('active', 50.00)$$,
    'the sentinels decay to 0 (game over); the others decay as usual or not at all'
);
SELECT results_eq(
    $$SELECT h.event_type, h.delta, h.recorded_at FROM nikita.score_history h
      WHERE h.user_id = pg_temp.id(200) ORDER BY h.event_type$$,
    $$VALUES ('decay', -50.00::numeric, timestamptz '2026-11-28 12:00Z'),
             ('decay_game_over', 0.00, '2026-11-28 12:00Z')$$,
    'the sentinel''s history: one decay row of the whole score and the game over'
);
-- The horizon: a player idle just longer than it and one far longer end the same way.
DELETE FROM nikita.users;
SELECT pg_temp.player(205, 5, interval '30 days', p_score => 100);
SELECT pg_temp.player(206, 5, interval '30000 days', p_score => 100);
SELECT pg_temp.player(207, 5, interval '22 days', p_score => 100);
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT results_eq(
    $$SELECT game_status, relationship_score FROM nikita.users ORDER BY id$$,
    $$VALUES ('game_over', 0.00::numeric), ('game_over', 0.00), ('active', 23.20)$$,
    'ch5 at 100: idle 30 days or 82 years, both 0; 22 days (two half days, 18 of 4) 23.20'
);
DELETE FROM nikita.users;
SELECT pg_temp.player(208, 1, interval '10 hours');
SELECT pg_temp.player(209, 2, interval '1 hour', 'Pacific/Chatham');
SELECT is(
    nikita.apply_decay('9999-01-01Z') - 'points',
    '{"decayed": 2, "game_overs": 2, "due": 2, "batches": 1, "skipped": 0,
      "skipped_rows": []}'::jsonb,
    'apply_decay(''9999-01-01''): every player decays to 0'
);

-- ---------------------------------------------------------------------------------------------
-- A row that cannot be decayed (the app's trigger on score_history refuses it) is skipped and
-- reported; every other player decays; one ops alert per run; a second run is idempotent.
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
DELETE FROM nikita.scheduled_events;
UPDATE nikita.settings SET value = '-100777' WHERE key = 'alert_chat_id';
SELECT count(pg_temp.player(300 + i, 1, interval '10 hours')) FROM generate_series(1, 40) AS i;
CREATE TEMP TABLE bad_users AS
SELECT pg_temp.id(300 + i) AS id FROM generate_series(1, 40) AS i WHERE i % 10 = 5;
CREATE FUNCTION nikita.test_refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_temp.bad_users AS b WHERE b.id = NEW.user_id) THEN
        RAISE EXCEPTION 'history refused for %', NEW.user_id USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER test_refuse_history BEFORE INSERT OR UPDATE ON nikita.score_history
FOR EACH ROW EXECUTE FUNCTION nikita.test_refuse_history();
CREATE TEMP TABLE run1 AS SELECT nikita.apply_decay('2026-11-28 12:00Z') AS r;
SELECT is(
    (SELECT r - 'skipped_rows' FROM run1),
    '{"decayed": 36, "game_overs": 0, "points": 57.60, "due": 36, "batches": 1,
      "skipped": 4}'::jsonb,
    'four bad rows of forty: skipped, the 36 others decayed'
);
SELECT results_eq(
    $$SELECT (x ->> 'user_id')::uuid, x ->> 'sqlstate', x ->> 'error'
      FROM run1, jsonb_array_elements(r -> 'skipped_rows') AS x ORDER BY 1$$,
    $$SELECT id, 'P0001', 'history refused for ' || id FROM bad_users ORDER BY 1$$,
    'each skipped row is reported with its user, SQLSTATE and error'
);
SELECT results_eq(
    $$SELECT u.id IN (SELECT id FROM bad_users), u.relationship_score, u.decayed_through,
             count(h.user_id)::int
      FROM nikita.users u LEFT JOIN nikita.score_history h ON h.user_id = u.id
      GROUP BY 1, 2, 3 ORDER BY 1$$,
    $$VALUES (false, 48.40::numeric, timestamptz '2026-11-28 12:00Z', 36),
             (true, 50.00, NULL, 0)$$,
    'every other player decayed once; the skipped ones are untouched'
);
SELECT results_eq(
    $$SELECT event_type, content ->> 'chat_id', scheduled_at,
             content ->> 'text' ~ ('skipped .* first ' || pg_temp.id(305)::text)
      FROM nikita.scheduled_events$$,
    -- Due at p_now, or now() once p_now is beyond max_lateness (schedule_event, sql/0009).
    $$VALUES ('ops_alert', '-100777', greatest(timestamptz '2026-11-28 12:00Z',
              CASE WHEN timestamptz '2026-11-28 12:00Z'
                        < now() - nikita._setting_interval('max_lateness') THEN now() END), true)$$,
    'one ops alert for the run, to the alert chat, naming the first skipped player'
);
CREATE TEMP TABLE run2 AS SELECT nikita.apply_decay('2026-11-28 12:00Z') AS r;
SELECT results_eq(
    $$SELECT (r ->> 'decayed')::int, (r ->> 'skipped')::int,
             (SELECT sum(relationship_score) FROM nikita.users),
             (SELECT count(*)::int FROM nikita.score_history),
             (SELECT count(*)::int FROM nikita.scheduled_events)
      FROM run2$$,
    $$VALUES (0, 4, 36 * 48.40 + 4 * 50.00, 36, 1)$$,
    'a second run at the same instant: nobody decayed again, the same rows skipped, no second alert'
);
-- 26 bad rows over several batches: at most 20 listed, and still one alert for the run.
UPDATE nikita.settings SET value = '10' WHERE key = 'decay_batch_size';
INSERT INTO bad_users SELECT pg_temp.id(300 + i) FROM generate_series(1, 40) AS i
WHERE i % 10 <> 5 AND i <= 25;
ANALYZE nikita.users;
CREATE TEMP TABLE run3 AS SELECT nikita.apply_decay('2026-11-28 13:00Z') AS r;
SELECT results_eq(
    $$SELECT (r ->> 'decayed')::int, (r ->> 'skipped')::int,
             jsonb_array_length(r -> 'skipped_rows'), (r ->> 'batches')::int > 1,
             (SELECT count(*)::int FROM nikita.scheduled_events WHERE event_type = 'ops_alert')
      FROM run3$$,
    $$VALUES (14, 26, 20, true, 2)$$,
    '26 skipped over several batches: 20 listed, one more alert (one per run)'
);
DROP TRIGGER test_refuse_history ON nikita.score_history;
UPDATE nikita.settings SET value = '20000' WHERE key = 'decay_batch_size';
SELECT is(
    nikita.apply_decay('2026-11-28 14:00Z') ->> 'skipped', '0', 'the cause removed, none skipped'
);
SELECT results_eq(
    $$SELECT DISTINCT relationship_score FROM nikita.users$$,
    $$VALUES (46.80::numeric)$$,
    'the skipped players caught up exactly: every player at 4 hours of decay'
);
-- An error that is not a row's fault (53: resources) fails the run: skipping would only repeat it.
CREATE FUNCTION nikita.test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'disk on fire' USING ERRCODE = '53100';
END
$$;
CREATE TRIGGER test_disk_full BEFORE INSERT OR UPDATE ON nikita.score_history FOR EACH ROW
WHEN (NEW.user_id = '00000000-0000-0000-0000-000000000301')
EXECUTE FUNCTION nikita.test_disk_full();
SELECT throws_ok($$SELECT nikita.apply_decay('2026-11-28 15:00Z')$$, '53100', 'disk on fire',
    'an error of class 53 (disk full) fails the run, no row is skipped for it');
DROP TRIGGER test_disk_full ON nikita.score_history;
UPDATE nikita.settings SET value = NULL WHERE key = 'alert_chat_id';

-- ---------------------------------------------------------------------------------------------
-- Batches, bad input
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
SELECT count(pg_temp.player(1000 + i, 1, interval '9 hours')) FROM generate_series(1, 200) AS i;
ANALYZE nikita.users;
UPDATE nikita.settings SET value = '60' WHERE key = 'decay_batch_size';
SELECT cmp_ok(nikita._decay_batch_pages(), '<',
    (pg_relation_size('nikita.users') / current_setting('block_size')::int)::int,
    'decay_batch_size (60 players) spans fewer pages than the table');
CREATE TEMP TABLE batched AS SELECT nikita.apply_decay('2026-11-28 12:00Z') AS r;
SELECT results_eq(
    $$SELECT (r ->> 'decayed')::int, (r ->> 'batches')::int > 1 FROM batched$$,
    $$VALUES (200, true)$$,
    'batches of pages cover the whole table: 200 players decayed over several batches'
);
SELECT results_eq(
    $$SELECT count(*)::int, count(DISTINCT user_id)::int FROM nikita.score_history$$,
    $$VALUES (200, 200)$$,
    '... each exactly once'
);
SELECT is(
    nikita.apply_decay_batch('2026-11-28 13:00Z', 100000, 10) ->> 'due', '0',
    'a page range past the end of the table decays nobody'
);

SELECT throws_ok($$SELECT nikita.apply_decay(NULL)$$, '22004', 'p_now must not be null',
    'p_now NULL is refused');
SELECT throws_ok($$SELECT nikita.apply_decay('infinity')$$, '22023',
    'p_now must be a finite time, got infinity', 'an infinite p_now is refused');
-- An out-of-range setting cannot be stored any more (CHECK settings_value_valid, 0009).
SELECT throws_ok($$UPDATE nikita.settings SET value = '0' WHERE key = 'decay_batch_size'$$,
    '23514', 'setting "decay_batch_size" must be an integer from 1 to 1000000, got 0',
    'a batch size below 1 is refused');
SELECT results_eq(
    $$SELECT sum(relationship_score), max(decayed_through),
             (SELECT count(*)::int FROM nikita.score_history) FROM nikita.users$$,
    $$VALUES (9840.00::numeric, timestamptz '2026-11-28 12:00Z', 200)$$,
    'refused runs change nothing'
);

SELECT * FROM finish();
ROLLBACK;
