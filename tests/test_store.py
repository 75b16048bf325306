"""Storage of the durable path, on SQLite and PostgreSQL: once-only inbox, idempotent outbox,
encryption at rest, and what the web chat shows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine, text

from bot.store import FAILED, QUEUED, SENT, Store


def test_same_address_same_conversation_and_no_clear_address(store: Store, database_url: str) -> None:
    first = store.open_conversation("sms", "+33612345678")
    again = store.open_conversation("sms", "+33612345678")
    other = store.open_conversation("sms", "+33699999999")
    assert first == again
    assert other.id != first.id and other.contact_id != first.contact_id
    assert store.find_conversation("sms", "+33612345678") == first
    assert store.find_conversation("telegram", "+33612345678") is None
    engine = create_engine(database_url, future=True)
    with engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM contacts")).all())
    engine.dispose()
    assert "612345678" not in dump


def test_provider_retry_is_stored_once(store: Store) -> None:
    conversation = store.open_conversation("sms", "+33600000001")
    first_id, created = store.record_inbound(conversation, "SM123", "bonjour")
    retry_id, created_again = store.record_inbound(conversation, "SM123", "bonjour")
    assert created is True and created_again is False
    assert retry_id == first_id
    assert [m.text for m in store.pending_inbound(conversation.id)] == ["bonjour"]


def test_bodies_are_encrypted_at_rest(store: Store, database_url: str) -> None:
    conversation = store.open_conversation("webchat", "token-abc-0123456789abcdef")
    message_id, _ = store.record_inbound(conversation, "p1", "mon secret très personnel")
    store.complete_inbound(message_id, ["réponse confidentielle"], "fr")
    engine = create_engine(database_url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT body_enc FROM messages")).all()
    engine.dispose()
    raw = b"".join(bytes(row[0]) for row in rows)
    assert len(rows) == 2
    assert b"secret" not in raw and b"confidentielle" not in raw


def test_completing_twice_queues_the_replies_once(store: Store) -> None:
    conversation = store.open_conversation("webchat", "token-def-0123456789abcdef")
    message_id, _ = store.record_inbound(conversation, "p1", "1")
    ids = store.complete_inbound(message_id, ["a", "b"], "fr")
    again = store.complete_inbound(message_id, ["a", "b"], "fr")
    assert ids == again and len(ids) == 2
    assert store.pending_inbound(conversation.id) == []
    shown = store.messages_after(conversation.id, 0)
    assert [(m.author, m.text) for m in shown] == [("user", "1"), ("bot", "a"), ("bot", "b")]


def test_messages_after_in_order_and_status_flow(store: Store) -> None:
    conversation = store.open_conversation("webchat", "token-ghi-0123456789abcdef")
    m1, _ = store.record_inbound(conversation, "p1", "bonjour")
    [reply] = store.complete_inbound(m1, ["menu"], "fr")
    m2, _ = store.record_inbound(conversation, "p2", "2")
    assert m1 < reply < m2
    assert [m.id for m in store.messages_after(conversation.id, m1)] == [reply, m2]
    outbound = store.claim_outbound(reply)
    assert outbound is not None and outbound.text == "menu" and outbound.channel == "webchat"
    assert store.claim_outbound(reply) is None  # a second sender cannot take it
    store.mark_outbound(reply, SENT, "ref-1")
    assert store.outbound(reply).status == SENT  # type: ignore[union-attr]
    failed_message, _ = store.record_inbound(conversation, "p3", "x")
    [failed] = store.complete_inbound(failed_message, ["y"], "fr")
    store.mark_outbound(failed, FAILED, None, "permanent")
    assert failed not in [m.id for m in store.messages_after(conversation.id, 0)]


def test_stale_rows_are_found_for_the_sweepers(store: Store) -> None:
    conversation = store.open_conversation("webchat", "token-jkl-0123456789abcdef")
    m1, _ = store.record_inbound(conversation, "p1", "bonjour")
    assert store.stale_inbound(timedelta(seconds=-1)) == [(m1, conversation.id)]
    assert store.stale_inbound(timedelta(hours=1)) == []
    [reply] = store.complete_inbound(m1, ["menu"], "fr")
    assert store.stale_inbound(timedelta(seconds=-1)) == []
    assert store.stale_outbound(timedelta(seconds=-1)) == [reply]
    store.claim_outbound(reply)  # a sender took it, then died
    assert store.stale_outbound(timedelta(seconds=-1)) == []
    assert store.stale_outbound(timedelta(seconds=-1), sending_for=timedelta(seconds=-1)) == [reply]
    assert store.outbound(reply).status == QUEUED  # type: ignore[union-attr]


def test_language_is_kept_on_the_contact(store: Store) -> None:
    conversation = store.open_conversation("webchat", "token-mno-0123456789abcdef")
    assert conversation.language is None
    store.set_language(conversation.contact_id, "en")
    assert store.conversation(conversation.id).language == "en"  # type: ignore[union-attr]


def test_a_message_without_answer_is_still_done(store: Store) -> None:
    conversation = store.open_conversation("webchat", "token-pqr-0123456789abcdef")
    m1, _ = store.record_inbound(conversation, "p1", "a")
    assert [m.id for m in store.pending_inbound(conversation.id)] == [m1]
    assert store.complete_inbound(m1, [], "fr") == []
    assert store.pending_inbound(conversation.id) == []
    assert store.stale_inbound(timedelta(seconds=-1)) == []
