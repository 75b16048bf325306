"""Prometheus metrics of one process, and the ``/metrics`` endpoint that serves them.

Every label value is chosen from a fixed set in this module (a channel, an outcome, a
component, an exception class name): never an address, an id, a text or a session. A value
outside its set is counted as ``other``. One :class:`Metrics` per process owns its registry;
the queue depths are read from Redis when Prometheus scrapes.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timezone
from typing import Iterable, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import queues
from bot.handoff.states import OUTCOMES as HANDOFF_OUTCOMES

log = logging.getLogger(__name__)

OTHER = "other"
CHANNELS = frozenset({"webchat", "sms", "whatsapp", "telegram"})
IN_OUTCOMES = frozenset(
    {
        "stored",  # a message kept for the router
        "media",  # a photo, sound...: not kept, she is told only text is read
        "duplicate",  # a provider's redelivery, kept once already
        "flooded",  # the first message over a limit: kept as a "slow down" notice
        "dropped",  # over a limit and already told: acknowledged, not kept
        "rejected",  # a signature or secret that fails, an unknown web chat session
        "invalid",  # too large, malformed, missing fields
        "ignored",  # a Telegram update that is not for the assistant (edits, groups...)
        "stopped",  # she blocked the bot (Telegram)
        "unstopped",  # she unblocked it
    }
)
OUT_OUTCOMES = frozenset(
    {
        "sent",  # handed to the provider (web chat: visible to her page)
        "retry",  # a retryable failure: queued again with a delay
        "dead",  # retryable failures until the last attempt: a dead letter
        "failed",  # a permanent failure
        "stopped",  # the provider says she opted out or blocked the bot
        "opted_out",  # not tried: she opted out earlier
        "no_channel",  # not tried: the channel is not configured in this process
        "held",  # discreet mode: kept back until she writes
        "found_sent",  # an earlier attempt had reached the provider: not sent again
        "delivered",  # a Twilio delivery report: delivered
        "undelivered",  # a Twilio delivery report: undelivered or failed
    }
)
SAFETY_KINDS = frozenset({"danger", "minor", "erasure", "erased"})
HANDOFF_EVENTS = frozenset(
    {"requested", "no_association", "claimed", "taken_over", "cancelled", "released", "closed", "alerted"}
)
LAG_COUNT_LIMIT = 10_000
QUEUES = {"inbox": (queues.INBOX, queues.ROUTER_GROUP), "outbox": (queues.OUTBOX, queues.SENDER_GROUP)}
# seconds: Rasa answers in tens of milliseconds to seconds; a reply may wait for a Rasa restart
RASA_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
HANDOFF_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 24 * 3600.0, 72 * 3600.0)


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def _error_kind(error: BaseException) -> str:
    """An exception's class name (a bounded set: the classes of the code and its libraries)."""
    name = type(error).__name__
    return name if name.isidentifier() and len(name) <= 64 else OTHER


