"""Benchmark of the boosted trees' prediction in torch (``BoostedTreesEncoder.trees_output``,
what every prediction of the gradient-boosted model runs) against scikit-learn's on the same trees.

Tables are synthetic, of realistic shapes: ``--numbers`` number columns (a tenth of each missing,
every third heavy-tailed) and ``--categories`` categorical columns of 3 to 60 categories (a twentieth
missing), a label of a few of them plus noise (a regression's standardised, as automm's are).
Models (``--shapes``): ``regression`` (400 iterations), ``5-class`` (80 iterations: 400 trees),
``30-class`` (20: 600 trees), up to 31 leaves a tree, grown on ``--train-rows`` rows

* ``--grower sklearn``: by scikit-learn's estimator (every iteration kept, categorical columns as
  codes, missing categories NaN), read into the encoder by :func:`automm.boosting.trees_of`;
* ``--grower automm``: by :func:`automm.boosting.train_boosting` on the table as automm reads it
  (the encoder's preprocessing and settings, stopped early by the holdout), its own encoder then.

Each model predicts tables of ``--rows`` rows. Timed, the least of ``--repeats`` runs, wall and
CPU seconds: scikit-learn's raw prediction (``_raw_predict``, what ``predict`` and
``decision_function`` run; its threads under threadpoolctl) and ``trees_output`` (``torch.set_num_threads``),
at each of ``--threads``. Printed per model and table: the seconds, the ratio torch / scikit-learn
(of CPU seconds at one thread, wall seconds above it), and the largest gap between the two
predictions relative to their size (at most 1e-5: ``ok``). On a shared machine, compare CPU
seconds and figures of one invocation; to compare with another version of automm, run the script
with that checkout first on ``PYTHONPATH``.

Takes about 2 minutes with the defaults on 2 cores (growing the trees: half a minute).

Usage::

    python benchmarks/bench_trees.py
    python benchmarks/bench_trees.py --grower automm --shapes 5-class --rows 1000 20000
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_setup  # noqa: E402

#: (outputs, scikit-learn iterations) of each shape (a regression's one output).
SHAPES = {"regression": (1, 400), "5-class": (5, 80), "30-class": (30, 20)}


def make_table(rows: int, n_numbers: int, n_categories: int, outputs: int, seed: int):
    """(a DataFrame of the columns, its categorical columns' codes with the numbers as a float32
    matrix, which columns of it are categorical, the labels)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, n_numbers))
    numbers[:, ::3] = np.exp(2 * numbers[:, ::3])  # heavy-tailed: many more distinct values than bins
    numbers[rng.random(numbers.shape) < 0.1] = np.nan
    sizes = np.linspace(3, 60, n_categories).astype(int)
    codes = np.stack([rng.integers(0, size, rows) for size in sizes], axis=1).astype(np.float32)
    codes[rng.random(codes.shape) < 0.05] = np.nan
    signal = (np.nan_to_num(numbers[:, :4]) * [1.0, -0.7, 0.5, 0.3]).sum(1) + np.sin(3 * np.nan_to_num(numbers[:, 1]))
    if n_categories:
        signal += (np.nan_to_num(codes[:, 0], nan=1) % 2) - 0.8 * (np.nan_to_num(codes[:, -1], nan=0) % 5 == 1)
    signal = signal + rng.normal(size=rows) * 0.5
    if outputs == 1:
        labels = ((signal - signal.mean()) / signal.std()).astype(np.float32)
    else:
        labels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, outputs + 1)[1:-1]))
    frame = pd.DataFrame({f"n{j}": numbers[:, j] for j in range(n_numbers)})
    for j in range(n_categories):
        frame[f"c{j}"] = [None if np.isnan(c) else f"k{int(c)}" for c in codes[:, j]]
    matrix = np.concatenate([numbers.astype(np.float32), codes], axis=1)
    return frame, matrix, np.array([False] * n_numbers + [True] * n_categories), labels


