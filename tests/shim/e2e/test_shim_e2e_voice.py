"""End to end, voice: schedule_event -> the shim -> the fake ElevenLabs API -> the row's state.

A call must never be placed twice: once the request may have reached ElevenLabs, an
unanswered request is 'failed: outcome unknown', never retried.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest
from fakes import shim
from fakes.base import Reply
from fakes.shim import make_user, running_shim, schedule, shim_env, wait_for, wait_status

PHONE = "+15550100001"


async def test_call_placed_with_the_right_request(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(
            conn,
            user,
            "voice",
            {
                "prompt": "You are Nikita. Be playful.",
                "first_message": "Hey, it's me.",
                "dynamic_variables": {"player_name": "Sam", "chapter": 2},
            },
            event_type="call_reminder",
        )
        row = await wait_status(conn, eid, "delivered")
    [call] = el.calls
    assert call["to_number"] == PHONE  # defaulted from the user's phone
    body = call["body"]
    assert body["agent_id"] == el.agent_id
    assert body["agent_phone_number_id"] == el.phone_id
    client = body["conversation_initiation_client_data"]
    # the player's id is added at call time (test_shim_e2e_voice_token.py: the token)
    assert client["dynamic_variables"] == {
        "player_name": "Sam",
        "chapter": 2,
        "secret__user_id": str(user),
    }
    assert client["user_id"] == str(user)
    agent = client["conversation_config_override"]["agent"]
    assert agent == {
        "prompt": {"prompt": "You are Nikita. Be playful."},
        "first_message": "Hey, it's me.",
    }
    assert row["provider_ref"] == call["conversation_id"]


async def test_the_events_own_agent_and_voice_settings_reach_the_request(queue_db, conn, el):
    """The game's per-call fields (functions/voice_content.sql): its agent replaces the
    configured one, voice_prompt is stored as prompt, tts goes to the override as stored."""
    el.other_agents.add("agent_boss_fight")
    user = await make_user(conn, phone=PHONE)
    tts = {"voice_id": "nikita_v2", "stability": 0.4, "speed": 1.1, "expressive_mode": True}
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(
            conn,
            user,
            "voice",
            {
                "agent_id": "agent_boss_fight",
                "voice_prompt": "You are Nikita, and this is the boss fight.",
                "tts": tts,
                "source_platform": "telegram",
                "meta": {"trace": "abc"},
            },
            event_type="boss_prompt",
        )
        await wait_status(conn, eid, "delivered")
    [call] = el.calls
    body = call["body"]
    assert body["agent_id"] == "agent_boss_fight"
    override = body["conversation_initiation_client_data"]["conversation_config_override"]
    assert override == {
        "agent": {"prompt": {"prompt": "You are Nikita, and this is the boss fight."}},
        "tts": tts,
    }
    # source_platform and meta are the game's bookkeeping: never sent to the provider
    assert "meta" not in str(body) and "source_platform" not in str(body)


async def test_minimal_call_has_only_the_player_id(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")
        await wait_status(conn, eid, "delivered")
    [call] = el.calls
    assert call["body"]["conversation_initiation_client_data"] == {
        "dynamic_variables": {"secret__user_id": str(user)},
        "user_id": str(user),
    }


async def test_timeout_is_outcome_unknown_and_never_retried(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    el.script(PHONE, "slow:3")
    async with running_shim(shim_env(queue_db, el=el, voice_timeout=1)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")
        row = await wait_status(conn, eid, "failed", within=10)
    assert row["last_error"].startswith("outcome unknown")
    assert row["attempts"] == 1
    assert len(el.calls) == 1  # the call exists; it was not placed again


async def test_server_error_is_outcome_unknown(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    el.script(PHONE, "500")
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")
        row = await wait_status(conn, eid, "failed")
    assert row["last_error"].startswith("outcome unknown: 500")
    assert len(el.calls) == 1


async def test_server_error_that_clearly_refused_is_retried(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    el.script(PHONE, "500-refused")
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")

        async def retried() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["attempts"] == 1

        await wait_for(retried, what="a retry to be scheduled")
    assert el.calls == []


async def test_client_error_is_permanent(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    el.script(PHONE, "422")
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")
        row = await wait_status(conn, eid, "failed")
    assert row["last_error"].startswith("422")
    assert "outcome unknown" not in row["last_error"]


async def test_429_defers_without_using_an_attempt(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    el.script(PHONE, "429:1")
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")
        row = await wait_status(conn, eid, "delivered", within=10)
    assert row["attempts"] == 1
    assert len(el.calls) == 1
    assert len(el.refused) == 1


async def test_unreachable_provider_is_retried(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    env = shim_env(queue_db, el=el)
    env["ELEVENLABS_API_BASE"] = "http://127.0.0.1:9"  # nothing listens: never sent
    async with running_shim(env):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")

        async def retried() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["attempts"] == 1

        await wait_for(retried, what="a retry to be scheduled")
    row = await shim.event(conn, eid)
    assert "not sent" in row["last_error"]
    assert row["scheduled_at"] > datetime.now(UTC) + timedelta(seconds=45)


async def test_bad_api_key_stops_voice_and_keeps_events(queue_db, conn, el):
    user = await make_user(conn, phone=PHONE)
    env = shim_env(queue_db, el=el)
    env["ELEVENLABS_API_KEY"] = "sk_wrong"
    async with running_shim(env):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")

        async def deferred() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and row["scheduled_at"] > datetime.now(UTC)

        await wait_for(deferred, what="the event to be deferred")
    row = await shim.event(conn, eid)
    assert row["attempts"] == 0
    assert el.calls == []


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("120", 120), ("http-date", 300), (None, 30)],
    ids=["seconds", "http-date", "absent"],
)
async def test_429_defers_by_the_retry_after_header(queue_db, conn, el, retry_after, seconds):
    if retry_after == "http-date":
        retry_after = email.utils.format_datetime(
            datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True
        )
    headers = {"Retry-After": retry_after} if retry_after else {}
    el.script(PHONE, Reply(429, {"detail": {"message": "Too many"}}, headers=headers))
    user = await make_user(conn, phone=PHONE)
    before = datetime.now(UTC)
    async with running_shim(shim_env(queue_db, el=el)):
        eid = await schedule(conn, user, "voice", {}, event_type="call_reminder")

        async def deferred() -> bool:
            row = await shim.event(conn, eid)
            return row["status"] == "pending" and len(el.refused) == 1

        await wait_for(deferred, what="the 429 to defer the event")
        after = datetime.now(UTC)
    row = await shim.event(conn, eid)
    assert row["attempts"] == 0  # a deferral uses no attempt
    assert el.calls == []
    # due again when Retry-After says (the HTTP date has whole seconds: 1 s of slack)
    assert before + timedelta(seconds=seconds - 1) <= row["scheduled_at"]
    assert row["scheduled_at"] <= after + timedelta(seconds=seconds + 1)
