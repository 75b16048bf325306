"""Soak and fault run: the production layout on loopback, many conversations, parts killed.

    .venv/bin/python bench/soak.py [--conversations 200] [--messages 10000] [--fail-rate 0.1]
                                   [--rate 12] [--quick] [--logs DIR]

Starts ``ProductionStack`` (tests/stack.py: a private Redis, 2 gateways, 2 routers, 2 senders,
2 Rasa servers, the action server, the NLG endpoint, a housekeeping worker, each its own OS
process, on a fresh PostgreSQL database) and a fake Twilio API (tests/fake_twilio.py) that
answers ``--fail-rate`` of the sends with 500 or 429. Then ``--conversations`` people send
``--messages`` messages in all through the signed Twilio webhook (the fallback to the other
gateway and the signing of tests/test_scale_out.py; one message in ten delivered twice, half of
those twice at once). A person sends her next message at her planned time (together the people
send ``--rate`` messages a second) but not before her previous answer came or ``--max-wait``
seconds passed. On a schedule spread over the run a router, a sender, a Rasa server, Redis
itself (it comes back empty: the sweepers must make good what it held), a gateway, and then the
other router, sender and Rasa server are killed (SIGKILL) and started again.

At the end (once settled, or after ``--settle-timeout``) it counts from the database and the
fake Twilio: messages acknowledged vs stored, answered, lost, doubled, answers out of order, the
reply delay (webhook acknowledgement -> the reply at the fake Twilio: p50/p95/p99/max, and the
worst ones against the kills), retries due to 500/429, the memory of each part; it writes
bench/results/soak.md and soak.json. ``--quick``: 20 conversations, 300 messages, the same
faults, written to a temporary directory unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import httpx
from sqlalchemy import create_engine, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sms_load import CLOCK_TICKS, cpu_seconds, machine, percentile, write_results  # noqa: E402
from bot.handoff.signals import Signals  # noqa: E402
from bot.models import Message  # noqa: E402
from bot.safety import Safety  # noqa: E402
from bot.settings import SUPPORTED_LANGUAGES  # noqa: E402
from bot.store import IN, OUT, QUEUED, RECEIVED, SENDING  # noqa: E402
from tests.fake_twilio import FakeTwilio  # noqa: E402
from tests.stack import TWILIO_ACCOUNT, TWILIO_NUMBER, ProductionStack, fresh_postgres  # noqa: E402
from tests.test_scale_out import TEXTS, deliver, message_sid, phone  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# More of what people write, in the other languages of the model (from its training topics:
# health, testing, papers, shelter, thanks); checked against the safety and hand-off lists at start.
MORE_TEXTS = [
    "bonjour",
    "je voudrais faire un depistage",
    "thank you",
    "i need a place to sleep",
    "شكرا جزيلا",
    "ما عنديش الوراق",
    "我生病了",
    "艾滋病检测",
    "мені потрібен лікар",
    "як подзвонити на 115",
    "тест за хив",
    "нямам документи",
]
# (share of the planned sending time, part, seconds it stays down); "redis" is Redis itself
KILLS: List[Tuple[float, str, float]] = [
    (0.08, "router-1", 15),
    (0.18, "sender-1", 15),
    (0.28, "rasa-1", 20),
    (0.40, "redis", 5),
    (0.52, "gateway-1", 10),
    (0.62, "router-2", 15),
    (0.72, "sender-2", 15),
    (0.82, "rasa-2", 20),
]
# the test's settings: the router's sweeper looks for what a lost notification or a dead worker
# left after 10 s (30 s in production), a reply left "sending" is checked against Twilio's log
# after 30 s (120 s)
STACK_ENV = {"OUTREACH_SWEEP_AFTER": "10", "OUTREACH_SENDING_TIMEOUT": "30"}
_LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")
_LOG_LINE = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?:ERROR|CRITICAL) (?P<message>.*)$")


class CountingTwilio(FakeTwilio):
    """The fake Twilio, recording when it answered a send with an error (500, 429)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: List[Tuple[float, int]] = []

    async def _messages(self, request: Request) -> JSONResponse:
        response = await super()._messages(request)
        if response.status_code >= 400:
            self.failures.append((time.time(), response.status_code))
        return response


@dataclass
class Delivery:
    """One message of one person: when it was first posted, when a gateway acknowledged it."""

    person: int
    index: int
    sid: str
    posted: float
    acked: Optional[float] = None
    duplicate: str = ""  # "", "after" or "concurrent"


