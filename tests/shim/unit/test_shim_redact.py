"""Redaction of secrets (nikita_shim.redact) and DATABASE_URL handling in configuration errors
and logs. The end-to-end proof (fake providers echoing the secrets) is
e2e/test_shim_e2e_secrets.py."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from nikita_shim.config import ConfigError, load_config
from nikita_shim.logs import setup_logging
from nikita_shim.redact import MARK, Redactor, redact, safe_conninfo

TOKEN = "987654321:AAHx-secretPart_0123456789abcdefXYZ"
PART = TOKEN.split(":", 1)[1]
KEY = "sk_9f8e7d6c5b4a3210+/=&key"
SHIM = Path(sys.executable).parent / "nikita-shim"


@pytest.mark.parametrize(
    "form",
    [
        TOKEN,
        quote(TOKEN, safe=""),
        quote(TOKEN, safe="").replace("%3A", "%3a"),
        quote_plus(TOKEN),
        TOKEN.upper(),
        TOKEN.lower(),
        TOKEN.capitalize(),  # what python-telegram-bot does to a 400 description
        quote(quote(TOKEN, safe=""), safe=""),
        PART,
        PART.lower(),
        quote(KEY, safe=""),
        quote(KEY, safe="").lower(),
        quote_plus(KEY),
        KEY.upper(),
    ],
)
def test_every_form_is_redacted(form):
    r = Redactor((TOKEN, KEY))
    out = r(f"error: {form} (at {form})")
    assert out == f"error: {MARK} (at {MARK})"


def test_short_parts_and_common_words_are_left_alone():
    r = Redactor(("12345:short-part-only", "sk_key"))
    # a token's part shorter than 16 characters is not redacted alone; the id never is
    assert r("short-part-only 12345 sk") == "short-part-only 12345 sk"
    assert r("12345:short-part-only") == MARK
    assert r("the sk_key and SK_KEY") == f"the {MARK} and {MARK}"


def test_the_cut_never_leaves_part_of_a_secret():
    for lead in range(1940, 2000):
        text = "x" * lead + TOKEN + " tail"
        out = redact(text, (TOKEN,))
        assert len(out) <= 2000
        assert PART[:6].lower() not in out.lower(), lead


def test_nul_characters_cannot_reach_the_database():
    assert "\x00" not in redact("bad\x00byte", ())


def test_log_lines_are_redacted_in_both_formats():
    for fmt in ("logfmt", "json"):
        stream = io.StringIO()
        setup_logging("info", fmt, (TOKEN,), stream=stream)
        log = logging.getLogger("nikita_shim.test")
        log.info("echo", extra={"fields": {"error": quote(TOKEN, safe="").lower()}})
        try:
            raise ValueError(f"boom {TOKEN.upper()}")
        except ValueError:
            log.exception("failed")
        text = stream.getvalue()
        assert PART.lower() not in text.lower(), text
        assert text.count(MARK) >= 2


ODD_PASSWORDS = [
    "p@ss:w/rd#1?x",
    "Secr3t@h0st:9x/yz",
    "Zq9 mx7w 'k'",
    "per%cent%ZZ",
    "pässwörd€",
    'back\\slash"dq',
]


@pytest.mark.parametrize("password", ODD_PASSWORDS)
def test_database_url_password_is_never_printed(password):
    urls = [
        # raw (unencoded): libpq may fail, or parse it into the host/port/dbname
        f"postgresql://nikita:{password}@db.example:5432/nikita",
        # encoded correctly: valid
        f"postgresql://nikita:{quote(password, safe='')}@db.example:5432/nikita",
        # key=value, unquoted (may be invalid) and quoted (valid)
        f"host=db.example user=nikita password={password} dbname=nikita",
        "host=db.example user=nikita password='"
        + password.replace("\\", "\\\\").replace("'", "\\'")
        + "' dbname=nikita",
    ]
    for url in urls:
        try:
            cfg = load_config({"DATABASE_URL": url}, need_delivery=False)
        except ConfigError as exc:
            text = exc.render()
            assert "DATABASE_URL" in text
        else:
            text = safe_conninfo(cfg.database_url)
            assert "db.example" in text
        for piece in [password, quote(password, safe="")] + [
            p for p in password.replace("@", " ").replace(":", " ").split() if len(p) >= 3
        ]:
            assert piece not in text, (url, text)


def test_cli_configuration_error_hides_the_password():
    url = "postgresql://nikita:s3cr3t@pa ss:wd@db.example:5432/nikita"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "NIKITA_SHIM_BATCH_SIZE": "x"}
    out = subprocess.run(
        [str(SHIM), "check"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 3, out  # check: UNKNOWN
    assert "DATABASE_URL" in out.stderr
    for piece in ("s3cr3t", "pa ss", "ss:wd", "wd@"):
        assert piece not in out.stderr + out.stdout, out.stderr


def test_database_password_is_a_secret_when_long_enough():
    cfg = load_config(
        {"DATABASE_URL": "postgresql://u:LongEnoughPassw0rd@h/db"}, need_delivery=False
    )
    assert "LongEnoughPassw0rd" in cfg.secrets
    short = load_config({"DATABASE_URL": "postgresql://u:pw@h/db"}, need_delivery=False)
    assert "pw" not in short.secrets  # "pw" would blank every "pw" in the logs
