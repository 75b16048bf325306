"""The staff console on the real Redis and databases: login with a password and a two-factor
code, the queue, claim, reply, notes, release, close, isolation between associations on every
route, CSRF, inert HTML, the audit log; a person on the web chat at the other end (the router
and sender run, with a stand-in Rasa)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import AsyncIterator, Dict, List, Tuple

import httpx
import pytest

from bot.app import Services, build_services, create_app
from bot.console.accounts import StaffStore, current_code
from bot.console.audit import AuditLog
from bot.handoff.directory import parse_directory
from bot.handoff.store import DirectoryStore
from bot.handoff.texts import CLAIMED, ENDED
from bot.rasa_client import RasaClient
from bot.settings import load_settings
from tests.conftest import gateway_env
from tests.fakes import FakeRasa
from tests.helpers import until

pytestmark = pytest.mark.asyncio

PASSWORD = "correct horse battery staple"
ALWAYS = {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
XSS = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'


def association(slug: str) -> dict:
    return {
        "slug": slug,
        "name": f"Association {slug.upper()}",
        "approval_number": f"AG-{slug}",
        "approval_ends": "2030-12-31",
        "departements": ["*"],
        "languages": ["fr", "en"],
        "hours": ALWAYS,
    }


class Console:
    """One browser-like client of the console (its own cookies)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.csrf = ""

    async def login(self, username: str, secret: str, code: str = "") -> httpx.Response:
        page = await self.http.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        response = await self.http.post(
            "/console/login",
            data={"csrf": token, "username": username, "password": PASSWORD, "code": code or current_code(secret)},
        )
        if response.status_code == 303:
            self.csrf = (await self.http.get("/console/api/me")).json()["csrf"]
        return response

    async def api(self, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        return await self.http.request(method, f"/console/api{path}", json=body, headers=headers)


class World:
    def __init__(self, services: Services, transport: httpx.ASGITransport) -> None:
        self.services = services
        self.transport = transport
        self.accounts = StaffStore(services.store.sessions, services.store.vault)
        self.audit = AuditLog(services.store.sessions)
        self.secrets: Dict[str, str] = {}

    def account(self, username: str, role: str, association: str) -> str:
        _member, secret = self.accounts.create(username, username.title(), role, association, PASSWORD)
        self.secrets[username] = secret
        return secret

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=self.transport, base_url="http://gateway.internal") as client:
            yield client

    async def console(self, stack: contextlib.AsyncExitStack, username: str) -> Console:
        console = Console(await stack.enter_async_context(self.client()))
        response = await console.login(username, self.secrets[username])
        assert response.status_code == 303, response.text
        return console


class Person:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.session = ""

    async def start(self) -> Person:
        self.session = (await self.http.post("/webchat/sessions")).json()["session"]
        return self

    async def say(self, text: str) -> int:
        response = await self.http.post(f"/webchat/sessions/{self.session}/messages", json={"text": text})
        assert response.status_code == 202
        return int(response.json()["id"])

    async def messages(self) -> List[dict]:
        response = await self.http.get(f"/webchat/sessions/{self.session}/messages", params={"after": 0})
        return list(response.json()["messages"])

    async def texts(self, author: str) -> List[str]:
        return [m["text"] for m in await self.messages() if m["author"] == author]


@pytest.fixture
async def world(database_url: str, redis_clean: str, tmp_path: Path, fake_rasa: FakeRasa) -> AsyncIterator[World]:
    settings = load_settings(gateway_env(database_url, redis_clean, tmp_path, OUTREACH_LANGUAGES="fr,en"))
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    DirectoryStore(services.store.sessions).replace(parse_directory([association("asso-a"), association("asso-b")]))
    app = create_app(settings, services=services, run_workers=True)
    async with app.router.lifespan_context(app):
        yield World(services, httpx.ASGITransport(app=app))


async def request_for(world: World, person: Person, association: str) -> int:
    """She asks for a person; the request goes to ``association`` (the directory is narrowed
    to it for the time of the routing)."""
    directory = DirectoryStore(world.services.store.sessions)
    directory.replace(parse_directory([_record(association)]))
    await person.say("je veux parler à une vraie personne")
    handoffs = world.services.desk.handoffs
    await until(lambda: handoffs.queue(association) != [])
    directory.replace(parse_directory([_record("asso-a"), _record("asso-b")]))
    return handoffs.queue(association)[-1].id


