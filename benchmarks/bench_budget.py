"""Benchmark of a short budget on more new data than a pretrained encoder can compute features
for: where a time-limited search's time goes with an empty feature cache.

The data are fashion training rows drawn ``--rows`` times with replacement, each title made new
by its row number (so no feature of it is cached), with the ``gender`` and ``baseColour``
columns; label ``subCategory``; the first 80% train, the rest test. ``AutoMM(time_limit=...)``
is fitted with an empty ``cache_dir``, with whatever plugins are installed (automm-pretrained
for the case this measures). Printed: the fit's seconds, its warnings, each trial (state, holdout
score, encoders, seconds, reason) and the test accuracy (the rows repeat 7,690 products, so test rows
have near-twins in training: it says where the time went, not what to expect on new data).

Takes about ``--time-limit`` and a minute more at 100,000 rows (the test rows' new features).

Usage::

    python benchmarks/bench_budget.py --rows 100000 --time-limit 120
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from automm import AutoMM
    from common import data_dir, describe_setup

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(describe_setup(args), flush=True)

    frame = pd.read_csv(data_dir() / "fashion" / "fashion.csv")
    frame = frame[(frame.split == "train") & frame.productDisplayName.notna()]
    rows = frame.sample(args.rows, replace=True, random_state=args.seed).reset_index(drop=True)
    rows["title"] = rows.productDisplayName + " " + pd.Series(range(args.rows)).astype(str)
    X, y = rows[["title", "gender", "baseColour"]], rows["subCategory"]
    cut = int(0.8 * args.rows)

    with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model = AutoMM(time_limit=args.time_limit, random_state=args.seed, cache_dir=cache).fit(X[:cut], y[:cut])
        seconds = time.perf_counter() - start
    print(f"rows {args.rows} ({cut} train), time_limit {args.time_limit:g} s: fit {seconds:.1f} s")
    for warning in caught:
        print(f"warning: {warning.message}")
    if hasattr(model, "leaderboard_"):
        board = model.leaderboard_[["number", "state", "score", "encoders", "seconds", "reason"]]
        print(board.to_string(index=False, max_colwidth=90))
    print(f"test accuracy {model.score(X[cut:], y[cut:]):.4f}")


if __name__ == "__main__":
    main()
