"""``action_request_human``: she asks for a person of an association.

The model only recognises the wish; what follows (which association, whether to ask her
département, opening hours, the request itself) needs the database and is done by the
gateway's router. The action tells the router with a custom payload, and says nothing itself.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

# The payload the router looks for in Rasa's replies (bot/handoff/desk.py).
HANDOFF_PAYLOAD = {"handoff": "request"}


class ActionRequestHuman(Action):
    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        dispatcher.utter_message(json_message=dict(HANDOFF_PAYLOAD))
        return []
