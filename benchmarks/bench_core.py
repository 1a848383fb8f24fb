"""Core benchmark: default AutoMM on the shared data, fused vs single-modality, and the
training-loop overhead against a hand-written torch loop.

    python benchmarks/bench_core.py                          # all tasks, modes both/image/text, 600 s each
    python benchmarks/bench_core.py --tasks emoji-category --time-limit 120
    python benchmarks/bench_core.py --loop-ratio             # per-epoch time: automm vs plain torch loop

Each fit runs in its own process so that peak memory is measured per run. Figures are printed
as a table and, with --out, written as JSON. Data: $AUTOMM_DATA or ../shared/data.

Takes about ``--time-limit`` per task and mode and half a minute more (all nine at 600 s: about 95 minutes);
``--loop-ratio`` about 2 minutes on an idle 2-core machine (2 epochs of fashion subCategory, each way).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_setup, load_task  # noqa: E402

TASKS = ("fashion-subcategory", "fashion-usage", "emoji-category")
MODES = ("both", "image", "text")
#: scikit-learn alone (word 1-2-gram + char 2-5-gram TF-IDF on the text, logistic regression), measured here.
REFERENCE = {"fashion-subcategory": 0.993, "fashion-usage": 0.964, "emoji-category": 0.744}


def _rounded(value, digits: int):
    """``value`` rounded, or None when it is missing (None or NaN in the leaderboard)."""
    return None if value is None or value != value else round(float(value), digits)


def _whole(value):
    """``value`` as a Python int (the leaderboard's are numpy's, which JSON cannot write), or None when missing."""
    return None if value is None or value != value else int(value)


def trial_records(board) -> list[dict]:
    """Each trial of a ``leaderboard_`` as plain values (JSON)."""
    return [{"number": int(r.number), "state": r.state, "score": _rounded(r.score, 4), "encoders": r.encoders,
             "fusion": r.fusion, "epochs": _whole(r.epochs), "best_epoch": _whole(r.best_epoch),
             "seconds": _rounded(r.seconds, 1), "reason": r.reason, "default": bool(r.default)}
            for r in board.itertuples()]


def ensemble_weights(ensemble) -> dict[str, float]:
    """Each kept trial's weight in an ``ensemble_``, a bag's fold models summed."""
    weights: dict[str, float] = {}
    for member in ensemble.members:
        weights[str(member.trial)] = weights.get(str(member.trial), 0.0) + member.weight
    return {trial: round(weight, 3) for trial, weight in weights.items()}


def run_one(task: str, mode: str, time_limit: float, seed: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from automm import AutoMM

    train, test, image, text, label = load_task(task)
    columns = {"both": [image, text], "image": [image], "text": [text]}[mode]
    start = time.perf_counter()
    clf = AutoMM(random_state=seed, time_limit=time_limit).fit(train[columns], train[label])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predictions = clf.predict(test[columns])
    predict_seconds = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    extra = {}
    if getattr(clf, "ensemble_", None) is not None:  # what the best trial alone scores on the test set
        single = copy.copy(clf)
        del single.ensemble_
        extra = {"best_trial_accuracy": float(accuracy_score(test[label], single.predict(test[columns]))),
                 "ensemble_members": len(clf.ensemble_.members),  # a bag's fold models each
                 "ensemble": ensemble_weights(clf.ensemble_)}
        extra["ensemble_trials"] = len(extra["ensemble"])
    board = getattr(clf, "leaderboard_", None)
    if board is not None:  # what each trial did, for the record
        extra["leaderboard"] = trial_records(board)
    return {"task": task, "mode": mode, "n_train": len(train), "n_test": len(test), **extra,
            "trials": 0 if board is None else len(board),
            "accuracy": float(accuracy_score(test[label], predictions)),
            "macro_f1": float(f1_score(test[label], predictions, average="macro")),
            "fit_seconds": fit_seconds, "predict_seconds": predict_seconds, "peak_memory_mb": peak,
            "epochs": len(clf.history_), "stop_reason": clf.stop_reason_, "config": clf.config_}


def loop_ratio(task: str, epochs: int = 2, seed: int = 0) -> dict:
    """Seconds per training epoch: AutoMM's trainer vs a plain loop over the same model, data and
    optimiser (the rows AutoMM trains on, not its holdout; text samples computed once and images
    decoded once, kept for the second epoch, and the fused AdamW kernel, as AutoMM's training run has)."""
    import numpy as np
    import torch

    from automm import AutoMM
    from automm.components.image_cache import image_cache
    from automm.data import BatchCollator, MultimodalDataset, Table
    from automm.pipeline import build_model
    from automm.training import make_loader
    from common import held_out_rows

    train, _, image, text, label = load_task(task)
    columns = [image, text]
    clf = AutoMM(random_state=seed, max_epochs=epochs, patience=0, augmentations=None,
                 label_smoothing=0.0).fit(train[columns], train[label])
    automm_times = [r["train_seconds"] for r in clf.history_]
    automm_epoch = sum(automm_times) / len(automm_times)

    # The same model, data pipeline and optimiser, trained by a hand-written loop.
    trained = np.ones(len(train), dtype=bool)
    trained[held_out_rows(train[label], clf.holdout_frac, clf.seed_)] = False
    rows = train[trained]
    table = Table({c: rows[c].tolist() for c in columns})
    values = {spec.name: spec.values(table) for spec in clf.inputs_}
    targets = torch.as_tensor(clf.classes_.searchsorted(rows[label].to_numpy()))
    torch.manual_seed(seed)
    model = build_model(clf.inputs_, clf.config_, len(clf.classes_), fit_values=values)
    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders, targets.numpy(), reuse=True)
    loader = make_loader(dataset, clf.batch_size_, True, clf.num_workers_, seed, BatchCollator(encoders))
    optimiser = torch.optim.AdamW(model.parameters(), lr=clf.learning_rate, weight_decay=clf.weight_decay,
                                  fused=True)  # the kernel automm's trainer uses (10x the default's speed on CPU)
    times = []
    with image_cache():
        for _ in range(epochs):
            model.train()
            start = time.perf_counter()
            for batch in loader:
                loss = torch.nn.functional.cross_entropy(model(batch["inputs"], batch["masks"]), batch["target"])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            times.append(time.perf_counter() - start)
    plain_epoch = sum(times) / len(times)
    return {"task": task, "rows": int(trained.sum()), "epochs": epochs, "seed": seed,
            "automm_epoch_seconds": automm_epoch, "plain_loop_epoch_seconds": plain_epoch,
            "each_epoch_seconds": {"automm": [round(t, 1) for t in automm_times],
                                   "plain": [round(t, 1) for t in times]},
            "ratio": automm_epoch / plain_epoch, "ratio_is": "automm / plain loop (below 1: automm faster)"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop-ratio", action="store_true", help="measure trainer overhead instead")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(run_one(*args.child, args.time_limit, args.seed)), flush=True)
        return
    print(describe_setup(args), flush=True)
    if args.loop_ratio:
        result = loop_ratio("fashion-subcategory", seed=args.seed)
        print(json.dumps(result, indent=2))
        return
    results, failed = [], []
    for task in args.tasks:
        for mode in args.modes:
            proc = subprocess.run([sys.executable, __file__, "--child", task, mode, "--time-limit",
                                   str(args.time_limit), "--seed", str(args.seed)],
                                  capture_output=True, text=True)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{task} {mode}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                failed.append(f"{task} {mode}")
                continue
            result = json.loads(lines[-1][7:])
            results.append(result)
            print(f"{task:22s} {mode:6s} acc {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
                  f"fit {result['fit_seconds']:6.1f}s  predict {result['predict_seconds']:5.1f}s  "
                  f"peak {result['peak_memory_mb']:6.0f} MB  epochs {result['epochs']} ({result['stop_reason']})  "
                  f"trials {result['trials']}  ensemble of {result.get('ensemble_trials', 1)} trial(s), "
                  f"{result.get('ensemble_members', 1)} model(s) "
                  f"(best trial alone {result.get('best_trial_accuracy', result['accuracy']):.4f})  "
                  f"reference {REFERENCE[task]:.3f}", flush=True)
            for row in result.get("leaderboard", []):
                weight = result.get("ensemble", {}).get(str(row["number"]))
                print(f"    trial {row['number']:3d} {row['state']:8s} score {row['score']}  {row['encoders']}, "
                      f"{row['fusion']}  epochs {row['epochs']} (best {row['best_epoch']})  {row['seconds']} s"
                      + ("  [default]" if row["default"] else "") + ("" if weight is None else f"  weight {weight}")
                      + (f"  ({row['reason']})" if row["reason"] else ""), flush=True)
    for task in args.tasks:
        by_mode = {r["mode"]: r["accuracy"] for r in results if r["task"] == task}
        if "both" in by_mode:
            singles = [v for m, v in by_mode.items() if m != "both"]
            print(f"{task}: fused {by_mode['both']:.4f} vs reference {REFERENCE[task]:.3f} "
                  f"({'beats' if by_mode['both'] >= REFERENCE[task] else 'below'}); "
                  + (f"vs best single modality {max(singles):.4f}" if singles else "single modalities not run"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    if failed:
        sys.exit(f"{len(failed)} of {len(args.tasks) * len(args.modes)} runs failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
