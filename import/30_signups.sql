-- Section 3: the game's pending Telegram registrations (telegram_signup_sessions, formerly
-- pending_registrations) -> nikita.signup_sessions, keyed by telegram_id (the game's key).
CREATE OR REPLACE TEMP VIEW map_signups AS
WITH s AS (
    SELECT r.*, c.import_now,
           CASE r.signup_state
               WHEN 'awaiting_email' THEN 'awaiting_email'
               WHEN 'code_sent' THEN 'awaiting_code'
               WHEN 'magic_link_sent' THEN 'awaiting_code'
               WHEN 'completed' THEN 'verified'
           END AS new_state,
           btrim(r.email) ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' AS email_ok
    FROM :"src".telegram_signup_sessions r CROSS JOIN pg_temp.import_ctx c
)
SELECT
    s.telegram_id::text AS src_key,
    row_number() OVER (ORDER BY s.created_at, s.telegram_id) AS ord,
    CASE WHEN s.telegram_id <= 0 THEN 'telegram_id_not_positive'
         WHEN s.new_state IS NULL THEN 'unknown_status'
         WHEN s.expires_at <= s.import_now THEN 'expired'
         WHEN s.new_state <> 'awaiting_email' AND s.email_ok IS NOT TRUE THEN 'email_invalid'
    END AS skip_reason,
    CASE WHEN s.telegram_id <= 0 THEN format('telegram_id %s', s.telegram_id)
         WHEN s.new_state IS NULL
              THEN format('signup_state %L is none of awaiting_email, code_sent, magic_link_sent, completed', s.signup_state)
         WHEN s.expires_at <= s.import_now THEN format('expired at %s (the game deletes it too)', s.expires_at)
         ELSE format('email %L is not an address, needed in state %s', s.email, s.signup_state)
    END AS skip_detail,
    (SELECT coalesce(jsonb_agg(x), '[]') FROM unnest(ARRAY[
        CASE WHEN s.chat_id IS NULL THEN jsonb_build_object(
            'reason', 'no_chat_id', 'detail', 'no chat_id: imported as telegram_id (the private chat)') END,
        CASE WHEN s.new_state = 'awaiting_email' AND s.email_ok IS NOT TRUE THEN jsonb_build_object(
            'reason', 'email_invalid', 'detail', format('email %L: imported as NULL (still awaiting one)', s.email)) END,
        CASE WHEN s.signup_state = 'magic_link_sent' THEN jsonb_build_object(
            'reason', 'magic_link_not_carried',
            'detail', 'magic_link_sent: imported as awaiting_code; the link is not carried, the bot sends a code') END,
        CASE WHEN s.attempts IS NULL OR s.attempts NOT BETWEEN 0 AND 10 THEN jsonb_build_object(
            'reason', 'attempts_out_of_range', 'detail', format('attempts %s: clamped to 0..10', s.attempts)) END
    ]) x WHERE x IS NOT NULL) AS notes,
    s.telegram_id,
    coalesce(s.chat_id, s.telegram_id) AS chat_id,
    CASE WHEN s.email_ok THEN btrim(s.email) END AS email,
    s.new_state AS signup_state,
    least(greatest(coalesce(s.attempts, 0), 0), 10) AS attempts,
    s.expires_at,
    coalesce(s.created_at, s.import_now) AS created_at
FROM s;

BEGIN;
SELECT pg_temp.load('telegram_signup_sessions', 'map_signups', 'nikita.signup_sessions',
                    'telegram_id', 'conflict') AS signups;
COMMIT;
