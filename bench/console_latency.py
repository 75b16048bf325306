"""Time from a person's SMS at the webhook to its appearance in a connected staff console.

    .venv/bin/python bench/console_latency.py [--concurrency 1,8,32] [--messages 20] [--database-url URL]

Starts the whole assistant (``python -m bot run``: private Redis, Rasa, action server, workers,
gateway) with a Twilio number whose API is a local fake on loopback, as bench/sms_load.py does,
logs in to the console as the demo staff account of the association that takes requests from
département 75 (``exemple-paris``, or its fallback when it is closed and the fallback open), and
keeps one live-events stream (``GET /console/events``, server-sent events) open.

For each concurrency level N: N persons, each with her own number, ask for a human by SMS
("je veux parler a quelqu un", then "75"); the staff member claims each request. Then every
person sends M messages, one at a time with a random pause (0-200 ms) between them, through the
signed Twilio webhook. For each message it measures, from the start of the webhook POST:

* ack: the webhook's answer to Twilio;
* event: the arrival of the console event ``message`` for her handoff (matched by handoff id,
  in order);
* visible: the moment its text is readable in ``GET /console/api/handoffs/<id>``, fetched as
  the console refetches on the event (refetched until it is there).

It reports p50/p95/max per N, messages whose event never came (target 0) and the target
(p95 <= 250 ms from webhook to console) in bench/results/console_latency.md and .json. The
database is a fresh PostgreSQL database when the local server answers (as in production), else
SQLite. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sms_load import (  # noqa: E402
    ACCOUNT,
    AUTH_TOKEN,
    NUMBER,
    FakeTwilioApi,
    Running,
    Stack,
    component_memory,
    cpu_seconds,
    machine,
    percentile,
    process_tree,
    running_stack,
    write_results,
)
from bot.console.accounts import current_code  # noqa: E402
from bot.console.demo import ACCOUNTS_FILE, EXAMPLE_DIRECTORY  # noqa: E402
from bot.handoff.directory import load_directory  # noqa: E402
from bot.handoff.routing import route  # noqa: E402
from bot.models import utcnow  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_P95_MS = 250.0
ASK = "je veux parler a quelqu un"
DEPARTEMENT = "75"
# what she writes once a staff member holds her conversation (French, no language name, no
# word that asks for the language menu); each message is made unique by a suffix
TEXTS = [
    "merci, j'ai une question sur mon rendez-vous",
    "je suis a la gare du nord",
    "est-ce que je peux venir demain matin",
    "j'ai perdu mes papiers hier soir",
    "d'accord, je vous attends",
    "il faut apporter quoi comme documents",
    "je n'ai plus de credit sur mon telephone",
    "a quelle heure ferme la permanence",
]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class BenchError(RuntimeError):
    pass


class EventStream:
    """One console's live events (``GET /console/events``), with their arrival times."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.by_handoff: Dict[int, List[Tuple[float, str]]] = defaultdict(list)
        self.requests: List[Tuple[float, int]] = []
        self.counts: Dict[str, int] = defaultdict(int)
        self.keep_alives = 0
        self.unparsed: List[str] = []
        self.error: Optional[str] = None
        self.connected = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        timeout = httpx.Timeout(10.0, read=45.0)  # keep-alive comments come every 15 s
        try:
            async with self.client.stream("GET", "/console/events", timeout=timeout) as response:
                if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
                    "text/event-stream"
                ):
                    raise BenchError(f"/console/events answered {response.status_code}")
                self.connected.set()
                async for line in response.aiter_lines():
                    now = time.perf_counter()
                    if line.startswith(": keep-alive"):
                        self.keep_alives += 1
                        continue
                    if not line.startswith("data: "):
                        continue
                    try:
                        data = json.loads(line[len("data: ") :])
                        kind, handoff = str(data["type"]), int(data["handoff"])
                    except (ValueError, KeyError, TypeError):
                        self.unparsed.append(line[:200])
                        continue
                    self.counts[kind] += 1
                    async with self._changed:
                        self.by_handoff[handoff].append((now, kind))
                        if kind == "request":
                            self.requests.append((now, handoff))
                        self._changed.notify_all()
            self.error = "the event stream ended"
        except asyncio.CancelledError:
            raise
        except Exception as problem:  # recorded; every waiter times out
            self.error = f"{type(problem).__name__}: {problem}"
        finally:
            self.connected.set()
            async with self._changed:
                self._changed.notify_all()

    def count(self, handoff: int, kind: str) -> int:
        return sum(1 for _t, k in self.by_handoff.get(handoff, ()) if k == kind)

    async def first(
        self, handoff: int, kind: str, start: int, after: float, deadline: float
    ) -> Optional[Tuple[int, float]]:
        """(position among the handoff's events ``kind``, arrival time) of the first such event
        at position ``start`` or later that came after ``after``; None if none by ``deadline``."""

        def found() -> Optional[Tuple[int, float]]:
            times = [t for t, k in self.by_handoff.get(handoff, ()) if k == kind]
            return next(((i, t) for i, t in enumerate(times) if i >= start and t >= after), None)

        async with self._changed:
            while True:
                hit = found()
                if hit is not None:
                    return hit
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.error is not None:
                    return None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    async def request_after(self, index: int, deadline: float) -> Optional[int]:
        """The handoff id of the ``index``-th request event, waiting until ``deadline``."""
        async with self._changed:
            while len(self.requests) <= index:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.error is not None:
                    return None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            return self.requests[index][1]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)


