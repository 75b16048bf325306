"""bot/nlg.py: the NLG endpoint Rasa calls, through its HTTP interface."""

from __future__ import annotations

import json
import logging
import shutil
from typing import Any, Dict, Iterator, Optional

import pytest
from starlette.testclient import TestClient

from bot.i18n import TRANSLATIONS_DIR, Catalogs
from bot.nlg import create_nlg_app

TOKEN = "nlg-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "SECRET TEXT"


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> Catalogs:
    target = tmp_path_factory.mktemp("nlg") / "translations"
    shutil.copytree(TRANSLATIONS_DIR, target)
    return Catalogs(["fr", "en"], translations_dir=target)


@pytest.fixture
def client(catalogs: Catalogs, caplog: pytest.LogCaptureFixture) -> Iterator[TestClient]:
    caplog.set_level(logging.DEBUG)
    with TestClient(create_nlg_app(catalogs, TOKEN, "fr")) as test_client:
        yield test_client
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in str(record.args)


def rasa_body(response: Any = "utter_menu", metadata: Optional[Dict[str, Any]] = None, **extra: Any) -> Dict[str, Any]:
    latest: Dict[str, Any] = {"text": SECRET, "intent": {"name": "greet"}, "entities": []}
    if metadata is not None:
        latest["metadata"] = metadata
    body: Dict[str, Any] = {
        "response": response,
        "arguments": {},
        "tracker": {
            "sender_id": "x",
            "slots": {"topic": None, "menu": "main"},
            "latest_message": latest,
            "events": [{"event": "user", "text": SECRET}],
        },
        "channel": {"name": "rest"},
    }
    body.update(extra)
    return body


def expected(text: str, response: str) -> Dict[str, Any]:
    """The text, and the response's name for the router's statistics (bot/statistics.py)."""
    custom = {"response": response}
    return {"text": text, "buttons": [], "image": None, "elements": [], "attachments": [], "custom": custom}


# --- authorisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": ""},
    ],
)
def test_without_the_token_the_request_is_forbidden(client: TestClient, headers: Dict[str, str]) -> None:
    response = client.post("/nlg", json=rasa_body(metadata={"language": "en"}), headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden"}
    for part in (SECRET, "utter_menu", "rest", TOKEN, "wrong-token", "Bonjour", "Hello"):
        assert part not in response.text


def test_forbidden_even_with_invalid_json(client: TestClient) -> None:
    response = client.post("/nlg", content=b"{not json " + SECRET.encode())
    assert response.status_code == 403
    assert SECRET not in response.text


# --- rendering -----------------------------------------------------------------------------


def test_english_menu(client: TestClient, catalogs: Catalogs) -> None:
    response = client.post("/nlg", json=rasa_body(metadata={"language": "en"}), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render("utter_menu", "en"), "utter_menu")
    assert response.json()["text"].startswith("Hello. This is a free and anonymous information service.")
    assert SECRET not in response.text


def test_without_metadata_the_answer_is_french(client: TestClient, catalogs: Catalogs) -> None:
    response = client.post("/nlg", json=rasa_body(), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render("utter_menu", "fr"), "utter_menu")
    assert response.json()["text"].startswith("Bonjour. Ici, un service d'information gratuit et anonyme.")


@pytest.mark.parametrize(
    "metadata", [{"language": "xx"}, {"language": None}, {"language": ["en"]}, {"language": "EN"}, {}, {"lang": "en"}]
)
def test_unserved_language_gives_french(client: TestClient, catalogs: Catalogs, metadata: Dict[str, Any]) -> None:
    response = client.post("/nlg", json=rasa_body(metadata=metadata), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render("utter_menu", "fr"), "utter_menu")


@pytest.mark.parametrize(
    "tracker", [None, {}, "not a tracker", {"latest_message": None}, {"latest_message": {"metadata": "en"}}]
)
def test_odd_tracker_gives_french(client: TestClient, catalogs: Catalogs, tracker: Any) -> None:
    response = client.post("/nlg", json={"response": "utter_danger", "tracker": tracker}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render("utter_danger", "fr"), "utter_danger")


def test_unknown_response_gives_the_default_answer(client: TestClient, catalogs: Catalogs) -> None:
    response = client.post("/nlg", json=rasa_body("utter_does_not_exist", metadata={"language": "en"}), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render("utter_default", "en"), "utter_default")
    response = client.post("/nlg", json=rasa_body("utter_does_not_exist"), headers=AUTH)
    assert response.json() == expected(catalogs.render("utter_default", "fr"), "utter_default")


@pytest.mark.parametrize("name", ["utter_shelter", "utter_minor", "utter_invalid_option"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_other_responses(client: TestClient, catalogs: Catalogs, name: str, language: str) -> None:
    response = client.post("/nlg", json=rasa_body(name, metadata={"language": language}), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == expected(catalogs.render(name, language), name)


# --- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"{not json", b"", SECRET.encode(), b"\xff\xfe" + SECRET.encode()])
def test_invalid_json_is_400(client: TestClient, content: bytes) -> None:
    response = client.post("/nlg", content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid JSON"}
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in rasa_body().items() if k != "response"},
        rasa_body(response=None),
        rasa_body(response=42),
        rasa_body(response=["utter_menu"]),
        [rasa_body()],
        None,
        SECRET,
    ],
)
def test_missing_response_name_is_422(client: TestClient, body: Any) -> None:
    response = client.post("/nlg", content=json.dumps(body).encode(), headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {"error": "a response name is required"}
    assert SECRET not in response.text


def test_too_large_body_is_413(client: TestClient) -> None:
    response = client.post("/nlg", content=b"{" + b" " * 2_000_001 + b"}", headers=AUTH)
    assert response.status_code == 413
    assert response.json() == {"error": "request too large"}


def test_only_post(client: TestClient) -> None:
    assert client.get("/nlg", headers=AUTH).status_code == 405


def test_health(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_secret_text_never_in_logs_or_answers(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    bodies = [
        rasa_body(metadata={"language": "en"}),
        rasa_body("utter_does_not_exist"),
        rasa_body(response=None),
    ]
    for body in bodies:
        for headers in (AUTH, {}):
            response = client.post("/nlg", json=body, headers=headers)
            assert SECRET not in response.text
    assert SECRET not in caplog.text
    # The unknown response was logged (so the log check above saw something).
    assert "utter_does_not_exist" in caplog.text
