"""Statistics counted when things happen, on the real Redis and both databases: a person on the
web chat (the router, the safety layer and the sender run; a stand-in Rasa gives the response
names the NLG endpoint would), staff in the console; then an erasure and the retention purge
leave every figure as it was. The dashboard, CSV and summary are for admins only and audited."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Dict, Tuple

import httpx
import pytest

from bot import erasure, retention
from bot import statistics as st
from bot.app import build_services, create_app
from bot.handoff.directory import parse_directory
from bot.handoff.store import DirectoryStore
from bot.rasa_client import RasaClient
from bot.settings import load_settings
from bot.statistics import Statistics
from tests.conftest import gateway_env
from tests.fakes import FakeRasa
from tests.helpers import until
from tests.test_console import Person, World, association

Key = Tuple[str, ...]


@pytest.fixture
async def world(database_url: str, redis_clean: str, tmp_path: Path, fake_rasa: FakeRasa) -> AsyncIterator[World]:
    settings = load_settings(gateway_env(database_url, redis_clean, tmp_path, OUTREACH_LANGUAGES="fr,en"))
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    local = {**association("asso-a"), "departements": ["93", "75"]}  # local: her département is asked
    DirectoryStore(services.store.sessions).replace(parse_directory([local, association("asso-n")]))
    app = create_app(settings, services=services, run_workers=True)
    async with app.router.lifespan_context(app):
        yield World(services, httpx.ASGITransport(app=app))


def figures(world: World) -> Dict[Key, int]:
    """Every count of this week, keyed by (figure, dimension values), without the week."""
    week = st.week_of()
    return {key[1:]: n for key, n in Statistics(world.services.store.sessions).snapshot().items() if key[0] == week}


def key(figure: str, **dims: str) -> Key:
    count = st.Count(figure, **dims)
    return (figure, count.channel, count.language, count.topic, count.association, count.departement, count.value)


async def test_a_conversation_is_counted_as_it_happens_and_erasing_her_changes_no_figure(
    world: World, fake_rasa: FakeRasa
) -> None:
    fake_rasa.responses = {
        "bonjour": ["utter_menu"],
        "je veux arreter tout ca": ["utter_exit_pathway"],
        "et pour mes papiers": ["utter_papers"],
    }
    store = world.services.store
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(world.client())
        person = await Person(http).start()
        await person.say("bonjour")
        await person.say("je veux arreter tout ca")
        await person.say("j'ai 15 ans")  # the safety layer: a minor
        await person.say("je veux parler à une vraie personne")  # she is asked her département
        await person.say("93")  # the exit pathway question asked before counts in 93 now
        await person.say("et pour mes papiers")  # after the département: counted in 93 at once
        await until(lambda: any(c["message"] == "et pour mes papiers" for c in fake_rasa.calls))
        await until(lambda: figures(world).get(key(st.TOPIC, topic="papers")) == 1)
        world.account("anna", "staff", "asso-a")
        console = await world.console(stack, "anna")
        ref = world.services.desk.handoffs.queue("asso-a")[0]
        assert (await console.api("POST", f"/handoffs/{ref.id}/claim")).status_code == 200
        assert (await console.api("POST", f"/handoffs/{ref.id}/close", {"outcome": "oriented"})).status_code == 200
        # every answer to her sent: 6 to her messages, "a person is there", "the person has finished"
        await until(lambda: figures(world).get(key(st.MESSAGE_OUT, channel="webchat"), 0) == 8)
        counted = figures(world)
        assert counted[key(st.CONVERSATION_STARTED, channel="webchat")] == 1
        assert counted[key(st.CONVERSATION_STARTED, language="fr")] == 1
        assert counted[key(st.MESSAGE_IN, channel="webchat")] == 6
        assert counted[key(st.MESSAGE_OUT, channel="webchat")] == 8
        assert counted[key(st.TOPIC, topic="menu")] == 1
        assert counted[key(st.TOPIC, topic="exit_pathway")] == 1
        assert counted[key(st.TOPIC, topic="papers")] == 1
        assert counted[key(st.FLAG, value="minor")] == 1
        assert counted[key(st.TOPIC_DEPARTEMENT, topic="exit_pathway", departement="93")] == 1
        assert counted[key(st.TOPIC_DEPARTEMENT, topic="papers", departement="93")] == 1
        assert counted[key(st.HANDOFF_REQUESTED, association="asso-a")] == 1
        assert counted[key(st.HANDOFF_CLAIMED, association="asso-a", value="lt5m")] == 1
        assert counted[key(st.HANDOFF_ENDED, association="asso-a", value="oriented")] == 1
        # nothing but counts: no figure holds an id, a text or a time finer than the week
        for stored in Statistics(store.sessions).snapshot():
            assert all(len(part) <= 32 for part in stored)
            assert "15 ans" not in " ".join(stored) and "93" not in stored[:1]

        before = Statistics(store.sessions).snapshot()
        conversation_id = ref.conversation_id
        await store.run(erasure.erase, store, conversation_id, None, None)
        await store.run(erasure.purge_erased, store, timedelta(0))
        assert Statistics(store.sessions).snapshot() == before
        await store.run(
            retention.purge, store, timedelta(0), timedelta(0), False, datetime.now(timezone.utc) + timedelta(days=1)
        )
        assert Statistics(store.sessions).snapshot() == before


async def test_a_message_answered_twice_is_counted_once(world: World) -> None:
    store = world.services.store
    conversation = store.open_conversation("sms", "+33600000001")
    message_id, _ = store.record_inbound(conversation, "SM1", "bonjour")
    topic = [st.Count(st.TOPIC, topic="law")]
    store.complete_inbound(message_id, ["réponse"], "fr", False, topic)
    store.complete_inbound(message_id, ["réponse"], "fr", False, topic)
    counted = figures(world)
    assert counted[key(st.TOPIC, topic="law")] == 1
    assert counted[key(st.CONVERSATION_STARTED, channel="sms")] == 1
    assert counted[key(st.MESSAGE_IN, channel="sms")] == 1


async def test_the_dashboard_is_for_admins_only_and_every_view_is_audited_without_figures(world: World) -> None:
    stats = Statistics(world.services.store.sessions)
    now = datetime.now(timezone.utc)
    month = f"{now:%Y-%m}"
    # a week of the month asked (its Thursday in the month), with one minor among many
    week_day = datetime.fromisoformat(st.week_monday(st.weeks_of_month(now.year, now.month)[0]).isoformat())
    at = week_day.replace(tzinfo=timezone.utc) + timedelta(days=3, hours=12)
    stats.record([st.Count(st.FLAG, value="danger")] * 12 + [st.Count(st.FLAG, value="minor")], at)
    stats.record([st.Count(st.TOPIC, topic="papers")] * 7, at)
    world.account("anna", "staff", "asso-a")
    world.account("mia", "mediator", "asso-a")
    world.account("root", "admin", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        for username in ("anna", "mia"):
            console = await world.console(stack, username)
            for path in ("/console/stats", "/console/stats/summary", "/console/stats/flags.csv"):
                response = await console.http.get(path, params={"month": month})
                assert response.status_code == 403, (username, path)
        admin = await world.console(stack, "root")
        page = await admin.http.get("/console/stats", params={"month": month})
        assert page.status_code == 200
        assert "<svg" in page.text and "Sujets demandés" in page.text
        assert 'class="masked"' in page.text  # the minor's cell is shown hidden
        csv = await admin.http.get("/console/stats/flags.csv", params={"month": month})
        assert csv.status_code == 200
        assert csv.headers["content-disposition"].startswith("attachment;")
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.lstrip("\ufeff").strip().split("\r\n")
        assert lines[0] == "semaine,danger,minorité,total"
        first_week = st.weeks_of_month(now.year, now.month)[0]
        row = next(line for line in lines if line.startswith(first_week))
        assert row.split(",")[2] == "s" and ",1," not in row
        summary = await admin.http.get("/console/stats/summary", params={"month": month})
        assert summary.status_code == 200 and "Synthèse mensuelle" in summary.text
        assert "@media print" in (await admin.http.get("/static/console.css")).text
        assert (await admin.http.get("/console/stats/nothing.csv")).status_code == 404
    events = [e for e in world.audit.recent() if e.action.startswith("stats_")]
    assert [e.action for e in reversed(events)] == ["stats_view", "stats_csv", "stats_summary"]
    for event in events:
        assert event.actor == "root"
        assert not any(ch.isdigit() for ch in (event.detail or "").replace(month, "").replace("flags", ""))


def test_the_threshold_is_validated() -> None:
    from bot.settings import SettingsError

    base = {"OUTREACH_ENV": "test"}
    assert load_settings(base).stats_threshold == 5
    assert load_settings({**base, "OUTREACH_STATS_THRESHOLD": "10"}).stats_threshold == 10
    for bad in ("1", "0", "x", "1001"):
        with pytest.raises(SettingsError, match="OUTREACH_STATS_THRESHOLD"):
            load_settings({**base, "OUTREACH_STATS_THRESHOLD": bad})


def test_values_outside_their_sets_are_counted_as_other() -> None:
    count = st.Count(st.TOPIC_DEPARTEMENT, topic="anything typed", departement="99999", language="xx")
    assert count.bounded() == st.Count(st.TOPIC_DEPARTEMENT, topic="other", departement="other", language="other")
    with pytest.raises(ValueError):
        st.Count("free text").bounded()
    from bot.handoff.states import OUTCOMES

    assert set(OUTCOMES) <= set(st.ENDINGS)
