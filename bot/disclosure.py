"""Disclosure control: what of the statistics may be shown, so that no figure points to a person.

Every published table is built here, from the raw counts of one calendar month (its ISO weeks,
a week belonging to the month of its Thursday), and protected before anything reads it: the
dashboard, its charts, the CSV files and the monthly summary all show these protected tables
and nothing else. The rules:

* **no period but a calendar month** (its weeks as rows, or the month as a whole): periods never
  overlap in part, so two views cannot be subtracted to isolate a week or a day;
* **primary suppression**: a cell (or a total) from 1 to ``threshold - 1`` is hidden
  (``OUTREACH_STATS_THRESHOLD``, default 5); a zero is shown as 0 (it points to nobody);
* **complementary suppression**: in every row and column (totals included, each a linear
  relation "cells = total"), either nothing is hidden, or at least two members are hidden and,
  when the total is shown, what is hidden adds up to at least the threshold; the smallest other
  cell is hidden until that holds (else the total). A total shared by two tables of the same
  figure (the weeks of conversations by language and by channel) is hidden in both if hidden in
  one, and the rules are applied again until nothing changes;
* **recoding**: rows that would name a rare category (a département with fewer than
  ``threshold`` in the month) are merged into one "other" row before protection.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot import statistics as st
from bot.settings import SUPPORTED_LANGUAGES

TOTAL = "total"
SUPPRESSED = "s"  # what a hidden cell shows (INSEE's "secret statistique")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Position = Tuple[str, str]  # (row, column); TOTAL for a margin


@dataclass(frozen=True)
class Spec:
    """A published table: the counts of ``figure`` by ``rows`` (``week`` or a dimension) and
    ``columns`` (a dimension)."""

    key: str
    title: str
    figure: str
    rows: str
    columns: str
    recode_small_rows: bool = False


SPECS: Tuple[Spec, ...] = (
    Spec("conversations_language", "Conversations commencées, par langue", st.CONVERSATION_STARTED, "week", "language"),
    Spec("conversations_channel", "Conversations commencées, par canal", st.CONVERSATION_STARTED, "week", "channel"),
    Spec("topics", "Sujets demandés", st.TOPIC, "week", "topic"),
    Spec("flags", "Signalements de danger et de minorité", st.FLAG, "week", "value"),
    Spec("handoff_requests", "Demandes de parler à une personne, par association", st.HANDOFF_REQUESTED, "week",
         "association"),
    Spec("handoff_unrouted", "Demandes qu'aucune association ne pouvait prendre, par langue", st.HANDOFF_UNROUTED,
         "week", "language"),
    Spec("handoff_waits", "Attente avant la prise en charge, par association", st.HANDOFF_CLAIMED, "association",
         "value"),
    Spec("handoff_endings", "Fin des demandes, par association", st.HANDOFF_ENDED, "association", "value"),
    Spec("exit_departements", "Parcours de sortie et titres de séjour, par département", st.TOPIC_DEPARTEMENT,
         "departement", "topic", recode_small_rows=True),
    Spec("messages_in", "Messages reçus, par canal", st.MESSAGE_IN, "week", "channel"),
    Spec("messages_out", "Messages envoyés, par canal", st.MESSAGE_OUT, "week", "channel"),
    Spec("delivery_failures", "Échecs d'envoi, par cause", st.DELIVERY_FAILURE, "week", "value"),
)  # fmt: skip
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}

# the columns always shown (in this order), whether counted or not
COLUMNS: Dict[Tuple[str, str], Tuple[str, ...]] = {
    (st.CONVERSATION_STARTED, "language"): SUPPORTED_LANGUAGES,
    (st.HANDOFF_UNROUTED, "language"): SUPPORTED_LANGUAGES,
    (st.CONVERSATION_STARTED, "channel"): st.CHANNELS,
    (st.MESSAGE_IN, "channel"): st.CHANNELS,
    (st.MESSAGE_OUT, "channel"): st.CHANNELS,
    (st.TOPIC, "topic"): st.TOPICS,
    (st.FLAG, "value"): st.FLAGS,
    (st.DELIVERY_FAILURE, "value"): st.FAILURES,
    (st.HANDOFF_CLAIMED, "value"): st.WAITS,
    (st.HANDOFF_ENDED, "value"): st.ENDINGS,
    (st.TOPIC_DEPARTEMENT, "topic"): st.EXIT_TOPICS,
}
OTHER_ROW = "autres"


@dataclass
class Table:
    """A protected table: ``value(row, column)`` is None where hidden."""

    spec: Spec
    rows: List[str]
    columns: List[str]
    raw: Dict[Position, int] = field(repr=False)
    hidden: set = field(default_factory=set, repr=False)

    def value(self, row: str, column: str) -> Optional[int]:
        return None if (row, column) in self.hidden else self.raw.get((row, column), 0)

    def shown(self, row: str, column: str) -> str:
        value = self.value(row, column)
        return SUPPRESSED if value is None else str(value)

    @property
    def any_hidden(self) -> bool:
        return bool(self.hidden)

    def positions(self) -> List[Position]:
        return [(r, c) for r in [*self.rows, TOTAL] for c in [*self.columns, TOTAL]]

    def relations(self) -> List[List[Position]]:
        """Every row and column with its total last: "the cells add up to the total"."""
        rows = [*self.rows, TOTAL]
        columns = [*self.columns, TOTAL]
        return [[(r, c) for c in columns] for r in rows] + [[(r, c) for r in rows] for c in columns]

    def published(self) -> Dict[Position, Optional[int]]:
        """Every value as shown (None: hidden): what charts, CSV and pages read."""
        return {position: self.value(*position) for position in self.positions()}


def build(spec: Spec, rows: Iterable[st.Row], weeks: Sequence[str], threshold: int) -> Table:
    """The unprotected table of ``spec`` from the month's counts."""
    raw: Dict[Position, int] = {}
    found_columns: List[str] = []
    found_rows: List[str] = []
    for row in rows:
        if row.count.figure != spec.figure:
            continue
        row_key = row.week if spec.rows == "week" else getattr(row.count, spec.rows)
        column = getattr(row.count, spec.columns)
        if not row_key or not column:  # counted for another table of the figure
            continue
        raw[(row_key, column)] = raw.get((row_key, column), 0) + row.n
        found_columns.append(column)
        found_rows.append(row_key)
    fixed = COLUMNS.get((spec.figure, spec.columns), ())
    columns = list(fixed) + sorted({c for c in found_columns if c not in fixed})
    if spec.rows == "week":
        table_rows = list(weeks)
    else:
        table_rows = sorted(set(found_rows))
    if spec.recode_small_rows:
        table_rows, raw = _recode(table_rows, columns, raw, threshold)
    for r in table_rows:
        raw[(r, TOTAL)] = sum(raw.get((r, c), 0) for c in columns)
    for c in columns:
        raw[(TOTAL, c)] = sum(raw.get((r, c), 0) for r in table_rows)
    raw[(TOTAL, TOTAL)] = sum(raw[(r, TOTAL)] for r in table_rows)
    return Table(spec, table_rows, columns, raw)


