"""Which association takes a request for a person, and when a human will answer.

Routing order: the département she is in (asked only when it matters), then the languages the
staff speak, then opening hours; an association that is closed passes the request to its
fallback if that one is open; a national association takes what no local one can. Only
associations whose approval (agrément) is still valid are considered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional
from zoneinfo import ZoneInfo

from bot.handoff.directory import Association, Directory


@dataclass(frozen=True)
class Decision:
    association: Optional[Association]
    open_now: bool = False
    opens_at: Optional[datetime] = None  # next opening (aware, association's time zone) when closed
    ask_departement: bool = False  # ask her département before routing
    reason: str = ""


def local_time(association: Association, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(association.timezone))


def is_open(association: Association, moment: datetime) -> bool:
    here = local_time(association, moment)
    if here.date() in association.closed_on:
        return False
    return any(start <= here.time() < end for start, end in association.hours.get(here.weekday(), ()))


def next_opening(association: Association, moment: datetime, horizon_days: int = 21) -> Optional[datetime]:
    """The next moment the association opens (``moment`` itself if open), or None."""
    if is_open(association, moment):
        return local_time(association, moment)
    here = local_time(association, moment)
    zone = ZoneInfo(association.timezone)
    for offset in range(horizon_days + 1):
        day = (here + timedelta(days=offset)).date()
        if day in association.closed_on:
            continue
        for start, _end in association.hours.get(day.weekday(), ()):
            candidate = datetime.combine(day, start, tzinfo=zone)
            if candidate > here:
                return candidate
    return None


def route(
    directory: Directory,
    departement: Optional[str],
    language: str,
    now: datetime,
    departement_asked: bool = False,
) -> Decision:
    """Where a request goes. ``departement_asked``: she was asked and did not say."""
    today = now.astimezone(ZoneInfo("Europe/Paris")).date()
    approved = [a for a in directory.associations if a.approved_on(today)]
    if not approved:
        return Decision(None, reason="no approved association")
    local = [a for a in approved if not a.national]
    if departement is None and local and not departement_asked:
        return Decision(None, ask_departement=True, reason="département needed")
    candidates: List[Association] = [a for a in local if departement is not None and a.serves(departement)]
    reason = "département"
    if not candidates:
        candidates = [a for a in approved if a.national]
        reason = "national"
    if not candidates:
        return Decision(None, reason="no association serves this département")

    def rank(association: Association) -> tuple:
        return (language not in association.languages, not is_open(association, now), association.slug)

    best = min(candidates, key=rank)
    if language in best.languages:
        reason += ", language"
    if is_open(best, now):
        return Decision(best, open_now=True, reason=reason + ", open")
    fallback = directory.get(best.fallback)
    if fallback is not None and fallback.approved_on(today) and is_open(fallback, now):
        return Decision(fallback, open_now=True, reason=f"fallback of {best.slug}, open")
    return Decision(best, open_now=False, opens_at=next_opening(best, now), reason=reason + ", closed")
