"""The search's nearest-neighbour model: k nearest training rows by frozen pretrained embeddings.

Rows that look alike (the same product photographed again, the same emoji drawn by another
vendor) tend to share their labels, labelling quirks included, and a nearest-neighbour vote
uses that where a linear model or a network smooths it away. With automm-pretrained, alone it
made 15 / 80 / 49 test errors on fashion subCategory / usage / emoji, in 1-4 s; weighed by the
ensemble beside the linear model, it took the 600-s searches from 62 / 58 to 58 / 53 test
errors on fashion usage (seeds 0 / 1) and from 55 / 53 to 44 / 52 on emoji
(``benchmarks/RESULTS.md``, session 16).

It is an ordinary :class:`~automm.model.MultimodalNet`: each input with an encoder tagged
``"pretrained"`` among its choices takes part through the first one whose defaults (with what
the user fixed) run frozen, and the ``neighbors`` fusion
(:class:`~automm.components.fusions.NeighborsFusion`) remembers the rows and votes. Other
inputs are left out. :func:`train_neighbors` computes (or reads from the feature cache) every
row's embeddings once, remembers the training rows, picks ``k`` and the vote's temperature
from :data:`K_GRID` x :data:`TEMPERATURE_GRID` by the holdout loss (temperature-scaled
log-loss; MSE for regression), and then remembers the training and holdout rows together.
The ensemble takes it where the holdout says it helps; it is never bagged or pruned.
"""

from __future__ import annotations

import copy
import json
import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .data import BatchCollator, MultimodalDataset
from .deadlines import CUT_BEFORE_LEARNING, check_deadline
from .training import validation_metrics

__all__ = ["NEIGHBORS_SOLVER", "K_GRID", "TEMPERATURE_GRID", "is_neighbors", "neighbors_config", "train_neighbors"]

#: ``training.solver`` of a nearest-neighbour configuration.
NEIGHBORS_SOLVER = "neighbors"

#: Numbers of neighbours tried.
K_GRID = (5, 10, 20, 40)

#: Vote temperatures tried (the weight of a neighbour is exp(temperature * (its similarity −
#: the nearest's)); similarities are mean cosines, so 10 is a mild and 50 a sharp preference).
TEMPERATURE_GRID = (10.0, 20.0, 50.0)

#: Rows embedded at once.
EMBED_BATCH = 1024


def is_neighbors(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is a nearest-neighbour model: the search's (``training.solver``), or
    any configuration whose fusion is ``neighbors`` (a user may name it; it learns by
    remembering rows, not by gradient steps)."""
    return ((config.get("training") or {}).get("solver") == NEIGHBORS_SOLVER
            or (config.get("fusion") or {}).get("name") == "neighbors")


def neighbors_config(inputs: Sequence[Any], encoder_choices: Mapping[str, Mapping[str, Mapping[str, Any]]],
                     base_training: Mapping[str, Any], regression: bool) -> dict | None:
    """The nearest-neighbour model's configuration, or None when no input has a frozen
    pretrained encoder among its choices.

    ``encoder_choices`` maps each input to its encoder choices (``{encoder name:
    hyperparameters the user fixed}``); an input takes part through its first choice tagged
    ``"pretrained"`` that builds frozen with what the user fixed.
    """
    from . import registry as _registry

    reg = _registry.get_registry()
    encoders = {}
    for item in inputs:
        for name, fixed in (encoder_choices.get(item.name) or {}).items():
            spec = reg.get("encoder", name)
            if "pretrained" not in spec.tags:
                continue
            params = {**spec.hyperparameters(), **dict(fixed or {})}
            if _runs_frozen(spec.factory, params):
                encoders[item.name] = {"name": name, **params}
                break
    if not encoders:
        return None
    fusion = {"name": "neighbors", "k": 10, "temperature": 20.0, "regression": bool(regression)}
    return {"encoders": encoders, "fusion": fusion, "augmentations": [],
            "training": {**base_training, "solver": NEIGHBORS_SOLVER}}


def _runs_frozen(factory, params: Mapping[str, Any]) -> bool:
    """Whether the encoder builds with ``params`` and is frozen (decided once per choice, see
    :func:`automm.pipeline.all_encoders_frozen`)."""
    from .pipeline import _is_frozen

    try:
        return _is_frozen(factory, json.dumps(params, sort_keys=True, default=str))
    except Exception:  # noqa: BLE001 - any reason this encoder cannot take part: the next one, or none
        return False


@torch.no_grad()
def _embed(model, values: Mapping[str, Sequence[Any]]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Every row's embedding per input (float32) and presence (bool)."""
    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders)
    collate = BatchCollator(encoders)
    embeddings: dict[str, list[torch.Tensor]] = {name: [] for name in encoders}
    masks: dict[str, list[torch.Tensor]] = {name: [] for name in encoders}
    for start in range(0, len(dataset), EMBED_BATCH):
        batch = collate([dataset[i] for i in range(start, min(len(dataset), start + EMBED_BATCH))])
        for name, encoded in model.encode(batch["inputs"], batch["masks"]).items():
            embeddings[name].append(encoded.float().cpu())
            masks[name].append(torch.as_tensor(batch["masks"][name], dtype=torch.bool))
    return ({name: torch.cat(parts) for name, parts in embeddings.items()},
            {name: torch.cat(parts) for name, parts in masks.items()})


