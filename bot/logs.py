"""Logging setup. Our code never logs message text, addresses or trackers; as a second line,
third-party loggers that might (Rasa's debug output, HTTP access logs, HTTP clients that log
URLs with a bot token or bodies with phone numbers) are kept quiet."""

from __future__ import annotations

import logging
import sys

# twilio's HTTP clients log every request with its body and phone numbers at INFO; httpx logs
# each URL (Telegram's carry the bot token); python-telegram-bot logs request bodies at DEBUG
# and, at ERROR or CRITICAL, a response it cannot parse: our own code logs what each failure
# was instead.
QUIET = {
    "alembic": logging.WARNING,
    "twilio": logging.WARNING,
    "telegram": logging.CRITICAL + 1,  # it logs an unreadable batch of updates at CRITICAL
    "uvicorn.access": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "sanic.access": logging.WARNING,
    "rasa.core.nlg": logging.WARNING,
    "rasa.core.processor": logging.WARNING,
}


def quiet_third_parties() -> None:
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_parties()
