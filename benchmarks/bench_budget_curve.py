"""Benchmark of quality against budget: what ``AutoMM(time_limit=T)`` gives for a rising series of
``T`` on one fixed training sample, so that a longer budget can be checked to give a model at
least as good, and a fit to end near its limit.

Data: ``--tasks`` of ``common.load_task`` (image + text, the fixed ``split`` column; data at
``$AUTOMM_DATA`` or ``../shared/data``), a fixed sample of ``--train-rows`` training rows and of
``--test-rows`` test rows (drawn once with seed 0, the same for every budget and seed; 0: every
row). Each fit runs in a fresh process (as a user's would: the pretrained networks load within its
budget) with whatever plugins are installed. ``--cache warm`` (the default) first fills the
``--cache-dir`` feature cache with one fit of the frozen pretrained encoders per task and its test
predictions, so that the curve is not about feature extraction; ``--cache cold`` gives every fit
an empty cache of its own (``--cache-dir`` refused: it would not stay empty).

Printed per fit, then as one table: test accuracy, the fit's wall seconds and its overrun of ``T``,
the trials (finished / pruned / failed), the seconds before the first trial started and after the
last one ended (validation, retraining, the ensemble), the longest gap between trials, the
models kept (``trial:model=weight``, the model being ``linear``, ``knn`` (nearest neighbours),
``default`` or the trial's fusion, ``-bagN`` added for an N-fold bag), and the load average when it started
(on a shared machine timings follow it: rerun an outlier). ``--out`` also writes each fit as a
JSON line.

Usage::

    python benchmarks/bench_budget_curve.py --cache-dir /tmp/budget-cache
    python benchmarks/bench_budget_curve.py --tasks emoji-category --time-limits 15,30,60 --seeds 0 --cache-dir /tmp/c
    python benchmarks/bench_budget_curve.py --cache cold --tasks fashion-usage --time-limits 15,30,60,120 --seeds 0

Takes the sum of the time limits times the tasks and seeds, plus 15-30 s per fit (the process
starting, the test predictions; cold, up to a minute more for the test rows' features) and, warm,
up to two minutes per task warming the cache: the defaults (three tasks, 15 to 240 s, two seeds)
about an hour on 2 cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TASKS = ("fashion-usage", "fashion-subcategory", "emoji-category")
FROZEN = {"image": {"name": "efficientnet_lite0", "trainable_layers": 0},
          "text": {"name": "minilm", "trainable_layers": 0}}


def sample(task: str, train_rows: int, test_rows: int):
    """(X, y, X_test, y_test): the task's fixed samples (seed 0, whatever the fit's seed)."""
    from common import load_task

    train, test, image, text, label = load_task(task)
    if 0 < train_rows < len(train):
        train = train.sample(train_rows, random_state=0).reset_index(drop=True)
    if 0 < test_rows < len(test):
        test = test.sample(test_rows, random_state=0).reset_index(drop=True)
    return train[[image, text]], train[label], test[[image, text]], test[label]


def kind_of(row) -> str:
    """What a leaderboard row's model is, in a word."""
    fusion = row.get("fusion")
    name = ("linear" if fusion == "sum" else "knn" if fusion == "neighbors"
            else "default" if row.get("default") else str(fusion))
    folds = row.get("folds")
    return f"{name}-bag{int(folds)}" if folds and folds == folds and int(folds) > 1 else name


def timeline(board, started: datetime.datetime, seconds: float) -> dict:
    """Seconds before the first trial started, after the last one ended, and the longest gap
    between one trial's end and the next one's start (trials run one at a time here)."""
    spans = sorted(((s - started).total_seconds(), (e - started).total_seconds())
                   for s, e in zip(board["start"], board["complete"])
                   if isinstance(s, datetime.datetime) and isinstance(e, datetime.datetime))
    if not spans:
        return {"before_first": None, "after_last": None, "longest_gap": None}
    gaps, end = [], spans[0][1]
    for start, stop in spans[1:]:
        gaps.append(start - end)
        end = max(end, stop)
    return {"before_first": round(spans[0][0], 2), "after_last": round(seconds - end, 2),
            "longest_gap": round(max(gaps), 2) if gaps else 0.0}


def number(value) -> float | None:
    """A leaderboard cell as JSON: a float rounded to 4 places, or None where missing."""
    return None if value is None or value != value else round(float(value), 4)


def one_fit(settings: dict) -> dict:
    """One ``AutoMM(time_limit=...)`` fit and its test score (run in a fresh process)."""
    from common import kept_models

    from automm import AutoMM

    X, y, X_test, y_test = sample(settings["task"], settings["train_rows"], settings["test_rows"])
    load = os.getloadavg()[0]
    started = datetime.datetime.now()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoMM(time_limit=settings["time_limit"], random_state=settings["seed"],
                       cache_dir=settings["cache_dir"]).fit(X, y)
        seconds = time.perf_counter() - start
        accuracy = float(model.score(X_test, y_test))
    record = {**{k: settings[k] for k in ("task", "time_limit", "seed", "cache")}, "n_train": len(X),
              "n_test": len(X_test), "test_accuracy": accuracy, "seconds": round(seconds, 2),
              "overrun": round(seconds - settings["time_limit"], 2), "load_start": round(load, 1),
              "load_end": round(os.getloadavg()[0], 1), "holdout_score": model.fit_summary()["validation_score"],
              "warnings": sorted({str(w.message)[:200] for w in caught})}
    board = getattr(model, "leaderboard_", None)
    if board is None:  # no search ran
        return {**record, "trials": {}, "kept": {}, "board": []}
    rows = board.to_dict("records")
    kinds = {int(row["number"]): kind_of(row) for row in rows}
    record["trials"] = {state: int((board["state"] == state).sum()) for state in ("COMPLETE", "PRUNED", "FAIL")}
    kept = kept_models(model)
    kept = {kept["trial"]: 1.0} if "trial" in kept else kept  # one trial kept alone
    record["kept"] = {f"{trial}:{kinds.get(int(trial), '?')}": weight for trial, weight in kept.items()}
    record.update(timeline(board, started, seconds))
    record["board"] = [{"number": int(row["number"]), "kind": kinds[int(row["number"])], "state": row["state"],
                        "score": number(row["score"]), "seconds": number(row["seconds"]),
                        "reason": row["reason"]} for row in rows]
    return record


