-- Per-user order as a guarantee (docs/queue.md, "Per-user order").
--
-- A user's events go out in the order the app asked for: (scheduled_at, then creation order),
-- also across retries, defers, lease expiry and restarts. claim_events takes only a user's head
-- (the first pending event in that order, not past max_lateness) and only when the head is
-- due; see docs/queue.md, "Per-user order".
--
-- 1. seq: a creation sequence. Two events queued in one transaction share now() as their
--    scheduled_at; the tie used to be broken by the random uuid. An identity column is
--    monotonic in the order the rows were inserted (within a session; across sessions in the
--    order nextval ran). Existing rows are numbered in physical order, the closest record of
--    their insertion order there is (this rewrites the table once).
-- 2. order_at: scheduled_at keeps its meaning "due at" (what claims, lateness, NOTIFY and
--    next_due_at read), and retries and defers keep moving it. The time the app asked for is
--    kept in order_at when the queue first moves scheduled_at; NULL means "scheduled_at has
--    not moved" (so schedule_event and an app's own UPDATE of a pending row need not know about
--    it). The order key is (coalesce(order_at, scheduled_at), seq).
-- 3. scheduled_events_user_order_idx replaces scheduled_events_user_pending_idx (0003) for the
--    head probe: one index-only probe per candidate, as before.
-- 4. scheduled_events_claim_voice_idx: the pending voice rows alone, for a claim capped by
--    p_max_voice (the shim's free call slots), so that finding the few due calls does not read
--    every due message.
ALTER TABLE nikita.scheduled_events
ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
ADD COLUMN order_at timestamptz;
COMMENT ON COLUMN nikita.scheduled_events.seq
IS 'Creation order (identity): breaks ties of the per-user order key.';
COMMENT ON COLUMN nikita.scheduled_events.order_at
IS 'The scheduled_at the app asked for, kept when a retry or defer first moves scheduled_at; '
'NULL while scheduled_at has not moved. Order key: (coalesce(order_at, scheduled_at), seq).';

CREATE INDEX scheduled_events_user_order_idx
ON nikita.scheduled_events (user_id, (coalesce(order_at, scheduled_at)), seq)
INCLUDE (scheduled_at, order_at)
WHERE status = 'pending' AND user_id IS NOT NULL;
DROP INDEX nikita.scheduled_events_user_pending_idx;

CREATE INDEX scheduled_events_claim_voice_idx ON nikita.scheduled_events (scheduled_at)
WHERE status = 'pending' AND platform = 'voice';
