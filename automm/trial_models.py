"""The trained models of a search's trials: kept in memory or as files, and read back.

:class:`ModelPool` holds one process's best trials' models (the candidates for the final
model and the ensemble); with a folder it writes them there (:func:`write_candidate`, read
back by :func:`read_candidate`), so that ``fit`` can use the models a worker trained in
another process or on another machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .leaderboard import TRIAL_ATTR as _ATTR
from .boosting import BOOSTING_SOLVER
from .linear import LINEAR_SOLVER
from .neighbors import NEIGHBORS_SOLVER
from .pipeline import Candidate, PreparedData

__all__ = ["ModelPool", "write_candidate", "read_candidate", "always_weighed"]


def write_candidate(candidate: Candidate, directory: Path) -> None:
    from .persistence import _jsonable, write_model_files

    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_model_files(candidate.model, staging, sync=False)  # a scratch copy: its weights need not wait for the disk
    for index, model in enumerate((candidate.bag or [])[1:], start=1):
        write_model_files(model, staging / f"fold-{index}", sync=False)
    if candidate.valid_outputs is not None:
        np.save(staging / "valid_outputs.npy", np.asarray(candidate.valid_outputs), allow_pickle=False)
    if candidate.oof_outputs is not None:
        np.save(staging / "oof_outputs.npy", np.asarray(candidate.oof_outputs), allow_pickle=False)
    meta = {"config": candidate.config, "history": _jsonable(candidate.history), "best_epoch": candidate.best_epoch,
            "best_score": _jsonable(candidate.best_score), "stop_reason": candidate.stop_reason,
            "seconds": candidate.seconds, "n_outputs": int(candidate.model.n_outputs),
            "folds": len(candidate.bag) if candidate.bag is not None else 0,
            "oof_loss": _jsonable(candidate.oof_loss),
            "scored_on": list(candidate.scored_on) if candidate.scored_on is not None else None}
    with open(staging / "candidate.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(staging, directory)


def read_candidate(directory: Path, data: PreparedData) -> Candidate:
    from .persistence import read_model_files

    with open(directory / "candidate.json", encoding="utf-8") as handle:
        meta = json.load(handle)

    def read_model(folder: Path):
        return read_model_files(folder, data.inputs, meta["config"], meta["n_outputs"]).to(data.device)

    def read_array(name: str) -> np.ndarray | None:
        path = directory / name
        return np.load(path, allow_pickle=False) if path.is_file() else None

    model = read_model(directory)
    folds = int(meta.get("folds") or 0)
    bag = [model] + [read_model(directory / f"fold-{k}") for k in range(1, folds)] if folds else None
    score = meta["best_score"]
    return Candidate(config=meta["config"], model=model, history=meta["history"],
                     best_epoch=meta["best_epoch"], best_score=float(score) if score is not None else -math.inf,
                     valid_outputs=read_array("valid_outputs.npy"), stop_reason=meta["stop_reason"],
                     seconds=meta["seconds"], bag=bag, oof_outputs=read_array("oof_outputs.npy"),
                     oof_loss=meta.get("oof_loss"),
                     scored_on=(str(meta["scored_on"][0]), int(meta["scored_on"][1])) if meta.get("scored_on") else None)


class ModelPool:
    """The best trials' trained models of one process: at most ``k`` (the non-dominated ones
    in a multi-objective search), in memory or, with ``directory``, as files. A single-objective
    pool also keeps the linear, nearest-neighbour and gradient-boosted models (see :func:`always_weighed`)
    whatever their rank: the ensemble always weighs them."""

    def __init__(self, k: int, directory: str | None = None, multi: bool = False):
        self.k, self.directory, self.multi = int(k), directory, multi
        self.entries: dict[int, tuple[Any, Candidate | None]] = {}
        self.pinned: set[int] = set()
        self.lock = threading.Lock()

    def path(self, number: int) -> Path:
        return Path(self.directory) / f"trial-{number}"

    def offer(self, number: int, key: Any, candidate: Candidate, storage=None, trial_id: int | None = None) -> None:
        if self.k <= 0:
            return
        with self.lock:
            self.entries[number] = (key, candidate)
            if not self.multi and always_weighed(candidate.config):
                self.pinned.add(number)
            evicted = self._evict()
            if number in evicted:
                return
            if self.directory is not None:
                write_candidate(candidate, self.path(number))
                self.entries[number] = (key, None)
                if storage is not None and trial_id is not None:
                    storage.set_trial_user_attr(trial_id, _ATTR + "artifact", str(self.path(number)))
            for old in evicted:
                if self.directory is not None:
                    shutil.rmtree(self.path(old), ignore_errors=True)

    def _evict(self) -> list[int]:
        if self.multi:
            keys = {n: e[0] for n, e in self.entries.items()}
            dominated = [n for n, (s, c) in keys.items()
                         if any((s2 >= s and c2 <= c) and (s2 > s or c2 < c) for m, (s2, c2) in keys.items() if m != n)]
            for n in dominated:
                del self.entries[n]
            return dominated
        order = sorted((n for n in self.entries if n not in self.pinned), key=lambda n: (self.entries[n][0], -n),
                       reverse=True)
        evicted = order[self.k:]
        for n in evicted:
            del self.entries[n]
        return evicted

    def get(self, number: int) -> Candidate | None:
        entry = self.entries.get(number)
        return entry[1] if entry is not None else None


def always_weighed(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is the search's linear model (:mod:`automm.linear`), its
    nearest-neighbour model (:mod:`automm.neighbors`) or its gradient-boosted model
    (:mod:`automm.boosting`). They err differently from the networks and cost seconds, so the
    ensemble always weighs them, even when their holdout score ranks them below the trials the
    pool would otherwise keep (on emoji, 145 holdout rows, those were all networks; session 13,
    RESULTS.md)."""
    return (config.get("training") or {}).get("solver") in (LINEAR_SOLVER, NEIGHBORS_SOLVER, BOOSTING_SOLVER)
