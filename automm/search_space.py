"""The search space of one search: what each trial may choose, and the presets tried first.

The space (define-by-run)
-------------------------
For every input (``image_0``, ``text_0``, ``tabular``, ...) the trial chooses an encoder among
the allowed ones for its modality, then asks that component for its own hyperparameters
(the ``search_space`` function the plugin registered) under the prefix ``"<input>.<encoder>."``;
then the fusion (``"fusion"``, prefix ``"fusion.<name>."``), each candidate augmentation on or
off (``"augment.<name>"``, prefix ``"augment.<name>."``) and the training hyperparameters
(``"training.<key>"``). Choices come from the registry, so a plugin installed later joins the
search with no change here. The first trial of a study is the default configuration (what
``fit`` trains without a search, moved inside the ranges and choices the user narrowed), so the search never ends worse on the holdout than the
default (under a time limit, with their features cached, the linear, nearest-neighbour and
gradient-boosted models, which cost seconds, run before it: :func:`automm.search._cheap_first`). Next come the presets: the default with every input that can use a frozen pretrained
encoder switched to it (cheap on cached features), then, when the search ends in an ensemble,
the linear model on the inputs' linear features, such as the texts' hashed n-grams and frozen
image features (:mod:`automm.linear`; seconds, and it errs differently from the networks, so
the ensemble's pool always holds it; ``search_space={"linear_model": False}`` leaves it out), the
nearest-neighbour model on the inputs' frozen pretrained embeddings, when a pretrained encoder is
among the choices (:mod:`automm.neighbors`; likewise always in the pool,
``search_space={"neighbors_model": False}`` leaves it out), the gradient-boosted model on the
table columns, when the data have any (:mod:`automm.boosting`; likewise always in the pool,
``search_space={"boosting_model": False}`` leaves it out; not queued where the default is that
model, ``encoders={"tabular": "boosted_trees"}``) and a
replicate (the same configuration with another seed) of the default and of its pretrained
variant, which the ensemble can average (none of a gradient-boosted default, whose trees no seed
changes). Sampled configurations follow. ``search_space={"warm_start": False}`` skips the
default and the presets: every trial is then sampled (to compare samplers or pruners on their
own, or when the default is known to be a poor start).

What is searched, from the estimator's arguments:

* ``encoders``: a modality or column not named → every registered encoder of that modality
  (the default one first); a name or ``{"name": ..., **hyperparameters}`` → that encoder only,
  with the hyperparameters given fixed and the others searched; a list of names/dicts → those.
* ``fusion``: left at its default ``"concat"`` → every registered fusion not tagged ``"manual"``
  (``sum``, ``neighbors``; the same holds for encoders), nor ``"pairs"`` unless two inputs are
  of one modality (:func:`has_pairs`: ``compare``, which the presets then fuse by where the
  default fuses by ``concat``); a name other than the
  default, or a dict → that fusion only (a dict's hyperparameters fixed); a list → those.
* ``augmentations``: ``"default"`` → every registered augmentation of a present modality (and
  batch augmentations) not tagged ``"manual"`` is switched on or off by the search; a list → those
  listed; ``None`` → none.
  A trial samples a per-sample augmentation only when one of its encoders of that modality
  applies it: an encoder with ``static_preprocess`` (a frozen pretrained encoder reading cached
  features) ignores augmentations, so on such a trial they would be parameters that change
  nothing, noise for the sampler and false entries in the leaderboard. The default and the presets
  drop them before training for the same reason (:func:`automm.pipeline.without_inert_augmentations`).
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
keys ``encoders``, ``fusion``, ``augmentations``, ``training``, ``warm_start``, ``linear_model``,
``neighbors_model`` and ``boosting_model`` (true or false, see above); it takes precedence over the arguments above::

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
* ``{"low": a, "high": b}`` with optional ``"log": true`` and ``"step"`` (above 0) → integer range
  when ``a``, ``b`` (and ``step``) are integers, else float range (which a whole-number
  hyperparameter refuses: a value inside it is tried before any work, :func:`check_component_values`).
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np

from . import registry as _registry
from .boosting import BOOSTED_ENCODER, boosting_config, boosting_refusal, is_boosted
from .data import choice_key, warn_unused_modalities
from .exceptions import InputError
from .linear import linear_config
from .neighbors import neighbors_config
from .pipeline import TRAINING_KEYS, TRAINING_RULES, augmentation_can_act, component_refusal, training_value_problem
from .suggestions import did_you_mean, shown_names

__all__ = ["SearchSpace", "component_prefix", "FROZEN_LEARNING_RATE", "REPLICATES", "AUTO_ENSEMBLE_SIZE",
           "resolved_ensemble_size", "check_search_space_structure", "check_component_values", "check_given_values",
           "VALUE_CHECK_SECONDS", "PAIRS_FUSION", "has_pairs"]

#: ``ensemble_size="auto"`` in a single-objective search: averaging a few good models of
#: different configurations rarely loses and, on small data, often gains a point or more.
AUTO_ENSEMBLE_SIZE = 3

_TRAINING_NAMES = tuple(TRAINING_KEYS)


def _objectives(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def resolved_ensemble_size(estimator) -> int:
    """``ensemble_size`` as a number: "auto" is :data:`AUTO_ENSEMBLE_SIZE` in a
    single-objective search (a multi-objective search picks one model from its Pareto set)."""
    if estimator.ensemble_size != "auto":
        return int(estimator.ensemble_size)
    return AUTO_ENSEMBLE_SIZE if len(_objectives(estimator.objectives)) == 1 else 1


_SPACE_KEYS = ("encoders", "fusion", "augmentations", "training", "warm_start", "linear_model", "neighbors_model",
               "boosting_model")


def check_search_space_structure(space: Mapping) -> None:
    """Raise :class:`InputError` for unknown keys or malformed values of a user's ``search_space=``
    (called by ``fit`` before any work; component names are checked against the registry later)."""
    unknown = sorted(set(map(str, space)) - set(_SPACE_KEYS))
    if unknown:
        raise InputError(f"search_space: unknown keys {unknown}; expected some of {list(_SPACE_KEYS)}"
                         f"{did_you_mean(unknown[0], _SPACE_KEYS)}")
    for key in ("warm_start", "linear_model", "neighbors_model", "boosting_model"):
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
            raise InputError(f"search_space['training']: unknown keys {bad}; expected some of {list(_TRAINING_NAMES)}"
                             f"{did_you_mean(bad[0], _TRAINING_NAMES)}")
        for key, value in training.items():
            _check_training_spec(str(key), _param_spec(value, f"search_space['training'][{key!r}]"))
    augmentations = space.get("augmentations")
    if augmentations is not None and not isinstance(augmentations, (Mapping, list, tuple)):
        raise InputError(f"search_space['augmentations']: expected a dict or a list, got {augmentations!r}")
    _check_component_specs(space)


def _check_component_specs(space: Mapping) -> None:
    """The component parts of a ``search_space=`` checked without data (names registered,
    parameter specs well formed, parameter names the component's): what the search would
    otherwise find only once the data are read, or in every trial."""
    from .exceptions import UnknownComponentError

    reg = _registry.get_registry()
    deadline = time.monotonic() + VALUE_CHECK_SECONDS
    modalities = set(reg.modalities())
    where = "search_space"
    try:
        for key, raw in (space.get("encoders") or {}).items():
            where = f"search_space['encoders'][{key!r}]"
            # a modality's choices must encode it (an input's or a column's: once the data say its modality)
            modality = key if key in modalities else None
            for name, specs in _component_choices(raw, "encoder", where, reg, modality).items():
                check_component_values(reg.get("encoder", name), specs, f"{where}[{name!r}]", deadline)
        if space.get("fusion") is not None:
            where = "search_space['fusion']"
            for name, specs in _component_choices(space["fusion"], "fusion", where, reg).items():
                check_component_values(reg.get("fusion", name), specs, f"{where}[{name!r}]", deadline)
        augmentations = space.get("augmentations")
        where = "search_space['augmentations']"
        items = (augmentations.items() if isinstance(augmentations, Mapping)
                 else [_split_choice(item, where) for item in augmentations or ()])
        for name, value in items:
            entry = f"search_space['augmentations'][{name!r}]"
            if isinstance(augmentations, Mapping):  # (a list's unknown name: said at the list)
                where = entry
            component = reg.get("augmentation", name)
            if isinstance(augmentations, Mapping):
                _augmentation_entry(value, entry)
            if isinstance(value, Mapping):
                component.check_hyperparameters(value, entry, also=("enabled",))  # (a misspelt one named with it)
                specs = {k: v for k, v in value.items() if k != "enabled"}
                parsed = {str(k): _param_spec(v, f"{entry}[{k!r}]") for k, v in specs.items()}
                check_component_values(component, parsed, entry, deadline)
    except UnknownComponentError as exc:  # named by where it was given
        raise InputError(f"{where}: {exc}") from None


def _augmentation_entry(value: Any, where: str) -> tuple[str | None, dict]:
    """The mode of a ``search_space['augmentations']`` mapping's entry (``"on"``, ``"search"``, or
    None: left out) and its parameter specs as given; :class:`InputError` at ``where`` for
    anything else (``'yes'``)."""
    if value is False:
        return None, {}
    if value is True:
        return "on", {}
    if value is None or (isinstance(value, str) and value == "search"):
        return "search", {}
    if isinstance(value, Mapping):
        specs = dict(value)
        enabled = specs.pop("enabled", "search")
        if enabled is False:
            return None, {}
        if enabled is not True and not (isinstance(enabled, str) and enabled == "search"):
            raise InputError(f"{where}['enabled']: expected true, false or 'search', got {enabled!r}")
        return ("on" if enabled is True else "search"), specs
    raise InputError(f"{where}: expected true, false, 'search', null or a dict of parameter specs, got {value!r}")


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
            low, high, step, log = value["low"], value["high"], value.get("step"), value.get("log", False)
            if not isinstance(log, (bool, np.bool_)):  # ("false" read as true before)
                raise InputError(f"{where}: log must be true or false, got {log!r}")
            log = bool(log)
            for name, number in (("low", low), ("high", high), ("step", step)):
                if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))):
                    raise InputError(f"{where}: {name} must be a number, got {number!r}")
            if low > high:
                raise InputError(f"{where}: low {low!r} is above high {high!r}")
            if step is not None and step <= 0:  # (0 was read as 1; below 0, every trial failed in Optuna)
                raise InputError(f"{where}: step must be above 0, got {step!r}")
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


def _check_training_spec(key: str, spec: Mapping) -> None:
    """Every value a training key's spec may give (its value, each choice, a range's bounds) is
    one ``AutoMM`` accepts for that parameter (:data:`~automm.pipeline.TRAINING_RULES`), and an
    integer key's range has integer bounds: said before any trial, not as every trial's failure."""
    where = f"search_space['training'][{key!r}]"
    if "value" in spec:
        values = [spec["value"]]
    elif "choices" in spec:
        values = list(spec["choices"])
    else:
        values = [spec["low"], spec["high"]]
        if TRAINING_RULES[key][2] and not _is_int_range(spec):
            raise InputError(f"{where}: {key} takes whole numbers: give a range of integers, got {dict(spec)!r}")
    for value in values:
        problem = training_value_problem(key, value, auto=False)
        if problem:
            raise InputError(f"{where}: {problem}")


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


def component_prefix(kind: str, name: str, input_name: str | None = None) -> str:
    """The prefix of a component's parameters in the search: ``<input>.<name>.`` for an encoder
    (``input_name``: the input it encodes, e.g. ``text_0``), ``fusion.<name>.``,
    ``augment.<name>.``."""
    if kind == "encoder":
        if not input_name:
            raise ValueError("an encoder's prefix needs the name of its input")
        return f"{input_name}.{name}."
    return {"fusion": f"fusion.{name}.", "augmentation": f"augment.{name}."}[kind]


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


def _searched_by_default(reg: _registry.Registry, kind: str, default: str, modality: str | None = None,
                         pairs: bool = False) -> list[str]:
    """``default`` first, then every other registered component of ``kind`` (and ``modality``)
    not tagged ``"manual"`` (those are searched only when named), nor ``"pairs"`` unless
    ``pairs`` (the data have two inputs of one modality, :func:`has_pairs`)."""
    return [default] + [n for n in reg.names(kind, modality=modality)
                        if n != default and "manual" not in reg.get(kind, n).tags
                        and (pairs or "pairs" not in reg.get(kind, n).tags)]


#: The fusion the presets use in place of ``concat`` on data with two inputs of one modality.
PAIRS_FUSION = "compare"


def has_pairs(inputs: Sequence[Any]) -> bool:
    """Whether two of ``inputs`` are of one modality (two title columns, two photo columns):
    data a comparison fusion (tag ``"pairs"``, e.g. ``compare``) can compare."""
    modalities = [spec.modality for spec in inputs]
    return len(set(modalities)) < len(modalities)


def _compared(config: Mapping[str, Any]) -> dict:
    """``config`` fused by :data:`PAIRS_FUSION` where it fuses by ``concat`` (whose
    hyperparameters it shares); as it is otherwise."""
    config = copy.deepcopy(dict(config))
    if config["fusion"]["name"] == "concat":
        config["fusion"] = {**config["fusion"], "name": PAIRS_FUSION}
    return config


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

    choices: dict[str, dict] = _parsed_choices(raw, where, check)
    for name, params in choices.items():
        reg.get(kind, name).check_hyperparameters(params, f"{where}[{name!r}]")
    return choices


def _parsed_choices(raw: Any, where: str, check) -> dict[str, dict]:
    """``raw`` choices as ``name -> {param: spec}``, each name passed through ``check``."""
    choices: dict[str, dict] = {}
    if isinstance(raw, str):
        choices[check(raw)] = {}
    elif isinstance(raw, Mapping) and "name" in raw:
        params = dict(raw)
        name = check(params.pop("name"))
        choices[name] = _fixed_params(params)
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
                name, params = check(item), {}
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                params = dict(item)
                name = check(params.pop("name"))
            else:
                raise InputError(f"{where}: expected names or {{'name': ...}} dicts in the list, got {item!r}")
            if name in choices:  # one entry per name: a second would replace the first (it did, silently)
                if not params and not choices[name]:
                    continue  # the same plain name twice
                entries = [i for i in raw if isinstance(i, Mapping) and i.get("name") == name]
                key = next((k for e in entries for k in e if k != "name"), None)
                example = {name: {key: [e[key] for e in entries if key in e]} if key else {}}
                raise InputError(f"{where}: {name!r} is listed twice; to search its settings give one entry with "
                                 f"the values to try, e.g. {example}")
            choices[name] = _fixed_params(params)
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


def _narrowed(arg_choices: dict | None, space_choices: dict | None) -> dict | None:
    """The choices ``search_space`` gives (each with the hyperparameters the argument fixed, under
    its own), else the argument's; None when neither gives any."""
    if space_choices is None:
        return arg_choices
    return {n: {**(arg_choices or {}).get(n, {}), **p} for n, p in space_choices.items()}


