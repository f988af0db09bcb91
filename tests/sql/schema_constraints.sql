-- Every constraint of the data model rejects a bad row with a clear error, and the table
-- is unchanged afterwards. Generated list of cases; each names the constraint it proves.
BEGIN;

SELECT plan(89);

INSERT INTO nikita.users (id, telegram_id, phone) VALUES ('00000000-0000-0000-0000-000000000001', 1001, '+4915112345678');
CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM nikita.users) AS users, (SELECT count(*) FROM nikita.scheduled_events) AS events,
       (SELECT count(*) FROM nikita.conversations) AS conversations,
       (SELECT count(*) FROM nikita.job_executions) AS jobs;

SELECT throws_ok(
    $$INSERT INTO nikita.users (telegram_id) VALUES (-5)$$,
    '23514',
    'new row for relation "users" violates check constraint "users_telegram_id_positive"',
    'users_telegram_id_positive rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (phone) VALUES ('0151 123456')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_phone_e164"',
    'users_phone_e164 rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (phone) VALUES ('+0123456789')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_phone_e164"',
    'users_phone_e164 rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (chapter) VALUES (6)$$,
    '23514',
    'new row for relation "users" violates check constraint "users_chapter_range"',
    'users_chapter_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (chapter) VALUES (0)$$,
    '23514',
    'new row for relation "users" violates check constraint "users_chapter_range"',
    'users_chapter_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (relationship_score) VALUES (100.01)$$,
    '23514',
    'new row for relation "users" violates check constraint "users_score_range"',
    'users_score_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (relationship_score) VALUES (-1)$$,
    '23514',
    'new row for relation "users" violates check constraint "users_score_range"',
    'users_score_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (game_status) VALUES ('paused')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_game_status_valid"',
    'users_game_status_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (onboarding_status) VALUES ('done')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_onboarding_status_valid"',
    'users_onboarding_status_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (timezone) VALUES ('Mars/Olympus_Mons')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_timezone_iana"',
    'users_timezone_iana rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.users (timezone) VALUES ('+02:00')$$,
    '23514',
    'new row for relation "users" violates check constraint "users_timezone_iana"',
    'users_timezone_iana rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform) VALUES ('00000000-0000-0000-0000-000000000001', 'sms')$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_platform_valid"',
    'conversations_platform_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, status, ended_at) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', 'archived', now())$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_status_valid"',
    'conversations_status_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, processing_attempts) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', -1)$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_attempts_nonnegative"',
    'conversations_attempts_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, started_at, last_message_at) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', now(), now() - interval '1 minute')$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_last_message_after_start"',
    'conversations_last_message_after_start rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, status) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', 'ended')$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_ended_at_when_ended"',
    'conversations_ended_at_when_ended rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, ended_at) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', now())$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_ended_at_when_ended"',
    'conversations_ended_at_when_ended rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, status, ended_at) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', 'processing', now())$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_lease_when_processing"',
    'conversations_lease_when_processing rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type) VALUES ('00000000-0000-0000-0000-000000000001', 101, 1, 1, 'conversation')$$,
    '23514',
    'new row for relation "score_history" violates check constraint "score_history_score_range"',
    'score_history_score_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type) VALUES ('00000000-0000-0000-0000-000000000001', 50, -101, 1, 'conversation')$$,
    '23514',
    'new row for relation "score_history" violates check constraint "score_history_delta_range"',
    'score_history_delta_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type) VALUES ('00000000-0000-0000-0000-000000000001', 50, 1, 9, 'conversation')$$,
    '23514',
    'new row for relation "score_history" violates check constraint "score_history_chapter_range"',
    'score_history_chapter_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type) VALUES ('00000000-0000-0000-0000-000000000001', 50, 1, 1, 'bonus')$$,
    '23514',
    'new row for relation "score_history" violates check constraint "score_history_event_type_valid"',
    'score_history_event_type_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.score_history (user_id, score, delta, chapter, event_type, event_details) VALUES ('00000000-0000-0000-0000-000000000001', 50, 1, 1, 'decay', '[1]')$$,
    '23514',
    'new row for relation "score_history" violates check constraint "score_history_details_object"',
    'score_history_details_object rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 120, 50)$$,
    '23514',
    'new row for relation "daily_summaries" violates check constraint "daily_summaries_score_start_range"',
    'daily_summaries_score_start_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 50, -3)$$,
    '23514',
    'new row for relation "daily_summaries" violates check constraint "daily_summaries_score_end_range"',
    'daily_summaries_score_end_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, decay_applied) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 50, 50, -1)$$,
    '23514',
    'new row for relation "daily_summaries" violates check constraint "daily_summaries_decay_nonnegative"',
    'daily_summaries_decay_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, conversations_count) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 50, 50, -1)$$,
    '23514',
    'new row for relation "daily_summaries" violates check constraint "daily_summaries_conversations_nonnegative"',
    'daily_summaries_conversations_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id) VALUES (0, 1)$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_telegram_id_positive"',
    'signup_sessions_telegram_id_positive rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, email) VALUES (7, 7, 'not-an-email')$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_email_valid"',
    'signup_sessions_email_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, email, signup_state) VALUES (7, 7, 'a@b.co', 'sleeping')$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_state_valid"',
    'signup_sessions_state_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, attempts) VALUES (7, 7, 11)$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_attempts_range"',
    'signup_sessions_attempts_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, signup_state) VALUES (7, 7, 'awaiting_code')$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_email_when_awaiting_code"',
    'signup_sessions_email_when_awaiting_code rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.decay_rules SET points_per_hour = 0 WHERE chapter = 1$$,
    '23514',
    'new row for relation "decay_rules" violates check constraint "decay_rules_rate_positive"',
    'decay_rules_rate_positive rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.decay_rules SET daily_cap = -1 WHERE chapter = 1$$,
    '23514',
    'new row for relation "decay_rules" violates check constraint "decay_rules_cap_positive"',
    'decay_rules_cap_positive rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.decay_rules SET grace = '-1 hour' WHERE chapter = 1$$,
    '23514',
    'new row for relation "decay_rules" violates check constraint "decay_rules_grace_nonnegative"',
    'decay_rules_grace_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.decay_rules VALUES (6, '1 hour', 1, 1)$$,
    '23514',
    'new row for relation "decay_rules" violates check constraint "decay_rules_chapter_range"',
    'decay_rules_chapter_range rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.reply_delays SET max_delay = '1 second' WHERE chapter = 1$$,
    '23514',
    'new row for relation "reply_delays" violates check constraint "reply_delays_max_not_below_min"',
    'reply_delays_max_not_below_min rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.reply_delays SET min_delay = '-1 second' WHERE chapter = 5$$,
    '23514',
    'new row for relation "reply_delays" violates check constraint "reply_delays_min_nonnegative"',
    'reply_delays_min_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.reply_delays VALUES (0, '0', '0')$$,
    '23514',
    'new row for relation "reply_delays" violates check constraint "reply_delays_chapter_range"',
    'reply_delays_chapter_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'sms', 'follow_up', '{"chat_id": 1001, "text": "hi"}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_platform_valid"',
    'scheduled_events_platform_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'spam', '{"chat_id": 1001, "text": "hi"}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_event_type_valid"',
    'scheduled_events_event_type_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'lost')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_status_valid"',
    'scheduled_events_status_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, max_attempts) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 0)$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_max_attempts_range"',
    'scheduled_events_max_attempts_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, attempts) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 5)$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_attempts_range"',
    'scheduled_events_attempts_range rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, errors) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', '{}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_errors_array"',
    'scheduled_events_errors_array rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, dedupe_key) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', '')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_dedupe_key_nonempty"',
    'scheduled_events_dedupe_key_nonempty rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES (NULL, 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_user_unless_ops_alert"',
    'scheduled_events_user_unless_ops_alert rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status, attempts) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'sending', 1)$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_lease_when_sending"',
    'scheduled_events_lease_when_sending rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'delivered')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_delivered_at_when_delivered"',
    'scheduled_events_delivered_at_when_delivered rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '"hi"')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_content_object"',
    'scheduled_events_content_object rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": ""}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_telegram_content"',
    'scheduled_events_telegram_content rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": "1001", "text": "hi"}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_telegram_content"',
    'scheduled_events_telegram_content rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', jsonb_build_object('chat_id', 1001, 'text', repeat('x', 32769)))$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_telegram_content"',
    'scheduled_events_telegram_content rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', 'call_reminder', '{"to_number": "12345"}')$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_voice_content"',
    'scheduled_events_voice_content rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name) VALUES ('reindex')$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_job_name_valid"',
    'job_executions_job_name_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status, completed_at) VALUES ('decay', 'exploded', now())$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_status_valid"',
    'job_executions_status_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status) VALUES ('decay', 'completed')$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_completed_when_settled"',
    'job_executions_completed_when_settled rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status, completed_at) VALUES ('decay', 'failed', now())$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_error_when_failed"',
    'job_executions_error_when_failed rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status, completed_at, result) VALUES ('decay', 'completed', now(), '[]')$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_result_object"',
    'job_executions_result_object rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, duration_ms) VALUES ('decay', -1)$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_duration_nonnegative"',
    'job_executions_duration_nonnegative rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.settings SET value = '"soon"' WHERE key = 'max_lateness'$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_value_matches_type"',
    'settings_value_matches_type rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.settings SET value = '2.5' WHERE key = 'conversation_max_attempts'$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_value_matches_type"',
    'settings_value_matches_type rejects a bad row'
);
SELECT throws_ok(
    $$UPDATE nikita.settings SET value = '"-100"' WHERE key = 'alert_chat_id'$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_value_matches_type"',
    'settings_value_matches_type rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.settings (key, value_type, value, description) VALUES ('x', 'date', NULL, 'd')$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_value_type_valid"',
    'settings_value_type_valid rejects a bad row'
);
SELECT throws_ok(
    $$INSERT INTO nikita.settings (key, value_type, value, description) VALUES ('Bad Key', 'text', '"v"', 'd')$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_key_format"',
    'settings_key_format rejects a bad row'
);

