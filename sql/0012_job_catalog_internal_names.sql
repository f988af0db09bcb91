-- Job names have one home, the catalog view nikita.job_catalog (functions/job_catalog.sql):
-- adding a job is one catalog row and one function file, no migration. 0001's CHECK listed the
-- names a second time; it now asks the catalog. The constraint keeps its name (and its error).
--
-- A CHECK that reads a view: PostgreSQL re-checks a row only when it is written, so a job
-- removed from the catalog leaves its history rows valid, which is what history wants.
-- plpgsql, so that the body (which names the view, created after the migrations by
-- functions/job_catalog.sql) is resolved when it first runs, not here.
CREATE FUNCTION nikita._is_job_name(p_name text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM nikita.job_catalog AS c WHERE c.job_name = p_name);
END
$$;
COMMENT ON FUNCTION nikita._is_job_name(text)
IS 'Internal (CHECK job_executions_job_name_valid): p_name is a job of nikita.job_catalog.';
REVOKE EXECUTE ON FUNCTION nikita._is_job_name(text) FROM PUBLIC;

ALTER TABLE nikita.job_executions DROP CONSTRAINT job_executions_job_name_valid;
ALTER TABLE nikita.job_executions ADD CONSTRAINT job_executions_job_name_valid
CHECK (nikita._is_job_name(job_name));

-- Internal functions are marked by a leading underscore (docs/development.md, "Migration or
-- function change?"):
-- nikita._x is called only by the package's own functions, triggers and constraints and is
-- granted to nobody (the jobs role: run_job's internals). Renamed in place, so that the
-- constraints and triggers that call them (by oid) keep working and the grants stay; the
-- function files then replace each body under its new name. On a fresh install the files
-- create them (only the two made by migrations exist here). Kept, with their reason:
--   is_blank, is_setting_value    a body of sql/0009 (check_setting_value) calls them by name
--   is_e164, is_valid_timezone,   granted to nikita_app: a CHECK runs with the writer's rights
--   timezone_name_listed          (sql/0008); part of what the app executes
--   current_user_id               the row level security policies' public function
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT v.sig, v.new_name FROM (VALUES
        ('queue_job_alert(text,text,timestamptz)', '_job_alert'),
        ('job_lock_key(text)', '_job_lock_key'),
        ('job_record_skipped(text)', '_job_record_skipped'),
        ('job_record_start(text)', '_job_record_start'),
        ('job_record_end(bigint,jsonb,text)', '_job_record_end'),
        ('job_lock_class()', '_job_lock_class'),
        ('decay_tids(timestamptz,tid,tid)', '_decay_tids'),
        ('decay_batch_pages()', '_decay_batch_pages'),
        ('queue_backoff(integer)', '_backoff'),
        ('queue_warn_lease_lost(text,uuid,text)', '_warn_lease_lost'),
        ('queue_iso8601(timestamptz)', '_iso8601'),
        ('queue_notify_inserted()', '_notify_inserted'),
        ('queue_notify_updated()', '_notify_updated'),
        ('queue_first_claimable(timestamptz,timestamptz)', '_first_claimable'),
        ('queue_check_optional_key(jsonb,text,text,text)', '_check_optional_key'),
        ('queue_check_reply_markup(jsonb)', '_check_reply_markup'),
        ('queue_too_deep_member(jsonb)', '_too_deep_member'),
        ('queue_schedule(uuid,text,text,jsonb,timestamptz,text,uuid)', '_schedule'),
        ('checked_now(timestamptz)', '_checked_now'),
        ('touch_updated_at()', '_touch_updated_at'),
        ('check_setting_value(text,text,jsonb)', '_check_setting_value'),
        ('setting(text)', '_setting'),
        ('setting_interval(text)', '_setting_interval'),
        ('setting_bigint(text)', '_setting_bigint'),
        ('setting_text(text)', '_setting_text'),
        ('conversation_max_attempts()', '_conversation_max_attempts')
        ) AS v (sig, new_name)
    LOOP
        IF pg_catalog.to_regprocedure('nikita.' || r.sig) IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER FUNCTION nikita.%s RENAME TO %I', r.sig, r.new_name);
        END IF;
    END LOOP;
END
$$;
