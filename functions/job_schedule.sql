-- Schedules are operator data: nikita.set_job_schedule and
-- nikita.set_job_enabled record the operator's choice in nikita.cron_jobs (sql/0017), which
-- cron/schedule.sql reads on every migrate, and apply it to pg_cron at once where they can:
-- when pg_cron lives in this database. When it lives in another database of the cluster
-- (managed services), SQL here cannot reach it: the change is recorded, a NOTICE says so, and
-- the next `scripts/migrate.sh` (or `make cron`) applies it.
-- Granted to the owner (implicitly) and to nikita_ops when that role exists (sql/0020 creates
-- it): the grant below is re-run by every migrate, so it lands once the role is there.

-- Why a schedule is refused, or NULL: the 5-field syntax pg_cron 1.4 accepts (no seconds
-- field, which came with 1.5): per field a comma list of `*`, N or N-M (names jan..dec,
-- sun..sat allowed in the month and weekday fields), `*` and ranges optionally /STEP; or one
-- of the macros @hourly @daily @midnight @weekly @monthly @yearly @annually.
CREATE OR REPLACE FUNCTION nikita._cron_schedule_error(p_schedule text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_names constant text[] := ARRAY['minute', 'hour', 'day of month', 'month', 'day of week'];
    c_lo constant integer[] := ARRAY[0, 0, 1, 1, 0];
    c_hi constant integer[] := ARRAY[59, 23, 31, 12, 7];
    c_months constant text[] := ARRAY[
        'jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'
    ];
    c_days constant text[] := ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    v_fields text[];
    v_item text;
    v_m text[];
    v_bound integer[];
    v_tok text;
    v_n integer;
BEGIN
    IF p_schedule IS NULL OR pg_catalog.btrim(p_schedule) = '' THEN
        RETURN 'the schedule is empty';
    END IF;
    IF pg_catalog.lower(pg_catalog.btrim(p_schedule)) IN (
        '@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually'
    ) THEN
        RETURN NULL;
    END IF;
    v_fields := pg_catalog.regexp_split_to_array(pg_catalog.btrim(p_schedule), '\s+');
    IF pg_catalog.cardinality(v_fields) <> 5 THEN
        RETURN pg_catalog.format(
            'a schedule has 5 fields (minute hour day-of-month month day-of-week), not %s'
            ' (pg_cron 1.4 has no seconds field)',
            pg_catalog.cardinality(v_fields)
        );
    END IF;
    FOR i IN 1..5 LOOP
        FOREACH v_item IN ARRAY pg_catalog.string_to_array(v_fields[i], ',') LOOP
            v_m := pg_catalog.regexp_match(
                v_item, '^(?:(\*)|([0-9]+|[a-z]{3})(?:-([0-9]+|[a-z]{3}))?)(?:/([0-9]+))?$', 'i'
            );
            -- A single value takes no step (pg_cron: "5/10" is an error).
            IF v_m IS NULL OR (v_m[4] IS NOT NULL AND v_m[1] IS NULL AND v_m[3] IS NULL) THEN
                RETURN pg_catalog.format('%s field: "%s" is not *, N, N-M or */S, N-M/S',
                    c_names[i], v_item);
            END IF;
            v_bound := ARRAY[]::integer[];
            FOREACH v_tok IN ARRAY ARRAY[v_m[2], v_m[3]] LOOP
                CONTINUE WHEN v_tok IS NULL;
                IF v_tok ~ '^[0-9]+$' THEN
                    v_n := CASE WHEN pg_catalog.length(v_tok) > 4 THEN -1 ELSE v_tok::integer END;
                ELSIF i = 4 THEN
                    v_n := pg_catalog.array_position(c_months, pg_catalog.lower(v_tok));
                ELSIF i = 5 THEN
                    v_n := pg_catalog.array_position(c_days, pg_catalog.lower(v_tok)) - 1;
                ELSE
                    v_n := NULL;
                END IF;
                IF v_n IS NULL OR v_n < c_lo[i] OR v_n > c_hi[i] THEN
                    RETURN pg_catalog.format('%s field: "%s" is not in %s-%s',
                        c_names[i], v_tok, c_lo[i], c_hi[i]);
                END IF;
                v_bound := v_bound || v_n;
            END LOOP;
            IF pg_catalog.cardinality(v_bound) = 2 AND v_bound[1] > v_bound[2] THEN
                RETURN pg_catalog.format('%s field: range "%s" runs backwards', c_names[i], v_item);
            END IF;
            IF v_m[4] IS NOT NULL AND (pg_catalog.length(v_m[4]) > 4 OR v_m[4]::integer = 0
                OR v_m[4]::integer > c_hi[i]) THEN
                RETURN pg_catalog.format('%s field: step "%s" is not in 1-%s',
                    c_names[i], v_m[4], c_hi[i]);
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION nikita._cron_schedule_error(text) FROM PUBLIC;

-- Apply a job's recorded setting to pg_cron when pg_cron's jobs are in this database; say
-- what happened otherwise. Dynamic SQL, the schema name a variable: schema cron may not exist
-- here (nor where plpgsql_check lints).
CREATE OR REPLACE FUNCTION nikita._cron_job_apply(p_job text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_cron constant text := 'cron';
    v_row record;
    v_found boolean;
BEGIN
    SELECT
        j.cron_job_id, j.cron_database, j.enabled,
        coalesce(j.schedule, c.schedule) AS schedule
    INTO v_row
    FROM nikita.cron_jobs AS j
    JOIN nikita.job_catalog AS c ON c.job_name = j.job_name
    WHERE j.job_name = p_job;
    IF v_row.cron_job_id IS NULL THEN
        RAISE NOTICE 'job % is not scheduled in pg_cron: the setting is recorded and the next '
            'migrate applies it', p_job;
        RETURN;
    END IF;
    IF v_row.cron_database <> pg_catalog.current_database()
        OR pg_catalog.to_regclass('cron.job') IS NULL THEN
        RAISE NOTICE 'pg_cron keeps job % in database %: the setting is recorded; run '
            'scripts/migrate.sh (or make cron) to apply it', p_job, v_row.cron_database
            USING HINT = 'see docs/install.md, "pg_cron in another database"';
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %I.job WHERE jobid = $1)', c_cron)
    INTO v_found USING v_row.cron_job_id;
    IF NOT v_found THEN
        RAISE NOTICE 'pg_cron job % (%) is gone: the setting is recorded and the next migrate '
            'schedules it', v_row.cron_job_id, p_job;
        RETURN;
    END IF;
    -- A role without EXECUTE on cron.alter_job (pg_cron revokes it from PUBLIC), or no
    -- superuser changing another role's job: keep the recorded setting, say so.
    BEGIN
        EXECUTE pg_catalog.format('SELECT %I.alter_job($1, schedule => $2, active => $3)', c_cron)
        USING v_row.cron_job_id, v_row.schedule, v_row.enabled;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'pg_cron refused to change job % (%): the setting is recorded; run '
            'scripts/migrate.sh as a role that may (a superuser) to apply it', p_job, SQLERRM;
    END;
END
$$;
REVOKE ALL ON FUNCTION nikita._cron_job_apply(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita.set_job_schedule(p_job text, p_schedule text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default text;
    v_error text;
BEGIN
    SELECT c.schedule INTO v_default FROM nikita.job_catalog AS c WHERE c.job_name = p_job;
    IF v_default IS NULL THEN
        RAISE EXCEPTION 'unknown job "%"', p_job USING ERRCODE = '22023',
            HINT = 'the jobs are listed in nikita.job_catalog';
    END IF;
    IF p_schedule IS NOT NULL THEN
        v_error := nikita._cron_schedule_error(p_schedule);
        IF v_error IS NOT NULL THEN
            RAISE EXCEPTION 'invalid schedule "%" for job %: %', p_schedule, p_job, v_error
                USING ERRCODE = '22023';
        END IF;
    END IF;
    INSERT INTO nikita.cron_jobs AS j (job_name, schedule)
    VALUES (p_job, pg_catalog.btrim(p_schedule))
    ON CONFLICT (job_name) DO UPDATE SET schedule = excluded.schedule, updated_at = now();
    PERFORM nikita._cron_job_apply(p_job);
    RETURN coalesce(pg_catalog.btrim(p_schedule), v_default);
END
$$;
COMMENT ON FUNCTION nikita.set_job_schedule(text, text) IS
'Set a job''s pg_cron schedule (5 fields, UTC; NULL = the catalog''s default); returns the '
'schedule in effect. Applied to pg_cron at once when it lives in this database, and by every '
'later migrate. 22023: unknown job, invalid schedule.';
REVOKE ALL ON FUNCTION nikita.set_job_schedule(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION nikita.set_job_enabled(p_job text, p_enabled boolean)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM nikita.job_catalog AS c WHERE c.job_name = p_job) THEN
        RAISE EXCEPTION 'unknown job "%"', p_job USING ERRCODE = '22023',
            HINT = 'the jobs are listed in nikita.job_catalog';
    END IF;
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must be true or false' USING ERRCODE = '22023';
    END IF;
    INSERT INTO nikita.cron_jobs AS j (job_name, enabled)
    VALUES (p_job, p_enabled)
    ON CONFLICT (job_name) DO UPDATE SET enabled = excluded.enabled, updated_at = now();
    PERFORM nikita._cron_job_apply(p_job);
    RETURN p_enabled;
END
$$;
COMMENT ON FUNCTION nikita.set_job_enabled(text, boolean) IS
'Enable or disable a job''s pg_cron job (job_health shows it disabled, never overdue). Applied '
'to pg_cron at once when it lives in this database, and by every later migrate. 22023: unknown '
'job, NULL.';
REVOKE ALL ON FUNCTION nikita.set_job_enabled(text, boolean) FROM PUBLIC;

-- nikita_ops (sql/0020) may not exist yet: grant once it does.
DO $$
BEGIN
    IF pg_catalog.to_regrole('nikita_ops') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION nikita.set_job_schedule(text, text),
            nikita.set_job_enabled(text, boolean) TO nikita_ops;
    END IF;
END
$$;
