"""The web chat API as the page, the tests and outside evaluators use it; bad input gets a
clear error and stores nothing. The workers run inside the app, with a stand-in Rasa."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, func, select
from starlette.testclient import TestClient

from bot.app import build_services, create_app
from bot.models import Message
from bot.rasa_client import RasaClient
from bot.settings import load_settings
from tests.conftest import gateway_env
from tests.fakes import FakeRasa


@pytest.fixture
def client(database_url: str, redis_clean: str, tmp_path: Path, fake_rasa: FakeRasa) -> Iterator[TestClient]:
    settings = load_settings(gateway_env(database_url, redis_clean, tmp_path, OUTREACH_SWEEP_AFTER="1"))
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    with TestClient(create_app(settings, services=services)) as test_client:
        test_client.database_url = database_url  # type: ignore[attr-defined]
        yield test_client


def count_messages(client: TestClient) -> int:
    engine = create_engine(client.database_url, future=True)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(Message)).scalar_one()
    engine.dispose()
    return int(count)


def new_session(client: TestClient) -> str:
    response = client.post("/webchat/sessions")
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    return response.json()["session"]


def wait_for_bot(client: TestClient, session: str, after: int, count: int = 1) -> list:
    deadline = time.monotonic() + 15
    seen: list = []
    while time.monotonic() < deadline and len([m for m in seen if m["author"] == "bot"]) < count:
        response = client.get(f"/webchat/sessions/{session}/messages", params={"after": after, "wait": 5})
        assert response.status_code == 200
        batch = response.json()["messages"]
        seen += batch
        if batch:
            after = batch[-1]["id"]
    return seen


def test_a_conversation_through_the_api(client: TestClient) -> None:
    session = new_session(client)
    assert len(session) >= 30
    posted = client.post(f"/webchat/sessions/{session}/messages", json={"text": "bonjour"})
    assert posted.status_code == 202
    message_id = posted.json()["id"]
    assert isinstance(message_id, int)
    messages = wait_for_bot(client, session, 0)
    assert [(m["author"], m["text"]) for m in messages] == [("user", "bonjour"), ("bot", "reply 0 to bonjour")]
    assert messages[0]["id"] == message_id and messages[1]["id"] > message_id
    assert set(messages[1]) == {"id", "author", "text", "sent_at"}
    assert messages[1]["sent_at"].endswith("Z")
    later = client.get(f"/webchat/sessions/{session}/messages", params={"after": messages[1]["id"]})
    assert later.json() == {"messages": []}


def test_long_poll_waits_for_the_answer(client: TestClient) -> None:
    session = new_session(client)
    posted = client.post(f"/webchat/sessions/{session}/messages", json={"text": "hello"}).json()["id"]
    started = time.monotonic()
    response = client.get(f"/webchat/sessions/{session}/messages", params={"after": posted, "wait": 20})
    assert time.monotonic() - started < 10  # woken by the answer, not by the timeout
    assert [m["text"] for m in response.json()["messages"]] == ["reply 0 to hello"]


def test_idempotency_key_makes_a_retry_count_once(client: TestClient, fake_rasa: FakeRasa) -> None:
    session = new_session(client)
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post(f"/webchat/sessions/{session}/messages", json={"text": "bonjour"}, headers=headers)
    second = client.post(f"/webchat/sessions/{session}/messages", json={"text": "bonjour"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    messages = wait_for_bot(client, session, 0)
    time.sleep(0.5)
    assert [m["author"] for m in messages] == ["user", "bot"]
    assert len(fake_rasa.calls) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 422, "empty"),
        ({"text": "   \n\t  "}, 422, "empty"),
        ({"text": "\x00\x01\x02"}, 422, "empty"),
        ({"text": "a" * 1601}, 422, "too_long"),
        ({"text": 12}, 422, "text_required"),
        ({"message": "bonjour"}, 422, "text_required"),
        (["bonjour"], 422, "text_required"),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_stored(client: TestClient, body, status, code) -> None:
    session = new_session(client)
    response = client.post(f"/webchat/sessions/{session}/messages", json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert count_messages(client) == 0


def test_invalid_json_oversized_body_and_bad_keys(client: TestClient) -> None:
    session = new_session(client)
    url = f"/webchat/sessions/{session}/messages"
    response = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = client.post(url, content=b'{"text": "' + b"a" * 70_000 + b'"}')
    assert response.status_code == 413
    response = client.post(url, json={"text": "ok"}, headers={"Idempotency-Key": "bad key with spaces"})
    assert response.status_code == 422
    assert count_messages(client) == 0


def test_json_nested_too_deep_is_invalid_json_not_a_crash(client: TestClient) -> None:
    """Found by tests/test_fuzz.py: json.loads raised RecursionError, a 500 (under 64 KiB)."""
    session = new_session(client)
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        response = client.post(f"/webchat/sessions/{session}/messages", content=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert count_messages(client) == 0


def test_a_lone_surrogate_is_stored_as_a_replacement_character(client: TestClient) -> None:
    """Found by tests/test_fuzz.py: JSON's "\\ud800" could not be encrypted (a 500)."""
    session = new_session(client)
    url = f"/webchat/sessions/{session}/messages"
    response = client.post(url, content=b'{"text": "a\\ud800b"}', headers={"content-type": "application/json"})
    assert response.status_code == 202
    assert client.get(url).json()["messages"][0]["text"] == "a\ufffdb"


