-- Summary writer hand-off (functions/summary_writer.sql, sql/0015): new rows pending by default,
-- claim / complete / fail with leases and attempts, recovery of expired leases in the claim,
-- the factual text kept, bad input with SQLSTATEs, the setting's check, grants, RLS unchanged.
BEGIN;
SELECT plan(46);
SET LOCAL timezone = 'UTC';

INSERT INTO nikita.users (id, telegram_id, timezone, chapter) VALUES
('00000000-0000-0000-0000-0000000000b1', 911, 'Europe/Zurich', 2),
('00000000-0000-0000-0000-0000000000b2', 912, 'UTC', 1);
-- A day of activity for b1, summarised by the job itself (the job is not changed).
INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, recorded_at)
VALUES ('00000000-0000-0000-0000-0000000000b1', 48, -2, 2, 'decay', '2026-11-27 10:00Z');
SELECT is(nikita.generate_daily_summaries('2026-11-28 12:00Z', '2 days') ->> 'summaries', '1',
    'the summary job writes its row as before');
SELECT is(
    (SELECT writer_state || '/' || writer_attempts FROM nikita.daily_summaries), 'pending/0',
    'a new row is pending by the column default'
);

-- Rows 2..4: user b2, three days, oldest first by created_at.
INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, summary_text, created_at)
SELECT '00000000-0000-0000-0000-0000000000b2', d::date, 50, 50, 'fact ' || d::date, d
FROM generate_series('2026-11-20'::timestamptz, '2026-11-22', '1 day') AS d;
INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, summary_text, writer_state)
VALUES ('00000000-0000-0000-0000-0000000000b2', '2026-11-01', 50, 50, 'not wanted', NULL);

CREATE TEMP TABLE c1 AS SELECT * FROM nikita.claim_summaries('w1', 2, '5 minutes');
SELECT is((SELECT array_agg(date ORDER BY date) FROM c1), ARRAY['2026-11-20', '2026-11-21']::date[],
    'claim: oldest first, at most max');
SELECT is((SELECT array_agg(writer_attempts) FROM c1), ARRAY[1, 1], 'each claim counts an attempt');
SELECT is((SELECT count(DISTINCT lock_token)::int FROM c1 WHERE lock_token IS NOT NULL), 2,
    'each claimed row has its own token');
SELECT is(
    (SELECT array_agg(writer_state || ':' || locked_by ORDER BY date) FROM nikita.daily_summaries
      WHERE date IN ('2026-11-20', '2026-11-21')),
    ARRAY['processing:w1', 'processing:w1'], 'claimed rows are processing under w1''s lease'
);
CREATE TEMP TABLE c2 AS SELECT * FROM nikita.claim_summaries('w2', 10);
SELECT is((SELECT array_agg(date ORDER BY date) FROM c2), ARRAY['2026-11-22', '2026-11-27']::date[],
    'a second claimer gets only the rest (never a claimed row, never a NULL-state row)');
SELECT is(
    (SELECT row(timezone, day_start, day_end, score_start, score_end, decay_applied,
                conversations_count, chapter, game_status)::text FROM c2 WHERE date = '2026-11-27'),
    row('Europe/Zurich', '2026-11-26 23:00Z'::timestamptz, '2026-11-27 23:00Z'::timestamptz,
        50.00::numeric, 48.00::numeric, 2.00::numeric, 0, 2::smallint, 'active')::text,
    'the claim returns the day''s facts: local day bounds, scores, decay, chapter'
);
SELECT matches((SELECT summary_text FROM c2 WHERE date = '2026-11-27'), '^Fri 27 Nov 2026',
    '... and the job''s factual text');
SELECT is((SELECT count(*)::int FROM nikita.claim_summaries('w3')), 0, 'nothing left to claim');

-- complete
SELECT ok(nikita.complete_summary(id, lock_token, 'We barely talked, and I noticed.', 'distant'),
    'complete with the current token: true') FROM c1 WHERE date = '2026-11-20';
SELECT is(
    (SELECT row(writer_state, nikita_summary_text, emotional_tone, summary_text, locked_by,
                lock_token, written_at IS NOT NULL)::text
       FROM nikita.daily_summaries WHERE date = '2026-11-20'),
    row('written', 'We barely talked, and I noticed.', 'distant', 'fact 2026-11-20', NULL::text,
        NULL::uuid, true)::text,
    'written: the writer''s text and tone beside the factual text, lease cleared'
);
SELECT ok(NOT nikita.complete_summary(id, lock_token, 'again', NULL),
    'a second complete with the same token: false') FROM c1 WHERE date = '2026-11-20';
SELECT ok(NOT nikita.complete_summary(id, gen_random_uuid(), 'stolen', NULL),
    'a wrong token: false, nothing written') FROM c1 WHERE date = '2026-11-21';

