"""One candidate model: from prepared data and a configuration to a trained network.

:class:`PreparedData` is everything ``fit`` learns about the data before training (columns,
roles, inputs, encoded targets, the holdout split). A *configuration* is a JSON-able dict::

    {"encoders": {input_name: {"name": ..., **hyperparameters}},
     "fusion": {"name": ..., **hyperparameters},
     "augmentations": [{"name": ..., **hyperparameters}, ...],
     "training": {"learning_rate": ..., "weight_decay": ..., "batch_size": ..., "max_epochs": ...,
                  "label_smoothing": ..., "head_dropout": ..., "patience": ...,
                  "seed_offset": 0},   # optional: trains with the data's seed + this (a replicate)
     "shared_encoders": [[input_name, input_name, ...], ...]}   # optional: see with_shared_encoders

:func:`train_candidate` builds the encoders (fitting their preprocessing on the training
split), the fusion and the head, and trains them; the default fit trains one candidate and
the search trains many.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from . import registry as _registry
from .components.stack import STACK, EncoderStack, describe_encoder, encoder_parts
from .contracts import FUSION_INPUTS_HINT, CheckedAugmentation, CheckedBatchAugmentation, building
from .data import MISSING, BatchCollator, InputSpec, MultimodalDataset, RowNames, single_columns
from .evaluation import four_places
from .exceptions import AutoMMWarning, InputError, PluginError, user_stacklevel
from .decision import class_priors, decide, fit_decision_weights
from .model import MultimodalNet
from .training import (Callback, EarlyStopping, ProgressBar, Trainer, TrainingConfig, holdout_score_name, make_loader,
                       model_outputs, validation_metrics)
from .boosting import is_boosted, train_boosting
from .linear import LINEAR_SOLVER, train_linear
from .neighbors import is_neighbors, train_neighbors
from .process_state import all_warnings_left_out, warnings_left_out

__all__ = ["PreparedData", "Candidate", "train_candidate", "train_bagged", "all_encoders_frozen", "pending_share",
           "pending_seconds", "distinct_values",
           "prepare_encoders", "retry_with_smaller_batches", "is_out_of_memory",
           "decision_weights", "candidate_decision_weights", "decided_score", "candidate_decided_score",
           "candidate_temperature", "TEMPERATURE_PRIOR_SD",
           "augmentable_modalities", "without_inert_augmentations", "augmentation_can_act", "scale_frozen_batch",
           "trainable_config",
           "FROZEN_BATCH_SCALE", "bag_folds_for", "build_model", "with_shared_encoders", "TRAINING_KEYS",
           "TRAINING_RULES",
           "finite_number", "training_value_problem", "component_refusal"]

#: What each training value may be, as ``AutoMM``'s parameter and as a search space's value, choice
#: or range bound: (what the message says, the test, whether it must be a whole number).
TRAINING_RULES: dict[str, tuple[str, Callable[[float], bool], bool]] = {
    "learning_rate": ("a positive number", lambda v: v > 0, False),
    "weight_decay": ("a number >= 0", lambda v: v >= 0, False),
    "batch_size": ("'auto' or a positive integer", lambda v: v > 0, True),
    "max_epochs": ("a positive integer", lambda v: v > 0, True),
    "label_smoothing": ("a number in [0, 1)", lambda v: 0 <= v < 1, False),
    "head_dropout": ("a number in [0, 1)", lambda v: 0 <= v < 1, False),
    "patience": ("an integer >= 0", lambda v: v >= 0, True),
}
TRAINING_KEYS = tuple(TRAINING_RULES)


def finite_number(value: Any, integer: bool = False) -> bool:
    """Whether ``value`` is a finite int (or, unless ``integer``, float), numpy scalars included,
    booleans not."""
    kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float (10**400)
        return False


#: The most epochs a fit without a time limit may ask for: the learning-rate schedule spans them
#: all, so a larger number never gets past its warm-up (a million epochs of 10 ms are 3 hours).
MAX_EPOCHS_UNTIMED = 10**6


def untimed_epochs_problem(max_epochs: Any) -> str | None:
    """What is wrong with ``max_epochs`` for a fit without a time limit, or None: more than
    :data:`MAX_EPOCHS_UNTIMED` never end, the schedule spanning them (10**23 warmed up for 5e21
    epochs: the rate stayed near 0, no epoch settled, early stopping never came; 886 epochs in
    130 s at chance accuracy)."""
    if max_epochs <= MAX_EPOCHS_UNTIMED:
        return None
    warmup = TrainingConfig.warmup_fraction * max_epochs
    return (f"{max_epochs!r} epochs without a time_limit would not end (the learning rate warms up over the first "
            f"{warmup:.3g} of them); give at most {MAX_EPOCHS_UNTIMED}, or a time_limit= to train by time (the "
            "schedule is then fitted to it)")


def training_value_problem(key: str, value: Any, auto: bool = True) -> str | None:
    """What is wrong with ``value`` for training key ``key`` ("expected a positive integer, got 0"),
    or None when it is fine (``batch_size`` may be ``"auto"`` when ``auto``: ``AutoMM``'s
    parameter, not a search space's value)."""
    expected, valid, integer = TRAINING_RULES[key]
    if key == "batch_size":
        if auto and value == "auto":
            return None
        expected = expected if auto else "a positive integer"
    if finite_number(value, integer) and valid(value):
        return None
    return f"expected {expected}, got {value!r}"


@dataclass
class PreparedData:
    """Validated training data, ready for any candidate configuration."""

    inputs: list[InputSpec]
    values: dict[str, list[Any]]           # input name -> raw values per sample (MISSING where absent)
    targets: np.ndarray                     # class indices (int64) or standardised values (float32)
    problem_type: str
    n_outputs: int
    train_index: np.ndarray
    valid_index: np.ndarray
    seed: int
    device: torch.device
    num_workers: int
    class_weights: list[float] | None = None
    amp: bool = True
    cache_dir: str | None = None            # feature cache of frozen pretrained encoders (Encoder.prepare)
    #: one positive weight per row (``fit``'s ``sample_weight``, mean 1), or None: every row counts
    #: once. Training losses and every holdout loss and score are then weighted means.
    sample_weights: np.ndarray | None = None
    #: the holdout is the user's validation data (``fit``'s ``X_val``, ``y_val``): no model
    #: trains on it (bags fold the training rows only, the linear, nearest-neighbour and gradient-boosted
    #: models are not refitted with it); else it is a random share of the rows, which they use.
    holdout_given: bool = False
    #: what every holdout score measures (``fit``'s ``metric``; see
    #: :func:`automm.training.validation_metrics`)
    metric: str = "auto"
    #: a regression's target standard deviation, by which its targets were standardised: a score's
    #: error in the target's units (None where unknown: a worker's study from an older version)
    target_scale: float | None = None
    #: the warnings about these data already given in this fit (a search's trials and a bag's
    #: folds build the same encoders again; each says so once), shared by ``replace`` copies
    warned: set = field(default_factory=set, repr=False, compare=False)

    @property
    def rows(self) -> np.ndarray:
        """The rows a model may train on, sorted: what k-fold bagging splits. Every row, training
        and holdout, unless the holdout is the user's validation data (the training rows then)."""
        if self.holdout_given:
            return np.unique(self.train_index)
        # (under 10 rows the holdout is the training rows: each row once)
        return np.unique(np.concatenate([self.train_index, self.valid_index]))

    def subset(self, index: np.ndarray) -> dict[str, list[Any]]:
        return {name: [column[i] for i in index] for name, column in self.values.items()}

    @property
    def valid_targets(self) -> np.ndarray:
        return self.targets[self.valid_index]

    def weights(self, index: np.ndarray) -> np.ndarray | None:
        """The sample weights of rows ``index`` (None when every row counts once)."""
        return None if self.sample_weights is None else self.sample_weights[index]

    @property
    def valid_weights(self) -> np.ndarray | None:
        return self.weights(self.valid_index)


@dataclass
class Candidate:
    """A trained candidate: the model (best epoch), its history and holdout outputs."""

    config: dict
    model: MultimodalNet
    history: list[dict]
    best_epoch: int
    best_score: float
    valid_outputs: np.ndarray | None
    stop_reason: str
    seconds: float
    extras: dict = field(default_factory=dict)
    bag: list[MultimodalNet] | None = None     # a bagged candidate's fold models (``model`` is the first)
    oof_outputs: np.ndarray | None = None      # a bagged candidate's out-of-fold outputs, one row per sample
    oof_loss: float | None = None              # ... and their loss (see :func:`train_bagged`)
    interrupted: bool = False                  # training stopped by Ctrl-C (``stop_on_interrupt``)
    decision_weights: np.ndarray | None = None  # the decision rule's class weights (see automm.decision)
    decided_score: float | None = None  # the metric of predict's rule (with those weights) on the rows that chose them
    temperature: float = 1.0  # the multiplier of a lone classifier's logits fitted on its holdout (automm.ensemble.calibrate)
    scored_on: tuple[str, int] | None = None  # what best_score was measured on, when not :func:`scored_on`'s rule

    @property
    def best_loss(self) -> float | None:
        """The validation loss of the kept epoch, or of the out-of-fold outputs of a bagged
        candidate (None when unknown or not finite)."""
        if self.bag is not None:
            value = self.oof_loss
        else:
            record = next((r for r in self.history if r.get("epoch") == self.best_epoch), {})
            value = record.get("valid_loss")
        return float(value) if value is not None and math.isfinite(value) else None

    @property
    def cut_in_first_epoch(self) -> str | None:
        """Why this network is not trained enough to judge its configuration, or None: the
        time limit stopped it (its first fold's, for a bag) inside its first epoch, so every
        epoch of its history is incomplete and its holdout score measures a model that saw part
        of the training rows once (fashion subCategory's default: 0.02 after 5 of 213 batches,
        0.94 after 74, 0.99 after two full epochs)."""
        if not self.history or any(record.get("complete", True) for record in self.history):
            return None
        record = self.history[-1]
        batches, planned = record.get("batches", 0), record.get("epoch_batches")
        done = f"{batches} of {planned} batches" if planned else f"{batches} batches"
        return f"time limit reached in its first epoch ({done})"


def decision_weights(data: PreparedData, outputs: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """The class weights of :mod:`automm.decision`'s rule for ``data.metric``, fitted on
    ``outputs`` (raw, as ``predict`` sees them) of ``rows``; None for regression and accuracy."""
    if data.problem_type == "regression" or data.metric in ("auto", "accuracy") or outputs is None:
        return None
    train = data.train_index
    priors = class_priors(data.targets[train], data.n_outputs, data.weights(train))
    # rows of a class that the model judging them never trained on (a class of one row, out of
    # fold in a bag) cannot show how to weigh it: left out, as its floored prior would get the
    # largest weight and predict make it the answer for many rows
    counts = np.bincount(data.targets[data.rows].astype(np.int64), minlength=data.n_outputs)
    trained = np.bincount(data.targets[train].astype(np.int64), minlength=data.n_outputs)
    judged = np.asarray(rows)
    classes = data.targets[judged].astype(np.int64)
    keep = (counts[classes] > 1) & (trained[classes] > 0)
    if not keep.all():
        outputs, rows = outputs[keep], judged[keep]
        if not len(rows):
            return None
    return fit_decision_weights(outputs, data.targets[rows], priors, data.metric, data.weights(rows))


def _judged_outputs(data: PreparedData, candidate: Candidate) -> tuple[np.ndarray | None, np.ndarray]:
    """A candidate's outputs on the rows that judge it (out-of-fold for a bag, else the
    holdout's), scaled by its ``temperature`` as ``predict`` scales them, and those rows."""
    if candidate.oof_outputs is not None:
        outputs, rows = candidate.oof_outputs[data.rows], data.rows
    else:
        outputs, rows = candidate.valid_outputs, data.valid_index
    if outputs is not None and candidate.temperature != 1.0:
        outputs = outputs * candidate.temperature
    return outputs, rows


#: The standard deviation of the normal prior on the logarithm of the temperature of a model kept
#: alone (:func:`candidate_temperature`), centred on the logits as trained. Fitted on the 1-6
#: holdout rows of tiny data (emoji 12-45 rows of 9 classes, fashion 20-60 rows of 15, the default
#: model, 72 fits), the temperature followed those rows: the lowest, 0.01, in 8 fits (every class's
#: probability about equal where accuracy was 0.25-0.41), 2.6 in one (test log-loss 6.8). With the
#: prior (0.30-1.34): test log-loss 1.913 -> 1.822 on average, better in 43 of 72 fits, the worst
#: 6.84 -> 3.39; accuracy unchanged (a temperature ranks no class otherwise). 0.5 and 2 did about as
#: well (1.852, 1.842). On holdouts of 12 and 30 rows it moved the log-loss by 0.01 at most (0.917
#: -> 0.915 on average over 12 fits; 1.339 -> 1.336 over 36 fits of 2 epochs). An ensemble's
#: members, weighed on 10 holdout rows or more, and a bag, on every row's out-of-fold outputs, are
#: calibrated without it.
TEMPERATURE_PRIOR_SD = 1.0


def candidate_temperature(data: PreparedData, candidate: Candidate) -> float:
    """The temperature of a lone classifier (:func:`automm.ensemble.calibrate` on the outputs
    that judge it, as the ensemble's members get theirs; on a holdout, under a prior,
    :data:`TEMPERATURE_PRIOR_SD`, that keeps a few rows from setting it alone): its
    ``predict_proba`` is then as confident as its holdout says (label smoothing had floored a rare
    class's probabilities, and early stopping leaves a network under- or over-confident); 1.0 for
    regression."""
    from .ensemble import calibrate

    outputs, rows = _judged_outputs(data, replace(candidate, temperature=1.0))
    if data.problem_type == "regression" or outputs is None or not len(rows):
        return 1.0
    # (a bag's, on every row's out-of-fold outputs: without the prior, as a search calibrates a bag kept alone)
    prior_sd = TEMPERATURE_PRIOR_SD if candidate.oof_outputs is None else None
    return float(calibrate([outputs], data.targets[rows], data.problem_type, data.weights(rows), prior_sd=prior_sd)[0])


def candidate_decision_weights(data: PreparedData, candidate: Candidate) -> np.ndarray | None:
    """:func:`decision_weights` on a candidate's out-of-fold outputs (a bag) or holdout outputs."""
    return decision_weights(data, *_judged_outputs(data, candidate))


def decided_score(data: PreparedData, outputs: np.ndarray | None, rows: np.ndarray,
                  weights: np.ndarray | None) -> float | None:
    """``data.metric`` of the decisions :mod:`automm.decision`'s rule with class ``weights``
    makes from ``outputs`` of ``rows`` (the rows that chose the weights: optimistic); None
    without weights (plain argmax: the holdout score says it). Out-of-fold rows are scored as
    the validation score is, on :func:`comparable_rows` (a class of one row that the holdout
    lacks, never out-of-fold right, made it 0.64 beside a validation score of 0.77)."""
    if weights is None or outputs is None:
        return None
    from .training import classification_score

    rows = np.asarray(rows)
    scored = np.isin(rows, comparable_rows(data, rows))
    outputs, rows = np.asarray(outputs)[scored], rows[scored]
    return float(classification_score(decide(outputs, weights), data.targets[rows], data.metric, data.weights(rows)))


def candidate_decided_score(data: PreparedData, candidate: Candidate) -> float | None:
    """:func:`decided_score` of a candidate's ``decision_weights`` on the outputs that chose them."""
    return decided_score(data, *_judged_outputs(data, candidate), candidate.decision_weights)


def _split(choice: dict) -> tuple[str, dict]:
    params = dict(choice)
    return params.pop("name"), params


def _make_encoder(spec: InputSpec, config: dict, reg: _registry.Registry):
    """The (unfitted) encoder ``config`` chooses for input ``spec`` (a stack of encoders when
    the choice is one, see :mod:`automm.components.stack`)."""
    choice = config["encoders"][spec.name]
    encoders = []
    for name, params in (_encoder_arguments(spec, part) for part in encoder_parts(choice)):
        component = reg.get("encoder", name)
        with building(component, params, f" for input {spec.name!r}"):
            encoders.append(component.factory(**params))
    return EncoderStack(encoders, choice.get("compared", ())) if choice["name"] == STACK else encoders[0]


def component_refusal(component: _registry.ComponentSpec, params: dict, *, input_spec: InputSpec | None = None,
                      input_dims: dict[str, int] | None = None, n_outputs: int | None = None) -> str | None:
    """Why ``component``'s factory refuses the hyperparameters ``params`` (its defaults updated
    with them), as ``"ErrorType: message"``; None when it builds (or fails for a reason that is
    not the values, such as a missing package, which its trial reports). Builds it once, with
    the arguments automm gives: a fusion ``input_dims`` (8 per input when not given) and
    ``n_outputs`` (not known: 2 classes, then 1 output, a regression's; refused only when
    both are), a table encoder its input's ``column_roles``. Building draws the initial weights
    from torch's global generator, whose state is put back after (``AutoMM.from_recipe`` and
    ``automm validate`` check a recipe's components so, outside any ``fit``)."""
    from .estimator import global_random_state_kept

    if component.kind == "fusion" and n_outputs is None:
        refused = component_refusal(component, params, input_dims=input_dims, n_outputs=2)
        return refused and component_refusal(component, params, input_dims=input_dims, n_outputs=1)
    args, given = (), {}
    if component.kind == "fusion":
        args = (dict(input_dims or {"image_0": 8, "text_0": 8}), int(n_outputs))
    elif component.kind == "encoder" and component.modality == "tabular" and input_spec is not None:
        given = {"column_roles": dict(input_spec.column_roles)}
    try:
        with global_random_state_kept():
            component.factory(*args, **given, **component.hyperparameters(**params))
    except (ValueError, TypeError, RuntimeError) as exc:  # (InputError is a ValueError)
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - not about the values
        return None
    return None


def _encoder_arguments(spec: InputSpec, choice: dict) -> tuple[str, dict]:
    """A registered encoder's name and constructor arguments for input ``spec``."""
    name, params = _split(choice)
    if spec.modality == "tabular":
        params["column_roles"] = dict(spec.column_roles)
    return name, params


#: The share of an input's training texts longer than its encoder's ``max_length`` above which
#: ``fit`` says that their tails are not read.
TRUNCATION_WARNING_SHARE = 0.1


#: What ``fit``'s warning of cut texts says a token is, for an encoder that does not say
#: (``token_unit``: a pretrained tokenizer's word pieces).
TOKEN_UNIT = "a word or a punctuation mark each"


def _first_time(warned: set | None, key: tuple) -> bool:
    """Whether the warning ``key`` is not yet in ``warned`` (then added), a fit's record of what
    it said; True without a record."""
    if warned is None:
        return True
    if key in warned:
        return False
    warned.add(key)
    return True


def _warn_truncated(spec: InputSpec, encoder: Any, name: str, warned: set | None = None) -> None:
    """Say so when more than :data:`TRUNCATION_WARNING_SHARE` of the training texts of ``spec``
    are cut at ``encoder.max_length`` (a from-scratch network's encoder; the linear form reads its own);
    once per column, encoder and length in ``warned`` (a fit's: its trials and folds repeat the build)."""
    share = getattr(encoder, "truncated_share_", 0.0)
    if share <= TRUNCATION_WARNING_SHARE or getattr(encoder, "linear", False):
        return
    column, length = spec.columns[0], encoder.max_length
    if not _first_time(warned, ("truncated", column, name, length)):
        return
    unit = getattr(encoder, "token_unit", TOKEN_UNIT)
    limit = getattr(encoder, "max_length_limit", None)  # (an encoder that reads no more says so)
    longer = max(256, 2 * length) if limit is None else min(max(256, 2 * length), limit)
    more = (f"To read more: encoders={{{column!r}: {{'name': {name!r}, 'max_length': {longer}}}}}" if longer > length
            else f"{name} reads at most {limit}: to read more, another text encoder (e.g. 'hashed_ngram' with a "
                 "larger max_length)")
    warnings.warn(f"column {column!r}: {share:.0%} of the training texts are longer than {name}'s max_length={length} "
                  f"tokens ({unit}); only their first {length} are read. {more}", AutoMMWarning,
                  stacklevel=user_stacklevel())


def _warn_fit_findings(spec: InputSpec, encoder: Any, warned: set | None = None) -> None:
    """Warn with each message ``encoder`` (each part of a stack) left in ``fit_warnings_`` about
    the training values of ``spec``, after its column's name; once per column and kind of message
    in ``warned`` (its numbers and quoted examples aside: each fold's and trial's share differs a
    little, and its example may be another of its rows')."""
    parts = encoder.parts if isinstance(encoder, EncoderStack) else [encoder]
    messages = [m for part in parts for m in (getattr(part, "fit_warnings_", None) or ())]
    if not messages:
        return
    column = spec.columns[0] if len(spec.columns) == 1 else spec.name
    for message in dict.fromkeys(str(m) for m in messages):
        if _first_time(warned, ("fit", column, re.sub(r"\d+", "#", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)))):
            warnings.warn(f"column {column!r}: {message}", AutoMMWarning, stacklevel=user_stacklevel())


def build_model(inputs: Sequence[InputSpec], config: dict, n_outputs: int,
                fit_values: dict[str, list[Any]] | None = None,
                states: dict[str, dict] | None = None, warned: set | None = None) -> MultimodalNet:
    """Encoders (fitted on ``fit_values`` or restored from ``states``), fusion and head; a fit's
    warnings about its texts are given once per ``warned`` (:attr:`PreparedData.warned`)."""
    reg = _registry.get_registry()
    groups = _shared_groups(config, [spec.name for spec in inputs])
    encoders = {}
    for spec in inputs:
        if spec.name not in config["encoders"]:  # a configuration may leave an input out (automm.linear)
            continue
        group = groups.get(spec.name)
        if group is not None and group[0] != spec.name:  # the encoder of its group's first input
            encoders[spec.name] = encoders[group[0]]
            continue
        encoder = _make_encoder(spec, config, reg)
        if fit_values is not None:
            encoder.fit(fit_values[spec.name] if group is None
                        else [value for name in group for value in fit_values[name]])
            _warn_truncated(spec, encoder, _split(config["encoders"][spec.name])[0], warned)
            _warn_fit_findings(spec, encoder, warned)
        elif states is not None:
            encoder.set_state(states.get(spec.name, {}))
        encoders[spec.name] = encoder
    input_dims = {name: int(enc.output_dim) for name, enc in encoders.items()}
    fusion_name, fusion_params = _split(config["fusion"])
    fusion_spec = reg.get("fusion", fusion_name)
    try:
        with building(fusion_spec, fusion_params, f" for inputs {input_dims} (n_outputs={n_outputs})"):
            fusion = fusion_spec.factory(input_dims, n_outputs, **fusion_params)
    except PluginError as exc:  # which is at fault: the inputs, or the hyperparameters?
        raise PluginError(f"{exc}{_fusion_failure_hint(fusion_spec, input_dims, n_outputs, fusion_params)}") \
            from exc.__cause__
    return MultimodalNet(encoders, fusion, n_outputs, head_dropout=config["training"].get("head_dropout", 0.1),
                         fusion_label=fusion_spec.label,
                         encoder_labels={name: _encoder_label(config["encoders"][name], reg) for name in encoders})


def with_shared_encoders(config: dict, inputs: Sequence[InputSpec]) -> dict:
    """``config`` with ``"shared_encoders"``, the groups of inputs that share one encoder, where
    its fusion compares pairs (tagged ``"pairs"``: ``compare``): the inputs of one modality whose
    encoder choices are the same and not frozen (a frozen pretrained encoder's network is shared
    already) share one module, fitted on all their values, as siamese matching models do. On
    fashion pairs, 2,000 training pairs, ``fusion="compare"`` without a search, 6-8 epochs: two
    titles' ``hashed_ngram`` 0.882 -> 0.943 test accuracy, two photos' ``cnn`` 0.794 -> 0.837.
    A new dict; ``config`` itself where nothing is shared or it says already."""
    if "shared_encoders" in config:
        return config
    reg = _registry.get_registry()
    fusion = config["fusion"]["name"]
    if fusion not in reg.names("fusion") or "pairs" not in reg.get("fusion", fusion).tags:
        return config
    groups: dict[tuple[str, str], list[str]] = {}
    for spec in inputs:
        choice = config["encoders"].get(spec.name)
        if choice is None or choice["name"] == STACK:
            continue
        try:
            if all(frozen for frozen, _ in _part_flags(spec, choice)):
                continue
        except Exception:  # noqa: BLE001 - an encoder that does not build: training says why
            continue
        groups.setdefault((spec.modality, json.dumps(choice, sort_keys=True, default=str)), []).append(spec.name)
    shared = [names for names in groups.values() if len(names) > 1]
    return {**config, "shared_encoders": shared} if shared else config


def _shared_groups(config: Mapping[str, Any], order: Sequence[str]) -> dict[str, list[str]]:
    """Each input of ``config``'s ``shared_encoders`` -> its group, in the inputs' ``order``; an
    InputError where a group is not two or more inputs of the configuration with one encoder choice."""
    listed = config.get("shared_encoders") or []
    groups: dict[str, list[str]] = {}
    for group in listed if isinstance(listed, (list, tuple)) else [listed]:
        names = list(group) if isinstance(group, (list, tuple)) else [group]
        if len(names) < 2 or len(set(map(str, names))) < len(names) \
                or any(name not in config["encoders"] or name in groups for name in names):
            raise InputError(f"shared_encoders: each group must name two or more of the configuration's inputs "
                             f"({', '.join(config['encoders'])}), each in one group; got {listed!r}")
        if any(config["encoders"][name] != config["encoders"][names[0]] for name in names):
            raise InputError(f"shared_encoders: the inputs {names} share one encoder, so their encoder choices must "
                             f"be the same; got {[config['encoders'][name] for name in names]}")
        ordered = sorted(names, key=lambda name: order.index(name) if name in order else len(order))
        groups.update({name: ordered for name in names})
    return groups


def _fusion_failure_hint(spec: Any, input_dims: dict, n_outputs: int, params: Mapping[str, Any]) -> str:
    """What to say of a fusion whose factory failed: with its default hyperparameters on the
    same inputs it builds (the hyperparameters given are what it refuses), or it does not (the
    inputs: a fusion must take whatever inputs the data have)."""
    defaults = dict(spec.defaults)
    if dict(params) != defaults:
        try:
            with all_warnings_left_out():  # (trials run in threads on GPUs)
                spec.factory(dict(input_dims), n_outputs, **defaults)
            return ("; with its default hyperparameters it builds for these inputs: the ones above are what it "
                    "refuses (narrow its search space, or fix its factory)")
        except Exception:  # noqa: BLE001 - the inputs, then
            pass
    return FUSION_INPUTS_HINT


def _encoder_label(choice: Any, reg) -> str:
    """How messages name an input's encoder: ``encoder 'shout' (plugin 'automm_shout')``, or a stack's parts."""
    name, _ = _split(choice)
    return f"encoder {describe_encoder(choice)}" if name == STACK else reg.get("encoder", name).label


def _augmentations(config: dict) -> tuple[dict[str, list], list]:
    reg = _registry.get_registry()
    per_modality: dict[str, list] = {}
    batch = []
    for choice in config.get("augmentations", []):
        name, params = _split(choice)
        component = reg.get("augmentation", name)
        with building(component, params):
            aug = component.factory(**params)
        if component.modality == "batch":
            batch.append(CheckedBatchAugmentation(aug, component.label))
        else:
            per_modality.setdefault(component.modality, []).append(
                CheckedAugmentation(aug, component.modality, component.label))
    return per_modality, batch


def train_candidate(data: PreparedData, config: dict, *, deadline: float | None = None,
                    callbacks: Sequence[Callback] = (), verbose: int = 0,
                    device: torch.device | None = None, seed: int | None = None,
                    stop_on_interrupt: bool = False, progress_label: str = "automm") -> Candidate:
    """Build and train one candidate; the returned model holds its best epoch's weights; with
    ``verbose``, its epochs' progress is shown under ``progress_label`` (a bag's: the fold's).
    With ``stop_on_interrupt``, Ctrl-C after the first scored epoch ends training with the best
    epoch so far (``interrupted`` is then set) instead of raising ``KeyboardInterrupt`` (the
    gradient-boosted model: after its first iteration, with the iterations grown).
    A configuration with ``training.solver == "lbfgs"`` is the search's linear model
    (:func:`automm.linear.train_linear`); one with ``"neighbors"`` (or the ``neighbors`` fusion)
    a nearest-neighbour model (:func:`automm.neighbors.train_neighbors`); one with ``"boosting"``
    (or the ``boosted_trees`` encoder) a gradient-boosted model (:func:`automm.boosting.train_boosting`)."""
    start = time.monotonic()
    training = config["training"]
    if training.get("solver") == LINEAR_SOLVER:
        return train_linear(data, config, deadline=deadline)
    if is_neighbors(config):
        return train_neighbors(data, config, deadline=deadline)
    if is_boosted(config):
        return train_boosting(data, config, deadline=deadline, stop_on_interrupt=stop_on_interrupt)
    seed = data.seed + int(training.get("seed_offset", 0)) if seed is None else int(seed)
    device = device or data.device
    with _SEEDED_BUILDS:  # trials in GPU threads share torch's generators: one seeds and builds at a time
        torch.manual_seed(seed)
        model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index),
                            warned=data.warned)
    # Encoder.prepare hook: once per input with every value (train + valid), before the loaders.
    for name, encoder in model.encoders.items():
        encoder.prepare(data.values[name], cache_dir=data.cache_dir)
    sample_augs, batch_augs = _augmentations(config)
    encoders = dict(model.encoders.items())
    collate = BatchCollator(encoders)
    batch_size = int(training["batch_size"])
    pin = device.type == "cuda"
    # (rows named by their position in X; the user's X_val rows follow X's, so are not named so)
    columns = single_columns(data.inputs)
    train_set = MultimodalDataset(data.subset(data.train_index), encoders, data.targets[data.train_index],
                                  sample_augs, seed, reuse=True, columns=columns,
                                  row_names=RowNames(data.train_index))
    valid_set = MultimodalDataset(data.subset(data.valid_index), encoders, data.valid_targets, None, seed, reuse=True,
                                  columns=columns, row_names=None if data.holdout_given else RowNames(data.valid_index))
    train_loader = make_loader(train_set, batch_size, True, data.num_workers, seed, collate, pin)
    valid_loader = make_loader(valid_set, batch_size * 2, False, data.num_workers, seed, collate, pin)
    trainer_config = TrainingConfig(
        max_epochs=int(training["max_epochs"]), learning_rate=float(training["learning_rate"]),
        weight_decay=float(training["weight_decay"]), label_smoothing=float(training["label_smoothing"]),
        patience=int(training["patience"]), problem_type=data.problem_type, class_weights=data.class_weights,
        metric=data.metric, amp=data.amp, deadline=deadline, seed=seed, stop_on_interrupt=stop_on_interrupt)
    all_callbacks = [EarlyStopping(trainer_config.patience), *callbacks]
    if verbose:
        all_callbacks.append(ProgressBar(trainer_config.max_epochs, progress_label, records=verbose >= 2,
                                         score_name=lambda score: score_label(data, score)))
    trainer = Trainer(model, trainer_config, device, all_callbacks, batch_augs)
    trainer.fit(train_loader, valid_loader, data.valid_targets, data.weights(data.train_index), data.valid_weights)
    return Candidate(config=config, model=trainer.model.eval(), history=trainer.history,
                     best_epoch=trainer.best_epoch, best_score=trainer.best_score,
                     valid_outputs=trainer.best_valid_outputs, stop_reason=trainer.stop_reason or "max_epochs reached",
                     seconds=time.monotonic() - start, interrupted=trainer.interrupted)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the machine or the GPU ran out of memory."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, (MemoryError, oom_type)) or (isinstance(exc, RuntimeError) and (
        "out of memory" in str(exc) or "CUBLAS_STATUS_ALLOC_FAILED" in str(exc)))  # (cuBLAS's handle, made per thread)


