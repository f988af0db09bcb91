"""Structured logging: one line per record, logfmt (default) or JSON.

Under systemd each line starts with its syslog priority (`<3>` err ... `<7>` debug,
sd-daemon(3)), which journald strips and stores, so `journalctl -p err` filters by level.

Fields are passed as `extra={"fields": {...}}`. Third-party loggers that could print a URL
containing the bot token (httpx logs every request at INFO) are held at WARNING.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from .redact import Redactor

_QUIET = ("httpx", "httpcore", "telegram", "psycopg", "psycopg.pool", "hpack")


_ts_second = -1
_ts_prefix = ""


def _ts(created: float) -> str:
    # One strftime per second, not per line (a drain logs thousands of lines a second).
    global _ts_second, _ts_prefix
    second = int(created)
    if second != _ts_second:
        _ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _ts_second = second
    return f"{_ts_prefix}.{int(created % 1 * 1e6):06d}Z"


_NEEDS_QUOTES = re.compile(r'[\s"=\\]')


def _logfmt_value(value: Any) -> str:
    if type(value) in (int, float):
        return str(value)
    text = value if isinstance(value, str) else str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class LogfmtFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={_ts(record.created)}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_logfmt_value(record.getMessage())}",
        ]
        fields = getattr(record, "fields", None)
        if fields:
            parts += [f"{k}={_logfmt_value(v)}" for k, v in fields.items() if v is not None]
        if record.exc_info:
            parts.append(f"exc={_logfmt_value(self.formatException(record.exc_info))}")
        return self._redact(" ".join(parts))


class JsonFormatter(LogfmtFormatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            doc.update({k: v for k, v in fields.items() if v is not None})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(doc, ensure_ascii=False, default=str))


# sd-daemon(3): SD_CRIT, SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG
_PRIORITY = {
    logging.CRITICAL: "<2>",
    logging.ERROR: "<3>",
    logging.WARNING: "<4>",
    logging.INFO: "<6>",
    logging.DEBUG: "<7>",
}


class PriorityPrefix(logging.Formatter):
    """Wraps a formatter: the line gets the syslog priority prefix of its level."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelno
        prefix = _PRIORITY.get(level) or ("<3>" if level >= logging.ERROR else "<7>")
        return prefix + self._inner.format(record)


def stream_is_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """systemd connected this stream to the journal: JOURNAL_STREAM ("device:inode") names it.

    Compared with the stream's own device and inode, as systemd.exec(5) asks: a child process
    that inherits the variable but writes elsewhere gets plain lines.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError, AttributeError):
        return False


def setup_logging(
    level: str = "info",
    fmt: str = "logfmt",
    secrets: tuple[str, ...] = (),
    stream: TextIO | None = None,
    priority_prefix: str = "auto",
) -> None:
    """priority_prefix: "auto" (when stderr is the journal), "yes" or "no"."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if fmt == "json" else LogfmtFormatter(secrets)
    )
    if priority_prefix == "yes" or (priority_prefix == "auto" and stream_is_journal(out)):
        formatter = PriorityPrefix(formatter)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Our formatters print none of these: skip collecting them for every record (the logging
    # module's documented optimisations; the shim logs one line per delivery).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