def demo_accounts(data_dir: Path) -> Dict[str, Dict[str, str]]:
    accounts = {}
    for line in (data_dir / ACCOUNTS_FILE).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        username, *fields = line.split("\t")
        accounts[username] = dict(field.split("=", 1) for field in fields)
    return accounts


def association_for_75() -> Tuple[str, str]:
    """The association a French-speaking person in département 75 is routed to now, and why."""
    decision = route(load_directory(EXAMPLE_DIRECTORY), DEPARTEMENT, "fr", utcnow())
    if decision.association is None:
        raise BenchError(f"no association takes requests from {DEPARTEMENT}: {decision.reason}")
    return decision.association.slug, decision.reason


async def log_in(client: httpx.AsyncClient, username: str, password: str, totp: str) -> str:
    """Log in once (a two-factor code is good once per 30-second step); returns the API's CSRF token."""
    page = await client.get("/console/login")
    found = _CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise BenchError(f"login page: {page.status_code}")
    answer = await client.post(
        "/console/login",
        data={"csrf": found.group(1), "username": username, "password": password, "code": current_code(totp)},
    )
    if answer.status_code != 303 or "console_session" not in client.cookies:
        raise BenchError(f"login refused ({answer.status_code})")
    me = await client.get("/console/api/me")
    me.raise_for_status()
    return str(me.json()["csrf"])


class Persons:
    """People texting through the signed Twilio webhook."""

    def __init__(self, stack: Stack, fake: FakeTwilioApi, concurrency: int) -> None:
        from twilio.request_validator import RequestValidator

        self.validator = RequestValidator(AUTH_TOKEN)
        self.url = f"{stack.public}/webhooks/twilio"
        self.fake = fake
        limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
        self.client = httpx.AsyncClient(limits=limits, timeout=30)
        self.statuses: Dict[int, int] = defaultdict(int)
        self.transport_errors: List[str] = []

    async def send(self, number: str, text: str) -> Tuple[float, float]:
        """POST one SMS; returns (start, acknowledgement latency in s)."""
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": ACCOUNT,
            "From": number,
            "To": NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(self.url, params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.perf_counter()
        try:
            response = await self.client.post(self.url, content=urlencode(params), headers=headers)
        except httpx.TransportError as problem:
            # Twilio sends the same message again on a failed webhook; the MessageSid dedupes it
            self.transport_errors.append(f"{type(problem).__name__}: {problem}"[:200])
            response = await self.client.post(self.url, content=urlencode(params), headers=headers)
        acked = time.perf_counter() - started
        self.statuses[response.status_code] += 1
        if response.status_code != 200:
            raise BenchError(f"the webhook answered {response.status_code}")
        return started, acked

    async def reply(self, number: str, seen: int, timeout: float) -> bool:
        """Wait until ``number`` has received more than ``seen`` SMS from the assistant."""
        deadline = time.perf_counter() + timeout
        event = self.fake.events[number]
        while len(self.fake.received[number]) <= seen:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            event.clear()
            if len(self.fake.received[number]) > seen:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=remaining)
        return True

    async def close(self) -> None:
        await self.client.aclose()