def test_unknown_sessions_get_404(client: TestClient) -> None:
    for session in ["A" * 32, "short", "x" * 70, "../../etc"]:
        assert client.post(f"/webchat/sessions/{session}/messages", json={"text": "hi"}).status_code == 404
        assert client.get(f"/webchat/sessions/{session}/messages").status_code == 404
    assert count_messages(client) == 0


# an id over 64 bits: SQLite could not compare it (OverflowError, a 500; found by test_fuzz.py)
@pytest.mark.parametrize(
    "query",
    [{"after": "-1"}, {"wait": "31"}, {"wait": "abc"}, {"after": "1.5"}, {"after": str(2**63)}, {"after": "9" * 30}],
)
def test_bad_queries_get_422(client: TestClient, query: dict) -> None:
    session = new_session(client)
    response = client.get(f"/webchat/sessions/{session}/messages", params=query)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script>",
        "مرحبا، أحتاج مساعدة",
        "你好，我需要帮助",
        "Привет 👋🏽",
        "e\u0301te\u0301",
        "a\nb",
    ],
)
def test_any_text_comes_back_as_written(client: TestClient, text: str) -> None:
    import unicodedata

    session = new_session(client)
    client.post(f"/webchat/sessions/{session}/messages", json={"text": text})
    messages = client.get(f"/webchat/sessions/{session}/messages").json()["messages"]
    assert messages[0]["text"] == unicodedata.normalize("NFC", text)


def test_page_and_headers(client: TestClient) -> None:
    page = client.get("/chat", headers={"accept-language": "en-GB,en;q=0.8"})
    assert page.status_code == 200
    assert 'lang="en"' in page.text and "Quick exit" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "http://" not in page.text and "https://cdn" not in page.text
    french = client.get("/chat")
    assert 'lang="fr"' in french.text and "Quitter vite" in french.text
    assert client.get("/static/chat.js").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["checks"] == {"redis": "ok", "database": "ok", "rasa": "ok"}
    assert ready["rasa_servers"] == {"up": 1, "of": 1}


def test_ready_to_take_messages_while_rasa_is_down(client: TestClient, fake_rasa: FakeRasa) -> None:
    """A load balancer asks /readyz: a gateway keeps messages while Rasa is down, so it stays
    in; ?rasa=1 asks whether the service also answers (local run, benchmarks)."""
    fake_rasa.down = True
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["rasa"] == "down"
    assert ready.json()["rasa_servers"] == {"up": 0, "of": 1}
    assert client.get("/readyz?rasa=1").status_code == 503
    session = new_session(client)
    assert client.post(f"/webchat/sessions/{session}/messages", json={"text": "bonjour"}).status_code == 202


def test_a_flood_is_told_once_then_refused_with_429(
    database_url: str, redis_clean: str, tmp_path: Path, fake_rasa: FakeRasa
) -> None:
    from bot.notices import FLOOD_NOTICE

    env = gateway_env(database_url, redis_clean, tmp_path, OUTREACH_FLOOD_PER_MINUTE="2", OUTREACH_LANGUAGES="fr")
    settings = load_settings(env)
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    with TestClient(create_app(settings, services=services)) as client:
        session = new_session(client)
        statuses = [
            client.post(f"/webchat/sessions/{session}/messages", json={"text": f"m{n}"}).status_code for n in range(5)
        ]
        assert statuses == [202, 202, 202, 429, 429]
        refused = client.post(f"/webchat/sessions/{session}/messages", json={"text": "encore"})
        assert refused.json()["error"]["code"] == "too_many_messages"
        messages = wait_for_bot(client, session, 0, count=3)
        assert [m["text"] for m in messages if m["author"] == "bot"] == ["reply 0 to m0", "reply 0 to m1", FLOOD_NOTICE]
        other = new_session(client)  # another person is not slowed down
        assert client.post(f"/webchat/sessions/{other}/messages", json={"text": "bonjour"}).status_code == 202
        page = client.get("/chat?lang=fr").text
        assert 'data-flood="Vous avez envoyé beaucoup de messages' in page
