"""SMS through Twilio: recorded webhook requests in, the exact request the real twilio client
sends out, to a local fake of Twilio's API; signatures, duplicates, opt-out, failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import create_engine, select
from twilio.request_validator import RequestValidator

from bot import queues
from bot.channels.twilio_sms import MEDIA_NOTICE, TwilioChannel
from bot.discreet import Discretion
from bot.guard import DiscreetTexts, Guard
from bot.i18n import Catalogs
from bot.language import LanguageChooser
from bot.models import Contact, Message
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.safety import Safety
from bot.safety_texts import DISCREET_ON, ERASE_CONFIRM, ERASED, OFFER_PERSON
from bot.sender import Sender
from bot.settings import load_settings
from bot.store import Store, new_outbound
from tests.conftest import gateway_env
from tests.fake_twilio import FakeTwilio
from tests.fakes import FakeRasa
from tests.helpers import count_messages, gateway_client, running, until

PUBLIC = "https://bot.example.org"
TOKEN = "twilio-auth-token-for-tests"
ACCOUNT = "AC" + "1" * 32
NUMBER = "+33700000000"
WHATSAPP_NUMBER = "+33700000001"
PERSON = "+33612345678"


def signed(path: str, params: dict, token: str = TOKEN) -> dict:
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


def inbound(sid: str, body: str, **extra: str) -> dict:
    return {
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": PERSON,
        "To": NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def twilio_env(database_url: str, redis_url: str, tmp_path, twilio: FakeTwilio, **extra: str) -> dict:
    """A gateway's environment with the test Twilio number, whose API is the local fake."""
    return gateway_env(
        database_url,
        redis_url,
        tmp_path,
        OUTREACH_PUBLIC_URL=PUBLIC,
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM=NUMBER,
        TWILIO_API_BASE=twilio.url,
        OUTREACH_LANGUAGES="fr,en",
        **extra,
    )


@pytest.fixture
def settings(database_url: str, redis_clean: str, tmp_path, twilio: FakeTwilio):
    return load_settings(twilio_env(database_url, redis_clean, tmp_path, twilio, TWILIO_WHATSAPP_FROM=WHATSAPP_NUMBER))


@pytest.fixture
async def gateway(settings, fake_rasa: FakeRasa) -> AsyncIterator[tuple]:
    async with gateway_client(settings, fake_rasa) as served:
        yield served


@contextlib.asynccontextmanager
async def workers(
    services, fake_rasa: FakeRasa, settings, safety: bool = False, **sender_options
) -> AsyncIterator[TwilioChannel]:
    channel = TwilioChannel(settings.twilio, PUBLIC, services.store)
    catalogs = Catalogs(("fr", "en"))
    discretion = Discretion(("fr", "en"))
    guard = Guard(Safety(("fr", "en")), services.redis, catalogs, services.desk, discretion) if safety else None
    if safety:
        sender_options.setdefault("discreet_text", DiscreetTexts(discretion, catalogs))
    router = Router(
        services.store,
        services.redis,
        RasaClient("http://rasa.test", transport=fake_rasa.transport),
        LanguageChooser(("fr", "en"), "fr"),
        catalogs=catalogs,
        rasa_retry_for=0.2,
        desk=services.desk if safety else None,
        guard=guard,
    )
    options = {"retry_idle_ms": 300, "sweep_after": 60, "backoff_base": 0.2, "sweep_interval": 0.1, **sender_options}
    sender = Sender(services.store, services.redis, {"sms": channel, "whatsapp": channel}, **options)
    async with running(router.run, sender.run):
        yield  # the sender closes its channels


async def post(client: httpx.AsyncClient, path: str, params: dict, headers: dict) -> httpx.Response:
    return await client.post(path, content=urlencode(params), headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "forged"},
        "wrong-token",
        "other-url",
    ],
)
async def test_unsigned_or_forged_requests_are_refused_and_nothing_is_stored(gateway, settings, headers) -> None:
    client, _services = gateway
    params = inbound("SM1", "bonjour")
    if headers == "wrong-token":
        headers = signed("/webhooks/twilio", params, token="not-the-token")
    elif headers == "other-url":
        sig = RequestValidator(TOKEN).compute_signature("https://evil.example/webhooks/twilio", params)
        headers = {"X-Twilio-Signature": sig}
    headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = await post(client, "/webhooks/twilio", params, headers)
    assert response.status_code == 403
    assert count_messages(settings.database_url) == 0
    status = await post(client, "/webhooks/twilio/status", {"MessageSid": "SM1", "MessageStatus": "failed"}, headers)
    assert status.status_code == 403


