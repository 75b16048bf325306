"""Mediator tooling: what is missing, stale or too long, and what breaks the rules.

``status``  per language: entries translated / reviewed / draft / missing / stale, SMS cost
``check``   errors that must never ship (run in CI); exit code 1 if any
``preview`` the answers of a conversation as a person would see them in a language
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import yaml
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.discreet import Discretion, opening
from bot.i18n import DOMAIN, SOURCE_LANGUAGE, TRANSLATIONS_DIR, Catalogs, load_source_responses
from bot.sms import sms_cost

_DIGITS = re.compile(r"\d+")
_SPACED_NUMBER = re.compile(r"\d+(?: \d+)+")
_PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}")
_URL = re.compile(r"(?:https?://|www\.)([^\s/]+)", re.IGNORECASE)


def load_catalog(language: str, translations_dir: Path = TRANSLATIONS_DIR) -> Catalog:
    with (translations_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as handle:
        return read_po(handle, locale=language)


def load_rules(translations_dir: Path = TRANSLATIONS_DIR) -> dict:
    return yaml.safe_load((translations_dir / "checks.yml").read_text(encoding="utf-8")) or {}


def catalog_languages(translations_dir: Path = TRANSLATIONS_DIR) -> List[str]:
    return sorted(p.parent.parent.name for p in translations_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def _entries(catalog: Catalog) -> List[Message]:
    return [m for m in catalog if m.id]  # iterating a catalog skips obsolete entries


@dataclass
class LanguageStatus:
    language: str
    entries: int = 0
    translated: int = 0
    reviewed: int = 0
    draft: int = 0
    missing: int = 0
    stale: int = 0
    max_segments: int = 0
    over_budget: int = 0
    encodings: Dict[str, int] = field(default_factory=dict)


def segment_budget(context: Optional[str], rules: dict) -> int:
    budgets = rules.get("sms_segments") or {}
    if context and context.endswith("_more"):
        return int(budgets.get("more", 10))
    return int(budgets.get("answer", 8))


def status(language: str, translations_dir: Path = TRANSLATIONS_DIR) -> LanguageStatus:
    rules = load_rules(translations_dir)
    result = LanguageStatus(language)
    if language == SOURCE_LANGUAGE:
        template = load_template(translations_dir)
        for message in _entries(template):
            result.entries += 1
            result.translated += 1
            result.reviewed += 1
            _count_sms(result, message.context, str(message.id), rules)
        return result
    stale = stale_contexts(translations_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po")
    for message in _entries(load_catalog(language, translations_dir)):
        result.entries += 1
        text = message.string if isinstance(message.string, str) else ""
        if not text:
            result.missing += 1
            continue
        result.translated += 1
        if message.fuzzy:
            result.draft += 1
            if message.context in stale:
                result.stale += 1
        else:
            result.reviewed += 1
        _count_sms(result, message.context, text, rules)
    return result


def stale_contexts(po_path: Path) -> set:
    """Contexts of the entries whose French changed since they were translated: ``update``
    keeps the former French as a ``#| msgid`` comment, which Babel's reader does not load."""
    stale = set()
    for block in po_path.read_text(encoding="utf-8").split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith("#| msgid") for line in lines):
            for line in lines:
                if line.startswith("msgctxt "):
                    stale.add(line[len("msgctxt ") :].strip().strip('"'))
    return stale


def _count_sms(result: LanguageStatus, context: Optional[str], text: str, rules: dict) -> None:
    if context == "webchat":
        return
    cost = sms_cost(text)
    result.encodings[cost.encoding] = result.encodings.get(cost.encoding, 0) + 1
    result.max_segments = max(result.max_segments, cost.segments)
    if cost.segments > segment_budget(context, rules):
        result.over_budget += 1


def load_template(translations_dir: Path = TRANSLATIONS_DIR) -> Catalog:
    with (translations_dir / f"{DOMAIN}.pot").open("rb") as handle:
        return read_po(handle)


def format_status(rows: Iterable[LanguageStatus]) -> str:
    header = (
        f"{'lang':<5}{'entries':>8}{'translated':>11}{'reviewed':>9}{'draft':>7}{'missing':>8}"
        f"{'stale':>7}{'max SMS':>9}{'too long':>9}  encodings"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        encodings = ", ".join(f"{name} {count}" for name, count in sorted(row.encodings.items()))
        lines.append(
            f"{row.language:<5}{row.entries:>8}{row.translated:>11}{row.reviewed:>9}{row.draft:>7}"
            f"{row.missing:>8}{row.stale:>7}{row.max_segments:>9}{row.over_budget:>9}  {encodings}"
        )
    lines.append("")
    lines.append("reviewed: checked by a mediator · draft: not reviewed yet (fuzzy) · stale: the French")
    lines.append("changed since the translation · max SMS: most segments of one answer · too long: over budget")
    return "\n".join(lines)


@dataclass(frozen=True)
class Problem:
    language: str
    context: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.language} {self.context}: {self.rule}: {self.detail}"


