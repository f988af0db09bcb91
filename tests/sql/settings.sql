-- nikita.settings: every setting of the package has its range or shape, checked when written
-- (CHECK settings_value_valid, 0009): each bad value is refused with 23514 and a message naming
-- the key, and the table is unchanged. Also the shared blank rule (nikita.is_blank).
BEGIN;
SELECT plan(45);

CREATE TEMP TABLE before AS SELECT * FROM nikita.settings;

CREATE FUNCTION pg_temp.refused(p_key text, p_value jsonb, p_message text)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(
        format('UPDATE nikita.settings SET value = %L WHERE key = %L', p_value, p_key),
        '23514', p_message,
        format('%s = %s is refused', p_key, coalesce(p_value::text, 'SQL NULL'))
    )
$$;

-- ------------------------------------------------------------------------------ intervals
SELECT pg_temp.refused('max_lateness', '"-1 hour"',
    'setting "max_lateness" must be an interval from 1 minute to 30 days, got "-1 hour"');
SELECT pg_temp.refused('max_lateness', '"0"',
    'setting "max_lateness" must be an interval from 1 minute to 30 days, got "0"');
SELECT pg_temp.refused('max_lateness', '"59 seconds"',
    'setting "max_lateness" must be an interval from 1 minute to 30 days, got "59 seconds"');
SELECT pg_temp.refused('max_lateness', '"31 days"',
    'setting "max_lateness" must be an interval from 1 minute to 30 days, got "31 days"');
SELECT pg_temp.refused('max_lateness', NULL,
    'setting "max_lateness" must be set: an interval from 1 minute to 30 days, got null');
SELECT pg_temp.refused('max_lateness', 'null',
    'setting "max_lateness" must be set: an interval from 1 minute to 30 days, got null');
SELECT throws_ok(
    $$UPDATE nikita.settings SET value_type = 'text', value = '"whenever"'
      WHERE key = 'max_lateness'$$,
    '23514', 'setting "max_lateness" must have value_type interval, got text',
    'a package setting keeps its value type');
SELECT pg_temp.refused('event_retention', '"30 minutes"',
    'setting "event_retention" must be an interval from 1 hour to 3650 days, got "30 minutes"');
SELECT pg_temp.refused('failed_event_retention', '"3651 days"',
    'setting "failed_event_retention" must be an interval from 1 hour to 3650 days, '
    'got "3651 days"');
SELECT pg_temp.refused('job_retention', NULL,
    'setting "job_retention" must be set: an interval from 1 hour to 3650 days, got null');
SELECT pg_temp.refused('cron_run_retention', '"-7 days"',
    'setting "cron_run_retention" must be an interval from 1 hour to 3650 days, got "-7 days"');
SELECT pg_temp.refused('conversation_idle_timeout', '"30 seconds"',
    'setting "conversation_idle_timeout" must be an interval from 1 minute to 7 days, '
    'got "30 seconds"');
SELECT pg_temp.refused('conversation_idle_timeout', '"8 days"',
    'setting "conversation_idle_timeout" must be an interval from 1 minute to 7 days, '
    'got "8 days"');

-- ------------------------------------------------------------------------------- counts
SELECT pg_temp.refused('conversation_max_attempts', '0',
    'setting "conversation_max_attempts" must be an integer from 1 to 100, got 0');
SELECT pg_temp.refused('conversation_max_attempts', '101',
    'setting "conversation_max_attempts" must be an integer from 1 to 100, got 101');
SELECT pg_temp.refused('decay_batch_size', '0',
    'setting "decay_batch_size" must be an integer from 1 to 1000000, got 0');
SELECT pg_temp.refused('decay_batch_size', '1000001',
    'setting "decay_batch_size" must be an integer from 1 to 1000000, got 1000001');
SELECT pg_temp.refused('cleanup_batch_size', '-5',
    'setting "cleanup_batch_size" must be an integer from 1 to 1000000, got -5');
SELECT pg_temp.refused('cleanup_batch_size', NULL,
    'setting "cleanup_batch_size" must be set: an integer from 1 to 1000000, got null');

-- ------------------------------------------------------------------------------ chat id
SELECT pg_temp.refused('alert_chat_id', '0',
    'setting "alert_chat_id" must be a non-zero integer chat id or null, got 0');
SELECT pg_temp.refused('alert_chat_id', '9223372036854775808',
    'setting "alert_chat_id" must be a non-zero integer chat id or null, '
    'got 9223372036854775808');
SELECT pg_temp.refused('alert_chat_id', '-9223372036854775808',
    'setting "alert_chat_id" must be a non-zero integer chat id or null, '
    'got -9223372036854775808');

-- ------------------------------------------------------------------------ game over text
SELECT pg_temp.refused('game_over_text', '""',
    'setting "game_over_text" must be a text of 1 to 4096 characters, not blank, got ""');
