-- The operators' role nikita_ops (sql/0020_ops_role.sql): exactly the operator API, nothing that
-- claims or settles events, no table; the API is nobody else's.
BEGIN;
SELECT plan(10);

CREATE TEMP TABLE admin_api (sig regprocedure);
INSERT INTO admin_api VALUES
('nikita.find_events(uuid,text,text,timestamptz,timestamptz,integer,boolean)'),
('nikita.show_event(uuid,boolean)'),
('nikita.retry_event(uuid,timestamptz)'),
('nikita.cancel_pending_events(uuid,text)'),
('nikita.list_jobs()'),
('nikita.list_job_runs(text,text,timestamptz,timestamptz,integer)'),
('nikita.run_job_now(text)');

SELECT ok((SELECT NOT rolcanlogin AND NOT rolsuper AND NOT rolbypassrls FROM pg_roles
    WHERE rolname = 'nikita_ops'), 'nikita_ops: a NOLOGIN group role, no superuser, no bypassrls');
SELECT set_eq($$SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'nikita'::regnamespace AND has_function_privilege('nikita_ops', p.oid, 'EXECUTE')$$,
    $$SELECT sig::text FROM admin_api
      -- and the operator's schedule functions (functions/job_schedule.sql)
      UNION ALL VALUES ('nikita.set_job_schedule(text,text)'), ('nikita.set_job_enabled(text,boolean)')$$,
    'nikita_ops executes exactly the operator API and the job schedule functions');
SELECT is((SELECT array_agg(format('%s -> %s', a.sig, r.rolname) ORDER BY 1)
    FROM admin_api AS a
    CROSS JOIN (VALUES ('nikita_app'), ('nikita_worker'), ('nikita_readonly'), ('nikita_jobs')) AS r (rolname)
    WHERE has_function_privilege(r.rolname, a.sig, 'EXECUTE')), NULL,
    'no other role executes the operator API');
SELECT is((SELECT array_agg(a.sig::text) FROM admin_api AS a JOIN pg_proc AS p ON p.oid = a.sig
    WHERE NOT p.prosecdef OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)
    OR obj_description(p.oid, 'pg_proc') NOT LIKE '%Executable by nikita_ops.'), NULL,
    'each: SECURITY DEFINER, search_path pinned, COMMENT with its contract');
SELECT is((SELECT array_agg(c.relname::text) FROM pg_class AS c
    WHERE c.relnamespace = 'nikita'::regnamespace
    AND has_table_privilege('nikita_ops', c.oid, 'SELECT,INSERT,UPDATE,DELETE')), NULL,
    'nikita_ops has no table privilege');

CREATE FUNCTION pg_temp.as_ops(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL ROLE nikita_ops;
    BEGIN
        EXECUTE p_sql;
    EXCEPTION WHEN OTHERS THEN
        RESET ROLE;
        RETURN SQLSTATE;
    END;
    RESET ROLE;
    RETURN 'ok';
END
$$;
SELECT is(pg_temp.as_ops($$SELECT * FROM nikita.find_events()$$), 'ok', 'nikita_ops finds events');
SELECT is(pg_temp.as_ops($$SELECT * FROM nikita.claim_events('ops', 1)$$), '42501',
    'nikita_ops cannot claim');
SELECT is(ARRAY[
    pg_temp.as_ops($$SELECT nikita.complete_events(ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], ARRAY['x'])$$),
    pg_temp.as_ops($$SELECT nikita.fail_event(gen_random_uuid(), gen_random_uuid(), 'x', false)$$),
    pg_temp.as_ops($$SELECT nikita.defer_event(gen_random_uuid(), gen_random_uuid(), now())$$)],
    ARRAY['42501', '42501', '42501'], 'nikita_ops cannot complete, fail or defer');
SELECT is(pg_temp.as_ops($$SELECT content FROM nikita.scheduled_events$$), '42501',
    'nikita_ops cannot read the events table (the messages)');
SELECT is(pg_temp.as_ops($$CALL nikita.run_job('sweep')$$), '42501',
    'nikita_ops cannot CALL run_job (run_job_now is its way)');

SELECT * FROM finish();
ROLLBACK;