def seconds_since(moment: datetime, now: Optional[datetime] = None) -> float:
    """Seconds from ``moment`` (naive means UTC, as SQLite returns it) to ``now``."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return max(((now or datetime.now(timezone.utc)) - aware).total_seconds(), 0.0)


class Metrics:
    """The counters, gauges and histograms of one process, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._in = Counter(
            "outreach_messages_in", "Inbound messages by channel and outcome", ["channel", "outcome"], registry=registry
        )
        self._out = Counter(
            "outreach_messages_out",
            "Outbound send attempts and delivery reports by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self._queue_depth = Gauge(
            "outreach_queue_depth",
            "Entries of a Redis work stream not yet acknowledged by its consumer group (waiting or being handled)",
            ["queue"],
            registry=registry,
        )
        self._queue_pending = Gauge(
            "outreach_queue_pending",
            "Entries of a Redis work stream read by a worker and not yet acknowledged",
            ["queue"],
            registry=registry,
        )
        self._queue_length = Gauge(
            "outreach_queue_length",
            "Entries kept in a Redis work stream (acknowledged ones included)",
            ["queue"],
            registry=registry,
        )
        self._rasa = Histogram(
            "outreach_rasa_seconds",
            "Time of each call to Rasa's REST channel",
            ["outcome"],
            buckets=RASA_BUCKETS,
            registry=registry,
        )
        self._reply = Histogram(
            "outreach_reply_seconds",
            "From an inbound message stored to its answer queued",
            buckets=REPLY_BUCKETS,
            registry=registry,
        )
        self._handoff_wait = Histogram(
            "outreach_handoff_wait_seconds",
            "From a request for a person to its claim by a staff member",
            buckets=HANDOFF_BUCKETS,
            registry=registry,
        )
        self._handoffs = Counter(
            "outreach_handoffs", "Requests for a person and what staff did with them", ["event"], registry=registry
        )
        self._handoff_outcomes = Counter(
            "outreach_handoff_outcomes", "Requests closed by staff, by recorded outcome", ["outcome"], registry=registry
        )
        self._safety = Counter("outreach_safety_flags", "What the safety check found", ["kind"], registry=registry)
        self._errors = Counter(
            "outreach_errors",
            "Failures logged by a component, by exception class",
            ["component", "kind"],
            registry=registry,
        )

    # -- recording ------------------------------------------------------------------------

    def message_in(self, channel: str, outcome: str) -> None:
        self._in.labels(_bounded(channel, CHANNELS), _bounded(outcome, IN_OUTCOMES)).inc()

    def message_out(self, channel: str, outcome: str) -> None:
        self._out.labels(_bounded(channel, CHANNELS), _bounded(outcome, OUT_OUTCOMES)).inc()

    def rasa_call(self, seconds: float, ok: bool) -> None:
        self._rasa.labels("ok" if ok else "unavailable").observe(seconds)

    def reply(self, received_at: Optional[datetime]) -> None:
        if received_at is not None:
            self._reply.observe(seconds_since(received_at))

    def handoff(self, event: str, requested_at: Optional[datetime] = None) -> None:
        """A handoff event; a claim with its request time also records the wait."""
        self._handoffs.labels(_bounded(event, HANDOFF_EVENTS)).inc()
        if event == "claimed" and requested_at is not None:
            self._handoff_wait.observe(seconds_since(requested_at))

    def handoff_outcome(self, outcome: str) -> None:
        self._handoff_outcomes.labels(_bounded(outcome, HANDOFF_OUTCOMES)).inc()

    def safety(self, kind: str) -> None:
        self._safety.labels(_bounded(kind, SAFETY_KINDS)).inc()

    def error(self, component: str, error: BaseException) -> None:
        """A failure a component logged (``component``: a name written in the code)."""
        self._errors.labels(component, _error_kind(error)).inc()

    # -- exposition -----------------------------------------------------------------------

    async def read_queues(self, redis: Redis) -> None:
        """Set the queue gauges from Redis (at scrape time); a failure leaves them as they were."""
        for name, (stream, group) in QUEUES.items():
            try:
                length = int(await redis.xlen(stream))
                groups = await redis.xinfo_groups(stream) if length else []
            except RedisError as error:
                self.error("metrics", error)
                return
            info = next((g for g in groups if _text(g.get("name")) == group), None)
            pending = int(info.get("pending") or 0) if info else 0
            try:
                waiting = await _undelivered(redis, stream, info, length)
            except RedisError as error:
                self.error("metrics", error)
                return
            self._queue_length.labels(name).set(length)
            self._queue_pending.labels(name).set(pending)
            self._queue_depth.labels(name).set(pending + waiting)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def _undelivered(redis: Redis, stream: str, info: Optional[dict], length: int) -> int:
    """Entries not yet delivered to the group: Redis 7's ``lag``, else counted after the
    group's last delivered id (up to ``LAG_COUNT_LIMIT``)."""
    if info is None:
        return length
    lag = info.get("lag")
    if lag is not None:
        return int(lag)
    last = _text(info.get("last-delivered-id") or "0-0")
    return len(await redis.xrange(stream, min=f"({last}", count=LAG_COUNT_LIMIT))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def authorized(request: Request, token: Optional[str]) -> bool:
    """True without a token; else only with ``Authorization: Bearer <token>``."""
    if not token:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def metrics_route(metrics: Metrics, redis: Optional[Redis], token: Optional[str]) -> Route:
    """``GET /metrics`` in Prometheus' text format (for the internal network; a bearer token if set)."""

    async def endpoint(request: Request) -> Response:
        if not authorized(request, token):
            return PlainTextResponse("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if redis is not None:
            await metrics.read_queues(redis)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return Route("/metrics", endpoint, methods=["GET"])


def metrics_app(metrics: Metrics, redis: Optional[Redis], token: Optional[str]) -> Starlette:
    """The small app a worker process serves: ``/metrics`` and ``/healthz``."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[metrics_route(metrics, redis, token), Route("/healthz", healthz)])
