"""A stand-in for the Rasa server's REST channel, for router tests (the end-to-end tests use
the real Rasa). It answers ``reply to <text>`` and can be made unavailable."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Set

import httpx


class FakeRasa:
    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.down = False
        self.replies_per_message = 1
        self.reply_text: Optional[str] = None  # the answer to every message, instead of "reply n to ..."
        # messages the model takes as a request for a person (action_request_human's payload)
        self.asks_for_human: Set[str] = set()
        # the response names the NLG endpoint would give for a message (what the statistics count)
        self.responses: Dict[str, List[str]] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/webhooks/rest/":
            return httpx.Response(200, json={"status": "ok"})
        body = json.loads(request.content)
        self.calls.append(body)
        if body["message"] in self.asks_for_human:
            return httpx.Response(200, json=[{"recipient_id": body["sender"], "custom": {"handoff": "request"}}])
        replies = [
            {"recipient_id": body["sender"], "text": self.reply_text or f"reply {n} to {body['message']}"}
            for n in range(self.replies_per_message)
        ]
        replies += [
            {"recipient_id": body["sender"], "custom": {"response": name}}
            for name in self.responses.get(body["message"], [])
        ]
        return httpx.Response(200, json=replies)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
