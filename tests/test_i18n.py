"""bot/i18n.py and bot/i18n_tools.py: rendering responses in a language, and the catalogs
being complete and consistent with the French source texts of domain.yml."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Dict

import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n_tools
from bot.handoff.desk import CONTEXTS as HANDOFF_CONTEXTS
from bot.handoff.texts import CANNED
from bot.i18n import DOMAIN_FILE, TRANSLATIONS_DIR, Catalogs, fill, load_source_responses
from bot.language_menu import HEADER
from bot.notices import FLOOD_NOTICE, MEDIA_NOTICE
from bot.safety_texts import CONTEXTS as SAFETY_CONTEXTS
from bot.settings import SUPPORTED_LANGUAGES
from bot.webchat_page import STRINGS

POT_PATH = TRANSLATIONS_DIR / "messages.pot"
EN_PO_PATH = TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po"

ALLOWED_PHONES = {"15", "17", "112", "114", "115", "119", "3919", "3018", "116 006", "0 800 840 800"}

# A number written after a word that introduces a phone number, in French or English.
_PHONE_CUE = (
    r"(?:appelez(?: tout de suite)? le|appeler le|appelez|call|SMS au|SMS to|SMS|"
    r"ou le|ou|or|le|Le|The|:)"
)
_PHONE = re.compile(_PHONE_CUE + r"\s+(\d+(?: \d{3})+|\d{2,})(?![\d/%h])(?!-)", re.IGNORECASE)


def phone_numbers(text: str) -> set[str]:
    return set(_PHONE.findall(text))


@pytest.fixture(scope="module")
def translations_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of translations/, so compiling catalogs never touches the working tree."""
    target = tmp_path_factory.mktemp("i18n") / "translations"
    shutil.copytree(TRANSLATIONS_DIR, target)
    return target


@pytest.fixture(scope="module")
def catalogs(translations_dir: Path) -> Catalogs:
    return Catalogs(["fr", "en"], translations_dir=translations_dir)


@pytest.fixture(scope="module")
def reviewed_only(translations_dir: Path) -> Catalogs:
    return Catalogs(["fr", "en"], serve_drafts=False, translations_dir=translations_dir)


@pytest.fixture(scope="module")
def sources() -> Dict[str, str]:
    return load_source_responses()


@pytest.fixture(scope="module")
def domain_responses() -> Dict[str, str]:
    """Response name -> French text, read from domain.yml independently of bot.i18n."""
    data = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
    return {name: variants[0]["text"] for name, variants in data["responses"].items()}


@pytest.fixture(scope="module")
def pot() -> Catalog:
    with POT_PATH.open("rb") as handle:
        return read_po(handle)


@pytest.fixture(scope="module")
def en_po() -> Catalog:
    with EN_PO_PATH.open("rb") as handle:
        return read_po(handle, locale="en")


# --- rendering -----------------------------------------------------------------------------


def test_french_is_the_domain_text(catalogs: Catalogs, domain_responses: Dict[str, str]) -> None:
    assert catalogs.render("utter_menu", "fr") == domain_responses["utter_menu"]
    assert catalogs.render("utter_menu", "fr").startswith("Bonjour. Ici, un service d'information")


def test_english_is_the_po_msgstr(catalogs: Catalogs, en_po: Catalog, domain_responses: Dict[str, str]) -> None:
    entry = en_po.get(domain_responses["utter_menu"], context="utter_menu")
    assert entry is not None
    assert entry.string
    assert catalogs.render("utter_menu", "en") == entry.string
    assert catalogs.render("utter_menu", "en").startswith("Hello. This is a free and anonymous information service.")


def test_every_response_renders_in_english_as_its_po_entry(
    catalogs: Catalogs, en_po: Catalog, domain_responses: Dict[str, str]
) -> None:
    for name, french in domain_responses.items():
        entry = en_po.get(french, context=name)
        assert entry is not None, name
        assert catalogs.render(name, "en") == entry.string, name
        assert catalogs.render(name, "en") != french, name


def test_all_english_entries_are_drafts_today(en_po: Catalog) -> None:
    entries = [m for m in en_po if m.id]
    assert entries
    assert all(m.fuzzy for m in entries)


def test_drafts_not_served_gives_french(reviewed_only: Catalogs, domain_responses: Dict[str, str]) -> None:
    for name, french in domain_responses.items():
        assert reviewed_only.render(name, "en") == french, name


