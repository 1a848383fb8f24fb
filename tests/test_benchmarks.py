"""The scripts under ``benchmarks/`` do not rot between the sessions that run them: each imports and
parses the commands its docstring documents (no benchmark runs), and the cheap parts that went
wrong once are checked on the embedded emoji sample."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "common.py")


def _forget_scripts():
    """The scripts imported by name (``import bench_core``) no longer imported."""
    for name in ["common", *(script[:-3] for script in SCRIPTS)]:
        sys.modules.pop(name, None)


class _Parsed(Exception):
    """Raised by an argument parser in place of returning what it parsed."""


@pytest.fixture(scope="module")
def parsed_commands():
    """Each script imported, then its main() run on each command of its docstring and on --help,
    stopped as soon as its argument parser has parsed them (nothing else runs); the scripts, the path
    and the environment variable they set on import gone again after."""
    parse = argparse.ArgumentParser.parse_args

    def parsed(self, args=None, namespace=None):
        raise _Parsed(vars(parse(self, args, namespace)))

    report = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parsed)
        patch.syspath_prepend(str(BENCHMARKS))
        patch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
        for script in SCRIPTS:
            module = importlib.import_module(script[:-3])
            commands = [shlex.split(re.split("#|``", line)[0]) for line in
                        re.findall(rf"python3? benchmarks/{re.escape(script)}([^\n]*)", module.__doc__)]
            entry = report[script] = {"commands": [], "doc": module.__doc__}
            for command in commands + [["--help"]]:
                patch.setattr(sys, "argv", [script, *command])
                out, err = io.StringIO(), io.StringIO()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        module.main()
                    result = "ran past its parser"
                except _Parsed:
                    result = "parsed"
                except SystemExit as stop:
                    result = f"exit {stop.code}"
                entry["commands"].append([command, result, err.getvalue()[-500:]])
                if command == ["--help"]:
                    entry["help"] = out.getvalue()
    _forget_scripts()
    return report


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_parses_the_commands_it_documents(parsed_commands, script):
    entry = parsed_commands[script]
    *documented, (_, helped, _) = entry["commands"]
    assert documented, f"{script}'s docstring shows no 'python benchmarks/{script} ...' command"
    for command, result, err in documented:
        assert result == "parsed", f"{script} {' '.join(command)}: {result}\n{err}"
    assert helped == "exit 0"
    # --help says what the script measures (its whole docstring) and how long it takes
    assert entry["doc"].strip().splitlines()[-1].strip() in entry["help"]
    assert re.search(r"\bTakes\b", entry["help"]), entry["help"]


@pytest.fixture
def benchmarks(monkeypatch):
    """The scripts importable by name here (``import bench_core``), and nothing of them left after:
    neither the modules, the path, nor the environment variable they set on import."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    yield
    _forget_scripts()


def test_bench_core_writes_a_searched_run_as_json(emoji_split, benchmarks, builtin_only):
    # the leaderboard's epochs are numpy integers: every searched run's child failed writing its result
    import bench_core

    from automm import AutoMM

    train = emoji_split[0]
    model = AutoMM(n_trials=2, max_epochs=1, random_state=0).fit(train[["name"]], train["category"])
    written = json.loads(json.dumps(bench_core.trial_records(model.leaderboard_)))
    assert len(written) == 2 and all(isinstance(row["epochs"], int) for row in written)


def test_bench_core_sums_the_weights_of_a_bags_fold_models(emoji_split, benchmarks, builtin_only):
    # one weight per fold model was kept under its trial's key: the last fold's, 1/3 of the bag's
    import bench_core

    from automm import AutoMM

    train = emoji_split[0]
    model = AutoMM(n_trials=1, bag_folds=3, max_epochs=1, random_state=0).fit(train[["name"]], train["category"])
    assert len(model.ensemble_.members) == 3
    assert bench_core.ensemble_weights(model.ensemble_) == {"0": 1.0}


def _run_script(name, *args, data):
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "AUTOMM_DATA": str(data)})


