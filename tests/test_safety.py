"""The safety layer as she sees it: danger, a minor, erasure, through the router (stand-in
Rasa) on the real Redis and both databases, answers rendered from the catalogs in her language;
and the mediators' lexicons of every language checked against their examples and the model's
data."""

from __future__ import annotations

from datetime import timedelta
from typing import List

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from bot import erasure
from bot.discreet import Discretion
from bot.erasure import erase_pending_key
from bot.guard import ERASE_CONFIRM_TTL_S, DiscreetTexts
from bot.handoff.states import CLAIMED
from bot.i18n import Catalogs
from bot.i18n_report import discretion_problems
from bot.models import AuditEvent, Contact, Conversation, Handoff, HandoffNote, Message
from bot.rasa_setup import tracker_key
from bot.safety import KINDS, Safety
from bot.safety_audit import audit, format_audit
from bot.safety_texts import (
    ADULT_ONLY,
    ADVICE,
    DISCREET_FALLBACK,
    DISCREET_OFF,
    DISCREET_ON,
    ERASE_CONFIRM,
    ERASED,
    OFFER_PERSON,
)
from bot.settings import SUPPORTED_LANGUAGES
from bot.store import SENT, ConversationRef, Store
from tests.fakes import FakeRasa
from tests.test_handoff_desk import Setup, association, conversation, open_request

PHONE = "+33612345678"


@pytest.fixture(scope="module")
def safety() -> Safety:
    return Safety(SUPPORTED_LANGUAGES)


# -- the lexicons ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_each_language_catches_its_examples_and_nothing_else(safety: Safety, language: str) -> None:
    result = audit(language, safety)
    assert result.wrong_examples == [] and result.caught_elsewhere == [], format_audit(result)
    for _intent, (caught, total) in result.recall.items():
        assert total and caught >= 0.85 * total, format_audit(result)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_each_language_has_examples_of_every_kind(language: str) -> None:
    import yaml

    from bot.settings import PROJECT_ROOT

    path = PROJECT_ROOT / "translations" / language / "safety_examples.yml"
    examples = yaml.safe_load(path.read_text(encoding="utf-8"))
    counts = {kind: len(examples.get(kind) or []) for kind in (*KINDS, "none")}
    assert counts["danger"] >= 12 and counts["minor"] >= 10 and counts["erase"] >= 5 and counts["none"] >= 10, counts


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_answers_name_the_words_of_her_language(safety: Safety, catalogs: Catalogs, language: str) -> None:
    talk, confirm, stop = (safety.word[kind][language] for kind in ("talk", "confirm", "stop"))
    assert safety.takes_offer(talk) and safety.confirms(confirm) and safety.stops(stop)
    assert talk in catalogs.translate(language, "safety_offer_person", OFFER_PERSON)
    assert confirm in catalogs.translate(language, "safety_erase_confirm", ERASE_CONFIRM)


@pytest.mark.parametrize(
    ("text", "danger", "minor", "erase"),
    [
        ("Il va me tuer", True, False, False),
        ("il va me tuer, j'ai 16 ans", True, True, False),
        ("j ai ١٦ ans", False, True, False),  # Arabic-Indic digits
        ("je travaille depuis 15 ans", False, False, False),
        ("j'ai 18 ans", False, False, False),
        ("gracias, sos un amor", False, False, False),
        ("efface tout", False, False, True),
        ("", False, False, False),
        ("<script>alert(1)</script>", False, False, False),
    ],
)
def test_findings(safety: Safety, text: str, danger: bool, minor: bool, erase: bool) -> None:
    finding = safety.check(text)
    assert (finding.danger, finding.minor, finding.erase) == (danger, minor, erase)


def test_a_huge_message_is_checked_quickly(safety: Safety) -> None:
    import time

    text = "bonjour " * 20_000 + "au secours il a un couteau"
    started = time.perf_counter()
    assert safety.check(text).danger
    assert time.perf_counter() - started < 2.0


# -- through the router ----------------------------------------------------------------------


class SafetySetup(Setup):
    def __init__(self, store: Store, redis: Redis, catalogs: Catalogs, signals, fake: FakeRasa, safety: Safety) -> None:
        super().__init__(store, redis, catalogs, signals, fake, safety)
        self.fake = fake

    def render(self, name: str, language: str = "fr") -> str:
        return self.catalogs.render(name, language)

    def say_text(self, source: str, context: str, language: str = "fr") -> str:
        return self.catalogs.translate(language, context, source)


