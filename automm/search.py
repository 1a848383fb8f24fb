"""Optuna search over architectures and hyperparameters.

``AutoMM.fit`` searches instead of training its one default configuration when
:func:`search_requested` says so: ``n_trials > 1``; ``n_trials=None`` with a ``time_limit``;
a ``storage``; a ``search_space``; a list of choices as an encoder or fusion argument;
``ensemble_size > 1``; or two ``objectives``.

The space (define-by-run)
-------------------------
For every input (``image_0``, ``text_0``, ``tabular``, ...) the trial chooses an encoder among
the allowed ones for its modality, then asks that component for its own hyperparameters
(the ``search_space`` function the plugin registered) under the prefix ``"<input>.<encoder>."``;
then the fusion (``"fusion"``, prefix ``"fusion.<name>."``), each candidate augmentation on or
off (``"augment.<name>"``, prefix ``"augment.<name>."``) and the training hyperparameters
(``"training.<key>"``). Choices come from the registry, so a plugin installed later joins the
search with no change here. The first trial of a study is the default configuration (what
``fit`` trains without a search), so the search never ends worse on the holdout than the
default. Next come the presets: the default with every input that can use a frozen pretrained
encoder switched to it (cheap on cached features), then, when the search ends in an ensemble,
the linear model on the inputs' linear features, such as the texts' hashed n-grams and frozen
image features (:mod:`automm.linear`; seconds, and it errs differently from the networks, so
the ensemble's pool always holds it; ``search_space={"linear_model": False}`` leaves it out), the
nearest-neighbour model on the inputs' frozen pretrained embeddings, when a pretrained encoder is
among the choices (:mod:`automm.neighbors`; likewise always in the pool,
``search_space={"neighbors_model": False}`` leaves it out) and a
replicate (the same configuration with another seed) of the default and of its pretrained
variant, which the ensemble can average. Sampled configurations follow. ``search_space={"warm_start": False}`` skips the
default and the presets: every trial is then sampled (to compare samplers or pruners on their
own, or when the default is known to be a poor start).

What is searched, from the estimator's arguments:

* ``encoders``: a modality or column not named → every registered encoder of that modality
  (the default one first); a name or ``{"name": ..., **hyperparameters}`` → that encoder only,
  with the hyperparameters given fixed and the others searched; a list of names/dicts → those.
* ``fusion``: left at its default ``"concat"`` → every registered fusion not tagged ``"manual"``
  (``sum``, ``neighbors``; the same holds for encoders); a name other than the
  default, or a dict → that fusion only (a dict's hyperparameters fixed); a list → those.
* ``augmentations``: ``"default"`` → every registered augmentation of a present modality (and
  batch augmentations) is switched on or off by the search; a list → those listed; ``None`` → none.
* training: ``learning_rate`` (log-uniform 1e-4..1e-2; 1e-3..1e-2, as the separate parameter
  ``training.frozen_learning_rate``, when every chosen encoder is frozen and the batch is 8 times
  larger, see below), ``weight_decay`` (log 1e-5..0.1),
  ``batch_size`` (half, equal or double the device default when ``batch_size="auto"``, else
  fixed; with ``"auto"``, 8 times that when every chosen encoder is frozen), ``max_epochs``
  (``max_epochs // 2 .. max_epochs``: the estimator's value is the largest a trial trains),
  ``label_smoothing`` (0..0.2), ``head_dropout`` (0..0.4); ``patience`` fixed.

``search_space=`` format
------------------------
A dict of plain values (JSON/YAML-friendly; recipes pass it through unchanged) with any of the
keys ``encoders``, ``fusion``, ``augmentations``, ``training``, ``warm_start``, ``linear_model``
and ``neighbors_model`` (true or false, see above); it takes precedence over the arguments above::

    search_space = {
        "encoders": {                       # key: a modality ("image") or an input/column name
            "image": ["cnn", "resnet"],     # choose among these, each with its own space
            "text": {"hashed_ngram": {"emb_dim": [32, 64]}, "gru": {}},  # name -> parameter specs
        },
        "fusion": {"concat": {"hidden_dim": {"low": 32, "high": 256, "log": True}}, "gated": {}},
        "augmentations": {"mixup": False,                 # never
                          "horizontal_flip": True,        # always on (its strength searched)
                          "random_resized_crop": {"min_scale": [0.5, 0.8]}},  # on/off searched
        "training": {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
                     "max_epochs": 10, "batch_size": [16, 32]},
    }

Component choices: a name, a list of names (or ``{"name": ..., **fixed}`` dicts), or a dict
``name -> parameter specs`` (``{}`` or ``null``: the component's own space). Augmentation entries:
``false`` (excluded), ``true`` (always on), ``"search"`` / ``null`` (on/off searched), a dict of
parameter specs (on/off searched), optionally with ``"enabled": true|false|"search"``; a list of
names restricts the candidates to those. Parameter specs (names as the component's space
function suggests them, e.g. ``"image_size"``, ``"min_scale"``, or any hyperparameter name of the
component, which widens the space):

* a scalar (number, string, bool, null) or ``{"value": x}`` → fixed (``{"value": [0.5, 1.0]}`` for
  a list-valued hyperparameter);
* a list or ``{"choices": [...]}`` → categorical;
* ``{"low": a, "high": b}`` with optional ``"log": true`` and ``"step"`` → integer range when
  ``a``, ``b`` (and ``step``) are integers, else float range.

Sampling, pruning, budget, failures
-----------------------------------
``sampler``: ``"tpe"`` (``TPESampler(multivariate=True, group=True)``; NSGA-II when two
objectives are given), ``"random"``, ``"cmaes"`` (needs the ``cmaes`` package), ``"nsgaii"`` or an
Optuna sampler object; seeded by ``random_state``. ``pruner``: ``"median"``, ``"hyperband"``,
``"successive_halving"``, ``"none"`` or an Optuna pruner; every epoch reports the best
validation score so far (``trial.report``) and a pruned trial stops at once; the default, its
presets and their replicates report too but are never pruned (they are the baseline and the
ensemble's planned members). ``time_limit`` is a
hard wall clock for the whole fit: trials stop at the deadline and keep their best epoch; a
trial stuck in code that does not watch the deadline (e.g. a pretrained encoder's first
feature extraction) is interrupted :data:`MIN_HARD_GRACE` seconds (or 5% of the budget) later
and fails (main thread of a POSIX process); with room for several trials, a sampled trial
trains at most :data:`TRIAL_TIME_FRACTION` of the search's time and the default, its presets
and their replicates at most :data:`WARM_START_TIME_FRACTION`, so that a slow default
configuration cannot take the whole budget. ``n_trials`` bounds the number of trials in the study (finished ones of a resumed study count;
:data:`DEFAULT_N_TRIALS` when neither is given). A trial that raises (NaN loss, out of memory, a
broken plugin, ...) is recorded as failed with its reason and the search goes on (CUDA out of
memory first retries with half the batch size); ``fit`` raises :class:`SearchError` with the
reasons only when no trial produced a model.

Parallelism, storages, workers
------------------------------
Without GPUs, ``n_jobs > 1`` runs trials in that many processes (forked, sharing one study; an
in-memory study becomes a temporary journal file). With CUDA GPUs (``device="auto"`` or
``"cuda"``), one trial runs per GPU, the GPU ids handed out through a queue. ``storage`` is an
Optuna storage: a URL (``sqlite:///file.db``, ``postgresql://user:pw@host/db``: an
``RDBStorage`` with heartbeats, a stale trial is retried), a journal file
(``"journal:///path/study.log"`` or a path ending in ``.log``/``.journal``; automm's own
heartbeats detect and retry trials of killed workers), or an Optuna storage object. With a
storage, the study is named ``study_name`` or, by default, after a fingerprint of the data and
the search settings, so that restarting the same ``fit`` after a crash (even ``kill -9``)
resumes the study: finished trials are kept and count towards ``n_trials``, trials of dead
workers are retried.

:func:`run_worker` joins a running study from another process or machine (``automm worker
--storage URL --study NAME``). The study stores, as JSON user attributes, everything a worker
needs: the search space, the estimator's parameters, the holdout split and, when the training
data are JSON-able and under :data:`MAX_STORED_DATA_BYTES` (file paths, texts, numbers), the data
themselves (image paths made absolute: a worker on another machine needs the same files at the
same paths). Otherwise the worker must be given the same ``X, y`` as ``fit``; their fingerprint
is checked. Trained models stay where they were trained: ``fit`` uses models from its own
process and from its ``n_jobs`` processes; a worker started with ``artifact_dir`` (a folder
``fit`` can read) leaves its best models there; any other chosen trial is retrained from its
stored configuration when the time limit allows.

Results
-------
``leaderboard_`` (every trial: number, state, score, components, parameters, epochs, wall
seconds, reason; see :func:`leaderboard_frame`), ``best_trial_`` (the trial whose model is
``model_``: the best validation score, complete trials before pruned ones, unless the ensemble's
selection keeps one other model alone) and ``study_name_``.
With ``ensemble_size > 1`` (``"auto"``, the default: 3 in a single-objective search), greedy
selection with replacement by holdout log-loss over the holdout outputs of the
``ensemble_size`` best trials (see :mod:`automm.ensemble`) may keep several of them as
``ensemble_``: ``predict``/``predict_proba`` then average the members' probabilities with the
selection weights (``transform`` still gives ``model_``'s embedding); only the models needed
are kept in memory (the best ``ensemble_size``), none is retrained.

k-fold bagging (``bag_folds``): a trial whose configuration is bagged (by default, "auto",
those whose encoders are all frozen: seconds per fold on cached features) trains once per fold
of all the rows (:func:`automm.pipeline.train_bagged`); its score and loss are those of its
out-of-fold outputs, every row, and its model is the average of its fold models (in
``ensemble_``, one member per fold). The first fold reports its epochs to the pruner; with the
median (or a percentile) pruner the bag then reports its out-of-fold score so far after each
fold but the last, and a pruned bag stops before its remaining folds. When every
candidate for the ensemble is a bag, greedy selection runs on the out-of-fold outputs of every
row instead of the holdout's. With
``objectives=("score", "latency")`` (milliseconds per sample, measured on the holdout) or
``("score", "params")`` the search is multi-objective (NSGA-II, no pruning), ``pareto_front_``
lists the Pareto set and the model chosen is, among the Pareto trials whose score is within 1%
of the best score (``score >= best - 0.01 * |best|``), the one with the smallest second
objective. ``plot_dir`` receives ``optimization_history.png``, ``param_importances.png`` (and
``pareto_front.png``) when matplotlib is installed (``pip install automm[plots]``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from . import registry as _registry
from .components.image_cache import image_cache
from .components.stack import describe_encoder
from .exceptions import AutoMMError, InputError
from .linear import LINEAR_SOLVER, linear_config
from .neighbors import NEIGHBORS_SOLVER, neighbors_config
from .pipeline import (Candidate, PreparedData, TRAINING_KEYS, all_encoders_frozen, bag_folds_for, build_model,
                       scale_frozen_batch, train_bagged, train_candidate)
from .training import Callback

__all__ = ["search_requested", "run_search", "run_worker", "validate_params", "SearchSpace", "SearchError",
           "TimeLimitExceeded",
           "make_storage", "parse_storage", "choose_from_pareto", "DEFAULT_N_TRIALS", "SAMPLERS", "PRUNERS",
           "OBJECTIVES", "RESULT_ATTRIBUTES", "MAX_STORED_DATA_BYTES"]

#: Trials when a search is requested without ``n_trials`` and without ``time_limit``.
DEFAULT_N_TRIALS = 20
#: ``ensemble_size="auto"`` in a single-objective search: averaging a few good models of
#: different configurations rarely loses and, on small data, often gains a point or more.
AUTO_ENSEMBLE_SIZE = 3
SAMPLERS = ("tpe", "random", "cmaes", "nsgaii")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
OBJECTIVES = ("score", "latency", "params")
#: Estimator attributes set from a search (removed again by a fit without search).
RESULT_ATTRIBUTES = ("leaderboard_", "ensemble_", "pareto_front_", "best_trial_", "study_name_")
#: Largest JSON copy of the training data stored in the study for :func:`run_worker`.
MAX_STORED_DATA_BYTES = 64 * 2**20
#: Seconds between heartbeats of a running trial, and silence after which it is declared lost.
HEARTBEAT_INTERVAL = float(os.environ.get("AUTOMM_HEARTBEAT_INTERVAL", "10"))
HEARTBEAT_GRACE = float(os.environ.get("AUTOMM_HEARTBEAT_GRACE", "60"))
#: With a time limit, the largest share of the search's time one trial may train (so that a
#: search explores at least 1 / TRIAL_TIME_FRACTION configurations).
TRIAL_TIME_FRACTION = 1 / 3
#: The share for the default configuration, its presets and their replicates (the trials the
#: ensemble is built on when the budget allows only a few): a from-scratch model on a few
#: thousand rows trains half as many epochs again as with a third (fashion, 600 s: 15-16
#: epochs instead of 10-11; test accuracy of the ensemble on fashion usage 0.9630 / 0.9661
#: against 0.9614 / 0.9624 on two seeds, subCategory unchanged).
WARM_START_TIME_FRACTION = 1 / 2
#: Least seconds a trial may run past the deadline before it is interrupted (see :func:`_hard_stop`).
MIN_HARD_GRACE = 10.0
#: Seconds after which the lock of a journal file left by a killed process is broken.
JOURNAL_LOCK_GRACE = 10
#: How often a trial lost with its worker is retried.
MAX_RETRY = 2

_ATTR = "automm:"
_SPEC, _DATA, _FINGERPRINT, _DATA_FINGERPRINT = "automm:spec", "automm:data", "automm:fingerprint", "automm:data_fp"
_BUDGET, _STATUS = "automm:budget", "automm:status"
_HEARTBEAT = "automm:heartbeat"
_TRAINING_NAMES = tuple(k for k in TRAINING_KEYS)

_log = logging.getLogger("automm.search")


class SearchError(AutoMMError):
    """No trial of the search produced a model; the message lists the trials' reasons."""


