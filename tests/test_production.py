"""The production files: the Procfile really runs the assistant (honcho, production settings,
PostgreSQL, Redis), the systemd units are valid units, the commands they name exist, and
Rasa's logging configuration keeps message texts out of its log."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from bot.redis_server import PrivateRedis, free_port
from bot.settings import PROJECT_ROOT
from tests.fake_twilio import FakeTwilio
from tests.stack import fresh_postgres, production_env, stop_group, wait_http

DEPLOY = PROJECT_ROOT / "deploy"


def _free_base() -> int:
    """A honcho base port whose lines (base + 100 x line) are all free."""
    for _ in range(50):
        base = free_port() // 100 * 100
        if base + 700 < 65000 and all(_port_free(base + 100 * line) for line in range(7)):
            return base
    raise RuntimeError("no free port range")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def procfile_run(tmp_path: Path) -> Iterator[dict]:
    twilio = FakeTwilio().start()
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    base = _free_base()
    with fresh_postgres() as database:
        from bot.migrate import upgrade

        upgrade(database)
        env = {
            **production_env(tmp_path, database, redis.url, twilio.url),
            "RASA_URL": f"http://127.0.0.1:{base + 600}",
            "OUTREACH_NLG_PORT": str(free_port()),
            "OUTREACH_SWEEP_AFTER": "5",
        }
        log = (tmp_path / "honcho.log").open("wb")
        honcho = [str(Path(sys.executable).with_name("honcho")), "-f", str(DEPLOY / "Procfile"), "-d", "."]
        process = subprocess.Popen(
            [*honcho, "start", "-p", str(base)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield {"base": base, "process": process, "log": tmp_path / "honcho.log"}
        finally:
            stop_group(process, patience=30)
            log.close()
            redis.stop()
            twilio.stop()


@pytest.mark.phase_timeout(360)
def test_the_procfile_runs_the_assistant_in_production_mode(procfile_run: dict) -> None:
    base, process = procfile_run["base"], procfile_run["process"]
    gateway = f"http://127.0.0.1:{base}"
    started = wait_http(f"{gateway}/readyz?rasa=1", 240, lambda: process.poll() is None, every=0.5)
    assert started == "ready", procfile_run["log"].read_text(errors="replace")[-3000:]
    token = httpx.post(f"{gateway}/webchat/sessions", timeout=10).json()["session"]
    sent = httpx.post(f"{gateway}/webchat/sessions/{token}/messages", json={"text": "bonjour"}, timeout=10)
    assert sent.status_code == 202
    deadline = time.monotonic() + 60
    while True:
        shown = httpx.get(f"{gateway}/webchat/sessions/{token}/messages", timeout=10).json()["messages"]
        if any(message["author"] == "bot" for message in shown):
            break
        assert time.monotonic() < deadline, "no answer through the Procfile's processes"
        time.sleep(0.5)
    # each worker serves its own metrics on its honcho port
    for line, role in ((1, "router"), (2, "sender"), (3, "housekeeping")):
        metrics = httpx.get(f"http://127.0.0.1:{base + 100 * line}/metrics", timeout=5)
        assert metrics.status_code == 200 and "outreach_" in metrics.text, role
    assert "bonjour" not in procfile_run["log"].read_text(errors="replace")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_are_valid(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the units, pointed at this checkout (they are written for
    /opt/outreach) so that it also finds the commands they start."""
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/outreach", str(PROJECT_ROOT))
        name = unit.name.replace("@.", "@8001.")
        (tmp_path / name).write_text(text)
    units = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert problems == [], problems


def test_the_commands_the_units_start_exist() -> None:
    text = "\n".join(path.read_text() for path in (DEPLOY / "systemd").iterdir())
    text += (DEPLOY / "Procfile").read_text()
    lines = [line for line in text.splitlines() if "-m bot " in line and not line.startswith("#")]
    commands = {line.split("-m bot ", 1)[1].split()[0] for line in lines}
    assert commands == {"gateway", "worker", "nlg", "actions", "purge", "rasa-endpoints"}
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "bot", command, "--help"], capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, command


def test_rasa_logs_no_message_text_with_our_logging_configuration() -> None:
    """Rasa's REST channel logs the text of a message whose processing timed out or failed;
    deploy/rasa-logging.yml (used by ./run, the Procfile, the units) silences it."""
    from rasa.utils.common import configure_logging_from_file

    rest = logging.getLogger("rasa.core.channels.rest")
    before = rest.level
    try:
        configure_logging_from_file(str(DEPLOY / "rasa-logging.yml"))
        assert not rest.isEnabledFor(logging.ERROR)
        assert not logging.getLogger("rasa.core.processor").isEnabledFor(logging.DEBUG)
    finally:
        rest.setLevel(before)
