-- Decay warnings (functions/decay_warnings.sql, the step in functions/decay_tids.sql; setting
-- decay_warnings, sql/0014): one message per downward crossing caused by decay, the lowest
-- threshold of a run, none at game over, armed again once the score is back at the threshold;
-- the setting's shape refused with 23514 naming the key.
-- Chapter 1 (grace 8 h, 0.8 points an hour, cap 12 a day) in UTC: idle 8 h + h hours at
-- 2026-11-28 12:00Z takes 0.8 h points.
BEGIN;
SELECT plan(34);
SET LOCAL timezone = 'UTC';

CREATE FUNCTION pg_temp.id(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
CREATE FUNCTION pg_temp.player(
    p_n integer, p_score numeric, p_idle interval, p_telegram boolean DEFAULT true
) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO nikita.users (id, telegram_id, chapter, relationship_score, onboarding_status,
                              timezone, last_interaction_at, created_at)
    VALUES (pg_temp.id(p_n), CASE WHEN p_telegram THEN 1000 + p_n END, 1, p_score, 'completed',
            'UTC', timestamptz '2026-11-28 12:00Z' - interval '8 hours' - p_idle, '2026-01-01Z')
    RETURNING id
$$;
-- The decay_warning events of player n: (text, dedupe_key), oldest first.
CREATE FUNCTION pg_temp.warnings(p_n integer) RETURNS TABLE (text text, dedupe_key text)
LANGUAGE sql AS $$
    SELECT content ->> 'text', dedupe_key FROM nikita.scheduled_events
    WHERE user_id = pg_temp.id(p_n) AND event_type = 'decay_warning' ORDER BY created_at, seq
$$;
CREATE FUNCTION pg_temp.key(p_n integer, p_below text, p_at text) RETURNS text
LANGUAGE sql AS $$
    SELECT 'decay_warning:' || pg_temp.id(p_n) || ':' || p_below || ':' || p_at
$$;

SELECT is(
    (SELECT value FROM nikita.settings WHERE key = 'decay_warnings'),
    '[{"below": 40, "text": "hey... you still there?"},
      {"below": 30, "text": "Don''t forget about me..."}]'::jsonb,
    'the shipped thresholds are the game''s: 40, then 30'
);

-- ---------------------------------------------------------------------------------------------
-- Crossings, boundaries, catch-up, game over
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.player(1, 40.80, interval '1 hour');    -- 40.80 -> 40.00: lands on 40
SELECT pg_temp.player(2, 40.00, interval '1 hour');    -- 40.00 -> 39.20: from exactly 40
SELECT pg_temp.player(3, 39.99, interval '1 hour');    -- already under 40: 39.19
SELECT pg_temp.player(4, 45.00, interval '10 hours');  -- 45 -> 37: crosses 40
SELECT pg_temp.player(5, 45.00, interval '20 hours');  -- 45 -> 29 (6.4 + 9.6 over two days)
SELECT pg_temp.player(6, 40.00, interval '10 days');   -- 40 -> 0: game over
SELECT pg_temp.player(7, 45.00, interval '10 hours', p_telegram => false);  -- no chat
SELECT pg_temp.player(8, 80.00, interval '10 hours');  -- 80 -> 72: no threshold

SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z') - 'points' - 'skipped_rows',
    '{"decayed": 8, "game_overs": 1, "due": 8, "batches": 1, "skipped": 0}'::jsonb,
    'every player decays (the warnings change nothing of decay''s result)'
);
SELECT results_eq(
    $$SELECT id, relationship_score FROM nikita.users ORDER BY id$$,
    $$VALUES (pg_temp.id(1), 40.00::numeric), (pg_temp.id(2), 39.20), (pg_temp.id(3), 39.19),
             (pg_temp.id(4), 37.00), (pg_temp.id(5), 29.00), (pg_temp.id(6), 0.00),
             (pg_temp.id(7), 37.00), (pg_temp.id(8), 72.00)$$,
    'the scores the cases below are about'
);
SELECT is_empty($$SELECT * FROM pg_temp.warnings(1)$$,
    'a score that lands exactly on the threshold is not under it: no warning');
SELECT results_eq($$SELECT * FROM pg_temp.warnings(2)$$,
    $$VALUES ('hey... you still there?', pg_temp.key(2, '40', '2026-11-28T12:00:00.000000'))$$,
    'from exactly 40 to under it: one warning, the 40 text, the crossing''s dedupe key');
