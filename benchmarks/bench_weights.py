"""Benchmark of ``fit(..., sample_weight=...)`` on the real data in ``$AUTOMM_DATA`` or
``../shared/data`` (fixed ``split`` columns): what weights buy when some training labels are
known to be doubtful.

A share of the training rows (``--noise``, default 0.2, chosen with a fixed seed) gets a wrong
label (another class drawn at random). ``AutoMM(time_limit=...)`` is then fitted four times on
the same rows, each in the same process one after the other:

* ``clean`` — the true labels (the reference);
* ``noisy`` — the corrupted labels, every row weight 1;
* ``noisy, doubtful rows at weight W`` — the corrupted rows weighted ``--weight`` (default 0.1),
  as a user does who knows which labels came from a cheaper source;
* ``noisy, doubtful rows at weight 0`` — the same rows left out.

Printed per run: test accuracy (true test labels), fit seconds, trials, and what the ensemble
kept. With automm-pretrained installed the search uses its frozen encoders as usual.

Takes about ``--time-limit`` per run and half a minute more (four runs at 120 s: about 9 minutes).

Usage::

    python benchmarks/bench_weights.py --task fashion-subcategory --time-limit 120
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


def corrupt(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` with ``share`` of them replaced by another class, and the corrupted rows' mask."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    doubtful = np.zeros(len(labels), dtype=bool)
    doubtful[rng.choice(len(labels), size=int(round(share * len(labels))), replace=False)] = True
    noisy = labels.copy()
    for i in np.flatnonzero(doubtful):
        noisy[i] = rng.choice(classes[classes != labels[i]])
    return noisy, doubtful


def main(argv: list[str] | None = None) -> None:
    from automm import AutoMM
    from common import describe_setup, fit_trials, kept_models, load_task, task_parser

    parser = task_parser(__doc__, "fashion-subcategory")
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--weight", type=float, default=0.1)
    parser.add_argument("--runs", default="clean,noisy,weighted,dropped")
    args = parser.parse_args(argv)
    print(describe_setup(args), flush=True)

    train, test, image, text, label = load_task(args.task)
    X, X_test = train[[image, text]], test[[image, text]]
    y = train[label].to_numpy(dtype=object)
    noisy, doubtful = corrupt(y, args.noise, args.seed)
    print(f"# {args.task}: {len(X)} train rows, {int(doubtful.sum())} relabelled wrongly; {len(X_test)} test rows; "
          f"cpus={os.cpu_count()}", flush=True)
    runs = {
        "clean": (y, None),
        "noisy": (noisy, None),
        "weighted": (noisy, np.where(doubtful, args.weight, 1.0)),
        "dropped": (noisy, np.where(doubtful, 0.0, 1.0)),
    }
    for name in args.runs.split(","):
        labels, weights = runs[name]
        start = time.perf_counter()
        model = AutoMM(time_limit=args.time_limit, random_state=args.seed).fit(X, labels, sample_weight=weights)
        seconds = time.perf_counter() - start
        predictions = model.predict(X_test)
        errors = int((predictions != test[label].to_numpy(dtype=object)).sum())
        accuracy = 1.0 - errors / len(X_test)
        kept, trials = kept_models(model), fit_trials(model)
        what = {"clean": "true labels", "noisy": "noisy labels, weight 1",
                "weighted": f"noisy labels, doubtful rows weight {args.weight}",
                "dropped": "noisy labels, doubtful rows weight 0"}[name]
        print(f"{name:9s} ({what}): test accuracy {accuracy:.4f} ({errors} errors) in {seconds:.0f} s, "
              f"{trials} trials, kept {kept}", flush=True)
        print(json.dumps({"run": name, "task": args.task, "test_accuracy": accuracy, "errors": errors,
                          "seconds": seconds, "trials": trials, "ensemble": kept, "time_limit": args.time_limit,
                          "noise": args.noise, "weight": args.weight, "seed": args.seed}), flush=True)


if __name__ == "__main__":
    main()
