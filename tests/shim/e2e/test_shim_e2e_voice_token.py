"""End to end, voice token: at call time the shim adds the player's id and the game's signed
token to the call's dynamic variables (issue 11, rule 4).

The game's verification rule is reimplemented here from its code (yangsi7/nikita,
nikita/api/utils/webhook_auth.py: validate_signed_token), independently of
nikita_shim.voice_token: four ':'-separated parts user_id, session_id, timestamp, signature;
signature = hex HMAC-SHA256(secret, "user_id:session_id:timestamp"); expired when
now - timestamp > 1800. The agent passes the token back as the dynamic variable
`secret__signed_token`.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
import time

from fakes import shim
from fakes.base import Reply
from fakes.shim import make_user, schedule, shim_env, wait_for

SECRET = "wsec_test_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MARK = "<redacted>"


def game_validate(token: str, secret: str, now: int) -> tuple[str, str]:
    """The game's validate_signed_token, with the clock as an argument."""
    parts = token.split(":")
    if len(parts) != 4:
        raise ValueError("Invalid token format")
    user_id, session_id, timestamp_str, signature = parts
    timestamp = int(timestamp_str)
    if now - timestamp > 1800:
        raise ValueError("Token expired")
    payload = f"{user_id}:{session_id}:{timestamp_str}"
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise ValueError("Invalid signature")
    return user_id, session_id


async def _run_calls(conn, queue_db, el, procs, users, secret: str | None):
    env = shim_env(queue_db, el=el, voice_concurrency=4)
    if secret is not None:
        env["ELEVENLABS_WEBHOOK_SECRET"] = secret
    p = procs(env)
    await p.wait_ready()
    ids = [await schedule(conn, u, "voice", {}, event_type="call_reminder") for u in users]

    async def settled() -> bool:
        rows = await shim.events(conn, ids)
        return all(r["status"] in ("delivered", "failed") for r in rows)

    await wait_for(settled, within=30, what="every call to settle")
    p.signal(signal.SIGTERM)
    assert await p.wait_exit(30) == 0
    return p, ids


async def test_each_call_carries_a_fresh_token_the_game_accepts(queue_db, conn, el, procs):
    phones = [f"+1555040{i:04d}" for i in range(3)]
    users = [await make_user(conn, phone=ph) for ph in phones]
    # the same player called twice: two tokens as well
    users.append(users[0])
    before = int(time.time())
    await _run_calls(conn, queue_db, el, procs, users[:3], SECRET)
    await _run_calls(conn, queue_db, el, procs, users[3:], SECRET)
    after = int(time.time())
    assert len(el.calls) == 4
    tokens = []
    for call in el.calls:
        client = call["body"]["conversation_initiation_client_data"]
        variables = client["dynamic_variables"]
        token = variables["secret__signed_token"]
        user_id, session_id = game_validate(token, SECRET, now=after)
        assert variables["secret__user_id"] == user_id == client["user_id"]
        assert session_id.startswith("voice_")
        issued = int(token.split(":")[2])
        assert before <= issued <= after  # made at call time
        # expires exactly as the game specifies: valid 1800 s after issue, not 1801
        game_validate(token, SECRET, now=issued + 1800)
        try:
            game_validate(token, SECRET, now=issued + 1801)
            raise AssertionError("token still valid after 1800 s")
        except ValueError as exc:
            assert str(exc) == "Token expired"
        try:  # the signature depends on the secret
            game_validate(token, SECRET + "x", now=issued)
            raise AssertionError("token accepted with another secret")
        except ValueError as exc:
            assert str(exc) == "Invalid signature"
        tokens.append(token)
    assert {c["body"]["conversation_initiation_client_data"]["user_id"] for c in el.calls} == {
        str(u) for u in users
    }
    assert len(set(tokens)) == 4  # differs per call, the same player's too


async def test_the_secret_never_reaches_the_database_or_the_log(queue_db, conn, el, procs):
    phones = ["+15550410001", "+15550410002"]
    users = [await make_user(conn, phone=ph) for ph in phones]
    # a provider that echoes the secret in an error (permanent and outcome unknown)
    el.script(phones[0], Reply(422, {"detail": {"message": f"secret {SECRET} is wrong"}}))
    el.script(phones[1], Reply(500, {"detail": f"upstream said {SECRET.upper()}"}))
    p, ids = await _run_calls(conn, queue_db, el, procs, users, SECRET)
    rows = await shim.events(conn, ids)
    assert all(r["status"] == "failed" for r in rows)
    for row in rows:
        assert MARK in row["last_error"], row["last_error"]
    async with conn.cursor() as cur:
        await cur.execute("SELECT string_agg(e::text, ' ') AS t FROM nikita.scheduled_events e")
        dump = (await cur.fetchone())["t"]
    assert SECRET.lower() not in dump.lower()
    assert "secret__signed_token" not in dump  # nothing of the token is stored either
    log = p.log()
    assert SECRET.lower() not in log.lower()
    assert "without a signed token" not in log


async def test_without_a_secret_calls_go_out_without_a_token_and_the_shim_says_so_once(
    queue_db, conn, el, procs
):
    phones = ["+15550420001", "+15550420002"]
    users = [await make_user(conn, phone=ph) for ph in phones]
    p, ids = await _run_calls(conn, queue_db, el, procs, users, None)
    assert all(r["status"] == "delivered" for r in await shim.events(conn, ids))
    assert len(el.calls) == 2
    for call in el.calls:
        variables = call["body"]["conversation_initiation_client_data"]["dynamic_variables"]
        assert "secret__signed_token" not in variables
        assert variables["secret__user_id"] in {str(u) for u in users}
    log = p.log()
    assert log.count("voice calls go out without a signed token") == 1, log
    assert "ELEVENLABS_WEBHOOK_SECRET" in log
