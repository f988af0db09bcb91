-- Queue security: SECURITY DEFINER with a pinned search_path, comments, EXECUTE granted only to
-- the role that needs each function, internals to nobody; a role without the grant can neither
-- call the functions nor read the table.
BEGIN;
SELECT plan(39);

CREATE TEMP TABLE api (sig text, role text);
INSERT INTO api VALUES
('nikita.schedule_event(uuid,text,text,jsonb,timestamptz,text)', 'nikita_app'),
('nikita.schedule_event(uuid,text,text,jsonb,timestamptz,text,uuid)', 'nikita_app'),
('nikita.schedule_reply(uuid,text,uuid,text,jsonb)', 'nikita_app'),
('nikita.cancel_event(uuid)', 'nikita_app'),
('nikita.cancel_user_events(uuid)', 'nikita_app'),
('nikita.claim_events(text,integer,interval,integer)', 'nikita_worker'),
('nikita.complete_event(uuid,uuid,text)', 'nikita_worker'),
('nikita.complete_events(uuid[],uuid[],text[])', 'nikita_worker'),
('nikita.fail_event(uuid,uuid,text,boolean)', 'nikita_worker'),
('nikita.defer_event(uuid,uuid,timestamptz)', 'nikita_worker'),
('nikita.next_due_at()', 'nikita_worker'),
('nikita.sweep_events(timestamptz)', 'nikita_worker');

CREATE TEMP TABLE internal (sig text);
INSERT INTO internal VALUES
('nikita._schedule(uuid,text,text,jsonb,timestamptz,text,uuid)'),
('nikita._backoff(integer)'),
('nikita._iso8601(timestamptz)'),
('nikita._notify_inserted()'),
('nikita._notify_updated()');

