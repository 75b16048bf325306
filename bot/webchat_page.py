"""The ``/chat`` page: light, accessible, no third-party asset, a quick-exit button.

Its strings are catalog entries (context ``webchat``), rendered in the page's language.
"""

from __future__ import annotations

import html
from typing import Dict, Iterable

from bot.i18n import Catalogs, pgettext
from bot.notices import FLOOD_NOTICE

RTL_LANGUAGES = {"ar"}
CONTEXT = "webchat"


STRINGS: Dict[str, str] = {
    "title": pgettext("webchat", "Discussion"),
    "intro": pgettext(
        "webchat",
        "Posez votre question, dans votre langue. C'est gratuit et anonyme : ne donnez pas votre nom.",
    ),
    "emergency": pgettext("webchat", "En danger : appelez le 17 ou le 112, ou envoyez un SMS au 114."),
    "label": pgettext("webchat", "Votre message"),
    "send": pgettext("webchat", "Envoyer"),
    "exit": pgettext("webchat", "Quitter vite"),
    "exit_hint": pgettext(
        "webchat",
        "Quitter vite (ou la touche Échap) ouvre un site neutre et retire cette page de l'historique.",
    ),
    "you": pgettext("webchat", "Vous"),
    "bot": pgettext("webchat", "Assistant"),
    "staff": pgettext("webchat", "Association"),
    "failed": pgettext("webchat", "Le message n'est pas parti. Vérifiez la connexion, il sera renvoyé."),
    "log": pgettext("webchat", "Conversation"),
    "rejected": pgettext("webchat", "Ce message n'a pas pu être envoyé : il est vide ou trop long."),
    "erased": pgettext(
        "webchat", "Cette conversation est effacée. Sur cet appareil, effacez aussi l'historique du navigateur."
    ),
}

PAGE = """<!doctype html>
<html lang="{lang}" dir="{dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>{title}</title>
<link rel="stylesheet" href="/static/chat.css">
</head>
<body data-you="{you}" data-bot="{bot}" data-staff="{staff}" data-failed="{failed}"
 data-rejected="{rejected}" data-flood="{flood}" data-erased="{erased}" data-exit-url="{exit_url}">
<header>
<h1>{title}</h1>
<button id="exit" type="button" class="exit" title="{exit_hint}">{exit}</button>
</header>
<main>
<p class="intro">{intro}</p>
<p class="emergency">{emergency}</p>
<ol id="log" aria-live="polite" aria-label="{log}"></ol>
<p id="status" role="status"></p>
</main>
<form id="form" autocomplete="off">
<label for="text">{label}</label>
<textarea id="text" name="text" rows="2" maxlength="{max_length}" required></textarea>
<button type="submit">{send}</button>
</form>
<script src="/static/chat.js" defer></script>
</body>
</html>
"""


def pick_language(requested: str, accept_language: str, languages: Iterable[str], default: str) -> str:
    """``?lang=`` if served, else the first served language of ``Accept-Language``."""
    served = list(languages)
    if requested in served:
        return requested
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        code = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if code in served and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else default


def render_page(catalogs: Catalogs, language: str, exit_url: str, max_length: int) -> str:
    values = {key: html.escape(catalogs.translate(language, CONTEXT, text)) for key, text in STRINGS.items()}
    return PAGE.format(
        lang=html.escape(language),
        dir="rtl" if language in RTL_LANGUAGES else "ltr",
        exit_url=html.escape(exit_url),
        max_length=max_length,
        flood=html.escape(catalogs.translate(language, "sms", FLOOD_NOTICE)),
        **values,
    )
