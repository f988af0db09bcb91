-- Import of the running game (schema :src, default public) into nikita.*: the session setup.
-- Run by import/import_game.sql; a section may also be run alone after this file in the same
-- psql session (psql -f import/00_setup.sql -f import/10_users.sql). Mapping: docs/import.md.
--
-- Creates schema nikita_import (the run log and the report of what was not mapped, kept for
-- the operator), and, for this session only, the mapping views and the loader (pg_temp).
\set ON_ERROR_STOP 1
\if :{?src}
\else
\set src public
\endif

CREATE SCHEMA IF NOT EXISTS nikita_import;
REVOKE ALL ON SCHEMA nikita_import FROM PUBLIC;
CREATE TABLE IF NOT EXISTS nikita_import.runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_schema text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- One row per (game row, reason): re-runs update last_run, never add a duplicate.
CREATE TABLE IF NOT EXISTS nikita_import.report (
    source_table text NOT NULL,
    source_key text NOT NULL,
    reason text NOT NULL,
    action text NOT NULL CHECK (action IN ('skipped', 'changed')),
    detail text,
    first_run bigint NOT NULL,
    last_run bigint NOT NULL,
    PRIMARY KEY (source_table, source_key, reason)
);
COMMENT ON TABLE nikita_import.report IS 'Game rows the import skipped (action skipped) or '
'imported with a changed value (action changed), with the reason. docs/import.md.';

INSERT INTO nikita_import.runs (source_schema) VALUES (:'src');
DROP TABLE IF EXISTS pg_temp.import_ctx;
-- One instant for the whole run: "stale" and "expired" are decided against it.
CREATE TEMP TABLE import_ctx AS
SELECT max(id) AS run_id, now() AS import_now,
       nikita._setting_interval('max_lateness') AS max_lateness
FROM nikita_import.runs;

CREATE OR REPLACE FUNCTION pg_temp.report(
    p_table text, p_key text, p_reason text, p_action text, p_detail text
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO nikita_import.report AS r
        (source_table, source_key, reason, action, detail, first_run, last_run)
    SELECT p_table, p_key, p_reason, p_action, p_detail, c.run_id, c.run_id
    FROM pg_temp.import_ctx c
    ON CONFLICT (source_table, source_key, reason)
    DO UPDATE SET action = excluded.action, detail = excluded.detail, last_run = excluded.last_run
$$;

-- A time the game could really have written (a 1900 or far-future value is a placeholder).
CREATE OR REPLACE FUNCTION pg_temp.plausible(p_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_at >= timestamptz '2000-01-01 00:00:00+00'
       AND p_at <= (SELECT c.import_now + interval '1 year' FROM pg_temp.import_ctx c)
$$;

-- An event's content through the queue's own rules (the ones schedule_event applies):
-- {"ok": content} or {"error": "SQLSTATE: message"}.
CREATE OR REPLACE FUNCTION pg_temp.checked_content(
    p_platform text, p_content jsonb, p_user_id uuid
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_msg text;
    v_chat bigint;
    v_phone text;
BEGIN
    SELECT u.telegram_id, u.phone INTO v_chat, v_phone FROM nikita.users u WHERE u.id = p_user_id;
    IF jsonb_typeof(p_content) IS DISTINCT FROM 'object' THEN
        RETURN jsonb_build_object('error', '22023: content is not a JSON object');
    END IF;
    IF p_platform = 'telegram' THEN
        RETURN jsonb_build_object('ok', nikita._telegram_content(
            jsonb_strip_nulls(p_content), p_user_id, v_chat));
    END IF;
    RETURN jsonb_build_object('ok', nikita._voice_content(
        jsonb_strip_nulls(p_content), p_user_id, v_phone));
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
    RETURN jsonb_build_object('error', v_state || ': ' || v_msg);
END
$$;

-- The loader: one mapping view's rows into one nikita table, each row in its own
-- subtransaction, so a refused row is reported and the rest goes on. A view row carries
-- src_key, ord, skip_reason, skip_detail, notes (jsonb array of {reason, detail}) and the
-- target's columns. Existing rows (same p_key_col) are left alone: re-runs add only what is
-- missing. Returns the counts.
CREATE OR REPLACE FUNCTION pg_temp.load(
    p_source text, p_view text, p_target text, p_key_col text, p_conflict_reason text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_note jsonb;
    v_cols text;
    v_n integer;
    v_present boolean;
    v_state text;
    v_msg text;
    v_inserted integer := 0;
    v_already integer := 0;
    v_skipped integer := 0;
BEGIN
    FOR r IN EXECUTE format(
        'SELECT v.src_key, v.skip_reason, v.skip_detail, v.notes, to_jsonb(v) - '
        'ARRAY[''src_key'', ''ord'', ''skip_reason'', ''skip_detail'', ''notes''] AS row '
        'FROM pg_temp.%I v ORDER BY v.ord', p_view)
    LOOP
        FOR v_note IN SELECT * FROM jsonb_array_elements(r.notes) LOOP
            PERFORM pg_temp.report(p_source, r.src_key, v_note ->> 'reason', 'changed',
                                   v_note ->> 'detail');
        END LOOP;
        IF r.skip_reason IS NOT NULL THEN
            PERFORM pg_temp.report(p_source, r.src_key, r.skip_reason, 'skipped', r.skip_detail);
            RAISE NOTICE 'import: % % skipped: % (%)', p_source, r.src_key, r.skip_reason,
                r.skip_detail;
            v_skipped := v_skipped + 1;
            CONTINUE;
        END IF;
        SELECT string_agg(quote_ident(k), ', ') INTO v_cols FROM jsonb_object_keys(r.row) k;
        BEGIN
            EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1) '
                           'ON CONFLICT DO NOTHING', p_target, v_cols, v_cols, p_target)
            USING r.row;
            GET DIAGNOSTICS v_n = ROW_COUNT;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
            PERFORM pg_temp.report(p_source, r.src_key, 'refused', 'skipped',
                                   v_state || ': ' || v_msg);
            RAISE NOTICE 'import: % % skipped: refused (%: %)', p_source, r.src_key, v_state, v_msg;
            v_skipped := v_skipped + 1;
            CONTINUE;
        END;
        IF v_n = 1 THEN
            v_inserted := v_inserted + 1;
            CONTINUE;
        END IF;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I::text = $1)', p_target, p_key_col)
        INTO v_present USING r.row ->> p_key_col;
        IF v_present THEN
            v_already := v_already + 1;
        ELSE
            -- Another row holds one of its unique keys (a telegram_id, a live dedupe_key).
            PERFORM pg_temp.report(p_source, r.src_key, p_conflict_reason, 'skipped',
                                   'another row in ' || p_target || ' holds its unique key');
            RAISE NOTICE 'import: % % skipped: %', p_source, r.src_key, p_conflict_reason;
            v_skipped := v_skipped + 1;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('table', p_source, 'inserted', v_inserted,
                              'already_present', v_already, 'skipped', v_skipped);
END
$$;
