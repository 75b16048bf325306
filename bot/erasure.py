"""Erasure at the person's request: everything about the contact goes.

In one SQL transaction: every message of every conversation of the contact, the staff's notes
on her requests, her other conversations; the contact is cut from her address's look-up key
(a new message from her starts afresh) and her conversation from its Rasa tracker. What stays
for a few minutes is a stub: her requests marked ``erased`` (staff holding her conversation see
only that it was erased at her request), and, on SMS, WhatsApp and Telegram, her encrypted
address and the confirmation to her, until that has gone. :func:`purge_erased` then deletes the
stub. In Redis: her Rasa tracker, the conversation's keys and her flood counters. The audit keeps
that an erasure happened (no text, no address).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import List, Optional, Tuple

from redis.asyncio import Redis
from sqlalchemy import delete, select

from bot import queues
from bot.crypto import new_token
from bot.metrics import Metrics
from bot.models import AuditEvent, Contact, Conversation, Handoff, HandoffNote, Message, utcnow
from bot.rasa_setup import tracker_key
from bot.retention import delete_conversations
from bot.store import QUEUED, SENDING, Store, new_outbound

log = logging.getLogger(__name__)

ERASED = "erased"  # the state of her requests once erased
ERASE_PENDING = f"{queues.PREFIX}:erase:pending:{{id}}"  # she was asked to confirm an erasure


def erase_pending_key(conversation_id: int) -> str:
    return ERASE_PENDING.format(id=conversation_id)


KEEP_STUB = timedelta(minutes=10)  # time for the confirmation to reach her


@dataclass(frozen=True)
class Erasure:
    contact_id: int
    conversation_ids: Tuple[int, ...]
    public_ids: Tuple[str, ...]  # their Rasa trackers
    flood_ids: Tuple[str, ...]  # what her flood counters are keyed by (contact id, look-up key)
    handoffs: Tuple[Tuple[int, str], ...]  # (id, association) of her requests, now "erased"
    outbound_id: Optional[int]  # the confirmation to her, when her channel can carry it


def erase(
    store: Store, conversation_id: int, confirmation: Optional[str], language: Optional[str]
) -> Optional[Erasure]:
    """Erase the contact of ``conversation_id``; queue ``confirmation`` to her if given (not
    for the web chat: its page says so itself). None if the conversation does not exist."""
    now = utcnow()
    with store.sessions() as session:
        conversation = session.execute(
            select(Conversation).where(Conversation.id == conversation_id).with_for_update()
        ).scalar_one_or_none()
        if conversation is None:
            return None
        contact = session.get(Contact, conversation.contact_id)
        assert contact is not None
        conversations = (
            session.execute(select(Conversation).where(Conversation.contact_id == contact.id)).scalars().all()
        )
        ids = [int(c.id) for c in conversations]
        public_ids = tuple(c.public_id for c in conversations)
        handoffs = session.execute(select(Handoff).where(Handoff.conversation_id.in_(ids))).scalars().all()
        if handoffs:
            session.execute(delete(HandoffNote).where(HandoffNote.handoff_id.in_([h.id for h in handoffs])))
        session.execute(delete(Message).where(Message.conversation_id.in_(ids)))
        kept: List[Tuple[int, str]] = []
        for handoff in handoffs:
            if handoff.conversation_id != conversation.id:
                session.delete(handoff)
                continue
            handoff.state = ERASED
            handoff.outcome = ERASED
            handoff.departement = None
            handoff.ended_at = handoff.ended_at or now
            kept.append((int(handoff.id), handoff.association))
            session.add(
                AuditEvent(actor="person", action="erasure", association=handoff.association, handoff_id=handoff.id)
            )
        if not kept:
            session.add(AuditEvent(actor="person", action="erasure"))
        session.flush()
        for other in conversations:
            if other.id != conversation.id:
                session.delete(other)
        flood_ids = (str(contact.id), str(contact.lookup_key)[:32])  # bot/inbox.py, the web chat
        conversation.public_id = f"erased-{new_token(16)}"
        conversation.state = "closed"
        contact.lookup_key = f"erased:{new_token(24)}"
        contact.language = None
        contact.stopped_at = None
        contact.erased_at = now
        outbound_id = None
        if confirmation and contact.address_enc is not None:
            row = new_outbound(store.vault, int(conversation.id), contact.channel, "bot", confirmation, language)
            row.created_at = now + timedelta(milliseconds=1)  # after the end of her requests' transcripts
            session.add(row)
            session.flush()
            outbound_id = int(row.id)
        else:
            contact.address_enc = None
            contact.address_key_id = None
        session.commit()
        return Erasure(int(contact.id), tuple(ids), public_ids, flood_ids, tuple(kept), outbound_id)


async def forget_in_redis(redis: Redis, erasure: Erasure, conversation_keys: Tuple[str, ...] = ()) -> None:
    """Her Rasa trackers, the conversations' keys (``{id}`` in ``conversation_keys`` patterns)
    and her flood counters."""
    keys = [tracker_key(public_id) for public_id in erasure.public_ids]
    keys += [pattern.format(id=cid) for cid in erasure.conversation_ids for pattern in conversation_keys]
    if keys:
        await redis.delete(*keys)
    for flood_id in erasure.flood_ids:
        async for key in redis.scan_iter(match=f"{queues.PREFIX}:flood:{flood_id}:*", count=500):
            await redis.delete(key)


def purge_erased(store: Store, older_than: timedelta = KEEP_STUB) -> int:
    """Delete what is left of contacts erased more than ``older_than`` ago; returns how many."""
    cutoff = utcnow() - older_than
    with store.sessions() as session:
        contacts = (
            session.execute(select(Contact.id).where(Contact.erased_at.is_not(None), Contact.erased_at < cutoff))
            .scalars()
            .all()
        )
        for contact_id in contacts:
            conversation_ids = (
                session.execute(select(Conversation.id).where(Conversation.contact_id == contact_id)).scalars().all()
            )
            delete_conversations(session, conversation_ids)
            session.execute(delete(Contact).where(Contact.id == contact_id))
        session.commit()
        return len(contacts)


def forget_address_once_settled(store: Store, message_id: int) -> None:
    """Once the last message to an erased contact is settled (sent or given up; not while it
    waits for a retry), her address goes at once (the rest with the stub)."""
    with store.sessions() as session:
        row = session.execute(
            select(Contact)
            .join(Conversation, Conversation.contact_id == Contact.id)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.id == message_id, Message.status.not_in([QUEUED, SENDING]), Contact.erased_at.is_not(None))
        ).scalar_one_or_none()
        if row is None:
            return
        row.address_enc = None
        row.address_key_id = None
        session.commit()


class ErasurePurger:
    """The worker that deletes the stubs of erased contacts once their time is up."""

    def __init__(
        self, store: Store, every: float = 60.0, keep: timedelta = KEEP_STUB, metrics: Optional[Metrics] = None
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.every = every
        self.keep = keep

    async def run(self) -> None:
        while True:
            try:
                purged = await self.store.run(purge_erased, self.store, self.keep)
                if purged:
                    log.info("purged what was left of %d erased contact(s)", purged)
            except Exception as error:  # keep purging whatever happens
                log.warning("erasure purge failed (%s)", type(error).__name__)
                self.metrics.error("erasure", error)
            await asyncio.sleep(self.every)
