"""Logging setup. Our code never logs message text, addresses or trackers; as a second line,
third-party loggers that might (Rasa's debug output, HTTP access logs, HTTP clients that log
URLs with a bot token or bodies with phone numbers) are kept quiet."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

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


FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, process role and
    pid, and for a failure its exception class only. An exception's own message may carry
    data, so the traceback is written only when ``tracebacks`` (at DEBUG)."""

    def __init__(self, role: str, tracebacks: bool = False) -> None:
        super().__init__()
        self.role = role
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "role": self.role,
            "pid": record.process,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            if self.tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", role: str = "") -> None:
    """Log to standard error, as text (the default) or JSON lines (``fmt="json"``)."""
    if fmt not in FORMATS:
        raise ValueError("the log format must be text or json")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        tracebacks = logging.getLevelName(level.upper()) == logging.DEBUG
        handler.setFormatter(JsonFormatter(role or "bot", tracebacks))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_third_parties()
