"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy import table as table_clause

from bot.migrate import downgrade, upgrade
from bot.models import Base

TABLES = {
    "alembic_version",
    "contacts",
    "conversations",
    "messages",
    "associations",
    "handoffs",
    "staff",
    "handoff_notes",
    "audit_events",
    "association_keys",
    "stat_counts",
}


def tables(connection) -> set:
    return set(inspect(connection).get_table_names()) - {"sqlite_sequence"}  # of AUTOINCREMENT


def _check(url: str) -> None:
    upgrade(url)
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        assert tables(connection) == TABLES
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, kind, _parent: name != "sqlite_sequence"}
        )
        diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    downgrade(url, "base")
    with engine.connect() as connection:
        assert tables(connection) == {"alembic_version"}
    upgrade(url)  # and back up again
    with engine.connect() as connection:
        assert tables(connection) == TABLES
    engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migrations_on_postgres(postgres_server_url: str) -> None:
    _check(postgres_server_url)


COUNTED = ("contacts", "conversations", "messages", "handoffs", "handoff_notes")
ROWS_AT_0006 = [
    "INSERT INTO contacts (id, channel, lookup_key, created_at, last_seen_at) VALUES (1, 'sms', 'k', :now, :now)",
    "INSERT INTO conversations (id, public_id, contact_id, state, created_at, last_message_at)"
    " VALUES (1, 'p', 1, 'bot', :now, :now)",
    "INSERT INTO messages (id, conversation_id, direction, author, channel, body_enc, key_id, kind, status, attempts,"
    " created_at) VALUES (1, 1, 'in', 'user', 'sms', :blob, 'k1', 'text', 'done', 0, :now)",
    "INSERT INTO handoffs (id, conversation_id, association, state, language, urgent, minor, alerts, requested_at)"
    " VALUES (1, 1, 'a', 'requested', 'fr', false, false, 0, :now)",
    "INSERT INTO handoff_notes (id, handoff_id, author, body_enc, key_id, created_at)"
    " VALUES (1, 1, 'x', :blob, 'k1', :now)",
]


def _rows(url: str) -> dict:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(select(func.count()).select_from(table_clause(table))).scalar_one()
            for table in COUNTED
        }
    engine.dispose()
    return counts


def _fill_at_0006(url: str) -> None:
    upgrade(url, "0006")
    engine = create_engine(url, future=True)
    with engine.begin() as connection:
        for statement in ROWS_AT_0006:
            connection.execute(text(statement), {"now": datetime(2026, 12, 1, 10, tzinfo=timezone.utc), "blob": b"\0"})
    engine.dispose()


def test_upgrading_keeps_every_row_on_sqlite(tmp_path: Path) -> None:
    """SQLite rebuilds tables to alter them: with foreign keys on, that used to delete, by
    cascade, every conversation, message, request and note of a live database."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    _fill_at_0006(url)
    upgrade(url)
    assert _rows(url) == dict.fromkeys(COUNTED, 1)


@pytest.mark.postgres
def test_upgrading_keeps_every_row_on_postgres(postgres_server_url: str) -> None:
    downgrade(postgres_server_url, "base")
    _fill_at_0006(postgres_server_url)
    upgrade(postgres_server_url)
    assert _rows(postgres_server_url) == {
        "contacts": 1,
        "conversations": 1,
        "messages": 1,
        "handoffs": 1,
        "handoff_notes": 1,
    }
    downgrade(postgres_server_url, "base")
    upgrade(postgres_server_url)
