"""The model's tokenizer: one for every script, Chinese included, folding what phones drop."""

from __future__ import annotations

from rasa.shared.nlu.training_data.message import Message

from rasa_components.tokenizer import MultilingualTokenizer, split


def words(text: str) -> list:
    return [token for token, _start, _end in split(text)]


def test_words_are_folded_and_split_on_punctuation() -> None:
    assert words("J'ai BESOIN d’aide, SVP !") == ["j", "ai", "besoin", "d", "aide", "svp"]
    assert words("Dépistage gratuit ?") == words("depistage GRATUIT")
    assert words("să mă ajuți") == ["sa", "ma", "ajuti"]
    assert words("Ещё вопрос") == ["еще", "вопрос"]


def test_chinese_characters_are_tokens() -> None:
    assert words("警察会抓我吗？") == ["警", "察", "会", "抓", "我", "吗"]
    assert words("我没有ID card") == ["我", "没", "有", "id", "card"]


def test_arabic_short_vowels_and_arabizi() -> None:
    assert words("أَنَا بِحَاجَةٍ") == words("انا بحاجة")
    assert words("3andi mochkil m3a police") == ["3andi", "mochkil", "m3a", "police"]


def test_offsets_point_into_the_original_text() -> None:
    text = "Bonjour, j’ai 16 ans"
    for token, start, end in split(text):
        assert words(text[start:end]) == [token]


def test_component_tokens() -> None:
    tokenizer = MultilingualTokenizer(MultilingualTokenizer.get_default_config())
    tokens = tokenizer.tokenize(Message(data={"text": "Je suis à la rue 😢"}), "text")
    assert [t.text for t in tokens] == ["je", "suis", "a", "la", "rue"]
    only_emoji = tokenizer.tokenize(Message(data={"text": "🙏"}), "text")
    assert [t.text for t in only_emoji] == ["🙏"]


def test_arabic_spelling_variants_fold_together() -> None:
    assert words("مساعدة") == words("مساعده")
    assert words("على") == words("علي")
    assert words("شكـــرا") == words("شكرا")
