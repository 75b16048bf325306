"""Scale-out: two of each part in the production layout (gateways, routers, senders, Rasa servers
with their trackers and locks in Redis) on PostgreSQL, each its own OS process started by its
documented command, with SMS through signed Twilio webhooks and the real twilio client. While
people text, one gateway, one router, one sender and one Rasa server are killed (SIGKILL): no
message is lost, none is answered twice, and each conversation's answers go out in order."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Tuple
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import create_engine, select
from twilio.request_validator import RequestValidator

from bot.models import Message
from tests.fake_twilio import FakeTwilio
from tests.stack import PUBLIC_URL, TWILIO_ACCOUNT, TWILIO_NUMBER, TWILIO_TOKEN, ProductionStack, fresh_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.phase_timeout(480)]

PEOPLE = 16
MESSAGES_EACH = 10
TEXTS = [
    "je cherche un medecin gratuit",
    "comment avoir des papiers",
    "c'est quoi le parcours de sortie",
    "ou dormir ce soir",
    "hello I need a doctor",
    "necesito ayuda con mis papeles",
    "merci beaucoup",
    "preciso de um medico",
    "unde pot dormi in seara asta",
    "где сделать тест на вич",
]
# (seconds after the first message, part killed)
KILLS = [(1.5, "router-1"), (3.0, "sender-1"), (4.5, "rasa-1"), (6.0, "gateway-1")]


def phone(person: int) -> str:
    return f"+3361200{person:04d}"


def message_sid(person: int, index: int) -> str:
    return f"SM{person:04d}{index:04d}" + "0" * 24


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Tuple[ProductionStack, FakeTwilio]]:
    twilio = FakeTwilio().start()
    stack = ProductionStack(
        tmp_path_factory.mktemp("scale-out"),
        database,
        twilio.url,
        # the sweepers look for what a dead worker left after 5 s (30 s in production), and a
        # reply left "sending" is checked against Twilio's log after 30 s (120 s)
        extra_env={"OUTREACH_SWEEP_AFTER": "5", "OUTREACH_SENDING_TIMEOUT": "30"},
    )
    try:
        stack.start()
        yield stack, twilio
    finally:
        stack.stop()
        twilio.stop()


async def deliver(client: httpx.AsyncClient, gateways: List[str], params: Dict[str, str], first: int) -> None:
    """Twilio's way: the webhook, and its fallback URL (the other gateway) if that one fails."""
    path = "/webhooks/twilio"
    headers = {
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + path, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    for attempt in range(20):
        url = gateways[(first + attempt) % len(gateways)]
        try:
            response = await client.post(url + path, content=urlencode(params), headers=headers)
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("no gateway took the message")


async def person(client: httpx.AsyncClient, gateways: List[str], n: int) -> None:
    rng = random.Random(n)
    await asyncio.sleep(n * 0.05)
    for index in range(MESSAGES_EACH):
        params = {
            "MessageSid": message_sid(n, index),
            "AccountSid": TWILIO_ACCOUNT,
            "From": phone(n),
            "To": TWILIO_NUMBER,
            "Body": TEXTS[(n + index) % len(TEXTS)],
            "NumMedia": "0",
        }
        await deliver(client, gateways, params, first=n + index)
        if index % 4 == 3:  # Twilio delivers some twice, to the other gateway
            await deliver(client, gateways, params, first=n + index + 1)
        await asyncio.sleep(rng.uniform(0.4, 1.0))


async def chaos(stack: ProductionStack) -> None:
    started = time.monotonic()
    for at, name in KILLS:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
        stack.kill(name)


def settled(url: str) -> bool:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(select(Message.direction, Message.status)).all()
    engine.dispose()
    inbound = [status for direction, status in rows if direction == "in"]
    outbound = [status for direction, status in rows if direction == "out"]
    return (
        len(inbound) == PEOPLE * MESSAGES_EACH
        and all(status == "done" for status in inbound)
        and all(status not in {"queued", "sending"} for status in outbound)
    )


async def test_two_of_each_with_one_of_each_killed_lose_nothing_double_nothing_and_keep_order(stack) -> None:
    stack, twilio = stack
    gateways = stack.gateway_urls()
    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(chaos(stack), *(person(client, gateways, n) for n in range(PEOPLE)))
    deadline = time.monotonic() + 300
    while not settled(stack.database_url):
        assert time.monotonic() < deadline, "messages still unanswered after 300 s"
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # nothing more may go out

    engine = create_engine(stack.database_url, future=True)
    with engine.connect() as connection:
        inbound = {
            row.id: row.provider_id
            for row in connection.execute(select(Message.id, Message.provider_id).where(Message.direction == "in"))
        }
        outbound = connection.execute(
            select(Message.id, Message.reply_to, Message.status, Message.provider_ref, Message.author).where(
                Message.direction == "out"
            )
        ).all()
    engine.dispose()

    # nothing lost: every message stored once (duplicates included), every one answered
    assert sorted(inbound.values()) == sorted(message_sid(n, i) for n in range(PEOPLE) for i in range(MESSAGES_EACH))
    answered = {row.reply_to for row in outbound if row.status == "sent"}
    assert answered == set(inbound)
    assert all(row.status == "sent" for row in outbound)
    # nothing doubled: Twilio got each reply once
    assert len(twilio.created) == len(outbound)
    assert sorted(m["sid"] for m in twilio.created) == sorted(row.provider_ref for row in outbound)
    # in order: each person's answers reached Twilio in the order of her messages
    position = {row.provider_ref: inbound[row.reply_to] for row in outbound}
    sequences: Dict[str, List[str]] = defaultdict(list)
    for created in twilio.created:
        sequences[created["to"]].append(position[created["sid"]])
    assert len(sequences) == PEOPLE
    for to, sids in sequences.items():
        assert sids == sorted(sids), f"answers out of order for person {to[-4:]}"
    # one of each was killed, and the others did the work
    for _at, name in KILLS:
        assert not stack.parts[name].alive()
    for name in ("router-2", "sender-2", "rasa-2", "gateway-2"):
        assert stack.parts[name].alive(), f"{name} died; see {stack.parts[name].log_path}"
    # and no process wrote a phone number or a text in its log
    logs = stack.logs()
    assert not any(phone(n)[3:] in logs for n in range(PEOPLE))
    assert not any(sample in logs for sample in TEXTS)


def test_a_killed_part_restarts_and_takes_its_share_again(stack) -> None:
    """The process manager's part: a killed router, sender, Rasa server and gateway start
    again with the same command and are ready."""
    stack, _twilio = stack
    for _at, name in KILLS:
        stack.restart(name)
        assert stack.parts[name].alive() and stack.parts[name].starts == 2
    assert all(Path(p.log_path).exists() for p in stack.parts.values())
