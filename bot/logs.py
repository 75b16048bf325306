"""Logging setup. Our code never logs message text, addresses or trackers; as a second line,
third-party loggers that might (Rasa's debug output, HTTP access logs) are kept quiet."""

from __future__ import annotations

import logging
import sys

# twilio's HTTP clients log every request with its body and phone numbers at INFO
QUIET = (
    "alembic",
    "twilio",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "sanic.access",
    "rasa.core.nlg",
    "rasa.core.processor",
)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
