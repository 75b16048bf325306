"""Stopping asyncio tasks for good.

``task.cancel()`` asks once; a library that swallows the cancellation (redis-py 4 did, see
bot/redis_client.py; ``asyncio.wait_for`` does before Python 3.12) leaves the task running and
whoever awaits it waiting forever. :func:`stop` asks again until the tasks have ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Optional

log = logging.getLogger(__name__)


async def stop(
    tasks: Iterable[asyncio.Future[Any]], *, again_after: float = 0.5, patience: Optional[float] = None
) -> bool:
    """Cancel ``tasks`` and wait until every one has ended, cancelling the rest again every
    ``again_after`` seconds. With ``patience``, give up after that many seconds and return
    False (the tasks are left cancelled). Exceptions of the tasks are not raised.

    If the caller itself is cancelled meanwhile, it goes on stopping the tasks, then raises
    the cancellation (as a task group does: children end before their parent).
    """
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = None if patience is None else loop.time() + patience
    asked = 0
    interrupted = False
    while pending:
        for task in pending:
            task.cancel()
        asked += 1
        if asked == 3:
            log.warning("%d task(s) ignored a cancellation; asking again", len(pending))
        wait = again_after if deadline is None else max(min(again_after, deadline - loop.time()), 0.0)
        try:
            done, pending = await asyncio.wait(pending, timeout=wait)
        except asyncio.CancelledError:
            interrupted = True  # like a task group: the tasks end first, then this one
            continue
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: the task's own code logs what matters
        if pending and deadline is not None and loop.time() >= deadline:
            log.warning("%d task(s) did not stop after %d cancellation(s)", len(pending), asked)
            break
    if interrupted:
        raise asyncio.CancelledError()
    return not pending
