"""nikita-shim: claims due events from PostgreSQL and delivers them to Telegram and voice."""

__version__ = "0.1.0"
