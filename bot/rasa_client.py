"""Client of the Rasa servers' REST channel (internal network only).

Several Rasa servers may serve the same model: they share the trackers (Redis tracker store)
and take the conversation's lock in Redis (Redis lock store), so any of them can answer any
conversation, and the router holds the conversation's own lock while it asks. A conversation
goes to the server its identifier hashes to (an even spread, stable while all are up); a server
that refuses connections is skipped for a while and its conversations go to the next one.
Only a request that never reached a server is sent to another at once: a timeout or an error
answer may have been half processed there, so the message waits and is retried as a whole."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import httpx

log = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa could not answer now (down, restarting, overloaded); the message must wait."""


def split_urls(value: str) -> List[str]:
    """``RASA_URL`` may list several servers, separated by commas."""
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


class RasaClient:
    def __init__(
        self,
        base_url: Union[str, Sequence[str]],
        timeout: float = 30.0,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        skip_for: float = 5.0,
    ) -> None:
        urls = split_urls(base_url) if isinstance(base_url, str) else [url.rstrip("/") for url in base_url]
        if not urls:
            raise ValueError("at least one Rasa URL is needed")
        self.urls = urls
        self.skip_for = skip_for
        self._down_until = [0.0] * len(urls)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0), transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        """At least one server answers."""
        return await self.ready_count() > 0

    async def ready_count(self) -> int:
        count = 0
        for url in self.urls:
            try:
                response = await self._client.get(f"{url}/webhooks/rest/")
            except httpx.HTTPError:
                continue
            count += response.status_code == 200
        return count

    def _order(self, sender: str) -> List[int]:
        """The servers to try for this conversation: its own first, the next ones after; those
        that refused a connection lately go last."""
        start = int.from_bytes(hashlib.blake2b(sender.encode(), digest_size=4).digest(), "big") % len(self.urls)
        order = [(start + step) % len(self.urls) for step in range(len(self.urls))]
        now = time.monotonic()
        return sorted(order, key=lambda index: self._down_until[index] > now)

    async def send(self, sender: str, text: str, metadata: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """Send one user message; returns the bot messages Rasa produced, in order."""
        body = {"sender": sender, "message": text, "metadata": dict(metadata)}
        problem = "no server"
        for index in self._order(sender):
            try:
                response = await self._client.post(f"{self.urls[index]}/webhooks/rest/webhook", json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # never reached it: try the next
                self._down_until[index] = time.monotonic() + self.skip_for
                problem = type(error).__name__
                log.warning("Rasa server %d of %d unreachable (%s)", index + 1, len(self.urls), problem)
                continue
            except httpx.HTTPError as error:
                raise RasaUnavailable(type(error).__name__) from None
            self._down_until[index] = 0.0
            return self._replies(response)
        raise RasaUnavailable(problem)

    @staticmethod
    def _replies(response: httpx.Response) -> List[Dict[str, Any]]:
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise RasaUnavailable("invalid JSON") from None
        if not isinstance(payload, list):
            raise RasaUnavailable("unexpected payload")
        return [item for item in payload if isinstance(item, dict)]