def check(
    languages: Optional[Sequence[str]] = None,
    translations_dir: Path = TRANSLATIONS_DIR,
    french_detector: Optional[object] = None,
) -> List[Problem]:
    """Every rule a catalog must meet before it is served."""
    rules = load_rules(translations_dir)
    allowed_hosts = {h.lower() for h in rules.get("allowed_link_hosts") or []}
    problems: List[Problem] = []
    template = load_template(translations_dir)
    for message in _entries(template):
        problems += _link_problems("fr", message.context or "", str(message.id), allowed_hosts)
        cost = sms_cost(str(message.id))
        if message.context != "webchat" and cost.segments > segment_budget(message.context, rules):
            problems.append(Problem("fr", message.context or "", "too long for SMS", f"{cost.segments} segments"))
    for language in languages or [lang for lang in catalog_languages(translations_dir) if lang != SOURCE_LANGUAGE]:
        catalog = load_catalog(language, translations_dir)
        for message in _entries(catalog):
            text = message.string if isinstance(message.string, str) else ""
            if not text:
                continue
            context = message.context or ""
            source = str(message.id)
            problems += _pair_problems(language, context, source, text, rules, allowed_hosts)
            if not message.fuzzy:
                problems += _untranslated(language, context, source, text, french_detector)
    return problems


def _pair_problems(
    language: str, context: str, source: str, text: str, rules: dict, allowed_hosts: set
) -> List[Problem]:
    problems = []
    if sorted(_PLACEHOLDER.findall(source)) != sorted(_PLACEHOLDER.findall(text)):
        problems.append(Problem(language, context, "placeholders differ", f"{_PLACEHOLDER.findall(text)}"))
    missing_digits = set(_DIGITS.findall(source)) - set(_DIGITS.findall(text))
    if missing_digits:
        problems.append(Problem(language, context, "number missing or changed", ", ".join(sorted(missing_digits))))
    flat_text = " ".join(text.split())
    for number in _SPACED_NUMBER.findall(source):
        if number not in flat_text:
            problems.append(Problem(language, context, "phone number written differently", number))
    if context != "webchat":
        cost = sms_cost(text)
        if cost.segments > segment_budget(context, rules):
            problems.append(
                Problem(language, context, "too long for SMS", f"{cost.segments} segments ({cost.encoding})")
            )
    problems += _link_problems(language, context, text, allowed_hosts)
    return problems


def _link_problems(language: str, context: str, text: str, allowed_hosts: set) -> List[Problem]:
    return [
        Problem(language, context, "link to a site not allowed", host)
        for host in _URL.findall(text)
        if host.lower().rstrip(".,;:") not in allowed_hosts
    ]


def _untranslated(language: str, context: str, source: str, text: str, detector: Optional[object]) -> List[Problem]:
    if text.strip() == source.strip() and len(source) > 12:
        return [Problem(language, context, "reviewed but still the French text", text[:40])]
    if detector is not None and len(text) > 40:
        code, confidence = detector.detect(text)  # type: ignore[attr-defined]
        if code == "fr" and confidence >= 0.9:
            return [Problem(language, context, "reviewed but written in French", text[:40])]
    return []


# A conversation that visits every answer a person can reach by the menus.
PREVIEW_PATH = [
    "utter_menu",
    "utter_rights_menu",
    "utter_law",
    "utter_law_more",
    "utter_police",
    "utter_police_more",
    "utter_complaint",
    "utter_complaint_more",
    "utter_health_menu",
    "utter_testing",
    "utter_testing_more",
    "utter_exposure",
    "utter_exposure_more",
    "utter_prep",
    "utter_prep_more",
    "utter_emergency_contraception",
    "utter_emergency_contraception_more",
    "utter_care_no_coverage",
    "utter_care_no_coverage_more",
    "utter_exit_pathway",
    "utter_exit_pathway_more",
    "utter_afis",
    "utter_papers",
    "utter_papers_more",
    "utter_shelter",
    "utter_shelter_more",
    "utter_danger",
    "utter_danger_more",
    "utter_minor",
    "utter_minor_more",
    "utter_thanks",
    "utter_goodbye",
    "utter_not_understood",
    "utter_default",
    "utter_no_more",
    "utter_invalid_option",
]


def preview(language: str, names: Optional[Sequence[str]] = None, serve_drafts: bool = True) -> str:
    """The answers, in order, as the person would read them, with their SMS cost."""
    catalogs = Catalogs([SOURCE_LANGUAGE, language], serve_drafts=serve_drafts)
    drafts = set()
    if language != SOURCE_LANGUAGE:
        drafts = {m.context for m in _entries(load_catalog(language)) if m.fuzzy}
    names = list(names or PREVIEW_PATH)
    unknown = [n for n in names if n not in load_source_responses()]
    if unknown:
        raise KeyError(", ".join(unknown))
    blocks = []
    for name in names:
        text = catalogs.render(name, language)
        cost = sms_cost(text)
        marker = " [draft]" if name in drafts else ""
        blocks.append(f"── {name}{marker} · {cost.segments} SMS ({cost.encoding})\n{text}")
    return "\n\n".join(blocks)


def discretion_problems(
    languages: Sequence[str], discretion: Discretion, translations_dir: Path = TRANSLATIONS_DIR
) -> List[Problem]:
    """Every text sent to her (all but the web chat page's): nothing sensitive within what a lock
    screen shows, and a discreet version with nothing sensitive at all."""
    problems: List[Problem] = []
    for language in languages:
        if language == SOURCE_LANGUAGE:
            catalog = load_template(translations_dir)
        else:
            catalog = load_catalog(language, translations_dir)
        for message in _entries(catalog):
            if message.context == "webchat":
                continue
            text = str(message.string or message.id) if language != SOURCE_LANGUAGE else str(message.id)
            context = message.context or ""
            shown = discretion.sensitive_in(opening(text))
            if shown:
                problems.append(Problem(language, context, "sensitive in the first 40 characters", ", ".join(shown)))
            if discretion.discreet(text, language) is None:
                left = discretion.sensitive_in(text)
                problems.append(Problem(language, context, "discreet version still sensitive", ", ".join(left)))
    return problems
