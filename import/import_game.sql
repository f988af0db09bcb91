-- Import the running game (its tables in schema :src, default public) into nikita.*.
--   psql -X -v ON_ERROR_STOP=1 [-v src=public] -d "$DATABASE_URL" -f import/import_game.sql
-- Run as the owner of schema nikita, after scripts/migrate.sh. Idempotent: rows already
-- imported are left alone, so a re-run, or a run after a partial one, adds only what is
-- missing. Each section is its own transaction. What could not be mapped is reported
-- (NOTICE lines, the table nikita_import.report, the summary at the end), never fatal.
-- The mapping, column by column: docs/import.md.
\set ON_ERROR_STOP 1
\ir 00_setup.sql
\ir 10_users.sql
\ir 20_conversations.sql
\ir 30_signups.sql
\ir 40_events.sql
\ir 90_summary.sql
