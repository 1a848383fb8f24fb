"""The scikit-learn estimators: :class:`AutoMM`, :class:`AutoMMClassifier`, :class:`AutoMMRegressor`."""

from __future__ import annotations

import copy
import decimal
import inspect
import math
import numbers
import os
import random
import re
import sys
import time
import warnings
import weakref
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, Union

import numpy as np
import optuna  # (the parameters' types: a tenth of a second after torch and scikit-learn)
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from . import registry as _registry
from .components.base import UNFAMILIAR_MIN_VALUES, Encoder
from .components.stack import EncoderStack
from .components.image_cache import image_cache
from .data import (InputSpec, Table, as_table, choice_key, build_input_specs, declared_categorical, infer_roles, is_missing,
                   checks_of, say_column_notes, reordered_index, row_namer, row_naming, rows_repeated, rows_without_input, table_like,
                   validate_columns, warn_once, warn_unused_modalities, warned_once_in)
from .exceptions import (AutoMMWarning, InputError, NotFittedError, TimeLimitExceeded, UnknownComponentError,
                         user_stacklevel)
from .data import BatchCollator, MultimodalDataset, RowNames, _records, single_columns
from .process_state import SharedChange, note_torch_threads, torch_threads_after_fork, torch_threads_capped, \
    usable_cpus, warnings_left_out
from .migrating import FOREIGN_KEYWORDS, FOREIGN_METHODS
from .roles import BASE_ROLES
from .suggestions import NAMES_SHOWN, shown_names, shown_roles
from .storage import check_storage
from .deadlines import CUT_BEFORE_LEARNING, deadline_scope, fit_deadline
from .evaluation import enough_digits
from .feature_cache import check_cache_dir
from .devices import device_scope
from .decision import decide
from .pipeline import (FROZEN_BATCH_SCALE, TRAINING_RULES, Candidate, PreparedData, bag_folds_for, scored_on,
                       candidate_decided_score, candidate_decision_weights, candidate_temperature, finite_number, retry_with_smaller_batches,
                       trainable_config,
                       candidate_score_text, train_bagged, train_candidate, training_value_problem, untimed_epochs_problem,
                       validation_r2, without_inert_augmentations,
                       augmentation_can_act)
from .progress import verbose_logging
from .training import (CALLBACK_HOOKS, Callback, holdout_score_name, make_loader, model_outputs, resolve_device,
                       workers_are_forked)

__all__ = ["AutoMM", "AutoMMClassifier", "AutoMMRegressor", "DEFAULT_ENCODERS", "DEFAULT_AUGMENTATIONS"]

note_torch_threads()  # torch's own count, before the program's code after the import may set another

#: The encoder used for a modality when ``encoders`` does not name one.
DEFAULT_ENCODERS = {"image": "cnn", "text": "hashed_ngram", "tabular": "tabular"}
#: Augmentations used when ``augmentations="default"`` (only those whose modality is present apply).
DEFAULT_AUGMENTATIONS = ("random_resized_crop", "horizontal_flip", "token_dropout", "modality_dropout")
PROBLEM_TYPES = ("auto", "binary", "multiclass", "regression")
#: The fitted attributes that hold networks (their tensors on ``device_``): what a pickled copy of a
#: model on a GPU holds as copies on the CPU (``AutoMM.__getstate__``), marked by ``_NETWORKS_ON_CPU``.
_NETWORK_ATTRIBUTES = ("model_", "ensemble_")
_NETWORKS_ON_CPU = "_networks_pickled_on_the_cpu"


def _networks_in(state: dict) -> list[torch.nn.Module]:
    """The networks of a fitted model's attributes ``state``: ``model_`` and each ensemble member's."""
    members = getattr(state.get("ensemble_"), "members", [])
    return [net for net in [state.get("model_"), *(m.model for m in members)] if isinstance(net, torch.nn.Module)]


def _copied_to_the_cpu(state: dict) -> list:
    """Deep copies of ``state``'s :data:`_NETWORK_ATTRIBUTES` whose parameters and buffers (all a
    network keeps, as a saved model does) are copies on the CPU, made one tensor at a time (no
    second copy on the GPU); what they share stays shared (an ensemble's first member, ``model_``)."""
    memo: dict[int, Any] = {}
    for net in _networks_in(state):
        for tensor in (*net.parameters(), *net.buffers()):
            if id(tensor) not in memo:
                on_cpu = tensor.detach().to("cpu", copy=True)
                memo[id(tensor)] = (torch.nn.Parameter(on_cpu, requires_grad=tensor.requires_grad)
                                    if isinstance(tensor, torch.nn.Parameter) else on_cpu)
    return copy.deepcopy([state[name] for name in _NETWORK_ATTRIBUTES if name in state], memo)


_component_choice = _registry.split_component_choice


def _import_optimizer_machinery() -> None:
    """Build a throwaway torch optimizer: the first one of a process imports ``torch._dynamo``
    (torch wraps ``Optimizer.__init__`` in ``_disable_dynamo``), 3-18 s on 2 CPU cores, which
    would otherwise come out of the first trial's share of ``time_limit`` (the linear model's,
    cut to its first, most regularised fit or failing outright)."""
    if "torch._dynamo" not in sys.modules:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def _barely_trained(candidate: Candidate, time_limit: Any, data: PreparedData) -> str:
    """The warning for a kept model that the time limit stopped inside its first epoch."""
    record = candidate.history[-1]
    batches, planned, seconds = record.get("batches") or 0, record.get("epoch_batches"), record.get("train_seconds")
    epoch = ""
    if batches and planned and seconds:
        epoch = f"; one epoch of it takes about {seconds / batches * planned:.0f} s here"
    return (f"time_limit={time_limit}: the model kept did not finish one pass over the training rows "
            f"({candidate.cut_in_first_epoch}; {candidate_score_text(data, candidate)}){epoch}: more time gives a "
            "better model")


_Method = TypeVar("_Method", bound=Callable[..., Any])
_Estimator = TypeVar("_Estimator", bound="AutoMM")  # AutoMMClassifier.load returns an AutoMMClassifier
_ComponentChoice = Union[str, Mapping[str, Any]]  # a component's name, or {"name": ..., **hyperparameters}



def _explicit_signature(method: _Method) -> _Method:
    """``method``, which takes ``**unknown`` so that a misspelt keyword reaches it (see
    :func:`_unexpected_keyword`), shown without that catch-all: ``inspect.signature`` (read by
    scikit-learn's metadata routing and by IDEs) gives its explicit parameters only."""
    signature = inspect.signature(method)
    method.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD])
    return method


def _unexpected_keyword(owner: Any, method: Callable, unknown: Mapping[str, Any], inputs: tuple = ()) -> TypeError:
    """Python's TypeError for ``unknown`` keywords given to ``method`` of ``owner`` (with the
    positional ``inputs``), with a did-you-mean among the keywords it takes (or, taking none, how
    to pass its inputs: where they were given positionally, that it takes nothing else); a
    keyword of AutoGluon's (``label``, ``tuning_data``, ``as_pandas``) or a parameter of the
    estimator (``time_limit``) says where that is here."""
    from .suggestions import did_you_mean

    name = next(iter(unknown))
    accepted = [p.name for p in inspect.signature(method).parameters.values() if p.kind is p.KEYWORD_ONLY]
    labels = ", y" if "y" in accepted else ""
    positional = (f"; it takes the inputs as positional arguments: {method.__name__}(X{labels}) or "
                  f"{method.__name__}(X_img, X_txt{labels})")
    foreign = FOREIGN_KEYWORDS.get(method.__name__, {}).get(name)
    if foreign is None and method.__name__ == "fit":  # AutoGluon's fit takes presets=, hyperparameters=
        foreign = FOREIGN_KEYWORDS[""].get(name)
    if foreign is not None:
        hint = foreign(unknown[name])
    elif method.__name__ == "fit" and name in owner._get_param_names():
        hint = (f"; {name} is a parameter of {type(owner).__name__}, not of fit: {type(owner).__name__}({name}=...)"
                f".fit(X, y), or model.set_params({name}=...) before fit")
    elif not accepted and inputs and not name.lower().startswith("x"):  # predict(X, realtime=False)
        hint = f"; it takes the inputs only: {method.__name__}(X) or {method.__name__}(X_img, X_txt)"
    else:
        hint = did_you_mean(name, accepted) or (positional if not accepted or name.lower().startswith("x") else "")
    return TypeError(f"{type(owner).__name__}.{method.__name__}() got an unexpected keyword argument {name!r}{hint}")


#: The words a YAML recipe (YAML 1.1, PyYAML) reads as true and as false.
_YAML_BOOLEAN_WORDS = {True: ("yes", "true", "on"), False: ("no", "false", "off")}


def _unknown_labels(name: str, unknown: list, classes: list, verb: str) -> str:
    """``"<name>: labels [...] <verb> [...]"`` for labels of ``name`` that are none of the
    ``classes``: the first 5 of them and 20 of the classes shown (a model of 150 classes listed
    them all: 2 KB), with :func:`_label_hint`'s hint."""
    from .suggestions import quoted_values

    more = f" ({len(unknown)} labels)" if len(unknown) > 5 else ""
    counted = f"the {len(classes)} classes" if len(classes) > 20 else "the classes"
    return (f"{name}: labels [{quoted_values(unknown, 5)}]{more} {verb} {counted} [{quoted_values(classes)}]"
            f"{_label_hint(unknown, classes, name)}")


def _label_hint(unknown: list, classes: list, name: str) -> str:
    """What the first of the ``unknown`` labels (of ``name``: ``class_weight``, ``y_val``) most
    likely stands for: the class written the same as another type (``'1'`` for 1), the class ``yes``,
    ``no``, ``on``, ``off`` that a YAML recipe read as a boolean (``class_weight: {yes: 20}`` is
    ``{True: 20}``), a class written with other case, spaces or Unicode form, a class's position
    in ``classes_`` given for the class, or a misspelt class."""
    from .suggestions import did_you_mean, labels_written_otherwise

    for label in unknown:
        if isinstance(label, bool):
            words = [c for c in classes if isinstance(c, str) and c.lower() in _YAML_BOOLEAN_WORDS[label]]
            if words:
                return (f"; {label!r} is how a YAML recipe reads {words[0]}: quote the label there "
                        f"('{words[0]}': ...)")
        same = [c for c in classes if str(c) == str(label)]
        if same:
            return f"; did you mean {same[0]!r}?"
    if classes == list(range(len(classes))) and all(isinstance(label, str) for label in unknown):
        fix = ("weigh the rows instead: sample_weight= (cross_val_predict's params={'sample_weight': w}) follows "
               "each row" if name == "class_weight" else
               f"give {name} encoded as they encode y, LabelEncoder().fit(y).transform({name})")
        return ("; scikit-learn's cross_val_predict(method='predict_proba'), StackingClassifier and "
                f"CalibratedClassifierCV(ensemble=False) fit on the labels encoded as 0, 1, ...: {fix}")
    written = labels_written_otherwise(unknown, classes)
    if written:
        return written
    if (all(isinstance(c, str) for c in classes)
            and all(isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_))
                    and 0 <= label < len(classes) for label in unknown)):
        return (f"; the labels are the classes themselves ({classes[0]!r}, not 0, its position in classes_), "
                "as y holds them")
    return next((hint for hint in (did_you_mean(label, classes) for label in unknown[:5]) if hint), "")


def _split_labels(args: tuple, y: Any, method: str) -> tuple[tuple, Any]:
    if y is None:
        if len(args) < 2:
            raise InputError(f"{method}: expected inputs followed by labels y, e.g. {method}(X_img, X_txt, y) "
                             f"or {method}(X, y)")
        if len(args) > 2 and _is_table(args[0]):
            # scikit-learn's fit(X, y, sample_weight): here y would be read as an input, the weights as labels
            raise InputError(f"{method}: the first argument is a table ({_table_kind(args[0])}) and {len(args) - 1} "
                             f"more follow; a table is the only input, followed by the labels: {method}(X, y). "
                             f"Positional arguments are the inputs, then the labels, so {method}(X, y, w) would "
                             f"read y as an input and w as the labels: pass sample weights by keyword, "
                             f"{method}(X, y, sample_weight=w)")
        return args[:-1], args[-1]
    return args, y


def _is_table(x: Any) -> bool:
    """Whether ``x`` is a table of several columns (a DataFrame, a dict of columns, a pyarrow
    Table, a 2-D array or sparse matrix of more than one column), not one column of values."""
    import pandas as pd

    if isinstance(x, (pd.DataFrame, Mapping)) or (hasattr(x, "schema") and hasattr(x, "to_pandas")):
        return True
    shape = getattr(x, "shape", None)
    return shape is not None and len(shape) == 2 and shape[1] > 1 and (
        not isinstance(x, np.ndarray) or x.dtype.kind in "biufO")


def _table_kind(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return type(x).__name__ + (f" of shape {tuple(shape)}" if shape is not None else "")


def _warn_near_duplicate_classes(classes: np.ndarray, counts: np.ndarray) -> None:
    """Warn when string classes differ only in case, surrounding spaces or the Unicode form of
    their accented letters (``"Shoes"``, ``"shoes "``; ``"Schuh\\xe9"`` and ``"Schuhe\\u0301"``, as
    two systems write it): most likely one class written several ways, which the model would learn apart."""
    from .suggestions import shown_apart, written_alike

    groups: dict[str, list[int]] = {}
    for i, c in enumerate(classes):
        if isinstance(c, str):
            groups.setdefault(written_alike(c), []).append(i)
    alike = [members for members in groups.values() if len(members) > 1]
    if alike:
        shown = "; ".join(", ".join(f"{text} ({counts[i]} rows)" for i, text in zip(
            members, shown_apart(str(classes[i]) for i in members))) for members in alike[:3])
        warnings.warn(f"y: {sum(map(len, alike))} classes differ from another only in case, spaces or the Unicode form "
                      f"of accented letters ({shown}{'; ...' if len(alike) > 3 else ''}) and are learnt as different "
                      "classes; if each group is one class, clean the labels first (e.g. "
                      "y.str.normalize('NFKC').str.split().str.join(' ').str.casefold())", AutoMMWarning,
                      stacklevel=user_stacklevel())


def _one_hot(values: np.ndarray) -> bool:
    """Whether a 2-d array is one-hot encoded labels: 0/1 (or booleans), exactly one 1 per row."""
    return (values.ndim == 2 and values.size > 0 and values.dtype.kind in "biuf" and bool(np.isin(values, (0, 1)).all())
            and bool((values.sum(axis=1) == 1).all()))


def _largest_holdout_frac(n: int, rows: int) -> float:
    """A short ``holdout_frac`` (two significant digits) holding out at most ``rows`` of ``n``
    samples, as the holdout counts them (``round(holdout_frac * n)``), for a message."""
    import math

    step = 10.0 ** (math.floor(math.log10((rows + 0.5) / n)) - 1)
    frac = math.floor((rows + 0.5) / n / step) * step
    while frac > step and round(frac * n) > rows:  # (exactly half a row: rounded to even, maybe up)
        frac -= step
    return float(f"{frac:.2g}")


def _holdout_keeping_each_class(pool: np.ndarray, targets: np.ndarray, n_valid: int,
                                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) rows of ``pool``: ``n_valid`` held out at random, but one row of each class
    (drawn at random) kept in training, where a holdout of fewer rows than classes cannot be
    stratified (unstratified, 15 classes of 2 rows and a 3-row holdout held out both rows of a
    class for 11% of the seeds: no model trained on it, and the holdout judged a class never seen)."""
    from sklearn.model_selection import train_test_split

    rng = np.random.RandomState(seed % (2**32))
    kept = np.array([rng.choice(pool[targets[pool] == k]) for k in np.unique(targets[pool])])
    rest = np.setdiff1d(pool, kept)
    if len(rest) > n_valid:
        _, valid = train_test_split(rest, test_size=n_valid, random_state=seed % (2**32))
    else:
        valid = rest
    return np.setdiff1d(pool, valid), np.asarray(valid)


def _holdout_holding_each_class(train: np.ndarray, valid: np.ndarray, targets: np.ndarray,
                                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) with one row (drawn at random) of each class of 2 rows or more that ``valid``
    lacks moved into it, and as many rows moved back to training from the classes it holds most
    of: the holdout of a class-averaged metric, which scores every class it averages over (and of
    ``f1``, whose positive class a holdout without it scores 0 for every model). A
    stratified holdout of 10% holds no row of a class of under 5 rows (fashion baseColour, 1,500
    rows: 9 of its 34 classes), so the search's ranking and the decision weights knew nothing of
    them. Measured there (60 s fits, random_state 0-3): test macro-F1 -0.008, +0.091, -0.026,
    +0.003; balanced accuracy -0.006, +0.095, +0.120, +0.010; a principle more than a sure gain.
    Left as it is where the holdout has fewer rows than those classes."""
    counts = np.bincount(targets)
    held = np.bincount(targets[valid], minlength=len(counts))
    absent = np.flatnonzero((counts >= 2) & (held == 0))
    if not len(absent) or len(valid) < int((counts >= 2).sum()):
        return train, valid
    rng = np.random.RandomState(seed % (2**32))
    moved_in = np.array([rng.choice(train[targets[train] == k]) for k in absent])
    moved_back = []
    for _ in absent:  # (the holdout holds more rows than classes: the largest class has 2 or more)
        k = int(np.argmax(held))
        held[k] -= 1
        moved_back.append(rng.choice(np.setdiff1d(valid[targets[valid] == k], moved_back)))
    train = np.concatenate([np.setdiff1d(train, moved_in), moved_back]).astype(train.dtype)
    valid = np.concatenate([np.setdiff1d(valid, moved_back), moved_in]).astype(valid.dtype)
    return np.sort(train), np.sort(valid)


def _absent_classes_hint(validation_given: bool) -> str:
    """What to do about classes a class-averaged metric's holdout lacks: the user's own validation
    rows lack them, or (the holdout holding a row of every class of 2 rows or more) each is a class
    of one row, which stays in training."""
    if validation_given:
        return "; X_val, y_val holding rows of them would"
    return " (a class of a single row stays in training; more rows of it would let the holdout hold one)"


def _check_callbacks(callbacks: Any) -> None:
    """``callbacks``: None or a list of :class:`~automm.Callback` instances, else an :class:`InputError`
    naming what is wrong; a method named like a hook that the trainer never calls (``on_epoch_ended``) is
    warned about."""
    if callbacks is None:
        return
    if isinstance(callbacks, Callback) or (isinstance(callbacks, type) and issubclass(callbacks, Callback)):
        raise InputError(f"callbacks: expected a list of automm.Callback instances, got one: "
                         f"pass [{_named(callbacks)}]")
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, (list, tuple)):
        raise InputError(f"callbacks: expected a list of automm.Callback instances or None, got {callbacks!r}")
    from .suggestions import did_you_mean

    for index, callback in enumerate(callbacks):
        if isinstance(callback, type) and issubclass(callback, Callback):
            raise InputError(f"callbacks[{index}]: {callback.__name__} is a class; pass an instance, "
                             f"{callback.__name__}()")
        if not isinstance(callback, Callback):
            hooks = [h for h in CALLBACK_HOOKS if _is_method(callback, h)]
            hint = (f" (it has {', '.join(hooks)}: subclass automm.Callback, whose other hooks do nothing)"
                    if hooks else "")
            raise InputError(f"callbacks[{index}]: expected an automm.Callback instance, got {callback!r}{hint}")
        unknown = sorted(name for name in dir(type(callback)) if name.startswith("on_") and name not in CALLBACK_HOOKS
                         and _is_method(callback, name))
        for name in unknown:
            warnings.warn(f"callbacks[{index}]: {type(callback).__name__}.{name} is never called: the training "
                          f"calls {', '.join(CALLBACK_HOOKS)}{did_you_mean(name, CALLBACK_HOOKS)}", AutoMMWarning,
                          stacklevel=user_stacklevel())


def _is_method(callback: Any, name: str) -> bool:
    """Whether ``callback`` has a method ``name``, looked up without running it: a property (an
    ``on_gpu`` flag that raises before training) is read by no check, and is no method."""
    try:
        found = inspect.getattr_static(callback, name)
    except AttributeError:
        return False
    return callable(found.__func__ if isinstance(found, (staticmethod, classmethod)) else found)


def _named(callback: Any) -> str:
    return f"{callback.__name__}()" if isinstance(callback, type) else f"{type(callback).__name__}(...)"