@dataclass
class Fault:
    part: str
    planned_s: float
    killed_s: float = float("nan")
    restarted_s: float = float("nan")
    ready_s: float = float("nan")
    error: str = ""


@dataclass
class Run:
    stack: ProductionStack
    twilio: CountingTwilio
    args: argparse.Namespace
    texts: Dict[int, List[str]]
    all_texts: List[str]
    began: float = 0.0
    deliveries: Dict[str, Delivery] = field(default_factory=dict)
    faults: List[Fault] = field(default_factory=list)
    replies_to: Counter[str] = field(default_factory=Counter)
    replied: Dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    webhook_posts: int = 0
    webhook_answers: Counter[int] = field(default_factory=Counter)
    memory_peak: Dict[str, float] = field(default_factory=dict)
    cpu_samples: List[Dict[str, float]] = field(default_factory=list)
    sending_ended: float = 0.0

    def at(self, moment: float) -> float:
        """Seconds since the first message."""
        return moment - self.began


# -- the texts ------------------------------------------------------------------------------


def checked_texts() -> List[str]:
    """Every text, checked: none may trip the safety layer (danger, minor, erasure), ask for a
    person or cancel (each of those has its own answers, counted elsewhere)."""
    safety, signals = Safety(SUPPORTED_LANGUAGES), Signals(SUPPORTED_LANGUAGES)
    texts = list(dict.fromkeys([*TEXTS, *MORE_TEXTS]))
    caught = [t for t in texts if safety.check(t) or signals.asks_for_human(t) or signals.cancels(t)]
    if caught:
        raise SystemExit(f"texts caught by the safety or hand-off lists: {caught}")
    return texts


def person_texts(conversations: int, texts: Sequence[str]) -> Dict[int, List[str]]:
    """Each person has four texts of her own (mixed languages, as in the scale-out test); she
    writes one of them four times in five, else any text."""
    rng = random.Random(11)
    return {n: [texts[(n + k) % len(texts)] for k in range(3)] + [rng.choice(texts)] for n in range(conversations)}


# -- the people -------------------------------------------------------------------------------


async def deliver_until(
    run: Run, client: httpx.AsyncClient, params: Dict[str, str], first: int, record: Delivery
) -> bool:
    """Twilio's webhook with its fallback URL (tests/test_scale_out.py), tried again for a
    bounded time (a provider retries an unanswered webhook); the first 200 is the ack."""
    gateways = run.stack.gateway_urls()
    deadline = time.monotonic() + run.args.deliver_for
    while True:
        try:
            await deliver(client, gateways, params, first)
            if record.acked is None:
                record.acked = time.time()
            return True
        except AssertionError:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(1.0)


