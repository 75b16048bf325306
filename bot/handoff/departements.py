"""Understanding a French département in what a person writes: its number ("93", "2A",
"974") or a postal code ("93200", "20090"). Names are not guessed: a wrong département sends
her to the wrong association, so anything unclear is asked again."""

from __future__ import annotations

import re
from typing import Optional

# Metropolitan départements 01-95 (no 20: Corsica is 2A and 2B), overseas 971-976.
METROPOLITAN = {f"{n:02d}" for n in range(1, 96)} - {"20"}
CORSICA = {"2A", "2B"}
OVERSEAS = {"971", "972", "973", "974", "976"}
DEPARTEMENTS = frozenset(METROPOLITAN | CORSICA | OVERSEAS)

_POSTAL = re.compile(r"(?<![0-9])([0-9]{5})(?![0-9])")
_NUMBER = re.compile(r"(?<![0-9a-z])(2[ab]|9[78][0-9]|[0-9]{1,2})(?![0-9a-z])", re.IGNORECASE)


def from_postal_code(code: str) -> Optional[str]:
    """The département of a five-digit postal code, if it is a real one."""
    if len(code) != 5 or not code.isdigit():
        return None
    if code.startswith("20"):  # Corsica: 200xx-201xx Corse-du-Sud, 202xx-206xx Haute-Corse
        return "2A" if int(code) < 20200 else "2B"
    if code.startswith("97"):
        return code[:3] if code[:3] in OVERSEAS else None
    return code[:2] if code[:2] in METROPOLITAN else None


def find(text: str) -> Optional[str]:
    """The one département ``text`` names, or None when it names none or several."""
    found = set()
    for match in _POSTAL.finditer(text):
        departement = from_postal_code(match.group(1))
        if departement:
            found.add(departement)
    stripped = _POSTAL.sub(" ", text)
    for match in _NUMBER.finditer(stripped):
        token = match.group(1).upper()
        token = token.zfill(2) if token.isdigit() and len(token) == 1 else token
        if token in DEPARTEMENTS:
            found.add(token)
    return found.pop() if len(found) == 1 else None


# In a sentence that is not an answer to the question, a number is a département only after a
# word that says so ("dans le 93", "département 75"); "j'ai 16 ans" or "I am 17" is an age.
_STATED = re.compile(
    r"(?:dans le|departement|département|dept|dep)\.?\s*(2[ab]|9[78][0-9]|[0-9]{1,2})(?![0-9a-z])", re.IGNORECASE
)


def stated(text: str) -> Optional[str]:
    """The one département a sentence states: a postal code, or a number after "dans le",
    "département", "dép."; None otherwise (then she is asked)."""
    found = set()
    for match in _POSTAL.finditer(text):
        departement = from_postal_code(match.group(1))
        if departement:
            found.add(departement)
    for match in _STATED.finditer(_POSTAL.sub(" ", text)):
        token = match.group(1).upper()
        token = token.zfill(2) if token.isdigit() and len(token) == 1 else token
        if token in DEPARTEMENTS:
            found.add(token)
    return found.pop() if len(found) == 1 else None
