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

import datetime
import decimal
import functools
import hashlib
import itertools
import json
import math
import numbers
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .exceptions import AutoMMWarning, InputError, user_stacklevel
from .pipeline import PreparedData
from .search_space import SearchSpace
from .suggestions import NAMES_SHOWN, elided_repr, shown_roles

__all__ = ["MAX_STORED_DATA_BYTES", "SPEC_ATTR", "DATA_ATTR", "FINGERPRINT_ATTR", "DATA_FINGERPRINT_ATTR",
           "data_fingerprint", "search_fingerprint", "default_study_name", "data_payload", "study_spec", "prepare_study", "with_stored_split", "wait_for_study",
           "StudyNotFoundError", "data_from_spec", "data_spec", "value_digests", "values_differ", "space_components", "component_provenance", "check_components", "check_stored_files",
           "describe_difference", "json_params"]

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


def json_params(given: Mapping[str, Any]) -> dict:
    """Estimator parameters as a study stores them: JSON (objects as None; the storage, which may
    hold a password, and the study name left out: a worker is given them; the training callbacks,
    Python objects that shape no search, too)."""
    from .persistence import _jsonable

    params = {}
    for key, value in given.items():
        if key in ("storage", "study_name", "callbacks"):
            continue
        try:
            params[key] = _jsonable(value)
        except TypeError:
            params[key] = None
    return params


def _plain(value: Any, role: str) -> Any:
    """``value`` as plain JSON (None for missing, image paths absolute); TypeError when it is
    not plain (an array, a picture, ...)."""
    from .components.base import MISSING

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


def _columns_of(data: PreparedData, roles: Mapping[str, str]):
    """``(column, role, values)`` for each input column of ``data``."""
    from .components.base import MISSING

    for spec in data.inputs:
        values = data.values[spec.name]
        if spec.modality == "tabular":
            for column in spec.columns:
                yield column, "tabular", [row.get(column, MISSING) for row in values]
        else:
            column = spec.columns[0]
            yield column, roles.get(column, spec.column_roles.get(column, spec.modality)), values


def data_payload(data: PreparedData, roles: Mapping[str, str]) -> dict | None:
    """The training table as JSON (image paths absolute), or None when it is not plain data."""
    try:
        columns = {column: [_plain(v, role) for v in values] for column, role, values in _columns_of(data, roles)}
    except TypeError:
        return None
    payload = {"columns": columns}
    if len(json.dumps(payload)) > MAX_STORED_DATA_BYTES:
        return None
    return payload


def value_digests(data: PreparedData) -> dict[str, str]:
    """One digest per input column of what its rows hold, as the study stores them (plain
    values as JSON, image paths absolute; arrays and pictures by their content): the same for
    ``fit``'s data and for a worker's copy read back from the study, different as soon as one
    value of a column is."""
    digests = {}
    for column, role, values in _columns_of(data, {}):
        digest = hashlib.sha256()
        for value in values:
            digest.update(_value_identity(value, role).encode("utf-8", "surrogatepass") + b"\0")
        digests[column] = digest.hexdigest()
    return digests


def _value_identity(value: Any, role: str) -> str:
    """What :func:`value_digests` hashes of one value."""
    from .feature_cache import content_digest

    try:
        plain = _plain(value, role)
        if role == "tabular" and isinstance(plain, int) and not isinstance(plain, bool):
            # the table encoder reads 3 and 3.0 alike (a number, a category key): an Int64 column
            # and the float64 column pandas gives for the same numbers with a NaN are one column
            plain = float(plain)
        return json.dumps(plain)
    except TypeError:
        pass
    if isinstance(value, (datetime.date, np.datetime64)):  # pandas Timestamps too
        return f"{type(value).__name__}:{value}"
    if isinstance(value, decimal.Decimal) and role == "tabular":  # a number, as 3.5 is (SQL NUMERIC)
        return json.dumps(float(value)) if value.is_finite() else "null"
    if isinstance(value, datetime.timedelta):  # pandas Timedeltas too: their seconds, as the encoder reads them
        return f"timedelta:{value.total_seconds()!r}"
    if isinstance(value, (decimal.Decimal, numbers.Number)) or type(value).__name__ in ("Period", "Interval"):
        return f"{type(value).__name__}:{value}"  # by value, not by type alone
    try:
        return content_digest(value)
    except TypeError:
        return type(value).__name__


