"""Every SQL statement the shim sends, by name: the shim's whole contract with the database.

Only the public API of docs/queue.md is called (functions granted to nikita_worker, the health
views). Columns are named (`AS`) where a row is read by name (psycopg row factories in
queue.py, conversation_store.py, summary_store.py and health.py); a statement returning one
value is read as a scalar. Placeholders are psycopg's `%s`, bound positionally in the order
written here.
"""

from __future__ import annotations

from typing import Final

# ---- connection ------------------------------------------------------------------------------

# The functions the shim cannot run without (exit 3 when one is missing: not migrated).
REQUIRED_FUNCTIONS: Final = (
    "nikita.claim_events(text,integer,interval,integer)",
    "nikita.complete_events(uuid[],uuid[],text[])",
    "nikita.fail_event(uuid,uuid,text,boolean)",
    "nikita.defer_event(uuid,uuid,timestamptz)",
    "nikita.next_due_at()",
)
# (required functions text[]) -> one row per missing function
MISSING_FUNCTIONS: Final = (
    "SELECT f AS missing FROM unnest(%s::text[]) AS f WHERE to_regprocedure(f) IS NULL"
)

# ---- event queue -----------------------------------------------------------------------------

# (worker, max, lease seconds, max voice events or NULL) -> ClaimedEvent columns.
# content as text: each row is decoded on its own (events.decode_event), so a row that cannot
# be decoded fails alone instead of failing the whole claim.
CLAIM_EVENTS: Final = (
    "SELECT id, lock_token, user_id, platform, event_type, content::text AS content,"
    " scheduled_at, attempts"
    " FROM nikita.claim_events(%s, %s, make_interval(secs => %s), %s)"
)
# (ids, lock tokens, provider refs) -> number completed (the others lost their lease)
COMPLETE_EVENTS: Final = "SELECT nikita.complete_events(%s::uuid[], %s::uuid[], %s::text[])"
# (id, lock token, error, retryable) -> new status, NULL when the lease was lost
FAIL_EVENT: Final = "SELECT nikita.fail_event(%s, %s, %s, %s)"
# (id, lock token, delay seconds) -> deferred (false: lease lost); no attempt consumed
DEFER_EVENT: Final = "SELECT nikita.defer_event(%s, %s, now() + make_interval(secs => %s))"
# () -> seconds to the earliest pending event (NULL: none) and the database clock, both read
# from clock_timestamp() so that the shim can correct its own clock
NEXT_DUE: Final = (
    "SELECT extract(epoch FROM nikita.next_due_at() - clock_timestamp())::float8 AS due_in_s,"
    " extract(epoch FROM clock_timestamp())::float8 AS db_now"
)
# () -> jsonb counts
SWEEP_EVENTS: Final = "SELECT nikita.sweep_events()"

# ---- conversations ---------------------------------------------------------------------------

# (worker, max, lease seconds) -> Conversation columns
CLAIM_CONVERSATIONS: Final = (
    "SELECT id, lock_token, user_id, platform, started_at, ended_at, processing_attempts"
    " FROM nikita.claim_conversations(%s, %s, make_interval(secs => %s))"
)
# (id, lock token, summary, emotional tone) -> recorded (false: lease lost)
COMPLETE_CONVERSATION: Final = "SELECT nikita.complete_conversation(%s, %s, %s, %s)"
# (id, lock token, error) -> new status, NULL when the lease was lost
FAIL_CONVERSATION: Final = "SELECT nikita.fail_conversation(%s, %s, %s)"

# ---- daily summaries (optional writer, summaries.py) -----------------------------------------

# (worker, max, lease seconds) -> SummaryDay columns
CLAIM_SUMMARIES: Final = (
    "SELECT id, lock_token, user_id, date, timezone, day_start, day_end, score_start,"
    " score_end, decay_applied, conversations_count, summary_text, chapter, game_status,"
    " writer_attempts"
    " FROM nikita.claim_summaries(%s, %s, make_interval(secs => %s))"
)
# (id, lock token, text, emotional tone) -> recorded (false: lease lost)
COMPLETE_SUMMARY: Final = "SELECT nikita.complete_summary(%s, %s, %s, %s)"
# (id, lock token, error, retryable) -> new state, NULL when the lease was lost
FAIL_SUMMARY: Final = "SELECT nikita.fail_summary(%s, %s, %s, %s)"

# ---- health ----------------------------------------------------------------------------------

# every column of the views, by name (status tables, check, metrics)
QUEUE_HEALTH: Final = "SELECT * FROM nikita.queue_health ORDER BY 1"
JOB_HEALTH: Final = "SELECT * FROM nikita.job_health ORDER BY 1"

# ---- operator API (admin_cli.py; functions/admin_*.sql, role nikita_ops) ----------------------

# (user, status, type, from, to, limit, with_text) -> find_events rows; times and ids are cast
# by PostgreSQL, so a bad value is its error (22P02, 22007, ...), reported as bad input.
FIND_EVENTS: Final = (
    "SELECT * FROM nikita.find_events(%s::uuid, %s, %s, %s::timestamptz, %s::timestamptz, %s, %s)"
)
# (id, with_text) -> one row with errors (P0002: no such event)
SHOW_EVENT: Final = "SELECT * FROM nikita.show_event(%s::uuid, %s)"
# (id, due time or NULL) -> the due time (P0002, 55000 not failed, 23505 dedupe key in use)
RETRY_EVENT: Final = "SELECT nikita.retry_event(%s::uuid, %s::timestamptz) AS due_at"
# (user or NULL, type or NULL) -> number cancelled
CANCEL_PENDING_EVENTS: Final = "SELECT nikita.cancel_pending_events(%s::uuid, %s) AS cancelled"
# () -> the job catalog
LIST_JOBS: Final = "SELECT * FROM nikita.list_jobs()"
# (job, status, from, to, limit) -> job_executions rows
LIST_JOB_RUNS: Final = (
    "SELECT * FROM nikita.list_job_runs(%s, %s, %s::timestamptz, %s::timestamptz, %s)"
)
# (job) -> its job_executions row: completed, failed or skipped
RUN_JOB_NOW: Final = "SELECT * FROM nikita.run_job_now(%s)"

# ---- dashboard (dashboard.py; nikita_ops, plus nikita_readonly for QUEUE_HEALTH) --------------

# () -> the database clock, shown as the page's time
DASHBOARD_NOW: Final = "SELECT now() AS now"
# (lag seconds, lag seconds) -> pending events due more than lag ago (at most 1,000 counted):
# asked for before now - lag (order_time <= scheduled_at) and due before it
DASHBOARD_LATE: Final = (
    "SELECT count(*) AS late FROM nikita.find_events(NULL::uuid, 'pending', NULL::text,"
    " NULL::timestamptz, now() - make_interval(secs => %s), 1000, false)"
    " WHERE scheduled_at <= now() - make_interval(secs => %s)"
)
# () -> pending events due now (at most 1,000), when QUEUE_HEALTH is not readable
DASHBOARD_DUE: Final = (
    "SELECT count(*) AS due FROM nikita.find_events(NULL::uuid, 'pending', NULL::text,"
    " NULL::timestamptz, now(), 1000, false) WHERE scheduled_at <= now()"
)
