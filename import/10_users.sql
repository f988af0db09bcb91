-- Section 1: the game's users -> nikita.users (ids kept). Needs 00_setup.sql in this session.
CREATE OR REPLACE TEMP VIEW map_users AS
WITH s AS (
    SELECT u.*, c.import_now,
           nullif(regexp_replace(coalesce(u.phone, ''), '[[:space:]().-]', '', 'g'), '') AS phone_clean,
           nullif(btrim(u.timezone), '') AS tz
    FROM :"src".users u CROSS JOIN pg_temp.import_ctx c
), n AS (
    SELECT s.*,
           CASE WHEN phone_clean LIKE '00%' THEN '+' || substr(phone_clean, 3)
                ELSE phone_clean END AS phone_norm,
           CASE WHEN s.onboarding_status IN ('pending', 'in_progress', 'completed', 'skipped')
                THEN s.onboarding_status
                WHEN s.onboarded_at IS NOT NULL THEN 'completed'
                ELSE 'pending' END AS onboarding
    FROM s
)
SELECT
    n.id::text AS src_key,
    row_number() OVER (ORDER BY n.created_at, n.id) AS ord,
    CASE WHEN n.game_status IS NULL
              OR n.game_status NOT IN ('active', 'boss_fight', 'game_over', 'won')
         THEN 'unknown_game_status' END AS skip_reason,
    format('game_status %s is none of active, boss_fight, game_over, won',
           coalesce(quote_literal(n.game_status), 'NULL')) AS skip_detail,
    (SELECT coalesce(jsonb_agg(x), '[]') FROM unnest(ARRAY[
        CASE WHEN n.telegram_id IS NULL OR n.telegram_id <= 0 THEN jsonb_build_object(
            'reason', 'no_telegram_id',
            'detail', format('telegram_id %s: imported without one, no Telegram message reaches '
                             'this player', coalesce(n.telegram_id::text, 'NULL'))) END,
        CASE WHEN n.phone_clean IS NULL THEN jsonb_build_object(
            'reason', 'no_phone', 'detail', 'no phone: imported without one, no call reaches this player') END,
        CASE WHEN n.phone_clean IS NOT NULL AND NOT nikita.is_e164(n.phone_norm) THEN jsonb_build_object(
            'reason', 'phone_not_e164', 'detail', format('phone %L is not E.164: imported as NULL', n.phone)) END,
        CASE WHEN n.tz IS NULL THEN jsonb_build_object(
            'reason', 'timezone_missing', 'detail', 'no timezone: imported as UTC') END,
        CASE WHEN n.tz IS NOT NULL AND NOT nikita.is_valid_timezone(n.tz) THEN jsonb_build_object(
            'reason', 'timezone_invalid', 'detail', format('timezone %L unknown: imported as UTC', n.timezone)) END,
        CASE WHEN n.chapter IS NULL OR n.chapter NOT BETWEEN 1 AND 5 THEN jsonb_build_object(
            'reason', 'chapter_out_of_range', 'detail', format('chapter %s: clamped to 1..5', n.chapter)) END,
        CASE WHEN n.relationship_score IS NULL OR n.relationship_score NOT BETWEEN 0 AND 100 THEN jsonb_build_object(
            'reason', 'score_out_of_range', 'detail', format('score %s: clamped to 0..100', n.relationship_score)) END,
        CASE WHEN n.onboarding_status IS DISTINCT FROM n.onboarding THEN jsonb_build_object(
            'reason', 'onboarding_status_unmapped',
            'detail', format('onboarding_status %s: imported as %s (from onboarded_at)',
                             coalesce(quote_literal(n.onboarding_status), 'NULL'), n.onboarding)) END,
        CASE WHEN NOT pg_temp.plausible(n.last_interaction_at) THEN jsonb_build_object(
            'reason', 'implausible_date',
            'detail', format('last_interaction_at %s: imported as NULL', n.last_interaction_at)) END,
        CASE WHEN NOT pg_temp.plausible(n.created_at) THEN jsonb_build_object(
            'reason', 'implausible_date', 'detail', format('created_at %s: imported as the import time', n.created_at)) END
    ]) x WHERE x IS NOT NULL) AS notes,
    n.id,
    CASE WHEN n.telegram_id > 0 THEN n.telegram_id END AS telegram_id,
    CASE WHEN nikita.is_e164(n.phone_norm) THEN n.phone_norm END AS phone,
    least(greatest(coalesce(n.chapter, 1), 1), 5)::smallint AS chapter,
    round(least(greatest(coalesce(n.relationship_score, 50), 0), 100), 2) AS relationship_score,
    n.game_status,
    n.onboarding AS onboarding_status,
    CASE WHEN nikita.is_valid_timezone(n.tz) THEN n.tz ELSE 'UTC' END AS timezone,
    coalesce(n.notifications_enabled, true) AS notifications_enabled,
    CASE WHEN pg_temp.plausible(n.last_interaction_at) THEN n.last_interaction_at END
        AS last_interaction_at,
    -- The game applied its own decay until now: ours starts from the import.
    n.import_now AS decayed_through,
    CASE WHEN pg_temp.plausible(n.created_at) THEN n.created_at ELSE n.import_now END AS created_at,
    coalesce(n.updated_at, n.import_now) AS updated_at
FROM n;

BEGIN;
SELECT pg_temp.load('users', 'map_users', 'nikita.users', 'id', 'telegram_id_taken') AS users;
COMMIT;
