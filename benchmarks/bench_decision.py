"""Benchmark of the decision rule (``automm.decision``) on the real data in ``$AUTOMM_DATA`` or
``../shared/data`` (fixed ``split`` columns): what ``predict`` gains on the metric it was asked
for, against naming the most probable class.

For each ``--metrics`` entry, ``AutoMM(time_limit=..., metric=M)`` is fitted once; its test
outputs then decide twice: by argmax, and by the fitted class weights (``decision_weights_``,
``prior ** -alpha``, alpha chosen on the holdout). Printed: accuracy, balanced accuracy and
macro-F1 of both, and the weights.

Takes about ``--time-limit`` per metric and half a minute more (the default 120 s, two metrics: 5 minutes).

Usage::

    python benchmarks/bench_decision.py --task fashion-usage --metrics balanced_accuracy,macro_f1
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCORES = ("accuracy", "balanced_accuracy", "macro_f1")


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    from automm import AutoMM
    from automm.decision import decide
    from automm.training import classification_score
    from common import describe_setup, fit_trials, kept_models, load_task, task_parser

    parser = task_parser(__doc__, "fashion-usage")
    parser.add_argument("--metrics", default="balanced_accuracy,macro_f1")
    args = parser.parse_args(argv)
    print(describe_setup(args), flush=True)

    train, test, image, text, label = load_task(args.task)
    columns = [image, text]
    print(f"# {args.task}: {len(train)} train rows, {len(test)} test rows, cpus={os.cpu_count()}", flush=True)
    for metric in args.metrics.split(","):
        start = time.perf_counter()
        model = AutoMM(time_limit=args.time_limit, random_state=args.seed, metric=metric)
        model.fit(train[columns], train[label])
        seconds = time.perf_counter() - start
        outputs = model._raw_outputs((test[columns],))
        codes = {c: i for i, c in enumerate(model.classes_)}
        targets = np.array([codes.get(v, -1) for v in test[label]])
        known = targets >= 0  # rows of a label never seen in training are left out
        outputs, targets = outputs[known], targets[known]
        weights = model.decision_weights_
        result = {}
        for rule, w in (("argmax", None), ("fitted", weights)):
            predicted = decide(outputs, w)
            result[rule] = {s: round(classification_score(predicted, targets, s), 4) for s in SCORES}
        print(f"{metric}: argmax {result['argmax']}, fitted rule {result['fitted']}; "
              f"fit {seconds:.0f} s, {fit_trials(model)} trials, kept {kept_models(model)}", flush=True)
        print(json.dumps({"task": args.task, "metric": metric, "seconds": seconds, **result,
                          "decision_weights": model.fit_summary().get("decision_weights"), "seed": args.seed,
                          "time_limit": args.time_limit}), flush=True)


if __name__ == "__main__":
    main()