@pytest.mark.parametrize("sid", ["SM\x00abc", "SM" + "a" * 200, "SM<b>", "SM 1"])
async def test_a_signed_request_whose_sid_is_not_twilios_is_refused_and_stores_nothing(gateway, settings, sid) -> None:
    """Found by tests/test_fuzz.py: PostgreSQL refused a NUL or a sid over the column's 128
    characters (a 500); SQLite stored them."""
    client, _services = gateway
    params = inbound(sid, "bonjour")
    response = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    assert response.status_code == 400
    assert count_messages(settings.database_url) == 0


async def test_a_delivery_report_with_garbage_is_acknowledged_and_changes_nothing(gateway, settings) -> None:
    """Found by tests/test_fuzz.py: a NUL in the sid or an error code over 32 characters was a
    500 on PostgreSQL. A sid unlike Twilio's is ignored; a bad error code is not recorded."""
    client, services = gateway
    store: Store = services.store
    conversation, _id, _created = store.receive("sms", PERSON, "SMf1", "bonjour")
    with store.sessions() as session:
        reply = new_outbound(store.vault, conversation.id, "sms", "bot", "reply", "fr")
        reply.status, reply.provider_ref = "sent", "SM" + "f" * 32
        session.add(reply)
        session.commit()
        reply_id = reply.id
    reports = [
        {"MessageSid": "SM\x00", "MessageStatus": "failed"},
        {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered", "ErrorCode": "3" * 40},
        {"MessageSid": "SM" + "f" * 32, "MessageStatus": "failed", "ErrorCode": "30003\x00"},
    ]
    for report in reports:
        response = await post(client, "/webhooks/twilio/status", report, signed("/webhooks/twilio/status", report))
        assert response.status_code == 204
    assert store.outbound(reply_id).status == "failed"
    engine = create_engine(settings.database_url, future=True)
    with engine.connect() as connection:
        assert connection.execute(select(Message.error_code).where(Message.id == reply_id)).scalar_one() is None
    engine.dispose()
    assert count_messages(settings.database_url) == 2


async def test_a_text_is_answered_once_through_the_real_twilio_client(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    params = inbound("SMaaa", "bonjour")
    first = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    retry = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    for response in (first, retry):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert count_messages(settings.database_url) == 1
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
        await asyncio.sleep(0.5)
    assert twilio.requests == [
        {
            "path": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
            "user": ACCOUNT,
            "form": {
                "To": PERSON,
                "From": NUMBER,
                "Body": "reply 0 to bonjour",
                "StatusCallback": f"{PUBLIC}/webhooks/twilio/status",
            },
        }
    ]
    assert len(fake_rasa.calls) == 1


async def test_stop_21610_stops_the_contact_until_she_writes_again(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    twilio.prepare_error(400, 21610)
    params = inbound("SMb1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
        store: Store = services.store
        conversation = store.find_conversation("sms", PERSON)
        await until(lambda: store.conversation(conversation.id).stopped)
        # she writes again: the opt-out is lifted and she is answered
        again = inbound("SMb2", "hello again")
        await post(client, "/webhooks/twilio", again, signed("/webhooks/twilio", again))
        await until(lambda: len(twilio.requests) == 2)
    assert not store.conversation(conversation.id).stopped
    assert twilio.requests[1]["form"]["Body"] == "reply 0 to hello again"


async def test_provider_errors_are_retried_then_delivered_once(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    twilio.prepare_error(500, 20500)
    twilio.prepare_error(429, 20429)
    params = inbound("SMc1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 3, timeout=30)
        await asyncio.sleep(1.0)
    assert [r["form"]["Body"] for r in twilio.requests] == ["reply 0 to bonjour"] * 3
    store: Store = services.store
    conversation = store.find_conversation("sms", PERSON)
    [reply] = [m for m in store.messages_after(conversation.id, 0) if m.author == "bot"]
    assert store.outbound(reply.id).status == "sent"


async def test_a_permanent_error_is_not_retried(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    twilio.prepare_error(400, 21211)  # invalid 'To' number
    params = inbound("SMd1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
        await asyncio.sleep(1.5)
    assert len(twilio.requests) == 1


async def test_delivery_reports_update_the_outbox(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    params = inbound("SMe1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
        await asyncio.sleep(0.3)
    store: Store = services.store
    conversation = store.find_conversation("sms", PERSON)
    [reply] = [m for m in store.messages_after(conversation.id, 0) if m.author == "bot"]
    [sid] = twilio.sids
    report = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": ACCOUNT}
    response = await post(client, "/webhooks/twilio/status", report, signed("/webhooks/twilio/status", report))
    assert response.status_code == 204
    assert store.outbound(reply.id).status == "delivered"
    report = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    await post(client, "/webhooks/twilio/status", report, signed("/webhooks/twilio/status", report))
    assert store.outbound(reply.id).status == "failed"
    assert store.conversation(conversation.id).stopped


async def test_media_is_not_stored_and_the_person_is_told(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    params = inbound(
        "SMf1", "", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1", MediaContentType0="image/jpeg"
    )
    response = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    assert response.status_code == 200
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
    assert twilio.requests[0]["form"]["Body"] == MEDIA_NOTICE
    assert fake_rasa.calls == []


async def test_no_phone_number_or_text_in_the_logs(gateway, settings, twilio, fake_rasa, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client, services = gateway
    twilio.prepare_error(500, 20500)
    params = inbound("SMg1", "mon prénom est Zorabelle")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 2, timeout=30)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "612345678" not in logged and "Zorabelle" not in logged and TOKEN not in logged


async def test_a_message_that_keeps_failing_becomes_a_dead_letter(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    for _ in range(3):
        twilio.prepare_error(503, 20503)
    params = inbound("SMh1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings, max_attempts=3):
        await until(lambda: len(twilio.requests) == 3, timeout=30)
        await asyncio.sleep(1.0)
    assert len(twilio.requests) == 3  # no fourth try
    store: Store = services.store
    conversation = store.find_conversation("sms", PERSON)
    bot_rows = [m for m in store.messages_after(conversation.id, 0) if m.author == "bot"]
    assert bot_rows == []  # a dead letter is not shown as sent
    engine = create_engine(settings.database_url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Message.status, Message.attempts, Message.error_code).where(Message.direction == "out")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("dead", 3, "http_503")]


async def test_whatsapp_uses_the_same_webhook_and_answers_from_the_whatsapp_sender(
    gateway, settings, twilio, fake_rasa
) -> None:
    client, services = gateway
    params = inbound("SMw1", "hello", From=f"whatsapp:{PERSON}", To=f"whatsapp:{WHATSAPP_NUMBER}", ProfileName="Zora")
    response = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    assert response.status_code == 200
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 1)
    assert twilio.requests[0]["form"] == {
        "To": f"whatsapp:{PERSON}",
        "From": f"whatsapp:{WHATSAPP_NUMBER}",
        "Body": "reply 0 to hello",
        "StatusCallback": f"{PUBLIC}/webhooks/twilio/status",
    }
    store: Store = services.store
    assert store.find_conversation("whatsapp", f"whatsapp:{PERSON}") is not None
    assert store.find_conversation("sms", PERSON) is None  # her SMS and WhatsApp are two contacts
    [sid] = twilio.sids
    report = {"MessageSid": sid, "MessageStatus": "delivered"}
    await post(client, "/webhooks/twilio/status", report, signed("/webhooks/twilio/status", report))
    conversation = store.find_conversation("whatsapp", f"whatsapp:{PERSON}")
    [reply] = [m for m in store.messages_after(conversation.id, 0) if m.author == "bot"]
    assert store.outbound(reply.id).status == "delivered"


async def test_the_texts_of_one_answer_go_out_in_order_even_when_one_is_retried(
    gateway, settings, twilio, fake_rasa
) -> None:
    client, services = gateway
    fake_rasa.replies_per_message = 3
    params = inbound("SMo1", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    twilio.prepare(201, {"sid": "SM" + "0" * 31 + "9", "status": "queued"})  # the first one goes
    twilio.prepare_error(503, 20503)  # the second fails once
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(twilio.requests) == 4, timeout=30)
        await asyncio.sleep(1.0)
    assert [r["form"]["Body"] for r in twilio.requests] == [
        "reply 0 to bonjour",
        "reply 1 to bonjour",
        "reply 1 to bonjour",
        "reply 2 to bonjour",
    ]


async def test_whatsapp_replies_come_from_a_whatsapp_sender_without_a_dedicated_setting(settings) -> None:
    from dataclasses import replace

    plain = replace(settings.twilio, whatsapp_sender=None)
    channel = TwilioChannel(plain, PUBLIC, None)  # type: ignore[arg-type]
    service = TwilioChannel(replace(plain, sender="MG" + "0" * 32), PUBLIC, None)  # type: ignore[arg-type]
    try:
        assert channel._whatsapp_sender == {"from_": f"whatsapp:{NUMBER}"}
        assert service._whatsapp_sender == {"messaging_service_sid": "MG" + "0" * 32}
    finally:
        await channel.close()
        await service.close()


async def test_danger_by_sms_gets_the_emergency_answer_first(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    catalogs = Catalogs(("fr", "en"))
    params = inbound("SMd1", "jsuis enfermée il a un couteau")
    assert (await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))).status_code == 200
    async with workers(services, fake_rasa, settings, safety=True):
        await until(lambda: len(twilio.requests) == 2)
        await asyncio.sleep(0.5)
    bodies = [r["form"]["Body"] for r in twilio.requests]
    assert bodies == [
        catalogs.render("utter_danger", "fr"),
        catalogs.translate("fr", "safety_offer_person", OFFER_PERSON),
    ]
    assert fake_rasa.calls == []  # the model was not asked


async def test_a_minor_by_sms_in_english_gets_119_in_english(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    params = inbound("SMm1", "hello im 15 years old and i need help")
    assert (await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))).status_code == 200
    async with workers(services, fake_rasa, settings, safety=True):
        await until(lambda: len(twilio.requests) == 1)
        await asyncio.sleep(0.5)
    assert [r["form"]["Body"] for r in twilio.requests] == [Catalogs(("fr", "en")).render("utter_minor", "en")]


async def test_erasure_by_sms_confirms_then_forgets_her_number(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    catalogs = Catalogs(("fr", "en"))
    async with workers(services, fake_rasa, settings, safety=True):
        for sid, text in (("SMe1", "bonjour"), ("SMe2", "EFFACER")):
            params = inbound(sid, text)
            await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
            await until(lambda n=len(twilio.requests): len(twilio.requests) == n + 1)
        params = inbound("SMe3", "oui")
        await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
        await until(lambda: len(twilio.requests) == 3)
        await asyncio.sleep(0.5)
    bodies = [r["form"]["Body"] for r in twilio.requests]
    assert bodies[1] == catalogs.translate("fr", "safety_erase_confirm", ERASE_CONFIRM)
    assert bodies[2].startswith(catalogs.translate("fr", "safety_erased", ERASED))
    assert all(r["form"]["To"] == PERSON for r in twilio.requests)
    assert services.store.find_conversation("sms", PERSON) is None
    with services.store.sessions() as session:
        contacts = session.execute(select(Contact)).scalars().all()
        assert [(c.erased_at is not None, c.address_enc) for c in contacts] == [(True, None)]
        assert [m.direction for m in session.execute(select(Message)).scalars()] == ["out"]


async def test_discreet_mode_by_sms_neutral_texts_and_nothing_after_her_silence(
    gateway, settings, twilio, fake_rasa
) -> None:
    client, services = gateway
    catalogs, discretion = Catalogs(("fr", "en")), Discretion(("fr", "en"))
    law = catalogs.render("utter_law", "fr")

    async def sms(sid: str, text: str, expected: int) -> None:
        params = inbound(sid, text)
        assert (await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))).status_code == 200
        await until(lambda: len(twilio.requests) == expected)

    async with workers(services, fake_rasa, settings, safety=True, discreet_silence=timedelta(seconds=2)):
        await sms("SMq0", "bonjour", 1)  # a French conversation
        await sms("SMq1", "METEO", 2)
        fake_rasa.reply_text = law
        await sms("SMq2", "c'est légal de vendre ?", 3)
        # a staff reply written after her silence waits until she writes again
        await asyncio.sleep(2.5)
        conversation = services.store.find_conversation("sms", PERSON)
        with services.store.sessions() as session:
            row = new_outbound(services.store.vault, conversation.id, "sms", "staff", "Bonjour, je suis là.", "fr")
            session.add(row)
            session.commit()
            held = int(row.id)
        await queues.notify_outbox(services.redis, held)
        await asyncio.sleep(1.5)
        assert len(twilio.requests) == 3
        fake_rasa.reply_text = None
        await sms("SMq3", "merci", 5)
        await asyncio.sleep(0.5)
    bodies = [r["form"]["Body"] for r in twilio.requests][1:]
    assert bodies[0] == catalogs.translate("fr", "discreet_on", DISCREET_ON)
    assert bodies[1] == discretion.discreet(law, "fr") and bodies[1] != law
    assert bodies[2:] == ["Bonjour, je suis là.", "reply 0 to merci"]  # kept back, then in order
    assert all(discretion.sensitive_in(body) == [] for body in bodies)


async def _left_sending(services, conversation_id: int, text: str, reach_twilio: bool, settings) -> int:
    """A staff reply whose sender died while sending it: claimed (``sending``), perhaps sent to
    Twilio, never marked; then the sweep finds it left ``sending`` and queues it again."""
    with services.store.sessions() as session:
        row = new_outbound(services.store.vault, conversation_id, "sms", "staff", text, "fr")
        session.add(row)
        session.commit()
        message_id = int(row.id)
    claimed = services.store.claim_outbound(message_id)
    assert claimed is not None
    if reach_twilio:
        channel = TwilioChannel(settings.twilio, PUBLIC, services.store)
        await channel.send(claimed, claimed.conversation)
        await channel.close()
    services.store.stale_outbound(timedelta(hours=1), sending_for=timedelta(0))
    return message_id


async def test_a_reply_whose_sender_died_after_twilio_took_it_is_not_sent_twice(
    gateway, settings, twilio, fake_rasa
) -> None:
    client, services = gateway
    assert (
        await post(
            client,
            "/webhooks/twilio",
            inbound("SMd1", "bonjour"),
            signed("/webhooks/twilio", inbound("SMd1", "bonjour")),
        )
    ).status_code == 200
    async with workers(services, fake_rasa, settings):
        await until(lambda: count_sent(settings.database_url) == 1)
        conversation = services.store.find_conversation("sms", PERSON)
        gone = await _left_sending(services, conversation.id, "Je suis là.", True, settings)
        await queues.notify_outbox(services.redis, gone)
        await until(lambda: count_sent(settings.database_url) == 2)
        never = await _left_sending(services, conversation.id, "Je suis là.", False, settings)
        await queues.notify_outbox(services.redis, never)
        await until(lambda: count_sent(settings.database_url) == 3)
    bodies = [r["form"]["Body"] for r in twilio.requests]
    # the first went through before its sender died: found in Twilio's log, not sent again;
    # the second, with the same words, never reached Twilio: the first's SID is not taken for it
    assert bodies == ["reply 0 to bonjour", "Je suis là.", "Je suis là."]
    assert [lookup["To"] for lookup in twilio.lookups] == [PERSON, PERSON]
    engine = create_engine(settings.database_url, future=True)
    with engine.connect() as connection:
        refs = dict(
            connection.execute(select(Message.id, Message.provider_ref).where(Message.id.in_([gone, never]))).all()
        )
    engine.dispose()
    assert refs == {gone: twilio.sids[1], never: twilio.sids[2]}


async def test_when_twilio_s_log_cannot_be_read_nothing_is_sent_blind(gateway, settings, twilio, fake_rasa) -> None:
    client, services = gateway
    params = inbound("SMd2", "bonjour")
    await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
    async with workers(services, fake_rasa, settings):
        await until(lambda: count_sent(settings.database_url) == 1)
        conversation = services.store.find_conversation("sms", PERSON)
        twilio.lookups_fail = 2
        left = await _left_sending(services, conversation.id, "Je suis là.", True, settings)
        await queues.notify_outbox(services.redis, left)
        await until(lambda: count_sent(settings.database_url) == 2)
    assert len(twilio.requests) == 2 and len(twilio.lookups) == 3  # two failed look-ups, then found


def count_sent(url: str) -> int:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        sent = connection.execute(select(Message.id).where(Message.direction == "out", Message.status == "sent")).all()
    engine.dispose()
    return len(sent)