#: Held while a trial seeds torch's generators and builds its model: trials in GPU threads (one
#: process) share those generators, and another thread's seeding between would change the weights.
_SEEDED_BUILDS = threading.Lock()


def retry_with_smaller_batches(train: Callable[[dict], Candidate], config: dict, device: torch.device,
                               on_retry: Callable[[int, int], None] | None = None) -> Candidate:
    """``train(config)``; on CUDA, after running out of GPU memory, again with half the batch
    size, until it fits (or the batch is 1 and the error is raised). ``on_retry(batch, smaller)``
    is told of each retry. ``config`` itself is not changed: a retry trains a copy, which the
    candidate returned carries."""
    import copy
    import gc

    while True:
        batch = int(config["training"]["batch_size"])
        try:
            return train(config)
        except Exception as exc:
            if device.type != "cuda" or not is_out_of_memory(exc) or batch <= 1:
                raise
        # out of the except block, so that the failed attempt's tensors can be freed
        gc.collect()
        torch.cuda.empty_cache()
        config = copy.deepcopy(config)
        config["training"]["batch_size"] = batch // 2
        if on_retry is not None:
            on_retry(batch, batch // 2)


def all_encoders_frozen(inputs: Sequence[InputSpec], config: dict) -> bool:
    """Whether every encoder of ``config`` declares itself ``frozen`` (pretrained weights that
    never change, outputs cached). Such a candidate trains only its fusion and head on the
    same features in every trial, in seconds: it can afford k-fold bagging."""
    return all(frozen for spec in inputs if spec.name in config["encoders"]
               for frozen, _ in _part_flags(spec, config["encoders"][spec.name]))


def _configured_encoders(data: PreparedData, config: dict):
    """``(input spec, its unfitted encoder)`` for each input of ``config``."""
    reg = _registry.get_registry()
    for spec in data.inputs:
        if spec.name in config["encoders"]:
            yield spec, _make_encoder(spec, config, reg)


def _pending_work(data: PreparedData, config: dict):
    """``(input spec, its unfitted encoder, the share of its values with one-off work pending)``
    for each input of ``config`` (:meth:`automm.Encoder.pending_share`)."""
    for spec, encoder in _configured_encoders(data, config):
        yield spec, encoder, float(encoder.pending_share(data.values[spec.name], cache_dir=data.cache_dir))


def pending_share(data: PreparedData, config: dict) -> float:
    """The largest share of an input's values whose one-off work ``config``'s encoders would
    still do before training (:meth:`automm.Encoder.pending_share`: a frozen pretrained
    encoder's features not yet cached); 0.0 when there is none."""
    return max((share for _, _, share in _pending_work(data, config)), default=0.0)


def distinct_values(values: Sequence[Any]) -> set | None:
    """The distinct present values of ``values`` (image paths, texts); ``None`` when some cannot
    be hashed (image arrays, PIL images)."""
    try:
        return {value for value in values if value is not MISSING}
    except TypeError:
        return None


def _distinct_count(values: Sequence[Any]) -> int:
    """How many distinct present values ``values`` holds (all of them when some cannot be hashed,
    e.g. image arrays)."""
    distinct = distinct_values(values)
    return len(values) if distinct is None else len(distinct)


def pending_seconds(data: PreparedData, config: dict) -> dict[str, float]:
    """Estimated seconds of the one-off work ``config``'s encoders would do before training,
    per input that has any: for each encoder (each part of a stack), the share of the input's
    values it has pending (:meth:`automm.Encoder.pending_share`) x the number of values x its
    seconds per new value (:meth:`automm.Encoder.prepare_seconds`, which a frozen pretrained
    encoder times once per process on a few values)."""
    seconds: dict[str, float] = {}
    for spec, encoder in _configured_encoders(data, config):
        values = data.values[spec.name]
        shares = [(part, float(part.pending_share(values, cache_dir=data.cache_dir)))
                  for part in (encoder.parts if isinstance(encoder, EncoderStack) else [encoder])]
        pending = [(part, share) for part, share in shares if share > 0]
        if not pending:
            continue
        distinct = _distinct_count(values)  # prepare computes each value once, however often it repeats
        total = sum(share * distinct * float(part.prepare_seconds(values)) for part, share in pending)
        if total > 0:
            seconds[spec.name] = total
    return seconds


def prepare_encoders(data: PreparedData, config: dict) -> None:
    """Do now, for every row, the one-off work that ``config``'s encoders have pending
    (:func:`pending_share`), so that what follows starts after it: :func:`train_bagged`'s folds
    then share the time left rather than the first fold spending its share on it. Each such
    encoder is fitted on the training rows and prepared as :func:`train_candidate` does, then
    dropped (what stays is its cache); encoders with nothing pending are not touched."""
    train_values = None
    for spec, encoder, share in _pending_work(data, config):
        if share > 0:
            train_values = data.subset(data.train_index) if train_values is None else train_values
            encoder.fit(train_values[spec.name])
            encoder.prepare(data.values[spec.name], cache_dir=data.cache_dir)


def augmentable_modalities(inputs: Sequence[InputSpec], config: dict) -> set[str]:
    """The modalities whose per-sample augmentations can act in ``config``: those of the inputs
    whose encoder applies ``augment`` (every encoder but one with ``static_preprocess``, such as a
    frozen pretrained encoder reading cached features; a stack applies it when any part does).
    An augmentation of another modality would change nothing in a trial, so the search neither
    samples nor lists it (:meth:`automm.search_space.SearchSpace.suggest`)."""
    return {spec.modality for spec in inputs if spec.name in config["encoders"]
            and not all(static for _, static in _part_flags(spec, config["encoders"][spec.name]))}


def without_inert_augmentations(config: dict, inputs: Sequence[InputSpec]) -> dict:
    """``config`` without the per-sample augmentations that cannot act on its encoders (those of
    a modality outside :func:`augmentable_modalities`: its inputs read cached features), so that
    the leaderboard and ``augmentation_choices_`` list only what the model trained with. A new
    dict; ``config`` itself when nothing is dropped."""
    listed = config.get("augmentations") or []
    if not listed:
        return config
    reg = _registry.get_registry()
    live = augmentable_modalities(inputs, config) | {"batch"}
    components = [reg.get("augmentation", a["name"]) for a in listed]
    kept = [a for a, c in zip(listed, components) if c.modality in live and augmentation_can_act(c, len(inputs))]
    return config if len(kept) == len(listed) else {**config, "augmentations": kept}


def augmentation_can_act(component: Any, n_inputs: int) -> bool:
    """Whether the registered augmentation ``component`` can change anything with ``n_inputs``
    inputs (:attr:`automm.BatchAugmentation.min_inputs`: modality dropout needs two)."""
    return n_inputs >= int(getattr(component.factory, "min_inputs", 1) or 1)


def _part_flags(spec: InputSpec, choice: dict):
    """(frozen, static_preprocess) of each registered encoder input ``spec``'s choice consists of."""
    reg = _registry.get_registry()
    for part in encoder_parts(choice):
        name, params = _encoder_arguments(spec, part)
        component = reg.get("encoder", name)
        with building(component, params, f" for input {spec.name!r}"):
            flags = _encoder_flags(component.factory, json.dumps(params, sort_keys=True, default=str))
        yield flags


def _is_frozen(factory: Any, params_json: str) -> bool:
    return _encoder_flags(factory, params_json)[0]


@functools.lru_cache(maxsize=256)
def _encoder_flags(factory: Any, params_json: str) -> tuple[bool, bool]:
    # (frozen, static_preprocess): both follow from an encoder's constructor arguments;
    # building one can load pretrained weights, so each choice is built once per process.
    encoder = factory(**json.loads(params_json))
    return bool(getattr(encoder, "frozen", False)), bool(getattr(encoder, "static_preprocess", False))


#: ``batch_size="auto"`` is multiplied by this for a candidate whose encoders are all frozen.
#: Its fusion and head train on feature vectors, where each step's fixed cost dominates: on
#: 2 CPU cores, frozen EfficientNet-Lite0 + MiniLM bags took 174 s at batch 32, 82 s at 128 and
#: 56 s at 256 (fashion subCategory; test accuracy 0.9914, 0.9925, 0.9930).
FROZEN_BATCH_SCALE = 8


def scale_frozen_batch(config: dict, inputs: Sequence[InputSpec], scale: int) -> dict:
    """``config`` with its batch size multiplied by ``scale`` when every encoder is frozen
    (a new dict; ``config`` itself when nothing changes)."""
    if scale <= 1 or not all_encoders_frozen(inputs, config):
        return config
    training = dict(config["training"], batch_size=int(config["training"]["batch_size"]) * int(scale))
    return {**config, "training": training}


def trainable_config(config: dict, inputs: Sequence[InputSpec], frozen_batch_scale: int) -> dict:
    """``config`` as it trains: without inert augmentations (:func:`without_inert_augmentations`),
    with its shared encoders (:func:`with_shared_encoders`) and its frozen batch scaled
    (:func:`scale_frozen_batch`); ``config`` itself when nothing changes."""
    return scale_frozen_batch(with_shared_encoders(without_inert_augmentations(config, inputs), inputs), inputs,
                              frozen_batch_scale)


def bag_folds_for(bag_folds: Any, data: PreparedData, config: dict) -> int:
    """The number of folds a candidate trains: ``bag_folds`` when it is a number, and for
    ``"auto"`` :data:`AUTO_BAG_FOLDS` when every encoder is frozen, else 1 (the holdout). The
    linear, nearest-neighbour and gradient-boosted models (a ``training.solver``) are never bagged:
    they are fitted again on every row once their settings are chosen on the holdout."""
    if config["training"].get("solver") == LINEAR_SOLVER or is_neighbors(config) or is_boosted(config):
        return 1
    if bag_folds == "auto":
        return AUTO_BAG_FOLDS if all_encoders_frozen(data.inputs, config) else 1
    return int(bag_folds or 1)


#: Folds of ``bag_folds="auto"`` for candidates whose encoders are all frozen.
AUTO_BAG_FOLDS = 5


def _folds(data: PreparedData, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train rows, validation rows) splits of every row of ``data``, stratified
    for classification (:func:`_spread_folds` where every class has fewer rows than folds): a class of fewer rows
    (a class of one row) is spread over as many folds as it has rows, so that every fold
    model trains on a class of 2 or more rows (unstratified, fashion subCategory's class of
    2 rows fell in one fold for 4 of 20 seeds: out of fold, no model had seen it)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = data.rows
    targets = data.targets[rows]
    stratify = False
    if data.problem_type != "regression":
        counts = np.bincount(targets.astype(np.int64))
        stratify = bool(counts.max() >= n_folds)
        if not stratify and len(rows) >= n_folds:  # every class smaller than the folds (tiny data):
            return _spread_folds(rows, targets.astype(np.int64), n_folds, data.seed)  # StratifiedKFold refuses
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=data.seed % (2**32)) if stratify
                else KFold(n_folds, shuffle=True, random_state=data.seed % (2**32)))
    with warnings_left_out(UserWarning, "The least populated class"):  # ("... in y has only 1 members"): as intended
        return [(rows[a], rows[b]) for a, b in splitter.split(rows, targets if stratify else None)]


