"""The Redis client: a worker told to stop stops, whatever Redis command it was in.

redis-py 4.6 (pinned by Rasa) loses about one cancellation in five of a loop of commands on
Python 3.10 (see bot/redis_client.py); a gateway shutting down, or a test ending its workers,
then waits forever. These tests run on the real Redis server.
"""

from __future__ import annotations

import asyncio
import random

from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from bot import redis_client

ROUNDS = 200


async def lost_cancellations(client: Redis) -> int:
    """Start a loop of commands, cancel it at a random moment, count the loops that go on."""

    async def worker() -> None:
        while True:
            await asyncio.sleep(0.001)
            await client.get("outreach:test:key")

    lost = 0
    rng = random.Random(7)
    for _ in range(ROUNDS):
        task = asyncio.create_task(worker())
        await asyncio.sleep(rng.random() * 0.01)
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=0.3)
        if not done:
            lost += 1
            while not task.done():
                task.cancel()
                await asyncio.sleep(0.01)
    return lost


async def test_no_cancellation_is_lost(redis_clean: str) -> None:
    client = redis_client.connect(redis_clean)
    try:
        assert await lost_cancellations(client) == 0
    finally:
        await client.close()


async def test_the_stock_client_still_loses_cancellations(redis_clean: str) -> None:
    """The reason for CancellationSafeParser: when this fails, redis-py is fixed and the
    parser can go."""
    client = Redis.from_url(redis_clean, socket_timeout=10)
    try:
        assert await lost_cancellations(client) > 0
    finally:
        await client.close()


async def test_a_pooled_connection_with_unread_data_is_replaced(redis_clean: str) -> None:
    client = redis_client.connect(redis_clean)
    try:
        connection = await client.connection_pool.get_connection("ECHO")
        await connection.send_command("ECHO", "stale")  # its answer is never read
        await asyncio.sleep(0.2)
        await client.connection_pool.release(connection)
        assert await client.echo("fresh") == "fresh"
        assert await client.echo("again") == "again"
    finally:
        await client.close()


async def test_a_connection_closed_by_the_server_is_replaced(redis_clean: str) -> None:
    client = redis_client.connect(redis_clean)
    try:
        victim = await client.client_id()
        killer = redis_client.connect(redis_clean)
        await killer.client_kill_filter(_id=victim)
        await killer.close()
        await asyncio.sleep(0.1)
        # the pool sees the closed connection before using it, or the command fails once
        for _attempt in range(2):
            try:
                assert await client.echo("after") == "after"
                break
            except ConnectionError:
                continue
        else:
            raise AssertionError("the client did not reconnect")
    finally:
        await client.close()


async def test_an_entry_handled_while_redis_went_away_is_left_pending_without_a_crash(caplog) -> None:
    """A worker that finished its work (recorded in SQL) when Redis vanished: the entry is not
    acknowledged, which is harmless (it is claimed again and finds nothing to do); the task
    must not die with an exception nobody reads."""
    from bot import queues
    from bot.redis_server import free_port

    client = redis_client.connect(f"redis://127.0.0.1:{free_port()}/0")
    await queues.ack(client, queues.OUTBOX, queues.SENDER_GROUP, "1-0")
    assert "entry not acknowledged (ConnectionError)" in caplog.text
    await client.close()
