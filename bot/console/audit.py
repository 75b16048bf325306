"""Audit events: every transcript read, claim, reply, note, release, close, login and admin
change, with who did it and when. Never a message, a note or an address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.models import AuditEvent, utcnow


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    action: str
    association: Optional[str]
    handoff_id: Optional[int]
    detail: Optional[str]


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self,
        actor: str,
        action: str,
        association: Optional[str] = None,
        handoff_id: Optional[int] = None,
        detail: Optional[str] = None,
    ) -> None:
        with self._sessions() as session:
            session.add(
                AuditEvent(
                    at=utcnow(),
                    actor=actor[:64],
                    action=action[:32],
                    association=association,
                    handoff_id=handoff_id,
                    detail=detail[:200] if detail else None,
                )
            )
            session.commit()

    def recent(self, limit: int = 200, handoff_id: Optional[int] = None) -> List[Event]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if handoff_id is not None:
            query = query.where(AuditEvent.handoff_id == handoff_id)
        with self._sessions() as session:
            rows = session.execute(query).scalars().all()
            return [Event(r.at, r.actor, r.action, r.association, r.handoff_id, r.detail) for r in rows]
