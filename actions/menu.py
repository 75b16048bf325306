"""``action_menu_option``: answers a number typed in reply to a menu."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.menus import resolve


class ActionMenuOption(Action):
    def name(self) -> str:
        return "action_menu_option"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        option = next(tracker.get_latest_entity_values("option"), None)
        choice = resolve(tracker.get_slot("menu"), option)
        if choice is None:
            dispatcher.utter_message(response="utter_invalid_option")
            return []
        dispatcher.utter_message(response=choice.response)
        events: List[Dict[str, Any]] = [SlotSet("topic", choice.topic)]
        if choice.menu is not None:
            events.append(SlotSet("menu", choice.menu))
        return events