SELECT is(
    (SELECT array_agg(sig ORDER BY sig) FROM api AS a
      JOIN pg_proc AS p ON p.oid = a.sig::regprocedure
      WHERE NOT p.prosecdef OR NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
    NULL, 'every public queue function is SECURITY DEFINER with search_path pinned'
);
SELECT is(
    (SELECT array_agg(sig ORDER BY sig) FROM internal AS i
      JOIN pg_proc AS p ON p.oid = i.sig::regprocedure
      WHERE p.prosecdef OR p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']),
    NULL, 'internals are not SECURITY DEFINER and pin search_path too'
);
SELECT is(
    (SELECT array_agg(sig ORDER BY sig) FROM (SELECT sig FROM api UNION ALL SELECT sig FROM internal) AS f
      WHERE obj_description(sig::regprocedure, 'pg_proc') IS NULL),
    NULL, 'every queue function has a COMMENT'
);
SELECT isnt(obj_description('nikita.queue_health'::regclass, 'pg_class'), NULL, 'queue_health has a COMMENT');

-- Who may execute what: exactly the one role, never PUBLIC.
SELECT is(
    (SELECT array_agg(format('%s -> %s', a.sig, r.rolname) ORDER BY a.sig, r.rolname)
       FROM api AS a
       CROSS JOIN (VALUES ('nikita_app'), ('nikita_worker'), ('nikita_readonly')) AS r (rolname)
      WHERE has_function_privilege(r.rolname, a.sig, 'EXECUTE') <> (r.rolname = a.role)),
    NULL, 'each public function is executable by its role only'
);
SELECT is(
    (SELECT array_agg(sig ORDER BY sig) FROM api AS a
      WHERE EXISTS (SELECT 1 FROM pg_proc AS p, aclexplode(p.proacl) AS x
                    WHERE p.oid = a.sig::regprocedure AND x.grantee = 0)),
    NULL, 'no public function is granted to PUBLIC'
);
SELECT is(
    (SELECT array_agg(format('%s -> %s', i.sig, r.rolname) ORDER BY i.sig, r.rolname)
       FROM internal AS i
       CROSS JOIN (VALUES ('nikita_app'), ('nikita_worker'), ('nikita_readonly')) AS r (rolname)
      WHERE has_function_privilege(r.rolname, i.sig, 'EXECUTE')),
    NULL, 'internals are executable by none of the roles'
);
SELECT is(
    (SELECT array_agg(sig ORDER BY sig) FROM internal AS i
      WHERE EXISTS (SELECT 1 FROM pg_proc AS p, aclexplode(p.proacl) AS x
                    WHERE p.oid = i.sig::regprocedure AND x.grantee = 0)),
    NULL, 'internals are not granted to PUBLIC'
);
SELECT ok(has_table_privilege('nikita_worker', 'nikita.queue_health', 'SELECT'), 'worker reads queue_health');
SELECT ok(has_table_privilege('nikita_readonly', 'nikita.queue_health', 'SELECT'), 'readonly reads queue_health');
SELECT ok(NOT has_table_privilege('nikita_app', 'nikita.queue_health', 'SELECT'), 'app does not');
SELECT is(
    (SELECT array_agg(r ORDER BY r) FROM unnest(ARRAY['nikita_app', 'nikita_worker', 'nikita_readonly']) AS r
      WHERE has_table_privilege(r, 'nikita.scheduled_events', 'SELECT, INSERT, UPDATE, DELETE')),
    NULL, 'no role has direct access to scheduled_events'
);

-- Calling for real, as each role. The helper switches role, runs the statement and reports
-- 'ok' or the SQLSTATE (pgTAP's own bookkeeping stays with the test's role).
CREATE FUNCTION pg_temp.as_role(p_role text, p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', p_role);
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
INSERT INTO nikita.users (id, telegram_id) VALUES ('00000000-0000-0000-0000-000000000501', 7001);

SELECT is(pg_temp.as_role('nikita_app',
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-000000000501', 'telegram',
        'message_delivery', '{"text": "hi"}', now() - interval '1 minute')$$), 'ok',
    'nikita_app schedules an event (the function writes for it)');
SELECT is(pg_temp.as_role('nikita_app',
    $$SELECT nikita.schedule_reply('00000000-0000-0000-0000-000000000501', 'hi')$$), 'ok',
    'nikita_app schedules a reply');
SELECT is(pg_temp.as_role('nikita_app',
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content)
      VALUES ('00000000-0000-0000-0000-000000000501', 'telegram', 'follow_up', '{"chat_id": 1, "text": "x"}')$$),
    '42501', 'nikita_app cannot write the table directly');
SELECT is(pg_temp.as_role('nikita_app', $$SELECT * FROM nikita.claim_events('w')$$), '42501',
    'nikita_app cannot claim');
SELECT is(pg_temp.as_role('nikita_app', $$SELECT nikita.sweep_events()$$), '42501',
    'nikita_app cannot sweep');
SELECT is(pg_temp.as_role('nikita_app', $$SELECT * FROM nikita.queue_health$$), '42501',
    'nikita_app cannot read queue_health');
SELECT is(pg_temp.as_role('nikita_worker', $$SELECT * FROM nikita.claim_events('w')$$), 'ok',
    'nikita_worker claims');
SELECT is(pg_temp.as_role('nikita_worker',
    $$SELECT nikita.complete_events(ARRAY(SELECT id FROM nikita.scheduled_events WHERE status = 'sending'),
        ARRAY(SELECT lock_token FROM nikita.scheduled_events WHERE status = 'sending'))$$),
    '42501', 'nikita_worker cannot read the table to find tokens');
-- The worker settles what it claimed: claim and settle in one statement, as the worker.
INSERT INTO nikita.users (id, telegram_id) VALUES
('00000000-0000-0000-0000-000000000502', 7002),
('00000000-0000-0000-0000-000000000503', 7003),
('00000000-0000-0000-0000-000000000504', 7004);
INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, scheduled_at)
SELECT u, 'telegram', 'follow_up', jsonb_build_object('chat_id', t, 'text', 'settle me'),
    now() - interval '1 hour'
FROM (VALUES ('00000000-0000-0000-0000-000000000502'::uuid, 7002),
             ('00000000-0000-0000-0000-000000000503'::uuid, 7003),
             ('00000000-0000-0000-0000-000000000504'::uuid, 7004)) AS v (u, t);
SELECT is(pg_temp.as_role('nikita_worker',
    $$SELECT nikita.complete_event(c.id, c.lock_token, 'tg:1')
      FROM nikita.claim_events('w-settle', 1) AS c$$), 'ok',
    'nikita_worker completes an event it claimed');