class TimeLimitExceeded(AutoMMError):
    """A trial ran past the time limit in code that does not watch it (e.g. a pretrained
    encoder's feature extraction); raised by an alarm so that ``time_limit`` stays a hard limit."""


class _WorkerFinished(Exception):
    """Raised through ``fit`` when it ran as a worker (see :func:`run_worker`)."""

    def __init__(self, trials: int):
        super().__init__(trials)
        self.trials = trials


# ==========================================================================================
# When to search, parameter validation
# ==========================================================================================

def _objectives(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def search_requested(estimator) -> bool:
    """True when ``fit`` should search rather than train the one default configuration."""
    if getattr(estimator, "_automm_worker", None) is not None:
        return True
    n_trials = estimator.n_trials
    if n_trials is not None and n_trials > 1:
        return True
    if n_trials is None and estimator.time_limit is not None:
        return True
    if estimator.storage is not None or estimator.search_space is not None:
        return True
    if isinstance(estimator.fusion, (list, tuple)):
        return True
    if isinstance(estimator.encoders, Mapping) and any(isinstance(v, (list, tuple)) for v in estimator.encoders.values()):
        return True
    if isinstance(estimator.ensemble_size, int) and estimator.ensemble_size > 1:
        return True
    try:
        return len(_objectives(estimator.objectives)) > 1
    except TypeError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_params(estimator) -> None:
    """Check the search parameters of ``estimator`` (called by ``fit`` before anything else;
    imports Optuna only to check objects given as sampler, pruner or storage)."""
    def is_instance(value: Any, kind: str) -> bool:
        if value is None or isinstance(value, (str, os.PathLike, int, float)):
            return False
        import optuna

        return isinstance(value, {"sampler": optuna.samplers.BaseSampler, "pruner": optuna.pruners.BasePruner,
                                  "storage": optuna.storages.BaseStorage}[kind])

    if estimator.n_trials is not None and (not _is_int(estimator.n_trials) or estimator.n_trials < 1):
        raise InputError(f"n_trials: expected a positive integer or None, got {estimator.n_trials!r}")
    if estimator.search_space is not None:
        if not isinstance(estimator.search_space, Mapping):
            raise InputError(f"search_space: expected a dict (see automm.search), got {estimator.search_space!r}")
        _check_search_space_structure(estimator.search_space)
    sampler = estimator.sampler
    if not (is_instance(sampler, "sampler") or (isinstance(sampler, str) and sampler in SAMPLERS)):
        raise InputError(f"sampler: expected one of {SAMPLERS} or an Optuna sampler, got {sampler!r}")
    if sampler == "cmaes":
        import importlib.util

        if importlib.util.find_spec("cmaes") is None:
            raise InputError("sampler='cmaes' needs the cmaes package: pip install cmaes")
    pruner = estimator.pruner
    if not (pruner is None or is_instance(pruner, "pruner") or (isinstance(pruner, str) and pruner in PRUNERS)):
        raise InputError(f"pruner: expected one of {PRUNERS}, None or an Optuna pruner, got {pruner!r}")
    if estimator.storage is not None:
        parse_storage(estimator.storage)
    if estimator.study_name is not None and (not isinstance(estimator.study_name, str) or not estimator.study_name):
        raise InputError(f"study_name: expected a non-empty string or None, got {estimator.study_name!r}")
    if not _is_int(estimator.n_jobs) or not (estimator.n_jobs >= 1 or estimator.n_jobs == -1):
        raise InputError(f"n_jobs: expected a positive integer or -1 (all CPUs), got {estimator.n_jobs!r}")
    if estimator.ensemble_size != "auto" and (not _is_int(estimator.ensemble_size) or estimator.ensemble_size < 1):
        raise InputError(f"ensemble_size: expected a positive integer or 'auto', got {estimator.ensemble_size!r}")
    try:
        objectives = _objectives(estimator.objectives)
    except TypeError:
        objectives = ()
    if (not objectives or objectives[0] != "score" or len(objectives) > 2
            or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives)):
        raise InputError(f"objectives: expected 'score', ('score', 'latency') or ('score', 'params'), "
                         f"got {estimator.objectives!r}")
    if len(objectives) > 1 and _is_int(estimator.ensemble_size) and estimator.ensemble_size > 1:
        raise InputError("ensemble_size: an ensemble is chosen by validation score only; use ensemble_size=1 "
                         "with a multi-objective search")
    bag_folds = estimator.bag_folds
    if bag_folds != "auto" and (not _is_int(bag_folds) or bag_folds < 1):
        raise InputError(f"bag_folds: expected 'auto', 1 (no bagging) or a number of folds >= 2, got {bag_folds!r}")
    if len(objectives) > 1 and _is_int(bag_folds) and bag_folds > 1:
        raise InputError("bag_folds: a multi-objective search measures one model per trial; use bag_folds=1 or 'auto'")
    if estimator.plot_dir is not None and not isinstance(estimator.plot_dir, (str, os.PathLike)):
        raise InputError(f"plot_dir: expected a directory path or None, got {estimator.plot_dir!r}")
    if estimator.n_jobs != 1 and is_instance(estimator.storage, "storage"):
        raise InputError("n_jobs: worker processes cannot share a storage object; pass a storage URL or a journal "
                         "file path instead")


_SPACE_KEYS = ("encoders", "fusion", "augmentations", "training", "warm_start", "linear_model", "neighbors_model")


def _check_search_space_structure(space: Mapping) -> None:
    unknown = sorted(set(map(str, space)) - set(_SPACE_KEYS))
    if unknown:
        raise InputError(f"search_space: unknown keys {unknown}; expected some of {list(_SPACE_KEYS)}")
    for key in ("warm_start", "linear_model", "neighbors_model"):
        value = space.get(key, True)
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"search_space[{key!r}]: expected true or false, got {value!r}")
    encoders = space.get("encoders")
    if encoders is not None and not isinstance(encoders, Mapping):
        raise InputError(f"search_space['encoders']: expected a dict modality-or-input -> choices, got {encoders!r}")
    training = space.get("training")
    if training is not None:
        if not isinstance(training, Mapping):
            raise InputError(f"search_space['training']: expected a dict, got {training!r}")
        bad = sorted(set(map(str, training)) - set(_TRAINING_NAMES))
        if bad:
            raise InputError(f"search_space['training']: unknown keys {bad}; expected some of {list(_TRAINING_NAMES)}")
        for key, value in training.items():
            _param_spec(value, f"search_space['training'][{key!r}]")
    augmentations = space.get("augmentations")
    if augmentations is not None and not isinstance(augmentations, (Mapping, list, tuple)):
        raise InputError(f"search_space['augmentations']: expected a dict or a list, got {augmentations!r}")


# ==========================================================================================
# Parameter specs and the space
# ==========================================================================================

_CHOICE_TYPES = (type(None), bool, int, float, str)


