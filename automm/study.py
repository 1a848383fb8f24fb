"""The specification a search stores in its Optuna study, and the data's fingerprints.

A study created by ``fit`` with a ``storage`` holds, as JSON user attributes, everything a
worker needs to run its trials (:func:`study_spec`: the space, the estimator's parameters, the
holdout split, the targets and weights), the training data themselves when they are plain and
small enough (:func:`data_payload`), and fingerprints of the search and of the data, so that a
restarted ``fit`` resumes the same study (:func:`prepare_study`) and a worker given data checks
they are ``fit``'s (:func:`data_fingerprint`). :func:`wait_for_study` and
:func:`data_from_spec` are the worker's side (:mod:`automm.worker`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from .exceptions import InputError
from .pipeline import PreparedData
from .search_space import SearchSpace

__all__ = ["MAX_STORED_DATA_BYTES", "SPEC_ATTR", "DATA_ATTR", "FINGERPRINT_ATTR", "DATA_FINGERPRINT_ATTR",
           "data_fingerprint", "search_fingerprint", "data_payload", "study_spec", "prepare_study", "with_stored_split", "wait_for_study",
           "data_from_spec"]

#: The study's user attributes: the search's specification, the data (or None), and fingerprints.
SPEC_ATTR, DATA_ATTR = "automm:spec", "automm:data"
FINGERPRINT_ATTR, DATA_FINGERPRINT_ATTR = "automm:fingerprint", "automm:data_fp"
#: Largest JSON copy of the training data stored in the study for :func:`run_worker`.
MAX_STORED_DATA_BYTES = 64 * 2**20


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(data: PreparedData) -> str:
    """The data's identity (inputs and targets; not the holdout split, which a resumed study keeps)."""
    identity = {"inputs": [s.to_dict() for s in data.inputs], "targets": np.asarray(data.targets).tolist(),
                "problem_type": data.problem_type, "n_outputs": data.n_outputs}
    if data.sample_weights is not None:  # (absent without weights: older studies keep their fingerprint)
        identity["sample_weights"] = _weights_json(data.sample_weights)
    if data.holdout_given:  # the user's validation rows are part of the data
        identity["validation_rows"] = np.asarray(data.valid_index).tolist()
    return _hash(identity)


def _weights_json(weights: np.ndarray | None) -> list[float] | None:
    """Sample weights as JSON numbers (float32 precision, what training uses), or None."""
    return None if weights is None else [float(w) for w in np.asarray(weights, dtype=np.float32)]


def with_stored_split(data: PreparedData, spec: Mapping[str, Any]) -> PreparedData:
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


def data_payload(data: PreparedData, roles: Mapping[str, str]) -> dict | None:
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


def study_spec(estimator, data: PreparedData, space: SearchSpace, settings: Any) -> dict:
    """What the study stores of a search: everything a worker needs to run its trials."""
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
        "sample_weights": _weights_json(data.sample_weights),
        "holdout_given": bool(data.holdout_given),
        "metric": data.metric,
        "amp": bool(data.amp),
        "space": space.to_json(),
        "objectives": list(settings.objectives),
        "sampler": settings.sampler if isinstance(settings.sampler, str) else "tpe",
        "pruner": settings.pruner if isinstance(settings.pruner, str) or settings.pruner is None else "median",
        "ensemble_size": settings.ensemble_size,
        "max_epochs": settings.max_epochs,
        "bag_folds": settings.bag_folds,
    }


def search_fingerprint(spec: Mapping[str, Any], data_fp: str, metric: str) -> str:
    """The search's identity (its data, space, objectives, folds and metric): a ``fit`` run again
    with the same identity resumes the study."""
    identity = {"data": data_fp, "space": spec["space"], "objectives": spec["objectives"],
                "bag_folds": spec["bag_folds"]}
    if metric != "auto":  # trials scored by another metric are another study (absent: older studies' fingerprints)
        identity["metric"] = metric
    return _hash(identity)


def prepare_study(study, spec: dict, fingerprint: str, data_fp: str, payload: Callable[[], dict | None]) -> dict | None:
    """Store the search's specification in a new study, or check that an existing one holds
    the same search; returns the stored specification of an existing study (else None)."""
    attrs = study.user_attrs
    existing = attrs.get(FINGERPRINT_ATTR)
    if existing is None:
        if study.get_trials(deepcopy=False):
            raise InputError(f"study {study.study_name!r} already holds trials that automm did not create; "
                             "choose another study_name")
        study.set_user_attr(SPEC_ATTR, spec)
        study.set_user_attr(DATA_ATTR, payload())
        study.set_user_attr(DATA_FINGERPRINT_ATTR, data_fp)
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        return None
    if existing != fingerprint:
        raise InputError(f"study {study.study_name!r} holds a search over other data or another search space; "
                         "choose another study_name (or the same data and settings to resume it)")
    return attrs[SPEC_ATTR]


def wait_for_study(storage, study_name: str, wait: float) -> dict:
    import optuna

    end = time.monotonic() + max(0.0, float(wait))
    while True:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
            spec = study.user_attrs.get(SPEC_ATTR)
            if spec is not None and study.user_attrs.get(FINGERPRINT_ATTR):
                return spec
        except KeyError:
            pass
        if time.monotonic() >= end:
            raise InputError(f"no automm study {study_name!r} in the storage (waited {wait:.0f} s)")
        time.sleep(min(1.0, max(0.05, end - time.monotonic())))


def data_from_spec(spec: dict, payload: dict, estimator) -> PreparedData:
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
        class_weights=spec["class_weights"], amp=bool(spec["amp"]), cache_dir=estimator.cache_dir,
        sample_weights=(None if spec.get("sample_weights") is None
                        else np.asarray(spec["sample_weights"], dtype=np.float32)),
        holdout_given=bool(spec.get("holdout_given", False)), metric=spec.get("metric", "auto"))