-- bad input: nothing written
SELECT throws_ok(format($$SELECT nikita.complete_summary(%s, %L, %L, NULL)$$, id, lock_token,
    U&' \200B\00A0'), '22023', 'summary text must not be blank', 'blank text: 22023')
FROM c1 WHERE date = '2026-11-21';
SELECT throws_ok(format($$SELECT nikita.complete_summary(%s, %L, NULL, NULL)$$, id, lock_token),
    '22023', 'summary text must not be blank', 'NULL text: 22023') FROM c1 WHERE date = '2026-11-21';
SELECT throws_ok(format($$SELECT nikita.complete_summary(%s, %L, repeat('x', 8001), NULL)$$, id,
    lock_token), '22001', 'summary text must be at most 8000 characters, got 8001',
    'text over 8000: 22001') FROM c1 WHERE date = '2026-11-21';
SELECT throws_ok(format($$SELECT nikita.complete_summary(%s, %L, 'ok', ' ')$$, id, lock_token),
    '22023', 'emotional tone must be NULL or not blank', 'blank tone: 22023')
FROM c1 WHERE date = '2026-11-21';
SELECT throws_ok(format($$SELECT nikita.complete_summary(%s, %L, 'ok', repeat('t', 201))$$, id,
    lock_token), '22001', 'emotional tone must be at most 200 characters, got 201',
    'tone over 200: 22001') FROM c1 WHERE date = '2026-11-21';
SELECT throws_ok($$SELECT nikita.complete_summary(NULL, NULL, 'x', NULL)$$, '22004',
    'summary id and lock token must not be null', 'NULL id/token: 22004');
SELECT throws_ok($$SELECT nikita.fail_summary(1, NULL, 'x')$$, '22004',
    'summary id and lock token must not be null', 'fail: NULL token: 22004');
SELECT throws_ok($$SELECT * FROM nikita.claim_summaries(U&'\200B')$$, '22023',
    'worker must be a non-empty name', 'claim: blank worker: 22023');
SELECT throws_ok($$SELECT * FROM nikita.claim_summaries('w', 1001)$$, '22023',
    'max must be between 1 and 1000, got 1001', 'claim: max out of range: 22023');
SELECT throws_ok($$SELECT * FROM nikita.claim_summaries('w', 1, '0.5 seconds')$$, '22023', NULL,
    'claim: lease under a second: 22023');
SELECT is((SELECT writer_state FROM nikita.daily_summaries WHERE date = '2026-11-21'), 'processing',
    'after every refused call the row is still processing, unwritten');

-- fail: retryable back to pending while attempts remain, then failed; not retryable: failed
SELECT is(nikita.fail_summary(id, lock_token, 'writer timed out after 10s'), 'pending',
    'fail, attempt 1 of 3: pending') FROM c1 WHERE date = '2026-11-21';
SELECT is(nikita.fail_summary(id, lock_token, 'again'), NULL,
    'fail with a spent token: NULL (lease lost)') FROM c1 WHERE date = '2026-11-21';
SELECT is(
    (SELECT row(writer_state, writer_error, summary_text, nikita_summary_text)::text
       FROM nikita.daily_summaries WHERE date = '2026-11-21'),
    row('pending', 'writer timed out after 10s', 'fact 2026-11-21', NULL::text)::text,
    'a failed attempt keeps the factual text and says why'
);
SELECT is(nikita.fail_summary(c.id, c.lock_token, 'x', p_retryable => false), 'failed',
    'not retryable: failed at once') FROM nikita.claim_summaries('w1', 1) AS c;
SELECT is((SELECT writer_state FROM nikita.daily_summaries WHERE date = '2026-11-21'), 'failed',
    '... that was the pending 2026-11-21 row');
UPDATE nikita.daily_summaries SET writer_state = 'pending', writer_attempts = 2
WHERE date = '2026-11-21';
SELECT is(nikita.fail_summary(c.id, c.lock_token, 'third'), 'failed',
    'retryable at the last attempt (3 of 3): failed') FROM nikita.claim_summaries('w1', 1) AS c;

-- recovery of expired leases, inside the claim (boundary: locked_until = now() is expired)
UPDATE nikita.daily_summaries SET locked_until = now() WHERE date = '2026-11-22';
UPDATE nikita.daily_summaries SET locked_until = now() + interval '1 second'
WHERE date = '2026-11-27';
CREATE TEMP TABLE c3 AS SELECT * FROM nikita.claim_summaries('w4', 10);
SELECT is((SELECT array_agg(date::text || ':' || writer_attempts) FROM c3), ARRAY['2026-11-22:2'],
    'an expired lease is recovered and claimed again (attempt 2); a live lease is not');
SELECT is((SELECT writer_state FROM nikita.daily_summaries WHERE date = '2026-11-27'), 'processing',
    'the live lease stays with its worker');
