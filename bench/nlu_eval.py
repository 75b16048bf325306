"""Per-language evaluation of the NLU model on held-out splits, one per seed.

    .venv/bin/python bench/nlu_eval.py [--test-fraction 0.2] [--seeds 7,1,2]

For each seed, splits each language's examples (nlu_data/<lang>/nlu.yml) per intent into train
and test, trains one NLU model on every language's train part with the project's config.yml,
then classifies each test example and scores, per language, accuracy and intent F1 (macro and
weighted). A fallback (nlu_fallback) counts as a wrong answer. With a few hundred test messages
per language, one split moves a language's F1 by several points from one seed to the next: the report
gives, per language, the mean over the seeds (on which the targets are judged) and the lowest
seed, then every seed's figures, then the errors of the first seed. Results are written to
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
from typing import Dict, List, Optional, Tuple

import yaml
from sklearn.metrics import accuracy_score, f1_score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # the model's components (rasa_components) are imported by name

DEFAULT_SEEDS = "7,1,2"
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
TARGET_F1 = 0.90
TARGET_GAP = -5.0  # points of weighted F1 below French


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


def parse_seeds(text: str) -> List[int]:
    try:
        seeds = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers separated by commas, got {text!r}")
    return seeds


def train_model(train: Dict[str, List[str]], work: Path) -> float:
    """Train one NLU model (work/eval.tar.gz) with config.yml; returns the seconds it took."""
    write_nlu(train, work / "train.yml")
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
    return time.monotonic() - started


def score(test: List[Tuple[str, str]], outcomes: List[Tuple[str, str, float]]) -> dict:
    texts = [t for t, _ in test]
    truth = [i for _, i in test]
    predicted = [given for given, _best, _confidence in outcomes]
    return {
        "tested": len(texts),
        "accuracy": accuracy_score(truth, predicted),
        "f1_weighted": f1_score(truth, predicted, average="weighted", zero_division=0),
        "f1_macro": f1_score(truth, predicted, average="macro", zero_division=0),
        "errors": [(t, i, p) for t, i, p in zip(texts, truth, predicted, strict=True) if i != p],
        "accuracy_by_fallback_threshold": {
            f"{threshold:.2f}": accuracy_score(
                truth, [b if c >= threshold else "nlu_fallback" for _g, b, c in outcomes]
            )
            for threshold in THRESHOLDS
        },
    }


def evaluate_seed(
    seed: int, fraction: float, examples: Dict[str, Dict[str, List[str]]]
) -> Tuple[Dict[str, dict], float]:
    """Split every language with this seed, train one model on all the training parts, score each
    language's test part: ({language: scores}, seconds of training)."""
    all_train: Dict[str, List[str]] = defaultdict(list)
    tests: Dict[str, List[Tuple[str, str]]] = {}
    for language, by_intent in examples.items():
        # one generator per language: adding data to one language leaves the others' splits alone
        train, test = split(by_intent, fraction, random.Random(f"{seed}-{language}"))
        for intent, texts in train.items():
            all_train[intent] += texts
        tests[language] = test
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seconds = train_model(all_train, work)
        # one model load for all the languages
        outcomes = asyncio.run(classify(work / "eval.tar.gz", [t for test in tests.values() for t, _ in test]))
    scores = {}
    start = 0
    for language, test in tests.items():
        scores[language] = score(test, outcomes[start : start + len(test)])
        start += len(test)
    return scores, seconds


def mean(values: List[float]) -> float:
    return sum(values) / len(values)


def meets(f1: float, gap: float) -> bool:
    return f1 >= TARGET_F1 and gap >= TARGET_GAP


def summarise(language: str, size: int, runs: Dict[int, dict]) -> dict:
    """One language's row: means over the seeds, the lowest seed, every seed, the first seed's errors."""
    seeds = list(runs)
    first = runs[seeds[0]]
    return {
        "language": language,
        "examples": size,
        "tested": first["tested"],  # the same every seed: a fixed fraction of each intent
        "seeds": seeds,
        "accuracy": mean([r["accuracy"] for r in runs.values()]),
        "f1_weighted": mean([r["f1_weighted"] for r in runs.values()]),
        "f1_weighted_min": min(r["f1_weighted"] for r in runs.values()),
        "f1_macro": mean([r["f1_macro"] for r in runs.values()]),
        "errors_seed": seeds[0],
        "errors": first["errors"],
        "accuracy_by_fallback_threshold": {
            key: mean([r["accuracy_by_fallback_threshold"][key] for r in runs.values()])
            for key in first["accuracy_by_fallback_threshold"]
        },
        "per_seed": [{"seed": seed, **{k: v for k, v in r.items() if k != "errors"}} for seed, r in runs.items()],
    }