def _param_spec(value: Any, where: str) -> dict:
    """Normalise one parameter spec to ``{"value": x}``, ``{"choices": [...]}`` or a range."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        keys = set(value)
        if keys == {"value"}:
            return {"value": value["value"]}
        if keys == {"choices"}:
            value = value["choices"]
        elif {"low", "high"} <= keys and keys <= {"low", "high", "log", "step"}:
            low, high, step, log = value["low"], value["high"], value.get("step"), bool(value.get("log", False))
            for name, number in (("low", low), ("high", high), ("step", step)):
                if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
                    raise InputError(f"{where}: {name} must be a number, got {number!r}")
            if low > high:
                raise InputError(f"{where}: low {low!r} is above high {high!r}")
            if log and (low <= 0 or step not in (None, 1)):
                raise InputError(f"{where}: a log range needs low > 0 and no step")
            spec = {"low": low, "high": high, "log": log}
            if step is not None:
                spec["step"] = step
            return spec
        else:
            raise InputError(f"{where}: expected a value, a list of choices, {{'value': ...}}, {{'choices': [...]}} "
                             f"or {{'low': ..., 'high': ...[, 'log': ..., 'step': ...]}}, got {dict(value)!r}")
    if isinstance(value, (list, tuple)):
        choices = [v.item() if isinstance(v, np.generic) else v for v in value]
        if not choices:
            raise InputError(f"{where}: an empty list of choices")
        if not all(isinstance(c, _CHOICE_TYPES) for c in choices):
            raise InputError(f"{where}: choices must be numbers, strings, booleans or null, got {choices!r}; "
                             "use {'value': [...]} to fix a list-valued hyperparameter")
        return {"choices": choices}
    if isinstance(value, _CHOICE_TYPES):
        return {"value": value}
    raise InputError(f"{where}: cannot use {value!r} as a parameter spec")


def _is_int_range(spec: Mapping) -> bool:
    return all(_is_int(spec.get(k)) for k in ("low", "high")) and (spec.get("step") is None or _is_int(spec["step"]))


def _suggest_spec(trial: Any, name: str, spec: Mapping) -> Any:
    if "value" in spec:
        return copy.deepcopy(spec["value"])
    if "choices" in spec:
        choices = list(spec["choices"])
        return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)
    if spec["low"] == spec["high"]:
        return spec["low"]
    if _is_int_range(spec):
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step") or 1),
                                 log=bool(spec.get("log")))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=spec.get("step"),
                               log=bool(spec.get("log")))


class _ScopedTrial:
    """Passes a component's ``suggest_*`` calls to the trial, replacing the distribution of a
    parameter the user narrowed (or its value, when fixed)."""

    def __init__(self, trial: Any, prefix: str, overrides: Mapping[str, dict]):
        self._trial, self._prefix, self._overrides = trial, prefix, overrides
        self.consumed: set[str] = set()

    def _override(self, name: str) -> dict | None:
        key = name[len(self._prefix):] if name.startswith(self._prefix) else name
        if key in self._overrides:
            self.consumed.add(key)
            return self._overrides[key]
        return None

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        spec = self._override(name)
        return self._trial.suggest_categorical(name, choices) if spec is None else _suggest_spec(self._trial, name, spec)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        spec = self._override(name)
        if spec is None:
            return self._trial.suggest_int(name, low, high, step=step, log=log)
        return _suggest_spec(self._trial, name, spec)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        spec = self._override(name)
        if spec is None:
            return self._trial.suggest_float(name, low, high, step=step, log=log)
        return _suggest_spec(self._trial, name, spec)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._trial, attribute)


def _suggest_component(trial: Any, component: _registry.ComponentSpec, prefix: str, overrides: Mapping[str, dict]) -> dict:
    """The component's own space (narrowed or fixed by ``overrides``), widened by overrides it
    does not suggest, on top of its defaults."""
    scoped = _ScopedTrial(trial, prefix, overrides)
    params = component.suggest(scoped, prefix) if component.search_space is not None else {}
    for key, spec in overrides.items():
        if key not in scoped.consumed:
            params[key] = _suggest_spec(trial, prefix + key, spec)
    return component.hyperparameters(**params)


def _fixed_params(params: Mapping[str, Any]) -> dict:
    return {str(k): {"value": v} for k, v in params.items()}


def _searched_by_default(reg: _registry.Registry, kind: str, default: str, modality: str | None = None) -> list[str]:
    """``default`` first, then every other registered component of ``kind`` (and ``modality``)
    not tagged ``"manual"`` (those are searched only when named)."""
    return [default] + [n for n in reg.names(kind, modality=modality)
                        if n != default and "manual" not in reg.get(kind, n).tags]


def _component_choices(raw: Any, kind: str, where: str, reg: _registry.Registry,
                       modality: str | None = None) -> dict[str, dict]:
    """Choices as an ordered dict ``name -> {param: spec}``."""
    def check(name: Any) -> str:
        if not isinstance(name, str):
            raise InputError(f"{where}: expected component names, got {name!r}")
        component = reg.get(kind, name)
        if modality is not None and component.modality != modality:
            raise InputError(f"{where}: {name!r} encodes {component.modality!r}, not {modality!r}; choose among "
                             f"{reg.names(kind, modality=modality)}")
        return name

    choices: dict[str, dict] = {}
    if isinstance(raw, str):
        choices[check(raw)] = {}
    elif isinstance(raw, Mapping) and "name" in raw:
        params = dict(raw)
        choices[check(params.pop("name"))] = _fixed_params(params)
    elif isinstance(raw, Mapping):
        for name, specs in raw.items():
            if specs in (None, True):
                specs = {}
            if not isinstance(specs, Mapping):
                raise InputError(f"{where}[{name!r}]: expected a dict of parameter specs, got {specs!r}")
            choices[check(name)] = {str(k): _param_spec(v, f"{where}[{name!r}][{k!r}]") for k, v in specs.items()}
    elif isinstance(raw, (list, tuple)) and raw:
        for item in raw:
            if isinstance(item, str):
                choices.setdefault(check(item), {})
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                params = dict(item)
                choices[check(params.pop("name"))] = _fixed_params(params)
            else:
                raise InputError(f"{where}: expected names or {{'name': ...}} dicts in the list, got {item!r}")
    else:
        raise InputError(f"{where}: expected a name, a list of choices or a dict name -> parameter specs, got {raw!r}")
    return choices


def _training_space(estimator, base_training: Mapping[str, Any], device_type: str) -> dict[str, dict]:
    max_epochs = int(base_training["max_epochs"])
    batch = int(base_training["batch_size"])
    space = {
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"low": 1e-5, "high": 0.1, "log": True},
        "batch_size": ({"choices": sorted({max(1, batch // 2), batch, batch * 2})} if estimator.batch_size == "auto"
                       else {"value": batch}),
        "max_epochs": ({"low": max(1, max_epochs // 2), "high": max_epochs, "log": False} if max_epochs > 1
                       else {"value": max_epochs}),
        "label_smoothing": {"low": 0.0, "high": 0.2, "log": False},
        "head_dropout": {"low": 0.0, "high": 0.4, "log": False},
        "patience": {"value": int(base_training["patience"])},
    }
    if estimator.problem_type_ == "regression":
        space["label_smoothing"] = {"value": float(base_training["label_smoothing"])}
    return space


#: The learning-rate range of a sampled configuration whose encoders are all frozen, when its
#: batch is :data:`automm.pipeline.FROZEN_BATCH_SCALE` times larger. Such a head takes few steps
#: (fashion subCategory: 30 per epoch at batch 256) and a low rate leaves it underfitted: 5-fold
#: bags of frozen EfficientNet-Lite0 + MiniLM, batch 256, 16 epochs, scored 0.82 at 3e-4 and 0.87
#: at 6e-4 against 0.87-0.90 from 1e-3 to 1.6e-2 on emoji; on fashion subCategory 0.9887 at 3e-4
#: against 0.9909-0.9930 from 1e-3 to 1e-2.
FROZEN_LEARNING_RATE = {"low": 1e-3, "high": 1e-2, "log": True}


class SearchSpace:
    """The define-by-run space of one search, described by plain JSON (stored in the study,
    so every worker samples the same space)::

        {"encoders": {input: {encoder: {param: spec}}}, "fusion": {fusion: {param: spec}},
         "augmentations": {name: {"mode": "search"|"on", "params": {param: spec}}},
         "training": {key: spec}, "default": <the default configuration>}
    """

    def __init__(self, description: Mapping[str, Any]):
        self.description = json.loads(json.dumps(description))

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_estimator(cls, estimator, inputs: Sequence[Any], base_config: Mapping[str, Any],
                       device_type: str = "cpu", n_outputs: int | None = None,
                       problem_type: str | None = None) -> "SearchSpace":
        """The space for ``estimator`` on ``inputs``; ``n_outputs`` and ``problem_type`` (of the
        prepared data) let it add the linear and nearest-neighbour models to the presets."""
        reg = _registry.get_registry()
        user = dict(estimator.search_space or {})
        _check_search_space_structure(user)
        args = dict(estimator.encoders or {})
        user_encoders = dict(user.get("encoders") or {})
        known = set(reg.modalities()) | {c for spec in inputs for c in spec.columns} | {spec.name for spec in inputs}
        unknown = sorted(set(map(str, user_encoders)) - known)
        if unknown:
            raise InputError(f"search_space['encoders']: keys {unknown} match no modality, input or column "
                             f"(inputs {[s.name for s in inputs]})")

        def lookup(mapping: Mapping, spec) -> Any:
            for key in (spec.name, *spec.columns, spec.modality):
                if key in mapping:
                    return mapping[key]
            return None

        encoders = {}
        for spec in inputs:
            where = f"encoders for input {spec.name!r}"
            from_arg = lookup(args, spec)
            from_space = lookup(user_encoders, spec)
            arg_choices = (_component_choices(from_arg, "encoder", where, reg, spec.modality)
                           if from_arg is not None else None)
            if from_space is not None:
                space_choices = _component_choices(from_space, "encoder", f"search_space[{where}]", reg, spec.modality)
                choices = {n: {**(arg_choices or {}).get(n, {}), **p} for n, p in space_choices.items()}
            elif arg_choices is not None:
                choices = arg_choices
            else:
                default = base_config["encoders"][spec.name]["name"]
                names = _searched_by_default(reg, "encoder", default, spec.modality)
                choices = {n: {} for n in names}
            encoders[spec.name] = choices

        fusion_arg = estimator.fusion
        fusion_default = _init_default(type(estimator), "fusion")
        arg_fusions = None
        if not (isinstance(fusion_arg, str) and fusion_arg == fusion_default):
            arg_fusions = _component_choices(fusion_arg, "fusion", "fusion", reg)
        if user.get("fusion") is not None:
            space_fusions = _component_choices(user["fusion"], "fusion", "search_space['fusion']", reg)
            fusions = {n: {**(arg_fusions or {}).get(n, {}), **p} for n, p in space_fusions.items()}
        elif arg_fusions is not None:
            fusions = arg_fusions
        else:
            default = base_config["fusion"]["name"]
            fusions = {n: {} for n in _searched_by_default(reg, "fusion", default)}

        modalities = {spec.modality for spec in inputs}
        augmentations: dict[str, dict] = {}
        if estimator.augmentations == "default":
            for name in reg.names("augmentation"):
                component = reg.get("augmentation", name)
                if component.modality == "batch" or component.modality in modalities:
                    augmentations[name] = {"mode": "search", "params": {}}
        elif isinstance(estimator.augmentations, (list, tuple)):
            for item in estimator.augmentations:
                name, params = _split_choice(item, "augmentations")
                reg.get("augmentation", name)
                augmentations[name] = {"mode": "search", "params": _fixed_params(params)}
        user_augs = user.get("augmentations")
        if isinstance(user_augs, (list, tuple)):
            restricted = {}
            for item in user_augs:
                name, params = _split_choice(item, "search_space['augmentations']")
                reg.get("augmentation", name)
                entry = augmentations.get(name, {"mode": "search", "params": {}})
                entry["params"] = {**entry["params"], **_fixed_params(params)}
                restricted[name] = entry
            augmentations = restricted
        elif isinstance(user_augs, Mapping):
            for name, value in user_augs.items():
                reg.get("augmentation", name)
                where = f"search_space['augmentations'][{name!r}]"
                mode, specs = "search", {}
                if value is False:
                    augmentations.pop(name, None)
                    continue
                if value is True:
                    mode = "on"
                elif value in (None, "search"):
                    pass
                elif isinstance(value, Mapping):
                    specs = dict(value)
                    enabled = specs.pop("enabled", "search")
                    if enabled is False:
                        augmentations.pop(name, None)
                        continue
                    if enabled not in (True, "search"):
                        raise InputError(f"{where}['enabled']: expected true, false or 'search', got {enabled!r}")
                    mode = "on" if enabled is True else "search"
                else:
                    raise InputError(f"{where}: expected true, false, 'search', null or a dict of parameter specs, "
                                     f"got {value!r}")
                entry = augmentations.get(name, {"mode": mode, "params": {}})
                entry["mode"] = mode
                entry["params"] = {**entry["params"],
                                   **{str(k): _param_spec(v, f"{where}[{k!r}]") for k, v in specs.items()}}
                augmentations[name] = entry
        for name in list(augmentations):
            component = reg.get("augmentation", name)
            if component.modality != "batch" and component.modality not in modalities:
                del augmentations[name]

        training = _training_space(estimator, base_config["training"], device_type)
        for key, value in (user.get("training") or {}).items():
            training[str(key)] = _param_spec(value, f"search_space['training'][{key!r}]")

        description = {"encoders": encoders, "fusion": fusions, "augmentations": augmentations, "training": training}
        description["default"] = _default_config(description, base_config, reg)
        pretrained = _pretrained_presets(description, reg)
        presets = list(pretrained)
        if resolved_ensemble_size(estimator) > 1:
            fixed = {name: {n: _fixed_values(p) for n, p in choices.items()} for name, choices in encoders.items()}
            base_training = description["default"]["training"]
            linear = neighbors = None
            if n_outputs is not None and bool(user.get("linear_model", True)):
                linear = linear_config(inputs, fixed, base_training, n_outputs)
            if n_outputs is not None and bool(user.get("neighbors_model", True)):
                regression = (problem_type == "regression") if problem_type else n_outputs == 1
                neighbors = neighbors_config(inputs, fixed, base_training, regression=regression)
            presets += [config for config in (linear, neighbors) if config is not None]
            presets += _replicates([description["default"], *pretrained], REPLICATES)
        description["presets"] = presets
        description["warm_start"] = bool(user.get("warm_start", True))
        description["frozen_batch_scale"] = estimator._frozen_batch_scale()
        if description["frozen_batch_scale"] > 1 and "learning_rate" not in (user.get("training") or {}):
            description["frozen_learning_rate"] = dict(FROZEN_LEARNING_RATE)
        return cls(description)

    # -- use -----------------------------------------------------------------------------
    @property
    def default_config(self) -> dict:
        """The configuration of the first trial (the estimator's default, within the space)."""
        return copy.deepcopy(self.description["default"])

    @property
    def warm_start(self) -> bool:
        """Whether the search starts with the default configuration and the presets
        (``search_space["warm_start"]``, true unless set false)."""
        return bool(self.description.get("warm_start", True))

    @property
    def frozen_batch_scale(self) -> int:
        """The batch-size multiplier of configurations whose encoders are all frozen
        (:func:`automm.pipeline.scale_frozen_batch`; 1 when the user fixed ``batch_size``)."""
        return int(self.description.get("frozen_batch_scale", 1))

    @property
    def presets(self) -> list[dict]:
        """Configurations tried right after the default, in order: the pretrained variants
        (:func:`_pretrained_presets`), then, when the search ends in an ensemble, a replicate of
        the default and of each pretrained variant (:func:`_replicates`)."""
        return copy.deepcopy(self.description.get("presets", []))

    def suggest(self, trial: Any, frozen: Callable[[dict], bool] | None = None) -> dict:
        """A configuration sampled on ``trial`` (an Optuna ``Trial`` or ``FixedTrial``).

        ``frozen(config)`` tells whether a configuration's encoders are all frozen; for one that
        is, the learning rate is sampled from the description's ``"frozen_learning_rate"`` (when
        present) as ``training.frozen_learning_rate`` (see :data:`FROZEN_LEARNING_RATE`).
        """
        reg = _registry.get_registry()
        desc = self.description
        encoders = {}
        for input_name, choices in desc["encoders"].items():
            names = list(choices)
            name = names[0] if len(names) == 1 else trial.suggest_categorical(f"{input_name}.encoder", names)
            params = _suggest_component(trial, reg.get("encoder", name), f"{input_name}.{name}.", choices[name])
            encoders[input_name] = {"name": name, **params}
        names = list(desc["fusion"])
        name = names[0] if len(names) == 1 else trial.suggest_categorical("fusion", names)
        fusion = {"name": name, **_suggest_component(trial, reg.get("fusion", name), f"fusion.{name}.",
                                                     desc["fusion"][name])}
        augmentations = []
        for name, entry in desc["augmentations"].items():
            on = entry["mode"] == "on" or trial.suggest_categorical(f"augment.{name}", [False, True])
            if on:
                params = _suggest_component(trial, reg.get("augmentation", name), f"augment.{name}.", entry["params"])
                augmentations.append({"name": name, **params})
        specs = {key: (f"training.{key}", spec) for key, spec in desc["training"].items()}
        frozen_rate = desc.get("frozen_learning_rate")
        if frozen_rate is not None and frozen is not None and frozen({"encoders": encoders}):
            specs["learning_rate"] = ("training.frozen_learning_rate", frozen_rate)
        training = {key: _suggest_spec(trial, name, spec) for key, (name, spec) in specs.items()}
        config = {"encoders": encoders, "fusion": fusion, "augmentations": augmentations, "training": training}
        return json.loads(json.dumps(config))

    def to_json(self) -> dict:
        return copy.deepcopy(self.description)


def _init_default(cls, name: str) -> Any:
    import inspect

    return inspect.signature(cls.__init__).parameters[name].default


_split_choice = _registry.split_component_choice


def _fixed_values(specs: Mapping[str, dict]) -> dict:
    """The values that ``specs`` fix (a value, or a single choice)."""
    fixed = {}
    for key, spec in specs.items():
        if "value" in spec:
            fixed[key] = copy.deepcopy(spec["value"])
        elif "choices" in spec and len(spec["choices"]) == 1:
            fixed[key] = copy.deepcopy(spec["choices"][0])
    return fixed


def _default_config(desc: Mapping[str, Any], base: Mapping[str, Any], reg: _registry.Registry) -> dict:
    """The estimator's default configuration moved inside the space: components the space
    excludes replaced by its first choice, fixed values applied."""
    encoders = {}
    for input_name, choices in desc["encoders"].items():
        current = dict(base["encoders"][input_name])
        name = current.pop("name")
        if name not in choices:
            name = next(iter(choices))
            current = reg.get("encoder", name).hyperparameters()
        encoders[input_name] = {"name": name, **current, **_fixed_values(choices[name])}
    current = dict(base["fusion"])
    name = current.pop("name")
    if name not in desc["fusion"]:
        name = next(iter(desc["fusion"]))
        current = reg.get("fusion", name).hyperparameters()
    fusion = {"name": name, **current, **_fixed_values(desc["fusion"][name])}
    augmentations = []
    present = set()
    for choice in base["augmentations"]:
        if choice["name"] in desc["augmentations"]:
            entry = desc["augmentations"][choice["name"]]
            augmentations.append({**choice, **_fixed_values(entry["params"])})
            present.add(choice["name"])
    for name, entry in desc["augmentations"].items():
        if entry["mode"] == "on" and name not in present:
            augmentations.append({"name": name, **reg.get("augmentation", name).hyperparameters(),
                                  **_fixed_values(entry["params"])})
    training = {**base["training"], **_fixed_values(desc["training"])}
    return {"encoders": encoders, "fusion": fusion, "augmentations": augmentations, "training": training}


def _pretrained_presets(desc: Mapping[str, Any], reg: _registry.Registry) -> list[dict]:
    """The default configuration with every input whose choices include an encoder tagged
    ``"pretrained"`` switched to it (with its defaults: frozen, on cached features), and the
    per-sample augmentations of those inputs' modalities dropped (frozen features ignore
    them). Cheap and usually strong, so the search tries it second; none when no input has
    such a choice."""
    default = desc["default"]
    encoders = copy.deepcopy(default["encoders"])
    switched: set[str] = set()
    for input_name, choices in desc["encoders"].items():
        pretrained = [n for n in choices if "pretrained" in reg.get("encoder", n).tags]
        if pretrained and encoders[input_name]["name"] not in pretrained:
            spec = reg.get("encoder", pretrained[0])
            encoders[input_name] = {"name": spec.name, **spec.hyperparameters(), **_fixed_values(choices[spec.name])}
            switched.add(str(spec.modality))
    if not switched:
        return []
    augmentations = [copy.deepcopy(a) for a in default["augmentations"]
                     if reg.get("augmentation", a["name"]).modality not in switched]
    return [{**copy.deepcopy(default), "encoders": encoders, "augmentations": augmentations}]


#: How many times :func:`_replicates` repeats each configuration (seed offsets 1, 2, ...).
REPLICATES = 1


def _replicates(configs: Sequence[Mapping[str, Any]], count: int) -> list[dict]:
    """Each configuration again ``count`` times, trained with other seeds
    (``training.seed_offset`` 1 to ``count``), all first replicates before any second one.

    With a budget for only a few trials (a from-scratch fused model on a few thousand rows
    and 2 CPU cores gets three or four in ten minutes), a randomly sampled configuration is
    usually worse than the default, and the ensemble has nothing to average. Two seeds of a
    strong configuration err differently, and their average has a lower holdout loss than
    either, so the greedy ensemble takes both: variance reduction, not a wider search."""
    replicates = []
    for offset in range(1, count + 1):
        for config in configs:
            replicate = copy.deepcopy(dict(config))
            replicate["training"] = {**replicate["training"], "seed_offset": offset}
            replicates.append(replicate)
    return replicates


# ==========================================================================================
# Storages, samplers, pruners
# ==========================================================================================

def parse_storage(storage: Any) -> tuple[str, Any]:
    """``(kind, value)`` for a ``storage`` argument: ``("memory", None)``, ``("journal", path)``,
    ``("rdb", url)`` or ``("object", storage)``."""
    if storage is None:
        return "memory", None
    if not isinstance(storage, (str, os.PathLike)):
        import optuna

        if isinstance(storage, optuna.storages.BaseStorage):
            return "object", storage
        raise InputError(f"storage: expected an Optuna storage URL, a journal file path or a storage object, "
                         f"got {storage!r}")
    text = os.fspath(storage)
    if not text:
        raise InputError("storage: empty string")
    if text.startswith("journal://"):
        path = text[len("journal://"):]
        if not path:
            raise InputError(f"storage: {text!r} names no file; use journal:///path/to/study.log")
        return "journal", os.path.abspath(path)
    if "://" in text:
        scheme = text.split("://", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql"):
            raise InputError(f"storage: unsupported URL scheme {scheme!r}; use sqlite://, postgresql://, mysql:// "
                             "or journal:///path/file.log")
        if scheme == "postgres":
            text = "postgresql" + text[len("postgres"):]
        if text.startswith("postgresql://"):
            text = _postgres_driver() + text[len("postgresql"):]
        return "rdb", text
    if text.endswith((".log", ".journal", ".jsonl")):
        return "journal", os.path.abspath(text)
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        return "rdb", "sqlite:///" + os.path.abspath(text)
    raise InputError(f"storage: {text!r} is neither a storage URL (sqlite:///..., postgresql://...) nor a journal "
                     "file (journal:///path, or a path ending in .log or .journal)")


def _postgres_driver() -> str:
    """``postgresql+<driver>`` for the PostgreSQL driver installed (SQLAlchemy's default,
    psycopg 3, or psycopg2)."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2"
    return "postgresql"


def make_storage(kind: str, value: Any):
    """An Optuna storage for :func:`parse_storage`'s result (a new connection each call)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "object":
        return value
    if kind == "journal":
        Path(value).parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a grace period under 3 s is warned about)
            lock = JournalFileSymlinkLock(str(value), grace_period=JOURNAL_LOCK_GRACE)
        return JournalStorage(JournalFileBackend(str(value), lock_obj=lock))
    if kind == "rdb":
        engine_kwargs = {"pool_pre_ping": True} if not value.startswith("sqlite") else {"connect_args": {"timeout": 60}}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    value, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL,
                    grace_period=HEARTBEAT_GRACE,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
        except ImportError as exc:
            raise InputError(f"storage: {value.split('://')[0]} needs a database driver ({exc}; for PostgreSQL: "
                             "pip install psycopg2-binary)") from None
    raise ValueError(f"unknown storage kind {kind!r}")


def _own_heartbeats(storage) -> bool:
    """automm's heartbeats for storages shared by processes that have none of their own
    (RDB storages have Optuna's)."""
    import optuna

    if isinstance(storage, optuna.storages.InMemoryStorage):
        return False
    return not (isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None)


@dataclass
class _Settings:
    """What a search process needs besides the data (JSON-able)."""

    objectives: tuple[str, ...]
    sampler: Any                 # a name, or an Optuna sampler object (not stored)
    pruner: Any
    seed: int
    n_trials: int | None
    ensemble_size: int
    max_epochs: int
    verbose: int
    bag_folds: Any = 1           # "auto" or a number of folds (see pipeline.bag_folds_for)


def _make_sampler(settings: _Settings, worker_index: int):
    import optuna

    seed = (settings.seed + 7919 * worker_index) % (2**31 - 1)
    sampler = settings.sampler
    if isinstance(sampler, optuna.samplers.BaseSampler):
        if worker_index:
            sampler = copy.deepcopy(sampler)
            sampler.reseed_rng()
        return sampler
    multi = len(settings.objectives) > 1
    n = settings.n_trials
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sampler == "nsgaii" or (sampler == "tpe" and multi):
            population = 50 if n is None else int(min(50, max(4, n // 4)))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        startup = 10 if n is None else int(min(10, max(3, n // 4)))
        tpe = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=startup)
        if sampler == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise InputError("sampler='cmaes' needs the cmaes package: pip install cmaes") from None
            return optuna.samplers.CmaEsSampler(seed=seed, independent_sampler=tpe, warn_independent_sampling=False,
                                                n_startup_trials=startup)
        return tpe


def _make_pruner(settings: _Settings):
    import optuna

    pruner = settings.pruner
    if len(settings.objectives) > 1 or pruner in (None, "none"):
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, settings.max_epochs),
                                              reduction_factor=3)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise InputError(f"pruner: unknown {pruner!r}")


@contextlib.contextmanager
def _optuna_quiet(verbose: int):
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose >= 2 else optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


# ==========================================================================================
# Trained models of the best trials: memory, or files for other processes
# ==========================================================================================

def _rank_key(state_complete: bool, score: float, loss: float | None = None, rows: int | None = None) -> tuple:
    """Better trials sort higher: complete before pruned, then validation score, then (ties
    are common on a small holdout) lower validation loss. Nothing timing-dependent, so a
    search ranks its trials the same way whatever the machine's speed.

    ``rows`` (given for an accuracy) is how many rows the score was measured on; the score is
    then ranked by its lower one-standard-error bound, ``score - sqrt(score (1 - score) / rows)``.
    A bagged trial is scored on every row and the others on the holdout alone, and the best
    of many accuracies on a few hundred rows is mostly the luckiest: on emoji (145 holdout
    rows), a from-scratch trial's holdout accuracy outranked the out-of-fold accuracy (1,446
    rows) of frozen-feature bags and lost 2 points on test. Among trials scored on the same
    rows the order is unchanged (the bound grows with the score above 0.1 for 10 rows or more)."""
    loss_value = float(loss) if loss is not None and math.isfinite(loss) else math.inf
    value = float(score) if math.isfinite(score) else -math.inf
    if rows and math.isfinite(value) and 0.0 <= value <= 1.0:
        value -= math.sqrt(value * (1.0 - value) / rows)
    return (bool(state_complete), value, -loss_value)


def _write_candidate(candidate: Candidate, directory: Path) -> None:
    from safetensors.torch import save_file

    from .persistence import _jsonable

    def write_model(model, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "weights.safetensors"))
        with open(folder / "preprocessing.json", "w", encoding="utf-8") as handle:
            json.dump({n: _jsonable(e.get_state()) for n, e in model.encoders.items()}, handle)

    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_model(candidate.model, staging)
    for index, model in enumerate((candidate.bag or [])[1:], start=1):
        write_model(model, staging / f"fold-{index}")
    if candidate.valid_outputs is not None:
        np.save(staging / "valid_outputs.npy", np.asarray(candidate.valid_outputs), allow_pickle=False)
    if candidate.oof_outputs is not None:
        np.save(staging / "oof_outputs.npy", np.asarray(candidate.oof_outputs), allow_pickle=False)
    meta = {"config": candidate.config, "history": _jsonable(candidate.history), "best_epoch": candidate.best_epoch,
            "best_score": _jsonable(candidate.best_score), "stop_reason": candidate.stop_reason,
            "seconds": candidate.seconds, "n_outputs": int(candidate.model.n_outputs),
            "folds": len(candidate.bag) if candidate.bag is not None else 0,
            "oof_loss": _jsonable(candidate.oof_loss)}
    with open(staging / "candidate.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(staging, directory)


def _read_candidate(directory: Path, data: PreparedData) -> Candidate:
    from safetensors.torch import load_file

    with open(directory / "candidate.json", encoding="utf-8") as handle:
        meta = json.load(handle)

    def read_model(folder: Path):
        with open(folder / "preprocessing.json", encoding="utf-8") as handle:
            states = json.load(handle)
        model = build_model(data.inputs, meta["config"], meta["n_outputs"], states=states)
        model.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        return model.to(data.device).eval()

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
                     oof_loss=meta.get("oof_loss"))


