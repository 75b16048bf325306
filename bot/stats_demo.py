"""A demonstration month of simulated traffic for the statistics (``python -m bot stats demo``):
events drawn at random (fixed seed) and counted through the recording API at moments of the
month, as the router, the sender and the desk would count them. For a local run only: the
figures are fictitious and stay in the database like real ones."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import List, Tuple

from bot import statistics as st

LANGUAGES = (
    ("fr", 40),
    ("ro", 14),
    ("bg", 9),
    ("zh", 10),
    ("es", 8),
    ("pt", 7),
    ("en", 6),
    ("ru", 3),
    ("uk", 2),
    ("ar", 1),
)
CHANNELS = (("sms", 40), ("whatsapp", 30), ("webchat", 20), ("telegram", 10))
TOPICS = (
    ("menu", 30),
    ("testing", 12),
    ("prep", 8),
    ("exposure", 4),
    ("law", 8),
    ("police", 6),
    ("complaint", 4),
    ("care_no_coverage", 8),
    ("exit_pathway", 10),
    ("papers", 9),
    ("shelter", 6),
    ("emergency_contraception", 3),
    ("not_understood", 6),
    ("discreet", 1),
    ("erasure", 1),
)
DEPARTEMENTS = (("75", 30), ("93", 25), ("94", 12), ("92", 10), ("13", 8), ("69", 6), ("48", 1))
ASSOCIATIONS = (("exemple-paris", 60), ("exemple-national", 40))
WAITS = (("lt5m", 40), ("5-30m", 35), ("30m-2h", 15), ("gt2h", 10))
ENDINGS = (
    ("answered", 30),
    ("oriented", 30),
    ("accompanied", 15),
    ("no_reply", 10),
    ("released", 10),
    ("cancelled", 5),
)


def _pick(rng: random.Random, weighted: Tuple[Tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _w in weighted], weights=[w for _v, w in weighted])[0]


def simulate(year: int, month: int, conversations: int = 320, seed: int = 2026) -> List[Tuple[datetime, st.Count]]:
    """The events of a simulated month: (moment, count)."""
    rng = random.Random(seed * 100 + month)  # noqa: S311 (simulated figures, not security)
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    span = (end - start).total_seconds()
    events: List[Tuple[datetime, st.Count]] = []
    for _ in range(conversations):
        at = start + timedelta(seconds=rng.uniform(0, span - 7200))
        language, channel = _pick(rng, LANGUAGES), _pick(rng, CHANNELS)
        events.append((at, st.Count(st.CONVERSATION_STARTED, channel=channel)))
        events.append((at, st.Count(st.CONVERSATION_STARTED, language=language)))
        messages = rng.randint(1, 9)
        events += [(at, st.Count(st.MESSAGE_IN, channel=channel))] * messages
        events += [(at, st.Count(st.MESSAGE_OUT, channel=channel))] * (messages + rng.randint(0, 2))
        if channel != "webchat" and rng.random() < 0.04:
            events.append(
                (at, st.Count(st.DELIVERY_FAILURE, value=_pick(rng, (("failed", 3), ("undelivered", 5), ("dead", 1)))))
            )
        asked = {_pick(rng, TOPICS) for _ in range(rng.randint(1, 3))}
        events += [(at, st.Count(st.TOPIC, topic=topic)) for topic in sorted(asked)]
        if rng.random() < 0.05:
            events.append((at, st.Count(st.FLAG, value="danger")))
        if rng.random() < 0.03:
            events.append((at, st.Count(st.FLAG, value="minor")))
        if rng.random() < 0.2:
            association = _pick(rng, ASSOCIATIONS)
            departement = _pick(rng, DEPARTEMENTS)
            events.append((at, st.Count(st.HANDOFF_REQUESTED, association=association)))
            for topic in sorted(asked & set(st.EXIT_TOPICS)):
                events.append((at, st.Count(st.TOPIC_DEPARTEMENT, topic=topic, departement=departement)))
            ending = _pick(rng, ENDINGS)
            if ending != "cancelled":
                events.append((at, st.Count(st.HANDOFF_CLAIMED, association=association, value=_pick(rng, WAITS))))
            events.append((at + timedelta(hours=1), st.Count(st.HANDOFF_ENDED, association=association, value=ending)))
        elif rng.random() < 0.01:
            events.append((at, st.Count(st.HANDOFF_UNROUTED, language=language)))
    return events


def record_month(statistics: st.Statistics, year: int, month: int, conversations: int = 320) -> int:
    """Count a simulated month through the recording API; returns the number of events."""
    events = simulate(year, month, conversations)
    batch: List[st.Count] = []
    moment = None
    for at, count in events:  # one transaction per moment (what one event would count)
        if at != moment and batch:
            statistics.record(batch, moment)
            batch = []
        moment = at
        batch.append(count)
    if batch:
        statistics.record(batch, moment)
    return len(events)
