"""Per-contact flood guard, in Redis, shared by every gateway process.

Fixed windows (a minute and an hour by default) count the messages of one contact, keyed by
its pseudonymous look-up key or internal id (never an address). Under the limits a message is
accepted; the first message over a limit is stored as a ``flood`` notice (the person is told to slow down, in her
language); later ones in the same window are acknowledged to the provider and dropped. If Redis
cannot be reached the guard lets messages through: losing a message is worse than a flood.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.metrics import Metrics
from bot.queues import PREFIX

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ACCEPT = "accept"
    NOTIFY = "notify"  # first message over a limit: store a notice instead of the text
    DROP = "drop"  # over a limit and already told: acknowledge, store nothing


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


DEFAULT_LIMITS: Tuple[Limit, ...] = (Limit(20, 60), Limit(200, 3600))


class FloodGuard:
    def __init__(
        self, redis: Redis, limits: Sequence[Limit] = DEFAULT_LIMITS, metrics: Optional[Metrics] = None
    ) -> None:
        self.redis = redis
        self.limits = tuple(limits)
        self.metrics = metrics or Metrics()

    async def check(self, contact: object, once: Optional[str] = None, now: Optional[float] = None) -> Verdict:
        """The verdict on one more message of ``contact``. ``once``: the delivery's provider id,
        so that a provider's retry of the same message is not counted twice."""
        if not self.limits:
            return Verdict.ACCEPT
        moment = time.time() if now is None else now
        try:
            if once is not None:
                first = await self.redis.set(
                    f"{PREFIX}:flood:seen:{once}", "1", nx=True, ex=self.limits[-1].seconds * 2
                )
                if not first:
                    return Verdict.ACCEPT  # a redelivery: the store keeps it once anyway
            pipe = self.redis.pipeline(transaction=False)
            for limit in self.limits:
                window = int(moment // limit.seconds)
                key = f"{PREFIX}:flood:{contact}:{limit.seconds}:{window}"
                pipe.incr(key)
                pipe.expire(key, limit.seconds * 2)
            counts = (await pipe.execute())[::2]
        except RedisError as error:
            log.warning("flood guard unavailable (%s); message accepted", type(error).__name__)
            self.metrics.error("flood_guard", error)
            return Verdict.ACCEPT
        verdict = Verdict.ACCEPT
        for limit, count in zip(self.limits, counts, strict=True):
            if int(count) == limit.count + 1 and verdict is Verdict.ACCEPT:
                verdict = Verdict.NOTIFY
            elif int(count) > limit.count + 1:
                verdict = Verdict.DROP
        return verdict
