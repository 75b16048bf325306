"""A local stand-in for Twilio's REST API on loopback, for the real twilio client to talk to.

It records every request to send (path, form fields, basic-auth user) and answers from a queue
of prepared responses (default: 201 with a new message SID); a share of requests can fail at
random (``fail_rate``: 500 or 429, nothing created). The messages it accepted can be listed as
Twilio's message log does (``GET .../Messages.json?To=&From=``, newest first); those look-ups
are recorded in ``lookups``.
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
from datetime import datetime, timezone
from email.utils import format_datetime
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
        self.created: List[Dict[str, Any]] = []  # the messages accepted: sid, to, from, body, date
        self.lookups: List[Dict[str, str]] = []
        self.fail_rate = 0.0
        self.lookups_fail = 0  # so many look-ups answer 500 first
        self._random = random.Random(7)
        self._sids = itertools.count(1)
        self._lock = threading.Lock()

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
        if self.fail_rate and self._random.random() < self.fail_rate:
            status = self._random.choice((500, 429))
            return JSONResponse({"code": 20500 if status == 500 else 20429, "status": status}, status_code=status)
        with self._lock:
            sid = f"SM{next(self._sids):032d}"
            self.sids.append(sid)
            created = {"sid": sid, "to": fields.get("To"), "from": fields.get("From"), "body": fields.get("Body")}
            self.created.append({**created, "date_created": datetime.now(timezone.utc)})
        return JSONResponse({**created, "status": "queued"}, 201)

    async def _list(self, request: Request) -> JSONResponse:
        query = dict(request.query_params)
        self.lookups.append(query)
        if self.lookups_fail > 0:
            self.lookups_fail -= 1
            return JSONResponse({"code": 20500, "status": 500}, status_code=500)
        with self._lock:
            found = [
                {**m, "date_created": format_datetime(m["date_created"]), "status": "sent"}
                for m in reversed(self.created)
                if m["to"] == query.get("To") and ("From" not in query or m["from"] == query["From"])
            ]
        size = int(query.get("PageSize", "50"))
        path = request.url.path
        return JSONResponse(
            {
                "messages": found[:size],
                "page": 0,
                "page_size": size,
                "start": 0,
                "end": min(size, len(found)) - 1,
                "uri": path,
                "first_page_uri": path,
                "next_page_uri": None,
                "previous_page_uri": None,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account}/Messages.json", self._messages, methods=["POST"]),
                Route("/2010-04-01/Accounts/{account}/Messages.json", self._list, methods=["GET"]),
            ]
        )
