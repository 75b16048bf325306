"""A private Redis server for a local run, when no ``REDIS_URL`` is configured.

It is a real ``redis-server`` (the system's, or the binary of the ``redis-server`` package),
bound to loopback on a free port, with a random password, keeping nothing on disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional


class RedisNotFound(RuntimeError):
    pass


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # the PyPI package "redis-server" ships a binary
        import redis_server  # type: ignore[import-not-found]

        return str(redis_server.REDIS_SERVER_PATH)
    except ImportError:
        pass
    raise RedisNotFound("no redis-server found: install it (apt-get install redis-server) or set REDIS_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self, run_dir: Path, port: Optional[int] = None) -> None:
        self.run_dir = run_dir
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(24)
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.run_dir / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                f"port {self.port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {self.password}\n"
                f'save ""\nappendonly no\ndir {self.run_dir}\nlogfile {self.run_dir / "redis.log"}\n'
                "daemonize no\n"
            )
        # its own session: Ctrl+C in the terminal reaches only us, and we stop Redis last
        self.process = subprocess.Popen(
            [find_binary(), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.run_dir / 'redis.log'}")
            try:
                if client.ping():
                    return self.url
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
