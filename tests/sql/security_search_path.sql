-- Every function and procedure of schema nikita pins search_path (issue 9, item 1): whatever
-- resolves through the caller's path may run an object planted in `public` or in a schema named
-- after the caller, with the caller's rights. The behavioural proof is
-- tests/shim/db/test_security_planted.py; this is the catalog rule that keeps new code in line.
BEGIN;
SELECT plan(5);

-- The explicit exceptions, each with the reason it cannot carry `SET search_path`:
CREATE TEMP TABLE path_allowed (sig regprocedure, why text, pins_in_body boolean);
INSERT INTO path_allowed VALUES
-- A procedure that COMMITs cannot have SET options: it pins the path with set_config at its
-- start and after every COMMIT, and its DECLARE defaults call only qualified functions.
('nikita.run_job(text)', 'procedure that commits', true),
-- The users_timezone_iana CHECK runs it for every written row; a SET clause would stop the
-- planner from inlining it (sql/0004_jobs_timezone_check.sql: 55 ms -> 0.1 us per row). Its
-- body is one expression naming only qualified objects: '...'::pg_catalog.jsonb
-- OPERATOR(pg_catalog.?) p_name OR nikita.timezone_name_listed(p_name).
('nikita.is_valid_timezone(text)', 'inlined into a CHECK', false);

SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
       FROM pg_proc AS p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
        AND p.oid NOT IN (SELECT a.sig FROM path_allowed AS a)),
    NULL,
    'every function and procedure of nikita has SET search_path = pg_catalog, pg_temp '
    || '(or is on the commented list of exceptions)'
);
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
       FROM pg_proc AS p
      WHERE p.pronamespace = 'nikita'::regnamespace
        AND p.proconfig IS NOT NULL
        AND EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c (s)
                     WHERE c.s LIKE 'search_path=%' AND c.s <> 'search_path=pg_catalog, pg_temp')),
    NULL, 'no function pins another path (pg_catalog first, pg_temp last, nothing else)'
);
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY 1) FROM path_allowed AS a
       JOIN pg_proc AS p ON p.oid = a.sig
      WHERE p.prosecdef OR p.proconfig IS NOT NULL),
    NULL, 'the exceptions are neither SECURITY DEFINER nor carry other SET options'
);

-- The procedures that pin the path in their body: first statement, and after every COMMIT.
-- (A reading of the source, kept because it names the rule; the behaviour is tested by
-- test_security_planted.py, which plants objects that would run otherwise.)
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY 1) FROM path_allowed AS a
       JOIN pg_proc AS p ON p.oid = a.sig
      WHERE a.pins_in_body
        AND p.prosrc !~ $re$\mBEGIN\s+PERFORM pg_catalog\.set_config\('search_path', 'pg_catalog, pg_temp', true\);$re$),
    NULL, 'their first statement pins search_path for the transaction'
);
SELECT is(
    (SELECT array_agg(a.sig::text ORDER BY 1) FROM path_allowed AS a
       JOIN pg_proc AS p ON p.oid = a.sig
      WHERE a.pins_in_body
        AND (SELECT count(*) FROM regexp_matches(p.prosrc, '\mCOMMIT\s*;', 'gi'))
            <> (SELECT count(*) FROM regexp_matches(p.prosrc,
                $re$\mCOMMIT\s*;\s*PERFORM pg_catalog\.set_config\('search_path', 'pg_catalog, pg_temp', true\);$re$,
                'gi'))),
    NULL, 'and every COMMIT is followed at once by that pin (the setting ends with each transaction)'
);

SELECT * FROM finish();
ROLLBACK;
