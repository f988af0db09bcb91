-- show_event (functions/admin_show_event.sql): one event with its error history.
BEGIN;
SELECT plan(7);
\ir _shared/events.psql
\ir _shared/admin.psql

CALL pg_temp.sched('a1', 1, '-3 minutes');
CALL pg_temp.fail('a1', 'Forbidden: bot was blocked by the user');

SELECT results_eq($$SELECT status, attempts, last_error FROM nikita.show_event(pg_temp.ev('a1'))$$,
    $$VALUES ('failed'::text, 1, 'Forbidden: bot was blocked by the user'::text)$$,
    'status, attempts, last error');
SELECT is((SELECT jsonb_array_length(errors) FROM nikita.show_event(pg_temp.ev('a1'))), 1,
    'the error history');
SELECT is((SELECT errors -> 0 -> 'error' FROM nikita.show_event(pg_temp.ev('a1'))),
    '"Forbidden: bot was blocked by the user"'::jsonb, '... with the error text');
SELECT ok((SELECT NOT content ? 'text' FROM nikita.show_event(pg_temp.ev('a1'))),
    'no message text by default');
SELECT is((SELECT content ->> 'text' FROM nikita.show_event(pg_temp.ev('a1'), true)), 'hello there',
    'the message with with_text');
SELECT throws_ok($$SELECT * FROM nikita.show_event('00000000-0000-0000-0000-0000000000ff')$$,
    'P0002', 'no event 00000000-0000-0000-0000-0000000000ff', 'unknown event');
SELECT throws_ok($$SELECT * FROM nikita.show_event(NULL)$$, '22004', 'id must not be null', 'null id');

SELECT * FROM finish();
ROLLBACK;
