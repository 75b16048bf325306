"""Custom actions of the assistant, served by rasa_sdk's action server.

Run with ``python -m rasa_sdk --actions actions``. Actions choose *which* response to send;
the text of every response lives in the translation catalogs, rendered by the gateway.
"""

from actions.human import ActionRequestHuman
from actions.menu import ActionMenuOption
from actions.more import ActionMore

__all__ = ["ActionMenuOption", "ActionMore", "ActionRequestHuman"]
