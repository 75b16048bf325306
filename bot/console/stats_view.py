"""What the console shows of the statistics: French names of the categories, the month asked
for, and bar charts drawn on the server as inline SVG (no script, no external asset: the
console's content security policy holds). Everything here reads protected tables
(bot/disclosure.py) only; a hidden value is drawn as a marked box of one fixed size, which says
nothing of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from bot import statistics as st
from bot.disclosure import SUPPRESSED, TOTAL, Table

PARIS = ZoneInfo("Europe/Paris")
_MONTH = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")
MONTH_NAMES = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
NAMES: Dict[str, str] = {
    # channels
    "webchat": "web",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    # topics
    "menu": "menu, accueil",
    "rights": "droits",
    "health": "santé",
    "law": "loi",
    "police": "police",
    "complaint": "plainte",
    "testing": "dépistage",
    "exposure": "exposition au VIH",
    "prep": "PrEP",
    "emergency_contraception": "contraception d'urgence",
    "care_no_coverage": "soins sans couverture",
    "exit_pathway": "parcours de sortie",
    "papers": "titre de séjour",
    "shelter": "hébergement",
    "not_understood": "non compris",
    "erasure": "effacement demandé",
    "discreet": "mode discret",
    # flags
    "danger": "danger",
    "minor": "minorité",
    # waits
    "lt5m": "< 5 min",
    "5-30m": "5-30 min",
    "30m-2h": "30 min-2 h",
    "gt2h": "> 2 h",
    # endings
    "answered": "réponse donnée",
    "oriented": "orientée",
    "accompanied": "accompagnement",
    "no_reply": "plus de réponse",
    "not_relevant": "hors sujet",
    "released": "rendue au bot",
    "cancelled": "annulée par la personne",
    # failures
    "failed": "refusé",
    "dead": "abandonné après essais",
    "opted_out": "désinscrite",
    "no_channel": "canal absent",
    "undelivered": "non distribué",
    # rows
    "autres": "autres départements",
    st.OTHER: "autre",
    TOTAL: "total",
}


def name_of(value: str, languages: Dict[str, str]) -> str:
    return languages.get(value) or NAMES.get(value) or value


def month_asked(raw: Optional[str], today: Optional[date] = None) -> Tuple[int, int]:
    """The month of ``?month=YYYY-MM``, or the current one (Paris)."""
    found = _MONTH.match(raw or "")
    if found:
        return int(found.group(1)), int(found.group(2))
    today = today or datetime.now(PARIS).date()
    return today.year, today.month


def month_label(year: int, month: int) -> str:
    return f"{MONTH_NAMES[month - 1]} {year}"


def week_label(week: str) -> str:
    monday = st.week_monday(week)
    return f"sem. {week[-2:]} ({monday:%d/%m})"


@dataclass(frozen=True)
class Bar:
    label: str
    shown: str  # the number, or "s"
    y: int
    width: int  # 0 for a hidden value (drawn as the marked box)
    hidden: bool


@dataclass(frozen=True)
class Chart:
    title: str
    bars: List[Bar]
    height: int
    label_width: int = 190
    bar_space: int = 360


def bar_chart(title: str, items: List[Tuple[str, Optional[int]]]) -> Chart:
    """Horizontal bars, one per item; a hidden value (None) is a marked box of fixed size."""
    largest = max([value for _label, value in items if value is not None] + [1])
    bars = []
    for index, (label, value) in enumerate(items):
        hidden = value is None
        width = 0 if value is None else round(360 * value / largest)
        bars.append(Bar(label, SUPPRESSED if value is None else str(value), 8 + index * 22, width, hidden))
    return Chart(title, bars, 16 + 22 * len(items))


def charts_of(table: Table, languages: Dict[str, str]) -> List[Chart]:
    """A table's charts: its categories over the month, and for weekly tables its weeks."""
    charts = [
        bar_chart(
            "Sur le mois",
            [(name_of(c, languages), table.value(TOTAL, c)) for c in table.columns],
        )
    ]
    if table.spec.rows == "week":
        charts.append(bar_chart("Par semaine", [(week_label(r), table.value(r, TOTAL)) for r in table.rows]))
    else:
        charts.append(bar_chart("Par ligne", [(name_of(r, languages), table.value(r, TOTAL)) for r in table.rows]))
    return charts
