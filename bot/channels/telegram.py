"""Telegram, with python-telegram-bot (``POST /webhooks/telegram`` or long polling).

Inbound, webhook mode: Telegram sends each update with the ``X-Telegram-Bot-Api-Secret-Token``
header set when the webhook was registered (``python -m bot telegram set-webhook``); any other
request gets 403 and nothing is stored. Polling mode (no public address): a worker asks
Telegram for updates and moves its offset only once an update is stored, so a crash loses
nothing. Both feed :func:`handle_update`:

* a private text message is stored once per update (``<bot id>:<update_id>``); ``/start`` is the
  welcome; her Telegram app language is the first guess of her language;
* a photo, voice note, sticker, document, location... is not stored: she is told only text is
  read (a caption is read as text);
* edits, groups, channels, inline queries, service messages (a pinned message, a timer) and
  anything else are acknowledged and ignored;
* blocking the bot (``my_chat_member`` -> kicked) stops the contact; unblocking lifts it.

Outbound: ``Bot.send_message``, one outbox row per message (the router cuts answers over
Telegram's 4096 characters into several rows, so a failed part is retried alone). Errors are
classified for the sender: ``RetryAfter`` (429) is retried when Telegram says, network errors
and 5xx with backoff, "blocked by the user" (403) stops the contact, a bad request is permanent.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import warnings
from datetime import timedelta
from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import inbox
from bot.channels.base import SendError, SendErrorKind
from bot.settings import TelegramSettings
from bot.store import ConversationRef, Outbound, Store
from bot.text import truncate

log = logging.getLogger(__name__)

NAME = "telegram"
PATH = "/webhooks/telegram"
MAX_BODY = 1024 * 1024
MAX_MESSAGE = 4096  # Telegram's limit for one message's text
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)
ALLOWED_UPDATES = ["message", "edited_message", "my_chat_member"]
IGNORED = "ignored"


def make_bot(settings: TelegramSettings, pool_size: int = 8) -> Any:
    """A python-telegram-bot ``Bot`` (pointed at ``api_base`` in tests)."""
    from telegram import Bot
    from telegram.request import HTTPXRequest

    options: dict = {}
    if settings.api_base:
        options["base_url"] = settings.api_base.rstrip("/") + "/bot"
    return Bot(
        settings.token,
        request=HTTPXRequest(connection_pool_size=pool_size, read_timeout=20.0, connect_timeout=10.0),
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=60.0, connect_timeout=10.0),
        **options,
    )


def _is_id(value: Any) -> bool:
    """A chat id is a whole number (python-telegram-bot checks no types: a string could hold
    anything, a lone surrogate included)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _language_of(user: Any) -> Optional[str]:
    code = getattr(user, "language_code", None)
    code = code.lower() if isinstance(code, str) else ""  # python-telegram-bot checks no types
    return code.split("-")[0] or None


async def handle_update(services: Any, update: Any) -> str:
    """Store what an update carries for the assistant; returns what was done (for tests and
    counters: ``stored``, ``duplicate``, ``media``, ``flood``, ``stopped``, ``unstopped``,
    ``ignored``)."""
    settings: TelegramSettings = services.settings.telegram
    provider_id = f"{settings.bot_id}:{update.update_id}"
    member = update.my_chat_member
    if member is not None:
        outcome = await _membership(services, member)
        services.metrics.message_in(NAME, outcome)
        return outcome
    message = update.message
    if message is None or message.chat is None or message.chat.type != "private" or not _is_id(message.chat.id):
        services.metrics.message_in(NAME, IGNORED)
        return IGNORED  # edits, channel posts, groups, inline queries, callbacks...
    user = message.from_user
    if user is None or user.is_bot:
        services.metrics.message_in(NAME, IGNORED)
        return IGNORED
    address = str(message.chat.id)
    language = _language_of(user)
    words = message.text if message.text is not None else message.caption
    words = words if isinstance(words, str) else None  # python-telegram-bot checks no types
    text = truncate(words or "", services.settings.max_text_length)
    attachment = message.effective_attachment
    if not text and attachment is None:
        services.metrics.message_in(NAME, IGNORED)
        return IGNORED  # a service message: a pinned message, a timer, a new chat photo...
    outcomes = []
    if text:
        kind = inbox.START if text.split(maxsplit=1)[0].split("@")[0] == "/start" else inbox.TEXT
        stored = await inbox.receive(
            services, NAME, address, provider_id, "" if kind == inbox.START else text, kind, language
        )
        outcomes.append(stored)
    if attachment is not None:
        outcomes.append(await inbox.receive(services, NAME, address, f"{provider_id}:media", "", inbox.MEDIA, language))
    if any(received.verdict.value != "accept" for received in outcomes):
        return "flood"
    if not any(received.stored for received in outcomes):
        return "duplicate"
    return "stored" if text else "media"


