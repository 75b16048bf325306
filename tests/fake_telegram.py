"""A local stand-in for the Telegram Bot API on loopback, for python-telegram-bot's real ``Bot``.

It records every call (method and parameters, as Telegram would read them), answers
``sendMessage`` with a new message, serves queued updates to ``getUpdates`` (honouring the
offset, as Telegram does), keeps the webhook settings, and can be told to fail the next calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any, Dict, List, Tuple
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fake_server import LoopbackServer

BOT_ID = 123456789
TOKEN = f"{BOT_ID}:AAFakeTokenForTestsOnly_abcdefghijklmno"


class FakeTelegram(LoopbackServer):
    name = "fake Telegram"

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.calls: List[Dict[str, Any]] = []
        self.prepared: Dict[str, List[Tuple[int, Dict[str, Any]]]] = {}
        self.updates: List[Dict[str, Any]] = []
        self.webhook: Dict[str, Any] = {}
        self._ids = itertools.count(1000)

    def reset(self) -> None:
        self.calls.clear()
        self.prepared.clear()
        self.updates.clear()
        self.webhook.clear()

    def sent(self) -> List[Dict[str, Any]]:
        """The sendMessage calls, as Telegram read them."""
        return [call["params"] for call in self.calls if call["method"] == "sendMessage"]

    def prepare(self, method: str, status: int, description: str, **parameters: Any) -> None:
        body: Dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.prepared.setdefault(method, []).append((status, body))

    async def _method(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.path_params["method"]
        raw = (await request.body()).decode()
        params = dict(parse_qsl(raw, keep_blank_values=True))
        if method != "getUpdates":
            self.calls.append({"method": method, "params": params})
        queued = self.prepared.get(method)
        if queued:
            status, body = queued.pop(0)
            return JSONResponse(body, status_code=status)
        return JSONResponse({"ok": True, "result": await self._result(method, params)})

    async def _result(self, method: str, params: Dict[str, str]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Outreach", "username": "outreach_test_bot"}
        if method == "sendMessage":
            chat = int(params["chat_id"])
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private"},
                "text": params.get("text", ""),
            }
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            if not self.updates:
                await asyncio.sleep(min(float(params.get("timeout") or 0), 0.2))
            return self.updates[:100]
        if method == "setWebhook":
            self.webhook = {"url": params["url"], "allowed_updates": json.loads(params.get("allowed_updates", "[]"))}
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "getWebhookInfo":
            return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
        return True

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._method, methods=["POST", "GET"])])
