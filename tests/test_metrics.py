"""Metrics and structured logs: a signed Twilio webhook through the gateway, the router and the
sender shows up in ``/metrics`` (and a forged one as rejected) without any phone number or
text; the bearer token; a worker's own metrics endpoint; JSON log lines without text."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_services, make_workers
from bot.cli import main as cli_main
from bot.logs import QUIET, setup_logging
from bot.metrics import Metrics
from bot.migrate import upgrade
from bot.production import run_workers
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.settings import SettingsError, load_settings
from tests.conftest import gateway_env
from tests.fakes import FakeRasa
from tests.helpers import gateway_client, running, until
from tests.test_twilio import PERSON, inbound, post, signed, twilio_env

METRICS_TOKEN = "metrics-token-0123456789"
NAME_SHE_GIVES = "Zorabelle"


def value(body: str, name: str, **labels: str) -> float:
    """The value of the first sample ``name`` whose labels include ``labels`` (0 if none)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade(url)
    return url


async def scrape(client: httpx.AsyncClient, token: Optional[str] = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_webhook_answered_is_counted_without_her_number_or_words(
    database_url, redis_clean, tmp_path, twilio, fake_rasa: FakeRasa
) -> None:
    settings = load_settings(twilio_env(database_url, redis_clean, tmp_path, twilio))
    async with gateway_client(settings, fake_rasa) as (client, services):
        hello = inbound("SMm1", f"je m'appelle {NAME_SHE_GIVES}")
        danger = inbound("SMm2", "il va me tuer")
        for params in (hello, danger):
            stored = await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
            assert stored.status_code == 200
        redelivery = await post(client, "/webhooks/twilio", hello, signed("/webhooks/twilio", hello))
        assert redelivery.status_code == 200
        forged = inbound("SMm3", f"{NAME_SHE_GIVES} again")
        assert (await post(client, "/webhooks/twilio", forged, {"X-Twilio-Signature": "forged"})).status_code == 403

        async with running(*make_workers(services, ["router", "sender"])):
            await until(lambda: len(twilio.requests) == 3, timeout=30)
            report = {"MessageSid": twilio.sids[0], "MessageStatus": "delivered", "To": PERSON}
            delivered = await post(client, "/webhooks/twilio/status", report, signed("/webhooks/twilio/status", report))
            assert delivered.status_code == 204

            async def settled() -> bool:
                body = await scrape(client)
                return value(body, "outreach_messages_out_total", channel="sms", outcome="sent") == 3 and (
                    value(body, "outreach_queue_depth", queue="outbox") == 0
                )

            await until(settled)
        body = await scrape(client)

    assert value(body, "outreach_messages_in_total", channel="sms", outcome="stored") == 2
    assert value(body, "outreach_messages_in_total", channel="sms", outcome="duplicate") == 1
    assert value(body, "outreach_messages_in_total", channel="sms", outcome="rejected") == 1
    assert value(body, "outreach_messages_out_total", channel="sms", outcome="sent") == 3
    assert value(body, "outreach_messages_out_total", channel="sms", outcome="delivered") == 1
    # the danger message is answered by the safety layer, not the model
    assert value(body, "outreach_rasa_seconds_count", outcome="ok") == 1
    assert value(body, "outreach_rasa_seconds_count", outcome="unavailable") == 0
    assert value(body, "outreach_reply_seconds_count") == 2
    assert value(body, "outreach_safety_flags_total", kind="danger") == 1
    # both notifications were read by the router (one may wait, pending, behind the lock)
    assert value(body, "outreach_queue_length", queue="inbox") == 2
    assert value(body, "outreach_queue_depth", queue="inbox") == value(body, "outreach_queue_pending", queue="inbox")
    assert value(body, "outreach_queue_pending", queue="outbox") == 0
    # no label value or sample carries anything of hers
    for secret in (PERSON, PERSON.lstrip("+"), NAME_SHE_GIVES, "tuer", "SMm1"):
        assert secret not in body


async def test_rasa_down_is_timed_as_unavailable(sqlite_url, redis_clean, tmp_path, twilio, fake_rasa) -> None:
    settings = load_settings(twilio_env(sqlite_url, redis_clean, tmp_path, twilio))
    fake_rasa.down = True
    async with gateway_client(settings, fake_rasa) as (client, services):
        params = inbound("SMr1", "bonjour")
        await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
        router = Router(
            services.store,
            services.redis,
            services.rasa,
            services.chooser,
            rasa_retry_for=0.2,
            metrics=services.metrics,
        )
        async with running(router.run):

            async def failed() -> bool:
                return value(await scrape(client), "outreach_errors_total", component="router") >= 1

            await until(failed)
        body = await scrape(client)
    assert value(body, "outreach_rasa_seconds_count", outcome="unavailable") >= 1
    assert value(body, "outreach_errors_total", component="router", kind="RasaUnavailable") >= 1
    assert value(body, "outreach_messages_out_total", channel="sms", outcome="sent") == 0


async def test_the_web_chat_counts_what_it_stores_and_refuses(sqlite_url, redis_clean, tmp_path, fake_rasa) -> None:
    settings = load_settings(gateway_env(sqlite_url, redis_clean, tmp_path))
    async with gateway_client(settings, fake_rasa) as (client, _services):
        session = (await client.post("/webchat/sessions")).json()["session"]
        path = f"/webchat/sessions/{session}/messages"
        assert (await client.post(path, json={"text": NAME_SHE_GIVES})).status_code == 202
        assert (await client.post(path, json={"nope": 1})).status_code == 422
        assert (
            await client.post("/webchat/sessions/" + "x" * 30 + "/messages", json={"text": "hi"})
        ).status_code == 404
        body = await scrape(client)
    assert value(body, "outreach_messages_in_total", channel="webchat", outcome="stored") == 1
    assert value(body, "outreach_messages_in_total", channel="webchat", outcome="invalid") == 1
    assert value(body, "outreach_messages_in_total", channel="webchat", outcome="rejected") == 1
    assert session not in body and NAME_SHE_GIVES not in body


async def test_the_metrics_token_is_required_when_set(sqlite_url, redis_clean, tmp_path, fake_rasa) -> None:
    settings = load_settings(gateway_env(sqlite_url, redis_clean, tmp_path, OUTREACH_METRICS_TOKEN=METRICS_TOKEN))
    async with gateway_client(settings, fake_rasa) as (client, _services):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert "outreach_" not in refused.text
        assert "outreach_messages_in_total" in await scrape(client, METRICS_TOKEN)
    with pytest.raises(SettingsError, match="OUTREACH_METRICS_TOKEN") as problem:
        load_settings(gateway_env(sqlite_url, redis_clean, tmp_path, OUTREACH_METRICS_TOKEN="short"))
    assert "short" not in str(problem.value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_worker_serves_its_metrics_and_health(sqlite_url, redis_clean, tmp_path, fake_rasa) -> None:
    settings = load_settings(gateway_env(sqlite_url, redis_clean, tmp_path, OUTREACH_METRICS_TOKEN=METRICS_TOKEN))
    services = build_services(settings)
    services.rasa = RasaClient("http://rasa.test", transport=fake_rasa.transport)
    port = free_port()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_workers(services, ["router", "sender"], stop, ("127.0.0.1", port)))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(healthy)
            assert (await client.get("/metrics")).status_code == 401
            body = await scrape(client, METRICS_TOKEN)
            assert value(body, "outreach_queue_depth", queue="inbox") == 0
            assert "# TYPE outreach_rasa_seconds histogram" in body and "# TYPE outreach_messages_out_total" in body
    finally:
        stop.set()
        assert await asyncio.wait_for(worker, timeout=20) == 0
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
            await client.get("/healthz")


async def test_a_worker_whose_metrics_port_is_taken_exits(sqlite_url, redis_clean, tmp_path) -> None:
    settings = load_settings(gateway_env(sqlite_url, redis_clean, tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = await asyncio.wait_for(
            run_workers(build_services(settings), ["sender"], asyncio.Event(), ("127.0.0.1", port)), timeout=20
        )
    assert code == 1


def test_labels_stay_bounded_and_the_wait_for_a_person_is_measured() -> None:
    metrics = Metrics()
    metrics.message_in(PERSON, NAME_SHE_GIVES)
    metrics.message_out("telegram", f"sent to {PERSON}")
    metrics.safety(NAME_SHE_GIVES)
    metrics.handoff("requested")
    metrics.handoff("claimed", datetime.now(timezone.utc) - timedelta(minutes=2))
    metrics.handoff_outcome("oriented")
    metrics.error("router", ValueError(f"{NAME_SHE_GIVES} {PERSON}"))
    body = metrics.render().decode()
    assert value(body, "outreach_messages_in_total", channel="other", outcome="other") == 1
    assert value(body, "outreach_messages_out_total", channel="telegram", outcome="other") == 1
    assert value(body, "outreach_safety_flags_total", kind="other") == 1
    assert value(body, "outreach_handoffs_total", event="claimed") == 1
    assert value(body, "outreach_handoff_outcomes_total", outcome="oriented") == 1
    assert value(body, "outreach_handoff_wait_seconds_count") == 1
    assert 119 < value(body, "outreach_handoff_wait_seconds_sum") < 150
    assert value(body, "outreach_errors_total", component="router", kind="ValueError") == 1
    assert NAME_SHE_GIVES not in body and PERSON.lstrip("+") not in body
    # each process has its own registry: nothing is shared between two
    assert value(Metrics().render().decode(), "outreach_handoffs_total", event="claimed") == 0


@contextlib.contextmanager
def json_logging(level: str = "INFO") -> Iterator[None]:
    """JSON logs for the duration of a test; the logging setup as it was afterwards."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    setup_logging(level, "json", "worker:router+sender")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, quiet_level in quiet.items():
            logging.getLogger(name).setLevel(quiet_level)


async def test_json_logs_are_one_object_a_line_without_text(
    sqlite_url, redis_clean, tmp_path, twilio, fake_rasa, capsys
) -> None:
    settings = load_settings(twilio_env(sqlite_url, redis_clean, tmp_path, twilio))
    twilio.prepare_error(400, 21211)  # a permanent failure: logged by the sender
    with json_logging():
        async with gateway_client(settings, fake_rasa) as (client, services):
            params = inbound("SMj1", f"je m'appelle {NAME_SHE_GIVES}")
            await post(client, "/webhooks/twilio", params, signed("/webhooks/twilio", params))
            async with running(*make_workers(services, ["router", "sender"])):
                await until(lambda: len(twilio.requests) == 1)
                await asyncio.sleep(0.3)
        try:
            raise ValueError(f"{NAME_SHE_GIVES} {PERSON}")
        except ValueError:
            logging.getLogger("bot.test").exception("a failure")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert any(entry["message"] == "send to sms failed for good (21211)" for entry in entries)
    for entry in entries:
        assert {"time", "level", "logger", "message", "role", "pid"} <= set(entry)
        assert entry["time"].endswith("+00:00") and entry["role"] == "worker:router+sender"
    [failure] = [entry for entry in entries if entry["logger"] == "bot.test"]
    assert failure["exception"] == "ValueError" and "traceback" not in failure
    for secret in (NAME_SHE_GIVES, PERSON, PERSON.lstrip("+")):
        assert all(secret not in line for line in lines)

    with json_logging("DEBUG"):  # tracebacks only when debugging
        try:
            raise KeyError("k")
        except KeyError:
            logging.getLogger("bot.test").exception("a failure")
    [debug] = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "bot.test" in line]
    assert debug["exception"] == "KeyError" and "Traceback" in debug["traceback"]


def test_an_unknown_log_format_is_a_configuration_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OUTREACH_LOG_FORMAT", "xml")
    assert cli_main(["migrate"]) == 2
    assert "OUTREACH_LOG_FORMAT must be text or json" in capsys.readouterr().err
