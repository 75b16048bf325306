"""Sender worker: delivers outbox rows through their channel (consumer group ``sender``).

Failures are classified by the channel: a retryable one puts the row back in the queue with a
``next_attempt_at`` (the provider's retry-after, else exponential backoff with jitter) that the
sweeper honours, up to ``max_attempts``, then the row is a dead letter (status ``dead``); a
permanent one or an opt-out marks the row failed with its code. Queued rows whose notification
was lost are swept; entries of a sender that died are claimed by another.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
from datetime import timedelta
from typing import Callable, Mapping, Optional, Set

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import erasure, queues
from bot.channels.base import Channel, SendError, SendErrorKind
from bot.metrics import Metrics
from bot.models import utcnow
from bot.store import DEAD, FAILED, QUEUED, SENT, Outbound, Store
from bot.tasks import stop as stop_tasks

log = logging.getLogger(__name__)

DISCREET_SILENCE = timedelta(minutes=30)  # discreet mode: no message after her silence this long


class Sender:
    def __init__(
        self,
        store: Store,
        redis: Redis,
        channels: Mapping[str, Channel],
        *,
        concurrency: int = 8,
        max_attempts: int = 6,
        retry_idle_ms: int = 15_000,
        sweep_after: float = 30.0,
        sending_for: float = 120.0,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        sweep_interval: float = 1.0,
        consumer: Optional[str] = None,
        discreet_text: Optional[Callable[[str, Optional[str]], str]] = None,
        discreet_silence: timedelta = DISCREET_SILENCE,
        metrics: Optional[Metrics] = None,
    ) -> None:
        """``discreet_text``: the neutral version of a text for a contact in discreet mode
        (bot.guard.DiscreetTexts); nothing is sent to her after ``discreet_silence`` without a
        message of hers (it waits until she writes)."""
        self.store = store
        self.metrics = metrics or Metrics()
        self.discreet_text = discreet_text
        self.discreet_silence = discreet_silence
        self.redis = redis
        self.channels = dict(channels)
        self.max_attempts = max_attempts
        self.retry_idle_ms = retry_idle_ms
        self.sweep_after = sweep_after
        self.sending_for = sending_for  # a row left "sending" this long: its sender died
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sweep_interval = sweep_interval
        self.consumer = consumer or f"sender-{socket.gethostname()}-{id(self):x}"
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: Set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await self._until_ready()
        extra = [asyncio.create_task(self._claim_loop()), asyncio.create_task(self._sweep_loop())]
        try:
            while True:
                try:
                    entries = await queues.read_group(
                        self.redis, queues.OUTBOX, queues.SENDER_GROUP, self.consumer, count=32, block_ms=1000
                    )
                except RedisError as error:
                    log.warning("sender cannot read the outbox stream (%s); retrying", type(error).__name__)
                    self.metrics.error("sender", error)
                    await asyncio.sleep(1.0)
                    await self._until_ready()
                    continue
                for entry in entries:
                    await self._spawn(entry)
        finally:
            await stop_tasks(extra + list(self._tasks))
            for channel in {id(c): c for c in self.channels.values()}.values():  # one channel may serve two names
                close = getattr(channel, "close", None)
                if close is not None:
                    await close()

    async def _until_ready(self) -> None:
        while True:
            try:
                await queues.ensure_group(self.redis, queues.OUTBOX, queues.SENDER_GROUP)
                return
            except RedisError:
                await asyncio.sleep(1.0)

    async def _spawn(self, entry: queues.Entry) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._handle_entry(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _t: self._slots.release())

    async def _handle_entry(self, entry: queues.Entry) -> None:
        entry_id, fields = entry
        try:
            done = await self.deliver(int(fields["m"]))
        except (KeyError, ValueError):
            done = True
        except Exception as error:
            log.exception("sender failed on an outbox entry; it will be retried")
            self.metrics.error("sender", error)
            done = False
        if done:
            await queues.ack(self.redis, queues.OUTBOX, queues.SENDER_GROUP, entry_id)

    async def deliver(self, message_id: int) -> bool:
        """Deliver one outbox row. True when the entry can be acknowledged: the row is settled
        (sent or failed for good), will be retried later, or waits for an earlier reply of its
        conversation (which notifies it once settled)."""
        message = await self.store.run(self.store.claim_outbound, message_id)
        if message is None:
            return True  # already sent or failed, being sent by another sender, or not its turn
        following = await self._send(message)
        if following is not None:  # the next reply of the conversation may go now
            await queues.notify_outbox(self.redis, following)
        return True

    async def _mark(self, message_id: int, status: str, reference: Optional[str], code: Optional[str]) -> Optional[int]:
        return await self.store.run(self.store.mark_outbound, message_id, status, reference, code)

    async def _send(self, message: Outbound) -> Optional[int]:
        """Send a claimed row and record the outcome; returns the next reply of the
        conversation to notify, if this one is settled. The address of a contact erased at her
        request goes as soon as the confirmation to her is settled."""
        following = await self._attempt(message)
        if message.conversation is not None and message.conversation.erased:
            await self.store.run(erasure.forget_address_once_settled, self.store, message.id)
        return following

    async def _attempt(self, message: Outbound) -> Optional[int]:
        conversation = message.conversation
        if conversation is not None and conversation.discreet and message.channel != "webchat":
            silent_since = conversation.last_seen_at
            if silent_since is not None and utcnow() - silent_since > self.discreet_silence:
                if await self.store.run(self.store.hold, message.id, utcnow() - self.discreet_silence):
                    self.metrics.message_out(message.channel, "held")
                    return None  # kept back until she writes; later replies wait behind it
            if self.discreet_text is not None:
                message = dataclasses.replace(message, text=self.discreet_text(message.text, conversation.language))
        return await self._send_now(message)

    async def _already_sent(self, channel: Channel, message: Outbound) -> Optional[str]:
        """The provider's reference of this reply if an earlier attempt reached it (channels
        that can tell: ``find_sent``), excluding what other replies of hers already carry."""
        find = getattr(channel, "find_sent", None)
        if find is None or message.conversation is None:
            return None
        for reference in await find(message, message.conversation):
            if not await self.store.run(self.store.reference_known, message.conversation_id, reference):
                return str(reference)
        return None

    async def _send_now(self, message: Outbound) -> Optional[int]:
        message_id = message.id
        conversation = message.conversation
        channel = self.channels.get(message.channel)
        if conversation is None or channel is None:
            self.metrics.message_out(message.channel, "no_channel")
            return await self._mark(message_id, FAILED, None, "no_channel")
        if conversation.stopped:  # she opted out: nothing is sent until she writes again
            self.metrics.message_out(message.channel, "opted_out")
            return await self._mark(message_id, FAILED, None, "stopped")
        try:
            reference = await self._already_sent(channel, message) if message.unsure else None
            if reference is not None:  # an earlier attempt reached the provider: not sent twice
                log.warning("send to %s: an earlier attempt had gone through; not sent again", message.channel)
                self.metrics.message_out(message.channel, "found_sent")
                return await self._mark(message_id, SENT, reference, None)
            reference = await channel.send(message, conversation)
        except SendError as error:
            if error.kind is SendErrorKind.STOPPED:
                self.metrics.message_out(message.channel, "stopped")
                await self.store.run(self.store.set_stopped, conversation.contact_id, True)
            if error.kind is SendErrorKind.RETRYABLE:
                if message.attempts + 1 < self.max_attempts:
                    delay = self.backoff(message.attempts, error.retry_after)
                    retry_at = utcnow() + timedelta(seconds=delay)
                    await self.store.run(self.store.mark_outbound, message_id, QUEUED, None, error.code, retry_at)
                    log.warning("send to %s failed (%s), retry in %.1f s", message.channel, error.code, delay)
                    self.metrics.message_out(message.channel, "retry")
                    return None  # the sweeper notifies it again when due; later replies wait
                log.warning(
                    "send to %s failed %d times (%s): dead letter", message.channel, message.attempts + 1, error.code
                )
                self.metrics.message_out(message.channel, "dead")
                return await self._mark(message_id, DEAD, None, error.code)
            log.warning("send to %s failed for good (%s)", message.channel, error.code)
            if error.kind is SendErrorKind.PERMANENT:
                self.metrics.message_out(message.channel, "failed")
            return await self._mark(message_id, FAILED, None, error.code)
        following = await self._mark(message_id, SENT, reference, None)
        self.metrics.message_out(message.channel, "sent")
        await queues.publish_conversation(self.redis, message.conversation_id)
        return following

    def backoff(self, attempts: int, retry_after: Optional[float] = None) -> float:
        """Seconds before the next try: what the provider asked for, else exponential with jitter."""
        if retry_after is not None:
            return max(float(retry_after), self.backoff_base)
        delay = min(self.backoff_base * (2**attempts), self.backoff_max)
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not security)

    async def _claim_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.retry_idle_ms / 4000, 0.5))
            try:
                entries = await queues.claim_idle(
                    self.redis, queues.OUTBOX, queues.SENDER_GROUP, self.consumer, self.retry_idle_ms
                )
            except RedisError:
                continue
            for entry in entries:
                await self._spawn(entry)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                stale = await self.store.run(
                    self.store.stale_outbound, timedelta(seconds=self.sweep_after), timedelta(seconds=self.sending_for)
                )
                for message_id in stale:
                    await queues.notify_outbox(self.redis, message_id)
            except Exception as error:
                log.warning("outbox sweep failed (%s)", type(error).__name__)
                self.metrics.error("sender", error)
