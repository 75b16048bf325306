"""The associations directory and the routing of a request for a person."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.handoff import departements
from bot.handoff.directory import DirectoryError, load_directory, parse_directory
from bot.handoff.routing import is_open, next_opening, route

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "associations.example.yml"
PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    """A moment given in Paris local time."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("93", "93"),
        ("je suis dans le 93", "93"),
        ("Saint-Denis 93200", "93"),
        ("75011", "75"),
        ("dept 5", "05"),
        ("2a", "2A"),
        ("Ajaccio 20090", "2A"),
        ("Bastia 20200", "2B"),
        ("974", "974"),
        ("97400 saint denis", "974"),
        ("97500", None),  # Saint-Pierre-et-Miquelon: no département
        ("20", None),  # Corsica has two
        ("96", None),
        ("j'ai 17 ans", "17"),  # a number alone is read as a département: the bot asks to confirm
        ("75 ou 93", None),  # two: ask again
        ("bonjour", None),
        ("123456", None),
    ],
)
def test_a_departement_is_understood_from_a_number_or_a_postal_code(text: str, expected) -> None:
    assert departements.find(text) == expected


def test_the_example_directory_loads_and_is_marked_as_example() -> None:
    directory = load_directory(EXAMPLE)
    assert [a.slug for a in directory.associations] == ["exemple-paris", "exemple-lyon", "exemple-national"]
    assert all(a.example for a in directory.associations)
    paris = directory.get("exemple-paris")
    assert paris is not None and paris.serves("93") and not paris.serves("69")


