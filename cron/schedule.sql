-- Schedule the package's jobs (nikita.job_catalog) in pg_cron (times are UTC:
-- cron.timezone = 'UTC').
-- scripts/migrate.sh applies this file in one transaction wherever pg_cron is installed.
--
-- Who runs the jobs: pg_cron runs a job as the role that scheduled it (cron.job.username). Only
-- a superuser may schedule a job for another role, so:
--   * run by a superuser, and the jobs role nikita_jobs (sql/0011_jobs_role.sql) exists, may
--     log in and is no superuser: every job is scheduled to run as nikita_jobs;
--   * otherwise (a managed platform's admin role, which is no superuser): the jobs run as the
--     role running this file, and a NOTICE says so (docs/install.md, "Security model").
-- A job of the package that an earlier version scheduled as another role is moved to the jobs
-- role (cron.alter_job(username => ...)), keeping its job id and its active flag.
--
-- Idempotent: cron.schedule_in_database / cron.schedule with a job name update the job of that
-- name and role (pg_cron >= 1.4), so re-running leaves exactly the jobs of nikita.job_catalog,
-- current, with their job ids; a nikita-* job of this database that the catalog no longer
-- names is removed.
-- Every job is `CALL nikita.run_job('<name>')`: a procedure that commits as it goes, which is
-- why pg_cron must send it alone, outside any transaction block (it does).

DO $$
DECLARE
    v_super boolean;
    v_role record;
    v_runner text;
    v_job record;
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
            USING HINT = 'run cron/schedule.sql as a superuser, or see docs/install.md, '
                '"Security model"';
    ELSE
        v_runner := 'nikita_jobs';
        -- Jobs an earlier version scheduled as another role become the jobs role's.
        FOR v_job IN
            SELECT DISTINCT ON (j.jobname) j.jobid
            FROM cron.job AS j
            JOIN nikita.job_catalog AS c ON j.jobname = c.cron_name
            WHERE
                j.database = current_database()
                AND j.username <> v_runner
                AND NOT EXISTS (
                    SELECT 1 FROM cron.job AS o
                    WHERE o.jobname = j.jobname AND o.username = v_runner
                )
            ORDER BY j.jobname, j.jobid
        LOOP
            PERFORM cron.alter_job(v_job.jobid, username => v_runner);
        END LOOP;
    END IF;

    IF v_runner = current_user THEN
        PERFORM cron.schedule(c.cron_name, c.schedule, format('CALL nikita.run_job(%L)', c.job_name))
        FROM nikita.job_catalog AS c
        ORDER BY c.lock_key;
    ELSE
        PERFORM cron.schedule_in_database(
            c.cron_name, c.schedule, format('CALL nikita.run_job(%L)', c.job_name),
            current_database(), v_runner
        )
        FROM nikita.job_catalog AS c
        ORDER BY c.lock_key;
    END IF;

    -- A job of the package's name left with another role (a second copy) would run twice.
    PERFORM cron.unschedule(j.jobid)
    FROM cron.job AS j
    WHERE
        j.database = current_database()
        AND j.jobname IN (SELECT c.cron_name FROM nikita.job_catalog AS c)
        AND j.username <> v_runner;
END
$$;

SELECT cron.unschedule(j.jobid)
FROM cron.job AS j
WHERE
    j.jobname LIKE 'nikita-%'
    AND j.database = current_database()
    AND j.jobname NOT IN (SELECT c.cron_name FROM nikita.job_catalog AS c);
