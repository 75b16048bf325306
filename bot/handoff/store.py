"""The associations directory in the database (one row per association, its JSON record)."""

from __future__ import annotations

import json
from typing import List, Tuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.directory import Directory, parse_directory
from bot.models import AssociationRecord, utcnow


class DirectoryStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def load(self) -> Directory:
        with self._sessions() as session:
            rows = session.execute(select(AssociationRecord.record).order_by(AssociationRecord.slug)).scalars().all()
        return parse_directory([json.loads(row) for row in rows])

    def replace(self, directory: Directory) -> Tuple[List[str], List[str], List[str]]:
        """Make the stored directory ``directory`` in one transaction; returns the slugs
        (added, changed, removed)."""
        wanted = {a.slug: json.dumps(a.to_record(), ensure_ascii=False, sort_keys=True) for a in directory.associations}
        added: List[str] = []
        changed: List[str] = []
        with self._sessions() as session:
            existing = {row.slug: row for row in session.execute(select(AssociationRecord)).scalars().all()}
            removed = sorted(set(existing) - set(wanted))
            if removed:
                session.execute(delete(AssociationRecord).where(AssociationRecord.slug.in_(removed)))
            for slug, record in wanted.items():
                row = existing.get(slug)
                if row is None:
                    session.add(AssociationRecord(slug=slug, record=record, updated_at=utcnow()))
                    added.append(slug)
                elif row.record != record:
                    row.record = record
                    row.updated_at = utcnow()
                    changed.append(slug)
            session.commit()
        return sorted(added), sorted(changed), removed