def _record(slug: str) -> dict:
    return association(slug)


async def test_login_needs_the_password_and_a_fresh_two_factor_code(world: World) -> None:
    secret = world.account("anna", "staff", "asso-a")
    async with world.client() as client:
        console = Console(client)
        assert (await console.login("anna", secret, code="000000")).status_code == 401
        code = current_code(secret)
        response = await console.login("anna", secret, code=code)
        assert response.status_code == 303 and response.headers["location"] == "/console"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/console" in cookie
        assert (await client.get("/console")).status_code == 200
    async with world.client() as client:
        # the same code a second time is refused (replay), even if a new 30-second step began
        assert (await Console(client).login("anna", secret, code=code)).status_code == 401
    actions = [event.action for event in world.audit.recent()]
    assert actions.count("login") == 1 and actions.count("login_failed") == 2


async def test_login_attempts_are_limited(world: World) -> None:
    secret = world.account("anna", "staff", "asso-a")
    async with world.client() as client:
        console = Console(client)
        for _ in range(5):
            assert (await console.login("anna", secret, code="123456")).status_code == 401
        response = await console.login("anna", secret)
        assert response.status_code == 429
        assert "Trop de tentatives" in response.text


async def test_the_login_form_needs_its_csrf_token(world: World) -> None:
    secret = world.account("anna", "staff", "asso-a")
    async with world.client() as client:
        await client.get("/console/login")
        response = await client.post(
            "/console/login",
            data={"csrf": "forged", "username": "anna", "password": PASSWORD, "code": current_code(secret)},
        )
        assert response.status_code == 403
        assert "console_session" not in response.headers.get("set-cookie", "")


async def test_nothing_without_a_session(world: World) -> None:
    async with world.client() as client:
        for path in ("/console", "/console/admin", "/console/handoffs/1"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/console/login"
        for method, path in [
            ("GET", "/console/api/me"),
            ("GET", "/console/api/queue"),
            ("GET", "/console/api/handoffs/1"),
            ("GET", "/console/api/handoffs/1/canned"),
            ("POST", "/console/api/handoffs/1/claim"),
            ("POST", "/console/api/handoffs/1/reply"),
            ("GET", "/console/api/admin/audit"),
            ("GET", "/console/api/admin/staff"),
            ("POST", "/console/api/admin/staff"),
            ("GET", "/console/api/admin/directory"),
            ("GET", "/console/events"),
        ]:
            assert (await client.request(method, path)).status_code == 401, path
        assert (await client.post("/console/handoffs/1/claim", data={"csrf": "x"})).status_code == 401


async def test_a_request_from_claim_to_release(world: World, fake_rasa: FakeRasa) -> None:
    world.account("anna", "staff", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        person = await Person(await stack.enter_async_context(world.client())).start()
        handoff = await request_for(world, person, "asso-a")

        queue = (await anna.api("GET", "/queue")).json()["waiting"]
        assert [(h["id"], h["state"], h["language"]) for h in queue] == [(handoff, "requested", "fr")]
        page = await anna.http.get("/console")
        assert f"Demande n° {handoff}" in page.text

        # claim: the bot goes silent and she is told a person is there
        claimed = await anna.api("POST", f"/handoffs/{handoff}/claim")
        assert claimed.status_code == 200 and claimed.json()["handoff"]["claimed_by"] == "anna"
        told = CLAIMED.replace("{association}", "Association ASSO-A")
        await until(lambda: _has(person, "bot", told))
        assert (await anna.api("POST", f"/handoffs/{handoff}/claim")).status_code == 409

        await person.say("bonjour, vous êtes là ?")
        await until(lambda: _transcript_has(anna, handoff, "bonjour, vous êtes là ?"))
        assert "reply 0 to bonjour, vous êtes là ?" not in await person.texts("bot")

        # a free reply and a canned reply, in her language
        assert (await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "Oui, je suis là."})).status_code == 200
        canned = (await anna.api("GET", f"/handoffs/{handoff}/canned")).json()
        hello = next(item for item in canned["replies"] if item["name"] == "canned_hello")
        assert (await anna.api("POST", f"/handoffs/{handoff}/reply", {"canned": "canned_hello"})).status_code == 200
        await until(lambda: _has(person, "staff", hello["text"]))
        assert await person.texts("staff") == ["Oui, je suis là.", hello["text"]]

        # a private note is never sent to her
        assert (await anna.api("POST", f"/handoffs/{handoff}/note", {"text": "suivi jeudi"})).status_code == 200
        data = (await anna.api("GET", f"/handoffs/{handoff}")).json()
        assert [n["text"] for n in data["notes"]] == ["suivi jeudi"]
        assert "suivi jeudi" not in str(await person.messages())
        authors = [line["author"] for line in data["transcript"]]
        assert authors[0] == "user" and "bot" in authors and "staff" in authors

        # release: she is told, and the bot answers again
        assert (await anna.api("POST", f"/handoffs/{handoff}/release")).status_code == 200
        await until(lambda: _has(person, "bot", ENDED))
        await person.say("merci")
        await until(lambda: _has(person, "bot", "reply 0 to merci"))
        assert (await anna.api("GET", "/queue")).json()["waiting"] == []

    actions = [e.action for e in world.audit.recent()]
    for action in ("claim", "reply", "note", "release", "transcript_read"):
        assert action in actions, action
    details = " ".join(e.detail or "" for e in world.audit.recent())
    assert "Oui, je suis là" not in details and "suivi jeudi" not in details


