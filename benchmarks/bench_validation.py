"""Benchmark of ``fit(..., X_val=..., y_val=...)`` on the real data in ``$AUTOMM_DATA`` or
``../shared/data`` (fixed ``split`` columns): what it costs that no model trains on the user's
validation rows.

The same rows of the training set (``--share`` of them, default 0.1: those ``AutoMM(holdout_frac=share,
random_state=seed)`` holds out, stratified) are held out twice: once by ``AutoMM`` itself (``holdout_frac``;
the linear and nearest-neighbour models are refitted with those rows and bags fold every row), once passed
as ``X_val, y_val`` (nothing trains on them). Printed per run: test accuracy, fit seconds, trials, what the
ensemble kept.

Takes about 2 x ``--time-limit`` and half a minute more.

Usage::

    python benchmarks/bench_validation.py --task fashion-subcategory --time-limit 120
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    from automm import AutoMM
    from common import describe_setup, fit_trials, held_out_rows, kept_models, load_task, task_parser

    parser = task_parser(__doc__, "fashion-subcategory")
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args(argv)
    print(describe_setup(args), flush=True)

    train, test, image, text, label = load_task(args.task)
    columns = [image, text]
    held = np.zeros(len(train), dtype=bool)
    held[held_out_rows(train[label], args.share, args.seed)] = True  # the holdout run's own validation rows
    fit, val = train[~held], train[held]
    print(f"# {args.task}: {len(fit)} + {len(val)} train rows, {len(test)} test rows, cpus={os.cpu_count()}",
          flush=True)
    runs = {
        "holdout": dict(X=train[columns], y=train[label], kwargs={}),
        "X_val": dict(X=fit[columns], y=fit[label], kwargs={"X_val": val[columns], "y_val": val[label]}),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        model = AutoMM(time_limit=args.time_limit, random_state=args.seed, holdout_frac=args.share)
        model.fit(run["X"], run["y"], **run["kwargs"])
        seconds = time.perf_counter() - start
        errors = int((model.predict(test[columns]) != test[label].to_numpy(dtype=object)).sum())
        kept, trials = kept_models(model), fit_trials(model)
        accuracy = 1 - errors / len(test)
        print(f"{name:8s}: test accuracy {accuracy:.4f} ({errors} errors) in {seconds:.0f} s, {trials} trials, "
              f"kept {kept}", flush=True)
        print(json.dumps({"run": name, "task": args.task, "test_accuracy": accuracy, "errors": errors,
                          "seconds": seconds, "trials": trials, "ensemble": kept, "seed": args.seed,
                          "time_limit": args.time_limit}), flush=True)


if __name__ == "__main__":
    main()
