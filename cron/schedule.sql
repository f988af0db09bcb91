-- Schedule the package's jobs in pg_cron (times are UTC: cron.timezone = 'UTC').
-- Run by scripts/cron.sh (scripts/migrate.sh calls it) in ONE transaction in the database where
-- pg_cron lives: the game's database, or another database of the cluster (cron.database_name,
-- `postgres` on RDS, Cloud SQL, Azure, Neon), from where the jobs are scheduled INTO the game's
-- database with cron.schedule_in_database. psql variables:
--   target_db  the game's database
--   jobs       JSON array, one object per job the package wants or recorded (cron/wanted.sql,
--              read in the game's database): job_name, cron_name, schedule, command, active,
--              cron_job_id (recorded, or null), keep (false: recorded, no longer in the catalog)
-- It prints one line, a JSON array of {job_name, cron_job_id} (null: removed), which
-- cron/record.sql writes to nikita.cron_jobs in the game's database.
--
-- Which jobs it touches (it coexists with the game's own jobs, some named nikita-*):
--   * the job whose id nikita.cron_jobs records, if it still exists in target_db;
--   * else a job an earlier version scheduled: the catalog's name, in target_db, with the
--     package's exact command `CALL nikita.run_job('<job>')`; it is adopted (same job id);
--   * else a new job. pg_cron upserts a named job by (name, role): a job of that name and role
--     that is none of the above belongs to someone else, and the run stops (42710) rather than
--     overwrite it.
-- Any other copy of the package's exact command under the catalog's name in target_db (an earlier
-- version's job of another role) is removed: it would run the job twice. Nothing else is.
--
-- Who runs the jobs: pg_cron runs a job as the role that scheduled it (cron.job.username). Only
-- a superuser may schedule a job for another role, so:
--   * run by a superuser, and the jobs role nikita_jobs (sql/0011_jobs_role.sql) exists, may
--     log in and is no superuser: every job runs as nikita_jobs (a job of another role is moved
--     to it with cron.alter_job(username => ...), keeping its id);
--   * otherwise (a managed platform's admin role, which is no superuser): the jobs run as the
--     role running this file, and a NOTICE says so (docs/install.md, "Security model").
-- Every job is `CALL nikita.run_job('<name>')`: a procedure that commits as it goes, which is
-- why pg_cron must send it alone, outside any transaction block (it does).

SELECT
    set_config('nikita.cron_target', :'target_db', true) AS target_db,
    set_config('nikita.cron_wanted', :'jobs', true) AS jobs,
    set_config('nikita.cron_result', '[]', true) AS result;

DO $$
DECLARE
    v_target text := current_setting('nikita.cron_target');
    v_super boolean;
    v_role record;
    v_runner text;
    v_job record;
    v_id bigint;
    v_other record;
    v_result jsonb := '[]';
BEGIN
    SELECT r.rolsuper INTO v_super FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user;
    SELECT r.rolcanlogin, r.rolsuper INTO v_role
    FROM pg_catalog.pg_roles AS r WHERE r.rolname = 'nikita_jobs';

    IF v_role IS NULL OR NOT v_role.rolcanlogin OR v_role.rolsuper THEN
        v_runner := current_user;
        RAISE WARNING 'the role nikita_jobs is missing, cannot log in or is a superuser: the '
            'nikita jobs run as %', current_user
            USING HINT = 'see docs/install.md, "Security model"';
    ELSIF NOT v_super THEN
        v_runner := current_user;
        RAISE NOTICE 'only a superuser can schedule pg_cron jobs for another role: the nikita '
            'jobs run as %, not as nikita_jobs', current_user
            USING HINT = 'run scripts/migrate.sh as a superuser, or see docs/install.md, '
                '"Security model"';
    ELSE
        v_runner := 'nikita_jobs';
    END IF;

    FOR v_job IN
        SELECT *
        FROM jsonb_to_recordset(current_setting('nikita.cron_wanted')::jsonb) AS w (
            job_name text, cron_name text, schedule text, command text, active boolean,
            cron_job_id bigint, keep boolean
        )
        ORDER BY w.job_name
    LOOP
        SELECT j.jobid INTO v_id
        FROM cron.job AS j
        WHERE j.jobid = v_job.cron_job_id AND j.database = v_target;
        IF v_id IS NULL AND v_job.command IS NOT NULL THEN
            SELECT j.jobid INTO v_id
            FROM cron.job AS j
            WHERE
                j.jobname = v_job.cron_name
                AND j.database = v_target
                AND j.command = v_job.command
            ORDER BY j.username = v_runner DESC, j.jobid
            LIMIT 1;
        END IF;

        IF NOT v_job.keep THEN
            IF v_id IS NOT NULL THEN
                PERFORM cron.unschedule(v_id);
                RAISE NOTICE 'unscheduled job % (pg_cron job %): no longer in the catalog',
                    v_job.job_name, v_id;
            END IF;
            v_result := v_result || jsonb_build_object('job_name', v_job.job_name,
                'cron_job_id', NULL);
            CONTINUE;
        END IF;

        IF v_id IS NULL THEN
            SELECT j.jobid, j.database, j.command INTO v_other
            FROM cron.job AS j
            WHERE j.jobname = v_job.cron_name AND j.username = v_runner;
            IF FOUND THEN
                RAISE EXCEPTION 'pg_cron already has a job named % of role % that the package '
                    'did not create for database % (pg_cron job %, database %, command %): not '
                    'overwriting it', v_job.cron_name, v_runner, v_target, v_other.jobid,
                    v_other.database, v_other.command
                    USING ERRCODE = '42710',
                    HINT = 'pg_cron names a job once per role in the whole cluster: rename or '
                        'unschedule that job (two game databases need two scheduling roles)';
            END IF;
            v_id := cron.schedule_in_database(
                v_job.cron_name, v_job.schedule, v_job.command, v_target,
                CASE WHEN v_super THEN v_runner END, v_job.active
            );
            RAISE NOTICE 'scheduled % (pg_cron job %) in database % as %: "%"%',
                v_job.cron_name, v_id, v_target, v_runner, v_job.schedule,
                CASE WHEN v_job.active THEN '' ELSE ', disabled' END;
        ELSE
            PERFORM cron.alter_job(
                v_id, v_job.schedule, v_job.command, v_target,
                CASE WHEN v_super THEN v_runner END, v_job.active
            );
            RAISE NOTICE 'updated % (pg_cron job %) in database % as %: "%"%',
                v_job.cron_name, v_id, v_target, v_runner, v_job.schedule,
                CASE WHEN v_job.active THEN '' ELSE ', disabled' END;
        END IF;

        -- An earlier version's copy under another role would run the job twice.
        PERFORM cron.unschedule(j.jobid)
        FROM cron.job AS j
        WHERE
            j.jobname = v_job.cron_name
            AND j.database = v_target
            AND j.command = v_job.command
            AND j.jobid <> v_id;

        v_result := v_result || jsonb_build_object('job_name', v_job.job_name, 'cron_job_id', v_id);
    END LOOP;
    PERFORM set_config('nikita.cron_result', v_result::text, true);
END
$$;

SELECT current_setting('nikita.cron_result') AS result;