def _run_main(script, argv, capsys):
    """``python benchmarks/<script> <argv>`` run in this process (with the ``benchmarks`` fixture): its
    exit status, stdout and stderr; ``sys.exit(message)`` read as the interpreter reads it (status 1,
    the message on stderr)."""
    try:
        importlib.import_module(script[:-3]).main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    if isinstance(code, str):
        return 1, out, f"{err}{code}\n"
    return code or 0, out, err


@pytest.mark.parametrize("script, args", [
    ("bench_core.py", ["--tasks", "emoji-category", "--modes", "text"]),  # its run fails
    ("bench_search.py", ["--task", "emoji-category", "--parts", "accuracy", "--cache-dir", "CACHE"]),  # warming fails
    ("bench_budget_curve.py", ["--tasks", "emoji-category", "--seeds", "0", "--cache", "cold"]),  # its fit fails
    ("bench_budget_curve.py", ["--tasks", "emoji-category", "--seeds", "0", "--cache-dir", "CACHE"]),  # warming fails
])
def test_a_benchmark_whose_runs_fail_exits_non_zero(tmp_path, monkeypatch, benchmarks, capsys, script, args):
    # each run is a child process: a failed one was printed, and the script exited 0
    monkeypatch.setenv("AUTOMM_DATA", str(tmp_path / "no-data"))  # (the children's environment)
    args = [str(tmp_path / "cache") if arg == "CACHE" else arg for arg in args]
    code, out, err = _run_main(script, [*args, "--time-limit", "1", "--out", str(tmp_path / "out.json")], capsys)
    assert code == 1 and "failed" in err, out[-2000:] + err[-2000:]


def test_bench_search_never_deletes_a_cache_it_was_given(tmp_path):
    # (run as `python benchmarks/bench_search.py`, the one test of a script started as the sessions start it)
    kept = tmp_path / "my-cache" / "features"
    kept.mkdir(parents=True)
    done = _run_script("bench_search.py", "--cache", "fresh", "--cache-dir", str(tmp_path / "my-cache"),
                       "--parts", "accuracy", "--time-limit", "1", data=tmp_path / "no-data")
    assert done.returncode == 2 and "--cache-dir" in done.stderr, done.stderr[-2000:]
    assert kept.is_dir()


def test_bench_pretrained_refuses_a_warm_cache_for_its_cold_run(tmp_path, monkeypatch, benchmarks, capsys):
    import torch

    from automm.feature_cache import FeatureCache

    cache = FeatureCache(tmp_path / "warm", "colours-v1", {})
    cache.put("a title", torch.ones(3))
    monkeypatch.setenv("AUTOMM_DATA", str(tmp_path / "no-data"))  # a run started anyway fails at once
    import bench_pretrained

    with pytest.raises(SystemExit) as stop:
        bench_pretrained.main(["--parts", "cache", "--tasks", "emoji-category", "--cache-dir", str(tmp_path / "warm")])
    assert stop.value.code == 2 and "--cache-dir" in capsys.readouterr().err


def test_bench_validation_passes_as_x_val_the_rows_automm_holds_out(emoji_split, benchmarks, builtin_only):
    # 288 rows, share 0.15: AutoMM holds out round(43.2) = 43 rows; a split of test_size=0.15 took 44
    from common import held_out_rows

    from automm import AutoMM

    train = emoji_split[0]
    held = np.zeros(len(train), dtype=bool)
    held[held_out_rows(train["category"], 0.15, 0)] = True
    X, y = train[["name"]], train["category"]
    own = AutoMM(holdout_frac=0.15, random_state=0, max_epochs=2).fit(X, y)
    given = AutoMM(random_state=0, max_epochs=2).fit(X[~held], y[~held], X_val=X[held], y_val=y[held])
    assert [r["valid_loss"] for r in own.history_] == [r["valid_loss"] for r in given.history_]  # the same model
    assert held.sum() == 43


