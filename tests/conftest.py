"""Shared fixtures: the real Redis and PostgreSQL servers of the machine (never imitations).

* Redis: ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``, flushed before each test);
  when no server answers there, a private ``redis-server`` is started for the session.
* PostgreSQL: ``TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
  the tests create a database of their own there and drop it at the end.
"""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot import redis_client
from bot.crypto import Vault
from bot.db import make_engine, make_sessionmaker
from bot.handoff.signals import Signals
from bot.i18n import Catalogs
from bot.migrate import upgrade
from bot.redis_server import PrivateRedis
from bot.settings import SUPPORTED_LANGUAGES, Keys
from bot.store import Store
from tests.fake_twilio import FakeTwilio
from tests.fakes import FakeRasa

TEST_KEYS = Keys(
    lookup_key=b"L" * 32,
    data_keys={"k1": b"D" * 32},
    current_key_id="k1",
    nlg_token="test-nlg-token-0123456789",
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def gateway_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict:
    """The environment of a gateway under test: given database and Redis, fixed test keys."""
    return {
        "OUTREACH_ENV": "test",
        "OUTREACH_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OUTREACH_LOOKUP_KEY": b64(b"l" * 32),
        "OUTREACH_DATA_KEYS": "k1:" + b64(b"d" * 32),
        "OUTREACH_NLG_TOKEN": "nlg-token-0123456789",
        **extra,
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis_sync.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url
        return
    except redis_sync.RedisError:
        pass
    private = PrivateRedis(tmp_path_factory.mktemp("redis"))
    yield private.start()
    private.stop()


@pytest.fixture
def redis_clean(redis_url: str) -> str:
    redis_sync.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    base = make_url(os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    name = f"outreach_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # a clear message instead of a stack of driver errors
        pytest.fail(f"PostgreSQL is needed at {base.render_as_string(hide_password=True)}: {error}")
    url = base.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_migrated(postgres_server_url: str) -> str:
    upgrade(postgres_server_url)
    return postgres_server_url


def _truncate_postgres(url: str) -> None:
    """Empty the tables for the next test.

    A connection an earlier test left behind (a worker thread still finishing, a transaction
    never ended) must not block TRUNCATE: libpq waits for a lock in C, where neither
    pytest-timeout's signal nor a task cancellation reaches it, and a whole CI run hangs.
    Other sessions of the test database are ended first, and the lock wait is bounded.
    """
    engine = create_engine(url, future=True, connect_args={"connect_timeout": 10})
    with engine.begin() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '20s'"))
        connection.execute(
            text(
                "TRUNCATE messages, conversations, contacts, handoffs, handoff_notes, associations, staff, "
                "audit_events, stat_counts RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: a SQLite file, then the same test on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("postgres_migrated")
    _truncate_postgres(url)
    return url


@pytest.fixture(scope="session")
def catalogs() -> Catalogs:
    """The catalogs of every served language (modules that need others define their own)."""
    return Catalogs(SUPPORTED_LANGUAGES)


@pytest.fixture(scope="session")
def signals() -> Signals:
    return Signals(SUPPORTED_LANGUAGES)


@pytest.fixture
def vault() -> Vault:
    return Vault(TEST_KEYS)


@pytest.fixture
def store(database_url: str, vault: Vault) -> Iterator[Store]:
    engine = make_engine(database_url)
    store = Store(make_sessionmaker(engine), vault)
    yield store
    store.close()
    engine.dispose()


@pytest.fixture
async def redis(redis_clean: str) -> AsyncIterator[Redis]:
    """An asyncio client of the (flushed) test Redis database."""
    client = redis_client.connect(redis_clean)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> FakeTwilio:
    fake_twilio.requests.clear()
    fake_twilio.prepared.clear()
    fake_twilio.sids.clear()
    fake_twilio.created.clear()
    fake_twilio.lookups.clear()
    fake_twilio.fail_rate = 0.0
    fake_twilio.lookups_fail = 0
    return fake_twilio


@pytest.fixture
def fake_rasa() -> FakeRasa:
    return FakeRasa()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's ``chromium``) driven by Playwright, for one test module."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is needed: apt-get install chromium (./test installs it)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
