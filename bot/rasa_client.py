"""Client of the Rasa server's REST channel (internal network only)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import httpx


class RasaUnavailable(Exception):
    """Rasa could not answer now (down, restarting, overloaded); the message must wait."""


class RasaClient:
    def __init__(
        self, base_url: str, timeout: float = 30.0, transport: Optional[httpx.AsyncBaseTransport] = None
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout, connect=5.0), transport=transport
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        try:
            response = await self._client.get("/webhooks/rest/")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def send(self, sender: str, text: str, metadata: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """Send one user message; returns the bot messages Rasa produced, in order."""
        try:
            response = await self._client.post(
                "/webhooks/rest/webhook", json={"sender": sender, "message": text, "metadata": dict(metadata)}
            )
        except httpx.HTTPError as error:
            raise RasaUnavailable(type(error).__name__) from None
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise RasaUnavailable("invalid JSON") from None
        if not isinstance(payload, list):
            raise RasaUnavailable("unexpected payload")
        return [item for item in payload if isinstance(item, dict)]