-- Free-text length limits and the content bound (0009).
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status, delivered_at, provider_ref) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'delivered', now(), repeat('1', 1025))$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_provider_ref_length"',
    'scheduled_events_provider_ref_length: 1025 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, last_error) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', repeat('e', 2001))$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_last_error_length"',
    'scheduled_events_last_error_length: 2001 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status, attempts, locked_by, locked_until, lock_token) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'sending', 1, repeat('w', 201), now(), gen_random_uuid())$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_locked_by_length"',
    'scheduled_events_locked_by_length: 201 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', jsonb_build_object('chat_id', 1001, 'text', 'hi', 'junk', repeat('j', 300000)))$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_content_bounded"',
    'scheduled_events_content_bounded: content over 262144 bytes'
);
SELECT throws_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', jsonb_build_object('chat_id', 1001, 'text', 'hi', 'reply_markup', (repeat('[', 16) || '1' || repeat(']', 16))::jsonb))$$,
    '23514',
    'new row for relation "scheduled_events" violates check constraint "scheduled_events_content_bounded"',
    'scheduled_events_content_bounded: a value 17 levels below content'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, status, ended_at, processing_attempts, locked_by, locked_until, lock_token) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', 'processing', now(), 1, repeat('w', 201), now(), gen_random_uuid())$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_locked_by_length"',
    'conversations_locked_by_length: 201 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, error) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', repeat('e', 4001))$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_error_length"',
    'conversations_error_length: 4001 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, summary) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', repeat('s', 16001))$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_summary_length"',
    'conversations_summary_length: 16001 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, emotional_tone) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', repeat('t', 201))$$,
    '23514',
    'new row for relation "conversations" violates check constraint "conversations_emotional_tone_length"',
    'conversations_emotional_tone_length: 201 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end, summary_text) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-02', 50, 50, repeat('s', 8001))$$,
    '23514',
    'new row for relation "daily_summaries" violates check constraint "daily_summaries_summary_text_length"',
    'daily_summaries_summary_text_length: 8001 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.job_executions (job_name, status, completed_at, error) VALUES ('decay', 'failed', now(), repeat('e', 8001))$$,
    '23514',
    'new row for relation "job_executions" violates check constraint "job_executions_error_length"',
    'job_executions_error_length: 8001 characters'
);
SELECT throws_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, email) VALUES (8, 8, repeat('a', 64) || '@' || repeat('b', 186) || '.com')$$,
    '23514',
    'new row for relation "signup_sessions" violates check constraint "signup_sessions_email_length"',
    'signup_sessions_email_length: a 255-character address'
);
SELECT throws_ok(
    $$UPDATE nikita.settings SET description = repeat('d', 1001) WHERE key = 'max_lateness'$$,
    '23514',
    'new row for relation "settings" violates check constraint "settings_description_length"',
    'settings_description_length: 1001 characters'
);
SELECT lives_ok(
    $$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, status, delivered_at, provider_ref, last_error) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "hi"}', 'delivered', now(), repeat('1', 1024), repeat('e', 2000))$$,
    'provider_ref of 1024 and last_error of 2000 characters are accepted'
);
SELECT lives_ok(
    $$INSERT INTO nikita.conversations (user_id, platform, error, summary, emotional_tone) VALUES ('00000000-0000-0000-0000-000000000001', 'voice', repeat('e', 4000), repeat('s', 16000), repeat('t', 200))$$,
    'conversation error 4000, summary 16000, emotional_tone 200 characters are accepted'
);
SELECT lives_ok(
    $$INSERT INTO nikita.signup_sessions (telegram_id, chat_id, email) VALUES (9, 9, repeat('a', 64) || '@' || repeat('b', 185) || '.com')$$,
    'a 254-character e-mail address is accepted'
);
-- (The accepted conversation goes again: the last check counts conversations.)
DELETE FROM nikita.conversations WHERE emotional_tone = repeat('t', 200);

