"""The transports a configuration asks for, by platform (a platform without one is deferred)."""

from __future__ import annotations

from ..config import Config
from ..ratelimit import RateLimiter
from . import Transport
from .console import ConsoleTransport
from .noop import NoopTransport


def build_transports(cfg: Config) -> dict[str, Transport]:
    transports: dict[str, Transport] = {}
    if cfg.telegram_transport == "telegram":
        from .telegram import TelegramTransport

        assert cfg.telegram_bot_token
        transports["telegram"] = TelegramTransport(
            cfg.telegram_bot_token,
            cfg.telegram_api_base,
            limiter=RateLimiter(cfg.telegram_rate, cfg.telegram_chat_rate),
            max_wait=cfg.rate_limit_max_wait,
            timeout=cfg.telegram_timeout,
            pool_size=cfg.concurrency,
        )
    elif cfg.telegram_transport == "console":
        transports["telegram"] = ConsoleTransport("telegram")
    elif cfg.telegram_transport == "noop":
        transports["telegram"] = NoopTransport("telegram")
    if cfg.voice_transport == "elevenlabs":
        from .voice import VoiceTransport

        assert cfg.elevenlabs_api_key and cfg.elevenlabs_agent_id
        assert cfg.elevenlabs_phone_number_id
        transports["voice"] = VoiceTransport(
            cfg.elevenlabs_api_key,
            cfg.elevenlabs_agent_id,
            cfg.elevenlabs_phone_number_id,
            cfg.elevenlabs_api_base,
            timeout=cfg.voice_timeout,
            pool_size=cfg.voice_concurrency,
            webhook_secret=cfg.elevenlabs_webhook_secret,
        )
    elif cfg.voice_transport == "console":
        transports["voice"] = ConsoleTransport("voice")
    elif cfg.voice_transport == "noop":
        transports["voice"] = NoopTransport("voice")
    return transports
