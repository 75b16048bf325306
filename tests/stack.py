"""The production layout on loopback, one OS process per part, for the scale-out test and the
soak run (bench/soak.py): a private Redis, the action server, the NLG endpoint, N Rasa servers
(trackers and locks in Redis), N gateways, N routers, N senders and a housekeeping worker, all
started with the documented commands and the production settings. Any process can be killed
(SIGKILL, as a crash) and started again."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional

import httpx

from bot.rasa_setup import model_path, rasa_command, write_endpoints
from bot.redis_server import PrivateRedis, free_port
from bot.settings import PROJECT_ROOT, load_settings

TWILIO_ACCOUNT = "AC" + "c" * 32
TWILIO_TOKEN = "stack-auth-token"
TWILIO_NUMBER = "+33700000077"
PUBLIC_URL = "https://outreach.stack.test"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def wait_http(url: str, timeout: float, alive: Callable[[], bool] = lambda: True, every: float = 0.3) -> str:
    """Poll ``url`` until it answers 200: ``"ready"``, ``"exited"`` (``alive()`` turned
    false first) or ``"timeout"``."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            return "exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return "ready"
        if time.monotonic() > deadline:
            return "timeout"
        time.sleep(every)


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, patience: float = 15.0) -> None:
    """Stop a process started with ``start_new_session`` and its children: ``sig``, then SIGKILL
    after ``patience`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def fresh_postgres(server: str = "postgresql://postgres@127.0.0.1:5432/test") -> Iterator[str]:
    """A new PostgreSQL database for one run, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = f"outreach_stack_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def production_env(run_dir: Path, database_url: str, redis_url: str, twilio_api: str) -> Dict[str, str]:
    """The environment of every part: production mode, its keys, PostgreSQL, Redis, a Twilio
    number whose API is the given local fake."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "TWILIO_", "TELEGRAM_"))}
    return {
        **inherited,
        "PYTHONPATH": str(PROJECT_ROOT),
        "RASA_TELEMETRY_ENABLED": "false",
        # a conversation's lock left by a Rasa server that died is free after 20 s, not 60
        "TICKET_LOCK_LIFETIME": "20",
        "OUTREACH_ENV": "production",
        "OUTREACH_DATA_DIR": str(run_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OUTREACH_LOOKUP_KEY": _b64(b"L" * 32),
        "OUTREACH_DATA_KEYS": "k1:" + _b64(b"D" * 32),
        "OUTREACH_NLG_TOKEN": "stack-nlg-token-0123456789",
        "OUTREACH_PUBLIC_URL": PUBLIC_URL,
        "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": TWILIO_NUMBER,
        "TWILIO_API_BASE": twilio_api,
    }


@dataclass
class Part:
    name: str
    command: List[str]
    env: Dict[str, str]
    log_path: Path
    port: Optional[int] = None
    process: Optional[subprocess.Popen[bytes]] = None
    starts: int = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """A crash: SIGKILL to the process group, nothing cleaned up."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


@dataclass
class ProductionStack:
    run_dir: Path
    database_url: str
    twilio_api: str
    gateways: int = 2
    routers: int = 2
    senders: int = 2
    rasa_servers: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)
    parts: Dict[str, Part] = field(default_factory=dict)
    redis: Optional[PrivateRedis] = None

    def _env(self) -> Dict[str, str]:
        assert self.redis is not None
        env = production_env(self.run_dir, self.database_url, self.redis.url, self.twilio_api)
        return {
            **env,
            "RASA_URL": ",".join(self.rasa_urls),
            "ACTION_SERVER_URL": f"http://127.0.0.1:{self.action_port}/webhook",
            "OUTREACH_NLG_PORT": str(self.nlg_port),
            **self.extra_env,
        }

    def _add(self, name: str, command: List[str], env: Dict[str, str], port: Optional[int] = None) -> None:
        self.parts[name] = Part(name, command, env, self.run_dir / f"{name}.log", port)

    def start(self, timeout: float = 240.0) -> float:
        """Start everything; returns the seconds until every gateway and Rasa server is ready."""
        if not model_path().exists():
            raise RuntimeError("no trained model: run `python -m bot setup` first")
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.redis = PrivateRedis(self.run_dir / "redis")
        self.redis.start()
        self.action_port, self.nlg_port = free_port(), free_port()
        self.rasa_ports = [free_port() for _ in range(self.rasa_servers)]
        self.rasa_urls = [f"http://127.0.0.1:{port}" for port in self.rasa_ports]
        env = self._env()
        from bot.migrate import upgrade

        upgrade(self.database_url)
        settings = load_settings(env)
        endpoints = write_endpoints(settings, self.run_dir / "endpoints.yml")
        python = [sys.executable, "-m", "bot"]
        self._add("actions", [*python, "actions", "--port", str(self.action_port)], env, self.action_port)
        self._add("nlg", [*python, "nlg"], env, self.nlg_port)
        for n, port in enumerate(self.rasa_ports, 1):
            self._add(f"rasa-{n}", rasa_command(endpoints, port), env, port)
        for n in range(1, self.gateways + 1):
            port = free_port()
            self._add(f"gateway-{n}", [*python, "gateway"], {**env, "OUTREACH_PORT": str(port)}, port)
        for role, count in (("router", self.routers), ("sender", self.senders), ("housekeeping", 1)):
            for n in range(1, count + 1):
                self._add(f"{role}-{n}", [*python, "worker", "--role", role], env)
        for part in self.parts.values():
            part.start()
        self.wait_ready(self.parts, timeout)
        return time.monotonic() - started

    def gateway_urls(self) -> List[str]:
        return [f"http://127.0.0.1:{p.port}" for name, p in sorted(self.parts.items()) if name.startswith("gateway-")]

    def wait_ready(self, names: Iterable[str], timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        probes = {"rasa": "/webhooks/rest/", "gateway": "/readyz", "nlg": "/healthz", "actions": "/health"}
        for name in names:
            part = self.parts[name]
            probe = probes.get(name.split("-")[0])
            if probe is not None and part.port is not None:
                url = f"http://127.0.0.1:{part.port}{probe}"
                left = max(0.0, deadline - time.monotonic())
                if wait_http(url, left, part.alive) == "timeout":
                    raise RuntimeError(f"{name} not ready in time; see {part.log_path}")
            if not part.alive():
                raise RuntimeError(f"{name} exited; see {part.log_path}")

    def kill(self, name: str) -> None:
        self.parts[name].kill()

    def restart(self, name: str, wait: bool = True) -> None:
        part = self.parts[name]
        part.kill()
        part.start()
        if wait:
            self.wait_ready([name])

    def kill_redis(self) -> None:
        assert self.redis is not None and self.redis.process is not None
        self.redis.process.kill()
        self.redis.process.wait(timeout=10)

    def restart_redis(self) -> None:
        """Redis back on the same port and password, empty (it keeps nothing on disk)."""
        assert self.redis is not None
        self.redis.start()

    def resident_mb(self) -> Dict[str, float]:
        """Resident memory of each part (its whole process group), in MB."""
        sizes: Dict[str, float] = {}
        for name, part in self.parts.items():
            if part.alive() and part.process is not None:
                sizes[name] = _group_rss_kb(part.process.pid) / 1024
        if self.redis is not None and self.redis.process is not None:
            sizes["redis"] = _group_rss_kb(self.redis.process.pid) / 1024
        return sizes

    def logs(self) -> str:
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.parts.values() if p.log_path.exists())

    def stop(self) -> None:
        for part in reversed(list(self.parts.values())):
            part.stop()
        if self.redis is not None:
            self.redis.stop()


def _group_rss_kb(pgid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total
