"""What the safety lexicons catch and miss, for mediators (``python -m bot i18n safety``) and
the tests.

Three sources per language:
* ``translations/<lang>/safety_examples.yml``: messages mediators met or wrote, under
  ``danger``, ``minor``, ``erase`` (each must be caught as that) and ``none`` (must be caught as
  nothing: ordinary questions that look close);
* the model's training examples (``nlu_data/<lang>/nlu.yml``) and held-out stories
  (``tests/stories/test_<lang>.yml``): no message of another intent may be caught (the check wins
  over the model); of the ``danger`` and ``minor`` intents, the share caught is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import yaml

from bot.safety import KINDS, Safety
from bot.settings import PROJECT_ROOT

TRANSLATIONS = PROJECT_ROOT / "translations"


@dataclass
class Audit:
    language: str
    wrong_examples: List[Tuple[str, str, str]] = field(default_factory=list)  # (expected, found, text)
    caught_elsewhere: List[Tuple[str, str, str]] = field(default_factory=list)  # (intent, found, text)
    recall: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # intent -> (caught, total)


def labelled(language: str, root: Path = PROJECT_ROOT) -> Iterator[Tuple[str, str]]:
    """(intent, message) of the training data and held-out stories of ``language``."""
    nlu = yaml.safe_load((root / "nlu_data" / language / "nlu.yml").read_text(encoding="utf-8"))
    for block in nlu.get("nlu") or []:
        intent = block.get("intent")
        if intent is None:
            continue
        for line in str(block.get("examples", "")).splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                yield str(intent), text
    stories_path = root / "tests" / "stories" / f"test_{language}.yml"
    if stories_path.exists():
        stories = yaml.safe_load(stories_path.read_text(encoding="utf-8"))
        for story in stories.get("stories") or []:
            for step in story.get("steps") or []:
                if "user" in step and step.get("intent"):
                    yield str(step["intent"]), str(step["user"]).strip()


def found_kinds(safety: Safety, text: str) -> List[str]:
    finding = safety.check(text)
    kinds = [kind for kind in KINDS if getattr(finding, kind)]
    if safety.stops(text):
        kinds.append("erase")
    return sorted(set(kinds))


def audit(language: str, safety: Safety, root: Path = PROJECT_ROOT) -> Audit:
    result = Audit(language)
    path = root / "translations" / language / "safety_examples.yml"
    examples = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    for expected in (*KINDS, "none"):
        for text in examples.get(expected) or []:
            kinds = found_kinds(safety, str(text))
            ok = kinds == [] if expected == "none" else expected in kinds
            if not ok:
                result.wrong_examples.append((expected, ",".join(kinds) or "nothing", str(text)))
    counts: Dict[str, List[int]] = {"danger": [0, 0], "minor": [0, 0]}
    for intent, text in labelled(language, root):
        kinds = found_kinds(safety, text)
        if intent in counts:
            counts[intent][1] += 1
            counts[intent][0] += intent in kinds
            extra = [kind for kind in kinds if kind not in ("danger", "minor")]
            if extra:
                result.caught_elsewhere.append((intent, ",".join(extra), text))
        elif kinds:
            result.caught_elsewhere.append((intent, ",".join(kinds), text))
    result.recall = {intent: (caught, total) for intent, (caught, total) in counts.items()}
    return result


def format_audit(result: Audit) -> str:
    lines = [f"== {result.language}"]
    for intent, (caught, total) in result.recall.items():
        share = f"{100 * caught / total:.0f}%" if total else "-"
        lines.append(f"  model's {intent} examples caught: {caught}/{total} ({share})")
    for expected, found, text in result.wrong_examples:
        lines.append(f"  EXAMPLE {expected}, found {found}: {text}")
    for intent, found, text in result.caught_elsewhere:
        lines.append(f"  CAUGHT {found} in a message of {intent}: {text}")
    if not result.wrong_examples and not result.caught_elsewhere:
        lines.append("  no wrong example, nothing caught elsewhere")
    return "\n".join(lines)