def test_unknown_language_gives_the_french_source(catalogs: Catalogs, domain_responses: Dict[str, str]) -> None:
    assert catalogs.render("utter_menu", "xx") == domain_responses["utter_menu"]
    assert catalogs.render("utter_danger", "de") == domain_responses["utter_danger"]


def test_language_without_catalog_falls_back_to_french(
    translations_dir: Path, domain_responses: Dict[str, str]
) -> None:
    catalogs = Catalogs(["fr", "xx"], translations_dir=translations_dir)  # "xx" has no catalog folder
    assert catalogs.render("utter_menu", "xx") == domain_responses["utter_menu"]


def test_unknown_response_name_raises(catalogs: Catalogs) -> None:
    assert not catalogs.has_response("utter_does_not_exist")
    assert catalogs.has_response("utter_menu")
    with pytest.raises(KeyError):
        catalogs.render("utter_does_not_exist", "fr")


def test_translate_webchat_string(catalogs: Catalogs) -> None:
    assert catalogs.translate("en", "webchat", "Envoyer") == "Send"
    assert catalogs.translate("fr", "webchat", "Envoyer") == "Envoyer"
    # A string that is not in the catalog stays as written.
    assert catalogs.translate("en", "webchat", "Pas dans le catalogue") == "Pas dans le catalogue"


def test_fill_replaces_known_placeholders_only() -> None:
    assert fill("Bonjour {name}, le {number}.", {"name": "Amina", "number": 115}) == "Bonjour Amina, le 115."
    assert fill("Bonjour {name} et {other}", {"name": "Amina"}) == "Bonjour Amina et {other}"
    assert fill("Valeur {missing}", {"missing": None}) == "Valeur {missing}"
    assert fill("{Upper} {1x} { name }", {"Upper": "x", "1x": "y", "name": "z"}) == "{Upper} {1x} { name }"
    assert fill("sans accolades", {"name": "x"}) == "sans accolades"
    assert fill("{a}{a}", {"a": 0}) == "00"


def test_render_fills_values(catalogs: Catalogs) -> None:
    # No response has placeholders today: values must leave the text unchanged.
    assert catalogs.render("utter_menu", "en", {"name": "x"}) == catalogs.render("utter_menu", "en")


# --- catalog completeness ------------------------------------------------------------------


def test_load_source_responses_matches_domain(sources: Dict[str, str], domain_responses: Dict[str, str]) -> None:
    assert sources == domain_responses
    assert "utter_menu" in sources
    assert "utter_default" in sources


def test_every_response_is_in_the_template(pot: Catalog, domain_responses: Dict[str, str]) -> None:
    for name, french in domain_responses.items():
        entry = pot.get(french, context=name)
        assert entry is not None, f"{name} missing from messages.pot (or its French text changed)"
        assert entry.context == name


def test_every_response_is_translated_in_english(en_po: Catalog, domain_responses: Dict[str, str]) -> None:
    for name, french in domain_responses.items():
        entry = en_po.get(french, context=name)
        assert entry is not None, f"{name} missing from the English catalog (or its French text changed)"
        assert entry.context == name
        assert entry.string.strip(), f"{name} has an empty English translation"


def test_webchat_strings_are_translated_in_english(en_po: Catalog) -> None:
    for key, french in STRINGS.items():
        entry = en_po.get(french, context="webchat")
        assert entry is not None, key
        assert entry.string.strip(), key


def test_template_and_english_catalog_have_the_same_entries(pot: Catalog, en_po: Catalog) -> None:
    template = {(m.context, m.id) for m in pot if m.id}
    english = {(m.context, m.id) for m in en_po if m.id}
    assert template == english
    assert not en_po.obsolete


