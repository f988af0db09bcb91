-- Section 2: the game's conversations -> nikita.conversations (ids kept). After 10_users.sql.
-- Carried: the lifecycle columns. The transcript (messages, transcript_raw), scores and
-- extracted data stay in the game's table.
CREATE OR REPLACE TEMP VIEW map_conversations AS
WITH s AS (
    SELECT cv.*, c.import_now,
           CASE WHEN pg_temp.plausible(cv.started_at) THEN cv.started_at
                WHEN pg_temp.plausible(cv.created_at) THEN cv.created_at
                ELSE c.import_now END AS started,
           CASE WHEN cv.status IS NULL OR cv.status = 'active'
                THEN CASE WHEN cv.ended_at IS NULL THEN 'active' ELSE 'ended' END
                -- The game's processing lease is not carried: our conversations job takes
                -- the conversation again (processing_attempts kept).
                WHEN cv.status = 'processing' THEN 'ended'
                WHEN cv.status IN ('processed', 'failed') THEN cv.status
           END AS new_status
    FROM :"src".conversations cv CROSS JOIN pg_temp.import_ctx c
)
SELECT
    s.id::text AS src_key,
    row_number() OVER (ORDER BY s.started_at, s.id) AS ord,
    CASE WHEN NOT EXISTS (SELECT 1 FROM nikita.users u WHERE u.id = s.user_id) THEN 'user_not_imported'
         WHEN s.platform IS NULL OR s.platform NOT IN ('telegram', 'voice') THEN 'unknown_platform'
         WHEN s.new_status IS NULL THEN 'unknown_status' END AS skip_reason,
    CASE WHEN NOT EXISTS (SELECT 1 FROM nikita.users u WHERE u.id = s.user_id)
              THEN format('user %s is not in nikita.users', s.user_id)
         WHEN s.platform IS NULL OR s.platform NOT IN ('telegram', 'voice')
              THEN format('platform %L is neither telegram nor voice', s.platform)
         ELSE format('status %L is none of active, processing, processed, failed', s.status)
    END AS skip_detail,
    (SELECT coalesce(jsonb_agg(x), '[]') FROM unnest(ARRAY[
        CASE WHEN s.status IS DISTINCT FROM s.new_status AND s.new_status IS NOT NULL THEN
            jsonb_build_object('reason', 'status_mapped', 'detail', format('status %s (ended_at %s): imported as %s',
                coalesce(quote_literal(s.status), 'NULL'), coalesce(s.ended_at::text, 'NULL'), s.new_status)) END,
        CASE WHEN s.started IS DISTINCT FROM s.started_at THEN jsonb_build_object(
            'reason', 'implausible_date', 'detail', format('started_at %s: imported as %s', s.started_at, s.started)) END
    ]) x WHERE x IS NOT NULL) AS notes,
    s.id,
    s.user_id,
    s.platform,
    s.new_status AS status,
    s.started AS started_at,
    greatest(s.started, coalesce(s.last_message_at, s.ended_at, s.started)) AS last_message_at,
    CASE WHEN s.new_status <> 'active'
         THEN greatest(s.started, coalesce(s.ended_at, s.last_message_at, s.started)) END AS ended_at,
    greatest(coalesce(s.processing_attempts, 0), 0) AS processing_attempts,
    s.conversation_summary AS summary,
    s.emotional_tone,
    coalesce(s.created_at, s.import_now) AS created_at,
    coalesce(s.updated_at, s.import_now) AS updated_at
FROM s;

BEGIN;
SELECT pg_temp.load('conversations', 'map_conversations', 'nikita.conversations', 'id',
                    'conflict') AS conversations;
COMMIT;