def report(
    rows: List[dict], seeds: List[int], seconds: Dict[int, float], fraction: float
) -> Tuple[List[str], List[str]]:
    """(the summary table's lines, the whole report's lines)."""
    french = next((row for row in rows if row["language"] == "fr"), None)

    def points(row: dict, index: Optional[int]) -> float:
        """Points of weighted F1 vs French on split ``index`` (None: on the mean)."""
        if french is None:
            return 0.0
        if index is None:
            return (row["f1_weighted"] - french["f1_weighted"]) * 100
        return (row["per_seed"][index]["f1_weighted"] - french["per_seed"][index]["f1_weighted"]) * 100

    plural = "s" if len(seeds) > 1 else ""
    lines = [
        "# NLU evaluation per language",
        "",
        f"Held-out splits: {fraction:.0%} of each intent's examples per language, {len(seeds)} split{plural} "
        f"(seed{plural} {', '.join(map(str, seeds))}); for each, one model trained on the rest of every language "
        f"with config.yml (training: {', '.join(f'{seconds[s]:.0f}' for s in seeds)} s).",
        "Target: weighted F1 >= 0.90 in every language and no language more than 5 points below French, "
        f"judged on the mean over the {len(seeds)} split{plural}: one split moves a language by several points "
        "from one seed to the next, so every seed is shown below too.",
        "",
        "| language | examples | tested | accuracy | F1 weighted (mean) | F1 weighted (min) | F1 macro "
        "| vs French | target | splits meeting it |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        alone = sum(meets(run["f1_weighted"], points(row, i)) for i, run in enumerate(row["per_seed"]))
        lines.append(
            f"| {row['language']} | {row['examples']} | {row['tested']} | {row['accuracy']:.3f} | "
            f"{row['f1_weighted']:.3f} | {row['f1_weighted_min']:.3f} | {row['f1_macro']:.3f} | "
            f"{points(row, None):+.1f} pts | {'met' if meets(row['f1_weighted'], points(row, None)) else 'MISSED'} | "
            f"{alone}/{len(seeds)} |"
        )
    summary = lines[:]
    lines += [
        "",
        "## Every split",
        "",
        "Weighted F1 per seed (points vs French on the same split); ✗: the target would be missed on this "
        "split alone. Accuracy, macro F1 and accuracy by fallback threshold per seed are in the JSON.",
        "",
        "| language | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | " + " | ".join("---" for _ in seeds) + " |",
    ]
    for row in rows:
        cells = [
            f"{run['f1_weighted']:.3f} ({points(row, i):+.1f})"
            + ("" if meets(run["f1_weighted"], points(row, i)) else " ✗")
            for i, run in enumerate(row["per_seed"])
        ]
        lines.append(f"| {row['language']} | " + " | ".join(cells) + " |")
    lines += ["", "## Errors", "", f"Split of seed {seeds[0]} (the first).", ""]
    for row in rows:
        for text, truth, predicted in row["errors"]:
            lines.append(f"- {row['language']}: `{text}` — expected {truth}, got {predicted}")
    return summary, lines


def main() -> int:
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"  # no telemetry or crash reports, ever
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=parse_seeds(DEFAULT_SEEDS),
        help=f"seeds of the held-out splits, comma-separated: one model trained per seed (default {DEFAULT_SEEDS})",
    )
    parser.add_argument("--seed", type=int, help="one split only, as before the seeds (same as --seeds N)")
    args = parser.parse_args()
    seeds: List[int] = [args.seed] if args.seed is not None else args.seeds
    languages = sorted(p.name for p in (ROOT / "nlu_data").iterdir() if (p / "nlu.yml").exists())
    examples = {language: load_examples(ROOT / "nlu_data" / language / "nlu.yml") for language in languages}
    runs: Dict[str, Dict[int, dict]] = defaultdict(dict)
    seconds: Dict[int, float] = {}
    for number, seed in enumerate(seeds, 1):
        print(f"• split {number}/{len(seeds)} (seed {seed}): training, then classifying", file=sys.stderr, flush=True)
        scores, seconds[seed] = evaluate_seed(seed, args.test_fraction, examples)
        for language, result in scores.items():
            runs[language][seed] = result
    rows = [
        summarise(language, sum(len(v) for v in examples[language].values()), runs[language]) for language in languages
    ]
    summary, lines = report(rows, seeds, seconds, args.test_fraction)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nlu_eval.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "nlu_eval.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