UPDATE nikita.daily_summaries SET locked_until = now() - interval '1 minute', writer_attempts = 3
WHERE date = '2026-11-22';
SELECT is((SELECT count(*)::int FROM nikita.claim_summaries('w4', 10)), 0,
    'an expired lease at the last attempt is not claimed again ...');
SELECT is(
    (SELECT writer_state || ': ' || writer_error FROM nikita.daily_summaries WHERE date = '2026-11-22'),
    'failed: lease of w4 expired at ' || (now() - interval '1 minute')::text || ' (attempt 3 of 3)',
    '... it is failed, naming the worker and the attempt'
);

-- the setting
UPDATE nikita.settings SET value = '1' WHERE key = 'summary_writer_max_attempts';
UPDATE nikita.daily_summaries SET writer_state = 'pending', writer_attempts = 0,
    locked_by = NULL, locked_until = NULL, lock_token = NULL WHERE date = '2026-11-27';
SELECT is(nikita.fail_summary(c.id, c.lock_token, 'x'), 'failed',
    'summary_writer_max_attempts = 1: the first failure is final') FROM nikita.claim_summaries('w', 1) AS c;
SELECT throws_ok($$UPDATE nikita.settings SET value = '0' WHERE key = 'summary_writer_max_attempts'$$,
    '23514', 'setting "summary_writer_max_attempts" must be an integer from 1 to 100, got integer 0',
    'the setting''s range is checked: 0 refused (23514)');
SELECT throws_ok($$UPDATE nikita.settings SET value = '101' WHERE key = 'summary_writer_max_attempts'$$,
    '23514', NULL, '101 refused');

-- constraints on direct writes
SELECT throws_ok($$UPDATE nikita.daily_summaries SET writer_state = 'processing' WHERE date = '2026-11-01'$$,
    '23514', NULL, 'processing without a lease is refused (daily_summaries_writer_lease)');
SELECT throws_ok($$UPDATE nikita.daily_summaries SET writer_state = 'written' WHERE date = '2026-11-01'$$,
    '23514', NULL, 'written without a text is refused');

-- grants and RLS
SELECT is(
    (SELECT array_agg(s ORDER BY s) FROM unnest(ARRAY[
        'nikita.claim_summaries(text,integer,interval)',
        'nikita.complete_summary(bigint,uuid,text,text)',
        'nikita.fail_summary(bigint,uuid,text,boolean)',
        'nikita._summary_writer_max_attempts()',
        'nikita._summaries_notify_inserted()',
        'nikita.check_summary_writer_setting(text,text,jsonb)']) AS s
      CROSS JOIN (VALUES ('nikita_worker'), ('nikita_app'), ('nikita_readonly'), ('nikita_jobs')) AS r (r)
      WHERE has_function_privilege(r.r, s::regprocedure, 'EXECUTE')
            <> (r.r = 'nikita_worker' AND s ~ '(claim|complete|fail)_summar')),
    NULL, 'nikita_worker executes exactly claim / complete / fail; internals nobody'
);
SELECT is(
    (SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND p.proname IN ('claim_summaries', 'complete_summary', 'fail_summary')
        AND p.prosecdef AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
        AND obj_description(p.oid, 'pg_proc') ~ '22004|22023'),
    ARRAY['claim_summaries', 'complete_summary', 'fail_summary'],
    'SECURITY DEFINER, search_path pinned, COMMENT with the SQLSTATE contract'
);
SELECT ok(NOT has_table_privilege('nikita_worker', 'nikita.daily_summaries', 'SELECT'),
    'the worker has no direct access to daily_summaries');
SET LOCAL ROLE nikita_worker;
SELECT is((SELECT count(*)::int FROM nikita.claim_summaries('shim', 10)), 0,
    'nikita_worker claims through the function');
RESET ROLE;
SELECT is(
    (SELECT array_agg(policyname::text ORDER BY policyname) FROM pg_policies
      WHERE schemaname = 'nikita' AND tablename = 'daily_summaries'),
    ARRAY['daily_summaries_app_all', 'daily_summaries_owner_select'],
    'RLS policies of daily_summaries unchanged'
);
CREATE ROLE nikita_test_summ_player;
GRANT USAGE ON SCHEMA nikita TO nikita_test_summ_player;
GRANT SELECT ON nikita.daily_summaries TO nikita_test_summ_player;
GRANT EXECUTE ON FUNCTION nikita.current_user_id() TO nikita_test_summ_player;
SET LOCAL ROLE nikita_test_summ_player;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000000b1"}', true);
SELECT is((SELECT array_agg(DISTINCT user_id::text) FROM nikita.daily_summaries),
    ARRAY['00000000-0000-0000-0000-0000000000b1'], 'a player still reads only their own summaries');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
