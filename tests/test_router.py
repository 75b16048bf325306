"""The router and sender workers on the real Redis and databases, with a stand-in Rasa:
every message answered once, in order, nothing lost when a notification, a worker or Rasa is."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from redis.asyncio import Redis

from bot import queues
from bot.channels.webchat import WebChatChannel
from bot.language import LanguageChooser
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.sender import Sender
from bot.store import SENT, ConversationRef, Store
from tests.fakes import FakeRasa
from tests.helpers import running
from tests.helpers import until as wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="session")
def chooser() -> LanguageChooser:
    return LanguageChooser(("fr", "en"), "fr")


def make_router(store: Store, redis: Redis, fake: FakeRasa, chooser: LanguageChooser, **options: object) -> Router:
    rasa = RasaClient("http://rasa.test", transport=fake.transport)
    defaults: dict = {"sweep_after": 30.0, "claim_idle_ms": 60_000, "rasa_retry_for": 0.2}
    defaults.update(options)
    return Router(store, redis, rasa, chooser, **defaults)


def bot_texts(store: Store, conversation: ConversationRef) -> List[str]:
    return [m.text for m in store.messages_after(conversation.id, 0) if m.author == "bot"]


async def post(store: Store, redis: Redis, conversation: ConversationRef, provider_id: str, text: str) -> int:
    message_id, created = store.record_inbound(conversation, provider_id, text)
    if created:
        await queues.notify_inbox(redis, conversation.id, message_id)
    return message_id


async def test_every_message_answered_once_and_in_order(store, redis, fake_rasa, chooser) -> None:
    a = store.open_conversation("webchat", "session-a-0123456789abcdef")
    b = store.open_conversation("webchat", "session-b-0123456789abcdef")
    router = make_router(store, redis, fake_rasa, chooser)
    async with running(router.run):
        for n in range(5):
            await post(store, redis, a, f"a{n}", f"bonjour {n}")
        await post(store, redis, b, "b0", "hello there my friend")
        await wait_for(lambda: len(bot_texts(store, a)) == 5 and len(bot_texts(store, b)) == 1)
        await asyncio.sleep(0.3)
    assert bot_texts(store, a) == [f"reply 0 to bonjour {n}" for n in range(5)]
    assert bot_texts(store, b) == ["reply 0 to hello there my friend"]
    assert [c["sender"] for c in fake_rasa.calls].count(a.public_id) == 5


async def test_repeated_notifications_do_not_repeat_answers(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-c-0123456789abcdef")
    message_id = await post(store, redis, conversation, "c0", "bonjour")
    for _ in range(3):
        await queues.notify_inbox(redis, conversation.id, message_id)
    router = make_router(store, redis, fake_rasa, chooser)
    async with running(router.run):
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
        await asyncio.sleep(0.5)
    assert bot_texts(store, conversation) == ["reply 0 to bonjour"]
    assert len(fake_rasa.calls) == 1


async def test_menu_digits_and_language_reach_rasa(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-d-0123456789abcdef")
    router = make_router(store, redis, fake_rasa, chooser)
    async with running(router.run):
        await post(store, redis, conversation, "d0", "hello")
        await post(store, redis, conversation, "d1", "2")
        await post(store, redis, conversation, "d2", "/restart")
        await wait_for(lambda: len(fake_rasa.calls) == 3)
    assert [(c["message"], c["metadata"]) for c in fake_rasa.calls] == [
        ("hello", {"language": "en"}),
        ('/choose_option{"option":"2"}', {"language": "en"}),
        ("restart", {"language": "en"}),
    ]
    assert store.conversation(conversation.id).language == "en"


async def test_rasa_down_messages_wait_then_get_answered(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-e-0123456789abcdef")
    fake_rasa.down = True
    router = make_router(store, redis, fake_rasa, chooser, sweep_after=0.5)
    async with running(router.run):
        await post(store, redis, conversation, "e0", "bonjour")
        await post(store, redis, conversation, "e1", "au secours")
        await asyncio.sleep(1.5)
        assert bot_texts(store, conversation) == []  # no error text is sent to the person
        fake_rasa.down = False
        await wait_for(lambda: len(bot_texts(store, conversation)) == 2)
        await asyncio.sleep(1.0)
    assert bot_texts(store, conversation) == ["reply 0 to bonjour", "reply 0 to au secours"]


async def test_lost_notification_is_swept(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-f-0123456789abcdef")
    store.record_inbound(conversation, "f0", "bonjour")  # stored, but Redis never told
    router = make_router(store, redis, fake_rasa, chooser, sweep_after=0.3)
    async with running(router.run):
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
    assert bot_texts(store, conversation) == ["reply 0 to bonjour"]


async def test_dead_workers_messages_are_claimed(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-g-0123456789abcdef")
    await queues.ensure_group(redis, queues.INBOX, queues.ROUTER_GROUP)
    await post(store, redis, conversation, "g0", "bonjour")
    # a worker reads the entry and dies before acknowledging it
    taken = await queues.read_group(redis, queues.INBOX, queues.ROUTER_GROUP, "dead-worker", 10, 100)
    assert len(taken) == 1
    router = make_router(store, redis, fake_rasa, chooser, claim_idle_ms=300)
    async with running(router.run):
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
        await wait_for(lambda: _pending(redis))
    assert bot_texts(store, conversation) == ["reply 0 to bonjour"]


async def _pending(redis: Redis) -> bool:
    summary = await redis.xpending(queues.INBOX, queues.ROUTER_GROUP)
    return summary["pending"] == 0


async def test_two_routers_share_the_work_without_doubles(store, redis, fake_rasa, chooser) -> None:
    conversations = [store.open_conversation("webchat", f"session-h{n}-0123456789abcdef") for n in range(4)]
    first = make_router(store, redis, fake_rasa, chooser, consumer="router-1")
    second = make_router(store, redis, fake_rasa, chooser, consumer="router-2")
    async with running(first.run, second.run):
        for round_ in range(3):
            for n, conversation in enumerate(conversations):
                await post(store, redis, conversation, f"h{n}-{round_}", f"message {round_}")
        await wait_for(lambda: all(len(bot_texts(store, c)) == 3 for c in conversations))
        await asyncio.sleep(0.3)
    for conversation in conversations:
        assert bot_texts(store, conversation) == [f"reply 0 to message {r}" for r in range(3)]


async def test_sender_delivers_once_and_wakes_readers(store, redis, fake_rasa, chooser) -> None:
    conversation = store.open_conversation("webchat", "session-i-0123456789abcdef")
    fake_rasa.replies_per_message = 2
    router = make_router(store, redis, fake_rasa, chooser)
    sender = Sender(store, redis, {"webchat": WebChatChannel()})
    pubsub = redis.pubsub()
    await pubsub.subscribe(queues.conversation_channel(conversation.id))
    async with running(router.run, sender.run):
        message_id = await post(store, redis, conversation, "i0", "bonjour")
        await wait_for(lambda: _all_sent(store, conversation, 2))
    outbound = [m for m in store.messages_after(conversation.id, message_id)]
    assert [m.text for m in outbound] == ["reply 0 to bonjour", "reply 1 to bonjour"]
    notices = []
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            notices.append(message["data"])
    assert notices and set(notices) == {"new"}
    await pubsub.close()


def _all_sent(store: Store, conversation: ConversationRef, count: int) -> bool:
    ids = [m.id for m in store.messages_after(conversation.id, 0) if m.author == "bot"]
    return len(ids) == count and all(store.outbound(i).status == SENT for i in ids)  # type: ignore[union-attr]


async def test_language_menu_and_explicit_choice(store, redis, fake_rasa, chooser) -> None:
    from bot.i18n import Catalogs
    from bot.language_menu import LanguageMenu

    catalogs = Catalogs(("fr", "en"))
    menu = LanguageMenu(("fr", "en"))
    conversation = store.open_conversation("webchat", "session-j-0123456789abcdef")
    router = make_router(store, redis, fake_rasa, chooser, language_menu=menu, catalogs=catalogs)
    async with running(router.run):
        await post(store, redis, conversation, "j0", "bonjour")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
        await post(store, redis, conversation, "j1", "Langue")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 2)
        assert (
            bot_texts(store, conversation)[1] == "Choisissez votre langue : écrivez son numéro.\n1 Français\n2 English"
        )
        await post(store, redis, conversation, "j2", "2")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 3)
        await post(store, redis, conversation, "j3", "2")  # the menu is over: a menu choice again
        await wait_for(lambda: len(bot_texts(store, conversation)) == 4)
        await post(store, redis, conversation, "j4", "français")  # a language's name alone
        await wait_for(lambda: len(bot_texts(store, conversation)) == 5)
    assert [(c["message"], c["metadata"]["language"]) for c in fake_rasa.calls] == [
        ("bonjour", "fr"),
        ("/greet", "en"),
        ('/choose_option{"option":"2"}', "en"),
        ("/greet", "fr"),
    ]
    assert store.conversation(conversation.id).language == "fr"


async def test_language_word_as_first_message_shows_the_menu_in_that_language(store, redis, fake_rasa, chooser) -> None:
    from bot.i18n import Catalogs
    from bot.language_menu import LanguageMenu

    catalogs = Catalogs(("fr", "en"))
    conversation = store.open_conversation("webchat", "session-k-0123456789abcdef")
    router = make_router(store, redis, fake_rasa, chooser, language_menu=LanguageMenu(("fr", "en")), catalogs=catalogs)
    async with running(router.run):
        await post(store, redis, conversation, "k0", "language?")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
    header = catalogs.translate("en", "language", "Choisissez votre langue : écrivez son numéro.")
    assert bot_texts(store, conversation) == [f"{header}\n1 Français\n2 English"]
    assert fake_rasa.calls == []
    assert store.conversation(conversation.id).language == "en"
