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

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

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


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def load_markers(languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> Dict[str, Set[str]]:
    markers: Dict[str, Set[str]] = {}
    for language in languages:
        path = translations_dir / language / "language.yml"
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            markers[language] = {_fold(str(word)) for word in data.get("markers") or []}
    return markers


class LanguageChooser:
    """Decides, for each inbound message, the language to answer in."""

    FIRST_CONFIDENCE = 0.6
    SWITCH_CONFIDENCE = 0.9
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
        hits = {lang for lang, marks in self.markers.items() for word in words if word in marks}
        return hits.pop() if len(hits) == 1 else None

    def detect(self, text: str) -> tuple[Optional[str], float]:
        """(language, confidence) by statistics alone; (None, 0) for text with too few letters."""
        letters = sum(1 for c in text if c.isalpha())
        if letters < self.MIN_LETTERS or len(self.languages) < 2:
            return None, 0.0
        detector = self._get_detector()
        values = detector.compute_language_confidence_values(text)  # type: ignore[attr-defined]
        if not values:
            return None, 0.0
        best = values[0]
        code = next(c for c, name in LINGUA_NAMES.items() if name == best.language.name)
        return code, float(best.value)

    def choose(self, text: str, current: Optional[str]) -> str:
        """The language to answer ``text`` in, given the contact's ``current`` language."""
        if current not in self.languages:
            current = None
        words = _WORD.findall(_fold(text))
        marked = self._by_markers(words)
        if marked is not None:
            return marked
        detected, confidence = self.detect(text)
        if current is None:
            if detected is not None and confidence >= self.FIRST_CONFIDENCE:
                return detected
            return self.default
        if detected is not None and detected != current and confidence >= self.SWITCH_CONFIDENCE and len(words) >= 2:
            return detected
        return current
