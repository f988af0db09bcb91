"""Fake Telegram Bot API and ElevenLabs servers (real HTTP on 127.0.0.1) and test helpers."""
