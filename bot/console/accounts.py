"""Staff accounts: argon2 password hashes, two-factor codes (TOTP), roles, associations.

Roles: ``staff`` and ``mediator`` work on the conversations of their association; ``admin`` is
the deployment's administrator: the directory, every association's accounts and the whole audit
log. In the console nobody, admin included, reads another association's conversations; an admin
could create an account in another association (as any system administrator could), which is
why every account creation is an audit event. Give the role to as few people as possible.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.crypto import Vault
from bot.models import Staff, utcnow

ROLES = ("staff", "mediator", "admin")
TOTP_PURPOSE = "totp-secret"  # the purpose label of sealed TOTP secrets
ISSUER = "Outreach console"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12


class AccountError(ValueError):
    """An account cannot be created or changed; the message says why (never a secret)."""


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    display_name: str
    role: str
    association: Optional[str]
    active: bool

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def _member(row: Staff) -> StaffMember:
    return StaffMember(
        id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        association=row.association,
        active=bool(row.active),
    )


class StaffStore:
    def __init__(self, sessions: sessionmaker[Session], vault: Vault, hasher: Optional[PasswordHasher] = None) -> None:
        self._sessions = sessions
        self._vault = vault
        self._hasher = hasher or PasswordHasher()
        # verified when the username is unknown, so that the answer takes as long
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def create(
        self,
        username: str,
        display_name: str,
        role: str,
        association: Optional[str],
        password: str,
        totp_secret: Optional[str] = None,
    ) -> Tuple[StaffMember, str]:
        """A new account; returns it and its TOTP secret (to show once, as a QR code or text)."""
        username = username.strip().lower()
        if not _USERNAME.match(username):
            raise AccountError("the username must be 2-64 lower-case letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccountError("the role must be staff, mediator or admin")
        if role != "admin" and not association:
            raise AccountError("staff and mediators belong to an association")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
        secret = totp_secret or pyotp.random_base32()
        sealed, key_id = self._vault.seal(secret, TOTP_PURPOSE)
        row = Staff(
            username=username,
            display_name=(display_name.strip() or username)[:80],
            role=role,
            association=association or None,
            password_hash=self._hasher.hash(password),
            totp_secret_enc=sealed,
            totp_key_id=key_id,
            totp_last_step=0,
            active=True,
        )
        with self._sessions() as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise AccountError("this username is taken") from None
            return _member(row), secret

    def authenticate(
        self, username: str, password: str, code: str, at: Optional[float] = None
    ) -> Optional[StaffMember]:
        """The account if the password and the current two-factor code are right and the code
        was not used before; None otherwise (the same answer whatever was wrong)."""
        username = username.strip().lower()
        with self._sessions() as session:
            row = session.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
            if row is None or not row.active:
                self._verify(self._dummy, password)
                return None
            if not self._verify(row.password_hash, password):
                return None
            secret = self._vault.open(row.totp_secret_enc, row.totp_key_id, TOTP_PURPOSE)
            step = _matching_step(secret, code.strip(), time.time() if at is None else at)
            if step is None or step <= int(row.totp_last_step or 0):
                return None
            # one use per code: the conditional update fails if another login used it first
            used = session.execute(
                update(Staff)
                .where(Staff.id == row.id, Staff.totp_last_step < step)
                .values(totp_last_step=step, last_login_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if not used:
                session.rollback()
                return None
            if self._hasher.check_needs_rehash(row.password_hash):
                session.execute(
                    update(Staff).where(Staff.id == row.id).values(password_hash=self._hasher.hash(password))
                )
            session.commit()
            return _member(row)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def get(self, staff_id: int) -> Optional[StaffMember]:
        with self._sessions() as session:
            row = session.get(Staff, staff_id)
            return _member(row) if row is not None else None

    def by_username(self, username: str) -> Optional[StaffMember]:
        with self._sessions() as session:
            row = session.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
            return _member(row) if row is not None else None

    def all(self) -> List[StaffMember]:
        with self._sessions() as session:
            rows = session.execute(select(Staff).order_by(Staff.association, Staff.username)).scalars().all()
            return [_member(row) for row in rows]

    def set_active(self, staff_id: int, active: bool) -> bool:
        with self._sessions() as session:
            changed = session.execute(update(Staff).where(Staff.id == staff_id).values(active=active)).rowcount
            session.commit()
            return bool(changed)

    def totp_secret(self, username: str) -> Optional[str]:
        """The two-factor secret (for the local demo's code command and for enrolment)."""
        with self._sessions() as session:
            row = session.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
            if row is None:
                return None
            return self._vault.open(row.totp_secret_enc, row.totp_key_id, TOTP_PURPOSE)

    def count(self) -> int:
        return len(self.all())


def provisioning_uri(username: str, secret: str) -> str:
    """The otpauth:// address an authenticator app reads (as a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def current_code(secret: str, at: Optional[float] = None) -> str:
    return pyotp.TOTP(secret).at(time.time() if at is None else at)


def _matching_step(secret: str, code: str, now: float) -> Optional[int]:
    """The 30-second step whose code is ``code`` (now, or one step before or after, for
    clocks a little apart), or None."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    here = int(now // totp.interval)
    for step in (here, here - 1, here + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None
