"""Per-language evaluation of the NLU model on a held-out split.

    .venv/bin/python bench/nlu_eval.py [--test-fraction 0.2] [--seed 7]

Splits each language's examples (nlu_data/<lang>/nlu.yml) per intent into train and test,
trains one NLU model on every language's train part with the project's config.yml, then
classifies each test example and reports, per language, accuracy and intent F1 (macro and
weighted). A fallback (nlu_fallback) counts as a wrong answer. Results are written to
bench/results/nlu_eval.md and .json. Targets (languages issue): weighted F1 >= 0.90 in every
language, none more than 5 points below French.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import yaml
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # the model's components (rasa_components) are imported by name


def load_examples(path: Path) -> Dict[str, List[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    examples: Dict[str, List[str]] = defaultdict(list)
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                examples[block["intent"]].append(line[2:].strip())
    return examples


def split(examples: Dict[str, List[str]], fraction: float, rng: random.Random) -> Tuple[dict, list]:
    train: Dict[str, List[str]] = {}
    test: List[Tuple[str, str]] = []
    for intent, texts in sorted(examples.items()):
        shuffled = texts[:]
        rng.shuffle(shuffled)
        cut = max(1, round(len(shuffled) * fraction))
        test += [(text, intent) for text in shuffled[:cut]]
        train[intent] = shuffled[cut:]
    return train, test


def write_nlu(train: Dict[str, List[str]], path: Path) -> None:
    blocks = []
    for intent, texts in sorted(train.items()):
        body = "".join(f"    - {json.dumps(t, ensure_ascii=False)}\n" for t in texts)
        blocks.append(f"- intent: {intent}\n  examples: |\n{body}")
    path.write_text('version: "3.1"\nnlu:\n' + "".join(blocks), encoding="utf-8")


async def classify(model: Path, texts: List[str]) -> List[Tuple[str, str, float]]:
    """(intent given, best intent before the fallback, its confidence) for each text."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.getLogger("rasa").setLevel(logging.WARNING)
    agent = Agent.load(str(model))
    predicted = []
    for text in texts:
        result = await agent.parse_message(text)
        ranking = [r for r in result.get("intent_ranking", []) if r["name"] != "nlu_fallback"]
        best = ranking[0] if ranking else result["intent"]
        predicted.append((result["intent"]["name"], best["name"], float(best["confidence"])))
    return predicted


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"  # no telemetry or crash reports, ever
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    languages = sorted(p.name for p in (ROOT / "nlu_data").iterdir() if (p / "nlu.yml").exists())
    all_train: Dict[str, List[str]] = defaultdict(list)
    tests: Dict[str, List[Tuple[str, str]]] = {}
    sizes: Dict[str, int] = {}
    for language in languages:
        examples = load_examples(ROOT / "nlu_data" / language / "nlu.yml")
        sizes[language] = sum(len(v) for v in examples.values())
        # one generator per language: adding data to one language leaves the others' splits alone
        train, test = split(examples, args.test_fraction, random.Random(f"{args.seed}-{language}"))
        for intent, texts in train.items():
            all_train[intent] += texts
        tests[language] = test
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_nlu(all_train, work / "train.yml")
        started = time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).with_name("rasa")),
                "train",
                "nlu",
                "--nlu",
                str(work / "train.yml"),
                "--config",
                str(ROOT / "config.yml"),
                "--out",
                str(work),
                "--fixed-model-name",
                "eval",
            ],
            cwd=ROOT,
            check=True,
        )
        train_seconds = time.monotonic() - started
        rows = []
        for language in languages:
            texts = [t for t, _ in tests[language]]
            truth = [i for _, i in tests[language]]
            outcomes = asyncio.run(classify(work / "eval.tar.gz", texts))
            predicted = [given for given, _best, _confidence in outcomes]
            thresholds = {
                f"{threshold:.2f}": accuracy_score(
                    truth, [b if c >= threshold else "nlu_fallback" for _g, b, c in outcomes]
                )
                for threshold in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
            }
            errors = [(t, i, p) for t, i, p in zip(texts, truth, predicted, strict=True) if i != p]
            rows.append(
                {
                    "language": language,
                    "examples": sizes[language],
                    "tested": len(texts),
                    "accuracy": accuracy_score(truth, predicted),
                    "f1_weighted": f1_score(truth, predicted, average="weighted", zero_division=0),
                    "f1_macro": f1_score(truth, predicted, average="macro", zero_division=0),
                    "errors": errors,
                    "accuracy_by_fallback_threshold": thresholds,
                }
            )
    french = next((r["f1_weighted"] for r in rows if r["language"] == "fr"), None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [
        "# NLU evaluation per language",
        "",
        f"Held-out split: {args.test_fraction:.0%} of each intent's examples per language (seed {args.seed}); "
        f"one model trained on the rest of every language in {train_seconds:.0f} s with config.yml.",
        "Target: weighted F1 >= 0.90 in every language and no language more than 5 points below French.",
        "",
        "| language | examples | tested | accuracy | F1 weighted | F1 macro | vs French | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        gap = (row["f1_weighted"] - french) * 100 if french is not None else 0.0
        met = row["f1_weighted"] >= 0.90 and gap >= -5
        lines.append(
            f"| {row['language']} | {row['examples']} | {row['tested']} | {row['accuracy']:.3f} | "
            f"{row['f1_weighted']:.3f} | {row['f1_macro']:.3f} | {gap:+.1f} pts | {'met' if met else 'MISSED'} |"
        )
    lines += ["", "## Errors", ""]
    for row in rows:
        for text, truth, predicted in row["errors"]:
            lines.append(f"- {row['language']}: `{text}` — expected {truth}, got {predicted}")
    (RESULTS / "nlu_eval.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "nlu_eval.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(lines[: 8 + len(rows)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