def data_spec(data: PreparedData, values: bool = True) -> dict:
    """The data's part of :func:`study_spec` (what :func:`describe_difference` compares); with
    ``values``, the input values' digests (:func:`value_digests`)."""
    return {
        "value_digests": value_digests(data) if values else None,
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
        "target_scale": data.target_scale,
    }


def study_spec(estimator, data: PreparedData, space: SearchSpace, settings: Any) -> dict:
    """What the study stores of a search: everything a worker needs to run its trials."""
    space_json = space.to_json()
    return {
        "format": 1,
        "estimator": type(estimator).__name__,
        "params": json_params(estimator.get_params(deep=False)),
        # the values' digests only where a study can be resumed or joined: a search in memory
        # would hash every picture's pixels for nothing (arrays, PIL images decoded)
        **data_spec(data, values=estimator.storage is not None),
        "metric": data.metric,
        "amp": bool(data.amp),
        "classes": _class_names(estimator),
        "space": space_json,
        "objectives": list(settings.objectives),
        "sampler": settings.sampler if isinstance(settings.sampler, str) else "tpe",
        "pruner": settings.pruner if isinstance(settings.pruner, str) or settings.pruner is None else "median",
        "ensemble_size": settings.ensemble_size,
        "max_epochs": settings.max_epochs,
        "bag_folds": settings.bag_folds,
        "components": component_provenance(space_json),
        "automm_version": _automm_version(),
        "automm_code": code_digest("automm"),
    }


def _class_names(estimator) -> list | None:
    """The fit's classes as JSON values (a refused resume names the classes gained and lost), or
    None: a regression."""
    classes = estimator.__dict__.get("classes_")
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c if isinstance(c, (str, int, float, bool)) else str(c)
            for c in classes]


