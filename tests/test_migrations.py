"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
