"""A per-phase time limit for tests that also works while an event loop is busy.

pytest-timeout's signal method raises its failure inside whatever Python code runs when the
alarm comes. In an asyncio test that is often a background task (a worker, a fake server's
handler): the task stores the exception as its own result and the test goes on hanging.
This watchdog does what a person at the terminal would do instead:

1. after ``TEST_PHASE_TIMEOUT`` seconds (default 180; a test marked ``phase_timeout(N)`` gets
   N if longer) in one phase (setup, call or teardown),
   it writes every thread's stack and every asyncio task's stack to the terminal, then cancels
   every task of the running event loop with the message ``TestTimeout``; with no loop running
   it raises ``TestTimeout`` in the main thread;
2. every 30 seconds after that (``TEST_PHASE_GRACE``), while the phase is not over, it cancels
   the loop's tasks again (one may have swallowed a cancellation) and raises ``TestTimeout`` in
   the main thread (whatever runs);
3. pytest-timeout (thread method, a longer limit, ``pyproject.toml``) stays as the last resort:
   it ends the whole run with every stack rather than let it hang.

The run goes on; ``--only-rerun TestTimeout`` runs a timed-out test again (at most twice).
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import signal
import sys
from contextlib import contextmanager
from typing import Any, Generator, Iterator, Optional

import pytest

GRACE = 30.0


class TestTimeout(Exception):
    __test__ = False  # not a test class


class _Phase:
    def __init__(self, item: pytest.Item, when: str, limit: float) -> None:
        self.item = item
        self.when = when
        self.limit = limit
        self.stage = 0

    def message(self) -> str:
        return f"TestTimeout: {self.item.nodeid} ({self.when}) still running after {self.limit:.0f} s"


_current: Optional[_Phase] = None


def _report(text: str) -> None:
    """Write to the real terminal, past pytest's capture."""
    if _current is None:
        return
    capman = _current.item.config.pluginmanager.getplugin("capturemanager")
    context = capman.global_and_fixture_disabled() if capman is not None else _nothing()
    with context:
        sys.stderr.write(text)
        sys.stderr.flush()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _thread_stacks() -> str:
    # faulthandler writes to a real file descriptor only
    read, write = os.pipe()
    try:
        faulthandler.dump_traceback(file=write, all_threads=True)
        os.close(write)
        write = -1
        chunks = []
        while True:
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(read)
        if write != -1:
            os.close(write)


def _cancel_every_task(loop: asyncio.AbstractEventLoop, message: str, report: bool = True) -> None:
    if report:
        buffer = io.StringIO()
        for task in asyncio.all_tasks(loop):
            buffer.write(f"--- task {task.get_name()}: {task.get_coro()!r}\n")
            task.print_stack(limit=12, file=buffer)
        _report(f"\n{message}: asyncio tasks\n{buffer.getvalue()}")
    for task in asyncio.all_tasks(loop):
        task.cancel(message)


def _on_alarm(signum: int, frame: Any) -> None:
    phase = _current
    if phase is None:
        return
    phase.stage += 1
    message = phase.message()
    grace = float(os.environ.get("TEST_PHASE_GRACE", GRACE))
    signal.setitimer(signal.ITIMER_REAL, grace)  # again and again until the phase ends
    if phase.stage == 1:
        _report(f"\n{message}: threads\n{_thread_stacks()}")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None and not loop.is_closed():
        # cancel from the loop itself (wakes it if it is waiting), never from inside a task;
        # again at each alarm: a task that lost one cancellation gets the next
        loop.call_soon_threadsafe(_cancel_every_task, loop, message, phase.stage == 1)
        if phase.stage == 1:
            return
    raise TestTimeout(message)


@contextmanager
def _limit(item: pytest.Item, when: str) -> Iterator[Optional[_Phase]]:
    global _current
    limit = float(os.environ.get("TEST_PHASE_TIMEOUT", "180"))
    longer = item.get_closest_marker("phase_timeout")  # a test that runs a whole stack says so
    if longer is not None and limit > 0:
        limit = max(limit, float(longer.args[0]))
    if limit <= 0 or not hasattr(signal, "setitimer"):
        yield None
        return
    _current = phase = _Phase(item, when, limit)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield phase
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _current = None


def _guarded(item: pytest.Item, when: str) -> Generator[None, Any, None]:
    with _limit(item, when) as phase:
        outcome = yield
    if phase is not None and phase.stage and outcome.excinfo is not None:
        if not isinstance(outcome.excinfo[1], TestTimeout):  # the cancelled test says why
            outcome.force_exception(TestTimeout(phase.message()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, None]:
    yield from _guarded(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    yield from _guarded(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, None]:
    yield from _guarded(item, "teardown")
