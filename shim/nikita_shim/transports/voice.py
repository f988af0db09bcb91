"""Voice transport: ElevenLabs outbound calls through Twilio, over httpx.

A call must never be placed twice. Once the request may have reached ElevenLabs, a timeout or
a 5xx is 'outcome unknown' (failed, never retried) unless the response clearly says that no
call was made. Only errors raised before the request left (connection refused, connect
timeout, pool timeout) are retried.

The player's id and the game's signed token (voice_token.py) are added to the call's dynamic
variables here, when the request is built: never earlier, never stored.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from typing import Any

import httpx

from ..events import ClaimedEvent, Outcome
from ..redact import Redactor
from ..voice_token import SECRET_ENV, TOKEN_VARIABLE, USER_ID_VARIABLE, make_token
from . import DeliveryContext

log = logging.getLogger("nikita_shim.voice")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
OUTBOUND_PATH = "/v1/convai/twilio/outbound-call"
DEFAULT_RETRY_AFTER = 30.0


def parse_retry_after(value: str | None) -> float:
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def build_body(
    content: dict[str, Any],
    agent_id: str,
    phone_number_id: str,
    call_variables: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The outbound-call request. `call_variables` (the player's id and token, made now) win
    over stored variables of the same name; a stored token is never passed on."""
    body: dict[str, Any] = {
        # An event may name its own agent (the game's per-call agent); else the configured one.
        "agent_id": content.get("agent_id") or agent_id,
        "agent_phone_number_id": phone_number_id,
        "to_number": content["to_number"],
    }
    client_data: dict[str, Any] = {}
    variables = dict(content.get("dynamic_variables") or {})
    variables.pop(TOKEN_VARIABLE, None)
    if call_variables:
        variables.update(call_variables)
        if USER_ID_VARIABLE in call_variables:  # as the game's make_outbound_call does
            client_data["user_id"] = call_variables[USER_ID_VARIABLE]
    if variables:
        client_data["dynamic_variables"] = variables
    agent: dict[str, Any] = {}
    if content.get("prompt"):
        agent["prompt"] = {"prompt": content["prompt"]}
    if content.get("first_message"):
        agent["first_message"] = content["first_message"]
    override: dict[str, Any] = {}
    if agent:
        override["agent"] = agent
    if content.get("tts"):  # voice settings, as SQL validated them (functions/voice_content.sql)
        override["tts"] = dict(content["tts"])
    if override:
        client_data["conversation_config_override"] = override
    if client_data:
        body["conversation_initiation_client_data"] = client_data
    return body


class VoiceTransport:
    platform = "voice"
    name = "elevenlabs"

    def __init__(
        self,
        api_key: str,
        agent_id: str,
        phone_number_id: str,
        base_url: str,
        *,
        timeout: float,
        pool_size: int,
        webhook_secret: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._redact = Redactor((api_key, webhook_secret))
        self._agent_id = agent_id
        self._phone_number_id = phone_number_id
        self._url = base_url.rstrip("/") + OUTBOUND_PATH
        self._timeout = timeout
        self._pool_size = pool_size
        self._client: httpx.AsyncClient | None = None
        self._disabled: str | None = None

    @property
    def disabled(self) -> str | None:
        return self._disabled

    async def start(self) -> None:
        if not self._webhook_secret:
            log.warning(
                "voice calls go out without a signed token: %s is not set, so the voice "
                "agent's tools cannot authenticate to the game",
                SECRET_ENV,
            )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0)),
            limits=httpx.Limits(max_connections=self._pool_size),
            headers={"xi-api-key": self._api_key},
            transport=httpx.AsyncHTTPTransport(retries=1),  # connect failures only
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _clean(self, text: str) -> str:
        return self._redact.error(text, 500)

    async def deliver(self, event: ClaimedEvent, ctx: DeliveryContext) -> Outcome:
        if self._disabled:
            return Outcome.disabled(self._disabled)
        assert self._client is not None, "start() first"
        content = event.content
        to_number = content.get("to_number")
        if not isinstance(to_number, str) or not E164.match(to_number):
            return Outcome.permanent(f"bad content: to_number {to_number!r} is not E.164")
        for key in ("dynamic_variables",):
            if key in content and not isinstance(content[key], dict | type(None)):
                return Outcome.permanent(f"bad content: {key} must be an object")
        body = build_body(
            content, self._agent_id, self._phone_number_id, self._call_variables(event)
        )
        if ctx.stopping.is_set():
            return Outcome.release()
        ctx.calling()
        try:
            response = await self._client.post(self._url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # the request never left: no call can exist
            return Outcome.retry(f"not sent ({type(exc).__name__}): {self._clean(str(exc))}")
        except httpx.TimeoutException as exc:
            return Outcome.unknown(f"no answer within {self._timeout:g}s ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome.unknown(f"{type(exc).__name__}: {self._clean(str(exc))}")
        return self._outcome(response)

    def _call_variables(self, event: ClaimedEvent) -> dict[str, str]:
        """The player's id and, with a secret, a token signed now (the game's format)."""
        if event.user_id is None:
            return {}
        user_id = str(event.user_id)
        found = {USER_ID_VARIABLE: user_id}
        if self._webhook_secret:
            found[TOKEN_VARIABLE] = make_token(self._webhook_secret, user_id)
        return found

    def _outcome(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        data: Any = None
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            data = None
        detail = self._detail(response, data)
        refused = isinstance(data, dict) and data.get("success") is False
        if 200 <= status < 300:
            if refused:
                return Outcome.permanent(f"call refused by ElevenLabs: {detail}")
            ref = None
            if isinstance(data, dict):
                ref = data.get("conversation_id") or data.get("callSid") or data.get("call_sid")
            return Outcome.delivered(str(ref) if ref else None)
        if status == 429:
            seconds = parse_retry_after(response.headers.get("retry-after"))
            return Outcome.defer(seconds, f"429 Too Many Requests: {detail}")
        if status == 401:
            self._disabled = f"401 Unauthorized from ElevenLabs: {detail}"
            log.error(
                "ELEVENLABS API KEY REJECTED: voice delivery stopped until the key is fixed and "
                "the shim restarted; voice events stay pending",
            )
            return Outcome.disabled(self._disabled)
        if 400 <= status < 500:
            return Outcome.permanent(f"{status}: {detail}")
        if refused:
            return Outcome.retry(f"{status}, no call placed: {detail}")
        return Outcome.unknown(f"{status}: {detail}")

    def _detail(self, response: httpx.Response, data: Any) -> str:
        if isinstance(data, dict):
            for key in ("message", "detail", "error"):
                if data.get(key):
                    value = data[key]
                    text = value if isinstance(value, str) else json.dumps(value)
                    return self._clean(text)
        return self._clean(response.text or response.reason_phrase)
