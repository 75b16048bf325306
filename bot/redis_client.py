"""The asyncio Redis client every part of the assistant uses.

redis-py 4.x (pinned by Rasa 3.6) loses cancellations on Python 3.10, in two places:

* before each command the pool checks a connection with ``async_timeout(0)`` around a read;
  a cancellation arriving then is taken for that (always expired) zero timeout and dropped;
* each command is written under ``asyncio.wait_for``, which returns the write's result and
  drops a cancellation that arrives as the write completes (fixed in Python 3.12).

About one cancellation in ten of a worker's loop of commands is lost that way
(``tests/test_redis_client.py``), and a worker told to stop goes on forever: a gateway that
never shuts down, a test that never ends. :class:`CancellationSafeParser` looks at what the
connection has already received instead (no timeout needed), and the connection classes
below write under ``async_timeout``, which gives a cancellation back unless its own time ran
out.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, Type, Union

from async_timeout import timeout as async_timeout
from redis.asyncio import Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    PythonParser,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError, RedisError, TimeoutError

# A Redis call never waits forever: a connection left broken (a restart, a cancelled command)
# raises after TIMEOUT_S, and every caller treats RedisError as "retry later". Blocking reads
# (streams, pub/sub) ask for at most a second or two.
TIMEOUT_S = 10.0


class CancellationSafeParser(PythonParser):
    async def can_read_destructive(self) -> bool:
        """True when the connection holds unread data (the pool then replaces it)."""
        if not self._connected:
            raise RedisError("Buffer is closed.")
        if self._buffer:
            return True
        stream = self._stream
        problem = stream.exception()
        if problem is not None:  # the pool reconnects on OSError, like the original read
            raise problem
        # the event loop moves what the socket received into the stream's buffer as it comes
        return bool(getattr(stream, "_buffer", b""))


class _SafeSend:
    """``send_packed_command`` of redis-py 4.6, with ``async_timeout`` for ``wait_for``."""

    async def send_packed_command(
        self: Any, command: Union[bytes, str, Iterable[bytes]], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect()
        elif check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            if self.socket_timeout:
                async with async_timeout(self.socket_timeout):
                    await self._send_packed_command(command)
            else:
                await self._send_packed_command(command)
        except asyncio.TimeoutError:
            await self.disconnect(nowait=True)
            raise TimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise ConnectionError(f"Error while writing to socket: {type(error).__name__}") from error
        except BaseException:
            # a write cut short leaves the connection in an unknown state: never reuse it
            await self.disconnect(nowait=True)
            raise


class SafeConnection(_SafeSend, Connection):
    pass


class SafeSSLConnection(_SafeSend, SSLConnection):
    pass


class SafeUnixConnection(_SafeSend, UnixDomainSocketConnection):
    pass


SAFE: Dict[Type[AbstractConnection], Type[AbstractConnection]] = {
    Connection: SafeConnection,
    SSLConnection: SafeSSLConnection,
    UnixDomainSocketConnection: SafeUnixConnection,
}


def connect(url: str, **options: Any) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``; nothing connects
    yet); ``options`` override the defaults."""
    settings: Dict[str, Any] = {
        "health_check_interval": 30,
        "socket_keepalive": True,
        "socket_timeout": TIMEOUT_S,
        "socket_connect_timeout": 5,
        "decode_responses": True,
        "parser_class": CancellationSafeParser,
    }
    settings.update(options)
    settings.update(parse_url(url))  # what the URL says wins, as with Redis.from_url
    settings["connection_class"] = SAFE[settings.get("connection_class", Connection)]
    client = Redis(connection_pool=ConnectionPool(**settings))
    client.auto_close_connection_pool = True  # closing the client closes its connections
    return client
