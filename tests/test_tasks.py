"""Stopping tasks: a cancellation lost by a library does not keep a worker running."""

from __future__ import annotations

import asyncio
from typing import List

import pytest

from bot.tasks import stop


class Stubborn:
    """A task that swallows its first ``ignore`` cancellations, as redis-py 4 could; ``give_in``
    makes it stop at the next one (so a failing test never leaves it running)."""

    def __init__(self, ignore: int, log: List[str]) -> None:
        self.ignore = ignore
        self.log = log
        self.task = asyncio.create_task(self.work())

    async def work(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.ignore > 0:
                    self.ignore -= 1
                    self.log.append("ignored")
                    continue
                self.log.append("stopped")
                raise

    async def give_in(self) -> None:
        self.ignore = 0
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def stubborn(ignore: int, log: List[str]) -> asyncio.Task[None]:
    return Stubborn(ignore, log).task


async def test_a_task_that_loses_cancellations_is_stopped() -> None:
    log: List[str] = []
    tasks = [stubborn(2, log), stubborn(0, log)]
    await asyncio.sleep(0)
    assert await stop(tasks, again_after=0.05) is True
    assert all(task.cancelled() for task in tasks)
    assert log.count("stopped") == 2 and log.count("ignored") == 2


async def test_patience_bounds_the_wait() -> None:
    log: List[str] = []
    stubborn_one = Stubborn(10_000, log)
    await asyncio.sleep(0)
    try:
        started = asyncio.get_running_loop().time()
        assert await stop([stubborn_one.task], again_after=0.05, patience=0.3) is False
        assert asyncio.get_running_loop().time() - started < 2.0
        assert not stubborn_one.task.done() and log.count("ignored") >= 2  # asked again and again
    finally:
        await stubborn_one.give_in()
    assert log[-1] == "stopped"


async def test_failures_of_the_tasks_are_not_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    assert await stop([task]) is True


async def test_a_cancelled_parent_still_stops_its_children_first() -> None:
    log: List[str] = []
    child = stubborn(3, log)

    async def parent() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await stop([child], again_after=0.05)

    owner = asyncio.create_task(parent())
    await asyncio.sleep(0.01)
    owner.cancel()
    await asyncio.sleep(0.01)
    owner.cancel()  # asked again while it waits for its child
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert child.cancelled()
    assert log == ["ignored"] * 3 + ["stopped"]