class _ModelPool:
    """The best trials' trained models of one process: at most ``k`` (the non-dominated ones
    in a multi-objective search), in memory or, with ``directory``, as files. A single-objective
    pool also keeps the linear and nearest-neighbour models (see :func:`_always_weighed`)
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
            if not self.multi and _always_weighed(candidate.config):
                self.pinned.add(number)
            evicted = self._evict()
            if number in evicted:
                return
            if self.directory is not None:
                _write_candidate(candidate, self.path(number))
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


# ==========================================================================================
# One trial
# ==========================================================================================

@dataclass
class _Context:
    """Everything a search process needs to run trials (inherited by forked processes)."""

    data: PreparedData
    space: SearchSpace
    settings: _Settings
    storage: Any
    study_name: str
    deadline: float | None                # time.monotonic() value
    pool: _ModelPool
    callbacks: list = field(default_factory=list)
    heartbeat: bool = False
    device_queue: Any = None              # queue.Queue of torch.device (one trial per GPU)
    child_artifact_dir: str | None = None
    worker_tag: str = ""
    durations: list = field(default_factory=list)  # seconds of this process's trials that were not pruned
    hard_grace: float = 10.0              # seconds past the deadline before a trial is interrupted
    attempts: int = 0                     # trials this process started
    trial_seconds: float | None = None    # the most one trial may train (None: up to the deadline)


#: A bag's report after its fold ``k`` goes at step ``FOLD_REPORT_STEP + k``, past any epoch.
FOLD_REPORT_STEP = 10_000


class _TrialReporter(Callback):
    """Reports the best validation score so far after every epoch and stops a pruned trial.

    A bag (k-fold trial) reports its first fold's epochs, then, with ``fold_reports`` (which
    implies ``report``), the out-of-fold score of the folds done after each fold but the last
    (:meth:`on_fold_end`, step :data:`FOLD_REPORT_STEP` + folds done): a bag that survives its
    first fold can still be stopped before its other folds, which are most of its cost.
    With ``prunable=False`` (the default configuration, its presets and their replicates:
    the baseline and the ensemble's planned members) the scores are still reported, so that
    the pruner can compare later trials with them, but the trial is never stopped."""

    def __init__(self, trial: Any, report: bool, prunable: bool = True, fold_reports: bool = False):
        self.trial, self.report, self.prunable = trial, report, prunable
        self.fold_reports = report and fold_reports
        self.pruned_reason: str | None = None

    @property
    def pruned(self) -> bool:
        return self.pruned_reason is not None

    def on_epoch_end(self, trainer, record: dict) -> None:
        if not self.report:
            return
        epoch = int(record["epoch"])
        value = float(trainer.best_score)
        if not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.prunable and self.trial.should_prune():
            self.pruned_reason = trainer.stop_reason = f"pruned at epoch {epoch}"
            trainer.should_stop = True

    def on_fold_end(self, done: int, n_folds: int, score: float) -> bool:
        """After fold ``done`` of a bag: report its out-of-fold ``score`` so far; True stops the bag."""
        if not math.isfinite(score):
            return False
        self.trial.report(float(score), FOLD_REPORT_STEP + int(done))
        if self.prunable and self.trial.should_prune():
            self.pruned_reason = f"pruned after fold {done} of {n_folds}"
            return True
        return False


class _Heartbeat:
    """Writes the time into a running trial's system attributes every ``interval`` seconds."""

    def __init__(self, storage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"automm-heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.storage.set_trial_system_attr(self.trial_id, _HEARTBEAT, time.time())
            except Exception:  # noqa: BLE001 - the trial finished or the storage went away
                return
            if self.stop_event.wait(self.interval):
                return

    def __enter__(self) -> "_Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=max(5.0, self.interval))


def _on_alarm(signum, frame) -> None:
    raise TimeLimitExceeded("the trial ran past the time limit in code that does not watch it (e.g. feature "
                            "extraction of a pretrained encoder) and was interrupted")


@contextlib.contextmanager
def _hard_stop(deadline: float | None):
    """Interrupt the block (raising :class:`TimeLimitExceeded`) at ``deadline`` (a
    ``time.monotonic()`` value), with ``SIGALRM``: main thread of a POSIX process only. An alarm
    already set (e.g. pytest-timeout's) is kept: when it is due first, nothing is armed; else it
    is set again, for the time it had left, when the block ends."""
    if deadline is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    delay = max(0.01, deadline - time.monotonic())
    previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    if previous_delay and previous_delay <= delay:
        yield
        return
    previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    armed = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            left = previous_delay - (time.monotonic() - armed)
            signal.setitimer(signal.ITIMER_REAL, max(0.001, left), previous_interval)


def _failure_reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, FloatingPointError):
        text = f"non-finite loss ({text})"
    elif _is_oom(exc):
        text = f"out of memory ({text})"
    return text if len(text) <= 500 else text[:497] + "..."


def _is_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, (MemoryError, oom_type)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def _budget_trials(trials: Sequence[Any]) -> list[Any]:
    """Trials that count towards ``n_trials``: not skipped, not a failure retried elsewhere."""
    from optuna.trial import TrialState

    retried = set()
    for t in trials:
        retried.update(t.system_attrs.get("retry_history", []))
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return [t for t in trials if t.state in counted and not t.user_attrs.get(_ATTR + "skipped")
            and not (t.state == TrialState.FAIL and t.number in retried)]


def _measure_latency(model, data: PreparedData, batch_size: int, device: torch.device) -> float:
    """Milliseconds per sample to preprocess and predict (up to 128) holdout samples."""
    from .data import BatchCollator, MultimodalDataset
    from .model import move_to_device
    from .training import make_loader

    index = data.valid_index[:128]
    encoders = dict(model.encoders.items())
    loader = make_loader(MultimodalDataset(data.subset(index), encoders), max(1, batch_size), False, 0, 0,
                         BatchCollator(encoders))
    model = model.to(device).eval()
    best = math.inf
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            for batch in loader:
                batch = move_to_device(batch, device)
                model(batch["inputs"], batch["masks"])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
    return 1000.0 * best / max(1, len(index))


def _objective(trial, ctx: _Context):
    import optuna

    storage, settings = ctx.storage, ctx.settings
    attrs = trial.user_attrs
    trial.set_user_attr(_ATTR + "worker", ctx.worker_tag)
    if settings.n_trials is not None and not attrs.get(_ATTR + "default"):
        earlier = [t for t in _budget_trials(trial.study.get_trials(deepcopy=False)) if t.number < trial.number]
        if len(earlier) >= settings.n_trials:
            trial.set_user_attr(_ATTR + "skipped", True)
            raise optuna.TrialPruned("n_trials reached by other workers")
    is_default = bool(attrs.get(_ATTR + "default"))
    preset = attrs.get(_ATTR + "preset")
    if is_default:
        config = ctx.space.default_config
    elif preset is not None:
        config = ctx.space.presets[int(preset)]
    else:
        config = ctx.space.suggest(trial, frozen=lambda c: all_encoders_frozen(ctx.data.inputs, c))
    config = scale_frozen_batch(config, ctx.data.inputs, ctx.space.frozen_batch_scale)
    trial.set_user_attr(_ATTR + "config", config)
    device = ctx.device_queue.get() if ctx.device_queue is not None else ctx.data.device
    warm_start = is_default or preset is not None
    # fold reports only for pruners that compare trials step by step (median, percentile);
    # Hyperband and successive halving count epochs as their resource
    reporter = _TrialReporter(trial, report=len(settings.objectives) == 1, prunable=not warm_start,
                              fold_reports=isinstance(trial.study.pruner, optuna.pruners.PercentilePruner))
    heartbeat = _Heartbeat(storage, trial._trial_id, HEARTBEAT_INTERVAL) if ctx.heartbeat else contextlib.nullcontext()
    start = time.monotonic()
    try:
        trial_deadline = _trial_deadline(ctx, warm_start=warm_start)
        hard_deadline = None if trial_deadline is None else trial_deadline + ctx.hard_grace
        with heartbeat:
            with _hard_stop(hard_deadline):
                candidate = _train(ctx, config, trial, device, reporter, trial_deadline)
            if not math.isfinite(float(candidate.best_score)):
                raise FloatingPointError("no finite validation score")
            extra = {}
            if "latency" in settings.objectives:
                extra["latency_ms"] = _measure_latency(candidate.model, ctx.data,
                                                       int(candidate.config["training"]["batch_size"]), device)
            if "params" in settings.objectives:
                extra["n_params"] = int(sum(p.numel() for p in candidate.model.parameters()))
    except Exception as exc:
        reason = _failure_reason(exc)
        trial.set_user_attr(_ATTR + "reason", reason)
        trial.set_user_attr(_ATTR + "seconds", time.monotonic() - start)
        if settings.verbose:
            print(f"[automm] trial {trial.number} failed: {reason}", flush=True)
        raise
    finally:
        if ctx.device_queue is not None:
            ctx.device_queue.put(device)
    seconds = time.monotonic() - start
    if not reporter.pruned and not _always_weighed(config):  # (no epochs) see _stop_reason
        ctx.durations.append(seconds)
    score = float(candidate.best_score)
    loss = candidate.best_loss
    # rows the score was measured on (an accuracy's precision: see _rank_key)
    rows = None
    if ctx.data.problem_type != "regression":
        rows = len(ctx.data.valid_index) + (len(ctx.data.train_index) if candidate.bag is not None else 0)
    for key, value in {"score": score if math.isfinite(score) else None, "loss": loss, "rows": rows,
                       "epochs": len(candidate.history), "best_epoch": int(candidate.best_epoch), "seconds": seconds,
                       "stop_reason": candidate.stop_reason, **extra}.items():
        trial.set_user_attr(_ATTR + key, value)
    if candidate.config is not config:
        trial.set_user_attr(_ATTR + "config", candidate.config)
    pruned = reporter.pruned
    if settings.verbose:
        what = reporter.pruned_reason if pruned else f"score {score:.4f}"
        print(f"[automm] trial {trial.number}: {what} ({_components(config)}) {seconds:.1f} s", flush=True)
    if len(settings.objectives) > 1:
        second = extra["latency_ms"] if "latency" in settings.objectives else float(extra["n_params"])
        _keep(ctx, trial, (score, second), candidate)
        return score, second
    _keep(ctx, trial, _rank_key(not pruned, score, loss, rows), candidate)
    if pruned:
        raise optuna.TrialPruned(reporter.pruned_reason)
    return score


def _keep(ctx: _Context, trial, key: Any, candidate: Candidate) -> None:
    try:
        ctx.pool.offer(trial.number, key, candidate, ctx.storage, trial._trial_id)
    except Exception as exc:  # noqa: BLE001 - the trial's result stands; only its model is not kept
        warnings.warn(f"trial {trial.number}: could not keep its trained model: {exc!r}")


def _trial_deadline(ctx: _Context, warm_start: bool = False) -> float | None:
    """The search's deadline, or sooner when each trial may use only a share of the budget
    (:data:`WARM_START_TIME_FRACTION` for the default, presets and replicates, else
    :data:`TRIAL_TIME_FRACTION`)."""
    if ctx.trial_seconds is None:
        return ctx.deadline
    seconds = ctx.trial_seconds * (WARM_START_TIME_FRACTION / TRIAL_TIME_FRACTION if warm_start else 1.0)
    own = time.monotonic() + seconds
    return own if ctx.deadline is None else min(ctx.deadline, own)


def _train(ctx: _Context, config: dict, trial, device: torch.device, reporter: _TrialReporter,
           deadline: float | None = None) -> Candidate:
    """train_candidate, retrying with half the batch size after CUDA running out of memory."""
    import gc

    callbacks = [*ctx.callbacks, reporter]
    n_folds = bag_folds_for(ctx.settings.bag_folds, ctx.data, config)
    trial.set_user_attr(_ATTR + "folds", n_folds)
    while True:
        batch = int(config["training"]["batch_size"])
        try:
            if n_folds > 1:
                return train_bagged(ctx.data, config, n_folds, deadline=deadline, callbacks=callbacks,
                                    verbose=max(0, ctx.settings.verbose - 1), device=device,
                                    on_fold_end=reporter.on_fold_end if reporter.fold_reports else None)
            return train_candidate(ctx.data, config, deadline=deadline, callbacks=callbacks,
                                   verbose=max(0, ctx.settings.verbose - 1), device=device)
        except Exception as exc:
            if device.type != "cuda" or not _is_oom(exc) or batch <= 1:
                raise
        # out of the except block, so that the failed attempt's tensors can be freed
        gc.collect()
        torch.cuda.empty_cache()
        config = copy.deepcopy(config)
        config["training"]["batch_size"] = batch // 2
        trial.set_user_attr(_ATTR + "oom_retries", int(trial.user_attrs.get(_ATTR + "oom_retries", 0)) + 1)


def _components(config: Mapping[str, Any]) -> str:
    encoders = ", ".join(f"{k}={describe_encoder(v)}" for k, v in config["encoders"].items())
    return f"{encoders}; fusion={config['fusion']['name']}"


# ==========================================================================================
# The loop of one search process
# ==========================================================================================

def _fail_lost_trials(study, storage) -> None:
    """Declare running trials whose heartbeat stopped (their worker died) failed, and queue a
    retry of each (for storages without heartbeats of their own)."""
    import optuna
    from optuna.trial import TrialState

    now = time.time()
    grace = max(HEARTBEAT_GRACE, 2 * HEARTBEAT_INTERVAL)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.system_attrs.get(_HEARTBEAT, 0.0)
        if t.datetime_start is not None:
            last = max(last, t.datetime_start.timestamp())
        if now - last <= grace:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, _ATTR + "reason", f"worker lost: no heartbeat for {now - last:.0f} s")
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            continue  # finished meanwhile, or another worker declared it lost first
        frozen = storage.get_trial(t._trial_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen)