@pytest.fixture
def setup(store: Store, redis: Redis, catalogs: Catalogs, signals, fake_rasa: FakeRasa, safety: Safety) -> SafetySetup:
    return SafetySetup(store, redis, catalogs, signals, fake_rasa, safety)


def sms(store: Store, number: str = PHONE) -> ConversationRef:
    return store.open_conversation("sms", number)


async def test_danger_gets_the_emergency_answer_first_then_an_offer(setup: SafetySetup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr", "en"]))
    conv = conversation(store)
    answers = await setup.say(conv, "il va me tuer ce soir")
    assert answers == [setup.render("utter_danger"), setup.say_text(OFFER_PERSON, "safety_offer_person")]
    assert setup.fake.calls == []  # the model was not asked
    # she takes the offer with the word it names
    answers = await setup.say(conv, "PARLER")
    assert len(answers) == 1 and "ANNULER" in answers[0]
    request = open_request(setup, conv)
    assert request is not None and request.urgent


@pytest.mark.parametrize("language", ["en", "ro", "zh", "ar"])
async def test_danger_is_answered_in_her_language(
    setup: SafetySetup, store: Store, safety: Safety, language: str
) -> None:
    import yaml

    from bot.settings import PROJECT_ROOT

    examples = yaml.safe_load((PROJECT_ROOT / "translations" / language / "safety_examples.yml").read_text("utf-8"))
    conv = conversation(store, language)
    await store.run(store.set_language, conv.contact_id, language)
    conv = store.conversation(conv.id)
    answers = await setup.say(conv, str(examples["danger"][0]))
    assert answers[0] == setup.render("utter_danger", language)


async def test_danger_with_a_request_open_flags_it_without_a_second_offer(setup: SafetySetup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler a quelqu'un")
    assert not open_request(setup, conv).urgent
    assert await setup.say(conv, "au secours il a un couteau") == [setup.render("utter_danger")]
    assert open_request(setup, conv).urgent


async def test_while_a_person_holds_it_danger_is_flagged_and_only_the_emergency_answer_goes(
    setup: SafetySetup, store: Store
) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = conversation(store)
    await setup.say(conv, "je veux parler a quelqu'un")
    request = open_request(setup, conv)
    assert setup.handoffs.claim(request.id, "alice", "national")
    # the staff member may have gone home: 17/112/114 go whoever holds it; nothing else
    assert await setup.say(conv, "il me frappe, j'ai 15 ans") == [setup.render("utter_danger")]
    request = open_request(setup, conv)
    assert request.state == CLAIMED and request.urgent and request.minor


async def test_a_minor_gets_119_and_never_an_adult_only_answer(setup: SafetySetup, store: Store) -> None:
    conv = conversation(store)
    assert await setup.say(conv, "jai 15ans") == [setup.render("utter_minor")]
    setup.fake.reply_text = setup.render("utter_afis")  # the model answers about the AFIS
    assert await setup.say(conv, "c'est quoi l'afis") == [setup.say_text(ADULT_ONLY, "safety_adult_only")]
    setup.fake.reply_text = setup.render("utter_shelter")  # what applies to her too is kept
    assert await setup.say(conv, "ou dormir ce soir") == [setup.render("utter_shelter")]


async def test_an_adult_gets_the_adult_answers(setup: SafetySetup, store: Store) -> None:
    conv = conversation(store)
    setup.fake.reply_text = setup.render("utter_afis")
    assert await setup.say(conv, "c'est quoi l'afis") == [setup.render("utter_afis")]


def count(store: Store, model: type) -> int:
    with store.sessions() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


async def test_erasure_leaves_nothing_of_her(setup: SafetySetup, store: Store, redis: Redis) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    other = sms(store, "+33699999999")  # another person: untouched
    await setup.say(other, "bonjour")
    conv = sms(store)
    await setup.say(conv, "bonjour")
    await setup.say(conv, "je veux parler a quelqu'un")
    request = open_request(setup, conv)
    setup.handoffs.add_note(request.id, "alice", "note privée")
    await redis.set(tracker_key(conv.public_id), "{}")  # her Rasa tracker
    await redis.set(f"outreach:flood:{conv.contact_id}:60:1", "3")
    flood = f"outreach:flood:{store.lookup_key('sms', PHONE)[:32]}:60:1"  # how SMS floods are counted
    await redis.set(flood, "3")
    await setup.say(conv, "j'ai 16 ans")  # flags in Redis
    assert await setup.say(conv, "effacez tout svp") == [setup.say_text(ERASE_CONFIRM, "safety_erase_confirm")]
    assert await redis.ttl(erase_pending_key(conv.id)) > ERASE_CONFIRM_TTL_S - 10

    answers = await setup.say(conv, "oui")
    done = setup.say_text(ERASED, "safety_erased") + " " + setup.say_text(ADVICE["sms"], "safety_advice_sms")
    assert answers == [done]
    # SQL: her messages and the staff's notes are gone; a new message from her starts afresh
    assert store.find_conversation("sms", PHONE) is None
    with store.sessions() as session:
        mine = session.execute(select(Message).where(Message.conversation_id == conv.id)).scalars().all()
        assert [m.direction for m in mine] == ["out"]  # only the confirmation, until it has gone
        assert session.execute(select(Conversation).where(Conversation.public_id == conv.public_id)).first() is None
        handoff = session.get(Handoff, request.id)
        assert handoff.state == "erased" and handoff.departement is None
        contact = session.get(Contact, conv.contact_id)
        assert contact.erased_at is not None and contact.language is None and contact.lookup_key.startswith("erased:")
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "erasure")).scalars().all()
        assert [(e.actor, e.handoff_id, e.detail) for e in events] == [("person", request.id, None)]
    assert count(store, HandoffNote) == 0
    # Redis: tracker, conversation keys, flood counters
    gone = (tracker_key(conv.public_id), f"outreach:flood:{conv.contact_id}:60:1", flood, erase_pending_key(conv.id))
    for key in gone:
        assert await redis.exists(key) == 0, key
    assert await redis.keys(f"outreach:*:{conv.id}") == []
    # the confirmation goes; then her address; then the stub
    outbound = [m for m in store.messages_after(conv.id, 0)][-1]
    store.mark_outbound(outbound.id, SENT, "SM1", None)
    erasure.forget_address_once_settled(store, outbound.id)
    with store.sessions() as session:
        assert session.get(Contact, conv.contact_id).address_enc is None
    assert erasure.purge_erased(store, timedelta(minutes=10)) == 0  # not yet
    assert erasure.purge_erased(store, timedelta(0)) == 1
    with store.sessions() as session:
        assert session.get(Contact, conv.contact_id) is None
        assert session.get(Handoff, request.id) is None
        left = select(func.count()).select_from(Message).where(Message.conversation_id == conv.id)
        assert session.execute(left).scalar_one() == 0
        audited = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "erasure")
        assert session.execute(audited).scalar_one() == 1
    # the other person is untouched
    assert store.find_conversation("sms", "+33699999999") is not None
    # and she can write again: a new, empty conversation
    again = sms(store)
    assert again.id != conv.id and store.messages_after(again.id, 0) == []


