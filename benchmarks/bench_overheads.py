"""Overheads a user pays outside the training steps themselves, each timed as the median of a few
runs with torch on one thread (timings on a shared 2-core machine vary by tens of percent
from run to run; compare figures of one invocation, or of two run back to back):

* a table-only fit (fashion's four attributes as table columns, widened with columns of noise
  to ``--columns`` columns, 2,000 rows, 20 epochs): table rows were preprocessed again in every epoch;
* the table preprocessing before any training, stage by stage, on a generated table of ``--rows``
  rows (50,000) and ``--columns`` columns: nine in ten numbers with NaN, the others categories,
  and a date-time column (``rows``);
* a search of 10 short trials on 200 emoji rows, and the garbage collection after its trials;
* ``AutoMM.load`` of the default model and ``predict`` of one row, repeated (a service).

    python benchmarks/bench_overheads.py
    python benchmarks/bench_overheads.py --parts load predict --repeats 7

To compare with another version, run the script with that version's checkout first on
``PYTHONPATH`` (``PYTHONPATH=/path/to/old python benchmarks/bench_overheads.py``).
Data: $AUTOMM_DATA or ../shared/data (fashion), and the emoji sample embedded in automm.

Takes about a minute on an idle 2-core machine (``--repeats 3``, every part).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, describe_setup  # noqa: E402

PARTS = ("table", "rows", "search", "load", "predict")


def _median_seconds(run, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def table_fit(columns: int, repeats: int) -> dict:
    import numpy as np
    import pandas as pd

    from automm import AutoMM

    frame = pd.read_csv(data_dir() / "fashion" / "fashion.csv").head(2000)
    table = frame[["gender", "baseColour", "season", "usage"]].copy()
    rng = np.random.default_rng(0)
    for k in range(columns - table.shape[1]):  # numeric columns: noise
        table[f"x{k}"] = rng.normal(size=len(table))
    labels = frame["masterCategory"]

    def fit():
        AutoMM(max_epochs=20, patience=20, random_state=0).fit(table, labels)

    median, times = _median_seconds(fit, repeats)
    return {"part": "table", "rows": len(table), "columns": table.shape[1], "fit_s": round(median, 2),
            "runs_s": [round(t, 2) for t in times]}


def table_preprocessing(rows: int, columns: int, repeats: int) -> dict:
    """Seconds of each stage of the table preprocessing (what ``fit`` and ``predict`` do before
    the network sees a row) on a generated table."""
    import numpy as np
    import pandas as pd

    from automm import data
    from automm.components.tabular import TabularEncoder
    from automm.registry import get_registry
    from automm.roles import BASE_ROLES

    rng = np.random.default_rng(0)
    n_categorical = max(1, columns // 10)
    frame = {}
    for k in range(columns - n_categorical - 1):
        numbers = rng.normal(size=rows) * 10.0 ** (k % 5)
        numbers[rng.random(rows) < 0.1] = np.nan
        frame[f"x{k}"] = numbers
    for k in range(n_categorical):
        frame[f"c{k}"] = rng.choice([f"kind{i}" for i in range(3 + 5 * k)], size=rows)
    frame["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, size=rows), unit="h")
    frame = pd.DataFrame(frame)
    registry = get_registry()
    known = sorted({*BASE_ROLES, *registry.modalities()} - {"tabular"})  # (as fit asks)
    figures = {"part": "rows", "rows": rows, "columns": columns}

    def timed(stage: str, run):
        out = []
        figures[f"{stage}_s"] = round(_median_seconds(lambda: out.append(run()), repeats)[0], 2)
        return out[-1]

    table = timed("as_table", lambda: data.as_table([frame]))
    roles = timed("roles", lambda: data.infer_roles(table, None, registry.plugin_manager, known))
    checked = timed("validate_columns", lambda: data.validate_columns(table, roles))
    spec = next(s for s in data.build_input_specs(roles) if s.modality == "tabular")
    values = timed("row_values", lambda: spec.values(checked))
    encoder = timed("encoder_fit", lambda: TabularEncoder(spec.column_roles).fit(values))
    timed("preprocess_batch", lambda: encoder.preprocess_batch(values))
    return figures


def search(repeats: int) -> dict:
    import automm.search as search_module
    from automm import AutoMM
    from automm.datasets import load_emoji_sample

    spent = []
    original = search_module.release_memory

    def timed():
        start = time.perf_counter()
        original()
        spent[-1] += time.perf_counter() - start

    search_module.release_memory = timed
    frame = load_emoji_sample().iloc[:200]

    def fit():
        spent.append(0.0)
        AutoMM(n_trials=10, max_epochs=2, random_state=0).fit(frame[["image", "name"]], frame["category"])

    try:
        median, times = _median_seconds(fit, repeats)
    finally:
        search_module.release_memory = original
    return {"part": "search", "trials": 10, "search_s": round(median, 2),
            "collection_after_trials_s": round(statistics.median(spent), 2), "runs_s": [round(t, 2) for t in times]}


def _default_model(folder: Path):
    from automm import AutoMM
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    model = AutoMM(max_epochs=2, random_state=0).fit(frame[["image", "name"]], frame["category"])
    model.save(folder / "model")
    return frame


def load_and_predict(parts: list[str], repeats: int) -> list[dict]:
    from automm import AutoMM

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        frame = _default_model(Path(tmp))
        AutoMM.load(Path(tmp) / "model")  # plugin discovery and first imports, outside the timing
        if "load" in parts:
            median, times = _median_seconds(lambda: AutoMM.load(Path(tmp) / "model"), repeats)
            results.append({"part": "load", "load_s": round(median, 3), "runs_s": [round(t, 3) for t in times]})
        if "predict" in parts:
            model = AutoMM.load(Path(tmp) / "model")
            row = frame[["image", "name"]].iloc[:1]
            model.predict(row)
            median, times = _median_seconds(lambda: [model.predict(row) for _ in range(50)], repeats)
            results.append({"part": "predict", "one_row_ms": round(1000 * median / 50, 2)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--rows", type=int, default=50_000, help="the generated table's rows (part rows)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(describe_setup(args), flush=True)
    warnings.filterwarnings("ignore")
    results = []
    if "table" in args.parts:
        results.append(table_fit(args.columns, args.repeats))
    if "rows" in args.parts:
        results.append(table_preprocessing(args.rows, args.columns, args.repeats))
    if "search" in args.parts:
        results.append(search(args.repeats))
    if {"load", "predict"} & set(args.parts):
        results += load_and_predict(args.parts, max(args.repeats, 5))
    for result in results:
        print(result)


if __name__ == "__main__":
    main()