def _take(tensors: Mapping[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    return {name: tensor[rows] for name, tensor in tensors.items()}


def _holdout_neighbours(fusion, embeddings, masks, n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The remembered rows nearest each holdout row (``max(K_GRID)`` of them): their similarities
    and indices, compared a batch of rows at a time, watching the deadline (at 160,000 rows one
    comparison outlasted a 30-s budget)."""
    n_valid = len(next(iter(embeddings.values())))
    found = [fusion.neighbours(embeddings, masks, max(K_GRID))] if n_valid == 0 else []
    for first in range(0, n_valid, EMBED_BATCH):
        batch = slice(first, first + EMBED_BATCH)
        found.append(fusion.neighbours(_take(embeddings, batch), _take(masks, batch), max(K_GRID)))
        check_deadline(f"the nearest-neighbour model compared {min(first + EMBED_BATCH, n_valid)} of {n_valid} "
                       f"holdout rows with {n_train} training rows")
    return torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found])


def train_neighbors(data, config: dict, *, deadline: float | None = None, refit: bool = True):
    """Fit the nearest-neighbour configuration ``config`` (see the module documentation) and
    return a :class:`~automm.pipeline.Candidate`: one ``history`` record per (k, temperature)
    with the training rows remembered, the one with the lowest holdout loss kept (as
    ``best_epoch``, and in the returned configuration's fusion), its holdout outputs as
    ``valid_outputs``. With ``refit`` the model then remembers the training and holdout rows
    together (not when the holdout is the user's validation data, never trained on), so
    ``valid_outputs`` stay honest while predictions use every row. Runs on the
    CPU; raises ``TimeoutError`` when the deadline passes before the holdout is scored."""
    from .pipeline import _SEEDED_BUILDS, Candidate, build_model

    start = time.monotonic()
    classification = data.problem_type != "regression"
    seed = data.seed + int(config["training"].get("seed_offset", 0))
    with _SEEDED_BUILDS:  # an encoder that is not frozen (a user's fusion="neighbors") starts as seeded
        torch.manual_seed(seed)
        model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index),
                            warned=data.warned).eval()
    for name, encoder in model.encoders.items():  # frozen pretrained features: computed or read once
        encoder.prepare(data.values[name], cache_dir=data.cache_dir)
    rows = np.concatenate([data.train_index, data.valid_index])  # training rows first, then the holdout
    embeddings, masks = _embed(model, data.subset(rows))
    targets = torch.as_tensor(np.asarray(data.targets[rows], dtype=np.float32))
    weights = data.weights(rows)
    weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    if classification and data.class_weights is not None:  # class_weight weighs each vote, as every loss
        by_class = torch.as_tensor(data.class_weights, dtype=torch.float32)[targets.long()]
        weights = by_class if weights is None else weights * by_class
    n_train = len(data.train_index)
    fusion = model.fusion
    fusion.remember(_take(embeddings, slice(0, n_train)), _take(masks, slice(0, n_train)), targets[:n_train],
                    None if weights is None else weights[:n_train])
    similarities, indices = _holdout_neighbours(fusion, _take(embeddings, slice(n_train, None)),
                                                _take(masks, slice(n_train, None)), n_train)
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"the nearest-neighbour model was {CUT_BEFORE_LEARNING}: it did not score its holdout "
                           "before the deadline")

    history: list[dict] = []
    last = start
    best = None
    for k in K_GRID:
        for temperature in TEMPERATURE_GRID:
            outputs = fusion.without_inputs(fusion.vote(similarities[:, :k], indices[:, :k], temperature),
                                            _take(embeddings, slice(n_train, None)),
                                            _take(masks, slice(n_train, None)), temperature).numpy()
            valid_loss, valid_score = validation_metrics(outputs, data.valid_targets, classification,
                                                         data.valid_weights, data.metric)
            history.append({"epoch": len(history) + 1, "k": k, "temperature": temperature, "valid_loss": valid_loss,
                            "valid_score": valid_score, "seconds": time.monotonic() - last})
            last = time.monotonic()  # (seconds per setting, as a network's per epoch)
            if math.isfinite(valid_loss) and (best is None or valid_loss < best[0]):
                best = (valid_loss, len(history), valid_score, outputs, k, temperature)
    if best is None:
        raise FloatingPointError("the nearest-neighbour model's holdout loss is not finite")
    _, best_epoch, best_score, best_outputs, fusion.k, fusion.temperature = best
    config = copy.deepcopy(config)
    config["fusion"].update(k=fusion.k, temperature=fusion.temperature)
    stop_reason = "k and temperature grid done"
    if refit and not data.holdout_given and (deadline is None or time.monotonic() < deadline):
        fusion.remember(embeddings, masks, targets, weights)
        stop_reason += "; remembers the training and holdout rows"
    return Candidate(config=config, model=model, history=history, best_epoch=best_epoch,
                     best_score=float(best_score), valid_outputs=np.asarray(best_outputs, dtype=np.float32),
                     stop_reason=stop_reason, seconds=time.monotonic() - start)
