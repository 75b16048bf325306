"""SMS length: which encoding a text needs and how many segments it costs.

GSM 03.38 (GSM-7) holds 160 characters in one SMS and 153 per part of a long one; characters of
its extension table (``{ } [ ] ~ \\ | ^ €`` and form feed) count twice. Any other character makes
the whole text UCS-2: 70 UTF-16 code units in one SMS, 67 per part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SmsCost:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_cost(text: str) -> SmsCost:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        segments = 1 if units <= 160 else math.ceil(units / 153)
        return SmsCost("GSM-7", units, segments)
    units = len(text.encode("utf-16-le")) // 2
    segments = 1 if units <= 70 else math.ceil(units / 67)
    return SmsCost("UCS-2", units, segments)