def _has_result(study) -> bool:
    from optuna.trial import TrialState

    return any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.state == TrialState.RUNNING
               for t in study.get_trials(deepcopy=False))


def _fail_trials_of(study, storage, workers: set[str], reason: str) -> None:
    """Mark the running trials of ``workers`` (host:pid) failed with ``reason``."""
    import optuna
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(_ATTR + "worker") in workers:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
                storage.set_trial_user_attr(t._trial_id, _ATTR + "reason", reason)
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


def _stop_reason(study, ctx: _Context) -> str | None:
    """Why no further trial should start, or None. Near the deadline: when less than a quarter
    of a typical unpruned trial's time is left (at most 30 s), since a trial cut that short
    (or pruned) cannot join the result; pruned trials do not count as typical, so that a search
    that prunes most trials does not start one in its last seconds."""
    attrs = study.user_attrs
    if attrs.get(_STATUS) == "done":
        return "the study is finished"
    if ctx.deadline is not None:
        remaining = ctx.deadline - time.monotonic()
        typical = float(np.median(ctx.durations)) if ctx.durations else 0.0
        if remaining <= max(0.5, min(30.0, 0.25 * typical)) and (ctx.attempts or _has_result(study)):
            return "time limit reached"  # (the first trial of a study always starts: fit needs a model)
    if ctx.settings.n_trials is not None:
        if len(_budget_trials(study.get_trials(deepcopy=False))) >= ctx.settings.n_trials:
            return "n_trials reached"
    return None


