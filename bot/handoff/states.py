"""The life of a request for a person, kept in SQL with guarded transitions.

bot -> requested -> claimed -> released (back to the bot) | closed (with an outcome), and
requested -> cancelled when she withdraws it. Each transition is one conditional UPDATE: two
staff members claiming the same request at once cannot both win, and an action on a request
that moved on changes nothing (the caller gets False). The conversation's own ``state``
follows (``bot``, ``requested``, ``claimed``): the router reads it to stay silent while a human
holds the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, List, Optional, Sequence

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import statistics
from bot.association_keys import NOTE, AssociationKeys
from bot.crypto import Vault
from bot.models import Contact, Conversation, Handoff, HandoffNote, Message, utcnow
from bot.store import new_outbound, readable

SHREDDED_NOTE = "[illisible : la clé de l'association a été détruite]"  # console only (French)

REQUESTED = "requested"
CLAIMED = "claimed"
RELEASED = "released"
CLOSED = "closed"
CANCELLED = "cancelled"
OPEN = (REQUESTED, CLAIMED)
OUTCOMES = ("answered", "oriented", "accompanied", "no_reply", "not_relevant", "other")


@dataclass(frozen=True)
class HandoffRef:
    id: int
    conversation_id: int
    association: str
    state: str
    language: str
    departement: Optional[str]
    urgent: bool
    minor: bool
    claimed_by: Optional[str]
    requested_at: datetime
    ended_at: Optional[datetime] = None


@dataclass(frozen=True)
class Note:
    author: str
    text: str
    at: datetime


def _open_row(session: Session, conversation_id: int) -> Optional[Handoff]:
    """The conversation's open request (requested or claimed), if any: at most one exists."""
    return session.execute(
        select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.state.in_(OPEN))
    ).scalar_one_or_none()


def _ref(row: Handoff) -> HandoffRef:
    return HandoffRef(
        id=int(row.id),
        conversation_id=int(row.conversation_id),
        association=row.association,
        state=row.state,
        language=row.language,
        departement=row.departement,
        urgent=bool(row.urgent),
        minor=bool(row.minor),
        claimed_by=row.claimed_by,
        requested_at=row.requested_at,
        ended_at=row.ended_at,
    )


def _ended(how: str) -> Callable[[Handoff], statistics.Count]:
    """What the end of a request counts: by association, its outcome (or released, cancelled)."""

    def counted(row: Handoff) -> statistics.Count:
        return statistics.Count(statistics.HANDOFF_ENDED, association=row.association, value=how)

    return counted


