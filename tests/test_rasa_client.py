"""Several Rasa servers behind the router: spread, failover, and what is never retried elsewhere."""

from __future__ import annotations

from collections import Counter
from typing import Dict

import httpx
import pytest

from bot.rasa_client import RasaClient, RasaUnavailable
from bot.settings import SettingsError, load_settings
from tests.fakes import FakeRasa


class Servers:
    """Fake Rasa servers by host name, on one transport."""

    def __init__(self, *hosts: str) -> None:
        self.servers: Dict[str, FakeRasa] = {host: FakeRasa() for host in hosts}
        self.timeouts: set = set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.timeouts:
            raise httpx.ReadTimeout("slow", request=request)
        return self.servers[request.url.host].handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def urls(self) -> str:
        return ",".join(f"http://{host}:5005" for host in self.servers)


async def test_conversations_spread_over_the_servers_and_each_stays_on_its_own() -> None:
    servers = Servers("rasa-a", "rasa-b")
    client = RasaClient(servers.urls(), transport=servers.transport)
    for round_ in range(3):
        for n in range(40):
            await client.send(f"conversation-{n}", f"message {round_}", {"language": "fr"})
    served = {host: Counter(call["sender"] for call in fake.calls) for host, fake in servers.servers.items()}
    assert all(10 <= sum(counter.values()) / 3 <= 30 for counter in served.values())
    assert not set(served["rasa-a"]) & set(served["rasa-b"])  # one server per conversation while both are up
    await client.close()


async def test_a_server_that_refuses_connections_is_skipped_at_once() -> None:
    servers = Servers("rasa-a", "rasa-b")
    client = RasaClient(servers.urls(), transport=servers.transport)
    servers.servers["rasa-a"].down = True
    for n in range(20):
        replies = await client.send(f"conversation-{n}", "bonjour", {"language": "fr"})
        assert replies == [{"recipient_id": f"conversation-{n}", "text": "reply 0 to bonjour"}]
    assert len(servers.servers["rasa-b"].calls) == 20
    assert await client.ready_count() == 1 and await client.ready()
    servers.servers["rasa-b"].down = True
    with pytest.raises(RasaUnavailable):
        await client.send("conversation-1", "bonjour", {})
    assert not await client.ready()
    await client.close()


async def test_a_timeout_is_not_sent_to_another_server() -> None:
    """The slow server may have taken the message into the tracker: sending it to the other
    one would count it twice. The router retries the whole message later instead."""
    servers = Servers("rasa-a", "rasa-b")
    client = RasaClient(servers.urls(), transport=servers.transport)
    servers.timeouts = {"rasa-a", "rasa-b"}
    with pytest.raises(RasaUnavailable):
        await client.send("conversation-1", "bonjour", {})
    assert servers.servers["rasa-a"].calls == [] and servers.servers["rasa-b"].calls == []
    await client.close()


def test_rasa_url_lists_several_servers(tmp_path) -> None:
    settings = load_settings(
        {"OUTREACH_DATA_DIR": str(tmp_path), "RASA_URL": " http://rasa-1:5005/ , http://rasa-2:5005"}
    )
    assert RasaClient(settings.rasa_url).urls == ["http://rasa-1:5005", "http://rasa-2:5005"]
    with pytest.raises(SettingsError, match="RASA_URL"):
        load_settings({"OUTREACH_DATA_DIR": str(tmp_path), "RASA_URL": "http://rasa-1:5005,rasa-2:5005"})