async def open_claimed(
    persons: Persons, staff: httpx.AsyncClient, csrf: str, events: EventStream, number: str, timeout: float
) -> int:
    """She asks for a human and says her département; the staff member claims the request."""
    seen = len(persons.fake.received[number])
    await persons.send(number, ASK)
    if not await persons.reply(number, seen, timeout):
        raise BenchError(f"no answer to the request for a human ({number})")
    index = len(events.requests)
    await persons.send(number, DEPARTEMENT)
    handoff = await events.request_after(index, time.perf_counter() + timeout)
    if handoff is None:
        raise BenchError(f"no request event after the département ({number}); stream: {events.error}")
    claimed = await staff.post(f"/console/api/handoffs/{handoff}/claim", json={}, headers={"X-CSRF-Token": csrf})
    if claimed.status_code != 200:
        raise BenchError(f"claim of {handoff} answered {claimed.status_code}: {claimed.text[:200]}")
    if await events.first(handoff, "claimed", 0, 0.0, time.perf_counter() + timeout) is None:
        raise BenchError(f"no claimed event for {handoff}")
    return handoff


async def visible_at(
    staff: httpx.AsyncClient, handoff: int, text: str, deadline: float, errors: List[str]
) -> Tuple[Optional[float], int, List[float]]:
    """Fetch the conversation as the console does on an event, again until ``text`` is in its
    transcript; (moment it was, fetches made, duration of each fetch). A failed fetch is
    counted in ``errors`` and made again."""
    fetches: List[float] = []
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        try:
            response = await staff.get(f"/console/api/handoffs/{handoff}")
        except httpx.TransportError as problem:
            errors.append(f"{type(problem).__name__}: {problem}"[:200])
            await asyncio.sleep(0.01)
            continue
        now = time.perf_counter()
        fetches.append(now - began)
        if response.status_code == 200 and any(
            line.get("text") == text for line in response.json().get("transcript", [])
        ):
            return now, len(fetches), fetches
        if response.status_code != 200:
            errors.append(f"HTTP {response.status_code}: {response.text[:150]}")
        await asyncio.sleep(0.01)
    return None, len(fetches), fetches


