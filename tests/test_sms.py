"""SMS cost of a text: encoding and segments, as an operator bills them."""

from __future__ import annotations

import pytest

from bot.sms import sms_cost


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("Santé : appelez le 115. À bientôt", "UCS-2", 33, 1),  # ô is not GSM-7
        ("Santé : appelez le 115. É è à ù ò ì Ç", "GSM-7", 37, 1),
        ("{}" + "a" * 156, "GSM-7", 160, 1),  # extension characters count twice
        ("€" * 81, "GSM-7", 162, 2),
        ("я" * 70, "UCS-2", 70, 1),
        ("я" * 71, "UCS-2", 71, 2),
        ("я" * 134, "UCS-2", 134, 2),
        ("я" * 135, "UCS-2", 135, 3),
        ("👋" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("ok’", "UCS-2", 3, 1),  # a typographic apostrophe makes the whole SMS UCS-2
    ],
)
def test_cost(text: str, encoding: str, units: int, segments: int) -> None:
    cost = sms_cost(text)
    assert (cost.encoding, cost.units, cost.segments) == (encoding, units, segments)
