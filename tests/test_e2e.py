"""End to end: the real run command (private Redis, Rasa server, action server, gateway) and
a person talking to it through the web chat API, in French and English, as people write.

Each answer is compared with the catalog text the person must get, in her language.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import httpx
import pytest

from bot.i18n import Catalogs
from bot.rasa_setup import model_path
from bot.redis_server import free_port
from bot.safety_texts import OFFER_PERSON
from bot.settings import PROJECT_ROOT
from tests.fake_twilio import FakeTwilio
from tests.stack import stop_group, wait_http

pytestmark = pytest.mark.e2e

TWILIO_PUBLIC = "https://bot.example.test"
TWILIO_ACCOUNT = "AC" + "0" * 32
TWILIO_TOKEN = "e2e-twilio-auth-token-0123456789"
TWILIO_NUMBER = "+33700000000"


class Person:
    """Someone using the web chat: posts a text, reads the answers."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=40)
        self.session = self.http.post("/webchat/sessions").json()["session"]
        self.last = 0

    def say(self, text: str, expected_answers: int = 1) -> List[str]:
        posted = self.http.post(f"/webchat/sessions/{self.session}/messages", json={"text": text})
        assert posted.status_code == 202, posted.text
        mine = posted.json()["id"]
        answers: List[str] = []
        deadline = time.monotonic() + 60
        while len(answers) < expected_answers and time.monotonic() < deadline:
            response = self.http.get(
                f"/webchat/sessions/{self.session}/messages", params={"after": self.last, "wait": 20}
            )
            for message in response.json()["messages"]:
                self.last = max(self.last, message["id"])
                if message["author"] == "bot" and message["id"] > mine:
                    answers.append(message["text"])
        return answers


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_twilio: FakeTwilio) -> Iterator[dict]:
    if not model_path().exists():
        pytest.fail("no trained model: run `python -m bot setup` first (./test does)")
    data_dir = tmp_path_factory.mktemp("e2e")
    port, nlg_port, rasa_port, action_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        "OUTREACH_ENV": "local",
        "OUTREACH_DATA_DIR": str(data_dir),
        "OUTREACH_PORT": str(port),
        "OUTREACH_NLG_PORT": str(nlg_port),
        "OUTREACH_EXIT_URL": "about:blank",
        "PYTHONPATH": str(PROJECT_ROOT),
        # SMS through the real twilio client, to the local fake of Twilio's API
        "OUTREACH_PUBLIC_URL": TWILIO_PUBLIC,
        "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": TWILIO_NUMBER,
        "TWILIO_API_BASE": fake_twilio.url,
    }
    output = (data_dir / "run-output.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--rasa-port", str(rasa_port), "--action-port", str(action_port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    if wait_http(f"{base_url}/readyz?rasa=1", 180, lambda: process.poll() is None, every=0.5) != "ready":
        output.close()
        log = (data_dir / "run-output.log").read_text(errors="replace")[-4000:]
        pytest.fail(f"the assistant did not start:\n{log}")
    yield {"url": base_url, "data_dir": data_dir}
    stop_group(process, signal.SIGINT, patience=30)
    output.close()


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    from bot.settings import SUPPORTED_LANGUAGES

    return Catalogs(SUPPORTED_LANGUAGES)


def test_bonjour_gets_the_french_menu_and_hello_the_english_one(stack: dict, catalogs: Catalogs) -> None:
    assert Person(stack["url"]).say("bonjour") == [catalogs.render("utter_menu", "fr")]
    assert Person(stack["url"]).say("hello") == [catalogs.render("utter_menu", "en")]


TOPICS = [
    # (what the person writes, the answer she must get, its language)
    ("slt", "utter_menu", "fr"),
    ("c quoi mes droits ici", "utter_rights_menu", "fr"),
    ("est ce que c illegal de vendre du sexe en france", "utter_law", "fr"),
    ("la police peut m arreter ?", "utter_police", "fr"),
    ("je veux porter plainte contre mon proxenete", "utter_complaint", "fr"),
    ("jveux faire un test vih gratuit", "utter_testing", "fr"),
    ("le preservatif a craque hier soir", "utter_exposure", "fr"),
    ("c koi la prep", "utter_prep", "fr"),
    ("pilule du lendemain svp", "utter_emergency_contraception", "fr"),
    ("jai pas de carte vitale comment me soigner", "utter_care_no_coverage", "fr"),
    ("je veux arreter la prostitution", "utter_exit_pathway", "fr"),
    ("jai pas de papiers", "utter_papers", "fr"),
    ("je dors dehors ce soir", "utter_shelter", "fr"),
    ("il va me frapper au secours", "utter_danger", "fr"),
    ("jai 15 ans", "utter_minor", "fr"),
    ("merci bcp", "utter_thanks", "fr"),
    ("is it illegal to sell sex in france", "utter_law", "en"),
    ("can police arrest me", "utter_police", "en"),
    ("where i fit do hiv test free", "utter_testing", "en"),
    ("the condom broke last night", "utter_exposure", "en"),
    ("i want to leave this work abeg help me", "utter_exit_pathway", "en"),
    ("i no get papers", "utter_papers", "en"),
    ("i have nowhere to sleep tonight", "utter_shelter", "en"),
    ("help he is beating me now", "utter_danger", "en"),
    ("im 16 years old", "utter_minor", "en"),
    ("how much money will I get during the program", "utter_afis", "en"),
]


def expected_answer(catalogs: Catalogs, response: str, language: str) -> List[str]:
    """What she gets: the response; for danger, the safety layer's offer of a person after it."""
    expected = [catalogs.render(response, language)]
    if response == "utter_danger":
        expected.append(catalogs.translate(language, "safety_offer_person", OFFER_PERSON))
    return expected


@pytest.mark.parametrize(("text", "response", "language"), TOPICS)
def test_each_topic_is_answered_in_the_persons_language(
    stack: dict, catalogs: Catalogs, text: str, response: str, language: str
) -> None:
    assert Person(stack["url"]).say(text) == expected_answer(catalogs, response, language)


def test_numbered_menu_and_more_work_like_by_sms(stack: dict, catalogs: Catalogs) -> None:
    person = Person(stack["url"])
    assert person.say("bjr") == [catalogs.render("utter_menu", "fr")]
    assert person.say("2") == [catalogs.render("utter_health_menu", "fr")]
    assert person.say("2") == [catalogs.render("utter_exposure", "fr")]
    assert person.say("plus") == [catalogs.render("utter_exposure_more", "fr")]
    assert person.say("0") == [catalogs.render("utter_menu", "fr")]
    assert person.say("1") == [catalogs.render("utter_rights_menu", "fr")]
    assert person.say("9") == [catalogs.render("utter_invalid_option", "fr")]
    assert person.say("3") == [catalogs.render("utter_complaint", "fr")]


def test_a_person_who_switches_language_is_followed(stack: dict, catalogs: Catalogs) -> None:
    person = Person(stack["url"])
    assert person.say("bonjour") == [catalogs.render("utter_menu", "fr")]
    assert person.say("sorry I speak english, I need a place to sleep tonight") == [
        catalogs.render("utter_shelter", "en")
    ]
    assert person.say("more") == [catalogs.render("utter_shelter_more", "en")]
    [answer] = person.say("ok")  # too short to tell a language: the conversation stays in English
    english = {catalogs.render(name, "en") for name in catalogs.sources}
    french = {catalogs.render(name, "fr") for name in catalogs.sources}
    assert answer in english and answer not in french


def test_nothing_personal_in_any_log(stack: dict) -> None:
    secret = "je m appelle Zorabelle et mon numero est 0612345678"
    person = Person(stack["url"])
    person.say(secret)
    person.say("<b>Zorabelle</b> ecrit encore")
    logs = list(Path(stack["data_dir"]).rglob("*.log"))
    assert any(path.name == "rasa.log" for path in logs)
    for path in logs:
        content = path.read_text(errors="replace")
        assert "Zorabelle" not in content, path.name
        assert "0612345678" not in content, path.name
        assert person.session not in content, path.name


def test_the_chat_page_in_a_browser(stack: dict, browser: object, catalogs: Catalogs) -> None:
    page = browser.new_page(locale="fr-FR")  # type: ignore[attr-defined]
    errors: List[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack['url']}/chat")
    assert page.get_attribute("html", "lang") == "fr"
    page.fill("#text", "bonjour")
    page.press("#text", "Enter")
    bot = page.locator("#log li.bot")
    bot.first.wait_for(timeout=30_000)
    assert bot.first.locator("span").nth(1).inner_text() == catalogs.render("utter_menu", "fr")
    # a person's HTML is shown as text, never run
    payload = '<img src=x onerror="window.pwned=1"><b>gras</b>'
    page.fill("#text", payload)
    page.click("form button")
    page.locator("#log li.user").nth(1).wait_for()
    assert page.locator("#log li.user").nth(1).locator("span").nth(1).inner_text() == payload
    assert page.locator("#log img").count() == 0 and page.locator("#log b").count() == 0
    assert page.evaluate("window.pwned === undefined")
    bot.nth(1).wait_for(timeout=30_000)
    # reloading keeps the conversation of this tab
    page.reload()
    page.locator("#log li.bot").nth(1).wait_for(timeout=30_000)
    assert page.locator("#log li.user").count() == 2
    # quick exit: leaves for the neutral page, forgets the session, replaces the history entry
    history_before = page.evaluate("history.length")
    page.click("#exit")
    page.wait_for_url("about:blank")
    assert page.evaluate("history.length") == history_before
    assert page.evaluate("sessionStorage.getItem('chat-session')") is None
    assert errors == []
    page.close()


def test_the_chat_page_in_english(stack: dict, browser: object, catalogs: Catalogs) -> None:
    page = browser.new_page(locale="en-GB", extra_http_headers={"Accept-Language": "en-GB,en;q=0.9"})  # type: ignore[attr-defined]
    page.goto(f"{stack['url']}/chat")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("#exit") == "Quick exit"
    page.fill("#text", "hello")
    page.press("#text", "Enter")
    page.locator("#log li.bot").first.wait_for(timeout=30_000)
    assert page.locator("#log li.bot span").nth(1).inner_text() == catalogs.render("utter_menu", "en")
    page.close()


def test_the_terminal_chat(stack: dict, catalogs: Catalogs) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--url", stack["url"]],
        input="bonjour\n2\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert catalogs.render("utter_menu", "fr") in done.stdout
    assert catalogs.render("utter_health_menu", "fr") in done.stdout


def _held_out(language: str, intents: tuple) -> List[tuple]:
    """(text, expected response) of the first held-out test story of each intent."""
    import yaml

    stories = yaml.safe_load((PROJECT_ROOT / "tests" / "stories" / f"test_{language}.yml").read_text())
    found = {}
    for story in stories["stories"]:
        user, action = story["steps"][0], story["steps"][1]
        if user.get("intent") in intents and user["intent"] not in found:
            found[user["intent"]] = (user["user"].strip(), action["action"])
    return [found[intent] for intent in intents if intent in found]


LANGUAGES = ("fr", "en", "es", "pt", "ro", "bg", "zh", "ru", "uk", "ar")
E2E_INTENTS = ("ask_shelter", "danger", "minor", "ask_testing", "ask_papers", "ask_exit_pathway")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_is_understood_and_answered_in_it(stack: dict, catalogs: Catalogs, language: str) -> None:
    cases = _held_out(language, E2E_INTENTS)
    assert len(cases) == len(E2E_INTENTS)
    wrong = []
    for text, response in cases:
        answer = Person(stack["url"]).say(text)  # a first message: the language is detected
        if answer != expected_answer(catalogs, response, language):
            wrong.append((text, response, answer[0][:60] if answer else None))
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_asking_for_a_person_is_understood_in_every_language(stack: dict, catalogs: Catalogs, language: str) -> None:
    """Held-out ways of asking for a person (plain words or the model): the département question
    comes back, in her language (the example associations serve particular départements)."""
    import yaml

    from bot.handoff.texts import ASK_DEPARTEMENT

    stories = yaml.safe_load((PROJECT_ROOT / "tests" / "stories" / f"test_{language}.yml").read_text())
    asks = [s["steps"][0]["user"].strip() for s in stories["stories"] if s["steps"][0].get("intent") == "ask_human"]
    assert len(asks) >= 8
    expected = catalogs.translate(language, "handoff_ask_departement", ASK_DEPARTEMENT)
    wrong = [(text, answer) for text in asks[:4] if (answer := Person(stack["url"]).say(text)) != [expected]]
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_menu_by_numbers_and_more_in_every_language(stack: dict, catalogs: Catalogs, language: str) -> None:
    import yaml

    person = Person(stack["url"])
    [greeting] = [t for t, r in _held_out(language, ("greet",))]
    assert person.say(greeting) == [catalogs.render("utter_menu", language)]
    assert person.say("5") == [catalogs.render("utter_shelter", language)]
    more_examples = yaml.safe_load((PROJECT_ROOT / "nlu_data" / language / "nlu.yml").read_text())
    more_word = next(
        line.strip()[2:]
        for block in more_examples["nlu"]
        if block.get("intent") == "more"
        for line in block["examples"].splitlines()
        if line.strip()
    )
    assert person.say(more_word) == [catalogs.render("utter_shelter_more", language)]


# --- the staff console, in a browser, with a person texting by SMS ----------------------------


class Texter:
    """A person on a basic phone: her SMS reach the gateway as signed Twilio webhooks, the
    answers are what the real twilio client sent to the fake Twilio API."""

    def __init__(self, base_url: str, twilio: FakeTwilio, number: str) -> None:
        self.base_url = base_url
        self.twilio = twilio
        self.number = number
        self.sent = 0

    def text(self, body: str) -> None:
        from twilio.request_validator import RequestValidator

        self.sent += 1
        params = {
            "MessageSid": f"SM{self.number[-6:]}{self.sent:026d}",
            "AccountSid": TWILIO_ACCOUNT,
            "From": self.number,
            "To": TWILIO_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{TWILIO_PUBLIC}/webhooks/twilio", params)
        response = httpx.post(
            f"{self.base_url}/webhooks/twilio", data=params, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200, response.text

    def received(self) -> List[str]:
        return [r["form"]["Body"] for r in list(self.twilio.requests) if r["form"].get("To") == self.number]

    def wait_for(self, expected: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while expected not in self.received():
            assert time.monotonic() < deadline, f"not received: {expected[:60]!r}; got {self.received()}"
            time.sleep(0.2)


def _demo_account(data_dir: Path, username: str) -> dict:
    for line in (data_dir / "demo-accounts.txt").read_text().splitlines():
        if line.startswith(f"{username}\t"):
            return dict(field.split("=", 1) for field in line.split("\t")[1:])
    raise AssertionError(f"no demo account {username}")


def test_the_console_in_a_browser(stack: dict, browser: object, catalogs: Catalogs, fake_twilio: FakeTwilio) -> None:
    """Log in with a two-factor code, see a request arrive live, claim it, reply (the SMS goes
    out through Twilio), see her answer live, release: the bot answers her again."""
    from datetime import datetime, timezone

    from bot.console.accounts import current_code
    from bot.handoff.desk import HandoffDesk
    from bot.handoff.directory import load_directory
    from bot.handoff.routing import route
    from bot.handoff.texts import ASK_DEPARTEMENT, CLAIMED, ENDED, REQUESTED_CLOSED, REQUESTED_OPEN

    # where département 75 goes right now (Paris when open, else its fallback if open, else
    # Paris, which answers when it opens): that association's demo account is the one to use
    directory = load_directory(PROJECT_ROOT / "examples" / "associations.example.yml")
    decision = route(directory, "75", "fr", datetime.now(timezone.utc))
    chosen = decision.association
    assert chosen is not None and chosen.slug in {"exemple-paris", "exemple-national"}
    account = _demo_account(stack["data_dir"], chosen.slug)
    page = browser.new_page(locale="fr-FR")  # type: ignore[attr-defined]
    errors: List[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack['url']}/console")
    assert page.url.endswith("/console/login")
    page.fill("#username", chosen.slug)
    page.fill("#password", account["password"])
    page.fill("#code", current_code(account["totp"]))
    page.click("form.login button")
    page.wait_for_url(f"{stack['url']}/console")
    assert page.locator("#queue li.request").count() == 0

    person = Texter(stack["url"], fake_twilio, "+33611223344")
    person.text("je veux parler a quelqu un svp")
    person.wait_for(catalogs.translate("fr", "handoff_ask_departement", ASK_DEPARTEMENT))
    person.text("75")
    # the request appears in the open console, without a reload, with an alert
    page.locator("#queue li.request").first.wait_for(timeout=30_000)
    assert page.locator("#alert").is_visible()
    if decision.open_now:
        expected = REQUESTED_OPEN.replace("{association}", chosen.name)
    else:
        assert decision.opens_at is not None
        day, hour = HandoffDesk.when(decision.opens_at, "fr")
        expected = REQUESTED_CLOSED.replace("{association}", chosen.name).replace("{day}", day).replace("{time}", hour)
    person.wait_for(expected)

    page.click("#queue li.request a")
    page.wait_for_selector("#claim")
    transcript = page.locator("#transcript li.line")
    assert transcript.first.locator(".text").inner_text() == "je veux parler a quelqu un svp"
    page.click("#claim")
    page.wait_for_selector("#reply-text")
    person.wait_for(CLAIMED.replace("{association}", chosen.name))

    page.fill("#reply-text", "Bonjour, je suis Anna. Je vous lis.")
    page.click("#send")
    person.wait_for("Bonjour, je suis Anna. Je vous lis.")

    # her answer appears live; her HTML stays text
    payload = '<img src=x onerror="window.pwned=1">merci <b>beaucoup</b>'
    person.text(payload)
    page.locator("#transcript li.user .text", has_text="merci").wait_for(timeout=30_000)
    assert page.locator("#transcript li.user .text").last.inner_text() == payload
    assert page.locator("#transcript img").count() == 0 and page.locator("#transcript b").count() == 0
    assert page.evaluate("window.pwned === undefined")

    # a canned reply shows its text in her language before it is sent
    page.select_option("#canned", "canned_goodbye")
    assert page.locator("#canned-preview").is_visible()

    page.click("#release")
    person.wait_for(catalogs.translate("fr", "handoff_ended", ENDED))
    person.text("bonjour")
    person.wait_for(catalogs.render("utter_menu", "fr"))
    # while Anna held the conversation the bot said nothing: her "merci" got no answer of its own
    assert catalogs.render("utter_thanks", "fr") not in person.received()
    assert errors == []
    page.close()
    # nothing of the conversation, her number, the password or the code reached any log
    for path in Path(stack["data_dir"]).rglob("*.log"):
        content = path.read_text(errors="replace")
        for secret in (
            "quelqu un svp",
            "je suis Anna",
            "merci <b>",
            person.number,
            person.number[1:],
            account["password"],
        ):
            assert secret not in content, (path.name, secret)
