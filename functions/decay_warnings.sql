-- Decay warnings (docs/jobs.md "Decay warnings"; setting decay_warnings, sql/0014).
--
--   nikita._decay_warning_thresholds()                the thresholds ("below"), ascending;
--                                                     NULL when there are none
--   nikita._queue_decay_warnings(p_now, users, below) one decay_warning message per player
--
-- _decay_tids (functions/decay_tids.sql) finds, in its one statement, each decayed player whose
-- score went from at least a threshold to under it and is not 0 (a game over sends only the
-- game-over message), keeping the lowest threshold crossed (a catch-up run crossing 40 and 30
-- says 30 only), then calls _queue_decay_warnings in the same transaction (one INSERT per
-- batch).
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
    v_at timestamptz;
    v_n integer;
BEGIN
    p_now := nikita._checked_now(p_now);  -- only the owner may move the clock (functions/clock.sql)
    -- One INSERT for the batch, not one schedule_event per player: a catch-up run can warn many
    -- players at once (bench/decay_bench.sh catch-up: 40 % of them, about 0.4 ms each through
    -- schedule_event, a 5.5 s transaction). What schedule_event would do is done here for the
    -- set:
    --   content   {text, chat_id}: each text passes the Telegram rules (_telegram_content, their
    --             one home) once per threshold; chat_id is users.telegram_id (CHECK > 0)
    --   due       p_now, or now() when p_now is older than max_lateness (as _schedule stores it)
    --   opt-out   stored cancelled with the reason (functions/notifications.sql); the rows are
    --             locked by the decay's UPDATE in this transaction, so a concurrent opt-out
    --             waits for it and its trigger then sees these events
    --   dedupe    ON CONFLICT on the live key: an existing live event is kept, none added
    -- A player without telegram_id gets no message (as for game_over).
    v_at := CASE
        WHEN p_now < pg_catalog.now() - interval '1 minute'
            AND p_now < pg_catalog.now() - nikita._setting_interval('max_lateness')
            THEN pg_catalog.now()
        ELSE p_now
    END;
    PERFORM nikita._telegram_content(
        pg_catalog.jsonb_build_object('text', a.value ->> 'text', 'chat_id', 1), NULL, NULL
    )
    FROM nikita.settings AS s, pg_catalog.jsonb_array_elements(s.value) AS a
    WHERE s.key = 'decay_warnings' AND (a.value ->> 'below')::numeric = ANY (p_below);

    INSERT INTO nikita.scheduled_events AS e (
        user_id, platform, event_type, content, scheduled_at, dedupe_key, status, last_error
    )
    SELECT
        u.id, 'telegram', 'decay_warning',
        pg_catalog.jsonb_build_object('text', w.text, 'chat_id', u.telegram_id),
        v_at,
        'decay_warning:' || u.id::text || ':' || pg_catalog.trim_scale(x.below)::text || ':'
        || pg_catalog.to_char(p_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        CASE WHEN u.notifications_enabled THEN 'pending' ELSE 'cancelled' END,
        CASE WHEN NOT u.notifications_enabled THEN nikita._opt_out_reason() END
    FROM unnest(p_users, p_below) AS x (user_id, below)  -- multi-argument: FROM syntax, unqualified
    JOIN nikita.users AS u ON u.id = x.user_id
    JOIN LATERAL (
        SELECT a.value ->> 'text' AS text
        FROM nikita.settings AS s, pg_catalog.jsonb_array_elements(s.value) AS a
        WHERE s.key = 'decay_warnings' AND (a.value ->> 'below')::numeric = x.below
        LIMIT 1
    ) AS w ON true
    WHERE u.telegram_id IS NOT NULL
    ON CONFLICT (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'sending')
    DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION nikita._queue_decay_warnings(timestamptz, uuid[], numeric[])
IS 'Internal: queue one decay_warning Telegram message (setting decay_warnings'' text for the '
'threshold) per player of p_users, due at p_now, dedupe key decay_warning:<user>:<below>:<p_now>, '
'in one INSERT with schedule_event''s rules (opted-out players stored cancelled); players '
'without telegram_id are left out. Returns how many were added. Called by _decay_tids.';

REVOKE EXECUTE ON FUNCTION nikita._decay_warning_thresholds(),
nikita._queue_decay_warnings(timestamptz, uuid[], numeric[]) FROM PUBLIC;
