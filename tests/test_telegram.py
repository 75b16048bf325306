"""Telegram: recorded updates in (webhook and long polling), the exact Bot API call that
python-telegram-bot's real ``Bot`` makes out, to a local fake of the Bot API; secret token,
duplicates, media, groups and edits, blocking, flood, retries."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select

from bot.app import build_services
from bot.channels.telegram import (
    TelegramChannel,
    TelegramPoller,
    delete_webhook,
    handle_update,
    set_webhook,
    webhook_info,
)
from bot.guard import Guard
from bot.i18n import Catalogs
from bot.language import LanguageChooser
from bot.logs import quiet_third_parties
from bot.models import Message
from bot.notices import FLOOD_NOTICE, MEDIA_NOTICE
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.safety import Safety
from bot.safety_texts import OFFER_PERSON
from bot.sender import Sender
from bot.settings import SettingsError, load_settings
from bot.store import Store
from bot.text import split_message
from tests.conftest import gateway_env
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.fakes import FakeRasa
from tests.helpers import count_messages, gateway_client, running, until

PUBLIC = "https://bot.example.org"
SECRET = "telegram-secret-token-for-tests_0123"
PERSON = 5012345678
DATA = Path(__file__).parent / "data" / "telegram"


def recorded(name: str, **changes: Any) -> Dict[str, Any]:
    update = json.loads((DATA / f"{name}.json").read_text())
    for key, value in changes.items():
        update[key] = value
    return update


def text_update(update_id: int, text: str, chat: int = PERSON, language: str = "fr") -> Dict[str, Any]:
    update = copy.deepcopy(recorded("text"))
    update["update_id"] = update_id
    update["message"].update(message_id=update_id % 100000, text=text)
    update["message"]["chat"]["id"] = chat
    update["message"]["from"].update(id=chat, language_code=language)
    return update


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def telegram(fake_telegram: FakeTelegram) -> FakeTelegram:
    fake_telegram.reset()
    return fake_telegram


def telegram_env(database_url: str, redis_url: str, tmp_path: Path, fake: FakeTelegram, **extra: str) -> dict:
    options = {
        "OUTREACH_PUBLIC_URL": PUBLIC,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": fake.url,
        "OUTREACH_LANGUAGES": "fr,en,ru",
        **extra,
    }
    return gateway_env(database_url, redis_url, tmp_path, **options)


@pytest.fixture
def settings(database_url: str, redis_clean: str, tmp_path, telegram: FakeTelegram):
    return load_settings(telegram_env(database_url, redis_clean, tmp_path, telegram))


@pytest.fixture
async def gateway(settings, fake_rasa: FakeRasa) -> AsyncIterator[tuple]:
    async with gateway_client(settings, fake_rasa) as served:
        yield served


async def deliver(client: httpx.AsyncClient, update: Dict[str, Any], secret: str = SECRET) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    return await client.post("/webhooks/telegram", json=update, headers=headers)


@contextlib.asynccontextmanager
async def workers(
    services, fake_rasa: FakeRasa, settings, safety: bool = False, **sender_options
) -> AsyncIterator[None]:
    catalogs = Catalogs(("fr", "en", "ru"))
    router = Router(
        services.store,
        services.redis,
        RasaClient("http://rasa.test", transport=fake_rasa.transport),
        LanguageChooser(("fr", "en", "ru"), "fr"),
        catalogs=catalogs,
        rasa_retry_for=0.2,
        desk=services.desk if safety else None,
        guard=Guard(Safety(("fr", "en", "ru")), services.redis, catalogs, services.desk) if safety else None,
    )
    options = {"retry_idle_ms": 300, "sweep_after": 60, "backoff_base": 0.2, "sweep_interval": 0.1, **sender_options}
    sender = Sender(
        services.store, services.redis, {"telegram": TelegramChannel(settings.telegram, services.store)}, **options
    )
    async with running(router.run, sender.run):
        yield


def outbox_rows(url: str) -> list:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Message.status, Message.attempts, Message.error_code).where(Message.direction == "out")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


# -- webhook ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "wrong-secret-0123456789", SECRET[:-1], SECRET + "x"])
async def test_a_missing_or_wrong_secret_token_is_refused_and_nothing_is_stored(gateway, settings, secret) -> None:
    client, _services = gateway
    response = await deliver(client, recorded("text"), secret=secret)
    assert response.status_code == 403
    assert count_messages(settings.database_url) == 0


async def test_a_text_is_answered_once_through_the_real_bot(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    first = await deliver(client, recorded("text"))
    retry = await deliver(client, recorded("text"))  # Telegram delivers the same update again
    assert first.status_code == retry.status_code == 200
    assert first.json() == {"ok": True, "outcome": "stored"}
    assert retry.json() == {"ok": True, "outcome": "duplicate"}
    assert count_messages(settings.database_url) == 1
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
        await asyncio.sleep(0.5)
    assert telegram.calls == [
        {"method": "sendMessage", "params": {"chat_id": str(PERSON), "text": "reply 0 to bonjour"}}
    ]
    assert len(fake_rasa.calls) == 1
    assert fake_rasa.calls[0]["metadata"] == {"language": "fr"}


async def test_start_is_the_welcome_in_her_telegram_language(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    response = await deliver(client, recorded("start_ru"))
    assert response.json()["outcome"] == "stored"
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
    assert fake_rasa.calls[0]["message"] == "/greet"
    assert fake_rasa.calls[0]["metadata"] == {"language": "ru"}


@pytest.mark.parametrize("name", ["voice", "sticker"])
async def test_media_is_not_stored_and_she_is_told(gateway, settings, telegram, fake_rasa, name) -> None:
    client, services = gateway
    response = await deliver(client, recorded(name))
    assert response.json()["outcome"] == "media"
    engine = create_engine(settings.database_url, future=True)
    with engine.connect() as connection:
        kinds = connection.execute(select(Message.kind, Message.provider_id)).all()
    engine.dispose()
    assert [tuple(k) for k in kinds] == [("media", f"123456789:{recorded(name)['update_id']}:media")]
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
    assert telegram.sent() == [{"chat_id": str(PERSON), "text": MEDIA_NOTICE}]
    assert fake_rasa.calls == []


@pytest.mark.parametrize("name", ["edited", "group", "channel_post", "callback_query"])
async def test_edits_groups_channels_and_buttons_are_acknowledged_and_ignored(gateway, settings, name) -> None:
    client, _services = gateway
    response = await deliver(client, recorded(name))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "outcome": "ignored"}
    assert count_messages(settings.database_url) == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"update_id": "x"}', b'{"update_id": 5, "message": {"chat": 3}}', "\u202e".encode()],
)
async def test_malformed_updates_never_crash_and_store_nothing(gateway, settings, body) -> None:
    client, _services = gateway
    response = await client.post(
        "/webhooks/telegram", content=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code in {200, 400}
    assert count_messages(settings.database_url) == 0


def _odd(update_id: int, **changes: Any) -> Dict[str, Any]:
    update = text_update(update_id, "bonjour")
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = update
        for step in parents:
            node = node[step]
        node[last] = value
    return update


@pytest.mark.parametrize(
    ("update", "outcome", "stored"),
    [
        # python-telegram-bot checks no types: each of these was a 500 (found by tests/test_fuzz.py)
        (_odd(910001, message__text=12), "ignored", 0),
        (_odd(910002, message__text={"a": 1}), "ignored", 0),
        (_odd(910003, message__text=None, message__caption=["x"]), "ignored", 0),
        (_odd(910004, message__from__language_code=7), "stored", 1),
        (_odd(910005, message__chat__id="\ud800"), "ignored", 0),  # could not be hashed
        (_odd(910006, message__chat__id="5012345678"), "ignored", 0),
        (_odd(910007, message__text="a\ud800b"), "stored", 1),  # a lone surrogate: U+FFFD
        (_odd(10**30), "ignored", 0),  # over the provider id column on PostgreSQL
        (_odd(910008, message__chat__id=True), "ignored", 0),
    ],
)
async def test_updates_with_unexpected_types_are_ignored_or_stored_never_a_crash(
    gateway, settings, update, outcome, stored
) -> None:
    client, _services = gateway
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    response = await client.post("/webhooks/telegram", content=json.dumps(update).encode(), headers=headers)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "outcome": outcome}
    assert count_messages(settings.database_url) == stored


async def test_json_nested_too_deep_is_refused_not_a_crash(gateway, settings) -> None:
    """Found by tests/test_fuzz.py: json.loads raised RecursionError, a 500."""
    client, _services = gateway
    body = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        "/webhooks/telegram", content=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code == 400
    assert count_messages(settings.database_url) == 0


async def test_html_and_any_unicode_are_kept_as_plain_text(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    text = "<script>alert(1)</script> 你好 مرحبا 🙂 \u0000 e\u0301"
    await deliver(client, text_update(900001, text))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
    assert fake_rasa.calls[0]["message"] == "<script>alert(1)</script> 你好 مرحبا 🙂   é"
    assert telegram.sent()[0]["text"] == "reply 0 to <script>alert(1)</script> 你好 مرحبا 🙂   é"
    assert "parse_mode" not in telegram.sent()[0]  # sent as plain text, never parsed as HTML


async def test_a_long_text_is_cut_to_the_configured_length(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    await deliver(client, text_update(900002, "a" * 4096))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
    assert fake_rasa.calls[0]["message"] == "a" * settings.max_text_length


def test_replies_over_4096_characters_are_split_at_line_breaks() -> None:
    text = "\n".join(f"ligne {n} " + "x" * 90 for n in range(100))
    parts = split_message(text, 4096)
    assert all(len(part) <= 4096 for part in parts)
    assert "\n".join(parts) == text
    assert split_message("y" * 5000, 4096) == ["y" * 4096, "y" * 904]
    assert split_message("court", 4096) == ["court"]


async def test_a_long_reply_goes_out_in_several_messages(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    paragraphs = [f"Paragraphe {n} : " + "é" * 80 for n in range(60)]
    fake_rasa.reply_text = "\n".join(paragraphs)  # 5,600 characters
    await deliver(client, recorded("text"))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 2)
        await until(lambda: outbox_rows(settings.database_url) == [("sent", 1, None), ("sent", 1, None)])
    texts = [call["text"] for call in telegram.sent()]
    assert len(texts) == 2 and all(len(t) <= 4096 for t in texts)
    assert "\n".join(texts) == fake_rasa.reply_text
    assert outbox_rows(settings.database_url) == [("sent", 1, None), ("sent", 1, None)]  # one row per part


async def test_a_failed_part_of_a_long_reply_is_retried_alone(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    fake_rasa.reply_text = "\n".join(f"Paragraphe {n} : " + "é" * 80 for n in range(60))
    await deliver(client, recorded("text"))
    sent_first = asyncio.Event()

    original = telegram._result

    async def first_ok_then_fail_once(method, params):
        if method == "sendMessage" and len(telegram.sent()) == 1 and not sent_first.is_set():
            sent_first.set()
            telegram.prepare("sendMessage", 502, "Bad Gateway")  # the second part fails once
        return await original(method, params)

    telegram._result = first_ok_then_fail_once  # type: ignore[method-assign]
    try:
        async with workers(services, fake_rasa, settings):
            await until(lambda: len(telegram.sent()) == 3, timeout=30)
            await asyncio.sleep(1.0)
    finally:
        telegram._result = original  # type: ignore[method-assign]
    texts = [call["text"] for call in telegram.sent()]
    assert texts[1] == texts[2] and texts[0] != texts[1]  # only the failed part went again
    assert "\n".join([texts[0], texts[2]]) == fake_rasa.reply_text


async def test_a_caption_is_read_and_the_photo_is_not(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    response = await deliver(client, recorded("photo"))  # a photo captioned "regarde"
    assert response.json()["outcome"] == "stored"
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 2)
    assert [call["text"] for call in telegram.sent()] == ["reply 0 to regarde", MEDIA_NOTICE]


async def test_service_messages_are_ignored(gateway, settings) -> None:
    client, _services = gateway
    update = recorded("text")
    del update["message"]["text"]
    update["message"]["pinned_message"] = {"message_id": 40, "date": 1795430000, "chat": update["message"]["chat"]}
    assert (await deliver(client, update)).json()["outcome"] == "ignored"
    assert count_messages(settings.database_url) == 0


# -- outbound failures --------------------------------------------------------------------


async def test_retry_after_and_server_errors_are_retried_then_delivered_once(
    gateway, settings, telegram, fake_rasa
) -> None:
    client, services = gateway
    telegram.prepare("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    telegram.prepare("sendMessage", 502, "Bad Gateway")
    await deliver(client, recorded("text"))
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 3, timeout=30)
        await until(lambda: outbox_rows(settings.database_url) == [("sent", 3, "network")])
        await asyncio.sleep(0.5)  # and nothing more goes
    assert telegram.sent() == [{"chat_id": str(PERSON), "text": "reply 0 to bonjour"}] * 3
    assert outbox_rows(settings.database_url) == [("sent", 3, "network")]


async def test_blocked_by_the_user_stops_the_contact_until_she_writes_again(
    gateway, settings, telegram, fake_rasa
) -> None:
    client, services = gateway
    telegram.prepare("sendMessage", 403, "Forbidden: bot was blocked by the user")
    await deliver(client, recorded("text"))
    store: Store = services.store
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 1)
        conversation = store.find_conversation("telegram", str(PERSON))
        await until(lambda: store.conversation(conversation.id).stopped)
        await deliver(client, text_update(734009999, "re bonjour"))
        await until(lambda: len(telegram.sent()) == 2)
        # the sender records the send just after Telegram answered
        await until(lambda: [row[0] for row in outbox_rows(settings.database_url)] == ["failed", "sent"])
    assert not store.conversation(conversation.id).stopped
    assert telegram.sent()[1]["text"] == "reply 0 to re bonjour"


async def test_blocking_and_unblocking_the_bot_is_followed(gateway, settings, telegram) -> None:
    client, services = gateway
    store: Store = services.store
    assert (await deliver(client, recorded("blocked"))).json()["outcome"] == "ignored"  # unknown contact
    await deliver(client, recorded("text"))
    conversation = store.find_conversation("telegram", str(PERSON))
    assert (await deliver(client, recorded("blocked"))).json()["outcome"] == "stopped"
    assert store.conversation(conversation.id).stopped
    assert (await deliver(client, recorded("unblocked"))).json()["outcome"] == "unstopped"
    assert not store.conversation(conversation.id).stopped


async def test_a_bad_request_is_not_retried(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    telegram.prepare("sendMessage", 400, "Bad Request: chat not found")
    await deliver(client, recorded("text"))
    async with workers(services, fake_rasa, settings):
        await until(lambda: outbox_rows(settings.database_url) == [("failed", 1, "bad_request")])
        await asyncio.sleep(1.0)  # and it is not tried again
    assert len(telegram.sent()) == 1
    assert outbox_rows(settings.database_url) == [("failed", 1, "bad_request")]


async def test_a_reply_that_keeps_failing_becomes_a_dead_letter(gateway, settings, telegram, fake_rasa) -> None:
    client, services = gateway
    for _ in range(3):
        telegram.prepare("sendMessage", 500, "Internal Server Error")
    await deliver(client, recorded("text"))
    async with workers(services, fake_rasa, settings, max_attempts=3):
        await until(lambda: outbox_rows(settings.database_url) == [("dead", 3, "network")], timeout=30)
    assert len(telegram.sent()) == 3


# -- flood ----------------------------------------------------------------------------------


async def test_a_flood_is_answered_once_then_dropped(database_url, redis_clean, tmp_path, telegram, fake_rasa) -> None:
    settings = load_settings(telegram_env(database_url, redis_clean, tmp_path, telegram, OUTREACH_FLOOD_PER_MINUTE="3"))
    while time.time() % 60 > 55:  # the one-minute window must not turn during the test
        await asyncio.sleep(0.5)
    async with gateway_client(settings, fake_rasa) as (client, services):
        # Telegram delivering the same update again and again is not a flood
        redelivered = [(await deliver(client, text_update(799999, "une fois"))).json()["outcome"] for _ in range(5)]
        assert redelivered == ["stored"] + ["duplicate"] * 4
        outcomes = [
            (await deliver(client, text_update(800000 + n, f"message {n}"))).json()["outcome"] for n in range(6)
        ]
        other = await deliver(client, text_update(800100, "bonjour", chat=PERSON + 1))
        assert outcomes == ["stored"] * 2 + ["flood"] * 4
        assert other.json()["outcome"] == "stored"  # another person is not slowed down
        async with workers(services, fake_rasa, settings):
            await until(lambda: len(telegram.sent()) == 5)
            await asyncio.sleep(0.5)
    texts = [call["text"] for call in telegram.sent() if call["chat_id"] == str(PERSON)]
    assert texts == ["reply 0 to une fois", "reply 0 to message 0", "reply 0 to message 1", FLOOD_NOTICE]
    assert count_messages(settings.database_url) == 5 + 5  # 4 + 1 inbound, as many replies


# -- long polling and webhook registration ------------------------------------------------


async def test_long_polling_stores_each_update_once_and_moves_the_offset(
    database_url, redis_clean, tmp_path, telegram, fake_rasa
) -> None:
    settings = load_settings(
        telegram_env(database_url, redis_clean, tmp_path, telegram, TELEGRAM_MODE="polling", OUTREACH_PUBLIC_URL="")
    )
    assert settings.telegram.mode == "polling"
    services = build_services(settings)
    unreadable = {"update_id": 734001202, "message": {"message_id": 1, "chat": "not a chat"}}
    telegram.updates += [recorded("text"), unreadable, recorded("voice"), recorded("group")]
    poller = TelegramPoller(services, timeout=1)
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: poller.offset == 734001207 + 1)
        telegram.updates.append(text_update(734001300, "encore"))
        # the offset moves when the update is stored; Telegram forgets it at the next call
        await until(lambda: poller.offset == 734001301 and telegram.updates == [])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        services.close_sync()
        await services.redis.close()
    assert count_messages(settings.database_url) == 3  # text, voice notice request, "encore"
    assert telegram.updates == []


async def test_the_webhook_is_registered_with_its_secret_and_removed(settings, telegram) -> None:
    url = await set_webhook(settings.telegram, PUBLIC)
    assert url == f"{PUBLIC}/webhooks/telegram"
    [call] = [c for c in telegram.calls if c["method"] == "setWebhook"]
    assert call["params"]["url"] == url
    assert call["params"]["secret_token"] == SECRET
    assert json.loads(call["params"]["allowed_updates"]) == ["message", "edited_message", "my_chat_member"]
    info = await webhook_info(settings.telegram)
    assert info["url"] == url
    await delete_webhook(settings.telegram)
    assert (await webhook_info(settings.telegram))["url"] == "(none: polling)"


def test_settings_are_validated_without_echoing_secrets(database_url, redis_clean, tmp_path, telegram) -> None:
    base = telegram_env(database_url, redis_clean, tmp_path, telegram)
    for change, expected in [
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_WEBHOOK_SECRET": ""}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"TELEGRAM_WEBHOOK_SECRET": "short"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"OUTREACH_PUBLIC_URL": "", "TELEGRAM_MODE": "webhook"}, "OUTREACH_PUBLIC_URL"),
        ({"TELEGRAM_MODE": "push"}, "TELEGRAM_MODE"),
        ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN"),
    ]:
        with pytest.raises(SettingsError) as caught:
            load_settings({**base, **change})
        assert expected in str(caught.value)
        assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)
    assert TOKEN not in repr(load_settings(base))


async def test_no_chat_id_text_or_token_in_the_logs(gateway, settings, telegram, fake_rasa, caplog) -> None:
    quiet_third_parties()  # as every process of ours starts
    caplog.set_level(logging.DEBUG)
    client, services = gateway
    telegram.prepare("sendMessage", 500, "Internal Server Error")
    await deliver(client, text_update(700001, "je m'appelle Zorabelle"))
    await deliver(client, recorded("text"), secret="forged-secret-0123456789")
    async with workers(services, fake_rasa, settings):
        await until(lambda: len(telegram.sent()) == 2, timeout=30)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (str(PERSON), "Zorabelle", TOKEN, TOKEN.split(":")[1], SECRET):
        assert secret not in logged


async def test_handle_update_is_idempotent_between_webhook_and_polling(gateway, settings) -> None:
    _client, services = gateway
    from telegram import Update

    update = Update.de_json(recorded("text"), None)
    assert await handle_update(services, update) == "stored"
    assert await handle_update(services, update) == "duplicate"


def test_the_telegram_command_registers_shows_and_removes_the_webhook(
    database_url, redis_clean, tmp_path, telegram
) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, **telegram_env(database_url, redis_clean, tmp_path, telegram)}

    def command(action: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", "telegram", action], env=env, capture_output=True, text=True, timeout=60
        )

    done = command("set-webhook")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"webhook set: Telegram now sends updates to {PUBLIC}/webhooks/telegram with the secret token"
    )
    assert telegram.webhook["url"] == f"{PUBLIC}/webhooks/telegram"
    shown = command("info")
    assert f"url: {PUBLIC}/webhooks/telegram" in shown.stdout
    assert command("delete-webhook").returncode == 0
    assert telegram.webhook == {}
    for output in (done, shown):
        assert TOKEN not in output.stdout + output.stderr and SECRET not in output.stdout + output.stderr
    telegram.prepare("getMe", 401, "Unauthorized")
    refused = command("info")
    assert refused.returncode == 1 and refused.stderr.strip() == "Telegram refused: InvalidToken"


async def test_danger_on_telegram_in_russian_gets_the_emergency_answer_first(
    gateway, settings, telegram, fake_rasa
) -> None:
    client, services = gateway
    catalogs = Catalogs(("fr", "en", "ru"))
    await deliver(client, text_update(7001, "помогите он меня бьёт", language="ru"))
    async with workers(services, fake_rasa, settings, safety=True):
        await until(lambda: len(telegram.sent()) == 2)
        await asyncio.sleep(0.5)
    texts = [call["params"]["text"] for call in telegram.calls if call["method"] == "sendMessage"]
    assert texts == [
        catalogs.render("utter_danger", "ru"),
        catalogs.translate("ru", "safety_offer_person", OFFER_PERSON),
    ]
    assert fake_rasa.calls == []
