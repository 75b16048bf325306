"""bot/settings.py: settings read from an explicit environment, validated at start."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from bot.settings import (
    PROJECT_ROOT,
    Keys,
    Settings,
    SettingsError,
    load_settings,
    local_keys,
    with_local_keys,
)

LOOKUP = bytes(range(32))
DATA1 = bytes(range(100, 132))
DATA0 = bytes(range(200, 232))
LOOKUP_B64 = base64.urlsafe_b64encode(LOOKUP).decode()
DATA1_B64 = base64.urlsafe_b64encode(DATA1).decode()
DATA0_B64 = base64.urlsafe_b64encode(DATA0).decode()
TOKEN = "nlg-token-0123456789-abcdef"

KEYS_ENV = {
    "OUTREACH_LOOKUP_KEY": LOOKUP_B64,
    "OUTREACH_DATA_KEYS": f"k1:{DATA1_B64},k0:{DATA0_B64}",
    "OUTREACH_NLG_TOKEN": TOKEN,
}
PRODUCTION_ENV = {
    "OUTREACH_ENV": "production",
    "DATABASE_URL": "postgresql://outreach:db-password-xyz@db/outreach",
    "REDIS_URL": "redis://:redis-password-xyz@redis:6379/0",
    **KEYS_ENV,
}
SECRETS = (LOOKUP_B64, DATA1_B64, DATA0_B64, TOKEN, "db-password-xyz", "redis-password-xyz")


def load_error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    for secret in SECRETS:
        assert secret not in message
    for value in env.values():
        if len(value) >= 8 and value not in {"production"}:
            assert value not in message
    return message


# --- defaults ------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings({})
    data_dir = (PROJECT_ROOT / "var").resolve()
    assert settings.env == "local"
    assert not settings.production
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite:///{data_dir / 'outreach.db'}"
    assert settings.languages == ("fr", "en", "es", "pt", "ro", "bg", "zh", "ru", "uk", "ar")
    assert settings.default_language == "fr"
    assert settings.redis_url is None
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.serve_drafts is True
    assert settings.max_text_length == 1600
    assert settings.keys is None


def test_sqlite_file_follows_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"OUTREACH_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'outreach.db'}"


def test_explicit_values_are_read() -> None:
    settings = load_settings(
        {
            "OUTREACH_LANGUAGES": "en, fr",
            "OUTREACH_DEFAULT_LANGUAGE": "en",
            "OUTREACH_PORT": "8081",
            "OUTREACH_SERVE_DRAFTS": "no",
            "RASA_URL": "http://rasa:5005/",
            "DATABASE_URL": "sqlite:///tmp/x.db",
        }
    )
    assert settings.languages == ("en", "fr")
    assert settings.default_language == "en"
    assert settings.port == 8081
    assert settings.serve_drafts is False
    assert settings.rasa_url == "http://rasa:5005"
    assert settings.database_url == "sqlite:///tmp/x.db"


def test_explicit_env_is_used_instead_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_PORT", "9999")
    assert load_settings({}).port == 8000


# --- production ----------------------------------------------------------------------------


def test_production_with_everything_set() -> None:
    settings = load_settings(PRODUCTION_ENV)
    assert settings.production
    assert settings.database_url == PRODUCTION_ENV["DATABASE_URL"]
    assert settings.redis_url == PRODUCTION_ENV["REDIS_URL"]
    assert settings.keys == Keys(
        lookup_key=LOOKUP, data_keys={"k1": DATA1, "k0": DATA0}, current_key_id="k1", nlg_token=TOKEN
    )


def test_keys_are_not_in_the_repr_of_settings() -> None:
    text = repr(load_settings(PRODUCTION_ENV))
    for secret in (LOOKUP_B64, DATA1_B64, TOKEN, repr(LOOKUP), repr(DATA1)):
        assert secret not in text


def test_production_without_keys_is_refused() -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in KEYS_ENV}
    message = load_error(env)
    for name in ("OUTREACH_LOOKUP_KEY", "OUTREACH_DATA_KEYS", "OUTREACH_NLG_TOKEN"):
        assert name in message


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_without_database_or_redis_is_refused(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    assert missing in load_error(env)


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_with_empty_database_or_redis_is_refused(missing: str) -> None:
    assert missing in load_error({**PRODUCTION_ENV, missing: ""})


@pytest.mark.parametrize("present", ["OUTREACH_LOOKUP_KEY", "OUTREACH_DATA_KEYS", "OUTREACH_NLG_TOKEN"])
@pytest.mark.parametrize("mode", ["local", "production"])
def test_partial_keys_are_refused(present: str, mode: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in KEYS_ENV or k == present}
    env["OUTREACH_ENV"] = mode
    message = load_error(env)
    for name in KEYS_ENV:
        if name != present:
            assert name in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OUTREACH_LOOKUP_KEY", "not base64 at all !!!"),
        ("OUTREACH_LOOKUP_KEY", "ééééééééééééééééééééééé"),
        ("OUTREACH_LOOKUP_KEY", base64.urlsafe_b64encode(bytes(31)).decode()),
        ("OUTREACH_LOOKUP_KEY", base64.urlsafe_b64encode(bytes(33)).decode()),
        ("OUTREACH_LOOKUP_KEY", base64.urlsafe_b64encode(b"secret-value-16b").decode()),
        ("OUTREACH_DATA_KEYS", "k1:" + base64.urlsafe_b64encode(b"short-secret-value").decode()),
        ("OUTREACH_DATA_KEYS", "k1:" + "%%%%secret%%%%"),
        ("OUTREACH_DATA_KEYS", DATA1_B64),
        ("OUTREACH_DATA_KEYS", "bad id!:" + DATA1_B64),
        ("OUTREACH_DATA_KEYS", "averyveryverylongid:" + DATA1_B64),
        ("OUTREACH_NLG_TOKEN", "short-secret"),
    ],
)
def test_bad_keys_are_refused_without_echoing_them(variable: str, value: str) -> None:
    message = load_error({**PRODUCTION_ENV, variable: value})
    assert variable in message
    assert value not in message
    for part in value.replace(",", ":").split(":"):
        if len(part) >= 6:
            assert part not in message


def test_standard_padded_base64_keys_are_accepted() -> None:
    env = {**KEYS_ENV, "OUTREACH_LOOKUP_KEY": base64.b64encode(LOOKUP).decode()}
    assert load_settings(env).keys is not None


def test_unpadded_keys_are_accepted() -> None:
    key = base64.urlsafe_b64encode(LOOKUP).decode().rstrip("=")
    settings = load_settings({**KEYS_ENV, "OUTREACH_LOOKUP_KEY": key})
    assert settings.keys is not None
    assert settings.keys.lookup_key == LOOKUP


# --- other validations ---------------------------------------------------------------------


@pytest.mark.parametrize("languages", ["fr,xx", "de", "fr,en,klingon", ",", ""])
def test_unknown_language_is_refused(languages: str) -> None:
    assert "OUTREACH_LANGUAGES" in load_error({"OUTREACH_LANGUAGES": languages})


@pytest.mark.parametrize(("languages", "default"), [("fr,en", "de"), ("en", "fr"), ("fr,en", "EN"), ("fr,en", "")])
def test_default_language_must_be_served(languages: str, default: str) -> None:
    message = load_error({"OUTREACH_LANGUAGES": languages, "OUTREACH_DEFAULT_LANGUAGE": default})
    assert "OUTREACH_DEFAULT_LANGUAGE" in message


def test_single_language_with_matching_default() -> None:
    settings = load_settings({"OUTREACH_LANGUAGES": "en", "OUTREACH_DEFAULT_LANGUAGE": "en"})
    assert settings.languages == ("en",)
    assert settings.default_language == "en"


@pytest.mark.parametrize("port", ["abc", "0", "-1", "65536", "80.5", ""])
def test_bad_port_is_refused(port: str) -> None:
    assert "OUTREACH_PORT" in load_error({"OUTREACH_PORT": port})


@pytest.mark.parametrize("port", ["1", "65535"])
def test_port_bounds_are_accepted(port: str) -> None:
    assert load_settings({"OUTREACH_PORT": port}).port == int(port)


def test_bad_mode_is_refused() -> None:
    assert "OUTREACH_ENV" in load_error({"OUTREACH_ENV": "prod"})


def test_bad_boolean_is_refused() -> None:
    assert "OUTREACH_SERVE_DRAFTS" in load_error({"OUTREACH_SERVE_DRAFTS": "maybe"})


# --- local keys ----------------------------------------------------------------------------


def test_local_keys_are_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = local_keys(data_dir)
    path = data_dir / "keys.json"
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.lookup_key) == 32
    assert first.current_key_id in first.data_keys
    assert all(len(key) == 32 for key in first.data_keys.values())
    assert len(first.nlg_token) >= 16

    stored = json.loads(path.read_text())
    assert set(stored) == {"lookup_key", "data_keys", "current_key_id", "nlg_token"}

    second = local_keys(data_dir)
    assert second == first


def test_local_keys_differ_between_deployments(tmp_path: Path) -> None:
    one = local_keys(tmp_path / "one")
    two = local_keys(tmp_path / "two")
    assert one.lookup_key != two.lookup_key
    assert one.nlg_token != two.nlg_token


def test_with_local_keys_generates_keys_for_a_local_run(tmp_path: Path) -> None:
    settings = load_settings({"OUTREACH_DATA_DIR": str(tmp_path)})
    keyed = with_local_keys(settings)
    assert keyed.keys == local_keys(tmp_path)
    assert (tmp_path / "keys.json").is_file()


def test_with_local_keys_keeps_keys_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings({"OUTREACH_DATA_DIR": str(tmp_path), **KEYS_ENV})
    assert with_local_keys(settings) is settings
    assert not (tmp_path / "keys.json").exists()


def test_with_local_keys_in_production_raises(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path)
    with pytest.raises(SettingsError):
        with_local_keys(settings)
    assert not (tmp_path / "keys.json").exists()
