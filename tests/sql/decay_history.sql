-- Decay history, one row per player per local day (sql/0022, docs/jobs.md "Decay history"):
-- several runs of one day update the day's row (cumulative delta, latest score, latest run); a
-- new local day gets a new row; the player's time zone decides the day; rows from before the
-- migration (one per run, decay_day NULL) are still read for the day's cap; the app's rows and
-- the game-over row are never merged; the constraints.
BEGIN;
SELECT plan(15);
SET LOCAL timezone = 'UTC';

-- Chapter 1 (grace 8 h, 0.8/h, cap 12), score 50, last talk at p_last.
CREATE FUNCTION pg_temp.player(p_n integer, p_last timestamptz, p_tz text DEFAULT 'UTC')
RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
                              timezone, last_interaction_at, created_at)
    VALUES (('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid, 1000 + p_n, 1, 50,
            'completed', p_tz, p_last, '2026-01-01Z')
    RETURNING id
$$;
CREATE FUNCTION pg_temp.id(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid
$$;

-- 1 (UTC) and 2 (Asia/Tokyo, UTC+9) idle from 2026-11-28 12:00Z; runs at 13, 14, 15 and 16Z.
-- Tokyo's day changes at 15:00Z.
SELECT pg_temp.player(1, '2026-11-28 04:00Z');
SELECT pg_temp.player(2, '2026-11-28 04:00Z', 'Asia/Tokyo');
SELECT nikita.apply_decay('2026-11-28 13:00Z');
SELECT nikita.apply_decay('2026-11-28 14:00Z');
-- The app writes between runs, as the game does per message (its own row, score unchanged).
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
VALUES (pg_temp.id(1), 48.40, 0, 1, 'conversation', '2026-11-28 14:30Z');
SELECT nikita.apply_decay('2026-11-28 15:00Z');
SELECT nikita.apply_decay('2026-11-28 16:00Z');

SELECT results_eq(
    $$SELECT count(*)::int, min(delta), min(score), min(recorded_at), min(decay_day)
      FROM nikita.score_history WHERE user_id = pg_temp.id(1) AND event_type = 'decay'$$,
    $$VALUES (1, -3.20::numeric, 46.80::numeric, timestamptz '2026-11-28 16:00Z',
              date '2026-11-28')$$,
    'four runs in one local day: one row, the day''s cumulative delta, the latest score and run'
);
SELECT results_eq(
    $$SELECT (event_details ->> 'runs')::int, (event_details ->> 'hours')::numeric,
             (event_details ->> 'from')::timestamptz, (event_details ->> 'to')::timestamptz,
             event_details ->> 'last_day', (event_details ->> 'last_day_total')::numeric
      FROM nikita.score_history WHERE user_id = pg_temp.id(1) AND event_type = 'decay'$$,
    $$VALUES (4, 4.0::numeric, timestamptz '2026-11-28 12:00Z', timestamptz '2026-11-28 16:00Z',
              '2026-11-28', 3.2::numeric)$$,
    '... its details: runs, the day''s hours, the first run''s from, the last run''s to and total'
);
SELECT is(
    (SELECT relationship_score FROM nikita.users WHERE id = pg_temp.id(1)), 46.80,
    'the score is what one row per run gave (4 h at 0.8)'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.score_history
     WHERE user_id = pg_temp.id(1) AND event_type = 'conversation'),
    1,
    'the app''s row between the runs stays its own row'
);
SELECT results_eq(
    $$SELECT decay_day, delta, score, recorded_at, (event_details ->> 'runs')::int
      FROM nikita.score_history WHERE user_id = pg_temp.id(2) ORDER BY decay_day$$,
    $$VALUES (date '2026-11-28', -1.60::numeric, 48.40::numeric, timestamptz '2026-11-28 14:00Z', 2),
             (date '2026-11-29', -1.60, 46.80, timestamptz '2026-11-28 16:00Z', 2)$$,
    'the player''s time zone decides the day: Tokyo''s runs at 13, 14Z and 15, 16Z are two days'
);

-- A new local day in UTC: the runs at 23:00Z and 01:00Z the next day write two rows.
DELETE FROM nikita.users;
SELECT pg_temp.player(3, '2026-11-28 14:00Z');
SELECT nikita.apply_decay('2026-11-28 23:00Z');
SELECT nikita.apply_decay('2026-11-29 00:30Z');
SELECT nikita.apply_decay('2026-11-29 01:00Z');
SELECT results_eq(
    $$SELECT decay_day, delta, score, (event_details ->> 'runs')::int
      FROM nikita.score_history WHERE user_id = pg_temp.id(3) ORDER BY decay_day$$,
    $$VALUES (date '2026-11-28', -0.80::numeric, 49.20::numeric, 1),
             (date '2026-11-29', -1.60, 47.60, 2)$$,
    'a new local day starts a new row; a run across midnight goes to the day it ends in'
);

-- The day of the upgrade: a decay row from before sql/0022 (one per run, decay_day NULL) is
-- still read. Player 4 talked at 10:00Z, after runs that took 10.0 of the day; idle from
-- 18:00Z. At 23:00Z 5 h accrued (4.0) but only the day's last 2.0 may go.
DELETE FROM nikita.users;
SELECT pg_temp.player(4, '2026-11-28 10:00Z');
UPDATE nikita.users SET relationship_score = 40, decayed_through = '2026-11-28 10:00Z'
WHERE id = pg_temp.id(4);
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, event_details,
                                  recorded_at)
