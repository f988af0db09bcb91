-- Lint every PL/pgSQL function of schema nikita with plpgsql_check (sqlfluff does not read
-- function bodies). Fails (ERROR) when any function has an error or a warning worth fixing.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS plpgsql_check;

CREATE TEMP TABLE lint_result AS
SELECT p.oid::regprocedure AS fn, r.*
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
-- Trigger functions are checked against a table they are attached to.
LEFT JOIN LATERAL (
    SELECT t.tgrelid FROM pg_catalog.pg_trigger AS t WHERE t.tgfoid = p.oid LIMIT 1
) AS trg ON true
CROSS JOIN LATERAL plpgsql_check_function_tb(
    p.oid,
    coalesce(trg.tgrelid, 0),
    fatal_errors => false,
    extra_warnings => false,
    security_warnings => true
) AS r
WHERE n.nspname = 'nikita'
  AND l.lanname = 'plpgsql'
  AND (p.prorettype <> 'trigger'::regtype OR trg.tgrelid IS NOT NULL);

SELECT fn, lineno, level, message, detail FROM lint_result ORDER BY fn::text, lineno;

DO $$
DECLARE
    v_n integer;
BEGIN
    SELECT count(*) INTO v_n FROM lint_result WHERE level IN ('error', 'warning');
    IF v_n > 0 THEN
        RAISE EXCEPTION 'plpgsql_check: % problem(s) in schema nikita (listed above)', v_n;
    END IF;
    RAISE NOTICE 'plpgsql_check: schema nikita is clean';
END
$$;
