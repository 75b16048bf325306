"""The gateway: an app factory building the web chat, the workers and their services.

``create_app(settings)`` builds everything from its arguments (no globals, no work at import
time). The router and sender workers run inside the app for a local run
(``run_workers=True``) or as their own processes in production (``bot.cli worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, List, MutableMapping, Optional, Sequence

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot import redis_client
from bot.association_keys import AssociationKeys
from bot.channels.telegram import telegram_routes
from bot.channels.twilio_sms import twilio_routes
from bot.channels.webchat import WebChatChannel, webchat_routes
from bot.console.routes import console_routes
from bot.crypto import Vault
from bot.db import make_engine, make_sessionmaker
from bot.discreet import Discretion
from bot.erasure import ErasurePurger
from bot.guard import DiscreetTexts, Guard
from bot.handoff.alerts import HandoffAlerts
from bot.handoff.desk import HandoffDesk
from bot.handoff.signals import Signals
from bot.handoff.states import HandoffStore
from bot.handoff.store import DirectoryStore
from bot.i18n import Catalogs
from bot.language import LanguageChooser
from bot.language_menu import LanguageMenu
from bot.lease import Lease
from bot.metrics import Metrics, metrics_route
from bot.queues import Notifier
from bot.rasa_client import RasaClient
from bot.ratelimit import FloodGuard, Limit
from bot.router import Router
from bot.safety import Safety
from bot.sender import Sender
from bot.settings import PROJECT_ROOT, Settings, with_local_keys
from bot.store import Store
from bot.tasks import stop as stop_tasks
from bot.webchat_page import pick_language, render_page

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: Store
    redis: Redis
    notifier: Notifier
    catalogs: Catalogs
    chooser: LanguageChooser
    rasa: RasaClient
    flood: FloodGuard
    desk: HandoffDesk
    metrics: Metrics = field(default_factory=Metrics)  # one per process

    def close_sync(self) -> None:
        self.store.close()
        self.engine.dispose()


def build_services(settings: Settings, catalogs: Optional[Catalogs] = None) -> Services:
    """Create the clients a gateway or worker needs (nothing connects yet)."""
    settings = with_local_keys(settings)
    assert settings.keys is not None and settings.redis_url is not None
    engine = make_engine(settings.database_url)
    store = Store(make_sessionmaker(engine), Vault(settings.keys))
    redis = redis_client.connect(settings.redis_url)
    catalogs = catalogs or Catalogs(settings.languages, settings.serve_drafts)
    metrics = Metrics()
    sessions = store.sessions
    desk = HandoffDesk(
        store,
        HandoffStore(sessions, store.vault, AssociationKeys(sessions, store.vault)),
        DirectoryStore(sessions),
        redis,
        catalogs,
        Signals(settings.languages),
        discretion=Discretion(settings.languages),
        metrics=metrics,
    )
    return Services(
        settings=settings,
        engine=engine,
        store=store,
        redis=redis,
        notifier=Notifier(redis, metrics),
        catalogs=catalogs,
        chooser=LanguageChooser(settings.languages, settings.default_language),
        rasa=RasaClient(settings.rasa_url, timeout=settings.rasa_timeout),
        flood=FloodGuard(redis, flood_limits(settings), metrics),
        desk=desk,
        metrics=metrics,
    )


def flood_limits(settings: Settings) -> List[Limit]:
    limits = [Limit(settings.flood_per_minute, 60), Limit(settings.flood_per_hour, 3600)]
    return [limit for limit in limits if limit.count > 0]


WORKER_ROLES = ("router", "sender", "housekeeping")


def make_workers(
    services: Services, roles: Sequence[str] = WORKER_ROLES
) -> List[Callable[[], Coroutine[Any, Any, None]]]:
    """The workers of the given roles: ``router`` (safety, desk, Rasa, replies queued),
    ``sender`` (replies to the providers), ``housekeeping`` (unclaimed-request alerts, the
    erasure stubs' purge, Telegram long polling). Any number of processes may run each role."""
    unknown = set(roles) - set(WORKER_ROLES)
    if unknown:
        raise ValueError(f"unknown worker roles: {sorted(unknown)}")
    settings = services.settings
    workers: List[Callable[[], Coroutine[Any, Any, None]]] = []
    discretion = Discretion(settings.languages)
    if "router" in roles:
        router = Router(
            services.store,
            services.redis,
            services.rasa,
            services.chooser,
            concurrency=settings.router_concurrency,
            sweep_after=settings.sweep_after_seconds,
            language_menu=LanguageMenu(settings.languages),
            catalogs=services.catalogs,
            desk=services.desk,
            guard=Guard(
                Safety(settings.languages),
                services.redis,
                services.catalogs,
                services.desk,
                discretion,
                metrics=services.metrics,
            ),
            metrics=services.metrics,
        )
        workers.append(router.run)
    if "housekeeping" in roles:  # one process at a time runs these, however many are started
        pieces: List[Callable[[], Coroutine[Any, Any, None]]] = [
            HandoffAlerts(services.desk, settings.handoff_alert_after_seconds).run,
            ErasurePurger(services.store, metrics=services.metrics).run,
        ]
        if settings.telegram is not None and settings.telegram.mode == "polling":
            from bot.channels.telegram import TelegramPoller

            pieces.append(TelegramPoller(services).run)
        workers.append(functools.partial(Lease(services.redis, "housekeeping").run, pieces))
    if "sender" in roles:
        channels: dict = {"webchat": WebChatChannel()}
        if settings.twilio is not None and settings.public_url:
            from bot.channels.twilio_sms import TwilioChannel

            channels["sms"] = channels["whatsapp"] = TwilioChannel(settings.twilio, settings.public_url, services.store)
        if settings.telegram is not None:
            from bot.channels.telegram import TelegramChannel

            channels["telegram"] = TelegramChannel(settings.telegram, services.store)
        sender = Sender(
            services.store,
            services.redis,
            channels,
            discreet_text=DiscreetTexts(discretion, services.catalogs),
            sweep_after=settings.sweep_after_seconds,
            sending_for=settings.sending_timeout_seconds,
            metrics=services.metrics,
        )
        workers.append(sender.run)
    return workers


async def _bounded(step: Awaitable[Any], name: str, seconds: float = 5.0) -> None:
    """One shutdown step, which may not hold up the others: after ``seconds`` it is cancelled
    and left behind (``asyncio.wait_for`` would wait for a step that ignores its cancellation)."""
    task = asyncio.ensure_future(step)
    done, _pending = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("shutdown: %s did not stop within %.0f s", name, seconds)
        return
    problem = task.exception() if not task.cancelled() else None
    if problem is not None:
        log.warning("shutdown: %s failed (%s)", name, type(problem).__name__)


class SecurityHeaders:
    """Pure ASGI middleware: strict headers on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings, *, run_workers: bool = True, services: Optional[Services] = None) -> Starlette:
    """Build the gateway app. Workers start with the app when ``run_workers``."""
    services = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if run_workers:  # the router detects languages; a gateway alone never does
            await asyncio.get_running_loop().run_in_executor(None, services.chooser.warm_up)
        await services.notifier.start()
        workers = [asyncio.create_task(worker()) for worker in make_workers(services)] if run_workers else []
        try:
            yield
        finally:
            if not await stop_tasks(workers, patience=10.0):
                log.warning("shutdown: workers did not stop within 10 s")
            await _bounded(services.notifier.stop(), "notifier")
            await _bounded(services.rasa.close(), "Rasa client")
            await _bounded(services.redis.close(), "Redis client")
            services.close_sync()

    async def chat_page(request: Request) -> Response:
        language = pick_language(
            request.query_params.get("lang", ""),
            request.headers.get("accept-language", ""),
            services.settings.languages,
            services.settings.default_language,
        )
        page = render_page(services.catalogs, language, services.settings.exit_url, services.settings.max_text_length)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def root(_request: Request) -> Response:
        return RedirectResponse("/chat")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = {}
        try:
            await services.redis.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "down"
        try:

            def _ping() -> None:
                with services.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))

            await services.store.run(_ping)
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "down"
        # Messages are taken and kept while every Rasa server is down (they wait), so Rasa counts
        # only when asked (?rasa=1: "does it answer?", for a local run or a benchmark), never
        # for a load balancer's check, which would refuse messages it could keep.
        up = await services.rasa.ready_count()
        checks["rasa"] = "ok" if up else "down"
        gating = {name: value for name, value in checks.items() if name != "rasa" or request.query_params.get("rasa")}
        ready = all(value == "ok" for value in gating.values())
        body = {"ready": ready, "checks": checks, "rasa_servers": {"up": up, "of": len(services.rasa.urls)}}
        return JSONResponse(body, status_code=200 if ready else 503)

    telegram_webhook = services.settings.telegram is not None and services.settings.telegram.mode == "webhook"
    routes = [
        Route("/", root),
        Route("/chat", chat_page),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        # Prometheus, for the internal network only (a bearer token if OUTREACH_METRICS_TOKEN)
        metrics_route(services.metrics, services.redis, services.settings.metrics_token),
        *webchat_routes(services),
        *(twilio_routes(services) if services.settings.twilio is not None else []),
        *(telegram_routes(services) if telegram_webhook else []),
        *console_routes(services),
        Mount("/static", StaticFiles(directory=str(PROJECT_ROOT / "bot" / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    app.add_middleware(SecurityHeaders)
    return app
