"""Scale benchmark of the search's linear model (:mod:`automm.linear`): fit seconds and peak
memory per training row.

The data: fashion rows (``$AUTOMM_DATA`` or ``../shared/data``) repeated to the wanted size,
each title given its row number (``"... Shirt 12345"``, so that every row's text is new), with
the title as a text input and gender, baseColour, season and usage as a table input; the label
is subCategory. The linear model is configured and fitted as the search does
(:func:`automm.linear.linear_config` over the text's ``hashed_ngram`` and the table's ``tabular``,
:func:`automm.linear.train_linear` with a 10% random holdout and the refit on every row).

Each size runs in a fresh process. Its peak memory is reset just before the fit
(``/proc/self/clear_refs``), so "peak growth" is the fit's own high-water mark over the memory
the process held before it (data, model); "KB per row" divides it by the rows.

Takes about 2 minutes at the default 10k and 50k rows, and 7 more at 200k (2 cores).

    python benchmarks/bench_scale.py                     # 10k and 50k rows, 1 torch thread
    python benchmarks/bench_scale.py --rows 10000 50000 200000 --out scale.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, describe_setup  # noqa: E402

TEXT = "productDisplayName"
CATEGORICAL = ("gender", "baseColour", "season", "usage")
LABEL = "subCategory"


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in KB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def scaled_data(n_rows: int, seed: int):
    """PreparedData of ``n_rows`` fashion rows (repeated, each title given its row number)."""
    import numpy as np
    import pandas as pd
    import torch

    from automm.data import MISSING, InputSpec
    from automm.pipeline import PreparedData

    frame = pd.read_csv(data_dir() / "fashion" / "fashion.csv")
    frame = frame[frame[LABEL].notna() & frame[TEXT].notna()].reset_index(drop=True)
    frame = frame.iloc[np.arange(n_rows) % len(frame)].reset_index(drop=True)
    texts = [f"{title} {row}" for row, title in enumerate(frame[TEXT])]
    columns = {c: frame[c].tolist() for c in CATEGORICAL}
    table = [{c: (MISSING if pd.isna(columns[c][i]) else columns[c][i]) for c in CATEGORICAL} for i in range(n_rows)]
    classes, targets = np.unique(frame[LABEL].to_numpy(), return_inverse=True)
    order = np.random.default_rng(seed).permutation(n_rows)
    n_valid = int(round(0.1 * n_rows))  # the estimator's default holdout_frac
    inputs = [InputSpec("text_0", "text", [TEXT], {TEXT: "text"}),
              InputSpec("tabular", "tabular", list(CATEGORICAL), {c: "categorical" for c in CATEGORICAL})]
    return PreparedData(inputs=inputs, values={"text_0": texts, "tabular": table}, targets=targets.astype(np.int64),
                        problem_type="multiclass", n_outputs=len(classes), train_index=np.sort(order[n_valid:]),
                        valid_index=np.sort(order[:n_valid]), seed=seed, device=torch.device("cpu"), num_workers=0)


def run_one(n_rows: int, seed: int, threads: int, save: str | None) -> dict:
    """Fit the linear model on ``n_rows`` rows in this process; its figures."""
    import gc

    import numpy as np
    import torch

    from automm.linear import linear_config, train_linear

    torch.set_num_threads(threads)
    data = scaled_data(n_rows, seed)
    config = linear_config(data.inputs, {"text_0": {"hashed_ngram": {}}, "tabular": {"tabular": {}}},
                           {"batch_size": 32}, data.n_outputs)
    gc.collect()
    before_kb = _status_kb("VmRSS")
    peak_reset = _reset_peak()
    start = time.perf_counter()
    candidate = train_linear(data, config)
    seconds = time.perf_counter() - start
    peak_kb = _status_kb("VmHWM")
    growth_kb = peak_kb - before_kb if peak_reset else float("nan")
    if save:  # the fitted model's holdout outputs and weights, for comparing two versions of the code
        state = {k: v.detach().numpy() for k, v in candidate.model.state_dict().items()}
        np.savez(save, valid_outputs=candidate.valid_outputs, **{f"state/{k}": v for k, v in state.items()})
    best = candidate.history[candidate.best_epoch - 1]
    return {"rows": n_rows, "fit_seconds": round(seconds, 2), "rss_before_mb": round(before_kb / 1024),
            "peak_rss_mb": round(peak_kb / 1024), "peak_growth_mb": round(growth_kb / 1024),
            "kb_per_row": round(growth_kb / n_rows, 2), "best_l2_c": best["l2_c"],
            "best_score": round(candidate.best_score, 5), "stop_reason": candidate.stop_reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--save", help="write each fit's holdout outputs and weights to SAVE-<rows>.npz")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in this process (the child)
    args = parser.parse_args()
    if args.one:
        save = f"{args.save}-{args.one}.npz" if args.save else None
        print(json.dumps(run_one(args.one, args.seed, args.threads, save)))
        return
    print(describe_setup(args), flush=True)
    results = []
    print(f"{'rows':>8} {'fit s':>7} {'before MB':>9} {'peak MB':>8} {'growth MB':>9} {'KB/row':>7}  best C, score")
    for n_rows in args.rows:
        command = [sys.executable, __file__, "--one", str(n_rows), "--seed", str(args.seed),
                   "--threads", str(args.threads)] + (["--save", args.save] if args.save else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{n_rows} rows failed:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{result['rows']:>8} {result['fit_seconds']:>7.1f} {result['rss_before_mb']:>9} "
              f"{result['peak_rss_mb']:>8} {result['peak_growth_mb']:>9} {result['kb_per_row']:>7.1f}  "
              f"{result['best_l2_c']:g}, {result['best_score']:.4f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
