"""One command, one report: the whole assistant measured against its targets in one run.

    .venv/bin/python bench/report.py [--quick] [--database-url URL] [--out bench/results/report]

Starts the whole assistant once (``python -m bot run``, as bench/sms_load.py does: private
Redis, Rasa, action server, NLG endpoint, workers, gateway; a fake Twilio API on loopback; a
fresh PostgreSQL database when the local server answers, else SQLite), then, on the same model:

1. start to ready: from the start of the command to the first ``/readyz?rasa=1`` that says ready;
2. raw Rasa against the whole path at 1, 8, 32 and 128 concurrent conversations, each sending its
   next message once the previous one is answered (bench/sms_load.py): reply latency
   p50/p95/p99, messages/s, webhook acknowledgement p50/p95/p99, messages lost and doubled;
3. handoff to console (bench/console_latency.py) at 1, 8 and 32 persons held by staff;
4. a sustained open-loop phase: messages arrive at a fixed rate (50/s for 60 s), whatever the
   answers do, from many conversations (one message at a time each, the next after her answer
   and a pause), in a mix: numbered-menu digits, greetings, safety-layer texts (danger, a minor,
   erasure), and mostly free-text questions. It reports the rate accepted (acknowledged by the
   webhook) and its ack p95, the rate answered, how many were answered with and without Rasa
   (Rasa's own trackers in Redis, by text), the backlog when arrivals stop and the time to drain;
5. resident memory of each component (its process tree, from /proc) at the end, and the total.

Writes bench/results/report.md (tables; each target met or missed with the measured value),
report.png (latency against concurrency, acknowledgement p95, the sustained phase over time) and
report.json. ``--quick`` runs tiny sizes to check the script and writes to a temporary directory
unless ``--out`` is given; ``--render JSON`` writes the Markdown and the plot again from a run's
JSON. Run it on a quiet machine: every process shares the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import console_latency  # noqa: E402
from bench.console_latency import BenchError, Persons  # noqa: E402
from bench.sms_load import (  # noqa: E402
    CLOCK_TICKS,
    Running,
    compare,
    comparison_table,
    component_memory,
    cpu_seconds,
    cpu_table,
    machine,
    percentile,
    prepare,
    process_tree,
    running_stack,
    write_results,
)
from bot.rasa_setup import TRACKER_PREFIX  # noqa: E402
from bot.safety import Safety  # noqa: E402
from bot.settings import SUPPORTED_LANGUAGES  # noqa: E402
from bot.text import to_rasa  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# the targets
RATIO_P50 = 1.15
ACK_P95_MS = 20.0
SUSTAINED_PER_S = 50.0
SUSTAINED_TOLERANCE = 0.98  # answered rate judged against 98 % of the target (timer granularity)
STACK_MB = 2048.0
READY_S = 30.0
CONSOLE_P95_MS = console_latency.TARGET_P95_MS

# What people send in the sustained phase (kind -> texts); questions come from the calibration.
MENU_DIGITS = ["1", "2", "3", "4", "5"]
GREETINGS = ["bonjour", "salut", "hello", "buna ziua", "hola"]
SAFETY_TEXTS = ["il me frappe", "he is going to kill me", "j'ai 16 ans", "je suis mineure", "tout effacer"]
NOT_QUESTIONS = {"bonjour", "merci beaucoup"}
MIX = {"menu": 0.15, "greeting": 0.10, "safety": 0.10, "question": 0.65}
KIND_NAMES = {
    "menu": "numbered-menu digit",
    "greeting": "greeting",
    "safety": "safety-layer text",
    "question": "free-text question",
}


def sustained_texts(calibrated: Sequence[str]) -> Dict[str, List[str]]:
    """The texts of each kind, checked against the safety lists: safety texts are caught, the
    others are not (a question the lists caught would be answered by the safety layer)."""
    safety = Safety(SUPPORTED_LANGUAGES)
    texts = {
        "menu": MENU_DIGITS,
        "greeting": [t for t in GREETINGS if not safety.check(t)],
        "safety": [t for t in SAFETY_TEXTS if safety.check(t)],
        "question": [t for t in calibrated if t not in NOT_QUESTIONS and not safety.check(t)],
    }
    empty = [kind for kind, found in texts.items() if not found]
    if empty:
        raise BenchError(f"no text of kind {', '.join(empty)} for the sustained phase; check the safety lists")
    return texts


@dataclass
class Sample:
    """One message of the sustained phase (times: ``time.perf_counter()``)."""

    kind: str
    scheduled: float
    sent: float = float("nan")
    ack_s: Optional[float] = None
    accepted: bool = False
    answered: Optional[float] = None
    error: Optional[str] = None


@dataclass
class OpenLoop:
    """Messages at a fixed rate from a pool of conversations; a conversation is free again once
    her answer has come and no further part of it for ``quiet`` seconds (a person reads, then
    writes), so each reply is matched to its message."""

    persons: Persons
    texts: Dict[str, List[str]]
    rate: float
    duration: float
    quiet: float
    rng: random.Random

    def __post_init__(self) -> None:
        self.samples: List[Sample] = []
        self.free: List[str] = []
        self.conversations = 0
        # the longest wait for an answer; the drain's end cancels what still waits
        self.patience = self.duration + 3600.0
        self._tasks: Set[asyncio.Task[None]] = set()

    def _number(self) -> str:
        if self.free:
            return self.free.pop()
        self.conversations += 1
        return f"+3363{self.conversations:07d}"

    async def _message(self, number: str, sample: Sample, text: str) -> None:
        received = self.persons.fake.received[number]
        seen = len(received)
        sample.sent = time.perf_counter()
        try:
            _started, sample.ack_s = await self.persons.send(number, text)
        except (BenchError, httpx.HTTPError) as problem:
            sample.error = f"{type(problem).__name__}: {problem}"[:200]
            return  # this number is not used again
        sample.accepted = True
        if not await self.persons.reply(number, seen, self.patience):
            return
        sample.answered = received[seen][0]
        count = len(received)
        while await self.persons.reply(number, count, self.quiet):
            count = len(received)
        self.free.append(number)

    async def arrivals(self) -> Tuple[float, float]:
        """Send every message at its time; (start, end) of the arrivals."""
        kinds, weights = list(MIX), list(MIX.values())
        start = time.perf_counter() + 0.2
        for i in range(round(self.rate * self.duration)):
            delay = start + i / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = self.rng.choices(kinds, weights)[0]
            sample = Sample(kind, start + i / self.rate)
            self.samples.append(sample)
            task = asyncio.create_task(self._message(self._number(), sample, self.rng.choice(self.texts[kind])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return start, start + self.duration

    def unanswered(self) -> int:
        """Messages sent (or being sent) and not refused that have no answer yet."""
        return sum(1 for s in self.samples if s.error is None and s.answered is None)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def redis_of(running: Running) -> Tuple[int, str]:
    """Port and password of the run's private Redis (its configuration file)."""
    port, password = 0, ""
    for line in (running.stack.data_dir / "run" / "redis.conf").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "port":
            port = int(value)
        elif key == "requirepass":
            password = value
    return port, password


