"""Command line: ``python -m bot <command>``.

run        the whole assistant on this machine (private Redis, Rasa, actions, gateway)
setup      compile the catalogs and train the model if its inputs changed
train      train the model (``--force`` to retrain)
migrate    upgrade the database schema
chat       talk to a running assistant from the terminal, through the web chat API
actions    the action server (rasa_sdk)
gateway    the web chat and webhooks only (production; workers run apart)
worker     [--role router|sender|housekeeping ...] [--metrics-port PORT] the workers only
           (production; default all roles); /metrics and /healthz on PORT if given
nlg        the NLG endpoint only (production)
i18n       extract | update | compile the translation catalogs; status | check | preview |
           safety (what the safety lexicons catch and miss) | discreet (what a lock screen
           shows; discreet versions) for mediators
telegram   set-webhook | delete-webhook | info: connect the Telegram bot
associations import FILE | list | shred-key SLUG --yes: the directory of approved
           associations; destroying an association's own key (crypto-shredding)
staff      add USERNAME | list | disable USERNAME | enable USERNAME: console accounts
console-code USERNAME   the current two-factor code of an account (local runs only)
purge      [--dry-run] delete what the retention periods let go (run it daily from cron)
keys       print new keys for a production environment file (nothing is stored)
rasa-endpoints PATH   write Rasa's endpoints file from the environment (mode 0600)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Coroutine, List, Optional

from bot.settings import Settings, SettingsError, load_settings


def _serve(main: Coroutine[Any, Any, int]) -> int:
    """Run a server's main coroutine on uvloop (faster network I/O) when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with Rasa's dependencies
        return asyncio.run(main)
    return int(uvloop.run(main))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="text (default) or one JSON object a line (OUTREACH_LOG_FORMAT)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole assistant locally")
    run.add_argument("--rasa-port", type=int, default=5005)
    run.add_argument("--action-port", type=int, default=5055)
    sub.add_parser("setup", help="compile catalogs, train if needed")
    train = sub.add_parser("train", help="train the Rasa model")
    train.add_argument("--force", action="store_true")
    sub.add_parser("migrate", help="upgrade the database schema")
    chat = sub.add_parser("chat", help="chat from the terminal")
    chat.add_argument("--url", default=None, help="gateway URL (default: from settings)")
    actions = sub.add_parser("actions", help="run the action server")
    actions.add_argument("--host", default="127.0.0.1")
    actions.add_argument("--port", type=int, default=5055)
    sub.add_parser("gateway", help="run the gateway without workers")
    worker = sub.add_parser("worker", help="run the router and sender workers")
    worker.add_argument(
        "--role",
        action="append",
        choices=["router", "sender", "housekeeping"],
        help="run only these workers (repeatable; default: all three)",
    )
    worker.add_argument("--metrics-port", type=int, help="serve /metrics and /healthz of this process on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="the address of --metrics-port")
    sub.add_parser("nlg", help="run the NLG endpoint")
    i18n = sub.add_parser("i18n", help="translation catalogs")
    i18n_actions = ["extract", "update", "compile", "status", "check", "preview", "safety", "discreet"]
    i18n.add_argument("action", choices=i18n_actions)
    i18n.add_argument("--lang", help="preview: the language to show; safety, discreet: only this language")
    i18n.add_argument("--responses", help="preview: comma-separated response names (default: all)")
    i18n.add_argument("--reviewed-only", action="store_true", help="preview: as with drafts not served")
    telegram = sub.add_parser("telegram", help="register or remove the Telegram webhook")
    telegram.add_argument("action", choices=["set-webhook", "delete-webhook", "info"])
    associations = sub.add_parser("associations", help="the directory of approved associations")
    associations.add_argument("action", choices=["import", "list", "shred-key"])
    associations.add_argument(
        "file", nargs="?", help="import: a YAML file like examples/associations.example.yml; shred-key: the slug"
    )
    associations.add_argument("--yes", action="store_true", help="shred-key: do it (irreversible)")
    associations.add_argument("--dry-run", action="store_true", help="import: check and show, change nothing")
    staff = sub.add_parser("staff", help="console accounts")
    staff.add_argument("action", choices=["add", "list", "disable", "enable"])
    staff.add_argument("username", nargs="?")
    staff.add_argument("--role", choices=["staff", "mediator", "admin"], default="staff")
    staff.add_argument("--association", help="the association's slug (required for staff and mediators)")
    staff.add_argument("--name", default="", help="the name shown in the console")
    staff.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    purge = sub.add_parser("purge", help="delete what the retention periods let go")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    stats = sub.add_parser("stats", help="anonymous statistics: a demo month, a protected table as CSV")
    stats.add_argument("action", choices=["demo", "export"])
    stats.add_argument("--month", required=True, help="YYYY-MM")
    stats.add_argument("--table", help="export: the table (its key, e.g. topics)")
    stats.add_argument("--conversations", type=int, default=320, help="demo: conversations to simulate")
    sub.add_parser("keys", help="print new keys for a production environment file")
    endpoints = sub.add_parser("rasa-endpoints", help="write Rasa's endpoints file from the environment")
    endpoints.add_argument("path", type=Path)
    code = sub.add_parser("console-code", help="current two-factor code of an account (local runs only)")
    code.add_argument("username")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # Rasa must never send telemetry or crash reports (they could carry conversation data);
    # every Rasa process we start inherits this.
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    args = _parser().parse_args(argv)
    from bot.logs import FORMATS, setup_logging

    log_format = args.log_format or os.environ.get("OUTREACH_LOG_FORMAT", "text").strip().lower()
    if log_format not in FORMATS:
        print("Configuration error: OUTREACH_LOG_FORMAT must be text or json", file=sys.stderr)
        return 2
    roles = getattr(args, "role", None) or ["router", "sender", "housekeeping"]
    role = f"worker:{'+'.join(roles)}" if args.command == "worker" else args.command
    setup_logging(args.log_level, log_format, role)
    if args.command == "keys":
        print(_new_keys(), end="")
        return 0
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    command = args.command
    if command == "run":
        from bot.supervisor import run_local

        return _serve(run_local(settings, rasa_port=args.rasa_port, action_port=args.action_port))
    if command in {"setup", "train"}:
        from bot.i18n import compile_catalogs
        from bot.rasa_setup import train as train_model

        compile_catalogs()
        train_model(force=getattr(args, "force", False))
        return 0
    if command == "migrate":
        from bot.migrate import upgrade

        upgrade(settings.database_url)
        return 0
    if command == "chat":
        from bot.terminal_chat import chat

        return asyncio.run(chat(args.url or f"http://{settings.host}:{settings.port}"))
    if command == "actions":
        from rasa_sdk.endpoint import create_app as create_action_app

        app = create_action_app("actions", cors_origins=[])
        app.run(host=args.host, port=args.port, workers=1, access_log=False, motd=False)
        return 0
    if command in {"gateway", "worker", "nlg"}:
        from bot.production import serve

        port = getattr(args, "metrics_port", None)
        if port is not None and not 1 <= port <= 65535:
            print("Configuration error: --metrics-port must be between 1 and 65535", file=sys.stderr)
            return 2
        metrics_at = (args.metrics_host, port) if port is not None else None
        return _serve(serve(command, settings, roles, metrics_at=metrics_at))
    if command == "i18n":
        from bot import i18n_tools
        from bot.i18n import compile_catalogs

        if args.action == "extract":
            catalog = i18n_tools.extract()
            print(f"{len(catalog)} entries -> {i18n_tools.TEMPLATE}")
        elif args.action == "update":
            for path in i18n_tools.update([lang for lang in settings.languages if lang != "fr"]):
                print(f"updated {path}")
        elif args.action == "compile":
            print(f"compiled {compile_catalogs(force=True)} catalog file(s)")
        else:
            return _i18n_report(args)
        return 0
    if command == "telegram":
        return asyncio.run(_telegram(args.action, settings))
    if command == "associations":
        return _associations(args, settings)
    if command in {"staff", "console-code"}:
        return _staff(args, settings)
    if command == "stats":
        return _stats(args, settings)
    if command == "purge":
        return asyncio.run(_purge(settings, args.dry_run))
    if command == "rasa-endpoints":
        from bot.rasa_setup import write_endpoints
        from bot.settings import with_local_keys

        settings = with_local_keys(settings)
        if settings.redis_url is None:
            print("Configuration error: REDIS_URL is required for Rasa's tracker and lock stores", file=sys.stderr)
            return 2
        print(f"wrote {write_endpoints(settings, args.path)}")
        return 0
    return 2


def _new_keys() -> str:
    """Lines for an environment file: the look-up key, a first data key, the NLG token."""
    import base64
    import secrets
    from datetime import date

    def key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    key_id = f"k{date.today():%Y%m}"
    return (
        "# generated by `python -m bot keys`: keep them secret, back them up apart from the database\n"
        f"OUTREACH_LOOKUP_KEY={key()}\n"
        f"OUTREACH_DATA_KEYS={key_id}:{key()}\n"
        f"OUTREACH_NLG_TOKEN={secrets.token_urlsafe(32)}\n"
    )


async def _purge(settings: Settings, dry_run: bool) -> int:
    import json
    from datetime import timedelta

    from bot import redis_client, retention
    from bot.crypto import Vault
    from bot.db import make_engine, make_sessionmaker
    from bot.rasa_setup import tracker_key
    from bot.settings import with_local_keys
    from bot.store import Store

    settings = with_local_keys(settings)
    assert settings.keys is not None
    engine = make_engine(settings.database_url)
    store = Store(make_sessionmaker(engine), Vault(settings.keys), threads=1)
    try:
        purged, senders = retention.purge(
            store,
            timedelta(days=settings.retention_bot_days),
            timedelta(days=settings.retention_handoff_days),
            dry_run=dry_run,
        )
        if senders and not dry_run and settings.redis_url:
            redis = redis_client.connect(settings.redis_url)
            try:
                await redis.delete(*(tracker_key(sender) for sender in senders))
            finally:
                await redis.close()
        print(json.dumps({"dry_run": dry_run, **purged.as_dict()}))
        return 0
    finally:
        store.close()
        engine.dispose()


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    import re

    from bot import disclosure
    from bot.console.stats_view import name_of
    from bot.db import make_engine, make_sessionmaker
    from bot.statistics import Statistics

    found = re.fullmatch(r"(20[0-9]{2})-(0[1-9]|1[0-2])", args.month)
    if found is None:
        print("--month must be YYYY-MM", file=sys.stderr)
        return 2
    year, month = int(found.group(1)), int(found.group(2))
    engine = make_engine(settings.database_url)
    statistics = Statistics(make_sessionmaker(engine))
    try:
        if args.action == "demo":
            if settings.production:
                print("the demo month is for local runs only", file=sys.stderr)
                return 2
            from bot.stats_demo import record_month

            print(f"counted {record_month(statistics, year, month, args.conversations)} simulated events")
            return 0
        if args.table not in disclosure.SPEC_BY_KEY:
            print(f"--table must be one of {', '.join(disclosure.SPEC_BY_KEY)}", file=sys.stderr)
            return 2
        [table] = disclosure.month_tables(statistics, year, month, settings.stats_threshold, [args.table])
        names = {value: name_of(value, {}) for value in [*table.rows, *table.columns]}
        sys.stdout.write(disclosure.to_csv(table, names, names))
        return 0
    finally:
        engine.dispose()


def _staff(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from bot.console.accounts import AccountError, StaffStore, current_code, provisioning_uri
    from bot.console.audit import AuditLog
    from bot.crypto import Vault
    from bot.db import make_engine, make_sessionmaker
    from bot.migrate import upgrade
    from bot.settings import with_local_keys

    upgrade(settings.database_url)
    settings = with_local_keys(settings)
    assert settings.keys is not None
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    accounts = StaffStore(sessions, Vault(settings.keys))
    audit = AuditLog(sessions)
    try:
        if args.command == "console-code":
            if settings.env != "local":
                print("console-code only works for a local run (OUTREACH_ENV=local)", file=sys.stderr)
                return 2
            secret = accounts.totp_secret(args.username)
            if secret is None:
                print("no such account", file=sys.stderr)
                return 1
            print(current_code(secret))
            return 0
        if args.action == "list":
            for member in accounts.all():
                state = "active" if member.active else "disabled"
                print(f"{member.username}: {member.role} · {member.association or '-'} · {state}")
            return 0
        if not args.username:
            print(f"staff {args.action} needs a username", file=sys.stderr)
            return 2
        if args.action in {"disable", "enable"}:
            found = accounts.by_username(args.username)
            if found is None or not accounts.set_active(found.id, args.action == "enable"):
                print("no such account", file=sys.stderr)
                return 1
            audit.record("cli", f"staff_{args.action}", found.association, None, found.username)
            print(f"{found.username}: {args.action}d")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password (12 characters at least): ")
            if getpass.getpass("Again: ") != password:
                print("the two passwords differ", file=sys.stderr)
                return 1
        try:
            member, secret = accounts.create(args.username, args.name, args.role, args.association, password)
        except AccountError as error:
            print(f"Not created: {error}", file=sys.stderr)
            return 1
        audit.record("cli", "staff_create", member.association, None, f"{member.username} ({member.role})")
        print(f"created {member.username} ({member.role}, {member.association or '-'})")
        print("Two-factor key, to add once to an authenticator app (shown only now):")
        print(f"  {secret}")
        print(f"  {provisioning_uri(member.username, secret)}")
        return 0
    finally:
        engine.dispose()


def _shred_key(args: argparse.Namespace, settings: Settings, engine: Any) -> int:
    """Destroy an association's own keys: its ended transcripts and its notes become unreadable."""
    from bot.association_keys import AssociationKeys
    from bot.console.audit import AuditLog
    from bot.crypto import Vault
    from bot.db import make_sessionmaker
    from bot.settings import with_local_keys

    if not args.file:
        print("associations shred-key needs the association's slug", file=sys.stderr)
        return 2
    if not args.yes:
        print(
            f"This makes every ended transcript and note of {args.file} unreadable, for good. "
            "Run again with --yes to do it.",
            file=sys.stderr,
        )
        return 2
    settings = with_local_keys(settings)
    assert settings.keys is not None
    sessions = make_sessionmaker(engine)
    destroyed = AssociationKeys(sessions, Vault(settings.keys)).destroy(args.file)
    AuditLog(sessions).record("command line", "key_destroyed", args.file, None, f"{destroyed} key(s)")
    print(f"{destroyed} key(s) of {args.file} destroyed; running processes stop reading them within 30 s")
    return 0


def _associations(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from bot.db import make_engine, make_sessionmaker
    from bot.handoff.directory import DirectoryError, load_directory
    from bot.handoff.store import DirectoryStore
    from bot.migrate import upgrade

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    store = DirectoryStore(make_sessionmaker(engine))
    try:
        if args.action == "shred-key":
            return _shred_key(args, settings, engine)
        if args.action == "list":
            for association in store.load().associations:
                mark = " [EXAMPLE DATA]" if association.example else ""
                print(
                    f"{association.slug}: {association.name}{mark} · agrément {association.approval_number} "
                    f"until {association.approval_ends} · départements {','.join(sorted(association.departements))} "
                    f"· languages {','.join(sorted(association.languages))}"
                    + (f" · fallback {association.fallback}" if association.fallback else "")
                )
            return 0
        if not args.file:
            print("associations import needs a file", file=sys.stderr)
            return 2
        try:
            directory = load_directory(Path(args.file))
        except (DirectoryError, OSError) as error:
            print(f"Not imported: {error}", file=sys.stderr)
            return 1
        if args.dry_run:
            print(f"{len(directory.associations)} association(s) valid; nothing changed (--dry-run)")
            return 0
        added, changed, removed = store.replace(directory)
        summary = {"added": added, "changed": changed, "removed": removed}
        print(" · ".join(f"{what}: {', '.join(slugs) or '-'}" for what, slugs in summary.items()))
        if any(a.example for a in directory.associations):
            print("note: this file holds EXAMPLE DATA, not real associations")
        return 0
    finally:
        engine.dispose()


async def _telegram(action: str, settings: Settings) -> int:
    from telegram.error import TelegramError

    from bot.channels import telegram

    if settings.telegram is None:
        print("TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    try:
        if action == "set-webhook":
            if settings.telegram.mode != "webhook" or not settings.public_url:
                print("set-webhook needs TELEGRAM_MODE=webhook and OUTREACH_PUBLIC_URL", file=sys.stderr)
                return 2
            url = await telegram.set_webhook(settings.telegram, settings.public_url)
            print(f"webhook set: Telegram now sends updates to {url} with the secret token")
        elif action == "delete-webhook":
            await telegram.delete_webhook(settings.telegram)
            print("webhook removed: updates wait for polling (TELEGRAM_MODE=polling)")
        else:
            for key, value in (await telegram.webhook_info(settings.telegram)).items():
                print(f"{key}: {value}")
    except TelegramError as error:  # the message names the problem, never the token
        print(f"Telegram refused: {type(error).__name__}", file=sys.stderr)
        return 1
    return 0


def settings_languages() -> List[str]:
    from bot.settings import SUPPORTED_LANGUAGES

    return list(SUPPORTED_LANGUAGES)


def _i18n_report(args: argparse.Namespace) -> int:
    from bot import i18n_report
    from bot.language import LanguageChooser

    if args.action == "status":
        languages = ["fr", *[lang for lang in i18n_report.catalog_languages() if lang != "fr"]]
        print(i18n_report.format_status(i18n_report.status(lang) for lang in languages))
        return 0
    if args.action == "discreet":
        from bot.discreet import Discretion

        languages = [args.lang] if args.lang else list(settings_languages())
        problems = i18n_report.discretion_problems(languages, Discretion(settings_languages()))
        for problem in problems:
            print(problem)
        print(f"discretion check: {len(problems)} problem(s)")
        return 1 if problems else 0
    if args.action == "safety":
        from bot import safety_audit
        from bot.safety import Safety

        languages = [args.lang] if args.lang else list(settings_languages())
        safety = Safety(settings_languages())
        results = [safety_audit.audit(language, safety) for language in languages]
        print("\n".join(safety_audit.format_audit(result) for result in results))
        return 1 if any(r.wrong_examples or r.caught_elsewhere for r in results) else 0
    if args.action == "check":
        detector = LanguageChooser(("fr", *[lang for lang in i18n_report.catalog_languages() if lang != "fr"]), "fr")
        problems = i18n_report.check(french_detector=detector)
        for problem in problems:
            print(problem)
        print(f"catalog check: {len(problems)} problem(s)")
        return 1 if problems else 0
    if not args.lang:
        print("preview needs --lang (for example --lang ro)", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.responses.split(",")] if args.responses else None
    try:
        print(i18n_report.preview(args.lang, names, serve_drafts=not args.reviewed_only))
    except KeyError as error:
        print(f"unknown response(s): {error}", file=sys.stderr)
        return 2
    return 0