def digit_groups(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def test_every_number_of_the_french_text_is_in_the_english_text(
    en_po: Catalog, domain_responses: Dict[str, str]
) -> None:
    sources = dict(domain_responses)
    sources.update({f"webchat:{key}": text for key, text in STRINGS.items()})
    problems = []
    for name, french in sources.items():
        context = "webchat" if name.startswith("webchat:") else name
        entry = en_po.get(french, context=context)
        assert entry is not None, name
        english_groups = set(digit_groups(entry.string))
        missing = [group for group in digit_groups(french) if group not in english_groups]
        if missing:
            problems.append(f"{name}: {missing}")
    assert problems == []


def test_phone_number_detector_finds_the_numbers_given() -> None:
    assert phone_numbers("appelez le 17 ou le 112, ou envoyez un SMS au 114.") == {"17", "112", "114"}
    assert phone_numbers("France Victimes : 116 006, gratuit") == {"116 006"}
    assert phone_numbers("Sida Info Service: 0 800 840 800, free") == {"0 800 840 800"}
    assert phone_numbers("jusqu'à 1 500 euros, 24h/24 et 7j/7, le 13 avril 2016, 24/7, 30-day") == {"13"}
    assert phone_numbers("Call 911 now") == {"911"}


def test_only_known_phone_numbers_are_given(catalogs: Catalogs, domain_responses: Dict[str, str]) -> None:
    found: dict[str, set[str]] = {}
    for name in domain_responses:
        for language in ("fr", "en"):
            for number in phone_numbers(catalogs.render(name, language)):
                found.setdefault(number, set()).add(f"{name}/{language}")
    for text in STRINGS.values():
        for language in ("fr", "en"):
            for number in phone_numbers(catalogs.translate(language, "webchat", text)):
                found.setdefault(number, set()).add(f"webchat/{language}")
    unknown = {number: where for number, where in found.items() if number not in ALLOWED_PHONES}
    assert unknown == {}
    # The detector does see the numbers (the check above is not vacuous).
    assert set(found) == ALLOWED_PHONES


def test_translations_have_no_curly_apostrophe_markup_or_links(en_po: Catalog) -> None:
    for message in en_po:
        if not message.id:
            continue
        assert "’" not in message.string, message.context
        assert "<" not in message.string, message.context
        assert "http" not in message.string.lower(), message.context


# --- extraction ----------------------------------------------------------------------------


@pytest.fixture
def extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Catalog, Path]:
    """Run the extractor, writing the template into a temporary file."""
    template = tmp_path / "messages.pot"
    monkeypatch.setattr(i18n_tools, "TEMPLATE", template)
    return i18n_tools.extract(), template


def test_extract_finds_every_domain_response(extracted: tuple[Catalog, Path], domain_responses: Dict[str, str]) -> None:
    catalog, _ = extracted
    for name, french in domain_responses.items():
        entry = catalog.get(french, context=name)
        assert entry is not None, name
        assert entry.context == name
        assert f"Rasa response {name}" in entry.auto_comments
        assert any(location[0] == "domain.yml" for location in entry.locations)


def test_extract_finds_the_webchat_strings(extracted: tuple[Catalog, Path]) -> None:
    catalog, _ = extracted
    for key, french in STRINGS.items():
        entry = catalog.get(french, context="webchat")
        assert entry is not None, key
        assert any(location[0] == "bot/webchat_page.py" for location in entry.locations)


def test_extract_has_nothing_else(extracted: tuple[Catalog, Path], domain_responses: Dict[str, str]) -> None:
    catalog, _ = extracted
    expected = {(name, text) for name, text in domain_responses.items()}
    expected |= {("webchat", text) for text in STRINGS.values()}
    expected |= {("language", HEADER), ("sms", MEDIA_NOTICE), ("sms", FLOOD_NOTICE)}
    expected |= {(context, text) for text, context in HANDOFF_CONTEXTS.items()}
    expected |= {(name, text) for name, text in CANNED.items()}
    expected |= {(context, text) for text, context in SAFETY_CONTEXTS.items()}
    assert {(m.context, m.id) for m in catalog if m.id} == expected


def _without_creation_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith('"POT-Creation-Date:')]


def test_committed_template_is_up_to_date(extracted: tuple[Catalog, Path]) -> None:
    _, template = extracted
    generated = template.read_text(encoding="utf-8")
    committed = POT_PATH.read_text(encoding="utf-8")
    assert '"POT-Creation-Date:' in generated
    assert _without_creation_date(generated) == _without_creation_date(committed)


def test_the_flood_notice_gives_the_emergency_numbers_in_every_language() -> None:
    # a person in danger may be the one sending message after message
    catalogs = Catalogs(SUPPORTED_LANGUAGES)
    for language in SUPPORTED_LANGUAGES:
        text = catalogs.translate(language, "sms", FLOOD_NOTICE)
        assert all(number in text for number in ("17", "112", "114")), language