def _encoder_space(estimator, inputs: Sequence[Any], base_config: Mapping[str, Any], user: Mapping[str, Any],
                   reg: _registry.Registry, leave_out: Mapping[str, Collection[str]] | None) -> dict[str, dict]:
    """Every input's encoder choices, ``name -> {param: spec}``, from ``encoders=`` and
    ``search_space['encoders']`` (by default the modality's searched encoders), without those of
    ``leave_out`` where another remains."""
    args = dict(estimator.encoders or {})
    user_encoders = dict(user.get("encoders") or {})
    known = set(reg.modalities()) | {c for spec in inputs for c in spec.columns} | {spec.name for spec in inputs}
    unknown = sorted(set(map(str, user_encoders)) - known)
    if unknown:
        columns = [c for spec in inputs for c in spec.columns]
        raise InputError(f"search_space['encoders']: keys {unknown} match no modality, input or column "
                         f"(modalities {sorted(reg.modalities())}, inputs {[s.name for s in inputs]}, "
                         f"columns {shown_names(columns)}){did_you_mean(unknown[0], known)}")
    warn_unused_modalities("search_space['encoders']", user_encoders, inputs, reg.modalities())

    def lookup(mapping: Mapping, spec) -> Any:
        key = choice_key(spec, mapping, inputs)
        return None if key is None else mapping[key]

    encoders = {}
    for spec in inputs:
        where = f"encoders for input {spec.name!r}"
        from_arg = lookup(args, spec)
        from_space = lookup(user_encoders, spec)
        arg_choices = (_component_choices(from_arg, "encoder", where, reg, spec.modality)
                       if from_arg is not None else None)
        space_choices = (_component_choices(from_space, "encoder", f"search_space[{where}]", reg, spec.modality)
                         if from_space is not None else None)
        choices = _narrowed(arg_choices, space_choices)
        if choices is None:
            default = base_config["encoders"][spec.name]["name"]
            choices = {n: {} for n in _searched_by_default(reg, "encoder", default, spec.modality)}
        dropped = set((leave_out or {}).get(spec.name, ()))
        if dropped and set(choices) - dropped:
            choices = {n: p for n, p in choices.items() if n not in dropped}
        encoders[spec.name] = choices
    boosted = [name for name, choices in encoders.items() if BOOSTED_ENCODER in choices]
    if boosted and len(encoders) > 1:
        raise InputError(boosting_refusal({"encoders": {name: {"name": next(iter(choices))}
                                                        for name, choices in encoders.items()
                                                        if name not in boosted}}, inputs))
    return encoders


