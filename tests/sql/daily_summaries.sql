-- Daily summaries: per player and closed local day with activity; time zones; 23- and 25-hour
-- days across daylight-saving changes; idempotence; catch-up; the job's batched steps (cursor,
-- bound per step, sums, an interrupted run); bad input.
BEGIN;
SELECT plan(33);
SET LOCAL timezone = 'UTC';

INSERT INTO nikita.users (id, telegram_id, timezone) VALUES
('00000000-0000-0000-0000-0000000000d1', 1, 'UTC'),
('00000000-0000-0000-0000-0000000000d2', 2, 'Asia/Tokyo'),
('00000000-0000-0000-0000-0000000000d3', 3, 'America/Los_Angeles'),
('00000000-0000-0000-0000-0000000000d4', 4, 'America/New_York'),
('00000000-0000-0000-0000-0000000000d5', 5, 'America/New_York'),
('00000000-0000-0000-0000-0000000000d6', 6, 'UTC');

CREATE FUNCTION pg_temp.u(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-0000000000d' || p_n)::uuid
$$;
CREATE FUNCTION pg_temp.talk(p_n integer, p_at timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO nikita.conversations (user_id, platform, status, started_at, last_message_at,
        ended_at)
    VALUES (pg_temp.u(p_n), 'telegram', 'ended', p_at, p_at, p_at)
$$;
CREATE FUNCTION pg_temp.score(
    p_n integer, p_at timestamptz, p_score numeric, p_delta numeric, p_type text
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
    VALUES (pg_temp.u(p_n), p_score, p_delta, 1, p_type, p_at)
$$;

-- ---------------------------------------------------------------------------------------------
-- Three time zones, as of 2026-11-28 10:00Z
-- ---------------------------------------------------------------------------------------------
-- d1 (UTC), day 2026-11-27: two conversations, +2 then decay -1.6; after the day: +1.
SELECT pg_temp.score(1, '2026-11-26 20:00Z', 50, 0, 'conversation');
SELECT pg_temp.talk(1, '2026-11-27 09:00Z');
SELECT pg_temp.score(1, '2026-11-27 09:30Z', 52, 2, 'conversation');
SELECT pg_temp.score(1, '2026-11-27 18:00Z', 50.40, -1.60, 'decay');
SELECT pg_temp.talk(1, '2026-11-27 23:30Z');
SELECT pg_temp.talk(1, '2026-11-28 00:30Z');
SELECT pg_temp.score(1, '2026-11-28 01:00Z', 51.40, 1, 'conversation');
-- d2 (Tokyo), day 2026-11-27 JST = 11-26 15:00Z .. 11-27 15:00Z: +3 at 23:00 JST, a chapter.
SELECT pg_temp.score(2, '2026-11-27 14:00Z', 50, 3, 'conversation');
SELECT pg_temp.score(2, '2026-11-27 14:30Z', 50, 0, 'chapter_advance');
SELECT pg_temp.score(2, '2026-11-27 16:00Z', 49.20, -0.80, 'decay');  -- 11-28 01:00 JST
-- d3 (Los Angeles): only activity on 11-28 PST (09:00Z = 01:00 PST), a day not yet over.
SELECT pg_temp.talk(3, '2026-11-28 09:00Z');

SELECT is(
    nikita.generate_daily_summaries('2026-11-28 10:00Z', '1 day'),
    '{"summaries": 2, "lookback": "1 day"}'::jsonb,
    'two closed days with activity are summarised'
);
SELECT results_eq(
    $$SELECT user_id, date, score_start, score_end, decay_applied, conversations_count
      FROM nikita.daily_summaries ORDER BY user_id$$,
    $$VALUES (pg_temp.u(1), date '2026-11-27', 50.00::numeric, 50.40::numeric, 1.60::numeric, 2),
             (pg_temp.u(2), date '2026-11-27', 47.00, 50.00, 0.00, 0)$$,
    'score at the local day''s start and end, decay and conversations of that day (UTC, Tokyo)'
);
SELECT is(
    (SELECT summary_text FROM nikita.daily_summaries WHERE user_id = pg_temp.u(1)),
    'Fri 27 Nov 2026 (UTC): 2 conversations. Score 50.00 -> 50.40 (+0.40), decay -1.60.',
    'summary_text states the day, conversations, scores and decay'
);
SELECT is(
    (SELECT summary_text FROM nikita.daily_summaries WHERE user_id = pg_temp.u(2)),
    'Fri 27 Nov 2026 (Asia/Tokyo): no conversations. Score 47.00 -> 50.00 (+3.00). '
    'Events: chapter advanced.',
    '... and the day''s notable events'
);
SELECT is_empty(
    $$SELECT 1 FROM nikita.daily_summaries WHERE user_id = pg_temp.u(3)$$,
    'Los Angeles: the day with activity has not ended yet, no summary'
);

CREATE TEMP TABLE first_pass AS SELECT * FROM nikita.daily_summaries;
SELECT is(
    nikita.generate_daily_summaries('2026-11-28 10:00Z', '1 day') ->> 'summaries', '0',
    'a second run inserts nothing'
);
SELECT set_eq('SELECT * FROM nikita.daily_summaries', 'SELECT * FROM first_pass',
    '... and changes no row');

SELECT is(
    nikita.generate_daily_summaries('2026-11-28 10:00Z') ->> 'lookback', '2 days',
    'without a previous summary run the lookback is 2 days'
);

-- ---------------------------------------------------------------------------------------------
-- Daylight saving: America/New_York
-- ---------------------------------------------------------------------------------------------
-- 2026-11-01 has 25 hours: 04:00Z .. 2026-11-02 05:00Z.
SELECT pg_temp.talk(4, '2026-11-01 03:30Z');  -- 10-31 23:30 EDT: the day before
SELECT pg_temp.talk(4, '2026-11-01 04:30Z');  -- 11-01 00:30 EDT
SELECT pg_temp.talk(4, '2026-11-02 04:30Z');  -- 11-01 23:30 EST, 24.5 h into the day
SELECT pg_temp.talk(4, '2026-11-02 05:00Z');  -- 11-02 00:00 EST: the next day
SELECT is(
    nikita.generate_daily_summaries('2026-11-02 04:59Z', '3 hours') ->> 'summaries', '0',
    '25-hour day: not summarised one minute before its end (05:00Z)'
);
SELECT is(
    nikita.generate_daily_summaries('2026-11-02 05:00Z', '3 hours') ->> 'summaries', '1',
    '... summarised at its end'
);
SELECT results_eq(
    $$SELECT date, conversations_count FROM nikita.daily_summaries WHERE user_id = pg_temp.u(4)$$,
    $$VALUES (date '2026-11-01', 2)$$,
    'the 25-hour day counts both conversations inside it and neither outside'
);

-- 2026-03-08 has 23 hours: 05:00Z .. 2026-03-09 04:00Z.
SELECT pg_temp.talk(5, '2026-03-08 04:59Z');  -- 03-07 23:59 EST
SELECT pg_temp.talk(5, '2026-03-08 05:00Z');  -- 03-08 00:00 EST
SELECT pg_temp.talk(5, '2026-03-09 03:59Z');  -- 03-08 23:59 EDT
SELECT pg_temp.talk(5, '2026-03-09 04:00Z');  -- 03-09 00:00 EDT
SELECT is(
    nikita.generate_daily_summaries('2026-03-09 04:00Z', '1 hour') ->> 'summaries', '1',
    '23-hour day: summarised at its end (04:00Z)'
);
SELECT results_eq(
    $$SELECT date, conversations_count FROM nikita.daily_summaries WHERE user_id = pg_temp.u(5)$$,
    $$VALUES (date '2026-03-08', 2)$$,
    'the 23-hour day counts the conversations of its 23 hours only'
);
SELECT results_eq(
    $$SELECT score_start, score_end, decay_applied FROM nikita.daily_summaries
      WHERE user_id = pg_temp.u(5)$$,
    $$VALUES (50.00::numeric, 50.00::numeric, 0.00::numeric)$$,
    'no score history: start and end are the current score'
);

-- ---------------------------------------------------------------------------------------------
-- Catch-up after an outage: the lookback reaches back to the last summary run
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.talk(6, '2026-11-25 12:00Z');
INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, result)
VALUES ('summary', '2026-11-25 01:00Z', '2026-11-25 01:00:01Z', 'completed', '{}');
SELECT is(
    nikita.generate_daily_summaries('2026-11-28 10:00Z') ->> 'lookback', '3 days 10:00:00',
    'the lookback runs from the last completed summary run, plus an hour'
);
SELECT results_eq(
    $$SELECT date, conversations_count FROM nikita.daily_summaries WHERE user_id = pg_temp.u(6)$$,
    $$VALUES (date '2026-11-25', 1)$$,
    'a day missed during the outage is summarised'
);
INSERT INTO nikita.job_executions (job_name, started_at, completed_at, status, result)
VALUES ('summary', '2026-11-28 09:05Z', '2026-11-28 09:05:01Z', 'completed', '{}');
SELECT is(
    nikita.generate_daily_summaries('2026-11-28 10:05Z') ->> 'lookback', '02:00:00',
    'hourly runs look back at least 2 hours'
);

-- ---------------------------------------------------------------------------------------------
-- The job's steps (nikita._job_summary_step): batches of players after a cursor
-- ---------------------------------------------------------------------------------------------
-- Seven more players, ordered after d1..d6 by id, all in UTC, as of 2026-10-11 00:05Z (no
-- summary run before then: lookback 2 days, the days 10-09 and 10-10):
--   e1, e4, e5, e6  active on 10-10 · e2 active on 10-09 and 10-10 (two summaries)
--   e3 active on 10-10 but the app already wrote its summary · e7 quiet
-- d1..d6 have no activity in those days. 13 players, batch 3: steps of d1-d3, d4-d6, e1-e3,
-- e4-e6, e7 (done: fewer than a batch).
CREATE FUNCTION pg_temp.e(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-0000000001e' || p_n)::uuid
$$;
INSERT INTO nikita.users (id, telegram_id, timezone)
SELECT pg_temp.e(k), 100 + k, 'UTC' FROM generate_series(1, 7) AS k;
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
SELECT pg_temp.e(k), 51, 1, 1, 'conversation', '2026-10-10 12:00Z'
FROM generate_series(1, 6) AS k;
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
VALUES (pg_temp.e(2), 50, 0, 1, 'conversation', '2026-10-09 12:00Z');
INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, summary_text)
VALUES (pg_temp.e(3), '2026-10-10', 50, 51, 'the app wrote it');

-- Runs the steps as run_job does (state in, state out), with the batch set to p_batch after
-- the first call, at most p_max steps after it; each step's state and the rows and players
-- with a summary after it go to table steps.
CREATE TEMP TABLE steps (run text, n integer, state jsonb, rows_after bigint, players_after bigint);
CREATE FUNCTION pg_temp.run_steps(p_run text, p_batch integer, p_max integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state jsonb := nikita._job_summary_step('2026-10-11 00:05Z', NULL);
    v_i integer := 0;
BEGIN
    v_state := jsonb_set(v_state, '{batch}', to_jsonb(p_batch));
    INSERT INTO steps
    SELECT p_run, 0, v_state, count(*), count(DISTINCT s.user_id)
    FROM nikita.daily_summaries AS s WHERE s.date BETWEEN '2026-10-09' AND '2026-10-10';
    WHILE NOT (v_state ->> 'done')::boolean AND v_i < p_max LOOP
        v_state := nikita._job_summary_step('2026-10-11 00:05Z', v_state);
        v_i := v_i + 1;
        INSERT INTO steps
        SELECT p_run, v_i, v_state, count(*), count(DISTINCT s.user_id)
        FROM nikita.daily_summaries AS s WHERE s.date BETWEEN '2026-10-09' AND '2026-10-10';
    END LOOP;
    RETURN v_state;
END
$$;

SELECT is(
    nikita._job_summary_step('2026-10-11 00:05Z', NULL),
    '{"done": false, "after": null, "batch": 1000, "players": 0,
      "result": {"summaries": 0, "lookback": "2 days"}}'::jsonb,
    'the first step only fixes the run: cursor, batch (1000), lookback, zero summaries'
);

-- An interrupted run: three steps (d1-d3, d4-d6, e1-e3), then the run stops.
SELECT is(
    pg_temp.run_steps('interrupted', 3, 3) - 'batch',
    jsonb_build_object(
        'done', false, 'after', pg_temp.e(3), 'players', 9,
        'result', '{"summaries": 3, "lookback": "2 days"}'::jsonb
    ),
    'an interrupted run: after three steps of 3 players the cursor is at the 9th player, '
    'with the summaries of e1 and e2'
);
SELECT results_eq(
    $$SELECT (state ->> 'after')::uuid, (state ->> 'players')::integer FROM steps
      WHERE run = 'interrupted' AND n > 0 ORDER BY n$$,
    $$VALUES (pg_temp.u(3), 3), (pg_temp.u(6), 6), (pg_temp.e(3), 9)$$,
    'the cursor moves by one batch of players per step, in user id order'
);
SELECT results_eq(
    $$SELECT user_id, date FROM nikita.daily_summaries
      WHERE date BETWEEN '2026-10-09' AND '2026-10-10' ORDER BY user_id, date$$,
    $$VALUES (pg_temp.e(1), date '2026-10-10'), (pg_temp.e(2), '2026-10-09'),
             (pg_temp.e(2), '2026-10-10'), (pg_temp.e(3), '2026-10-10')$$,
    '... and nothing after its cursor was written (e3 holds only the app''s row)'
);

-- The re-run: from the start again (a new run), to the end.
SELECT is(
    pg_temp.run_steps('rerun', 3, 100) - 'batch',
    jsonb_build_object(
        'done', true, 'after', pg_temp.e(7), 'players', 13,
        'result', '{"summaries": 3, "lookback": "2 days"}'::jsonb
    ),
    'the re-run goes through all 13 players in five steps and writes only the 3 missing summaries'
);
SELECT is(
    (SELECT count(*)::integer FROM steps WHERE run = 'rerun' AND n > 0), 5,
    '... five steps of at most 3 players (3, 3, 3, 3, 1), the last one done'
);
SELECT results_eq(
    $$SELECT (state -> 'result' ->> 'summaries')::integer, rows_after::integer FROM steps
      WHERE run = 'rerun' ORDER BY n$$,
    $$VALUES (0, 4), (0, 4), (0, 4), (0, 4), (3, 7), (3, 7)$$,
    'the result sums the steps: each step adds exactly the rows it wrote'
);
SELECT is_empty(
    $$SELECT run, n FROM (
          SELECT run, n, players_after - lag(players_after) OVER (PARTITION BY run ORDER BY n)
              AS grew
          FROM steps
      ) AS g WHERE grew > 3$$,
    'no step writes summaries for more players than its batch'
);
SELECT results_eq(
    $$SELECT user_id, date, count(*)::integer FROM nikita.daily_summaries
      WHERE date BETWEEN '2026-10-09' AND '2026-10-10' GROUP BY 1, 2 ORDER BY 1, 2$$,
    $$VALUES (pg_temp.e(1), date '2026-10-10', 1), (pg_temp.e(2), '2026-10-09', 1),
             (pg_temp.e(2), '2026-10-10', 1), (pg_temp.e(3), '2026-10-10', 1),
             (pg_temp.e(4), '2026-10-10', 1), (pg_temp.e(5), '2026-10-10', 1),
             (pg_temp.e(6), '2026-10-10', 1)$$,
    'interrupted run + re-run: every summary written exactly once, none for the quiet player'
);
SELECT is(
    (SELECT summary_text FROM nikita.daily_summaries
     WHERE user_id = pg_temp.e(3) AND date = '2026-10-10'),
    'the app wrote it',
    'a summary that already existed is skipped, not overwritten'
);

-- The batched rows are the ones the whole-run function writes.
CREATE TEMP TABLE batched AS
SELECT user_id, date, score_start, score_end, decay_applied, conversations_count, summary_text
FROM nikita.daily_summaries
WHERE date BETWEEN '2026-10-09' AND '2026-10-10' AND user_id <> pg_temp.e(3);
DELETE FROM nikita.daily_summaries
WHERE date BETWEEN '2026-10-09' AND '2026-10-10' AND user_id <> pg_temp.e(3);
SELECT is(
    nikita.generate_daily_summaries('2026-10-11 00:05Z', '2 days'),
    '{"summaries": 6, "lookback": "2 days"}'::jsonb,
    'generate_daily_summaries writes the same 6 in one call'
);
SELECT set_eq(
    $$SELECT user_id, date, score_start, score_end, decay_applied, conversations_count,
             summary_text
      FROM nikita.daily_summaries
      WHERE date BETWEEN '2026-10-09' AND '2026-10-10' AND user_id <> pg_temp.e(3)$$,
    'SELECT * FROM batched',
    '... with the same figures and texts as the batched steps'
);

SELECT throws_ok(
    $$SELECT nikita._job_summary_step('2026-10-11 00:05Z',
        '{"done": false, "after": null, "batch": 0, "players": 0,
          "result": {"summaries": 0, "lookback": "2 days"}}')$$,
    '22023', 'summary batch must be between 1 and 100000, got 0',
    'a step with a batch outside 1..100000 is refused'
);

-- ---------------------------------------------------------------------------------------------
-- Bad input
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE before AS SELECT * FROM nikita.daily_summaries;
SELECT throws_ok($$SELECT nikita.generate_daily_summaries(NULL)$$, '22004',
    'p_now must not be null', 'p_now NULL is refused');
SELECT throws_ok($$SELECT nikita.generate_daily_summaries('2026-12-01Z', '-1 day')$$, '22023',
    'lookback must be positive and at most 366 days, got -1 days', 'a negative lookback is refused');
SELECT set_eq('SELECT * FROM nikita.daily_summaries', 'SELECT * FROM before',
    'refused calls change nothing');

SELECT * FROM finish();
ROLLBACK;
