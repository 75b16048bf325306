"""Discretion: what a lock screen, or the man who reads her phone, sees of what we send.

Data kept by mediators beside the translations (``translations/<lang>/discreet.yml``):

* ``sensitive``: words or phrases (folded: lower case, no accents; a final ``*`` for every word
  that begins so: ``prostitu*``) that must never show in the first 40 characters of anything
  sent to her (a lock screen, a notification), and nowhere in a message sent in discreet mode.
  Those of every language are looked for in every text (Chinese: anywhere in the text).
* ``replace``: in discreet mode, exact pieces of the answers (as written in the catalog) and
  the neutral words that stand for them; the longest first.
* ``on`` / ``off``: whole-message code words that turn discreet mode on and off (the first of
  each is the one the answers name). Neutral words: what she writes must not give her away.

In discreet mode a text that still holds a sensitive word after the replacements is not sent
as it is: the router sends the neutral ``DISCREET_FALLBACK`` instead, and the console refuses a
staff reply that would hold one (tests check that no catalog answer needs the fallback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Pattern, Tuple

import yaml

from bot.i18n import TRANSLATIONS_DIR
from bot.language import fold

LOCK_SCREEN = 40  # characters a lock screen or a notification shows


@dataclass
class _Language:
    replace: List[Tuple[str, str]] = field(default_factory=list)  # longest first
    on: List[str] = field(default_factory=list)
    off: List[str] = field(default_factory=list)


def _word(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", fold(text)).split())


_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD_END = re.compile(r"\s|[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def opening(text: str) -> str:
    """What a lock screen shows: the first 40 characters, and the rest of a word cut there
    (Chinese, written without spaces, is cut at the 40th character)."""
    match = _WORD_END.search(text, LOCK_SCREEN)
    return text if match is None else text[: match.start()]


def _pattern(entry: str) -> str:
    prefix = entry.endswith("*")
    body = re.escape(entry.rstrip("*").strip()).replace("\\ ", "\\W+")
    if _CJK.search(entry):
        return body
    return f"(?<!\\w){body}" + ("" if prefix else "(?!\\w)")


class Discretion:
    def __init__(self, languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> None:
        self._languages: Dict[str, _Language] = {}
        stems: List[str] = []
        for language in languages:
            path = translations_dir / language / "discreet.yml"
            data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
            stems += [fold(str(s)).strip() for s in data.get("sensitive") or [] if str(s).strip()]
            pairs = [(str(k), str(v)) for k, v in (data.get("replace") or {}).items()]
            # YAML 1.1 reads a bare on: / off: key as true / false
            on = data.get("on") or data.get(True) or []
            off = data.get("off") or data.get(False) or []
            self._languages[language] = _Language(
                replace=sorted(pairs, key=lambda pair: len(pair[0]), reverse=True),
                on=[str(w) for w in on],
                off=[str(w) for w in off],
            )
        # the code words of every language, folded once (they are looked for in every message)
        self._on = {_word(w) for lang in self._languages.values() for w in lang.on} - {""}
        self._off = {_word(w) for lang in self._languages.values() for w in lang.off} - {""}
        patterns = [_pattern(stem) for stem in sorted(set(stems), key=len, reverse=True)]
        self._sensitive: Optional[Pattern[str]] = re.compile("|".join(patterns)) if patterns else None

    def sensitive_in(self, text: str) -> List[str]:
        """The sensitive words found in ``text`` (as folded)."""
        if self._sensitive is None:
            return []
        return [match.group(0) for match in self._sensitive.finditer(fold(text))]

    def discreet(self, text: str, language: str) -> Optional[str]:
        """``text`` with the replacements of ``language`` (and of French, the source a
        fallback answer is written in); None if a sensitive word is still in it."""
        for lang in dict.fromkeys((language, "fr")):
            for piece, neutral in self._languages.get(lang, _Language()).replace:
                text = re.sub(f"(?<!\\w){re.escape(piece)}(?!\\w)", neutral, text)
        return None if self.sensitive_in(text) else text

    def turns_on(self, text: str) -> bool:
        """The whole message is a code word that turns discreet mode on."""
        return _word(text) in self._on

    def turns_off(self, text: str) -> bool:
        return _word(text) in self._off

    def word(self, kind: str, language: str) -> Optional[str]:
        """The ``on`` or ``off`` word the answers name in ``language``."""
        words = getattr(self._languages.get(language, _Language()), kind)
        return words[0] if words else None
