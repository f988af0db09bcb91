-- The notification opt-out (users.notifications_enabled; docs/queue.md "Notification opt-out").
--
--   nikita._is_proactive_event(event_type)   the types the game sends on its own initiative,
--                                            which a player who opted out does not get
--   nikita._opt_out_reason()                 the last_error of an event cancelled for it
--   nikita._cancel_proactive_events_on_opt_out()
--                                            trigger users_notifications_opt_out (sql/0014):
--                                            notifications_enabled turned false cancels the
--                                            player's pending proactive events
--
-- The other half is in _schedule (functions/schedule_event.sql): a proactive event for a player
-- who has opted out is stored 'cancelled' at once, with the reason. So nothing is checked when
-- events are claimed: the claim path costs what it did. _schedule reads the flag with FOR SHARE
-- (proactive types only): an opt-out committing meanwhile either comes first (the flag is read
-- false) or waits for the scheduling transaction, and its trigger then sees the new event.
-- An event already claimed (sending) is not recalled, as with cancel_user_events.

CREATE OR REPLACE FUNCTION nikita._is_proactive_event(p_event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Proactive: the game writes first. Not proactive: message_delivery and boss_prompt (they
    -- answer the player's own message) and ops_alert (no player). boss_timeout: the boss
    -- fight's timeout message, if that branch adds the type under that name.
    SELECT p_event_type IN ('call_reminder', 'follow_up', 'decay_warning', 'game_over',
                            'boss_timeout')
$$;
COMMENT ON FUNCTION nikita._is_proactive_event(text)
IS 'Internal: true for the event types a player who turned notifications off does not get '
'(call_reminder, follow_up, decay_warning, game_over, boss_timeout).';

CREATE OR REPLACE FUNCTION nikita._opt_out_reason()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'cancelled: the player turned notifications off (users.notifications_enabled = '
        || 'false); proactive messages are not delivered'::text
$$;
COMMENT ON FUNCTION nikita._opt_out_reason()
IS 'Internal: last_error of an event cancelled by the notification opt-out.';

CREATE OR REPLACE FUNCTION nikita._cancel_proactive_events_on_opt_out()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER  -- the app updates users, owns no event
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE nikita.scheduled_events AS e
    SET status = 'cancelled', last_error = nikita._opt_out_reason()
    WHERE e.user_id = NEW.id AND e.status = 'pending'
        AND nikita._is_proactive_event(e.event_type);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION nikita._cancel_proactive_events_on_opt_out()
IS 'Internal: trigger users_notifications_opt_out (AFTER UPDATE OF notifications_enabled, when '
'it turns false): cancels the player''s pending proactive events with the reason in last_error.';

REVOKE EXECUTE ON FUNCTION nikita._is_proactive_event(text), nikita._opt_out_reason(),
nikita._cancel_proactive_events_on_opt_out() FROM PUBLIC;
