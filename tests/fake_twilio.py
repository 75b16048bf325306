"""A local stand-in for Twilio's REST API on loopback, for the real twilio client to talk to.

It records every request (path, form fields, basic-auth user) and answers from a queue of
prepared responses (default: 201 with a new message SID).
"""

from __future__ import annotations

import base64
import itertools
from typing import Any, Dict, List, Tuple
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fake_server import LoopbackServer


class FakeTwilio(LoopbackServer):
    name = "fake Twilio"

    def __init__(self) -> None:
        super().__init__()
        self.requests: List[Dict[str, Any]] = []
        self.prepared: List[Tuple[int, Dict[str, Any]]] = []
        self.sids: List[str] = []  # the SIDs of the messages accepted, in order
        self._sids = itertools.count(1)

    def prepare(self, status: int, body: Dict[str, Any]) -> None:
        self.prepared.append((status, body))

    def prepare_error(self, status: int, code: int) -> None:
        self.prepare(status, {"code": code, "message": f"error {code}", "status": status})

    async def _messages(self, request: Request) -> JSONResponse:
        raw = (await request.body()).decode()
        auth = request.headers.get("authorization", "")
        user = base64.b64decode(auth.split(" ", 1)[1]).decode().split(":", 1)[0] if auth else None
        fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        self.requests.append({"path": request.url.path, "form": fields, "user": user})
        if self.prepared:
            status, body = self.prepared.pop(0)
            return JSONResponse(body, status_code=status)
        sid = f"SM{next(self._sids):032d}"
        self.sids.append(sid)
        return JSONResponse({"sid": sid, "status": "queued", "to": fields.get("To"), "body": fields.get("Body")}, 201)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", self._messages, methods=["POST"])]
        )
