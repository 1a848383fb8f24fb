"""Search benchmark (issue 3): what the Optuna search buys on fashion subCategory.

    python benchmarks/bench_search.py                          # time_limit=900 s per run (about an hour)
    python benchmarks/bench_search.py --time-limit 120         # a reduced run
    python benchmarks/bench_search.py --parts accuracy pruning --out results.json
    python benchmarks/bench_search.py --parts pruning --sampled-only   # pruning on sampled trials only
    python benchmarks/bench_search.py --parts pruning --space frozen   # a search over fusions and heads

Parts (each fit in its own process; image + productDisplayName; classes with >= 30 train
rows; train/test by the ``split`` column; data at $AUTOMM_DATA or ../shared/data):

1. accuracy: test accuracy of the untuned default (``n_trials=1``: the core configuration under
   the same time limit), of the searched model (best trial) and of the ensemble
   (``ensemble_size``) of the same search;
2. pruning: the same search (budget, seed) with a pruner (``--pruner``, default median) and without pruning: trials
   finished, best validation score of a finished trial, and the wall time at which the pruned
   search first finished a trial reaching the unpruned search's best validation score, as a
   share of the time the unpruned search took to reach it (target: at most 0.5), and that share
   at equal machine speed (the runs' times for the leading trials both trained alike set the
   ratio: this machine's speed drifts by tens of percent between runs), and, for every level the
   unpruned search's best passed on its way, when each search first reached it. A search
   starts with the default configuration (and its presets), which no pruner stops and which
   is often the best trial; ``--sampled-only``
   measures the searches with every trial sampled instead; ``--space frozen`` restricts the
   encoders to the frozen pretrained ones (automm-pretrained, cached features: seconds per
   trial, every trial sampled), the search over fusions, heads and training hyperparameters
   where a 900 s budget holds dozens of trials rather than four;
3. parallel: two worker processes sharing one journal storage (``n_jobs=2``) vs one process:
   trials per hour (target >= 1.7x on 2 cores where trials are not thread-bound).

Takes ``--time-limit`` per run (two runs per part; ``search`` is shared by the parts): every part at
the default 900 s, about an hour, after a few minutes warming the cache (``--cache warm``).

The search space is automm's default (every installed encoder and fusion, augmentations and
training hyperparameters). Features of frozen pretrained encoders (automm-pretrained) are
computed once before the timed runs into a benchmark-private cache (``--cache warm``, the
default: every run sees the same warm cache, as repeated work on one data set does); with
``--cache fresh`` every run starts from an empty cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_setup, load_task  # noqa: E402

PARTS = ("accuracy", "pruning", "parallel")
RUNS = {  # run name -> (parts needing it, AutoMM parameters besides time_limit and random_state)
    "default": (("accuracy",), {"n_trials": 1}),
    "search": (("accuracy", "pruning", "parallel"), {"pruner": "median"}),
    "search-no-pruning": (("pruning",), {"pruner": "none"}),
    "search-2-workers": (("parallel",), {"pruner": "median", "n_jobs": 2}),
}


def _best_complete_score(board) -> float:
    """The best validation score of a finished (not pruned) trial: a pruned trial reports the
    score it had when stopped (a bag's: its first fold's), which the search never ranks above a
    finished trial's."""
    complete = board[board["state"] == "COMPLETE"]["score"].dropna()
    return float(complete.max()) if len(complete) else float("nan")


def _timeline(board) -> list[dict]:
    """(seconds since the first trial started, score, state) per finished trial."""
    finished = board[board["complete"].notna()]
    if not len(finished):
        return []
    origin = board["start"].dropna().min()
    return sorted(({"t": (row["complete"] - origin).total_seconds(), "score": row["score"], "state": row["state"],
                    "number": int(row["number"])} for _, row in finished.iterrows()), key=lambda r: r["t"])


