"""Exceptions raised by automm."""

from __future__ import annotations

__all__ = ["AutoMMError", "PluginError", "UnknownComponentError", "InputError", "NotFittedError", "ModelFormatError",
           "TimeLimitExceeded", "SearchError"]

from sklearn.exceptions import NotFittedError as _SkNotFitted


class AutoMMError(Exception):
    """Base class of automm's own errors."""


class PluginError(AutoMMError):
    """A plugin registered something invalid, or could not be loaded."""


class UnknownComponentError(AutoMMError, KeyError):
    """A component name that no installed plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(AutoMMError, ValueError):
    """Bad input data or arguments, detected before any training."""


class NotFittedError(_SkNotFitted):
    """``predict`` (or similar) called before ``fit``."""


class ModelFormatError(AutoMMError):
    """A saved model directory that cannot be loaded."""


class TimeLimitExceeded(AutoMMError):
    """Work ran past the time limit: raised by :func:`automm.deadlines.check_deadline` in code that
    watches the deadline itself (a pretrained encoder's feature extraction), and by the search's
    alarm in a trial stuck in code that does not. The search records the trial as failed. ``fit``
    raises it when its ``time_limit`` ends before any model has finished."""


class SearchError(AutoMMError):
    """No trial of the search produced a model; the message lists the trials' reasons."""
