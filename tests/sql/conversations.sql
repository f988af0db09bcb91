-- Conversation hand-off: idle detection, claim / complete / fail with leases and attempts,
-- recovery of expired leases, bad input, grants.
BEGIN;
SELECT plan(35);
SET LOCAL timezone = 'UTC';

INSERT INTO nikita.users (id, telegram_id) VALUES
('00000000-0000-0000-0000-0000000000a1', 901),
('00000000-0000-0000-0000-0000000000a2', 902);

CREATE FUNCTION pg_temp.conv(
    p_n integer, p_status text, p_last timestamptz, p_attempts integer DEFAULT 0,
    p_locked_until timestamptz DEFAULT NULL
) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO nikita.conversations (id, user_id, platform, status, started_at, last_message_at,
        ended_at, processing_attempts, locked_by, locked_until, lock_token)
    VALUES (('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid,
            '00000000-0000-0000-0000-0000000000a1', 'telegram', p_status,
            p_last - interval '10 minutes', p_last,
            CASE WHEN p_status <> 'active' THEN p_last END, p_attempts,
            CASE WHEN p_status = 'processing' THEN 'old-worker' END, p_locked_until,
            CASE WHEN p_status = 'processing' THEN gen_random_uuid() END)
    RETURNING id
$$;
CREATE FUNCTION pg_temp.cid(p_n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('00000000-0000-0000-0000-' || lpad(p_n::text, 12, '0'))::uuid
$$;

-- ---------------------------------------------------------------------------------------------
-- detect_stale_conversations (as of 2026-11-28 12:00Z)
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.conv(1, 'active', '2026-11-28 11:45Z');                 -- idle exactly 15 min
SELECT pg_temp.conv(2, 'active', '2026-11-28 11:45:01Z');              -- 14 min 59 s
SELECT pg_temp.conv(3, 'processing', '2026-11-28 10:00Z', 1, '2026-11-28 11:59:59Z');
SELECT pg_temp.conv(4, 'processing', '2026-11-28 10:00Z', 3, '2026-11-28 12:00Z');
SELECT pg_temp.conv(5, 'processing', '2026-11-28 10:00Z', 1, '2026-11-28 12:00:01Z');

SELECT is(
    nikita.detect_stale_conversations('2026-11-28 12:00Z'),
    '{"ended": 1, "recovered": 1, "failed": 1}'::jsonb,
    'the run reports ended, recovered and failed conversations'
);
SELECT results_eq(
    $$SELECT status, ended_at FROM nikita.conversations WHERE id IN (pg_temp.cid(1), pg_temp.cid(2))
      ORDER BY id$$,
    $$VALUES ('ended', timestamptz '2026-11-28 11:45Z'), ('active', NULL)$$,
    'idle for the timeout (15 min): ended at its last message; 1 s less: still active'
);
SELECT results_eq(
    $$SELECT status, processing_attempts, locked_by, locked_until, lock_token
      FROM nikita.conversations WHERE id = pg_temp.cid(3)$$,
    $$VALUES ('ended', 1, NULL::text, NULL::timestamptz, NULL::uuid)$$,
    'an expired lease goes back to ended, lease cleared, the attempt kept'
);
SELECT matches(
    (SELECT error FROM nikita.conversations WHERE id = pg_temp.cid(3)),
    '^lease of old-worker expired at .* \(attempt 1 of 3\)$',
    '... with the reason in error'
);
SELECT is(
    (SELECT status FROM nikita.conversations WHERE id = pg_temp.cid(4)), 'failed',
    'an expired lease on the last attempt fails the conversation'
);
SELECT is(
    (SELECT status FROM nikita.conversations WHERE id = pg_temp.cid(5)), 'processing',
    'a live lease is left alone'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.conversations
      WHERE status = 'processing' AND locked_until <= '2026-11-28 12:00Z'),
    0, 'nothing is left in processing with an expired lease'
);
SELECT is(
    nikita.detect_stale_conversations('2026-11-28 12:00Z'),
    '{"ended": 0, "recovered": 0, "failed": 0}'::jsonb,
    'a second run at the same instant changes nothing'
);

UPDATE nikita.settings SET value = '"1 hour"' WHERE key = 'conversation_idle_timeout';
SELECT pg_temp.conv(6, 'active', '2026-11-28 11:30Z');
SELECT is(
    nikita.detect_stale_conversations('2026-11-28 12:00Z') ->> 'ended', '0',
    'the idle timeout is the conversation_idle_timeout setting (1 hour: 30 min is not idle)'
);
UPDATE nikita.settings SET value = '"15 minutes"' WHERE key = 'conversation_idle_timeout';

-- ---------------------------------------------------------------------------------------------
-- claim / complete / fail
-- ---------------------------------------------------------------------------------------------
DELETE FROM nikita.conversations;
SELECT pg_temp.conv(11, 'ended', '2026-11-28 09:00Z');
SELECT pg_temp.conv(12, 'ended', '2026-11-28 08:00Z');
SELECT pg_temp.conv(13, 'ended', '2026-11-28 10:00Z');
SELECT pg_temp.conv(14, 'active', '2026-11-28 07:00Z');
SELECT pg_temp.conv(15, 'processed', '2026-11-28 07:00Z');

CREATE TEMP TABLE claimed AS
SELECT * FROM nikita.claim_conversations('w1', 2, '5 minutes');
SELECT results_eq(
    $$SELECT id, processing_attempts FROM claimed ORDER BY ended_at$$,
    $$VALUES (pg_temp.cid(12), 1), (pg_temp.cid(11), 1)$$,
    'claim takes at most p_max ended conversations, oldest end first, counting an attempt'
);
SELECT results_eq(
    $$SELECT c.status, c.locked_by, c.lock_token = k.lock_token,
             c.locked_until = now() + interval '5 minutes'
      FROM nikita.conversations c JOIN claimed k USING (id) ORDER BY c.ended_at$$,
    $$VALUES ('processing', 'w1', true, true), ('processing', 'w1', true, true)$$,
    'claimed rows are processing, leased to the worker with the returned token'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.claim_conversations('w2', 10)), 1,
    'active, processing and processed conversations are not claimed'
);