def _recode(
    rows: List[str], columns: List[str], raw: Dict[Position, int], threshold: int
) -> Tuple[List[str], Dict[Position, int]]:
    """Merge the rows whose total is under ``threshold`` into one "other" row (a rare
    département is never named)."""
    small = [r for r in rows if r != OTHER_ROW and sum(raw.get((r, c), 0) for c in columns) < threshold]
    if not small:
        return rows, raw
    merged = {k: v for k, v in raw.items() if k[0] not in small}
    for c in columns:
        merged[(OTHER_ROW, c)] = merged.get((OTHER_ROW, c), 0) + sum(raw.get((r, c), 0) for r in small)
    kept = [r for r in rows if r not in small and r != OTHER_ROW] + [OTHER_ROW]
    return kept, merged


def protect(tables: Sequence[Table], threshold: int) -> None:
    """Hide what could point to a person, in place (see the module's rules), then audit the
    result as an attacker would (:func:`intervals`) and hide more until every small cell hidden
    could be the threshold or more and is never pinned to one value."""
    if threshold < 2:
        raise ValueError("the threshold must be at least 2")
    for table in tables:
        for position in table.positions():
            if 0 < table.raw.get(position, 0) < threshold:
                table.hidden.add(position)
    _complete(tables, threshold)
    for _round in range(500):
        weak = _weak_cell(tables, threshold)
        if weak is None:
            return
        table, position = weak
        table.hidden.add(_strengthen(table, position))
        _complete(tables, threshold)
    raise RuntimeError("statistics: protection did not converge")  # pragma: no cover


