"""Typed settings, read once from the environment and validated at start.

Every setting has a default that works for a local run on one machine. In production mode
(``OUTREACH_ENV=production``) the secrets must come from the environment: a deployment that
forgot them refuses to start instead of generating throw-away keys.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Tuple

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SUPPORTED_LANGUAGES: Tuple[str, ...] = ("fr", "en", "es", "pt", "ro", "bg", "zh", "ru", "uk", "ar")
# Where "Quick exit" leads: a neutral page that does not stand out in a browser history.
DEFAULT_EXIT_URL = "https://www.google.com/search?q=m%C3%A9t%C3%A9o"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable, never its value."""


@dataclass(frozen=True)
class Keys:
    """Secrets of a deployment.

    ``data_keys`` maps a key id to a 32-byte AES key; ``current_key_id`` encrypts new data,
    the others only decrypt (rotation). ``lookup_key`` keys the HMAC of channel addresses.
    """

    lookup_key: bytes
    data_keys: Mapping[str, bytes]
    current_key_id: str
    nlg_token: str


@dataclass(frozen=True)
class TwilioSettings:
    """A Twilio number (or messaging service) connected to the assistant."""

    account_sid: str
    auth_token: str
    sender: str  # "+33..." number, or a messaging service SID "MG..."
    whatsapp_sender: Optional[str] = None  # "+33..." WhatsApp sender of the account, if any
    api_base: Optional[str] = None  # only to point the client at a local fake in tests

    def __repr__(self) -> str:
        return f"TwilioSettings(account_sid={self.account_sid[:6]}…, sender=…)"


@dataclass(frozen=True)
class TelegramSettings:
    """A Telegram bot connected to the assistant.

    ``mode`` is ``webhook`` (Telegram calls ``/webhooks/telegram`` with ``secret_token``) or
    ``polling`` (a worker asks Telegram for updates: no public address needed)."""

    token: str
    mode: str
    secret_token: Optional[str] = None
    api_base: Optional[str] = None  # only to point the client at a local fake in tests

    @property
    def bot_id(self) -> str:
        """The bot's public numeric id (the part of the token before the colon)."""
        return self.token.split(":", 1)[0]

    def __repr__(self) -> str:
        return f"TelegramSettings(bot_id={self.bot_id}, mode={self.mode})"


