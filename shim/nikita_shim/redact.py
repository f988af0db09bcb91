"""Secret redaction: the bot token and the ElevenLabs API key never reach a log line or the
database, in any form a server or a library may echo them.

A secret is matched exactly, URL-encoded (quote and quote_plus, either case of the hex digits,
once or twice), and in any letter case (python-telegram-bot lower-cases some 400 texts); a bot
token's secret part (after the colon) is matched alone too. Short parts are never patterns:
redacting a 4-letter part would blank common words. Texts are redacted before they are cut,
so a cut never leaves part of a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from psycopg.conninfo import conninfo_to_dict, make_conninfo

MARK = "<redacted>"
ERROR_LIMIT = 2000  # last_error and each errors entry (fail_event keeps 2,000 characters)
# A part of a secret shorter than this is not redacted alone (the full secret always is).
MIN_PART = 16
# A database password shorter than this is not searched for in texts (e.g. "postgres").
MIN_PASSWORD = 8


def _forms(secret: str) -> set[str]:
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(quote(encoded, safe=""))  # encoded twice (a URL inside a query string)
    return {f for f in forms if f}


def secret_patterns(secrets: Iterable[str | None]) -> list[str]:
    """Every literal form of the secrets, longest first (a token before its secret part)."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        found |= _forms(secret)
        _, colon, part = secret.partition(":")
        if colon and len(part) >= MIN_PART:
            found |= _forms(part)
    return sorted(found, key=lambda s: (-len(s), s))


class Redactor:
    """Replaces every form of the given secrets with <redacted>; case-insensitive."""

    __slots__ = ("_anchors", "_pattern")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        patterns = secret_patterns(secrets)
        self._pattern = (
            re.compile("|".join(re.escape(p) for p in patterns), re.IGNORECASE)
            if patterns
            else None
        )
        # A cheap pre-check (the shim logs a line per delivery): a text holding a form of a
        # secret holds that form's longest alphanumeric run, in some letter case.
        anchors = [max(re.findall(r"[A-Za-z0-9]+", p) or [""], key=len).lower() for p in patterns]
        self._anchors = tuple(set(anchors)) if all(len(a) >= 4 for a in anchors) else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        if self._anchors is not None:
            lowered = text.lower()
            if not any(a in lowered for a in self._anchors):
                return text
        return self._pattern.sub(MARK, text)

    def error(self, text: str, limit: int = ERROR_LIMIT) -> str:
        """An error text ready to store: redacted first, then cut, without NUL characters
        (PostgreSQL text cannot hold them; one would make every settlement fail)."""
        return self(text).replace("\x00", "\\0")[:limit]


def redact(text: str, secrets: Iterable[str | None], limit: int = ERROR_LIMIT) -> str:
    """Remove secrets from an error text before it is logged or stored; then cut it."""
    return Redactor(secrets).error(text, limit)


# ---- connection strings ------------------------------------------------------------------

_QUOTED = re.compile(r'"([^"]*)"')


def conninfo_password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password") or None
    except Exception:  # unparsable: the caller reports that, without the text
        return None


def safe_conninfo(url: str) -> str:
    """The connection string without its password (key=value form), for messages and logs."""
    params = conninfo_to_dict(url)
    if "password" in params:
        params["password"] = "********"
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def safe_libpq_message(message: str, raw: str) -> str:
    """libpq's parse error, with every quoted fragment of the raw string hidden: libpq quotes
    the part it could not parse, which may be a piece of the password."""

    def hide(m: re.Match[str]) -> str:
        fragment = m.group(1)
        return m.group(0) if fragment and fragment not in raw else '"…"'

    first = message.strip().splitlines()[0] if message.strip() else "unparsable"
    return _QUOTED.sub(hide, first)