def base(**changes) -> dict:
    entry = {
        "slug": "a-1",
        "name": "A",
        "approval_number": "N1",
        "approval_ends": "2030-01-01",
        "departements": ["75"],
        "languages": ["fr"],
        "hours": {"mon": "09:00-17:00"},
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"name": ""}, "name"),
        ({"approval_number": ""}, "approval_number"),
        ({"approval_ends": "soon"}, "approval_ends"),
        ({"departements": ["99"]}, "departements"),
        ({"departements": []}, "departements"),
        ({"languages": ["de"]}, "languages"),
        ({"hours": {"monday": "09:00-17:00"}}, "hours"),
        ({"hours": {"mon": "9h-17h"}}, "09:00-17:30"),
        ({"hours": {"mon": "17:00-09:00"}}, "end after"),
        ({"closed_on": ["noel"]}, "closed_on"),
        ({"fallback": "nobody"}, "fallback"),
        ({"fallback": "a-1"}, "own fallback"),
    ],
)
def test_a_bad_entry_is_refused_with_its_field_named(changes: dict, message: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory([base(**changes)])
    assert message in str(caught.value)


def test_two_associations_with_the_same_slug_are_refused() -> None:
    with pytest.raises(DirectoryError, match="same slug"):
        parse_directory([base(), base()])


def test_opening_hours_follow_paris_time_holidays_and_daylight_saving() -> None:
    paris = load_directory(EXAMPLE).get("exemple-paris")
    assert paris is not None
    assert is_open(paris, at("2026-11-23T10:00"))  # a Monday
    assert not is_open(paris, at("2026-11-23T09:00"))
    assert not is_open(paris, at("2026-11-23T18:00"))  # the end is excluded
    assert not is_open(paris, at("2026-11-28T11:00"))  # Saturday
    assert not is_open(paris, at("2026-12-25T11:00"))  # closed on Christmas (a Friday)
    # 09:45 in Paris in summer is 07:45 UTC; in winter 08:45 UTC
    assert is_open(paris, datetime(2027, 7, 5, 7, 45, tzinfo=timezone.utc))
    assert is_open(paris, datetime(2026, 11, 23, 8, 45, tzinfo=timezone.utc))
    assert not is_open(paris, datetime(2026, 11, 23, 7, 45, tzinfo=timezone.utc))
    assert next_opening(paris, at("2026-12-24T19:00")) == at("2026-12-28T09:30")  # after Christmas and a weekend


def test_the_departement_is_asked_only_when_it_matters() -> None:
    directory = load_directory(EXAMPLE)
    monday = at("2026-11-23T10:00")
    assert route(directory, None, "fr", monday).ask_departement
    # she was asked and did not say: the national association takes it
    decision = route(directory, None, "fr", monday, departement_asked=True)
    assert decision.association is not None and decision.association.slug == "exemple-national"
    national_only = parse_directory([base(slug="nat", departements=["*"])])
    assert not route(national_only, None, "fr", monday).ask_departement


def test_routing_by_departement_then_language_then_hours() -> None:
    directory = load_directory(EXAMPLE)
    monday = at("2026-11-23T10:00")
    decision = route(directory, "93", "ro", monday)
    assert decision.association.slug == "exemple-paris" and decision.open_now  # type: ignore[union-attr]
    assert decision.reason == "département, language, open"
    # nobody serves the 13 locally: national
    assert route(directory, "13", "fr", monday).association.slug == "exemple-national"  # type: ignore[union-attr]
    # two local associations serve the 75: the one that speaks her language wins, then the open one
    two = parse_directory(
        [
            base(slug="a-fr", languages=["fr"]),
            base(slug="b-ru", languages=["fr", "ru"], hours={"tue": "09:00-17:00"}),
            base(slug="c-ru", languages=["ru"]),
        ]
    )
    assert route(two, "75", "ru", monday).association.slug == "c-ru"  # type: ignore[union-attr]
    assert route(two, "75", "fr", monday).association.slug == "a-fr"  # type: ignore[union-attr]


def test_out_of_hours_goes_to_an_open_fallback_or_says_when() -> None:
    directory = load_directory(EXAMPLE)
    evening = at("2026-11-23T20:00")  # Paris closed, the national line open until 22:00
    decision = route(directory, "75", "en", evening)
    assert decision.association.slug == "exemple-national" and decision.open_now  # type: ignore[union-attr]
    assert decision.reason == "fallback of exemple-paris, open"
    night = at("2026-11-23T23:30")  # everyone closed
    decision = route(directory, "75", "en", night)
    assert decision.association.slug == "exemple-paris" and not decision.open_now  # type: ignore[union-attr]
    assert decision.opens_at == at("2026-11-24T09:30")


def test_an_expired_approval_takes_no_request() -> None:
    directory = parse_directory(
        [base(slug="old", approval_ends="2026-01-01"), base(slug="nat", departements=["*"], approval_ends="2031-01-01")]
    )
    decision = route(directory, "75", "fr", at("2026-11-23T10:00"))
    assert decision.association.slug == "nat"  # type: ignore[union-attr]
    assert (
        route(parse_directory([base(approval_ends="2026-01-01")]), "75", "fr", at("2026-11-23T10:00")).association
        is None
    )


def test_records_round_trip() -> None:
    directory = load_directory(EXAMPLE)
    again = parse_directory([a.to_record() for a in directory.associations])
    assert again == directory
    assert directory.get("exemple-lyon").hours[0][1][1].hour == 17  # type: ignore[union-attr]
    assert directory.get("exemple-paris").closed_on == frozenset({date(2026, 12, 25), date(2027, 1, 1)})  # type: ignore[union-attr]


def test_the_directory_is_imported_into_the_database_and_listed(database_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": database_url, "OUTREACH_DATA_DIR": str(tmp_path), "OUTREACH_ENV": "test"}

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", "associations", *args], env=env, capture_output=True, text=True, timeout=60
        )

    dry = command("import", str(EXAMPLE), "--dry-run")
    assert dry.returncode == 0 and "3 association(s) valid; nothing changed" in dry.stdout
    assert command("list").stdout == ""
    done = command("import", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "added: exemple-lyon, exemple-national, exemple-paris · changed: - · removed: -" in done.stdout
    assert "EXAMPLE DATA" in done.stdout
    listed = command("list").stdout.splitlines()
    assert listed[0].startswith("exemple-lyon: Association Exemple Lyon (données d'exemple) [EXAMPLE DATA]")
    # a changed file: one association removed, one changed; a bad file changes nothing
    changed = tmp_path / "directory.yml"
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("languages: [fr, es, pt, bg]", "languages: [fr, es]")
    text = text[: text.index("  - slug: exemple-national")]
    changed.write_text(
        text.replace("fallback: exemple-national", "fallback: exemple-paris").replace(
            "    fallback: exemple-paris\n  - slug: exemple-lyon", "  - slug: exemple-lyon"
        ),
        encoding="utf-8",
    )
    again = command("import", str(changed))
    assert again.returncode == 0, again.stderr
    assert "added: - · changed: exemple-lyon, exemple-paris · removed: exemple-national" in again.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("associations:\n  - slug: x1\n    name: X\n", encoding="utf-8")
    refused = command("import", str(bad))
    assert refused.returncode == 1 and "approval_number" in refused.stderr
    assert len(command("list").stdout.splitlines()) == 2
