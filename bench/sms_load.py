"""The SMS path under load, against raw Rasa, on the same model in the same run.

    .venv/bin/python bench/sms_load.py [--concurrency 1,8,32] [--turns 5] [--database-url URL]

Starts the whole assistant (``python -m bot run``: private Redis, Rasa, action server, gateway
with router and sender) with a Twilio number whose API is a local fake on loopback, then, for
each concurrency level N:

1. raw Rasa: N simulated conversations post to Rasa's REST channel directly, each waiting for
   its answer before the next message;
2. whole path: N conversations text through the signed Twilio webhook; a turn ends when the
   reply reaches the fake Twilio API through the real twilio client.

It reports the webhook acknowledgement latency (p50/p95: target p95 <= 20 ms while Rasa is
saturated), the reply latency p50/p95 and throughput of both paths and their ratio (target:
whole-path p50 <= 1.15x raw Rasa), and messages lost or doubled (target 0), in
bench/results/sms_load.md and .json. The database is a fresh PostgreSQL database when the local
server answers (as in production), else SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.rasa_setup import model_path  # noqa: E402
from bot.redis_server import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ACCOUNT = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 (the fake Twilio account of the bench)
NUMBER = "+33700000009"
# Texts people send, in several languages; the calibration keeps those Rasa answers in one message.
CANDIDATES = [
    "bonjour",
    "je cherche un medecin gratuit",
    "comment avoir des papiers",
    "c'est quoi le parcours de sortie",
    "ou dormir ce soir",
    "hello I need a doctor",
    "unde pot dormi in seara asta",
    "где сделать тест на вич",
    "necesito ayuda con mis papeles",
    "merci beaucoup",
    "la police peut m'arreter ?",
    "preciso de um medico",
]
_LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception", re.IGNORECASE)


def percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class FakeTwilioApi:
    """Twilio's Messages API on loopback, in this event loop: each reply wakes its waiter."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: Dict[str, List[Tuple[float, str]]] = defaultdict(list)
        self.events: Dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._count = 0
        self._server: Optional[uvicorn.Server] = None

    async def _messages(self, request: Request) -> JSONResponse:
        fields = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        to = fields.get("To", "")
        self.received[to].append((time.perf_counter(), fields.get("Body", "")))
        self.events[to].set()
        self._count += 1
        return JSONResponse({"sid": f"SM{self._count:032d}", "status": "queued"}, status_code=201)

    async def start(self) -> None:
        app = Starlette(
            routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", self._messages, methods=["POST"])]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="none", lifespan="off")
        self._server = uvicorn.Server(config)
        asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await asyncio.sleep(0.3)


def make_database(url: Optional[str]) -> Tuple[Optional[str], Optional[str], str]:
    """(database URL, name to drop afterwards, description)."""
    if url:
        return url, None, url.split("://", 1)[0]
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine("postgresql://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT", future=True)
        name = f"outreach_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"postgresql://postgres@127.0.0.1:5432/{name}", name, "PostgreSQL 127.0.0.1"
    except Exception:
        return None, None, "SQLite (PostgreSQL not reachable)"


def drop_database(name: Optional[str]) -> None:
    if not name:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine("postgresql://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _parents() -> Dict[int, int]:
    """pid -> parent pid of every process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def process_tree(pid: int) -> Dict[str, int]:
    """Name -> pid of the run command (the gateway) and its children (Rasa, actions, workers,
    NLG endpoint, Redis)."""
    found = {"gateway": pid}
    for child, parent in _parents().items():
        if parent != pid:
            continue
        try:
            command = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"redis" in command:
            found["redis"] = child
        elif b" worker" in command:
            found["workers"] = child
        elif b" actions" in command:
            found["actions"] = child
        elif b" nlg" in command:
            found["nlg"] = child
        elif b"--model" in command:
            found["rasa"] = child
    return found


def component_memory(processes: Dict[str, int]) -> Dict[str, Dict[str, float]]:
    """Resident memory of each component: its process and every descendant that is not another
    component (``rss_mb`` now, ``peak_mb`` the sum of each process's peak, ``processes``)."""
    parents = _parents()
    roots = set(processes.values())
    memory = {}
    for name, pid in processes.items():
        tree, frontier = [pid], [pid]
        while frontier:
            children = [c for c, p in parents.items() if p in frontier and c not in roots]
            tree += children
            frontier = children
        memory[name] = {
            "rss_mb": sum(status_mb(p, "VmRSS") for p in tree),
            "peak_mb": sum(status_mb(p, "VmHWM") for p in tree),
            "processes": float(len(tree)),
        }
    return memory


def cpu_seconds(pid: int) -> float:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_mb(pid: int, key: str) -> float:
    """A memory figure of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in MB; 0 if gone."""
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Stack:
    """``python -m bot run`` with the fake Twilio API."""

    def __init__(self, twilio_url: str, database_url: Optional[str], data_dir: Path) -> None:
        self.port, self.nlg_port, self.rasa_port, self.action_port = free_port(), free_port(), free_port(), free_port()
        self.public = f"http://127.0.0.1:{self.port}"
        self.rasa = f"http://127.0.0.1:{self.rasa_port}"
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
        env.update(
            OUTREACH_ENV="local",
            OUTREACH_DATA_DIR=str(data_dir),
            OUTREACH_PORT=str(self.port),
            OUTREACH_NLG_PORT=str(self.nlg_port),
            OUTREACH_PUBLIC_URL=self.public,
            OUTREACH_FLOOD_PER_MINUTE="0",
            OUTREACH_FLOOD_PER_HOUR="0",
            TWILIO_ACCOUNT_SID=ACCOUNT,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM=NUMBER,
            TWILIO_API_BASE=twilio_url,
            RASA_TELEMETRY_ENABLED="false",
            PYTHONPATH=str(ROOT),
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        self.log = (data_dir / "run-output.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "run",
                "--rasa-port",
                str(self.rasa_port),
                "--action-port",
                str(self.action_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.gateway_s: Optional[float] = None

    async def ready(self, timeout: float = 240) -> float:
        """Seconds from the start to the first ``/readyz?rasa=1`` that says ready (Rasa answering);
        ``gateway_s``: to the gateway's first answer, ready or not."""
        async with httpx.AsyncClient() as client:
            while time.monotonic() - self.started < timeout:
                if self.process.poll() is not None:
                    raise RuntimeError("the assistant exited; see its run-output.log")
                try:
                    status = (await client.get(f"{self.public}/readyz?rasa=1", timeout=2)).status_code
                    if self.gateway_s is None:
                        self.gateway_s = time.monotonic() - self.started
                    if status == 200:
                        return time.monotonic() - self.started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        raise RuntimeError("the assistant was not ready in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


async def raw_turn(client: httpx.AsyncClient, rasa: str, sender: str, text: str) -> Tuple[float, int]:
    started = time.perf_counter()
    response = await client.post(
        f"{rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text, "metadata": {"language": "fr"}}
    )
    response.raise_for_status()
    # texts only: the NLG endpoint's response name comes back as a message of its own (statistics)
    return time.perf_counter() - started, len([reply for reply in response.json() if reply.get("text")])


async def calibrate(client: httpx.AsyncClient, rasa: str) -> List[str]:
    """The candidate texts answered in exactly one message by a fresh conversation."""
    kept = []
    for n, text in enumerate(CANDIDATES):
        _latency, replies = await raw_turn(client, rasa, f"calibrate-{n}-{uuid.uuid4().hex[:6]}", text)
        if replies == 1:
            kept.append(text)
    if len(kept) < 3:
        raise RuntimeError("too few one-reply texts; check the model")
    return kept


async def run_raw(rasa: str, texts: List[str], concurrency: int, turns: int, tag: str) -> dict:
    latencies: List[float] = []
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def conversation(i: int) -> None:
            for turn in range(turns):
                latency, _replies = await raw_turn(client, rasa, f"{tag}-{i}", texts[(i + turn) % len(texts)])
                latencies.append(latency)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(concurrency)))
        wall = time.perf_counter() - started
    return summary(latencies, wall)


def summary(latencies: List[float], wall: float) -> dict:
    return {
        "messages": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "throughput_per_s": len(latencies) / wall if wall else 0.0,
        "wall_s": wall,
    }


async def run_whole(
    stack: Stack, fake: FakeTwilioApi, texts: List[str], concurrency: int, turns: int, tag: int, reply_timeout: float
) -> dict:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = f"{stack.public}/webhooks/twilio"
    latencies: List[float] = []
    acks: List[float] = []
    statuses: Dict[int, int] = defaultdict(int)
    timeouts = 0
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def conversation(i: int) -> None:
            nonlocal timeouts
            number = f"+3361{tag:03d}{i:04d}"
            event = fake.events[number]
            for turn in range(turns):
                seen = len(fake.received[number])
                event.clear()
                params = {
                    "MessageSid": f"SM{tag:03d}{i:05d}{turn:04d}{uuid.uuid4().hex[:20]}",
                    "AccountSid": ACCOUNT,
                    "From": number,
                    "To": NUMBER,
                    "Body": texts[(i + turn) % len(texts)],
                    "NumMedia": "0",
                }
                headers = {
                    "X-Twilio-Signature": validator.compute_signature(url, params),
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                started = time.perf_counter()
                response = await client.post(url, content=urlencode(params), headers=headers)
                acks.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                deadline = started + reply_timeout
                while len(fake.received[number]) <= seen:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        timeouts += 1
                        break
                    try:
                        await asyncio.wait_for(event.wait(), timeout=remaining)
                    except asyncio.TimeoutError:
                        continue
                    event.clear()
                else:
                    latencies.append(fake.received[number][seen][0] - started)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(concurrency)))
        wall = time.perf_counter() - started
    await asyncio.sleep(3.0)  # late or doubled replies would arrive now
    numbers = [f"+3361{tag:03d}{i:04d}" for i in range(concurrency)]
    received = sum(len(fake.received[n]) for n in numbers)
    expected = concurrency * turns
    result = summary(latencies, wall)
    result.update(
        ack_p50_ms=percentile(acks, 50) * 1000,
        ack_p95_ms=percentile(acks, 95) * 1000,
        ack_p99_ms=percentile(acks, 99) * 1000,
        ack_max_ms=max(acks) * 1000 if acks else float("nan"),
        http_statuses=dict(statuses),
        lost=max(0, expected - received),
        doubled=max(0, received - expected),
        reply_timeouts=timeouts,
    )
    return result


def log_problems(data_dir: Path, limit: int = 20) -> Dict[str, List[str]]:
    """Lines that look like errors in the run's logs (before the temporary directory goes)."""
    found: Dict[str, List[str]] = {}
    for path in run_logs(data_dir):
        lines = [
            line.strip()[:300]
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if _LOG_PROBLEM.search(line)
        ]
        if lines:
            found[path.name] = lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])
    return found


def run_logs(data_dir: Path) -> List[Path]:
    return [p for p in [*sorted((data_dir / "run").glob("*.log")), data_dir / "run-output.log"] if p.exists()]


def keep_logs(data_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in run_logs(data_dir):
        shutil.copy(path, target / path.name)


@dataclass
class Running:
    """The assistant started by :func:`running_stack`, and what is known of the run."""

    stack: Stack
    fake: FakeTwilioApi
    database: str
    database_name: Optional[str] = None  # of the database made for the run, if any
    ready_s: float = float("nan")
    log_problems: Dict[str, List[str]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def running_stack(database_url: Optional[str], logs: Optional[str] = None) -> AsyncIterator[Running]:
    """The whole assistant on a fresh database with the fake Twilio API, ready (``ready_s``:
    seconds from its start); afterwards stopped, its logs' error-like lines in ``log_problems``
    (and the logs copied to ``logs`` if given), the database dropped."""
    if not model_path().exists():
        raise SystemExit("no trained model: run `.venv/bin/python -m bot setup` first")
    url, drop_name, database = make_database(database_url)
    fake = FakeTwilioApi()
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            running = Running(Stack(fake.url, url, Path(tmp)), fake, database, drop_name)
            try:
                running.ready_s = await running.stack.ready()
                yield running
            finally:
                running.stack.stop()
                running.log_problems = log_problems(Path(tmp))
                for name, found in running.log_problems.items():
                    print(f"{name}: {len(found)} line(s) that look like errors, e.g. {found[0]}", file=sys.stderr)
                if logs:
                    keep_logs(Path(tmp), Path(logs))
    finally:
        await fake.stop()
        drop_database(drop_name)


def write_results(out: Path, result: dict, markdown: str) -> str:
    """``out``.json and ``out``.md; returns the Markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return markdown


def machine() -> Dict[str, object]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


async def prepare(running: Running, reply_timeout: float) -> List[str]:
    """The one-reply texts (calibrated on raw Rasa), both paths warmed (first requests load lazily)."""
    async with httpx.AsyncClient(timeout=60) as client:
        texts = await calibrate(client, running.stack.rasa)
    await run_raw(running.stack.rasa, texts, 2, 2, "warm")
    await run_whole(running.stack, running.fake, texts, 2, 2, 999, reply_timeout)
    return texts


async def compare(
    running: Running, texts: List[str], levels: List[int], turns: int, reply_timeout: float, processes: Dict[str, int]
) -> List[dict]:
    """Raw Rasa, then the whole path, at each concurrency level; one row per level, with the
    CPU time per message of each process."""
    rows = []
    for n, level in enumerate(levels):
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        raw = await run_raw(running.stack.rasa, texts, level, turns, f"raw-{level}-{uuid.uuid4().hex[:6]}")
        middle = {name: cpu_seconds(pid) for name, pid in processes.items()}
        whole = await run_whole(running.stack, running.fake, texts, level, turns, n, reply_timeout)
        after = {name: cpu_seconds(pid) for name, pid in processes.items()}
        raw["cpu_ms_per_message"] = {k: 1000 * (middle[k] - before[k]) / max(raw["messages"], 1) for k in processes}
        whole["cpu_ms_per_message"] = {k: 1000 * (after[k] - middle[k]) / max(whole["messages"], 1) for k in processes}
        rows.append({"concurrency": level, "raw": raw, "whole": whole})
        print(
            f"N={level}: raw p50 {raw['p50_ms']:.0f} ms, whole p50 {whole['p50_ms']:.0f} ms "
            f"(x{whole['p50_ms'] / raw['p50_ms']:.2f}), ack p95 {whole['ack_p95_ms']:.1f} ms, "
            f"lost {whole['lost']}, doubled {whole['doubled']}",
            flush=True,
        )
    return rows


async def bench(args: argparse.Namespace) -> dict:
    levels = [int(x) for x in args.concurrency.split(",")]
    async with running_stack(args.database_url) as running:
        texts = await prepare(running, args.reply_timeout)
        processes = process_tree(running.stack.process.pid)
        rows = await compare(running, texts, levels, args.turns, args.reply_timeout, processes)
        memory = {name: m["rss_mb"] for name, m in component_memory(processes).items()}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "database": running.database,
        "turns_per_conversation": args.turns,
        "texts": texts,
        "ready_s": running.ready_s,
        "rows": rows,
        "resident_mb": memory,
        "log_problems": running.log_problems,
    }


def comparison_table(rows: List[dict]) -> List[str]:
    """Markdown table: raw Rasa against the whole path, one line per concurrency level."""
    lines = [
        "| N | raw p50 | raw p95 | raw p99 | raw msg/s | whole p50 | whole p95 | whole p99 | whole msg/s "
        "| p50 ratio | p95 ratio | ack p50 | ack p95 | ack p99 | lost | doubled |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        raw, whole = row["raw"], row["whole"]
        lines.append(
            f"| {row['concurrency']} | {raw['p50_ms']:.0f} ms | {raw['p95_ms']:.0f} ms | {raw['p99_ms']:.0f} ms | "
            f"{raw['throughput_per_s']:.1f} | {whole['p50_ms']:.0f} ms | {whole['p95_ms']:.0f} ms | "
            f"{whole['p99_ms']:.0f} ms | {whole['throughput_per_s']:.1f} | {whole['p50_ms'] / raw['p50_ms']:.2f}x | "
            f"{whole['p95_ms'] / raw['p95_ms']:.2f}x | {whole['ack_p50_ms']:.1f} ms | "
            f"{whole['ack_p95_ms']:.1f} ms | {whole['ack_p99_ms']:.1f} ms | {whole['lost']} | {whole['doubled']} |"
        )
    return lines


def cpu_table(rows: List[dict]) -> List[str]:
    """Markdown table: CPU time per message of each process, raw and whole path, per level."""
    names = list(rows[0]["whole"]["cpu_ms_per_message"]) if rows else []
    lines = [
        "| N | path | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for row in rows:
        for path in ("raw", "whole"):
            cpu = row[path]["cpu_ms_per_message"]
            lines.append(f"| {row['concurrency']} | {path} | " + " | ".join(f"{cpu[k]:.1f}" for k in names) + " |")
    return lines


def report(result: dict) -> str:
    lines = [
        "# SMS path under load vs raw Rasa",
        "",
        f"{result['date']} · {result['machine']} · database: {result['database']} · "
        f"{result['turns_per_conversation']} messages per conversation, each sent once the previous one "
        f"is answered · stack ready in {result['ready_s']:.1f} s.",
        "",
        "Raw Rasa: Rasa's REST channel called directly. Whole path: signed Twilio webhook -> inbox "
        "(SQL) -> Redis stream -> router -> Rasa -> outbox -> sender -> twilio client -> local fake "
        "Twilio API. Same model, same run, same texts.",
        "",
        *comparison_table(result["rows"]),
        "",
        "## CPU time per message (ms, all cores), by process",
        "",
        *cpu_table(result["rows"]),
        "",
        "Resident memory at the end (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["resident_mb"].items())
        + f" (total {sum(result['resident_mb'].values()):.0f}).",
    ]
    worst_ack = max(r["whole"]["ack_p95_ms"] for r in result["rows"])
    worst_ratio = max(r["whole"]["p50_ms"] / r["raw"]["p50_ms"] for r in result["rows"])
    lost = sum(r["whole"]["lost"] for r in result["rows"])
    doubled = sum(r["whole"]["doubled"] for r in result["rows"])
    lines += [
        "",
        "## Targets",
        "",
        f"- webhook acknowledgement p95 <= 20 ms at every load: worst {worst_ack:.1f} ms — "
        + ("**met**" if worst_ack <= 20 else "**missed**"),
        f"- whole-path reply p50 <= 1.15x raw Rasa: worst {worst_ratio:.2f}x — "
        + ("**met**" if worst_ratio <= 1.15 else "**missed**"),
        f"- messages lost: {lost}, doubled: {doubled} (target 0) — "
        + ("**met**" if lost == 0 and doubled == 0 else "**missed**"),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--reply-timeout", type=float, default=60.0)
    parser.add_argument("--out", default=str(RESULTS / "sms_load"))
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    print(write_results(Path(args.out), result, report(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
