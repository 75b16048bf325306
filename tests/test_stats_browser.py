"""The statistics dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright):
an admin logs in with a two-factor code, sees the charts (inline SVG, under the console's
strict content security policy: no error, no blocked resource), a hidden cell shown as such,
downloads a table as CSV; the summary page prints. The gateway runs in-process (uvicorn in a
thread) on SQLite and the test Redis; the month's figures are counted through the recording
API, a demo month as ``python -m bot stats demo`` counts it."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List

import pytest
import uvicorn

from bot.app import build_services, create_app
from bot.console.accounts import StaffStore, current_code
from bot.migrate import upgrade
from bot.redis_server import free_port
from bot.settings import load_settings
from bot.statistics import Count, Statistics, weeks_of_month
from bot.stats_demo import record_month
from tests.conftest import gateway_env
from tests.stack import wait_http

PASSWORD = "correct horse battery staple"
NOW = datetime.now(timezone.utc)
MONTH = f"{NOW:%Y-%m}"


@pytest.fixture
def gateway(tmp_path: Path, redis_clean: str) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    upgrade(url)
    settings = load_settings(gateway_env(url, redis_clean, tmp_path))
    services = build_services(settings)
    _member, secret = StaffStore(services.store.sessions, services.store.vault).create(
        "root", "Root", "admin", None, PASSWORD
    )
    statistics = Statistics(services.store.sessions)
    record_month(statistics, NOW.year, NOW.month, conversations=120)
    first_week = weeks_of_month(NOW.year, NOW.month)[0]
    thursday = datetime.strptime(first_week + "-4", "%G-W%V-%u").replace(hour=12, tzinfo=timezone.utc)
    statistics.record([Count("flag", value="minor")], thursday)  # at least one small cell to hide
    app = create_app(settings, services=services, run_workers=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    assert wait_http(f"{base}/healthz", 30, every=0.1) == "ready", "the gateway did not start"
    yield {"url": base, "secret": secret, "downloads": tmp_path}
    server.should_exit = True
    thread.join(timeout=15)


def test_the_dashboard_in_a_browser(gateway: dict, browser: object) -> None:
    page = browser.new_page(locale="fr-FR", accept_downloads=True)  # type: ignore[attr-defined]
    problems: List[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    failed: List[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.goto(f"{gateway['url']}/console/stats")
    assert page.url.endswith("/console/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.fill("#code", current_code(gateway["secret"]))
    page.click("form.login button")
    page.wait_for_url(f"{gateway['url']}/console")
    page.click("text=Statistiques")
    page.wait_for_selector("#stat-topics")
    assert page.title().startswith("Statistiques")

    # the month is chosen in a form; the charts are drawn, with bars of some width
    page.fill("#month", MONTH)
    page.click("form.period button")
    page.wait_for_url(f"**/console/stats?month={MONTH}")
    charts = page.locator("#stat-conversations_language svg.bars")
    assert charts.count() == 2
    widths = page.eval_on_selector_all(
        "#stat-conversations_language svg.bars g.bar:not(.hidden) rect", "rs => rs.map(r => r.getBBox().width)"
    )
    assert widths and max(widths) > 100
    # a hidden cell: "s" in the table, a marked box of fixed size in the chart (no number)
    masked = page.locator("#table-flags td.masked")
    assert masked.count() >= 2 and masked.first.inner_text() == "s"
    hidden_bars = page.locator("#stat-flags g.bar.hidden")
    for index in range(hidden_bars.count()):
        assert hidden_bars.nth(index).get_attribute("data-value") == "s"

    with page.expect_download() as waiting:
        page.click("#stat-flags a.csv")
    download = waiting.value
    assert download.suggested_filename == f"statistiques-flags-{MONTH}.csv"
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    lines = text.strip().split("\r\n")
    assert lines[0] == "semaine,danger,minorité,total"
    assert ",s," in text or text.count(",s") >= 2

    page.click("#summary-link")
    page.wait_for_selector("dl.keys")
    page.emulate_media(media="print")
    assert not page.locator(".noprint").is_visible()
    assert page.locator("#stat-topics svg.bars").count() == 1
    # a browser asks for /favicon.ico by itself (there is none); nothing else may fail or be blocked
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    # (Chromium reports the favicon's 404 as a console error without its address)
    assert [p for p in problems if not p.startswith("Failed to load resource") or "404" not in p] == []
    page.close()
