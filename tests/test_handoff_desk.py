"""Asking for a person, as she sees it: through the router (stand-in Rasa) on the real Redis and
databases, with the answers rendered from the catalogs in her language."""

from __future__ import annotations

from datetime import datetime
from typing import List, Optional
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from bot import queues
from bot.discreet import Discretion
from bot.guard import Guard
from bot.handoff.desk import HandoffDesk
from bot.handoff.directory import parse_directory
from bot.handoff.signals import Signals
from bot.handoff.states import CLAIMED, REQUESTED, HandoffStore
from bot.handoff.store import DirectoryStore
from bot.handoff.texts import (
    ALREADY_WAITING,
    ASK_DEPARTEMENT,
    CANCELLED,
    DEPARTEMENT_AGAIN,
    NO_ASSOCIATION,
    REQUESTED_CLOSED,
    REQUESTED_OPEN,
)
from bot.i18n import Catalogs, fill
from bot.language import LanguageChooser
from bot.models import Handoff as HandoffModel
from bot.router import Router
from bot.safety import Safety
from bot.settings import SUPPORTED_LANGUAGES
from bot.store import ConversationRef, Store
from tests.fakes import FakeRasa
from tests.test_router import make_router

PARIS = ZoneInfo("Europe/Paris")
MONDAY_10H = datetime(2027, 3, 1, 10, 0, tzinfo=PARIS)
SATURDAY_10H = datetime(2027, 3, 6, 10, 0, tzinfo=PARIS)
WEEKDAYS = {day: "09:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")}


def association(slug: str, departements: list, languages: list, **extra: object) -> dict:
    return {
        "slug": slug,
        "name": f"Asso {slug}",
        "approval_number": f"A-{slug}",
        "approval_ends": "2030-12-31",
        "departements": departements,
        "languages": languages,
        "hours": WEEKDAYS,
        **extra,
    }


class Setup:
    def __init__(
        self,
        store: Store,
        redis: Redis,
        catalogs: Catalogs,
        signals: Signals,
        fake: FakeRasa,
        safety: Optional[Safety] = None,
    ) -> None:
        """``safety``: with the safety layer before the desk (tests/test_safety.py)."""
        self.store = store
        self.handoffs = HandoffStore(store.sessions, store.vault)
        self.directory = DirectoryStore(store.sessions)
        self.now = MONDAY_10H
        self.desk = HandoffDesk(store, self.handoffs, self.directory, redis, catalogs, signals, clock=lambda: self.now)
        self.router: Router = make_router(
            store,
            redis,
            fake,
            LanguageChooser(SUPPORTED_LANGUAGES, "fr"),
            desk=self.desk,
            catalogs=catalogs,
            guard=Guard(safety, redis, catalogs, self.desk, Discretion(SUPPORTED_LANGUAGES)) if safety else None,
        )
        self.catalogs = catalogs
        self.redis = redis
        self.counter = 0

    def use(self, *associations: dict) -> None:
        self.directory.replace(parse_directory(list(associations)))

    async def say(self, conversation: ConversationRef, text: str) -> List[str]:
        """Her message through the router; the bot's answers to it."""
        self.counter += 1
        message_id, _ = self.store.record_inbound(conversation, f"m{self.counter}", text)
        before = {m.id for m in self.store.messages_after(conversation.id, 0)}
        await self.router.handle_conversation(conversation.id)
        return [
            m.text
            for m in self.store.messages_after(conversation.id, message_id)
            if m.author == "bot" and m.id not in before
        ]

    def text(self, source: str, language: str = "fr", **values: object) -> str:
        return fill(self.desk._say(source, language), values)


@pytest.fixture
def setup(store: Store, redis: Redis, catalogs: Catalogs, signals: Signals, fake_rasa: FakeRasa) -> Setup:
    return Setup(store, redis, catalogs, signals, fake_rasa)


def conversation(store: Store, name: str = "a") -> ConversationRef:
    return store.open_conversation("webchat", f"session-{name}-0123456789abcdef")


def open_request(setup: Setup, conv: ConversationRef) -> Optional[object]:
    return setup.handoffs.open_for(conv.id)