def _fusion_space(estimator, inputs: Sequence[Any], base_config: Mapping[str, Any], user: Mapping[str, Any],
                  reg: _registry.Registry) -> tuple[dict[str, dict], bool]:
    """The fusion choices from ``fusion=`` and ``search_space['fusion']`` (by default the searched
    fusions), and whether the presets compare pairs (:data:`PAIRS_FUSION`, the fusion left to the
    search on data with pairs; the default keeps ``concat``)."""
    fusion_arg = estimator.fusion
    fusion_default = _init_default(type(estimator), "fusion")
    arg_fusions = None
    if not (isinstance(fusion_arg, str) and fusion_arg == fusion_default):
        arg_fusions = _component_choices(fusion_arg, "fusion", "fusion", reg)
    space_fusions = (_component_choices(user["fusion"], "fusion", "search_space['fusion']", reg)
                     if user.get("fusion") is not None else None)
    fusions = _narrowed(arg_fusions, space_fusions)
    if fusions is None:
        default = base_config["fusion"]["name"]
        fusions = {n: {} for n in _searched_by_default(reg, "fusion", default, pairs=has_pairs(inputs))}
    return fusions, PAIRS_FUSION in fusions and arg_fusions is None and user.get("fusion") is None


def _augmentation_space(estimator, inputs: Sequence[Any], user: Mapping[str, Any],
                        reg: _registry.Registry) -> dict[str, dict]:
    """The augmentations, ``name -> {"mode", "params"}``, from ``augmentations=`` and
    ``search_space['augmentations']``, without those that cannot act on these inputs."""
    modalities = {spec.modality for spec in inputs}
    augmentations: dict[str, dict] = {}
    if estimator.augmentations == "default":
        for name in reg.names("augmentation"):
            component = reg.get("augmentation", name)
            if "manual" not in component.tags and (component.modality == "batch"
                                                   or component.modality in modalities):
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
            mode, specs = _augmentation_entry(value, where)
            if mode is None:
                augmentations.pop(name, None)
                continue
            entry = augmentations.get(name, {"mode": mode, "params": {}})
            entry["mode"] = mode
            entry["params"] = {**entry["params"],
                               **{str(k): _param_spec(v, f"{where}[{k!r}]") for k, v in specs.items()}}
            augmentations[name] = entry
    for name in list(augmentations):
        component = reg.get("augmentation", name)
        if (component.modality != "batch" and component.modality not in modalities) or \
                not augmentation_can_act(component, len(inputs)):
            del augmentations[name]
    return augmentations


