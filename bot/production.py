"""Running one part of the gateway as its own process (production layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Iterator, List, Optional, Sequence, Tuple

import uvicorn

from bot.app import WORKER_ROLES, Services, build_services, create_app, make_workers
from bot.metrics import metrics_app
from bot.nlg import create_nlg_app
from bot.settings import Settings, with_local_keys
from bot.tasks import stop as stop_tasks

log = logging.getLogger(__name__)


async def serve(
    part: str,
    settings: Settings,
    roles: Sequence[str] = WORKER_ROLES,
    metrics_at: Optional[Tuple[str, int]] = None,
) -> int:
    """Run ``part`` (gateway, nlg or worker) until stopped; ``metrics_at``: the host and port
    of a worker's ``/metrics`` and ``/healthz``."""
    settings = with_local_keys(settings)
    if settings.redis_url is None:
        print("Configuration error: REDIS_URL is required for this command")
        return 2
    services = build_services(settings)
    # log_config=None: uvicorn's own messages go through our handler (text or JSON)
    if part == "gateway":
        app = create_app(settings, services=services, run_workers=False)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_level="warning",
            log_config=None,
            ws="none",
        )
        await uvicorn.Server(config).serve()
        return 0
    if part == "nlg":
        assert settings.keys is not None
        app = create_nlg_app(services.catalogs, settings.keys.nlg_token, settings.default_language)
        config = uvicorn.Config(
            app,
            host=settings.nlg_host,
            port=settings.nlg_port,
            access_log=False,
            ws="none",
            log_level="warning",
            log_config=None,
        )
        await uvicorn.Server(config).serve()
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_workers(services, roles, stop, metrics_at)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server sharing a worker's event loop: the worker handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_embedded(server: EmbeddedServer) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot listen (the port is taken)
        raise RuntimeError("the metrics server could not start") from None


async def run_workers(
    services: Services, roles: Sequence[str], stop: asyncio.Event, metrics_at: Optional[Tuple[str, int]] = None
) -> int:
    """Run the workers of ``roles`` (and the metrics server) until ``stop`` is set or one of
    them ends; returns the exit code (1 if one ended by itself). Closes the services."""
    loop = asyncio.get_running_loop()
    if "router" in roles:
        await loop.run_in_executor(None, services.chooser.warm_up)
    tasks = [asyncio.create_task(worker()) for worker in make_workers(services, roles)]
    server = None
    extra: List[asyncio.Task[None]] = []
    if metrics_at is not None:
        app = metrics_app(services.metrics, services.redis, services.settings.metrics_token)
        host, port = metrics_at
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=False,
            log_level="warning",
            log_config=None,
            lifespan="off",
            ws="none",
        )
        server = EmbeddedServer(config)
        extra.append(asyncio.create_task(_serve_embedded(server)))
    stopping = asyncio.create_task(stop.wait())
    done, _pending = await asyncio.wait([stopping, *tasks, *extra], return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    for task in done:
        if task is not stopping:  # a worker ended by itself: exit, so that the process manager restarts us
            problem = task.exception()
            log.error("a worker stopped (%s); exiting", type(problem).__name__ if problem else "returned")
            if problem is not None:
                services.metrics.error("worker", problem)
            exit_code = 1
    stopping.cancel()
    if not await stop_tasks(tasks, patience=10.0):
        log.warning("workers did not stop within 10 s")
    if server is not None:
        server.should_exit = True
        await asyncio.wait(extra, timeout=5.0)
        await stop_tasks(extra)
    await services.rasa.close()
    await services.redis.close()
    services.close_sync()
    return exit_code