SELECT is(
    nikita.complete_conversation(pg_temp.cid(12), gen_random_uuid(), 'x', 'y'), false,
    'complete with a stale token: false'
);
SELECT is(
    (SELECT status FROM nikita.conversations WHERE id = pg_temp.cid(12)), 'processing',
    '... and the conversation is unchanged'
);
SELECT is(
    nikita.complete_conversation(pg_temp.cid(12),
        (SELECT lock_token FROM claimed WHERE id = pg_temp.cid(12)), 'They talked.', 'warm'),
    true, 'complete with the token: true'
);
SELECT results_eq(
    $$SELECT status, summary, emotional_tone, lock_token, locked_until
      FROM nikita.conversations WHERE id = pg_temp.cid(12)$$,
    $$VALUES ('processed', 'They talked.', 'warm', NULL::uuid, NULL::timestamptz)$$,
    'a completed conversation is processed with its summary and tone, lease cleared'
);
SELECT is(
    nikita.complete_conversation(pg_temp.cid(12),
        (SELECT lock_token FROM claimed WHERE id = pg_temp.cid(12)), 'again', 'cold'),
    false, 'completing twice: false (the token is spent)'
);

-- Attempts: fail, reclaim, fail, reclaim, fail -> failed after 3.
SELECT is(
    nikita.fail_conversation(pg_temp.cid(11), gen_random_uuid(), 'nope'), NULL,
    'fail with a stale token: NULL'
);
SELECT is(
    nikita.fail_conversation(pg_temp.cid(11),
        (SELECT lock_token FROM claimed WHERE id = pg_temp.cid(11)), 'LLM timeout'),
    'ended', 'attempt 1 fails: back to ended'
);
SELECT results_eq(
    $$SELECT error, lock_token FROM nikita.conversations WHERE id = pg_temp.cid(11)$$,
    $$VALUES ('LLM timeout', NULL::uuid)$$,
    '... with its error, lease cleared'
);
TRUNCATE claimed;
INSERT INTO claimed SELECT * FROM nikita.claim_conversations('w1', 1);
SELECT is((SELECT processing_attempts FROM claimed), 2, 'reclaimed: attempt 2');
SELECT is(
    nikita.fail_conversation(pg_temp.cid(11), (SELECT lock_token FROM claimed), 'again'),
    'ended', 'attempt 2 fails: back to ended'
);
TRUNCATE claimed;
INSERT INTO claimed SELECT * FROM nikita.claim_conversations('w1', 1);
SELECT is(
    nikita.fail_conversation(pg_temp.cid(11), (SELECT lock_token FROM claimed), 'third'),
    'failed', 'attempt 3 (conversation_max_attempts) fails: failed'
);
SELECT is(
    (SELECT count(*)::int FROM nikita.claim_conversations('w1', 10)), 0,
    'a failed conversation is not claimed again'
);

