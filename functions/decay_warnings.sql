-- Decay warnings (docs/jobs.md "Decay warnings"; setting decay_warnings, sql/0014).
--
--   nikita._decay_warning_thresholds()                the thresholds ("below"), ascending;
--                                                     NULL when there are none
--   nikita._queue_decay_warnings(p_now, users, below) one decay_warning message per player
--
-- _decay_tids (functions/decay_tids.sql) finds, in its one statement, each decayed player whose
-- score went from at least a threshold to under it and is not 0 (a game over sends only the
-- game-over message), keeping the lowest threshold crossed (a catch-up run crossing 40 and 30
-- says 30 only), then calls _queue_decay_warnings in the same transaction.
--
-- Armed again: a crossing is read from the decay's own before and after scores, so a threshold
-- fires again only after the score was back at or above it when a later decay began; no state
-- is kept. The dedupe key names the crossing: decay_warning:<user>:<below>:<p_now>.

CREATE OR REPLACE FUNCTION nikita._decay_warning_thresholds()
RETURNS numeric[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The table directly, not _setting: a missing row means no warnings, never a failed batch.
    SELECT pg_catalog.array_agg((w.value ->> 'below')::numeric ORDER BY (w.value ->> 'below')::numeric)
    FROM nikita.settings AS s, pg_catalog.jsonb_array_elements(s.value) AS w
    WHERE s.key = 'decay_warnings' AND pg_catalog.jsonb_typeof(s.value) = 'array'
$$;
COMMENT ON FUNCTION nikita._decay_warning_thresholds()
IS 'Internal: the "below" values of setting decay_warnings, ascending; NULL when none.';

CREATE OR REPLACE FUNCTION nikita._queue_decay_warnings(
    p_now timestamptz, p_users uuid[], p_below numeric[]
)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    -- A player without telegram_id gets no message (as for game_over); opted-out players are
    -- stored cancelled by schedule_event.
    SELECT count(nikita.schedule_event(
        u.id, 'telegram', 'decay_warning', pg_catalog.jsonb_build_object('text', w.text), p_now,
        'decay_warning:' || u.id::text || ':' || pg_catalog.trim_scale(x.below)::text || ':'
        || pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
    ))::integer
    INTO v_n
    FROM unnest(p_users, p_below) AS x (user_id, below)  -- multi-argument: FROM syntax, unqualified
    JOIN nikita.users AS u ON u.id = x.user_id
    JOIN LATERAL (
        SELECT a.value ->> 'text' AS text
        FROM nikita.settings AS s, pg_catalog.jsonb_array_elements(s.value) AS a
        WHERE s.key = 'decay_warnings' AND (a.value ->> 'below')::numeric = x.below
        LIMIT 1
    ) AS w ON true
    WHERE u.telegram_id IS NOT NULL;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION nikita._queue_decay_warnings(timestamptz, uuid[], numeric[])
IS 'Internal: queue one decay_warning Telegram message (setting decay_warnings'' text for the '
'threshold) per player of p_users, due at p_now, dedupe key decay_warning:<user>:<below>:<p_now>; '
'players without telegram_id are left out. Returns how many were queued. Called by _decay_tids.';

REVOKE EXECUTE ON FUNCTION nikita._decay_warning_thresholds(),
nikita._queue_decay_warnings(timestamptz, uuid[], numeric[]) FROM PUBLIC;
