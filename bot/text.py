"""Normalising what people write, before it is stored or sent to the model."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import List

_KEPT_CONTROLS = {"\n", "\t"}
_LEADING_SLASHES = re.compile(r"^[\s/]+")
_MENU_CHOICE = re.compile(r"^\s*[#(]?\s*([0-9])\s*[.):]?\s*$")


class TextError(ValueError):
    """The text cannot be accepted; ``code`` says why (``empty``, ``too_long``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalise(text: str) -> str:
    """NFC-normalised text, control characters (NUL included) replaced by spaces, trimmed; a
    lone surrogate (JSON can carry one, UTF-8 cannot) becomes U+FFFD."""
    text = unicodedata.normalize("NFC", text)
    return "".join(_normal_char(c) for c in text).strip()


def _normal_char(c: str) -> str:
    category = unicodedata.category(c)
    if category == "Cc" and c not in _KEPT_CONTROLS:
        return " "
    return "\ufffd" if category == "Cs" else c


def truncate(text: str, max_length: int) -> str:
    """What a provider delivered, normalised, cut to the first ``max_length`` characters (a
    provider message cannot be refused: SMS stop at 1600, Telegram at 4096)."""
    return normalise(normalise(text)[:max_length])


def clean(text: str, max_length: int) -> str:
    """NFC-normalised text without control characters or surrounding space.

    Raises :class:`TextError` for a text that is empty once cleaned or longer than
    ``max_length`` characters."""
    text = normalise(text)
    if not text:
        raise TextError("empty", "The message is empty.")
    if len(text) > max_length:
        raise TextError("too_long", f"The message is longer than {max_length} characters.")
    return text


def split_message(text: str, limit: int) -> List[str]:
    """``text`` in parts of at most ``limit`` characters, cut at line breaks when possible,
    else at a space, else anywhere."""
    parts: List[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    parts.append(rest)
    return [part for part in parts if part]


def to_rasa(text: str) -> str:
    """The message given to Rasa for a person's text.

    A lone digit is a choice in the numbered menu (so it works by SMS). Any other text is
    passed as text, never as an intent: a leading ``/`` (Rasa's intent syntax) is removed."""
    match = _MENU_CHOICE.match(text)
    if match:
        return "/choose_option" + json.dumps({"option": match.group(1)}, separators=(",", ":"))
    stripped = _LEADING_SLASHES.sub("", text).strip()
    return stripped or "?"
