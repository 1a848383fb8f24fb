"""Exceptions raised by automm."""

from __future__ import annotations

__all__ = ["AutoMMError", "AutoMMWarning", "PluginError", "UnknownComponentError", "InputError", "NotFittedError",
           "ModelFormatError", "TimeLimitExceeded", "SearchError", "user_stacklevel", "in_chain"]

import sys

from sklearn.exceptions import NotFittedError as _SkNotFitted

#: Modules whose frames a warning skips on its way to the user's line: automm, its plugins, and
#: the libraries that call back into it (scikit-learn's model selection, Optuna's trials, ...).
_PASSED_THROUGH = ("automm", "sklearn", "joblib", "optuna", "torch", "pluggy", "contextlib")

#: Modules that start processes and threads: where the walk past automm and those libraries ends
#: in one, the stack holds no line of the user's.
_NO_USER_LINE = ("multiprocessing", "threading", "concurrent")


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called in automm that points at the first frame
    outside automm and the libraries in :data:`_PASSED_THROUGH`: the user's own call (a notebook
    cell's line, which Jupyter shows again each time the cell runs; a line inside automm shows
    once per session). Where every frame is internal (a trial's thread), the outermost one. Where
    that first frame starts a process or thread (:data:`_NO_USER_LINE`: a joblib worker of
    ``cross_val_score(n_jobs=2)``, whose stack holds no line of the user's), the line that called
    automm (scikit-learn's ``estimator.fit(X_train, ...)``), not ``multiprocessing``'s."""
    frame, level, entry = sys._getframe(1), 1, None
    while frame.f_back is not None and _internal(name := frame.f_globals.get("__name__") or ""):
        if _own(name):
            entry = level + 1
        frame, level = frame.f_back, level + 1
    if entry is not None and (frame.f_globals.get("__name__") or "").partition(".")[0] in _NO_USER_LINE:
        return entry
    return level


def _own(module: str) -> bool:
    top = module.partition(".")[0]
    return top == "automm" or top.startswith("automm_")


def _internal(module: str) -> bool:
    top = module.partition(".")[0]
    return top in _PASSED_THROUGH or top.startswith("automm_")


class AutoMMError(Exception):
    """Base class of automm's own errors."""


class AutoMMWarning(UserWarning):
    """The category of automm's own warnings about the data, the arguments and the work (a
    ``UserWarning``): a program filters them by it, ``warnings.filterwarnings("ignore",
    category=automm.AutoMMWarning)``, since their ``stacklevel`` names the caller's line, not
    automm's module. A feature cache or a journal file that cannot be written is a
    ``RuntimeWarning``, and a column-vector ``y`` scikit-learn's ``DataConversionWarning``."""


class PluginError(AutoMMError):
    """A plugin registered something invalid, or could not be loaded."""


class UnknownComponentError(AutoMMError, KeyError):
    """A component name that no installed plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(AutoMMError, ValueError):
    """Bad input data or arguments, detected before any training."""


class NotFittedError(_SkNotFitted, AutoMMError):
    """``predict`` (or similar) called before ``fit``: scikit-learn's (a ``ValueError`` and an
    ``AttributeError``, as its tools expect) and an :class:`AutoMMError`, as a host catches automm's."""


class ModelFormatError(AutoMMError):
    """A saved model directory that cannot be loaded."""


class TimeLimitExceeded(AutoMMError):
    """Work ran past the time limit: raised by :func:`automm.deadlines.check_deadline` in code that
    watches the deadline itself (a pretrained encoder's feature extraction), and by the search's
    alarm in a trial stuck in code that does not. The search records the trial as failed. ``fit``
    raises it when its ``time_limit`` ends before any model has finished."""


class SearchError(AutoMMError):
    """No trial of the search produced a model; the message lists the trials' reasons."""


def in_chain(exc: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of type ``kind`` among ``exc`` and the exceptions that led to it
    (its ``__cause__``, else its ``__context__``, and theirs), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
