-- Section 4: the game's scheduled_events -> nikita.scheduled_events (ids kept). After
-- 10_users.sql and 20_conversations.sql. Content goes through the queue's own rules
-- (_telegram_content, _voice_content: what schedule_event applies); the due time is kept;
-- the dedupe key is the one the game's reply path uses ('reply:' || content.response_id).
CREATE OR REPLACE TEMP VIEW map_events AS
WITH s AS (
    SELECT e.*, c.import_now, c.max_lateness,
           e.status = 'pending' AND e.scheduled_at < c.import_now - c.max_lateness AS stale,
           EXISTS (SELECT 1 FROM nikita.users u WHERE u.id = e.user_id) AS user_ok,
           e.platform IN ('telegram', 'voice')
               AND e.event_type IN ('message_delivery', 'call_reminder', 'boss_prompt', 'follow_up')
               AND e.status IN ('pending', 'delivered', 'cancelled', 'failed') AS kind_ok
    FROM :"src".scheduled_events e CROSS JOIN pg_temp.import_ctx c
), k AS (
    SELECT s.*,
           CASE WHEN s.user_ok AND s.kind_ok
                THEN pg_temp.checked_content(s.platform, s.content, s.user_id) END AS checked,
           CASE WHEN s.stale THEN 'failed' ELSE s.status END AS new_status,
           CASE WHEN s.status = 'pending' AND NOT s.stale THEN least(s.retry_count, 3)
                ELSE least(greatest(s.retry_count, 0), 100) END AS new_attempts
    FROM s
)
SELECT
    k.id::text AS src_key,
    row_number() OVER (ORDER BY k.scheduled_at, k.created_at, k.id) AS ord,
    CASE WHEN NOT k.user_ok THEN 'user_not_imported'
         WHEN k.platform IS NULL OR k.platform NOT IN ('telegram', 'voice') THEN 'unknown_platform'
         WHEN k.event_type IS NULL OR k.event_type NOT IN
              ('message_delivery', 'call_reminder', 'boss_prompt', 'follow_up') THEN 'unknown_event_type'
         WHEN NOT k.kind_ok THEN 'unknown_status'
         WHEN k.checked ? 'error' THEN 'content_refused'
    END AS skip_reason,
    CASE WHEN NOT k.user_ok THEN format('user %s is not in nikita.users', k.user_id)
         WHEN k.platform IS NULL OR k.platform NOT IN ('telegram', 'voice')
              THEN format('platform %L is neither telegram nor voice', k.platform)
         WHEN k.event_type IS NULL OR k.event_type NOT IN
              ('message_delivery', 'call_reminder', 'boss_prompt', 'follow_up')
              THEN format('event_type %L unknown', k.event_type)
         WHEN NOT k.kind_ok
              THEN format('status %L is none of pending, delivered, cancelled, failed', k.status)
         ELSE k.checked ->> 'error'
    END AS skip_detail,
    (SELECT coalesce(jsonb_agg(x), '[]') FROM unnest(ARRAY[
        CASE WHEN k.stale THEN jsonb_build_object('reason', 'stale_pending', 'detail',
            format('pending, due %s, more than max_lateness (%s) before the import: imported as failed',
                   k.scheduled_at, k.max_lateness)) END,
        CASE WHEN k.source_conversation_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM nikita.conversations cv WHERE cv.id = k.source_conversation_id)
            THEN jsonb_build_object('reason', 'source_conversation_not_imported', 'detail',
                format('source_conversation_id %s: imported as NULL', k.source_conversation_id)) END
    ]) x WHERE x IS NOT NULL) AS notes,
    k.id,
    k.user_id,
    k.platform,
    k.event_type,
    k.checked -> 'ok' AS content,
    k.scheduled_at,
    k.new_status AS status,
    k.new_attempts AS attempts,
    greatest(4, k.new_attempts) AS max_attempts,
    CASE WHEN k.new_status = 'delivered'
         THEN coalesce(k.delivered_at, k.updated_at, k.scheduled_at) END AS delivered_at,
    CASE WHEN k.stale THEN 'expired: still pending in the game at the import'
         WHEN k.new_status = 'failed' THEN coalesce(k.error_message, 'failed in the game')
         ELSE k.error_message END AS last_error,
    CASE WHEN k.new_status = 'failed' THEN jsonb_build_array(jsonb_build_object(
        'at', nikita._iso8601(CASE WHEN k.stale THEN k.import_now ELSE coalesce(k.updated_at, k.import_now) END),
        'attempt', k.new_attempts,
        'error', CASE WHEN k.stale THEN 'expired: still pending in the game at the import'
                      ELSE coalesce(k.error_message, 'failed in the game') END,
        'retryable', false)) ELSE '[]'::jsonb END AS errors,
    CASE WHEN k.checked -> 'ok' ->> 'response_id' IS NOT NULL
         THEN 'reply:' || (k.checked -> 'ok' ->> 'response_id') END AS dedupe_key,
    (SELECT cv.id FROM nikita.conversations cv WHERE cv.id = k.source_conversation_id)
        AS source_conversation_id,
    coalesce(k.created_at, k.import_now) AS created_at,
    coalesce(k.updated_at, k.import_now) AS updated_at
FROM k;

BEGIN;
SELECT pg_temp.load('scheduled_events', 'map_events', 'nikita.scheduled_events', 'id',
                    'dedupe_key_live') AS scheduled_events;
COMMIT;
