"""The training loop: small replaceable steps, callbacks, a per-epoch history.

:class:`Trainer` runs AdamW with linear warm-up and cosine decay, label smoothing and class
weights, early stopping on a holdout split, a wall-clock deadline (the best model so far is
kept when time runs out), mixed precision and CUDA placement when a GPU is used.

With a deadline, training stops when one more batch and then the holdout evaluation and the
``on_epoch_end`` callbacks (timed on the last epoch; before the first, the evaluation estimated
from the batches' time) would not end before it, so that what was trained is evaluated in time.
The cosine schedule is fitted to the time too: after each epoch the trainer estimates how many
more epochs fit before the deadline and, when fewer than planned, plans that many and anneals
the learning rate from its current value to zero over them. A run cut short by time therefore
ends annealed, not at a high learning rate mid-schedule.

The kept epoch is the best by ``TrainingConfig.monitor`` among the *settled* epochs (past the
warm-up, the rate at or below half its peak) once there are any; early stopping counts
settled epochs only.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .evaluation import four_places
from .exceptions import AutoMMError
from .model import MultimodalNet, move_to_device

__all__ = ["TrainingConfig", "Callback", "CALLBACK_HOOKS", "callback_origin", "EarlyStopping", "ProgressBar", "Trainer",
           "TimeLimitReached",
           "make_loader", "batches_of", "resolve_device", "best_temperature", "calibrated_log_loss", "validation_metrics",
           "soft_cross_entropy", "weighted_mean", "classification_score", "holdout_score_name", "model_outputs",
           "autocast_dtype", "CLASSIFICATION_METRICS", "REGRESSION_METRICS", "BINARY_METRICS"]



def holdout_score_name(metric: str, problem_type: str) -> str:
    """What a holdout score (``best_score_``, the leaderboard's ``score``) is, for people: the
    ``metric``, or for regression the negated mean squared (absolute) error of the standardised
    targets."""
    if problem_type == "regression":
        return "neg_mae (standardised)" if metric == "mae" else "neg_mse (standardised)"
    return "accuracy" if metric == "auto" else metric


def _length(loader) -> int | None:
    """Batches per epoch of ``loader`` (None for an iterable without a length)."""
    try:
        return len(loader)
    except TypeError:
        return None


class TimeLimitReached(Exception):
    """Raised by a training step (the linear model's L-BFGS) when the deadline passes; its caller catches it."""


@dataclass
class TrainingConfig:
    """Hyperparameters of one training run."""

    max_epochs: int = 20
    learning_rate: float = 2e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.05
    patience: int = 8
    #: with a deadline, shorten the schedule so that it ends annealed before the deadline.
    fit_schedule_to_deadline: bool = True
    #: what picks the kept epoch and drives early stopping: "loss" (validation log-loss after
    #: temperature scaling for classification, MSE for regression; smooth, so a small holdout
    #: does not pick a lucky early epoch) or "score" (validation accuracy / −MSE, ties broken
    #: by loss).
    monitor: str = "loss"
    #: an epoch that ends past the warm-up with the learning rate at or below this fraction of
    #: its peak is *settled*. Once one exists, only settled epochs can be kept, and early
    #: stopping counts only settled epochs: the iterates of a high learning rate are noisy,
    #: and their holdout loss is sometimes luckily low (fashion usage, default model: epoch 5
    #: at 90% of the peak had the lowest holdout loss and scored 0.956 on test; the best settled
    #: epoch scored 0.965). A run that never settles (cut short by time) keeps its best epoch.
    settled_lr_fraction: float = 0.5
    grad_clip: float = 1.0
    problem_type: str = "multiclass"  # binary | multiclass | regression
    #: what the validation score measures (see :func:`validation_metrics`)
    metric: str = "auto"
    class_weights: Sequence[float] | None = None
    amp: bool = False
    deadline: float | None = None  # time.monotonic() value; None = no limit
    seed: int = 0
    #: on ``KeyboardInterrupt`` (Ctrl-C) after at least one epoch was scored: stop, keep the
    #: best epoch so far and set ``Trainer.interrupted`` (as skorch does), instead of raising.
    stop_on_interrupt: bool = False


class Callback:
    """Hooks called by :class:`Trainer` (``AutoMM(callbacks=[...])``); every method is a no-op by default.

    Per training run: ``on_train_begin``; per epoch ``on_epoch_begin(epoch)``, ``on_batch_end(loss)``
    after each training step, then the holdout evaluation, then ``on_epoch_end(record)`` with the
    epoch's history record (already in ``trainer.history``; keys added to it stay in ``history_``);
    ``on_train_end`` last, also when training raised, before the kept epoch's weights are put back.
    Callbacks run in list order, after automm's early stopping. Setting ``trainer.should_stop = True``
    (with ``trainer.stop_reason``, else it is named after the callback) ends training after the
    epoch in progress, keeping the best epoch as early stopping does. An exception a callback
    raises ends the training run with the callback and hook named on it (:func:`callback_origin`)."""

    def __repr__(self) -> str:
        """``MyCallback(patience=3)``: the class and its public attributes, each shortened, as a
        notebook shows the estimator holding it (Python's default showed a memory address)."""
        import reprlib

        shown = reprlib.Repr()  # (its keywords need Python 3.12)
        shown.maxstring, shown.maxother, shown.maxlist, shown.maxdict, shown.maxlevel = 40, 40, 4, 4, 2
        public = {name: value for name, value in getattr(self, "__dict__", {}).items() if not name.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{name}={shown.repr(value)}' for name, value in public.items())})"

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None: ...
    def on_batch_end(self, trainer: "Trainer", loss: float) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


#: The hooks :class:`Trainer` calls, in the order of a training run.
CALLBACK_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")
_CALLBACK_ATTR = "automm_callback"


def _name_callback(exc: Exception, callback: Callback, hook: str) -> None:
    """Name ``callback`` and ``hook`` on ``exc``, which it raised. Only the user's callbacks are
    named: automm's own exceptions (a trial's time limit landing in a callback) are not the
    callback's doing, and automm's own callbacks (the search's reporter writing to a storage) are
    not the user's."""
    if (isinstance(exc, AutoMMError) or getattr(exc, _CALLBACK_ATTR, None)
            or type(callback).__module__.partition(".")[0] == "automm"):
        return
    where = f"{type(callback).__name__}.{hook}"
    try:
        setattr(exc, _CALLBACK_ATTR, where)
    except AttributeError:  # (an exception type with __slots__)
        return
    if hasattr(exc, "add_note"):  # Python 3.11+: shown under the traceback
        exc.add_note(f"(raised by the training callback {where})")


def callback_origin(exc: BaseException) -> str | None:
    """``"Class.hook"`` of the training callback that raised ``exc`` (or one it was raised from), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        where = getattr(exc, _CALLBACK_ATTR, None)
        if where:
            return where
        exc = exc.__cause__ or exc.__context__
    return None


class EarlyStopping(Callback):
    """Stops when the kept epoch (see ``TrainingConfig.monitor``) is ``patience`` epochs old,
    counting only settled epochs: those that end past the warm-up with the learning rate at or
    below ``lr_fraction`` of its peak (default: ``TrainingConfig.settled_lr_fraction``).

    While the rate is high the holdout loss is noisy and often above that of the first,
    barely trained epoch; the end of the cosine schedule is where it usually falls lowest.
    On emoji (145 holdout rows), stopping 8 epochs after epoch 1 at 60% of the peak rate
    kept epoch 1 (test accuracy 0.62); the full schedule ends at 0.76."""

    def __init__(self, patience: int, lr_fraction: float | None = None):
        self.patience = int(patience)
        self.lr_fraction = None if lr_fraction is None else float(lr_fraction)
        self.armed_at: int | None = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.armed_at = None

    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None:
        if self.patience <= 0:
            return
        if self.armed_at is None:
            if not trainer.is_settled(self.lr_fraction):
                return
            self.armed_at = record["epoch"]
        if record["epoch"] - max(trainer.best_epoch, self.armed_at - 1) >= self.patience:
            trainer.stop_reason = f"no improvement for {self.patience} epochs"
            trainer.should_stop = True


class ProgressBar(Callback):
    """Progress over epochs with the latest losses and score, on stderr: a tqdm bar in a
    terminal or a notebook; elsewhere (a log file, a batch job, a pipe), where a bar's
    carriage returns would pile up on one line, one plain line per epoch. With ``records``,
    also each epoch's whole history record, as the epoch ends (above the bar). ``score_name``:
    the holdout score's name and value as shown (``valid_<name>``), from its value (a regression's
    R²: :func:`automm.pipeline.score_label`); None: ``valid_score`` as it is."""

    def __init__(self, total: int, description: str = "automm", stream: Any = None, records: bool = False,
                 score_name: Callable[[float], tuple[str, float]] | None = None):
        self.total, self.description, self.stream, self.bar = total, description, stream, None
        self.records, self.started, self.score_name = records, 0.0, score_name

    def _stream(self):
        return self.stream if self.stream is not None else sys.stderr

    def _interactive(self) -> bool:
        stream = self._stream()
        try:
            if stream.isatty():
                return True
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            return False
        return "ipykernel" in sys.modules and stream is sys.stderr  # a notebook shows tqdm's widget

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.started = time.monotonic()
        if self._interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.description, unit="epoch", leave=True, file=self.stream)

    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None:
        if self.records:
            line = str({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()})
            if self.bar is not None:
                self.bar.write(line, file=self._stream())
            else:
                print(line, file=self._stream(), flush=True)
        values = {name: f"{record[name]:.4f}" for name in ("train_loss", "valid_loss")}
        name, score = (("score", record["valid_score"]) if self.score_name is None
                       else self.score_name(record["valid_score"]))
        values[f"valid_{name}"] = four_places(score)
        # the epochs the schedule now plans: fewer than max_epochs once fitted to the time limit
        planned = max(int(getattr(trainer, "planned_epochs", None) or self.total), int(record["epoch"]))
        if self.bar is not None:
            if self.bar.total != planned:
                self.bar.total = planned
            self.bar.set_postfix(**values)
            self.bar.update(1)
            return
        shown = "  ".join(f"{name} {value}" for name, value in values.items())
        print(f"{self.description}: epoch {record['epoch']}/{planned}  {shown}  "
              f"({time.monotonic() - self.started:.1f} s)", file=self._stream(), flush=True)

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as torch reads it, checked to be
    usable here (a ValueError says why not: no CUDA, a GPU index this machine lacks, a backend
    this PyTorch cannot allocate on), so that a wrong device fails before any work."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        hint = " (did you mean 'cuda'?)" if str(device).lower().startswith("gpu") else ""
        raise ValueError(f"{device!r} is not a device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'{hint}") from None
    if resolved.type == "meta":
        raise ValueError(f"{str(device)!r} holds no data and cannot train; use 'cpu' or a GPU")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{str(device)!r}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"{str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}")
    elif resolved.type != "cpu":
        backend = torch.backends.mps if resolved.type == "mps" else getattr(torch, resolved.type, None)
        if hasattr(backend, "is_available") and not backend.is_available():
            raise ValueError(f"{str(device)!r}: {resolved.type.upper()} is not available on this machine")
        try:
            torch.empty(1, device=resolved)
        except Exception as exc:  # noqa: BLE001 - any backend's refusal reads the same to the user
            first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{str(device)!r} cannot be used here ({first})") from None
    return resolved


def workers_are_forked() -> bool:
    """Whether DataLoader worker processes start by ``fork`` (Linux before Python 3.14), without
    fixing the start method: under ``spawn`` (macOS, Windows) or ``forkserver`` (Linux from Python
    3.14) each loader's workers import torch and automm anew (seconds each; a loader starts them
    for every epoch and every evaluation) and run a script's unguarded top level again."""
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    return method == "fork"


def make_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int, collate_fn: Callable,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A loader of ``dataset``; a shuffled (training) one leaves out the last batch when it would
    hold one sample (a different sample each epoch): batch normalisation cannot train on one.
    Outside the main thread (a search's trial threads, one per GPU; a threaded server's
    predictions) it has no worker processes: once the main thread has used a loader with
    workers, torch watches every worker from the main thread's SIGCHLD handler, and loaders with
    workers in several threads at once then fail ("DataLoader worker exited unexpectedly"). Nor
    for fewer samples than four batches: starting workers costs far more than decoding a few
    batches (a request of one row took 60-460 ms instead of 2-6; under ``spawn`` a 6-row holdout's
    workers, started each epoch, cost half of a 1-epoch fit of 64 emoji). Workers start by the
    process's start method, named, so that it is not fixed: torch's default (multiprocessing's
    own context) fixed it for good, and a program's ``multiprocessing.set_start_method("spawn")``
    after a fit then raised "context has already been set"."""
    if num_workers and (threading.current_thread() is not threading.main_thread() or len(dataset) < 4 * batch_size):
        num_workers = 0
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    one_left = shuffle and len(dataset) > batch_size and len(dataset) % batch_size == 1
    context = None
    if num_workers > 0:
        context = multiprocessing.get_context(multiprocessing.get_start_method(allow_none=True)
                                              or multiprocessing.get_all_start_methods()[0])
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, collate_fn=collate_fn,
        generator=generator, pin_memory=pin_memory, persistent_workers=False, drop_last=one_left,
        prefetch_factor=4 if num_workers > 0 else None, multiprocessing_context=context)


@contextlib.contextmanager
def batches_of(loader) -> Iterator[Iterator]:
    """An iterator of ``loader``'s batches whose DataLoader worker processes stop when the block
    ends, also by an exception. torch stops them when the iterator is collected, but the traceback
    of an exception raised while it runs (a worker's ``InputError``: images that no longer decode; a
    plugin's ``preprocess`` failing; Ctrl-C) holds the iterator, and an interactive shell keeps the
    last traceback (``sys.last_traceback``): a failed ``fit`` or ``predict`` left its worker
    processes (forks of the whole process), their pipes and feeder threads until the next error."""
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        stop = getattr(iterator, "_shutdown_workers", None)  # (torch's iterator with worker processes)
        if stop is not None:
            stop()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                       row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean cross-entropy of ``logits`` against soft ``targets`` (rows of class
    probabilities), each row's term scaled by ``row_weights`` (its sample weight times its
    class's weight, normalised to a mean of 1 over the training rows, so a row of weight 2
    counts as two rows in expectation). A class's weight belongs to the rows of that class,
    not to its column of the targets: label smoothing puts some of every row's target on every
    class, and a heavy rare class's column would then pull every row towards that class."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    per_row = (-targets * log_probs).sum(-1)
    if row_weights is not None:
        per_row = per_row * row_weights
    return per_row.mean()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``values`` (one per row), weighted by ``weights`` when given."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum()


def best_temperature(logits: torch.Tensor, targets: torch.Tensor,
                     weights: torch.Tensor | None = None, smoothing: float = 0.0,
                     prior_sd: float | None = None) -> tuple[float, float]:
    """``(b, loss)``: the multiplier ``b`` of ``logits`` (from 1e-2 to 1e2; golden-section search
    on ``log b``, the loss being convex in ``b``) with the lowest cross-entropy (weighted by the
    rows' ``weights`` when given), and that loss. ``b`` > 1 sharpens under-confident logits
    (label smoothing makes them so), ``b`` < 1 softens over-confident ones.

    ``prior_sd``: ``b`` is the most probable under a normal prior on ``log b`` centred on 0 (the
    logits as trained) with that standard deviation: it minimises the summed cross-entropy of the
    rows plus ``log(b)² / (2 prior_sd²)``, which moves it towards 1 on a few rows only (the loss
    returned is still the cross-entropy alone)."""
    logits = logits.float()
    targets = targets.long()
    weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    rows = float(weights.sum()) if weights is not None else len(targets)  # (a row of weight 2: two rows)
    penalty = 0.0 if prior_sd is None else 1.0 / (2.0 * prior_sd * prior_sd * max(rows, 1e-12))

    def cross_entropy(log_b: float) -> float:
        if weights is None:
            return float(torch.nn.functional.cross_entropy(logits * math.exp(log_b), targets, label_smoothing=smoothing))
        per_row = torch.nn.functional.cross_entropy(logits * math.exp(log_b), targets, reduction="none",
                                                    label_smoothing=smoothing)
        return float(weighted_mean(per_row, weights))

    def loss(log_b: float) -> float:  # (per row: the prior's share of each)
        return cross_entropy(log_b) + penalty * log_b * log_b

    low, high = math.log(1e-2), math.log(1e2)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(40):  # interval shrinks by 0.618 each step: ~1e-8 of log(1e4)
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    value, best = min((fa, a), (fb, b), (loss(0.0), 0.0))
    return math.exp(best), (cross_entropy(best) if penalty else value)


def calibrated_log_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Log-loss of ``logits`` after the best temperature scaling (:func:`best_temperature`).

    It judges how well the logits rank the classes, not how confident they are. The plain
    log-loss prefers a barely trained epoch: its predictions are nearly uniform, so it is
    never confidently wrong. On emoji (145 holdout rows, seed 1), epoch 1 (accuracy 0.669)
    had a lower plain log-loss than every later epoch (accuracy 0.72-0.74), and was kept."""
    if not bool(torch.isfinite(logits.float()).all()):
        return float("nan")
    return best_temperature(logits, targets, weights)[1]


#: What a validation score can measure (``metric=``; ``"auto"``: accuracy, or for regression the
#: negated mean squared error). ``r2`` and ``rmse`` rank regression models as the mean squared
#: error does, so their score is that too; ``mae`` scores the negated mean absolute error (of
#: standardised targets).
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "f1")
REGRESSION_METRICS = ("r2", "rmse", "mae")
#: Metrics of a binary problem only: ``f1`` is the F1 score of the positive class, the second of
#: ``classes_`` (sorted: 1 of 0/1, True of False/True, "yes" of "no"/"yes").
BINARY_METRICS = ("f1",)
#: scikit-learn's scorer names of the metrics above (``cross_val_score(scoring=...)``), and its
#: names for metrics automm does not rank by: a user writing them is told what to write here.
SCIKIT_LEARN_METRIC_NAMES = {
    "recall_macro": "balanced_accuracy", "f1_macro": "macro_f1", "f1_weighted": "weighted_f1",
    "f1_micro": "accuracy", "f1_binary": "f1", "neg_mean_squared_error": "rmse",
    "neg_root_mean_squared_error": "rmse", "neg_mean_absolute_error": "mae", "mse": "rmse",
    "roc_auc": None, "roc_auc_ovr": None, "roc_auc_ovo": None, "neg_log_loss": None, "log_loss": None,
    "average_precision": None, "neg_brier_score": None, "brier_score_loss": None, "top_k_accuracy": None,
}
#: scikit-learn's scorer (``scoring=``) of a probability metric written by its function's name
#: (``scoring='log_loss'`` is no scorer: scikit-learn raises a ValueError).
PROBABILITY_SCORERS = {"log_loss": "neg_log_loss", "brier_score_loss": "neg_brier_score"}


def metric_name_hint(name: Any, known: Sequence[str]) -> str:
    """What to say after 'expected one of ...' for an unknown ``metric``: scikit-learn's name of
    one of automm's metrics (``recall_macro``) gets automm's; a probability metric gets how to
    measure it; anything else a did-you-mean among ``known``, else, for AutoGluon's name of one
    (``root_mean_squared_error``), automm's."""
    from .migrating import FOREIGN_METRICS
    from .suggestions import did_you_mean

    if not isinstance(name, str) or name not in SCIKIT_LEARN_METRIC_NAMES:
        spelled = did_you_mean(name, known)
        if not spelled and isinstance(name, str) and name in FOREIGN_METRICS:
            return f"; AutoGluon's {name!r} is {FOREIGN_METRICS[name]!r} here"
        return spelled
    ours = SCIKIT_LEARN_METRIC_NAMES[name]
    if ours is not None:
        return f"; scikit-learn's {name!r} is {ours!r} here"
    scorer = PROBABILITY_SCORERS.get(name, name)
    return (f"; automm ranks models by a metric of predict's decisions: for {name!r}, pick one of these and measure "
            f"it on predict_proba (e.g. cross_val_score(model, X, y, scoring={scorer!r}))")


def classification_score(predicted: np.ndarray, targets: np.ndarray, metric: str = "accuracy",
                         weights: np.ndarray | None = None) -> float:
    """``metric`` (one of :data:`CLASSIFICATION_METRICS`, ``"auto"`` = accuracy) of predicted
    class indices, rows weighted by ``weights``: accuracy; balanced accuracy (the mean recall
    of the classes present in ``targets``); the F1 score averaged over the classes present in
    ``targets`` or predicted, equally (``macro_f1``) or by their (weighted) support; ``f1``: the
    F1 score of class 1 (a binary problem's positive class)."""
    predicted, targets = np.asarray(predicted).astype(np.int64), np.asarray(targets).astype(np.int64)
    correct = predicted == targets
    if metric in ("auto", "accuracy"):
        return float(correct.mean() if weights is None else np.average(correct, weights=np.asarray(weights)))
    w = np.ones(len(targets)) if weights is None else np.asarray(weights, dtype=np.float64)
    n = int(max(predicted.max(initial=0), targets.max(initial=0))) + 1
    support = np.bincount(targets, weights=w, minlength=n)
    hits = np.bincount(targets[correct], weights=w[correct], minlength=n)
    if metric == "balanced_accuracy":
        present = support > 0
        return float(np.mean(hits[present] / support[present]))
    called = np.bincount(predicted, weights=w, minlength=n)
    classes = (support > 0) | (called > 0)
    f1 = np.where(classes, 2 * hits / np.maximum(support + called, 1e-300), 0.0)
    if metric == "macro_f1":
        return float(f1[classes].mean())
    if metric == "weighted_f1":
        return float((f1 * support).sum() / support.sum())
    if metric == "f1":
        return float(f1[1]) if n > 1 else 0.0
    raise ValueError(f"metric must be one of {['auto', *CLASSIFICATION_METRICS]}, got {metric!r}")


def validation_metrics(outputs: np.ndarray, targets: np.ndarray, classification: bool,
                       weights: np.ndarray | None = None, metric: str = "auto") -> tuple[float, float]:
    """(loss, score) of validation outputs: for classification the log-loss after temperature
    scaling (:func:`calibrated_log_loss`) and ``metric`` (:func:`classification_score`;
    accuracy by default), for regression the MSE and −MSE (−MAE for ``metric="mae"``); each
    over the rows weighted by their ``weights`` (sample weights) when given."""
    out_t, tgt_t = torch.from_numpy(np.asarray(outputs)), torch.as_tensor(targets)
    w_t = None if weights is None else torch.as_tensor(np.asarray(weights), dtype=torch.float32)
    if classification:
        score = classification_score(np.asarray(outputs).argmax(1), np.asarray(targets), metric, weights)
        return calibrated_log_loss(out_t, tgt_t.long(), w_t), score
    errors = out_t.float().view(-1) - tgt_t.float().view(-1)
    loss = float(weighted_mean(errors ** 2, w_t))
    if metric == "mae":
        return loss, -float(weighted_mean(errors.abs(), w_t))
    return loss, -loss


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The mixed-precision type on ``device``: bfloat16 where the GPU supports it (no gradient
    scaler needed), else float16. Training, its holdout scores and prediction all use it, so a
    model predicts as it was scored."""
    if device.type == "cuda" and _native_bf16(device):
        return torch.bfloat16
    return torch.float16


def _native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (compute capability 8.0, Ampere, or later):
    ``torch.cuda.is_bf16_supported()`` also says yes where bfloat16 is only emulated (T4, V100:
    no tensor cores, no cuDNN convolutions in it), where float16 with a gradient scaler is the fast path."""
    try:
        return torch.cuda.get_device_capability(device)[0] >= 8
    except (RuntimeError, AssertionError, ValueError):
        return False


def _on(actual: torch.device, wanted: torch.device) -> bool:
    """Whether a tensor on ``actual`` is on ``wanted``: ``cuda`` (no index) is the current GPU,
    where tensors say ``cuda:0``."""
    if actual.type != wanted.type:
        return False
    if wanted.index is None:
        return actual.type != "cuda" or actual.index == torch.cuda.current_device()
    return actual.index == wanted.index


def in_eval_on(model: nn.Module, device: torch.device) -> nn.Module:
    """``model.to(device).eval()``, each step only where needed: a service predicting row by row
    would otherwise walk every module and tensor twice per call (0.4 ms of a 3 ms prediction)."""
    if any(not _on(t.device, device) for t in itertools.chain(model.parameters(), model.buffers())):
        model = model.to(device)
    if any(module.training for module in model.modules()):
        model.eval()
    return model


@torch.no_grad()
def model_outputs(model: MultimodalNet, loader, device: torch.device, *, amp: bool = False,
                  amp_dtype: torch.dtype | None = None, embed: bool = False) -> np.ndarray:
    """``model``'s raw outputs (logits or standardised values; with ``embed``, its fused
    embeddings) for every batch of ``loader``, in evaluation mode on ``device``, under autocast
    when ``amp`` (``amp_dtype``: :func:`autocast_dtype` when None); float32, on the CPU."""
    model = in_eval_on(model, device)
    forward = model.embed if embed else model
    chunks = []
    amp = amp and device.type == "cuda"
    with torch.autocast(device_type=device.type, dtype=amp_dtype or autocast_dtype(device), enabled=amp), \
            batches_of(loader) as batches:
        for batch in batches:
            batch = move_to_device(batch, device, non_blocking=True)
            chunks.append(forward(batch["inputs"], batch["masks"]).float().cpu())
    return torch.cat(chunks).numpy()


def _fused_adamw_supported(device: torch.device) -> bool:
    """The fused AdamW kernel (about 10x faster on CPU for large embedding tables)."""
    return device.type in ("cpu", "cuda")


class Trainer:
    """Trains a :class:`MultimodalNet`; ``history`` holds one dict per epoch.

    The steps (:meth:`training_step`, :meth:`compute_loss`, :meth:`evaluate`) are small
    methods so that a subclass or a callback can replace one without copying the loop.
    """

    def __init__(self, model: MultimodalNet, config: TrainingConfig, device: torch.device,
                 callbacks: Sequence[Callback] = (), batch_augmentations: Sequence[Any] = ()):
        if config.monitor not in ("loss", "score"):
            raise ValueError(f"monitor must be 'loss' or 'score', got {config.monitor!r}")
        self.model = model.to(device)
        self.config = config
        self.device = device
        self.callbacks = list(callbacks)
        self.batch_augmentations = list(batch_augmentations)
        self.history: list[dict] = []
        self.best_epoch = 0
        self.best_score = -math.inf
        self.best_loss = math.inf
        self.best_settled = False
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_valid_outputs: np.ndarray | None = None
        self.last_raw_loss = math.nan
        self.should_stop = False
        self.stop_reason = ""
        self.interrupted = False
        self.steps = 0
        self._evaluation_seconds: float | None = None  # the last holdout evaluation's duration
        self._epoch_end_seconds = 0.0                   # the last epoch's on_epoch_end callbacks' duration
        self._batch_seconds: list[float] = []          # the last epoch's recent batch durations
        self.generator = torch.Generator()
        self.generator.manual_seed(config.seed)
        self.class_weights = (torch.tensor(config.class_weights, dtype=torch.float32, device=device)
                              if config.class_weights is not None else None)
        self.train_weights: torch.Tensor | None = None   # per training row, by dataset index (see fit)
        self.valid_weights: np.ndarray | None = None
        use_amp = bool(config.amp) and device.type == "cuda"
        self.amp_dtype = autocast_dtype(device)
        self.use_amp = use_amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp and self.amp_dtype == torch.float16)

    # -- steps ------------------------------------------------------------------------
    @property
    def is_classification(self) -> bool:
        return self.config.problem_type != "regression"

    def soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        if not self.is_classification:
            return target.float().view(-1, 1)
        n = self.model.n_outputs
        smoothing = self.config.label_smoothing
        one_hot = torch.nn.functional.one_hot(target.long(), n).float()
        return one_hot * (1 - smoothing) + smoothing / n

    def compute_loss(self, outputs: torch.Tensor, targets: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
        """The batch's training loss; ``weights``: the rows' weights (:meth:`batch_weights`), or None."""
        if self.is_classification:
            return soft_cross_entropy(outputs, targets, weights)
        if weights is None:
            return torch.nn.functional.mse_loss(outputs.float(), targets)
        return (((outputs.float() - targets) ** 2).mean(1) * weights).mean()

    def batch_weights(self, batch: dict) -> torch.Tensor | None:
        """The weights of a training batch's rows in the loss: each row's sample weight times
        its class's weight (None without either)."""
        weights = None
        if self.train_weights is not None:
            weights = self.train_weights[batch["index"].to(self.train_weights.device)]
        if self.class_weights is not None and self.is_classification:
            of_class = self.class_weights[batch["target"].to(self.class_weights.device).long()]
            weights = of_class if weights is None else weights * of_class
        return weights

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def _non_finite_origin(self, inputs: Any, masks: Mapping[str, torch.Tensor]) -> str:
        """Which component made a non-finite loss, while the weights are still finite (a plugin's
        encoder or fusion, e.g. a mean over no inputs), as ``": ..."``; "" when none can be named
        (the weights diverged, or the head)."""
        try:
            if not all(torch.isfinite(p).all() for p in self.model.parameters()):
                return ""
            with torch.no_grad(), self._autocast():
                embeddings = self.model.encode(inputs, masks)
                for name, embedding in embeddings.items():
                    if not torch.isfinite(embedding[masks[name]]).all():
                        return (f": {self.model.input_labels[name]} returned NaN or infinite "
                                "embeddings for present values")
                fused = self.model.embed(inputs, masks)
                bad = ~torch.isfinite(fused.float()).all(1)
                if bad.any():
                    lacking = ~torch.stack([masks[name] for name in embeddings], 1).any(1)
                    which = (" (only rows lacking every input: a sample with no input must still get a finite "
                             "output)" if bool((bad <= lacking).all()) else "")
                    return (f": {self.model.fusion_label} returned NaN or infinite values for {int(bad.sum())} of "
                            f"{len(bad)} rows{which}")
        except Exception:  # noqa: BLE001 - a diagnosis only
            return ""
        return ""

    def training_step(self, batch: dict) -> float:
        batch = move_to_device(batch, self.device, non_blocking=True)
        masks = batch["masks"]
        for aug in self.batch_augmentations:
            masks = aug.apply_masks(masks, self.generator)
        targets = self.soft_targets(batch["target"])
        weights = self.batch_weights(batch)
        # the rows' weights ride along as the targets' last column: an augmentation that mixes
        # rows (mixup) mixes their weights as it mixes their targets
        carried = bool(self.batch_augmentations) and weights is not None
        with self._autocast():
            fused = self.model.embed(batch["inputs"], masks)
            if carried:
                targets = torch.cat([targets, weights.to(targets.dtype).unsqueeze(1)], dim=1)
            for aug in self.batch_augmentations:
                fused, targets = aug.apply_fused(fused, targets, self.generator)
            if carried:
                targets, weights = targets[:, :-1], targets[:, -1]
            outputs = self.model.head(fused)
        loss = self.compute_loss(outputs, targets, weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.steps}"
                                     f"{self._non_finite_origin(batch['inputs'], masks)}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.steps += 1
        return float(loss.detach())

    def predict_outputs(self, loader) -> np.ndarray:
        """Raw model outputs (logits or standardised values) for every sample of ``loader``."""
        return model_outputs(self.model, loader, self.device, amp=self.use_amp, amp_dtype=self.amp_dtype)

    def is_improvement(self, valid_loss: float, valid_score: float, settled: bool = True) -> bool:
        """Whether this epoch's validation result beats the kept one: a settled epoch beats an
        unsettled one (see ``TrainingConfig.settled_lr_fraction``); otherwise by ``config.monitor``."""
        if not math.isfinite(valid_loss):  # keep something, but never prefer a diverged epoch
            return self.best_epoch == 0
        if self.best_epoch and settled != self.best_settled:
            return settled
        if self.config.monitor == "score":
            return valid_score > self.best_score or (valid_score == self.best_score and valid_loss < self.best_loss)
        return valid_loss < self.best_loss or (valid_loss == self.best_loss and valid_score > self.best_score)

    def keep_if_better(self, epoch: int, valid_loss: float, valid_score: float, outputs: np.ndarray | None,
                       settled: bool = True) -> bool:
        """Keep the model as it is now (weights, holdout outputs, metrics) when this epoch
        beats the kept one (:meth:`is_improvement`); returns whether it did."""
        if not self.is_improvement(valid_loss, valid_score, settled):
            return False
        self.best_epoch, self.best_score, self.best_loss, self.best_settled = epoch, valid_score, valid_loss, settled
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.best_valid_outputs = outputs
        return True

    def evaluate(self, loader, targets: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(loss, score, outputs) on a validation loader (see :func:`validation_metrics`). The
        plain log-loss goes to ``last_raw_loss``."""
        outputs = self.predict_outputs(loader)
        weights = self.valid_weights
        if self.is_classification:
            per_row = torch.nn.functional.cross_entropy(torch.from_numpy(outputs), torch.as_tensor(targets).long(),
                                                        reduction="none")
            self.last_raw_loss = float(weighted_mean(per_row, None if weights is None else torch.as_tensor(weights)))
        loss, score = validation_metrics(outputs, targets, self.is_classification, weights, self.config.metric)
        return loss, score, outputs

    def configure_optimizer(self, steps_per_epoch: int) -> None:
        """AdamW (no weight decay on biases and other 1-D parameters) and its schedule: linear
        warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero at the end of
        ``max_epochs`` (:meth:`plan_remaining_epochs` moves the end). A module that sets
        ``learning_rate_scale`` (e.g. a sparse embedding table, whose rows see few updates) trains
        its parameters, and those of its children, at the learning rate times that scale."""
        scales: dict[int, float] = {}
        for module in self.model.modules():  # parents before children: the innermost scale wins
            scale = getattr(module, "learning_rate_scale", None)
            if scale is not None:
                for param in module.parameters():
                    scales[id(param)] = float(scale)
        groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            decays = not (param.ndim <= 1 or name.endswith(".bias"))
            groups.setdefault((decays, scales.get(id(param), 1.0)), []).append(param)
        self.optimizer = torch.optim.AdamW(
            [{"params": params, "weight_decay": self.config.weight_decay if decays else 0.0,
              "lr": self.config.learning_rate * scale}
             for (decays, scale), params in groups.items()],
            lr=self.config.learning_rate, fused=_fused_adamw_supported(self.device))
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.planned_epochs = int(self.config.max_epochs)
        total = self.steps_per_epoch * self.planned_epochs
        warmup = max(1, int(self.config.warmup_fraction * total))
        # Linear warm-up to step ``warmup``, then a cosine from ``factor`` at step ``start`` to
        # zero at step ``end``; plan_remaining_epochs moves these, keeping the rate continuous.
        self._plan = (warmup, warmup, 1.0, total)

        def schedule(step: int) -> float:
            warmup, start, factor, end = self._plan
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, max(0, step - start) / max(1, end - start))
            return factor * 0.5 * (1 + math.cos(math.pi * progress))
        self._schedule = schedule
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)

    def current_learning_rate(self) -> float:
        """The schedule's rate now, for ``learning_rate`` itself: the first parameter group's rate
        divided by its ``learning_rate_scale`` (the first group may be a scaled one, such as
        ``hashed_ngram``'s embedding at 5x)."""
        group = self.optimizer.param_groups[0]
        return self.scheduler.get_last_lr()[0] * self.config.learning_rate / group["initial_lr"]

    def lr_fraction(self) -> float:
        """The learning rate of the next step as a fraction of the peak (0 at the end)."""
        return float(self._schedule(self.scheduler.last_epoch))

    def is_settled(self, lr_fraction: float | None = None) -> bool:
        """Whether training is past the warm-up with the next step's learning rate at or below
        ``lr_fraction`` (default ``config.settled_lr_fraction``) of the peak."""
        fraction = self.config.settled_lr_fraction if lr_fraction is None else lr_fraction
        return self.scheduler.last_epoch >= self._plan[0] and self.lr_fraction() <= fraction

    def plan_remaining_epochs(self, epoch: int) -> None:
        """After ``epoch``, with a deadline: plan as many epochs as fit before it (at the recent
        epoch time, its ``on_epoch_end`` callbacks included, plus 10%; at least one more, at most
        ``max_epochs``) and anneal from the current learning rate to zero at their end."""
        if self.config.deadline is None or not self.config.fit_schedule_to_deadline or self.should_stop:
            return
        recent = [r["seconds"] for r in self.history if r.get("complete")][-3:]
        if not recent:
            return
        seconds = float(np.median(recent)) + self._epoch_end_seconds  # (a record's seconds end before its callbacks)
        fits = int((self.config.deadline - time.monotonic()) // (1.1 * seconds))
        planned = min(int(self.config.max_epochs), epoch + max(1, fits))
        if planned == self.planned_epochs or epoch >= self.planned_epochs:
            return
        self.planned_epochs = planned
        now, end = self.scheduler.last_epoch, planned * self.steps_per_epoch  # LambdaLR counts steps
        warmup = self._plan[0]
        if now < warmup:  # still warming up: shorten the warm-up with the schedule, reaching the peak
            # at the next step at the latest (annealing from the current, partly warmed-up rate would
            # train the whole run below the peak: max_epochs=100 cut to 16 epochs peaked at 0.2x)
            warmup = max(now + 1, int(self.config.warmup_fraction * end))
            self._plan = (warmup, warmup, 1.0, max(warmup + 1, end))
            return
        self._plan = (min(warmup, now), now, self._schedule(now), max(now + 1, end))

    def _evaluation_reserve(self, batch_seconds: float, valid_loader) -> float:
        """Seconds to keep for the holdout evaluation and the ``on_epoch_end`` callbacks that end an
        epoch: the last epoch's durations, or before the first, half a training batch's time per
        holdout batch (a forward pass without the backward one; the holdout's images not yet decoded)."""
        if self._evaluation_seconds is not None:
            return self._evaluation_seconds + self._epoch_end_seconds
        return 0.5 * batch_seconds * (_length(valid_loader) or 0)

    def _next_batch_fits(self, batch_seconds: list[float], valid_loader) -> bool:
        """Whether one more training batch and then the holdout evaluation end before the
        deadline (``batch_seconds``: the batches' times so far; their recent median counts)."""
        if self.config.deadline is None:
            return True
        batch = float(np.median(batch_seconds[-20:])) if batch_seconds else 0.0
        return time.monotonic() + batch + self._evaluation_reserve(batch, valid_loader) <= self.config.deadline

    def _call(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every callback, in order: an exception a callback raises is named after it
        (:func:`callback_origin`), and one that stops training without a ``stop_reason`` gets one."""
        for callback in self.callbacks:
            stopping = self.should_stop
            try:
                getattr(callback, hook)(self, *args)
            except Exception as exc:
                _name_callback(exc, callback, hook)
                raise
            if self.should_stop and not stopping and not self.stop_reason:
                self.stop_reason = f"stopped by callback {type(callback).__name__}.{hook}"

    # -- loop ------------------------------------------------------------------------
    def fit(self, train_loader, valid_loader, valid_targets: np.ndarray, train_weights: np.ndarray | None = None,
            valid_weights: np.ndarray | None = None) -> "Trainer":
        """Train; ``train_weights`` / ``valid_weights``: sample weights of the training rows (by
        their index in ``train_loader``'s dataset, normalised to mean 1) and of the validation
        rows, or None. The validation loss and score are then weighted means."""
        if train_weights is not None:
            weights = torch.as_tensor(np.asarray(train_weights, dtype=np.float32))
            self.train_weights = (weights / weights.mean()).to(self.device)
        self.valid_weights = None if valid_weights is None else np.asarray(valid_weights, dtype=np.float64)
        self.configure_optimizer(len(train_loader))
        self._call("on_train_begin")
        try:
            for epoch in range(1, self.config.max_epochs + 1):
                if self.should_stop:
                    break
                if epoch > self.planned_epochs:
                    self.stop_reason = (f"schedule fitted to the time limit: {self.planned_epochs} of "
                                        f"{self.config.max_epochs} epochs")
                    break
                if epoch > 1 and not self._next_batch_fits(self._batch_seconds, valid_loader):
                    self.stop_reason = "time limit reached"  # not even one more batch and its evaluation
                    break
                self.run_epoch(epoch, train_loader, valid_loader, valid_targets)
                self.plan_remaining_epochs(epoch)
        except KeyboardInterrupt:
            if not self.config.stop_on_interrupt or self.best_state is None:
                raise
            self.interrupted = True
            self.stop_reason = f"interrupted (KeyboardInterrupt) in epoch {len(self.history) + 1}"
        finally:
            self._call("on_train_end")
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self

    def run_epoch(self, epoch: int, train_loader, valid_loader, valid_targets: np.ndarray) -> dict:
        start = time.monotonic()
        if hasattr(train_loader.dataset, "epoch"):
            train_loader.dataset.epoch = epoch
        self._call("on_epoch_begin", epoch)
        self.model.train()
        losses, timed_out, batch_seconds = [], False, []
        mark = time.monotonic()
        with batches_of(train_loader) as batches:
            for batch in batches:
                losses.append(self.training_step(batch))
                self._call("on_batch_end", losses[-1])
                batch_seconds.append(time.monotonic() - mark)
                mark = time.monotonic()
                if not self._next_batch_fits(batch_seconds, valid_loader):
                    timed_out = True  # stopped with time left to evaluate what was trained
                    break
        if batch_seconds:
            self._batch_seconds = batch_seconds[-20:]
        planned = _length(train_loader)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "train_seconds": time.monotonic() - start, "lr": self.current_learning_rate(),
                  "batches": len(losses), "epoch_batches": planned,
                  "complete": not timed_out or (planned is not None and len(losses) >= planned)}
        evaluation_start = time.monotonic()
        valid_loss, valid_score, outputs = self.evaluate(valid_loader, valid_targets)
        self._evaluation_seconds = time.monotonic() - evaluation_start
        settled = self.is_settled()
        improved = self.keep_if_better(epoch, valid_loss, valid_score, outputs, settled)
        if self.is_classification:
            record["valid_raw_loss"] = self.last_raw_loss
        record.update(valid_loss=valid_loss, valid_score=valid_score, settled=settled, best=improved,
                      seconds=time.monotonic() - start)
        self.history.append(record)
        hooks_start = time.monotonic()
        self._call("on_epoch_end", record)
        self._epoch_end_seconds = time.monotonic() - hooks_start  # (a checkpoint's save: counted before the deadline)
        if timed_out:
            self.should_stop = True
            self.stop_reason = "time limit reached"
        return record