SELECT is(pg_temp.as_role('nikita_worker',
    $$SELECT nikita.fail_event(c.id, c.lock_token, 'boom', true)
      FROM nikita.claim_events('w-settle', 1) AS c$$), 'ok',
    'nikita_worker fails an event it claimed');
SELECT is(pg_temp.as_role('nikita_worker',
    $$SELECT nikita.defer_event(c.id, c.lock_token, now() + interval '1 minute')
      FROM nikita.claim_events('w-settle', 1) AS c$$), 'ok',
    'nikita_worker defers an event it claimed');
SELECT results_eq(
    $$SELECT status, provider_ref FROM nikita.scheduled_events
      WHERE user_id IN ('00000000-0000-0000-0000-000000000502', '00000000-0000-0000-0000-000000000503',
                        '00000000-0000-0000-0000-000000000504')
      ORDER BY status, provider_ref$$,
    $$VALUES ('delivered', 'tg:1'), ('pending', NULL), ('pending', NULL)$$,
    'the worker''s settlements took effect (one delivered, one retried, one deferred)'
);
SELECT is(pg_temp.as_role('nikita_worker', $$SELECT nikita.next_due_at()$$), 'ok', 'nikita_worker: next_due_at');
SELECT is(pg_temp.as_role('nikita_worker', $$SELECT nikita.sweep_events()$$), 'ok', 'nikita_worker: sweep');
SELECT is(pg_temp.as_role('nikita_worker', $$SELECT * FROM nikita.queue_health$$), 'ok',
    'nikita_worker reads queue_health');
SELECT is(pg_temp.as_role('nikita_worker',
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-000000000501', 'telegram',
        'message_delivery', '{"text": "hi"}')$$), '42501', 'nikita_worker cannot schedule');
SELECT is(pg_temp.as_role('nikita_worker', $$SELECT nikita.cancel_user_events('00000000-0000-0000-0000-000000000501')$$),
    '42501', 'nikita_worker cannot cancel');
SELECT is(pg_temp.as_role('nikita_readonly', $$SELECT * FROM nikita.queue_health$$), 'ok',
    'nikita_readonly reads queue_health');
SELECT is(pg_temp.as_role('nikita_readonly', $$SELECT * FROM nikita.scheduled_events$$), '42501',
    'nikita_readonly cannot read the table');
SELECT is(pg_temp.as_role('nikita_readonly', $$SELECT * FROM nikita.claim_events('w')$$), '42501',
    'nikita_readonly cannot claim');
SELECT is(pg_temp.as_role('nikita_readonly', $$SELECT nikita.cancel_event(gen_random_uuid())$$), '42501',
    'nikita_readonly cannot cancel');
SELECT is(pg_temp.as_role('nikita_readonly', $$SELECT nikita._backoff(1)$$), '42501',
    'nikita_readonly cannot call an internal');

-- A role with no nikita grant at all.
CREATE ROLE nikita_test_stranger NOLOGIN;
SELECT is(pg_temp.as_role('nikita_test_stranger', $$SELECT nikita.next_due_at()$$), '42501',
    'a stranger cannot call next_due_at');
SELECT is(pg_temp.as_role('nikita_test_stranger',
    $$SELECT nikita.schedule_event('00000000-0000-0000-0000-000000000501', 'telegram',
        'message_delivery', '{"text": "hi"}')$$), '42501', 'a stranger cannot schedule');
SELECT is(pg_temp.as_role('nikita_test_stranger', $$SELECT count(*) FROM nikita.scheduled_events$$),
    '42501', 'a stranger cannot read the table');
SELECT is(pg_temp.as_role('nikita_test_stranger', $$SELECT * FROM nikita.queue_health$$), '42501',
    'a stranger cannot read queue_health');
-- What nikita_app scheduled above really is stored.
SELECT is((SELECT count(*)::int FROM nikita.scheduled_events
            WHERE user_id = '00000000-0000-0000-0000-000000000501'), 2,
    'two events were scheduled by nikita_app');

SELECT * FROM finish();
ROLLBACK;