class HandoffStore:
    def __init__(self, sessions: sessionmaker[Session], vault: Vault, keys: Optional[AssociationKeys] = None) -> None:
        """``keys``: the associations' own keys; an ended request's transcript and notes are
        sealed again under its association's (crypto-shredding, bot/association_keys.py)."""
        self._sessions = sessions
        self._vault = vault
        self._keys = keys

    def _seal_for_association(self, session: Session, handoff_id: int) -> None:
        if self._keys is None:
            return
        row = session.get(Handoff, handoff_id)
        if row is not None and row.ended_at is not None:
            self._keys.reseal(session, row.association, int(row.conversation_id), int(row.id), row.ended_at)

    def _set_conversation(self, session: Session, conversation_id: int, state: str) -> None:
        session.execute(update(Conversation).where(Conversation.id == conversation_id).values(state=state))

    def open_for(self, conversation_id: int) -> Optional[HandoffRef]:
        with self._sessions() as session:
            row = _open_row(session, conversation_id)
            return _ref(row) if row else None

    def request(
        self,
        conversation_id: int,
        association: str,
        language: str,
        departement: Optional[str] = None,
        urgent: bool = False,
        minor: bool = False,
        counts: Sequence[statistics.Count] = (),
    ) -> HandoffRef:
        """Open a request, or return the one already open (flags only ever added). A new
        request is counted (by association) with ``counts`` in the same transaction."""
        with self._sessions() as session:
            # lock the conversation: two messages asking for a person open one request
            session.execute(
                update(Conversation).where(Conversation.id == conversation_id).values(state=Conversation.state)
            )
            row = _open_row(session, conversation_id)
            if row is not None:
                row.urgent = bool(row.urgent) or urgent
                row.minor = bool(row.minor) or minor
                session.commit()
                return _ref(row)
            row = Handoff(
                conversation_id=conversation_id,
                association=association,
                state=REQUESTED,
                departement=departement,
                language=language,
                urgent=urgent,
                minor=minor,
                alerts=0,
                requested_at=utcnow(),
            )
            session.add(row)
            self._set_conversation(session, conversation_id, REQUESTED)
            requested = statistics.Count(statistics.HANDOFF_REQUESTED, association=association)
            statistics.add(session, [requested, *counts])
            try:
                session.commit()
            except IntegrityError:  # pragma: no cover - the conversation vanished (erased)
                session.rollback()
                raise
            return _ref(row)

    def _move(
        self,
        handoff_id: int,
        from_states: tuple,
        to_state: str,
        conversation_state: str,
        association: Optional[str] = None,
        staff: Optional[str] = None,
        counted: Optional[Callable[[Handoff], statistics.Count]] = None,
        **values: object,
    ) -> bool:
        """Move a request from one of ``from_states``; ``counted``: what the move counts (from
        the row as moved), in the same transaction."""
        with self._sessions() as session:
            conditions = [Handoff.id == handoff_id, Handoff.state.in_(from_states)]
            if association is not None:
                conditions.append(Handoff.association == association)
            if staff is not None and to_state != CLAIMED:
                conditions.append(Handoff.claimed_by == staff)
            moved = session.execute(
                update(Handoff)
                .where(*conditions)
                .values(state=to_state, **values)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not moved:
                session.rollback()
                return False
            conversation_id = session.execute(
                select(Handoff.conversation_id).where(Handoff.id == handoff_id)
            ).scalar_one()
            self._set_conversation(session, int(conversation_id), conversation_state)
            if counted is not None:
                moved_row = session.get(Handoff, handoff_id)
                if moved_row is not None:
                    statistics.add(session, [counted(moved_row)])
            if to_state not in OPEN:
                self._seal_for_association(session, handoff_id)
            session.commit()
            return True

    def claim(self, handoff_id: int, staff: str, association: str) -> bool:
        """A staff member of ``association`` takes the request; False if someone was faster."""
        now = utcnow()

        def counted(row: Handoff) -> statistics.Count:
            wait = statistics.wait_bucket(statistics.seconds_between(row.requested_at, now))
            return statistics.Count(statistics.HANDOFF_CLAIMED, association=row.association, value=wait)

        return self._move(
            handoff_id, (REQUESTED,), CLAIMED, CLAIMED, association, staff, counted, claimed_by=staff, claimed_at=now
        )

    def take_over(self, handoff_id: int, staff: str, association: str, holder: str) -> bool:
        """A colleague of the same association takes a conversation ``holder`` holds (she went
        home, her session ended): the person must never be left with a silent bot. False if
        it is not ``holder``'s any more (two colleagues taking it at once: one wins)."""
        with self._sessions() as session:
            moved = session.execute(
                update(Handoff)
                .where(
                    Handoff.id == handoff_id,
                    Handoff.state == CLAIMED,
                    Handoff.association == association,
                    Handoff.claimed_by == holder,
                )
                .values(claimed_by=staff, claimed_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
            return bool(moved)

    def release(self, handoff_id: int, staff: str, association: str) -> bool:
        """Give the conversation back to the bot."""
        return self._move(
            handoff_id, (CLAIMED,), RELEASED, "bot", association, staff, _ended(RELEASED), ended_at=utcnow()
        )

    def close(self, handoff_id: int, staff: str, association: str, outcome: str) -> bool:
        if outcome not in OUTCOMES:
            raise ValueError("unknown outcome")
        return self._move(
            handoff_id,
            (CLAIMED,),
            CLOSED,
            "bot",
            association,
            staff,
            _ended(outcome),
            outcome=outcome,
            ended_at=utcnow(),
        )

    def cancel(self, conversation_id: int) -> bool:
        """She withdraws a request nobody has taken yet."""
        with self._sessions() as session:
            cancelled = session.execute(
                select(Handoff.id, Handoff.association).where(
                    Handoff.conversation_id == conversation_id, Handoff.state == REQUESTED
                )
            ).all()
            moved = session.execute(
                update(Handoff)
                .where(Handoff.conversation_id == conversation_id, Handoff.state == REQUESTED)
                .values(state=CANCELLED, ended_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved:
                self._set_conversation(session, conversation_id, "bot")
                for handoff_id, _association in cancelled:
                    self._seal_for_association(session, int(handoff_id))
                statistics.add(session, [_ended(CANCELLED)(Handoff(association=a)) for _id, a in cancelled])
            session.commit()
            return bool(moved)

    def queue(self, association: str) -> List[HandoffRef]:
        """Open requests of an association: urgent first, then the longest waiting."""
        with self._sessions() as session:
            rows = (
                session.execute(
                    select(Handoff)
                    .where(Handoff.association == association, Handoff.state.in_(OPEN))
                    .order_by(Handoff.urgent.desc(), Handoff.requested_at)
                )
                .scalars()
                .all()
            )
            return [_ref(row) for row in rows]

    def due_for_alert(self, unclaimed_for: timedelta, every: timedelta) -> List[HandoffRef]:
        """Requests nobody claimed for ``unclaimed_for``, not alerted again for ``every``;
        each is counted as alerted."""
        now = utcnow()
        return self._alert(
            now,
            every,
            Handoff.state == REQUESTED,
            Handoff.requested_at <= now - unclaimed_for,
        )

    def flag(self, conversation_id: int, urgent: bool, minor: bool) -> Optional[HandoffRef]:
        """Add the danger (``urgent``) or minor flag to the conversation's open request."""
        with self._sessions() as session:
            row = _open_row(session, conversation_id)
            if row is None:
                return None
            row.urgent = bool(row.urgent) or urgent
            row.minor = bool(row.minor) or minor
            session.commit()
            return _ref(row)

    def set_language(self, conversation_id: int, language: str) -> Optional[HandoffRef]:
        """She changed language: her open request follows (notices, canned replies)."""
        with self._sessions() as session:
            row = _open_row(session, conversation_id)
            if row is None:
                return None
            row.language = language
            session.commit()
            return _ref(row)

    def get(self, handoff_id: int, association: str) -> Optional[HandoffRef]:
        """A request of ``association`` (None for another association's: staff never learn
        that it exists)."""
        with self._sessions() as session:
            row = session.execute(
                select(Handoff).where(Handoff.id == handoff_id, Handoff.association == association)
            ).scalar_one_or_none()
            return _ref(row) if row else None

    def recent(self, association: str, limit: int = 20) -> List[HandoffRef]:
        """The association's requests that ended most recently (released, closed, cancelled)."""
        with self._sessions() as session:
            rows = (
                session.execute(
                    select(Handoff)
                    .where(Handoff.association == association, Handoff.state.not_in(OPEN))
                    .order_by(Handoff.id.desc())
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            return [_ref(row) for row in rows]

    def add_note(self, handoff_id: int, author: str, text: str) -> int:
        """A private note of the staff (encrypted; never sent to the person)."""
        body, key_id = self._vault.seal(text, NOTE)
        with self._sessions() as session:
            note = HandoffNote(handoff_id=handoff_id, author=author, body_enc=body, key_id=key_id, created_at=utcnow())
            session.add(note)
            session.commit()
            return int(note.id)

    def notes(self, handoff_id: int) -> List[Note]:
        """The notes on a request and on the earlier requests of the same conversation made to
        the same association (another association's notes are never shown)."""
        with self._sessions() as session:
            this = select(Handoff.conversation_id, Handoff.association).where(Handoff.id == handoff_id).subquery()
            rows = (
                session.execute(
                    select(HandoffNote)
                    .join(Handoff, HandoffNote.handoff_id == Handoff.id)
                    .join(
                        this,
                        (Handoff.conversation_id == this.c.conversation_id)
                        & (Handoff.association == this.c.association),
                    )
                    .order_by(HandoffNote.id)
                )
                .scalars()
                .all()
            )
            return [
                Note(r.author, readable(self._vault, r.body_enc, r.key_id, NOTE) or SHREDDED_NOTE, r.created_at)
                for r in rows
            ]

    def notice(self, conversation_id: int, text: str, language: str) -> Optional[int]:
        """Queue what the assistant tells her about her request (a person is there, the
        person has finished) in the outbox of her conversation."""
        with self._sessions() as session:
            message_id = self._add_outbound(session, conversation_id, "bot", text, language)
            session.commit()
            return message_id

    def due_for_unanswered_alert(self, unanswered_for: timedelta) -> List[HandoffRef]:
        """Held conversations where she wrote more than ``unanswered_for`` ago and no staff
        reply came since (the staff member went home, her session ended), not alerted again
        for as long; each is counted as alerted."""
        now = utcnow()
        since = func.coalesce(
            select(func.max(Message.created_at))
            .where(Message.conversation_id == Handoff.conversation_id, Message.author == "staff")
            .correlate(Handoff)
            .scalar_subquery(),
            Handoff.claimed_at,
        )
        waiting = (
            exists()
            .where(
                Message.conversation_id == Handoff.conversation_id,
                Message.direction == "in",
                Message.created_at > since,
                Message.created_at <= now - unanswered_for,
            )
            .correlate(Handoff)
        )
        return self._alert(now, unanswered_for, Handoff.state == CLAIMED, waiting)

    def _alert(self, now: datetime, every: timedelta, *conditions: object) -> List[HandoffRef]:
        """The requests meeting ``conditions`` not alerted for ``every``, counted as alerted
        (rows another worker is alerting are skipped)."""
        with self._sessions() as session:
            rows = (
                session.execute(
                    select(Handoff)
                    .where(
                        *conditions,
                        (Handoff.last_alert_at.is_(None)) | (Handoff.last_alert_at <= now - every),
                    )
                    .with_for_update(skip_locked=True, of=Handoff)
                )
                .scalars()
                .all()
            )
            for row in rows:
                row.alerts = int(row.alerts or 0) + 1
                row.last_alert_at = now
            session.commit()
            return [_ref(row) for row in rows]

    def staff_reply(self, handoff_id: int, staff: str, association: str, text: str) -> Optional[int]:
        """Queue a staff member's reply in the outbox of the conversation she holds; None if
        she does not hold it (checked in the same transaction)."""
        with self._sessions() as session:
            row = session.execute(
                select(Handoff.conversation_id, Handoff.language)
                .where(
                    Handoff.id == handoff_id,
                    Handoff.state == CLAIMED,
                    Handoff.claimed_by == staff,
                    Handoff.association == association,
                )
                .with_for_update()
            ).first()
            if row is None:
                return None
            message_id = self._add_outbound(session, int(row.conversation_id), "staff", text, row.language)
            session.commit()
            return message_id

    def _add_outbound(
        self, session: Session, conversation_id: int, author: str, text: str, language: str
    ) -> Optional[int]:
        channel = session.execute(
            select(Contact.channel)
            .join(Conversation, Conversation.contact_id == Contact.id)
            .where(Conversation.id == conversation_id)
        ).scalar_one_or_none()
        if channel is None:
            return None
        message = new_outbound(self._vault, conversation_id, channel, author, text, language)
        session.add(message)
        session.flush()
        return int(message.id)