def warm(task: str, cache_dir: str, train_rows: int, test_rows: int) -> float:
    """Fill ``cache_dir`` with the frozen pretrained features of the task's samples (one fit and its
    test predictions); the seconds it took."""
    from automm import AutoMM, list_encoders

    if not {"efficientnet_lite0", "minilm"} <= set(list_encoders()):
        return 0.0  # nothing to warm: automm-pretrained is not installed
    X, y, X_test, y_test = sample(task, train_rows, test_rows)
    start = time.perf_counter()
    AutoMM(encoders=FROZEN, max_epochs=1, cache_dir=cache_dir, random_state=0).fit(X, y).score(X_test, y_test)
    return time.perf_counter() - start


def child(arguments: list[str]) -> dict:
    """Run this script's ``--_fit`` or ``--_warm`` in a fresh process; its last stdout line, parsed."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(r: dict) -> str:
    if "error" in r:
        return f"{r['task']:<20} {r['time_limit']:>5g} {r['seed']:>4} failed: {r['error']}"
    trials = r["trials"]
    counts = f"{trials.get('COMPLETE', 0)}/{trials.get('PRUNED', 0)}/{trials.get('FAIL', 0)}" if trials else "-"
    kept = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else k for k, v in r["kept"].items()) or "-"
    gaps = "/".join("-" if r.get(k) is None else f"{r[k]:.1f}" for k in ("before_first", "longest_gap", "after_last"))
    return (f"{r['task']:<20} {r['time_limit']:>5g} {r['seed']:>4} {r['test_accuracy']:>7.4f} {r['seconds']:>7.1f} "
            f"{r['overrun']:>+6.1f} {counts:>7} {gaps:>14} {r['load_start']:>5.1f}  {kept}")


HEADER = (f"{'task':<20} {'T':>5} {'seed':>4} {'test':>7} {'fit s':>7} {'over':>6} {'f/p/x':>7} "
          f"{'pre/gap/post s':>14} {'load':>5}  kept (trial:model=weight)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--time-limits", default="15,30,60,120,240", help="comma-separated seconds")
    parser.add_argument("--seeds", default="0,1", help="comma-separated random_state values")
    parser.add_argument("--train-rows", type=int, default=1500, help="training sample (0: every row)")
    parser.add_argument("--test-rows", type=int, default=1000, help="test sample (0: every row)")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm")
    parser.add_argument("--cache-dir", default=None, help="the feature cache a warm curve fills and reads "
                        "(default: a temporary folder, deleted after)")
    parser.add_argument("--out", default=None, help="also write each fit as a JSON line here")
    parser.add_argument("--_fit", dest="fit", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_warm", dest="warm", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fit:
        print(json.dumps(one_fit(json.loads(args.fit))))
        return
    if args.warm:
        print(json.dumps(warm(args.warm, args.cache_dir, args.train_rows, args.test_rows)))
        return
    if args.cache == "cold" and args.cache_dir:
        parser.error("--cache-dir with --cache cold: each cold fit needs an empty cache of its own (a temporary "
                     "folder, given to it alone)")
    tasks = [t for t in args.tasks.split(",") if t]
    limits = [float(t) for t in args.time_limits.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    from common import describe_setup

    print(describe_setup(args), flush=True)
    scratch = tempfile.mkdtemp(prefix="automm-budget-curve-")
    results, failed = [], 0
    try:
        for task in tasks:
            cache_dir = args.cache_dir or os.path.join(scratch, "cache")
            if args.cache == "warm":
                try:
                    seconds = child(["--_warm", task, "--cache-dir", cache_dir, "--train-rows",
                                     str(args.train_rows), "--test-rows", str(args.test_rows)])
                except RuntimeError as error:  # its curve would be a cold one: none
                    failed += 1
                    print(error, file=sys.stderr, flush=True)
                    continue
                print(f"# {task}: cache warmed in {seconds:.0f} s", flush=True)
            for limit in limits:
                for seed in seeds:
                    fit_cache = cache_dir if args.cache == "warm" else tempfile.mkdtemp(dir=scratch)
                    settings = {"task": task, "time_limit": limit, "seed": seed, "cache": args.cache,
                                "cache_dir": fit_cache, "train_rows": args.train_rows, "test_rows": args.test_rows}
                    try:
                        record = child(["--_fit", json.dumps(settings)])
                    except RuntimeError as error:
                        failed += 1
                        record = {**settings, "error": str(error).strip().splitlines()[-1]}
                        print(error, file=sys.stderr, flush=True)
                    if args.cache == "cold":
                        shutil.rmtree(fit_cache, ignore_errors=True)
                    results.append(record)
                    print(line(record), flush=True)
                    if args.out:
                        with open(args.out, "a", encoding="utf-8") as out:
                            out.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n" + HEADER)
    for record in results:
        print(line(record))
    if failed:
        print(f"{failed} fit(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
