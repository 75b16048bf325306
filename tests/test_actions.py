"""actions/: the custom actions run by rasa_sdk, and the numbered menus as data."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import ActionMenuOption, ActionMore
from actions.menus import BACK, MAIN, MENU_RESPONSES, MENUS, resolve
from bot.settings import PROJECT_ROOT

DOMAIN: Dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


def make_tracker(
    option: Optional[str] = None,
    menu: Optional[str] = None,
    topic: Optional[str] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    if entities is None:
        entities = [] if option is None else [{"entity": "option", "value": option}]
    latest_message = {
        "text": f'/choose_option{{"option":"{option}"}}' if option is not None else "plus",
        "intent": {"name": "choose_option" if option is not None else "more", "confidence": 1.0},
        "entities": entities,
    }
    return Tracker(
        sender_id="test-sender",
        slots={"menu": menu, "topic": topic},
        latest_message=latest_message,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run_menu(
    option: Optional[str], menu: Optional[str], **kwargs: Any
) -> tuple[List[Optional[str]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionMenuOption().run(dispatcher, make_tracker(option, menu, **kwargs), DOMAIN)
    return [message["response"] for message in dispatcher.messages], events


async def run_more(topic: Optional[str], domain: Dict[str, Any]) -> tuple[List[Optional[str]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionMore().run(dispatcher, make_tracker(topic=topic), domain)
    return [message["response"] for message in dispatcher.messages], events


def test_action_names_are_in_the_domain() -> None:
    assert ActionMenuOption().name() == "action_menu_option"
    assert ActionMore().name() == "action_more"
    assert set(DOMAIN["actions"]) >= {"action_menu_option", "action_more"}


# --- action_menu_option --------------------------------------------------------------------


async def test_option_2_of_main_menu_opens_the_health_menu() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(option="2", menu="main")
    events = await ActionMenuOption().run(dispatcher, tracker, DOMAIN)
    assert len(dispatcher.messages) == 1
    assert dispatcher.messages[0]["response"] == "utter_health_menu"
    assert dispatcher.messages[0]["text"] is None
    assert events == [SlotSet("topic", None), SlotSet("menu", "health")]


async def test_option_1_of_health_menu_answers_on_testing() -> None:
    responses, events = await run_menu("1", "health")
    assert responses == ["utter_testing"]
    assert events == [SlotSet("topic", "testing")]


async def test_option_1_of_rights_menu_answers_on_the_law() -> None:
    responses, events = await run_menu("1", "rights")
    assert responses == ["utter_law"]
    assert events == [SlotSet("topic", "law")]


async def test_option_5_of_main_menu_answers_on_shelter() -> None:
    responses, events = await run_menu("5", "main")
    assert responses == ["utter_shelter"]
    assert events == [SlotSet("topic", "shelter")]


@pytest.mark.parametrize("menu", [None, "main", "unknown-menu"])
async def test_unknown_or_missing_menu_means_the_main_menu(menu: Optional[str]) -> None:
    responses, events = await run_menu("1", menu)
    assert responses == ["utter_rights_menu"]
    assert events == [SlotSet("topic", None), SlotSet("menu", "rights")]


@pytest.mark.parametrize(("option", "menu"), [("9", "main"), ("9", "health"), ("4", "rights"), ("6", "main")])
async def test_number_not_offered_is_an_invalid_option(option: str, menu: str) -> None:
    responses, events = await run_menu(option, menu)
    assert responses == ["utter_invalid_option"]
    assert events == []


async def test_no_option_entity_is_an_invalid_option() -> None:
    responses, events = await run_menu(None, "main")
    assert responses == ["utter_invalid_option"]
    assert events == []


async def test_other_entities_are_ignored() -> None:
    responses, events = await run_menu(None, "main", entities=[{"entity": "other", "value": "2"}])
    assert responses == ["utter_invalid_option"]
    assert events == []


@pytest.mark.parametrize("menu", [None, "main", "rights", "health", "unknown-menu"])
async def test_zero_goes_back_to_the_main_menu_from_anywhere(menu: Optional[str]) -> None:
    responses, events = await run_menu("0", menu)
    assert responses == ["utter_menu"]
    assert events == [SlotSet("topic", None), SlotSet("menu", "main")]


@pytest.mark.parametrize("menu", sorted(MENUS))
async def test_every_offered_option_gives_its_response(menu: str) -> None:
    for option, choice in MENUS[menu].items():
        responses, events = await run_menu(option, menu)
        assert responses == [choice.response]
        expected = [SlotSet("topic", choice.topic)]
        if choice.menu is not None:
            expected.append(SlotSet("menu", choice.menu))
        assert events == expected


def test_resolve() -> None:
    assert resolve("health", "2") == MENUS["health"]["2"]
    assert resolve(None, "3") == MENUS["main"]["3"]
    assert resolve("rights", BACK) is not None
    assert resolve("rights", BACK).response == MENU_RESPONSES[MAIN]
    assert resolve("rights", None) is None
    assert resolve("rights", "") is None
    assert resolve("main", "12") is None


# --- action_more ---------------------------------------------------------------------------


async def test_more_on_a_topic_with_details() -> None:
    domain = {"responses": {"utter_testing_more": [{"text": "Plus de détails."}]}}
    responses, events = await run_more("testing", domain)
    assert responses == ["utter_testing_more"]
    assert events == []


async def test_more_on_a_topic_without_details() -> None:
    responses, events = await run_more("afis", DOMAIN)
    assert "utter_afis_more" not in DOMAIN["responses"]
    assert responses == ["utter_no_more"]
    assert events == []


@pytest.mark.parametrize("topic", [None, ""])
async def test_more_without_topic(topic: Optional[str]) -> None:
    responses, events = await run_more(topic, DOMAIN)
    assert responses == ["utter_no_more"]
    assert events == []


async def test_more_with_a_domain_without_responses() -> None:
    responses, _ = await run_more("testing", {})
    assert responses == ["utter_no_more"]


@pytest.mark.parametrize(
    "topic", [name[len("utter_") : -len("_more")] for name in DOMAIN["responses"] if name.endswith("_more")]
)
async def test_more_on_every_topic_of_the_real_domain(topic: str) -> None:
    responses, _ = await run_more(topic, DOMAIN)
    assert responses == [f"utter_{topic}_more"]


# --- the menus as data ---------------------------------------------------------------------


def french(response: str) -> str:
    return DOMAIN["responses"][response][0]["text"]


def line_start_numbers(text: str) -> List[str]:
    return re.findall(r"^(\d+)\b", text, flags=re.MULTILINE)


def test_every_menu_has_a_menu_response() -> None:
    assert set(MENU_RESPONSES) == set(MENUS)


@pytest.mark.parametrize("menu", sorted(MENUS))
def test_menu_text_lists_exactly_the_numbers_offered(menu: str) -> None:
    text = french(MENU_RESPONSES[menu])
    for option in MENUS[menu]:
        assert f"\n{option} " in text, f"{MENU_RESPONSES[menu]} does not list option {option}"
    listed = line_start_numbers(text)
    # "0" (back to the main menu) is offered by every menu; the main menu need not show it.
    allowed = set(MENUS[menu]) | {BACK}
    assert [number for number in listed if number not in allowed] == []
    assert sorted(set(listed) - {BACK}) == sorted(MENUS[menu])
    assert len(listed) == len(set(listed)), "a number is listed twice"


@pytest.mark.parametrize("menu", sorted(MENUS))
def test_menu_options_are_single_digits(menu: str) -> None:
    # A menu choice reaches Rasa only as a lone digit (bot.text.to_rasa).
    for option in MENUS[menu]:
        assert re.fullmatch(r"[1-9]", option)


def test_every_response_named_in_the_menus_exists_in_the_domain() -> None:
    names = set(MENU_RESPONSES.values())
    for options in MENUS.values():
        names |= {choice.response for choice in options.values()}
    missing = names - set(DOMAIN["responses"])
    assert missing == set()


def test_every_submenu_named_in_the_menus_exists() -> None:
    for options in MENUS.values():
        for choice in options.values():
            if choice.menu is not None:
                assert choice.menu in MENUS
