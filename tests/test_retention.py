"""Retention on both databases: what is due goes with everything attached; nothing else does;
a dry run counts the same and deletes nothing; the command the scheduler runs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Dict

import pytest
from sqlalchemy import func, select, update

from bot import cli
from bot.handoff.states import HandoffStore
from bot.models import Contact, Conversation, Handoff, HandoffNote, Message, utcnow
from bot.retention import Purged, purge
from bot.store import ConversationRef, Store
from tests.conftest import gateway_env

DAY = timedelta(days=1)


def conversation(store: Store, name: str, days_ago: float, text: str = "bonjour") -> ConversationRef:
    conv = store.open_conversation("sms", f"+3361000{name:0>4}")
    store.record_inbound(conv, f"SM-{name}", text)
    store.complete_inbound(store.pending_inbound(conv.id)[0].id, ["réponse"], "fr")
    back = utcnow() - days_ago * DAY
    with store.sessions() as session:
        session.execute(update(Conversation).where(Conversation.id == conv.id).values(last_message_at=back))
        session.execute(update(Contact).where(Contact.id == conv.contact_id).values(last_seen_at=back))
        session.commit()
    return conv


def handed_off(store: Store, conv: ConversationRef, ended_days_ago: float, state: str = "closed") -> int:
    handoffs = HandoffStore(store.sessions, store.vault)
    ref = handoffs.request(conv.id, "asso-a", "fr")
    handoffs.add_note(ref.id, "alice", "note")
    with store.sessions() as session:
        values = {"state": state, "ended_at": utcnow() - ended_days_ago * DAY if state != "requested" else None}
        session.execute(update(Handoff).where(Handoff.id == ref.id).values(**values))
        session.commit()
    return ref.id


def counts(store: Store) -> Dict[str, int]:
    with store.sessions() as session:
        return {
            model.__tablename__: int(session.execute(select(func.count()).select_from(model)).scalar_one())
            for model in (Conversation, Message, Handoff, HandoffNote, Contact)
        }


@pytest.fixture
def world(store: Store) -> Dict[str, ConversationRef]:
    convs = {
        "bot_old": conversation(store, "1", 31),
        "bot_recent": conversation(store, "2", 29),
        "handed_old": conversation(store, "3", 91),
        "handed_recent": conversation(store, "4", 60),
        "open_request": conversation(store, "5", 100),
        "ended_long_ago_but_writing": conversation(store, "6", 5),
    }
    handed_off(store, convs["handed_old"], 91)
    handed_off(store, convs["handed_recent"], 60)
    handed_off(store, convs["open_request"], 0, state="requested")
    handed_off(store, convs["ended_long_ago_but_writing"], 100)
    return convs


def test_what_is_due_goes_with_everything_attached(store: Store, world: Dict[str, ConversationRef]) -> None:
    before = counts(store)
    dry, _ = purge(store, 30 * DAY, 90 * DAY, dry_run=True)
    assert counts(store) == before  # a dry run deletes nothing
    assert dry == Purged(conversations=2, messages=4, handoffs=1, notes=1, contacts=2)
    done, senders = purge(store, 30 * DAY, 90 * DAY)
    assert done == dry
    assert sorted(senders) == sorted([world["bot_old"].public_id, world["handed_old"].public_id])
    for name in ("bot_old", "handed_old"):
        assert store.conversation(world[name].id) is None
    assert store.find_conversation("sms", "+33610000001") is None  # her contact and address too
    for name in ("bot_recent", "handed_recent", "open_request", "ended_long_ago_but_writing"):
        assert store.conversation(world[name].id) is not None, name
    assert counts(store) == {
        "conversations": 4,
        "messages": 8,
        "handoffs": 3,
        "handoff_notes": 3,
        "contacts": 4,
    }
    assert purge(store, 30 * DAY, 90 * DAY)[0] == Purged()  # nothing left to do


def test_the_scheduler_command_prints_what_it_did(
    store: Store,
    world: Dict[str, ConversationRef],
    database_url: str,
    redis_clean: str,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in gateway_env(database_url, redis_clean, tmp_path).items():
        monkeypatch.setenv(key, value)
    assert cli.main(["purge", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "dry_run": True,
        "conversations": 2,
        "messages": 4,
        "handoffs": 1,
        "notes": 1,
        "contacts": 2,
    }
    assert cli.main(["purge"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["conversations"] == 2
    assert counts(store)["conversations"] == 4
