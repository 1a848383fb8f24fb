"""Shared helpers for the benchmarks: locating the real data and loading the benchmark tasks."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$AUTOMM_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("AUTOMM_DATA", REPO.parent / "shared" / "data"))


def load_task(task: str) -> tuple[pd.DataFrame, pd.DataFrame, str, str, str]:
    """(train, test, image column, text column, label column) for ``fashion-subcategory``,
    ``fashion-usage``, ``fashion-mastercategory``, ``fashion-basecolour`` or ``emoji-category``;
    image paths absolute, split by the fixed ``split`` column; for subCategory and baseColour,
    the classes with at least 30 training rows."""
    dataset, target = task.split("-", 1)
    folder = data_dir() / dataset
    frame = pd.read_csv(folder / f"{dataset}.csv")
    frame["image"] = [str(folder / p) for p in frame["image"]]
    if dataset == "fashion":
        text, label = "productDisplayName", {"subcategory": "subCategory", "usage": "usage",
                                             "mastercategory": "masterCategory", "basecolour": "baseColour"}[target]
    else:
        text, label = "name", "category"
    frame = frame[frame[label].notna() & frame[text].notna()]
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    if task in ("fashion-subcategory", "fashion-basecolour"):  # classes with at least 30 training rows
        counts = train[label].value_counts()
        keep = set(counts[counts >= 30].index)
        train, test = train[train[label].isin(keep)], test[test[label].isin(keep)]
    return train.reset_index(drop=True), test.reset_index(drop=True), "image", text, label


def held_out_rows(labels, share: float, seed: int):
    """The positions of the rows that ``AutoMM(holdout_frac=share, random_state=seed)`` holds out
    itself of training rows with these class labels (its own rule: ``round(share * rows)`` rows,
    stratified, a class of one row kept in training), sorted."""
    import numpy as np

    from automm import AutoMM

    _, codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    model = AutoMM(holdout_frac=share, random_state=seed)
    model.problem_type_ = "multiclass"  # what the rule reads of a fit (the benchmark's tasks are classifications)
    return model._holdout_split(codes, seed)[1]


def kept_models(model) -> dict:
    """What a fitted ``AutoMM`` kept, from its ``fit_summary()``: ``{trial: weight}`` of its
    ensemble, or ``{"trial": best trial}`` (``{}`` without a search)."""
    summary = model.fit_summary()
    if summary.get("ensemble"):
        return {m["trial"]: round(m["weight"], 3) for m in summary["ensemble"]["members"]}
    return {"trial": summary["best_trial"]} if "best_trial" in summary else {}


def fit_trials(model) -> int:
    """The number of trials of a fitted ``AutoMM``'s search (0 without one)."""
    return model.fit_summary().get("trials", {}).get("total", 0)


def describe_setup(args) -> str:
    """One line recording what a run used: its settings (the parsed ``args``), the code (automm's
    version and commit, ``+changes`` where the checkout differs from it), the encoders installed
    (automm-pretrained's or not: accuracies differ by up to 15 points), the cores and their load
    (on a shared machine, timings vary several-fold with it)."""
    import subprocess

    import automm

    settings = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in vars(args).items() if v is not None}
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty=+changes"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:  # no git
        commit = ""
    return (f"# settings {settings}; automm {automm.__version__} at {commit or 'an unknown commit'}; encoders "
            f"{', '.join(automm.list_encoders())}; {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}, "
            f"OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}, "
            f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def task_parser(description: str, task: str, time_limit: float = 120.0):
    """An argument parser with the options every one-task benchmark takes: ``--task``,
    ``--time-limit`` and ``--seed`` (add the script's own, then ``parse_args``)."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default=task)
    parser.add_argument("--time-limit", type=float, default=time_limit)
    parser.add_argument("--seed", type=int, default=0)
    return parser
