"""One command for a local run: a private Redis if none is configured, the database
migrated, the catalogs compiled, then the action server, Rasa, the workers (router, sender,
Telegram polling) and the NLG endpoint as child processes, and the gateway (web chat, webhooks,
staff console) in this process. The gateway answers providers at once; the workers' database and model work never
holds it up (they do not share its event loop or its interpreter lock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, List, Optional

import uvicorn

from bot.app import build_services, create_app
from bot.console.demo import ACCOUNTS_FILE, seed_demo
from bot.crypto import Vault
from bot.db import make_engine, make_sessionmaker
from bot.i18n import compile_catalogs
from bot.migrate import upgrade
from bot.rasa_setup import model_path, rasa_command, write_endpoints
from bot.redis_server import PrivateRedis
from bot.settings import PROJECT_ROOT, Settings, with_local_keys

log = logging.getLogger(__name__)


# Children run at a lower CPU priority than the gateway: on a small machine, a provider's
# webhook is acknowledged at once even while Rasa and the workers use every core (decision 0005).
CHILD_NICENESS = 5


class Child:
    def __init__(self, name: str, command: List[str], log_path: Path, env: Optional[dict] = None) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = env
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._log: Optional[IO[bytes]] = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            # `nice` then exec: no Python code runs between fork and exec (unlike preexec_fn,
            # which is unsafe once the parent has threads)
            ["nice", "-n", str(CHILD_NICENESS), *self.command],
            cwd=PROJECT_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        if self._log:
            self._log.close()


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


def _demo(settings: Settings) -> None:
    """Example associations and console accounts, so the console can be tried at once."""
    engine = make_engine(settings.database_url)
    try:
        assert settings.keys is not None
        seeded, created = seed_demo(make_sessionmaker(engine), Vault(settings.keys), settings.data_dir)
    finally:
        engine.dispose()
    if seeded:
        print("• loaded the EXAMPLE associations (examples/associations.example.yml)", flush=True)
    if created:
        shown = _shown_path(settings.data_dir / ACCOUNTS_FILE)
        print(f"• created demo console accounts ({', '.join(created)}): see {shown}", flush=True)


async def run_local(settings: Settings, rasa_port: int = 5005, action_port: int = 5055) -> int:
    settings = with_local_keys(settings)
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    private_redis: Optional[PrivateRedis] = None
    if settings.redis_url is None:
        private_redis = PrivateRedis(run_dir)
        print("• starting a private Redis server (no REDIS_URL set)", flush=True)
        settings = replace(settings, redis_url=private_redis.start())
    settings = replace(
        settings,
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        action_server_url=f"http://127.0.0.1:{action_port}/webhook",
    )
    children: List[Child] = []
    try:
        print("• migrating the database", flush=True)
        upgrade(settings.database_url)
        _demo(settings)
        compile_catalogs()
        if not model_path().exists():
            print("No trained model: run ./run (it trains) or python -m bot train", file=sys.stderr)
            return 2
        endpoints = write_endpoints(settings, run_dir / "endpoints.yml")
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        worker_env = {
            **env,
            "REDIS_URL": settings.redis_url or "",
            "DATABASE_URL": settings.database_url,
            "RASA_URL": settings.rasa_url,
            "OUTREACH_DATA_DIR": str(settings.data_dir),
        }
        children = [
            Child(
                "action server",
                [sys.executable, "-m", "bot", "actions", "--port", str(action_port)],
                run_dir / "actions.log",
                env,
            ),
            Child("Rasa", rasa_command(endpoints, rasa_port), run_dir / "rasa.log", env),
            Child(
                "workers",
                [sys.executable, "-m", "bot", "worker"],
                run_dir / "workers.log",
                worker_env,
            ),
            Child(
                "NLG endpoint",
                [sys.executable, "-m", "bot", "nlg"],
                run_dir / "nlg.log",
                worker_env,
            ),
        ]
        for child in children:
            print(f"• starting the {child.name} (log: {_shown_path(child.log_path)})", flush=True)
            child.start()
        services = build_services(settings)
        gateway = _server(create_app(settings, services=services, run_workers=False), settings.host, settings.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        serving = [asyncio.create_task(gateway.serve())]
        print("• waiting for Rasa to load the model (about 30 s)", flush=True)
        started = time.monotonic()
        while not stop.is_set():
            if any(task.done() for task in serving):
                break
            if await services.rasa.ready():
                break
            dead = [c for c in children if not c.alive()]
            if dead:
                print(f"The {dead[0].name} stopped; see {dead[0].log_path}", file=sys.stderr)
                stop.set()
                break
            await asyncio.sleep(0.5)
        if not stop.is_set() and not any(task.done() for task in serving):
            url = f"http://{settings.host}:{settings.port}/chat"
            print(f"\nReady in {time.monotonic() - started:.0f} s. Web chat: {url}", flush=True)
            print(
                f"Staff console: http://{settings.host}:{settings.port}/console "
                f"(demo accounts: {_shown_path(settings.data_dir / ACCOUNTS_FILE)})",
                flush=True,
            )
            print("Terminal chat: python -m bot chat   ·   Stop: Ctrl+C\n", flush=True)
        exit_code = 0
        while not stop.is_set():
            dead = [c for c in children if not c.alive()]
            if dead:
                print(f"The {dead[0].name} stopped; see {dead[0].log_path}", file=sys.stderr)
                exit_code = 1
                break
            ended = [task for task in serving if task.done()]
            if ended:
                problem = ended[0].exception()
                print(f"The gateway stopped: {type(problem).__name__ if problem else 'exited'}", file=sys.stderr)
                exit_code = 1
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        gateway.should_exit = True
        await asyncio.gather(*serving, return_exceptions=True)
        return exit_code
    finally:
        for child in reversed(children):
            child.stop()
        if private_redis:
            private_redis.stop()