def _worker_loop(ctx: _Context, study) -> int:
    """Run trials of ``study`` until its budget, the deadline or the study's end."""
    import optuna

    ran = 0
    while True:
        if ctx.heartbeat:
            _fail_lost_trials(study, ctx.storage)
        if _stop_reason(study, ctx) is not None:
            return ran
        ctx.attempts += 1
        try:
            study.optimize(lambda trial: _objective(trial, ctx), n_trials=1, catch=(Exception,))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # this worker was declared lost meanwhile; its trial is retried elsewhere
        ran += 1
        release_memory()


def release_memory() -> None:
    """Free what the last trial left: its reference cycles now, and the C heap's free pages
    back to the system (glibc). Trials build models of very different sizes; without this
    the heap kept their freed memory (emoji text search, 100 s: resident 0.6-1.2 GB per
    trial without, 0.5-0.86 GB with)."""
    import gc

    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, loaded once; None where the C library is not glibc."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # macOS, musl, Windows: nothing to trim
        return None


def _child_main(ctx: _Context, storage_ref: tuple[str, Any], index: int, threads: int) -> None:
    """Entry point of a forked search process."""
    import optuna

    try:
        torch.set_num_threads(threads)
        ctx.storage = make_storage(*storage_ref)
        ctx.pool = _ModelPool(ctx.pool.k, ctx.child_artifact_dir, ctx.pool.multi)
        ctx.durations = []
        ctx.attempts = 0
        ctx.worker_tag = f"{socket.gethostname()}:{os.getpid()}"
        with _optuna_quiet(ctx.settings.verbose):
            study = optuna.load_study(study_name=ctx.study_name, storage=ctx.storage,
                                      sampler=_make_sampler(ctx.settings, index), pruner=_make_pruner(ctx.settings))
            _worker_loop(ctx, study)
    except BaseException:  # noqa: BLE001 - report, then leave with an error status
        traceback.print_exc()
        raise


def _cuda_devices(data: PreparedData, requested: Any) -> list[torch.device]:
    if data.device.type != "cuda" or not torch.cuda.is_available():
        return []
    if isinstance(requested, str) and requested in ("auto", "cuda"):
        return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return [data.device]


def _run_processes(ctx: _Context, study, storage_ref: tuple[str, Any], n_jobs: int, devices: list[torch.device]) -> None:
    """Run the search in this process and, as asked, in forked processes or GPU threads."""
    if len(devices) > 1:
        ctx.device_queue = queue.Queue()
        for device in devices:
            ctx.device_queue.put(device)
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                _worker_loop(ctx, study)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        threads = [threading.Thread(target=loop, name=f"automm-gpu-{i}") for i in range(len(devices))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return
    if n_jobs <= 1:
        _worker_loop(ctx, study)
        return
    try:
        mp = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork run the trials here
        warnings.warn("n_jobs > 1 needs the 'fork' start method; running the trials in this process")
        _worker_loop(ctx, study)
        return
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    previous = torch.get_num_threads()
    with contextlib.suppress(Exception):  # imported by the first optimizer: import once, before forking
        __import__("importlib").import_module("torch._dynamo")
    children = []
    try:
        for index in range(1, n_jobs):
            child = mp.Process(target=_child_main, args=(ctx, storage_ref, index, threads),
                               name=f"automm-search-{index}")
            child.start()
            children.append(child)
        torch.set_num_threads(threads)
        _worker_loop(ctx, study)
        for child in children:
            timeout = None if ctx.deadline is None else max(1.0, ctx.deadline - time.monotonic() + 10.0)
            child.join(timeout)
    finally:
        torch.set_num_threads(previous)
        stopped = []
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(5)
                stopped.append(child.pid)
            if child.is_alive():  # pragma: no cover
                child.kill()
                child.join()
        if stopped:
            _fail_trials_of(study, ctx.storage, {f"{socket.gethostname()}:{pid}" for pid in stopped},
                            "stopped at the time limit (its process was terminated)")


# ==========================================================================================
# The study: creation, stored specification, fingerprints
# ==========================================================================================

def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _data_fingerprint(data: PreparedData) -> str:
    """The data's identity (inputs and targets; not the holdout split, which a resumed study keeps)."""
    return _hash({"inputs": [s.to_dict() for s in data.inputs], "targets": np.asarray(data.targets).tolist(),
                  "problem_type": data.problem_type, "n_outputs": data.n_outputs})


def _with_stored_split(data: PreparedData, spec: Mapping[str, Any]) -> PreparedData:
    """``data`` with the study's holdout split and seed (so that every trial of a study, in any
    process or run, is scored on the same holdout)."""
    return replace(data, train_index=np.asarray(spec["train_index"], dtype=np.int64),
                   valid_index=np.asarray(spec["valid_index"], dtype=np.int64), seed=int(spec["seed"]))


def _json_params(estimator) -> dict:
    """The estimator's parameters as JSON (objects as None; the storage, which may hold a
    password, and the study name left out: a worker is given them)."""
    from .persistence import _jsonable

    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if key in ("storage", "study_name"):
            continue
        try:
            params[key] = _jsonable(value)
        except TypeError:
            params[key] = None
    return params


def _data_payload(data: PreparedData, roles: Mapping[str, str]) -> dict | None:
    """The training table as JSON (image paths absolute), or None when it is not plain data."""
    from .components.base import MISSING

    def plain(value: Any, role: str) -> Any:
        if value is MISSING or value is None:
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str) and role == "image" and os.path.exists(value):
            return os.path.abspath(value)
        if isinstance(value, (str, int, float, bool)):
            return value
        raise TypeError

    columns: dict[str, list] = {}
    try:
        for spec in data.inputs:
            values = data.values[spec.name]
            if spec.modality == "tabular":
                for column in spec.columns:
                    columns[column] = [plain(row.get(column, MISSING), "tabular") for row in values]
            else:
                column = spec.columns[0]
                columns[column] = [plain(v, roles.get(column, spec.modality)) for v in values]
    except TypeError:
        return None
    payload = {"columns": columns}
    if len(json.dumps(payload)) > MAX_STORED_DATA_BYTES:
        return None
    return payload


def _study_spec(estimator, data: PreparedData, space: SearchSpace, settings: _Settings) -> dict:
    return {
        "format": 1,
        "estimator": type(estimator).__name__,
        "params": _json_params(estimator),
        "inputs": [s.to_dict() for s in data.inputs],
        "problem_type": data.problem_type,
        "n_outputs": int(data.n_outputs),
        "targets": np.asarray(data.targets).tolist(),
        "train_index": np.asarray(data.train_index).tolist(),
        "valid_index": np.asarray(data.valid_index).tolist(),
        "seed": int(data.seed),
        "class_weights": data.class_weights,
        "amp": bool(data.amp),
        "space": space.to_json(),
        "objectives": list(settings.objectives),
        "sampler": settings.sampler if isinstance(settings.sampler, str) else "tpe",
        "pruner": settings.pruner if isinstance(settings.pruner, str) or settings.pruner is None else "median",
        "ensemble_size": settings.ensemble_size,
        "max_epochs": settings.max_epochs,
        "bag_folds": settings.bag_folds,
    }


def _directions(objectives: Sequence[str]) -> list[str]:
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def _open_study(storage, study_name: str, settings: _Settings, worker_index: int = 0):
    import optuna

    return optuna.create_study(storage=storage, study_name=study_name, sampler=_make_sampler(settings, worker_index),
                               pruner=_make_pruner(settings), directions=_directions(settings.objectives),
                               load_if_exists=True)


def _prepare_study(study, spec: dict, fingerprint: str, data_fp: str, payload: Callable[[], dict | None]) -> dict | None:
    """Store the search's specification in a new study, or check that an existing one holds
    the same search; returns the stored specification of an existing study (else None)."""
    attrs = study.user_attrs
    existing = attrs.get(_FINGERPRINT)
    if existing is None:
        if study.get_trials(deepcopy=False):
            raise InputError(f"study {study.study_name!r} already holds trials that automm did not create; "
                             "choose another study_name")
        study.set_user_attr(_SPEC, spec)
        study.set_user_attr(_DATA, payload())
        study.set_user_attr(_DATA_FINGERPRINT, data_fp)
        study.set_user_attr(_FINGERPRINT, fingerprint)
        return None
    if existing != fingerprint:
        raise InputError(f"study {study.study_name!r} holds a search over other data or another search space; "
                         "choose another study_name (or the same data and settings to resume it)")
    return attrs[_SPEC]


# ==========================================================================================
# fit's search
# ==========================================================================================

def _trial_seconds(settings: _Settings, deadline: float | None) -> float | None:
    """With a time limit and room for several trials: the search's time x TRIAL_TIME_FRACTION."""
    if deadline is None or settings.n_trials == 1:
        return None
    return max(1.0, TRIAL_TIME_FRACTION * (deadline - time.monotonic()))