@dataclass(frozen=True)
class Settings:
    env: str = "local"
    data_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    redis_url: Optional[str] = None
    rasa_url: str = "http://127.0.0.1:5005"
    action_server_url: str = "http://127.0.0.1:5055/webhook"
    host: str = "127.0.0.1"
    port: int = 8000
    nlg_host: str = "127.0.0.1"
    nlg_port: int = 5056
    default_language: str = "fr"
    languages: Tuple[str, ...] = SUPPORTED_LANGUAGES
    serve_drafts: bool = True
    max_text_length: int = 1600
    rasa_timeout: float = 30.0
    router_concurrency: int = 8
    sweep_after_seconds: float = 30.0
    sending_timeout_seconds: float = 120.0
    tracker_expiry_seconds: int = 30 * 24 * 3600
    exit_url: str = DEFAULT_EXIT_URL
    public_url: Optional[str] = None
    twilio: Optional[TwilioSettings] = field(default=None, repr=False)
    telegram: Optional[TelegramSettings] = field(default=None, repr=False)
    flood_per_minute: int = 20
    flood_per_hour: int = 200
    handoff_alert_after_seconds: int = 600
    console_session_hours: int = 10
    retention_bot_days: int = 30  # conversations with the bot only: after her last message
    retention_handoff_days: int = 90  # conversations handed to an association: after it ended
    metrics_token: Optional[str] = field(default=None, repr=False)  # bearer token of /metrics, if any
    stats_threshold: int = 5  # statistics: cells from 1 to this minus one are hidden (bot/disclosure.py)
    keys: Optional[Keys] = field(default=None, repr=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sqlite_default(self) -> str:
        return f"sqlite:///{self.data_dir / 'outreach.db'}"


def _bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false")


def _int(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}")
    return value


def _decode_key(raw: str, name: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
    except (ValueError, TypeError):
        raise SettingsError(f"{name} must be base64 (urlsafe)") from None
    if len(key) != 32:
        raise SettingsError(f"{name} must decode to 32 bytes")
    return key


def _all_or_none(env: Mapping[str, str], names: Tuple[str, ...], what: str) -> bool:
    """True if every variable of a group is set, False if none is; an error naming the
    missing ones otherwise."""
    present = [n for n in names if env.get(n)]
    if not present:
        return False
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise SettingsError("missing " + ", ".join(missing) + f" (set all {what} or none)")
    return True


def _keys_from_env(env: Mapping[str, str]) -> Optional[Keys]:
    """Read keys from ``OUTREACH_LOOKUP_KEY``, ``OUTREACH_DATA_KEYS`` (``id:key,id:key``,
    the first one current) and ``OUTREACH_NLG_TOKEN``; None if none of them is set."""
    if not _all_or_none(env, ("OUTREACH_LOOKUP_KEY", "OUTREACH_DATA_KEYS", "OUTREACH_NLG_TOKEN"), "three keys"):
        return None
    data_keys = {}
    current = ""
    for item in env["OUTREACH_DATA_KEYS"].split(","):
        key_id, sep, raw = item.strip().partition(":")
        if not sep or not key_id.isalnum() or len(key_id) > 16:
            raise SettingsError("OUTREACH_DATA_KEYS must look like id1:base64key,id0:base64key")
        if key_id in data_keys:
            raise SettingsError("OUTREACH_DATA_KEYS names the same key id twice")
        data_keys[key_id] = _decode_key(raw, "OUTREACH_DATA_KEYS")
        current = current or key_id
    token = env["OUTREACH_NLG_TOKEN"]
    if len(token) < 16:
        raise SettingsError("OUTREACH_NLG_TOKEN must be at least 16 characters")
    return Keys(
        lookup_key=_decode_key(env["OUTREACH_LOOKUP_KEY"], "OUTREACH_LOOKUP_KEY"),
        data_keys=data_keys,
        current_key_id=current,
        nlg_token=token,
    )


def local_keys(data_dir: Path) -> Keys:
    """Keys for a local run: generated once into ``var/keys.json`` (mode 0600)."""
    path = data_dir / "keys.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        content = {
            "lookup_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "data_keys": {"k1": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()},
            "current_key_id": "k1",
            "nlg_token": secrets.token_urlsafe(32),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle)
    stored = json.loads(path.read_text())
    return Keys(
        lookup_key=_decode_key(stored["lookup_key"], "lookup_key"),
        data_keys={k: _decode_key(v, "data_keys") for k, v in stored["data_keys"].items()},
        current_key_id=stored["current_key_id"],
        nlg_token=stored["nlg_token"],
    )


def _twilio_from_env(env: Mapping[str, str], public_url: Optional[str]) -> Optional[TwilioSettings]:
    if not _all_or_none(env, ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"), "three Twilio settings"):
        return None
    if not public_url:
        raise SettingsError("OUTREACH_PUBLIC_URL is needed to check Twilio's signatures")
    sender = env["TWILIO_FROM"].strip()
    if not (sender.startswith("+") and sender[1:].isdigit()) and not sender.startswith("MG"):
        raise SettingsError("TWILIO_FROM must be a number like +33612345678 or a messaging service SID (MG...)")
    whatsapp = (env.get("TWILIO_WHATSAPP_FROM") or "").strip().removeprefix("whatsapp:") or None
    if whatsapp is not None and not (whatsapp.startswith("+") and whatsapp[1:].isdigit()):
        raise SettingsError("TWILIO_WHATSAPP_FROM must be a number like +33612345678")
    return TwilioSettings(
        account_sid=env["TWILIO_ACCOUNT_SID"].strip(),
        auth_token=env["TWILIO_AUTH_TOKEN"].strip(),
        sender=sender,
        whatsapp_sender=whatsapp,
        api_base=env.get("TWILIO_API_BASE") or None,
    )


_METRICS_TOKEN = re.compile(r"^[A-Za-z0-9_.~+/=-]{16,256}$")


def _metrics_token(env: Mapping[str, str]) -> Optional[str]:
    """``OUTREACH_METRICS_TOKEN``: when set, ``/metrics`` asks for it as a bearer token."""
    token = (env.get("OUTREACH_METRICS_TOKEN") or "").strip() or None
    if token is not None and not _METRICS_TOKEN.match(token):
        raise SettingsError("OUTREACH_METRICS_TOKEN must be 16-256 letters, digits or -._~+/=")
    return token


_TELEGRAM_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{30,64}$")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


def _telegram_from_env(env: Mapping[str, str], public_url: Optional[str]) -> Optional[TelegramSettings]:
    token = (env.get("TELEGRAM_BOT_TOKEN") or "").strip()
    if not token:
        if env.get("TELEGRAM_WEBHOOK_SECRET") or env.get("TELEGRAM_MODE"):
            raise SettingsError("TELEGRAM_BOT_TOKEN is missing (set it, or unset the other TELEGRAM_ settings)")
        return None
    if not _TELEGRAM_TOKEN.match(token):
        raise SettingsError("TELEGRAM_BOT_TOKEN must look like 123456789:AA... (from @BotFather)")
    mode = (env.get("TELEGRAM_MODE") or ("webhook" if public_url else "polling")).strip()
    if mode not in {"webhook", "polling"}:
        raise SettingsError("TELEGRAM_MODE must be webhook or polling")
    secret = (env.get("TELEGRAM_WEBHOOK_SECRET") or "").strip() or None
    if secret is not None and not _TELEGRAM_SECRET.match(secret):
        raise SettingsError("TELEGRAM_WEBHOOK_SECRET must be 16-256 letters, digits, _ or -")
    if mode == "webhook":
        if not public_url:
            raise SettingsError("TELEGRAM_MODE=webhook needs OUTREACH_PUBLIC_URL (or use TELEGRAM_MODE=polling)")
        if secret is None:
            raise SettingsError("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_SECRET")
    return TelegramSettings(token=token, mode=mode, secret_token=secret, api_base=env.get("TELEGRAM_API_BASE") or None)


def _rasa_urls(value: str) -> str:
    """``RASA_URL``: one Rasa server, or several separated by commas (same model, trackers and
    locks in Redis)."""
    from bot.rasa_client import split_urls

    urls = split_urls(value)
    if not urls or not all(url.startswith(("http://", "https://")) for url in urls):
        raise SettingsError("RASA_URL must be one or more http(s):// addresses separated by commas")
    return ",".join(urls)


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Build :class:`Settings` from environment variables (``OUTREACH_*``, ``DATABASE_URL``,
    ``REDIS_URL``, ``RASA_URL``), validating each."""
    env = os.environ if env is None else env
    mode = env.get("OUTREACH_ENV", "local")
    if mode not in {"local", "test", "production"}:
        raise SettingsError("OUTREACH_ENV must be local, test or production")
    data_dir = Path(env.get("OUTREACH_DATA_DIR", str(PROJECT_ROOT / "var"))).resolve()
    languages = tuple(
        lang.strip() for lang in env.get("OUTREACH_LANGUAGES", ",".join(SUPPORTED_LANGUAGES)).split(",") if lang.strip()
    )
    unknown = [lang for lang in languages if lang not in SUPPORTED_LANGUAGES]
    if unknown or not languages:
        raise SettingsError("OUTREACH_LANGUAGES must be a comma-separated subset of " + ",".join(SUPPORTED_LANGUAGES))
    default_language = env.get("OUTREACH_DEFAULT_LANGUAGE", "fr")
    if default_language not in languages:
        raise SettingsError("OUTREACH_DEFAULT_LANGUAGE must be one of OUTREACH_LANGUAGES")
    keys = _keys_from_env(env)
    if keys is None and mode == "production":
        raise SettingsError("production mode needs OUTREACH_LOOKUP_KEY, OUTREACH_DATA_KEYS and OUTREACH_NLG_TOKEN")
    exit_url = env.get("OUTREACH_EXIT_URL", DEFAULT_EXIT_URL)
    if not (exit_url.startswith("https://") or exit_url == "about:blank"):
        raise SettingsError("OUTREACH_EXIT_URL must be an https:// address (or about:blank)")
    public_url = (env.get("OUTREACH_PUBLIC_URL") or "").rstrip("/") or None
    if public_url and not public_url.startswith(("https://", "http://")):
        raise SettingsError("OUTREACH_PUBLIC_URL must be the https:// address providers call")
    twilio = _twilio_from_env(env, public_url)
    telegram = _telegram_from_env(env, public_url)
    if mode == "production" and not env.get("DATABASE_URL"):
        raise SettingsError("production mode needs DATABASE_URL")
    if mode == "production" and not env.get("REDIS_URL"):
        raise SettingsError("production mode needs REDIS_URL")
    settings = Settings(
        env=mode,
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL") or None,
        rasa_url=_rasa_urls(env.get("RASA_URL", "http://127.0.0.1:5005")),
        action_server_url=env.get("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook"),
        host=env.get("OUTREACH_HOST", "127.0.0.1"),
        port=_int(env.get("OUTREACH_PORT", "8000"), "OUTREACH_PORT", 1, 65535),
        nlg_host=env.get("OUTREACH_NLG_HOST", "127.0.0.1"),
        nlg_port=_int(env.get("OUTREACH_NLG_PORT", "5056"), "OUTREACH_NLG_PORT", 1, 65535),
        default_language=default_language,
        languages=languages,
        serve_drafts=_bool(env.get("OUTREACH_SERVE_DRAFTS", "true"), "OUTREACH_SERVE_DRAFTS"),
        max_text_length=_int(env.get("OUTREACH_MAX_TEXT", "1600"), "OUTREACH_MAX_TEXT", 1, 100_000),
        rasa_timeout=float(_int(env.get("OUTREACH_RASA_TIMEOUT", "30"), "OUTREACH_RASA_TIMEOUT", 1, 600)),
        router_concurrency=_int(env.get("OUTREACH_ROUTER_CONCURRENCY", "8"), "OUTREACH_ROUTER_CONCURRENCY", 1, 256),
        sweep_after_seconds=float(_int(env.get("OUTREACH_SWEEP_AFTER", "30"), "OUTREACH_SWEEP_AFTER", 1, 86_400)),
        sending_timeout_seconds=float(
            _int(env.get("OUTREACH_SENDING_TIMEOUT", "120"), "OUTREACH_SENDING_TIMEOUT", 30, 86_400)
        ),
        tracker_expiry_seconds=_int(
            env.get("OUTREACH_TRACKER_EXPIRY", str(30 * 24 * 3600)), "OUTREACH_TRACKER_EXPIRY", 60, 10**9
        ),
        exit_url=exit_url,
        public_url=public_url,
        twilio=twilio,
        telegram=telegram,
        flood_per_minute=_int(env.get("OUTREACH_FLOOD_PER_MINUTE", "20"), "OUTREACH_FLOOD_PER_MINUTE", 0, 10_000),
        flood_per_hour=_int(env.get("OUTREACH_FLOOD_PER_HOUR", "200"), "OUTREACH_FLOOD_PER_HOUR", 0, 100_000),
        handoff_alert_after_seconds=_int(
            env.get("OUTREACH_HANDOFF_ALERT_AFTER", "600"), "OUTREACH_HANDOFF_ALERT_AFTER", 30, 86_400
        ),
        console_session_hours=_int(
            env.get("OUTREACH_CONSOLE_SESSION_HOURS", "10"), "OUTREACH_CONSOLE_SESSION_HOURS", 1, 72
        ),
        retention_bot_days=_int(env.get("OUTREACH_RETENTION_BOT_DAYS", "30"), "OUTREACH_RETENTION_BOT_DAYS", 1, 3650),
        retention_handoff_days=_int(
            env.get("OUTREACH_RETENTION_HANDOFF_DAYS", "90"), "OUTREACH_RETENTION_HANDOFF_DAYS", 1, 3650
        ),
        metrics_token=_metrics_token(env),
        stats_threshold=_int(env.get("OUTREACH_STATS_THRESHOLD", "5"), "OUTREACH_STATS_THRESHOLD", 2, 1000),
        keys=keys,
    )
    if not settings.database_url:
        settings = _replace(settings, database_url=settings.sqlite_default)
    return settings


def _replace(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)  # type: ignore[arg-type]


def with_local_keys(settings: Settings) -> Settings:
    """Return settings whose keys are set: from the environment, or generated locally."""
    if settings.keys is not None:
        return settings
    if settings.production:
        raise SettingsError("production mode needs keys from the environment")
    return _replace(settings, keys=local_keys(settings.data_dir))
