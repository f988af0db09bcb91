"""Prometheus metrics, in a registry of the shim's own (no process-global state).

The queue and job gauges describe the whole database, not this replica: every replica
exports the same values, and dashboards and alert rules aggregate them with max() by
platform / job (docs/shim.md, deploy/prometheus/nikita-alerts.yml), never sum().
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from . import __version__

PLATFORMS = ("telegram", "voice")
OUTCOMES = ("delivered", "retry", "failed", "unknown", "deferred", "released", "disabled")
LATENESS_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600,
)  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_* (CPU, memory, open fds, start time) and python_info: the default registry
        # has them, a registry of our own must add them.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("nikita_shim_build", "Version of the running shim", registry=r).info(
            {"version": __version__}
        )
        self.deliveries = Counter(
            "nikita_shim_deliveries",
            "Delivery attempts by platform and outcome",
            ["platform", "outcome"],
            registry=r,
        )
        self.lateness = Histogram(
            "nikita_shim_delivery_lateness_seconds",
            "Transport call time minus scheduled_at",
            ["platform"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "nikita_shim_delivery_duration_seconds",
            "Time spent in the transport per event",
            ["platform"],
            registry=r,
        )
        self.in_flight = Gauge(
            "nikita_shim_in_flight", "Events claimed and not settled", registry=r
        )
        self.queue_pending = Gauge(
            "nikita_shim_queue_pending", "Pending events (queue_health)", ["platform"], registry=r
        )
        self.queue_due = Gauge(
            "nikita_shim_queue_due_now", "Events due now (queue_health)", ["platform"], registry=r
        )
        self.queue_lag = Gauge(
            "nikita_shim_queue_oldest_due_lag_seconds",
            "Age of the oldest due pending event (queue_health)",
            ["platform"],
            registry=r,
        )
        self.job_overdue = Gauge(
            "nikita_shim_job_overdue",
            "1 when the job has no success within twice its interval (job_health)",
            ["job_name"],  # not "job": that is the scrape target's label
            registry=r,
        )
        self.job_failing = Gauge(
            "nikita_shim_job_failing",
            "1 when the job's last run failed after its last success (job_health)",
            ["job_name"],  # not "job": that is the scrape target's label
            registry=r,
        )
        self.db_connected = Gauge("nikita_shim_db_connected", "1 when connected", registry=r)
        self.db_reconnects = Counter(
            "nikita_shim_db_reconnects", "Reconnections to the database", registry=r
        )
        self.leases_lost = Counter(
            "nikita_shim_leases_lost", "Settlements refused because the lease was lost", registry=r
        )
        self.platform_disabled = Gauge(
            "nikita_shim_platform_disabled",
            "1 when the platform is stopped by a credential fault",
            ["platform"],
            registry=r,
        )
        self.conversations = Counter(
            "nikita_shim_conversations",
            "Processed conversations by outcome",
            ["outcome"],
            registry=r,
        )
        # bound children, so the hot path does no label lookups
        self._deliveries = {
            (p, o): self.deliveries.labels(p, o) for p in PLATFORMS for o in OUTCOMES
        }
        self._lateness = {p: self.lateness.labels(p) for p in PLATFORMS}
        self._duration = {p: self.duration.labels(p) for p in PLATFORMS}

    def delivery(self, platform: str, outcome: str, lateness: float, duration: float) -> None:
        key = (platform, outcome)
        counter = self._deliveries.get(key) or self.deliveries.labels(platform, outcome)
        counter.inc()
        if lateness >= 0 and platform in self._lateness:
            self._lateness[platform].observe(lateness)
            self._duration[platform].observe(duration)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
