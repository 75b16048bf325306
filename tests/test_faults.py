"""Faults on the SMS path, on the real databases and a real (restartable) Redis: Redis
restarted empty, Rasa stopped, a router killed mid-message. Each test sends SMS through the
signed Twilio webhook and checks that every message is answered exactly once, through the real
twilio client, and that nothing else is stored."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import AsyncIterator, Dict, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select

from bot import queues
from bot.channels.twilio_sms import TwilioChannel
from bot.i18n import Catalogs
from bot.language import LanguageChooser
from bot.logs import quiet_third_parties
from bot.models import Message
from bot.rasa_client import RasaClient
from bot.redis_server import PrivateRedis
from bot.router import Router
from bot.sender import Sender
from bot.settings import load_settings
from tests.fake_twilio import FakeTwilio
from tests.fakes import FakeRasa
from tests.helpers import gateway_client, running, until
from tests.test_twilio import PUBLIC, TOKEN, inbound, post, signed, twilio_env


def person(n: int) -> str:
    return f"+336{n:08d}"


@pytest.fixture(autouse=True)
def logs_carry_nothing_personal(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log record of these runs (errors, a Redis restart, Rasa down, a worker killed),
    at DEBUG with the app's logging configuration, holds no phone number, no message text, no
    token and no tracker."""
    quiet_third_parties()
    caplog.set_level(logging.DEBUG)
    yield
    records = [record for when in ("setup", "call") for record in caplog.get_records(when)]
    assert records, "nothing was logged: the check would prove nothing"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")  # with the tracebacks
    text = "\n".join(formatter.format(record) for record in records)
    for secret in [person(n) for n in range(5)] + [person(n)[1:] for n in range(5)]:
        assert secret not in text
    for words in ("avant", "pendant", "question", "bonjour", "encore", "reply 0 to"):
        assert words not in text, words
    assert TOKEN not in text and "tracker" not in text.lower()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, private_redis: PrivateRedis, tmp_path: Path, twilio: FakeTwilio):
    return load_settings(twilio_env(database_url, private_redis.url, tmp_path, twilio))


@pytest.fixture
async def gateway(settings, fake_rasa: FakeRasa) -> AsyncIterator[tuple]:
    async with gateway_client(settings, fake_rasa) as served:
        yield served


def make_router(services, transport: httpx.AsyncBaseTransport, consumer: str) -> Router:
    return Router(
        services.store,
        services.redis,
        RasaClient("http://rasa.test", transport=transport),
        LanguageChooser(("fr", "en"), "fr"),
        catalogs=Catalogs(("fr", "en")),
        rasa_retry_for=0.2,
        sweep_after=1.0,
        claim_idle_ms=500,
        consumer=consumer,
    )


def make_sender(services, settings) -> Sender:
    channel = TwilioChannel(settings.twilio, PUBLIC, services.store)
    return Sender(
        services.store, services.redis, {"sms": channel}, retry_idle_ms=500, sweep_after=1.0, sweep_interval=0.2
    )


async def send_sms(client: httpx.AsyncClient, sid: str, sender: str, body: str) -> int:
    params = inbound(sid, body, From=sender)
    response = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    return response.status_code


def answers(twilio: FakeTwilio) -> Counter:
    return Counter((r["form"]["To"], r["form"]["Body"]) for r in twilio.requests)


def stored_rows(url: str) -> Dict[str, int]:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(select(Message.direction, Message.status)).all()
    engine.dispose()
    return dict(Counter(f"{r.direction}:{r.status}" for r in rows))


async def test_redis_restarted_empty_loses_nothing(gateway, settings, twilio, fake_rasa, private_redis) -> None:
    client, services = gateway
    async with running(make_router(services, fake_rasa.transport, "router-1").run, make_sender(services, settings).run):
        for n in range(5):
            assert await send_sms(client, f"SMr{n}", person(n), f"avant {n}") == 200
        await until(lambda: len(twilio.requests) == 5)
        private_redis.stop()  # streams, groups, locks, counters: all gone
        for n in range(5):
            # stored in SQL; Twilio gets its answer; the notification is lost
            assert await send_sms(client, f"SMs{n}", person(n), f"pendant {n}") == 200
        await asyncio.sleep(1.0)
        private_redis.start()
        await until(lambda: len(twilio.requests) == 10, timeout=60)
        await asyncio.sleep(2.0)  # nothing more comes
    expected = Counter({(person(n), f"reply 0 to {when} {n}"): 1 for n in range(5) for when in ("avant", "pendant")})
    assert answers(twilio) == expected
    assert stored_rows(settings.database_url) == {"in:done": 10, "out:sent": 10}


async def test_rasa_stopped_messages_wait_and_are_answered_once(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    fake_rasa.down = True
    async with running(make_router(services, fake_rasa.transport, "router-1").run, make_sender(services, settings).run):
        for n in range(4):
            assert await send_sms(client, f"SMd{n}", person(n), f"question {n}") == 200
        await asyncio.sleep(30.0)  # Rasa is down for 30 s: nothing goes out, nothing is lost
        assert twilio.requests == []
        assert stored_rows(settings.database_url) == {"in:received": 4}
        fake_rasa.down = False
        await until(lambda: len(twilio.requests) == 4, timeout=30)
        await asyncio.sleep(2.0)
    assert answers(twilio) == Counter({(person(n), f"reply 0 to question {n}"): 1 for n in range(4)})
    assert stored_rows(settings.database_url) == {"in:done": 4, "out:sent": 4}


async def test_a_router_killed_mid_message_is_replaced_and_the_answer_goes_once(
    gateway, settings, twilio, fake_rasa
) -> None:
    client, services = gateway
    entered = asyncio.Event()

    async def hanging(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.sleep(3600)  # the worker dies while waiting for Rasa
        raise AssertionError("unreachable")

    first = make_router(services, httpx.MockTransport(hanging), "router-doomed")
    second = make_router(services, fake_rasa.transport, "router-survivor")
    async with running(make_sender(services, settings).run):
        async with running(first.run) as (doomed,):
            assert await send_sms(client, "SMk1", person(1), "bonjour") == 200
            await asyncio.wait_for(entered.wait(), timeout=10)
            doomed.cancel()  # killed mid-message, the stream entry not acknowledged
        # a killed process runs no cleanup: its conversation lock stays until it expires
        conversation = services.store.find_conversation("sms", person(1))
        await services.redis.set(queues.lock_key(conversation.id), "dead-worker", px=queues.LOCK_TTL_MS)
        async with running(second.run):
            await until(lambda: len(twilio.requests) == 1, timeout=30)
            assert await send_sms(client, "SMk2", person(1), "encore") == 200
            await until(lambda: len(twilio.requests) == 2, timeout=30)
            await asyncio.sleep(2.0)
    assert [r["form"]["Body"] for r in twilio.requests] == ["reply 0 to bonjour", "reply 0 to encore"]
    assert stored_rows(settings.database_url) == {"in:done": 2, "out:sent": 2}
