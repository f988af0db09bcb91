-- The CHECK constraints of nikita.users call nikita.is_e164 and nikita.is_valid_timezone (and,
-- through it, nikita.timezone_name_listed). PostgreSQL evaluates a CHECK with the privileges of
-- the role writing the row, so the app role, which owns the game's writes, needs EXECUTE on
-- them: without it every INSERT or UPDATE of a player by nikita_app failed with 42501.
GRANT EXECUTE ON FUNCTION nikita.is_e164(text), nikita.is_valid_timezone(text),
nikita.timezone_name_listed(text)
TO nikita_app;

COMMENT ON FUNCTION nikita.touch_updated_at()
IS 'Trigger: sets updated_at to now() on UPDATE unless the statement set it itself.';
