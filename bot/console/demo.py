"""Demonstration data for a local run (``./run``): the example associations and one console
account per association, so that the console can be tried at once. Never in production."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import List, Tuple

from sqlalchemy.orm import Session, sessionmaker

from bot.console.accounts import StaffStore
from bot.crypto import Vault
from bot.handoff.directory import load_directory
from bot.handoff.store import DirectoryStore
from bot.settings import PROJECT_ROOT

EXAMPLE_DIRECTORY = PROJECT_ROOT / "examples" / "associations.example.yml"
ACCOUNTS_FILE = "demo-accounts.txt"


def seed_demo(sessions: sessionmaker[Session], vault: Vault, data_dir: Path) -> Tuple[bool, List[str]]:
    """Load the example directory if the directory is empty, and create demo accounts if
    there is none; their passwords and two-factor keys go to ``<data_dir>/demo-accounts.txt``
    (mode 0600). Returns (directory seeded, usernames created)."""
    directory_store = DirectoryStore(sessions)
    seeded = False
    directory = directory_store.load()
    if not directory.associations:
        directory = load_directory(EXAMPLE_DIRECTORY)
        directory_store.replace(directory)
        seeded = True
    accounts = StaffStore(sessions, vault)
    if accounts.count():
        return seeded, []
    national = next((a.slug for a in directory.associations if a.national), directory.associations[0].slug)
    wanted = [("admin", "Admin (démo)", "admin", national)]
    wanted += [(a.slug, f"Équipe {a.slug} (démo)", "staff", a.slug) for a in directory.associations]
    lines = [
        "# Demo console accounts of this local run (example data). Log in at /console with the",
        "# username, the password and the 6-digit code: add the key to an authenticator app, or",
        "# print the current code with: .venv/bin/python -m bot console-code <username>",
        "",
    ]
    created = []
    for username, name, role, association in wanted:
        password = secrets.token_urlsafe(12)
        member, secret = accounts.create(username, name, role, association, password)
        created.append(member.username)
        lines.append(f"{member.username}\trole={role}\tassociation={association}\tpassword={password}\ttotp={secret}")
    path = data_dir / ACCOUNTS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return seeded, created