async def test_close_with_an_outcome_through_the_pages(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        person = await Person(await stack.enter_async_context(world.client())).start()
        handoff = await request_for(world, person, "asso-a")
        response = await anna.http.post(f"/console/handoffs/{handoff}/claim", data={"csrf": anna.csrf})
        assert response.status_code == 303
        page = await anna.http.get(response.headers["location"])
        assert "Conversation prise en charge" in page.text and 'id="send"' in page.text
        response = await anna.http.post(f"/console/handoffs/{handoff}/close", data={"csrf": anna.csrf, "outcome": "x"})
        assert response.status_code == 422
        response = await anna.http.post(
            f"/console/handoffs/{handoff}/close", data={"csrf": anna.csrf, "outcome": "oriented"}
        )
        assert response.status_code == 303
        await until(lambda: _has(person, "bot", ENDED))
        assert world.services.desk.handoffs.get(handoff, "asso-a").state == "closed"


async def test_staff_of_one_association_never_reach_another_s_conversations(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    world.account("boris", "admin", "asso-b")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        boris = await world.console(stack, "boris")
        person = await Person(await stack.enter_async_context(world.client())).start()
        handoff = await request_for(world, person, "asso-b")
        for path in (f"/console/handoffs/{handoff}", f"/console/fragments/handoffs/{handoff}"):
            assert (await anna.http.get(path)).status_code == 404, path
        for path in (f"/handoffs/{handoff}", f"/handoffs/{handoff}/canned"):
            assert (await anna.api("GET", path)).status_code == 404, path
        for action, body in [
            ("claim", {}),
            ("takeover", {}),
            ("reply", {"text": "x"}),
            ("note", {"text": "x"}),
            ("release", {}),
            ("close", {"outcome": "other"}),
        ]:
            assert (await anna.api("POST", f"/handoffs/{handoff}/{action}", body)).status_code == 404, action
            form = {"csrf": anna.csrf, **body}
            assert (await anna.http.post(f"/console/handoffs/{handoff}/{action}", data=form)).status_code == 404
        assert (await anna.api("GET", "/queue")).json()["waiting"] == []
        assert "Demande n°" not in (await anna.http.get("/console/fragments/queue")).text
        # ... while boris, of that association, can take it; an admin of A could not either
        assert (await boris.api("POST", f"/handoffs/{handoff}/claim")).status_code == 200
        assert (await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "x"})).status_code == 404


