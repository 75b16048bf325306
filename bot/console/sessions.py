"""Console sessions and the login rate limit, in Redis (shared by every console process).

The browser holds a random token in an HttpOnly, SameSite=Strict cookie; Redis keeps only its
hash, with the staff id and the session's CSRF token, for ``hours`` at most and 2 idle hours.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from redis.asyncio import Redis

from bot.queues import PREFIX

IDLE_S = 2 * 3600
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES = 5


@dataclass(frozen=True)
class ConsoleSession:
    staff_id: int
    csrf: str
    started: float


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _key(token: str) -> str:
    return f"{PREFIX}:console:session:{_hash(token)}"


class Sessions:
    def __init__(self, redis: Redis, hours: int = 10) -> None:
        self.redis = redis
        self.max_age_s = hours * 3600

    async def open(self, staff_id: int) -> str:
        token = secrets.token_urlsafe(32)
        record = {"staff": staff_id, "csrf": secrets.token_urlsafe(24), "started": time.time()}
        await self.redis.set(_key(token), json.dumps(record), ex=min(IDLE_S, self.max_age_s))
        return token

    async def get(self, token: Optional[str]) -> Optional[ConsoleSession]:
        if not token or len(token) > 100:
            return None
        key = _key(token)
        raw = await self.redis.get(key)
        if raw is None:
            return None
        record = json.loads(raw)
        left = self.max_age_s - (time.time() - float(record["started"]))
        if left <= 0:
            await self.redis.delete(key)
            return None
        await self.redis.expire(key, int(min(IDLE_S, left)) or 1)
        return ConsoleSession(int(record["staff"]), str(record["csrf"]), float(record["started"]))

    async def close(self, token: Optional[str]) -> None:
        if token:
            await self.redis.delete(_key(token))


class LoginLimiter:
    """At most ``LOGIN_MAX_FAILURES`` failed logins per username and per client address in
    ``LOGIN_WINDOW_S``; the keys are hashes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _keys(self, username: str, client: str) -> list:
        return [
            f"{PREFIX}:console:login-failures:user:{_hash(username.strip().lower())}",
            f"{PREFIX}:console:login-failures:client:{_hash(client)}",
        ]

    async def blocked(self, username: str, client: str) -> bool:
        counts = await self.redis.mget(self._keys(username, client))
        return any(int(count or 0) >= LOGIN_MAX_FAILURES for count in counts)

    async def attempt(self, username: str, client: str) -> None:
        """Count an attempt before checking it, so that attempts made at once cannot all pass
        before the first failure is counted."""
        for key in self._keys(username, client):
            count = await self.redis.incr(key)
            if count == 1:
                await self.redis.expire(key, LOGIN_WINDOW_S)

    async def succeeded(self, username: str, client: str) -> None:
        """A right login: the account's count starts again, the address's attempt is undone
        (colleagues behind one office address are not locked out by each other)."""
        user_key, client_key = self._keys(username, client)
        await self.redis.delete(user_key)
        if await self.redis.decr(client_key) <= 0:
            await self.redis.delete(client_key)
