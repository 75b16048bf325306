"""Helpers shared by the tests: waiting for a condition, running workers as tasks, counting
stored messages, and a gateway app served in-process to an httpx client."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Callable, List, Tuple

import httpx
from sqlalchemy import create_engine, func, select

from bot.app import Services, build_services, create_app
from bot.models import Message
from bot.rasa_client import RasaClient
from bot.tasks import stop as stop_tasks
from tests.fakes import FakeRasa


async def until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Wait until ``condition()`` (or the coroutine it returns) is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(*workers: Callable[[], Any]) -> AsyncIterator[List[asyncio.Task]]:
    """Run each worker coroutine as a task; cancel them all on exit."""
    tasks = [asyncio.create_task(worker()) for worker in workers]
    try:
        yield tasks
    finally:
        await stop_tasks(tasks)


def count_messages(url: str) -> int:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(Message)).scalar_one()
    engine.dispose()
    return int(count)


@contextlib.asynccontextmanager
async def gateway_client(settings: Any, fake_rasa: FakeRasa) -> AsyncIterator[Tuple[httpx.AsyncClient, Services]]:
    """The gateway (without its workers) with Rasa faked, and a client that calls it."""
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    app = create_app(settings, services=services, run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.internal") as client:
            yield client, services
