"""Anonymous statistics, counted when each event happens (never derived from conversations).

A count is a row of ``stat_counts`` keyed by the ISO week, the figure and a few dimension
values chosen from fixed sets (a channel, a language, a topic, an association's slug, a
département, a figure's own category): no contact, conversation, handoff or message id, no
time finer than the week, no text. An erasure or the retention purge deletes conversations,
never counts, so past figures never change.

Where the event is an SQL write (a message stored, answered, sent; a request opened, claimed,
closed) the count is written by :func:`add` in the same transaction, so a crash can neither
count an event twice nor lose it. What is decided outside SQL (no association found) is
counted in a small transaction of its own (:meth:`Statistics.record`).

What is shown is protected by ``bot/disclosure.py`` (small cells suppressed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.departements import DEPARTEMENTS
from bot.models import StatCount, utcnow
from bot.settings import SUPPORTED_LANGUAGES

OTHER = "other"
_PARIS = ZoneInfo("Europe/Paris")
CHANNELS = ("webchat", "sms", "whatsapp", "telegram")

# -- the figures and their categories -------------------------------------------------------

# Each figure is counted by the dimensions it is published by, and no finer: a combination that
# is never shown (a minor's language) is never stored either.
CONVERSATION_STARTED = "conversation_started"  # twice: by channel, and by language
MESSAGE_IN = "message_in"  # channel
MESSAGE_OUT = "message_out"  # channel
DELIVERY_FAILURE = "delivery_failure"  # value: FAILURES
TOPIC = "topic"  # topic
FLAG = "flag"  # value: danger | minor
TOPIC_DEPARTEMENT = "topic_departement"  # topic (exit_pathway | papers), departement
HANDOFF_REQUESTED = "handoff_requested"  # association
HANDOFF_UNROUTED = "handoff_unrouted"  # language: no association could take the request
HANDOFF_CLAIMED = "handoff_claimed"  # association, value: wait bucket
HANDOFF_ENDED = "handoff_ended"  # association, value: an outcome, released or cancelled

FIGURES = (
    CONVERSATION_STARTED,
    MESSAGE_IN,
    MESSAGE_OUT,
    DELIVERY_FAILURE,
    TOPIC,
    FLAG,
    TOPIC_DEPARTEMENT,
    HANDOFF_REQUESTED,
    HANDOFF_UNROUTED,
    HANDOFF_CLAIMED,
    HANDOFF_ENDED,
)

FAILURES = ("failed", "dead", "opted_out", "no_channel", "undelivered")
FLAGS = ("danger", "minor")
WAITS = ("lt5m", "5-30m", "30m-2h", "gt2h")
# bot.handoff.states.OUTCOMES (it imports this module), then released, cancelled
ENDINGS = ("answered", "oriented", "accompanied", "no_reply", "not_relevant", "other", "released", "cancelled")
EXIT_TOPICS = ("exit_pathway", "papers")  # the only topics counted by département

# The model's answer (a response name) -> the topic she asked about. The answer rather than the
# intent: a menu choice ("3") or "more" has the intent choose_option / more, the answer says
# what it was about. Danger and minor answers are flags, not topics.
RESPONSE_TOPICS: Dict[str, str] = {
    "utter_menu": "menu",
    "utter_rights_menu": "rights",
    "utter_law": "law",
    "utter_law_more": "law",
    "utter_police": "police",
    "utter_police_more": "police",
    "utter_complaint": "complaint",
    "utter_complaint_more": "complaint",
    "utter_health_menu": "health",
    "utter_testing": "testing",
    "utter_testing_more": "testing",
    "utter_exposure": "exposure",
    "utter_exposure_more": "exposure",
    "utter_prep": "prep",
    "utter_prep_more": "prep",
    "utter_emergency_contraception": "emergency_contraception",
    "utter_emergency_contraception_more": "emergency_contraception",
    "utter_care_no_coverage": "care_no_coverage",
    "utter_care_no_coverage_more": "care_no_coverage",
    "utter_exit_pathway": "exit_pathway",
    "utter_exit_pathway_more": "exit_pathway",
    "utter_afis": "exit_pathway",
    "utter_papers": "papers",
    "utter_papers_more": "papers",
    "utter_shelter": "shelter",
    "utter_shelter_more": "shelter",
    "utter_not_understood": "not_understood",
    "utter_default": "not_understood",
}
RESPONSE_FLAGS = {"utter_danger": "danger", "utter_danger_more": "danger", "utter_minor": "minor"}
SAFETY_TOPICS = ("erasure", "discreet")  # what the safety layer recognised (not flags)
TOPICS = tuple(dict.fromkeys([*RESPONSE_TOPICS.values(), *SAFETY_TOPICS]))

VALUES: Dict[str, Tuple[str, ...]] = {
    DELIVERY_FAILURE: FAILURES,
    FLAG: FLAGS,
    HANDOFF_CLAIMED: WAITS,
    HANDOFF_ENDED: ENDINGS,
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


@dataclass(frozen=True, order=True)
class Count:
    """One event to count: a figure and its dimension values ("" when not relevant)."""

    figure: str
    channel: str = ""
    language: str = ""
    topic: str = ""
    association: str = ""
    departement: str = ""
    value: str = ""

    def bounded(self) -> Count:
        """The same count with every value outside its fixed set replaced by ``other``."""
        if self.figure not in FIGURES:
            raise ValueError(f"unknown figure {self.figure!r}")
        allowed = VALUES.get(self.figure)
        return replace(
            self,
            channel=_within(self.channel, CHANNELS),
            language=_within(self.language, SUPPORTED_LANGUAGES),
            topic=_within(self.topic, TOPICS),
            association=self.association if not self.association or _SLUG.match(self.association) else OTHER,
            departement=_within(self.departement, DEPARTEMENTS),
            value=_within(self.value, allowed) if allowed is not None else "",
        )


def _within(value: str, allowed: Iterable[str]) -> str:
    return value if not value or value in allowed else OTHER


# -- time ------------------------------------------------------------------------------------


def week_of(moment: Optional[datetime] = None) -> str:
    """The ISO week of ``moment`` (default now) in Paris, as ``2026-W48``."""
    moment = moment or utcnow()
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    year, week, _day = aware.astimezone(_PARIS).isocalendar()
    return f"{year}-W{week:02d}"


def weeks_of_month(year: int, month: int) -> List[str]:
    """The ISO weeks of a month: those whose Thursday falls in it (each week belongs to one
    month only, so no two published periods overlap in part)."""
    day = date(year, month, 1)
    day += timedelta(days=(3 - day.weekday()) % 7)  # the first Thursday
    weeks = []
    while day.month == month:
        iso = day.isocalendar()
        weeks.append(f"{iso[0]}-W{iso[1]:02d}")
        day += timedelta(days=7)
    return weeks


def week_monday(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def wait_bucket(seconds: float) -> str:
    """How long a request waited for a person, in four bands (never the exact time)."""
    if seconds < 5 * 60:
        return "lt5m"
    if seconds < 30 * 60:
        return "5-30m"
    if seconds < 2 * 3600:
        return "30m-2h"
    return "gt2h"


def seconds_between(start: datetime, end: datetime) -> float:
    def aware(moment: datetime) -> datetime:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)

    return max((aware(end) - aware(start)).total_seconds(), 0.0)


# -- recording --------------------------------------------------------------------------------

_KEY = ("week", "figure", "channel", "language", "topic", "association", "departement", "value")


def add(session: Session, counts: Sequence[Count], at: Optional[datetime] = None) -> None:
    """Count ``counts`` in the caller's transaction (one upsert each, in a fixed order so that
    two transactions never wait for each other's rows crosswise). The caller commits."""
    if not counts:
        return
    week = week_of(at)
    merged: Dict[Count, int] = {}
    for count in counts:
        key = count.bounded()
        merged[key] = merged.get(key, 0) + 1
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for key in sorted(merged):
        values = {"week": week, **{name: getattr(key, name) for name in _KEY[1:]}, "count": merged[key]}
        statement = insert(StatCount).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY), set_={"count": StatCount.count + statement.excluded.count}
        )
        session.execute(statement)


