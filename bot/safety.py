"""The safety check: danger, a minor, a wish to erase, read in every message before the model.

Deterministic and kept as data by mediators beside the translations
(``translations/<lang>/safety.yml``): phrases matched as whole words after folding case,
accents and punctuation (Chinese, written without spaces, as a substring), and age templates
(``j ai AGE ans``: ``AGE`` is an age from 10 to 17, in any script's digits). The phrases of
every language are looked for in every message (people mix languages). What it finds wins
over the model's guess; the model stays the second line for everything else.

``not_ages``: words that, right after a number, say it is not an age ("10 days late");
``not_after_age``: what, after a whole age template, says it is a duration ("j'ai 10 ans en
France", "15 ans de prison"); those of every language apply to every template.
``danger_alone``, ``minor_alone``, ``erase_alone``: words that count only as the whole
message (``sos`` is "you are" in Argentine Spanish). Whole-message words (``confirm``,
``talk``, ``stop``): the first of each is the word the answers tell her to write (a test checks
that each translation names it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Pattern, Sequence, Set, Tuple

import yaml

from bot.handoff.signals import folded
from bot.i18n import TRANSLATIONS_DIR

_CJK = re.compile(r"[\u3400-\u9fff]")
AGE = "(?:1[0-7])"  # what AGE stands for: under 18 (younger children are in the phrases)
KINDS = ("danger", "minor", "erase")
WORDS = ("confirm", "talk", "stop")


def normalised(text: str) -> str:
    """Folded text with every script's decimal digits as ASCII digits (١٦ -> 16)."""
    digits = "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() else c for c in text)
    return folded(digits)


@dataclass(frozen=True)
class Finding:
    danger: bool = False
    minor: bool = False
    erase: bool = False

    def __bool__(self) -> bool:
        return self.danger or self.minor or self.erase


class _Matcher:
    """Phrases and age templates of one kind, in every language."""

    def __init__(self) -> None:
        self.alone: Set[str] = set()  # whole messages (spaces removed)
        self.phrases: List[str] = []
        self.cjk_phrases: List[str] = []
        self.patterns: List[Pattern[str]] = []
        self.cjk_patterns: List[Pattern[str]] = []

    def add_phrase(self, phrase: str) -> None:
        if _CJK.search(phrase):
            self.cjk_phrases.append(phrase.replace(" ", ""))
        else:
            self.phrases.append(f" {phrase} ")

    def add_template(self, template: str, not_after: Sequence[str] = (), not_then: Sequence[str] = ()) -> None:
        """``template``: as written by mediators, ``AGE`` where the age goes; ``not_after``:
        words that, right after the number, say it is not an age ("i am 10 days late");
        ``not_then``: what, after the whole template, says so ("j'ai 10 ans en France")."""
        parts = [normalised(part) for part in template.split("AGE")]
        if len(parts) < 2:
            raise ValueError(f"an age template needs AGE: {template!r}")
        cjk = bool(_CJK.search(template))
        gap = "" if cjk else r"\ ?"  # "j ai AGE ans" also finds "jai 16ans"
        pieces = []
        for index, part in enumerate(parts):
            part = part.replace(" ", "") if cjk else part
            if index:
                pieces.append(AGE + _not_followed_by(not_after, cjk) + (gap if part else ""))
            pieces.append(re.escape(part) + (gap if part and index < len(parts) - 1 else ""))
        body = "".join(pieces) + _not_followed_by(not_then, cjk)
        if cjk:
            self.cjk_patterns.append(re.compile(f"(?<!\\d){body}(?!\\d)"))
        else:
            self.patterns.append(re.compile(f"(?<!\\w){body}(?!\\w)"))

    def matches(self, text: str) -> bool:
        if text.replace(" ", "") in self.alone:
            return True
        spaced = f" {text} "
        if any(phrase in spaced for phrase in self.phrases):
            return True
        if any(pattern.search(text) for pattern in self.patterns):
            return True
        if self.cjk_phrases or self.cjk_patterns:
            compact = text.replace(" ", "")
            if any(phrase in compact for phrase in self.cjk_phrases):
                return True
            return any(pattern.search(compact) for pattern in self.cjk_patterns)
        return False


def _union(files: Dict[str, dict], key: str) -> List[str]:
    """The folded words under ``key`` of every language's file."""
    return sorted({normalised(str(w)) for data in files.values() for w in data.get(key) or []} - {""})


def _not_followed_by(words: Sequence[str], cjk: bool) -> str:
    if not words:
        return ""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return f"(?!(?:{alternatives}))" if cjk else f"(?!\\ ?(?:{alternatives})(?!\\w))"


class Safety:
    def __init__(self, languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> None:
        self._kinds: Dict[str, _Matcher] = {kind: _Matcher() for kind in KINDS}
        self._words: Dict[str, List[Tuple[str, str]]] = {kind: [] for kind in WORDS}  # (language, word)
        self.word: Dict[str, Dict[str, str]] = {kind: {} for kind in WORDS}  # the word named in answers
        files: Dict[str, dict] = {}
        for language in languages:
            path = translations_dir / language / "safety.yml"
            files[language] = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
        # units after a number ("10 days", "15 ans de prison") of every language: never an age
        not_ages = _union(files, "not_ages")
        not_then = _union(files, "not_after_age")
        for language, data in files.items():
            for kind in KINDS:
                for phrase in data.get(kind) or []:
                    if normalised(str(phrase)):
                        self._kinds[kind].add_phrase(normalised(str(phrase)))
                for phrase in data.get(f"{kind}_alone") or []:
                    if normalised(str(phrase)):
                        self._kinds[kind].alone.add(normalised(str(phrase)).replace(" ", ""))
            for template in data.get("ages") or []:
                self._kinds["minor"].add_template(str(template), not_ages, not_then)
            for kind in WORDS:
                words = [str(w) for w in data.get(kind) or [] if normalised(str(w))]
                self._words[kind] += [(language, normalised(w).replace(" ", "")) for w in words]
                if words:
                    self.word[kind][language] = words[0]

    def check(self, text: str) -> Finding:
        message = normalised(text)
        if not message:
            return Finding()
        return Finding(**{kind: self._kinds[kind].matches(message) for kind in KINDS})

    def _whole(self, kind: str, text: str) -> bool:
        message = normalised(text).replace(" ", "")
        return bool(message) and any(message == word for _language, word in self._words[kind])

    def confirms(self, text: str, language: Optional[str] = None) -> bool:
        """The whole message says yes (to erasing everything), in ``language`` when given: an
        "ok" or "da" of another language must not erase what she wrote."""
        if language is None or language not in self.word["confirm"]:
            return self._whole("confirm", text)
        message = normalised(text).replace(" ", "")
        return bool(message) and any(message == word for lang, word in self._words["confirm"] if lang == language)

    def takes_offer(self, text: str) -> bool:
        """The whole message is the word that takes the offer of a person."""
        return self._whole("talk", text)

    def stops(self, text: str) -> bool:
        """The whole message is a stop word (STOP, ARRÊT...): she asks to erase and stop."""
        return self._whole("stop", text)
