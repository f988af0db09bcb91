-- The summary of this run: what was skipped or changed, one row per table, reason and action.
-- The rows themselves: SELECT * FROM nikita_import.report WHERE last_run = <run>.
SELECT r.source_table, r.reason, r.action, count(*) AS rows
FROM nikita_import.report r JOIN pg_temp.import_ctx c ON r.last_run = c.run_id
GROUP BY r.source_table, r.reason, r.action
ORDER BY r.source_table, r.action, r.reason;
