"""Plain words that ask for a person, or withdraw that request, in every served language.

The words are data kept by mediators beside the translations (``translations/<lang>/signals.yml``,
keys ``human`` and ``cancel``). They are matched as whole words after folding case, accents and
punctuation (Chinese, written without spaces, as a substring). They are checked before the
model: a person who writes "je veux parler à quelqu'un" is never left to a classifier's guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml

from bot.i18n import TRANSLATIONS_DIR
from bot.language import fold

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff]")


def folded(text: str) -> str:
    """Case, accents and punctuation folded, single spaces."""
    return " ".join(_PUNCTUATION.sub(" ", fold(text)).split())


def _contains(text: str, phrase: str) -> bool:
    if _CJK.search(phrase):
        return phrase.replace(" ", "") in text.replace(" ", "")
    return f" {phrase} " in f" {text} "


class Signals:
    def __init__(self, languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> None:
        self.human: List[Tuple[str, str]] = []  # (language, folded phrase)
        self.cancel: List[Tuple[str, str]] = []
        self.cancel_word: Dict[str, str] = {}  # the word each language's answers tell her to write
        for language in languages:
            path = translations_dir / language / "signals.yml"
            data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
            data = data or {}
            self.human += [(language, p) for p in (folded(str(w)) for w in data.get("human") or []) if p]
            words = [p for p in (folded(str(w)) for w in data.get("cancel") or []) if p]
            self.cancel += [(language, p) for p in words]
            if words:
                self.cancel_word[language] = str((data.get("cancel") or [])[0])

    def asks_for_human(self, text: str) -> Optional[str]:
        """The language of the phrase by which ``text`` asks for a person, if any."""
        message = folded(text)
        return next((language for language, phrase in self.human if _contains(message, phrase)), None)

    def cancels(self, text: str) -> bool:
        """True if the whole of ``text`` is a word that withdraws a request (as the answers
        ask her to write it): "comment annuler une OQTF ?", "получих отказ" (a refusal) or
        "拉客罪取消了吗" are questions, not cancellations."""
        message = folded(text)
        return bool(message) and any(message.replace(" ", "") == phrase.replace(" ", "") for _l, phrase in self.cancel)
