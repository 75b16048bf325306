"""Work that must run in one process at a time, whatever number of processes are started.

The housekeeping workers (unclaimed-request alerts, the purge of erasure stubs, Telegram long
polling) would alert twice or conflict if two ran. Each housekeeping process asks Redis for a
lease (a key with an expiry, renewed while held); only its holder runs the work, the others
wait and take over within ``ttl`` seconds if the holder dies. If Redis comes back empty, the
holder notices at its next renewal and stops, and one of them takes the lease again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Callable, Coroutine, List, Optional, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import queues
from bot.tasks import stop as stop_tasks

log = logging.getLogger(__name__)

Work = Callable[[], Coroutine[Any, Any, None]]


def lease_key(name: str) -> str:
    return f"{queues.PREFIX}:lease:{name}"


class Lease:
    def __init__(self, redis: Redis, name: str, ttl: float = 15.0, owner: Optional[str] = None) -> None:
        self.redis = redis
        self.name = name
        self.ttl_ms = int(ttl * 1000)
        self.token = owner or uuid.uuid4().hex
        self.held = False

    async def _take(self) -> bool:
        try:
            return bool(await self.redis.set(lease_key(self.name), self.token, nx=True, px=self.ttl_ms))
        except RedisError:
            return False

    async def _renew(self) -> Optional[bool]:
        """True if still ours, False if lost, None if Redis cannot tell now."""
        try:
            return bool(await self.redis.eval(queues._EXTEND, 1, lease_key(self.name), self.token, str(self.ttl_ms)))
        except RedisError:
            return None

    async def run(self, work: Sequence[Work]) -> None:
        """Run ``work`` while holding the lease, forever. A piece of work that fails ends this
        (the process exits and is restarted), as it would without the lease."""
        pause = self.ttl_ms / 3000
        while True:
            if not await self._take():
                await asyncio.sleep(pause)
                continue
            self.held = True
            log.info("%s: this process holds the lease and runs the work", self.name)
            tasks: List[asyncio.Task[None]] = [asyncio.create_task(piece()) for piece in work]
            try:
                await self._hold(tasks, pause)
            finally:
                self.held = False
                await stop_tasks(tasks)
                try:
                    await self.redis.eval(queues._RELEASE, 1, lease_key(self.name), self.token)
                except RedisError:
                    pass

    async def _hold(self, tasks: List[asyncio.Task[None]], pause: float) -> None:
        unsure_since: Optional[float] = None
        loop = asyncio.get_running_loop()
        while True:
            done, _ = await asyncio.wait(tasks, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
            for task in done:  # a piece of work ended by itself: let the process end
                task.result()
                raise RuntimeError(f"{self.name}: a worker returned")
            renewed = await self._renew()
            if renewed:
                unsure_since = None
                continue
            if renewed is False:
                log.warning("%s: the lease was lost; this process stops the work", self.name)
                return
            # Redis does not answer: nobody else can take the lease meanwhile, unless it
            # expires; stop before it could
            unsure_since = unsure_since or loop.time()
            if loop.time() - unsure_since > self.ttl_ms / 1000:
                log.warning("%s: Redis unreachable for the lease's lifetime; this process stops the work", self.name)
                return