@dataclass(frozen=True)
class Row:
    week: str
    count: Count
    n: int


class Statistics:
    """Counting outside another transaction, and reading the raw counts (for
    ``bot/disclosure.py``; never shown as they are)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, counts: Sequence[Count], at: Optional[datetime] = None) -> None:
        """Count events decided outside SQL, in a small transaction of their own."""
        with self._sessions() as session:
            add(session, counts, at)
            session.commit()

    def rows(self, weeks: Sequence[str]) -> List[Row]:
        """Every count of these weeks."""
        with self._sessions() as session:
            found = session.execute(select(StatCount).where(StatCount.week.in_(list(weeks)))).scalars().all()
            return [
                Row(r.week, Count(*(getattr(r, name) for name in _KEY[1:])), int(r.count)) for r in found if r.count
            ]

    def snapshot(self) -> Dict[Tuple[str, ...], int]:
        """Every count (for tests: figures before and after an erasure)."""
        with self._sessions() as session:
            found = session.execute(select(StatCount)).scalars().all()
            return {tuple(getattr(r, name) for name in _KEY): int(r.count) for r in found}


def topics_of(responses: Iterable[str]) -> Tuple[List[str], List[str]]:
    """(topics, flags) of the model's answers (response names), each once."""
    topics = [RESPONSE_TOPICS[name] for name in responses if name in RESPONSE_TOPICS]
    flags = [RESPONSE_FLAGS[name] for name in responses if name in RESPONSE_FLAGS]
    return list(dict.fromkeys(topics)), list(dict.fromkeys(flags))
