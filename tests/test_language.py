"""bot/language.py: choosing the language of each answer (markers, detection, current, default)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from bot.language import LanguageChooser, load_markers


@pytest.fixture(scope="module")
def chooser() -> LanguageChooser:
    chooser = LanguageChooser(("fr", "en"), "fr")
    chooser.warm_up()
    return chooser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bonjour", "fr"),
        ("Bonjour", "fr"),
        ("hello", "en"),
        ("HELLO", "en"),
        ("slt cv", "fr"),
        ("how far", "en"),
        ("abeg help me", "en"),
        ("jai besoin d aide", "fr"),
        ("j'ai besoin d'aide", "fr"),
        ("Où puis-je dormir ce soir ?", "fr"),
        ("where can I sleep tonight", "en"),
        ("wetin dey happen", "en"),
    ],
)
def test_first_message(chooser: LanguageChooser, text: str, expected: str) -> None:
    assert chooser.choose(text, None) == expected


@pytest.mark.parametrize("text", ["1", "0", "ok", "?", "  ", "😊", "115"])
def test_first_message_without_enough_letters_gives_the_default(chooser: LanguageChooser, text: str) -> None:
    assert chooser.choose(text, None) == "fr"


def test_default_is_a_setting() -> None:
    chooser = LanguageChooser(("fr", "en"), "en")
    assert chooser.choose("1", None) == "en"


@pytest.mark.parametrize("current", ["fr", "en"])
@pytest.mark.parametrize("text", ["ok", "1", "OK", "ok!", "0", "👍"])
def test_short_messages_keep_the_current_language(chooser: LanguageChooser, text: str, current: str) -> None:
    assert chooser.choose(text, current) == current


def test_switch_to_english_mid_conversation(chooser: LanguageChooser) -> None:
    assert chooser.choose("i need to see a doctor please", "fr") == "en"


def test_switch_to_french_mid_conversation(chooser: LanguageChooser) -> None:
    assert chooser.choose("je veux parler a quelqu un", "en") == "fr"


@pytest.mark.parametrize(("text", "current"), [("hello", "en"), ("bonjour", "fr"), ("merci beaucoup", "fr")])
def test_same_language_stays(chooser: LanguageChooser, text: str, current: str) -> None:
    assert chooser.choose(text, current) == current


@pytest.mark.parametrize("current", ["xx", "de", "", "FR"])
def test_unsupported_current_language_is_treated_as_none(chooser: LanguageChooser, current: Optional[str]) -> None:
    # A short message with no current language gives the default, never the unsupported one.
    assert chooser.choose("ok", current) == "fr"
    assert chooser.choose("1", current) == "fr"
    # First-message rules apply (lower confidence needed than to switch).
    assert chooser.choose("hello", current) == chooser.choose("hello", None) == "en"


def test_detect_without_letters(chooser: LanguageChooser) -> None:
    assert chooser.detect("1") == (None, 0.0)
    assert chooser.detect("12 34") == (None, 0.0)
    assert chooser.detect("ok") == (None, 0.0)


def test_detect_gives_a_served_language_and_a_confidence(chooser: LanguageChooser) -> None:
    language, confidence = chooser.detect("je voudrais savoir où dormir ce soir")
    assert language == "fr"
    assert 0.9 <= confidence <= 1.0
    language, confidence = chooser.detect("I would like to know where to sleep tonight")
    assert language == "en"
    assert 0.9 <= confidence <= 1.0


def test_detect_with_one_language_only() -> None:
    assert LanguageChooser(("fr",), "fr").detect("bonjour tout le monde") == (None, 0.0)


def test_markers_are_loaded_folded(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "language.yml").write_text("markers:\n  - Santé\n  - Déjà\n", encoding="utf-8")
    markers = load_markers(["fr", "en"], tmp_path)
    assert markers == {"fr": {"sante", "deja"}}


def test_real_markers_of_two_languages_do_not_overlap() -> None:
    markers = load_markers(["fr", "en"])
    assert markers["fr"]
    assert markers["en"]
    assert markers["fr"] & markers["en"] == set()


def test_marker_wins_over_detection() -> None:
    chooser = LanguageChooser(("fr", "en"), "fr", markers={"en": {"zorglub"}, "fr": set()})
    assert chooser.choose("zorglub", "fr") == "en"


def test_markers_of_two_languages_cancel_out() -> None:
    chooser = LanguageChooser(("fr", "en"), "fr", markers={"en": {"aaa"}, "fr": {"bbb"}})
    # Neither marker decides; "aaa bbb" has too little evidence to switch from the current.
    assert chooser.choose("aaa bbb", "en") == "en"


def test_a_chinese_sentence_switches_an_established_conversation() -> None:
    from bot.settings import SUPPORTED_LANGUAGES

    chooser = LanguageChooser(SUPPORTED_LANGUAGES, "fr")
    assert chooser.choose("我没有身份", "es") == "zh"
    assert chooser.choose("你好", "zh") == "zh"
    assert chooser.choose("好", "es") == "es"  # one character is too little to switch


@pytest.fixture(scope="module")
def all_languages() -> LanguageChooser:
    from bot.settings import SUPPORTED_LANGUAGES

    chooser = LanguageChooser(SUPPORTED_LANGUAGES, "fr")
    chooser.warm_up()
    return chooser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("хочу поговорить по телефону с кем-то из вас", "ru"),
        ("хочу поговорити з людиною", "uk"),
        ("eres robot? pasame con una persona real", "es"),
    ],
)
def test_first_messages_asking_for_a_person(all_languages: LanguageChooser, text: str, expected: str) -> None:
    assert all_languages.choose(text, None) == expected


def test_an_unsure_first_message_in_another_script_is_not_answered_in_the_default() -> None:
    """Russian or Ukrainian, the detector cannot tell: either is closer to her than French."""
    from bot.settings import SUPPORTED_LANGUAGES

    chooser = LanguageChooser(SUPPORTED_LANGUAGES, "fr", markers={})
    text = "хочу поговорить по телефону с кем-то из вас"
    detected, _confidence, margin = chooser._detect(text)
    assert margin < LanguageChooser.FIRST_MARGIN  # the detector is unsure
    assert detected in {"ru", "uk", "bg"}
    assert chooser.choose(text, None) == detected