#: ``--space frozen``: every trial sampled, the encoders fixed to the frozen pretrained ones
FROZEN_SPACE = {"warm_start": False,
                "encoders": {"image": {"efficientnet_lite0": {"trainable_layers": 0}},
                             "text": {"minilm": {"trainable_layers": 0}}}}


def run_one(task: str, run: str, time_limit: float, seed: int, ensemble_size: int, sampled_only: bool = False,
            space: str = "default", pruner: str = "median") -> dict:
    from sklearn.metrics import accuracy_score

    from automm import AutoMM

    train, test, image, text, label = load_task(task)
    columns = [image, text]
    params = dict(RUNS[run][1], random_state=seed, time_limit=time_limit)
    if params.get("pruner") == "median":  # the pruned runs
        params["pruner"] = pruner
    if run == "search":
        params["ensemble_size"] = ensemble_size
    if run != "default" and (space == "frozen" or sampled_only):
        params["search_space"] = FROZEN_SPACE if space == "frozen" else {"warm_start": False}
    journal = None
    if run == "search-2-workers":
        journal = tempfile.mkdtemp(prefix="automm-bench-") + "/study.log"
        params["storage"] = journal
    start = time.perf_counter()
    clf = AutoMM(**params).fit(train[columns], train[label])
    fit_seconds = time.perf_counter() - start
    result = {"task": task, "run": run, "params": {k: v for k, v in params.items() if k != "storage"},
              "n_train": len(train), "n_test": len(test), "fit_seconds": fit_seconds,
              "accuracy": float(accuracy_score(test[label], clf.predict(test[columns]))),
              "valid_score": float(clf.best_score_), "config": clf.config_}
    board = getattr(clf, "leaderboard_", None)
    if board is not None:
        states = board["state"].value_counts().to_dict()
        result.update(trials=len(board), states=states, best_trial=int(clf.best_trial_),
                      best_valid=_best_complete_score(board), timeline=_timeline(board),
                      trials_per_hour=3600.0 * len(board) / fit_seconds,
                      workers=int(board["worker"].nunique()),
                      leaderboard=[{k: (None if v != v else v) for k, v in row.items()}
                                   for row in board[["number", "state", "score", "encoders", "fusion", "epochs",
                                                     "seconds", "reason"]].to_dict("records")])
        ensemble = getattr(clf, "ensemble_", None)
        if ensemble is not None:
            result["ensemble_accuracy"] = result["accuracy"]
            result["ensemble"] = ensemble.describe()
            del clf.ensemble_  # the best trial alone
            result["accuracy"] = float(accuracy_score(test[label], clf.predict(test[columns])))
        else:
            result["ensemble_accuracy"] = result["accuracy"]
            result["ensemble"] = None
    return result


def warm_cache(task: str, cache_dir: str) -> dict:
    """Compute the features of every frozen pretrained encoder (default hyperparameters) for
    all rows of ``task`` into ``cache_dir``; returns seconds per encoder."""
    import os

    os.environ["AUTOMM_CACHE_DIR"] = cache_dir
    import automm
    from automm.components.base import MISSING

    train, test, image, text, _ = load_task(task)
    seconds = {}
    for modality, column in (("image", image), ("text", text)):
        values = [MISSING if v != v else v for v in list(train[column]) + list(test[column])]
        for name in automm.list_encoders(modality=modality):
            encoder = automm.create_encoder(name)
            if not getattr(encoder, "frozen", False):
                continue
            start = time.perf_counter()
            encoder.fit(values[: len(train)])
            encoder.prepare(values, cache_dir=cache_dir)
            seconds[name] = time.perf_counter() - start
    return seconds


def _reach_time(timeline: list[dict], target: float) -> float | None:
    for point in timeline:
        if point["state"] == "COMPLETE" and point["score"] is not None and point["score"] >= target - 1e-12:
            return point["t"]
    return None