def test_bench_validation_splits_a_task_with_a_class_of_one_row(benchmarks):
    # fashion usage's "Travel" has one training row: the benchmark's own stratified split refused it
    from common import held_out_rows

    labels = np.array(["a"] * 30 + ["b"] * 20 + ["lone"], dtype=object)
    rows = held_out_rows(labels, 0.2, 0)
    assert len(rows) == 10 and 50 not in rows and sorted(labels[rows]).count("a") == 6


def test_bench_budget_curve_refuses_a_cache_dir_for_its_cold_curve(tmp_path, benchmarks, capsys):
    import bench_budget_curve

    with pytest.raises(SystemExit) as stop:
        bench_budget_curve.main(["--cache", "cold", "--cache-dir", str(tmp_path)])
    assert stop.value.code == 2 and "--cache-dir" in capsys.readouterr().err


def test_bench_budget_curve_records_what_a_fit_kept_and_when(tmp_path, monkeypatch, emoji_split, benchmarks,
                                                             builtin_only):
    # one fit of the curve, in this process, on the embedded sample laid out as the shared emoji set
    import bench_budget_curve

    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    (tmp_path / "emoji").mkdir()
    frame.to_csv(tmp_path / "emoji" / "emoji.csv", index=False)  # (absolute image paths: load_task keeps them)
    monkeypatch.setenv("AUTOMM_DATA", str(tmp_path))
    record = bench_budget_curve.one_fit({"task": "emoji-category", "time_limit": 6.0, "seed": 0, "cache": "cold",
                                         "cache_dir": str(tmp_path / "cache"), "train_rows": 0, "test_rows": 60})
    assert json.loads(json.dumps(record)) == record  # a JSON line, as the child process prints it
    assert (record["n_train"], record["n_test"]) == ((frame.split == "train").sum(), 60)
    assert record["overrun"] == pytest.approx(record["seconds"] - 6.0, abs=0.02) and 0 <= record["test_accuracy"] <= 1
    assert sum(record["trials"].values()) == len(record["board"]) >= 2
    kinds = {row["kind"] for row in record["board"]}
    assert {"linear", "default"} <= kinds, kinds
    assert sum(record["kept"].values()) == pytest.approx(1.0, abs=0.01)
    assert all(key.split(":")[1] in kinds for key in record["kept"])
    assert 0 <= record["before_first"] < record["seconds"] and 0 <= record["after_last"] < record["seconds"]
    assert bench_budget_curve.line(record).startswith("emoji-category")


def test_bench_ensemble_selection_replays_a_fits_ensemble_from_its_saved_outputs(tmp_path, monkeypatch, benchmarks,
                                                                                 builtin_only):
    # the saved outputs give back the fitted ensemble's test results: its members' temperatures, a bag's
    # fold models' shares of its weight and the pooling all applied as the fitted model applies them
    import bench_ensemble_selection as bench

    import automm.ensemble
    from automm.datasets import load_emoji_sample

    (tmp_path / "emoji").mkdir()
    load_emoji_sample().to_csv(tmp_path / "emoji" / "emoji.csv", index=False)
    monkeypatch.setenv("AUTOMM_DATA", str(tmp_path))
    monkeypatch.setattr(automm.ensemble, "select_ensemble",  # (the real selection keeps the linear model alone here)
                        lambda outputs, *args, **kwargs: (np.array([0.7, 0.3]), "logarithmic"))
    bench.capture("emoji-category", 0, tmp_path, n_trials=2, max_epochs=1, bag_folds=3)
    case = bench.Case(tmp_path / "emoji-category-0.npz")
    assert [len(folds) for folds in case.test] == [1, 3]  # the linear model, then the bagged network
    assert case.meta["kept_weights"] == {str(t): pytest.approx(w) for t, w in zip(case.meta["members"], [0.7, 0.3])}
    errors, log_loss = case.evaluate([0.7, 0.3], bench._temperatures(case, prior=False), "logarithmic")
    assert (errors, log_loss) == (case.meta["test_errors"], pytest.approx(case.meta["test_log_loss"], abs=1e-5))
