"""Redis: work streams with consumer groups, per-conversation locks and live notifications.

Stream entries carry only internal row ids; the messages themselves stay in SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, Dict, List, Optional, Set, Tuple

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.tasks import stop as stop_tasks

if TYPE_CHECKING:  # bot.metrics reads these streams
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

PREFIX = "outreach"
INBOX = f"{PREFIX}:inbox"
OUTBOX = f"{PREFIX}:outbox"
ROUTER_GROUP = "router"
SENDER_GROUP = "sender"
STREAM_MAXLEN = 100_000

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""
# A worker holds a conversation's lock for LOCK_TTL_MS and renews it while it works: a worker
# that dies (killed, machine lost) frees the conversation within that time.
LOCK_TTL_MS = 15_000


class LockBusy(Exception):
    """The conversation is being handled by another worker."""


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def notify_inbox(redis: Redis, conversation_id: int, message_id: int) -> None:
    await redis.xadd(INBOX, {"c": str(conversation_id), "m": str(message_id)}, maxlen=STREAM_MAXLEN, approximate=True)


async def notify_outbox(redis: Redis, message_id: int) -> None:
    await redis.xadd(OUTBOX, {"m": str(message_id)}, maxlen=STREAM_MAXLEN, approximate=True)


Entry = Tuple[str, Dict[str, str]]


async def read_group(redis: Redis, stream: str, group: str, consumer: str, count: int, block_ms: int) -> List[Entry]:
    """New entries for this consumer (blocking up to ``block_ms``)."""
    response = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
    return [(entry_id, fields) for _name, entries in response or [] for entry_id, fields in entries]


async def claim_idle(
    redis: Redis, stream: str, group: str, consumer: str, min_idle_ms: int, count: int = 50
) -> List[Entry]:
    """Take over entries another consumer read but never acknowledged (it died)."""
    result = await redis.xautoclaim(stream, group, consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count)
    entries = result[1] if len(result) > 1 else []
    return [(entry_id, fields) for entry_id, fields in entries if fields]


async def ack(redis: Redis, stream: str, group: str, entry_id: str) -> None:
    """Acknowledge a handled entry. If Redis is gone meanwhile, the entry stays pending and is
    claimed again later, which is harmless: its work is recorded in SQL, and handling it
    again finds nothing left to do."""
    try:
        await redis.xack(stream, group, entry_id)
    except RedisError as error:
        log.warning("%s entry not acknowledged (%s); it will be seen again", stream, type(error).__name__)


def lock_key(conversation_id: int) -> str:
    return f"{PREFIX}:lock:conversation:{conversation_id}"


@asynccontextmanager
async def conversation_lock(
    redis: Redis, conversation_id: int, ttl_ms: int = LOCK_TTL_MS, wait_s: float = 10.0
) -> AsyncIterator[None]:
    """Hold the conversation for one worker, renewed while held; expires by itself within
    ``ttl_ms`` if the worker dies."""
    key = lock_key(conversation_id)
    token = uuid.uuid4().hex
    deadline = asyncio.get_running_loop().time() + wait_s
    delay = 0.02
    while not await redis.set(key, token, nx=True, px=ttl_ms):
        if asyncio.get_running_loop().time() > deadline:
            raise LockBusy()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl_ms / 3000)
            with contextlib.suppress(RedisError):
                await redis.eval(_EXTEND, 1, key, token, str(ttl_ms))

    renewer = asyncio.create_task(renew())
    try:
        yield
    finally:
        await stop_tasks([renewer])
        await redis.eval(_RELEASE, 1, key, token)


def conversation_channel(conversation_id: int) -> str:
    return f"{PREFIX}:conversation:{conversation_id}"


async def publish_conversation(redis: Redis, conversation_id: int) -> None:
    """Tell live readers (web chat long polls) that a conversation has something new."""
    await redis.publish(conversation_channel(conversation_id), "new")


class Notifier:
    """One Redis subscription per process, fanned out to local waiters.

    A long poll waits on an :class:`asyncio.Event` instead of holding a Redis connection.
    """

    def __init__(self, redis: Redis, metrics: Optional[Metrics] = None) -> None:
        self._redis = redis
        self._metrics = metrics
        self._waiters: Dict[int, Set[asyncio.Event]] = {}
        self._task: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="notifier")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task], patience=3.0)

    @asynccontextmanager
    async def watch(self, conversation_id: int) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(conversation_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(conversation_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[conversation_id]

    def _wake(self, conversation_id: int) -> None:
        for event in self._waiters.get(conversation_id, ()):
            event.set()

    async def _listen(self) -> None:
        pattern = f"{PREFIX}:conversation:*"
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(pattern)
                while True:
                    # a bounded wait (never longer than the client's socket timeout): an idle
                    # subscription is not an error
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
                    if message is None or message.get("type") != "pmessage":
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    try:
                        self._wake(int(channel.rsplit(":", 1)[1]))
                    except ValueError:
                        continue
            except asyncio.CancelledError:
                # never let a stuck connection hold up a shutdown
                closing = asyncio.ensure_future(pubsub.close())
                await asyncio.wait({closing}, timeout=1.0)
                if not closing.done():
                    closing.cancel()
                raise
            except Exception as error:  # Redis restarted: wake everyone, resubscribe
                log.warning("notifier lost its Redis subscription (%s); retrying", type(error).__name__)
                if self._metrics is not None:
                    self._metrics.error("notifier", error)
                for conversation_id in list(self._waiters):
                    self._wake(conversation_id)
                await asyncio.sleep(1.0)
