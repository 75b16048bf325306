"""Catalog maintenance wrapped in one command: extract, update, compile.

Mediators run ``python -m bot i18n update`` after a source change and never call Babel by hand.
The extractor reads the French responses of the Rasa domain; the web chat page's strings come
from ``pgettext("webchat", ...)`` calls in the gateway's Python code.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator, List, Sequence, Tuple

import yaml
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, TRANSLATIONS_DIR, compile_catalogs
from bot.settings import PROJECT_ROOT

TEMPLATE = TRANSLATIONS_DIR / f"{DOMAIN}.pot"


def extract_rasa_domain(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[Tuple[int, str, Tuple[str, str], List[str]]]:
    """Babel extractor: one ``pgettext(<response name>, <French text>)`` per domain response."""
    node = yaml.compose(fileobj.read().decode("utf-8"))
    if node is None:
        return
    for key, value in node.value:
        if key.value != "responses":
            continue
        for name_node, variants in value.value:
            for variant in variants.value:
                for field, text_node in variant.value:
                    if field.value == "text":
                        comment = f"Rasa response {name_node.value}"
                        yield text_node.start_mark.line + 1, "pgettext", (name_node.value, text_node.value), [comment]


METHOD_MAP = [
    ("domain.yml", "bot.i18n_tools:extract_rasa_domain"),
    ("bot/**.py", "python"),
]


def extract(root: Path = PROJECT_ROOT) -> Catalog:
    """Build the template catalog (``translations/messages.pot``) from the sources."""
    catalog = Catalog(project="outreach", msgid_bugs_address="", charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root),
        method_map=METHOD_MAP,
        options_map={"domain.yml": {}, "bot/**.py": {}},
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    with TEMPLATE.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=False, sort_output=False)
    return catalog


def update(languages: Sequence[str], root: Path = PROJECT_ROOT) -> List[Path]:
    """Extract, then merge the template into each language's ``.po`` (new entries empty,
    entries whose French changed marked fuzzy), then compile."""
    template = extract(root)
    written = []
    for language in languages:
        po_path = TRANSLATIONS_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po_path.exists():
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            po_path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, project="outreach", charset="utf-8", fuzzy=False)
        catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
        catalog.revision_date = datetime.now(timezone.utc)
        with po_path.open("wb") as handle:
            write_po(
                handle, catalog, width=0, omit_header=False, include_previous=True
            )  # width 0: Babel wraps previous ids badly
        written.append(po_path)
    compile_catalogs(force=True)
    return written