VALUES (pg_temp.id(4), 40, -0.80, 1, 'decay',
        '{"last_day": "2026-11-28", "last_day_total": 10.0}', '2026-11-28 10:00Z');
SELECT nikita.apply_decay('2026-11-28 23:00Z');
SELECT nikita.apply_decay('2026-11-28 23:30Z');
SELECT is(
    (SELECT relationship_score FROM nikita.users WHERE id = pg_temp.id(4)), 38.00,
    'a per-run row from before the migration still caps the day (10.0 taken, 2.0 left)'
);
SELECT results_eq(
    $$SELECT decay_day, delta, (event_details ->> 'last_day_total')::numeric
      FROM nikita.score_history WHERE user_id = pg_temp.id(4) ORDER BY recorded_at$$,
    $$VALUES (NULL::date, -0.80::numeric, 10.0::numeric), (date '2026-11-28', -2.00, 12)$$,
    '... the old row is left as it was, the day''s new row carries the day''s total'
);

-- Game over: the day's decay row and the decay_game_over row, never merged.
DELETE FROM nikita.users;
SELECT pg_temp.player(5, '2026-11-28 04:00Z');
UPDATE nikita.users SET relationship_score = 1.50 WHERE id = pg_temp.id(5);
SELECT nikita.apply_decay('2026-11-28 13:00Z');
SELECT nikita.apply_decay('2026-11-28 15:00Z');
SELECT results_eq(
    $$SELECT event_type, decay_day, delta, score FROM nikita.score_history
      WHERE user_id = pg_temp.id(5) ORDER BY id$$,
    $$VALUES ('decay', date '2026-11-28', -1.50::numeric, 0::numeric),
             ('decay_game_over', NULL, 0, 0)$$,
    'the run reaching 0 updates the day''s row and adds its own decay_game_over row'
);

-- Concurrent runs of the same instant still decay once (the day's row is updated once).
SELECT is(
    nikita.apply_decay('2026-11-28 15:00Z') ->> 'decayed', '0',
    'a second run at the same instant decays nobody and leaves the row alone'
);

-- Constraints.
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, decay_day)
      VALUES (pg_temp.id(5), 0, 0, 1, 'conversation', '2026-11-28')$$,
    '23514', NULL, 'only decay rows have a decay_day'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, decay_day)
      VALUES (pg_temp.id(5), 0, -1, 1, 'decay', '2026-11-28')$$,
    '23505', NULL, 'one decay row per player and day'
);
SELECT lives_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, decay_day)
      VALUES (pg_temp.id(5), 0, -110, 1, 'decay', '2026-11-27')$$,
    'a day''s decay row may sum past -100 (a catch-up, then the app raised the score, more decay)'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type)
      VALUES (pg_temp.id(5), 0, -110, 1, 'decay')$$,
    '23514', NULL, 'any other row keeps -100 .. 100'
);
SELECT is(
    (SELECT count(*)::int FROM pg_catalog.pg_indexes
     WHERE indexname = 'score_history_decay_day_key'
       AND indexdef LIKE '%UNIQUE%(user_id, decay_day)%WHERE (decay_day IS NOT NULL)%'),
    1,
    'the day''s row is found by a partial unique index (user_id, decay_day)'
);

SELECT * FROM finish();
ROLLBACK;
