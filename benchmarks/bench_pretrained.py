"""Benchmark of the automm-pretrained plugin (issue 5), on the real data in ``$AUTOMM_DATA``
or ``../shared/data`` with the fixed ``split`` columns.

Parts (``--parts``, default all):

* ``throughput`` — images and texts per second through the pretrained encoders (feature
  extraction only: EfficientNet-Lite0 at 224 px on fashion photos, MiniLM on fashion titles);
* ``cache`` — wall time of a 20-trial search over fusions/heads on the frozen encoders, in a
  fresh process with an empty feature cache, then in another fresh process with the cache
  warm (only the disk cache carries over);
* ``accuracy`` — test accuracy of ``AutoMM(time_limit=...)`` with the plugin installed and
  the search free to choose every registered encoder, against the same search restricted to
  the core's from-scratch encoders, same ``time_limit``. ``--pretrained-only`` restricts the
  first run to the pretrained encoders instead.

Usage::

    python benchmarks/bench_pretrained.py --parts throughput
    python benchmarks/bench_pretrained.py --parts cache --tasks emoji-category
    python benchmarks/bench_pretrained.py --parts accuracy --tasks fashion-subcategory --time-limit 600

Each result is printed as one JSON line (``"part": ...``) after a readable line.

Takes, on 2 cores: ``throughput`` about a minute; ``cache`` 3 to 10 minutes per task (the cold run computes
every feature: about 10-20 s per 1,000 images); ``accuracy`` 2 x ``--time-limit`` per task (one with
``--no-baseline``): every part of the three tasks at 600 s, about two hours.
"""

from __future__ import annotations

import os

# On a shared 2-core machine OpenMP's busy waiting makes small torch ops up to 100x slower
# when another process holds a core; passive waiting avoids that (set before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TASKS = ("fashion-subcategory", "fashion-usage", "emoji-category")
FROZEN = {"image": {"name": "efficientnet_lite0", "trainable_layers": 0},
          "text": {"name": "minilm", "trainable_layers": 0}}
SCRATCH_SPACE = {"encoders": {"image": ["cnn", "resnet"], "text": ["hashed_ngram", "gru", "transformer"]}}
PRETRAINED_SPACE = {"encoders": {"image": {"efficientnet_lite0": {"trainable_layers": 0}},
                                 "text": {"minilm": {"trainable_layers": 0}}}}


def emit(part: str, message: str, **record) -> None:
    print(message, flush=True)
    print(json.dumps({"part": part, **record}), flush=True)


def load(task: str):
    from common import load_task

    train, test, image, text, label = load_task(task)
    return train[[image, text]], train[label], test[[image, text]], test[label]


# -- throughput --------------------------------------------------------------------------

def throughput(n_images: int, n_texts: int) -> None:
    """Features per second through each encoder, and its ``prepare_seconds`` estimate (what a
    time-limited search plans with: an encoder whose features it estimates to take longer than
    the whole search is left out) against that measured rate, over the task's training column."""
    import torch

    import automm

    train, _, image, text, _ = __import__("common").load_task("fashion-subcategory")
    runs = (("efficientnet_lite0", list(train[image]), n_images, 16, "images", "224 px", "decoding + resizing"),
            ("minilm", [str(t) for t in train[text]], n_texts, 64, "texts", "max_length 128", "tokenisation"))
    for name, column, n, warm, unit, setting, included in runs:
        values = column[: n + warm]
        encoder = automm.create_encoder(name)
        encoder.compute_features(values[:warm])  # warm-up (loads the network)
        start = time.perf_counter()
        encoder.compute_features(values[warm:])
        seconds = time.perf_counter() - start
        per_1000 = seconds / n * 1000
        emit("throughput", f"{name} ({setting}, {torch.get_num_threads()} threads): {n / seconds:.1f} {unit}/s, "
             f"{per_1000:.2f} s per 1,000 {unit} ({included} included)", encoder=name, items=n, seconds=seconds,
             per_second=n / seconds, seconds_per_1000=per_1000, threads=torch.get_num_threads(),
             load_average=os.getloadavg()[0])
        start = time.perf_counter()
        estimate = encoder.prepare_seconds(column) * 1000
        probe_seconds = time.perf_counter() - start
        emit("estimate", f"{name}: prepare_seconds estimates {estimate:.2f} s per 1,000 {unit} of the training column "
             f"(timed in {probe_seconds:.2f} s); {estimate / per_1000:.2f}x the rate measured above",
             encoder=name, estimate_per_1000=estimate, measured_per_1000=per_1000, ratio=estimate / per_1000,
             probe_seconds=probe_seconds)


# -- feature cache -----------------------------------------------------------------------

def search_run(task: str, cache_dir: str, trials: int) -> dict:
    """One search over fusions/heads on frozen encoders (run in a fresh process)."""
    from automm import AutoMM

    X, y, X_test, y_test = load(task)
    start = time.perf_counter()
    model = AutoMM(encoders=FROZEN, n_trials=trials, augmentations=None, cache_dir=cache_dir, random_state=0,
                   max_epochs=20)
    model.fit(X, y)
    fit_seconds = time.perf_counter() - start
    prepare = {name: enc.last_prepare for name, enc in model.model_.encoders.items()
               if hasattr(enc, "last_prepare")}
    accuracy = model.score(X_test, y_test)
    board = _leaderboard(model)
    return {"fit_seconds": fit_seconds, "trials": len(board),
            "complete_trials": sum(1 for row in board if str(row.get("state", "")).upper() == "COMPLETE"),
            "test_accuracy": accuracy, "prepare": prepare, "fusion": model.config_["fusion"]["name"],
            "seconds_per_trial": [round(float(row.get("seconds", row.get("wall_seconds", 0.0)) or 0.0), 2)
                                  for row in board]}


