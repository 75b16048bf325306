"""What every provider webhook does with a person's message: one contact, one row, once.

``receive`` applies the flood guard, then in one transaction opens the contact's conversation
(address kept only as a keyed hash and, to answer, encrypted) and stores the message once per
provider id, then notifies the router. A notification that cannot reach Redis is not an error
for the provider: the row is stored, and the router's sweeper queues it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from redis.exceptions import RedisError

from bot import queues
from bot.ratelimit import Verdict
from bot.store import ConversationRef

log = logging.getLogger(__name__)

TEXT = "text"
MEDIA = "media"  # a photo, sound, video, sticker...: not stored; she is told only text is read
START = "start"  # a first contact without words (Telegram's /start): the welcome
FLOOD = "flood"  # too many messages at once: she is asked to slow down


@dataclass(frozen=True)
class Received:
    conversation: Optional[ConversationRef]  # None for a dropped flood
    stored: int  # rows created (0 for a duplicate delivery or a dropped flood)
    verdict: Verdict


async def receive(
    services: Any,
    channel: str,
    address: str,
    provider_id: str,
    text: str,
    kind: str = TEXT,
    language_hint: Optional[str] = None,
) -> Received:
    """Store one inbound message (idempotent on ``provider_id``) and wake the router."""
    store = services.store
    verdict = await services.flood.check(store.lookup_key(channel, address)[:32], once=f"{channel}:{provider_id}")
    if verdict is Verdict.DROP:
        log.info("flood: a message from one %s contact was dropped", channel)
        services.metrics.message_in(channel, "dropped")
        return Received(None, 0, verdict)
    if verdict is Verdict.NOTIFY:
        text, kind = "", FLOOD
    hint = language_hint if language_hint in services.settings.languages else None
    conversation, message_id, created = await store.run(store.receive, channel, address, provider_id, text, kind, hint)
    services.metrics.message_in(channel, outcome(kind, created))
    if created:
        await notify(services, conversation.id, message_id)
    return Received(conversation, int(created), verdict)


def outcome(kind: str, created: bool) -> str:
    """What the metrics call a message stored (or not) with this kind."""
    if not created:
        return "duplicate"
    return {MEDIA: "media", FLOOD: "flooded"}.get(kind, "stored")


async def notify(services: Any, conversation_id: int, message_id: int) -> None:
    try:
        await queues.notify_inbox(services.redis, conversation_id, message_id)
        await queues.publish_conversation(services.redis, conversation_id)
    except RedisError as error:
        log.warning("router not notified (%s); the sweeper will queue the message", type(error).__name__)
        services.metrics.error("inbox", error)