def _milestones(pruned: list[dict], unpruned: list[dict]) -> list[tuple[float, float, float | None]]:
    """(score, seconds without pruning, seconds with pruning or None) for every level at which
    the unpruned search's best finished trial improved: the whole race, not only its last step,
    which on a flat landscape is often a single validation row decided late."""
    levels, best = [], float("-inf")
    for point in unpruned:
        if point["state"] == "COMPLETE" and point["score"] is not None and point["score"] > best:
            best = point["score"]
            levels.append((best, point["t"], _reach_time(pruned, best)))
    return levels


def _speed_ratio(pruned: dict, unpruned: dict) -> tuple[float, int] | None:
    """(seconds of the pruned run / seconds of the unpruned run, trials) over the leading trials
    that both runs trained alike (same number, complete in both, same epochs and score: the same
    configuration, since both searches sample the same first trials): how much faster the
    machine ran the pruned search, which the wall-time share mixes in."""
    ours = {row["number"]: row for row in pruned["leaderboard"]}
    theirs = {row["number"]: row for row in unpruned["leaderboard"]}
    a = b = 0.0
    n = 0
    while n in ours and n in theirs:
        x, y = ours[n], theirs[n]
        if not (x["state"] == y["state"] == "COMPLETE" and x["epochs"] == y["epochs"]
                and x["score"] is not None and y["score"] is not None and abs(x["score"] - y["score"]) < 1e-9):
            break
        a, b, n = a + x["seconds"], b + y["seconds"], n + 1
    return (a / b, n) if n and b > 0 else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="fashion-subcategory")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--time-limit", type=float, default=900)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ensemble-size", type=int, default=5)
    parser.add_argument("--out", help="write the results as JSON here (default: a new temporary folder)")
    parser.add_argument("--cache", choices=("warm", "fresh"), default="warm")
    parser.add_argument("--cache-dir", help="with --cache warm: an already warmed cache to reuse (never deleted)")
    parser.add_argument("--sampled-only", action="store_true",
                        help="searches sample every trial (search_space={'warm_start': False}): no default "
                             "configuration or presets first, so that pruning acts on every trial")
    parser.add_argument("--space", choices=("default", "frozen"), default="default",
                        help="frozen: searches over fusions and heads on the frozen pretrained encoders only "
                             "(needs automm-pretrained; every trial sampled)")
    parser.add_argument("--pruner", choices=("median", "hyperband", "successive_halving"), default="median",
                        help="the pruner of the pruned runs (default: median, automm's default)")
    parser.add_argument("--child", metavar="RUN", help=argparse.SUPPRESS)
    parser.add_argument("--warm", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cache == "fresh" and args.cache_dir:  # each run's cache is emptied: never a folder of the user's
        parser.error("--cache-dir names a warmed cache to reuse, with --cache warm; --cache fresh gives every run "
                     "a new empty cache of its own")
    if args.warm:
        print("RESULT " + json.dumps(warm_cache(args.task, args.warm)), flush=True)
        return
    if args.child:
        print("RESULT " + json.dumps(run_one(args.task, args.child, args.time_limit, args.seed, args.ensemble_size,
                                             args.sampled_only, args.space, args.pruner), default=str), flush=True)
        return
    print(describe_setup(args), flush=True)
    import os
    import shutil

    results: dict[str, dict] = {}
    failed: list[str] = []
    env = dict(os.environ)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="automm-bench-cache-")
    if args.cache == "warm":
        env["AUTOMM_CACHE_DIR"] = cache
        proc = subprocess.run([sys.executable, __file__, "--warm", cache, "--task", args.task], capture_output=True,
                              text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:  # the runs would not see the same warm cache: the first would pay for it
            sys.exit(f"warming the feature cache {cache} failed:\n{proc.stderr[-3000:]}")
        print(f"feature cache {cache} warmed (seconds per encoder): {lines[-1][7:]}", flush=True)
    for run, (parts, _) in RUNS.items():
        if not set(parts) & set(args.parts):
            continue
        if args.cache == "fresh":  # the previous run's cache, made here, and a new empty one
            shutil.rmtree(cache, ignore_errors=True)
            cache = env["AUTOMM_CACHE_DIR"] = tempfile.mkdtemp(prefix="automm-bench-cache-")
        proc = subprocess.run([sys.executable, __file__, "--child", run, "--task", args.task, "--time-limit",
                               str(args.time_limit), "--seed", str(args.seed), "--ensemble-size",
                               str(args.ensemble_size), "--space", args.space, "--pruner", args.pruner,
                               *(["--sampled-only"] if args.sampled_only else [])],
                              capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(f"{run}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            failed.append(run)
            continue
        result = results[run] = json.loads(lines[-1][7:])
        extra = ""
        if "trials" in result:
            extra = (f"  trials {result['trials']} {result['states']}  best valid {result['best_valid']:.4f}  "
                     f"{result['trials_per_hour']:.0f} trials/h  workers {result['workers']}")
        print(f"{run:18s} test acc {result['accuracy']:.4f}  fit {result['fit_seconds']:6.1f}s{extra}", flush=True)

    if args.cache == "fresh":
        shutil.rmtree(cache, ignore_errors=True)
    print()
    if "accuracy" in args.parts and {"default", "search"} <= set(results):
        d, s = results["default"], results["search"]
        members = len(s["ensemble"]) if s["ensemble"] else 1
        print(f"accuracy: default {d['accuracy']:.4f}  searched {s['accuracy']:.4f}  "
              f"ensemble ({members} member(s)) {s['ensemble_accuracy']:.4f}   [time_limit {args.time_limit:.0f} s each]")
    if "pruning" in args.parts and {"search", "search-no-pruning"} <= set(results):
        p, n = results["search"], results["search-no-pruning"]
        target = n["best_valid"]
        t_unpruned = _reach_time(n["timeline"], target)
        t_pruned = _reach_time(p["timeline"], target)
        share = (t_pruned / t_unpruned) if (t_pruned is not None and t_unpruned) else None
        print(f"pruning: with {args.pruner} pruner {p['trials']} trials {p['states']} best valid {p['best_valid']:.4f}; "
              f"without {n['trials']} trials best valid {n['best_valid']:.4f}")
        print(f"pruning: unpruned best {target:.4f} reached after {t_unpruned if t_unpruned is not None else float('nan'):.0f} s "
              f"without pruning, {'never' if t_pruned is None else f'{t_pruned:.0f} s'} with pruning"
              + ("" if share is None else f" (share {share:.2f}; target <= 0.5: {'met' if share <= 0.5 else 'not met'})"))
        levels = _milestones(p["timeline"], n["timeline"])
        if levels:
            print("pruning: each level the unpruned search's best passed, and when each search first reached it "
                  "(score: s without / s with pruning):")
            print("    " + ", ".join(f"{score:.4f}: {a:.0f} / {'never' if b is None else f'{b:.0f}'}"
                                     for score, a, b in levels))
        speed = _speed_ratio(p, n)
        if speed is not None and share is not None:
            print(f"pruning: the {speed[1]} leading trials both searches trained alike took {speed[0]:.2f}x as long in the "
                  f"pruned run; at equal machine speed the share would be {share / speed[0]:.2f}")
    if "parallel" in args.parts and {"search", "search-2-workers"} <= set(results):
        one, two = results["search"], results["search-2-workers"]
        ratio = two["trials_per_hour"] / one["trials_per_hour"] if one["trials_per_hour"] else float("nan")
        print(f"parallel: 1 process {one['trials_per_hour']:.0f} trials/h, 2 processes on one journal "
              f"{two['trials_per_hour']:.0f} trials/h: {ratio:.2f}x (target >= 1.7x)")
    # every run's leaderboard and timeline, kept even without --out: a 30-minute comparison is
    # not worth rerunning to see which trials made the difference
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="automm-bench-results-")) / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results (every trial of every run): {out}")
    if failed:
        sys.exit(f"{len(failed)} run(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
