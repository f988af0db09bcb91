"""Structured logging: one line per record, logfmt (default) or JSON.

Fields are passed as `extra={"fields": {...}}`. Third-party loggers that could print a URL
containing the bot token (httpx logs every request at INFO) are held at WARNING.
"""

from __future__ import annotations

import json
import logging
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


def setup_logging(
    level: str = "info",
    fmt: str = "logfmt",
    secrets: tuple[str, ...] = (),
    stream: TextIO | None = None,
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else LogfmtFormatter(secrets))
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