def rasa_user_texts(running: Running, since: float) -> List[str]:
    """The text of every user message in Rasa's trackers (Redis) received since ``since`` (epoch s)."""
    import redis

    port, password = redis_of(running)
    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    texts: List[str] = []
    try:
        for key in client.scan_iter(match=f"{TRACKER_PREFIX}:tracker:*", count=500):
            raw = client.get(key)
            if not raw:
                continue
            with contextlib.suppress(ValueError):
                events = json.loads(raw).get("events", [])
                texts += [
                    str(e.get("text"))
                    for e in events
                    if e.get("event") == "user" and float(e.get("timestamp") or 0) >= since
                ]
    finally:
        client.close()
    return texts


def postgres_cpu(database: Optional[str]) -> Dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (its process title)."""
    found: Dict[int, float] = {}
    if not database:
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes()
                if command.startswith(b"postgres:") and f" {database} ".encode() in command:
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, others' included)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def rate_between(times: List[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t <= end) / (end - start) if end > start else 0.0


async def sustained(
    running: Running, texts: Dict[str, List[str]], args: argparse.Namespace, processes: Dict[str, int]
) -> dict:
    """The open-loop phase: arrivals at ``args.rate`` for ``args.duration`` s, then the drain."""
    persons = Persons(running.stack, running.fake, 508)
    load = OpenLoop(persons, texts, args.rate, args.duration, args.quiet, random.Random(args.seed))
    since = time.time()
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    database_before, machine_before = postgres_cpu(running.database_name), machine_busy_s()
    timeline: List[Tuple[float, int, int, int]] = []  # (t, sent, accepted, answered)
    try:
        arrivals = asyncio.create_task(load.arrivals())
        began = time.perf_counter()
        while not arrivals.done():
            await asyncio.sleep(1.0)
            timeline.append(snapshot(load, began))
        start, end = await arrivals
        ended = time.perf_counter()
        backlog = load.unanswered()
        while load.unanswered() and time.perf_counter() < ended + args.drain_timeout:
            await asyncio.sleep(0.5)
            timeline.append(snapshot(load, began))
        await asyncio.sleep(min(args.quiet, 2.0))  # late parts of the last answers
        after = {name: cpu_seconds(pid) for name, pid in processes.items()}
        database_after, machine_after = postgres_cpu(running.database_name), machine_busy_s()
        elapsed = time.perf_counter() - start
    finally:
        await load.stop()
        await persons.close()
    samples = load.samples
    accepted = [s for s in samples if s.accepted]
    answered = [s for s in accepted if s.answered is not None]
    answer_times = [s.answered for s in answered if s.answered is not None]
    acks_ms = [s.ack_s * 1000 for s in accepted if s.ack_s is not None]
    steady = start + min(10.0, args.duration / 4)  # the first seconds fill the pipeline
    last = max(answer_times, default=end)
    rasa = rasa_user_texts(running, since)
    if database_after:  # its backends started during the phase count from zero
        before["postgresql"] = 0.0
        after["postgresql"] = sum(t - database_before.get(pid, 0.0) for pid, t in database_after.items())
    by_kind = {}
    for kind, kind_texts in texts.items():
        mine = [s for s in answered if s.kind == kind]
        latencies = [(s.answered - s.sent) * 1000 for s in mine if s.answered is not None]
        forms = {to_rasa(t) for t in kind_texts}
        with_rasa = sum(1 for t in rasa if t in forms)
        by_kind[kind] = {
            "sent": sum(1 for s in samples if s.kind == kind),
            "answered": len(mine),
            "with_rasa": with_rasa,
            "without_rasa": max(0, len(mine) - with_rasa),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
        }
    lateness_ms = [(s.sent - s.scheduled) * 1000 for s in samples if not math.isnan(s.sent)]
    return {
        "rate_target_per_s": args.rate,
        "duration_s": args.duration,
        "quiet_s": args.quiet,
        "mix": MIX,
        "texts": texts,
        "sent": len(samples),
        "offered_per_s": len(samples) / (end - start),
        "send_lateness_p95_ms": percentile(lateness_ms, 95),
        "send_lateness_max_ms": max(lateness_ms, default=float("nan")),
        "accepted": len(accepted),
        "accepted_per_s": rate_between([s.sent for s in accepted], start, end),
        "not_accepted": len(samples) - len(accepted),
        "errors": sorted({s.error for s in samples if s.error})[:10],
        "webhook_statuses": dict(persons.statuses),
        "ack_p50_ms": percentile(acks_ms, 50),
        "ack_p95_ms": percentile(acks_ms, 95),
        "ack_p99_ms": percentile(acks_ms, 99),
        "answered_in_window": sum(1 for t in answer_times if t <= end),
        "answered_per_s": rate_between(answer_times, start, end),
        "answered_steady_per_s": rate_between(answer_times, steady, end),
        "answered_overall_per_s": len(answer_times) / (last - start) if last > start else 0.0,
        "backlog_at_end": backlog,
        "drain_s": max(0.0, last - ended) if not load.unanswered() else None,
        "unanswered": load.unanswered(),
        "drain_timeout_s": args.drain_timeout,
        "conversations": load.conversations,
        "rasa_messages": len(rasa),
        "with_rasa": sum(k["with_rasa"] for k in by_kind.values()),
        "without_rasa": sum(k["without_rasa"] for k in by_kind.values()),
        "by_kind": by_kind,
        "reply_p50_ms": percentile([(s.answered - s.sent) * 1000 for s in answered if s.answered], 50),
        "reply_p95_ms": percentile([(s.answered - s.sent) * 1000 for s in answered if s.answered], 95),
        "cpu_ms_per_message": {k: 1000 * (after[k] - before[k]) / max(len(accepted), 1) for k in after},
        "cpu_cores_busy": {k: (after[k] - before[k]) / elapsed for k in after},
        "machine_cores_busy": (machine_after - machine_before) / elapsed,
        "timeline": [list(point) for point in timeline],
    }


def snapshot(load: OpenLoop, began: float) -> Tuple[float, int, int, int]:
    now = time.perf_counter()
    return (
        now - began,
        len(load.samples),
        sum(1 for s in load.samples if s.accepted),
        sum(1 for s in load.samples if s.answered is not None),
    )


def machine_description() -> Dict[str, object]:
    found: Dict[str, object] = dict(machine())
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                found["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        found["memory_gb"] = round(int(total) / 1024 / 1024, 1)
    return found


async def bench(args: argparse.Namespace) -> dict:
    levels = [int(x) for x in args.levels.split(",")]
    console_levels = [int(x) for x in args.console_levels.split(",")]
    console_args = console_latency.parser().parse_args(["--messages", str(args.console_messages)])
    load_before = os.getloadavg()
    async with running_stack(args.database_url, args.logs) as running:
        print(f"ready in {running.ready_s:.1f} s", flush=True)
        calibrated = await prepare(running, args.reply_timeout)
        texts = sustained_texts(calibrated)
        processes = process_tree(running.stack.process.pid)
        rows = await compare(running, calibrated, levels, args.turns, args.reply_timeout, processes)
        console = await console_latency.measure(running, console_args, console_levels)
        measured = {**processes, "bench client": os.getpid()}
        phase = await sustained(running, texts, args, measured)
        print(
            f"sustained {args.rate:.0f}/s: accepted {phase['accepted_per_s']:.1f}/s (ack p95 "
            f"{phase['ack_p95_ms']:.1f} ms), answered {phase['answered_per_s']:.1f}/s, backlog "
            f"{phase['backlog_at_end']}, drained in {phase['drain_s'] or float('nan'):.1f} s",
            flush=True,
        )
        memory = component_memory(processes)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "machine": machine_description(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "database": running.database,
        "ready_s": running.ready_s,
        "gateway_up_s": running.stack.gateway_s,
        "turns_per_conversation": args.turns,
        "texts": calibrated,
        "rows": rows,
        "console": console,
        "sustained": phase,
        "memory": memory,
        "total_rss_mb": sum(m["rss_mb"] for m in memory.values()),
        "total_peak_mb": sum(m["peak_mb"] for m in memory.values()),
        "log_problems": running.log_problems,
    }


# -- the report ---------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def targets(result: dict) -> List[dict]:
    rows, phase, console = result["rows"], result["sustained"], result["console"]["rows"]
    ratios = {r["concurrency"]: r["whole"]["p50_ms"] / r["raw"]["p50_ms"] for r in rows}
    acks = {f"N={r['concurrency']}": r["whole"]["ack_p95_ms"] for r in rows}
    acks.update({f"console N={r['concurrency']}": r["ack"]["p95_ms"] for r in console})
    acks[f"sustained {phase['rate_target_per_s']:.0f}/s"] = phase["ack_p95_ms"]
    worst_ratio = max(ratios.values(), default=float("nan"))
    worst_ack = max(acks.values(), default=float("nan"))
    lost = sum(r["whole"]["lost"] for r in rows)
    doubled = sum(r["whole"]["doubled"] for r in rows)
    steady = phase["answered_steady_per_s"]
    console_p95 = max((r["event"]["p95_ms"] for r in console), default=float("nan"))
    return [
        {
            "id": "ratio",
            "target": f"reply p50 <= {RATIO_P50}x raw Rasa (every level)",
            "measured": f"worst {worst_ratio:.2f}x; " + ", ".join(f"N={n}: {v:.2f}x" for n, v in ratios.items()),
            "met": worst_ratio <= RATIO_P50,
        },
        {
            "id": "ack",
            "target": f"webhook ack p95 <= {ACK_P95_MS:.0f} ms at every load",
            "measured": f"worst {worst_ack:.1f} ms; " + ", ".join(f"{k}: {v:.1f} ms" for k, v in acks.items()),
            "met": worst_ack <= ACK_P95_MS,
        },
        {
            "id": "sustained",
            "target": f">= {SUSTAINED_PER_S:.0f} messages/s sustained (answered, nothing left)",
            "measured": f"offered {phase['offered_per_s']:.1f}/s, accepted {phase['accepted_per_s']:.1f}/s, "
            f"answered {steady:.1f}/s after the first seconds, backlog {phase['backlog_at_end']} when arrivals "
            f"stopped, {phase['unanswered']} never answered",
            "met": phase["rate_target_per_s"] >= SUSTAINED_PER_S
            and steady >= SUSTAINED_TOLERANCE * SUSTAINED_PER_S
            and phase["unanswered"] == 0,
        },
        {
            "id": "memory",
            "target": f"whole stack <= {STACK_MB / 1024:.0f} GB resident",
            "measured": f"{result['total_rss_mb']:.0f} MB at the end (sum of each process's peak: "
            f"{result['total_peak_mb']:.0f} MB)",
            "met": result["total_rss_mb"] <= STACK_MB,
        },
        {
            "id": "ready",
            "target": f"ready <= {READY_S:.0f} s once the model exists",
            "measured": f"{result['ready_s']:.1f} s",
            "met": result["ready_s"] <= READY_S,
        },
        {
            "id": "lost",
            "target": "nothing lost or doubled (closed-loop levels)",
            "measured": f"lost {lost}, doubled {doubled}",
            "met": lost == 0 and doubled == 0,
        },
        {
            "id": "console",
            "target": f"handoff to console event p95 <= {CONSOLE_P95_MS:.0f} ms (bench/console_latency.py)",
            "measured": f"worst {console_p95:.0f} ms; "
            + ", ".join(f"N={r['concurrency']}: {r['event']['p95_ms']:.0f} ms" for r in console),
            "met": console_p95 <= CONSOLE_P95_MS,
        },
    ]


def path_cpu(cpu: Dict[str, float]) -> float:
    """CPU ms per message of the stack's processes (this script's own excluded)."""
    return sum(v for k, v in cpu.items() if k != "bench client")


def why(result: dict, checked: List[dict]) -> List[str]:
    """Measured facts behind each missed target (none if every target is met)."""
    rows, phase = result["rows"], result["sustained"]
    missed = {t["id"] for t in checked if not t["met"]}
    lines: List[str] = []
    cores = os.cpu_count() or 1
    if rows and "ratio" in missed:
        first = rows[0]
        cpu = first["whole"]["cpu_ms_per_message"]
        outside = {k: v for k, v in cpu.items() if k not in {"rasa", "actions"}}
        lines.append(
            f"- Reply latency: at N={first['concurrency']} the whole path takes "
            f"{first['whole']['p50_ms'] - first['raw']['p50_ms']:.0f} ms more than raw Rasa (p50). Per message it "
            f"spends {sum(outside.values()):.1f} ms of CPU outside Rasa and the action server ("
            + ", ".join(f"{k} {v:.1f}" for k, v in outside.items())
            + f") against {cpu.get('rasa', 0.0):.1f} ms in Rasa."
        )
    if rows and ("ack" in missed or "sustained" in missed):
        per_message = path_cpu(phase["cpu_ms_per_message"])
        busy = sum(phase["cpu_cores_busy"].values())
        best_raw = max(r["raw"]["throughput_per_s"] for r in rows)
        client = phase["cpu_ms_per_message"].get("bench client", 0.0)
        ceiling = 1000 * cores / per_message if per_message else float("nan")
        lines.append(
            "- CPU: in the sustained phase the stack (its PostgreSQL backends included) used "
            f"{per_message:.1f} ms of CPU per accepted message ("
            + ", ".join(f"{k} {v:.1f}" for k, v in phase["cpu_ms_per_message"].items() if k != "bench client")
            + f"; this script {client:.1f} more), so {cores} cores can serve at most about {ceiling:.0f} "
            f"messages/s. The processes kept {busy:.2f} of {cores} cores busy on average from the first arrival "
            f"to the drained end (this script included; the whole machine: {phase['machine_cores_busy']:.2f}). "
            f"Raw Rasa alone served at most {best_raw:.1f} messages/s (closed loop, all levels)."
        )
        best_whole = max(rows, key=lambda r: r["whole"]["throughput_per_s"])
        lines.append(
            f"- Capacity: the whole path's best closed-loop throughput was "
            f"{best_whole['whole']['throughput_per_s']:.1f} messages/s (N={best_whole['concurrency']}), against "
            f"{phase['answered_steady_per_s']:.1f}/s answered in the sustained phase."
        )
        others = phase["machine_cores_busy"] - busy
        if others > 0.25:
            lines.append(
                f"- Noise: other processes on the machine used about {others:.2f} cores during the sustained phase; "
                "a quiet machine leaves the stack more."
            )
        lines.append(
            f"- Rasa: it handled {phase['rasa_messages']} messages in the sustained phase; "
            f"{phase['without_rasa']} of {phase['with_rasa'] + phase['without_rasa']} answers came without it ("
            + ", ".join(f"{KIND_NAMES[k]}s {v['without_rasa']}/{v['answered']}" for k, v in phase["by_kind"].items())
            + ")."
        )
    if "memory" in missed:
        biggest = max(result["memory"].items(), key=lambda item: item[1]["rss_mb"])
        lines.append(f"- Memory: the largest component is {biggest[0]} ({biggest[1]['rss_mb']:.0f} MB).")
    if "ready" in missed and result.get("gateway_up_s") is not None:
        lines.append(
            f"- Start: the gateway answered after {result['gateway_up_s']:.1f} s (migrations, catalogs, children "
            f"started); Rasa answered {result['ready_s'] - result['gateway_up_s']:.1f} s later (its model loaded)."
        )
    return lines


def sustained_lines(phase: dict) -> List[str]:
    drained = (
        f"drained in {phase['drain_s']:.1f} s"
        if phase["drain_s"] is not None
        else f"not drained after {phase['drain_timeout_s']:.0f} s ({phase['unanswered']} left)"
    )
    lines = [
        f"{phase['sent']} messages at {phase['rate_target_per_s']:.0f}/s for {phase['duration_s']:.0f} s from "
        f"{phase['conversations']} conversations (each sends her next message once her answer has come and "
        f"{phase['quiet_s']:.1f} s passed without another part); mix: "
        + ", ".join(f"{KIND_NAMES[k]}s {v:.0%}" for k, v in phase["mix"].items())
        + f". The sender was late by {phase['send_lateness_p95_ms']:.1f} ms at p95 "
        f"(max {phase['send_lateness_max_ms']:.0f} ms).",
        "",
        "| offered | accepted | ack p50 | ack p95 | ack p99 | answered (arrivals window) | answered (after the "
        "first seconds) | reply p50 | reply p95 | backlog when arrivals stopped | drain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {phase['offered_per_s']:.1f}/s | {phase['accepted_per_s']:.1f}/s ({phase['not_accepted']} refused) | "
        f"{phase['ack_p50_ms']:.1f} ms | {phase['ack_p95_ms']:.1f} ms | {phase['ack_p99_ms']:.1f} ms | "
        f"{phase['answered_per_s']:.1f}/s | {phase['answered_steady_per_s']:.1f}/s | {phase['reply_p50_ms']:.0f} ms | "
        f"{phase['reply_p95_ms']:.0f} ms | {phase['backlog_at_end']} | {drained} |",
        "",
        "| kind | sent | answered | with Rasa | without Rasa | reply p50 | reply p95 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, row in phase["by_kind"].items():
        lines.append(
            f"| {KIND_NAMES[kind]} | {row['sent']} | {row['answered']} | {row['with_rasa']} | {row['without_rasa']} | "
            f"{row['p50_ms']:.0f} ms | {row['p95_ms']:.0f} ms |"
        )
    lines += [
        "",
        "*With Rasa*: user messages of that kind in Rasa's trackers during the phase (Redis); *without*: the "
        "rest of the answered ones. CPU time per accepted message (ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in phase["cpu_ms_per_message"].items())
        + "; cores busy on average: "
        + ", ".join(f"{k} {v:.2f}" for k, v in phase["cpu_cores_busy"].items())
        + f"; the whole machine (others' processes included) {phase['machine_cores_busy']:.2f}. *postgresql*: "
        "the server's backends connected to the run's database.",
    ]
    if phase["errors"]:
        lines += ["", "Webhook errors: " + "; ".join(phase["errors"])]
    return lines


def report(result: dict) -> str:
    host = result["machine"]
    checked = targets(result)
    load = ", ".join(f"{x:.2f}" for x in result["load_average_before"])
    lines = [
        "# Benchmark report: the whole assistant against its targets",
        "",
        *(["**Quick run** (tiny sizes, to check the script): not figures to compare.", ""] if result["quick"] else []),
        f"{result['date']} · {host.get('cpu', host['machine'])}, {host['cpus']} CPUs, "
        f"{host.get('memory_gb', '?')} GB, {host['platform']}, Python {host['python']} · database: "
        f"{result['database']} · load average before the run: {load} · one run of `bench/report.py`, one stack, "
        "one model.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
        *(f"| {t['target']} | {t['measured']} | {verdict(t['met'])} |" for t in checked),
    ]
    reasons = why(result, checked)
    if reasons:
        lines += ["", "## Why the missed ones are missed (measured)", "", *reasons]
    lines += [
        "",
        f"## Raw Rasa against the whole path ({result['turns_per_conversation']} messages per conversation, "
        "each once the previous one is answered)",
        "",
        "Raw Rasa: Rasa's REST channel called directly. Whole path: signed Twilio webhook -> inbox (SQL) -> "
        "Redis stream -> router -> Rasa -> outbox -> sender -> twilio client -> local fake Twilio API.",
        "",
        *comparison_table(result["rows"]),
        "",
        "CPU time per message (ms, all cores), by process:",
        "",
        *cpu_table(result["rows"]),
        "",
        "## Sustained arrivals (open loop)",
        "",
        *sustained_lines(result["sustained"]),
        "",
        "## Handoff to the staff console",
        "",
        "A person's SMS, in a conversation a staff member holds, to its live event in the console (*event*) "
        "and its text readable there (*visible*); see bench/console_latency.py.",
        "",
        *console_latency.latency_table(result["console"]["rows"]),
        "",
        "## Memory and start",
        "",
        "| component | processes | resident now (MB) | peak (MB) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {m['processes']:.0f} | {m['rss_mb']:.0f} | {m['peak_mb']:.0f} |"
            for name, m in result["memory"].items()
        ),
        f"| total | | {result['total_rss_mb']:.0f} | {result['total_peak_mb']:.0f} |",
        "",
        f"Ready (from the start of `python -m bot run` to Rasa answering through `/readyz?rasa=1`): "
        f"{result['ready_s']:.1f} s; the gateway answered (not ready yet) after "
        f"{result['gateway_up_s'] or float('nan'):.1f} s.",
    ]
    if result["log_problems"]:
        lines += [
            "",
            "Lines that look like errors in the run's logs: "
            + ", ".join(f"{name} {len(found)}" for name, found in result["log_problems"].items())
            + " (in the JSON).",
        ]
    lines += ["", "![latency, acknowledgement and the sustained phase](report.png)"]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rows, phase = result["rows"], result["sustained"]
    levels = [r["concurrency"] for r in rows]
    figure, (latency, ack, timeline) = plt.subplots(1, 3, figsize=(16, 4.8))
    for path_name, colour in (("raw", "tab:blue"), ("whole", "tab:orange")):
        label = "raw Rasa" if path_name == "raw" else "whole path"
        latency.plot(levels, [r[path_name]["p50_ms"] for r in rows], "o-", color=colour, label=f"{label} p50")
        latency.plot(levels, [r[path_name]["p95_ms"] for r in rows], "s--", color=colour, label=f"{label} p95")
    latency.set(xscale="log", yscale="log", xlabel="concurrent conversations", ylabel="reply latency (ms)")
    latency.set_title("Reply latency, raw Rasa vs whole path")
    ack.plot(levels, [r["whole"]["ack_p95_ms"] for r in rows], "o-", color="tab:orange", label="ack p95")
    ack.plot(levels, [r["whole"]["ack_p50_ms"] for r in rows], "s:", color="tab:orange", label="ack p50")
    ack.axhline(ACK_P95_MS, color="tab:red", linestyle="--", label=f"target p95 {ACK_P95_MS:.0f} ms")
    ack.axhline(
        phase["ack_p95_ms"],
        color="tab:green",
        linestyle="-.",
        label=f"ack p95 at {phase['rate_target_per_s']:.0f}/s sustained",
    )
    ack.set(xscale="log", yscale="log", xlabel="concurrent conversations", ylabel="webhook acknowledgement (ms)")
    ack.set_title("Webhook acknowledgement")
    points = phase["timeline"]
    if points:
        seconds = [p[0] for p in points]
        timeline.plot(seconds, [p[1] for p in points], label="sent")
        timeline.plot(seconds, [p[2] for p in points], label="accepted")
        timeline.plot(seconds, [p[3] for p in points], label="answered")
        timeline.plot(seconds, [p[2] - p[3] for p in points], label="backlog (accepted, not answered)")
        timeline.axvline(phase["duration_s"], color="grey", linestyle=":", label="arrivals stop")
    timeline.set(xlabel="seconds since the arrivals began", ylabel="messages")
    timeline.set_title(f"Sustained arrivals at {phase['rate_target_per_s']:.0f}/s")
    for axes in (latency, ack, timeline):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    plain = FuncFormatter(lambda value, _position: f"{value:g}")
    for axes in (latency, ack):
        axes.set_xticks(levels)
        axes.xaxis.set_major_formatter(plain)
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(NullFormatter())
    figure.suptitle(f"{result['date']} · {result['machine']['cpus']} CPUs · {result['database']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    options.add_argument("--levels", default="1,8,32,128", help="concurrent conversations, raw vs whole path")
    options.add_argument("--turns", type=int, default=5, help="messages per conversation at each level")
    options.add_argument("--rate", type=float, default=SUSTAINED_PER_S, help="sustained arrivals per second")
    options.add_argument("--duration", type=float, default=60.0, help="seconds of sustained arrivals")
    options.add_argument("--quiet", type=float, default=1.0, help="pause after an answer before her next message")
    options.add_argument("--drain-timeout", type=float, default=600.0, help="longest wait for the backlog (s)")
    options.add_argument("--console-levels", default="1,8,32", help="persons held by staff at once")
    options.add_argument("--console-messages", type=int, default=20, help="messages per person (console)")
    options.add_argument("--reply-timeout", type=float, default=60.0)
    options.add_argument("--seed", type=int, default=20261206)
    options.add_argument("--database-url", default=None)
    options.add_argument("--logs", default=None, help="copy the run's logs to this directory")
    options.add_argument("--out", default=None, help="path without suffix (default bench/results/report)")
    options.add_argument("--render", default=None, help="only write the Markdown and plot again from this JSON")
    return options


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    args = parser().parse_args()
    if args.quick:
        args.levels, args.turns, args.duration = "1,8", 2, 10.0
        args.console_levels, args.console_messages, args.drain_timeout = "1,8", 3, 120.0
    default = Path(tempfile.gettempdir()) / "outreach-bench-quick" / "report" if args.quick else RESULTS / "report"
    out = Path(args.out) if args.out else default
    if args.render:
        result = json.loads(Path(args.render).read_text(encoding="utf-8"))
    else:
        result = asyncio.run(bench(args))
        result["options"] = {k: v for k, v in vars(args).items() if k not in {"database_url", "logs", "out", "render"}}
    print(write_results(out, result, report(result)))
    plot(result, out.with_suffix(".png"))
    print(f"written: {out.with_suffix('.md')}, {out.with_suffix('.png')}, {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
