"""dashboard.py's pure parts: the token check and the escaping of everything shown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from nikita_shim.dashboard import esc, given_token, render_page, token_ok


def test_token_ok() -> None:
    assert token_ok("s3cret", "s3cret")
    assert not token_ok("s3cret", "s3cre")
    assert not token_ok("s3cret", "s3cret ")
    assert not token_ok("s3cret", None)
    assert not token_ok("", "")  # no configured token never matches
    assert not token_ok("s3cret", "")
    assert token_ok("tök€n", "tök€n")  # not ASCII: compared as bytes


def test_given_token_sources() -> None:
    assert given_token({"Authorization": "Bearer abc"}, {}, {}) == "abc"
    assert given_token({"Authorization": "bearer  abc "}, {}, {}) == "abc"
    assert given_token({"Authorization": "Basic abc"}, {}, {}) is None
    assert given_token({}, {"token": ["q"]}, {}) == "q"
    assert given_token({}, {}, {"token": ["f"]}) == "f"
    assert given_token({}, {}, {}) is None


def test_esc() -> None:
    assert esc("<script>&\"'") == "&lt;script&gt;&amp;&quot;&#x27;"
    assert esc(None) == "-"
    assert esc({"a": "<b>"}) == "{&quot;a&quot;: &quot;&lt;b&gt;&quot;}"
    assert esc(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2026-01-02 03:04:05+00:00"


def _data(**over: object) -> dict[str, object]:
    event = {
        "id": uuid.UUID(int=1),
        "user_id": uuid.UUID(int=2),
        "platform": "telegram",
        "event_type": "follow_up",
        "order_time": None,
        "scheduled_at": None,
        "attempts": 1,
        "error_count": 1,
        "last_error": "<img src=x onerror=alert(1)>",
        "content": {"text": "<b>hi</b>", "chat_id": 1},
    }
    data: dict[str, object] = {
        "now": "now",
        "max_lag": 300,
        "health": [{"platform": "<tg>", "pending": 1, "due_now": 0}],
        "due": 0,
        "late": 1000,
        "failed": [event],
        "pending": [event],
        "runs": [{"id": 1, "job_name": "sweep", "error": "</table><h1>x"}],
    }
    data.update(over)
    return data


def test_render_escapes_everything() -> None:
    page = render_page(_data(), 'to"k<en', with_text=False, note="<i>note</i>")
    for raw in ("<img", "<tg>", "</table><h1>", "<i>note", "<b>hi", 'to"k<en'):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'name="token" value="to&quot;k&lt;en"' in page
    assert "<script" not in page and "http" not in page  # nothing from outside
    assert "1000+" in page  # find_events counts at most 1,000
    assert "&lt;b&gt;hi" not in page  # the text only when asked
    assert 'name="with_text"' not in page


def test_render_with_text_and_forms() -> None:
    page = render_page(_data(), "t", with_text=True, note=None)
    assert "&lt;b&gt;hi&lt;/b&gt;" in page
    assert page.count('name="with_text" value="1"') == 2
    assert '<form method="post" action="/retry">' in page
    assert f'name="user_id" value="{uuid.UUID(int=2)}"' in page


def test_health_not_readable() -> None:
    page = render_page(_data(health=None, health_error="grant <it>"), "t", False, None)
    assert "grant &lt;it&gt;" in page
