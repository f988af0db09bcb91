-- Decay history: one score_history row per player per local day, updated in place by each
-- run of that day (docs/jobs.md "Decay history: one row per local day"), instead of one row per
-- hourly run (24 a day each).
--
-- decay_day: the player's local day the row covers (the run's last local day), set on the
-- 'decay' rows decay writes from now on; NULL on every other row and on the decay rows written
-- before this migration (they stay as they are: decay still reads them, so the day of the
-- upgrade is capped exactly). The unique index is what decay's INSERT ... ON CONFLICT finds
-- the day's row by; partial, so the other rows cost it nothing. Adding a NULL column rewrites
-- nothing; the index reads the table once (no decay row has a decay_day yet).
ALTER TABLE nikita.score_history ADD COLUMN decay_day date;

ALTER TABLE nikita.score_history ADD CONSTRAINT score_history_decay_day_decay
CHECK (decay_day IS NULL OR event_type = 'decay');

CREATE UNIQUE INDEX score_history_decay_day_key
ON nikita.score_history (user_id, decay_day)
WHERE decay_day IS NOT NULL;

COMMENT ON COLUMN nikita.score_history.decay_day IS
'Decay rows only: the player''s local day (users.timezone) this row sums, one row per player '
'and day, updated in place by every decay run that ends on that day (delta: the day''s '
'cumulative decay; score: the latest; recorded_at: the latest run). NULL on other rows and on '
'decay rows from before sql/0022 (one per run).';

-- A day's decay row sums the day's runs: a catch-up run (up to the whole score) and, should
-- the app raise the score the same day, up to the day's cap more. So its delta may pass -100;
-- every other row keeps -100 .. 100. Replaced, not widened from the catalog: no other
-- migration touches this constraint.
ALTER TABLE nikita.score_history DROP CONSTRAINT score_history_delta_range;
ALTER TABLE nikita.score_history ADD CONSTRAINT score_history_delta_range
CHECK (delta BETWEEN -100 AND 100 OR (decay_day IS NOT NULL AND delta < 0));