async def run_level(
    level: int,
    messages: int,
    persons: Persons,
    staff: httpx.AsyncClient,
    csrf: str,
    events: EventStream,
    tag: str,
    args: argparse.Namespace,
    rng: random.Random,
) -> dict:
    numbers = [f"+3362{tag}{i:04d}" for i in range(level)]
    setup_started = time.perf_counter()
    handoffs = [await open_claimed(persons, staff, csrf, events, n, args.timeout) for n in numbers]
    setup_s = time.perf_counter() - setup_started
    await asyncio.sleep(1.0)  # the setup's own events (the département's "message") have come
    baseline = {h: events.count(h, "message") for h in handoffs}
    samples: List[dict] = []
    fetch_times: List[float] = []
    fetch_errors: List[str] = []
    webhook_errors = len(persons.transport_errors)
    pauses = {(p, k): rng.uniform(0, args.max_pause) for p in range(level) for k in range(messages)}

    async def person(p: int) -> None:
        number, handoff = numbers[p], handoffs[p]
        position = baseline[handoff]  # her next "message" event among the handoff's
        for k in range(messages):
            await asyncio.sleep(pauses[(p, k)])
            text = f"{TEXTS[(p + k) % len(TEXTS)]} ({tag}-{p}-{k})"
            started, ack = await persons.send(number, text)
            deadline = started + args.timeout
            hit = await events.first(handoff, "message", position, started, deadline)
            sample: Dict[str, object] = {"person": p, "handoff": handoff, "message": k, "ack_ms": ack * 1000}
            if hit is None:
                sample.update(event_ms=None, visible_ms=None, fetches=0)
                samples.append(sample)
                continue
            position, arrived = hit[0] + 1, hit[1]
            shown, count, durations = await visible_at(staff, handoff, text, deadline, fetch_errors)
            fetch_times.extend(durations)
            sample.update(
                event_ms=(arrived - started) * 1000,
                visible_ms=(shown - started) * 1000 if shown is not None else None,
                fetches=count,
            )
            samples.append(sample)

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(person(p) for p in range(level))), timeout=args.level_timeout)
    wall = time.perf_counter() - began
    await asyncio.sleep(2.0)  # late or doubled events would come now
    received = sum(events.count(h, "message") - baseline[h] for h in handoffs)
    # close them: the next level starts with an empty console
    for handoff in handoffs:
        await staff.post(
            f"/console/api/handoffs/{handoff}/close", json={"outcome": "answered"}, headers={"X-CSRF-Token": csrf}
        )
    events_ms = [s["event_ms"] for s in samples if s["event_ms"] is not None]
    visible_ms = [s["visible_ms"] for s in samples if s["visible_ms"] is not None]
    acks_ms = [s["ack_ms"] for s in samples]
    missing = sum(1 for s in samples if s["event_ms"] is None)
    return {
        "concurrency": level,
        "messages": len(samples),
        "setup_s": setup_s,
        "wall_s": wall,
        "messages_per_s": len(samples) / wall if wall else 0.0,
        "event": stats(events_ms),
        "visible": stats(visible_ms),
        "ack": stats(acks_ms),
        "fetch": stats([f * 1000 for f in fetch_times]),
        "refetches": sum(max(0, s["fetches"] - 1) for s in samples),
        "fetch_errors": fetch_errors,
        "webhook_transport_errors": persons.transport_errors[webhook_errors:],
        "events_missing": missing,
        "not_visible": sum(1 for s in samples if s["event_ms"] is not None and s["visible_ms"] is None),
        "message_events_received": received,
        "message_events_never": max(0, len(samples) - received),
        "message_events_extra": max(0, received - len(samples)),
        "samples": samples,
    }


def stats(values: List[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "max_ms": max(values) if values else float("nan"),
        "mean_ms": statistics.fmean(values) if values else float("nan"),
    }


async def measure(running: Running, args: argparse.Namespace, levels: List[int]) -> dict:
    """The console's latency at each level on a running assistant (``args``: this script's
    options, see :func:`parser`): rows, the event stream's and the webhook's counts."""
    rng = random.Random(args.seed)
    association, reason = association_for_75()
    rows: List[dict] = []
    persons: Optional[Persons] = None
    events: Optional[EventStream] = None
    staff: Optional[httpx.AsyncClient] = None
    stack = running.stack
    try:
        account = demo_accounts(stack.data_dir).get(association)
        if account is None:
            raise BenchError(f"no demo account for {association}")
        biggest = max(levels)
        limits = httpx.Limits(max_connections=biggest + 8, max_keepalive_connections=biggest + 8)
        staff = httpx.AsyncClient(base_url=stack.public, limits=limits, timeout=30)
        csrf = await log_in(staff, association, account["password"], account["totp"])
        events = EventStream(staff)
        events.start()
        await asyncio.wait_for(events.connected.wait(), timeout=10)
        if events.error:
            raise BenchError(events.error)
        persons = Persons(stack, running.fake, biggest)
        # warm the path (first requests load lazily); not reported
        await run_level(2, 3, persons, staff, csrf, events, "900", args, rng)
        # the stack's processes, and this one (the persons' and the console's client side)
        processes = {**process_tree(stack.process.pid), "bench client": os.getpid()}
        for n, level in enumerate(levels):
            before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            row = await run_level(level, args.messages, persons, staff, csrf, events, f"{n:03d}", args, rng)
            after = {name: cpu_seconds(pid) for name, pid in processes.items()}
            row["cpu_ms_per_message"] = {k: 1000 * (after[k] - before[k]) / max(row["messages"], 1) for k in processes}
            rows.append(row)
            print(
                f"N={level}: event p50 {row['event']['p50_ms']:.0f} ms p95 {row['event']['p95_ms']:.0f} ms, "
                f"visible p50 {row['visible']['p50_ms']:.0f} ms p95 {row['visible']['p95_ms']:.0f} ms, "
                f"missing {row['events_missing']}",
                flush=True,
            )
    finally:
        if events is not None:
            await events.stop()
        if persons is not None:
            await persons.close()
        if staff is not None:
            await staff.aclose()
    return {
        "association": association,
        "routing": reason,
        "messages_per_person": args.messages,
        "max_pause_ms": args.max_pause * 1000,
        "seed": args.seed,
        "timeout_s": args.timeout,
        "target_p95_ms": TARGET_P95_MS,
        "event_stream": {
            "counts": dict(events.counts) if events else {},
            "keep_alives": events.keep_alives if events else 0,
            "unparsed": events.unparsed if events else [],
            "error": events.error if events else None,
        },
        "webhook_statuses": dict(persons.statuses) if persons else {},
        "rows": rows,
    }


async def bench(args: argparse.Namespace) -> dict:
    levels = [int(x) for x in args.concurrency.split(",")]
    async with running_stack(args.database_url, args.logs) as running:
        measured = await measure(running, args, levels)
        processes = process_tree(running.stack.process.pid)
        memory = {name: m["rss_mb"] for name, m in component_memory(processes).items()}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "database": running.database,
        "ready_s": running.ready_s,
        **measured,
        "resident_mb": memory,
        "log_problems": running.log_problems,
    }


