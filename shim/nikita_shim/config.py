"""Configuration of the shim, read from environment variables and validated at start.

Every problem found is collected so the operator sees them all at once; `ConfigError` carries
the list and the CLI turns it into exit code 2.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from psycopg.conninfo import conninfo_to_dict

from .blank import is_blank, strip_blank
from .redact import MIN_PASSWORD, conninfo_password, safe_libpq_message

T = TypeVar("T")

TELEGRAM_TRANSPORTS = ("telegram", "console", "noop", "disabled")
VOICE_TRANSPORTS = ("elevenlabs", "console", "noop", "disabled")
LOG_FORMATS = ("logfmt", "json")
# The event loop (runtime.py): auto = uvloop when installed, else asyncio's.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
# Telegram claims and completions: durable (synchronous commit) or async (docs/shim.md,
# "Telegram durability"); voice is always durable.
TELEGRAM_DURABILITIES = ("durable", "async")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Test-only fault injection (NIKITA_SHIM_TEST_FAULT): the named core task raises once it has
# work, so the crash path (traceback logged, watchdog starved, exit 1) is tested for real.
TEST_FAULTS = ("pump", "sweeper", "listener")


class ConfigError(Exception):
    """One or more settings are missing or invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def render(self) -> str:
        lines = ["nikita-shim: invalid configuration:"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("See docs/shim.md for every setting.")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings. Secrets are kept out of repr()."""

    database_url: str = field(repr=False)
    worker_id: str
    # transports
    telegram_transport: str
    telegram_bot_token: str | None = field(repr=False)
    telegram_api_base: str
    voice_transport: str
    elevenlabs_api_key: str | None = field(repr=False)
    elevenlabs_agent_id: str | None
    elevenlabs_phone_number_id: str | None
    elevenlabs_api_base: str
    # delivery loop
    batch_size: int = 500
    concurrency: int = 32
    voice_concurrency: int = 4
    lease_seconds: float = 120.0
    poll_interval: float = 30.0
    blocked_poll: float = 1.0
    sweep_interval: float = 60.0
    shutdown_timeout: float = 20.0
    reconnect_max_backoff: float = 30.0
    connect_timeout: float = 5.0
    pool_size: int = 4
    # Telegram limits and timeouts
    telegram_rate: float = 25.0
    telegram_chat_rate: float = 1.0
    rate_limit_max_wait: float = 10.0
    telegram_timeout: float = 10.0
    voice_timeout: float = 15.0
    disabled_defer: float = 300.0
    # observability
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_level: str = "info"
    log_format: str = "logfmt"
    log_priority_prefix: str = "auto"
    # conversations
    conversation_batch: int = 10
    conversation_concurrency: int = 4
    conversation_lease: float = 300.0
    # daily-summary writer (summaries.py; --summary-writer or NIKITA_SHIM_SUMMARY_WRITER)
    summary_writer: str | None = None
    summary_batch: int = 10
    summary_concurrency: int = 2
    summary_lease: float = 300.0
    summary_timeout: float = 10.0
    # performance (docs/shim.md "Performance")
    event_loop: str = "auto"
    telegram_durability: str = "durable"
    # check
    check_max_lag: float = 300.0
    test_fault: str | None = None
    # voice: the game's secret for the signed token its voice-agent tools present (voice_token.py)
    elevenlabs_webhook_secret: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or the database: the bot token, the API
        key, and the database password when it is long enough to be searched for safely."""
        password = conninfo_password(self.database_url) if self.database_url else None
        if password is not None and len(password) < MIN_PASSWORD:
            password = None
        found = (self.telegram_bot_token, self.elevenlabs_api_key, password)
        return tuple(s for s in (*found, self.elevenlabs_webhook_secret) if s)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if is_blank(value):  # the project's one blank rule (nikita_shim.blank)
            return None
        assert value is not None
        return strip_blank(value)

    def number(
        self,
        name: str,
        default: T,
        parse: Callable[[str], T],
        low: float,
        high: float,
        what: str,
    ) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = parse(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not {what}")
            return default
        if not (low <= parsed <= high):  # type: ignore[operator]
            self.problems.append(f"{name}={value!r} must be between {low:g} and {high:g}")
            return default
        return parsed

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self.number(name, default, int, low, high, "an integer")

    def seconds(self, name: str, default: float, low: float, high: float) -> float:
        return self.number(name, default, float, low, high, "a number of seconds")

    def rate(self, name: str, default: float) -> float:
        return self.number(name, default, float, 0.001, 10_000, "a rate (per second)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        value = value.lower()
        if value not in choices:
            self.problems.append(f"{name}={value!r} must be one of: {', '.join(choices)}")
            return default
        return value

    def url(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        if not re.match(r"^https?://[^/\s]+", value):
            self.problems.append(f"{name}={value!r} must be an http:// or https:// URL")
        return value.rstrip("/")


def database_url_problem(url: str) -> str | None:
    """What is wrong with DATABASE_URL, never quoting its password (or a piece of it)."""
    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg raises ProgrammingError with the parser's reason
        return (
            "DATABASE_URL is not a valid PostgreSQL connection string "
            f"({safe_libpq_message(str(exc), url)}); in a URL, percent-encode special "
            "characters of the password (@ : / ? # % and spaces)"
        )
    # A URL password with an unencoded '@', ':', '/' or '#' parses "successfully" into a host,
    # port or database name holding part of the password, which libpq would print later.
    port = str(params.get("port") or "")
    odd = (
        "@" in str(params.get("host") or "")
        or "@" in str(params.get("dbname") or "")
        or "/" in str(params.get("dbname") or "")
        or any(p and not p.isdigit() for p in port.split(","))
    )
    if odd and url.lower().startswith(("postgresql://", "postgres://")):
        return (
            "DATABASE_URL does not parse as intended (a host, port or database name holds "
            "'@', '/' or a non-number): percent-encode special characters of the password "
            "(@ as %40, : as %3A, / as %2F, # as %23)"
        )
    return None


def _telegram_base(url: str) -> str:
    """python-telegram-bot appends the token to base_url: it must end in /bot."""
    return url if url.endswith("/bot") else url + "/bot"


def load_config(env: Mapping[str, str] | None = None, *, need_delivery: bool = True) -> Config:
    """Read and validate the configuration; raise ConfigError naming every problem.

    need_delivery=False (status/check) only needs DATABASE_URL.
    """
    env = os.environ if env is None else env
    r = _Reader(env)

    database_url = r.raw("DATABASE_URL")
    if database_url is None:
        r.problems.append(
            "DATABASE_URL is missing (e.g. postgresql://nikita_worker@127.0.0.1:5432/nikita)"
        )
        database_url = ""
    else:
        problem = database_url_problem(database_url)
        if problem:
            r.problems.append(problem)

    token = r.raw("TELEGRAM_BOT_TOKEN")
    if token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", token):
        r.problems.append("TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<secret>)")
    telegram_transport = r.choice(
        "NIKITA_SHIM_TELEGRAM_TRANSPORT",
        "telegram" if token else "console",
        TELEGRAM_TRANSPORTS,
    )
    if need_delivery and telegram_transport == "telegram" and token is None:
        r.problems.append("TELEGRAM_BOT_TOKEN is missing (NIKITA_SHIM_TELEGRAM_TRANSPORT=telegram)")

    api_key = r.raw("ELEVENLABS_API_KEY")
    agent_id = r.raw("ELEVENLABS_AGENT_ID")
    phone_id = r.raw("ELEVENLABS_PHONE_NUMBER_ID")
    if api_key:
        voice_default = "elevenlabs"
    elif telegram_transport in ("console", "noop"):
        voice_default = telegram_transport  # offline development: everything on the console
    else:
        voice_default = "disabled"
    voice_transport = r.choice("NIKITA_SHIM_VOICE_TRANSPORT", voice_default, VOICE_TRANSPORTS)
    if need_delivery and voice_transport == "elevenlabs":
        for name, value in (
            ("ELEVENLABS_API_KEY", api_key),
            ("ELEVENLABS_AGENT_ID", agent_id),
            ("ELEVENLABS_PHONE_NUMBER_ID", phone_id),
        ):
            if value is None:
                r.problems.append(f"{name} is missing (needed for voice calls)")

    webhook_secret = r.raw("ELEVENLABS_WEBHOOK_SECRET")
    if webhook_secret is not None and len(webhook_secret) < 16:
        # a short HMAC key is guessable, and redacting a short string would blank words in logs
        r.problems.append("ELEVENLABS_WEBHOOK_SECRET is shorter than 16 characters")

    metrics_raw = r.raw("NIKITA_SHIM_METRICS_PORT") or r.raw("METRICS_PORT")
    metrics_port: int | None = None
    if metrics_raw is not None:
        try:
            metrics_port = int(metrics_raw)
            if not 1 <= metrics_port <= 65535:
                raise ValueError
        except ValueError:
            r.problems.append(f"NIKITA_SHIM_METRICS_PORT={metrics_raw!r} is not a TCP port")
            metrics_port = None

    cfg = Config(
        database_url=database_url,
        worker_id=r.raw("NIKITA_SHIM_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}",
        telegram_transport=telegram_transport,
        telegram_bot_token=token,
        telegram_api_base=_telegram_base(
            r.url("TELEGRAM_API_BASE", "https://api.telegram.org/bot")
        ),
        voice_transport=voice_transport,
        elevenlabs_api_key=api_key,
        elevenlabs_agent_id=agent_id,
        elevenlabs_phone_number_id=phone_id,
        elevenlabs_api_base=r.url("ELEVENLABS_API_BASE", "https://api.elevenlabs.io"),
        batch_size=r.integer("NIKITA_SHIM_BATCH_SIZE", 500, 1, 5000),
        concurrency=r.integer("NIKITA_SHIM_CONCURRENCY", 32, 1, 1000),
        voice_concurrency=r.integer("NIKITA_SHIM_VOICE_CONCURRENCY", 4, 1, 1000),
        lease_seconds=r.seconds("NIKITA_SHIM_LEASE_SECONDS", 120.0, 1, 86400),
        poll_interval=r.seconds("NIKITA_SHIM_POLL_INTERVAL", 30.0, 0.05, 3600),
        blocked_poll=r.seconds("NIKITA_SHIM_BLOCKED_POLL", 1.0, 0.01, 60),
        sweep_interval=r.seconds("NIKITA_SHIM_SWEEP_INTERVAL", 60.0, 0, 86400),
        shutdown_timeout=r.seconds("NIKITA_SHIM_SHUTDOWN_TIMEOUT", 20.0, 0, 600),
        reconnect_max_backoff=r.seconds("NIKITA_SHIM_RECONNECT_MAX_BACKOFF", 30.0, 0.1, 600),
        connect_timeout=r.seconds("NIKITA_SHIM_CONNECT_TIMEOUT", 5.0, 0.5, 120),
        pool_size=r.integer("NIKITA_SHIM_POOL_SIZE", 4, 2, 100),
        telegram_rate=r.rate("NIKITA_SHIM_TELEGRAM_RATE", 25.0),
        telegram_chat_rate=r.rate("NIKITA_SHIM_TELEGRAM_CHAT_RATE", 1.0),
        rate_limit_max_wait=r.seconds("NIKITA_SHIM_RATE_LIMIT_MAX_WAIT", 10.0, 0, 3600),
        telegram_timeout=r.seconds("NIKITA_SHIM_TELEGRAM_TIMEOUT", 10.0, 0.1, 300),
        voice_timeout=r.seconds("NIKITA_SHIM_VOICE_TIMEOUT", 15.0, 0.1, 300),
        disabled_defer=r.seconds("NIKITA_SHIM_DISABLED_DEFER", 300.0, 1, 86400),
        metrics_port=metrics_port,
        metrics_host=r.raw("NIKITA_SHIM_METRICS_HOST") or "127.0.0.1",
        log_level=r.choice("NIKITA_SHIM_LOG_LEVEL", "info", LOG_LEVELS),
        log_format=r.choice("NIKITA_SHIM_LOG_FORMAT", "logfmt", LOG_FORMATS),
        log_priority_prefix=r.choice(
            "NIKITA_SHIM_LOG_PRIORITY_PREFIX", "auto", ("auto", "yes", "no")
        ),
        conversation_batch=r.integer("NIKITA_SHIM_CONVERSATION_BATCH", 10, 1, 1000),
        conversation_concurrency=r.integer("NIKITA_SHIM_CONVERSATION_CONCURRENCY", 4, 1, 100),
        conversation_lease=r.seconds("NIKITA_SHIM_CONVERSATION_LEASE", 300.0, 5, 86400),
        summary_writer=r.raw("NIKITA_SHIM_SUMMARY_WRITER") or None,
        summary_batch=r.integer("NIKITA_SHIM_SUMMARY_BATCH", 10, 1, 1000),
        summary_concurrency=r.integer("NIKITA_SHIM_SUMMARY_CONCURRENCY", 2, 1, 100),
        summary_lease=r.seconds("NIKITA_SHIM_SUMMARY_LEASE", 300.0, 10, 86400),
        summary_timeout=r.seconds("NIKITA_SHIM_SUMMARY_TIMEOUT", 10.0, 0.1, 3600),
        event_loop=r.choice("NIKITA_SHIM_EVENT_LOOP", "auto", EVENT_LOOPS),
        telegram_durability=r.choice(
            "NIKITA_SHIM_TELEGRAM_DURABILITY", "durable", TELEGRAM_DURABILITIES
        ),
        check_max_lag=r.seconds("NIKITA_SHIM_CHECK_MAX_LAG", 300.0, 1, 86400 * 7),
        test_fault=(
            r.choice("NIKITA_SHIM_TEST_FAULT", "", TEST_FAULTS)
            if r.raw("NIKITA_SHIM_TEST_FAULT")
            else None
        ),
        elevenlabs_webhook_secret=webhook_secret,
    )
    if need_delivery and cfg.lease_seconds <= max(cfg.telegram_timeout, cfg.voice_timeout) + 1:
        r.problems.append(
            "NIKITA_SHIM_LEASE_SECONDS must exceed the transport timeouts "
            f"(lease {cfg.lease_seconds:g}s, telegram {cfg.telegram_timeout:g}s, "
            f"voice {cfg.voice_timeout:g}s) by at least one second"
        )
    if cfg.summary_timeout > cfg.summary_lease - 5:
        r.problems.append(
            "NIKITA_SHIM_SUMMARY_TIMEOUT must be at most NIKITA_SHIM_SUMMARY_LEASE minus 5 s "
            f"(timeout {cfg.summary_timeout:g}s, lease {cfg.summary_lease:g}s)"
        )
    if r.problems:
        raise ConfigError(r.problems)
    return cfg