def _hard_grace(deadline: float | None) -> float:
    """Seconds a trial may run past the search's deadline (finishing the epoch's evaluation)
    before it is interrupted: 5% of the remaining budget, at least 10 s."""
    if deadline is None:
        return MIN_HARD_GRACE
    return max(MIN_HARD_GRACE, 0.05 * (deadline - time.monotonic()))


def _settings_from(estimator, data: PreparedData) -> _Settings:
    n_trials = estimator.n_trials
    if n_trials is None and estimator.time_limit is None:
        n_trials = DEFAULT_N_TRIALS
    random_state = estimator.random_state
    objectives = _objectives(estimator.objectives)
    return _Settings(objectives=objectives, sampler=estimator.sampler,
                     pruner=estimator.pruner, seed=int(random_state if random_state is not None else data.seed),
                     n_trials=n_trials, ensemble_size=resolved_ensemble_size(estimator),
                     max_epochs=int(estimator.max_epochs), verbose=int(estimator.verbose or 0),
                     bag_folds=1 if len(objectives) > 1 else estimator.bag_folds)


def resolved_ensemble_size(estimator) -> int:
    """``ensemble_size`` as a number: "auto" is :data:`AUTO_ENSEMBLE_SIZE` in a
    single-objective search (a multi-objective search picks one model from its Pareto set)."""
    if estimator.ensemble_size != "auto":
        return int(estimator.ensemble_size)
    return AUTO_ENSEMBLE_SIZE if len(_objectives(estimator.objectives)) == 1 else 1


def _n_processes(estimator) -> int:
    n = estimator.n_jobs
    return (os.cpu_count() or 1) if n == -1 else int(n)


def run_search(estimator, data: PreparedData, config: dict, deadline: float | None) -> Candidate:
    """Search (see the module documentation) and return the chosen candidate; its ``extras``
    hold the estimator's result attributes (:data:`RESULT_ATTRIBUTES`)."""
    worker = getattr(estimator, "_automm_worker", None)
    if worker is not None:
        raise _WorkerFinished(_run_worker_with_data(worker, data, estimator))

    settings = _settings_from(estimator, data)
    space = SearchSpace.from_estimator(estimator, data.inputs, config, data.device.type, data.n_outputs,
                                       data.problem_type)
    spec = _study_spec(estimator, data, space, settings)
    data_fp = _data_fingerprint(data)
    fingerprint = _hash({"data": data_fp, "space": spec["space"], "objectives": spec["objectives"],
                         "bag_folds": spec["bag_folds"]})
    shared = estimator.storage is not None
    n_jobs = _n_processes(estimator)
    devices = _cuda_devices(data, estimator.device)
    kind, value = parse_storage(estimator.storage)
    tmpdir = tempfile.mkdtemp(prefix="automm-search-")
    try:
        if kind == "memory" and n_jobs > 1 and len(devices) <= 1:
            kind, value = "journal", os.path.join(tmpdir, "study.log")
        study_name = estimator.study_name or f"automm-{fingerprint[:16]}"
        storage = make_storage(kind, value)
        multi = len(settings.objectives) > 1
        keep = 1 if multi else max(1, settings.ensemble_size)
        ctx = _Context(data=data, space=space, settings=settings, storage=storage, study_name=study_name,
                       deadline=deadline, pool=_ModelPool(keep, None, multi), callbacks=estimator._extra_callbacks(),
                       heartbeat=kind != "memory" and _own_heartbeats(storage),
                       child_artifact_dir=os.path.join(tmpdir, "models"),
                       worker_tag=f"{socket.gethostname()}:{os.getpid()}",
                       hard_grace=_hard_grace(deadline), trial_seconds=_trial_seconds(settings, deadline))
        with _optuna_quiet(settings.verbose):
            study = _open_study(storage, study_name, settings)
            stored = _prepare_study(study, spec, fingerprint, data_fp,
                                    lambda: _data_payload(data, estimator.column_roles_) if shared else None)
            if stored is not None:  # resuming: keep the study's holdout split
                ctx.data = data = _with_stored_split(data, stored)
                estimator.seed_ = data.seed
            remaining = None if deadline is None else deadline - time.monotonic()
            study.set_user_attr(_BUDGET, {"n_trials": settings.n_trials,
                                          "deadline_unix": None if remaining is None else time.time() + remaining,
                                          "trial_seconds": ctx.trial_seconds})
            study.set_user_attr(_STATUS, "running")
            if space.warm_start and not any(t.user_attrs.get(_ATTR + "default")
                                            for t in study.get_trials(deepcopy=False)):
                study.enqueue_trial({}, user_attrs={_ATTR + "default": True})
                for index in range(len(space.presets)):  # then pretrained variants and replicates
                    study.enqueue_trial({}, user_attrs={_ATTR + "preset": index})
            try:
                _run_processes(ctx, study, (kind, value), n_jobs, devices)
            finally:
                with contextlib.suppress(Exception):
                    study.set_user_attr(_STATUS, "done")
            result = _conclude(estimator, study, ctx, deadline)
        result.extras["study_name_"] = study_name
        return result
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _trial_score(t) -> float:
    score = t.user_attrs.get(_ATTR + "score")
    if score is None:
        return math.nan
    return float(score)


def _always_weighed(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is the search's linear model (:mod:`automm.linear`) or its
    nearest-neighbour model (:mod:`automm.neighbors`). They err differently from the networks
    and cost seconds, so the ensemble always weighs them, even when their holdout score ranks
    them below the trials the pool would otherwise keep (on emoji, 145 holdout rows, those were
    all networks; session 13, RESULTS.md)."""
    return (config.get("training") or {}).get("solver") in (LINEAR_SOLVER, NEIGHBORS_SOLVER)


def _obtain(number: int, trial, ctx: _Context, deadline: float | None, allow_retrain: bool) -> Candidate | None:
    """The trained model of trial ``number``: from memory, from a worker's files, or retrained."""
    candidate = ctx.pool.get(number)
    if candidate is not None:
        return candidate
    path = trial.user_attrs.get(_ATTR + "artifact")
    if path and os.path.isfile(os.path.join(path, "candidate.json")):
        try:
            return _read_candidate(Path(path), ctx.data)
        except Exception as exc:  # noqa: BLE001 - fall back to retraining
            _log.warning("could not read the model of trial %d from %s: %r", number, path, exc)
    if not allow_retrain:
        return None
    config = trial.user_attrs.get(_ATTR + "config")
    seconds = float(trial.user_attrs.get(_ATTR + "seconds") or 0.0)
    if config is None:
        return None
    if deadline is not None and deadline - time.monotonic() < 1.5 * seconds + 1.0:
        return None
    if ctx.settings.verbose:
        print(f"[automm] retraining trial {number} (its model is in another process)", flush=True)
    n_folds = int(trial.user_attrs.get(_ATTR + "folds") or 1)
    if n_folds > 1:
        return train_bagged(ctx.data, config, n_folds, deadline=deadline, callbacks=ctx.callbacks)
    return train_candidate(ctx.data, config, deadline=deadline, callbacks=ctx.callbacks, verbose=0)


def choose_from_pareto(points: Sequence[tuple[int, float, float]], tolerance: float = 0.01) -> int:
    """The trial number chosen from a Pareto set of ``(number, score, cost)``: among the trials
    whose score is within ``tolerance`` (relative) of the best score, the cheapest; ties go to
    the better score, then the lower number."""
    best = max(score for _, score, _ in points)
    eligible = [p for p in points if p[1] >= best - tolerance * abs(best)]
    return min(eligible, key=lambda p: (p[2], -p[1], p[0]))[0]


def _conclude(estimator, study, ctx: _Context, deadline: float | None) -> Candidate:
    from optuna.trial import TrialState

    from .ensemble import Ensemble, calibrate, ensemble_members, select_ensemble

    trials = study.get_trials(deepcopy=False)
    leaderboard = leaderboard_frame(trials, ctx.settings.objectives)
    usable = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
              and math.isfinite(_trial_score(t)) and not t.user_attrs.get(_ATTR + "skipped")]
    if not usable:
        failed = [t for t in trials if t.state == TrialState.FAIL]
        reasons = "; ".join(f"trial {t.number}: {t.user_attrs.get(_ATTR + 'reason', 'unknown reason')}"
                            for t in failed[:20])
        if failed:
            raise SearchError(f"all {len(failed)} trials of the search failed: {reasons}")
        raise SearchError("no trial of the search finished (the time limit is too short for one epoch?)")
    # the pool's order (see _rank_key), then the earlier trial
    ranked = sorted(usable, key=lambda t: (*_rank_key(t.state == TrialState.COMPLETE, _trial_score(t),
                                                      t.user_attrs.get(_ATTR + "loss"), t.user_attrs.get(_ATTR + "rows")),
                                           -t.number), reverse=True)
    extras: dict[str, Any] = {"leaderboard_": leaderboard}
    multi = len(ctx.settings.objectives) > 1
    if multi:
        second = _second_objective(ctx.settings.objectives)
        pareto = [t for t in study.best_trials if t.user_attrs.get(_ATTR + second) is not None]
        points = [(t.number, _trial_score(t), float(t.user_attrs[_ATTR + second])) for t in pareto]
        chosen = choose_from_pareto(points) if points else ranked[0].number
        extras["pareto_front_"] = _pareto_frame(points, chosen, second)
        order = [chosen] + [t.number for t in ranked if t.number != chosen]
    else:
        order = [t.number for t in ranked]
    by_number = {t.number: t for t in trials}

    candidates: list[tuple[int, Candidate]] = []
    wanted = 1 if multi else ctx.settings.ensemble_size
    for number in order[: max(wanted * 2, 2) if wanted > 1 else len(order)]:
        candidate = _obtain(number, by_number[number], ctx, deadline, allow_retrain=not candidates)
        if candidate is not None:
            candidates.append((number, candidate))
        if len(candidates) >= wanted:
            break
    if not candidates:
        raise SearchError("the models of the best trials are not available here and the time limit leaves no time "
                          "to retrain one")
    if wanted > 1:  # the linear and nearest-neighbour models join the pool whatever their holdout rank
        chosen = {n for n, _ in candidates}
        for number in order:
            trial = by_number[number]
            if number not in chosen and _always_weighed(trial.user_attrs.get(_ATTR + "config") or {}):
                candidate = _obtain(number, trial, ctx, deadline, allow_retrain=True)
                if candidate is not None:
                    candidates.append((number, candidate))
    best_number, best = candidates[0]
    extras["best_trial_"] = best_number
    # a pruned bagged trial has only its first fold and no holdout outputs: it cannot join an ensemble
    pool = [(n, c) for n, c in candidates if c.valid_outputs is not None]
    if pool and pool[0][0] != best_number:
        pool = []
    if len(pool) > 1 or (pool and pool[0][1].bag is not None):
        if all(c.oof_outputs is not None for _, c in pool):  # bags: select on every row, not the holdout
            rows = ctx.data.rows
            outputs, targets = [c.oof_outputs[rows] for _, c in pool], ctx.data.targets[rows]
        else:
            outputs, targets = [c.valid_outputs for _, c in pool], ctx.data.valid_targets
        temperatures = calibrate(outputs, targets, ctx.data.problem_type) if len(pool) > 1 else [1.0]
        scaled = [o * t for o, t in zip(outputs, temperatures)]
        weights, pooling = ((np.ones(1), "linear") if len(pool) == 1
                            else select_ensemble(scaled, targets, ctx.data.problem_type))
        members = [member for (n, c), w, t in zip(pool, weights, temperatures) if w > 0
                   for member in ensemble_members(n, c, float(w), t)]
        # the best trial first (its first fold is model_), then by weight
        members.sort(key=lambda m: (m.trial != best_number, -m.weight, -m.score, m.trial, m.fold or 0))
        if len(members) > 1:
            extras["ensemble_"] = Ensemble(members, ctx.data.problem_type, pooling)
        # the selection's choice, also when it keeps one model that is not the best-ranked
        # (e.g. the linear model over a bag whose out-of-fold score ranks it first)
        best_number = members[0].trial
        best = next(c for n, c in candidates if n == best_number)
        extras["best_trial_"] = best_number
    if estimator.plot_dir is not None:
        write_plots(study, estimator.plot_dir, ctx.settings.objectives)
    result = Candidate(config=best.config, model=best.model, history=best.history, best_epoch=best.best_epoch,
                       best_score=best.best_score, valid_outputs=best.valid_outputs, stop_reason=best.stop_reason,
                       seconds=best.seconds, extras=extras)
    return result


