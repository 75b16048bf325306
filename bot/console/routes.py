"""The staff console: server-rendered pages under ``/console``, a JSON API under
``/console/api/``, and live events (server-sent events) from Redis pub/sub.

Every route checks the session (HTML: to the login page; API: 401), every change checks the
session's CSRF token (403), and every handoff is looked up within the staff member's own
association: another association's handoff is "not found" (404), on every route. Texts a person
wrote are rendered by Jinja with autoescaping (pages) or sent as JSON (API): never as HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.console.accounts import ROLES, AccountError, StaffMember, StaffStore, provisioning_uri
from bot.console.audit import AuditLog
from bot.console.sessions import LoginLimiter, Sessions
from bot.console.stats_view import charts_of, month_asked, month_label, name_of
from bot.disclosure import SPEC_BY_KEY, TOTAL, Table, month_tables, to_csv
from bot.handoff.desk import console_channel
from bot.handoff.directory import DirectoryError, parse_directory
from bot.handoff.states import CLAIMED, OUTCOMES, REQUESTED, HandoffRef
from bot.handoff.store import DirectoryStore
from bot.handoff.texts import CANNED
from bot.models import utcnow
from bot.settings import PROJECT_ROOT
from bot.statistics import Statistics, week_monday, weeks_of_month
from bot.store import transcript

PARIS = ZoneInfo("Europe/Paris")
COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
TEMPLATES = PROJECT_ROOT / "bot" / "console" / "templates"
MAX_REPLY = 1600
MAX_NOTE = 4000
MAX_FORM = 256 * 1024
READ_COALESCE_S = 300  # reads of one transcript by one person within 5 minutes: one audit event
LANGUAGE_NAMES = {
    "fr": "français",
    "en": "anglais",
    "es": "espagnol",
    "pt": "portugais (Brésil)",
    "ro": "roumain",
    "bg": "bulgare",
    "zh": "chinois",
    "ru": "russe",
    "uk": "ukrainien",
    "ar": "arabe",
}
OUTCOME_NAMES = {
    "answered": "Réponse donnée",
    "oriented": "Orientée vers un service",
    "accompanied": "Accompagnement proposé",
    "no_reply": "Plus de réponse",
    "not_relevant": "Hors sujet",
    "other": "Autre",
}
# what a page says after an action (the address names a key, never a text of its own)
DONE = {
    "claimed": "Conversation prise en charge : le bot se tait.",
    "taken_over": "Vous avez repris la conversation : c'est vous qui répondez maintenant.",
    "sent": "Message envoyé.",
    "noted": "Note enregistrée.",
    "released": "Conversation rendue au bot.",
    "closed": "Conversation clôturée.",
    "directory": "Annuaire enregistré.",
    "account": "Compte mis à jour.",
}
STATE_NAMES = {
    "requested": "en attente",
    "claimed": "prise en charge",
    "released": "rendue au bot",
    "closed": "clôturée",
    "cancelled": "annulée par la personne",
    "erased": "effacée à la demande de la personne",
}


class ConsoleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Visit:
    """An authenticated request: who, and the session's CSRF token."""

    staff: StaffMember
    csrf: str
    token: str