async def test_anything_else_drops_the_question(setup: SafetySetup, store: Store) -> None:
    conv = sms(store)
    assert await setup.say(conv, "EFFACER") == [setup.say_text(ERASE_CONFIRM, "safety_erase_confirm")]
    assert await setup.say(conv, "bonjour") == ["reply 0 to bonjour"]
    assert await setup.say(conv, "oui") == ["reply 0 to oui"]  # no longer a confirmation
    assert store.find_conversation("sms", PHONE) is not None


async def test_stop_by_sms_erases_at_once_without_a_word(setup: SafetySetup, store: Store) -> None:
    conv = sms(store)
    await setup.say(conv, "bonjour")
    assert await setup.say(conv, "STOP") == []
    assert store.find_conversation("sms", PHONE) is None
    with store.sessions() as session:
        assert session.get(Contact, conv.contact_id).address_enc is None


async def test_stop_on_the_web_chat_asks_first(setup: SafetySetup, store: Store) -> None:
    conv = conversation(store)
    await setup.say(conv, "bonjour")  # a French conversation: "stop" alone does not change that
    assert await setup.say(conv, "stop") == [setup.say_text(ERASE_CONFIRM, "safety_erase_confirm")]
    assert await setup.say(conv, "OUI") == []  # the page says it itself
    assert store.find_conversation("webchat", "session-a-0123456789abcdef") is None


