"""Explicit choice of language: the word for "language" shows the menu, a number or a name chooses."""

from __future__ import annotations

import pytest

from bot.i18n import Catalogs
from bot.language import load_language_file
from bot.language_menu import HEADER, LanguageMenu
from bot.settings import SUPPORTED_LANGUAGES


@pytest.fixture(scope="module")
def menu() -> LanguageMenu:
    return LanguageMenu(SUPPORTED_LANGUAGES)


def test_every_language_has_its_name_keywords_and_markers() -> None:
    for code in SUPPORTED_LANGUAGES:
        data = load_language_file(code)
        assert isinstance(data.get("name"), str) and data["name"] != code, code
        for field in ("keywords", "aliases", "markers"):
            values = data.get(field) or []
            assert values, f"{code}: no {field}"
            assert all(isinstance(v, str) for v in values), f"{code} {field}: quote yes/no/on/off"


def test_no_word_belongs_to_two_languages() -> None:
    seen: dict = {}
    for code in SUPPORTED_LANGUAGES:
        data = load_language_file(code)
        for field in ("keywords", "aliases"):
            for word in data.get(field) or []:
                key = (field, word.lower())
                assert seen.setdefault(key, code) == code, f"{word!r} is a {field[:-1]} of {seen[key]} and {code}"


def test_numbered_menu_lists_each_language_in_itself(menu: LanguageMenu) -> None:
    catalogs = Catalogs(SUPPORTED_LANGUAGES)
    text = menu.render(catalogs, "fr")
    lines = text.split("\n")
    assert lines[0] == HEADER
    assert lines[1:] == [f"{n} {menu.names[code]}" for n, code in enumerate(SUPPORTED_LANGUAGES, start=1)]
    assert "2 English" in lines and "1 Français" in lines


@pytest.mark.parametrize(
    ("text", "expected"),
    [("langue", "fr"), ("LANGUE !", "fr"), ("language", "en"), ("Language?", "en"), ("je veux une autre langue", None)],
)
def test_menu_words(menu: LanguageMenu, text: str, expected: object) -> None:
    assert menu.asks_for_menu(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("english", "en"), ("English please", "en"), ("en français", "fr"), ("Francais", "fr"), ("bonjour", None)],
)
def test_names_choose_directly(menu: LanguageMenu, text: str, expected: object) -> None:
    assert menu.named_language(text) == expected


def test_numbers_choose_only_in_range(menu: LanguageMenu) -> None:
    assert menu.choice("1") == SUPPORTED_LANGUAGES[0]
    assert menu.choice(" 2 ") == SUPPORTED_LANGUAGES[1]
    assert menu.choice(str(len(SUPPORTED_LANGUAGES))) == SUPPORTED_LANGUAGES[-1]
    assert menu.choice("0") is None
    assert menu.choice(str(len(SUPPORTED_LANGUAGES) + 1)) is None
