"""Choosing the language explicitly: the word for "language" in any served language shows a
menu of languages, each written in its own language; a number, or a language's name written
alone ("english", "español", "русский"), switches at once.

The names and words are data kept by mediators in ``translations/<lang>/language.yml``
(``name``, ``keywords``, ``aliases``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from bot.i18n import TRANSLATIONS_DIR, Catalogs, pgettext
from bot.language import fold, load_language_file

CONTEXT = "language"


HEADER = pgettext("language", "Choisissez votre langue : écrivez son numéro.")

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def _folded_phrase(text: str) -> str:
    """The phrase folded like the detector's words, punctuation and extra spaces dropped."""
    return " ".join(_PUNCTUATION.sub(" ", fold(text)).split())


class LanguageMenu:
    def __init__(self, languages: Iterable[str], translations_dir: Path = TRANSLATIONS_DIR) -> None:
        self.languages: Tuple[str, ...] = tuple(languages)
        self.names: Dict[str, str] = {}
        self._keywords: Dict[str, str] = {}
        self._aliases: Dict[str, str] = {}
        for code in self.languages:
            data = load_language_file(code, translations_dir)
            self.names[code] = str(data.get("name") or code)
            for word in data.get("keywords") or []:
                self._keywords.setdefault(_folded_phrase(str(word)), code)
            for alias in [self.names[code], *(data.get("aliases") or [])]:
                self._aliases[_folded_phrase(str(alias))] = code
        self._keywords.pop("", None)
        self._aliases.pop("", None)

    def numbered(self) -> List[Tuple[int, str, str]]:
        return [(n, code, self.names[code]) for n, code in enumerate(self.languages, start=1)]

    def render(self, catalogs: Catalogs, language: str) -> str:
        lines = [catalogs.translate(language, CONTEXT, HEADER)]
        lines += [f"{n} {name}" for n, _code, name in self.numbered()]
        return "\n".join(lines)

    def asks_for_menu(self, text: str) -> Optional[str]:
        """If the whole message is a word for "language", the language of that word."""
        return self._keywords.get(_folded_phrase(text))

    def named_language(self, text: str) -> Optional[str]:
        """The language whose name is the whole message, if any."""
        return self._aliases.get(_folded_phrase(text))

    def choice(self, text: str) -> Optional[str]:
        """The language behind a number typed in reply to the menu."""
        folded = _folded_phrase(text)
        if folded.isdigit():
            number = int(folded)
            if 1 <= number <= len(self.languages):
                return self.languages[number - 1]
        return self.named_language(text)
