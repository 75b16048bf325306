"""Web chat channel: a small HTTP API used by the ``/chat`` page, tests and evaluators.

* ``POST /webchat/sessions`` -> 201 ``{"session": token}``
* ``POST /webchat/sessions/{session}/messages`` ``{"text": ...}`` -> 202 ``{"id": n}``
  (an ``Idempotency-Key`` header makes a retried post count once)
* ``GET /webchat/sessions/{session}/messages?after=<id>&wait=<0-30>`` -> 200 ``{"messages": [...]}``

The session token is a bearer secret held by the browser; the server keeps only its keyed
hash. Bot replies are delivered by being visible here (the sender marks them sent).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any, Dict, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import inbox
from bot.crypto import new_token
from bot.ratelimit import Verdict
from bot.store import ConversationRef, Outbound, ShownMessage
from bot.text import TextError, clean

NAME = "webchat"
MAX_BODY = 64 * 1024
MAX_WAIT = 30.0
MAX_ID = 2**63 - 1  # a message id is a 64-bit integer (SQLite cannot even compare with a larger one)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_IDEMPOTENCY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
REFUSED = {404: "rejected", 429: "dropped"}  # metrics outcome of a refused post; others: "invalid"


class WebChatChannel:
    """Outbound side: nothing to call; the reply is read by the page's long poll."""

    name = NAME

    async def send(self, message: Outbound, conversation: ConversationRef) -> Optional[str]:
        return None


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _shown(message: ShownMessage) -> Dict[str, Any]:
    return {
        "id": message.id,
        "author": message.author,
        "text": message.text,
        "sent_at": message.sent_at.isoformat().replace("+00:00", "Z"),
    }


def webchat_routes(services: Any) -> list:
    """Routes of the web chat API, bound to the gateway's services."""

    store = services.store
    settings = services.settings
    metrics = services.metrics

    async def conversation_for(request: Request) -> Optional[ConversationRef]:
        token = request.path_params["session"]
        if not _TOKEN.match(token):
            return None
        return await store.run(store.find_conversation, NAME, token)

    async def create_session(request: Request) -> Response:
        token = new_token(24)
        await store.run(store.open_conversation, NAME, token, False)
        return JSONResponse({"session": token}, status_code=201, headers={"Cache-Control": "no-store"})

    async def post_message(request: Request) -> Response:
        response = await _post_message(request)
        if response.status_code >= 400:  # accepted messages are counted where they are stored
            metrics.message_in(NAME, REFUSED.get(response.status_code, "invalid"))
        return response

    async def _post_message(request: Request) -> Response:
        conversation = await conversation_for(request)
        if conversation is None:
            return error(404, "unknown_session", "This chat session does not exist or has ended.")
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return error(413, "too_large", "The request is too large.")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return error(413, "too_large", "The request is too large.")
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            return error(400, "invalid_json", "The request body must be JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return error(422, "text_required", 'The request body must be {"text": "..."}.')
        try:
            text = clean(body["text"], settings.max_text_length)
        except TextError as problem:
            return error(422, problem.code, str(problem))
        key = request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY.match(key):
            return error(422, "invalid_idempotency_key", "Idempotency-Key must be 1-64 letters, digits or -_.:")
        provider_id = f"{conversation.id}:{key or uuid.uuid4().hex}"
        kind = inbox.TEXT
        verdict = await services.flood.check(conversation.contact_id, once=f"{NAME}:{provider_id}" if key else None)
        if verdict is Verdict.DROP:
            return error(429, "too_many_messages", "Too many messages: wait a few minutes.")
        if verdict is Verdict.NOTIFY:
            text, kind = "", inbox.FLOOD
        message_id, created = await store.run(store.record_inbound, conversation, provider_id, text, kind)
        metrics.message_in(NAME, inbox.outcome(kind, created))
        if created:
            await inbox.notify(services, conversation.id, message_id)
        return JSONResponse({"id": message_id}, status_code=202)

    async def get_messages(request: Request) -> Response:
        conversation = await conversation_for(request)
        if conversation is None:
            return error(404, "unknown_session", "This chat session does not exist or has ended.")
        try:
            after = int(request.query_params.get("after", "0"))
            wait = float(request.query_params.get("wait", "0"))
        except ValueError:
            return error(422, "invalid_query", "after must be a whole number and wait a number of seconds.")
        if not 0 <= after <= MAX_ID or not 0 <= wait <= MAX_WAIT:
            return error(422, "invalid_query", "after must be 0 or more and wait between 0 and 30 seconds.")
        async with services.notifier.watch(conversation.id) as event:
            messages = await store.run(store.messages_after, conversation.id, after)
            if not messages and wait > 0:
                try:
                    await asyncio.wait_for(event.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
                messages = await store.run(store.messages_after, conversation.id, after)
        return JSONResponse({"messages": [_shown(m) for m in messages]}, headers={"Cache-Control": "no-store"})

    return [
        Route("/webchat/sessions", create_session, methods=["POST"]),
        Route("/webchat/sessions/{session}/messages", post_message, methods=["POST"]),
        Route("/webchat/sessions/{session}/messages", get_messages, methods=["GET"]),
    ]