def _weak_cell(tables: Sequence[Table], threshold: int) -> Optional[Tuple[Table, Position]]:
    """A small hidden cell the published figures pin down or show to be small, if any."""
    found = intervals(tables)
    for table in tables:
        for position in sorted(table.hidden):
            raw = table.raw.get(position, 0)
            if not 0 < raw < threshold:
                continue
            low, high = found[(table.spec.key, position)]
            if high - low < 1 or high < threshold:
                return table, position
    return None


def _strengthen(table: Table, position: Position) -> Position:
    """One more cell to hide for a weak one: a total of its row or column, else the smallest
    shown cell beside it."""
    row, column = position
    for margin in ((row, TOTAL), (TOTAL, column), (TOTAL, TOTAL)):
        if margin != position and margin not in table.hidden:
            return margin
    beside = [p for p in table.positions() if (p[0] == row or p[1] == column) and p not in table.hidden]
    if not beside:
        beside = [p for p in table.positions() if p not in table.hidden]
    if not beside:  # pragma: no cover - everything is hidden already
        raise RuntimeError("statistics: nothing left to hide")
    return min(beside, key=lambda p: table.raw.get(p, 0))


def intervals(tables: Sequence[Table]) -> Dict[Tuple[str, Position], Tuple[float, float]]:
    """For each hidden cell, the smallest and largest value consistent with everything the
    month's tables publish (tables of one figure taken together; linear programming)."""
    from scipy.optimize import linprog

    found: Dict[Tuple[str, Position], Tuple[float, float]] = {}
    groups: Dict[str, List[Table]] = {}
    for table in tables:
        groups.setdefault(table.spec.figure, []).append(table)
    for group in groups.values():
        variables: Dict[Tuple[str, ...], int] = {}

        def key_of(table: Table, position: Position) -> Tuple[str, ...]:
            shared = _margin_keys(table).get(position)
            return shared if shared is not None else (table.spec.key, *position)

        for table in group:
            for position in sorted(table.hidden):
                variables.setdefault(key_of(table, position), len(variables))
        if not variables:
            continue
        equalities: List[List[float]] = []
        constants: List[float] = []
        for table in group:
            for relation in table.relations():
                row = [0.0] * len(variables)
                constant = 0.0
                for index, member in enumerate(relation):
                    sign = -1.0 if index == len(relation) - 1 else 1.0
                    if member in table.hidden:
                        row[variables[key_of(table, member)]] += sign
                    else:
                        constant -= sign * table.raw.get(member, 0)
                if any(row):
                    equalities.append(row)
                    constants.append(constant)
        bounds: Dict[int, Tuple[float, float]] = {}
        for target in range(len(variables)):
            ends = []
            for direction in (1.0, -1.0):
                objective = [0.0] * len(variables)
                objective[target] = direction
                result = linprog(objective, A_eq=equalities, b_eq=constants, bounds=(0, None), method="highs")
                if result.status not in (0, 3):  # 3: unbounded above; anything else is a bug here
                    raise RuntimeError(f"statistics: the disclosure audit failed ({result.message})")
                ends.append(direction * result.fun if result.status == 0 else float("inf"))
            bounds[target] = (ends[0], ends[1])
        for table in group:
            for position in table.hidden:
                found[(table.spec.key, position)] = bounds[variables[key_of(table, position)]]
    return found