async def test_changes_need_the_csrf_token(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        person = await Person(await stack.enter_async_context(world.client())).start()
        handoff = await request_for(world, person, "asso-a")
        response = await anna.http.post(f"/console/api/handoffs/{handoff}/claim", headers={"X-CSRF-Token": "forged"})
        assert response.status_code == 403
        response = await anna.http.post(f"/console/handoffs/{handoff}/claim", data={"csrf": "forged"})
        assert response.status_code == 403
        assert world.services.desk.handoffs.get(handoff, "asso-a").state == "requested"


async def test_what_a_person_writes_is_shown_as_text(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        person = await Person(await stack.enter_async_context(world.client())).start()
        await person.say(XSS)
        handoff = await request_for(world, person, "asso-a")
        page = (await anna.http.get(f"/console/handoffs/{handoff}")).text
        assert XSS not in page and "<script>document" not in page and "<img src=x" not in page
        assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page
        data = (await anna.api("GET", f"/handoffs/{handoff}")).json()
        assert XSS in [line["text"] for line in data["transcript"]]
        assert "content-security-policy" in (await anna.http.get("/console")).headers


async def test_only_admins_administer(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    world.account("root", "admin", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        root = await world.console(stack, "root")
        for path in ("/admin/audit", "/admin/staff", "/admin/directory"):
            assert (await anna.api("GET", path)).status_code == 403, path
            assert (await root.api("GET", path)).status_code == 200, path
        assert (await anna.http.get("/console/admin")).status_code == 403
        created = await anna.api("POST", "/admin/staff", {"username": "eve", "role": "admin", "password": PASSWORD})
        assert created.status_code == 403
        created = await root.api(
            "POST",
            "/admin/staff",
            {
                "username": "carla",
                "display_name": "Carla",
                "role": "mediator",
                "association": "asso-a",
                "password": PASSWORD,
            },
        )
        assert created.status_code == 200 and created.json()["totp_uri"].startswith("otpauth://totp/")
        too_short = await root.api(
            "POST", "/admin/staff", {"username": "dan", "role": "staff", "association": "asso-a", "password": "short"}
        )
        assert too_short.status_code == 422
        bad = await root.api("POST", "/admin/directory", {"associations": [{"slug": "x"}]})
        assert bad.status_code == 422
        page = (await root.http.get("/console/admin")).text
        assert "staff_create" in page and "carla" in page
        assert "Association ASSO-A" in page


async def _has(person: Person, author: str, text: str) -> bool:
    return text in await person.texts(author)


async def _transcript_has(console: Console, handoff: int, text: str) -> bool:
    data = (await console.api("GET", f"/handoffs/{handoff}")).json()
    return text in [line["text"] for line in data["transcript"]]


async def test_a_colleague_can_take_over_a_conversation_left_held(world: World) -> None:
    """Anna went home holding a conversation: Carla, of the same association, takes it over
    so that the person is not left with a silent bot."""
    world.account("anna", "staff", "asso-a")
    world.account("carla", "mediator", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        carla = await world.console(stack, "carla")
        person = await Person(await stack.enter_async_context(world.client())).start()
        handoff = await request_for(world, person, "asso-a")
        assert (await anna.api("POST", f"/handoffs/{handoff}/claim")).status_code == 200
        assert (await anna.api("POST", f"/handoffs/{handoff}/takeover")).status_code == 409  # hers already
        page = (await carla.http.get(f"/console/handoffs/{handoff}")).text
        assert 'id="takeover"' in page and 'id="send"' not in page
        response = await carla.http.post(f"/console/handoffs/{handoff}/takeover", data={"csrf": carla.csrf})
        assert response.status_code == 303
        assert 'id="send"' in (await carla.http.get(response.headers["location"])).text
        assert (await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "encore là"})).status_code == 409
        assert (
            await carla.api("POST", f"/handoffs/{handoff}/reply", {"text": "Je prends le relais."})
        ).status_code == 200
        await until(lambda: _has(person, "staff", "Je prends le relais."))
        assert "encore là" not in await person.texts("staff")
    events = [(e.actor, e.action, e.detail) for e in world.audit.recent() if e.action == "takeover"]
    assert events == [("carla", "takeover", "from anna")]


async def test_an_ended_request_shows_nothing_of_what_came_after(world: World) -> None:
    """A held her, released her; later she asked again and B took her. A, reopening its ended
    request, sees neither her later messages nor B's replies or notes."""
    world.account("anna", "staff", "asso-a")
    world.account("boris", "staff", "asso-b")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        boris = await world.console(stack, "boris")
        person = await Person(await stack.enter_async_context(world.client())).start()
        first = await request_for(world, person, "asso-a")
        assert (await anna.api("POST", f"/handoffs/{first}/claim")).status_code == 200
        assert (await anna.api("POST", f"/handoffs/{first}/note", {"text": "note de A"})).status_code == 200
        assert (await anna.api("POST", f"/handoffs/{first}/release")).status_code == 200
        await until(lambda: _has(person, "bot", ENDED))
        await person.say("un secret pour B seulement")
        second = await request_for(world, person, "asso-b")
        assert (await boris.api("POST", f"/handoffs/{second}/claim")).status_code == 200
        assert (await boris.api("POST", f"/handoffs/{second}/note", {"text": "note de B"})).status_code == 200
        assert (await boris.api("POST", f"/handoffs/{second}/reply", {"text": "Boris ici"})).status_code == 200
        await until(lambda: _has(person, "staff", "Boris ici"))
        seen_by_a = (await anna.api("GET", f"/handoffs/{first}")).json()
        texts = [line["text"] for line in seen_by_a["transcript"]]
        assert "un secret pour B seulement" not in texts and "Boris ici" not in texts
        assert [n["text"] for n in seen_by_a["notes"]] == ["note de A"]
        page = (await anna.http.get(f"/console/handoffs/{first}")).text
        assert "un secret pour B" not in page and "note de B" not in page
        seen_by_b = (await boris.api("GET", f"/handoffs/{second}")).json()
        assert [n["text"] for n in seen_by_b["notes"]] == ["note de B"]


async def held_by_anna(world: World, stack: contextlib.AsyncExitStack) -> Tuple[Console, Person, int]:
    """Anna (asso-a) logged in, holding the request of a person who asked on the web chat."""
    world.account("anna", "staff", "asso-a")
    anna = await world.console(stack, "anna")
    person = await Person(await stack.enter_async_context(world.client())).start()
    handoff = await request_for(world, person, "asso-a")
    assert (await anna.api("POST", f"/handoffs/{handoff}/claim")).status_code == 200
    return anna, person, handoff


async def test_a_typed_message_and_a_canned_reply_are_not_sent_together(world: World) -> None:
    async with contextlib.AsyncExitStack() as stack:
        anna, person, handoff = await held_by_anna(world, stack)
        both = await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "mon texte", "canned": "canned_hello"})
        assert both.status_code == 422
        assert await person.texts("staff") == []


async def test_logging_out_needs_the_token_and_ends_the_session(world: World) -> None:
    world.account("anna", "staff", "asso-a")
    async with contextlib.AsyncExitStack() as stack:
        anna = await world.console(stack, "anna")
        assert (await anna.http.post("/console/logout", data={"csrf": "forged"})).status_code == 403
        assert (await anna.api("GET", "/me")).status_code == 200
        response = await anna.http.post("/console/logout", data={"csrf": anna.csrf})
        assert response.status_code == 303
        assert (await anna.api("GET", "/me")).status_code == 401


async def test_in_discreet_mode_a_reply_with_a_sensitive_word_is_refused(world: World) -> None:
    async with contextlib.AsyncExitStack() as stack:
        anna, _person, handoff = await held_by_anna(world, stack)
        store = world.services.store
        ref = world.services.desk.handoffs.get(handoff, "asso-a")
        store.set_discreet(store.conversation(ref.conversation_id).contact_id, True)
        page = (await anna.http.get(f"/console/handoffs/{handoff}")).text
        assert "MODE DISCRET" in page
        text = "Bonjour, je comprends bien, voici ce que je propose : porter plainte à la police."
        refused = await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": text})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "discreet"
        assert "police" in refused.json()["error"]["message"]
        neutral = await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "Bonjour, je suis là."})
        assert neutral.status_code == 200


async def test_a_reply_that_would_show_a_sensitive_word_on_a_lock_screen_is_refused(world: World) -> None:
    async with contextlib.AsyncExitStack() as stack:
        anna, person, handoff = await held_by_anna(world, stack)
        shown = await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": "Pour la plainte à la police, voici."})
        assert shown.status_code == 422 and shown.json()["error"]["code"] == "lock_screen"
        later = "Bonjour, voici comment faire : vous pouvez porter plainte, la police doit vous écouter."
        assert (await anna.api("POST", f"/handoffs/{handoff}/reply", {"text": later})).status_code == 200
        await until(lambda: _has(person, "staff", later))