def _presets(estimator, inputs: Sequence[Any], description: Mapping[str, Any], user: Mapping[str, Any],
             reg: _registry.Registry, compare: bool, n_outputs: int | None, problem_type: str | None) -> list[dict]:
    """The configurations tried after the default (see :attr:`SearchSpace.presets`), fused by
    :data:`PAIRS_FUSION` where ``compare``."""
    pretrained = _pretrained_presets(description, reg)
    if compare:
        pretrained = [_compared(config) for config in pretrained]
    presets = list(pretrained)
    if resolved_ensemble_size(estimator) > 1:
        presets += _always_weighed_models(inputs, description, user, n_outputs, problem_type)
        default = _compared(description["default"]) if compare else description["default"]
        presets += _replicates([config for config in (default, *pretrained) if not is_boosted(config)], REPLICATES)
    return presets


def _always_weighed_models(inputs: Sequence[Any], description: Mapping[str, Any], user: Mapping[str, Any],
                           n_outputs: int | None, problem_type: str | None) -> list[dict]:
    """The linear, nearest-neighbour and gradient-boosted models' configurations, those that
    ``search_space`` does not switch off and that the data allow (none without ``n_outputs``)."""
    fixed = {name: {n: _fixed_values(p) for n, p in choices.items()}
             for name, choices in description["encoders"].items()}
    base_training = description["default"]["training"]
    linear = neighbors = boosting = None
    if n_outputs is not None and bool(user.get("linear_model", True)):
        linear = linear_config(inputs, fixed, base_training, n_outputs)
    if n_outputs is not None and bool(user.get("neighbors_model", True)):
        regression = (problem_type == "regression") if problem_type else n_outputs == 1
        neighbors = neighbors_config(inputs, fixed, base_training, regression=regression)
    # (a default of the boosted_trees encoder is that model already; grown deterministically, it
    # gets no replicate either: another seed grows the same trees)
    boosted_default = is_boosted(description["default"])
    if n_outputs is not None and bool(user.get("boosting_model", True)) and not boosted_default:
        boosting = boosting_config(inputs, fixed, base_training, n_outputs)
    return [config for config in (linear, neighbors, boosting) if config is not None]


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
                       problem_type: str | None = None,
                       leave_out: Mapping[str, Collection[str]] | None = None) -> "SearchSpace":
        """The space for ``estimator`` on ``inputs``; ``n_outputs`` and ``problem_type`` (of the
        prepared data) let it add the linear, nearest-neighbour and gradient-boosted models to the
        presets.
        ``leave_out`` maps an input's name to encoder choices removed from it (and so from the
        presets), where another choice remains (see :func:`automm.search._too_slow_encoders`)."""
        reg = _registry.get_registry()
        user = dict(estimator.search_space or {})
        check_search_space_structure(user)
        encoders = _encoder_space(estimator, inputs, base_config, user, reg, leave_out)
        fusions, compare = _fusion_space(estimator, inputs, base_config, user, reg)
        augmentations = _augmentation_space(estimator, inputs, user, reg)
        training = _training_space(estimator, base_config["training"], device_type)
        for key, value in (user.get("training") or {}).items():
            training[str(key)] = _param_spec(value, f"search_space['training'][{key!r}]")

        description = {"encoders": encoders, "fusion": fusions, "augmentations": augmentations, "training": training}
        description["default"] = _default_config(description, base_config, reg)
        _check_values(description, inputs, reg, n_outputs)
        description["presets"] = _presets(estimator, inputs, description, user, reg, compare, n_outputs, problem_type)
        description["warm_start"] = bool(user.get("warm_start", True))
        user_training = user.get("training") or {}
        # batch sizes the user gave, as AutoMM's batch_size or the space's, are used as given
        description["frozen_batch_scale"] = estimator._frozen_batch_scale() if "batch_size" not in user_training else 1
        if description["frozen_batch_scale"] > 1 and "learning_rate" not in user_training:
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

    def suggest(self, trial: Any, frozen: Callable[[dict], bool] | None = None,
                augmentable: Callable[[dict], set[str]] | None = None) -> dict:
        """A configuration sampled on ``trial`` (an Optuna ``Trial`` or ``FixedTrial``).

        ``frozen(config)`` tells whether a configuration's encoders are all frozen; for one that
        is, the learning rate is sampled from the description's ``"frozen_learning_rate"`` (when
        present) as ``training.frozen_learning_rate`` (see :data:`FROZEN_LEARNING_RATE`).
        ``augmentable(config)`` names the modalities whose per-sample augmentations can act on
        the configuration's encoders (:func:`automm.pipeline.augmentable_modalities`); the
        per-sample augmentations of any other modality are neither sampled nor listed, so that
        neither the sampler nor the leaderboard sees parameters that changed nothing (a frozen
        encoder reads the same cached features whatever the augmentation). Batch augmentations
        always act. Without it, every augmentation is sampled.
        """
        reg = _registry.get_registry()
        desc = self.description
        encoders = {}
        for input_name, choices in desc["encoders"].items():
            names = list(choices)
            name = names[0] if len(names) == 1 else trial.suggest_categorical(f"{input_name}.encoder", names)
            prefix = component_prefix("encoder", name, input_name)
            params = _suggest_component(trial, reg.get("encoder", name), prefix, choices[name])
            encoders[input_name] = {"name": name, **params}
        names = list(desc["fusion"])
        name = names[0] if len(names) == 1 else trial.suggest_categorical("fusion", names)
        fusion = {"name": name, **_suggest_component(trial, reg.get("fusion", name), component_prefix("fusion", name),
                                                     desc["fusion"][name])}
        frozen_rate = desc.get("frozen_learning_rate")
        try:  # (these may build the encoders, which may fail on a value of the space)
            live = None if augmentable is None else augmentable({"encoders": encoders})
            frozen_encoders = frozen_rate is not None and frozen is not None and frozen({"encoders": encoders})
        except Exception as exc:
            exc.automm_partial_config = {"encoders": encoders, "fusion": fusion}  # what the leaderboard shows
            raise
        augmentations = []
        for name, entry in desc["augmentations"].items():
            component = reg.get("augmentation", name)
            if live is not None and component.modality != "batch" and component.modality not in live:
                continue
            on = entry["mode"] == "on" or trial.suggest_categorical(f"augment.{name}", [False, True])
            if on:
                params = _suggest_component(trial, component, component_prefix("augmentation", name), entry["params"])
                augmentations.append({"name": name, **params})
        specs = {key: (f"training.{key}", spec) for key, spec in desc["training"].items()}
        if frozen_encoders:
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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _inside(value: Any, spec: Mapping[str, Any]) -> Any:
    """``value`` moved inside ``spec``: the value it fixes; among its choices, ``value`` itself or
    else the nearest number (the first choice when they are not numbers); in its range, ``value``
    clipped to it (an integer range's on its steps). A value that is no number stays as it is
    in a range (a component reads it its own way), except None, a component's "my own choice"
    (``random_resized_crop``'s ``min_scale``: its ``scale``), which the range replaces by its
    middle (geometric on a log range): the choice was the user's to narrow."""
    if "value" in spec:
        return copy.deepcopy(spec["value"])
    if "choices" in spec:
        choices = list(spec["choices"])
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        if _number(value) and all(_number(c) for c in choices):
            return min(choices, key=lambda c: abs(c - value))
        return copy.deepcopy(choices[0])
    low, high = spec["low"], spec["high"]
    if value is None:
        value = math.sqrt(low * high) if spec.get("log") and low > 0 else (low + high) / 2
    if not _number(value):
        return value
    if _is_int_range(spec):
        step = int(spec.get("step") or 1)
        steps = round((min(max(value, low), high) - low) / step)
        return int(min(low + steps * step, _last_step(spec)))
    return float(min(max(value, low), high))


