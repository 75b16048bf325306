"""Translation catalogs: French source texts rendered in the contact's language with gettext.

* The source of every bot response is its French text in the Rasa domain (``domain.yml``).
* Each response is one catalog entry whose context (``msgctxt``) is the response name, so
  two responses with the same French text can be translated differently.
* ``translations/<lang>/LC_MESSAGES/messages.po`` is what mediators edit. ``compile_catalogs``
  writes two binary catalogs beside it: ``messages.mo`` (reviewed entries only) and
  ``drafts.mo`` (reviewed and draft, i.e. fuzzy, entries). Which one is served is a setting.
"""

from __future__ import annotations

import gettext
import logging
import re
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional

import yaml
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SOURCE_LANGUAGE = "fr"
DOMAIN = "messages"
TRANSLATIONS_DIR = PROJECT_ROOT / "translations"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def pgettext(context: str, message: str) -> str:
    """Marks a gateway string for extraction (Babel finds ``pgettext`` calls); it is
    translated when rendered, with :meth:`Catalogs.translate`."""
    return message


def load_source_responses(domain_file: Path = DOMAIN_FILE) -> Dict[str, str]:
    """Response name -> French source text, from the Rasa domain."""
    data = yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}
    responses: Dict[str, str] = {}
    for name, variants in (data.get("responses") or {}).items():
        texts = [str(v["text"]) for v in variants or [] if isinstance(v, dict) and v.get("text")]
        if texts:
            responses[str(name)] = texts[0]
    return responses


def compile_catalogs(translations_dir: Path = TRANSLATIONS_DIR, force: bool = False) -> int:
    """Compile every ``.po`` into ``messages.mo`` and ``drafts.mo``; returns how many were
    (re)written. Up-to-date binaries are left alone unless ``force``."""
    written = 0
    for po_path in sorted(translations_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        targets = {po_path.with_name(f"{DOMAIN}.mo"): False, po_path.with_name("drafts.mo"): True}
        if not force and all(t.exists() and t.stat().st_mtime >= po_path.stat().st_mtime for t in targets):
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        for target, use_fuzzy in targets.items():
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=use_fuzzy)
            tmp.replace(target)
            written += 1
    return written


def fill(text: str, values: Mapping[str, object]) -> str:
    """Replace ``{name}`` placeholders whose value is known; others stay as written."""

    def _sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else str(value)

    return _PLACEHOLDER.sub(_sub, text)


class Catalogs:
    """Renders responses and interface strings in a language."""

    def __init__(
        self,
        languages: Iterable[str],
        serve_drafts: bool = True,
        translations_dir: Path = TRANSLATIONS_DIR,
        domain_file: Path = DOMAIN_FILE,
    ) -> None:
        self.languages = tuple(languages)
        self.serve_drafts = serve_drafts
        self.sources = load_source_responses(domain_file)
        compile_catalogs(translations_dir)
        binary = "drafts.mo" if serve_drafts else f"{DOMAIN}.mo"
        self._translations: Dict[str, gettext.NullTranslations] = {}
        self._reviewed: Dict[str, gettext.NullTranslations] = {}
        for language in self.languages:
            if language == SOURCE_LANGUAGE:
                continue
            path = translations_dir / language / "LC_MESSAGES" / binary
            if path.exists():
                with path.open("rb") as handle:
                    self._translations[language] = gettext.GNUTranslations(handle)
            else:
                log.warning("no catalog for language %s; answers fall back to French", language)
            reviewed = translations_dir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
            if reviewed.exists():
                with reviewed.open("rb") as handle:
                    self._reviewed[language] = gettext.GNUTranslations(handle)

    def has_response(self, name: str) -> bool:
        return name in self.sources

    def translate(self, language: str, context: str, source: str) -> str:
        """The translation of ``source`` under ``context``, or the French source."""
        translations = self._translations.get(language)
        if translations is None:
            return source
        return translations.pgettext(context, source)

    def reviewed(self, language: str, context: str, source: str) -> bool:
        """True if a mediator reviewed the translation of ``source`` (French always is)."""
        if language == SOURCE_LANGUAGE:
            return True
        translations = self._reviewed.get(language)
        return translations is not None and translations.pgettext(context, source) != source

    def render(self, name: str, language: str, values: Optional[Mapping[str, object]] = None) -> str:
        """A bot response in ``language``: the reviewed translation (or the draft, if drafts
        are served), else the French source."""
        source = self.sources[name]
        text = self.translate(language, name, source)
        return fill(text, values or {})
