-- The per-user order check of claim_events ("is there an older pending event of this user?")
-- as one index probe: (user_id, scheduled_at, id) among pending rows, searched with a row
-- comparison. scheduled_events_user_idx (user_id, status) would visit every pending row of the
-- user and its heap tuple instead.
CREATE INDEX scheduled_events_user_pending_idx
ON nikita.scheduled_events (user_id, scheduled_at, id)
WHERE status = 'pending' AND user_id IS NOT NULL;