def _classes_changed(stored: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``'Eyewear' new, 'Bags' gone``: the classes ``new`` has and the study's ``stored`` lacks,
    and the other way round, where both name them (a study stored before they were: "")."""
    old_classes, new_classes = stored.get("classes"), new.get("classes")
    if not isinstance(old_classes, list) or not isinstance(new_classes, list):
        return ""

    def named(values: list) -> str:
        return ", ".join(elided_repr(v) for v in values[:5]) + (f", ... ({len(values)})" if len(values) > 5 else "")

    gained = [c for c in new_classes if c not in old_classes]
    lost = [c for c in old_classes if c not in new_classes]
    parts = ([f"{named(gained)} new"] if gained else []) + ([f"{named(lost)} gone"] if lost else [])
    return ", ".join(parts)


def _automm_version() -> str:
    from . import __version__

    return __version__


@functools.lru_cache(maxsize=None)
def code_digest(module: str) -> str | None:
    """A digest of the source of the imported package ``module`` (its folder's ``.py`` files, or
    its one file): another commit or an edited install under the same version number has another
    (automm's 54 files: 8 ms, once per process). None where it has no source here."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or found.origin is None or not found.origin.endswith(".py"):
        return None
    root = Path(found.origin).parent
    files = sorted(root.rglob("*.py")) if found.submodule_search_locations else [Path(found.origin)]
    digest = hashlib.sha256()
    try:
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()[:16]


def _plugin_code(spec) -> str | None:
    """:func:`code_digest` of the package of an installed plugin's component (None for automm's
    own, which ``automm_code`` covers, and for a plugin of no installed distribution)."""
    from .builtin import DEFAULT_PLUGINS

    module = getattr(spec.factory, "__module__", None)
    if spec.package is None or spec.provider in DEFAULT_PLUGINS or not isinstance(module, str):
        return None
    return code_digest(module.partition(".")[0])


def _other_code(stored: str | None, here: str | None) -> bool:
    """Whether two digests of source (:func:`code_digest`) say other code: both known and different
    (a study created before automm recorded them, or code with no source here, says nothing)."""
    return stored is not None and here is not None and stored != here


def space_components(space: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every ``(kind, name)`` component a stored search space may train: its choices, and those
    of its default and preset configurations (the parts of a ``stack`` included)."""
    found: set[tuple[str, str]] = set()

    def encoder(entry: Any) -> None:
        if isinstance(entry, Mapping):
            if entry.get("name") == "stack":
                for part in entry.get("parts") or []:
                    encoder(part)
            elif isinstance(entry.get("name"), str):
                found.add(("encoder", entry["name"]))

    for choices in (space.get("encoders") or {}).values():
        found.update(("encoder", name) for name in choices if name != "stack")
    found.update(("fusion", name) for name in space.get("fusion") or {})
    found.update(("augmentation", name) for name in space.get("augmentations") or {})
    for config in [space.get("default") or {}, *(space.get("presets") or [])]:
        for entry in (config.get("encoders") or {}).values():
            encoder(entry)
        if isinstance((config.get("fusion") or {}).get("name"), str):
            found.add(("fusion", config["fusion"]["name"]))
        found.update(("augmentation", a["name"]) for a in config.get("augmentations") or [] if "name" in a)
    return sorted(found)


def component_provenance(space: Mapping[str, Any]) -> list[dict]:
    """The plugin (and its package) of each component of a stored space, as saved models
    record theirs: a worker lacking one says which to install."""
    from .registry import get_registry

    reg, found = get_registry(), []
    for kind, name in space_components(space):
        try:
            spec = reg.get(kind, name)
        except KeyError:
            continue
        found.append({"kind": kind, "name": name, "plugin": spec.provider, "package": spec.package,
                      **({"code": code} if (code := _plugin_code(spec)) else {})})
    return found


def check_components(spec: Mapping[str, Any], study_name: str) -> None:
    """:class:`InputError` naming each component of the study's search space that no plugin of
    this process registered (with the plugin and package that provided it where ``fit`` ran),
    before any trial: its trials would fail here, one after another; and naming another version
    of automm or of a plugin package than the study's. A warning names those of the same version
    but other source files (:func:`code_digest`; a study created before this records none)."""
    from .registry import get_registry

    reg = get_registry()
    provenance = {(c["kind"], c["name"]): c for c in spec.get("components") or []}
    missing, other, changed = [], [], []
    stored_version, version = spec.get("automm_version"), _automm_version()
    if stored_version is not None and stored_version != version:
        other.append(f"automm {stored_version} (here {version})")
    elif _other_code(spec.get("automm_code"), code_digest("automm")):
        changed.append(f"automm {version}")
    for kind, name in space_components(spec.get("space") or {}):
        try:
            here = reg.get(kind, name)
            info = provenance.get((kind, name), {})
            there = info.get("package")
            if there and here.package and there != here.package and f"{there} (here {here.package})" not in other:
                other.append(f"{there} (here {here.package})")
            elif (there and there == here.package and there not in changed
                  and _other_code(info.get("code"), _plugin_code(here))):
                changed.append(there)
        except KeyError:
            info = provenance.get((kind, name), {})
            package = f", package {info['package']}" if info.get("package") else ""
            source = f" (plugin {info['plugin']!r}{package})" if info.get("plugin") else ""
            missing.append(f"{kind} {name!r}{source}")
    if missing:
        raise InputError(f"study {study_name!r} searches over {', '.join(missing)}, which this process lacks: "
                         f"{reg.where_plugins_come_from()}. Install the same plugins as on the machine that ran fit")
    if other:  # trials trained by other code would be ranked (and retrained by fit) as if they were one search
        raise InputError(f"study {study_name!r} was created with {', '.join(other)}: install the same versions as on "
                         "the machine that ran fit")
    if changed:  # (a comment's edit changes the digest too: said, not refused)
        warnings.warn(f"study {study_name!r} was created with other code of {', '.join(changed)} (the same version, "
                      "other source files: another commit or an edited install): the trials run here may be trained "
                      "otherwise than the study's others, with which they are ranked as one search; run every fit and "
                      "worker of a study with the same code", AutoMMWarning, stacklevel=user_stacklevel())


def check_stored_files(spec: Mapping[str, Any], payload: Mapping[str, Any], study_name: str) -> None:
    """:class:`InputError` when the files the study's data name (images, a plugin modality's
    files) cannot be read here: a worker on another machine needs them at the same paths.
    Checked before any trial, which would otherwise fail one after another."""
    from .data import _plugin_check, row_namer, validate_images

    roles = {column: role for d in spec["inputs"] for column, role in (d.get("column_roles") or {}).items()}
    for column, role in roles.items():
        if role in ("text", "categorical", "numeric", "datetime") or column not in payload["columns"]:
            continue
        values = payload["columns"][column]
        try:
            if role == "image":
                validate_images(column, values, tolerance=0.0)
            elif _plugin_check(role, column, values, row_namer(None)):
                raise InputError(f"column {column!r}: some {role} values cannot be read")
        except InputError as exc:
            raise InputError(f"the data of study {study_name!r} cannot be read here ({exc}); the study holds file "
                             "paths: every worker needs the same files at the same paths (or pass the data: "
                             "--recipe, or run_worker(..., X, y=y))") from None


def search_fingerprint(spec: Mapping[str, Any], data_fp: str, metric: str, seed: int | None = None) -> str:
    """The search's identity (its data, space, objectives, folds and metric): a ``fit`` run again
    with the same identity resumes the study. ``seed``, the fit's seed, is given for a study that
    no storage keeps: it is then part of the identity whether ``random_state`` was that integer or
    drew it (None, a RandomState), so that ``random_state=model.seed_`` names the study as the fit
    that drew it did (Optuna's Hyperband pruner deals trials into brackets by the study's name)."""
    identity = {"data": data_fp, "space": spec["space"], "objectives": spec["objectives"],
                "bag_folds": spec["bag_folds"]}
    if metric != "auto":  # trials scored by another metric are another study (absent: older studies' fingerprints)
        identity["metric"] = metric
    # the holdout split and seed a resumed study keeps: a fit given another seed or holdout share is
    # another search, not a resume of this one (absent when left at their defaults: random_state=None
    # must resume after kill -9; a study made before this with an integer random_state is not resumed)
    params = spec.get("params") or {}
    given = params.get("random_state")
    if seed is not None:
        identity["random_state"] = int(seed)
    elif isinstance(given, int) and not isinstance(given, bool):
        identity["random_state"] = given
    if params.get("holdout_frac", 0.1) != 0.1 and not spec.get("holdout_given"):
        identity["holdout_frac"] = params["holdout_frac"]
    if spec.get("class_weights") is not None:  # trials trained with other class weights are another search
        identity["class_weights"] = spec["class_weights"]
    return _hash(identity)


def default_study_name(fingerprint: str, spec: Mapping[str, Any]) -> str:
    """The study of a search given no ``study_name``: named after its fingerprint and, where the
    specification holds them (a search with a storage), its input values' digests, which the
    fingerprint lacks: two folds of a ``cross_val_score`` with the same labels but other inputs
    search in studies of their own (named after the fingerprint alone, the second was refused as
    "a search over other data")."""
    digests = spec.get("value_digests")
    return f"automm-{(fingerprint if digests is None else _hash([fingerprint, digests]))[:16]}"


def values_differ(stored: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether the input values of two specifications differ (False when either holds no
    digests: a study stored by an earlier automm)."""
    return (stored.get("value_digests") is not None and new.get("value_digests") is not None
            and stored["value_digests"] != new["value_digests"])


def prepare_study(study, spec: dict, fingerprint: str, data_fp: str, payload: Callable[[], dict | None]) -> dict | None:
    """Store the search's specification in a new study (one holding no trial, or only trials its
    user queued with ``study.enqueue_trial``), or check that an existing one holds the same
    search; returns the stored specification of an existing study (else None)."""
    attrs = study.user_attrs
    existing = attrs.get(FINGERPRINT_ATTR)
    if existing is None:
        # trials its user queued (study.enqueue_trial, not yet run) are the search's first; any other
        # trial is of another objective, which automm's trials would be ranked with
        ran = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
        if ran:
            raise InputError(f"study {study.study_name!r} already holds trials that automm did not create; "
                             f"choose another study_name ({len(ran)} trial{'s' if len(ran) != 1 else ''} run or "
                             "running; a study of only trials queued with study.enqueue_trial is searched, "
                             "those first)")
        study.set_user_attr(SPEC_ATTR, spec)
        study.set_user_attr(DATA_ATTR, payload())
        study.set_user_attr(DATA_FINGERPRINT_ATTR, data_fp)
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
        return None
    stored = attrs.get(SPEC_ATTR) or {}
    if stored:  # as a worker is: a study searching over plugins this process lacks (its space differs for
        # that reason), or created by another automm or plugin version (trials of other code ranked as one search)
        try:
            check_components(stored, study.study_name)
        except InputError as exc:
            raise InputError(f"study_name: {exc}, or choose another study_name") from None
    if existing != fingerprint or values_differ(stored, spec):
        try:
            what = describe_difference(stored, spec, attrs.get(DATA_ATTR), payload()) if stored else ""
        except (KeyError, TypeError):  # a study of another automm version
            what = ""
        if what and _space_made_by_other_code(stored, spec, attrs.get(DATA_ATTR), payload):
            added = _plugin_components_added(stored, spec)
            if added:  # (the same automm: a plugin installed, or switched on, since the study began)
                raise InputError(f"study_name: study {study.study_name!r} was created without "
                                 f"{', '.join(added)}, which this process's plugins add to its search space "
                                 f"({what}): finish it with the plugins it was created with, or choose another "
                                 "study_name (or leave study_name unset) to begin a new search with these")
            raise InputError(f"study_name: study {study.study_name!r} was created by another automm version, whose "
                             f"search space for these data and settings differs from this one's ({what}): finish "
                             "it with the automm that created it, or choose another study_name (or leave "
                             "study_name unset) to begin a new search with this one")
        raise InputError(f"study_name: study {study.study_name!r} holds a search over other data or another search "
                         f"space{': ' + what if what else ''}; choose another study_name, or leave study_name "
                         "unset: each fit of other data or settings then has its own study (each fold of a "
                         "cross_val_score, each candidate of a GridSearchCV), named after them (or give the same data "
                         "and settings to resume it)")
    return attrs[SPEC_ATTR]


#: Estimator parameters that shape no search space: how long and where a search runs, what it shows.
_RUN_PARAMS = frozenset({"n_trials", "time_limit", "n_jobs", "device", "num_workers", "verbose", "plot_dir",
                         "cache_dir"})


def _space_made_by_other_code(stored: Mapping[str, Any], spec: Mapping[str, Any],
                              stored_data: Mapping[str, Any] | None, payload: Callable[[], dict | None]) -> bool:
    """Whether the study's search differs from this one in its space alone though the same data
    and settings made both: the study was created by another automm version (another built-in
    component among the choices, other presets), not given other settings."""
    try:
        if describe_difference(stored, dict(spec, space=stored["space"]), stored_data, payload()):
            return False  # other data or settings
    except (KeyError, TypeError):
        return False

    def settings(params: Mapping[str, Any]) -> dict:
        return {k: v for k, v in params.items() if k not in _RUN_PARAMS}

    return settings(stored.get("params") or {}) == settings(spec.get("params") or {})


def _plugin_components_added(stored: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """The components of this search's space, ``spec``'s, that the study's space lacks and a
    plugin provides here: plugins installed (or switched on) since the study was created, not
    another automm version."""
    from .builtin import DEFAULT_PLUGINS

    before = set(space_components(stored.get("space") or {}))
    return [f"{c['kind']} {c['name']!r} (plugin {c['plugin']!r}" + (f", package {c['package']})" if c.get("package")
                                                                   else ")")
            for c in spec.get("components") or []
            if (c["kind"], c["name"]) not in before and c.get("plugin") not in DEFAULT_PLUGINS]


def _column_roles(inputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {c: r for d in inputs for c, r in (d.get("column_roles") or {}).items()}


def _columns(inputs: Sequence[Mapping[str, Any]]) -> str:
    return shown_roles(_column_roles(inputs)) or "none"


def _first_column_difference(stored: Mapping[str, str], new: Mapping[str, str]) -> str:
    """Where two tables' columns (name: role, in order) first differ, for lists too long to show whole."""
    if len(stored) <= NAMES_SHOWN and len(new) <= NAMES_SHOWN:
        return ""
    for position, (old, here) in enumerate(itertools.zip_longest(stored.items(), new.items())):
        if old != here:
            said = lambda pair: "none" if pair is None else f"{pair[0]!r} ({pair[1]})"
            return f" (the first to differ, column {position + 1}: {said(old)} in the study, {said(here)} here)"
    return ""


def _first_value_difference(column: str, stored_data: Mapping[str, Any] | None,
                            new_data: Mapping[str, Any] | None) -> str:
    """Where the values of ``column`` first differ between the study's stored data and the data
    here (:func:`data_payload`, either None: not known), in words; "" when that is not known. The
    same file name in two folders (a copy of the data elsewhere) names the two folders."""
    old = ((stored_data or {}).get("columns") or {}).get(column)
    new = ((new_data or {}).get("columns") or {}).get(column)
    if not isinstance(old, list) or not isinstance(new, list):
        return ""
    row = next((k for k, (a, b) in enumerate(zip(old, new)) if a != b), None)
    if row is None:
        return ""
    a, b = old[row], new[row]
    if isinstance(a, str) and isinstance(b, str) and a and os.path.basename(a) == os.path.basename(b):
        return (f"; the study's files are in {elided_repr(os.path.dirname(a))}, here in "
                f"{elided_repr(os.path.dirname(b))}: first at row {row}, {elided_repr(os.path.basename(a))}")
    shown_a, shown_b = elided_repr(a), elided_repr(b)
    where = ""
    if shown_a == shown_b and isinstance(a, str) and isinstance(b, str):  # (they differ in the part left out)
        where = f", from character {next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)}"
    return f"; first at row {row}{where}: {shown_a} in the study, {shown_b} here"


def describe_difference(stored: Mapping[str, Any], new: Mapping[str, Any],
                        stored_data: Mapping[str, Any] | None = None, new_data: Mapping[str, Any] | None = None) -> str:
    """What differs between the study's specification ``stored`` and ``new`` (a search's, or
    the data a worker was given: ``inputs``, ``problem_type``, ``n_outputs``, ``targets``, ...),
    in words, "the study's ... , here ..."; the first difference found, or "" when none is.
    ``stored_data``, ``new_data``: the study's data and these (:func:`data_payload`), where known,
    to say where an input column's values first differ."""
    stored_roles, new_roles = _column_roles(stored["inputs"]), _column_roles(new["inputs"])
    if list(stored_roles.items()) != list(new_roles.items()):
        return (f"its input columns are {_columns(stored['inputs'])}; here {_columns(new['inputs'])}"
                + _first_column_difference(stored_roles, new_roles))
    if stored["problem_type"] != new["problem_type"] or stored["n_outputs"] != new["n_outputs"]:
        def what(spec: Mapping[str, Any]) -> str:
            classes = "" if spec["problem_type"] == "regression" else f", {spec['n_outputs']} classes"
            return f"{spec['problem_type']}{classes}"
        classes = _classes_changed(stored, new)
        return (f"its label is {what(stored)}; here {what(new)}{': ' + classes if classes else ''} (another label "
                "column or other rows?)")
    old_targets, new_targets = list(stored["targets"]), list(new["targets"])
    if len(old_targets) != len(new_targets):
        return f"it has {len(old_targets)} rows; here {len(new_targets)}"
    changed = sum(a != b for a, b in zip(old_targets, new_targets))
    if changed:
        classes = _classes_changed(stored, new)
        return (f"the labels of {changed} of its {len(old_targets)} rows differ here{'; classes ' + classes if classes else ''}"
                " (another label column or rows?)")
    if stored.get("sample_weights") != new.get("sample_weights"):
        return "its sample weights differ here"
    if values_differ(stored, new):
        old_values, new_values = stored["value_digests"], new["value_digests"]
        changed = sorted(c for c in set(old_values) | set(new_values) if old_values.get(c) != new_values.get(c))
        return (f"the values of column{'s' if len(changed) > 1 else ''} {', '.join(map(repr, changed))} differ here "
                f"(the same rows and labels, other inputs{_first_value_difference(changed[0], stored_data, new_data)})")
    if bool(stored.get("holdout_given")) != bool(new.get("holdout_given")) or (
            new.get("holdout_given") and stored.get("valid_index") != new.get("valid_index")):
        return "its validation rows differ here"
    if "space" not in new:
        return ""
    old_space, new_space = stored["space"], new["space"]
    for key, word in (("encoders", "encoder choices"), ("fusion", "fusion choices"),
                      ("augmentations", "augmentations")):
        a, b = old_space.get(key) or {}, new_space.get(key) or {}
        if key == "encoders" and sorted(a) == sorted(b):
            for name in a:
                if sorted(a[name]) != sorted(b[name]):
                    return f"its encoder choices for {name} are {sorted(a[name])}; here {sorted(b[name])}"
        if sorted(a) != sorted(b):
            return f"its {word} are {sorted(a)}; here {sorted(b)}"
    for key, word in (("objectives", "objectives"), ("bag_folds", "bag_folds"), ("metric", "metric")):
        if key in stored and stored.get(key) != new.get(key):
            return f"its {word} is {stored.get(key)!r}; here {new.get(key)!r}"
    if "space" in new and stored.get("class_weights") != new.get("class_weights"):
        def weights(spec: Mapping[str, Any]) -> str:
            return "none" if spec.get("class_weights") is None else "weighted"
        return f"its class weights (class_weight) are {weights(stored)}; here {weights(new)}" if weights(stored) != weights(
            new) else "its class weights (class_weight) differ here"
    for key in ("random_state", "holdout_frac"):
        old_value, new_value = (stored.get("params") or {}).get(key), (new.get("params") or {}).get(key)
        if "params" in new and old_value != new_value and (key != "random_state" or isinstance(new_value, int)):
            return f"its {key} is {old_value!r}; here {new_value!r}"
    if old_space != new_space:
        differing = sorted(k for k in set(old_space) | set(new_space) if old_space.get(k) != new_space.get(k))
        return f"its search space differs in {', '.join(differing)} (components' or training hyperparameters)"
    return ""


class StudyNotFoundError(InputError):
    """The study a worker was to join is not in its storage."""


def wait_for_study(storage, study_name: str, wait: float) -> dict:
    """The specification of automm study ``study_name`` once a ``fit`` has stored it, waiting
    up to ``wait`` seconds; else :class:`StudyNotFoundError` listing the studies there."""
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
            from .suggestions import did_you_mean, quoted_values

            try:
                names = sorted(optuna.get_all_study_names(storage))
            except Exception:  # noqa: BLE001 - the names only help the message
                names = []
            held = f"; the storage holds {quoted_values(names, whole=True)}" if names else "; the storage holds no study"
            raise StudyNotFoundError(f"no automm study {study_name!r} in the storage (waited {wait:.0f} s){held}"
                                     f"{did_you_mean(study_name, names)}")
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
        class_weights=spec["class_weights"], amp=bool(spec["amp"]), cache_dir=estimator._encoder_cache_dir(),
        sample_weights=(None if spec.get("sample_weights") is None
                        else np.asarray(spec["sample_weights"], dtype=np.float32)),
        holdout_given=bool(spec.get("holdout_given", False)), metric=spec.get("metric", "auto"),
        target_scale=spec.get("target_scale"))