SELECT pg_temp.refused('game_over_text', to_jsonb(E' \t\n'::text),
    'setting "game_over_text" must be a text of 1 to 4096 characters, not blank, got " \t\n"');
SELECT pg_temp.refused('game_over_text', to_jsonb(U&'\00A0\200B'::text),
    'setting "game_over_text" must be a text of 1 to 4096 characters, not blank, got "'
    || U&'\00A0\200B' || '"');
SELECT pg_temp.refused('game_over_text', to_jsonb(U&'\FEFF\3000\2060\180E\0085'::text),
    'setting "game_over_text" must be a text of 1 to 4096 characters, not blank, got "'
    || U&'\FEFF\3000\2060\180E\0085' || '"');
SELECT throws_ok(
    format('UPDATE nikita.settings SET value = %L WHERE key = %L',
        to_jsonb(repeat('x', 4097)), 'game_over_text'),
    '23514', NULL, 'game_over_text of 4097 characters is refused');
SELECT throws_like(
    format('UPDATE nikita.settings SET value = %L WHERE key = %L',
        to_jsonb(repeat('x', 4097)), 'game_over_text'),
    'setting "game_over_text" must be a text of 1 to 4096 characters, not blank, got "xxx%',
    '... naming the key');
SELECT pg_temp.refused('game_over_text', NULL,
    'setting "game_over_text" must be set: a text of 1 to 4096 characters, not blank, '
    'got null');

-- --------------------------------------------------------------------- inserts, descriptions
SELECT throws_ok(
    $$DELETE FROM nikita.settings WHERE key = 'max_lateness';
      INSERT INTO nikita.settings (key, value_type, value, description)
      VALUES ('max_lateness', 'interval', '"-1 hour"', 'd')$$,
    '23514', 'setting "max_lateness" must be an interval from 1 minute to 30 days, got "-1 hour"',
    'an INSERT is checked like an UPDATE');
SELECT throws_ok(
    $$UPDATE nikita.settings SET description = repeat('d', 1001) WHERE key = 'max_lateness'$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_description_length"',
    'a description over 1000 characters is refused');

SELECT results_eq(
    'SELECT key, value_type, value, description, updated_at FROM nikita.settings ORDER BY key',
    'SELECT key, value_type, value, description, updated_at FROM before ORDER BY key',
    'every refused write left the settings unchanged'
);

-- ------------------------------------------------------------------------- good values pass
SELECT lives_ok($$UPDATE nikita.settings SET value = value$$,
    'the shipped values pass the check');
SELECT lives_ok($$UPDATE nikita.settings SET value = '"1 minute"' WHERE key = 'max_lateness'$$,
    'max_lateness of 1 minute (the lower bound) is accepted');
SELECT lives_ok($$UPDATE nikita.settings SET value = '"30 days"' WHERE key = 'max_lateness'$$,
    'max_lateness of 30 days (the upper bound) is accepted');
SELECT lives_ok($$UPDATE nikita.settings SET value = '-1001234567890' WHERE key = 'alert_chat_id'$$,
    'a supergroup chat id (negative) is accepted');
SELECT lives_ok($$UPDATE nikita.settings SET value = NULL WHERE key = 'alert_chat_id'$$,
    'alert_chat_id may be unset (alerts off)');
SELECT lives_ok(
    format('UPDATE nikita.settings SET value = %L WHERE key = %L',
        to_jsonb(U&'\00A0Bye.\200B'::text), 'game_over_text'),
    'a game_over_text with visible characters between the blanks is accepted');
SELECT lives_ok(
    $$INSERT INTO nikita.settings (key, value_type, value, description)
      VALUES ('app_knob', 'integer', '-3', 'not a package setting: only its type is checked')$$,
    'a key the package does not read gets the type check only');

-- ------------------------------------------------------------------------------ is_blank
SELECT ok(
    (SELECT bool_and(nikita.is_blank(chr(c))) FROM unnest(ARRAY[
        9, 10, 11, 12, 13, 32, 133, 160, 5760, 8192, 8193, 8194, 8195, 8196, 8197, 8198, 8199,
        8200, 8201, 8202, 8232, 8233, 8239, 8287, 12288, 6158, 8203, 8204, 8205, 8288, 65279
    ]) AS c),
    'is_blank: each White_Space character and each invisible format character alone is blank'
);
SELECT ok(nikita.is_blank(''), 'is_blank: the empty text is blank');
SELECT ok(NOT nikita.is_blank(U&'\00A0.\200B'), 'is_blank: one visible character is enough');
SELECT ok(NOT nikita.is_blank(chr(8206)),
    'is_blank: U+200E (left-to-right mark) is not on the list, so not blank');
SELECT is(nikita.is_blank(NULL), NULL, 'is_blank: NULL for NULL');
SELECT is(
    (SELECT count(*)::int FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
     WHERE n.nspname = 'nikita' AND p.proname = 'is_blank'),
    1, 'one blank rule in SQL');

SELECT * FROM finish();
ROLLBACK;
