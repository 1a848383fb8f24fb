"""Ensembles of the search's best trials: greedy selection and prediction.

:func:`greedy_selection` is Caruana et al.'s ensemble selection ("Ensemble selection from
libraries of models", ICML 2004) with replacement: starting from an empty ensemble, each round
adds the model (possibly again) whose addition gives the best holdout score of the averaged
predictions; the weights are the selection counts of the best round. Classification averages
class probabilities and scores log-loss, ties broken by accuracy: on a holdout of a few hundred
rows accuracy moves in steps of several tenths of a percent and rarely rewards adding a model,
while log-loss is smooth and (being convex) rewards averaging models that err differently.
Regression averages predicted values and scores the mean squared error. Because the first
round picks the best single model and the best round is kept, the ensemble never scores below
the best single model on the holdout.

Before selection, each classifier's logits are scaled by its own temperature
(:func:`calibrate`, fitted on the same selection rows): log-loss would otherwise rank a model
by its confidence as much as by its ranking of the classes. A network trained with label
smoothing is under-confident by design, and a logistic regression is sharp; without the
scaling, selection gave a logistic regression 0.92-0.96 of the weight on fashion usage although
it made more test errors than the network (77 against 73), and with it 0.57 (68 errors).

Classifiers' probabilities are pooled in one of two ways (:data:`POOLINGS`), and
:func:`select_ensemble` runs the selection under both and keeps the one with the lower holdout
log-loss: ``"linear"``, the weighted mean of the probabilities, which forgives a member that is
confidently wrong on a row the others get right; or ``"logarithmic"``, their weighted geometric
mean (the softmax of the weighted mean of log-probabilities), under which members that agree
reinforce each other. A nearest-neighbour vote is sharp, and the linear pool's holdout log-loss
gives it little weight: on fashion usage (three 90/10 splits of the training rows), logistic
regression plus the vote had a lower holdout log-loss under the geometric pool on every split,
and made 54 test errors each time, against 64 / 58 / 53 at the linear pool's chosen weights
(``benchmarks/RESULTS.md``, session 16).

An :class:`Ensemble` predicts by pooling its members' probabilities (averaging values for
regression) with those weights; each member keeps its own encoders (preprocessing) and batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .components.stack import describe_encoder

__all__ = ["POOLINGS", "EnsembleMember", "Ensemble", "ensemble_members", "greedy_selection", "select_ensemble",
           "calibrate", "combine"]

#: Rounds of greedy selection.
DEFAULT_ROUNDS = 25

#: Ways to pool classifiers' probabilities: their weighted arithmetic or geometric mean.
POOLINGS = ("linear", "logarithmic")


def _softmax(outputs: np.ndarray) -> np.ndarray:
    z = np.asarray(outputs, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(outputs: np.ndarray) -> np.ndarray:
    z = np.asarray(outputs, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    return pooling


def _criterion(prediction: np.ndarray, targets: np.ndarray, problem_type: str,
               sample_weights: np.ndarray | None = None) -> tuple[float, float]:
    if problem_type == "regression":
        squared = (prediction.reshape(-1) - targets.reshape(-1).astype(np.float64)) ** 2
        return (-float(np.average(squared, weights=sample_weights)), 0.0)
    labels = targets.astype(np.int64)
    accuracy = float(np.average(prediction.argmax(1) == labels, weights=sample_weights))
    log_loss = -float(np.average(np.log(np.clip(prediction[np.arange(len(labels)), labels], 1e-12, 1.0)),
                                 weights=sample_weights))
    return accuracy, -log_loss


def greedy_selection(outputs: Sequence[np.ndarray], targets: np.ndarray, problem_type: str,
                     rounds: int = DEFAULT_ROUNDS, pooling: str = "linear",
                     sample_weights: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Weights (summing to 1) over ``outputs`` (raw holdout outputs of each model, best model
    first) and the pooled prediction's holdout (accuracy, −log-loss), or (−MSE, 0) for
    regression (whose values are always averaged); means over the rows weighted by their
    ``sample_weights`` when given."""
    if not outputs:
        raise ValueError("greedy_selection: no models")
    logarithmic = _check_pooling(pooling) == "logarithmic" and problem_type != "regression"
    if problem_type == "regression":
        predictions = [np.asarray(o, dtype=np.float64) for o in outputs]
    else:
        predictions = [_log_softmax(o) if logarithmic else _softmax(o) for o in outputs]
    pooled = _softmax if logarithmic else (lambda mean: mean)

    def key(prediction: np.ndarray) -> tuple[float, float]:
        first, second = _criterion(prediction, targets, problem_type, sample_weights)
        return (first, second) if problem_type == "regression" else (second, first)  # log-loss first

    counts = np.zeros(len(predictions), dtype=np.int64)
    total = np.zeros_like(predictions[0])
    best_counts, best_key = None, None
    for step in range(1, max(1, rounds) + 1):
        keys = [key(pooled((total + p) / step)) for p in predictions]
        choice = max(range(len(keys)), key=lambda j: (keys[j], -j))
        counts[choice] += 1
        total = total + predictions[choice]
        if best_key is None or keys[choice] > best_key:
            best_key, best_counts, best_total = keys[choice], counts.copy(), pooled(total / step)
    return best_counts / best_counts.sum(), _criterion(best_total, targets, problem_type, sample_weights)