SELECT is_empty($$SELECT * FROM pg_temp.warnings(3)$$,
    'a score already under the threshold: no warning (decay did not cross it)');
SELECT results_eq($$SELECT text FROM pg_temp.warnings(4)$$,
    $$VALUES ('hey... you still there?')$$, 'crossing 40 in a run: the 40 message');
SELECT results_eq($$SELECT * FROM pg_temp.warnings(5)$$,
    $$VALUES ('Don''t forget about me...', pg_temp.key(5, '30', '2026-11-28T12:00:00.000000'))$$,
    'a catch-up run crossing 40 and 30: only the lowest one''s message');
SELECT results_eq(
    $$SELECT event_type FROM nikita.scheduled_events WHERE user_id = pg_temp.id(6)$$,
    $$VALUES ('game_over')$$,
    'game over in the same run: no warning, only the game-over message');
SELECT is_empty($$SELECT * FROM nikita.scheduled_events WHERE user_id IN
    (pg_temp.id(7), pg_temp.id(8))$$,
    'no telegram_id: no message (decayed all the same); no threshold crossed: none');
SELECT results_eq(
    $$SELECT platform, status, (content ->> 'chat_id')::bigint, scheduled_at
      FROM nikita.scheduled_events WHERE user_id = pg_temp.id(4)$$,
    -- p_now, or now() once p_now is beyond max_lateness (as schedule_event stores it).
    $$VALUES ('telegram', 'pending', 1004::bigint, CASE
        WHEN timestamptz '2026-11-28 12:00Z' < now() - interval '24 hours' THEN now()
        ELSE timestamptz '2026-11-28 12:00Z' END)$$,
    'a Telegram message to the player''s chat, pending, due at p_now as schedule_event would');

-- The same instant again: nothing to decay, nothing queued.
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events WHERE event_type = 'decay_warning'),
    3, 'a second run at the same instant queues nothing');

-- A live duplicate of the crossing's key is not queued twice (schedule_event's dedupe).
SELECT is(
    nikita._queue_decay_warnings('2026-11-28 12:00Z', ARRAY[pg_temp.id(4)], ARRAY[40::numeric]),
    0, 'queueing the same crossing again adds nothing...');
SELECT is((SELECT count(*)::int FROM pg_temp.warnings(4)), 1,
    '...the live event stays: still one');

-- ---------------------------------------------------------------------------------------------
-- Armed again once the score is back at the threshold
-- ---------------------------------------------------------------------------------------------
-- Player 2 (39.20) decays on: no second warning while under 40.
SELECT nikita.apply_decay('2026-11-28 13:00Z');
SELECT is((SELECT relationship_score FROM nikita.users WHERE id = pg_temp.id(2)), 38.40::numeric,
    'player 2 decays further under 40');
SELECT is((SELECT count(*)::int FROM pg_temp.warnings(2)), 1,
    'no new warning while the score stays under the threshold');
-- The app raises the score back over 40 (a good conversation, no reset of the idle time).
UPDATE nikita.users SET relationship_score = 40.50 WHERE id = pg_temp.id(2);
SELECT nikita.apply_decay('2026-11-28 14:00Z');
SELECT results_eq($$SELECT * FROM pg_temp.warnings(2)$$,
    $$VALUES ('hey... you still there?', pg_temp.key(2, '40', '2026-11-28T12:00:00.000000')),
             ('hey... you still there?', pg_temp.key(2, '40', '2026-11-28T14:00:00.000000'))$$,
    'back over 40, decayed under it again: a second warning, its own key');
-- Back exactly to 40 (at the threshold counts as armed): the next crossing warns again.
UPDATE nikita.users SET relationship_score = 40.00 WHERE id = pg_temp.id(2);
SELECT nikita.apply_decay('2026-11-28 15:00Z');
SELECT is((SELECT count(*)::int FROM pg_temp.warnings(2)), 3,
    'back exactly at 40: armed; the next crossing warns');
-- Raised to 39.99 only: not armed.
UPDATE nikita.users SET relationship_score = 39.99 WHERE id = pg_temp.id(2);
SELECT nikita.apply_decay('2026-11-28 16:00Z');
SELECT is((SELECT count(*)::int FROM pg_temp.warnings(2)), 3,
    'raised but still under 40: no warning');

