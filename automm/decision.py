"""The decision rule: which class ``predict`` names from a classifier's outputs.

The most probable class maximises accuracy. Under another ``metric`` (balanced accuracy, macro
or weighted F1) a rare class is worth more than its share of the rows, so ``fit`` weighs each
class's probability by ``prior ** -alpha`` (``prior``: the class's weighted share of the training
rows) and ``predict`` names the class of the largest weighted probability. ``alpha`` is the
value of :data:`PRIOR_EXPONENTS` whose decisions score best on the holdout (the out-of-fold
outputs of a bag) of the kept model or ensemble, the smallest on a tie: plain argmax unless
another does better there. (``alpha = 1`` is Bayes' rule for balanced accuracy with calibrated
probabilities; a class seen a handful of times has none, hence the grid.)

Measured on fashion usage (6 classes, two of them with 1 and 8 of the 7,685 training rows),
``AutoMM(time_limit=120, metric=M)``, test scores of argmax / the fitted rule: balanced accuracy
0.630 / 0.817 (``M="balanced_accuracy"``), macro-F1 0.634 / 0.746 (``"macro_f1"``), accuracy
within 0.013 of argmax's; fashion subCategory (16 classes of 30+ rows): the same predictions; emoji
(9 classes of 69-285 rows): the holdout (145 rows) chose ``alpha = 1`` and the test lost 0.003
balanced accuracy and 0.012 macro-F1 (a few rows): where classes are only mildly imbalanced the
rule's gain is within the holdout's noise (``benchmarks/RESULTS.md``, session 24).
"""

from __future__ import annotations

import numpy as np

from .training import classification_score

__all__ = ["PRIOR_EXPONENTS", "class_priors", "fit_decision_weights", "decide"]

#: The exponents ``alpha`` tried for the class weights ``prior ** -alpha``.
PRIOR_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def class_priors(targets: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Each class's (weighted) share of ``targets`` (class indices), floored at half a row."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), weights=weights, minlength=n_classes).astype(np.float64)
    floor = 0.5 * (counts[counts > 0].min() if (counts > 0).any() else 1.0)
    counts = np.maximum(counts, floor)
    return counts / counts.sum()


def decide(outputs: np.ndarray, decision_weights: np.ndarray | None = None) -> np.ndarray:
    """Class indices from raw outputs (logits or log-probabilities, one row per sample): the
    largest output, or with ``decision_weights`` the largest weighted probability."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if decision_weights is None:
        return outputs.argmax(1)
    return (outputs + np.log(np.asarray(decision_weights, dtype=np.float64))).argmax(1)


def fit_decision_weights(outputs: np.ndarray, targets: np.ndarray, priors: np.ndarray, metric: str,
                         sample_weights: np.ndarray | None = None) -> np.ndarray | None:
    """The class weights ``priors ** -alpha`` of the best ``alpha`` in :data:`PRIOR_EXPONENTS`
    for ``metric`` on these holdout ``outputs`` (raw, as ``predict`` sees them) and ``targets``;
    None for accuracy, when the outputs are not finite, or when plain argmax (``alpha = 0``)
    does best."""
    if metric in ("auto", "accuracy") or not np.isfinite(outputs).all():
        return None
    targets = np.asarray(targets, dtype=np.int64)
    best_weights, best_score = None, -np.inf
    for alpha in PRIOR_EXPONENTS:
        weights = None if alpha == 0 else np.asarray(priors, dtype=np.float64) ** -alpha
        score = classification_score(decide(outputs, weights), targets, metric, sample_weights)
        if score > best_score + 1e-12:
            best_weights, best_score = weights, score
    return None if best_weights is None else best_weights / best_weights.max()
