"""The numbered menus, as data: which response each number gives and where it leads.

Numbers make the assistant usable by SMS from a basic phone. The texts that show these menus
(``utter_menu``, ``utter_rights_menu``, ``utter_health_menu``) must list the same numbers; a
test checks that they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional


@dataclass(frozen=True)
class Choice:
    response: str
    topic: Optional[str] = None
    menu: Optional[str] = None


MAIN = "main"
BACK = "0"

MENU_RESPONSES: Dict[str, str] = {
    "main": "utter_menu",
    "rights": "utter_rights_menu",
    "health": "utter_health_menu",
}

MENUS: Dict[str, Dict[str, Choice]] = {
    "main": {
        "1": Choice("utter_rights_menu", menu="rights"),
        "2": Choice("utter_health_menu", menu="health"),
        "3": Choice("utter_exit_pathway", topic="exit_pathway"),
        "4": Choice("utter_papers", topic="papers"),
        "5": Choice("utter_shelter", topic="shelter"),
    },
    "rights": {
        "1": Choice("utter_law", topic="law"),
        "2": Choice("utter_police", topic="police"),
        "3": Choice("utter_complaint", topic="complaint"),
    },
    "health": {
        "1": Choice("utter_testing", topic="testing"),
        "2": Choice("utter_exposure", topic="exposure"),
        "3": Choice("utter_prep", topic="prep"),
        "4": Choice("utter_emergency_contraception", topic="emergency_contraception"),
        "5": Choice("utter_care_no_coverage", topic="care_no_coverage"),
    },
}


def resolve(menu: Optional[str], option: Optional[str]) -> Optional[Choice]:
    """The choice behind ``option`` in ``menu`` (the main menu when unknown); None if the
    number is not offered. ``0`` always leads back to the main menu."""
    if option == BACK:
        return Choice(MENU_RESPONSES[MAIN], menu=MAIN)
    options = MENUS.get(menu or MAIN, MENUS[MAIN])
    return options.get(option or "")
