"""Housekeeping in one process at a time: two processes' leases on the real Redis."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from redis.asyncio import Redis

from bot.lease import Lease, lease_key
from bot.tasks import stop
from tests.helpers import until


def counting(name: str, log: List[str]):
    async def work() -> None:
        while True:
            log.append(name)
            await asyncio.sleep(0.05)

    return work


async def test_only_the_holder_works_and_the_other_takes_over_when_it_dies(redis: Redis) -> None:
    log: List[str] = []
    first, second = Lease(redis, "housekeeping", ttl=0.6), Lease(redis, "housekeeping", ttl=0.6)
    one = asyncio.create_task(first.run([counting("first", log)]))
    await until(lambda: first.held)
    two = asyncio.create_task(second.run([counting("second", log)]))
    await asyncio.sleep(1.0)  # longer than the lease: the holder renews it, the other waits
    assert set(log) == {"first"} and not second.held
    one.cancel()  # the holder's process dies (its lease is released, or expires)
    await stop([one])
    log.clear()
    await until(lambda: second.held, timeout=3)
    await asyncio.sleep(0.2)
    assert set(log) == {"second"}
    await stop([two])


async def test_a_holder_whose_lease_vanished_stops_working(redis: Redis) -> None:
    """Redis restarted empty: the key is gone; another process may have taken it. The old
    holder stops at its next renewal."""
    log: List[str] = []
    lease = Lease(redis, "housekeeping", ttl=0.6)
    task = asyncio.create_task(lease.run([counting("old", log)]))
    await until(lambda: lease.held)
    await redis.set(lease_key("housekeeping"), "another-process", px=5000)
    await until(lambda: not lease.held, timeout=3)
    log.clear()
    await asyncio.sleep(0.3)
    assert log == []  # its work stopped; the other process's lease stands
    assert await redis.get(lease_key("housekeeping")) == "another-process"
    await stop([task])


async def test_a_worker_that_fails_ends_the_lease_so_the_process_exits(redis: Redis) -> None:
    async def broken() -> None:
        raise ValueError("boom")

    lease = Lease(redis, "housekeeping", ttl=0.6)
    with pytest.raises(ValueError):
        await asyncio.wait_for(lease.run([broken]), timeout=5)
    assert await redis.get(lease_key("housekeeping")) is None  # released for another process
