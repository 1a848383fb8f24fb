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

An :class:`Ensemble` predicts by averaging its members' probabilities (values for regression)
with those weights; each member keeps its own encoders (preprocessing) and batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .components.stack import describe_encoder

__all__ = ["EnsembleMember", "Ensemble", "ensemble_members", "greedy_selection", "calibrate", "combine"]

#: Rounds of greedy selection.
DEFAULT_ROUNDS = 25


def _softmax(outputs: np.ndarray) -> np.ndarray:
    z = np.asarray(outputs, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _criterion(prediction: np.ndarray, targets: np.ndarray, problem_type: str) -> tuple[float, float]:
    if problem_type == "regression":
        return (-float(np.mean((prediction.reshape(-1) - targets.reshape(-1).astype(np.float64)) ** 2)), 0.0)
    labels = targets.astype(np.int64)
    accuracy = float(np.mean(prediction.argmax(1) == labels))
    log_loss = -float(np.mean(np.log(np.clip(prediction[np.arange(len(labels)), labels], 1e-12, 1.0))))
    return accuracy, -log_loss


def greedy_selection(outputs: Sequence[np.ndarray], targets: np.ndarray, problem_type: str,
                     rounds: int = DEFAULT_ROUNDS) -> tuple[np.ndarray, tuple[float, float]]:
    """Weights (summing to 1) over ``outputs`` (raw holdout outputs of each model, best model
    first) and the weighted average's holdout (accuracy, −log-loss), or (−MSE, 0) for regression."""
    if not outputs:
        raise ValueError("greedy_selection: no models")
    predictions = [np.asarray(o, dtype=np.float64) if problem_type == "regression" else _softmax(o) for o in outputs]

    def key(prediction: np.ndarray) -> tuple[float, float]:
        first, second = _criterion(prediction, targets, problem_type)
        return (first, second) if problem_type == "regression" else (second, first)  # log-loss first

    counts = np.zeros(len(predictions), dtype=np.int64)
    total = np.zeros_like(predictions[0])
    best_counts, best_key = None, None
    for step in range(1, max(1, rounds) + 1):
        keys = [key((total + p) / step) for p in predictions]
        choice = max(range(len(keys)), key=lambda j: (keys[j], -j))
        counts[choice] += 1
        total = total + predictions[choice]
        if best_key is None or keys[choice] > best_key:
            best_key, best_counts, best_total = keys[choice], counts.copy(), total / step
    return best_counts / best_counts.sum(), _criterion(best_total, targets, problem_type)


def calibrate(outputs: Sequence[np.ndarray], targets: np.ndarray, problem_type: str) -> list[float]:
    """Each classifier's temperature: the multiplier of its raw outputs (logits) that minimises
    the log-loss on ``targets`` (:func:`automm.training.best_temperature`); 1.0 for regression
    and for outputs that are not finite."""
    from .training import best_temperature

    if problem_type == "regression":
        return [1.0] * len(outputs)
    labels = torch.as_tensor(np.asarray(targets).astype(np.int64))
    temperatures = []
    for output in outputs:
        logits = torch.as_tensor(np.asarray(output, dtype=np.float32))
        finite = bool(torch.isfinite(logits).all())
        temperatures.append(float(best_temperature(logits, labels)[0]) if finite else 1.0)
    return temperatures


def combine(outputs: Sequence[np.ndarray], weights: Sequence[float], problem_type: str) -> np.ndarray:
    """Weighted average of the members' outputs as raw outputs: log-probabilities for
    classification (so that softmax gives the averaged probabilities), values for regression."""
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    if problem_type == "regression":
        return sum(w * np.asarray(o, dtype=np.float64) for w, o in zip(weights, outputs)).astype(np.float32)
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
    """Several trained models whose probabilities (values) are averaged with weights."""

    def __init__(self, members: Sequence[EnsembleMember], problem_type: str):
        if not members:
            raise ValueError("Ensemble: no members")
        self.members = list(members)
        self.problem_type = problem_type

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    def describe(self) -> list[dict]:
        """Trial number, weight, holdout score and components of every member."""
        return [{"trial": m.trial, "fold": m.fold, "weight": m.weight, "score": m.score, "temperature": m.temperature,
                 "encoders": {k: describe_encoder(v) for k, v in m.config["encoders"].items()},
                 "fusion": m.config["fusion"]["name"]} for m in self.members]

    def member_outputs(self, estimator, table) -> list[np.ndarray]:
        """Each member's raw outputs on ``table`` (already validated by the estimator)."""
        from .data import BatchCollator, MultimodalDataset
        from .model import move_to_device
        from .training import make_loader

        device = estimator.device_
        use_amp = bool(estimator.amp) and device.type == "cuda"
        values = {spec.name: spec.values(table) for spec in estimator.inputs_}
        results = []
        for member in self.members:
            model = member.model.to(device).eval()
            encoders = dict(model.encoders.items())
            for name, encoder in encoders.items():  # Encoder.prepare hook (feature caches)
                if hasattr(encoder, "prepare"):
                    encoder.prepare(values[name], cache_dir=getattr(estimator, "cache_dir", None))
            loader = make_loader(MultimodalDataset(values, encoders), max(1, member.batch_size) * 2, False,
                                 estimator.num_workers_, 0, BatchCollator(encoders), device.type == "cuda")
            chunks = []
            with torch.no_grad(), torch.autocast(device_type=device.type, enabled=use_amp):
                for batch in loader:
                    batch = move_to_device(batch, device)
                    chunks.append(model(batch["inputs"], batch["masks"]).float().cpu())
            results.append(torch.cat(chunks).numpy())
        return results

    def raw_outputs(self, estimator, table) -> np.ndarray:
        outputs = self.member_outputs(estimator, table)
        scaled = [o * m.temperature if m.temperature != 1.0 else o for o, m in zip(outputs, self.members)]
        return combine(scaled, self.weights, self.problem_type)

    def __repr__(self) -> str:
        inner = ", ".join(f"trial {m.trial}: {m.weight:.2f}" for m in self.members)
        return f"Ensemble({inner})"
