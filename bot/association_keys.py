"""Crypto-shredding: each association's own data key.

When a request for a person ends (released, closed, cancelled, erased), the conversation's
messages up to its end and the staff's notes on it are sealed again under the association's
own key (``association_keys``, the key itself sealed under the deployment's keys). Destroying
that key (``python -m bot associations shred-key SLUG``: the association closes, or its agrément
ends) makes every such transcript and note unreadable for good, without finding them one by one.
Messages sealed under another association's key are left as they are (each keeps its own).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from typing import Dict, Optional, Tuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.crypto import KeyDestroyed, Vault
from bot.models import AssociationKey, HandoffNote, Message, utcnow
from bot.store import BODY, QUEUED, RECEIVED, SENDING

NOTE = "staff-note"  # purpose of sealed notes (bot/handoff/states.py)

WRAP = "association-key"  # purpose of the sealed keys
PREFIX = "a-"  # key ids of associations' keys: never a deployment key id
CACHE_S = 30.0  # a key destroyed by another process is refused here within this time


class AssociationKeys:
    """The associations' keys of one database; plugged into the vault as its resolver."""

    def __init__(self, sessions: sessionmaker[Session], vault: Vault) -> None:
        self._sessions = sessions
        self._vault = vault
        self._cache: Dict[str, Tuple[float, Optional[bytes]]] = {}  # key id -> (read at, key or None)
        self._lock = threading.Lock()
        vault.resolver = self.resolve

    def resolve(self, key_id: str) -> Optional[bytes]:
        """The key of ``key_id``; None if unknown; KeyDestroyed if destroyed."""
        if not key_id.startswith(PREFIX):
            return None
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is None or time.monotonic() - cached[0] > CACHE_S:
                with self._sessions() as session:
                    row = session.get(AssociationKey, key_id)
                    if row is None:
                        return None
                    key = bytes.fromhex(self._vault.open(row.wrapped, row.wrap_key_id, WRAP)) if row.wrapped else None
                cached = (time.monotonic(), key)
                self._cache[key_id] = cached
            key = cached[1]
        if key is None:
            raise KeyDestroyed("this association's key was destroyed")
        return key

    def current(self, session: Session, association: str) -> str:
        """The association's live key id, created on first use (in the caller's transaction)."""
        key_id = session.execute(
            select(AssociationKey.key_id)
            .where(AssociationKey.association == association, AssociationKey.destroyed_at.is_(None))
            .order_by(AssociationKey.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if key_id is not None:
            return str(key_id)
        key = os.urandom(32)
        wrapped, wrap_key_id = self._vault.seal(key.hex(), WRAP)
        key_id = f"{PREFIX}{os.urandom(6).hex()}"  # fits the 16-character key_id columns
        session.add(AssociationKey(key_id=key_id, association=association, wrapped=wrapped, wrap_key_id=wrap_key_id))
        session.flush()
        with self._lock:
            self._cache[key_id] = (time.monotonic(), key)
        return key_id

    def reseal(self, session: Session, association: str, conversation_id: int, handoff_id: int, until: datetime) -> int:
        """Seal again, under the association's key, the conversation's messages up to ``until``
        and the notes of ``handoff_id`` still under the deployment's keys; returns how many."""
        key_id = self.current(session, association)
        count = 0
        messages = session.execute(
            select(Message).where(
                Message.conversation_id == conversation_id,
                Message.created_at <= until,
                # a row still to answer or to send stays readable by the workers
                Message.status.not_in((QUEUED, SENDING, RECEIVED)),
            )
        ).scalars()
        for message in messages:
            if self._vault.own_key(message.key_id):
                text = self._vault.open(message.body_enc, message.key_id, BODY)
                message.body_enc, message.key_id = self._vault.seal(text, BODY, key_id)
                count += 1
        for note in session.execute(select(HandoffNote).where(HandoffNote.handoff_id == handoff_id)).scalars():
            if self._vault.own_key(note.key_id):
                text = self._vault.open(note.body_enc, note.key_id, NOTE)
                note.body_enc, note.key_id = self._vault.seal(text, NOTE, key_id)
                count += 1
        return count

    def destroy(self, association: str) -> int:
        """Destroy every key of ``association``; returns how many. Irreversible."""
        with self._sessions() as session:
            ids = (
                session.execute(
                    select(AssociationKey.key_id).where(
                        AssociationKey.association == association, AssociationKey.destroyed_at.is_(None)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                session.execute(
                    update(AssociationKey)
                    .where(AssociationKey.key_id.in_(ids))
                    .values(wrapped=None, wrap_key_id=None, destroyed_at=utcnow())
                )
                session.commit()
        with self._lock:
            for key_id in ids:
                self._cache[key_id] = (time.monotonic(), None)
        return len(ids)
