"""Running one part of the gateway as its own process (production layout)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Sequence

import uvicorn

from bot.app import WORKER_ROLES, build_services, create_app, make_workers
from bot.nlg import create_nlg_app
from bot.settings import Settings, with_local_keys
from bot.tasks import stop as stop_tasks

log = logging.getLogger(__name__)


async def serve(part: str, settings: Settings, roles: Sequence[str] = WORKER_ROLES) -> int:
    settings = with_local_keys(settings)
    if settings.redis_url is None:
        print("Configuration error: REDIS_URL is required for this command")
        return 2
    services = build_services(settings)
    if part == "gateway":
        app = create_app(settings, services=services, run_workers=False)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, access_log=False, log_level="warning", ws="none"
        )
        await uvicorn.Server(config).serve()
        return 0
    if part == "nlg":
        assert settings.keys is not None
        app = create_nlg_app(services.catalogs, settings.keys.nlg_token, settings.default_language)
        config = uvicorn.Config(
            app, host=settings.nlg_host, port=settings.nlg_port, access_log=False, ws="none", log_level="warning"
        )
        await uvicorn.Server(config).serve()
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if "router" in roles:
        await loop.run_in_executor(None, services.chooser.warm_up)
    tasks = [asyncio.create_task(worker()) for worker in make_workers(services, roles)]
    stopping = asyncio.create_task(stop.wait())
    done, _pending = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    for task in done:
        if task is not stopping:  # a worker ended by itself: exit, so that the process manager restarts us
            problem = task.exception()
            log.error("a worker stopped (%s); exiting", type(problem).__name__ if problem else "returned")
            exit_code = 1
    stopping.cancel()
    if not await stop_tasks(tasks, patience=10.0):
        log.warning("workers did not stop within 10 s")
    await services.rasa.close()
    await services.redis.close()
    services.close_sync()
    return exit_code