async def test_plain_words_open_a_request_with_the_local_association(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75", "93"], ["fr", "en"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    answers = await setup.say(conv, "je veux parler a quelqu'un, je suis dans le 93")
    assert answers == [setup.text(REQUESTED_OPEN, association="Asso paris")]
    request = open_request(setup, conv)
    assert request is not None and request.association == "paris" and request.departement == "93"
    assert request.state == REQUESTED and request.language == "fr"


async def test_the_departement_is_asked_when_local_associations_exist(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75", "93"], ["fr"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    assert await setup.say(conv, "je veux parler à une vraie personne") == [setup.text(ASK_DEPARTEMENT)]
    assert open_request(setup, conv) is None
    # a postal code is understood, even in a sentence
    assert await setup.say(conv, "j'habite a 93200") == [setup.text(REQUESTED_OPEN, association="Asso paris")]
    assert open_request(setup, conv).departement == "93"


async def test_not_saying_the_departement_goes_to_the_national_line(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75"], ["fr"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    assert await setup.say(conv, "0") == [setup.text(REQUESTED_OPEN, association="Asso national")]
    assert open_request(setup, conv).association == "national"


async def test_an_unclear_answer_is_asked_again_once_then_taken_as_a_question(
    setup: Setup, store: Store, fake_rasa: FakeRasa
) -> None:
    setup.use(association("paris", ["75"], ["fr"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    # a wrong number is asked again; words may be a question: the model answers them too
    assert await setup.say(conv, "999") == [setup.text(DEPARTEMENT_AGAIN)]
    await setup.redis.set(f"outreach:handoff:departement:{conv.id}", "0")
    assert await setup.say(conv, "il est la, j ai peur") == [
        setup.text(DEPARTEMENT_AGAIN),
        "reply 0 to il est la, j ai peur",
    ]
    answers = await setup.say(conv, "ou dormir ce soir")
    assert answers == [setup.text(REQUESTED_OPEN, association="Asso national"), "reply 0 to ou dormir ce soir"]


async def test_out_of_hours_she_is_told_when_and_the_request_waits(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75"], ["fr", "en"]))
    setup.now = SATURDAY_10H
    conv = conversation(store)
    answers = await setup.say(conv, "i want to talk to a real person, i am in paris 75011")
    day, time = HandoffDesk.when(datetime(2027, 3, 8, 9, 0, tzinfo=PARIS), "en")
    assert (day, time) == ("Monday, March 8", "9:00 AM")
    assert answers == [setup.text(REQUESTED_CLOSED, "en", association="Asso paris", day=day, time=time)]
    assert "17" in answers[0] and "112" in answers[0] and "114" in answers[0]
    assert open_request(setup, conv).state == REQUESTED


async def test_the_day_is_written_in_her_language(setup: Setup) -> None:
    monday = datetime(2027, 3, 8, 9, 0, tzinfo=PARIS)
    assert HandoffDesk.when(monday, "fr") == ("lundi 8 mars", "09:00")
    assert HandoffDesk.when(monday, "ro")[0] == "luni, 8 martie"
    assert HandoffDesk.when(monday, "ru")[0] == "понедельник, 8 марта"
    assert HandoffDesk.when(monday, "zh")[0] == "3月8日星期一"
    for language in SUPPORTED_LANGUAGES:
        day, time = HandoffDesk.when(monday, language)
        assert day and time


async def test_the_model_can_recognise_the_request_too(setup: Setup, store: Store, fake_rasa: FakeRasa) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    fake_rasa.asks_for_human.add("svp jveu quelquun de vrai")
    conv = conversation(store)
    assert await setup.say(conv, "svp jveu quelquun de vrai") == [
        setup.text(REQUESTED_OPEN, association="Asso national")
    ]


async def test_asking_twice_opens_one_request(setup: Setup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    assert await setup.say(conv, "je veux parler à une vraie personne") == [setup.text(ALREADY_WAITING)]
    assert len(setup.handoffs.queue("national")) == 1


async def test_she_can_cancel_while_nobody_has_taken_it(setup: Setup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    # a question that merely contains the word is a question, not a cancellation
    assert await setup.say(conv, "comment annuler une amende de la police") == [
        "reply 0 to comment annuler une amende de la police"
    ]
    assert open_request(setup, conv) is not None
    assert await setup.say(conv, "ANNULER") == [setup.text(CANCELLED)]
    assert open_request(setup, conv) is None
    assert setup.handoffs.queue("national") == []


async def test_no_association_she_is_not_left_without_numbers(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75"], ["fr"], approval_ends="2020-01-01"))
    conv = conversation(store)
    answers = await setup.say(conv, "je veux parler à une vraie personne")
    assert answers == [setup.text(NO_ASSOCIATION)]
    assert "17" in answers[0] and "115" in answers[0]


async def test_while_a_human_holds_it_the_bot_is_silent_and_the_console_hears(
    setup: Setup, store: Store, redis: Redis
) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    request = open_request(setup, conv)
    pubsub = redis.pubsub()
    await pubsub.subscribe("outreach:console:national")
    await pubsub.get_message(timeout=1.0)  # the subscription itself
    assert setup.handoffs.claim(request.id, "anna", "national")
    assert await setup.say(conv, "vous êtes là ?") == []
    event = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
    assert event is not None and event["data"] == f'{{"type": "message", "handoff": {request.id}}}'
    await pubsub.close()
    assert setup.handoffs.open_for(conv.id).state == CLAIMED


async def test_danger_seen_by_the_model_flags_the_request(
    setup: Setup, store: Store, fake_rasa: FakeRasa, catalogs: Catalogs
) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    fake_rasa.reply_text = catalogs.render("utter_danger", "fr")
    await setup.say(conv, "il me frappe")
    fake_rasa.reply_text = None
    await setup.say(conv, "je veux parler à une vraie personne")
    request = open_request(setup, conv)
    assert request.urgent and not request.minor
    # and a minor's answer after the request was opened flags it too
    fake_rasa.reply_text = catalogs.render("utter_minor", "fr")
    await setup.say(conv, "j'ai 16 ans")
    assert open_request(setup, conv).minor


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
async def test_each_language_names_its_own_cancel_word(language: str, catalogs: Catalogs, signals: Signals) -> None:
    """The word the answers tell her to write is one the desk understands, in every language."""
    word = signals.cancel_word[language]
    assert signals.cancels(word) and signals.cancels(word.upper())
    for context, source in (
        ("handoff_requested_open", REQUESTED_OPEN),
        ("handoff_requested_closed", REQUESTED_CLOSED),
        ("handoff_already_waiting", ALREADY_WAITING),
    ):
        text = catalogs.translate(language, context, source)
        assert word.lower() in text.lower(), (language, context)


async def test_queue_keys_are_internal_ids_only(setup: Setup, store: Store, redis: Redis) -> None:
    setup.use(association("paris", ["75"], ["fr"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    keys = [key async for key in redis.scan_iter(f"{queues.PREFIX}:handoff:*")]
    assert keys == [f"{queues.PREFIX}:handoff:departement:{conv.id}"]


async def test_a_request_nobody_takes_is_alerted_again(setup: Setup, store: Store, redis: Redis) -> None:
    from datetime import timedelta

    from bot.handoff.alerts import HandoffAlerts
    from tests.helpers import running

    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    request = open_request(setup, conv)
    pubsub = redis.pubsub()
    await pubsub.subscribe("outreach:console:national")
    await pubsub.get_message(timeout=1.0)
    # not yet due: nothing
    assert await setup.desk.alert_unclaimed(timedelta(minutes=10)) == 0
    # the worker alerts once per period while nobody claims it
    alerts = HandoffAlerts(setup.desk, unclaimed_after_s=0.6)
    async with running(alerts.run):
        event = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        assert event is not None and event["data"] == f'{{"type": "alert", "handoff": {request.id}}}'
        assert setup.handoffs.claim(request.id, "anna", "national")
        await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)  # one in flight, at most
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.5) is None
    await pubsub.close()


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
async def test_a_lock_screen_never_shows_the_association(language: str, catalogs: Catalogs) -> None:
    """What the first 40 characters show (a lock screen, a notification) names no association
    and no sensitive word, whatever the association is called."""
    from bot.handoff.desk import CONTEXTS

    name = "Mouvement contre la prostitution"
    for source, context in CONTEXTS.items():
        text = fill(catalogs.translate(language, context, source), {"association": name, "day": "x", "time": "y"})
        assert name not in text[:40], (language, context)


# --- the plain words (translations/<lang>/signals.yml) -----------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("je veux parler à quelqu'un", "fr"),
        ("Je voudrais PARLER A UNE ASSISTANTE SOCIALE svp", "fr"),
        ("i want to talk to someone please", "en"),
        ("quiero hablar con alguien", "es"),
        ("quero falar com uma pessoa", "pt"),
        ("vreau sa vorbesc cu cineva", "ro"),
        ("искам да говоря с човек", "bg"),
        ("我要转人工", "zh"),
        ("хочу поговорить с человеком", "ru"),
        ("хочу поговорити з людиною", "uk"),
        ("bghit nhder m3a chi wa7ed", "ar"),
    ],
)
def test_plain_words_asking_for_a_person(signals: Signals, text: str, language: str) -> None:
    assert signals.asks_for_human(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "mon éducatrice m'a dit d'aller à la préfecture",
        "my social worker said i need papers",
        "la asistente social me dijo que fuera al hospital",
        "il m'appelle tous les jours",
        "je parle avec personne",
        "bonjour",
    ],
)
def test_words_that_do_not_ask_for_a_person(signals: Signals, text: str) -> None:
    assert signals.asks_for_human(text) is None


@pytest.mark.parametrize(
    ("text", "cancels"),
    [
        ("ANNULER", True),
        ("annuler !", True),
        ("Cancel.", True),
        ("取消", True),
        ("ОТКАЗ", True),
        ("comment annuler une amende", False),
        ("получих отказ", False),  # "I got a refusal"
        ("拉客罪取消了吗", False),  # "has the soliciting offence been abolished?"
        ("", False),
    ],
)
def test_cancel_is_the_whole_message(signals: Signals, text: str, cancels: bool) -> None:
    assert signals.cancels(text) is cancels


def test_no_training_example_of_another_intent_asks_for_a_person(signals: Signals) -> None:
    """The plain words win over the model: they must never catch what the model answers
    otherwise (every training example and held-out story of the other intents)."""
    import yaml

    from bot.settings import PROJECT_ROOT

    caught = []
    for language in SUPPORTED_LANGUAGES:
        data = yaml.safe_load((PROJECT_ROOT / "nlu_data" / language / "nlu.yml").read_text(encoding="utf-8"))
        for block in data["nlu"]:
            if block.get("intent") in (None, "ask_human"):
                continue
            for line in str(block.get("examples", "")).splitlines():
                example = line.strip().removeprefix("- ").strip()
                if example and signals.asks_for_human(example):
                    caught.append((language, block["intent"], example))
        stories = yaml.safe_load((PROJECT_ROOT / "tests" / "stories" / f"test_{language}.yml").read_text("utf-8"))
        for story in stories["stories"]:
            for step in story["steps"]:
                if "user" in step and step.get("intent") != "ask_human" and signals.asks_for_human(step["user"]):
                    caught.append((language, step.get("intent"), step["user"].strip()))
    assert caught == []


async def test_an_age_in_the_request_is_not_a_departement(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75", "93"], ["fr"]), association("charente", ["16"], ["fr"]))
    conv = conversation(store)
    assert await setup.say(conv, "je veux parler a quelqu un, j ai 16 ans") == [setup.text(ASK_DEPARTEMENT)]
    assert open_request(setup, conv) is None


async def test_cancelling_at_the_departement_question_opens_nothing(setup: Setup, store: Store) -> None:
    setup.use(association("paris", ["75"], ["fr"]), association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    assert await setup.say(conv, "annuler") == [setup.text(CANCELLED)]
    assert open_request(setup, conv) is None
    assert await setup.say(conv, "75") == ["reply 0 to 75"]  # a menu choice again, not an answer


async def test_her_request_follows_her_language(setup: Setup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr", "en"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    assert open_request(setup, conv).language == "fr"
    await setup.say(conv, "sorry I do not speak french, can you write in english please")
    assert open_request(setup, conv).language == "en"


async def test_a_held_conversation_left_unanswered_is_alerted(setup: Setup, store: Store, redis: Redis) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from bot.models import Message

    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler à une vraie personne")
    request = open_request(setup, conv)
    assert setup.handoffs.claim(request.id, "anna", "national")
    await setup.say(conv, "vous etes la ?")
    assert await setup.desk.alert_unanswered(timedelta(minutes=10)) == 0  # she has just written
    from bot.models import utcnow

    with store.sessions() as session:  # she was taken 15 minutes ago and wrote 12 minutes ago
        now = utcnow()
        session.execute(
            update(HandoffModel).where(HandoffModel.id == request.id).values(claimed_at=now - timedelta(minutes=15))
        )
        last = max(m.id for m in store.messages_after(conv.id, 0) if m.author == "user")
        session.execute(update(Message).where(Message.id == last).values(created_at=now - timedelta(minutes=12)))
        session.commit()
    assert await setup.desk.alert_unanswered(timedelta(minutes=10)) == 1
    assert await setup.desk.alert_unanswered(timedelta(minutes=10)) == 0  # not again at once
    # once the staff member answers, nothing is due
    assert setup.handoffs.staff_reply(request.id, "anna", "national", "Je suis là.") is not None
    with store.sessions() as session:
        session.execute(update(HandoffModel).where(HandoffModel.id == request.id).values(last_alert_at=None))
        session.commit()
    assert await setup.desk.alert_unanswered(timedelta(minutes=10)) == 0


def test_no_bot_answer_once_a_person_holds_the_conversation(store: Store) -> None:
    """A staff member claims it while the model is answering: the answer is not sent."""
    from sqlalchemy import update

    from bot.models import Conversation

    conv = conversation(store, "claimed-late")
    message_id, _ = store.record_inbound(conv, "late-1", "bonjour")
    with store.sessions() as session:
        session.execute(update(Conversation).where(Conversation.id == conv.id).values(state=CLAIMED))
        session.commit()
    assert store.complete_inbound(message_id, ["réponse du bot"], "fr") == []
    assert [m.author for m in store.messages_after(conv.id, 0)] == ["user"]