-- ---------------------------------------------------------------------------------------------
-- In decay's transaction: a warning that cannot be queued skips that player's decay
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
SELECT pg_temp.player(11, 45.00, interval '10 hours');
SELECT pg_temp.player(12, 45.00, interval '10 hours', p_telegram => false);
CREATE FUNCTION nikita.test_refuse_warning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused by test' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER test_refuse BEFORE INSERT ON nikita.scheduled_events
FOR EACH ROW WHEN (NEW.event_type = 'decay_warning')
EXECUTE FUNCTION nikita.test_refuse_warning();
SELECT is(
    nikita.apply_decay('2026-11-28 12:00Z') - 'points',
    jsonb_build_object('decayed', 1, 'game_overs', 0, 'due', 1, 'batches', 1, 'skipped', 1,
        'skipped_rows', jsonb_build_array(jsonb_build_object(
            'user_id', pg_temp.id(11), 'sqlstate', 'P0001', 'error', 'refused by test'))),
    'the warning is queued in the decay''s transaction: its failure skips that player'
);
SELECT results_eq(
    $$SELECT relationship_score, decayed_through FROM nikita.users ORDER BY id$$,
    $$VALUES (45.00::numeric, NULL::timestamptz), (37.00, '2026-11-28 12:00Z')$$,
    'the skipped player is untouched, the other decayed'
);
DROP TRIGGER test_refuse ON nikita.scheduled_events;

-- ---------------------------------------------------------------------------------------------
-- The setting: other thresholds and texts, an empty list
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.users;
UPDATE nikita.settings SET value = '[{"below": 42.5, "text": "miss you"}]'
WHERE key = 'decay_warnings';
SELECT pg_temp.player(21, 45.00, interval '10 hours');   -- 45 -> 37
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT results_eq($$SELECT * FROM pg_temp.warnings(21)$$,
    $$VALUES ('miss you', pg_temp.key(21, '42.5', '2026-11-28T12:00:00.000000'))$$,
    'the thresholds and texts are the setting''s');

DELETE FROM nikita.users;
UPDATE nikita.settings SET value = '[]' WHERE key = 'decay_warnings';
SELECT pg_temp.player(22, 45.00, interval '20 hours');
SELECT nikita.apply_decay('2026-11-28 12:00Z');
SELECT is_empty($$SELECT * FROM pg_temp.warnings(22)$$, 'an empty list: no warnings');

-- Refused with 23514, naming the key and the rule; nothing written.
CREATE FUNCTION pg_temp.refused(p_value text, p_type text DEFAULT 'json')
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_like(
        format('UPDATE nikita.settings SET value_type = %L, value = %L WHERE key = %L',
            p_type, p_value, 'decay_warnings'),
        CASE WHEN p_type = 'json' THEN 'setting "decay_warnings" must be a JSON array of at most 10 objects%'
             ELSE 'setting "decay_warnings" must have value_type json, got ' || p_type END,
        format('decay_warnings %s (%s) is refused', left(p_value, 60), p_type)
    )
$$;
SELECT pg_temp.refused('{"below": 40, "text": "x"}');
SELECT pg_temp.refused('[{"below": 0, "text": "x"}]');
SELECT pg_temp.refused('[{"below": 100.01, "text": "x"}]');
SELECT pg_temp.refused('[{"below": "40", "text": "x"}]');
SELECT pg_temp.refused('[{"below": 40, "text": " \u200b "}]');
SELECT pg_temp.refused('[{"below": 40, "text": "x", "chapter": 1}]');
SELECT pg_temp.refused('[{"below": 40, "text": "a"}, {"below": 40.0, "text": "b"}]');
SELECT pg_temp.refused(format('[{"below": 40, "text": "%s"}]', repeat('x', 4097)));
SELECT pg_temp.refused('"[]"', 'text');
SELECT throws_ok(
    $$UPDATE nikita.settings SET value = (SELECT jsonb_agg(jsonb_build_object('below', g, 'text', 't'))
      FROM generate_series(1, 11) AS g) WHERE key = 'decay_warnings'$$,
    '23514', NULL, 'more than 10 thresholds: 23514');
SELECT lives_ok(
    format($$UPDATE nikita.settings SET value = '[{"below": 100, "text": "%s"}, {"below": 0.01, "text": "y"}]'
      WHERE key = 'decay_warnings'$$, repeat('x', 4096)),
    'the bounds themselves are accepted (100, 0.01, 4096 characters)');
SELECT finish();
ROLLBACK;
