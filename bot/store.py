"""Storage operations of the durable message path.

Synchronous SQLAlchemy (2.0-style) functions, each one transaction; async callers run them in
a worker thread (:meth:`Store.run`). Bodies go in and out as text and are stored encrypted.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

from sqlalchemy import exists, or_, select, update
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot import statistics
from bot.crypto import KeyDestroyed, Vault, new_token
from bot.models import Contact, Conversation, Message, utcnow

T = TypeVar("T")

BODY = "message-body"
ADDRESS = "channel-address"

IN, OUT = "in", "out"
RECEIVED, DONE = "received", "done"
QUEUED, SENDING, SENT, DELIVERED, FAILED = "queued", "sending", "sent", "delivered", "failed"
UNCERTAIN = "uncertain"  # error code of a row whose sender died while sending it
HELD = "held_discreet"  # error_code of a queued reply kept back until she writes (discreet mode)
DEAD = "dead"  # retried until the last attempt: kept, visible, not sent


@dataclass(frozen=True)
class ConversationRef:
    id: int
    public_id: str
    contact_id: int
    channel: str
    language: Optional[str]
    state: str
    stopped: bool = False
    erased: bool = False  # she asked for erasure: only the confirmation to her is left
    discreet: bool = False  # neutral texts only; nothing sent after a silence of hers
    last_seen_at: Optional[datetime] = None  # her last message


@dataclass(frozen=True)
class Inbound:
    id: int
    conversation_id: int
    text: str
    kind: str = "text"
    received_at: Optional[datetime] = None  # when it was stored (for the reply-time metric)


@dataclass(frozen=True)
class Outbound:
    id: int
    conversation_id: int
    channel: str
    text: str
    status: str
    attempts: int
    # filled by claim_outbound, read in the claiming transaction: what the sender needs
    conversation: Optional[ConversationRef] = None
    address: Optional[str] = None  # decrypted only for sending
    # an earlier attempt may have reached the provider (it failed without an answer, or its
    # sender died while sending): the sender asks the provider before sending again
    unsure: bool = False
    created_at: Optional[datetime] = None


@dataclass(frozen=True)
class ShownMessage:
    id: int
    author: str
    text: str
    sent_at: datetime


class Store:
    """Storage of contacts, conversations and messages for one database."""

    def __init__(self, sessions: sessionmaker[Session], vault: Vault, threads: int = 16) -> None:
        self._sessions = sessions
        self._vault = vault
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    @property
    def vault(self) -> Vault:
        return self._vault

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run a storage function in the store's threads, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: func(*args))

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    # -- contacts and conversations -------------------------------------------------------

    def lookup_key(self, channel: str, address: str) -> str:
        """The pseudonymous key of an address (what the flood guard counts by)."""
        return self._vault.lookup(channel, address)

    def open_conversation(self, channel: str, address: str, address_needed: bool = True) -> ConversationRef:
        """Find or create the contact for ``address`` on ``channel`` and its open conversation.

        The address is stored only as a keyed hash and, when needed to answer, encrypted."""
        lookup = self._vault.lookup(channel, address)
        for _attempt in range(3):
            with self._sessions() as session:
                found = self._contact_and_conversation(session, channel, lookup, address, address_needed)
                if found is None:
                    continue
                session.commit()
                return _ref(found[1], found[0])
        raise RuntimeError("could not create contact")

    def _contact_and_conversation(
        self, session: Session, channel: str, lookup: str, address: str, address_needed: bool
    ) -> Optional[Tuple[Contact, Conversation]]:
        """The contact and its open conversation, created if needed; None if the contact was
        created concurrently (the caller tries again)."""
        contact = session.execute(
            select(Contact).where(Contact.channel == channel, Contact.lookup_key == lookup)
        ).scalar_one_or_none()
        if contact is None:
            contact = Contact(channel=channel, lookup_key=lookup)
            if address_needed:
                contact.address_enc, contact.address_key_id = self._vault.seal(address, ADDRESS)
            session.add(contact)
            try:
                session.flush()
            except IntegrityError:  # created concurrently: read it again
                session.rollback()
                return None
        return contact, self._open_conversation_of(session, contact)

    def receive(
        self,
        channel: str,
        address: str,
        provider_id: str,
        text: str,
        kind: str = "text",
        language_hint: Optional[str] = None,
    ) -> Tuple[ConversationRef, int, bool]:
        """What a provider webhook stores, in one transaction: the contact and conversation
        (created if new, with ``language_hint`` as a first language), and the message once per
        provider id. Returns (conversation, message id, created)."""
        lookup = self._vault.lookup(channel, address)
        body, key_id = self._vault.seal(text, BODY)
        for _attempt in range(3):
            with self._sessions() as session:
                found = self._contact_and_conversation(session, channel, lookup, address, True)
                if found is None:
                    continue
                contact, conversation = found
                if language_hint and contact.language is None:
                    contact.language = language_hint
                existing = session.execute(
                    select(Message.id).where(Message.channel == channel, Message.provider_id == provider_id)
                ).scalar_one_or_none()
                if existing is not None:  # a provider's retry: acknowledged, not stored again
                    session.commit()
                    return _ref(conversation, contact), int(existing), False
                try:
                    message_id = _add_inbound(
                        session, int(conversation.id), int(contact.id), channel, provider_id, body, key_id, kind
                    )
                except IntegrityError:  # the same delivery, stored concurrently
                    session.rollback()
                    continue
                # the opt-out was lifted by _add_inbound's statement, not on this object
                reference = replace(_ref(conversation, contact), stopped=False)
                statistics.add(session, [statistics.Count(statistics.MESSAGE_IN, channel=channel)])
                session.commit()
                return reference, message_id, True
        raise RuntimeError("could not store the message")

    def _open_conversation_of(self, session: Session, contact: Contact) -> Conversation:
        conversation = session.execute(
            select(Conversation)
            .where(Conversation.contact_id == contact.id, Conversation.state != "closed")
            .order_by(Conversation.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if conversation is None:
            conversation = Conversation(contact_id=contact.id, public_id=new_token(18), state="bot")
            session.add(conversation)
            session.flush()
        return conversation

    def find_conversation(self, channel: str, address: str) -> Optional[ConversationRef]:
        lookup = self._vault.lookup(channel, address)
        with self._sessions() as session:
            row = session.execute(
                select(Conversation, Contact)
                .join(Contact, Conversation.contact_id == Contact.id)
                .where(Contact.channel == channel, Contact.lookup_key == lookup, Conversation.state != "closed")
                .order_by(Conversation.id.desc())
                .limit(1)
            ).first()
            return _ref(row[0], row[1]) if row else None

    def conversation(self, conversation_id: int) -> Optional[ConversationRef]:
        with self._sessions() as session:
            row = session.execute(
                select(Conversation, Contact)
                .join(Contact, Conversation.contact_id == Contact.id)
                .where(Conversation.id == conversation_id)
            ).first()
            return _ref(row[0], row[1]) if row else None

    def address_of(self, contact_id: int) -> Optional[str]:
        """The channel address needed to answer (decrypted only for sending)."""
        with self._sessions() as session:
            row = session.execute(
                select(Contact.address_enc, Contact.address_key_id).where(Contact.id == contact_id)
            ).first()
        if row is None or row.address_enc is None:
            return None
        return self._vault.open(row.address_enc, row.address_key_id, ADDRESS)

    def set_stopped(self, contact_id: int, stopped: bool) -> None:
        with self._sessions() as session:
            session.execute(
                update(Contact).where(Contact.id == contact_id).values(stopped_at=utcnow() if stopped else None)
            )
            session.commit()

    def delivery_update(self, channel: str, provider_ref: str, status: str, error_code: Optional[str]) -> Optional[int]:
        """Record a provider's delivery report on the outbox row it names; returns the
        contact id, or None for an unknown reference."""
        with self._sessions() as session:
            row = session.execute(
                select(Message.id, Conversation.contact_id)
                .join(Conversation, Message.conversation_id == Conversation.id)
                .where(Message.channel == channel, Message.provider_ref == provider_ref, Message.direction == OUT)
            ).first()
            if row is None:
                return None
            values: dict = {"status": status}
            if error_code is not None:
                values["error_code"] = error_code
            if status == FAILED:  # a delivery report: it reached the provider, not her phone
                moved = session.execute(
                    update(Message)
                    .where(Message.id == row.id, Message.status != FAILED)
                    .values(status=FAILED)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if moved:
                    failure = statistics.Count(statistics.DELIVERY_FAILURE, value="undelivered")
                    statistics.add(session, [failure])
            session.execute(update(Message).where(Message.id == row.id).values(**values))
            session.commit()
            return int(row.contact_id)

    def set_discreet(self, contact_id: int, discreet: bool) -> None:
        with self._sessions() as session:
            session.execute(update(Contact).where(Contact.id == contact_id).values(discreet=discreet))
            session.commit()

    def hold(self, message_id: int, silent_since: datetime) -> bool:
        """Keep a claimed reply back (discreet mode) if she has written nothing since
        ``silent_since``: queued, not due, until she writes again (:meth:`release_held`).
        False if she wrote meanwhile (the reply goes)."""
        with self._sessions() as session:
            contact_id = (
                select(Conversation.contact_id)
                .join(Message, Message.conversation_id == Conversation.id)
                .where(Message.id == message_id)
                .scalar_subquery()
            )
            still_silent = exists().where(Contact.id == contact_id, Contact.last_seen_at < silent_since)
            held = session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == SENDING, still_silent)
                .values(status=QUEUED, error_code=HELD, next_attempt_at=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
            return bool(held)

    def release_held(self, conversation_id: int) -> List[int]:
        """She wrote again: the replies kept back go first; returns their ids, in order."""
        with self._sessions() as session:
            ids = (
                session.execute(
                    select(Message.id)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.direction == OUT,
                        Message.status == QUEUED,
                        Message.error_code == HELD,
                    )
                    .order_by(Message.id)
                )
                .scalars()
                .all()
            )
            if ids:
                session.execute(update(Message).where(Message.id.in_(ids)).values(error_code=None))
                session.commit()
            return [int(i) for i in ids]

    def set_language(self, contact_id: int, language: str) -> None:
        with self._sessions() as session:
            session.execute(update(Contact).where(Contact.id == contact_id).values(language=language))
            session.commit()

    # -- inbox ----------------------------------------------------------------------------

    def record_inbound(
        self, conversation: ConversationRef, provider_id: str, text: str, kind: str = "text"
    ) -> Tuple[int, bool]:
        """Store an inbound message once. Returns (message id, created); a duplicate delivery
        of the same provider id returns the first row's id and ``False``."""
        body, key_id = self._vault.seal(text, BODY)
        with self._sessions() as session:
            try:
                message_id = _add_inbound(
                    session,
                    conversation.id,
                    conversation.contact_id,
                    conversation.channel,
                    provider_id,
                    body,
                    key_id,
                    kind,
                )
            except IntegrityError:
                session.rollback()
                existing = session.execute(
                    select(Message.id).where(
                        Message.channel == conversation.channel, Message.provider_id == provider_id
                    )
                ).scalar_one()
                return int(existing), False
            statistics.add(session, [statistics.Count(statistics.MESSAGE_IN, channel=conversation.channel)])
            session.commit()
            return message_id, True

    def pending_inbound(self, conversation_id: int, limit: int = 50) -> List[Inbound]:
        """Inbound messages of a conversation not yet answered, oldest first."""
        with self._sessions() as session:
            rows = session.execute(
                select(Message.id, Message.body_enc, Message.key_id, Message.kind, Message.created_at)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.direction == IN,
                    Message.status == RECEIVED,
                )
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [
            Inbound(
                int(r.id), conversation_id, self._vault.open(r.body_enc, r.key_id, BODY), r.kind, _aware(r.created_at)
            )
            for r in rows
        ]

    def complete_inbound(
        self,
        message_id: int,
        replies: Sequence[str],
        language: Optional[str],
        even_if_held: bool = False,
        counts: Sequence[statistics.Count] = (),
    ) -> List[int]:
        """In one transaction: queue the replies to ``message_id`` in the outbox and mark it done.

        Idempotent: replies already queued for this message (same position) are not queued
        again. Returns the ids of the outbound rows, new or existing, in order. While a staff
        member holds the conversation nothing is queued, unless ``even_if_held`` (the question
        that confirms an erasure). ``counts`` (the topics and flags of the message) are counted
        in the same transaction, once: only by the call that marks the message done; so is a
        conversation started, when this is the first of its messages answered."""
        with self._sessions() as session:
            _after_the_answer(session)
            inbound = session.get(Message, message_id)
            if inbound is None:
                return []
            _touch(session, int(inbound.conversation_id), utcnow())
            # the conversation row is locked now: this call is the one that answers the message
            # only if it is still unanswered (a second call counts nothing)
            first_time = session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == RECEIVED)
                .values(status=DONE)
                .execution_options(synchronize_session=False)
            ).rowcount
            if first_time and language is not None:
                started = not session.execute(
                    select(
                        exists().where(
                            Message.conversation_id == inbound.conversation_id,
                            Message.direction == IN,
                            Message.status == DONE,
                            Message.id != message_id,
                        )
                    )
                ).scalar_one()
                found = list(counts)
                if started:  # counted by channel and by language apart: only what is published
                    found.append(statistics.Count(statistics.CONVERSATION_STARTED, channel=inbound.channel))
                    found.append(statistics.Count(statistics.CONVERSATION_STARTED, language=language))
                statistics.add(session, found)
            state = session.execute(
                select(Conversation.state).where(Conversation.id == inbound.conversation_id)
            ).scalar_one_or_none()
            if state == "claimed" and not even_if_held:
                # a staff member took the conversation while this answer was being made: the
                # bot says nothing more (she has been told a person is there)
                replies = []
            ids: List[int] = []
            for seq, text in enumerate(replies):
                existing = session.execute(
                    select(Message.id).where(Message.reply_to == message_id, Message.seq == seq)
                ).scalar_one_or_none()
                if existing is not None:
                    ids.append(int(existing))
                    continue
                row = new_outbound(
                    self._vault, int(inbound.conversation_id), inbound.channel, "bot", text, language, message_id, seq
                )
                session.add(row)
                session.flush()
                ids.append(int(row.id))
            inbound.status = DONE
            inbound.language = language
            inbound.processed_at = utcnow()
            session.commit()
            return ids

    def stale_inbound(self, older_than: timedelta, limit: int = 500) -> List[Tuple[int, int]]:
        """(message id, conversation id) of inbound rows still unanswered after ``older_than``."""
        cutoff = utcnow() - older_than
        with self._sessions() as session:
            rows = session.execute(
                select(Message.id, Message.conversation_id)
                .where(Message.direction == IN, Message.status == RECEIVED, Message.created_at < cutoff)
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [(int(r.id), int(r.conversation_id)) for r in rows]

    # -- outbox ---------------------------------------------------------------------------

    def outbound(self, message_id: int) -> Optional[Outbound]:
        with self._sessions() as session:
            row = session.get(Message, message_id)
            if row is None or row.direction != OUT:
                return None
            return Outbound(
                id=int(row.id),
                conversation_id=int(row.conversation_id),
                channel=row.channel,
                text=self._vault.open(row.body_enc, row.key_id, BODY),
                status=row.status,
                attempts=row.attempts,
            )

    def claim_outbound(self, message_id: int) -> Optional[Outbound]:
        """Take a queued outbox row for sending (status ``sending``), so that two senders
        notified twice never deliver it twice. None if it is not queued any more, or if an
        earlier reply of the same conversation is still to be sent: replies go out in order
        (:meth:`mark_outbound` names the one to notify when a row is settled). The row comes
        with its conversation and, for channels that need it, the decrypted address."""
        earlier = aliased(Message)
        with self._sessions() as session:
            _after_the_answer(session)
            claimed = session.execute(
                update(Message)
                .where(
                    Message.id == message_id,
                    Message.direction == OUT,
                    Message.status == QUEUED,
                    (Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= utcnow()),
                    ~exists().where(
                        earlier.conversation_id == Message.conversation_id,
                        earlier.direction == OUT,
                        earlier.id < Message.id,
                        earlier.status.in_((QUEUED, SENDING)),
                    ),
                )
                .values(status=SENDING, processed_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            outbound = None
            if claimed:
                found = session.execute(
                    select(Message, Conversation, Contact)
                    .join(Conversation, Message.conversation_id == Conversation.id)
                    .join(Contact, Conversation.contact_id == Contact.id)
                    .where(Message.id == message_id)
                ).first()
                if found is not None:
                    row, conversation, contact = found
                    outbound = Outbound(
                        id=int(row.id),
                        conversation_id=int(row.conversation_id),
                        channel=row.channel,
                        text=self._vault.open(row.body_enc, row.key_id, BODY),
                        status=row.status,
                        attempts=row.attempts,
                        conversation=_ref(conversation, contact),
                        unsure=bool(row.attempts) or row.error_code == UNCERTAIN,
                        created_at=_aware(row.created_at),
                        address=(
                            self._vault.open(contact.address_enc, contact.address_key_id, ADDRESS)
                            if contact.address_enc is not None
                            else None
                        ),
                    )
            session.commit()
        return outbound

    def mark_outbound(
        self,
        message_id: int,
        status: str,
        provider_ref: Optional[str] = None,
        error_code: Optional[str] = None,
        retry_at: Optional[datetime] = None,
    ) -> Optional[int]:
        """Record what became of a send. For a settled row (not waiting for a retry), returns
        the next reply of its conversation still to be sent, if any, so the caller notifies it."""
        with self._sessions() as session:
            _after_the_answer(session)
            before = session.execute(
                select(Message.status, Message.channel).where(Message.id == message_id).with_for_update()
            ).first()
            if before is not None and before.status == SENDING and status != SENDING:
                count = _send_count(before.channel, status, error_code)
                if count is not None:
                    statistics.add(session, [count])
            values: dict = {
                "status": status,
                "processed_at": utcnow(),
                "attempts": Message.attempts + 1,
                "next_attempt_at": retry_at,
            }
            if provider_ref is not None:
                values["provider_ref"] = provider_ref
            if error_code is not None:
                values["error_code"] = error_code
            session.execute(update(Message).where(Message.id == message_id).values(**values))
            following = None
            if status != QUEUED:
                following = session.execute(
                    select(Message.id)
                    .where(
                        Message.conversation_id
                        == select(Message.conversation_id).where(Message.id == message_id).scalar_subquery(),
                        Message.direction == OUT,
                        Message.status == QUEUED,
                    )
                    .order_by(Message.id)
                    .limit(1)
                ).scalar_one_or_none()
            session.commit()
            return int(following) if following is not None else None

    def reference_known(self, conversation_id: int, reference: str) -> bool:
        """Whether a reply of this conversation already carries this provider reference."""
        with self._sessions() as session:
            found = session.execute(
                select(Message.id)
                .where(Message.conversation_id == conversation_id, Message.provider_ref == reference)
                .limit(1)
            ).first()
        return found is not None

    def stale_outbound(
        self, older_than: timedelta, sending_for: timedelta = timedelta(minutes=5), limit: int = 500
    ) -> List[int]:
        """Outbox rows to notify again: queued for longer than ``older_than`` (a lost
        notification), due for a retry, or left ``sending`` by a sender that died (put back
        in the queue first)."""
        now = utcnow()
        earlier = aliased(Message)
        with self._sessions() as session:
            session.execute(
                update(Message)
                .where(
                    Message.direction == OUT,
                    Message.status == SENDING,
                    Message.processed_at < now - sending_for,
                )
                .values(status=QUEUED, error_code=UNCERTAIN)
            )
            session.commit()
            rows = session.execute(
                select(Message.id)
                .where(
                    Message.direction == OUT,
                    Message.status == QUEUED,
                    or_(Message.error_code.is_(None), Message.error_code != HELD),  # held: until she writes
                    ~exists().where(  # nor what waits behind a held reply (it follows it)
                        earlier.conversation_id == Message.conversation_id,
                        earlier.id < Message.id,
                        earlier.status == QUEUED,
                        earlier.error_code == HELD,
                    ),
                    # a notification lost, or a retry now due
                    ((Message.next_attempt_at.is_(None)) & (Message.created_at < now - older_than))
                    | (Message.next_attempt_at <= now),
                )
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [int(r.id) for r in rows]

    # -- reading a conversation -----------------------------------------------------------

    def messages_after(self, conversation_id: int, after: int, limit: int = 100) -> List[ShownMessage]:
        """What the web chat shows after ``after``: her messages and the answers queued for her.

        Ids grow in the order rows are written, so a client that polls with the last id it saw
        never misses an answer written before a later message of hers."""
        with self._sessions() as session:
            rows = (
                session.execute(
                    select(Message)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.id > after,
                        # her words (not a notice's placeholder row), and the answers queued for her
                        ((Message.direction == IN) & (Message.kind == "text"))
                        | ((Message.direction == OUT) & Message.status.in_((QUEUED, SENDING, SENT, DELIVERED))),
                    )
                    .order_by(Message.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            return [
                ShownMessage(
                    id=int(m.id),
                    author=m.author,
                    text=readable(self._vault, m.body_enc, m.key_id, BODY) or "…",
                    sent_at=_aware(m.processed_at if m.direction == OUT and m.processed_at else m.created_at),
                )
                for m in rows
            ]


SHREDDED = "shredded"  # a transcript line sealed under an association's destroyed key


def readable(vault: Vault, ciphertext: bytes, key_id: str, purpose: str) -> Optional[str]:
    """The text, or None if it was sealed under an association's key since destroyed."""
    try:
        return vault.open(ciphertext, key_id, purpose)
    except KeyDestroyed:
        return None


def new_outbound(
    vault: Vault,
    conversation_id: int,
    channel: str,
    author: str,
    text: str,
    language: Optional[str],
    reply_to: Optional[int] = None,
    seq: Optional[int] = None,
) -> Message:
    """An outbox row (queued, body encrypted) for the caller to add in its transaction."""
    body, key_id = vault.seal(text, BODY)
    return Message(
        conversation_id=conversation_id,
        direction=OUT,
        author=author,
        channel=channel,
        body_enc=body,
        key_id=key_id,
        language=language,
        status=QUEUED,
        reply_to=reply_to,
        seq=seq,
    )


def _send_count(channel: str, status: str, error_code: Optional[str]) -> Optional[statistics.Count]:
    """What a settled send counts: a message out, or a delivery failure and its cause (a retry
    to come counts nothing yet)."""
    if status == SENT:
        return statistics.Count(statistics.MESSAGE_OUT, channel=channel)
    if status == DEAD:
        return statistics.Count(statistics.DELIVERY_FAILURE, value="dead")
    if status == FAILED:
        cause = {"stopped": "opted_out", "no_channel": "no_channel"}.get(error_code or "", "failed")
        return statistics.Count(statistics.DELIVERY_FAILURE, value=cause)
    return None


def _after_the_answer(session: Session) -> None:
    """Writes made after the provider has its answer (router and sender) do not wait for the
    PostgreSQL write-ahead log to reach the disk: the message itself was stored durably before
    the webhook answered, so nothing can be lost; only a crash of the database server within its
    async-commit window (about 0.6 s) could make one reply go out twice.
    See docs/decisions/0008-async-commit-after-the-answer.md."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql("SET LOCAL synchronous_commit TO OFF"))


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every time we store is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _add_inbound(
    session: Session,
    conversation_id: int,
    contact_id: int,
    channel: str,
    provider_id: str,
    body: bytes,
    key_id: str,
    kind: str,
) -> int:
    """Write one inbound message (raises IntegrityError for a provider id already stored)
    and mark the contact seen; returns the message id. The caller commits."""
    now = utcnow()
    # Lock the conversation row first: messages of one conversation get their ids in the
    # order they commit, so a poll "after id N" never skips a later commit.
    _touch(session, conversation_id, now)
    message = Message(
        conversation_id=conversation_id,
        direction=IN,
        author="user",
        channel=channel,
        provider_id=provider_id,
        body_enc=body,
        key_id=key_id,
        kind=kind,
        status=RECEIVED,
        created_at=now,
    )
    session.add(message)
    session.flush()
    # a new message from the person lifts an opt-out: she wants answers again
    session.execute(update(Contact).where(Contact.id == contact_id).values(last_seen_at=now, stopped_at=None))
    return int(message.id)


def _touch(session: Session, conversation_id: int, now: datetime) -> None:
    session.execute(update(Conversation).where(Conversation.id == conversation_id).values(last_message_at=now))


def _ref(conversation: Conversation, contact: Contact) -> ConversationRef:
    return ConversationRef(
        id=int(conversation.id),
        public_id=conversation.public_id,
        contact_id=int(contact.id),
        channel=contact.channel,
        language=contact.language,
        state=conversation.state,
        stopped=contact.stopped_at is not None,
        erased=contact.erased_at is not None,
        discreet=bool(contact.discreet),
        last_seen_at=_aware(contact.last_seen_at) if contact.last_seen_at else None,
    )


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    direction: str
    author: str
    text: str
    kind: str
    status: str
    at: datetime


def transcript(
    sessions: sessionmaker[Session],
    vault: Vault,
    conversation_id: int,
    until: Optional[datetime] = None,
    limit: int = 500,
) -> List[TranscriptLine]:
    """A conversation, the bot's part included, oldest first, up to ``until`` (the end of an
    ended request: what came after, perhaps with another association, is not its business).
    For the staff of the association of the request; every call is audited by the console."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if until is not None:
        query = query.where(Message.created_at <= until)
    with sessions() as session:
        rows = session.execute(query.order_by(Message.id.desc()).limit(limit)).scalars().all()
        lines = []
        for m in reversed(rows):
            text = readable(vault, m.body_enc, m.key_id, BODY) if m.kind == "text" else ""
            lines.append(
                TranscriptLine(
                    id=int(m.id),
                    direction=m.direction,
                    author=m.author,
                    text=text or "",
                    kind=SHREDDED if text is None else m.kind,
                    status=m.status,
                    at=_aware(m.created_at),
                )
            )
        return lines
