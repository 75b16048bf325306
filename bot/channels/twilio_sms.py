"""SMS through Twilio (``POST /webhooks/twilio``, delivery reports at ``/webhooks/twilio/status``).

Inbound: the ``X-Twilio-Signature`` is checked with twilio's RequestValidator against the
configured public URL (so it holds behind a reverse proxy that rewrites host or path); a
request that fails gets 403 and nothing is stored. A message is stored once per MessageSid,
then the router is notified, then Twilio gets an empty TwiML answer. Photos, sounds and videos
are not stored: the person is told that only text is read.

Outbound: twilio's REST client (async, never blocking the event loop) sends each outbox row;
failures are classified for the sender: 21610 (the person texted STOP) stops the contact,
429 and 5xx and network errors are retried, anything else is permanent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot import inbox
from bot.channels.base import SendError, SendErrorKind
from bot.notices import MEDIA_NOTICE  # noqa: F401 (re-exported)
from bot.settings import TwilioSettings
from bot.store import ConversationRef, Outbound, Store
from bot.text import truncate

log = logging.getLogger(__name__)

NAME = "sms"
WHATSAPP = "whatsapp"  # WhatsApp through Twilio: same webhook, addresses "whatsapp:+33..."
MAX_BODY = 64 * 1024
# Twilio's sids have 34 letters and digits (the provider id column holds 128, with ":media");
# anything else (a NUL, which PostgreSQL refuses, 64 KiB...) is not a sid of Twilio's
SID = re.compile(r"[A-Za-z0-9]{1,64}")
ERROR_CODE = re.compile(r"[A-Za-z0-9]{1,32}")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
STATUS_PATH = "/webhooks/twilio/status"
STOPPED_CODE = 21610
SEND_TIMEOUT = 20.0  # seconds
DELIVERY_STATUS = {"sent": "sent", "delivered": "delivered", "undelivered": "failed", "failed": "failed"}


def _first(params: ImmutableMultiDict, name: str) -> str:
    return str(params.get(name) or "")


class TwilioSignature:
    """Checks that a request comes from Twilio (constant-time comparison inside twilio)."""

    def __init__(self, settings: TwilioSettings, public_url: str) -> None:
        from twilio.request_validator import RequestValidator

        self._validator = RequestValidator(settings.auth_token)
        self._public_url = public_url.rstrip("/")

    def url_of(self, request: Request) -> str:
        query = request.url.query
        return self._public_url + request.url.path + (f"?{query}" if query else "")

    async def params_if_valid(self, request: Request) -> Optional[ImmutableMultiDict]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return None
        # a multi-dict: twilio's validator reads repeated fields with getlist()
        params = ImmutableMultiDict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
        signature = request.headers.get("x-twilio-signature", "")
        if not signature or not self._validator.validate(self.url_of(request), params, signature):
            return None
        return params


def twilio_routes(services: Any) -> list:
    settings = services.settings
    store: Store = services.store
    checker = TwilioSignature(settings.twilio, settings.public_url)
    metrics = services.metrics

    async def inbound(request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            metrics.message_in(NAME, "invalid")
            return PlainTextResponse("request too large", status_code=413)
        params = await checker.params_if_valid(request)
        if params is None:
            metrics.message_in(NAME, "rejected")
            return PlainTextResponse("forbidden", status_code=403)
        sid = _first(params, "MessageSid") or _first(params, "SmsSid")
        sender = _first(params, "From")
        if not SID.fullmatch(sid) or not sender:
            metrics.message_in(NAME, "invalid")
            return PlainTextResponse("MessageSid and From are required", status_code=400)
        text = truncate(_first(params, "Body"), settings.max_text_length)
        try:
            media = int(_first(params, "NumMedia") or 0)
        except ValueError:
            media = 0
        channel = WHATSAPP if sender.startswith("whatsapp:") else NAME
        if text:
            await inbox.receive(services, channel, sender, sid, text)
        if media > 0 or not text:
            await inbox.receive(services, channel, sender, f"{sid}:media", "", inbox.MEDIA)
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status(request: Request) -> Response:
        params = await checker.params_if_valid(request)
        if params is None:
            metrics.message_in(NAME, "rejected")  # a forged report counts as a forged message
            return PlainTextResponse("forbidden", status_code=403)
        sid = _first(params, "MessageSid") or _first(params, "SmsSid")
        new_status = DELIVERY_STATUS.get(_first(params, "MessageStatus"))
        code = _first(params, "ErrorCode") or None
        if code is not None and not ERROR_CODE.fullmatch(code):
            code = None
        if SID.fullmatch(sid) and new_status:
            channel = NAME
            contact_id = await store.run(store.delivery_update, NAME, sid, new_status, code)
            if contact_id is None:
                channel = WHATSAPP
                contact_id = await store.run(store.delivery_update, WHATSAPP, sid, new_status, code)
            if contact_id is not None and new_status != "sent":
                metrics.message_out(channel, "delivered" if new_status == "delivered" else "undelivered")
            if contact_id is not None and code == str(STOPPED_CODE):
                await store.run(store.set_stopped, contact_id, True)
        return Response(status_code=204)

    return [
        Route("/webhooks/twilio", inbound, methods=["POST"]),
        Route(STATUS_PATH, status, methods=["POST"]),
    ]


class TwilioChannel:
    """Outbound SMS (and WhatsApp) with twilio's REST client."""

    name = NAME

    def __init__(self, settings: TwilioSettings, public_url: str, store: Store) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        # twilio logs every request with its query (a look-up carries her number) at INFO: its
        # client gets a logger of its own that only speaks of failures, whatever the app's setup
        quiet = logging.getLogger("bot.twilio_http")
        quiet.setLevel(logging.WARNING)
        self._http = AsyncTwilioHttpClient(logger=quiet)
        self.client = Client(settings.account_sid, settings.auth_token, http_client=self._http)
        if settings.api_base:
            self.client.api.base_url = settings.api_base
        self._sender = (
            {"messaging_service_sid": settings.sender}
            if settings.sender.startswith("MG")
            else {"from_": settings.sender}
        )
        # WhatsApp: its own sender if set; else the messaging service, or the SMS number as a
        # WhatsApp sender (Twilio refuses a WhatsApp reply from a plain number)
        whatsapp_number = settings.whatsapp_sender or (None if settings.sender.startswith("MG") else settings.sender)
        self._whatsapp_sender = {"from_": f"whatsapp:{whatsapp_number}"} if whatsapp_number else self._sender
        self._callback = public_url.rstrip("/") + STATUS_PATH
        self._store = store

    async def close(self) -> None:
        await self._http.close()

    async def send(self, message: Outbound, conversation: ConversationRef) -> Optional[str]:
        import aiohttp
        from twilio.base.exceptions import TwilioRestException

        address = message.address or await self._store.run(self._store.address_of, conversation.contact_id)
        if address is None:
            raise SendError(SendErrorKind.PERMANENT, "no_address")
        try:
            sender = self._whatsapp_sender if address.startswith("whatsapp:") else self._sender
            # twilio's async client sets no time limit of its own
            result = await asyncio.wait_for(
                self.client.messages.create_async(
                    to=address, body=message.text, status_callback=self._callback, **sender
                ),
                timeout=SEND_TIMEOUT,
            )
        except TwilioRestException as error:
            if error.code == STOPPED_CODE:
                raise SendError(SendErrorKind.STOPPED, str(STOPPED_CODE)) from None
            if error.status == 429 or error.status >= 500:
                raise SendError(SendErrorKind.RETRYABLE, f"http_{error.status}") from None
            raise SendError(SendErrorKind.PERMANENT, str(error.code or f"http_{error.status}")) from None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            raise SendError(SendErrorKind.RETRYABLE, "network") from None
        return str(result.sid)

    async def find_sent(self, message: Outbound, conversation: ConversationRef) -> List[str]:
        """Twilio's references of messages with this text sent to her since the reply was
        written: an earlier attempt that timed out or whose sender died may have gone through.
        Twilio takes no idempotency key, so its message log is asked instead (newest first,
        the last 50). A lookup that fails is a retryable failure: nothing is sent blind."""
        import aiohttp
        from twilio.base.exceptions import TwilioException, TwilioRestException

        address = message.address or await self._store.run(self._store.address_of, conversation.contact_id)
        if address is None:
            return []
        sender = self._whatsapp_sender if address.startswith("whatsapp:") else self._sender
        filters = {"to": address, **({"from_": sender["from_"]} if "from_" in sender else {})}
        try:
            found = await asyncio.wait_for(
                self.client.messages.list_async(**filters, limit=50),
                timeout=SEND_TIMEOUT,
            )
        except TwilioRestException as error:
            raise SendError(SendErrorKind.RETRYABLE, f"lookup_http_{error.status}") from None
        except TwilioException:  # a page it could not read (twilio raises this for any error status)
            raise SendError(SendErrorKind.RETRYABLE, "lookup_failed") from None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            raise SendError(SendErrorKind.RETRYABLE, "lookup_network") from None
        since = (message.created_at or datetime.now(timezone.utc)) - timedelta(minutes=1)
        return [
            str(item.sid)
            for item in found
            if item.body == message.text and (item.date_created is None or item.date_created >= since)
        ]
