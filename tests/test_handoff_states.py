"""Requests for a person: states, guarded transitions, the bot silent while a human holds the
conversation, staff replies through the person's channel (real databases and Redis)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot import queues
from bot.channels.webchat import WebChatChannel
from bot.handoff.states import CLAIMED, HandoffStore
from bot.sender import Sender
from tests.helpers import running
from tests.helpers import until as wait_for
from tests.test_router import bot_texts, make_router, post

ASSOCIATION = "exemple-paris"


@pytest.fixture
def handoffs(store, vault) -> HandoffStore:
    return HandoffStore(store.sessions, vault)


@pytest.fixture(scope="module")
def chooser():
    from bot.language import LanguageChooser

    return LanguageChooser(("fr", "en"), "fr")


def test_a_request_is_opened_once_and_queued_urgent_first(store, handoffs) -> None:
    first = store.open_conversation("webchat", "session-h1-0123456789abcdef", False)
    second = store.open_conversation("webchat", "session-h2-0123456789abcdef", False)
    a = handoffs.request(first.id, ASSOCIATION, "ro", departement="93")
    again = handoffs.request(first.id, ASSOCIATION, "ro", urgent=True)  # asked twice: one request, now urgent
    b = handoffs.request(second.id, ASSOCIATION, "fr")
    assert again.id == a.id and again.urgent
    assert [h.id for h in handoffs.queue(ASSOCIATION)] == [a.id, b.id]
    assert handoffs.queue("another-association") == []
    assert store.conversation(first.id).state == "requested"


def test_only_one_staff_member_can_claim_and_only_she_can_release_or_close(store, handoffs) -> None:
    conversation = store.open_conversation("webchat", "session-h3-0123456789abcdef", False)
    request = handoffs.request(conversation.id, ASSOCIATION, "fr")
    assert not handoffs.claim(request.id, "staff-b", "other-association")  # not her association
    assert handoffs.claim(request.id, "staff-a", ASSOCIATION)
    assert not handoffs.claim(request.id, "staff-b", ASSOCIATION)  # too late
    assert store.conversation(conversation.id).state == CLAIMED
    assert not handoffs.release(request.id, "staff-b", ASSOCIATION)
    with pytest.raises(ValueError):
        handoffs.close(request.id, "staff-a", ASSOCIATION, "whatever")
    assert handoffs.close(request.id, "staff-a", ASSOCIATION, "oriented")
    assert not handoffs.release(request.id, "staff-a", ASSOCIATION)  # closed already
    assert store.conversation(conversation.id).state == "bot"
    assert handoffs.open_for(conversation.id) is None


def test_she_can_cancel_a_request_nobody_took(store, handoffs) -> None:
    conversation = store.open_conversation("webchat", "session-h4-0123456789abcdef", False)
    request = handoffs.request(conversation.id, ASSOCIATION, "fr")
    assert handoffs.cancel(conversation.id)
    assert not handoffs.cancel(conversation.id)
    assert store.conversation(conversation.id).state == "bot"
    assert not handoffs.claim(request.id, "staff-a", ASSOCIATION)


def test_unclaimed_requests_alert_again(store, handoffs) -> None:
    conversation = store.open_conversation("webchat", "session-h5-0123456789abcdef", False)
    request = handoffs.request(conversation.id, ASSOCIATION, "fr")
    assert [h.id for h in handoffs.due_for_alert(timedelta(0), timedelta(minutes=5))] == [request.id]
    assert handoffs.due_for_alert(timedelta(0), timedelta(minutes=5)) == []  # not again so soon
    assert [h.id for h in handoffs.due_for_alert(timedelta(0), timedelta(0))] == [request.id]
    handoffs.claim(request.id, "staff-a", ASSOCIATION)
    assert handoffs.due_for_alert(timedelta(0), timedelta(0)) == []


async def test_the_bot_is_silent_while_a_human_holds_the_conversation(
    store, handoffs, redis, fake_rasa, chooser
) -> None:
    conversation = store.open_conversation("webchat", "session-h6-0123456789abcdef", False)
    router = make_router(store, redis, fake_rasa, chooser)
    sender = Sender(store, redis, {"webchat": WebChatChannel()}, sweep_interval=0.1)
    async with running(router.run, sender.run):
        await post(store, redis, conversation, "h6-0", "bonjour")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 1)
        request = handoffs.request(conversation.id, ASSOCIATION, "fr")
        assert handoffs.claim(request.id, "staff-a", ASSOCIATION)
        await post(store, redis, conversation, "h6-1", "vous êtes là ?")
        reply = handoffs.staff_reply(request.id, "staff-a", ASSOCIATION, "Oui, je suis Marie, de l'association.")
        assert reply is not None
        await queues.notify_outbox(redis, reply)
        await wait_for(
            lambda: [m.author for m in store.messages_after(conversation.id, 0)] == ["user", "bot", "user", "staff"]
        )
        await asyncio.sleep(0.5)
        assert len(fake_rasa.calls) == 1  # the message to the human never reached the bot
        assert handoffs.staff_reply(request.id, "staff-b", ASSOCIATION, "intrus") is None
        assert handoffs.release(request.id, "staff-a", ASSOCIATION)
        await post(store, redis, conversation, "h6-2", "merci")
        await wait_for(lambda: len(bot_texts(store, conversation)) == 2)
    shown = [(m.author, m.text) for m in store.messages_after(conversation.id, 0)]
    assert shown == [
        ("user", "bonjour"),
        ("bot", "reply 0 to bonjour"),
        ("user", "vous êtes là ?"),
        ("staff", "Oui, je suis Marie, de l'association."),
        ("user", "merci"),
        ("bot", "reply 0 to merci"),
    ]