def _last_step(spec: Mapping[str, Any]) -> int:
    """The largest value an integer range's steps reach (``high`` itself when it is on one)."""
    step = int(spec.get("step") or 1)
    return spec["low"] + ((spec["high"] - spec["low"]) // step) * step


def _moved_inside(values: Mapping[str, Any], specs: Mapping[str, dict], defaults: Mapping[str, Any]) -> dict:
    """``values`` with each parameter that ``specs`` fix or bound moved inside them
    (:func:`_inside`); a parameter absent from ``values`` is the component's default
    (``defaults``) moved inside, when it has one."""
    moved = dict(values)
    for key, spec in specs.items():
        if key in moved or key in defaults or "value" in spec or len(spec.get("choices", ())) == 1:
            moved[key] = _inside(moved.get(key, defaults.get(key)), spec)
    return moved


#: Seconds that checking the values given for components may take (each check builds a
#: component once); values left unchecked then are reported by the trials that sample them.
VALUE_CHECK_SECONDS = 5.0


def _candidates(spec: Mapping[str, Any]) -> list:
    """The values a parameter spec may give that are checked: its value, its choices, a range's
    two ends (an integer range's last step) and, for a range of floats, a value inside it
    (:func:`_inner_float`)."""
    if "value" in spec:
        return [spec["value"]]
    if "choices" in spec:
        return list(spec["choices"])
    if _is_int_range(spec):
        return [spec["low"], _last_step(spec)]
    return [spec["low"], spec["high"], *_inner_float(spec)]


def _inner_float(spec: Mapping[str, Any]) -> list[float]:
    """A value that a range of floats samples and that is no whole number (``low`` plus its step;
    else its middle, off a whole number), or none: what an integer hyperparameter given a range
    whose ends are whole numbers but one is a float (``{low: 8, high: 16.0}``, ``step: 0.5``)
    refuses in every trial but the default's."""
    low, high, step = float(spec["low"]), float(spec["high"]), spec.get("step")
    if step is not None:
        inner = low + float(step)
        return [inner] if inner <= high else []
    if low == high:
        return []
    middle = (low + high) / 2
    return [middle + min(0.5, (high - low) / 4) if middle.is_integer() else middle]


def check_component_values(component: _registry.ComponentSpec, specs: Mapping[str, dict], where: str,
                           deadline: float, **context: Any) -> None:
    """:class:`InputError` at ``where[key]`` when ``component`` refuses a value that ``specs``
    give (a fixed value, a choice, a range's end: :func:`_candidates`) whatever the others are:
    with its other hyperparameters at their defaults, with the values the user fixed, and with
    each value given for another one; said before any work, not as every trial's failure.
    Nothing is refused on doubt: not a value whose refusal names another hyperparameter (a
    constraint between them, such as a width divisible by a number of heads: the trials that
    sample a bad pair say so), nor one whose combinations were not all tried before ``deadline``
    (``time.monotonic()``), nor anything of a component that cannot be built with its defaults
    (its trials say why). The values the user fixed, all of them, are also tried together. Each
    check builds the component once (:func:`automm.pipeline.component_refusal`, ``context`` its
    arguments)."""
    if not specs:
        return
    refusals: dict[str, str | None] = {}

    def refusal(params: dict) -> str | None:
        key = json.dumps(params, sort_keys=True, default=repr)
        if key not in refusals:
            refusals[key] = component_refusal(component, params, **context)
        return refusals[key]

    if refusal({}) is not None:
        return
    fixed = _fixed_values(specs)
    names = set(component.accepted_hyperparameters() or ()) | set(specs)
    for key, spec in specs.items():
        for value in _candidates(spec):
            if time.monotonic() > deadline:
                return
            problem = refusal({key: value})
            if problem is None or any(re.search(rf"\b{re.escape(str(other))}\b", problem)
                                      for other in names if other != key):
                continue
            combos = [{**fixed, key: value}] + [{**fixed, other: v, key: value} for other, s in specs.items()
                                                 if other != key for v in _candidates(s)]
            refused = []
            for combo in combos:
                if time.monotonic() > deadline:
                    return  # not all tried: left to the trials
                refused.append(refusal(combo) is not None)
            if all(refused):
                hint = (f"; a list there is the value itself: to search among {value!r}, give them as "
                        f"search_space={{'encoders': {{...: {{{component.name!r}: {{{key!r}: {value!r}}}}}}}}}"
                        if isinstance(value, list) and component.kind == "encoder" else "")
                if "low" in spec and value in _inner_float(spec):
                    whole = {k: int(v) for k, v in spec.items() if k in ("low", "high") and float(v).is_integer()}
                    hint = (", a value the range samples (a float bound or step makes a range of floats)"
                            + (f"; give {whole} to sample whole numbers" if len(whole) == 2 else ""))
                raise InputError(f"{where}[{key!r}]: {component.kind} {component.name!r} refuses {key}={value!r} "
                                 f"({problem}){hint}")
    if fixed and len(fixed) == len(specs) and time.monotonic() <= deadline and refusal(fixed) is not None:
        raise InputError(f"{where}: {component.kind} {component.name!r} refuses the values given together {fixed} "
                         f"({refusal(fixed)})")


def check_given_values(component: _registry.ComponentSpec, params: Mapping[str, Any], where: str,
                       **context: Any) -> None:
    """The hyperparameters given with a component (in ``encoders=``, ``fusion=``,
    ``augmentations=``, or a recipe's components) built once: a value it refuses is an
    :class:`InputError` at ``where[key]``, before any work (:func:`check_component_values`)."""
    if params:
        check_component_values(component, {k: {"value": v} for k, v in params.items()}, where,
                               time.monotonic() + VALUE_CHECK_SECONDS, **context)


def _check_values(description: Mapping[str, Any], inputs: Sequence[Any], reg: _registry.Registry,
                  n_outputs: int | None) -> None:
    """:func:`check_component_values` for every component the space gives values for."""
    deadline = time.monotonic() + VALUE_CHECK_SECONDS
    dims = {}
    for spec in inputs:
        choices = description["encoders"][spec.name]
        for name, specs in choices.items():
            component = reg.get("encoder", name)
            check_component_values(component, specs, f"encoders of input {spec.name!r}", deadline, input_spec=spec)
        first = description["default"]["encoders"][spec.name]
        dims[spec.name] = reg.get("encoder", first["name"]).expected_output_dim(
            **{k: v for k, v in first.items() if k != "name"}) or 8
    for name, specs in description["fusion"].items():
        check_component_values(reg.get("fusion", name), specs, f"fusion {name!r}", deadline, input_dims=dims,
                               n_outputs=n_outputs)
    for name, entry in description["augmentations"].items():
        check_component_values(reg.get("augmentation", name), entry["params"], f"augmentations[{name!r}]", deadline)


def _default_config(desc: Mapping[str, Any], base: Mapping[str, Any], reg: _registry.Registry) -> dict:
    """The estimator's default configuration moved inside the space: components the space
    excludes replaced by its first choice, and every value the space fixes, narrows to
    choices or bounds moved inside it (:func:`_inside`): a user who caps ``max_epochs`` at 3
    or narrows a width gets a first trial within those bounds too."""
    encoders = {}
    for input_name, choices in desc["encoders"].items():
        current = dict(base["encoders"][input_name])
        name = current.pop("name")
        if name not in choices:
            name = next(iter(choices))
            current = reg.get("encoder", name).hyperparameters()
        defaults = reg.get("encoder", name).hyperparameters()
        encoders[input_name] = {"name": name, **_moved_inside(current, choices[name], defaults)}
    current = dict(base["fusion"])
    name = current.pop("name")
    if name not in desc["fusion"]:
        name = next(iter(desc["fusion"]))
        current = reg.get("fusion", name).hyperparameters()
    fusion = {"name": name, **_moved_inside(current, desc["fusion"][name], reg.get("fusion", name).hyperparameters())}
    augmentations = []
    present = set()
    for choice in base["augmentations"]:
        if choice["name"] in desc["augmentations"]:
            entry = desc["augmentations"][choice["name"]]
            defaults = reg.get("augmentation", choice["name"]).hyperparameters()
            augmentations.append(_moved_inside(choice, entry["params"], defaults))
            present.add(choice["name"])
    for name, entry in desc["augmentations"].items():
        if entry["mode"] == "on" and name not in present:
            defaults = reg.get("augmentation", name).hyperparameters()
            augmentations.append({"name": name, **_moved_inside(defaults, entry["params"], defaults)})
    training = _moved_inside(base["training"], desc["training"], {})
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
            defaults = spec.hyperparameters()
            encoders[input_name] = {"name": spec.name, **_moved_inside(defaults, choices[spec.name], defaults)}
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
