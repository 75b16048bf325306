"""Choosing the language of a contact's answers.

Order: a marker word of exactly one language (data kept by mediators in
``translations/<lang>/language.yml``) over statistical detection (lingua, restricted to the
deployment's languages, offline) over the contact's current language over the default.
Short or ambiguous messages ("ok", "1") never switch a conversation's language.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import Dict, Iterable, Optional, Set

import yaml

from bot.i18n import TRANSLATIONS_DIR

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # digits kept: Arabizi writes "3andi", "7ad"

LINGUA_NAMES = {
    "fr": "FRENCH",
    "en": "ENGLISH",
    "es": "SPANISH",
    "pt": "PORTUGUESE",
    "ro": "ROMANIAN",
    "bg": "BULGARIAN",
    "zh": "CHINESE",
    "ru": "RUSSIAN",
    "uk": "UKRAINIAN",
    "ar": "ARABIC",
}


_LANGUAGE_SCRIPTS = {"ru": "CYRILLIC", "uk": "CYRILLIC", "bg": "CYRILLIC", "ar": "ARABIC", "zh": "CJK"}


def _script(text: str) -> Optional[str]:
    """The script of at least 80% of the letters of ``text`` (CYRILLIC, ARABIC, CJK, LATIN)."""
    counts: Dict[str, int] = {}
    for character in text:
        if character.isalpha():
            name = unicodedata.name(character, "")
            script = name.split(" ", 1)[0]
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    if not total:
        return None
    script, count = max(counts.items(), key=lambda item: item[1])
    return script if count >= 0.8 * total else None


def _is_han(character: str) -> bool:
    return "\u4e00" <= character <= "\u9fff" or "\u3400" <= character <= "\u4dbf"


def fold(text: str) -> str:
    """Lower case, without accents or other combining marks (as people type on phones)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def load_language_file(language: str, translations_dir: Path = TRANSLATIONS_DIR) -> dict:
    """The mediators' data of a language (``translations/<lang>/language.yml``), or {}."""
    path = translations_dir / language / "language.yml"
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_markers(languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> Dict[str, Set[str]]:
    markers: Dict[str, Set[str]] = {}
    for language in languages:
        data = load_language_file(language, translations_dir)
        if data:
            markers[language] = {fold(str(word)) for word in data.get("markers") or []}
    return markers


class LanguageChooser:
    """Decides, for each inbound message, the language to answer in."""

    # A first message sets the language when the detector is fairly sure; switching an
    # established conversation needs more: a clear winner, over two words at least.
    FIRST_CONFIDENCE = 0.4
    FIRST_MARGIN = 0.15
    SWITCH_CONFIDENCE = 0.7
    SWITCH_MARGIN = 0.4
    MIN_LETTERS = 3

    def __init__(self, languages: Iterable[str], default: str, markers: Optional[Dict[str, Set[str]]] = None) -> None:
        self.languages = tuple(languages)
        self.default = default
        self.markers = load_markers(self.languages) if markers is None else markers
        self._detector: Optional[object] = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the detector's models (about a third of a second); safe to call from a thread."""
        self._get_detector()

    def _get_detector(self) -> object:
        with self._lock:
            if self._detector is None:
                from lingua import Language, LanguageDetectorBuilder

                wanted = [getattr(Language, LINGUA_NAMES[code]) for code in self.languages]
                builder = LanguageDetectorBuilder.from_languages(*wanted)
                self._detector = builder.with_preloaded_language_models().build()
            return self._detector

    def _by_markers(self, words: Iterable[str]) -> Optional[str]:
        """The language with the most marker words in the message, if one has strictly most."""
        hits: Dict[str, int] = {}
        for word in words:
            for language, marks in self.markers.items():
                if word in marks:
                    hits[language] = hits.get(language, 0) + 1
        if not hits:
            return None
        ranked = sorted(hits.values(), reverse=True)
        if len(ranked) > 1 and ranked[0] == ranked[1]:
            return None
        return max(hits, key=lambda language: hits[language])

    def detect(self, text: str) -> tuple[Optional[str], float]:
        """(language, confidence) by statistics alone; (None, 0) for text with too few letters."""
        code, confidence, _margin = self._detect(text)
        return code, confidence

    def _detect(self, text: str) -> tuple[Optional[str], float, float]:
        letters = sum(1 for c in text if c.isalpha())
        if letters < self.MIN_LETTERS or len(self.languages) < 2:
            return None, 0.0, 0.0
        detector = self._get_detector()
        values = detector.compute_language_confidence_values(text)  # type: ignore[attr-defined]
        if not values:
            return None, 0.0, 0.0
        best = values[0]
        second = float(values[1].value) if len(values) > 1 else 0.0
        code = next(c for c, name in LINGUA_NAMES.items() if name == best.language.name)
        return code, float(best.value), float(best.value) - second

    def choose(self, text: str, current: Optional[str]) -> str:
        """The language to answer ``text`` in, given the contact's ``current`` language."""
        if current not in self.languages:
            current = None
        words = _WORD.findall(fold(text))
        marked = self._by_markers(words)
        if marked is not None:
            return marked
        detected, confidence, margin = self._detect(text)
        if detected is None:
            return current or self.default
        if current is None:
            sure = confidence >= self.FIRST_CONFIDENCE and margin >= self.FIRST_MARGIN
            if sure:
                return detected
            # unsure between languages of one script (Russian or Ukrainian?): the likeliest of
            # them is still closer to her than a default she may not read at all
            script = _script(text)
            if script is not None and script != _script(self.default) and _LANGUAGE_SCRIPTS.get(detected) == script:
                return detected
            return self.default
        clear = confidence >= self.SWITCH_CONFIDENCE and margin >= self.SWITCH_MARGIN
        # Chinese is written without spaces: each character counts as a word here
        units = len(words) + sum(1 for c in text if _is_han(c)) - sum(1 for w in words if _is_han(w[0]))
        if detected != current and clear and units >= 2:
            return detected
        return current
