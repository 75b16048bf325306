"""Crypto-shredding on both databases: an ended request's transcript and notes are sealed under
its association's own key; destroying that key makes them unreadable, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
from sqlalchemy import select

from bot import association_keys, cli
from bot.association_keys import AssociationKeys
from bot.crypto import Vault
from bot.handoff.states import SHREDDED_NOTE, HandoffStore
from bot.models import AuditEvent, Message
from bot.store import SENT, SHREDDED, ConversationRef, Store, transcript
from tests.conftest import TEST_KEYS, gateway_env


def talk(store: Store, conv: ConversationRef, *texts: str) -> None:
    for n, text in enumerate(texts):
        message_id, _ = store.record_inbound(conv, f"{conv.id}-{n}-{text}", text)
        for reply in store.complete_inbound(message_id, [f"réponse à {text}"], "fr"):
            store.mark_outbound(reply, SENT, f"ref-{reply}")


def ended_request(store: Store, handoffs: HandoffStore, conv: ConversationRef, association: str) -> int:
    ref = handoffs.request(conv.id, association, "fr")
    assert handoffs.claim(ref.id, "alice", association)
    reply = handoffs.staff_reply(ref.id, "alice", association, f"{association} vous répond")
    assert reply is not None
    store.mark_outbound(reply, SENT, f"ref-{reply}")
    handoffs.add_note(ref.id, "alice", f"note de {association}")
    assert handoffs.close(ref.id, "alice", association, "answered")
    return ref.id


def texts(store: Store, conv: ConversationRef) -> List[str]:
    return [line.text for line in transcript(store.sessions, store.vault, conv.id)]


def key_ids(store: Store, conv: ConversationRef) -> List[str]:
    with store.sessions() as session:
        return list(session.execute(select(Message.key_id).where(Message.conversation_id == conv.id)).scalars())


def test_an_unsent_reply_stays_readable_for_the_sender(store: Store) -> None:
    """A reply still queued when the request ends is not sealed again: destroying the key must
    never leave a worker unable to send (or answer) a row."""
    keys = AssociationKeys(store.sessions, store.vault)
    handoffs = HandoffStore(store.sessions, store.vault, keys)
    conv = store.open_conversation("webchat", "session-dddd-0123456789abcdef")
    ref = handoffs.request(conv.id, "asso-a", "fr")
    assert handoffs.claim(ref.id, "alice", "asso-a")
    queued = handoffs.staff_reply(ref.id, "alice", "asso-a", "pas encore partie")
    assert handoffs.close(ref.id, "alice", "asso-a", "answered")
    keys.destroy("asso-a")
    assert store.claim_outbound(queued).text == "pas encore partie"


def test_destroying_an_associations_key_makes_its_transcripts_unreadable(store: Store) -> None:
    keys = AssociationKeys(store.sessions, store.vault)
    handoffs = HandoffStore(store.sessions, store.vault, keys)
    a = store.open_conversation("webchat", "session-aaaa-0123456789abcdef")
    b = store.open_conversation("webchat", "session-bbbb-0123456789abcdef")
    bot_only = store.open_conversation("webchat", "session-cccc-0123456789abcdef")
    talk(store, a, "bonjour", "je veux parler")
    talk(store, b, "hello")
    talk(store, bot_only, "le 115 ?")
    before = texts(store, a)
    first = ended_request(store, handoffs, a, "asso-a")
    ended_request(store, handoffs, b, "asso-b")
    # the ended transcript is sealed under asso-a's key, and reads the same
    assert all(key_id.startswith(association_keys.PREFIX) for key_id in key_ids(store, a))
    assert texts(store, a) == [*before, "asso-a vous répond"]
    assert [n.text for n in handoffs.notes(first)] == ["note de asso-a"]
    assert not any(key_id.startswith(association_keys.PREFIX) for key_id in key_ids(store, bot_only))

    assert keys.destroy("asso-a") == 1
    lines = transcript(store.sessions, store.vault, a.id)
    assert [line.kind for line in lines] == [SHREDDED] * len(lines) and all(line.text == "" for line in lines)
    assert [n.text for n in handoffs.notes(first)] == [SHREDDED_NOTE]
    assert {m.text for m in store.messages_after(a.id, 0)} == {"…"}  # her own page: nothing readable
    # another association's and the bot's conversations are untouched
    assert texts(store, b) == ["hello", "réponse à hello", "asso-b vous répond"]
    assert texts(store, bot_only) == ["le 115 ?", "réponse à le 115 ?"]
    # another process reads the destroyed key as destroyed too
    other_vault = Vault(TEST_KEYS)
    AssociationKeys(store.sessions, other_vault)
    assert [line.kind for line in transcript(store.sessions, other_vault, a.id)] == [SHREDDED] * len(lines)
    # a new request to asso-a gets a new key
    talk(store, a, "encore moi")
    ended_request(store, handoffs, a, "asso-a")
    assert texts(store, a)[-3:] == ["encore moi", "réponse à encore moi", "asso-a vous répond"]
    assert keys.destroy("asso-a") == 1 and keys.destroy("asso-a") == 0


def test_the_shred_command_asks_first_and_is_audited(
    store: Store, database_url: str, redis_clean: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for key, value in gateway_env(database_url, redis_clean, tmp_path).items():
        monkeypatch.setenv(key, value)
    vault = Vault(cli_keys())
    keys = AssociationKeys(store.sessions, vault)
    with store.sessions() as session:
        keys.current(session, "asso-a")
        session.commit()
    assert cli.main(["associations", "shred-key", "asso-a"]) == 2  # not without --yes
    assert cli.main(["associations", "shred-key", "asso-a", "--yes"]) == 0
    assert "1 key(s) of asso-a destroyed" in capsys.readouterr().out
    with store.sessions() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "key_destroyed")).scalars().all()
        assert [(e.association, e.detail) for e in events] == [("asso-a", "1 key(s)")]


def cli_keys():  # type: ignore[no-untyped-def]
    """The keys the command line reads from gateway_env's environment."""
    from bot.settings import load_settings, with_local_keys

    settings = with_local_keys(load_settings())
    assert settings.keys is not None
    return settings.keys