def latency_table(rows: List[dict]) -> List[str]:
    """Markdown table: the console's latency, one line per level."""
    lines = [
        "| N | messages | event p50 | event p95 | event max | visible p50 | visible p95 | visible max "
        "| ack p95 | fetch p50 | no event in time | event never came | extra events | msg/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        e, v = row["event"], row["visible"]
        lines.append(
            f"| {row['concurrency']} | {row['messages']} | {e['p50_ms']:.0f} ms | {e['p95_ms']:.0f} ms | "
            f"{e['max_ms']:.0f} ms | {v['p50_ms']:.0f} ms | {v['p95_ms']:.0f} ms | {v['max_ms']:.0f} ms | "
            f"{row['ack']['p95_ms']:.1f} ms | {row['fetch']['p50_ms']:.0f} ms | {row['events_missing']} | "
            f"{row['message_events_never']} | {row['message_events_extra']} | {row['messages_per_s']:.1f} |"
        )
    return lines


def report(result: dict) -> str:
    host = result["machine"]
    lines = [
        "# Person's SMS to the staff console: latency under load",
        "",
        f"{result['date']} · {host['platform']}, {host['cpus']} CPUs, Python {host['python']} · "
        f"database: {result['database']} · console of `{result['association']}` ({result['routing']}) · "
        f"{result['messages_per_person']} messages per person, one at a time, 0-{result['max_pause_ms']:.0f} ms "
        f"apart · stack ready in {result['ready_s']:.1f} s.",
        "",
        "Each person holds a request claimed by the staff member, whose console keeps one live-events "
        "stream open. Path: signed Twilio webhook -> inbox (SQL) -> Redis stream -> router (the bot stays "
        "silent) -> Redis pub/sub -> `GET /console/events`. *event*: from the start of the webhook POST to "
        "the `message` event for her handoff; *visible*: to the end of the `GET /console/api/handoffs/<id>` "
        "made on that event whose transcript holds her text (the browser refetches the same data, as an "
        "HTML fragment, on the event). *ack*: the webhook's answer to Twilio.",
        "",
        *latency_table(result["rows"]),
    ]
    if result["rows"]:
        lines += [
            "",
            "Closed loop: a person sends her next message once the previous one is readable (plus the pause), so "
            "the load follows the machine's capacity: "
            + ", ".join(f"{r['messages_per_s']:.1f} messages/s at N={r['concurrency']}" for r in result["rows"])
            + ". Where the rate stops growing with N, the machine is saturated and the latency is mostly queueing "
            "(about N ÷ rate per message cycle: "
            + ", ".join(
                f"{r['concurrency'] / r['messages_per_s']:.2f} s at N={r['concurrency']}"
                for r in result["rows"]
                if r["messages_per_s"]
            )
            + "); the ack column shows the gateway's own queue.",
        ]
    names = list(result["rows"][0]["cpu_ms_per_message"]) if result["rows"] else []
    if names:
        lines += [
            "",
            "## CPU time per message (ms, all cores), by process",
            "",
            "Includes the console's fetches (gateway) and the setup of the level (requests, claims, closing); "
            "*bench client* is this script (the persons, the console's stream and fetches, the fake Twilio API), "
            "on the same cores.",
            "",
            "| N | " + " | ".join(names) + " |",
            "| --- | " + " | ".join("---" for _ in names) + " |",
        ]
        for row in result["rows"]:
            cpu = row["cpu_ms_per_message"]
            lines.append(f"| {row['concurrency']} | " + " | ".join(f"{cpu[k]:.1f}" for k in names) + " |")
    if result["resident_mb"]:
        lines += [
            "",
            "Resident memory at the end (MB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in result["resident_mb"].items())
            + f" (total {sum(result['resident_mb'].values()):.0f}).",
        ]
    target = result["target_p95_ms"]
    worst_event = max((r["event"]["p95_ms"] for r in result["rows"]), default=float("nan"))
    worst_visible = max((r["visible"]["p95_ms"] for r in result["rows"]), default=float("nan"))
    missing = sum(r["events_missing"] for r in result["rows"])
    never = sum(r["message_events_never"] for r in result["rows"])
    not_visible = sum(r["not_visible"] for r in result["rows"])
    extra = sum(r["message_events_extra"] for r in result["rows"])

    def by_level(kind: str) -> str:
        met = [str(r["concurrency"]) for r in result["rows"] if r[kind]["p95_ms"] <= target]
        missed = [str(r["concurrency"]) for r in result["rows"] if not r[kind]["p95_ms"] <= target]
        return f" (met at N={', '.join(met) or '-'}; missed at N={', '.join(missed) or '-'})"

    lines += [
        "",
        "## Targets",
        "",
        f"- webhook to console event, p95 <= {target:.0f} ms at every load: worst {worst_event:.0f} ms — "
        + ("**met**" if worst_event <= target else "**missed**")
        + by_level("event"),
        f"- webhook to text readable in the console (event + fetch), p95 <= {target:.0f} ms at every load: "
        f"worst {worst_visible:.0f} ms — "
        + ("**met**" if worst_visible <= target else "**missed**")
        + by_level("visible"),
        f"- messages without their event within {result['timeout_s']:.0f} s: {missing} (of which never came: "
        f"{never}), text never readable: {not_visible}, extra events: {extra} (target 0) — "
        + ("**met**" if missing == 0 and never == 0 and not_visible == 0 and extra == 0 else "**missed**"),
    ]
    stream = result["event_stream"]
    if stream["error"] or stream["unparsed"]:
        lines += ["", f"Event stream: {stream['error'] or ''} {len(stream['unparsed'])} unparsed line(s)."]
    if result["log_problems"]:
        lines += [
            "",
            "Lines that look like errors in the run's logs: "
            + ", ".join(f"{name} {len(found)}" for name, found in result["log_problems"].items())
            + " (in the JSON).",
        ]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--concurrency", default="1,8,32", help="persons at once, comma-separated levels")
    options.add_argument("--messages", type=int, default=20, help="messages each person sends")
    options.add_argument("--max-pause", type=float, default=0.2, help="longest random pause between messages (s)")
    options.add_argument("--timeout", type=float, default=10.0, help="longest wait for one event or reply (s)")
    options.add_argument("--level-timeout", type=float, default=180.0, help="longest run of one level (s)")
    options.add_argument("--seed", type=int, default=20261206)
    options.add_argument("--database-url", default=None)
    options.add_argument("--logs", default=None, help="copy the run's logs to this directory")
    options.add_argument("--out", default=str(RESULTS / "console_latency"))
    return options


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    args = parser().parse_args()
    result = asyncio.run(bench(args))
    print(write_results(Path(args.out), result, report(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
