"""A Starlette app served by uvicorn on a loopback port, in a thread: the base of the fake
provider APIs the real clients talk to in tests."""

from __future__ import annotations

import threading
import time
from typing import Optional, TypeVar

import uvicorn
from starlette.applications import Starlette

from bot.redis_server import free_port

Self = TypeVar("Self", bound="LoopbackServer")


class LoopbackServer:
    name = "fake server"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None

    def app(self) -> Starlette:
        raise NotImplementedError

    def start(self: Self) -> Self:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