class AutoMM(TransformerMixin, BaseEstimator):
    """Multimodal AutoML estimator: images, texts and table columns in, a trained model out.

    Use it with positional inputs, one column each (``fit(X_img, X_txt, y)``), or with one
    table of named columns (``fit(X, y)`` with a DataFrame or a dict of columns), which is
    how scikit-learn's tools call it. The problem type is inferred from ``y`` unless given.

    Parameters
    ----------
    problem_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
        "auto" reads ``y``: non-numeric labels and whole numbers with few distinct values are
        classes; floats that are not whole numbers (``[0.5, 1.5]`` too), whole-number floats with
        more than 10 distinct values, and integers with more than 20 mostly distinct values, are a
        regression target (whole numbers near either rule's line with a warning that says how to
        force the other choice).
    metric : str, default="auto"
        What every holdout score measures, and so what the search ranks trials by (and prunes on,
        and reports in ``leaderboard_``): "auto" (accuracy; for regression the mean squared
        error), "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", for a binary problem
        "f1" (of the positive class: the second of ``classes_``); for regression "r2" and "rmse"
        (ranked as the mean squared error) or "mae". The kept epoch and the ensemble's weights are
        still chosen by holdout log-loss (MSE), which ranks models more smoothly. Under a
        classification metric other than accuracy, ``predict`` follows a decision rule fitted to it
        on the holdout (class weights, :mod:`automm.decision`; ``decision_weights_``).
    column_types : dict, default=None
        Column → role ("image", "text", "numeric", "categorical", "datetime", or a plugin
        modality); columns not listed are inferred.
    encoders : dict, default=None
        Modality, column or input (``image_1``, as ``config_`` names it) → encoder name,
        ``{"name": ..., **hyperparameters}``, or a list of such choices for the search; unlisted
        modalities use :data:`DEFAULT_ENCODERS` (a plugin's modality: its first encoder by name not
        tagged ``"manual"``).
    fusion : str, dict or list, default="concat"
        Fusion name or ``{"name": ..., **hyperparameters}``, or a list of choices for the search
        (a search given the default "concat" tries every fusion; ``["concat"]`` keeps it).
    augmentations : "default", list or None, default="default"
        A list of names / ``{"name": ..., **hyperparameters}``; "default": those of
        :data:`DEFAULT_AUGMENTATIONS` whose modality the data have; None: none.
    time_limit : float, default=None
        Seconds for the whole ``fit``; the best model so far is kept when time is up (with none
        yet, e.g. frozen features still being computed, ``fit`` raises
        :class:`automm.TimeLimitExceeded`).
    max_epochs : int, default=20
        The learning-rate schedule spans it: at most 1,000,000 without a ``time_limit``.
    batch_size : int or "auto", default="auto"
        "auto": 32 on the CPU, 128 on CUDA, 8 times that for a model whose encoders are all frozen.
    learning_rate : float, default=2e-3
        AdamW's peak learning rate (warm-up, then cosine decay).
    weight_decay : float, default=0.01
        AdamW's weight decay.
    label_smoothing : float, default=0.05
        Label smoothing of the classification loss.
    patience : int, default=8
        Early stopping: epochs without a better holdout loss, counted once the learning rate has
        decayed to half its peak; 0 disables it.
    holdout_frac : float, default=0.1
        Share of the rows held out to score epochs and trials; unused when ``fit`` is given
        ``X_val``.
    class_weight : "balanced", dict or None, default=None
        "balanced": each class the same total sample weight over the rows trained on; a dict:
        label → weight. Classes only: a regression target refuses it.
    head_dropout : float, default=0.1
        Dropout before the prediction head.
    device : str or torch.device, default="auto"
        "auto" (CUDA when available, else the CPU), "cpu", "cuda", "cuda:1", ...
    amp : bool, default=True
        Mixed precision on CUDA (ignored on the CPU).
    num_workers : int or "auto", default="auto"
        DataLoader worker processes; "auto": half the usable CPUs (at most 4;
        :func:`automm.process_state.usable_cpus`) when images or other media are decoded, more
        than 2 are usable and processes start by fork (not under the spawn or forkserver start
        method: macOS, Windows, Linux from Python 3.14), else 0 (decoding in the training process).
    n_trials : int, default=None
        Number of search trials; None searches until ``time_limit`` when one is given. Without
        either, ``fit`` trains the one default configuration, unless a search is asked for
        otherwise (lists of choices in ``encoders``/``fusion``, ``search_space``, ``storage``,
        ``ensemble_size`` > 1, two objectives): that search runs 20 trials, with a warning.
    search_space : dict, default=None
        Narrows or widens the search (see :mod:`automm.search_space`).
    sampler : str or optuna.samplers.BaseSampler, default="tpe"
        "tpe" (multivariate, grouped), "random", "cmaes", "nsgaii" (each seeded by
        ``random_state``) or an Optuna sampler, which keeps its own seed (``TPESampler(seed=0)``;
        unseeded, a search does not repeat).
    pruner : str or optuna.pruners.BasePruner, default="median"
        "median" (the median rule among finished trials of the same architecture,
        :class:`automm.pruning.ArchitectureMedianPruner`), "hyperband", "successive_halving",
        "none" or an Optuna pruner.
    storage : str, path or optuna.storages.BaseStorage, default=None
        An Optuna storage (``journal:///path/study.log``, a PostgreSQL URL, ...) that several
        processes or machines share a study through (``automm worker``).
    study_name : str, default=None
        The study's name in ``storage`` (None: one derived from the data and settings).
    n_jobs : int, default=1
        Parallel trials: processes on the CPU; on CUDA, threads, one per GPU or ``n_jobs`` when
        larger; -1: one per usable CPU (the affinity mask, a cgroup CPU quota); None: 1
        (scikit-learn's convention).
    ensemble_size : int or "auto", default="auto"
        How many of the best trials a search may combine in a greedy ensemble (1: the best trial
        alone); "auto": 3 in a single-objective search, else 1.
    bag_folds : int or "auto", default="auto"
        k-fold bagging: a configuration is trained once per fold of all the rows (training and
        holdout), scored on its out-of-fold predictions and predicts by averaging its fold models.
        "auto": 5 folds for configurations whose encoders are all frozen (pretrained, on cached
        features: seconds per fold), else the holdout alone; 1: never; k >= 2: always (k times the
        training). Each fold has 1/k of the time left: without a search, where that stops the
        first fold inside its first epoch, one model is trained unbagged in the time left
        instead, with a warning.
    objectives : str or tuple of str, default="score"
        "score", or ("score", "latency") / ("score", "params") for a multi-objective search.
    plot_dir : str or path, default=None
        Directory where plots of the search are written, or None: the optimisation history, the
        parameter importances (from 10 finished trials with sampled parameters) and, with two
        objectives, the Pareto front.
    cache_dir : str or path, default=None
        Directory for cached features of frozen pretrained encoders (None:
        ``$AUTOMM_CACHE_DIR``, else ``$XDG_CACHE_HOME/automm`` where that is set, else
        ``~/.cache/automm``); ``automm cache`` shows and clears it (``automm cache forget``: one
        input's features).
    random_state : int, numpy.random.RandomState or None, default=None
        Seed for splits, initialisation, shuffling and augmentation; None (one draw from numpy's
        global generator) or a ``numpy.random.RandomState`` (one draw from it) seeds each fit
        afresh. The same seed gives the same model on the same CPU with the same number of torch
        threads (``torch.get_num_threads()``; scikit-learn's ``n_jobs`` workers run the CPUs
        divided by ``n_jobs`` each, as joblib limits them, so their results may differ in the last
        digits), but not where what was measured decides: a ``time_limit`` that stops training, a
        search's trials run at once (``n_jobs`` > 1) or ranked by the ``latency`` objective.
    verbose : int, default=0
        0 silent, 1 the epochs' progress on stderr (a bar in a terminal or a notebook, one line
        per epoch in a log file; a search: a line per trial, then what it kept) and what plugins
        log of their work (e.g. features being computed, in ``fit`` and for new rows in
        ``predict`` and ``transform``; :mod:`automm.progress`), 2 also each epoch's whole record
        as it ends (a search: also Optuna's log).
    callbacks : list of automm.Callback, default=None
        Called by every training run of ``fit`` (each search trial, each fold of a bag; not the
        search's linear, nearest-neighbour and gradient-boosted models, which have no epochs), in list order: the
        instances given, not copies (but scikit-learn's ``clone``, as ``GridSearchCV`` and
        ``cross_val_score`` use, copies them; forked search processes, ``n_jobs`` > 1, call their
        own copies, and trials in GPU threads call them at once). Not saved with the model.
    """

    def __new__(cls, *args, **params):
        """A misspelt parameter name gets a did-you-mean (Python's TypeError names only the word)."""
        unknown = [name for name in params if name not in cls._get_param_names()]
        if unknown:
            from .suggestions import did_you_mean

            foreign = FOREIGN_KEYWORDS[""].get(unknown[0])
            hint = foreign(params[unknown[0]]) if foreign is not None else did_you_mean(unknown[0], cls._get_param_names())
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unknown[0]!r}{hint}")
        return super().__new__(cls)

    def __getattr__(self, name: str):
        """An attribute not found: for a method of AutoGluon's, or ``leaderboard_`` where there is
        none, Python's AttributeError says what to use instead; else the error as it was."""
        hint = FOREIGN_METHODS.get(name)
        if hint is None and name in ("predict_proba", "predict_log_proba"):
            hint = self._no_probabilities_reason()
        if hint is None and name == "leaderboard_":
            fitted = vars(self)
            if "trial_counts_" in fitted:
                hint = ("a loaded model keeps no leaderboard_ (fit_summary()['trials'] counts its trials by state): "
                        "keep the fitted model's leaderboard_ (e.g. leaderboard_.to_csv(...)) before saving")
            elif "model_" in fitted:
                hint = ("a fit without a search trains one configuration and has no leaderboard_ (history_ holds its "
                        "epochs): fit searches when given time_limit= (and no n_trials=) or n_trials= of 2 or more")
        if hint is None:
            return object.__getattribute__(self, name)  # raises Python's own AttributeError
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}; {hint}", name=name, obj=self)

    def set_params(self: _Estimator, **params: Any) -> _Estimator:
        """scikit-learn's ``set_params``; a nested key (``encoders__text``, as a grid would name one
        entry of a dict parameter) is refused with how to set the dict whole."""
        nested = next((key for key in params if "__" in key and key.split("__", 1)[0] in self._get_param_names()
                       and not hasattr(getattr(self, key.split("__", 1)[0]), "set_params")), None)
        if nested is not None:
            name, entry = nested.split("__", 1)
            raise ValueError(f"{nested}: {name} is a {type(getattr(self, name)).__name__} parameter, not an estimator, "
                             f"so its entries cannot be set one by one; set it whole, e.g. set_params({name}="
                             f"{{{entry!r}: ...}}) (in a parameter grid: {{{name!r}: [{{{entry!r}: ...}}, ...]}}; in a "
                             f"pipeline's, after the step's name: {{'<step>__{name}': [...]}})")
        return super().set_params(**params)

    def __init__(
        self, *,
        problem_type: str = "auto",
        metric: str = "auto",
        column_types: Mapping[str, str] | None = None,
        encoders: Mapping[str, _ComponentChoice | Sequence[_ComponentChoice]] | None = None,
        fusion: _ComponentChoice | Sequence[_ComponentChoice] = "concat",
        augmentations: str | Sequence[_ComponentChoice] | None = "default",
        time_limit: float | None = None,
        max_epochs: int = 20,
        batch_size: int | str = "auto",
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-2,
        label_smoothing: float = 0.05,
        patience: int = 8,
        holdout_frac: float = 0.1,
        class_weight: str | Mapping[Any, float] | None = None,
        head_dropout: float = 0.1,
        device: str | torch.device = "auto",
        amp: bool = True,
        num_workers: int | str = "auto",
        n_trials: int | None = None,
        search_space: Mapping[str, Any] | None = None,
        sampler: str | optuna.samplers.BaseSampler = "tpe",
        pruner: str | optuna.pruners.BasePruner = "median",
        storage: str | os.PathLike[str] | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        n_jobs: int | None = 1,
        ensemble_size: int | str = "auto",
        bag_folds: int | str = "auto",
        objectives: str | Sequence[str] = "score",
        plot_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: Sequence[Callback] | None = None,
    ) -> None:
        self.problem_type = problem_type
        self.metric = metric
        self.column_types = column_types
        self.encoders = encoders
        self.fusion = fusion
        self.augmentations = augmentations
        self.time_limit = time_limit
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.patience = patience
        self.holdout_frac = holdout_frac
        self.class_weight = class_weight
        self.head_dropout = head_dropout
        self.device = device
        self.amp = amp
        self.num_workers = num_workers
        self.n_trials = n_trials
        self.search_space = search_space
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.ensemble_size = ensemble_size
        self.bag_folds = bag_folds
        self.objectives = objectives
        self.plot_dir = plot_dir
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    _forced_problem_type: str | None = None

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        def number(name: str, expected: str, valid: Callable[[float], bool], integer: bool = False,
                   allow_none: bool = False) -> None:
            """``name`` must be a finite int or float (numpy scalars too), and ``valid``."""
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if not finite_number(value, integer) or not valid(value):
                raise InputError(f"{name}: expected {expected}{' or None' if allow_none else ''}, got {value!r}")

        if self.problem_type not in PROBLEM_TYPES:
            from .suggestions import did_you_mean

            hint = did_you_mean(self.problem_type, PROBLEM_TYPES) if isinstance(self.problem_type, str) else ""
            if not hint and isinstance(self.problem_type, str) and "clas" in self.problem_type.lower():
                hint = "; classes are 'binary' or 'multiclass' ('auto' tells them from y; AutoMMClassifier always classifies)"
            raise InputError(f"problem_type: expected one of {PROBLEM_TYPES}, got {self.problem_type!r}{hint}")
        number("time_limit", "a positive number of seconds", lambda v: v > 0, allow_none=True)
        for key in TRAINING_RULES:
            problem = training_value_problem(key, getattr(self, key))
            if problem:
                raise InputError(f"{key}: {problem}")
        problem = untimed_epochs_problem(self.max_epochs) if self.time_limit is None else None
        if problem:
            raise InputError(f"max_epochs: {problem}")
        number("holdout_frac", "a number in (0, 1)", lambda v: 0 < v < 1)
        if self.num_workers != "auto":
            number("num_workers", "'auto' or an integer >= 0", lambda v: v >= 0, integer=True)
        if not isinstance(self.random_state, np.random.RandomState):  # (scikit-learn's convention: fit draws a seed)
            number("random_state", "an integer in [0, 2**32 - 1], a numpy RandomState", lambda v: 0 <= v < 2**32,
                   integer=True, allow_none=True)
        if not isinstance(self.amp, (bool, np.bool_)):
            raise InputError(f"amp: expected True or False, got {self.amp!r}")
        self._check_class_weight()
        if self.encoders is not None and not isinstance(self.encoders, Mapping):
            raise InputError(f"encoders: expected a dict modality-or-column -> encoder, got {self.encoders!r}")
        check_cache_dir(self.cache_dir)
        if not isinstance(self.verbose, (int, np.integer)) or self.verbose < 0:
            raise InputError(f"verbose: expected an integer >= 0 (0 silent, 1 progress, 2 more), got {self.verbose!r}")
        if self.column_types is not None and not isinstance(self.column_types, Mapping):
            raise InputError(f"column_types: expected a dict column -> role, got {self.column_types!r}")
        _check_callbacks(self.callbacks)
        try:
            resolve_device(self.device)
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"device: {exc}") from None
        from . import search

        search.validate_params(self)

    def _check_class_weight(self) -> None:
        weights = self.class_weight
        if weights is None or (isinstance(weights, str) and weights == "balanced"):
            return
        if not isinstance(weights, Mapping):
            from .suggestions import did_you_mean

            hint = did_you_mean(weights, ["balanced"]) if isinstance(weights, str) else ""
            raise InputError(f"class_weight: expected None, 'balanced' or a dict label -> weight, got "
                             f"{weights!r}{hint}")
        wrong = {label: w for label, w in weights.items() if not finite_number(w) or w < 0}
        if wrong:
            raise InputError(f"class_weight: weights must be finite numbers >= 0; wrong: {wrong!r}")

    def _resolve_problem_type(self, y: np.ndarray, declared_classes: bool = False) -> str:
        """The problem type ``problem_type`` asks for, read from the labels under ``"auto"``;
        ``declared_classes``: the labels' dtype says they are classes (a pandas ``Categorical``,
        whatever its values: shoe sizes 8.5 and 9.5 are two classes)."""
        from pandas import unique as pd_unique

        requested = self._forced_problem_type or self.problem_type
        if requested == "regression":
            _regression_values(np.asarray(y), "y")
            return "regression"
        kind = _target_kind(y)
        if declared_classes and kind in ("continuous", "binary", "multiclass"):
            kind = "binary" if len(pd_unique(np.asarray(y, dtype=object))) <= 2 else "multiclass"
            if requested == "auto":
                return kind
        if requested == "auto":
            classifier = isinstance(self, ClassifierMixin)  # its labels are classes whatever their dtype
            if kind == "continuous" or (_looks_like_regression(y) and not classifier):
                if kind != "continuous" and (rule := _close_to_classes(np.asarray(y))):
                    warnings.warn(f"y: {len(np.unique(y))} whole-number values, read as a regression target ({rule}); "
                                  "pass problem_type='multiclass' if they are classes, or 'regression' to silence this",
                                  AutoMMWarning, stacklevel=user_stacklevel())
                return "regression"
            if kind in ("binary", "multiclass"):
                n_classes = len(np.unique(y))
                if kind == "multiclass" and np.asarray(y).dtype.kind in "iu" and n_classes > 20 and not classifier:
                    warnings.warn(f"y: {n_classes} integer values, read as classes (integers are amounts only when "
                                  "more than half the rows differ); pass problem_type='regression' if they are "
                                  "amounts, or 'multiclass' to silence this",
                                  AutoMMWarning, stacklevel=user_stacklevel())
                elif kind == "multiclass" and not classifier and (spaced := _ordered_quantity(y)):
                    warnings.warn(f"y: {spaced}, read as {n_classes} classes: learnt apart, their order unused, a value "
                                  "no training row holds never predicted; pass problem_type='regression' if they are "
                                  "years, counts or another amount, or 'multiclass' to silence this",
                                  AutoMMWarning, stacklevel=user_stacklevel())
                return kind
            raise InputError(f"y: cannot infer the problem type from labels of type {kind!r}; "
                             "pass problem_type= explicitly")
        if kind == "continuous":  # as AutoMMClassifier and scikit-learn's classifiers refuse them
            shown = ", ".join(map(repr, np.unique(np.asarray(y))[:3].tolist()))
            raise InputError(f"problem_type={requested!r} needs class labels, but y holds 'continuous' values "
                             f"({shown}, ...: numbers that are not whole); use problem_type='regression', or make "
                             "the labels classes (e.g. strings)")
        if requested == "binary" and len(classes := pd_unique(y)) != 2:
            from .suggestions import quoted_values

            shown = quoted_values(classes.tolist(), 4)
            raise InputError(f"problem_type: 'binary' needs two classes, but y holds {len(classes)} ({shown}); "
                             "use 'multiclass' or 'auto'")
        return requested

    @staticmethod
    def _labels_array(y: Any, name: str = "y", method: str = "fit", amounts: bool = False) -> np.ndarray:
        """``y`` as a 1-d array, refused naming ``name`` when it is no column of labels (several targets,
        tags: a list of labels per sample, a sparse matrix; saying how scikit-learn's wrappers fit
        them) or holds missing or infinite ones; ``amounts``: a regression target's (strings of
        numbers among numbers are numbers, converted by :func:`_regression_values`, which names a value that is not)."""
        row_name = row_namer(None)
        import pandas as pd

        if not isinstance(y, pd.DataFrame) and hasattr(y, "schema") and hasattr(y, "to_pandas"):
            y = y.to_pandas()  # a polars DataFrame or pyarrow Table of labels: as X's, by its columns
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                values = y.to_numpy()
                hint = ("one-hot encoded labels (dummies): pass each row's class, e.g. y.idxmax(axis=1)"
                        if _one_hot(values) else _several_targets_hint(name, amounts))
                raise InputError(f"{name}: expected one label column, got a DataFrame with {y.shape[1]} columns "
                                 f"({hint})")
            y = y.iloc[:, 0]
        if isinstance(y, pd.Series):
            row_name = row_namer(*row_naming(y.index))
            y = y.to_numpy(dtype=object if y.dtype == object or str(y.dtype) in ("string", "category") else None)
        if type(y).__module__.startswith("scipy.sparse"):
            raise InputError(f"{name}: got a scipy sparse matrix of shape {y.shape}; labels must be dense"
                             + _sparse_labels_hint(y.shape, name, amounts))
        if (tags := _labels_per_sample(y)) is not None:
            raise InputError(_labels_per_sample_message(tags, y, name, method, amounts, row_name))
        if isinstance(y, str):
            call = (f"fit(X, y, X_val=frame.drop(columns={y!r}), y_val=frame[{y!r}])" if name == "y_val"
                    else f"{method}(frame.drop(columns={y!r}), frame[{y!r}])")
            raise InputError(f"{name}: expected one label per sample, got the string {y!r}; to take the labels "
                             f"from a column of the table: {call}")
        if y is None:
            raise InputError(f"{name}: this estimator requires y to be passed, but the target y is None")
        if not hasattr(y, "__len__") and hasattr(y, "__array__"):  # an array-like that only converts
            y = np.asarray(y)
        if isinstance(y, bytes) or not hasattr(y, "__len__"):
            raise InputError(f"{name}: expected one label per sample, got {type(y).__name__}")
        # a list mixing strings with NaN would become the string 'nan' in a numpy array: look
        # for missing labels in the values as given
        given = np.asarray(y, dtype=object).ravel().tolist()
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            from sklearn.exceptions import DataConversionWarning

            warnings.warn(f"A column-vector {name} was passed when a 1d array was expected: its one column is "
                          f"used; pass {name}.ravel() to silence this warning", DataConversionWarning, stacklevel=user_stacklevel())
            arr = arr.ravel()
        if arr.ndim != 1:
            hint = ""
            if _one_hot(arr):
                hint = " (one-hot encoded labels: pass each row's class, e.g. y.argmax(axis=1))"
            elif arr.ndim == 2:
                tags = "" if amounts or arr.dtype.kind not in "OUS" or not isinstance(y, (list, tuple)) else (
                    f"; for a list of tags per sample, one 0/1 column per tag: "
                    f"sklearn.preprocessing.MultiLabelBinarizer().fit_transform({name})")
                hint = f" ({_several_targets_hint(name, amounts)}{tags})"
            raise InputError(f"{name}: expected a 1-d sequence of labels, got shape {arr.shape}{hint}")
        if len(arr) == 0:
            raise InputError(f"{name}: no labels (0 samples)")
        missing = [i for i, v in enumerate(given) if (not v.strip() if isinstance(v, str) else is_missing(v))]
        # (a blank text is a missing label too, which notna() keeps)
        blank = any(isinstance(given[i], str) for i in missing)
        _refuse_label_rows(missing, "missing", "None/NaN/empty", "notna()" if not blank else "blank",
                           name, method, row_name)
        # (a float's infinity is no amount and no class: scikit-learn's checks raise on it without a row)
        infinite = [i for i, v in enumerate(given) if isinstance(v, (float, np.floating)) and math.isinf(v)]
        _refuse_label_rows(infinite, "infinite", "inf/-inf", "isfinite", name, method, row_name)
        text = next((v for v in given if isinstance(v, str)), None)
        number = next((v for v in given if isinstance(v, (int, float, np.number))
                       and not isinstance(v, (bool, np.bool_))), None)
        flag = next((v for v in given if isinstance(v, (bool, np.bool_))), None)
        other, kind = (number, "numbers") if number is not None else (flag, "booleans")
        if text is not None and other is not None and not amounts:  # numpy would turn every label into a string
            other = other.item() if isinstance(other, np.generic) else other
            raise InputError(f"{name}: labels mix strings and {kind} (e.g. {text!r} and {other!r}), so predict would "
                             f"return {str(other)!r} for {other!r}; give them one type, e.g. [str(v) for v in y]")
        if arr.dtype == object and all(isinstance(v, (int, float, np.number)) for v in arr.tolist()):
            if any(isinstance(v, (float, np.floating)) for v in arr.tolist()):  # (np.float32 is no float)
                arr = arr.astype(float)
            else:
                arr = arr.astype(float) if _beyond_int64(arr.tolist(), name, amounts) else arr.astype(int)
        elif arr.dtype == object and all(isinstance(v, (numbers.Real, decimal.Decimal))
                                         and not isinstance(v, (bool, np.bool_)) for v in arr.tolist()):
            # Decimal (SQL NUMERIC, Parquet decimal128: what read_sql / read_parquet give) and
            # Fraction labels are numbers, as in X: whole ones integers, others floats
            floats = arr.astype(float)
            whole = all(v == int(v) for v in arr.tolist() if math.isfinite(float(v)))
            whole = whole and bool(np.all(np.isfinite(floats)))
            arr = floats.astype(np.int64) if whole and not _beyond_int64(arr.tolist(), name, amounts) else floats
        return arr

    # ------------------------------------------------------------------ component resolution
    def _known_roles(self, reg: _registry.Registry) -> list[str]:
        return sorted({*BASE_ROLES, *reg.modalities()} - {"tabular"})

    def _resolve_encoders(self, specs: Sequence[InputSpec], reg: _registry.Registry) -> list[tuple[str, dict]]:
        from .search_space import check_given_values

        choices = {str(k): v for k, v in (self.encoders or {}).items()}  # column names are strings in the table
        allowed = set(reg.modalities()) | {c for s in specs for c in s.columns} | {s.name for s in specs}
        unknown = sorted(set(map(str, choices)) - allowed)
        if unknown:
            from .suggestions import did_you_mean

            raise InputError(f"encoders: keys {unknown} match neither a modality nor a column of the data "
                             f"(modalities {reg.modalities()}, columns "
                             f"{shown_names(c for s in specs for c in s.columns)}){did_you_mean(unknown[0], allowed)}"
                             + (f"; {left_out}" if (left_out := _registry.plugins_left_out(reg.plugin_manager)) else ""))
        warn_unused_modalities("encoders", choices, specs, reg.modalities())
        resolved = []
        for spec in specs:
            named = [c for c in spec.columns if c in choices]
            if len(named) > 1 and any(choices[c] != choices[named[0]] for c in named[1:]):
                raise InputError(f"encoders: columns {named} share one {spec.modality!r} input ({spec.name!r}: "
                                 f"{spec.columns}), which has one encoder, but they name different ones "
                                 f"({', '.join(f'{c!r}: {choices[c]!r}' for c in named)}); name it once, "
                                 f"e.g. encoders={{{spec.modality!r}: {choices[named[0]]!r}}}")
            key = choice_key(spec, choices, specs)  # how the user named it
            if key in spec.columns and spec.name in choices and spec.name != key and choices[spec.name] != choices[key]:
                raise InputError(f"encoders: {key!r} and {spec.name!r} name the same input (column {key!r} is "
                                 f"input {spec.name!r}) with different encoders; name it once")
            raw = choices.get(key) if key is not None else None
            key = spec.modality if key is None else key
            if raw is None:
                default = DEFAULT_ENCODERS.get(spec.modality)
                candidates = reg.names("encoder", modality=spec.modality)
                if default not in candidates:
                    if not candidates:
                        raise InputError(f"no encoder is installed for modality {spec.modality!r} (input "
                                         f"{spec.columns}); install a plugin that provides one")
                    # a plugin's modality: its first encoder by name that is not tagged "manual" (used only where named)
                    default = next((n for n in candidates if "manual" not in reg.get("encoder", n).tags), candidates[0])
                raw = default
            # A list is a set of choices for the search; the first is the default configuration's.
            options = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            if not options:
                raise InputError(f"encoders[{key!r}]: an empty list of choices")
            checked = []
            for option in options:
                name, params = _component_choice(option, f"encoders[{key!r}]")
                component = reg.get("encoder", name)
                if component.modality != spec.modality:
                    inferred = [c for c in spec.columns if c not in (self.column_types or {})]
                    hint = ""
                    if key in inferred and component.modality != "tabular":  # the user meant that column's role
                        hint = (f", or, if {key!r} holds {component.modality}s, say so: "
                                f"column_types={{{key!r}: {component.modality!r}}} (it was read as "
                                f"{spec.column_roles.get(key, spec.modality)})")
                    raise InputError(f"encoders: {name!r} encodes {component.modality!r}, but input {spec.columns} "
                                     f"is {spec.modality!r}; choose one of "
                                     f"{reg.names('encoder', modality=spec.modality)}{hint}")
                component.check_hyperparameters(params, f"encoders[{key!r}]")
                check_given_values(component, params, f"encoders[{key!r}]", input_spec=spec)
                checked.append((name, component.hyperparameters(**params)))
            resolved.append(checked[0])
        return resolved

    def _check_augmentation_plugins(self) -> None:
        """For a loaded model fitted again: an augmentation its parameters name whose plugin is
        gone raises :class:`UnknownComponentError` naming the package to install (recorded at
        save), not a built-in with a similar name."""
        from .persistence import augmentation_parameters, missing_augmentation_plugin

        for argument, name in augmentation_parameters(self):
            message = missing_augmentation_plugin(self, argument, name)
            if message:
                raise UnknownComponentError(message)

    def _resolve_augmentations(self, reg: _registry.Registry, modalities: set[str],
                               n_inputs: int | None = None) -> list[tuple[str, dict]]:
        """The augmentations to train with, of the data's ``modalities`` (and batch ones that can act
        on ``n_inputs`` inputs, when given)."""
        from .search_space import check_given_values

        if self.augmentations is None:
            return []
        if self.augmentations == "default":
            available = set(reg.names("augmentation"))
            items = [n for n in DEFAULT_AUGMENTATIONS if n in available]
        elif isinstance(self.augmentations, (list, tuple)):
            items = list(self.augmentations)
        else:
            raise InputError(f"augmentations: expected 'default', None or a list, got {self.augmentations!r}")
        resolved = []
        for index, item in enumerate(items):
            where = "augmentations" if self.augmentations == "default" else f"augmentations[{index}]"
            name, params = _component_choice(item, where)
            component = reg.get("augmentation", name)
            component.check_hyperparameters(params, where)
            check_given_values(component, params, where)
            if n_inputs is not None and not augmentation_can_act(component, n_inputs):
                if self.augmentations != "default":  # named by the user
                    warnings.warn(f"augmentations: {name!r} cannot act with {n_inputs} input"
                                  f"{'s' if n_inputs != 1 else ''} (it needs {component.factory.min_inputs}): "
                                  "the model trains without it", AutoMMWarning, stacklevel=user_stacklevel())
                continue
            if component.modality == "batch" or component.modality in modalities:
                resolved.append((name, component.hyperparameters(**params)))
            elif self.augmentations != "default":  # named by the user, for data it does not have
                warnings.warn(f"augmentations: {name!r} augments {component.modality} inputs, and the data have "
                              f"none ({', '.join(sorted(modalities)) or 'no inputs'}): the model trains without it",
                              AutoMMWarning, stacklevel=user_stacklevel())
        return resolved

    # ------------------------------------------------------------------ fit
    def _prepare(self, args: tuple, y: Any):
        """Validate everything that can be validated before training."""
        self._validate_params()
        from . import search
        from .search_space import check_given_values

        search.warn_unused_search_options(self)
        check_storage(self.storage)  # unreachable or read-only: said now, not after the data checks
        reg = _registry.get_registry()
        table = as_table(args, plugin_manager=reg.plugin_manager)
        labels = self._labels_array(y, amounts=(self._forced_problem_type or self.problem_type) == "regression")
        if len(labels) != len(table):
            raise InputError(f"y: {len(labels)} labels for {len(table)} samples")
        _warn_misaligned(args, y)
        given_names = table.names
        notes: list = []  # (the warnings of the columns' values: not of the identifiers left out)
        roles = infer_roles(table, self.column_types, reg.plugin_manager, self._known_roles(reg), notes=notes)
        named = [*(self.column_types or {}), *(k for k in (self.encoders or {}) if str(k) in roles)]
        identifiers = _identifier_columns(table, roles, kept=named)
        say_column_notes(notes, left_out=identifiers)
        if identifiers:
            message = _identifiers_left_out(identifiers, roles, all_columns=len(identifiers) == len(roles))
            if len(identifiers) == len(roles):
                raise InputError(f"X: {message}")
            warnings.warn(f"X: {message}", AutoMMWarning, stacklevel=user_stacklevel())
            roles = {name: role for name, role in roles.items() if name not in identifiers}
            table = table.with_columns({name: table.columns[name] for name in roles})
        specs = build_input_specs(roles)
        table = validate_columns(table, roles, named_roles=self.column_types or ())
        encoder_choices = self._resolve_encoders(specs, reg)
        # A list is a set of choices for the search; the first is the default configuration's.
        fusion_options = list(self.fusion) if isinstance(self.fusion, (list, tuple)) else [self.fusion]
        if not fusion_options:
            raise InputError("fusion: an empty list of choices")
        fusion_checked = []
        for option in fusion_options:
            option_name, option_params = _component_choice(option, "fusion")
            component = reg.get("fusion", option_name)
            component.check_hyperparameters(option_params, "fusion")
            check_given_values(component, option_params, "fusion", input_dims={spec.name: 8 for spec in specs})
            fusion_checked.append((option_name, component.hyperparameters(**option_params)))
        fusion_name, fusion_params = fusion_checked[0]
        aug_choices = self._resolve_augmentations(reg, {s.modality for s in specs}, len(specs))
        problem_type = self._resolve_problem_type(labels, declared_classes=declared_categorical(y))
        label_columns = _columns_equal_to_labels(table, roles, labels)
        for column in label_columns:
            fix = "leave that input out" if table.positional else f"leave it out of X: X.drop(columns=[{column!r}])"
            warnings.warn(f"X: column {column!r} holds the labels y in every row: the model would read the answer "
                          f"off it, which new rows will not have; {fix}", AutoMMWarning, stacklevel=user_stacklevel())
        for message in _columns_that_cannot_help(table, roles):
            warnings.warn(f"X: {message}", AutoMMWarning, stacklevel=user_stacklevel())
        return (reg, table, labels, roles, specs, encoder_choices, (fusion_name, fusion_params), aug_choices,
                problem_type, label_columns, given_names)

    def _encode_targets(self, labels: np.ndarray, problem_type: str, weights: np.ndarray | None = None) -> np.ndarray:
        """Class indices, or regression targets standardised by the (weighted) mean and standard
        deviation of the rows that count (weight > 0: a row of weight 0, an outlier set aside,
        must not set the scale the network learns in)."""
        if problem_type == "regression":
            values = _regression_values(labels, "y")
            counted = values if weights is None else values[weights > 0]
            counted_weights = None if weights is None else weights[weights > 0]
            scale = float(np.abs(counted).max()) if len(counted) else 0.0
            scale = scale or 1.0  # no overflow in the squares of huge targets
            mean = float(np.average(counted / scale, weights=counted_weights))
            spread = float(np.sqrt(np.average((counted / scale - mean) ** 2, weights=counted_weights)))
            if spread == 0.0:
                n = len(counted)
                raise InputError(f"y: every target that counts ({n} sample{'s' if n != 1 else ''}) is "
                                 f"{mean * scale:g}; regression needs at least two different values")
            self.target_mean_, self.target_std_ = mean * scale, spread * scale
            _warn_far_targets(counted)
            return ((values - self.target_mean_) / self.target_std_).astype(np.float32)
        classes, encoded = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
            # (a tag's 0/1 column that MultiOutputClassifier fits alone: the tag is in every training row or none)
            tag = (" (if it is a tag's 0/1 column, of sklearn.preprocessing.MultiLabelBinarizer: every training row "
                   "has the tag, or none; leave such columns out, e.g. Y = Y[:, Y.min(axis=0) != Y.max(axis=0)])"
                   if isinstance(only, (bool, int, float)) and only in (0, 1) else "")
            raise InputError(f"y: only one class ({only!r}) in the labels; classification needs at least 2{tag}")
        _warn_near_duplicate_classes(classes, np.bincount(encoded, minlength=len(classes)))
        from .persistence import _encode_classes

        try:  # found now, not by save after the whole fit (automm fit lost the model it had trained)
            _encode_classes(classes)
        except TypeError:
            kind = next((type(c).__name__ for c in classes.tolist()
                         if not (c is None or isinstance(c, (str, int, float, bool)))), classes.dtype.name)
            raise InputError(f"y: classes of type {kind} (e.g. {classes[0]!r}) cannot be saved with a model, which "
                             "records str, int, float and bool classes; give them as strings (y.astype(str))") from None
        self.classes_ = classes
        return encoded.astype(np.int64)

    def _check_metric(self, problem_type: str) -> None:
        from .training import BINARY_METRICS, CLASSIFICATION_METRICS, REGRESSION_METRICS, metric_name_hint

        known = ("auto", *CLASSIFICATION_METRICS, *REGRESSION_METRICS)
        if not isinstance(self.metric, str) or self.metric not in known:
            raise InputError(f"metric: expected one of {list(known)}, got {self.metric!r}"
                             f"{metric_name_hint(self.metric, known)}")
        if problem_type == "regression" and self.metric in CLASSIFICATION_METRICS:
            raise InputError(f"metric: {self.metric!r} is a classification metric, but y is a regression target; "
                             f"use one of {list(REGRESSION_METRICS)}")
        if problem_type != "regression" and self.metric in REGRESSION_METRICS:
            raise InputError(f"metric: {self.metric!r} is a regression metric, but y holds classes; "
                             f"use one of {list(CLASSIFICATION_METRICS)}")
        if problem_type == "multiclass" and self.metric in BINARY_METRICS:
            held = ("problem_type is 'multiclass'" if self.problem_type == "multiclass"
                    else "y holds more than two classes")
            raise InputError(f"metric: {self.metric!r} is the F1 score of a binary problem's positive class, but "
                             f"{held}; use 'macro_f1' or 'weighted_f1'")

    def _with_validation_rows(self, table: Table, targets: np.ndarray, weights: np.ndarray | None, val,
                              problem_type: str):
        """(table, targets, weights, ``is_train``) with the validation rows, if any, after the
        training rows (``is_train`` marks the training rows; None without validation rows)."""
        if val is None:
            return table, targets, weights, None
        val_table, val_labels, val_weights = val
        n_train, n_val = len(targets), len(val_labels)
        counted = targets if weights is None else targets[weights > 0]
        targets = np.concatenate([targets, self._encode_validation_targets(val_labels, problem_type, val_weights,
                                                                           counted)])
        if weights is not None or val_weights is not None:
            weights = np.concatenate([np.ones(n_train) if weights is None else weights,
                                      np.ones(n_val) if val_weights is None else val_weights])
        return table.concat(val_table), targets, weights, np.arange(n_train + n_val) < n_train

    def _drop_unweighted(self, table: Table, targets: np.ndarray, weights: np.ndarray | None,
                         is_train: np.ndarray | None = None):
        """The rows of positive weight: (table, targets, weights scaled to a mean of 1 or None
        when all are equal (the fit is then exactly the unweighted one), ``is_train`` (which
        rows are training rows, not validation rows; None when there are no validation rows))."""
        if weights is None:
            return table, targets, None, is_train
        kept = np.flatnonzero(weights > 0)
        if len(kept) < len(weights):
            table, targets, weights = table.subset(kept), targets[kept], weights[kept]
            is_train = None if is_train is None else is_train[kept]
            train_targets = targets if is_train is None else targets[is_train]
            if self.problem_type_ != "regression" and len(np.unique(train_targets)) < 2:
                only = self.classes_[int(train_targets[0])]
                only = only.item() if isinstance(only, np.generic) else only
                raise InputError(f"sample_weight: the samples of positive weight hold only one class ({only!r}); "
                                 "classification needs at least 2")
        if np.all(weights == weights[0]):
            return table, targets, None, is_train
        return table, targets, (weights / weights.mean()).astype(np.float32), is_train

    def _validation_data(self, table: Table, roles: Mapping[str, str], X_val: Any, y_val: Any,
                         sample_weight_val: Any) -> tuple[Table, np.ndarray, np.ndarray | None] | None:
        """``fit``'s validation data checked against the training table: (table with its
        columns, labels, weights or None), or None when there are none."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise InputError("sample_weight_val: given without X_val and y_val")
            return None
        if X_val is None or y_val is None:
            given, other = ("y_val", "X_val") if X_val is None else ("X_val", "y_val")
            raise InputError(f"{other}: {given} was given without it; validation data need both X_val and y_val")
        X_val = X_val if isinstance(X_val, tuple) else table_like(X_val, "X_val")
        if table.positional:
            named = not isinstance(X_val, (tuple, list)) and _is_table(X_val) and not isinstance(X_val, np.ndarray)
            if (isinstance(X_val, np.ndarray) and X_val.ndim == 2) or named:  # a table by position, as X
                # (a DataFrame's columns in order, as predict takes them, with scikit-learn's warning)
                val_table = _validation_table((X_val,), records=False)
                if named and len(val_table.names) == len(table.names) and _has_feature_names(X_val):
                    warnings.warn(f"X_val has feature names, but fit was given unnamed inputs: its columns "
                                  f"{shown_names(val_table.names)} are taken in order"
                                  + _untransformed_hint(self, val_table.names),
                                  AutoMMWarning, stacklevel=user_stacklevel())
                n = len(val_table.names)
                if n != len(table.names):
                    raise InputError(f"X_val: an array of {n} column{'s' if n != 1 else ''}; fit was given "
                                     f"{len(table.names)} ({shown_names(table.names, plain=True)})"
                                     + _untransformed_hint(self, val_table.names))
            else:
                if len(table.names) > 1 or (isinstance(X_val, tuple) and len(X_val) == 1):
                    if not isinstance(X_val, (tuple, list)) or len(X_val) != len(table.names):
                        raise InputError(f"X_val: fit was given {len(table.names)} positional inputs; pass X_val as "
                                         f"a tuple of {len(table.names)} inputs in the same order")
                    inputs = tuple(X_val)
                else:
                    inputs = (X_val,)
                val_table = _validation_table(inputs, records=False)
            val_table = val_table.with_columns(dict(zip(table.names, val_table.columns.values())), positional=True)
        else:
            val_table = _validation_table((X_val,))
            if val_table.positional:
                raise InputError(f"X_val: fit was given a table with columns {shown_names(table.names)}; pass X_val "
                                 "as a table with the same columns")
            missing = [c for c in table.names if c not in val_table.columns]
            if missing:
                raise InputError(f"X_val: columns {shown_names(missing)} of X are missing; got columns "
                                 f"{shown_names(val_table.names)}"
                                 + _untransformed_hint(self, val_table.names))
            val_table = val_table.with_columns({c: val_table.columns[c] for c in table.names})
        labels = self._labels_array(y_val, "y_val",
                                    amounts=(self._forced_problem_type or self.problem_type) == "regression")
        if len(labels) != len(val_table):
            raise InputError(f"y_val: {len(labels)} labels for {len(val_table)} validation samples")
        _warn_misaligned(X_val if isinstance(X_val, tuple) else (X_val,), y_val, ("X_val", "y_val"))
        try:
            with checks_of("X_val"):  # its warnings said of X_val's rows, not X's
                val_table = validate_columns(val_table, roles, named_roles=self.column_types or ())
        except InputError as exc:
            raise InputError(f"X_val: {exc}") from None
        weights = _check_sample_weight(sample_weight_val, len(labels), "sample_weight_val")
        _warn_misaligned(X_val if isinstance(X_val, tuple) else (X_val,), sample_weight_val,
                         ("X_val", "sample_weight_val"), "weight")
        return val_table, labels, weights

    def _encode_validation_targets(self, labels: np.ndarray, problem_type: str, weights: np.ndarray | None = None,
                                   train_targets: np.ndarray | None = None) -> np.ndarray:
        """``y_val`` encoded as the training targets are (class indices, standardised values); for
        regression, its targets of positive ``weights`` far from ``train_targets`` (the encoded
        training targets that count) are warned of, as far training targets are."""
        if problem_type == "regression":
            values = _regression_values(labels, "y_val")
            encoded = ((values - self.target_mean_) / self.target_std_).astype(np.float32)
            if (train_targets is not None and len(train_targets)
                    and not self._warn_validation_scale(train_targets, encoded)):  # (a whole scale: said once)
                reference = train_targets.astype(np.float64) * self.target_std_ + self.target_mean_
                _warn_far_targets(values if weights is None else values[weights > 0], reference, "y_val")
            return encoded
        index = {(c.item() if isinstance(c, np.generic) else c): i for i, c in enumerate(self.classes_)}
        plain = [v.item() if isinstance(v, np.generic) else v for v in labels.tolist()]
        unknown = sorted({v for v in plain if v not in index}, key=str)
        if unknown:
            raise InputError(_unknown_labels("y_val", unknown, list(index), "do not occur in y; y holds"))
        return np.asarray([index[v] for v in plain], dtype=np.int64)

    def _warn_validation_scale(self, targets: np.ndarray, val_targets: np.ndarray) -> bool:
        """Warn when the median of ``y_val`` lies more than :data:`FAR_VALIDATION_STDS` standard
        deviations of ``y`` beyond the range of ``y`` (both standardised as ``y``): another scale, as
        a ``TransformedTargetRegressor`` makes, which transforms ``y`` and passes ``y_val`` on as given
        (log(y) with y_val in units: the kept epoch chosen on errors that are mostly that difference).
        Whether it warned."""
        if not len(val_targets) or not len(targets):
            return False
        median, low, high = (float(np.median(val_targets.astype(np.float64))), float(targets.min()),
                             float(targets.max()))
        if max(low - median, median - high) <= FAR_VALIDATION_STDS:
            return False

        def shown(z: float) -> str:
            return f"{z * self.target_std_ + self.target_mean_:.6g}"

        warnings.warn(f"y_val: its median {shown(median)} lies more than {FAR_VALIDATION_STDS} standard deviations "
                      f"of y beyond y's range ({shown(low)} to {shown(high)}): y_val seems to be on another scale "
                      "than y, and the choices made on the validation rows (the kept epoch, early stopping, the "
                      "search's ranking) follow that difference" + _untransformed_target_hint(self),
                      AutoMMWarning, stacklevel=user_stacklevel())
        return True

    def _class_weights(self, encoded: np.ndarray, sample_weights: np.ndarray | None = None) -> list[float] | None:
        if self.class_weight is None or self.problem_type_ == "regression":
            return None
        # "balanced": every class the same total (sample) weight
        counts = np.bincount(encoded, weights=sample_weights, minlength=len(self.classes_)).astype(float)
        if self.class_weight == "balanced":
            weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
        else:
            classes = self.classes_.tolist()
            unknown = [k for k in self.class_weight if k not in set(classes)]
            # as scikit-learn's class weights: labels beyond a dict that names every class are classes these
            # rows lack (a cross-validation fold without a rare class), not a typo
            if unknown and not all(c in self.class_weight for c in classes):
                raise InputError(_unknown_labels("class_weight", unknown, classes, "are not among"))
            weights = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()])
            if not (weights * counts).sum() > 0:
                raise InputError(f"class_weight: {self.class_weight!r} gives every training row the weight 0")
        return (weights / (weights * counts).sum() * counts.sum()).tolist()

    def _holdout_split(self, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, holdout rows) of a fit without ``X_val``: a stratified ``holdout_frac``
        (under 10 rows, every row both, with a warning); a class's only row stays in training, and
        no class is held out whole. Under ``balanced_accuracy``, ``macro_f1`` or ``f1`` the holdout
        holds a row of each class of 2 rows or more (:func:`_holdout_holding_each_class`)."""
        train, valid = self._stratified_holdout(targets, seed)
        # (f1 too: the positive class's score alone, 0 on a holdout without it whatever the model)
        if self.metric in ("balanced_accuracy", "macro_f1", "f1") and self.problem_type_ != "regression" \
                and not np.array_equal(train, valid):
            return _holdout_holding_each_class(train, valid, targets, seed)
        return train, valid

    def _stratified_holdout(self, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(targets)
        indices = np.arange(n)
        if n < 10:  # too few samples to hold any out: validate on the training data
            warnings.warn(f"{n} samples are too few to hold any out: the validation score (fit_summary, "
                          "leaderboard_), the kept epoch and the search's choices are measured on the training "
                          "rows, so they say nothing of new data; pass X_val=, y_val= to validate on other rows",
                          AutoMMWarning, stacklevel=user_stacklevel())
            return indices, indices
        from sklearn.model_selection import train_test_split

        n_valid = max(1, int(round(self.holdout_frac * n)))
        stratify = None
        if self.problem_type_ != "regression":
            counts = np.bincount(targets)
            n_classes = int((counts > 0).sum())
            if n - 1 < n_classes:  # no holdout_frac helps
                raise InputError(f"y: {n_classes} classes among {n} samples, so no row can be held out for "
                                 "validation (a class held out would be one no model trains on); a classifier needs "
                                 "a second row of at least one class, or validation rows passed as X_val=, y_val= "
                                 "(if y is a number to predict, pass problem_type='regression'; if it identifies "
                                 "rows, it is no label)")
            if n - n_valid < n_classes:
                spare = n - n_classes
                raise InputError(f"holdout_frac: {self.holdout_frac} of the {n} samples holds out {n_valid} and "
                                 f"leaves {n - n_valid} to train on, fewer than the {n_classes} classes (every "
                                 f"class needs a training row); use holdout_frac={_largest_holdout_frac(n, spare):g} "
                                 f"or less (at most {spare} row{'s' if spare > 1 else ''} held out), or pass "
                                 "X_val=, y_val=")
            # a class's only row stays in training: held out, its class would be one no model
            # trains on, and the holdout would judge (and the decision rule weigh) a class never seen
            single = np.isin(targets, np.flatnonzero(counts == 1))
            if single.any() and n - single.sum() > n_valid:
                pool = indices[~single]
                pooled = np.bincount(targets[pool])
                if n_valid >= int((pooled > 0).sum()):
                    train, valid = train_test_split(pool, test_size=n_valid, random_state=seed, stratify=targets[pool])
                else:
                    train, valid = _holdout_keeping_each_class(pool, targets, n_valid, seed)
                return np.sort(np.concatenate([train, indices[single]])), np.sort(valid)
            if counts[counts > 0].min() >= 2 and n_valid >= n_classes:
                stratify = targets
            else:  # fewer holdout rows than classes: unstratified, but no class held out whole
                train, valid = _holdout_keeping_each_class(indices, targets, n_valid, seed)
                return np.sort(train), np.sort(valid)
        train, valid = train_test_split(indices, test_size=n_valid, random_state=seed, stratify=stratify)
        return np.sort(train), np.sort(valid)

    def _resolved_batch_size(self, device: torch.device) -> int:
        if self.batch_size != "auto":
            return int(self.batch_size)
        return 128 if device.type == "cuda" else 32

    def _frozen_batch_scale(self) -> int:
        """How much larger an automatic batch is for a model whose encoders are all frozen."""
        return FROZEN_BATCH_SCALE if self.batch_size == "auto" else 1

    def _resolved_num_workers(self, specs: Sequence[InputSpec]) -> int:
        if self.num_workers != "auto":
            return int(self.num_workers)
        # Worker processes pay off when decoding (images, audio) can overlap with training on spare
        # cores; on 2 cores or fewer they only compete with the training threads. Started by spawn or
        # forkserver (macOS, Windows), a loader's workers cost seconds each, every epoch (a 1-epoch fit
        # of 200 emoji took 85 s instead of 14 s, predicting 300 rows 35 s instead of 2), and rerun a
        # script's unguarded top level, which then fails.
        if not (any(s.modality not in ("text", "tabular") for s in specs) and workers_are_forked()):
            return 0
        cpus = usable_cpus()  # (not os.cpu_count(): a container's quota, taskset's mask)
        return min(4, cpus // 2) if cpus > 2 else 0

    @_explicit_signature
    def fit(self: _Estimator, *X: Any, y: Any = None, sample_weight: ArrayLike | None = None, X_val: Any = None,
            y_val: Any = None, sample_weight_val: ArrayLike | None = None, **unknown: Any) -> _Estimator:
        """Train on ``X`` (positional inputs, or one table) and labels ``y`` (the last
        positional argument, or ``y=``). Returns ``self``.

        ``sample_weight``: one number >= 0 per sample, or None (every sample counts once). A
        sample of weight 2 counts as two in the training losses (as if it were there twice), and
        every holdout loss and score (the kept epoch, the search's ranking of trials, the
        ensemble's selection) is a weighted mean; samples of weight 0 are left out altogether.
        Only the weights' ratios matter.

        ``X_val``, ``y_val`` (and ``sample_weight_val``): validation data, used instead of a
        random ``holdout_frac`` of the rows. ``X_val`` has the inputs of ``X``: the same columns
        for a table, the same number of positional inputs as a tuple (one input: the column
        itself). Every choice made on the holdout (the kept epoch, early stopping, the search's
        ranking and pruning, the ensemble's selection) is then made on them, and no model
        trains on them (bags fold the training rows only; the linear, nearest-neighbour and
        gradient-boosted models are not refitted with them). Their labels must be classes of ``y``.

        Ctrl-C (``KeyboardInterrupt``) during a search stops it: the trials finished so far
        make the model, with a warning; without a search it ends training with the best epoch
        so far (a bagged fit, with its finished fold models; the gradient-boosted trees, after the
        iteration in progress, with the iterations grown). Called by scikit-learn's model
        selection (``cross_val_score``, ``GridSearchCV``, ...), where stopping one fit would
        only move on to the next, Ctrl-C propagates. Interrupted before any result (or a
        second time), and whenever ``fit`` raises, the estimator keeps the state it had before
        the call: a fitted estimator still predicts with its earlier model. A ``fit`` that returns
        starts afresh (scikit-learn's convention): it does not train an earlier fit's model further.
        numpy's and torch's global random generators are left as ``fit`` found them
        (:func:`global_random_state_kept`)."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.fit, unknown, X)
        earlier = {name: value for name, value in vars(self).items() if _is_learned(name)}
        torch_threads_after_fork()
        try:
            # without random_state, one draw from numpy's global generator seeds the fit (as
            # scikit-learn's estimators draw); otherwise fit leaves the global generators alone
            drawn = int(np.random.randint(0, 2**31 - 1)) if self.random_state is None else None
            if isinstance(self.random_state, np.random.RandomState):  # each fit draws from the user's generator
                drawn = int(self.random_state.randint(0, 2**31 - 1))
            # training needs gradients whatever the caller's mode (fit called under torch.no_grad()
            # or torch.inference_mode(), as skorch also allows); the caller's mode is back after
            with verbose_logging(self._verbose_level()), global_random_state_kept(), float32_default(), \
                    torch_threads_capped(), torch.inference_mode(False), torch.enable_grad():  # verbose checked in _fit
                return self._fit(X, y, sample_weight, (X_val, y_val, sample_weight_val), drawn)
        except BaseException:
            for name in [name for name in vars(self) if _is_learned(name)]:
                del self.__dict__[name]
            self.__dict__.update(earlier)
            raise

    def _fit(self, X: tuple, y: Any, sample_weight: Any = None, validation: tuple = (None, None, None),
             drawn_seed: int | None = None):
        start = time.monotonic()
        X, y = _split_labels(X, y, "fit")
        self._check_augmentation_plugins()
        (reg, table, labels, roles, specs, encoder_choices, fusion_choice, aug_choices,
         problem_type, label_columns, given_names) = self._prepare(X, y)
        weights = _check_sample_weight(sample_weight, len(labels))
        _warn_misaligned(X, sample_weight, ("X", "sample_weight"), "weight")
        val = self._validation_data(table, roles, *validation)
        if val is not None and (seen := rows_repeated(val[0], table)):
            warnings.warn(f"X_val: {seen} of {len(val[0])} rows have the features of a training row (repeated "
                          "rows): the validation score, which picks the epochs and the model, counts rows the "
                          "model has seen; drop them from X_val or X", AutoMMWarning, stacklevel=user_stacklevel())
        for attr in ("classes_", "target_mean_", "target_std_", "problem_type_"):  # (problem_type_: the tags below)
            self.__dict__.pop(attr, None)
        self._check_metric(problem_type)
        if problem_type == "regression" and self.class_weight is not None:  # (it was ignored, without a word)
            raise InputError(f"class_weight: {self.class_weight!r} weighs classes, but y is a regression target; "
                             "weigh rows with fit(..., sample_weight=w)")
        if (get_tags(self).estimator_type is None and _called_by_model_selection()
                and not _folds_chosen_by_a_type(self)):
            warnings.warn(f"{type(self).__name__} with problem_type='auto' is neither a classifier nor a regressor to scikit-learn, "
                          "so a number of folds (an integer cv, or cv left at its default) splits its rows in order, "
                          f"unstratified; use AutoMMClassifier or AutoMMRegressor, or pass problem_type={problem_type!r}",
                          AutoMMWarning, stacklevel=user_stacklevel())
        self.problem_type_ = problem_type
        targets = self._encode_targets(labels, problem_type, weights)
        if self.metric == "f1" and problem_type == "binary":
            share = float(np.average(targets == 1, weights=weights))
            if share > 0.5:
                positive, negative = (c.item() if isinstance(c, np.generic) else c for c in self.classes_[::-1])
                # never "50%" (no majority) nor "100%" (no other class)
                shown = enough_digits(lambda places: f"{share:.{places}%}", 0, 4,
                                      lambda text: not 50 < float(text[:-1]) < 100)
                warnings.warn(f"metric='f1' scores the F1 of the positive class, the second of classes_ (sorted): "
                              f"{positive!r}, which is the majority ({shown} of the rows), not {negative!r}; "
                              f"if {negative!r} is the class to find, name the labels so that it sorts second "
                              f"(e.g. y == {negative!r}), or use metric='macro_f1'", AutoMMWarning,
                              stacklevel=user_stacklevel())
        table, targets, weights, is_train = self._drop_unweighted(*self._with_validation_rows(
            table, targets, weights, val, problem_type))
        seed = int(drawn_seed) if drawn_seed is not None else int(self.random_state)
        device = resolve_device(self.device)

        self.input_positional_ = table.positional
        self.columns_ = table.names
        # the columns given: those read, and the identifiers left out (the names scikit-learn checks)
        self.n_features_in_ = len(given_names)
        self.identifier_columns_ = [name for name in given_names if name not in table.names]
        # as scikit-learn: only a DataFrame whose column names are all strings has feature names
        # (table.names are strings always: read_csv(header=None)'s 0, 1 become "0", "1")
        # (a polars DataFrame or pyarrow Table too, as scikit-learn reads them: their names are strings)
        frame_like = _is_dataframe(X[0]) or (hasattr(X[0], "schema") and hasattr(X[0], "to_pandas"))
        if not table.positional and frame_like and _has_feature_names(X[0]):
            self.feature_names_in_ = np.asarray(given_names, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self.column_roles_ = roles
        self.inputs_ = specs
        self.seed_ = seed

        np.random.seed(seed % (2**32))
        if is_train is not None:
            train_idx, valid_idx = np.flatnonzero(is_train), np.flatnonzero(~is_train)
        else:
            train_idx, valid_idx = self._holdout_split(targets, seed)
        if self.metric in ("balanced_accuracy", "macro_f1", "f1") and problem_type != "regression" \
                and not np.array_equal(train_idx, valid_idx):
            absent = np.setdiff1d(np.unique(targets[train_idx]), np.unique(targets[valid_idx]))
            if self.metric == "f1":  # the positive class only: the F1 score of a holdout without it is 0 whatever the model
                if 1 in absent:
                    positive = self.classes_[1].item() if isinstance(self.classes_[1], np.generic) else self.classes_[1]
                    warnings.warn(f"metric='f1': the {len(valid_idx)} validation rows hold no row of the positive class "
                                  f"{positive!r}, so every model's validation F1 is 0: the validation score, the search's "
                                  "ranking and the decision weights say nothing of how well it finds that class; pass "
                                  "X_val=, y_val= holding rows of it" + ("" if is_train is not None else
                                                                         " (a single positive row stays in training)"),
                                  AutoMMWarning, stacklevel=user_stacklevel())
            elif len(absent):
                shown = ", ".join(repr(self.classes_[k].item() if isinstance(self.classes_[k], np.generic)
                                       else self.classes_[k]) for k in absent[:5])
                warnings.warn(f"metric={self.metric!r}: the {len(valid_idx)} validation rows hold no row of "
                              f"{len(absent)} class{'es' if len(absent) > 1 else ''} ({shown}{', ...' if len(absent) > 5 else ''}): "
                              f"the validation score, the search's ranking and the decision weights average over "
                              f"the other {len(np.unique(targets[valid_idx]))} classes and say nothing of "
                              f"{'them' if len(absent) > 1 else 'it'}{_absent_classes_hint(is_train is not None)}",
                              AutoMMWarning, stacklevel=user_stacklevel())
        # class_weight="balanced" counts the rows models train on: not the user's validation rows
        counted = train_idx if is_train is not None else np.arange(len(targets))
        class_weights = self._class_weights(targets[counted], None if weights is None else weights[counted])
        data = PreparedData(
            inputs=specs, values={spec.name: spec.values(table) for spec in specs}, targets=targets,
            problem_type=problem_type, n_outputs=1 if problem_type == "regression" else len(self.classes_),
            train_index=train_idx, valid_index=valid_idx, seed=seed, device=device,
            num_workers=self._resolved_num_workers(specs), class_weights=class_weights,
            amp=bool(self.amp), cache_dir=self._encoder_cache_dir(), sample_weights=weights, holdout_given=val is not None,
            metric=self.metric, target_scale=self.target_std_ if problem_type == "regression" else None)
        if self.bag_folds != "auto" and int(self.bag_folds) > len(data.rows):
            raise InputError(f"bag_folds: {self.bag_folds} folds need at least as many training rows; there are "
                             f"{len(data.rows)}")
        config = {
            "encoders": {spec.name: {"name": n, **p} for spec, (n, p) in zip(specs, encoder_choices)},
            "fusion": {"name": fusion_choice[0], **fusion_choice[1]},
            "augmentations": [{"name": n, **p} for n, p in aug_choices],
            "training": {"learning_rate": float(self.learning_rate), "weight_decay": float(self.weight_decay),
                         "batch_size": self._resolved_batch_size(device), "max_epochs": int(self.max_epochs),
                         "label_smoothing": float(self.label_smoothing), "head_dropout": float(self.head_dropout),
                         "patience": int(self.patience)},
        }
        deadline = None
        if self.time_limit is not None:
            _import_optimizer_machinery()  # once per process, before the trials' shares are set
            deadline = fit_deadline(start, self.time_limit, plots=self.plot_dir is not None)
        with image_cache():  # decoded images shared by every epoch and trial of this fit
            candidate = self._fit_candidates(data, config, deadline, graceful=not _called_by_model_selection())
        if candidate.cut_in_first_epoch and "ensemble_" not in candidate.extras:  # (an ensemble: the search warns)
            warnings.warn(_barely_trained(candidate, self.time_limit, data), AutoMMWarning, stacklevel=user_stacklevel())
        self._adopt(candidate, data)
        self.fit_seconds_ = time.monotonic() - start
        # the columns that held the labels (warned about above): named when predict lacks them
        self._label_columns = tuple(label_columns)
        return self

    def _fit_candidates(self, data: PreparedData, config: dict, deadline: float | None,
                        graceful: bool = True) -> Candidate:
        """Train the model(s) and return the one to keep: the search when one is asked for
        (see :func:`automm.search.search_requested`), else the one configuration (whose one-off
        work, such as computing frozen features, stops at the deadline too: with no model to
        keep, ``fit`` then raises :class:`TimeLimitExceeded`, also for the boosted trees or the
        nearest-neighbour model stopped before a result, which raise ``TimeoutError``)."""
        from . import search

        if search.search_requested(self):
            with device_scope(data.device):
                return search.run_search(self, data, config, deadline, graceful=graceful)
        from .interrupts import hard_stop

        # as a search's trials: code that does not watch the deadline (a plugin's prepare) is
        # interrupted once the grace after it has passed
        hard_deadline = None if deadline is None else deadline + search.hard_grace(deadline)
        if hard_deadline is not None and time.monotonic() >= hard_deadline:  # (the alarm would blame the training's code)
            raise TimeLimitExceeded(f"time_limit={self.time_limit:g} s ended before training started: the work "
                                    "before it (reading the data, first imports) took the budget; give fit more time")
        try:
            with hard_stop(hard_deadline), deadline_scope(deadline), device_scope(data.device):
                candidate = self._fit_one(data, config, deadline, graceful)
        except TimeoutError as exc:  # the boosted trees or the nearest-neighbour model, stopped before a result
            if deadline is None or CUT_BEFORE_LEARNING not in str(exc):  # (a plugin's own: a socket's, ...)
                raise
            raise TimeLimitExceeded(f"time_limit={self.time_limit:g} s ended before the model finished ({exc}); "
                                    "give fit more time") from exc
        candidate.temperature = candidate_temperature(data, candidate)  # a bag's: of its out-of-fold outputs
        for member in getattr(candidate.extras.get("ensemble_"), "members", ()):  # a bag: each fold model's
            member.temperature = candidate.temperature
        candidate.decision_weights = candidate_decision_weights(data, candidate)
        candidate.decided_score = candidate_decided_score(data, candidate)
        return candidate

    def _fit_one(self, data: PreparedData, config: dict, deadline: float | None, graceful: bool) -> Candidate:
        """The one configuration trained (bagged as ``bag_folds`` says); on CUDA, out of GPU
        memory, again with half the batch size, with a warning."""
        live = without_inert_augmentations(config, data.inputs)
        dropped = [a["name"] for a in config["augmentations"] if a not in live["augmentations"]]
        if dropped and isinstance(self.augmentations, (list, tuple)):  # named by the user, not the defaults
            warnings.warn(f"augmentations: {', '.join(map(repr, dropped))} cannot act here: the encoders of "
                          f"{'its' if len(dropped) == 1 else 'their'} modality read features computed once "
                          f"(frozen, cached), so the model trains without {'it' if len(dropped) == 1 else 'them'}",
                          AutoMMWarning, stacklevel=user_stacklevel())
        config = trainable_config(live, data.inputs, self._frozen_batch_scale())
        _warn_untrained_neighbors(data, config)
        _refuse_mixed_boosting(config, data.inputs)
        n_folds = bag_folds_for(self.bag_folds, data, config)

        def train(config: dict) -> Candidate:
            if n_folds > 1:
                return train_bagged(data, config, n_folds, deadline=deadline, callbacks=self._extra_callbacks(),
                                    verbose=self.verbose, stop_on_interrupt=graceful)
            return train_candidate(data, config, deadline=deadline, callbacks=self._extra_callbacks(),
                                   verbose=self.verbose, stop_on_interrupt=graceful)

        def warn(batch: int, smaller: int) -> None:
            warnings.warn(f"out of GPU memory with batch_size={batch}: training again with batch_size={smaller}",
                          AutoMMWarning, stacklevel=user_stacklevel())

        candidate = retry_with_smaller_batches(train, config, data.device, on_retry=warn)
        if (n_folds > 1 and candidate.bag is None and candidate.cut_in_first_epoch and not candidate.interrupted
                and deadline is not None and deadline > time.monotonic()):
            # each fold had 1/n_folds of the time: the first fold's model, cut short on part of the rows, was kept
            # and the rest of the time went unused (emoji, time_limit=10, bag_folds=5: 2.1 s, test 0.204; unbagged 0.472)
            warnings.warn(f"bag_folds={self.bag_folds}: each of the {n_folds} folds has 1/{n_folds} of the time, and "
                          f"the first did not finish one pass over its rows ({candidate.cut_in_first_epoch}): trained "
                          f"one model, unbagged, in the {deadline - time.monotonic():.0f} s left (give more time, or "
                          "bag_folds=1)", AutoMMWarning, stacklevel=user_stacklevel())
            n_folds = 1
            candidate = retry_with_smaller_batches(train, config, data.device, on_retry=warn)
        if n_folds > 1:
            from .ensemble import Ensemble, ensemble_members

            if candidate.bag is not None:
                candidate.extras["ensemble_"] = Ensemble(ensemble_members(0, candidate, 1.0), data.problem_type)
            if candidate.interrupted:
                warnings.warn(f"fit {candidate.stop_reason}", AutoMMWarning, stacklevel=user_stacklevel())
            return candidate
        if candidate.interrupted:
            from .boosting import is_boosted

            done = (candidate.stop_reason if is_boosted(candidate.config)  # (its iterations grown: no epochs)
                    else f"interrupted (KeyboardInterrupt) after {len(candidate.history)} epochs: kept epoch "
                         f"{candidate.best_epoch}")
            warnings.warn(f"fit {done} ({candidate_score_text(data, candidate)})", AutoMMWarning,
                          stacklevel=user_stacklevel())
        return candidate

    def _adopt(self, candidate: Candidate, data: PreparedData) -> None:
        self.config_ = candidate.config
        self.encoder_choices_ = dict(candidate.config["encoders"])
        self.fusion_choice_ = dict(candidate.config["fusion"])
        self.augmentation_choices_ = list(candidate.config["augmentations"])
        self.class_weights_ = data.class_weights
        self.model_ = candidate.model.eval()
        self.device_ = data.device
        self.history_ = candidate.history
        self.best_epoch_ = candidate.best_epoch
        self.best_score_ = candidate.best_score
        #: what best_score_ was measured on ("holdout", "out-of-fold", "X_val", "training rows"), and its rows
        self.validation_on_, self.validation_rows_ = scored_on(data, candidate)
        #: a regression's R² on those rows (None where best_score_ is no squared error: see validation_r2)
        self.validation_r2_ = validation_r2(data, candidate.best_score, self.validation_on_)
        self.stop_reason_ = candidate.stop_reason
        #: whether Ctrl-C cut the fit short (its model: the best of what had finished)
        self.interrupted_ = bool(candidate.interrupted)
        self.decision_weights_ = candidate.decision_weights
        self.decided_score_ = candidate.decided_score
        self.temperature_ = 1.0 if "ensemble_" in candidate.extras else float(candidate.temperature)
        self.batch_size_ = int(candidate.config["training"]["batch_size"])
        self.num_workers_ = data.num_workers
        # The search's results (leaderboard_, ensemble_, ...); a fit without search has none.
        from .search import RESULT_ATTRIBUTES

        for attr in (*RESULT_ATTRIBUTES, "trial_counts_", "pareto_summary_"):  # (the last two: a loaded model's record)
            self.__dict__.pop(attr, None)
            if attr in candidate.extras:
                setattr(self, attr, candidate.extras[attr])

    def fit_summary(self) -> dict:
        """What ``fit`` did and kept, in plain values (``automm fit`` prints the same):
        ``problem_type`` (and ``n_classes``), each column's role (``columns``), the identifiers fit left
        out (``identifier_columns``, where there are any), the kept model's
        ``components`` (its ``encoders`` and ``fusion``, and the ``inputs`` it reads with their
        columns: an input no kept model reads, as the search's linear model may leave an image out,
        is not listed; an ensemble's are those any member reads), its holdout score
        (``validation_score``; an ensemble's is its pooled members' score on the rows its weights
        were chosen on, the holdout or out-of-fold; measured as ``validation_metric`` on
        ``validation_rows`` rows of ``validation_on``: ``"holdout"``, ``"out-of-fold"`` (a bag's
        outputs over the training rows; of a bag stopped before its last fold, over the rows of the
        folds it trained), ``"X_val"`` or ``"training rows"`` (too few to hold any
        out); for regression, where it is of standardised targets, also ``validation_rmse`` in the
        target's units and ``validation_r2``, the R² of the same rows (what ``metric="r2"`` asks
        for), or, under ``metric="mae"``, ``validation_mae`` in the target's units), ``epochs_run``,
        ``best_epoch`` and ``stop_reason`` (for the
        search's linear, nearest-neighbour or gradient-boosted model, ``solver`` is set and its
        "epochs" are the settings it tried, the one kept in ``kept_setting``: ``l2_c``, or ``k`` and
        ``temperature``, or the boosting iterations kept, ``n_iter``, and what they were grown
        with, ``learning_rate``, ``max_leaf_nodes``, ``min_samples_leaf``, ``l2_regularization``); after a
        search, its ``trials`` by state, the ``best_trial`` and the ``ensemble`` (pooling and
        each member trial's weight and components); after a multi-objective search, the
        ``pareto`` set's size and objectives and the chosen trial's values; the ``decision_weights`` of ``predict``'s
        rule when the metric set them (:mod:`automm.decision`), with ``predict_validation_score``, the metric
        of ``predict``'s decisions on the rows that chose those weights (``validation_score`` is the most
        probable class's, by which trials are ranked; this one is optimistic by the choice); ``fit_seconds``. A loaded model
        says the same: its directory keeps these facts (manifest key ``fit``). ``validation_score`` is
        measured on the rows that also chose the model (epoch, trial, ensemble weights), so it is
        optimistic: score data ``fit`` never saw for an unbiased estimate."""
        self._check_fitted()
        from .components.stack import describe_encoder
        from .leaderboard import trial_counts

        state = self.__dict__
        score = state.get("best_score_")
        # the inputs the kept model reads (an ensemble: any of its members; the search's linear or
        # nearest-neighbour model may read only some)
        kept_configs = [self.config_, *(m.config for m in getattr(state.get("ensemble_"), "members", ()))]
        read = {name for config in kept_configs for name in config["encoders"]}
        summary = {"problem_type": self.problem_type_}
        if self.problem_type_ != "regression":
            summary["n_classes"] = int(len(self.classes_))
        summary.update({
            "columns": dict(self.column_roles_),
            **({"identifier_columns": list(state["identifier_columns_"])} if state.get("identifier_columns_") else {}),
            "components": {"encoders": {k: describe_encoder(v) for k, v in self.config_["encoders"].items()},
                           "fusion": self.config_["fusion"].get("name"),
                           "inputs": {spec.name: list(spec.columns) for spec in self.inputs_ if spec.name in read}},
            "validation_metric": holdout_score_name(self.metric, self.problem_type_),
            "validation_score": None if score is None else float(score),
            "validation_on": state.get("validation_on_"),
            "validation_rows": None if state.get("validation_rows_") is None else int(state["validation_rows_"]),
            "epochs_run": len(self.history_ or []),
            "best_epoch": int(self.best_epoch_),
            "stop_reason": state.get("stop_reason_"),
        })
        if state.get("interrupted_"):  # (only in the process that fitted it: a saved model does not keep it)
            summary["interrupted"] = True
        if self.problem_type_ == "regression" and score is not None and math.isfinite(float(score)):
            # the holdout error in the target's own units (the score is of standardised targets), and its R²
            if self.metric == "mae":
                summary["validation_mae"] = float(-score * self.target_std_)
            else:
                summary["validation_rmse"] = float(math.sqrt(max(0.0, -float(score))) * self.target_std_)
                if state.get("validation_r2_") is not None:
                    summary["validation_r2"] = float(state["validation_r2_"])
        from .boosting import BOOSTING_SOLVER, is_boosted
        from .neighbors import NEIGHBORS_SOLVER, is_neighbors

        solver = (NEIGHBORS_SOLVER if is_neighbors(self.config_) else BOOSTING_SOLVER if is_boosted(self.config_)
                  else self.config_["training"].get("solver"))
        if solver:  # the linear, nearest-neighbour or boosted model: its "epochs" are the settings it tried
            summary["solver"] = solver
            kept = self.history_[max(0, int(self.best_epoch_) - 1)] if self.history_ else {}
            summary["kept_setting"] = {k: kept[k] for k in ("l2_c", "k", "temperature", "n_iter", "learning_rate",
                                                             "max_leaf_nodes", "min_samples_leaf", "l2_regularization")
                                       if k in kept}
        leaderboard = state.get("leaderboard_")
        if leaderboard is not None and len(leaderboard):
            summary["trials"] = trial_counts(leaderboard)
        elif state.get("trial_counts_") is not None:  # a loaded model: what its directory recorded
            summary["trials"] = dict(state["trial_counts_"])
        for attr, key in (("best_trial_", "best_trial"), ("study_name_", "study_name")):
            if state.get(attr) is not None:
                summary[key] = state[attr]
        ensemble = state.get("ensemble_")
        if ensemble is not None:
            summary["ensemble"] = {"pooling": ensemble.pooling, "models": len(ensemble.members),
                                   "members": ensemble.by_trial()}
        front = state.get("pareto_front_")
        if front is not None and len(front):  # a multi-objective search: the Pareto set and the model chosen
            cost = [c for c in front.columns if c not in ("number", "score", "chosen")][0]
            kept = front[front["chosen"]]
            if not len(kept):  # the trial the rule chose had no model here: the model kept is off the front
                board = state.get("leaderboard_")
                kept = board[board["number"] == state.get("best_trial_")]
            chosen = kept.iloc[0]
            summary["pareto"] = {"objectives": ["score", cost], "size": int(len(front)),
                                 "chosen": {"trial": int(chosen["number"]), "score": float(chosen["score"]),
                                            cost: float(chosen[cost])}}
        elif state.get("pareto_summary_") is not None:  # a loaded model: what its directory recorded
            summary["pareto"] = dict(state["pareto_summary_"])
        if state.get("decision_weights_") is not None:  # automm.decision
            summary["decision_weights"] = {str(c): float(w)
                                           for c, w in zip(self.classes_, self.decision_weights_)}
            if state.get("decided_score_") is not None:  # predict's own score: validation_score is argmax's
                summary["predict_validation_score"] = float(self.decided_score_)
        if state.get("fit_seconds_") is not None:
            summary["fit_seconds"] = round(float(self.fit_seconds_), 2)
        return summary

    def _extra_callbacks(self) -> list:
        """The callbacks of every training run of ``fit``: ``callbacks`` (a subclass may add its own)."""
        return list(self.callbacks or ())

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "model_")
        except Exception:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit() before "
                                 "predict, predict_proba, score, transform, fit_summary or save") from None

    def _labels_among(self, columns: Sequence[str]) -> str:
        """``"; column 'category' held the labels y in fit ..."`` for those of ``columns`` that did
        (the fit warned of them: the model reads the answer off them, and new rows lack it), else ``""``."""
        held = [c for c in getattr(self, "_label_columns", ()) if c in columns]
        if not held:
            return ""
        which = f"column {held[0]!r}" if len(held) == 1 else f"columns {held}"
        fix = ("fit again without that input" if self.input_positional_
               else f"fit again without {'it' if len(held) == 1 else 'them'}: X.drop(columns={held})")
        return (f"; {which} held the labels y in every row in fit (warned then): the model reads the answer off "
                f"{'it' if len(held) == 1 else 'them'}, so it cannot predict rows without the answer: {fix}")

    def _one_image_hint(self, X: tuple) -> str:
        """For a model of one image input given one 2-D array of pixels alone (one greyscale image,
        read as a table of W columns): ``"; ... pass [image]"``, else ``""``."""
        value = X[0] if len(X) == 1 else None
        if not (isinstance(value, np.ndarray) and value.ndim == 2 and min(value.shape) > 4
                and value.dtype.kind in "uif" and [self.column_roles_.get(c) for c in self.columns_] == ["image"]):
            return ""
        return (f"; an array of shape {value.shape} is one greyscale image (H, W), not {value.shape[0]} rows of "
                f"{value.shape[1]} columns: pass [image] for one image, or a stack (N, H, W)")

    def _table_for_prediction(self, X: tuple) -> Table:
        self._check_fitted()
        if not self.input_positional_:
            X = _read_columns_only(X, self.columns_)
        table = as_table(X, records=not self.input_positional_)
        if self.input_positional_:
            expected = shown_roles({c: self.column_roles_.get(c, "?") for c in self.columns_}, form="{column}: {role}")
            if len(table.names) != len(self.columns_):  # scikit-learn's wording for a wrong number of features
                one_d = " (Reshape your data: a 1-D input is one column)" if len(X) == 1 and len(table.names) == 1 else ""
                raise InputError(f"X has {len(table.names)} features, but {type(self).__name__} is expecting "
                                 f"{len(self.columns_)} features as input: fit was given {len(self.columns_)} "
                                 f"unnamed input column(s) ({expected}); give the same, in the same order: one "
                                 f"positional argument per input, or one 2-D array{one_d}{self._one_image_hint(X)}"
                                 f"{self._labels_among(self.columns_)}")
            if not table.positional:  # as scikit-learn does: a table's columns taken in order, with a warning
                if len(X) != 1 or _has_feature_names(X[0]):  # (pd.DataFrame(array)'s 0, 1, ... are none)
                    warnings.warn(f"X has feature names, but {type(self).__name__} was fitted without feature names: "
                                  f"its columns {shown_names(table.names)} are taken in order as {expected}",
                                  AutoMMWarning, stacklevel=user_stacklevel())
                table = table.with_columns(dict(zip(self.columns_, table.columns.values())), positional=True)
        else:
            if table.positional:
                n = len(table.names)
                got = (f"an array of {n} unnamed column{'s' if n != 1 else ''}" if len(X) == 1
                       else f"{n} positional inputs")
                columns = self.columns_ if len(self.columns_) <= NAMES_SHOWN else "model.columns_"
                hint = (f" (e.g. pandas.DataFrame(X, columns={columns}))"
                        if len(X) == 1 and n == len(self.columns_) else "")
                if len(X) == 1 and _is_row_series(X[0], self.columns_):
                    got, hint = "a pandas Series, one row of a table", " (one row: frame.iloc[[i]] or row.to_frame().T)"
                raise InputError(f"X: the model was fitted on a table with columns {shown_names(self.columns_)}, got "
                                 f"{got}; pass a pandas DataFrame{hint}, a dict of columns or a list of records "
                                 "(dicts)")
            missing = [c for c in self.columns_ if c not in table.columns]
            if missing and len(X) == 1 and _records(X[0]) and len(missing) < len(self.columns_):
                # records: a key no record has is a missing value in each (unless a key there looks
                # like its misspelling, named below)
                from .suggestions import close_match

                others = [str(c) for c in table.names if c not in self.columns_]
                if not any(close_match(str(c), others) for c in missing):
                    table = table.with_columns({**table.columns, **{c: [None] * len(table) for c in missing}})
                    missing = []
            if missing:
                from .suggestions import rename_hint

                hint = rename_hint(missing, [c for c in table.names if c not in self.columns_])
                labels = self._labels_among(missing)
                raise InputError(f"X: columns {shown_names(missing)} seen in fit are missing; got columns "
                                 f"{shown_names(table.names)}{hint}"
                                 + (labels or " (to predict without one, give its column with None in every row)"))
            table = table.with_columns({c: table.columns[c] for c in self.columns_})
        with warned_once_in(_said_for_model(self.model_)):  # (scikit-learn's tools predict the same rows many times)
            table = validate_columns(table, self.column_roles_, roles_fixed=True)
        self._warn_unfamiliar(table)
        self._warn_without_input(table)
        return table

    def _warn_without_input(self, table: Table) -> None:
        """Warn when rows to predict have no input at all (every column missing): the model gives
        each the same output, learnt from no data of theirs (the linear model's bias, a network's
        output for zero embeddings), which nothing else would tell."""
        rows = rows_without_input(table, self.inputs_)
        if rows:
            listed = ", ".join(table.row_name(r) for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
            _warn_once_for_model(self.model_, f"X: {len(rows)} of {len(table)} rows have no input at all (every "
                                              f"column missing: {listed}): each gets the same prediction, made from "
                                              "no data (leave such rows out, or give them a value)", kind="no input")

    def _warn_unfamiliar(self, table: Table) -> None:
        """Warn with what the kept models' encoders find unlike anything ``fit`` saw in the rows
        to predict (:meth:`automm.Encoder.unfamiliar_values`, e.g. categories never seen)."""
        ensemble = self.__dict__.get("ensemble_")
        models = [self.model_] + ([m.model for m in ensemble.members] if ensemble is not None else [])
        judging = {name for model in models for name, encoder in model.encoders.items() if _judges(encoder)}
        if not judging or len(table) < UNFAMILIAR_MIN_VALUES:
            return
        sample = table if len(table) <= PREDICT_CHUNK_ROWS else table.subset(range(PREDICT_CHUNK_ROWS))
        values = {spec.name: spec.values(sample) for spec in self.inputs_ if spec.name in judging}
        # an encoder of one column's values (not the table encoder) leaves its name to the core
        named = {spec.name: f"column {spec.columns[0]!r}: " for spec in self.inputs_
                 if spec.modality != "tabular" and len(spec.columns) == 1}
        said: list[str] = []
        for model in models:
            for name, encoder in model.encoders.items():
                if name in values:
                    said += [m for m in (named.get(name, "") + m for m in encoder.unfamiliar_values(values[name]))
                             if m not in said]
        for message in said:
            _warn_once_for_model(self.model_, f"X: {message}")

    def _encoder_cache_dir(self) -> str | None:
        """``cache_dir`` as ``Encoder.prepare`` and ``pending_share`` take it: a str (or None), whatever
        path type it was given as (a plugin's ``cache_dir + "/..."`` met a ``Path``)."""
        cache_dir = getattr(self, "cache_dir", None)
        return None if cache_dir is None else os.fspath(cache_dir)

    def _loader(self, table: Table):
        values = {spec.name: spec.values(table) for spec in self.inputs_}
        encoders = dict(self.model_.encoders.items())
        with device_scope(self.device_):
            for name, encoder in encoders.items():  # Encoder.prepare hook (feature caches)
                encoder.prepare(values[name], cache_dir=self._encoder_cache_dir())
        dataset = MultimodalDataset(values, encoders, columns=single_columns(self.inputs_),
                                    row_names=RowNames(table.row_labels, table.row_word))
        return make_loader(dataset, self.batch_size_ * 2, False, self._prediction_workers(), 0,
                           BatchCollator(encoders), self.device_.type == "cuda")

    def _prediction_workers(self) -> int:
        """DataLoader worker processes for predicting: the ``num_workers`` parameter as it is now
        (``set_params`` after ``load`` included); :func:`~automm.training.make_loader` starts none
        for a request of a few rows, nor outside the main thread."""
        return self._resolved_num_workers(self.inputs_)

    def _raw_outputs(self, X: tuple, n_labels: int | None = None) -> np.ndarray:
        """The model's outputs for ``X``; with ``n_labels`` (``score``'s), a row count other than it
        is refused before any work."""
        # (float32: a plugin's network built here and a fusion's own tensors, whatever the caller's default)
        torch_threads_after_fork()
        with verbose_logging(self._verbose_level()), float32_default(), \
                torch_threads_capped():  # long work on new rows (checks, features) says so
            table = self._table_for_prediction(X)
            if n_labels is not None and n_labels != len(table):
                raise InputError(f"y: {n_labels} labels for {len(table)} samples")
            outputs = []
            for chunk in _chunks(table):  # memory bounded by a chunk's samples
                with image_cache():  # an ensemble's members decode each image once
                    outputs.append(self._raw_outputs_of_table(chunk))
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _verbose_level(self) -> int:
        return int(self.verbose) if isinstance(self.verbose, (int, np.integer)) and self.verbose > 0 else 0

    def _raw_outputs_of_table(self, table: Table) -> np.ndarray:
        if self.__dict__.get("ensemble_") is not None:  # averaged member probabilities (automm.ensemble)
            return self.ensemble_.raw_outputs(self, table)
        outputs = model_outputs(self.model_, self._loader(table), self.device_,
                                amp=bool(self.amp) and self.device_.type == "cuda")
        temperature = self.__dict__.get("temperature_", 1.0)  # a lone classifier's, fitted on its holdout
        return outputs * np.float32(temperature) if temperature != 1.0 else outputs

    def _has_probabilities(self) -> bool:
        """Whether ``predict_proba`` exists: not for a regressor, nor once fitted to a regression
        (scikit-learn's tools test ``hasattr(estimator, "predict_proba")``)."""
        return (self._forced_problem_type != "regression" and self.__dict__.get("problem_type_") != "regression"
                and self.__dict__.get("problem_type") != "regression")

    def _no_probabilities_reason(self) -> str | None:
        """Why ``predict_proba`` is missing (see :meth:`_has_probabilities`), with what gives it; None
        where it exists. The AttributeError of scikit-learn's ``available_if`` names no reason, and a
        regression read from class codes (``AutoMM()`` on integers 0..k-1 with many distinct values,
        as ``cross_val_predict(method="predict_proba")`` encodes labels) met it unexplained."""
        fitted, asked = self.__dict__.get("problem_type_"), self.__dict__.get("problem_type")
        if self._has_probabilities():
            return None
        if self._forced_problem_type == "regression":
            return f"{type(self).__name__} fits a regression, which has no class probabilities; use AutoMMClassifier"
        if fitted == "regression" and asked != "regression":
            how = ("fit read the labels as amounts (numbers with many distinct values)" if asked == "auto"
                   else "the model was fitted to a regression (problem_type='regression' then)")
            return (f"problem_type_ == 'regression': {how}, and a regression has no class probabilities; if they are "
                    "classes (e.g. codes 0..k-1, as cross_val_predict(method='predict_proba') passes them), use "
                    "AutoMMClassifier or AutoMM(problem_type='multiclass')")
        return ("problem_type='regression': a regression has no class probabilities; for classes use "
                "AutoMMClassifier or problem_type='auto' (or 'multiclass', 'binary')")

    @available_if(_has_probabilities)
    @_explicit_signature
    def predict_proba(self, *X: Any, **unknown: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``
        (classification only: a regressor has no ``predict_proba`` attribute)."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.predict_proba, unknown, X)
        return self._predictions_and_probabilities(X)[1]

    @available_if(_has_probabilities)
    @_explicit_signature
    def predict_log_proba(self, *X: Any, **unknown: Any) -> np.ndarray:
        """The logarithms of :meth:`predict_proba`, computed as a log-softmax: finite where a
        probability rounds to 0 (scikit-learn's classifiers have it; a regressor has not)."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.predict_log_proba, unknown, X)
        self._check_fitted()
        outputs = self._raw_outputs(X, None)
        return torch.log_softmax(torch.from_numpy(outputs).double(), dim=1).numpy()

    @_explicit_signature
    def predict(self, *X: Any, **unknown: Any) -> np.ndarray:
        """Predicted labels (classification, as in ``classes_``) or values (regression)."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.predict, unknown, X)
        return self._predictions_and_probabilities(X, probabilities=False)[0]

    def _predictions_and_probabilities(self, X: tuple, probabilities: bool = True,
                                       n_labels: int | None = None) -> tuple[np.ndarray, Any]:
        """:meth:`predict` and, for classification when asked, :meth:`predict_proba` of ``X``
        from one pass of the model (``automm predict --proba`` needs both)."""
        self._check_fitted()
        outputs = self._raw_outputs(X, n_labels)
        if self.problem_type_ == "regression":
            return outputs.reshape(-1).astype(np.float64) * self.target_std_ + self.target_mean_, None
        # float64, as scikit-learn's classifiers give them: rows sum to 1 to the last digit
        proba = torch.softmax(torch.from_numpy(outputs).double(), dim=1).numpy() if probabilities else None
        return self.classes_[decide(outputs, self.__dict__.get("decision_weights_"))], proba

    def fit_transform(self, *X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit`` on ``X`` and ``y`` (as :meth:`fit` takes them), then the fused embedding of
        ``X`` (:meth:`transform`): automm as a pipeline's featuriser."""
        inputs, labels = _split_labels(X, y, "fit_transform")
        return self.fit(*inputs, y=labels, **fit_params).transform(*inputs)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of :meth:`transform`'s columns: ``embedding0``, ``embedding1``, ... (the kept
        model's fused embedding), or ``score_<class>`` (``score`` for regression) when the kept
        model's fusion makes the outputs itself (the search's linear, nearest-neighbour and
        gradient-boosted models, ``late``). ``input_features`` names no output (the embedding mixes every input)
        but is checked as scikit-learn's transformers check it: a ``ValueError`` unless it equals
        ``feature_names_in_`` (where fit had it) and has ``n_features_in_`` names."""
        self._check_fitted()
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            known = getattr(self, "feature_names_in_", None)
            if given.ndim != 1:
                raise ValueError(f"input_features: expected a list of the {self.n_features_in_} input column "
                                 f"names, got {input_features!r}")
            if known is not None and not np.array_equal(known, given):
                raise ValueError(f"input_features is not equal to feature_names_in_: got {given.tolist()}, but "
                                 f"{type(self).__name__} was fitted on the columns {known.tolist()}")
            if len(given) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of features "
                                 f"({self.n_features_in_}), got {len(given)}")
        if self.model_.fusion.produces_outputs:
            names = ([f"score_{c}" for c in self.classes_] if self.problem_type_ != "regression" else ["score"])
        else:
            names = [f"embedding{i}" for i in range(int(self.model_.fusion.output_dim))]
        return np.asarray(names, dtype=object)

    @_explicit_signature
    def transform(self, *X: Any, **unknown: Any) -> np.ndarray:
        """The fused embedding of ``model_`` (the best trial's model; of a bag, its first fold
        model, while ``predict`` averages the folds), one row per sample. When that model's fusion
        makes the outputs itself (the search's linear, nearest-neighbour and gradient-boosted models,
        ``late``), its
        outputs: one score per class, one for regression (:meth:`get_feature_names_out`)."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.transform, unknown, X)
        torch_threads_after_fork()
        with verbose_logging(self._verbose_level()), float32_default(), torch_threads_capped():
            table = self._table_for_prediction(X)
            return np.concatenate([model_outputs(self.model_, self._loader(chunk), self.device_, embed=True)
                                   for chunk in _chunks(table)])

    @_explicit_signature
    def score(self, *X: Any, y: Any = None, sample_weight: ArrayLike | None = None, **unknown: Any) -> float:
        """Accuracy (classification) or R² (regression) on ``X`` and ``y``, weighted by
        ``sample_weight`` when given."""
        if unknown:
            raise _unexpected_keyword(self, AutoMM.score, unknown, X)
        X, y = _split_labels(X, y, "score")
        self._check_fitted()
        labels = self._labels_array(y, method="score", amounts=self.problem_type_ == "regression")
        _warn_misaligned(X, y)
        _warn_misaligned(X, sample_weight, ("X", "sample_weight"), "weight")
        sample_weight = _check_sample_weight(sample_weight, len(labels), method="score")
        if self.problem_type_ != "regression":
            self._check_score_labels(labels)
        else:  # before any work: words or infinities, which r2_score refuses once every row is predicted
            labels = _regression_values(labels, "y")
        predictions = self._predictions_and_probabilities(X, probabilities=False, n_labels=len(labels))[0]
        if self.problem_type_ == "regression":
            from sklearn.metrics import r2_score

            return float(r2_score(labels, predictions, sample_weight=sample_weight))
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(labels, predictions, sample_weight=sample_weight))

    def _check_score_labels(self, labels: np.ndarray) -> None:
        """Before any work: labels of another kind than ``classes_`` (texts "1", "2" for classes
        1, 2) are refused naming ``y``; labels that are no class are warned about (counted as errors)."""
        def kind(values: np.ndarray) -> str:
            if values.dtype.kind in "iufb":
                return "number"
            return "number" if all(isinstance(v, (numbers.Number, np.number)) for v in values.tolist()) else "text"

        given, known = kind(labels), kind(np.asarray(self.classes_))
        from .suggestions import quoted_values

        if len(labels) and given != known:
            raise InputError(f"y: labels are {given}s ({quoted_values(labels[:3].tolist())}), the model's "
                             f"classes {known}s ({quoted_values(np.asarray(self.classes_)[:3].tolist())}); "
                             "give y as fit was given it")
        unseen = ~np.isin(labels, self.classes_)
        if unseen.any():
            shown = quoted_values(list(dict.fromkeys(labels[unseen].tolist()))[:5])
            from .suggestions import labels_written_otherwise

            message = (f"y: {int(unseen.sum())} of {len(labels)} labels are no class of the model ({shown}): "
                       f"they count as errors{labels_written_otherwise(labels[unseen].tolist(), self.classes_)}")
            warn_once(_said_for_model(self.model_), message)  # (permutation_importance scores the same y often)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> str:
        """Write the fitted model to directory ``path`` atomically; returns the path."""
        self._check_fitted()
        from .persistence import save_model

        return save_model(self, path)

    @classmethod
    def load(cls: type[_Estimator], path: str | os.PathLike, device: str | torch.device = "auto",
             cache_dir: str | os.PathLike | None = None) -> _Estimator:
        """Load a model written by :meth:`save` (no pickle is executed). ``device``: where the
        loaded model predicts (``device_``): "auto" (CUDA when available, else the CPU), "cpu",
        "cuda", "cuda:1", ... or a ``torch.device``; a device this machine lacks is an
        :class:`InputError` (the saved ``device`` parameter, which a new ``fit`` uses, is kept as it
        was). ``cache_dir``: where the loaded model keeps its frozen encoders' features, in place of
        the ``cache_dir`` it was fitted with, which is saved with it (None: keep that one)."""
        from .persistence import load_model

        torch_threads_after_fork()
        with float32_default():  # modules built as they were saved, whatever the caller's default
            return load_model(path, device=device, expected_class=cls, cache_dir=cache_dir)

    @classmethod
    def from_recipe(cls: type[_Estimator], recipe: Any) -> _Estimator:
        """An unfitted estimator from a YAML recipe (file path) or a recipe mapping; see
        :mod:`automm.recipes` (``from_recipe_with_data`` also reads the recipe's data)."""
        from .recipes import from_recipe

        return from_recipe(recipe, cls=cls)

    def to_recipe(self) -> dict:
        """A recipe mapping that rebuilds this estimator (for a fitted one, with the seed it used)."""
        from .recipes import to_recipe

        return to_recipe(self)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's representation, a storage URL's password shown as ``***`` (a repr goes
        into logs and notebooks)."""
        redacted = self._redacted_storage(self.__dict__.get("storage"))
        if redacted is not None:
            shown = copy.copy(self)
            shown.storage = redacted
            return BaseEstimator.__repr__(shown, N_CHAR_MAX)
        return super().__repr__(N_CHAR_MAX)

    @staticmethod
    def _redacted_storage(storage: Any) -> str | None:
        """``storage`` with its password shown as ``***``; None when there is none to hide."""
        from .storage import redact_url

        if isinstance(storage, str) and redact_url(storage) != storage:
            return redact_url(storage)
        return None

    def _get_params_html(self, *args: Any, **kwargs: Any):
        """The parameters of scikit-learn's HTML display (a notebook cell's output, saved in the
        ``.ipynb``; a ``Pipeline``'s diagram too), a storage URL's password shown as ``***``. The
        arguments pass on as given: scikit-learn 1.8 added ``doc_link``, which 1.7 does not take."""
        params = super()._get_params_html(*args, **kwargs)
        redacted = self._redacted_storage(params.get("storage"))
        if redacted is not None:
            params["storage"] = redacted
        return params

    def __sklearn_clone__(self):
        """scikit-learn's ``clone``, a sampler object copied with new locks: its deep copy of an
        ``NSGAIISampler`` failed ("cannot pickle '_thread.lock' object"), so ``cross_val_score``
        and ``GridSearchCV`` did. The clone of a fitted ``AutoMM()`` remembers the classifier or
        regressor it was cloned from (:func:`_folds_chosen_by_a_type`, in a joblib worker)."""
        sampler = self.__dict__.get("sampler")
        if sampler is None or isinstance(sampler, str):
            clone = super().__sklearn_clone__()
        else:
            from .search import copied_sampler

            shallow = copy.copy(self)  # (self's own parameters untouched)
            shallow.sampler = None
            clone = super(AutoMM, shallow).__sklearn_clone__()
            clone.sampler = copied_sampler(sampler)
        kind = get_tags(self).estimator_type
        if kind is not None and get_tags(clone).estimator_type is None:
            clone._cloned_from = kind
        return clone

    def __getstate__(self):
        """A pickled copy (``pickle``, ``joblib.dump``, MLflow) of a model fitted or loaded on a GPU
        holds copies of its networks (``model_``, ``ensemble_``) on the CPU, which
        :meth:`__setstate__` moves onto a device of the machine unpickling it: pickled as they were,
        their CUDA tensors could not be read back where CUDA is missing (a CPU-only server)."""
        state = dict(super().__getstate__())  # (object's is the instance's own __dict__: not changed)
        device = state.get("device_")
        if isinstance(device, torch.device) and device.type != "cpu":
            names = [name for name in _NETWORK_ATTRIBUTES if name in state]
            state.update(zip(names, _copied_to_the_cpu(state)))
            state[_NETWORKS_ON_CPU] = True
        return state

    def __setstate__(self, state):
        """Unpickling (see :meth:`__getstate__`): networks pickled on a GPU move onto the device
        they were on where this machine has it, else onto the GPU it has, else stay on the CPU;
        ``device_`` says where they predict."""
        if state.pop(_NETWORKS_ON_CPU, False):
            try:
                device = resolve_device(state["device_"])
            except ValueError:  # (no CUDA here, or fewer GPUs: as load(device="auto") chooses)
                device = resolve_device("auto")
            state["device_"] = device
            for net in _networks_in(state):
                net.to(device)
        super().__setstate__(state)

    def __copy__(self):
        """A shallow copy (its networks shared), not a pickled round trip through :meth:`__getstate__`."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo):
        """A deep copy whose networks are copied where they are (on the GPU: not through the CPU,
        as pickling copies them, :meth:`__getstate__`)."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        from sklearn.utils import ClassifierTags, RegressorTags

        # (run inside AutoMMClassifier's and AutoMMRegressor's mixin, before it sets their type: the
        # class decides first, then problem_type, then for "auto" the problem fit found, problem_type_: a
        # fitted AutoMM() is the classifier or regressor it became, as CalibratedClassifierCV, scorers and
        # TunedThresholdClassifierCV, ConfusionMatrixDisplay and partial_dependence read it (a binary one's
        # probabilities were read as two classes' scores);
        # a regressor has no classifier tags, nor the reverse)
        problem = self.problem_type if self.problem_type != "auto" else vars(self).get("problem_type_")
        kind = ("classifier" if isinstance(self, ClassifierMixin) else "regressor" if isinstance(self, RegressorMixin)
                else {"binary": "classifier", "multiclass": "classifier", "regression": "regressor"}.get(problem))
        if kind == "classifier":
            tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()  # stratified CV, as a classifier
        elif kind == "regressor":
            tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        else:  # "auto": predict_proba exists, so say what it gives (not a classifier yet)
            tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True  # every fit needs y, whatever the problem type
        tags.non_deterministic = self.random_state is None or isinstance(self.random_state, np.random.RandomState)
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True  # a sparse matrix of up to 1,024 columns: numeric columns
        from sklearn.utils import TransformerTags

        tags.transformer_tags = TransformerTags(preserves_dtype=[])  # the embedding is float32, whatever X was
        return tags


def _chunks(table: Table) -> Iterator[Table]:
    """``table``'s rows :data:`PREDICT_CHUNK_ROWS` at a time (the table itself when it is no longer)."""
    if len(table) <= PREDICT_CHUNK_ROWS:
        yield table
        return
    for start in range(0, len(table), PREDICT_CHUNK_ROWS):
        yield table.subset(range(start, min(start + PREDICT_CHUNK_ROWS, len(table))))


#: The kinds of unfamiliar input (and rows without any) each fitted model (``model_``) has warned about
#: (see ``_warn_once_for_model``).
_UNFAMILIAR_SAID: "weakref.WeakKeyDictionary[Any, dict[str, None]]" = weakref.WeakKeyDictionary()


#: The warnings about the values given to each fitted model (``model_``) to predict or score, the latest
#: few (see ``_said_for_model``).
_VALUES_SAID: "weakref.WeakKeyDictionary[Any, dict[str, None]]" = weakref.WeakKeyDictionary()


def _said_for_model(model: Any) -> dict[str, None]:
    """The warnings about the values to predict or score (:func:`automm.data.warn_once`) that
    fitted ``model`` has given, each given once: scikit-learn's tools that call ``predict`` or
    ``score`` on the same rows many times (``permutation_importance``: once per column and repeat)
    reset Python's once-per-place memory of warnings between the calls, so each call repeated them
    (kept beside the model, not in the estimator, as ``_warn_once_for_model``'s)."""
    return _VALUES_SAID.setdefault(model, {})


def _warn_once_for_model(model: Any, message: str, kind: str | None = None) -> None:
    """Warn with ``message`` once per fitted ``model`` and ``kind`` of finding (by default
    :func:`_finding`): the examples and counts differ from call to call, so Python's once-per-place
    rule let a service log one warning per request (kept beside the model, not in the estimator:
    predict leaves an estimator's state alone). Counted once given, not where the program's filters
    made it an error (each such call raises)."""
    warn_once(_UNFAMILIAR_SAID.setdefault(model, {}), f"{message} (said once for this model)",
              key=kind if kind is not None else _finding(message))


#: A quoted name (a column's, as ``repr`` writes it) or a number, in a message.
_QUOTED_OR_NUMBER = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\d+")


def _finding(message: str) -> str:
    """What a message says, whatever the call: the message before its examples, its numbers (the
    counts) left out, but not those of the names it quotes: the columns 'f0004_cat' and 'f0010_cat'
    (``x0`` and ``x1`` of an array) are two findings, where one of a wide table's columns was warned
    about and the others' unseen categories went unsaid."""
    return _QUOTED_OR_NUMBER.sub(lambda found: "#" if found.group(0)[0].isdigit() else found.group(0),
                                 message.split(" (e.g.", 1)[0])


def _judges(encoder: Encoder) -> bool:
    """Whether ``encoder`` (or a part of an encoder stack) implements :meth:`Encoder.unfamiliar_values`."""
    if isinstance(encoder, EncoderStack):
        return any(_judges(part) for part in encoder.parts)
    return type(encoder).unfamiliar_values is not Encoder.unfamiliar_values


#: ``predict`` and ``predict_proba`` turn this many rows into samples at a time (memory bounded
#: however many rows one call is given); unfamiliar values are judged on the first this many.
PREDICT_CHUNK_ROWS = 16384

AutoMM.__new__.__wrapped__ = AutoMM.__init__  # inspect.signature(AutoMM), as scikit-learn and IDEs read it: __init__'s


def _columns_equal_to_labels(table: Table, roles: dict[str, str], labels: np.ndarray) -> list[str]:
    """The columns of ``table`` (texts, categories, numbers) whose value is the row's label in
    every row, 20 rows or more: the label left among the inputs (a leak no score on held-out
    rows of the same table reveals)."""
    if len(labels) < 20:  # a short table's column may match by chance
        return []
    import pandas as pd

    def strings(values) -> np.ndarray:  # (not pandas' astype(str): it refuses a lone surrogate, decodes bytes)
        return np.array([str(v) for v in values], dtype=object)

    wanted = strings(labels)
    found = []
    for name, column in table.columns.items():
        if roles.get(name) not in ("text", "categorical", "numeric") or getattr(column, "ndim", 1) != 1:
            continue
        head = pd.Series(list(column[:20]), dtype=object)  # most columns differ in their first rows: cheap
        if head.isna().any() or not (strings(head) == wanted[:20]).all():
            if roles[name] != "numeric" or not _numbers_equal(head, labels[:20]):
                continue
        values = pd.Series(list(column), dtype=object)
        if values.isna().any():
            continue
        same = strings(values) == wanted
        if same.all() or (roles[name] == "numeric" and _numbers_equal(values, labels)):  # 3 and 3.0
            found.append(name)
    return found


def _identifier_columns(table: Table, roles: Mapping[str, str], kept: Iterable[str] = ()) -> dict[str, str]:
    """The columns of a named table (20 rows or more; not positional inputs or a 2-D array's columns)
    that identify its rows, by the rule by which ``automm init`` leaves them out
    (:func:`automm.drafting._is_identifier`: an ``id`` column, a row number, a code per row such as
    ``SKU-0412`` or a UUID), and the copies of such a column (the ids written again as text), each
    with how it reads (``"'sku' (read as text)"``); not those in ``kept`` (named by the user). An
    identifier tells the training rows apart and says nothing of new rows: ``fit`` leaves them out."""
    if table.positional or len(table) < 20:
        return {}
    from .drafting import _ID_NAME, _is_identifier, _one_word_code

    def may_identify(name: str, head: list) -> bool:  # what an identifier's first values are (cheap: most are not)
        if _ID_NAME.search(name):
            return True
        present = [v for v in head if not is_missing(v)]
        return len(set(map(str, present))) == len(present) and (
            all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present)
            or all(_one_word_code(v) for v in present))  # codes such as "SKU-0012", "000412"

    kept = {str(k) for k in kept}
    candidates = [name for name, column in table.columns.items()
                  if name not in kept and roles.get(name) in ("text", "categorical", "numeric")
                  and getattr(column, "ndim", 1) == 1]
    identifiers: dict[str, list] = {}  # (their first values as text; a column is listed whole only when it may be one)
    for name in candidates:
        head = list(table.columns[name][:20])
        if may_identify(name, head):
            values = list(table.columns[name])
            if _is_identifier(name, values, len(values)):
                identifiers[name] = _as_texts(head)
    found: dict[str, str] = {}
    for name in candidates:  # (in the table's order)
        if name in identifiers:
            found[name] = f"{name!r} (read as {roles[name]})"
            continue
        head = _as_texts(table.columns[name][:20])
        copied = next((other for other, other_head in identifiers.items() if other_head == head
                       and _as_texts(table.columns[other]) == _as_texts(table.columns[name])), None)
        if copied is not None:
            found[name] = f"{name!r} (read as {roles[name]}, a copy of {copied!r})"
    return found


def _as_texts(values: Sequence[Any]) -> list:
    """Each value as text, a missing one as None (how two columns are compared as written)."""
    return [None if is_missing(v) else str(v) for v in values]


def _identifiers_left_out(identifiers: Mapping[str, str], roles: Mapping[str, str], all_columns: bool) -> str:
    """What ``fit`` says of the ``identifiers`` it leaves out (one message for all of them), or,
    where they are ``all_columns``, the error: nothing would be left to learn from."""
    one = len(identifiers) == 1
    listed = "; ".join(list(identifiers.values())[:5]) + (f" and {len(identifiers) - 5} more" if len(identifiers) > 5 else "")
    first = next(iter(identifiers))
    keep = f"column_types={{{first!r}: {roles[first]!r}}}"
    holds = (f"column{'' if one else 's'} {listed} hold{'s' if one else ''} a distinct value in every row, as "
             f"{'an identifier does' if one else 'identifiers do'} (an id, a row number, a code per row)")
    if all_columns:
        return (f"{holds}, and X has no other column: an identifier tells the training rows apart and says nothing of "
                f"new rows (new ids); give a column to learn from, or, to learn from {'it' if one else 'one'} anyway, "
                f"its role: {keep}")
    return (f"{holds}: {'it tells' if one else 'they tell'} the training rows apart and say{'s' if one else ''} "
            f"nothing of new rows (new ids), so the model is fitted without {'it' if one else 'them'} (and predict "
            f"does not need {'it' if one else 'them'}); to keep {'it' if one else 'one'}, give its role: "
            f"{keep if one else 'e.g. ' + keep}")


def _columns_that_cannot_help(table: Table, roles: Mapping[str, str]) -> list[str]:
    """What ``fit`` says of the columns of a named table (20 rows or more; not positional inputs
    or a 2-D array's columns, such as a one-hot encoder's) that no model learns from, each kind in
    one message: one value in every row (a constant, or a split column left in the training rows:
    a row to predict with another value is one the model never saw), or the values of an earlier
    column in every row (a second input of the same values; an image column's by its file paths:
    a back photo column filled with the front photos). They are kept, as given: the messages say
    how to leave them out (identifiers, :func:`_identifier_columns`, ``fit`` leaves out itself)."""
    if table.positional or len(table) < 20:
        return []
    from .drafting import SPLIT_COLUMN_NAMES

    constant, copies = [], []
    earlier: list[tuple[str, list]] = []  # (column, its first 20 values as text)
    for name, column in table.columns.items():
        role = roles.get(name)
        if role not in ("text", "categorical", "numeric", "datetime", "image") or getattr(column, "ndim", 1) != 1:
            continue
        values = list(column)
        if role == "image" and not all(is_missing(v) or isinstance(v, (str, os.PathLike)) for v in values):
            continue  # (pixels, bytes, PIL images: compared by their file paths only)
        head = _as_texts(values[:20])  # most columns differ from another, and within themselves, in their first rows
        if head[0] is not None and all(k == head[0] for k in head) and all(k == head[0] for k in _as_texts(values)):
            first = values[0]
            if isinstance(first, (np.datetime64, np.timedelta64)):  # (.item() of nanoseconds: an int)
                first = str(first)
            elif isinstance(first, np.generic):
                first = first.item()
            split = " (a split column: the rows to predict hold its other values)" if name.lower() in SPLIT_COLUMN_NAMES else ""
            constant.append((name, f"{name!r} ({first!r}{split})"))
            continue
        same = next((other for other, other_head in earlier if other_head == head
                     and _as_texts(table.columns[other]) == _as_texts(values)), None)
        if same is not None:
            copies.append((name, f"{name!r} (of {same!r})"))
            continue
        earlier.append((name, head))

    messages = []
    for columns, holds, why, fix in (
            (constant, "one value in every row", "the model learns nothing from {it}, and reads a row to predict with "
                                                 "another value as one unlike any it was fitted on", "leave {it} out"),
            (copies, "the values of an earlier column in every row",
             "a second input of the same values adds parameters and time, nothing to learn", "leave {it} out")):
        if not columns:
            continue
        one = len(columns) == 1
        listed = "; ".join(what for _, what in columns[:5]) + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")
        names = ", ".join(repr(name) for name, _ in columns[:5]) + (", ..." if len(columns) > 5 else "")
        words = {"it": "it" if one else "them"}
        messages.append(f"column{'' if one else 's'} {listed} hold{'s' if one else ''} {holds}: "
                        f"{why.format(**words)}; {fix.format(**words)} (e.g. X.drop(columns=[{names}]))")
    return messages


def _numbers_equal(values: Any, labels: np.ndarray) -> bool:
    """Whether ``values`` and ``labels`` are the same numbers (False when either is not numeric)."""
    try:
        return bool((np.asarray(values, dtype=float) == np.asarray(labels, dtype=float)).all())
    except (TypeError, ValueError, OverflowError):  # (an int beyond floats, 10**400: no label)
        return False


def _beyond_int64(values: list, name: str, amounts: bool) -> bool:
    """Whether whole-number labels hold one beyond 64-bit integers (a token amount in wei, an
    SQL ``NUMERIC(30)``): numpy cannot hold them as integers (a bare ``OverflowError``, or a
    Decimal cast to -9223372036854775808). Amounts (a regression target) are then read as
    floats; as classes they are refused naming ``name``."""
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    big = next((v for v in values if not low <= int(v) <= high), None)
    if big is None:
        return False
    if not amounts:
        from .suggestions import elided_repr

        shown = elided_repr(int(big))
        raise InputError(f"{name}: whole numbers beyond 64-bit integers (e.g. {shown}); if they are amounts, "
                         "fit AutoMMRegressor or pass problem_type='regression' (they are read as floats), if "
                         f"classes, give them as strings ([str(v) for v in {name}])")
    return True


def _regression_values(labels: np.ndarray, name: str) -> np.ndarray:
    """Regression labels as finite floats; :class:`InputError` naming ``name`` otherwise."""
    if labels.dtype.kind == "c":  # (astype(float) drops the imaginary parts, with numpy's ComplexWarning only)
        raise InputError(f"{name}: regression needs real numbers ({labels.tolist()[0]!r} is complex)")
    try:
        values = labels.astype(float)
    except (TypeError, ValueError):
        first = next((v for v in labels.tolist() if not _float_like(v)), None)
        shown = "" if first is None else f" ({first!r} is not one)"
        raise InputError(f"{name}: regression needs numeric labels{shown}") from None
    if not np.all(np.isfinite(values)):
        first = labels.tolist()[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise InputError(f"{name}: regression labels must be finite numbers ({first!r} is not one)")
    return values


#: A regression target farther than this many interquartile ranges from the median is named in a
#: warning: a lognormal target of sigma 1 reaches about 20 in 1,500 rows, a price typed as 999999
#: among prices of 600-5,800 about 1,000.
FAR_TARGET_IQRS = 100


#: A median of ``y_val`` farther than this many standard deviations of ``y`` beyond the range of ``y``
#: is named in a warning: another scale (a TransformedTargetRegressor's log(y) with y_val in units:
#: about 100 of them), not a later period's drift, which a model could not follow that far anyway.
FAR_VALIDATION_STDS = 10


def _warn_far_targets(values: np.ndarray, reference: np.ndarray | None = None, name: str = "y") -> None:
    """Warn when a few targets lie far from the others: the network learns in units of the
    targets' standard deviation, which they set, and its squared error follows them (3 prices of
    999999 among 1,500 of 600-5,800: test R² 0.83 → -2.55, no word said). Where half the targets
    or more are one value, so that the quartiles agree, the spread is that of the other targets:
    their interquartile range, or, where they agree too, their median distance from that value.
    With ``reference`` (the training targets that count), ``values`` are ``name``'s (``y_val``)
    measured against its median and spread: the validation score, which picks the kept epoch, the
    search's trials and the ensemble's weights, follows their squared error (one target of 37000 among
    200 validation titles' lengths of 19-75: test R² 0.81 → 0.69, no word said)."""
    validation = reference is not None
    reference = values if reference is None else reference
    low, median, high = np.percentile(reference, [25, 50, 75])
    spread, measure = high - low, "interquartile ranges" + (" of y" if validation else "")
    if spread <= 0:  # (95% of the targets 5.0 and 3 typed as 1e9 said nothing)
        others = reference[reference != median]
        if not len(others):
            return
        low, high = np.percentile(others, [25, 75])
        spread = high - low if high > low else float(np.median(np.abs(others - median)))
        share = 1 - len(others) / len(reference)
        measure = (f"times the spread of the {len(others)} targets{' of y' if validation else ''} other than "
                   f"{median:g} (which {share:.0%} of them equal)")
    far = np.abs(values - median) > FAR_TARGET_IQRS * spread
    if far.any():
        shown = ", ".join(f"{v:g}" for v in np.unique(values[far])[:3])
        head = (f"{name}: {int(far.sum())} of {len(values)} targets lie more than {FAR_TARGET_IQRS} {measure} "
                f"from {'its' if validation else 'the'} median {median:g} ({shown}); ")
        if validation:
            advice = ("the validation score, which picks the kept epoch, the search's trials and the ensemble's "
                      "weights, follows their squared error: leave out (or give sample_weight_val 0) those that "
                      "are errors")
        else:
            advice = ("they set the scale the network learns in and its squared error follows them: leave out (or "
                      "give sample_weight 0) those that are errors, or fit log(y) for a heavy-tailed target")
        warnings.warn(head + advice, AutoMMWarning, stacklevel=user_stacklevel())


def _refuse_label_rows(rows: list[int], kind: str, shown: str, keep: str, name: str, method: str,
                       row_name: Callable[[int], str]) -> None:
    """:class:`InputError` naming the first of ``rows``, labels of ``name`` that are ``kind``
    (``"missing"``, ``"infinite"``), with the pandas line that leaves them out (``keep``: the
    test, ``"notna()"`` a method of the labels, ``"blank"`` that and no blank text, else a numpy
    function)."""
    if not rows:
        return
    if keep == "blank":
        def test(labels: str) -> str:
            return f"{labels}.notna() & {labels}.astype(str).str.strip().ne('')"
    elif keep.endswith("()"):
        def test(labels: str) -> str:
            return f"{labels}.{keep}"
    else:
        def test(labels: str) -> str:
            return f"np.{keep}({labels})"
    fix = (f"keep = {test('y')}; {method}(X[keep], y[keep])" if name == "y"
           else f"keep = {test(name)}; X_val, {name} = X_val[keep], {name}[keep]")
    first = ", ".join(row_name(i) for i in rows[:5])
    raise InputError(f"{name}: {len(rows)} {kind} label{'s' if len(rows) > 1 else ''} ({shown}), first at {first}; "
                     f"leave those rows out (with pandas: {fix})")


def _multi_output_wrapper(amounts: bool) -> str:
    """scikit-learn's one-model-per-target wrapper for a fit of several label columns: of regressors
    where the targets are amounts (``AutoMMRegressor``, ``problem_type='regression'``), else of either."""
    regressors = "MultiOutputRegressor(AutoMMRegressor())"
    return regressors if amounts else f"MultiOutputClassifier(AutoMMClassifier()), or for amounts {regressors}"


def _several_targets_hint(name: str, amounts: bool) -> str:
    """What to do with ``name`` holding several label columns: one model per target, by
    scikit-learn's wrapper; for ``y_val``, which those wrappers pass to each model whole, by a
    model per column."""
    if name != "y_val":
        return f"for several targets, one model each: sklearn.multioutput.{_multi_output_wrapper(amounts)}"
    kind = "Regressor" if amounts else "Classifier"
    return (f"for several targets, one model each, given its own column: models = {{c: AutoMM{kind}()"
            f".fit(X, Y[c], X_val=X_val, y_val=Y_val[c]) for c in Y}}; sklearn.multioutput's "
            f"MultiOutput{kind} passes y_val to each target's model whole")


def _labels_per_sample(y: Any) -> list[int] | None:
    """The positions of the samples of ``y`` whose label is a collection (a list of tags, a set, a
    tuple, an array), where ``y`` is a column of such (a pandas Series or 1-d array, or a list whose
    rows are not all sequences of one length, as several targets' rows are); else ``None``."""
    if isinstance(y, np.ndarray):
        if y.dtype != object or y.ndim != 1:
            return None
        column = True
    elif isinstance(y, (list, tuple)):
        column = False
    else:
        return None
    found = [i for i, v in enumerate(y) if isinstance(v, (list, tuple, set, frozenset))
             or isinstance(v, np.ndarray) and v.ndim >= 1]
    if not found:
        return None
    if (not column and len(found) == len(y) and not any(isinstance(v, (set, frozenset)) for v in y)
            and len({len(v) for v in y}) == 1):
        return None  # rows of as many values: several targets' rows, a 2-d array (refused as one)
    return found


def _labels_per_sample_message(rows: list[int], y: Any, name: str, method: str, amounts: bool,
                               row_name: Callable[[int], str]) -> str:
    """Why a ``y`` with a collection of labels per sample (``rows``) is refused, and the
    scikit-learn way to fit it: a 0/1 column per tag, a model per column."""
    from .suggestions import elided_repr

    value = y[rows[0]]
    kind = "arrays" if isinstance(value, np.ndarray) else f"{type(value).__name__}s"
    shown = elided_repr(value.tolist() if isinstance(value, np.ndarray) else value)
    seen = (f"{name}: expected one {'number' if amounts else 'label'} per sample, got {kind} of them in "
            f"{len(rows)} of {len(y)} samples ({row_name(rows[0])}: {shown})")
    if amounts:
        return (f"{seen}; for several targets, give each its own column (a DataFrame or a 2-d array, Y) to "
                "sklearn.multioutput.MultiOutputRegressor(AutoMMRegressor()).fit(X, Y), one model per target")
    if name == "y_val":
        return (f"{seen}; automm fits one target: for tags, fit one model per tag with X_val and its 0/1 "
                "column of y_val (MultiLabelBinarizer(classes=...).fit_transform(y_val)); "
                "sklearn.multioutput's MultiOutputClassifier passes y_val to each model whole")
    if method == "score":
        return (f"{seen}; this model predicts one label per sample: score a model of tags, "
                "sklearn.multioutput.MultiOutputClassifier(AutoMMClassifier()), on their 0/1 columns "
                "(the MultiLabelBinarizer fitted on its training tags: binarizer.transform(y))")
    return (f"{seen}; automm fits one target: for tags (several labels per sample), fit one model per tag "
            f"on a 0/1 column each:\n"
            f"    Y = sklearn.preprocessing.MultiLabelBinarizer().fit_transform({name})\n"
            f"    model = sklearn.multioutput.MultiOutputClassifier(AutoMMClassifier()).{method}(X, Y)")


def _sparse_labels_hint(shape: tuple, name: str, amounts: bool) -> str:
    """How to pass a sparse ``name`` of ``shape`` (a tag indicator from
    ``MultiLabelBinarizer(sparse_output=True)``, or a column of one that
    ``MultiOutputClassifier`` passes each model)."""
    if len(shape) == 2 and shape[1] == 1:
        return (f": pass {name}.toarray().ravel() (sklearn.multioutput's MultiOutputClassifier passes each "
                "model a column of a sparse Y as it is: give it Y.toarray(), as "
                "MultiLabelBinarizer() makes by default)")
    return (f": pass {name}.toarray()"
            + (f" ({_several_targets_hint(name, amounts)})" if len(shape) == 2 and shape[1] > 1 else ""))


def _float_like(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _validation_table(inputs: tuple, records: bool = True) -> Table:
    try:
        return as_table(inputs, records=records)
    except InputError as exc:
        raise InputError(f"X_val: {exc}") from None


def _check_sample_weight(sample_weight: Any, n_samples: int, name: str = "sample_weight",
                         method: str = "fit") -> np.ndarray | None:
    """``sample_weight`` as a float64 array of ``n_samples`` finite numbers >= 0 with a positive
    sum (None stays None); :class:`InputError` naming ``name`` and what is wrong otherwise (a
    column's name given: how to pass that column to ``method``)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (int, float, np.number)) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    import pandas as pd

    if isinstance(sample_weight, (pd.Series, pd.DataFrame)):
        sample_weight = sample_weight.to_numpy()
    if not hasattr(sample_weight, "__len__") and hasattr(sample_weight, "__array__"):
        sample_weight = np.asarray(sample_weight)  # an array-like that only converts
    if isinstance(sample_weight, str):
        if sample_weight in ("balanced", "balance_weight", "auto") and method == "fit":
            hint = "; to weigh each class the same in all: AutoMM(class_weight='balanced')"
        elif name == "sample_weight_val":
            hint = (f"; to take the weights from a column of the table: fit(X, y, X_val=X_val.drop(columns="
                    f"[{sample_weight!r}]), y_val=y_val, sample_weight_val=X_val[{sample_weight!r}])")
        else:
            hint = (f"; to take the weights from a column of the table: {method}(X.drop(columns="
                    f"[{sample_weight!r}]), y, sample_weight=X[{sample_weight!r}])")
        raise InputError(f"{name}: expected one number per sample, got the string {sample_weight!r}{hint}")
    if isinstance(sample_weight, bytes) or not hasattr(sample_weight, "__len__"):
        raise InputError(f"{name}: expected one number per sample, got {type(sample_weight).__name__}")
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected numbers, got values that are not numeric") from None
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights.ravel()
    if weights.ndim != 1:
        raise InputError(f"{name}: expected a 1-d sequence of numbers, got shape {weights.shape}")
    if len(weights) != n_samples:
        raise InputError(f"{name}: {len(weights)} weights for {n_samples} samples")
    bad = np.flatnonzero(~np.isfinite(weights))
    if len(bad):
        raise InputError(f"{name}: {len(bad)} weights are NaN or infinite, first at "
                         f"row{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))}")
    negative = np.flatnonzero(weights < 0)
    if len(negative):
        raise InputError(f"{name}: weights must be >= 0; {len(negative)} are negative, first at "
                         f"row{'s' if len(negative) > 1 else ''} {', '.join(map(str, negative[:5]))}")
    if not weights.sum() > 0:
        raise InputError(f"{name}: every weight is zero; at least one sample needs a positive weight")
    return weights


def _called_by_model_selection() -> bool:
    """Whether this ``fit`` runs inside scikit-learn's model selection (cross-validation, grid
    search): a frame of ``sklearn.model_selection`` on the call stack."""
    return any(frame.f_globals.get("__name__", "").startswith("sklearn.model_selection") for frame in _outer_frames())


def _untransformed_hint(estimator: Any, val_names: Sequence[str]) -> str:
    """Where ``estimator`` is fitted as the last step of a scikit-learn ``Pipeline`` whose steps
    before it transform the data (a frame of ``sklearn.pipeline`` on the call stack holding it as
    its final step): why ``X_val`` does not look like ``X``. ``X`` is what those steps made of the
    Pipeline's input, while a fit parameter (``X_val``, routed or ``model__X_val``) reaches
    ``estimator`` as the caller gave it, unless the Pipeline's ``transform_input`` names it. Else
    an empty string."""
    for frame in _outer_frames():
        owner = frame.f_locals.get("self")
        steps = getattr(owner, "steps", None)
        if not (frame.f_globals.get("__name__", "").startswith("sklearn.pipeline") and isinstance(steps, list)
                and steps and isinstance(steps[-1], tuple) and steps[-1][-1] is estimator):
            continue
        before = [(name, step) for name, step, *_ in steps[:-1] if step is not None and step != "passthrough"]
        if not before:
            return ""
        given = [str(c) for c in getattr(before[0][1], "feature_names_in_", [])]
        raw = (" and X_val has the columns the Pipeline was given"
               if given and sorted(given) == sorted(map(str, val_names)) else "")
        names = ", ".join(repr(name) for name, _ in before)
        return (f" (X is what the Pipeline's step{'s' if len(before) > 1 else ''} {names} made of its input{raw}: a "
                "Pipeline passes fit parameters such as X_val on as they were given, untransformed; give X_val as "
                "those steps make it: Pipeline(..., transform_input=['X_val']) under metadata routing (the steps "
                "fitted in each fit transform it, in cross-validation too), or pipe[:-1].fit(X, y).transform(X_val); "
                "or leave X_val and y_val out to validate on a holdout_frac of the rows)")
    return ""


def _untransformed_target_hint(estimator: Any) -> str:
    """Where ``estimator`` is fitted by a scikit-learn ``TransformedTargetRegressor`` (a frame of
    ``sklearn.compose`` on the call stack holding it as its ``regressor_``): that ``y`` is the
    transformed target while ``y_val``, a fit parameter, reached ``estimator`` as given. Else how to
    give ``y_val``."""
    for frame in _outer_frames():
        owner = frame.f_locals.get("self")
        if (frame.f_globals.get("__name__", "").startswith("sklearn.compose")
                and getattr(owner, "__dict__", {}).get("regressor_") is estimator):
            return ("; a TransformedTargetRegressor fits on its func(y) (or transformer's) but passes fit parameters "
                    "such as y_val on untransformed: give y_val as it makes y (func(y_val), "
                    "transformer.fit(y).transform(y_val))")
    return "; give y_val in the units of y"


def _outer_frames() -> Iterator[Any]:
    """The frames of the call stack outwards, from the one iterating this (automm's own first)."""
    frame = sys._getframe(1)
    while frame is not None:
        yield frame
        frame = frame.f_back


def _folds_chosen_by_a_type(estimator: "AutoMM") -> bool:
    """Whether the cross-validation folds of this fit of ``estimator`` were chosen by a classifier's
    or regressor's type (stratified for a classifier), so that its ``problem_type='auto'`` changed
    nothing: it runs inside a scikit-learn classifier or regressor that holds it as a member
    (``StackingClassifier``, ``CalibratedClassifierCV``, ``TunedThresholdClassifierCV``, which also
    call its ``predict_proba`` themselves), or inside a model selection function given a classifier
    or regressor (``cross_val_score`` of a fitted ``AutoMM()``, whose clone this is). Only the
    innermost holder counts: below a model selection that is neither (a ``GridSearchCV`` of the
    ``AutoMM`` inside a ``StackingClassifier``), that model selection's folds are unstratified. A
    joblib worker's stack (``n_jobs=2``) holds only the fold's fit, no function's estimator: there a
    fold's clone of a fitted ``AutoMM()`` (``_cloned_from``, set by ``__sklearn_clone__``) tells it,
    as the function was given that fitted model and chose its folds by its type."""
    from sklearn.base import BaseEstimator

    def typed(other: Any) -> bool:
        try:
            return get_tags(other).estimator_type in ("classifier", "regressor")
        except Exception:  # an estimator whose tags cannot be read says nothing about the folds
            return False

    for frame in _outer_frames():
        owner = frame.f_locals.get("self")
        module = frame.f_globals.get("__name__", "")
        given = frame.f_locals.get("estimator")
        if (owner is None and module.startswith("sklearn.model_selection") and given is estimator
                and vars(estimator).get("_cloned_from") is not None):
            return True  # (a fold's fit, _fit_and_score, of the clone of a fitted AutoMM(): see above)
        if isinstance(owner, BaseEstimator) and not isinstance(owner, AutoMM) and module.startswith("sklearn."):
            if typed(owner):
                return True
            if module.startswith("sklearn.model_selection"):  # it chose the folds: not by a classifier's type
                return False
        if (owner is None and module.startswith("sklearn.model_selection") and "cv" in frame.f_locals
                and isinstance(given, BaseEstimator) and given is not estimator and typed(given)):
            return True  # (cross_validate, cross_val_predict, ...: check_cv chose the folds by its type, unless
            # it was given them: a StackingClassifier's cross_val_predict of a member, judged by its owner above)
    return False


def _save_generators() -> tuple:
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return (np.random.get_state(), random.getstate(), torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if cuda else None)


def _restore_generators(saved: tuple) -> None:
    numpy_state, python_state, torch_state, cuda_states = saved
    np.random.set_state(numpy_state)
    random.setstate(python_state)  # (a library imported on first use may draw from it)
    torch.set_rng_state(torch_state)
    if cuda_states is not None:
        torch.cuda.set_rng_state_all(cuda_states)


_GENERATORS = SharedChange(_save_generators, _restore_generators)


def global_random_state_kept():
    """Run a block that seeds numpy's and torch's global generators (a fit does, so that a seed
    gives the same model), then put back the states they had: a user's own random draws around a
    fit go on as if it had not run. Blocks running at once (fits and loads in threads of a
    server or of the caller) share one saved state, taken when the first begins and put back
    when the last ends, not when the first does (each putting back its own left the generators
    as a fit had seeded them)."""
    return _GENERATORS.held()


def _float32_begin() -> torch.dtype:
    previous = torch.get_default_dtype()
    if previous != torch.float32:  # (the usual case: nothing process-wide to change)
        torch.set_default_dtype(torch.float32)
    return previous


def _float32_end(previous: torch.dtype) -> None:
    if previous != torch.float32:
        torch.set_default_dtype(previous)


_FLOAT32 = SharedChange(_float32_begin, _float32_end)


def float32_default():
    """Build and train in float32 whatever ``torch.get_default_dtype()`` the caller set (a
    float64 default made the layers float64 and the first convolution refuse its float32
    input); the caller's default is back after the last of the blocks running at once (threads
    of a server or of the caller) ends, not when the first does."""
    return _FLOAT32.held()


def _is_learned(name: str) -> bool:
    """Whether ``name`` is a learned attribute (scikit-learn's convention: a trailing underscore)."""
    return name.endswith("_") and not name.startswith("_")


def _target_kind(y: Any) -> str:
    """scikit-learn's ``type_of_target`` of the labels ``y``, without the warning 1.7's gives (1.8
    moved it to its classifiers' checks), "The number of unique classes is greater than 50% of the
    number of samples", said of amounts that automm then reads as a regression target."""
    from sklearn.utils.multiclass import type_of_target

    with warnings_left_out(UserWarning, "The number of unique classes is greater than 50%"):
        return type_of_target(y)


def _looks_like_regression(y: np.ndarray) -> bool:
    """Numeric labels with many distinct values (float labels: more than 10 distinct values; integer
    labels: more than 20 and more than half of them distinct) are treated as regression targets."""
    if y.dtype.kind not in "fiu":
        return False
    n_unique = len(np.unique(y))
    if y.dtype.kind == "f":
        return n_unique > 10
    return n_unique > 20 and n_unique > 0.5 * len(y)


def _ordered_quantity(y: np.ndarray) -> str:
    """Whole-number labels that look like an ordered quantity read as classes: evenly spaced, as
    ``automm init`` finds them (years 2008 to 2019, word counts 2 to 12, scores 0 to 100 by 5), but
    no class codes 0..k-1 or 1..k (digits), in words for a warning; else ""."""
    import pandas as pd

    from .drafting import _evenly_spaced_numbers

    spaced = _evenly_spaced_numbers(pd.Series(y))
    if spaced is None:
        return ""
    n, low, high, step = spaced
    if step == 1 and low in (0, 1):
        return ""
    return f"{n} evenly spaced whole numbers, {low} to {high}{f' by {step}' if step != 1 else ''}"


def _close_to_classes(y: np.ndarray) -> str:
    """For whole-number labels :func:`_looks_like_regression` reads as amounts with at most twice
    as many distinct values as its rule's threshold (a few more and they would have been classes):
    the rule, for a note; else ""."""
    n_unique = len(np.unique(y))
    if y.dtype.kind == "f" and n_unique <= 20:
        return "whole-number floats are classes only up to 10 distinct values"
    if y.dtype.kind in "iu" and n_unique <= 40:
        return "integers are classes unless more than 20 distinct values and more than half the rows differ"
    return ""


def _is_row_series(x: Any, columns: Sequence[str]) -> bool:
    """Whether ``x`` is a pandas Series indexed by the fitted ``columns``: one row of a table
    (``frame.iloc[i]``), not a column."""
    import pandas as pd

    return isinstance(x, pd.Series) and set(columns) <= set(map(str, x.index))


def _read_columns_only(X: tuple, columns: Sequence[str]) -> tuple:
    """A lone DataFrame ``X`` to predict with only the columns the model reads, when it holds them
    all: the others (the labels left in, a wide frame's other fields, names that repeat, as
    ``pandas.concat(axis=1)`` of frames that each hold an ``id`` gives) are not converted to lists
    (300 other float columns of 20,000 rows: 200 MiB) nor refused. A repeated column the model
    reads stays, for :func:`as_table` to refuse; with one missing, ``X`` as it is, for the error
    to name its columns."""
    if len(X) != 1:
        return X
    x = table_like(X[0])
    if not _is_dataframe(x):
        return X
    names = [str(c) for c in x.columns]
    read = set(columns)
    keep = [j for j, name in enumerate(names) if name in read]
    if len(keep) == len(names) or not read <= {names[j] for j in keep}:
        return X
    return (x.iloc[:, keep],)


def _has_feature_names(x: Any) -> bool:
    """Whether ``x`` has feature names as scikit-learn reads them: a table whose column names are
    all strings (a DataFrame made from an array, with columns 0, 1, ..., has none)."""
    if not _is_dataframe(x):
        return True  # a dict of columns, records, polars, pyarrow: their names are strings
    return all(isinstance(c, str) for c in x.columns)


def _warn_misaligned(inputs: tuple, y: Any, names: tuple[str, str] = ("X", "y"), what: str = "label") -> None:
    """Warn when pandas inputs and labels hold the same index labels in another order: rows are
    taken by position (as scikit-learn takes them), while pandas would pair them by label, so
    each row would get another row's label (``y`` sorted or shuffled apart from ``X``): in ``fit``
    (``X_val`` and ``y_val`` too, named by ``names``) and in ``score``; a sample weight (``what``)
    as well."""
    import pandas as pd

    if not isinstance(y, (pd.Series, pd.DataFrame)):
        return
    for x in inputs:
        if isinstance(x, (pd.Series, pd.DataFrame)) and reordered_index(x.index, y.index):
            x_name, y_name = names
            warnings.warn(f"{y_name}: its index holds the labels of {x_name}'s index in another order; rows are "
                          f"paired by position, not by index, so most rows get another row's {what}; align them "
                          f"first ({y_name} = {y_name}.loc[{x_name}.index]) or reset both indexes", AutoMMWarning,
                          stacklevel=user_stacklevel())
            return


def _is_dataframe(x: Any) -> bool:
    import pandas as pd

    return isinstance(x, pd.DataFrame)


def _warn_untrained_neighbors(data: PreparedData, config: dict) -> None:
    """The ``neighbors`` fusion learns nothing: it compares rows by their encoders' embeddings as
    they are built. Warn when an input's encoder is not frozen (pretrained): its weights are
    random, and it weighs as much in the similarity as a pretrained input."""
    from .neighbors import is_neighbors
    from .pipeline import all_encoders_frozen

    if not is_neighbors(config):
        return
    # (not a table's: no pretrained encoder could take its place)
    untrained = [f"{spec.name} ({', '.join(spec.columns)}): {config['encoders'][spec.name]['name']}"
                 for spec in data.inputs if spec.name in config["encoders"] and spec.modality != "tabular"
                 and not all_encoders_frozen([spec], config)]
    if untrained:
        warnings.warn(f"fusion='neighbors' trains no encoder: it compares rows by the embeddings of randomly "
                      f"initialised encoders for {'; '.join(untrained)}, each weighing as much as a pretrained "
                      f"input; give those inputs a frozen pretrained encoder (e.g. encoders={{'image': "
                      f"'efficientnet_lite0', 'text': 'minilm'}}) or leave them out of X",
                      AutoMMWarning, stacklevel=user_stacklevel())


def _refuse_mixed_boosting(config: dict, inputs: Sequence[InputSpec]) -> None:
    """An :class:`InputError` before any work when ``config`` names the ``boosted_trees`` encoder
    beside encoders of other ``inputs`` (:func:`automm.boosting.boosting_refusal`)."""
    from .boosting import boosting_refusal, is_boosted

    refusal = boosting_refusal(config, inputs) if is_boosted(config) else None
    if refusal:
        raise InputError(refusal)


class AutoMMClassifier(ClassifierMixin, AutoMM):
    """:class:`AutoMM` for classification (scikit-learn treats it as a classifier:
    stratified CV, accuracy scoring)."""

    score = AutoMM.score

    def _resolve_problem_type(self, y, declared_classes: bool = False):
        if self.problem_type == "regression":
            raise InputError("problem_type: AutoMMClassifier cannot do regression; use AutoMMRegressor")
        kind = super()._resolve_problem_type(y, declared_classes)
        if kind == "regression":
            shown = ", ".join(map(repr, np.unique(np.asarray(y))[:3].tolist()))
            raise InputError(f"y: AutoMMClassifier needs class labels, got {_target_kind(y)!r} values ({shown}, "
                             "...: numbers that are not whole); use AutoMMRegressor for regression, or make the "
                             "labels classes (e.g. strings)")
        return kind


class AutoMMRegressor(RegressorMixin, AutoMM):
    """:class:`AutoMM` for regression (scikit-learn treats it as a regressor: R² scoring)."""

    _forced_problem_type = "regression"
    score = AutoMM.score

    def _resolve_problem_type(self, y, declared_classes: bool = False):
        if self.problem_type not in ("auto", "regression"):
            raise InputError(f"problem_type: AutoMMRegressor does regression, not {self.problem_type!r}; use "
                             "AutoMMClassifier (or AutoMM) for classes")
        return super()._resolve_problem_type(y, declared_classes)


