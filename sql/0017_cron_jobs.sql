-- The pg_cron jobs the package created, recorded by the package (docs/install.md). The live
-- game runs pg_cron jobs of its own, some named nikita-*: cron/schedule.sql and
-- cron/unschedule.sql touch only the job ids recorded here (and, once, the jobs an earlier
-- version scheduled: the catalog's name with the package's exact command), never a job guessed
-- from its name.
--
-- A row is also the operator's setting for the job: `schedule` (NULL = the catalog's) and
-- `enabled`, changed with nikita.set_job_schedule / nikita.set_job_enabled and read by every
-- later migrate, so an operator's change survives upgrades.
--   cron_job_id    cron.job.jobid of the job (NULL until it is scheduled, or after cron-remove)
--   cron_database  the database whose cron.job holds it (pg_cron's cron.database_name, which
--                  on managed services is not the game's database)
CREATE TABLE nikita.cron_jobs (
    job_name text PRIMARY KEY,
    schedule text,
    enabled boolean NOT NULL DEFAULT true,
    cron_job_id bigint,
    cron_database text,
    scheduled_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cron_jobs_job_placed CHECK ((cron_job_id IS NULL) = (cron_database IS NULL))
);
COMMENT ON TABLE nikita.cron_jobs IS
'The package''s pg_cron jobs (the only ones it touches) and the operator''s schedule and '
'enabled flag for each; see sql/0017_cron_jobs.sql.';
REVOKE ALL ON nikita.cron_jobs FROM PUBLIC;