SELECT throws_ok($$INSERT INTO nikita.users (telegram_id) VALUES (1001)$$, '23505',
    'duplicate key value violates unique constraint "users_telegram_id_key"', 'telegram_id is unique');
SELECT throws_ok($$INSERT INTO nikita.conversations (user_id, platform) VALUES (gen_random_uuid(), 'voice')$$,
    '23503', NULL, 'a conversation needs an existing player');
SELECT throws_ok($$INSERT INTO nikita.daily_summaries (user_id, date, score_start, score_end) VALUES ('00000000-0000-0000-0000-000000000001', '2026-01-01', 50, 50), ('00000000-0000-0000-0000-000000000001', '2026-01-01', 40, 40)$$,
    '23505', 'duplicate key value violates unique constraint "daily_summaries_user_date_key"', 'one summary per player and day');
SELECT throws_ok($$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, dedupe_key) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "a"}', 'k'), ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "b"}', 'k')$$,
    '23505', 'duplicate key value violates unique constraint "scheduled_events_dedupe_live_key"', 'a dedupe key is unique among live events');
SELECT lives_ok($$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content, dedupe_key, status) VALUES ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "a"}', 'k2', 'cancelled'), ('00000000-0000-0000-0000-000000000001', 'telegram', 'follow_up', '{"chat_id": 1001, "text": "b"}', 'k2', 'pending')$$,
    'a settled event''s dedupe key may be reused');
SELECT lives_ok($$INSERT INTO nikita.scheduled_events (user_id, platform, event_type, content) VALUES (NULL, 'telegram', 'ops_alert', '{"chat_id": -100123, "text": "job failed"}')$$,
    'an ops alert belongs to no player');
SELECT is((SELECT count(*) FROM nikita.users), (SELECT users FROM counts_before), 'no bad player row was stored');
SELECT is((SELECT count(*) FROM nikita.conversations), (SELECT conversations FROM counts_before), 'no bad conversation stored');

SELECT * FROM finish();
ROLLBACK;