async def test_erasure_while_a_person_holds_the_conversation(setup: SafetySetup, store: Store) -> None:
    setup.use(association("national", ["*"], ["fr"]))
    conv = sms(store)
    await setup.say(conv, "je veux parler a quelqu'un")
    request = open_request(setup, conv)
    assert setup.handoffs.claim(request.id, "alice", "national")
    # the bot is silent while a person holds it, but her wish to erase is still asked and done
    assert await setup.say(conv, "supprimez mes messages") == [setup.say_text(ERASE_CONFIRM, "safety_erase_confirm")]
    await setup.say(conv, "OUI")
    assert setup.handoffs.get(request.id, "national").state == "erased"
    assert store.find_conversation("sms", PHONE) is None


async def test_erasure_in_her_language(setup: SafetySetup, store: Store, safety: Safety) -> None:
    conv = sms(store)
    await store.run(store.set_language, conv.contact_id, "ro")
    conv = store.conversation(conv.id)
    stop = safety.word["stop"]["ro"]
    asked: List[str] = await setup.say(conv, stop)
    assert asked == [setup.say_text(ERASE_CONFIRM, "safety_erase_confirm", "ro")]
    answers = await setup.say(conv, safety.word["confirm"]["ro"])
    assert answers and answers[0].startswith(setup.say_text(ERASED, "safety_erased", "ro"))


# -- discreet mode ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def discretion() -> Discretion:
    return Discretion(SUPPORTED_LANGUAGES)


def test_no_text_shows_a_sensitive_word_on_a_lock_screen_and_each_has_a_discreet_version(
    discretion: Discretion,
) -> None:
    problems = discretion_problems(SUPPORTED_LANGUAGES, discretion)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_the_discreet_answers_name_the_code_words_of_her_language(
    discretion: Discretion, catalogs: Catalogs, language: str
) -> None:
    on, off = discretion.word("on", language), discretion.word("off", language)
    assert on and off and discretion.turns_on(on) and discretion.turns_off(off)
    assert off in catalogs.translate(language, "discreet_on", DISCREET_ON)
    assert on in catalogs.translate(language, "discreet_off", DISCREET_OFF)
    assert off in catalogs.translate(language, "discreet_fallback", DISCREET_FALLBACK)
    assert on in catalogs.render("utter_goodbye", language)


def test_a_text_that_cannot_be_made_discreet_becomes_the_neutral_fallback(
    discretion: Discretion, catalogs: Catalogs
) -> None:
    texts = DiscreetTexts(discretion, catalogs)
    assert texts("Allez à la police avec votre proxénète xyz", "fr") == catalogs.translate(
        "fr", "discreet_fallback", DISCREET_FALLBACK
    )
    law = catalogs.render("utter_law", "ro")
    neutral = texts(law, "ro")
    assert neutral != law and discretion.sensitive_in(neutral) == []


async def test_discreet_mode_is_turned_on_and_off_by_her_code_word(setup: SafetySetup, store: Store) -> None:
    conv = sms(store)
    await setup.say(conv, "bonjour")
    assert await setup.say(conv, "meteo") == [setup.say_text(DISCREET_ON, "discreet_on")]
    assert store.conversation(conv.id).discreet
    assert await setup.say(conv, "METEO FIN") == [setup.say_text(DISCREET_OFF, "discreet_off")]
    assert not store.conversation(conv.id).discreet


async def test_what_she_wrote_with_the_confirmation_is_erased_unanswered(setup: SafetySetup, store: Store) -> None:
    conv = sms(store)
    await setup.say(conv, "EFFACER")
    store.record_inbound(conv, "batch-1", "oui")
    store.record_inbound(conv, "batch-2", "merci, au revoir")  # arrives in the same batch
    calls = len(setup.fake.calls)
    await setup.router.handle_conversation(conv.id)
    assert len(setup.fake.calls) == calls  # the model never saw it: no tracker of it
    with store.sessions() as session:
        left = session.execute(select(Message.direction).where(Message.conversation_id == conv.id)).scalars()
        assert list(left) == ["out"]


async def test_only_her_languages_yes_confirms(setup: SafetySetup, store: Store) -> None:
    conv = sms(store)
    await setup.say(conv, "bonjour")
    await setup.say(conv, "EFFACER")
    await setup.say(conv, "da")  # Romanian, Bulgarian, Russian "yes": not hers
    assert store.find_conversation("sms", PHONE) is not None