def _spread_folds(rows: np.ndarray, targets: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds of ``rows`` that spread each class's rows over distinct folds (dealt in turn, in a
    random order, the folds' sizes kept within one row of each other): where every class has
    fewer rows than folds, unstratified folds put both rows of a class of 2 in one fold for some
    seeds (20 rows, classes of 2-4: a fold model that never saw the class scored its rows)."""
    rng = np.random.RandomState(seed % (2**32))
    fold_of = np.empty(len(rows), dtype=np.int64)
    dealt = 0
    for label in rng.permutation(np.unique(targets)):
        members = rng.permutation(np.flatnonzero(targets == label))
        fold_of[members] = (dealt + np.arange(len(members))) % n_folds
        dealt += len(members)
    return [(rows[fold_of != k], rows[fold_of == k]) for k in range(n_folds)]


#: Metrics that average over classes: their value depends on which classes the rows hold.
CLASS_AVERAGED_METRICS = ("balanced_accuracy", "macro_f1")


def comparable_rows(data: PreparedData, rows: np.ndarray) -> np.ndarray:
    """``rows`` whose out-of-fold score is comparable with a holdout score: under a metric that
    averages over classes, the rows of the classes the holdout holds (a class of 2 rows that the
    holdout lacks would otherwise weigh 1/k of a bag's score and nothing of the other trials')."""
    if data.problem_type == "regression" or data.metric not in CLASS_AVERAGED_METRICS:
        return rows
    present = np.unique(data.targets[data.valid_index].astype(np.int64))
    kept = rows[np.isin(data.targets[rows].astype(np.int64), present)]
    return kept if len(kept) else rows


def scored_on(data: PreparedData, candidate: Candidate) -> tuple[str, int]:
    """(what, rows) a candidate's ``best_score`` was measured on: ``"out-of-fold"`` (a bag's
    outputs over the training rows, of the holdout's classes under a class-averaged metric:
    :func:`comparable_rows`), ``"X_val"`` (the user's validation rows), ``"training rows"``
    (too few rows to hold any out) or ``"holdout"``."""
    if candidate.scored_on is not None:
        return candidate.scored_on
    return rows_scored_on(data, bagged=candidate.oof_outputs is not None)


def rows_scored_on(data: PreparedData, bagged: bool) -> tuple[str, int]:
    """(what, rows) a model's score was measured on (:func:`scored_on`), ``bagged``: scored on its
    folds' outputs."""
    if data.holdout_given:
        return "X_val", len(data.valid_index)
    if bagged:
        return "out-of-fold", len(comparable_rows(data, data.rows))
    if np.array_equal(data.train_index, data.valid_index):
        return "training rows", len(data.valid_index)
    return "holdout", len(data.valid_index)


def validation_r2(data: PreparedData, score: float | None, on: str) -> float | None:
    """The R² of a regression whose holdout score ``score`` is the negated mean squared error of
    the standardised targets, measured on the rows ``on`` names (:func:`scored_on`: a bag's or an
    ensemble's out-of-fold rows, else the holdout's): 1 - MSE / the (weighted) variance of those
    rows' targets, as ``sklearn.metrics.r2_score`` computes it. None for classification, for
    ``metric="mae"`` (its score is no squared error), for a score that is not finite and for rows
    whose targets are all the same."""
    if data.problem_type != "regression" or data.metric == "mae" or score is None or not math.isfinite(score):
        return None
    rows = comparable_rows(data, data.rows) if on == "out-of-fold" else data.valid_index
    targets, weights = data.targets[rows].astype(np.float64), data.weights(rows)
    if not len(rows) or (weights is not None and not np.sum(weights) > 0):
        return None
    variance = float(np.average((targets - np.average(targets, weights=weights)) ** 2, weights=weights))
    return 1.0 + float(score) / variance if variance > 0 else None


def validation_mae(data: PreparedData, score: float | None) -> float | None:
    """The mean absolute error in the target's units of a regression under ``metric="mae"``, whose
    holdout score ``score`` is the negated error of the standardised targets; None for any other
    metric, a score that is not finite or an unknown target scale."""
    if data.problem_type != "regression" or data.metric != "mae" or data.target_scale is None or score is None \
            or not math.isfinite(score):
        return None
    return -float(score) * data.target_scale


def score_label(data: PreparedData, score: float, on: str = "holdout") -> tuple[str, float]:
    """A holdout ``score`` as the verbose output shows it, named: a regression ranked by squared
    error as its R² on the rows ``on`` names (``("r2", 0.41)``: :func:`validation_r2`), under
    ``metric="mae"`` as its error in the target's units (``("mae", 972.5)``: :func:`validation_mae`),
    else as it is, under its metric's name (``("accuracy", 0.83)``)."""
    r2 = validation_r2(data, score, on)
    if r2 is not None:
        return "r2", r2
    mae = validation_mae(data, score)
    if mae is not None:
        return "mae", mae
    return holdout_score_name(data.metric, data.problem_type), float(score)


def score_text(data: PreparedData, score: float, on: str = "holdout") -> str:
    """A ``score`` measured on the rows ``on`` names (:func:`scored_on`) as messages show it, named
    (:func:`score_label`): ``"holdout accuracy 0.8333"``, ``"out-of-fold r2 0.4100"``."""
    name, value = score_label(data, score, on)
    return f"{on} {name} {four_places(value)}"


def candidate_score_text(data: PreparedData, candidate: Candidate) -> str:
    """:func:`score_text` of a candidate's ``best_score``, on the rows :func:`scored_on` names."""
    return score_text(data, candidate.best_score, scored_on(data, candidate)[0])


def train_bagged(data: PreparedData, config: dict, n_folds: int, *, deadline: float | None = None,
                 callbacks: Sequence[Callback] = (), first_fold_callbacks: Sequence[Callback] = (), verbose: int = 0,
                 device: torch.device | None = None,
                 on_fold_end: Callable[[int, int, float], bool] | None = None,
                 stop_on_interrupt: bool = False) -> Candidate:
    """Train ``config`` once per fold of a k-fold split of all the rows (training and holdout
    together) and return the bag: its fold models predict by averaging (see
    :mod:`automm.ensemble`), and its score and loss are those of the out-of-fold outputs, one
    per row, so a search ranks bagged candidates on every row rather than on the small holdout.
    ``valid_outputs`` are the out-of-fold outputs of the holdout rows (comparable with an
    unbagged candidate's). When the holdout is the user's validation data
    (``data.holdout_given``), the folds split the training rows only, and the bag's score, loss
    and ``valid_outputs`` are its averaged fold models' on the validation rows (no
    ``oof_outputs``). ``callbacks`` (the user's) see every fold, ``first_fold_callbacks`` (the
    search's pruning reporter) the first fold only; when it stops that fold early (pruned), the
    other folds are not trained and the first fold's candidate comes back unbagged, without
    holdout outputs. ``on_fold_end(done, n_folds, score)``, when given, is called after every
    fold but the last with the out-of-fold score of the rows of the folds done so far (computed only then); when it
    returns True (pruned) the bag stops there and comes back the same way, its score that
    partial out-of-fold score. Each fold may use an equal share of the time left before
    ``deadline``; a fold that it stops inside its first epoch (:attr:`Candidate.cut_in_first_epoch`)
    ends the bag the same way, its score that of the folds trained before (the first fold: as
    it is, for the search to judge). With ``stop_on_interrupt``, Ctrl-C ends the bag with the fold models finished
    so far (the first fold alone, at its best epoch so far, when it is the one interrupted):
    ``interrupted`` is set, and there are no out-of-fold or holdout outputs. A bag that ends before
    its last fold says what its score was measured on (``scored_on``): the first fold's own rows, or
    the rows of the folds done, out of fold (not the holdout, nor ``X_val``, which it never saw)."""
    start = time.monotonic()
    folds = _folds(data, n_folds)
    oof = None
    first_fold_rows = ("out-of-fold", len(folds[0][1]))  # the first fold model's score: on its own held-out rows

    def oof_rows(done: int) -> np.ndarray:
        """The rows of the first ``done`` folds that their out-of-fold score counts."""
        return comparable_rows(data, np.concatenate([valid for _, valid in folds[:done]]))

    def oof_score(done: int) -> float:
        """The out-of-fold score of the rows of the first ``done`` folds."""
        rows = oof_rows(done)
        return validation_metrics(oof[rows], data.targets[rows], data.problem_type != "regression",
                                  data.weights(rows), data.metric)[1]

    prepare_encoders(data, config)  # before the folds share the time: see prepare_encoders
    models = []
    first = None
    for index, (train_rows, valid_rows) in enumerate(folds):
        fold_deadline = None
        if deadline is not None:
            fold_deadline = time.monotonic() + (deadline - time.monotonic()) / (n_folds - index)
        fold_data = replace(data, train_index=train_rows, valid_index=valid_rows)
        try:
            fold = train_candidate(fold_data, config, deadline=fold_deadline,
                                   callbacks=[*callbacks, *first_fold_callbacks] if index == 0 else callbacks,
                                   verbose=verbose, device=device, stop_on_interrupt=stop_on_interrupt,
                                   progress_label=f"automm fold {index + 1}/{n_folds}")
        except KeyboardInterrupt:
            if not (stop_on_interrupt and models):
                raise
            fold = None
        if fold is None or fold.interrupted:
            if not models:  # the first fold: its best epoch so far
                return replace(fold, valid_outputs=None, seconds=time.monotonic() - start, scored_on=first_fold_rows,
                               stop_reason=f"{fold.stop_reason} of fold 1 of {n_folds}: kept its epoch "
                                           f"{fold.best_epoch}")
            reason = (f"interrupted (KeyboardInterrupt) in fold {index + 1} of {n_folds}: kept the {len(models)} "
                      f"fold model{'s' if len(models) > 1 else ''} trained")
            return Candidate(config=config, model=first.model, history=first.history, best_epoch=first.best_epoch,
                             best_score=first.best_score, valid_outputs=None, stop_reason=reason,
                             seconds=time.monotonic() - start, bag=models if len(models) > 1 else None,
                             interrupted=True, scored_on=first_fold_rows)
        if index == 0:
            first = fold
            if fold.stop_reason.startswith("pruned") or fold.cut_in_first_epoch:
                return replace(fold, valid_outputs=None, seconds=time.monotonic() - start, scored_on=first_fold_rows)
        elif fold.cut_in_first_epoch:  # its out-of-fold outputs would be those of an untrained model
            return replace(first, valid_outputs=None, best_score=oof_score(index), seconds=time.monotonic() - start,
                           scored_on=("out-of-fold", len(oof_rows(index))),
                           stop_reason=f"{fold.cut_in_first_epoch} of fold {index + 1} of {n_folds}: kept fold 1, "
                                       f"scored out of fold on the {index} fold{'s' if index > 1 else ''} trained")
        if fold.valid_outputs is None:
            raise FloatingPointError(f"fold {index + 1} of {n_folds} has no finite validation outputs")
        if oof is None:
            oof = np.zeros((len(data.targets), fold.valid_outputs.shape[1]), dtype=np.float32)
        oof[valid_rows] = fold.valid_outputs
        models.append(fold.model)
        if on_fold_end is not None and index + 1 < n_folds:
            partial = oof_score(index + 1)
            if on_fold_end(index + 1, n_folds, partial):
                return replace(first, valid_outputs=None, best_score=partial, seconds=time.monotonic() - start,
                               scored_on=("out-of-fold", len(oof_rows(index + 1))),
                               stop_reason=f"pruned after fold {index + 1} of {n_folds}")
    classification = data.problem_type != "regression"
    if data.holdout_given:  # the bag is scored on the user's validation rows, which it never trained on
        outputs = _bag_outputs(models, data, data.valid_index, config, device or data.device)
        loss, score = validation_metrics(outputs, data.valid_targets, classification, data.valid_weights,
                                         data.metric)
        return Candidate(config=config, model=first.model, history=first.history, best_epoch=first.best_epoch,
                         best_score=score, valid_outputs=outputs, stop_reason=first.stop_reason,
                         seconds=time.monotonic() - start, bag=models, oof_loss=loss)
    rows = data.rows
    loss = validation_metrics(oof[rows], data.targets[rows], classification, data.weights(rows), data.metric)[0]
    scored = comparable_rows(data, rows)
    score = validation_metrics(oof[scored], data.targets[scored], classification, data.weights(scored),
                               data.metric)[1]
    return Candidate(config=config, model=first.model, history=first.history, best_epoch=first.best_epoch,
                     best_score=score, valid_outputs=oof[data.valid_index], stop_reason=first.stop_reason,
                     seconds=time.monotonic() - start, bag=models, oof_outputs=oof, oof_loss=loss)


def _bag_outputs(models: Sequence[MultimodalNet], data: PreparedData, index: np.ndarray, config: dict,
                 device: torch.device) -> np.ndarray:
    """The bag's outputs on rows ``index``: its fold models' probabilities averaged (as
    log-probabilities; values averaged for regression), as the ensemble pools them."""
    from .ensemble import combine

    outputs = []
    for model in models:
        encoders = dict(model.encoders.items())
        loader = make_loader(MultimodalDataset(data.subset(index), encoders), int(config["training"]["batch_size"]) * 2,
                             False, data.num_workers, data.seed, BatchCollator(encoders), device.type == "cuda")
        outputs.append(model_outputs(model, loader, device, amp=data.amp))  # as the fold models will predict
    return combine(outputs, [1.0] * len(outputs), data.problem_type)
