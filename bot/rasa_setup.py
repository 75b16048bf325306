"""Rasa's side of a deployment: the endpoints file, training, and the model's location."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlparse

import yaml

from bot.settings import PROJECT_ROOT, Settings

MODELS_DIR = PROJECT_ROOT / "models"
MODEL_NAME = "outreach"
TRAINING_INPUTS = ["nlu_data", "data"]


def rasa_bin() -> str:
    return str(Path(sys.executable).with_name("rasa"))


RASA_LOGGING = PROJECT_ROOT / "deploy" / "rasa-logging.yml"


def rasa_command(endpoints: Path, port: int, interface: str = "127.0.0.1") -> List[str]:
    """The command of one Rasa server: our model, endpoints and credentials, and the logging
    configuration that keeps message texts out of its log."""
    return [
        rasa_bin(),
        "run",
        "--model",
        str(model_path()),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(PROJECT_ROOT / "credentials.yml"),
        "--logging-config-file",
        str(RASA_LOGGING),
        "--interface",
        interface,
        "--port",
        str(port),
    ]


TRACKER_PREFIX = "outreachtracker"


def tracker_key(sender_id: str) -> str:
    """The Redis key of a conversation's Rasa tracker (Rasa's RedisTrackerStore adds "tracker:")."""
    return f"{TRACKER_PREFIX}:tracker:{sender_id}"


def endpoints(settings: Settings) -> Dict[str, object]:
    """Rasa's endpoints: our NLG, our action server, Redis for trackers (expiring) and locks."""
    assert settings.keys is not None and settings.redis_url is not None
    redis = urlparse(settings.redis_url)
    db = int((redis.path or "/0").lstrip("/") or 0)
    common = {"url": redis.hostname or "127.0.0.1", "port": redis.port or 6379, "db": db}
    if redis.password:
        common["password"] = redis.password
    if redis.scheme == "rediss":
        common["use_ssl"] = True
    return {
        "nlg": {
            "url": f"http://{settings.nlg_host}:{settings.nlg_port}/nlg",
            "headers": {"Authorization": f"Bearer {settings.keys.nlg_token}"},
        },
        "action_endpoint": {"url": settings.action_server_url},
        "tracker_store": {
            "type": "redis",
            "key_prefix": TRACKER_PREFIX,
            "record_exp": settings.tracker_expiry_seconds,
            **common,
        },
        "lock_store": {"type": "redis", "key_prefix": "outreachlock", **common},
    }


def write_endpoints(settings: Settings, path: Path) -> Path:
    """Write the endpoints file (it holds secrets: mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(endpoints(settings), handle, sort_keys=False)
    return path


def model_path() -> Path:
    return MODELS_DIR / f"{MODEL_NAME}.tar.gz"


def train(force: bool = False, extra_env: Optional[Dict[str, str]] = None) -> Path:
    """Train the model when its data or configuration changed (Rasa compares fingerprints
    with the existing model and keeps it when nothing changed). Progress is shown."""
    command: List[str] = [
        rasa_bin(),
        "train",
        "--data",
        *TRAINING_INPUTS,
        "--domain",
        "domain.yml",
        "--config",
        "config.yml",
        "--out",
        str(MODELS_DIR),
        "--fixed-model-name",
        MODEL_NAME,
    ]
    if force:
        command.append("--force")
    # Responses sent only by custom actions are "not used in any story or rule": expected here.
    quiet = "ignore:The utterance:UserWarning"
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    env = {**os.environ, "PYTHONWARNINGS": warnings, **(extra_env or {})}
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, env=env)
    return model_path()