-- A lease that expires in a worker's hands is recovered by the job.
UPDATE nikita.conversations SET status = 'ended', processing_attempts = 0, error = NULL
WHERE id = pg_temp.cid(11);
TRUNCATE claimed;
INSERT INTO claimed SELECT * FROM nikita.claim_conversations('w1', 1, '1 minute');
SELECT is(
    nikita.detect_stale_conversations(now() + interval '1 minute') ->> 'recovered', '1',
    'the conversations job returns a claim whose lease expired'
);
SELECT is(
    nikita.complete_conversation(pg_temp.cid(11), (SELECT lock_token FROM claimed), 's', 't'),
    false, 'the worker that lost the lease can no longer complete it'
);

-- ---------------------------------------------------------------------------------------------
-- Bad input
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE before AS SELECT * FROM nikita.conversations;
SELECT throws_ok($$SELECT * FROM nikita.claim_conversations(NULL)$$, '22023',
    'worker must be a non-empty name', 'claim without a worker name is refused');
SELECT throws_ok($$SELECT * FROM nikita.claim_conversations('w', 0)$$, '22023',
    'max must be between 1 and 1000, got 0', 'claim of 0 rows is refused');
SELECT throws_ok($$SELECT * FROM nikita.claim_conversations('w', 1, '0')$$, '22023',
    'lease must be between 1 second and 1 day, got 00:00:00', 'a zero lease is refused');
SELECT throws_ok($$SELECT nikita.complete_conversation(NULL, NULL, 's', 't')$$, '22004',
    'conversation id and lock token must not be null', 'complete without id/token is refused');
SELECT throws_ok($$SELECT nikita.detect_stale_conversations(NULL)$$, '22004',
    'p_now must not be null', 'detect without p_now is refused');
SELECT set_eq('SELECT * FROM nikita.conversations', 'SELECT * FROM before',
    'refused calls change nothing');

-- ---------------------------------------------------------------------------------------------
-- Grants: the worker may claim/complete/fail (SECURITY DEFINER), nothing else here
-- ---------------------------------------------------------------------------------------------
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text) FROM pg_proc p
      WHERE p.pronamespace = 'nikita'::regnamespace AND p.proname LIKE '%conversation%'
        AND has_function_privilege('nikita_worker', p.oid, 'EXECUTE')),
    ARRAY['nikita.claim_conversations(text,integer,interval)',
          'nikita.complete_conversation(uuid,uuid,text,text)',
          'nikita.fail_conversation(uuid,uuid,text)'],
    'nikita_worker executes exactly claim, complete and fail'
);
SELECT is(
    (SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND p.proname IN ('claim_conversations', 'complete_conversation', 'fail_conversation')
        AND p.prosecdef AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
        AND obj_description(p.oid, 'pg_proc') IS NOT NULL),
    ARRAY['claim_conversations', 'complete_conversation', 'fail_conversation'],
    'they are SECURITY DEFINER, pin search_path and carry a COMMENT'
);
SET LOCAL ROLE nikita_worker;
SELECT is(
    (SELECT count(*)::int FROM nikita.claim_conversations('shim', 10)), 2,
    'nikita_worker claims through the function without any table privilege'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
