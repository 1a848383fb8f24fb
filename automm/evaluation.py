"""Test metrics of a fitted model's predictions: what ``automm fit`` and ``automm evaluate`` report."""

from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import numpy as np

__all__ = ["compute_metrics", "positive_class", "four_places", "enough_digits"]

_Shown = TypeVar("_Shown")


def enough_digits(shown: Callable[[int], _Shown], digits: int, most: int,
                  misleading: Callable[[_Shown], bool]) -> _Shown:
    """``shown(digits)``, or with as many more digits (up to ``most``) as it takes for it not to be
    ``misleading``: a report's number rounded to a statement it is not (0.99997 as ``1.0000``)."""
    text = shown(digits)
    while misleading(text) and digits < most:
        digits += 1
        text = shown(digits)
    return text


def four_places(value: float) -> str:
    """``value`` with four decimal places, or as many more (up to 12) as it takes not to show a
    whole number it is not: 0.99997 (one error in 30,000 rows) as ``0.99997``, not ``1.0000``."""
    return enough_digits(lambda places: f"{value:.{places}f}", 4, 12, lambda text: math.isfinite(value) and float(
        text) == round(float(text)) and float(text) != value)


def positive_class(estimator) -> Any:
    """A fitted binary classifier's positive class (the second of ``classes_``), else None."""
    if getattr(estimator, "problem_type_", None) != "binary":
        return None
    positive = estimator.classes_[1]
    return positive.item() if isinstance(positive, np.generic) else positive


def compute_metrics(problem_type: str, y_true: Any, y_pred: Any, sample_weight: Any = None,
                    positive: Any = None) -> dict:
    """Accuracy, balanced accuracy, macro/weighted F1 and, for a binary problem with its
    ``positive`` class given, the positive class's F1 (classification), or R², RMSE, MAE
    (regression), plus ``n``; each weighted by ``sample_weight`` when given. A weight of 0
    leaves its row out altogether (as in the fit's own scores: a class whose rows all weigh 0
    is not one of the classes macro F1 averages over); ``n`` counts the rows left."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if w is not None and (w == 0).any():
        kept = w != 0
        y_true, y_pred, w = y_true[kept], y_pred[kept], w[kept]
    if problem_type == "regression":
        y_true = y_true.astype(float)
        y_pred = y_pred.astype(float)
        return {"n": int(len(y_true)),
                "r2": float(metrics.r2_score(y_true, y_pred, sample_weight=w)) if len(y_true) > 1 else float("nan"),
                "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred, sample_weight=w))),
                "mae": float(metrics.mean_absolute_error(y_true, y_pred, sample_weight=w))}
    import warnings

    from .process_state import ignore_all_but_deprecations

    with warnings.catch_warnings():  # (an ill-defined F1 of a class never predicted is 0, as reported)
        ignore_all_but_deprecations()
        if y_true.dtype.kind in "iuf" and y_pred.dtype.kind in "iuf" and y_true.dtype != y_pred.dtype:
            # integer classes and labels read as floats (a column with an empty cell): 1.0 is 1
            y_true, y_pred = y_true.astype(float), y_pred.astype(float)
            positive = None if positive is None else float(positive)
        elif y_true.dtype != y_pred.dtype:  # e.g. labels read back from CSV as numbers vs strings
            y_true, y_pred = y_true.astype(str), y_pred.astype(str)
            positive = None if positive is None else str(positive)
        result = {"n": int(len(y_true)), "accuracy": float(metrics.accuracy_score(y_true, y_pred, sample_weight=w)),
                  "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred, sample_weight=w)),
                  "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", sample_weight=w)),
                  "weighted_f1": float(metrics.f1_score(y_true, y_pred, average="weighted", sample_weight=w))}
        if problem_type == "binary" and positive is not None:
            result["f1"] = float(metrics.f1_score(y_true == positive, y_pred == positive, sample_weight=w))
        return result
