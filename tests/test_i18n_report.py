"""Mediator tooling: status, check and preview, on the real catalogs and on broken copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot import i18n_report
from bot.i18n import TRANSLATIONS_DIR, Catalogs
from bot.language import LanguageChooser
from bot.settings import SUPPORTED_LANGUAGES


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS_DIR, target)
    return target


def edit(translations: Path, language: str, context: str, change) -> None:
    path = translations / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    for message in catalog:
        if message.context == context:
            change(message)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=0, include_previous=True)


def test_the_committed_catalogs_pass_every_rule() -> None:
    detector = LanguageChooser(SUPPORTED_LANGUAGES, "fr")
    assert i18n_report.check(french_detector=detector) == []


def test_every_language_is_complete() -> None:
    for language in SUPPORTED_LANGUAGES:
        row = i18n_report.status(language)
        assert row.missing == 0 and row.translated == row.entries > 40, language
        assert row.over_budget == 0, language


@pytest.mark.parametrize(
    ("context", "new_text", "rule"),
    [
        ("utter_danger", lambda t: t.replace("17", "18"), "number missing or changed"),
        (
            "utter_testing_more",
            lambda t: t.replace("0 800 840 800", "0800 840 800"),
            "phone number written differently",
        ),
        ("utter_shelter", lambda t: t + " {name}", "placeholders differ"),
        ("utter_shelter", lambda t: t + " www.example.com", "link to a site not allowed"),
        ("utter_law", lambda t: t * 6, "too long for SMS"),
    ],
)
def test_broken_translations_are_caught(copy: Path, context: str, new_text, rule: str) -> None:
    def change(message) -> None:
        message.string = new_text(message.string)

    edit(copy, "ro", context, change)
    problems = i18n_report.check(["ro"], translations_dir=copy)
    assert [(p.language, p.context, p.rule) for p in problems] == [("ro", context, rule)]


def test_a_reviewed_entry_left_in_french_is_caught(copy: Path) -> None:
    def change(message) -> None:
        message.string = message.id
        message.flags.discard("fuzzy")

    edit(copy, "bg", "utter_shelter", change)
    problems = i18n_report.check(["bg"], translations_dir=copy, french_detector=LanguageChooser(("fr", "bg"), "fr"))
    assert [(p.context, p.rule) for p in problems] == [("utter_shelter", "reviewed but still the French text")]


def test_a_changed_french_source_makes_the_translation_a_draft_again(copy: Path) -> None:
    def review(message) -> None:
        message.flags.discard("fuzzy")

    edit(copy, "es", "utter_shelter", review)
    assert i18n_report.status("es", copy).reviewed == 1
    with (copy / "messages.pot").open("rb") as handle:
        template: Catalog = read_po(handle)
    for message in template:
        if message.context == "utter_shelter":
            old = message.id
            template.delete(old, context="utter_shelter")
            template.add(old.replace("Pour ce soir", "Ce soir"), context="utter_shelter")
            break
    path = copy / "es" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="es")
    catalog.update(template)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=0, include_previous=True)
    row = i18n_report.status("es", copy)
    assert row.reviewed == 0 and row.stale == 1
    [entry] = [m for m in catalog if m.context == "utter_shelter"]
    assert entry.fuzzy and entry.string  # the old translation is kept, as a draft to check


def test_status_table_and_preview() -> None:
    table = i18n_report.format_status(i18n_report.status(lang) for lang in ("fr", "ro"))
    assert table.splitlines()[0].split()[:4] == ["lang", "entries", "translated", "reviewed"]
    shown = i18n_report.preview("ro", ["utter_menu", "utter_shelter"])
    catalogs = Catalogs(("fr", "ro"))
    assert catalogs.render("utter_menu", "ro") in shown and catalogs.render("utter_shelter", "ro") in shown
    assert "── utter_menu [draft] · " in shown and "SMS (UCS-2)" in shown
    with pytest.raises(KeyError):
        i18n_report.preview("ro", ["utter_nothing"])
