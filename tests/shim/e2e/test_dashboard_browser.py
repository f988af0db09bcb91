"""`nikita-shim dashboard` (dashboard.py) in a real browser: the real subprocess against a fresh
migrated database, as a login role in nikita_ops (and nikita_readonly, for queue_health),
driven by headless Chromium (Debian's `chromium`, scripts/db.sh packages) through Playwright.

DASHBOARD_SCREENSHOT=path keeps the screenshot there (docs/dashboard.png was taken so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from nikita_testdb import ROOT

CLI = str(ROOT / ".venv" / "bin" / "nikita-shim")
TOKEN = "dash-" + uuid.uuid4().hex
EVIL = "<script>alert('pwned')</script> Forbidden: bot was blocked & gone"
SECRET = "secret words of Nikita"


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed (root: scripts/db.sh packages installs it)")
    return path


@pytest.fixture
def ops_url(db_url: str) -> Iterator[str]:
    """db_url as a fresh login role in nikita_ops and nikita_readonly (dropped afterwards)."""
    role = f"ops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE nikita_ops, nikita_readonly")
    try:
        yield make_conninfo(db_url, user=role)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def _env(url: str | None, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIKITA_SHIM", "DATABASE"))}
    if url is not None:
        env["DATABASE_URL"] = url
    if token is not None:
        env["NIKITA_SHIM_DASHBOARD_TOKEN"] = token
    return env


@pytest.fixture
def dashboard(ops_url: str, tmp_path: Path) -> Iterator[str]:
    """The running dashboard's base URL (port chosen by the kernel)."""
    err = (tmp_path / "dashboard.err").open("w")
    proc = subprocess.Popen(
        [CLI, "dashboard", "--port", "0"],
        env=_env(ops_url, TOKEN),
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("nikita-shim dashboard on "), (
            tmp_path / "dashboard.err"
        ).read_text()
        yield line.split(" on ", 1)[1].strip().rstrip("/")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()


def seed(db_url: str) -> dict[str, uuid.UUID]:
    """A failed event f (its error holds markup), a pending one p and one due 10 minutes ago
    (late), all with SECRET text."""
    user = uuid.uuid4()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO nikita.users (id, telegram_id) VALUES (%s, 7201)", (user,))

        def sched(due: str, kind: str) -> uuid.UUID:
            row = conn.execute(
                "SELECT nikita.schedule_event(%s, 'telegram', %s,"
                " jsonb_build_object('text', %s::text), now() + %s::interval)",
                (user, kind, SECRET, due),
            ).fetchone()
            assert row is not None
            return row[0]

        f = sched("-1 minute", "follow_up")
        claimed = conn.execute("SELECT id, lock_token FROM nikita.claim_events('w', 10)").fetchall()
        assert [r[0] for r in claimed] == [f]
        conn.execute("SELECT nikita.fail_event(%s, %s, %s, false)", (f, claimed[0][1], EVIL))
        p = sched("1 hour", "message_delivery")
        late = sched("-10 minutes", "follow_up")
    return {"user": user, "f": f, "p": p, "late": late}


def status(db_url: str, eid: uuid.UUID) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status FROM nikita.scheduled_events WHERE id = %s", (eid,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def post(base: str, action: str, **form: str) -> tuple[int, str]:
    """A form POST: its status and Location (redirects not followed)."""
    req = urllib.request.Request(f"{base}/{action}", data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.build_opener(_NoRedirect).open(req) as r:
            return int(r.status), r.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    """The status of one request (redirects not followed)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_refuses_to_start_without_token(ops_url: str) -> None:
    result = subprocess.run(
        [CLI, "dashboard", "--port", "0"],
        env=_env(ops_url, None),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "NIKITA_SHIM_DASHBOARD_TOKEN is missing" in result.stderr


def test_token_required(db_url: str, dashboard: str) -> None:
    ev = seed(db_url)
    assert http(f"{dashboard}/") == 401
    assert http(f"{dashboard}/?token=wrong") == 401
    assert http(f"{dashboard}/?token={TOKEN}x") == 401
    assert http(f"{dashboard}/", headers={"Authorization": "Bearer nope"}) == 401
    assert http(f"{dashboard}/", headers={"Authorization": f"Bearer {TOKEN}"}) == 200
    assert http(f"{dashboard}/?token={TOKEN}") == 200
    # an action without the form's token does nothing
    assert http(f"{dashboard}/retry", data=f"id={ev['f']}".encode()) == 401
    assert http(f"{dashboard}/retry", data=f"id={ev['f']}&token=bad".encode()) == 401
    assert status(db_url, ev["f"]) == "failed"


def test_browser_retry_and_cancel(
    db_url: str, ops_url: str, dashboard: str, tmp_path: Path
) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (make setup: dev extras)"
    )
    ev = seed(db_url)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        run = conn.execute("SELECT id, status FROM nikita.run_job_now('sweep')").fetchone()
    assert run is not None and run[1] == "completed"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(
                java_script_enabled=False, viewport={"width": 1400, "height": 900}
            )
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(dashboard) else outside.append(r.url),
            )
            response = page.goto(f"{dashboard}/?token={TOKEN}")
            assert response is not None and response.status == 200
            html = page.content()
            # the error is shown as text, its markup escaped: no script element at all
            assert page.locator("script").count() == 0
            row = page.locator("tr", has_text=str(ev["f"]))
            assert EVIL in row.inner_text()
            assert "&lt;script&gt;" in html
            assert SECRET not in html  # no message text by default
            assert page.locator("h2", has_text="Queue health").count() == 1
            assert "telegram" in page.locator("table").first.inner_text()
            assert "Due now: 1 · late (due more than 300 s ago): 1" in page.inner_text("body")
            runs = page.locator("table").last.inner_text()
            assert "sweep" in runs and "completed" in runs
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            keep = os.environ.get("DASHBOARD_SCREENSHOT")
            if keep:
                shutil.copyfile(shot, keep)

            row.get_by_role("button", name="Retry").click()
            page.wait_for_load_state()
            assert "retried" in page.locator("p.note").inner_text()
            assert status(db_url, ev["f"]) == "pending"
            assert TOKEN not in page.locator("body").inner_text()

            page.goto(f"{dashboard}/?token={TOKEN}&with_text=1")
            assert SECRET in page.content()
            page.locator("tr", has_text=str(ev["p"])).get_by_role("button", name="Cancel").click()
            page.wait_for_load_state()
            assert "cancelled 1 pending" in page.locator("p.note").inner_text()
            assert status(db_url, ev["p"]) == "cancelled"
            assert "with_text=1" in page.url  # the choice survives the redirect

            # no longer failed: listed with the pending events now
            page.goto(f"{dashboard}/?token={TOKEN}")
            assert "no failed events" in page.content()
            assert page.locator("tr", has_text=str(ev["f"])).count() == 1
            assert outside == []  # nothing fetched from anywhere else
        finally:
            browser.close()
    assert shot.stat().st_size > 0


def test_refused_action_is_reported(db_url: str, dashboard: str) -> None:
    ev = seed(db_url)
    code, location = post(dashboard, "retry", id=str(ev["p"]), token=TOKEN)
    assert code == 303 and "55000" in urllib.parse.unquote_plus(location)
    code, location = post(dashboard, "retry", id="xyz", token=TOKEN)
    assert code == 303 and "22P02" in urllib.parse.unquote_plus(location)
    assert status(db_url, ev["p"]) == "pending"