def _leaderboard(model) -> list[dict]:
    board = getattr(model, "leaderboard_", None)
    if board is None:
        return []
    if hasattr(board, "to_dict"):  # a pandas DataFrame
        return board.to_dict("records")
    return [dict(row) for row in board]


def held_features(cache_dir: str) -> int:
    """How many feature files ``cache_dir`` holds (a cold run there would read them)."""
    from automm.feature_cache import cache_usage

    return sum(usage.files for usage in cache_usage(cache_dir))


def cache_effect(task: str, trials: int, cache_dir: str | None) -> None:
    folder = cache_dir or tempfile.mkdtemp(prefix="automm-bench-cache-")
    results = {}
    for run in ("cold", "warm"):
        command = [sys.executable, __file__, "--_search-run", task, "--cache-dir", folder, "--trials", str(trials)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[run] = json.loads(output.strip().splitlines()[-1])
        r = results[run]
        emit("cache", f"{task}: {trials}-trial search on frozen features, {run} cache: {r['fit_seconds']:.1f} s "
             f"({r['fit_seconds'] / max(1, r['trials']):.1f} s per trial), test accuracy {r['test_accuracy']:.4f}",
             task=task, run=run, **r)
    speedup = results["cold"]["fit_seconds"] / results["warm"]["fit_seconds"]
    emit("cache", f"{task}: warm cache is {speedup:.1f}x faster", task=task, speedup=speedup)


# -- accuracy ----------------------------------------------------------------------------

def accuracy(task: str, time_limit: float, cache_dir: str | None, pretrained_only: bool, baseline: bool,
             seed: int = 0) -> None:
    from automm import AutoMM
    from automm.components.stack import describe_encoder

    X, y, X_test, y_test = load(task)
    runs = [("pretrained-only" if pretrained_only else "plugin-installed",
             PRETRAINED_SPACE if pretrained_only else None)]
    if baseline:
        runs.append(("from-scratch", SCRATCH_SPACE))
    for label, space in runs:
        start = time.perf_counter()
        model = AutoMM(time_limit=time_limit, search_space=space, cache_dir=cache_dir, random_state=seed)
        model.fit(X, y)
        seconds = time.perf_counter() - start
        score = model.score(X_test, y_test)
        chosen = {name: describe_encoder(choice) for name, choice in model.config_["encoders"].items()}
        board = _leaderboard(model)
        ensemble = getattr(model, "ensemble_", None)
        members: dict[int, float] = {}  # trial -> its weight (a bag's folds summed)
        for member in ensemble.describe() if ensemble is not None else []:
            members[member["trial"]] = round(members.get(member["trial"], 0.0) + member["weight"], 3)
        bagged = sum(1 for row in board if (row.get("folds") or 1) > 1)
        pooling = ensemble.pooling if ensemble is not None else None
        emit("accuracy", f"{task} [{label}]: test accuracy {score:.4f} in {seconds:.0f} s "
             f"(encoders {chosen}, fusion {model.config_['fusion']['name']}, "
             f"{len(board)} trials, {bagged} bagged; ensemble (trial, weight): {members or 'none'}"
             f"{f', {pooling} pooling' if pooling else ''})",
             task=task, run=label, seed=seed, test_accuracy=score, seconds=seconds, time_limit=time_limit,
             encoders=chosen, fusion=model.config_["fusion"]["name"], trials=len(board), bagged_trials=bagged,
             ensemble=members, pooling=pooling, best_trial=getattr(model, "best_trial_", None), n_train=len(X),
             n_test=len(X_test))
        for row in board:  # what the budget was spent on
            print(f"    trial {row.get('number')}: {row.get('state')} score {row.get('score')} "
                  f"{(row.get('seconds') or 0):.0f} s, {row.get('encoders')} {row.get('fusion')}, "
                  f"folds {row.get('folds')}, {row.get('reason') or ''}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="throughput,cache,accuracy")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: a fresh temporary folder "
                        "for the cache part, which needs an empty one; $AUTOMM_CACHE_DIR or ~/.cache/automm "
                        "otherwise)")
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--n-texts", type=int, default=1000)
    parser.add_argument("--pretrained-only", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the accuracy runs")
    parser.add_argument("--_search-run", dest="search_run", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.search_run:
        print(json.dumps(search_run(args.search_run, args.cache_dir, args.trials)))
        return
    parts = args.parts.split(",")
    tasks = [t for t in args.tasks.split(",") if t]
    if "cache" in parts and args.cache_dir:  # its cold run must find the folder empty
        if held_features(args.cache_dir):
            parser.error(f"--cache-dir {args.cache_dir} holds {held_features(args.cache_dir)} feature files: the "
                         "cache part's cold run would read them (give an empty folder, or none: a fresh temporary "
                         "one per task)")
        if len(tasks) > 1:  # the second task's cold run would read the first's features (fashion's share inputs)
            parser.error("--cache-dir with the cache part: one task at a time (or no --cache-dir: a fresh "
                         "temporary folder per task)")
    from common import describe_setup

    print(describe_setup(args), flush=True)
    if "throughput" in parts:
        throughput(args.n_images, args.n_texts)
    if "cache" in parts:
        for task in tasks:
            cache_effect(task, args.trials, args.cache_dir)
    if "accuracy" in parts:
        for task in tasks:
            accuracy(task, args.time_limit, args.cache_dir, args.pretrained_only, not args.no_baseline, args.seed)


if __name__ == "__main__":
    main()
