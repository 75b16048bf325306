"""Retention: what is kept, and for how long (GDPR: no longer than needed).

Defaults (``OUTREACH_RETENTION_BOT_DAYS``, ``OUTREACH_RETENTION_HANDOFF_DAYS``): a conversation
with the bot only goes 30 days after her last message; one handed to an association goes 90
days after its last request ended (and never while a request is open, nor while she still
writes). With it go its messages, its requests and the staff's notes, and its Rasa tracker; a
contact left without conversations goes too (her encrypted address with it). The audit log
keeps its events (they hold no text and no address).

Run by the deployment's scheduler (cron, a systemd timer): ``python -m bot purge``; with
``--dry-run`` it counts what it would delete and deletes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import List, Optional, Sequence, Tuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot.handoff.states import OPEN
from bot.models import Contact, Conversation, Handoff, HandoffNote, Message, utcnow
from bot.store import Store, _aware


@dataclass(frozen=True)
class Purged:
    conversations: int = 0
    messages: int = 0
    handoffs: int = 0
    notes: int = 0
    contacts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def due_conversations(
    session: Session, now: datetime, bot_only: timedelta, handed_off: timedelta
) -> List[Tuple[int, str]]:
    """(id, Rasa sender id) of the conversations whose time is up."""
    last_request = (
        select(Handoff.conversation_id, func.max(Handoff.ended_at).label("ended"), func.count().label("requests"))
        .group_by(Handoff.conversation_id)
        .subquery()
    )
    still_open = select(Handoff.conversation_id).where(Handoff.state.in_(OPEN))
    rows = session.execute(
        select(Conversation.id, Conversation.public_id, last_request.c.ended, last_request.c.requests)
        .outerjoin(last_request, last_request.c.conversation_id == Conversation.id)
        .where(Conversation.last_message_at < now - bot_only, Conversation.id.not_in(still_open))
        # PostgreSQL: a message arriving now waits, and the conditions are checked again after it
        .with_for_update(of=Conversation)
    ).all()
    due = []
    for row in rows:
        if row.requests is None:  # the bot only
            due.append((int(row.id), row.public_id))
        elif row.ended is not None and _aware(row.ended) < now - handed_off:
            due.append((int(row.id), row.public_id))
    return due


def purge(
    store: Store,
    bot_only: timedelta = timedelta(days=30),
    handed_off: timedelta = timedelta(days=90),
    dry_run: bool = False,
    now: Optional[datetime] = None,
) -> Tuple[Purged, List[str]]:
    """Delete (or, with ``dry_run``, count) what is due; returns the counts and the Rasa sender
    ids of the conversations deleted (their trackers go too: :func:`forget_trackers`)."""
    now = now or utcnow()
    with store.sessions() as session:
        due = due_conversations(session, now, bot_only, handed_off)
        ids = [conversation_id for conversation_id, _ in due]
        handoff_ids = session.execute(select(Handoff.id).where(Handoff.conversation_id.in_(ids))).scalars().all()
        counts = {
            "conversations": len(ids),
            "messages": _count(session, select(Message.id).where(Message.conversation_id.in_(ids))),
            "handoffs": len(handoff_ids),
            "notes": _count(session, select(HandoffNote.id).where(HandoffNote.handoff_id.in_(handoff_ids))),
        }
        if not dry_run:
            delete_conversations(session, ids)
        remaining = select(Conversation.contact_id)
        if dry_run:  # as if the due conversations were gone
            remaining = remaining.where(Conversation.id.not_in(ids))
        lonely = select(Contact.id).where(
            Contact.id.not_in(remaining), Contact.last_seen_at < now - bot_only, Contact.erased_at.is_(None)
        )
        counts["contacts"] = _count(session, lonely)
        if not dry_run:
            for part in _batches(session.execute(lonely).scalars().all()):
                session.execute(delete(Contact).where(Contact.id.in_(part)))
            session.commit()
        else:
            session.rollback()
    return Purged(**counts), [public_id for _, public_id in due]


def delete_conversations(session: Session, conversation_ids: Sequence[int]) -> None:
    """Delete conversations with their messages, requests and the notes on them (the caller
    commits): what retention and an erasure's purge both do."""
    for part in _batches(conversation_ids):
        requests = select(Handoff.id).where(Handoff.conversation_id.in_(part))
        for statement in (
            delete(HandoffNote).where(HandoffNote.handoff_id.in_(requests)),
            delete(Handoff).where(Handoff.conversation_id.in_(part)),
            delete(Message).where(Message.conversation_id.in_(part)),
            delete(Conversation).where(Conversation.id.in_(part)),
        ):
            session.execute(statement.execution_options(synchronize_session=False))


def _batches(ids: Sequence[int], size: int = 500) -> List[Sequence[int]]:
    """``ids`` in parts small enough for any database's parameter limit (SQLite: 999)."""
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _count(session: Session, query: Select) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())
