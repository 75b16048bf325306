"""The NLG endpoint Rasa calls to turn a response name into text (internal only).

Rasa sends the response name and the tracker; the language is the one the router decided for
the message and passed as message metadata. The tracker holds personal data: it is read for
these two fields only, and never logged or echoed in an error.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Dict, Mapping, Tuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.i18n import Catalogs

log = logging.getLogger(__name__)

FALLBACK_RESPONSE = "utter_default"
MAX_BODY = 2_000_000


def language_of(tracker: Mapping[str, Any], languages: Tuple[str, ...], default: str) -> str:
    """The language the router chose for the latest message, if it is a served one."""
    latest = tracker.get("latest_message")
    metadata = latest.get("metadata") if isinstance(latest, Mapping) else None
    language = metadata.get("language") if isinstance(metadata, Mapping) else None
    return language if isinstance(language, str) and language in languages else default


def nlg_payload(text: str, response: str = "") -> Dict[str, Any]:
    """What Rasa sends on: the text, and the response's name in ``custom`` (Rasa's REST channel
    returns it to the router as a message of its own, which counts the topic: bot/statistics.py)."""
    custom = {"response": response} if response else {}
    return {"text": text, "buttons": [], "image": None, "elements": [], "attachments": [], "custom": custom}


def create_nlg_app(catalogs: Catalogs, token: str, default_language: str) -> Starlette:
    """App factory of the NLG endpoint: ``POST /nlg`` with ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def nlg(request: Request) -> Response:
        supplied = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(supplied, expected):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("response"), str):
            return JSONResponse({"error": "a response name is required"}, status_code=422)
        name = body["response"]
        tracker: Dict[str, Any] = body["tracker"] if isinstance(body.get("tracker"), dict) else {}
        language = language_of(tracker, catalogs.languages, default_language)
        if not catalogs.has_response(name):
            log.error("NLG asked for unknown response %s; answering with %s", name[:80], FALLBACK_RESPONSE)
            name = FALLBACK_RESPONSE
        values: Dict[str, Any] = {}
        for source in (tracker.get("slots"), body.get("arguments")):
            if isinstance(source, dict):
                values.update(source)
        return JSONResponse(nlg_payload(catalogs.render(name, language, values), name))

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/nlg", nlg, methods=["POST"]), Route("/healthz", health)])