async def _membership(services: Any, member: Any) -> str:
    """She blocked the bot (kicked) or unblocked it, in a private chat."""
    if member.chat is None or member.chat.type != "private" or not _is_id(member.chat.id):
        return IGNORED
    store: Store = services.store
    conversation = await store.run(store.find_conversation, NAME, str(member.chat.id))
    if conversation is None:
        return IGNORED
    status = member.new_chat_member.status
    if status == "kicked":
        await store.run(store.set_stopped, conversation.contact_id, True)
        return "stopped"
    if status == "member":
        await store.run(store.set_stopped, conversation.contact_id, False)
        return "unstopped"
    return IGNORED


def telegram_routes(services: Any) -> list:
    settings: TelegramSettings = services.settings.telegram
    expected = (settings.secret_token or "").encode()
    metrics = services.metrics

    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            metrics.message_in(NAME, "rejected")
            return PlainTextResponse("forbidden", status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            metrics.message_in(NAME, "invalid")
            return PlainTextResponse("request too large", status_code=413)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            metrics.message_in(NAME, "invalid")
            return PlainTextResponse("request too large", status_code=413)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            metrics.message_in(NAME, "invalid")
            return PlainTextResponse("the body must be a JSON update", status_code=400)
        from telegram import Update

        try:
            update_id = data.get("update_id") if isinstance(data, dict) else None
            # a whole number that fits the provider id column (Telegram's are 32-bit)
            if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 <= update_id < 2**63:
                raise ValueError("no update_id")
            update = Update.de_json(data, None)
        except Exception as error:  # a shape we cannot read: do not make Telegram retry it
            log.warning("telegram: unreadable update ignored (%s)", type(error).__name__)
            metrics.message_in(NAME, "invalid")
            metrics.error("telegram", error)
            return JSONResponse({"ok": True, "outcome": IGNORED})
        outcome = await handle_update(services, update)
        return JSONResponse({"ok": True, "outcome": outcome})

    return [Route(PATH, webhook, methods=["POST"])]


def _seconds(retry_after: Any) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


class TelegramChannel:
    """Outbound Telegram messages through python-telegram-bot's ``Bot``."""

    name = NAME

    def __init__(self, settings: TelegramSettings, store: Store, bot: Any = None) -> None:
        self.bot = bot or make_bot(settings)
        self._store = store

    async def close(self) -> None:
        await self.bot.request.shutdown()  # the bot is never initialised: close its HTTP client

    async def send(self, message: Outbound, conversation: ConversationRef) -> Optional[str]:
        from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter

        address = message.address or await self._store.run(self._store.address_of, conversation.contact_id)
        if address is None:
            raise SendError(SendErrorKind.PERMANENT, "no_address")
        try:
            # the router keeps each row within MAX_MESSAGE; a longer one is cut, never refused
            sent = await self.bot.send_message(chat_id=int(address), text=message.text[:MAX_MESSAGE])
            reference = str(sent.message_id)
        except RetryAfter as error:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wait = _seconds(error.retry_after)
            raise SendError(SendErrorKind.RETRYABLE, "http_429", retry_after=wait) from None
        except Forbidden:  # blocked by the user, or her account is gone
            raise SendError(SendErrorKind.STOPPED, "blocked") from None
        except InvalidToken:
            log.error("telegram rejected the bot token: check TELEGRAM_BOT_TOKEN")
            raise SendError(SendErrorKind.RETRYABLE, "invalid_token") from None
        except BadRequest:
            raise SendError(SendErrorKind.PERMANENT, "bad_request") from None
        except (NetworkError, asyncio.TimeoutError):  # timeouts, 5xx, connection errors
            raise SendError(SendErrorKind.RETRYABLE, "network") from None
        return reference


class TelegramPoller:
    """Long polling for deployments without a public address (run one per bot).

    Updates are fetched raw, so that one update python-telegram-bot cannot read is skipped
    (and logged by type) instead of stopping intake; the offset moves past an update only once
    it is stored, or once it has failed ``max_failures`` times for a reason other than the
    database or Redis being down."""

    def __init__(self, services: Any, bot: Any = None, timeout: int = 25, max_failures: int = 5) -> None:
        self.services = services
        self.bot = bot or make_bot(services.settings.telegram)
        self.timeout = timeout
        self.max_failures = max_failures
        self.offset: Optional[int] = None
        # getUpdates is asked for raw on purpose (see the class docstring), not by mistake
        warnings.filterwarnings("ignore", message="Please use 'Bot.get_updates'")

    async def run(self) -> None:
        from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut

        try:
            while True:
                try:
                    raw = await self.bot.do_api_request(
                        "get_updates",
                        api_kwargs={"offset": self.offset, "timeout": self.timeout, "allowed_updates": ALLOWED_UPDATES},
                        read_timeout=self.timeout + 15,
                    )
                except TimedOut:
                    continue
                except RetryAfter as error:
                    await asyncio.sleep(_seconds(error.retry_after))
                    continue
                except Conflict:
                    log.error(
                        "telegram: a webhook is set or another poller runs; "
                        "run `python -m bot telegram delete-webhook` or use TELEGRAM_MODE=webhook"
                    )
                    await asyncio.sleep(30)
                    continue
                except InvalidToken:
                    log.error("telegram rejected the bot token: check TELEGRAM_BOT_TOKEN")
                    await asyncio.sleep(60)
                    continue
                except TelegramError as error:  # network errors, 5xx, a response it could not read
                    log.warning("telegram polling failed (%s); retrying", type(error).__name__)
                    self.services.metrics.error("telegram", error)
                    await asyncio.sleep(2)
                    continue
                for data in raw if isinstance(raw, list) else []:
                    update_id = data.get("update_id") if isinstance(data, dict) else None
                    if not isinstance(update_id, int):
                        continue
                    await self._store(data)
                    self.offset = update_id + 1  # only once it is stored (or given up)
        finally:
            await self.bot.request.shutdown()

    async def _store(self, data: dict) -> None:
        from redis.exceptions import RedisError
        from sqlalchemy.exc import SQLAlchemyError
        from telegram import Update

        try:
            update = Update.de_json(data, None)
        except Exception as error:  # a shape python-telegram-bot cannot read: skip it
            log.warning("telegram: unreadable update skipped (%s)", type(error).__name__)
            self.services.metrics.message_in(NAME, "invalid")
            self.services.metrics.error("telegram", error)
            return
        delay, failures = 1.0, 0
        while True:
            try:
                await handle_update(self.services, update)
                return
            except (SQLAlchemyError, RedisError, OSError) as error:  # storage down: keep the update
                log.warning("telegram update not stored (%s); retrying", type(error).__name__)
                self.services.metrics.error("telegram", error)
            except Exception as error:
                failures += 1
                log.error(
                    "telegram update failed (%s), try %d of %d", type(error).__name__, failures, self.max_failures
                )
                self.services.metrics.error("telegram", error)
                if failures >= self.max_failures:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def set_webhook(settings: TelegramSettings, public_url: str) -> str:
    bot = make_bot(settings, pool_size=1)
    async with bot:
        await bot.set_webhook(
            url=public_url.rstrip("/") + PATH,
            secret_token=settings.secret_token,
            allowed_updates=ALLOWED_UPDATES,
            max_connections=40,
        )
    return public_url.rstrip("/") + PATH


async def delete_webhook(settings: TelegramSettings) -> None:
    bot = make_bot(settings, pool_size=1)
    async with bot:
        await bot.delete_webhook(drop_pending_updates=False)


async def webhook_info(settings: TelegramSettings) -> dict:
    """What Telegram knows of the webhook (no secret in it)."""
    bot = make_bot(settings, pool_size=1)
    async with bot:
        info = await bot.get_webhook_info()
    return {
        "url": info.url or "(none: polling)",
        "pending_update_count": info.pending_update_count,
        "last_error_message": info.last_error_message or "",
        "allowed_updates": list(info.allowed_updates or []),
    }