def _complete(tables: Sequence[Table], threshold: int) -> None:
    """Complementary suppression: the rules on every row and column, and shared totals."""
    changed = True
    while changed:
        changed = False
        for table in tables:
            for relation in table.relations():
                while _needs_more(table, relation, threshold):
                    chosen = _next_to_hide(table, relation)
                    if chosen is None:
                        break
                    table.hidden.add(chosen)
                    changed = True
        changed |= _share_margins(tables)


def _needs_more(table: Table, relation: List[Position], threshold: int) -> bool:
    hidden = [p for p in relation if p in table.hidden]
    if not hidden:
        return False
    if len(hidden) == 1:
        return True
    total = relation[-1]
    if total in table.hidden:
        return False
    return sum(table.raw.get(p, 0) for p in hidden) < threshold


def _next_to_hide(table: Table, relation: List[Position]) -> Optional[Position]:
    """The smallest shown cell above zero; else the total; else a zero cell."""
    cells = [p for p in relation[:-1] if p not in table.hidden]
    positive = [p for p in cells if table.raw.get(p, 0) > 0]
    if positive:
        return min(positive, key=lambda p: (table.raw.get(p, 0), relation.index(p)))
    if relation[-1] not in table.hidden:
        return relation[-1]
    return cells[0] if cells else None


def _margin_keys(table: Table) -> Dict[Position, Tuple[str, ...]]:
    """The totals of a table that other tables of the same figure also show."""
    spec = table.spec
    keys: Dict[Position, Tuple[str, ...]] = {(TOTAL, TOTAL): (spec.figure, "*")}
    for r in table.rows:
        keys[(r, TOTAL)] = (spec.figure, spec.rows, r)
    for c in table.columns:
        keys[(TOTAL, c)] = (spec.figure, spec.columns, c)
    return keys


def _share_margins(tables: Sequence[Table]) -> bool:
    """A total hidden in one table is hidden in every table that shows the same total."""
    hidden_keys = set()
    for table in tables:
        for position, key in _margin_keys(table).items():
            if position in table.hidden:
                hidden_keys.add(key)
    changed = False
    for table in tables:
        for position, key in _margin_keys(table).items():
            if key in hidden_keys and position not in table.hidden:
                table.hidden.add(position)
                changed = True
    return changed


def month_tables(
    statistics: st.Statistics, year: int, month: int, threshold: int, keys: Optional[Sequence[str]] = None
) -> List[Table]:
    """The protected tables of a month (all, or those of ``keys``; protected together either way)."""
    weeks = st.weeks_of_month(year, month)
    rows = statistics.rows(weeks)
    tables = [build(spec, rows, weeks, threshold) for spec in SPECS]
    protect(tables, threshold)
    return [t for t in tables if keys is None or t.spec.key in keys]


def month_totals(table: Table) -> Dict[str, Optional[int]]:
    """The month's total of each column (None: hidden)."""
    return {c: table.value(TOTAL, c) for c in table.columns}


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(table: Table, row_names: Dict[str, str], column_names: Dict[str, str]) -> str:
    """The protected table as CSV (hidden cells: ``s``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    first = {"week": "semaine", "association": "association", "departement": "département"}.get(
        table.spec.rows, table.spec.rows
    )
    writer.writerow([safe_cell(first)] + [safe_cell(column_names.get(c, c)) for c in table.columns] + ["total"])
    for r in [*table.rows, TOTAL]:
        label = row_names.get(r, r)
        writer.writerow([safe_cell(label)] + [table.shown(r, c) for c in table.columns] + [table.shown(r, TOTAL)])
    return out.getvalue()
