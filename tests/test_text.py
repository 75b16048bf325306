"""bot/text.py: cleaning what people write and turning it into what Rasa receives."""

from __future__ import annotations

import pytest

from bot.text import TextError, clean, to_rasa

MAX = 50


# --- clean ---------------------------------------------------------------------------------


def test_clean_normalises_to_nfc() -> None:
    assert clean("e\u0301", MAX) == "\u00e9"
    assert clean("Caf\u0065\u0301 cr\u0065\u0300me", MAX) == "Café crème"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b", "a b"),
        ("a\x1bb", "a b"),
        ("a\x07b\x08c", "a b c"),
        ("a\x7fb", "a b"),
        ("a\rb", "a b"),
        ("a\x0bb\x0cc", "a b c"),
    ],
)
def test_clean_replaces_control_characters_by_a_space(raw: str, expected: str) -> None:
    assert clean(raw, MAX) == expected


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    """JSON can carry one (``"\\ud800"``); UTF-8 cannot, so it could be neither sealed nor
    stored (found by tests/test_fuzz.py: a 500 on the web chat and Telegram)."""
    assert clean("a\ud800b\udfff", MAX) == "a\ufffdb\ufffd"
    assert clean("a\ud800b", MAX).encode("utf-8") == "a\ufffdb".encode()
    assert clean("\U0001f600", MAX) == "\U0001f600"  # a real pair is kept


def test_clean_keeps_newline_and_tab_inside_the_text() -> None:
    assert clean("ligne 1\nligne 2\tfin", MAX) == "ligne 1\nligne 2\tfin"


def test_clean_strips_surrounding_whitespace() -> None:
    assert clean("  \n\t bonjour \t\n ", MAX) == "bonjour"
    assert clean("\x00 bonjour \x01", MAX) == "bonjour"


@pytest.mark.parametrize("raw", ["", " ", "   \n\t  ", "\x00", "\x01\x02\x7f", " \x1b \r "])
def test_clean_rejects_empty_text(raw: str) -> None:
    with pytest.raises(TextError) as info:
        clean(raw, MAX)
    assert info.value.code == "empty"
    assert isinstance(info.value, ValueError)


def test_clean_rejects_text_over_max_length() -> None:
    with pytest.raises(TextError) as info:
        clean("x" * (MAX + 1), MAX)
    assert info.value.code == "too_long"
    assert str(MAX) in str(info.value)


def test_clean_accepts_text_of_exactly_max_length() -> None:
    assert clean("x" * MAX, MAX) == "x" * MAX


def test_clean_measures_length_after_normalisation_and_stripping() -> None:
    # 4 combining sequences become 4 characters; the surrounding spaces do not count.
    assert clean("  " + "e\u0301" * 4 + "  ", 4) == "\u00e9" * 4


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour 😊👍🏽",
        "مرحبا، أحتاج مساعدة",
        "你好，我需要帮助",
        "<b>x</b>",
        "<script>alert('x')</script> & \"quotes\"",
        "Здравствуйте",
        "français : « guillemets » — tiret",
    ],
)
def test_clean_keeps_any_script_and_markup_as_is(text: str) -> None:
    assert clean(text, 200) == text


@pytest.mark.parametrize("raw", ["a\x85b", "a\x9bb"])
def test_clean_replaces_c1_control_characters(raw: str) -> None:
    """C1 controls (U+0080-U+009F, Unicode category Cc) are control characters too: U+009B is
    the 8-bit CSI that terminals interpret like ESC [. The docstring promises none remain."""
    assert clean(raw, MAX) == "a b"


# --- to_rasa -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "option"),
    [("1", "1"), (" 2 ", "2"), ("3.", "3"), ("(4)", "4"), ("#5", "5"), ("0", "0"), ("9", "9"), ("1)", "1")],
)
def test_lone_digit_is_a_menu_choice(text: str, option: str) -> None:
    assert to_rasa(text) == '/choose_option{"option":"' + option + '"}'


@pytest.mark.parametrize("text", ["12", "1 2", "115", "17", "1.5", "2 santé", "a1"])
def test_other_numbers_are_passed_as_text(text: str) -> None:
    assert to_rasa(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/greet", "greet"),
        ("//restart", "restart"),
        ("  /restart  ", "restart"),
        ("/", "?"),
        ("///", "?"),
        ("   ", "?"),
        ("bonjour", "bonjour"),
        ("  bonjour  ", "bonjour"),
    ],
)
def test_text_is_never_an_intent(text: str, expected: str) -> None:
    assert to_rasa(text) == expected


def test_typed_intent_syntax_is_not_an_intent() -> None:
    result = to_rasa('/choose_option{"option":"1"}')
    assert not result.startswith("/")
    assert result == 'choose_option{"option":"1"}'


@pytest.mark.parametrize(
    "text",
    ["/ /greet", "/\n/restart", "/ /restart", '/ /choose_option{"option":"1"}', "/\t/session_start"],
)
def test_slash_behind_whitespace_never_reaches_rasa(text: str) -> None:
    """Whatever a person types, the text given to Rasa must not start with "/" (Rasa would
    read it as an intent, e.g. /restart)."""
    assert not to_rasa(text).startswith("/")