def _second_objective(objectives: Sequence[str]) -> str:
    return "latency_ms" if "latency" in objectives else "n_params"


def _pareto_frame(points: Sequence[tuple[int, float, float]], chosen: int, second: str):
    import pandas as pd

    frame = pd.DataFrame(points, columns=["number", "score", second])
    frame["chosen"] = frame["number"] == chosen
    return frame.sort_values(["score", second], ascending=[False, True]).reset_index(drop=True)


def leaderboard_frame(trials: Sequence[Any], objectives: Sequence[str] = ("score",)):
    """A pandas DataFrame with one row per trial (skipped over-budget trials left out), the
    best first: number, state, score (best holdout score), [latency_ms | n_params], encoders,
    fusion, augmentations, params (Optuna's), config (the full configuration), epochs,
    best_epoch (of the first fold when bagged), folds (1: holdout; k: k-fold bag, score
    out-of-fold), seconds (wall), reason (failure, stop or pruning reason), default (the
    default configuration's trial), worker (host:pid), start and complete (local times)."""
    import pandas as pd

    retried_as: dict[int, int] = {}
    for t in trials:
        for original in t.system_attrs.get("retry_history", []):
            retried_as[original] = t.number
    rows = []
    for t in trials:
        attrs = t.user_attrs
        if attrs.get(_ATTR + "skipped"):
            continue
        config = attrs.get(_ATTR + "config") or {}
        state = t.state.name
        reason = attrs.get(_ATTR + "reason") if state == "FAIL" else attrs.get(_ATTR + "stop_reason")
        if state == "FAIL" and t.number in retried_as:
            reason = f"{reason or 'failed'}; retried as trial {retried_as[t.number]}"
        row = {
            "number": t.number, "state": state, "score": attrs.get(_ATTR + "score"),
            "encoders": ", ".join(f"{k}={describe_encoder(v)}" for k, v in (config.get("encoders") or {}).items()) or None,
            "fusion": (config.get("fusion") or {}).get("name"),
            "augmentations": ", ".join(a["name"] for a in config.get("augmentations") or []) if config else None,
            "params": dict(t.params), "config": config or None,
            "epochs": attrs.get(_ATTR + "epochs"), "best_epoch": attrs.get(_ATTR + "best_epoch"),
            "folds": attrs.get(_ATTR + "folds"), "seconds": attrs.get(_ATTR + "seconds"), "reason": reason,
            "default": bool(attrs.get(_ATTR + "default", False)), "worker": attrs.get(_ATTR + "worker"),
            "start": t.datetime_start, "complete": t.datetime_complete,
        }
        if len(objectives) > 1:
            key = _second_objective(objectives)
            row[key] = attrs.get(_ATTR + key)
        rows.append(row)
    columns = ["number", "state", "score"] + ([_second_objective(objectives)] if len(objectives) > 1 else []) + [
        "encoders", "fusion", "augmentations", "params", "config", "epochs", "best_epoch", "folds", "seconds",
        "reason", "default", "worker", "start", "complete"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["score"] = frame["score"].astype(float)
        frame = frame.sort_values(["score", "number"], ascending=[False, True], na_position="last")
    return frame.reset_index(drop=True)


def write_plots(study, plot_dir: str | os.PathLike, objectives: Sequence[str] = ("score",)) -> list[str]:
    """Optimisation history and parameter importances (and the Pareto front of a
    multi-objective search) as PNG files in ``plot_dir``; returns the paths written. Needs
    matplotlib (``pip install automm[plots]``); otherwise warns and writes nothing."""
    try:
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        warnings.warn("plot_dir: matplotlib is not installed (pip install automm[plots]); no plots written")
        return []
    directory = Path(plot_dir)
    directory.mkdir(parents=True, exist_ok=True)
    multi = len(objectives) > 1
    score = (lambda t: t.values[0]) if multi else None
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history.png",
         lambda: ovm.plot_optimization_history(study, target=score, target_name="validation score")),
        ("param_importances.png",
         lambda: ovm.plot_param_importances(study, target=score, target_name="validation score")),
    ]
    if multi:
        jobs.append(("pareto_front.png", lambda: ovm.plot_pareto_front(
            study, target_names=["validation score", _second_objective(objectives)])))
    written = []
    for name, make in jobs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = make()
            figure = axes.figure if hasattr(axes, "figure") else np.ravel(axes)[0].figure
            figure.tight_layout()
            figure.savefig(directory / name, dpi=100)
            plt.close(figure)
            written.append(str(directory / name))
        except Exception as exc:  # noqa: BLE001 - e.g. too few finished trials for importances
            warnings.warn(f"plot_dir: could not draw {name}: {exc}")
    return written


# ==========================================================================================
# Workers joining a study from another process or machine
# ==========================================================================================

@dataclass
class _WorkerRequest:
    storage_ref: tuple[str, Any]
    study_name: str
    spec: dict
    artifact_dir: str | None
    n_jobs: int
    verbose: int
    storage: Any = None          # an open storage to reuse (else opened from storage_ref)


def run_worker(storage: Any, study_name: str, *X: Any, y: Any = None, device: str = "auto", n_jobs: int = 1,
               artifact_dir: str | os.PathLike | None = None, wait: float = 60.0, verbose: int = 0) -> int:
    """Join the automm study ``study_name`` in ``storage`` and run its trials until the
    study's ``n_trials`` or time limit is reached or the ``fit`` that created it finishes.

    Parameters
    ----------
    storage : the study's storage, as ``fit`` was given it: a URL (``postgresql://...``,
        ``sqlite:///...``) or a journal file (``journal:///path/study.log``, ``path.log``).
    study_name : the study's name (``fit`` sets ``study_name_``; by default ``automm-<fingerprint>``).
    *X, y : the training data, only needed when the study holds no copy of it (data that are not
        plain JSON, e.g. in-memory image arrays, or larger than ``MAX_STORED_DATA_BYTES``); they
        must be exactly what ``fit`` was given (their fingerprint is checked).
    device : "auto", "cpu", "cuda", "cuda:1", ...: where this worker trains (with several GPUs and
        "auto", one trial per GPU).
    n_jobs : trials in parallel processes on this machine (CPU).
    artifact_dir : a folder the ``fit`` process can read (e.g. shared storage) where this worker
        leaves the trained models of its best trials, so that ``fit`` need not retrain them.
    wait : seconds to wait for the study to appear (a worker may start before ``fit``).
    verbose : 0 quiet, 1 a line per trial, 2 also Optuna's log.

    The worker samples the study's stored space with the study's sampler and pruner by name
    (a sampler or pruner that ``fit`` was given as an object becomes TPE / median here) and
    stops at the study's ``n_trials``, at its time limit (``fit``'s deadline, as wall-clock time)
    or when the ``fit`` that created it has finished.

    Returns the number of trials this worker ran (in this process). Command line:
    ``automm worker --storage URL --study NAME``.
    """
    import optuna

    storage_ref = parse_storage(storage)
    if storage_ref[0] == "memory":
        raise InputError("storage: a worker needs the study's storage (URL or journal file)")
    backend = make_storage(*storage_ref)
    spec = _wait_for_study(backend, study_name, wait)
    from . import estimator as estimator_module

    cls = getattr(estimator_module, spec["estimator"], estimator_module.AutoMM)
    known = cls().get_params(deep=False)
    params = {k: v for k, v in spec["params"].items() if k in known and v is not None}
    params.update(device=device, n_jobs=n_jobs, verbose=verbose, random_state=spec["seed"], storage=None,
                  plot_dir=None)
    estimator = cls(**params)
    request = _WorkerRequest(storage_ref, study_name, spec, None if artifact_dir is None else os.path.abspath(artifact_dir),
                             int(n_jobs), int(verbose), storage=backend)
    if X or y is not None:
        estimator._automm_worker = request
        try:
            estimator.fit(*X, y=y)
        except _WorkerFinished as done:
            return done.trials
        raise AutoMMError("the worker's fit did not reach the search")  # pragma: no cover
    study = optuna.load_study(study_name=study_name, storage=backend)
    payload = study.user_attrs.get(_DATA)
    if payload is None:
        raise InputError(f"study {study_name!r} holds no copy of its training data (not plain JSON, or too large): "
                         "pass the same X, y as fit to run_worker")
    estimator._validate_params()
    data = _data_from_spec(spec, payload, estimator)
    return _run_worker_with_data(request, data, estimator)


def _wait_for_study(storage, study_name: str, wait: float) -> dict:
    import optuna

    end = time.monotonic() + max(0.0, float(wait))
    while True:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            spec = study.user_attrs.get(_SPEC)
            if spec is not None and study.user_attrs.get(_FINGERPRINT):
                return spec
        except KeyError:
            pass
        if time.monotonic() >= end:
            raise InputError(f"no automm study {study_name!r} in the storage (waited {wait:.0f} s)")
        time.sleep(min(1.0, max(0.05, end - time.monotonic())))


def _data_from_spec(spec: dict, payload: dict, estimator) -> PreparedData:
    from .data import InputSpec, Table
    from .training import resolve_device

    inputs = [InputSpec.from_dict(d) for d in spec["inputs"]]
    table = Table(dict(payload["columns"]))
    targets = np.asarray(spec["targets"], dtype=np.float32 if spec["problem_type"] == "regression" else np.int64)
    return PreparedData(
        inputs=inputs, values={s.name: s.values(table) for s in inputs}, targets=targets,
        problem_type=spec["problem_type"], n_outputs=int(spec["n_outputs"]),
        train_index=np.asarray(spec["train_index"], dtype=np.int64),
        valid_index=np.asarray(spec["valid_index"], dtype=np.int64), seed=int(spec["seed"]),
        device=resolve_device(estimator.device), num_workers=estimator._resolved_num_workers(inputs),
        class_weights=spec["class_weights"], amp=bool(spec["amp"]), cache_dir=estimator.cache_dir)


def _run_worker_with_data(request: _WorkerRequest, data: PreparedData, estimator=None) -> int:
    """The worker's search loop over ``data`` (checked against the study's data)."""
    import optuna

    spec = request.spec
    storage = request.storage if request.storage is not None else make_storage(*request.storage_ref)
    with _optuna_quiet(request.verbose):
        probe = optuna.load_study(study_name=request.study_name, storage=storage)
        if probe.user_attrs.get(_DATA_FINGERPRINT) != _data_fingerprint(data):
            raise InputError(f"the data given to the worker differ from those of study {request.study_name!r} "
                             "(pass exactly what fit was given)")
        data = _with_stored_split(data, spec)
        budget = probe.user_attrs.get(_BUDGET) or {}
        deadline = None
        if budget.get("deadline_unix") is not None:
            deadline = time.monotonic() + (float(budget["deadline_unix"]) - time.time())
        settings = _Settings(objectives=tuple(spec["objectives"]), sampler=spec["sampler"], pruner=spec["pruner"],
                             seed=(int(spec["seed"]) + os.getpid() * 104729) % (2**31 - 1),
                             n_trials=budget.get("n_trials"), ensemble_size=int(spec["ensemble_size"]),
                             max_epochs=int(spec["max_epochs"]), verbose=request.verbose,
                             bag_folds=spec.get("bag_folds", 1))
        multi = len(settings.objectives) > 1
        keep = 0 if request.artifact_dir is None else (1 if multi else max(1, settings.ensemble_size))
        ctx = _Context(data=data, space=SearchSpace(spec["space"]), settings=settings, storage=storage,
                       study_name=request.study_name, deadline=deadline,
                       pool=_ModelPool(keep, request.artifact_dir, multi),
                       callbacks=estimator._extra_callbacks() if estimator is not None else [],
                       heartbeat=_own_heartbeats(storage), child_artifact_dir=request.artifact_dir,
                       worker_tag=f"{socket.gethostname()}:{os.getpid()}", hard_grace=_hard_grace(deadline),
                       trial_seconds=budget.get("trial_seconds"))
        if request.artifact_dir is not None:
            os.makedirs(request.artifact_dir, exist_ok=True)
        study = optuna.load_study(study_name=request.study_name, storage=storage,
                                  sampler=_make_sampler(settings, 0), pruner=_make_pruner(settings))
        devices = _cuda_devices(data, estimator.device if estimator is not None else "auto")
        with image_cache():
            _run_processes(ctx, study, request.storage_ref, request.n_jobs, devices)
        # by tag (host:pid), not by position: a worker may also run a trial enqueued before it joined
        mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(_ATTR + "worker") == ctx.worker_tag]
        return len(mine)
