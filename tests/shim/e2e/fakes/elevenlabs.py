"""A fake ElevenLabs API: POST /v1/convai/twilio/outbound-call, checked as the real one.

Failures are scripted per destination number: `script("+15550001", "429:2", "ok")`. Codes:
ok, 429:<s> (Retry-After), 400, 422, 401, 500 (may or may not have called: body says nothing),
500-refused (body says success=false: no call), refused (200 with success=false),
slow:<s> (the call IS placed, the answer comes after <s> seconds). A scripted `Reply` is sent
as it is and places no call (e.g. an error text that echoes the API key, a broken response).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import defaultdict, deque
from typing import Any

from .base import FakeServer, Reply

API_KEY = "sk_fake_elevenlabs_key_0123456789"
AGENT_ID = "agent_nikita_test"
PHONE_NUMBER_ID = "phnum_test_0001"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CLIENT_DATA_KEYS = {
    "conversation_config_override",
    "dynamic_variables",
    "custom_llm_extra_body",
    "user_id",
    "source_info",
}
AGENT_OVERRIDE_KEYS = {"prompt", "first_message", "language"}
OVERRIDE_KEYS = {"agent", "tts"}
TTS_KEYS = {"voice_id", "stability", "similarity_boost", "speed", "expressive_mode"}


def _unprocessable(loc: list[str], msg: str) -> Reply:
    return Reply(422, {"detail": [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}]})


class FakeElevenLabs(FakeServer):
    def __init__(
        self, api_key: str = API_KEY, agent_id: str = AGENT_ID, phone_id: str = PHONE_NUMBER_ID
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.agent_id = agent_id
        self.phone_id = phone_id
        self.other_agents: set[str] = set()  # agents an event may name besides the configured one
        self.calls: list[dict[str, Any]] = []  # calls actually placed
        self.refused: list[dict[str, Any]] = []
        self.in_progress = 0  # calls placed whose answer has not been sent yet
        self._scripts: dict[str, deque[str | Reply]] = defaultdict(deque)
        self._ids = itertools.count(1)

    def script(self, to_number: str, *codes: str | Reply) -> None:
        with self.lock:
            self._scripts[to_number].extend(codes)

    def calls_to(self, to_number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["to_number"] == to_number]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path != "/v1/convai/twilio/outbound-call" or method != "POST":
            return Reply(404, {"detail": "Not Found"})
        if headers.get("xi-api-key") != self.api_key:
            return Reply(
                401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
            )
        if headers.get("content-type", "").split(";")[0] != "application/json":
            return _unprocessable([], "JSON body expected")
        try:
            data = json.loads(body)
        except ValueError:
            return _unprocessable([], "invalid JSON")
        problem = self._check(data)
        if problem is not None:
            return problem
        to_number = data["to_number"]
        with self.lock:
            code = self._scripts[to_number].popleft() if self._scripts[to_number] else "ok"
        if isinstance(code, Reply):
            self.refused.append({"to_number": to_number, "body": data, "t": time.time()})
            return code
        record = {"to_number": to_number, "body": data, "t": time.time(), "code": code}
        if code.startswith("429"):
            seconds = code.split(":")[1] if ":" in code else "1"
            self.refused.append(record)
            return Reply(
                429,
                {"detail": {"status": "too_many_concurrent_requests", "message": "Too many"}},
                headers={"Retry-After": seconds},
            )
        if code in ("400", "422"):
            self.refused.append(record)
            return Reply(
                int(code),
                {"detail": {"status": "invalid_phone_number", "message": "Number not allowed"}},
            )
        if code == "401":
            return Reply(401, {"detail": {"status": "invalid_api_key", "message": "bad key"}})
        if code == "500-refused":
            self.refused.append(record)
            return Reply(500, {"success": False, "message": "Twilio rejected the call"})
        if code == "refused":
            self.refused.append(record)
            return Reply(200, {"success": False, "message": "Failed to initiate call"})
        n = next(self._ids)
        record.update(conversation_id=f"conv_{n:04d}", call_sid=f"CA{n:032d}")
        with self.lock:
            self.calls.append(record)  # the call is placed, whatever the answer says
        if code == "500":
            return Reply(500, {"detail": "Internal Server Error"})
        delay = float(code.split(":")[1]) if code.startswith("slow") else 0.0
        if delay:
            with self.lock:
                self.in_progress += 1
            try:
                time.sleep(delay)
            finally:
                with self.lock:
                    self.in_progress -= 1
        return Reply(
            200,
            {
                "success": True,
                "message": "Success",
                "conversation_id": record["conversation_id"],
                "callSid": record["call_sid"],
            },
        )

    def _check(self, data: Any) -> Reply | None:
        if not isinstance(data, dict):
            return _unprocessable([], "object expected")
        for field in ("agent_id", "agent_phone_number_id", "to_number"):
            if not isinstance(data.get(field), str):
                return _unprocessable([field], "field required")
        if data["agent_id"] != self.agent_id and data["agent_id"] not in self.other_agents:
            return Reply(404, {"detail": {"status": "agent_not_found", "message": "no agent"}})
        if data["agent_phone_number_id"] != self.phone_id:
            return Reply(404, {"detail": {"status": "phone_not_found", "message": "no number"}})
        if not E164.match(data["to_number"]):
            return _unprocessable(["to_number"], "not E.164")
        extra = set(data) - {
            "agent_id",
            "agent_phone_number_id",
            "to_number",
            "conversation_initiation_client_data",
        }
        if extra:
            return _unprocessable(sorted(extra), "extra fields not permitted")
        client = data.get("conversation_initiation_client_data")
        if client is None:
            return None
        if not isinstance(client, dict) or set(client) - CLIENT_DATA_KEYS:
            return _unprocessable(["conversation_initiation_client_data"], "unknown fields")
        variables = client.get("dynamic_variables")
        if variables is not None:
            if not isinstance(variables, dict) or not all(
                isinstance(v, str | int | float | bool) for v in variables.values()
            ):
                return _unprocessable(["dynamic_variables"], "values must be scalars")
        override = client.get("conversation_config_override")
        if override is not None:
            if not isinstance(override, dict) or not override or set(override) - OVERRIDE_KEYS:
                return _unprocessable(["conversation_config_override"], "unknown fields")
            tts = override.get("tts")
            if tts is not None and (not isinstance(tts, dict) or set(tts) - TTS_KEYS):
                return _unprocessable(["conversation_config_override", "tts"], "bad tts override")
            agent = override.get("agent", {})
            if not isinstance(agent, dict) or set(agent) - AGENT_OVERRIDE_KEYS:
                return _unprocessable(["conversation_config_override"], "bad agent override")
            prompt = agent.get("prompt")
            if prompt is not None and not (
                isinstance(prompt, dict) and isinstance(prompt.get("prompt"), str)
            ):
                return _unprocessable(["prompt"], "prompt.prompt must be a string")
        return None