async def person(run: Run, client: httpx.AsyncClient, n: int, count: int, period: float) -> None:
    rng = random.Random(1000 + n)
    own = run.texts[n]
    start = run.began + period * n / run.args.conversations
    to = phone(n)
    before = 0  # replies she had received when she sent her previous message
    for index in range(count):
        if index:  # her previous answer first (or a bounded wait), then her planned time
            if run.replies_to[to] <= before:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(run.replied[to].wait(), run.args.max_wait)
            planned = start + period * (index + rng.uniform(-0.3, 0.3))
            await asyncio.sleep(max(0.0, planned - time.time()))
        sid = message_sid(n, index)
        text = own[index % len(own)] if rng.random() < 0.8 else rng.choice(run.all_texts)
        params = {
            "MessageSid": sid,
            "AccountSid": TWILIO_ACCOUNT,
            "From": to,
            "To": TWILIO_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        record = Delivery(n, index, sid, time.time())
        run.deliveries[sid] = record
        before = run.replies_to[to]
        run.replied[to].clear()
        first = n + index
        if index % 10 == 9 and n % 2:  # Twilio delivers some twice at once, to both gateways
            record.duplicate = "concurrent"
            await asyncio.gather(
                deliver_until(run, client, params, first, record),
                deliver_until(run, client, params, first + 1, record),
            )
        elif await deliver_until(run, client, params, first, record) and index % 10 == 9:
            record.duplicate = "after"  # and some again, later, to the other gateway
            await deliver_until(run, client, params, first + 1, record)


async def watch_replies(run: Run) -> None:
    """Counts the replies each person has received (for her pacing)."""
    seen = 0
    while True:
        created = run.twilio.created
        for message in created[seen:]:
            run.replies_to[str(message["to"])] += 1
            run.replied[str(message["to"])].set()
        seen = len(created)
        await asyncio.sleep(0.1)


# -- the faults -------------------------------------------------------------------------------


async def fault(run: Run, item: Fault, down_s: float) -> None:
    await asyncio.sleep(max(0.0, run.began + item.planned_s - time.time()))
    stack = run.stack
    try:
        item.killed_s = run.at(time.time())
        if item.part == "redis":
            await asyncio.to_thread(stack.kill_redis)
        else:
            await asyncio.to_thread(stack.kill, item.part)
        print(f"{item.killed_s:7.1f} s  killed {item.part}", flush=True)
        await asyncio.sleep(down_s)
        item.restarted_s = run.at(time.time())
        if item.part == "redis":
            await asyncio.to_thread(stack.restart_redis)
        else:
            await asyncio.to_thread(stack.restart, item.part)
        item.ready_s = run.at(time.time())
        print(f"{item.ready_s:7.1f} s  {item.part} back (ready)", flush=True)
    except Exception as error:  # reported, never hidden
        item.error = f"{type(error).__name__}: {error}"
        print(f"fault on {item.part} failed: {item.error}", flush=True)


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (every process, other people's too)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


def stack_cpu_s(stack: ProductionStack) -> Dict[int, float]:
    """CPU seconds of the main process of each part and of Redis, by pid."""
    pids = [p.process.pid for p in stack.parts.values() if p.alive() and p.process is not None]
    if stack.redis is not None and stack.redis.process is not None:
        pids.append(stack.redis.process.pid)
    return {pid: cpu_seconds(pid) for pid in pids}


async def sample_parts(run: Run) -> None:
    """Every 10 s: the memory of each part, and where the machine's CPU went (this stack, this
    script with the fake Twilio, anything else running on the machine)."""
    previous = (time.time(), busy_s(), stack_cpu_s(run.stack), cpu_seconds(os.getpid()))
    while True:
        await asyncio.sleep(10)
        sizes = await asyncio.to_thread(run.stack.resident_mb)
        for name, mb in sizes.items():
            run.memory_peak[name] = max(mb, run.memory_peak.get(name, 0.0))
        now = (time.time(), busy_s(), stack_cpu_s(run.stack), cpu_seconds(os.getpid()))
        capacity = (now[0] - previous[0]) * (os.cpu_count() or 1)
        machine_busy = now[1] - previous[1]
        stack = sum(max(0.0, cpu - previous[2].get(pid, 0.0)) for pid, cpu in now[2].items())
        client = now[3] - previous[3]
        run.cpu_samples.append(
            {
                "at_s": round(run.at(now[0]), 1),
                "machine_busy": round(machine_busy / capacity, 3),
                "stack": round(stack / capacity, 3),
                "bench_client": round(client / capacity, 3),
                "others": round(max(0.0, machine_busy - stack - client) / capacity, 3),
            }
        )
        previous = now


# -- settling and counting --------------------------------------------------------------------


def unsettled(database_url: str) -> Dict[str, int]:
    engine = create_engine(database_url, future=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Message.direction, Message.status, func.count()).group_by(Message.direction, Message.status)
            ).all()
    finally:
        engine.dispose()
    counts = {f"{d}:{s}": int(c) for d, s, c in rows}
    return {
        "stored": sum(c for k, c in counts.items() if k.startswith(f"{IN}:")),
        "unanswered": counts.get(f"{IN}:{RECEIVED}", 0),
        "replies_pending": counts.get(f"{OUT}:{QUEUED}", 0) + counts.get(f"{OUT}:{SENDING}", 0),
    }


async def settle(run: Run, acked: int) -> Tuple[bool, float, Dict[str, int]]:
    """Waits (bounded) until every acknowledged message is stored and answered, and no reply
    waits; returns whether it settled, the seconds it took and the last state."""
    started = time.monotonic()
    while True:
        state = await asyncio.to_thread(unsettled, run.stack.database_url)
        done = state["stored"] >= acked and state["unanswered"] == 0 and state["replies_pending"] == 0
        if done or time.monotonic() - started > run.args.settle_timeout:
            return done, time.monotonic() - started, state
        await asyncio.sleep(1.0)


def rows(database_url: str) -> Tuple[List[Any], List[Any]]:
    engine = create_engine(database_url, future=True)
    try:
        with engine.connect() as connection:
            inbound = connection.execute(
                select(Message.id, Message.provider_id, Message.status, Message.kind).where(Message.direction == IN)
            ).all()
            outbound = connection.execute(
                select(
                    Message.id,
                    Message.reply_to,
                    Message.seq,
                    Message.status,
                    Message.provider_ref,
                    Message.attempts,
                    Message.error_code,
                ).where(Message.direction == OUT)
            ).all()
    finally:
        engine.dispose()
    return list(inbound), list(outbound)


def distribution(values: List[float]) -> Dict[str, float]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def nearest_fault(run: Run, moment_s: float) -> str:
    """The last fault that began before ``moment_s`` (seconds since the first message)."""
    before = [f for f in run.faults if f.killed_s <= moment_s]
    if not before:
        return "none before"
    last = max(before, key=lambda f: f.killed_s)
    return f"{last.part} killed {moment_s - last.killed_s:.1f} s before"


def faults_during(run: Run, start_s: float, end_s: float) -> str:
    """The faults whose time down (kill to ready) overlaps ``start_s - 20`` .. ``end_s``: a
    message may also wait for what an earlier one of hers met."""
    found = [
        f"{f.part} ({f.killed_s:.0f}-{f.ready_s:.0f} s)"
        for f in run.faults
        if f.killed_s <= end_s and (f.ready_s != f.ready_s or f.ready_s >= start_s - 20)  # NaN: never back
    ]
    return ", ".join(found) or "none"


def log_findings(run: Run) -> Dict[str, Dict[str, int]]:
    """What the parts' logs say (counts of lines, never their content)."""
    patterns = {
        "problems": _LOG_PROBLEM,
        "send_retry": re.compile(r"failed \(.*\), retry in"),
        "dead_letter": re.compile(r"dead letter"),
        "found_sent": re.compile(r"earlier attempt had gone through"),
        "router_not_notified": re.compile(r"router not notified"),
        "redis_errors": re.compile(r"cannot read the (inbox|outbox) stream|Redis|ConnectionError"),
        "rasa_unavailable": re.compile(r"Rasa (is )?unavailable|RasaUnavailable"),
    }
    found: Dict[str, Dict[str, int]] = {}
    for name, part in sorted(run.stack.parts.items()):
        if not part.log_path.exists():
            continue
        text = part.log_path.read_text(errors="replace")
        counts = {key: len(pattern.findall(text)) for key, pattern in patterns.items()}
        found[name] = {k: v for k, v in counts.items() if v}
    return found


def log_errors(run: Run) -> List[Dict[str, Any]]:
    """Each kind of ERROR/CRITICAL line of each part (numbers masked), how many, first and last
    time, and the last fault before its first occurrence."""
    kinds: Dict[Tuple[str, str], List[float]] = defaultdict(list)
    for name, part in sorted(run.stack.parts.items()):
        if not part.log_path.exists():
            continue
        for line in part.log_path.read_text(errors="replace").splitlines():
            match = _LOG_LINE.match(line)
            if match is None:
                continue
            moment = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc)
            kinds[(name, re.sub(r"\d+", "N", match["message"])[:120])].append(run.at(moment.timestamp()))
    return [
        {
            "part": name,
            "message": message,
            "count": len(times),
            "first_s": round(min(times), 1),
            "last_s": round(max(times), 1),
            "after": nearest_fault(run, min(times)),
        }
        for (name, message), times in sorted(kinds.items(), key=lambda item: min(item[1]))
    ]


