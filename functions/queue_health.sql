-- Queue health per platform, for nikita-shim status, dashboards and alerting.

CREATE OR REPLACE VIEW nikita.queue_health AS
SELECT
    p.platform,
    count(*) FILTER (WHERE e.status = 'pending') AS pending,
    count(*) FILTER (WHERE e.status = 'pending' AND e.scheduled_at <= now()) AS due_now,
    coalesce(
        round(extract(EPOCH FROM now() - min(e.scheduled_at) FILTER (
            WHERE e.status = 'pending' AND e.scheduled_at <= now()
        )), 3),
        0
    ) AS oldest_due_lag_s,
    count(*) FILTER (WHERE e.status = 'sending') AS in_flight,
    count(*) FILTER (
        WHERE e.status = 'delivered' AND e.updated_at > now() - interval '24 hours'
    ) AS delivered_24h,
    count(*) FILTER (
        WHERE e.status = 'failed' AND e.updated_at > now() - interval '24 hours'
    ) AS failed_24h
FROM (VALUES ('telegram'), ('voice')) AS p (platform)
LEFT JOIN nikita.scheduled_events AS e
    ON
        p.platform = e.platform
        AND (
            e.status IN ('pending', 'sending')
            OR (
                e.status IN ('delivered', 'failed')
                AND e.updated_at > now() - interval '24 hours'
            )
        )
GROUP BY p.platform;
COMMENT ON VIEW nikita.queue_health
IS 'Per platform: pending events, due_now, oldest_due_lag_s (seconds the oldest due event has '
'waited; 0 when none), in_flight (sending), delivered_24h and failed_24h (settled in the last '
'24 hours).';
REVOKE ALL ON nikita.queue_health FROM PUBLIC;
GRANT SELECT ON nikita.queue_health TO nikita_worker, nikita_readonly;
