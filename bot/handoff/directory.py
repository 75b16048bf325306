"""The directory of approved associations (associations agréées) that take over conversations.

Each association: its name, its approval (agrément) number and end date, the départements it
serves (``*`` for a national one), the languages its staff speak, opening hours by weekday,
days it is closed, and the association requests fall back to when it cannot take them. The
directory is loaded from a YAML file (``python -m bot associations import FILE``) and kept in
the database; the console's admin pages edit the same records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

import yaml

from bot.handoff.departements import DEPARTEMENTS
from bot.settings import SUPPORTED_LANGUAGES

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NATIONAL = "*"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")

Span = Tuple[time, time]


class DirectoryError(ValueError):
    """A directory entry is invalid; the message names the association and the field."""


@dataclass(frozen=True)
class Association:
    slug: str
    name: str
    approval_number: str
    approval_ends: date
    departements: FrozenSet[str]
    languages: FrozenSet[str]
    hours: Mapping[int, Tuple[Span, ...]]  # weekday (0 = Monday) -> opening spans
    closed_on: FrozenSet[date] = frozenset()
    fallback: Optional[str] = None
    example: bool = False  # demo data, never a real association
    timezone: str = "Europe/Paris"

    def approved_on(self, day: date) -> bool:
        return day <= self.approval_ends

    def serves(self, departement: Optional[str]) -> bool:
        return NATIONAL in self.departements or (departement is not None and departement in self.departements)

    @property
    def national(self) -> bool:
        return NATIONAL in self.departements

    def to_record(self) -> Dict[str, Any]:
        """The JSON-friendly form stored in the database and written back to files."""
        return {
            "slug": self.slug,
            "name": self.name,
            "approval_number": self.approval_number,
            "approval_ends": self.approval_ends.isoformat(),
            "departements": sorted(self.departements),
            "languages": sorted(self.languages),
            "hours": {
                WEEKDAYS[day]: [f"{a:%H:%M}-{_end(b)}" for a, b in spans] for day, spans in sorted(self.hours.items())
            },
            "closed_on": sorted(day.isoformat() for day in self.closed_on),
            "fallback": self.fallback,
            "example": self.example,
            "timezone": self.timezone,
        }


def _end(moment: time) -> str:
    return "24:00" if moment == time.max else f"{moment:%H:%M}"


def _spans(raw: Any, where: str) -> Tuple[Span, ...]:
    if raw in (None, "", "closed"):
        return ()
    items = raw if isinstance(raw, list) else [raw]
    spans = []
    for item in items:
        match = _SPAN.match(str(item).replace(" ", ""))
        if not match:
            raise DirectoryError(f"{where}: opening hours must look like 09:00-17:30")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start = time(h1, m1)
        end = time.max if (h2, m2) == (24, 0) else time(h2 % 24, m2)
        if (h2, m2) > (24, 0) or end <= start:
            raise DirectoryError(f"{where}: an opening span must end after it starts, the same day")
        spans.append((start, end))
    return tuple(sorted(spans))


def parse_association(raw: Mapping[str, Any]) -> Association:
    slug = str(raw.get("slug", "")).strip()
    if not _SLUG.match(slug):
        raise DirectoryError("every association needs a slug: lower-case letters, digits and -")
    where = f"association {slug}"
    name = str(raw.get("name", "")).strip()
    if not name:
        raise DirectoryError(f"{where}: name is required")
    number = str(raw.get("approval_number", "")).strip()
    if not number:
        raise DirectoryError(f"{where}: approval_number (the agrément) is required")
    try:
        ends = raw["approval_ends"]
        ends = ends if isinstance(ends, date) else date.fromisoformat(str(ends))
    except (KeyError, ValueError):
        raise DirectoryError(f"{where}: approval_ends must be a date (YYYY-MM-DD)") from None
    departements = frozenset(str(d).strip().upper() for d in raw.get("departements") or [])
    unknown = sorted(d for d in departements if d not in DEPARTEMENTS and d != NATIONAL)
    if not departements or unknown:
        raise DirectoryError(f"{where}: departements must list département numbers (or * for national)")
    languages = frozenset(str(lang).strip() for lang in raw.get("languages") or [])
    if not languages or not languages <= set(SUPPORTED_LANGUAGES):
        raise DirectoryError(f"{where}: languages must be among " + ",".join(SUPPORTED_LANGUAGES))
    hours_raw = raw.get("hours") or {}
    if not isinstance(hours_raw, Mapping) or not set(hours_raw) <= set(WEEKDAYS):
        raise DirectoryError(f"{where}: hours must be keyed by " + ", ".join(WEEKDAYS))
    hours = {WEEKDAYS.index(day): _spans(value, f"{where}, {day}") for day, value in hours_raw.items()}
    try:
        closed = frozenset(d if isinstance(d, date) else date.fromisoformat(str(d)) for d in raw.get("closed_on") or [])
    except ValueError:
        raise DirectoryError(f"{where}: closed_on must list dates (YYYY-MM-DD)") from None
    fallback = raw.get("fallback") or None
    return Association(
        slug=slug,
        name=name,
        approval_number=number,
        approval_ends=ends,
        departements=departements,
        languages=languages,
        hours={day: spans for day, spans in hours.items() if spans},
        closed_on=closed,
        fallback=str(fallback) if fallback else None,
        example=bool(raw.get("example", False)),
        timezone=str(raw.get("timezone") or "Europe/Paris"),
    )


@dataclass(frozen=True)
class Directory:
    associations: Tuple[Association, ...] = field(default_factory=tuple)

    def get(self, slug: Optional[str]) -> Optional[Association]:
        return next((a for a in self.associations if a.slug == slug), None)


def parse_directory(entries: List[Mapping[str, Any]]) -> Directory:
    associations = tuple(parse_association(entry) for entry in entries)
    slugs = [a.slug for a in associations]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise DirectoryError("the same slug is used twice: " + ", ".join(duplicates))
    for association in associations:
        if association.fallback is not None and association.fallback not in slugs:
            raise DirectoryError(f"association {association.slug}: fallback {association.fallback} is not in the file")
        if association.fallback == association.slug:
            raise DirectoryError(f"association {association.slug}: an association cannot be its own fallback")
    return Directory(associations)


def load_directory(path: Path) -> Directory:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("associations") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise DirectoryError(f"{path.name}: expected a list under 'associations:'")
    return parse_directory(entries)
