"""Database engine and sessions (SQLAlchemy 2.0-style API on the 1.4 series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

PG_OPTIONS = "-c lock_timeout=30000 -c idle_in_transaction_session_timeout=120000"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite files get WAL, foreign keys and a busy timeout, so that
    the gateway's threads and the workers can write concurrently."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # Every wait on PostgreSQL is bounded: a lock held by a stuck transaction makes a statement
    # fail (and the worker retry) instead of hanging a process in libpq, where no signal or
    # task cancellation can reach it; a transaction left idle is ended by the server.
    connect_args: dict = {"connect_timeout": 10, "options": PG_OPTIONS}
    connect_args.update(kwargs.pop("connect_args", {}))
    return create_engine(
        url, future=True, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)
