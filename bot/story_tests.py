"""Run the Rasa test stories (``tests/stories``) and fail on any wrong prediction.

``python -m bot.story_tests`` runs ``rasa test core`` on the trained model, then reads its
report: the run fails unless every story is predicted right, and the failed stories are printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bot.rasa_setup import model_path, rasa_bin
from bot.settings import PROJECT_ROOT

OUT = PROJECT_ROOT / "results" / "stories"


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"  # no telemetry or crash reports, ever
    command = [
        rasa_bin(),
        "test",
        "core",
        "--stories",
        "tests/stories",
        "--model",
        str(model_path()),
        "--out",
        str(OUT),
        "--fail-on-prediction-errors",
        "--no-plot",
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    report_path = OUT / "story_report.json"
    if not report_path.exists():
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        print("stories: the test run produced no report", file=sys.stderr)
        return 1
    report = json.loads(report_path.read_text())
    conversations = report.get("conversation_accuracy", {})
    total = int(conversations.get("total", 0))
    correct = int(conversations.get("correct", 0))
    failed_path = OUT / "failed_test_stories.yml"
    failed_text = failed_path.read_text() if failed_path.exists() else ""
    print(f"stories: {correct} passed, {total - correct} failed")
    if total == 0 or correct != total or done.returncode != 0:
        print(failed_text[:20000], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