def count(run: Run, settled: bool, settle_s: float, state: Dict[str, int]) -> Dict[str, Any]:
    inbound, outbound = rows(run.stack.database_url)
    created = list(run.twilio.created)
    created_at = {m["sid"]: m["date_created"].timestamp() for m in created}
    sid_of = {row.id: row.provider_id for row in inbound}
    acked = {sid for sid, d in run.deliveries.items() if d.acked is not None}
    posted = set(run.deliveries)
    stored = Counter(row.provider_id for row in inbound)
    stored_twice = sorted(sid for sid, c in stored.items() if c > 1)
    not_stored = sorted(acked - set(stored))
    replies: Dict[str, List[float]] = defaultdict(list)  # provider id -> times its replies reached Twilio
    attempts: Dict[str, int] = {}  # provider id -> sends it took its first reply (the fake's 500/429)
    for row in outbound:
        if row.provider_ref in created_at and row.reply_to in sid_of:
            replies[sid_of[row.reply_to]].append(created_at[row.provider_ref])
            if row.seq in (0, None):
                attempts[sid_of[row.reply_to]] = int(row.attempts or 0)
    unanswered = sorted(sid for sid in acked & set(stored) if not replies.get(sid))
    # doubled: a send Twilio accepted that no outbox row accounts for, or two rows with one SID
    references = Counter(row.provider_ref for row in outbound if row.provider_ref)
    orphans = sorted(m["sid"] for m in created if m["sid"] not in references)
    shared_refs = sorted(ref for ref, c in references.items() if c > 1)
    sids_twice = sorted(sid for sid, c in Counter(m["sid"] for m in created).items() if c > 1)
    # order: each person's answers reached Twilio in the order of her messages
    position = {row.provider_ref: sid_of.get(row.reply_to) for row in outbound if row.provider_ref}
    sequences: Dict[str, List[str]] = defaultdict(list)
    for message in created:
        if position.get(message["sid"]):
            sequences[str(message["to"])].append(str(position[message["sid"]]))
    out_of_order = sorted(to[-4:] for to, sids in sequences.items() if sids != sorted(sids))
    # reply delay: webhook acknowledgement -> the first reply at the fake Twilio
    delays: List[Tuple[float, str]] = []
    for sid in acked:
        if replies.get(sid):
            acked_at = run.deliveries[sid].acked
            assert acked_at is not None
            delays.append((min(replies[sid]) - acked_at, sid))
    delays.sort(reverse=True)
    worst = []
    for delay, sid in delays[:10]:
        record = run.deliveries[sid]
        acked_s = run.at(record.acked or 0.0)
        previous = message_sid(record.person, record.index - 1) if record.index else ""
        behind = bool(replies.get(previous)) and min(replies[previous]) > (record.acked or 0.0)
        worst.append(
            {
                "message": sid,
                "delay_s": round(delay, 3),
                "acked_at_s": round(acked_s, 1),
                "reply_sends": attempts.get(sid),
                "behind_previous": behind,  # her previous answer went out after this was acknowledged
                "faults_during": faults_during(run, acked_s, acked_s + delay),
                "after": nearest_fault(run, acked_s),
            }
        )
    timeline: List[Dict[str, Any]] = []
    buckets: Dict[int, List[float]] = defaultdict(list)
    for delay, sid in delays:
        buckets[int(run.at(run.deliveries[sid].acked or 0.0) // 30)].append(delay)
    for bucket in sorted(buckets):
        values = buckets[bucket]
        timeline.append(
            {"from_s": bucket * 30, "messages": len(values), "p50_s": percentile(values, 50), "max_s": max(values)}
        )
    # Redis restarted empty: the messages acknowledged from a sweep period before its kill to
    # its return had their notifications (or stream entries) lost; the sweepers must answer them
    redis_check: Dict[str, Any] = {}
    for item in run.faults:
        if item.part == "redis":
            window = (item.killed_s - 15.0, item.ready_s)
            inside = [sid for sid in acked if window[0] <= run.at(run.deliveries[sid].acked or 0.0) <= window[1] + 1.0]
            late = [d for d, sid in delays if sid in set(inside)]
            redis_check = {
                "window_s": [round(window[0], 1), round(window[1], 1)],
                "messages_acked_in_window": len(inside),
                "answered": sum(1 for sid in inside if replies.get(sid)),
                "delay": distribution(late),
            }
    statuses_out = Counter(row.status for row in outbound)
    failures = Counter(status for _at, status in run.twilio.failures)
    return {
        "settled": settled,
        "settle_s": round(settle_s, 1),
        "state_at_end": state,
        "posted": len(posted),
        "acked": len(acked),
        "not_acked": sorted(posted - acked),
        "stored": len(stored),
        "stored_twice": stored_twice,
        "lost_not_stored": not_stored,
        "lost_unanswered": unanswered,
        "lost": len(not_stored) + len(unanswered),
        "answered": sum(1 for sid in acked if replies.get(sid)),
        "inbound_kinds": dict(Counter(row.kind for row in inbound)),
        "outbox_rows": len(outbound),
        "outbox_statuses": dict(statuses_out),
        "twilio_created": len(created),
        "doubled_orphan_sends": orphans,
        "doubled_shared_refs": shared_refs,
        "doubled_same_sid": sids_twice,
        "doubled": len(orphans) + len(shared_refs) + len(sids_twice) + len(stored_twice),
        "out_of_order_conversations": out_of_order,
        "conversations_answered": len(sequences),
        "delay_s": distribution([d for d, _sid in delays]),
        "worst": worst,
        "delay_timeline": timeline,
        "redis_restart": redis_check,
        "provider_errors": {str(k): v for k, v in sorted(failures.items())},
        "send_attempts": len(run.twilio.requests),
        "retried_rows": sum(1 for row in outbound if (row.attempts or 0) > 1),
        "log_lookups": len(run.twilio.lookups),
        "dead_rows": statuses_out.get("dead", 0),
        "duplicates_posted": dict(Counter(d.duplicate for d in run.deliveries.values() if d.duplicate)),
        "webhook_posts": run.webhook_posts,
        "webhook_answers": {str(k): v for k, v in sorted(run.webhook_answers.items())},
    }


# -- the run ----------------------------------------------------------------------------------


async def drive(run: Run) -> None:
    args = run.args
    period = args.conversations / args.rate  # each person's time between messages
    per_person = [
        args.messages // args.conversations + (1 if n < args.messages % args.conversations else 0)
        for n in range(args.conversations)
    ]
    planned = period * max(per_person)

    async def posted(_request: httpx.Request) -> None:
        run.webhook_posts += 1

    async def answered(response: httpx.Response) -> None:
        run.webhook_answers[response.status_code] += 1

    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    hooks = {"request": [posted], "response": [answered]}
    async with httpx.AsyncClient(timeout=10, limits=limits, event_hooks=hooks) as client:  # type: ignore[arg-type]
        run.began = time.time()
        run.faults = [Fault(part, share * planned) for share, part, _down in KILLS]
        helpers = [asyncio.create_task(watch_replies(run)), asyncio.create_task(sample_parts(run))]
        faults = [
            asyncio.create_task(fault(run, item, down)) for item, (_s, _p, down) in zip(run.faults, KILLS, strict=True)
        ]
        progress = asyncio.create_task(report_progress(run))
        try:
            await asyncio.gather(*(person(run, client, n, per_person[n], period) for n in range(args.conversations)))
            run.sending_ended = run.at(time.time())
            print(f"{run.sending_ended:7.1f} s  every message posted", flush=True)
            await asyncio.gather(*faults)
        finally:
            for task in [*helpers, progress]:
                task.cancel()
            for task in [*helpers, progress, *faults]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def report_progress(run: Run) -> None:
    while True:
        await asyncio.sleep(30)
        acked = sum(1 for d in run.deliveries.values() if d.acked is not None)
        print(
            f"{run.at(time.time()):7.1f} s  acked {acked}, replies at Twilio {len(run.twilio.created)}, "
            f"provider errors {len(run.twilio.failures)}",
            flush=True,
        )


def machine_info() -> Dict[str, object]:
    info: Dict[str, object] = dict(machine())
    with contextlib.suppress(OSError, ValueError, IndexError):
        info["memory_gb"] = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    return info


async def soak(args: argparse.Namespace, run_dir: Path) -> Dict[str, Any]:
    texts = checked_texts()
    load_before = os.getloadavg()
    twilio = CountingTwilio().start()
    twilio.fail_rate = args.fail_rate
    try:
        with fresh_postgres() as database_url:
            stack = ProductionStack(run_dir, database_url, twilio.url, extra_env=STACK_ENV)
            run = Run(stack, twilio, args, person_texts(args.conversations, texts), texts)
            try:
                ready_s = await asyncio.to_thread(stack.start)
                print(f"stack ready in {ready_s:.1f} s; logs in {run_dir}", flush=True)
                await drive(run)
                acked = sum(1 for d in run.deliveries.values() if d.acked is not None)
                settled, settle_s, state = await settle(run, acked)
                await asyncio.sleep(3)  # nothing more may go out
                print(f"settled: {settled} after {settle_s:.1f} s ({state})", flush=True)
                figures = count(run, settled, settle_s, state)
                memory_end = await asyncio.to_thread(stack.resident_mb)
                logs = log_findings(run)
                errors = log_errors(run)
            finally:
                await asyncio.to_thread(stack.stop)
    finally:
        twilio.stop()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "parameters": {
            "conversations": args.conversations,
            "messages": args.messages,
            "rate_per_s": args.rate,
            "fail_rate": args.fail_rate,
            "max_wait_s": args.max_wait,
            "settle_timeout_s": args.settle_timeout,
            "quick": args.quick,
            "parts": {"gateways": 2, "routers": 2, "senders": 2, "rasa_servers": 2},
            "stack_env": STACK_ENV,
            "texts": texts,
        },
        "ready_s": round(ready_s, 1),
        "sending_s": round(run.sending_ended, 1),
        "faults": [vars(f) for f in run.faults],
        "figures": figures,
        "memory_mb": {
            "end": {k: round(v, 1) for k, v in sorted(memory_end.items())},
            "peak_sampled": {k: round(v, 1) for k, v in sorted(run.memory_peak.items())},
        },
        "cpu_timeline": run.cpu_samples,
        "logs": logs,
        "log_errors": errors,
        "run_dir": str(run_dir),
    }


# -- the report -------------------------------------------------------------------------------


def targets(result: Dict[str, Any]) -> List[Tuple[str, bool, str]]:
    f = result["figures"]
    return [
        ("every message acknowledged by a gateway", not f["not_acked"], f"{f['acked']} of {f['posted']}"),
        (
            "lost = 0",
            f["lost"] == 0,
            f"{f['lost']} (not stored {len(f['lost_not_stored'])}, unanswered {len(f['lost_unanswered'])})",
        ),
        ("doubled = 0", f["doubled"] == 0, f"{f['doubled']}"),
        (
            "answers in order",
            not f["out_of_order_conversations"],
            f"{len(f['out_of_order_conversations'])} conversations out of order",
        ),
        (
            "settled within the bound",
            f["settled"],
            f"{f['settle_s']} s (bound {result['parameters']['settle_timeout_s']} s)",
        ),
        ("every fault carried out", all(not x["error"] for x in result["faults"]), "see the schedule"),
    ]


def fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(result: Dict[str, Any]) -> str:
    f = result["figures"]
    p = result["parameters"]
    d = f["delay_s"]
    lines = [
        "# Soak and fault run",
        "",
        f"{result['date']}; {result['machine']}; load average before {result['load_average_before']}, "
        f"after {result['load_average_after']}; stack ready in {result['ready_s']} s.",
        "",
        f"{p['conversations']} conversations, {p['messages']} messages at {p['rate_per_s']} messages/s planned "
        f"(each person waits for her previous answer, at most {p['max_wait_s']} s); 2 gateways, 2 routers, "
        f"2 senders, 2 Rasa servers on PostgreSQL; fake Twilio answering {p['fail_rate']:.0%} of the sends with "
        f"500 or 429; settings {p['stack_env']}. Sending took {result['sending_s']} s, settling {f['settle_s']} s.",
        "",
        "## Targets",
        "",
        "| target | | measured |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {'**met**' if ok else '**missed**'} | {value} |" for name, ok, value in targets(result)]
    lines += [
        "",
        "## Faults (seconds since the first message)",
        "",
        "| part | planned | killed | restarted | ready | error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {x['part']} | {x['planned_s']:.1f} | {x['killed_s']:.1f} | {x['restarted_s']:.1f} | {x['ready_s']:.1f} "
        f"| {x['error']} |"
        for x in result["faults"]
    ]
    lines += [
        "",
        "## Counts",
        "",
        f"* posted {f['posted']}, acknowledged (200) {f['acked']}, stored {f['stored']} (stored twice: "
        f"{len(f['stored_twice'])}), answered {f['answered']}; duplicate deliveries {f['duplicates_posted']}; "
        f"webhook posts {f['webhook_posts']}, answers by status {f['webhook_answers']}",
        f"* lost: {f['lost']} (acknowledged but not stored: {f['lost_not_stored'][:10]}; stored but unanswered: "
        f"{f['lost_unanswered'][:10]})",
        f"* doubled: {f['doubled']} (Twilio sends without an outbox row: {len(f['doubled_orphan_sends'])}; outbox "
        f"rows sharing a SID: {len(f['doubled_shared_refs'])}); outbox rows {f['outbox_rows']} "
        f"{f['outbox_statuses']}, Twilio created {f['twilio_created']}",
        f"* out of order: {len(f['out_of_order_conversations'])} of {f['conversations_answered']} conversations",
        f"* provider errors answered by the fake Twilio: {f['provider_errors']} of {f['send_attempts']} send "
        f"requests; outbox rows sent after a retry: {f['retried_rows']}; look-ups in Twilio's log before a "
        f"re-send: {f['log_lookups']}; dead letters: {f['dead_rows']}",
        "",
        "## Reply delay (webhook acknowledgement -> first reply at the fake Twilio)",
        "",
        f"p50 {fmt(d.get('p50'))} s, p95 {fmt(d.get('p95'))} s, p99 {fmt(d.get('p99'))} s, "
        f"**max {fmt(d.get('max'))} s** over {d.get('count')} messages.",
        "",
        "*sends*: requests to Twilio its reply took (each failed one was a 500/429, then the sender's backoff: "
        "2, 4, 8, 16, 32 s ±20 %); *behind*: her previous answer left after this message was acknowledged (a "
        "conversation's replies go out in order); *faults*: parts down from 20 s before the acknowledgement to "
        "the reply.",
        "",
        "| message | delay s | acknowledged at s | sends | behind | faults | last fault before |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {w['message'][:10]} | {w['delay_s']} | {w['acked_at_s']} | {w.get('reply_sends')} "
        f"| {'yes' if w.get('behind_previous') else 'no'} | {w.get('faults_during')} | {w['after']} |"
        for w in f["worst"]
    ]
    lines += ["", "Per 30 s of acknowledgements: messages, p50, max (s)", "", "| from s | n | p50 | max |"]
    lines += ["| --- | --- | --- | --- |"]
    lines += [f"| {t['from_s']} | {t['messages']} | {t['p50_s']:.2f} | {t['max_s']:.2f} |" for t in f["delay_timeline"]]
    lines += [
        "",
        "Where the 2 cores went, per 60 s (share of the machine: this stack's processes, this script with the "
        "fake Twilio, every other process on the machine):",
        "",
        "| from s | machine busy | stack | bench client | others |",
        "| --- | --- | --- | --- | --- |",
    ]
    minutes: Dict[int, List[Dict[str, float]]] = defaultdict(list)
    for sample in result["cpu_timeline"]:
        minutes[int(sample["at_s"] // 60)].append(sample)
    for minute, samples in sorted(minutes.items()):
        mean = {
            k: sum(x[k] for x in samples) / len(samples) for k in ("machine_busy", "stack", "bench_client", "others")
        }
        lines.append(
            f"| {minute * 60} | {mean['machine_busy']:.0%} | {mean['stack']:.0%} | {mean['bench_client']:.0%} "
            f"| {mean['others']:.0%} |"
        )
    r = f["redis_restart"]
    if r:
        lines += [
            "",
            "## Redis killed and restarted empty",
            "",
            f"Messages acknowledged from 15 s before the kill to Redis' return ({r['window_s']} s): "
            f"{r['messages_acked_in_window']}, answered {r['answered']}; their delay "
            f"{ {k: round(v, 2) if isinstance(v, float) else v for k, v in r['delay'].items()} }.",
        ]
    mem = result["memory_mb"]
    lines += ["", "## Memory (MB resident, whole process group)", "", "| part | at the end | peak (sampled /10 s) |"]
    lines += ["| --- | --- | --- |"]
    lines += [
        f"| {k} | {mem['end'].get(k, float('nan')):.0f} | {v:.0f} |" for k, v in sorted(mem["peak_sampled"].items())
    ]
    lines += [
        f"| total | {sum(mem['end'].values()):.0f} | {sum(mem['peak_sampled'].values()):.0f} |",
        "",
        "## What the parts' logs say (line counts)",
        "",
        "```",
        *(f"{k}: {v}" for k, v in result["logs"].items()),
        "```",
        "",
        "ERROR lines (numbers masked), with the last fault before the first of each kind:",
        "",
        "| part | message | count | first s | last s | last fault before |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {e['part']} | {e['message']} | {e['count']} | {e['first_s']} | {e['last_s']} | {e['after']} |"
            for e in result["log_errors"]
        ),
        "",
        f"Logs of the run: `{result['run_dir']}`.",
        "",
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=200)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--fail-rate", type=float, default=0.1, help="share of sends the fake Twilio fails (500/429)")
    p.add_argument("--rate", type=float, default=12.0, help="planned messages per second, all people together")
    p.add_argument("--max-wait", type=float, default=20.0, help="longest wait for her previous answer (s)")
    p.add_argument("--deliver-for", type=float, default=60.0, help="how long one message is retried (s)")
    p.add_argument("--settle-timeout", type=float, default=600.0)
    p.add_argument("--quick", action="store_true", help="20 conversations, 300 messages, the same faults")
    p.add_argument("--logs", type=Path, help="directory for the parts' logs (default: a new temporary one)")
    p.add_argument("--out", type=Path, help="results path without suffix (default bench/results/soak)")
    return p


def main() -> int:
    args = parser().parse_args()
    if args.quick:
        args.conversations, args.messages, args.rate, args.settle_timeout = 20, 300, 2.5, 240.0
    out = args.out or (Path(tempfile.mkdtemp(prefix="soak-quick-")) / "soak" if args.quick else RESULTS / "soak")
    run_dir = args.logs or Path(tempfile.mkdtemp(prefix="soak-run-"))
    result = asyncio.run(soak(args, run_dir))
    text = write_results(out, result, markdown(result))
    print(text)
    print(f"written: {out.with_suffix('.md')} and .json")
    met = all(ok for _name, ok, _value in targets(result))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
