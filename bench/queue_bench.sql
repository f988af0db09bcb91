-- Queue benchmark in SQL alone (run by bench/queue_bench.sh on its own database).
--   1. scheduling: schedule_event one call per transaction, many calls in one statement, and a
--      bulk INSERT ... SELECT (the statement trigger's cost included);
--   2. draining 100,000 due events with claim_events + complete_events at batch 50/100/500,
--      each call its own transaction (claim commits, then the batch completion commits), as the
--      shim does with a no-op transport;
--   3. the plan of the claim statement (auto_explain of claim_events' nested statement).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;

CREATE SCHEMA bench;
CREATE TABLE bench.results (
    step int GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    n bigint NOT NULL,
    seconds numeric NOT NULL,
    per_second numeric GENERATED ALWAYS AS (round(n / nullif(seconds, 0))) STORED,
    us_each numeric GENERATED ALWAYS AS (round(seconds * 1e6 / nullif(n, 0), 1)) STORED
);

-- Players (chapters 1..5).
INSERT INTO nikita.users (telegram_id, phone, chapter)
SELECT 1000000 + g, '+4915100' || lpad(g::text, 6, '0'), 1 + g % 5
FROM generate_series(1, :users) AS g;
ANALYZE nikita.users;

-- ------------------------------------------------------------------------ scheduling
CREATE PROCEDURE bench.schedule_one_per_transaction(p_n int)
LANGUAGE plpgsql AS $$
DECLARE
    v_users uuid[] := ARRAY(SELECT id FROM nikita.users ORDER BY id LIMIT 1000);
    v_t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..p_n LOOP
        PERFORM nikita.schedule_event(v_users[1 + i % 1000], 'telegram', 'message_delivery',
            jsonb_build_object('text', 'hello ' || i), now() + interval '1 day');
        COMMIT;
    END LOOP;
    INSERT INTO bench.results (name, n, seconds) VALUES (
        'schedule_event, one call per transaction (commit included)', p_n,
        extract(epoch FROM clock_timestamp() - v_t0));
    COMMIT;
END
$$;
CALL bench.schedule_one_per_transaction(:schedule_single);

CREATE PROCEDURE bench.schedule_in_one_statement(p_n int)
LANGUAGE plpgsql AS $$
DECLARE
    v_t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM count(nikita.schedule_event(u.id, 'telegram', 'message_delivery',
        jsonb_build_object('text', 'hello ' || g), now() + interval '1 day'))
    FROM generate_series(1, p_n / 1000) AS g,
        (SELECT id FROM nikita.users ORDER BY id LIMIT 1000) AS u;
    COMMIT;
    INSERT INTO bench.results (name, n, seconds) VALUES (
        'schedule_event, calls in one statement', p_n,
        extract(epoch FROM clock_timestamp() - v_t0));
    COMMIT;
END
$$;
CALL bench.schedule_in_one_statement(:schedule_bulk);

CREATE PROCEDURE bench.insert_bulk(p_n int)
LANGUAGE plpgsql AS $$
DECLARE
    v_t0 timestamptz := clock_timestamp();
BEGIN
    INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, scheduled_at)
    SELECT u.id, 'telegram', 'message_delivery',
        jsonb_build_object('chat_id', u.telegram_id, 'text', 'hello ' || g),
        now() + interval '1 day'
    FROM generate_series(1, p_n / 1000) AS g,
        (SELECT id, telegram_id FROM nikita.users ORDER BY id LIMIT 1000) AS u;
    COMMIT;
    INSERT INTO bench.results (name, n, seconds) VALUES (
        'bulk INSERT ... SELECT into scheduled_events (one statement, one NOTIFY)', p_n,
        extract(epoch FROM clock_timestamp() - v_t0));
    COMMIT;
END
$$;
CALL bench.insert_bulk(:schedule_bulk);

-- ------------------------------------------------------------------------ draining
-- :events due events spread over the players (events_per_user each), then claim + complete
-- until none is left. Per-user exclusivity holds: a player's next event waits until the
-- previous one is completed.
CREATE PROCEDURE bench.load_due(p_events int)
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE nikita.scheduled_events;
    INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, scheduled_at)
    SELECT u.id, 'telegram', 'message_delivery',
        jsonb_build_object('chat_id', u.telegram_id, 'text', 'due ' || g),
        now() - interval '1 hour' + interval '1 millisecond' * (row_number() OVER ())
    FROM (SELECT id, telegram_id FROM nikita.users) AS u,
        generate_series(1, ceil(p_events::numeric / (SELECT count(*) FROM nikita.users))::int) AS g
    LIMIT p_events;
    COMMIT;
END
$$;

CREATE PROCEDURE bench.drain(p_batch int)
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    v_tokens uuid[];
    v_total bigint := 0;
    v_claims int := 0;
    v_t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        SELECT array_agg(c.id), array_agg(c.lock_token) INTO v_ids, v_tokens
        FROM nikita.claim_events('bench', p_batch) AS c;
        COMMIT;
        EXIT WHEN v_ids IS NULL;
        v_claims := v_claims + 1;
        v_total := v_total + nikita.complete_events(v_ids, v_tokens);
        COMMIT;
    END LOOP;
    INSERT INTO bench.results (name, n, seconds) VALUES (
        format('claim_events + complete_events, batch %s (%s claims)', p_batch, v_claims),
        v_total, extract(epoch FROM clock_timestamp() - v_t0));
    COMMIT;
END
$$;

CALL bench.load_due(:events);
VACUUM ANALYZE nikita.scheduled_events;
CALL bench.drain(50);
CALL bench.load_due(:events);
VACUUM ANALYZE nikita.scheduled_events;
CALL bench.drain(100);
CALL bench.load_due(:events);
VACUUM ANALYZE nikita.scheduled_events;
CALL bench.drain(500);

CREATE TABLE bench.left_over AS
SELECT count(*) FILTER (WHERE status <> 'delivered') AS n FROM nikita.scheduled_events;

-- ------------------------------------------------------------------------ plan
-- The claim statement as claim_events runs it, with 100,000 due events queued.
CALL bench.load_due(:events);
VACUUM ANALYZE nikita.scheduled_events;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = off;
SET auto_explain.log_format = text;
SET client_min_messages = log;
\o /dev/null
SELECT count(*) FROM nikita.claim_events('plan', 100);
\o
SET client_min_messages = warning;
