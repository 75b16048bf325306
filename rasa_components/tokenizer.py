"""A tokenizer for one model serving every language, scripts without spaces included.

* Words of alphabetic scripts (Latin, Cyrillic, Arabic...) are runs of letters, marks and
  digits; apostrophes and punctuation separate them ("j'ai" -> "j", "ai").
* Chinese (and Japanese) characters are one token each: with word bigrams in the featurizer
  this gives the character bigrams that carry most of the meaning of short Chinese texts.
* Tokens are folded: lower case, compatibility forms, and without combining marks, so that
  "é" and "e", Arabic with and without short vowels, "ё" and "е" count as the same word, as
  people type on phones.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Dict, List, Optional

import regex
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

_TOKEN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{M}\p{N}]+", regex.UNICODE)


# Arabic letters written interchangeably on phones: taa marbuta / haa, alif maqsura / yaa,
# Persian keyboard forms; the tatweel (elongation) is dropped.
_ARABIC = str.maketrans({"ة": "ه", "ى": "ي", "ی": "ي", "ک": "ك", "ـ": None})


def fold(text: str) -> str:
    """Lower case, compatibility-normalised, without combining marks."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare).translate(_ARABIC)


def split(text: str) -> List[tuple]:
    """(folded token, start, end) for each token of ``text``."""
    found = []
    for match in _TOKEN.finditer(text):
        folded = fold(match.group(0))
        if folded:
            found.append((folded, match.start(), match.end()))
    return found


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class MultilingualTokenizer(Tokenizer):
    """Whitespace-and-script tokenizer for all the assistant's languages."""

    @staticmethod
    def not_supported_languages() -> Optional[List[str]]:
        return None

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MultilingualTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        text = message.get(attribute) or ""
        tokens = [Token(folded, start, end) for folded, start, end in split(text)]
        if not tokens:  # only punctuation or emoji: keep the whole text as one token
            tokens = [Token(text, 0, len(text))]
        return self._apply_token_pattern(tokens)
