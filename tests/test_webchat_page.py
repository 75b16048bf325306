"""bot/webchat_page.py and bot/static/chat.js: the /chat page and its client script."""

from __future__ import annotations

import html
import re
import shutil

import pytest

from bot.i18n import TRANSLATIONS_DIR, Catalogs
from bot.settings import PROJECT_ROOT
from bot.webchat_page import STRINGS, pick_language, render_page

CHAT_JS = PROJECT_ROOT / "bot" / "static" / "chat.js"
LANGUAGES = ("fr", "en")


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> Catalogs:
    target = tmp_path_factory.mktemp("webchat") / "translations"
    shutil.copytree(TRANSLATIONS_DIR, target)
    return Catalogs(["fr", "en"], translations_dir=target)


# --- pick_language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "accept", "expected"),
    [
        ("en", "fr-FR,fr;q=0.9", "en"),
        ("fr", "en-GB,en;q=0.9", "fr"),
        ("", "en-GB,en;q=0.9", "en"),
        ("", "en-US", "en"),
        ("", "EN", "en"),
        ("", "de", "fr"),
        ("", "de-DE,de;q=0.9", "fr"),
        ("", "de-DE,en;q=0.5", "en"),
        ("", "", "fr"),
        ("", "*", "fr"),
        ("xx", "en-GB,en;q=0.9", "en"),
        ("xx", "", "fr"),
        ("de", "de", "fr"),
        ("EN", "", "fr"),
        ("<script>", "", "fr"),
    ],
)
def test_pick_language(requested: str, accept: str, expected: str) -> None:
    assert pick_language(requested, accept, LANGUAGES, "fr") == expected


def test_pick_language_default_is_a_parameter() -> None:
    assert pick_language("", "de", LANGUAGES, "en") == "en"


def test_pick_language_only_picks_served_languages() -> None:
    assert pick_language("en", "en", ("fr",), "fr") == "fr"


# --- render_page ---------------------------------------------------------------------------


def test_english_page(catalogs: Catalogs) -> None:
    page = render_page(catalogs, "en", "https://example.org/x", 1600)
    assert '<html lang="en" dir="ltr">' in page
    assert 'maxlength="1600"' in page
    assert 'data-exit-url="https://example.org/x"' in page
    assert "<title>Chat</title>" in page
    assert ">Send</button>" in page
    same_in_both = set()
    for key, french in STRINGS.items():
        english = catalogs.translate("en", "webchat", french)
        assert html.escape(english) in page, key
        if english == french:
            same_in_both.add(key)
        else:
            assert html.escape(french) not in page, key
    # "Assistant", "Association", "Conversation" are English words too; all else is translated.
    assert same_in_both == {"bot", "staff", "log"}


def test_french_page(catalogs: Catalogs) -> None:
    page = render_page(catalogs, "fr", "https://example.org/x", 500)
    assert '<html lang="fr" dir="ltr">' in page
    assert 'maxlength="500"' in page
    for french in STRINGS.values():
        assert html.escape(french) in page


def test_arabic_page_is_right_to_left(catalogs: Catalogs) -> None:
    page = render_page(catalogs, "ar", "https://example.org/x", 1600)
    assert '<html lang="ar" dir="rtl">' in page
    # No Arabic catalog: the strings stay in French.
    assert html.escape(STRINGS["intro"]) in page


def test_only_the_chat_script(catalogs: Catalogs) -> None:
    page = render_page(catalogs, "en", "https://example.org/x", 1600)
    assert re.findall(r"<script\b[^>]*>", page, flags=re.IGNORECASE) == ['<script src="/static/chat.js" defer>']
    assert page.count("</script>") == 1
    assert re.search(r"\son[a-z]+\s*=", page, flags=re.IGNORECASE) is None, "inline event handler"
    assert "javascript:" not in page.lower()
    # Nothing from a third party.
    assert re.findall(r'(?:src|href)="([^"]*)"', page) == ["/static/chat.css", "/static/chat.js"]


@pytest.mark.parametrize(
    "exit_url",
    [
        'https://example.org/?q="><script>alert(1)</script>',
        "https://example.org/?a=1&b='x' onload='alert(1)'",
    ],
)
def test_exit_url_is_escaped(catalogs: Catalogs, exit_url: str) -> None:
    page = render_page(catalogs, "en", exit_url, 1600)
    assert f'data-exit-url="{html.escape(exit_url)}"' in page
    assert exit_url not in page
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/chat.js" defer>']
    assert "onload='" not in page


def test_language_is_escaped(catalogs: Catalogs) -> None:
    page = render_page(catalogs, '"><script>x</script>', "https://example.org/x", 1600)
    assert "<script>x" not in page
    assert 'lang="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page


# --- chat.js -------------------------------------------------------------------------------


def chat_js_code() -> str:
    """chat.js without its comments (its header comment says it never uses innerHTML)."""
    source = CHAT_JS.read_text(encoding="utf-8")
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"(^|\s)//[^\n]*", r"\1", source)


def test_chat_js_comment_stripping_keeps_the_code() -> None:
    code = chat_js_code()
    assert "textContent" in code
    assert 'request("POST", "/webchat/sessions")' in code


def test_chat_js_never_writes_html() -> None:
    code = chat_js_code()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink
    assert "innerHTML" not in CHAT_JS.read_text(encoding="utf-8").replace("(never innerHTML)", "")


def test_chat_js_only_contacts_relative_urls() -> None:
    source = CHAT_JS.read_text(encoding="utf-8")
    assert "http" not in source.lower()
    assert "//" not in chat_js_code()
    for api in ("XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "importScripts"):
        assert api not in source
    urls = re.findall(r'request\("(?:GET|POST)",\s*"([^"]*)"', source)
    assert urls
    assert all(url.startswith("/webchat/") for url in urls)
    assert re.findall(r"\bfetch\(([^,)]*)", source) == ["url"]
