"""Disclosure control: small cells hidden, and hidden cells that cannot be worked out again
from the totals, from another table of the same figure, or by putting two periods side by side.

Each protected month is audited as an attacker would: every published number (of every table
of a figure) is a linear constraint, and linear programming finds how small and how large each
hidden cell can be. A hidden small cell must be able to be 0 (nobody) and at least the
threshold (several people): the published figures then say nothing about it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from typing import Dict, List, Sequence, Tuple

import pytest

from bot import disclosure
from bot import statistics as st
from bot.disclosure import SPECS, TOTAL, Table, build, protect

THRESHOLD = 5
WEEKS = st.weeks_of_month(2026, 11)


def rows_of(counts: Sequence[Tuple[str, st.Count, int]]) -> List[st.Row]:
    return [st.Row(week, count, n) for week, count, n in counts]


def protected(rows: List[st.Row], threshold: int = THRESHOLD) -> List[Table]:
    tables = [build(spec, rows, WEEKS, threshold) for spec in SPECS]
    protect(tables, threshold)
    return tables


def assert_safe(
    tables: Sequence[Table], threshold: int = THRESHOLD, persons: Sequence[Tuple[str, Tuple[str, str]]] = ()
) -> None:
    """No cell from 1 to threshold - 1 is shown, and each hidden one stays unknown: never one
    value, and it may be the threshold or more (nobody can tell it is a small cell). The cells
    of ``persons`` (one person each) may moreover be 0: not even her existence can be told."""
    for table in tables:
        for position, value in table.published().items():
            if value is not None:
                assert value == 0 or value >= threshold, (table.spec.key, position, value)
    for (key, position), (low, high) in disclosure.intervals(tables).items():
        table = next(t for t in tables if t.spec.key == key)
        raw = table.raw.get(position, 0)
        if 0 < raw < threshold:
            assert high - low >= 1, f"{key} {position}: exactly {low}"
            assert high >= threshold, f"{key} {position}: at most {high} (true {raw})"
        if (key, position) in persons:
            assert low < 0.5, f"{key} {position}: at least {low} (true {raw})"


def test_primary_suppression_hides_1_to_threshold_minus_1_and_shows_zero_and_more() -> None:
    week = WEEKS[0]
    rows = rows_of(
        [(week, st.Count(st.FLAG, value="danger"), 7), (week, st.Count(st.FLAG, value="minor"), 1)]
        + [(w, st.Count(st.FLAG, value="danger"), 9) for w in WEEKS[1:]]
    )
    flags = next(t for t in protected(rows) if t.spec.key == "flags")
    assert flags.value(week, "minor") is None
    assert flags.value(WEEKS[1], "minor") == 0  # a true zero is shown
    # the row's other cell (or its total) and the column's total go too: 1 cannot be recovered
    assert flags.value(week, "danger") is None or flags.value(week, TOTAL) is None
    assert flags.value(TOTAL, "minor") is None
    assert_safe(protected(rows))


def test_one_minor_of_a_rare_language_in_a_small_departement_in_one_week() -> None:
    """The case built to find her: the only Arabic-speaking person of the month, a minor, who
    asked about the exit pathway and gave département 48, all in the second week, among
    ordinary traffic. She must appear in no table, and be recoverable from none."""
    rng = random.Random(8)
    counts: List[Tuple[str, st.Count, int]] = []
    for week in WEEKS:
        for language in ("fr", "ro", "bg", "zh", "es"):
            counts.append((week, st.Count(st.CONVERSATION_STARTED, language=language), rng.randint(6, 30)))
        for channel in ("sms", "whatsapp", "webchat"):
            counts.append((week, st.Count(st.CONVERSATION_STARTED, channel=channel), 0))
        counts.append((week, st.Count(st.FLAG, value="danger"), rng.randint(5, 9)))
        counts.append((week, st.Count(st.TOPIC, topic="exit_pathway"), rng.randint(5, 12)))
        counts.append((week, st.Count(st.TOPIC_DEPARTEMENT, topic="exit_pathway", departement="93"), 6))
        counts.append((week, st.Count(st.TOPIC_DEPARTEMENT, topic="papers", departement="75"), 5))
    her_week = WEEKS[1]
    counts += [
        (her_week, st.Count(st.CONVERSATION_STARTED, language="ar"), 1),
        (her_week, st.Count(st.CONVERSATION_STARTED, channel="sms"), 1),
        (her_week, st.Count(st.FLAG, value="minor"), 1),
        (her_week, st.Count(st.TOPIC_DEPARTEMENT, topic="exit_pathway", departement="48"), 1),
    ]
    # channels: the same conversations as by language (a conversation is counted in both)
    totals: Dict[str, int] = defaultdict(int)
    for week, count, n in counts:
        if count.figure == st.CONVERSATION_STARTED and count.language:
            totals[week] += n
    counts = [c for c in counts if not (c[1].figure == st.CONVERSATION_STARTED and c[1].channel)]
    for week in WEEKS:
        sms = totals[week] // 3 + (1 if week == her_week else 0)
        counts.append((week, st.Count(st.CONVERSATION_STARTED, channel="sms"), sms))
        counts.append((week, st.Count(st.CONVERSATION_STARTED, channel="whatsapp"), totals[week] - sms))
    tables = protected(rows_of(counts))
    by_key = {t.spec.key: t for t in tables}

    assert by_key["flags"].value(her_week, "minor") is None
    assert by_key["flags"].value(TOTAL, "minor") is None
    assert by_key["conversations_language"].value(her_week, "ar") is None
    assert by_key["conversations_language"].value(TOTAL, "ar") is None
    departements = by_key["exit_departements"]
    assert "48" not in departements.rows  # merged into "other départements", never named
    her_cells = [("flags", (her_week, "minor")), ("conversations_language", (her_week, "ar"))]
    assert_safe(tables, persons=her_cells)
    # what the CSV files say is what the tables say
    for table in tables:
        text = disclosure.to_csv(table, {}, {})
        assert "\r\n48," not in text
        lines = text.strip().split("\r\n")
        assert len(lines) == len(table.rows) + 2


@pytest.mark.parametrize("seed", range(25))
def test_random_months_are_safe(seed: int) -> None:
    """Small, sparse months (the worst case: most cells are small) of every figure."""
    rng = random.Random(seed)
    counts = []
    for week in WEEKS:
        for language in ("fr", "en", "ro", "bg", "ar"):
            if rng.random() < 0.6:
                counts.append((week, st.Count(st.HANDOFF_UNROUTED, language=language), rng.choice([1, 1, 2, 3, 6, 12])))
        for topic in ("exit_pathway", "papers", "law", "testing"):
            counts.append((week, st.Count(st.TOPIC, topic=topic), rng.choice([0, 1, 2, 4, 5, 9, 20])))
        for value in st.FLAGS:
            counts.append((week, st.Count(st.FLAG, value=value), rng.choice([0, 1, 2, 3, 7])))
        for association in ("asso-a", "asso-b", "asso-c"):
            for wait in st.WAITS:
                counts.append(
                    (week, st.Count(st.HANDOFF_CLAIMED, association=association, value=wait), rng.choice([0, 1, 3, 6]))
                )
        for departement in ("75", "93", "13", "48"):
            for topic in st.EXIT_TOPICS:
                counts.append(
                    (
                        week,
                        st.Count(st.TOPIC_DEPARTEMENT, topic=topic, departement=departement),
                        rng.choice([0, 1, 2, 4]),
                    )
                )
    assert_safe(protected(rows_of(counts)))


def test_a_threshold_of_ten_hides_up_to_nine() -> None:
    rows = rows_of([(w, st.Count(st.FLAG, value="danger"), 9) for w in WEEKS])
    flags = next(t for t in protected(rows, 10) if t.spec.key == "flags")
    assert all(flags.value(w, "danger") is None for w in WEEKS)
    assert flags.value(TOTAL, "danger") == 9 * len(WEEKS)
    assert_safe(protected(rows, 10), 10)


def test_months_are_made_of_whole_weeks_that_never_overlap() -> None:
    """A week belongs to one month only (that of its Thursday): two months' tables cannot be
    subtracted from each other to isolate a week, and weeks are the finest period there is."""
    seen: Dict[str, Tuple[int, int]] = {}
    for year in (2025, 2026, 2027):
        for month in range(1, 13):
            for week in st.weeks_of_month(year, month):
                assert week not in seen, (week, seen.get(week), (year, month))
                seen[week] = (year, month)
    day = date(2025, 1, 2)
    while day < date(2027, 12, 24):  # every week of those years belongs to a month
        iso = day.isocalendar()
        assert f"{iso[0]}-W{iso[1]:02d}" in seen
        day += timedelta(days=7)


def test_csv_cells_never_start_a_formula() -> None:
    assert disclosure.safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert disclosure.safe_cell("+33") == "'+33"
    assert disclosure.safe_cell("-1") == "'-1"
    assert disclosure.safe_cell("@x") == "'@x"
    assert disclosure.safe_cell("93") == "93"
    rows = rows_of([(WEEKS[0], st.Count(st.HANDOFF_REQUESTED, association="asso-a"), 6)])
    table = next(t for t in protected(rows) if t.spec.key == "handoff_requests")
    text = disclosure.to_csv(table, {}, {"asso-a": "=cmd|' /C calc'!A0"})
    assert "'=cmd" in text and ",=cmd" not in text
