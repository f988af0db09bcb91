-- Daily summaries in Nikita's voice (docs/jobs.md). The summary job stays the source of
-- the facts and writes the factual `summary_text`; an optional writer (hosted by the shim,
-- `--summary-writer`) claims each new row and writes `nikita_summary_text` (the game's column
-- name for the in-character recap) and `emotional_tone` (what the game's portal shows). The
-- factual text is never overwritten: a reader shows coalesce(nikita_summary_text,
-- summary_text), so a writer that fails, times out or is not running leaves the fact.
--
--   writer_state  NULL         not wanted (rows written before this migration)
--                 pending      new row (column default: the job does not change), claimable
--                 processing   claimed, under a lease (locked_by, locked_until, lock_token)
--                 written      nikita_summary_text set
--                 failed       summary_writer_max_attempts attempts spent (writer_error says why)
-- An attempt is counted at claim, as for conversations (functions/summary_writer.sql).

ALTER TABLE nikita.daily_summaries
ADD COLUMN writer_state text,
ADD COLUMN writer_attempts integer NOT NULL DEFAULT 0,
ADD COLUMN locked_by text,
ADD COLUMN locked_until timestamptz,
ADD COLUMN lock_token uuid,
ADD COLUMN writer_error text,
ADD COLUMN nikita_summary_text text,
ADD COLUMN emotional_tone text,
ADD COLUMN written_at timestamptz;

-- Existing rows stay NULL (old days are not rewritten); new rows are pending.
ALTER TABLE nikita.daily_summaries ALTER COLUMN writer_state SET DEFAULT 'pending';

ALTER TABLE nikita.daily_summaries
ADD CONSTRAINT daily_summaries_writer_state_valid
CHECK (writer_state IN ('pending', 'processing', 'written', 'failed')),
ADD CONSTRAINT daily_summaries_writer_attempts_range
CHECK (writer_attempts BETWEEN 0 AND 100),
-- A lease exists exactly while processing.
ADD CONSTRAINT daily_summaries_writer_lease
CHECK (
    (writer_state IS NOT DISTINCT FROM 'processing')
    = (locked_by IS NOT NULL AND locked_until IS NOT NULL AND lock_token IS NOT NULL)
    AND (locked_by IS NULL) = (lock_token IS NULL)
    AND (locked_until IS NULL) = (lock_token IS NULL)
),
ADD CONSTRAINT daily_summaries_written_has_text
CHECK (writer_state IS DISTINCT FROM 'written'
    OR (nikita_summary_text IS NOT NULL AND written_at IS NOT NULL)),
ADD CONSTRAINT daily_summaries_locked_by_length CHECK (length(locked_by) <= 200),
ADD CONSTRAINT daily_summaries_writer_error_length CHECK (length(writer_error) <= 4000),
-- Same bound as summary_text (sql/0009); the game asks for 2-3 sentences.
ADD CONSTRAINT daily_summaries_nikita_summary_text_valid
CHECK (length(nikita_summary_text) <= 8000 AND NOT nikita.is_blank(nikita_summary_text)),
-- A label ("warm", "tense"), as conversations.emotional_tone.
ADD CONSTRAINT daily_summaries_emotional_tone_valid
CHECK (length(emotional_tone) <= 200 AND NOT nikita.is_blank(emotional_tone));

-- The claim: pending rows, oldest first; the recovery: expired leases.
CREATE INDEX daily_summaries_writer_pending_idx ON nikita.daily_summaries (created_at, id)
WHERE writer_state = 'pending';
CREATE INDEX daily_summaries_writer_lease_idx ON nikita.daily_summaries (locked_until)
WHERE writer_state = 'processing';

-- The NOTIFY nikita_summaries trigger is in functions/summary_writer.sql (as the queue's).

-- Setting: attempts per day before it is left `failed` with its factual text (as
-- conversation_max_attempts). Its range is checked by its own constraint, not by replacing
-- nikita._check_setting_value (sql/0009): other migrations of the same release replace that
-- function too, and a second replacement would drop their keys. Same SQLSTATE (23514) and a
-- message naming the key, raised by the function below.
INSERT INTO nikita.settings (key, value_type, value, description)
VALUES (
    'summary_writer_max_attempts', 'integer', '3',
    'Attempts of the summary writer (shim --summary-writer) per daily summary before it is left '
    'failed with its factual text (1..100).'
);

CREATE FUNCTION nikita.check_summary_writer_setting(p_key text, p_type text, p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_key IS DISTINCT FROM 'summary_writer_max_attempts' THEN
        RETURN true;
    END IF;
    IF p_type IS DISTINCT FROM 'integer'
        OR p_value IS NULL
        OR pg_catalog.jsonb_typeof(p_value) IS DISTINCT FROM 'number'
        OR (p_value #>> '{}')::numeric NOT BETWEEN 1 AND 100
        OR (p_value #>> '{}')::numeric <> pg_catalog.trunc((p_value #>> '{}')::numeric) THEN
        RAISE EXCEPTION 'setting "%" must be an integer from 1 to 100, got % %', p_key,
            coalesce(p_type, 'NULL'), pg_catalog.left(coalesce(p_value::text, 'NULL'), 200)
            USING ERRCODE = '23514', SCHEMA = 'nikita', TABLE = 'settings',
            COLUMN = 'value', CONSTRAINT = 'settings_summary_writer_valid';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION nikita.check_summary_writer_setting(text, text, jsonb)
IS 'CHECK settings_summary_writer_valid: summary_writer_max_attempts is an integer 1..100 '
'(23514 naming the key otherwise); other keys pass.';
REVOKE EXECUTE ON FUNCTION nikita.check_summary_writer_setting(text, text, jsonb) FROM PUBLIC;

ALTER TABLE nikita.settings
ADD CONSTRAINT settings_summary_writer_valid
CHECK (nikita.check_summary_writer_setting(key, value_type, value));
