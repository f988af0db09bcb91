-- The wake-up hint of the event queue: one NOTIFY nikita_events per statement that adds pending
-- rows (new, re-queued or rescheduled), whose payload is the earliest scheduled_at of those rows
-- in ISO 8601 UTC. A statement that adds no pending row sends nothing. NOTIFY is a hint; the
-- shim also sleeps until next_due_at() and polls.

CREATE OR REPLACE FUNCTION nikita._notify_inserted()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
-- @plpgsql_check_options: newtable = new_rows
DECLARE
    v_at timestamptz;
BEGIN
    SELECT min(n.scheduled_at) INTO v_at FROM new_rows AS n WHERE n.status = 'pending';
    IF v_at IS NOT NULL THEN
        PERFORM pg_catalog.pg_notify('nikita_events', nikita._iso8601(v_at));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION nikita._notify_inserted()
IS 'Trigger (AFTER INSERT, statement): NOTIFY nikita_events with the earliest new pending time.';
REVOKE EXECUTE ON FUNCTION nikita._notify_inserted() FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita._notify_updated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
-- @plpgsql_check_options: oldtable = old_rows, newtable = new_rows
DECLARE
    v_at timestamptz;
BEGIN
    -- Re-queued (sending -> pending) or rescheduled pending rows. Claims, completions and
    -- cancellations produce no pending row, so they notify nobody.
    SELECT min(n.scheduled_at) INTO v_at
    FROM new_rows AS n
    JOIN old_rows AS o ON o.id = n.id
    WHERE n.status = 'pending'
      AND (o.status <> 'pending' OR o.scheduled_at <> n.scheduled_at);
    IF v_at IS NOT NULL THEN
        PERFORM pg_catalog.pg_notify('nikita_events', nikita._iso8601(v_at));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION nikita._notify_updated()
IS 'Trigger (AFTER UPDATE, statement): NOTIFY nikita_events for re-queued/rescheduled rows.';
REVOKE EXECUTE ON FUNCTION nikita._notify_updated() FROM PUBLIC;

-- PostgreSQL allows transition tables only on single-event triggers: one per event.
CREATE OR REPLACE TRIGGER scheduled_events_notify_insert
AFTER INSERT ON nikita.scheduled_events
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION nikita._notify_inserted();

CREATE OR REPLACE TRIGGER scheduled_events_notify_update
AFTER UPDATE ON nikita.scheduled_events
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION nikita._notify_updated();