def select_ensemble(outputs: Sequence[np.ndarray], targets: np.ndarray, problem_type: str,
                    rounds: int = DEFAULT_ROUNDS, sample_weights: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """Weights over ``outputs`` and the pooling: :func:`greedy_selection` under each of
    :data:`POOLINGS` for a classifier, the one with the best holdout (−log-loss, accuracy)
    kept (linear on a tie); regression averages values ("linear")."""
    if problem_type == "regression":
        return greedy_selection(outputs, targets, problem_type, rounds, sample_weights=sample_weights)[0], "linear"
    best = None
    for pooling in POOLINGS:
        weights, (accuracy, neg_log_loss) = greedy_selection(outputs, targets, problem_type, rounds, pooling,
                                                             sample_weights)
        if best is None or (neg_log_loss, accuracy) > best[0]:
            best = ((neg_log_loss, accuracy), weights, pooling)
    return best[1], best[2]


def calibrate(outputs: Sequence[np.ndarray], targets: np.ndarray, problem_type: str,
              sample_weights: np.ndarray | None = None, prior_sd: float | None = None) -> list[float]:
    """Each classifier's temperature: the multiplier of its raw outputs (logits) that minimises
    the log-loss on ``targets`` (weighted by ``sample_weights`` when given;
    :func:`automm.training.best_temperature`), with ``prior_sd``, under a normal prior on its
    logarithm (a model kept alone: :data:`automm.pipeline.TEMPERATURE_PRIOR_SD`); 1.0 for
    regression and for outputs that are not finite. The log-loss counts half an error more than
    the rows show, so that a holdout the model gets all right does not ask for certainty."""
    from .training import best_temperature

    if problem_type == "regression":
        return [1.0] * len(outputs)
    labels = torch.as_tensor(np.asarray(targets).astype(np.int64))
    weights = None if sample_weights is None else torch.as_tensor(np.asarray(sample_weights), dtype=torch.float32)
    temperatures = []
    for output in outputs:
        logits = torch.as_tensor(np.asarray(output, dtype=np.float32))
        finite = bool(torch.isfinite(logits).all())
        # a prior of half an error more than the rows show (Laplace-like): a holdout the model gets
        # all right (15 rows) otherwise asks for the largest temperature, 1e2, and predict_proba then
        # gives its wrong answers on new rows a probability of 0.99
        rows = float(weights.sum()) if weights is not None else len(labels)  # (a row of weight 2: two rows)
        smoothing = 0.5 / (rows + 1)
        temperatures.append(float(best_temperature(logits, labels, weights, smoothing, prior_sd)[0]) if finite else 1.0)
    return temperatures


def combine(outputs: Sequence[np.ndarray], weights: Sequence[float], problem_type: str,
            pooling: str = "linear") -> np.ndarray:
    """The members' outputs pooled with ``weights``, as raw outputs: log-probabilities for
    classification (softmax gives the pooled probabilities, see :data:`POOLINGS`), the weighted
    mean value for regression."""
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    if problem_type == "regression":
        return sum(w * np.asarray(o, dtype=np.float64) for w, o in zip(weights, outputs)).astype(np.float32)
    if _check_pooling(pooling) == "logarithmic":
        return _log_softmax(sum(w * _log_softmax(o) for w, o in zip(weights, outputs))).astype(np.float32)
    probabilities = sum(w * _softmax(o) for w, o in zip(weights, outputs))
    return np.log(np.clip(probabilities, 1e-30, 1.0)).astype(np.float32)


@dataclass
class EnsembleMember:
    """One trained model of an ensemble."""

    trial: int
    weight: float
    config: dict
    model: Any           # automm.model.MultimodalNet
    batch_size: int
    score: float         # its own holdout score (a bag's: out-of-fold)
    fold: int | None = None  # which fold of a bagged trial (None: not bagged)
    temperature: float = 1.0  # its logits are multiplied by this before averaging (see calibrate)


def ensemble_members(trial: int, candidate, weight: float, temperature: float = 1.0) -> list[EnsembleMember]:
    """The members a trial's candidate (``automm.pipeline.Candidate``) contributes with
    ``weight``: itself, or each fold model of a bag with an equal share."""
    common = dict(trial=int(trial), config=candidate.config, batch_size=int(candidate.config["training"]["batch_size"]),
                  score=float(candidate.best_score), temperature=float(temperature))
    if candidate.bag is None:
        return [EnsembleMember(weight=float(weight), model=candidate.model, **common)]
    share = float(weight) / len(candidate.bag)
    return [EnsembleMember(weight=share, model=model, fold=k, **common) for k, model in enumerate(candidate.bag)]


class Ensemble:
    """Several trained models whose probabilities are pooled (``pooling``, see :data:`POOLINGS`)
    or whose values are averaged, with weights."""

    def __init__(self, members: Sequence[EnsembleMember], problem_type: str, pooling: str = "linear"):
        if not members:
            raise ValueError("Ensemble: no members")
        self.members = list(members)
        self.problem_type = problem_type
        self.pooling = _check_pooling(pooling)

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    def describe(self) -> list[dict]:
        """Trial number, weight, holdout score and components of every member."""
        return [{"trial": m.trial, "fold": m.fold, "weight": m.weight, "score": m.score, "temperature": m.temperature,
                 "encoders": {k: describe_encoder(v) for k, v in m.config["encoders"].items()},
                 "fusion": m.config["fusion"]["name"]} for m in self.members]

    def by_trial(self) -> list[dict]:
        """The members grouped by trial (a bag's folds are one trial), in member order: trial,
        summed weight, number of models, components."""
        trials: dict[int, dict] = {}
        for member in self.describe():
            kept = trials.setdefault(member["trial"], {"trial": member["trial"], "weight": 0.0, "models": 0,
                                                       "encoders": member["encoders"], "fusion": member["fusion"]})
            kept["weight"] += float(member["weight"])
            kept["models"] += 1
        return list(trials.values())

    def member_outputs(self, estimator, table) -> list[np.ndarray]:
        """Each member's raw outputs on ``table`` (already validated by the estimator)."""
        from .data import BatchCollator, MultimodalDataset
        from .devices import device_scope
        from .training import make_loader, model_outputs

        device = estimator.device_
        use_amp = bool(estimator.amp) and device.type == "cuda"
        values = {spec.name: spec.values(table) for spec in estimator.inputs_}
        results = []
        for member in self.members:
            model = member.model
            encoders = dict(model.encoders.items())
            with device_scope(device):
                for name, encoder in encoders.items():  # Encoder.prepare hook (feature caches)
                    if hasattr(encoder, "prepare"):
                        encoder.prepare(values[name], cache_dir=estimator._encoder_cache_dir())
            loader = make_loader(MultimodalDataset(values, encoders), max(1, member.batch_size) * 2, False,
                                 estimator._prediction_workers(), 0, BatchCollator(encoders),
                                 device.type == "cuda")
            results.append(model_outputs(model, loader, device, amp=use_amp))
        return results

    def raw_outputs(self, estimator, table) -> np.ndarray:
        outputs = self.member_outputs(estimator, table)
        scaled = [o * m.temperature if m.temperature != 1.0 else o for o, m in zip(outputs, self.members)]
        return combine(scaled, self.weights, self.problem_type, self.pooling)

    def __repr__(self) -> str:
        inner = ", ".join(f"trial {t['trial']}: {t['weight']:.2f}" + (f" ({t['models']} fold models)"
                                                                      if t["models"] > 1 else "")
                          for t in self.by_trial())
        return f"Ensemble({inner}{'' if self.pooling == 'linear' else f'; {self.pooling} pooling'})"
