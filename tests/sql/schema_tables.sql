-- The data model of DESIGN.md: tables, key columns, seeds.
BEGIN;
SELECT plan(22);

SELECT tables_are('nikita', ARRAY[
    'users', 'conversations', 'score_history', 'daily_summaries', 'signup_sessions',
    'decay_rules', 'reply_delays', 'scheduled_events', 'job_executions', 'settings',
    'schema_migrations', 'cron_jobs', 'schema_version'
]);

SELECT columns_are('nikita', 'users', ARRAY[
    'id', 'telegram_id', 'phone', 'chapter', 'relationship_score', 'game_status',
    'onboarding_status', 'timezone', 'notifications_enabled', 'last_interaction_at',
    'decayed_through', 'created_at', 'updated_at', 'boss_fight_started_at', 'boss_attempts'
]);
SELECT col_type_is('nikita', 'users', 'relationship_score', 'numeric(5,2)', 'score is numeric(5,2)');
SELECT col_default_is('nikita', 'users', 'relationship_score', '50'::text, 'score defaults to 50');
SELECT col_default_is('nikita', 'users', 'timezone', 'UTC'::text, 'time zone defaults to UTC');

SELECT columns_are('nikita', 'conversations', ARRAY[
    'id', 'user_id', 'platform', 'status', 'started_at', 'last_message_at', 'ended_at',
    'processing_attempts', 'locked_by', 'locked_until', 'lock_token', 'error', 'summary',
    'emotional_tone', 'created_at', 'updated_at'
]);
SELECT columns_are('nikita', 'score_history', ARRAY[
    'id', 'user_id', 'score', 'delta', 'chapter', 'event_type', 'event_details', 'recorded_at',
    'decay_day'
]);
SELECT columns_are('nikita', 'daily_summaries', ARRAY[
    'id', 'user_id', 'date', 'score_start', 'score_end', 'decay_applied',
    'conversations_count', 'summary_text', 'created_at',
    -- the summary writer (sql/0015)
    'writer_state', 'writer_attempts', 'locked_by', 'locked_until', 'lock_token', 'writer_error',
    'nikita_summary_text', 'emotional_tone', 'written_at'
]);
SELECT columns_are('nikita', 'signup_sessions', ARRAY[
    'id', 'telegram_id', 'chat_id', 'email', 'signup_state', 'attempts', 'expires_at',
    'created_at'
]);
SELECT columns_are('nikita', 'scheduled_events', ARRAY[
    'id', 'user_id', 'platform', 'event_type', 'content', 'scheduled_at', 'status', 'attempts',
    'max_attempts', 'locked_by', 'locked_until', 'lock_token', 'delivered_at', 'provider_ref',
    'last_error', 'errors', 'dedupe_key', 'source_conversation_id', 'created_at', 'updated_at',
    'seq', 'order_at'
]);
SELECT columns_are('nikita', 'job_executions', ARRAY[
    'id', 'job_name', 'started_at', 'completed_at', 'status', 'result', 'error', 'duration_ms'
]);

SELECT results_eq(
    $$SELECT chapter::int, grace, points_per_hour, daily_cap FROM nikita.decay_rules ORDER BY 1$$,
    $$VALUES (1, interval '8 hours', 0.8, 12.00), (2, '16 hours', 0.6, 10),
             (3, '24 hours', 0.4, 8), (4, '48 hours', 0.3, 6), (5, '72 hours', 0.2, 4)$$,
    'decay_rules seeded with DESIGN''s values'
);
SELECT results_eq(
    $$SELECT chapter::int, min_delay, max_delay FROM nikita.reply_delays ORDER BY 1$$,
    $$VALUES (1, interval '2 minutes', interval '5 minutes'), (2, '1 minute', '3 minutes'),
             (3, '30 seconds', '2 minutes'), (4, '10 seconds', '60 seconds'), (5, '0', '0')$$,
    'reply_delays seeded with DESIGN''s values'
);
SELECT is(nikita._setting_interval('max_lateness'), interval '24 hours', 'max lateness 24 h');
SELECT is(nikita._setting_interval('event_retention'), interval '30 days', 'retention 30 days');
SELECT is(nikita._setting_interval('failed_event_retention'), interval '90 days', 'failed 90 d');
SELECT is(nikita._setting_interval('conversation_idle_timeout'), interval '15 minutes', 'idle');
SELECT is(nikita._setting_bigint('alert_chat_id'), NULL, 'no alert chat by default');
SELECT throws_ok($$SELECT nikita._setting('no_such_knob')$$, '22023',
    'unknown setting "no_such_knob"', 'an unknown setting is an error');

SELECT has_index('nikita', 'scheduled_events', 'scheduled_events_claim_idx', 'claim index');
SELECT is(
    (SELECT pg_get_expr(indpred, indrelid) FROM pg_index
      WHERE indexrelid = 'nikita.scheduled_events_claim_idx'::regclass),
    '(status = ''pending''::text)', 'the claim index is partial on pending rows'
);
SELECT is(
    (SELECT array_agg(confdeltype::text ORDER BY conrelid::regclass::text, conname)
       FROM pg_constraint WHERE contype = 'f' AND connamespace = 'nikita'::regnamespace),
    ARRAY['c', 'c', 'n', 'c', 'c'],
    'foreign keys: cascade from users, set null from conversations to events'
);

SELECT * FROM finish();
ROLLBACK;
