"""The small interface every channel implements, and the classification of send failures."""

from __future__ import annotations

import enum
from typing import Optional, Protocol

from bot.store import ConversationRef, Outbound


class SendErrorKind(enum.Enum):
    RETRYABLE = "retryable"  # timeouts, 5xx, 429: try again later
    PERMANENT = "permanent"  # the request itself is wrong: do not retry
    STOPPED = "stopped"  # the person opted out or blocked the bot: send nothing more


class SendError(Exception):
    def __init__(self, kind: SendErrorKind, code: str, retry_after: Optional[float] = None) -> None:
        super().__init__(f"{kind.value}: {code}")
        self.kind = kind
        self.code = code
        self.retry_after = retry_after


class Channel(Protocol):
    """Outbound side of a channel."""

    name: str

    async def send(self, message: Outbound, conversation: ConversationRef) -> Optional[str]:
        """Deliver ``message``; return the provider's reference, if any. Raise
        :class:`SendError` on failure."""
        ...
