"""A worker that alerts the consoles again about requests nobody has claimed in time, and
about held conversations where she has waited for a reply as long."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.handoff.desk import HandoffDesk

log = logging.getLogger(__name__)


class HandoffAlerts:
    def __init__(self, desk: HandoffDesk, unclaimed_after_s: float, every_s: float = 30.0) -> None:
        self.desk = desk
        self.unclaimed_after = timedelta(seconds=unclaimed_after_s)
        self.every_s = min(every_s, max(unclaimed_after_s / 4, 0.5))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.desk.alert_unclaimed(self.unclaimed_after)
                await self.desk.alert_unanswered(self.unclaimed_after)
            except Exception as error:  # keep alerting whatever happens
                log.warning("unclaimed-request alert failed (%s)", type(error).__name__)
                self.desk.metrics.error("alerts", error)
