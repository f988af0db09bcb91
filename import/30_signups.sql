-- Section 3: the game's pending Telegram registrations -> nikita.signup_sessions, keyed by
-- telegram_id (the game's key). The game renamed pending_registrations to
-- telegram_signup_sessions (migration 20260424120000): either is read, the old states mapped
-- as that migration's new domain (pending -> awaiting_email, verified -> completed; expired
-- rows are skipped as expired).
SELECT to_regclass(format('%I.telegram_signup_sessions', :'src')) IS NOT NULL AS has_sessions,
       to_regclass(format('%I.pending_registrations', :'src')) IS NOT NULL AS has_registrations
\gset
\if :has_sessions
\set signup_source telegram_signup_sessions
CREATE OR REPLACE TEMP VIEW src_signups AS
SELECT telegram_id, email::text AS email, chat_id,
       signup_state::text AS signup_state, attempts, created_at, expires_at
FROM :"src".telegram_signup_sessions;
\elif :has_registrations
\set signup_source pending_registrations
CREATE OR REPLACE TEMP VIEW src_signups AS
SELECT telegram_id, email::text AS email, chat_id,
       CASE otp_state WHEN 'pending' THEN 'awaiting_email' WHEN 'verified' THEN 'completed'
            WHEN 'expired' THEN 'expired' ELSE otp_state END AS signup_state,
       otp_attempts AS attempts, created_at, expires_at
FROM :"src".pending_registrations;
\else
\set signup_source none
\echo 'import: no telegram_signup_sessions nor pending_registrations in schema' :src ', nothing to import'
CREATE OR REPLACE TEMP VIEW src_signups AS
SELECT NULL::bigint AS telegram_id, NULL::text AS email, NULL::bigint AS chat_id,
       NULL::text AS signup_state, NULL::integer AS attempts, NULL::timestamptz AS created_at,
       NULL::timestamptz AS expires_at
WHERE false;
\endif
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
    FROM pg_temp.src_signups r CROSS JOIN pg_temp.import_ctx c
)
SELECT
    s.telegram_id::text AS src_key,
    row_number() OVER (ORDER BY s.created_at, s.telegram_id) AS ord,
    CASE WHEN s.telegram_id <= 0 THEN 'telegram_id_not_positive'
         WHEN s.signup_state = 'expired' OR s.expires_at <= s.import_now THEN 'expired'
         WHEN s.new_state IS NULL THEN 'unknown_status'
         WHEN s.new_state <> 'awaiting_email' AND s.email_ok IS NOT TRUE THEN 'email_invalid'
    END AS skip_reason,
    CASE WHEN s.telegram_id <= 0 THEN format('telegram_id %s', s.telegram_id)
         WHEN s.signup_state = 'expired' OR s.expires_at <= s.import_now
              THEN format('expired at %s (the game deletes it too)', s.expires_at)
         WHEN s.new_state IS NULL
              THEN format('signup_state %L is none of awaiting_email, code_sent, magic_link_sent, completed', s.signup_state)
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
SELECT pg_temp.load(:'signup_source', 'map_signups', 'nikita.signup_sessions',
                    'telegram_id', 'conflict') AS signups;
COMMIT;
