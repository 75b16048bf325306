"""SQL tables: contacts, conversations and messages (inbox and outbox); the associations.

Nothing here holds a clear identifier or a clear message: a contact is found by the HMAC of its
address, the address needed to answer and every body are AES-GCM ciphertexts with their key id.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import declarative_base

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING))

# Integer primary keys that autoincrement on SQLite and are 64-bit on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Contact(Base):  # type: ignore[misc,valid-type]
    """A person on one channel, known only by a keyed hash of her address."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "lookup_key", name="uq_contacts_channel_lookup"),)

    id = Column(Id, primary_key=True, autoincrement=True)
    channel = Column(String(16), nullable=False)
    lookup_key = Column(String(64), nullable=False)
    address_enc = Column(LargeBinary, nullable=True)
    address_key_id = Column(String(16), nullable=True)
    language = Column(String(8), nullable=True)
    # set when the person opted out (STOP, blocked the bot): nothing is sent until she writes
    stopped_at = Column(DateTime(timezone=True), nullable=True)
    # set when she asked for erasure: what is left (her address until the last message to her
    # has gone, the handoffs marked "erased") is purged a few minutes later
    erased_at = Column(DateTime(timezone=True), nullable=True)
    # discreet mode (her code word): neutral texts only, nothing sent after a silence of hers
    discreet = Column(Boolean, nullable=False, default=False, server_default=false())
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_seen_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Conversation(Base):  # type: ignore[misc,valid-type]
    """One conversation of a contact; ``public_id`` is its Rasa sender id (random)."""

    __tablename__ = "conversations"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id = Column(Id, primary_key=True, autoincrement=True)
    public_id = Column(String(40), nullable=False, unique=True)
    contact_id = Column(Id, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True)
    state = Column(String(16), nullable=False, default="bot")
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_message_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Message(Base):  # type: ignore[misc,valid-type]
    """An inbound (``in``) or outbound (``out``) message.

    Inbound rows are the inbox: unique on (channel, provider_id) so a provider's retry is
    stored once. Outbound rows are the outbox: unique on (reply_to, seq) so handling the same
    inbound message twice never queues its answers twice.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id", name="uq_messages_channel_provider_id"),
        UniqueConstraint("reply_to", "seq", name="uq_messages_reply_to_seq"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_direction_status", "direction", "status"),
        Index("ix_messages_channel_provider_ref", "channel", "provider_ref"),
        # ids never reused after an erasure (SQLite would reuse the highest): a poll "after id N"
        # must never miss a later message
        {"sqlite_autoincrement": True},
    )

    id = Column(Id, primary_key=True, autoincrement=True)
    conversation_id = Column(Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    direction = Column(String(3), nullable=False)
    author = Column(String(8), nullable=False)
    channel = Column(String(16), nullable=False)
    provider_id = Column(String(128), nullable=True)
    provider_ref = Column(String(128), nullable=True)
    body_enc = Column(LargeBinary, nullable=False)
    key_id = Column(String(16), nullable=False)
    language = Column(String(8), nullable=True)
    # "text", or "media" for a photo, sound or video that is not stored (only the fact is)
    kind = Column(String(8), nullable=False, default="text", server_default="text")
    status = Column(String(16), nullable=False)
    reply_to = Column(Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True)
    seq = Column(Integer, nullable=True)
    attempts = Column(Integer, nullable=False, default=0)
    # an outbound row that failed for a retryable reason waits until then
    next_attempt_at = Column(DateTime(timezone=True), nullable=True)
    error_code = Column(String(32), nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    processed_at = Column(DateTime(timezone=True), nullable=True)


class AssociationRecord(Base):  # type: ignore[misc,valid-type]
    """An approved association of the directory; ``record`` is its JSON form
    (``bot.handoff.directory.Association.to_record``), validated before it is stored."""

    __tablename__ = "associations"

    id = Column(Id, primary_key=True, autoincrement=True)
    slug = Column(String(48), nullable=False, unique=True)
    record = Column(Text, nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Handoff(Base):  # type: ignore[misc,valid-type]
    """A request for a person of an approved association, and what became of it.

    ``state``: ``requested`` (waiting in the association's queue) -> ``claimed`` (a staff member
    holds the conversation; the bot says nothing) -> ``released`` (back to the bot) or
    ``closed`` (with an outcome); ``cancelled`` if she withdrew the request. At most one is open
    (requested or claimed) per conversation."""

    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_association_state", "association", "state"), {"sqlite_autoincrement": True})

    id = Column(Id, primary_key=True, autoincrement=True)
    conversation_id = Column(Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True)
    association = Column(String(48), nullable=False)
    state = Column(String(16), nullable=False)
    departement = Column(String(3), nullable=True)
    language = Column(String(8), nullable=False)
    urgent = Column(Boolean, nullable=False, default=False)
    minor = Column(Boolean, nullable=False, default=False)
    claimed_by = Column(String(64), nullable=True)
    outcome = Column(String(32), nullable=True)
    alerts = Column(Integer, nullable=False, default=0)
    requested_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    claimed_at = Column(DateTime(timezone=True), nullable=True)
    ended_at = Column(DateTime(timezone=True), nullable=True)
    last_alert_at = Column(DateTime(timezone=True), nullable=True)


class Staff(Base):  # type: ignore[misc,valid-type]
    """A person who works in the console: staff or mediator of an association, or an admin.

    The password is kept as an argon2 hash, the two-factor (TOTP) secret encrypted like every
    other secret; ``totp_last_step`` refuses a code used twice."""

    __tablename__ = "staff"

    id = Column(Id, primary_key=True, autoincrement=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    role = Column(String(16), nullable=False)
    association = Column(String(48), nullable=True)
    password_hash = Column(Text, nullable=False)
    totp_secret_enc = Column(LargeBinary, nullable=False)
    totp_key_id = Column(String(16), nullable=False)
    totp_last_step = Column(BigInteger, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_login_at = Column(DateTime(timezone=True), nullable=True)


class AssociationKey(Base):  # type: ignore[misc,valid-type]
    """An association's own data key, wrapped (sealed) under the deployment's keys.

    The transcripts of its ended requests and its staff's notes are sealed with it; destroying
    it (``wrapped`` wiped, ``destroyed_at`` set) makes them unreadable for good."""

    __tablename__ = "association_keys"

    key_id = Column(String(40), primary_key=True)
    association = Column(String(48), nullable=False, index=True)
    wrapped = Column(LargeBinary, nullable=True)
    wrap_key_id = Column(String(16), nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    destroyed_at = Column(DateTime(timezone=True), nullable=True)


class HandoffNote(Base):  # type: ignore[misc,valid-type]
    """A private note of the staff on a handoff (never sent to the person), encrypted."""

    __tablename__ = "handoff_notes"

    id = Column(Id, primary_key=True, autoincrement=True)
    handoff_id = Column(Id, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False, index=True)
    author = Column(String(64), nullable=False)
    body_enc = Column(LargeBinary, nullable=False)
    key_id = Column(String(16), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class AuditEvent(Base):  # type: ignore[misc,valid-type]
    """What a staff member or admin did: who, what, on which handoff or record, when.

    ``detail`` never holds a message, a note or an address; there is no foreign key, so the
    event outlives an erased conversation (it says that something happened, not what was said)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id = Column(Id, primary_key=True, autoincrement=True)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    association = Column(String(48), nullable=True)
    handoff_id = Column(BigInteger, nullable=True)
    detail = Column(String(200), nullable=True)


class StatCount(Base):  # type: ignore[misc,valid-type]
    """An anonymous count: how many times an event of ``figure`` happened in an ISO ``week``
    with these dimension values ("" when not relevant). No id of a person, a conversation or a
    message, no time finer than the week, no text (bot/statistics.py)."""

    __tablename__ = "stat_counts"

    week = Column(String(8), primary_key=True)
    figure = Column(String(32), primary_key=True)
    channel = Column(String(16), primary_key=True)
    language = Column(String(8), primary_key=True)
    topic = Column(String(32), primary_key=True)
    association = Column(String(48), primary_key=True)
    departement = Column(String(3), primary_key=True)
    value = Column(String(16), primary_key=True)
    count = Column(BigInteger, nullable=False, default=0)