def grow_sklearn(shape: str, matrix: np.ndarray, categorical: np.ndarray, labels: np.ndarray):
    """(scikit-learn's model, the encoder holding its trees, the baseline, a function reading a table)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from automm.boosting import trees_of
    from automm.components.trees import BoostedTreesEncoder

    outputs, iterations = SHAPES[shape]
    kind = HistGradientBoostingRegressor if outputs == 1 else HistGradientBoostingClassifier
    model = kind(max_iter=iterations, early_stopping=False, categorical_features=categorical,
                 random_state=0).fit(matrix, labels)
    encoder = BoostedTreesEncoder({"x": "numeric"}, output_dim=outputs)
    trees, bias = trees_of(model, model.n_iter_, outputs)
    encoder.set_trees(trees)
    return model, encoder, bias, lambda frame, table: table


def grow_automm(shape: str, frame, labels: np.ndarray):
    """As :func:`grow_sklearn`, by :func:`automm.boosting.train_boosting` (scikit-learn's model the
    one it grew, cut to the iterations it kept; the table read by the encoder)."""
    import copy

    import torch

    import automm.boosting as boosting
    from automm.data import InputSpec
    from automm.pipeline import PreparedData

    outputs, _ = SHAPES[shape]
    grown = []
    check = boosting._check_trees

    def keep(model, encoder, boosted, *args):
        grown.append(boosted)
        return check(model, encoder, boosted, *args)

    roles = {c: "categorical" if c.startswith("c") else "numeric" for c in frame.columns}
    index = np.arange(len(frame))
    data = PreparedData(inputs=[InputSpec("tabular", "tabular", list(frame.columns), roles)],
                        values={"tabular": frame.to_dict("records")}, targets=labels,
                        problem_type="regression" if outputs == 1 else "multiclass", n_outputs=outputs,
                        train_index=index[index % 5 != 0], valid_index=index[index % 5 == 0], seed=0,
                        device=torch.device("cpu"), num_workers=0)
    config = boosting.boosting_config(data.inputs, {}, {"batch_size": 256}, outputs)
    boosting._check_trees = keep
    try:
        candidate = boosting.train_boosting(data, config, refit=False)
    finally:
        boosting._check_trees = check
    encoder = candidate.model.encoders["tabular"]
    model = copy.copy(grown[0])
    model._predictors = model._predictors[:candidate.history[0]["n_iter"]]
    bias = candidate.model.fusion.bias.detach().numpy()

    def read(frame, table):
        with torch.no_grad():
            return encoder.tree_inputs(encoder.preprocess_batch(frame.to_dict("records"))).numpy()
    return model, encoder, bias, read


def least_seconds(run, repeats: int) -> tuple[float, float]:
    """The least wall and CPU seconds of ``repeats`` runs of ``run``."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        run()
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - used)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grower", choices=("sklearn", "automm"), default="sklearn")
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--rows", nargs="+", type=int, default=[1000, 20000, 100000])
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--numbers", type=int, default=40)
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(describe_setup(args), flush=True)

    for shape in args.shapes:
        outputs, _ = SHAPES[shape]
        frame, matrix, categorical, labels = make_table(args.train_rows, args.numbers, args.categories, outputs, 0)
        started = time.perf_counter()
        model, encoder, bias, read = (grow_sklearn(shape, matrix, categorical, labels) if args.grower == "sklearn"
                                      else grow_automm(shape, frame, labels))
        print(f"# {shape}: {encoder.n_trees} trees ({args.grower}, {time.perf_counter() - started:.1f} s to grow)",
              flush=True)
        for rows in args.rows:
            frame, matrix, _, _ = make_table(rows, args.numbers, args.categories, outputs, 1)
            table = read(frame, matrix)
            inputs = torch.as_tensor(table)
            theirs = np.asarray(model._raw_predict(table)).reshape(rows, -1)
            with torch.no_grad():
                ours = encoder.trees_output(inputs).numpy() + bias
            gap = float(np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))))
            record = {"grower": args.grower, "shape": shape, "trees": encoder.n_trees, "rows": rows, "gap": gap}
            parts = []
            for threads in args.threads:
                with threadpool_limits(limits=threads):
                    sklearn_wall, sklearn_cpu = least_seconds(lambda: model._raw_predict(table), args.repeats)
                torch.set_num_threads(threads)
                with torch.no_grad():
                    torch_wall, torch_cpu = least_seconds(lambda: encoder.trees_output(inputs), args.repeats)
                ratio = torch_cpu / sklearn_cpu if threads == 1 else torch_wall / sklearn_wall
                parts.append(f"{threads} thread{'s' if threads > 1 else ''}: scikit-learn {sklearn_wall:.3f} s "
                             f"({sklearn_cpu:.3f} cpu), torch {torch_wall:.3f} s ({torch_cpu:.3f} cpu), x{ratio:.2f}")
                record[f"threads_{threads}"] = {"sklearn_wall": sklearn_wall, "sklearn_cpu": sklearn_cpu,
                                                "torch_wall": torch_wall, "torch_cpu": torch_cpu, "ratio": ratio}
            print(f"{shape:10s} {rows:7d} rows: " + "; ".join(parts)
                  + f"; gap {gap:.1e} {'ok' if gap <= 1e-5 else 'DIFFERS'}", flush=True)
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