def _minutes_since(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return max(0, int((utcnow() - aware).total_seconds() // 60))


def _handoff_json(ref: HandoffRef) -> Dict[str, Any]:
    return {
        "id": ref.id,
        "state": ref.state,
        "language": ref.language,
        "departement": ref.departement,
        "urgent": ref.urgent,
        "minor": ref.minor,
        "claimed_by": ref.claimed_by,
        "waiting_minutes": _minutes_since(ref.requested_at),
    }


def console_routes(services: Any) -> list:
    """Routes of the console, bound to the gateway's services."""
    settings = services.settings
    store = services.store
    desk = services.desk
    redis = services.redis
    catalogs = services.catalogs
    accounts = StaffStore(store.sessions, store.vault)
    audit = AuditLog(store.sessions)
    sessions = Sessions(redis, settings.console_session_hours)
    limiter = LoginLimiter(redis)
    login_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="login")
    directory_store = DirectoryStore(store.sessions)
    secure_cookies = settings.production  # local and test runs are served over http on loopback
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        enable_async=False,
    )
    env.globals.update(
        LANGUAGE_NAMES=LANGUAGE_NAMES, OUTCOME_NAMES=OUTCOME_NAMES, STATE_NAMES=STATE_NAMES, OUTCOMES=OUTCOMES
    )

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def set_cookie(response: Response, name: str, value: str, max_age: Optional[int]) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/console", httponly=True, samesite="strict", secure=secure_cookies
        )

    async def visit(request: Request) -> Optional[Visit]:
        token = request.cookies.get(COOKIE)
        session = await sessions.get(token)
        if session is None or token is None:
            return None
        staff = await store.run(accounts.get, session.staff_id)
        if staff is None or not staff.active:
            await sessions.close(token)
            return None
        return Visit(staff, session.csrf, token)

    async def form_of(request: Request) -> Dict[str, str]:
        if int(request.headers.get("content-length") or 0) > MAX_FORM:
            raise ConsoleError(413, "too_large", "La requête est trop grande.")
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    async def json_of(request: Request) -> Dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_FORM:
            raise ConsoleError(413, "too_large", "The request is too large.")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ConsoleError(400, "invalid_json", "The request body must be JSON.") from None
        if not isinstance(body, dict):
            raise ConsoleError(422, "invalid_body", "The request body must be a JSON object.")
        return body

    def check_csrf(current: Visit, given: Optional[str]) -> None:
        if not given or not secrets.compare_digest(given, current.csrf):
            raise ConsoleError(403, "csrf", "Jeton de sécurité manquant ou périmé : rechargez la page.")

    def require_admin(current: Visit) -> None:
        if not current.staff.admin:
            raise ConsoleError(403, "forbidden", "Réservé aux administrateurs.")

    async def handoff_of(current: Visit, handoff_id: str) -> HandoffRef:
        try:
            number = int(handoff_id)
        except ValueError:
            raise ConsoleError(404, "not_found", "Cette conversation n'existe pas.") from None
        association = current.staff.association
        ref = await store.run(desk.handoffs.get, number, association) if association else None
        if ref is None:
            raise ConsoleError(404, "not_found", "Cette conversation n'existe pas.")
        return ref

    async def record(
        current: Visit, action: str, ref: Optional[HandoffRef] = None, detail: Optional[str] = None
    ) -> None:
        association = ref.association if ref is not None else current.staff.association
        await store.run(audit.record, current.staff.username, action, association, ref.id if ref else None, detail)

    async def record_read(current: Visit, ref: HandoffRef) -> None:
        key = f"outreach:console:read:{current.staff.id}:{ref.id}"
        if await redis.set(key, "1", nx=True, ex=READ_COALESCE_S):
            await record(current, "transcript_read", ref)

    async def association_names() -> Dict[str, str]:
        directory = await store.run(directory_store.load)
        return {a.slug: a.name for a in directory.associations}

    # -- actions shared by the pages and the API ------------------------------------------

    def canned_for(language: str) -> List[Dict[str, Any]]:
        """Replies a staff member can send, in the person's language, from the catalogs."""
        items = []
        for name, source in CANNED.items():
            items.append(
                {
                    "name": name,
                    "french": source,
                    "text": catalogs.translate(language, name, source),
                    "reviewed": catalogs.reviewed(language, name, source),
                }
            )
        for name, source in sorted(catalogs.sources.items()):
            items.append(
                {
                    "name": name,
                    "french": source,
                    "text": catalogs.render(name, language),
                    "reviewed": catalogs.reviewed(language, name, source),
                }
            )
        return items

    async def act(current: Visit, ref: HandoffRef, action: str, params: Dict[str, Any]) -> str:
        """Do ``action`` on a handoff; returns what was done (a key of ``DONE``)."""
        staff = current.staff.username
        if action == "claim":
            if ref.state != REQUESTED:
                raise ConsoleError(409, "not_waiting", "Cette demande n'est plus en attente.")
            names = await association_names()
            if not await desk.claim(ref, staff, names.get(ref.association, ref.association)):
                raise ConsoleError(409, "taken", "Quelqu'un a pris cette demande avant vous.")
            await record(current, "claim", ref)
            return "claimed"
        if action == "takeover":
            if ref.state != CLAIMED or ref.claimed_by == staff:
                raise ConsoleError(409, "not_held", "Cette conversation n'est pas tenue par une autre personne.")
            if not await desk.take_over(ref, staff):
                raise ConsoleError(409, "moved", "La conversation a changé entre-temps : rechargez.")
            await record(current, "takeover", ref, f"from {ref.claimed_by}")
            return "taken_over"
        if action == "reply":
            text = str(params.get("text") or "").strip()
            canned = str(params.get("canned") or "").strip()
            if text and canned:
                raise ConsoleError(422, "both", "Envoyez soit votre message, soit une réponse type, pas les deux.")
            if canned:
                known = {item["name"]: item for item in canned_for(ref.language)}
                if canned not in known:
                    raise ConsoleError(422, "unknown_canned", "Réponse type inconnue.")
                text = known[canned]["text"]
            if not text:
                raise ConsoleError(422, "empty", "Le message est vide.")
            if len(text) > MAX_REPLY:
                raise ConsoleError(422, "too_long", f"Le message dépasse {MAX_REPLY} caractères.")
            if ref.state != CLAIMED or ref.claimed_by != staff:
                raise ConsoleError(409, "not_yours", "Prenez d'abord la conversation en charge.")
            shown = desk.opening_problem(text)
            if shown:
                words = ", ".join(f"« {word} »" for word in shown)
                advice = f"Un écran verrouillé montrerait {words} : commencez le message autrement."
                raise ConsoleError(422, "lock_screen", advice)
            sensitive = await desk.discreet_problem(ref, text)
            if sensitive:
                words = ", ".join(f"« {word} »" for word in sensitive)
                advice = f"Mode discret (son téléphone peut être lu) : retirez {words}, ou une réponse type."
                raise ConsoleError(422, "discreet", advice)
            if await desk.reply(ref, staff, text) is None:
                raise ConsoleError(409, "not_yours", "Prenez d'abord la conversation en charge.")
            await record(current, "reply", ref, f"canned:{canned}" if canned else "free text")
            return "sent"
        if action == "note":
            text = str(params.get("text") or "").strip()
            if not text or len(text) > MAX_NOTE:
                raise ConsoleError(422, "invalid_note", f"Une note a de 1 à {MAX_NOTE} caractères.")
            await store.run(desk.handoffs.add_note, ref.id, staff, text)
            await record(current, "note", ref)
            await desk.publish(ref.association, "note", ref.id)
            return "noted"
        if action in {"release", "close"}:
            if ref.state != CLAIMED or ref.claimed_by != staff:
                raise ConsoleError(409, "not_yours", "Seule la personne qui a pris la conversation peut la terminer.")
            if action == "release":
                done = await desk.release(ref, staff)
                message = "released"
            else:
                outcome = str(params.get("outcome") or "")
                if outcome not in OUTCOMES:
                    raise ConsoleError(422, "invalid_outcome", "Choisissez une issue.")
                done = await desk.close(ref, staff, outcome)
                message = "closed"
            if not done:
                raise ConsoleError(409, "not_yours", "La conversation a changé entre-temps : rechargez.")
            await record(current, action, ref, str(params.get("outcome") or "") or None)
            return message
        raise ConsoleError(404, "unknown_action", "Action inconnue.")

    async def conversation_data(ref: HandoffRef) -> Dict[str, Any]:
        conversation = await store.run(store.conversation, ref.conversation_id)
        lines = await store.run(transcript, store.sessions, store.vault, ref.conversation_id, ref.ended_at)
        notes = await store.run(desk.handoffs.notes, ref.id)
        return {
            "handoff": _handoff_json(ref),
            "channel": conversation.channel if conversation else None,
            "discreet": bool(conversation and conversation.discreet),
            "transcript": [
                {
                    "id": line.id,
                    "author": line.author,
                    "kind": line.kind,
                    "text": line.text,
                    "status": line.status,
                    "at": line.at.isoformat(),
                    "shown_at": line.at.astimezone(PARIS).strftime("%d/%m %H:%M"),
                }
                for line in lines
            ],
            "notes": [{"author": n.author, "text": n.text, "at": n.at.isoformat()} for n in notes],
        }

    # -- authentication -------------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        if await visit(request) is not None:
            return RedirectResponse("/console", status_code=303)
        token = secrets.token_urlsafe(24)
        response = page("login.html", csrf=token, error=None)
        set_cookie(response, LOGIN_COOKIE, token, 1800)
        return response

    async def login(request: Request) -> Response:
        try:
            form = await form_of(request)
        except ConsoleError as problem:
            return page("login.html", status=problem.status, csrf="", error=problem.message)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        given = form.get("csrf", "")
        fresh = secrets.token_urlsafe(24)

        def again(status: int, error: str) -> Response:
            response = page("login.html", status=status, csrf=fresh, error=error)
            set_cookie(response, LOGIN_COOKIE, fresh, 1800)
            return response

        if not expected or not secrets.compare_digest(expected, given):
            return again(403, "La page de connexion a expiré : réessayez.")
        username = form.get("username", "")[:64]
        client = request.client.host if request.client else "unknown"
        if await limiter.blocked(username, client):
            return again(429, "Trop de tentatives. Attendez 15 minutes avant de réessayer.")
        await limiter.attempt(username, client)
        # argon2 takes memory and time: logins have threads of their own, never the message path's
        staff = await asyncio.get_running_loop().run_in_executor(
            login_threads,
            accounts.authenticate,
            username,
            form.get("password", "")[:1024],
            form.get("code", "")[:12],
        )
        if staff is None:
            known = await store.run(accounts.by_username, username.strip().lower())
            await store.run(
                audit.record, known.username if known else "?", "login_failed", known.association if known else None
            )
            return again(401, "Identifiant, mot de passe ou code incorrect.")
        await limiter.succeeded(username, client)
        token = await sessions.open(staff.id)
        await store.run(audit.record, staff.username, "login", staff.association)
        response = RedirectResponse("/console", status_code=303)
        set_cookie(response, COOKIE, token, settings.console_session_hours * 3600)
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    async def logout(request: Request) -> Response:
        current = await visit(request)
        if current is not None:
            form = await form_of(request)
            try:
                check_csrf(current, form.get("csrf"))
            except ConsoleError as problem:
                return page(
                    "error.html", status=problem.status, message=problem.message, me=current.staff, csrf=current.csrf
                )
            await sessions.close(current.token)
            await record(current, "logout")
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # -- pages ----------------------------------------------------------------------------

    def html_route(
        handler: Callable[[Request, Visit], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            current = await visit(request)
            if current is None:
                if request.method == "GET" and not request.url.path.startswith("/console/fragments"):
                    return RedirectResponse("/console/login", status_code=303)
                return page("error.html", status=401, message="Votre session a expiré : reconnectez-vous.", me=None)
            try:
                return await handler(request, current)
            except ConsoleError as problem:
                return page(
                    "error.html", status=problem.status, message=problem.message, me=current.staff, csrf=current.csrf
                )

        return endpoint

    async def queue_values(current: Visit) -> Dict[str, Any]:
        association = current.staff.association
        waiting = await store.run(desk.handoffs.queue, association) if association else []
        ended = await store.run(desk.handoffs.recent, association) if association else []
        return {
            "waiting": [_handoff_json(ref) for ref in waiting],
            "ended": [_handoff_json(ref) for ref in ended],
            "me": current.staff,
        }

    async def queue_page(request: Request, current: Visit) -> Response:
        names = await association_names()
        return page(
            "queue.html",
            csrf=current.csrf,
            association_name=names.get(current.staff.association or "", ""),
            **await queue_values(current),
        )

    async def queue_fragment(request: Request, current: Visit) -> Response:
        return page("_queue.html", **await queue_values(current))

    async def conversation_page(request: Request, current: Visit) -> Response:
        ref = await handoff_of(current, request.path_params["handoff"])
        await record_read(current, ref)
        data = await conversation_data(ref)
        return page(
            "conversation.html",
            csrf=current.csrf,
            me=current.staff,
            ref=ref,
            data=data,
            canned=canned_for(ref.language),
            flash=DONE.get(request.query_params.get("done", ""), ""),
        )

    async def transcript_fragment(request: Request, current: Visit) -> Response:
        ref = await handoff_of(current, request.path_params["handoff"])
        await record_read(current, ref)
        return page("_transcript.html", me=current.staff, ref=ref, data=await conversation_data(ref))

    async def action_form(request: Request, current: Visit) -> Response:
        ref = await handoff_of(current, request.path_params["handoff"])
        form = await form_of(request)
        check_csrf(current, form.get("csrf"))
        message = await act(current, ref, request.path_params["action"], form)
        return RedirectResponse(f"/console/handoffs/{ref.id}?done={message}", status_code=303)

    # -- administration -------------------------------------------------------------------

    async def admin_page(request: Request, current: Visit, created: Optional[Dict[str, str]] = None) -> Response:
        require_admin(current)
        directory = await store.run(directory_store.load)
        return page(
            "admin.html",
            csrf=current.csrf,
            me=current.staff,
            associations=directory.associations,
            staff=await store.run(accounts.all),
            events=await store.run(audit.recent, 200),
            roles=ROLES,
            created=created,
            flash=DONE.get(request.query_params.get("done", ""), ""),
        )

    async def admin_page_get(request: Request, current: Visit) -> Response:
        return await admin_page(request, current)

    async def import_directory(current: Visit, entries: Any) -> str:
        if not isinstance(entries, list):
            raise ConsoleError(422, "invalid_directory", "Il faut une liste sous « associations: ».")
        try:
            directory = parse_directory(entries)
        except DirectoryError as problem:
            raise ConsoleError(422, "invalid_directory", str(problem)) from None
        added, changed, removed = await store.run(directory_store.replace, directory)
        summary = (
            f"added {','.join(added) or '-'}; changed {','.join(changed) or '-'}; removed {','.join(removed) or '-'}"
        )
        await record(current, "directory_import", None, summary)
        return "directory"

    async def admin_directory_form(request: Request, current: Visit) -> Response:
        require_admin(current)
        form = await form_of(request)
        check_csrf(current, form.get("csrf"))
        try:
            data = yaml.safe_load(form.get("directory", "")) or {}
        except yaml.YAMLError:
            raise ConsoleError(422, "invalid_yaml", "Ce texte n'est pas du YAML valide.") from None
        entries = data.get("associations") if isinstance(data, dict) else None
        message = await import_directory(current, entries)
        return RedirectResponse(f"/console/admin?done={message}", status_code=303)

    async def create_staff(current: Visit, values: Dict[str, Any]) -> Tuple[StaffMember, str]:
        try:
            member, secret = await store.run(
                accounts.create,
                str(values.get("username") or ""),
                str(values.get("display_name") or ""),
                str(values.get("role") or ""),
                str(values.get("association") or "") or None,
                str(values.get("password") or ""),
            )
        except AccountError as problem:
            raise ConsoleError(422, "invalid_account", str(problem)) from None
        await record(current, "staff_create", None, f"{member.username} ({member.role}, {member.association or '-'})")
        return member, secret

    async def admin_staff_form(request: Request, current: Visit) -> Response:
        require_admin(current)
        form = await form_of(request)
        check_csrf(current, form.get("csrf"))
        member, secret = await create_staff(current, form)
        created = {"username": member.username, "secret": secret, "uri": provisioning_uri(member.username, secret)}
        return await admin_page(request, current, created=created)

    async def admin_staff_active_form(request: Request, current: Visit) -> Response:
        require_admin(current)
        form = await form_of(request)
        check_csrf(current, form.get("csrf"))
        staff_id = int(request.path_params["staff"])
        active = form.get("active") == "1"
        if staff_id == current.staff.id and not active:
            raise ConsoleError(422, "self", "Vous ne pouvez pas désactiver votre propre compte.")
        if not await store.run(accounts.set_active, staff_id, active):
            raise ConsoleError(404, "not_found", "Compte inconnu.")
        member = await store.run(accounts.get, staff_id)
        await record(current, "staff_enable" if active else "staff_disable", None, member.username if member else None)
        return RedirectResponse("/console/admin?done=account", status_code=303)

    # -- statistics (admins; protected tables only, bot/disclosure.py) --------------------

    statistics = Statistics(store.sessions)
    threshold = settings.stats_threshold

    def row_name(row: str) -> str:
        if len(row) == 8 and "-W" in row:
            return f"{row} (lundi {week_monday(row):%d/%m})"
        return name_of(row, LANGUAGE_NAMES)

    def col_name(column: str) -> str:
        return name_of(column, LANGUAGE_NAMES)

    async def stats_month(request: Request, current: Visit) -> Tuple[int, int, List[Table]]:
        require_admin(current)
        year, month = month_asked(request.query_params.get("month"))
        tables = await store.run(month_tables, statistics, year, month, threshold)
        return year, month, tables

    def stats_values(year: int, month: int, tables: List[Table]) -> Dict[str, Any]:
        return {
            "month": f"{year}-{month:02d}",
            "month_label": month_label(year, month),
            "threshold": threshold,
            "tables": tables,
            "charts": {t.spec.key: charts_of(t, LANGUAGE_NAMES) for t in tables},
            "row_name": row_name,
            "col_name": col_name,
            "weeks": weeks_of_month(year, month),
        }

    async def stats_page(request: Request, current: Visit) -> Response:
        year, month, tables = await stats_month(request, current)
        await record(current, "stats_view", None, f"dashboard {year}-{month:02d}")  # never a figure
        return page("stats.html", csrf=current.csrf, me=current.staff, **stats_values(year, month, tables))

    async def stats_csv(request: Request, current: Visit) -> Response:
        key = request.path_params["table"]
        if key not in SPEC_BY_KEY:
            raise ConsoleError(404, "not_found", "Ce tableau n'existe pas.")
        year, month, tables = await stats_month(request, current)
        table = next(t for t in tables if t.spec.key == key)
        body = to_csv(table, {r: row_name(r) for r in table.rows}, {c: col_name(c) for c in table.columns})
        await record(current, "stats_csv", None, f"{key} {year}-{month:02d}")
        filename = f"statistiques-{key}-{year}-{month:02d}.csv"
        return Response(
            "\ufeff" + body,  # a BOM: spreadsheets then read the accents right
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )

    async def stats_summary(request: Request, current: Visit) -> Response:
        year, month, tables = await stats_month(request, current)
        by_key = {t.spec.key: t for t in tables}

        def cell(key: str, column: str = TOTAL) -> str:
            return by_key[key].shown(TOTAL, column)

        key_figures = [
            ("Conversations commencées", cell("conversations_language")),
            ("Messages reçus", cell("messages_in")),
            ("Messages envoyés", cell("messages_out")),
            ("Demandes de parler à une personne", cell("handoff_requests")),
            ("Questions sur le parcours de sortie", cell("topics", "exit_pathway")),
            ("Questions sur le titre de séjour", cell("topics", "papers")),
            ("Signalements de danger", cell("flags", "danger")),
            ("Signalements de minorité", cell("flags", "minor")),
        ]
        await record(current, "stats_summary", None, f"{year}-{month:02d}")
        return page(
            "stats_summary.html",
            key_figures=key_figures,
            produced=datetime.now(PARIS).strftime("%d/%m/%Y"),
            **stats_values(year, month, tables),
        )

    # -- JSON API -------------------------------------------------------------------------

    def api_route(handler: Callable[[Request, Visit], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            current = await visit(request)
            if current is None:
                return JSONResponse({"error": {"code": "unauthenticated", "message": "Log in first."}}, status_code=401)
            try:
                if request.method != "GET":
                    check_csrf(current, request.headers.get("x-csrf-token"))
                result = await handler(request, current)
            except ConsoleError as problem:
                return JSONResponse(
                    {"error": {"code": problem.code, "message": problem.message}}, status_code=problem.status
                )
            return JSONResponse(result, headers={"Cache-Control": "no-store"})

        return endpoint

    async def api_me(request: Request, current: Visit) -> Any:
        staff = current.staff
        return {
            "username": staff.username,
            "display_name": staff.display_name,
            "role": staff.role,
            "association": staff.association,
            "csrf": current.csrf,
        }

    async def api_queue(request: Request, current: Visit) -> Any:
        values = await queue_values(current)
        return {"waiting": values["waiting"], "ended": values["ended"]}

    async def api_handoff(request: Request, current: Visit) -> Any:
        ref = await handoff_of(current, request.path_params["handoff"])
        await record_read(current, ref)
        return await conversation_data(ref)

    async def api_canned(request: Request, current: Visit) -> Any:
        ref = await handoff_of(current, request.path_params["handoff"])
        return {"language": ref.language, "replies": canned_for(ref.language)}

    async def api_action(request: Request, current: Visit) -> Any:
        ref = await handoff_of(current, request.path_params["handoff"])
        body = await json_of(request)
        done = await act(current, ref, request.path_params["action"], body)
        ref = await handoff_of(current, str(ref.id))
        return {"ok": True, "message": DONE[done], "handoff": _handoff_json(ref)}

    async def api_audit(request: Request, current: Visit) -> Any:
        require_admin(current)
        events = await store.run(audit.recent, 500)
        return {"events": [{**asdict(e), "at": e.at.isoformat()} for e in events]}

    async def api_staff_list(request: Request, current: Visit) -> Any:
        require_admin(current)
        return {"staff": [asdict(m) for m in await store.run(accounts.all)]}

    async def api_staff_create(request: Request, current: Visit) -> Any:
        require_admin(current)
        member, secret = await create_staff(current, await json_of(request))
        return {
            "username": member.username,
            "totp_secret": secret,
            "totp_uri": provisioning_uri(member.username, secret),
        }

    async def api_directory(request: Request, current: Visit) -> Any:
        require_admin(current)
        if request.method == "GET":
            directory = await store.run(directory_store.load)
            return {"associations": [a.to_record() for a in directory.associations]}
        body = await json_of(request)
        return {"ok": True, "message": DONE[await import_directory(current, body.get("associations"))]}

    # -- live events ----------------------------------------------------------------------

    async def events(request: Request) -> Response:
        current = await visit(request)
        if current is None:
            return JSONResponse({"error": {"code": "unauthenticated", "message": "Log in first."}}, status_code=401)
        if not current.staff.association:
            return Response(status_code=204)
        channel = console_channel(current.staff.association)

        async def stream() -> AsyncIterator[str]:
            pubsub = redis.pubsub()
            await pubsub.subscribe(channel)
            checked = asyncio.get_running_loop().time()
            try:
                yield "retry: 2000\n\n"
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        yield f"data: {message['data']}\n\n"
                        continue
                    if await request.is_disconnected():
                        return
                    if asyncio.get_running_loop().time() - checked > 60:
                        checked = asyncio.get_running_loop().time()
                        if await visit(request) is None:  # logged out or disabled: stop
                            return
                    yield ": keep-alive\n\n"
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.close(), timeout=1.0)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def console_root(request: Request) -> Response:
        return RedirectResponse("/console", status_code=307)

    return [
        Route("/console/", console_root),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console", html_route(queue_page), methods=["GET"]),
        Route("/console/fragments/queue", html_route(queue_fragment), methods=["GET"]),
        Route("/console/handoffs/{handoff}", html_route(conversation_page), methods=["GET"]),
        Route("/console/fragments/handoffs/{handoff}", html_route(transcript_fragment), methods=["GET"]),
        Route(
            "/console/handoffs/{handoff}/{action:str}",
            html_route(action_form),
            methods=["POST"],
        ),
        Route("/console/admin", html_route(admin_page_get), methods=["GET"]),
        Route("/console/admin/directory", html_route(admin_directory_form), methods=["POST"]),
        Route("/console/admin/staff", html_route(admin_staff_form), methods=["POST"]),
        Route("/console/admin/staff/{staff:int}/active", html_route(admin_staff_active_form), methods=["POST"]),
        Route("/console/stats", html_route(stats_page), methods=["GET"]),
        Route("/console/stats/summary", html_route(stats_summary), methods=["GET"]),
        Route("/console/stats/{table}.csv", html_route(stats_csv), methods=["GET"]),
        Route("/console/events", events, methods=["GET"]),
        Route("/console/api/me", api_route(api_me), methods=["GET"]),
        Route("/console/api/queue", api_route(api_queue), methods=["GET"]),
        Route("/console/api/handoffs/{handoff}", api_route(api_handoff), methods=["GET"]),
        Route("/console/api/handoffs/{handoff}/canned", api_route(api_canned), methods=["GET"]),
        Route("/console/api/handoffs/{handoff}/{action:str}", api_route(api_action), methods=["POST"]),
        Route("/console/api/admin/audit", api_route(api_audit), methods=["GET"]),
        Route("/console/api/admin/staff", api_route(api_staff_list), methods=["GET"]),
        Route("/console/api/admin/staff", api_route(api_staff_create), methods=["POST"]),
        Route("/console/api/admin/directory", api_route(api_directory), methods=["GET", "POST"]),
    ]
