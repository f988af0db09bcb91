-- Cheaper state changes on the delivery path: every event is claimed and completed.
--
-- Every state change of an event is a non-HOT update (status is indexed), so it writes the heap
-- and every index whose predicate the new version matches, and runs the row triggers. Measured
-- with EXPLAIN (ANALYZE, BUFFERS, WAL) on 100,000 due events: the UPDATE of a claim costs about
-- 25 µs a row, of which the touch trigger (a PL/pgSQL call per row) about 3-5 µs.
--
-- 1. The touch trigger runs only when the statement left updated_at alone: claim_events,
--    complete_event(s), fail_event, defer_event and the sweep set it themselves (to now(), what
--    the trigger would write), so the hot path skips a PL/pgSQL call per row; any other UPDATE
--    (an operator's, a future function's) is still stamped by the trigger.
-- 2. One partial index of in-flight rows instead of two: a claim wrote both
--    scheduled_events_sending_user_idx (user_id) and scheduled_events_sending_lease_idx
--    (locked_until). (user_id) INCLUDE (locked_until) serves the per-user in-flight checks of
--    claim_events/next_due_at as before; the sweep's lease scan reads the in-flight rows (as
--    many as the shims hold, at most a few thousand) through it once a minute.
-- 3. queue_try_claim_user() is gone: claim_events takes the advisory locks inline and checks
--    the locked users in a second statement (one fresh snapshot per claim instead of one per
--    candidate; see functions/claim_events.sql).
DROP TRIGGER scheduled_events_touch ON nikita.scheduled_events;
CREATE TRIGGER scheduled_events_touch BEFORE UPDATE ON nikita.scheduled_events
FOR EACH ROW WHEN (old.updated_at IS NOT DISTINCT FROM new.updated_at)
EXECUTE FUNCTION nikita.touch_updated_at();

CREATE INDEX scheduled_events_sending_idx ON nikita.scheduled_events (user_id)
INCLUDE (locked_until)
WHERE status = 'sending';
DROP INDEX nikita.scheduled_events_sending_user_idx;
DROP INDEX nikita.scheduled_events_sending_lease_idx;

-- (IF EXISTS: on a fresh install the functions/ files are applied after the migrations.)
DROP FUNCTION IF EXISTS nikita.queue_try_claim_user(uuid);
