"""The search's linear model: L2-regularised logistic (or ridge) regression on hashed text n-grams.

A fitted network and a linear model on TF-IDF features err differently, and the linear model
costs seconds (2-9 s on the shared sets, 2 CPU cores). The search trains it as one of its first
trials (see :func:`linear_config`) and the ensemble takes it where the holdout says it helps.
On the same trained models, the ensemble with it (and with temperatures, see
:mod:`automm.ensemble`) made 12 / 61 / 112 test errors on fashion subCategory / usage / emoji,
against 17 / 71 / 115 for the networks' ensemble without it (``benchmarks/RESULTS.md``,
session 12).

It is an ordinary :class:`~automm.model.MultimodalNet` (so saving, loading, prediction and the
ensemble need nothing special): each text input through ``hashed_ngram`` in its ``linear``
form (a bag of IDF-weighted, block-normalised n-grams times one weight row per bucket,
``n_outputs`` wide), summed by the ``sum`` fusion with a bias. Other inputs are left out.
:func:`train_linear` fits it with full-batch L-BFGS on the training rows for each strength of
the L2 penalty in :data:`L2_GRID`, warm-started from the previous one, and keeps the one with
the lowest holdout loss (temperature-scaled log-loss; MSE for regression).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .data import BatchCollator, MultimodalDataset
from .training import TimeLimitReached, validation_metrics

__all__ = ["LINEAR_SOLVER", "L2_GRID", "linear_config", "train_linear"]

#: ``training.solver`` of a linear configuration.
LINEAR_SOLVER = "lbfgs"

#: Inverse L2 strengths tried, as scikit-learn's ``C``: the loss is the mean cross-entropy plus
#: ``||W||^2 / (2 C n)``. Strong to weak; each fit starts from the previous solution.
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)

#: L-BFGS iterations per strength (each one full pass over the training rows' features).
MAX_ITERATIONS = 150


def linear_config(inputs: Sequence[Any], encoder_choices: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  base_training: Mapping[str, Any], n_outputs: int) -> dict | None:
    """The linear model's configuration over the text inputs whose encoder choices
    (``{input: {encoder name: hyperparameters the user fixed}}``) include ``hashed_ngram``,
    or None when there is none."""
    from . import registry as _registry

    spec = _registry.get_registry().get("encoder", "hashed_ngram")
    encoders = {}
    for item in inputs:
        choices = encoder_choices.get(item.name) or {}
        if item.modality != "text" or "hashed_ngram" not in choices:
            continue
        fixed = dict(choices["hashed_ngram"] or {})
        encoders[item.name] = {"name": "hashed_ngram", **spec.hyperparameters(), **fixed,
                               "linear": True, "output_dim": int(n_outputs)}
    if not encoders:
        return None
    training = {**base_training, "solver": LINEAR_SOLVER}
    return {"encoders": encoders, "fusion": {"name": "sum"}, "augmentations": [], "training": training}


def _design(model, values: Mapping[str, Sequence[Any]], columns: dict[str, np.ndarray] | None = None
            ) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """The rows' features as a sparse (rows, features) matrix: each text input's bag (what its
    linear encoder multiplies by its weight rows), the inputs side by side. ``columns`` maps
    each input to the buckets that are columns (those seen in the training rows, found when
    None); buckets outside them are dropped (their weights stay zero)."""
    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders)
    batch = BatchCollator(encoders)([dataset[i] for i in range(len(dataset))])
    found = columns is None
    columns = {} if columns is None else columns
    rows, cols, vals, offset = [], [], [], 0
    for name in sorted(encoders):
        encoder, inputs = encoders[name], batch["inputs"][name]
        ids = inputs["ids"]
        ids_np = ids.numpy()
        with torch.no_grad():
            weights = encoder.feature_weights(inputs)
        lengths = torch.diff(torch.cat([inputs["offsets"], torch.tensor([len(ids)])]))
        row = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        present = batch["masks"][name][row]
        if found:
            columns[name] = np.unique(ids[present].numpy())
        position = np.searchsorted(columns[name], ids_np)
        known = present.numpy() & (position < len(columns[name]))
        known[known] = columns[name][position[known]] == ids_np[known]
        rows.append(row[known])
        cols.append(torch.from_numpy(position[known]) + offset)
        vals.append(weights[torch.from_numpy(known)])
        offset += len(columns[name])
    matrix = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals).float(),
                                     (len(dataset), offset), check_invariants=True).coalesce()
    return matrix, columns


def _csr(matrix: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return matrix.to_sparse_csr()


def train_linear(data, config: dict, *, deadline: float | None = None):
    """Fit the linear configuration ``config`` on ``data``'s training rows (see the module
    documentation) and return a :class:`~automm.pipeline.Candidate`: one ``history`` record
    per L2 strength, the kept one as ``best_epoch``. Runs on the CPU (a sparse, full-batch
    problem in seconds). Training callbacks do not apply: its steps are not epochs, and the
    search never prunes it."""
    from .pipeline import Candidate, build_model

    start = time.monotonic()
    torch.manual_seed(data.seed)
    model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index)).eval()
    train_x, columns = _design(model, data.subset(data.train_index))
    valid_x, _ = _design(model, data.subset(data.valid_index), columns)
    classification = data.problem_type != "regression"
    targets = torch.as_tensor(data.targets[data.train_index])
    targets = targets.long() if classification else targets.float().view(-1, 1)
    class_weights = None
    if classification and data.class_weights is not None:
        class_weights = torch.as_tensor(data.class_weights, dtype=torch.float32)
    n, k = train_x.shape[0], int(data.n_outputs)
    train_csr, train_t, valid_csr = _csr(train_x), _csr(train_x.t().coalesce()), _csr(valid_x)
    if classification:
        sample_weights = torch.ones(n) if class_weights is None else class_weights[targets]
        sample_weights = sample_weights / sample_weights.sum()
        onehot = torch.nn.functional.one_hot(targets, k).float()
    weight = torch.zeros(train_x.shape[1], k)
    bias = torch.zeros(k)

    def data_loss_and_gradient() -> tuple[float, torch.Tensor]:
        """The mean loss and its gradient with respect to the outputs (by hand: autograd
        through a sparse product is several times slower on the CPU)."""
        outputs = train_csr @ weight + bias
        if classification:
            log_probs = torch.log_softmax(outputs, dim=1)
            loss = -(sample_weights * (log_probs * onehot).sum(1)).sum()
            return float(loss), (log_probs.exp() - onehot) * sample_weights[:, None]
        residual = outputs - targets
        return float((residual * residual).mean()), 2.0 * residual / residual.numel()

    history: list[dict] = []
    best = None
    stop_reason = "l2 grid done"
    for index, c in enumerate(L2_GRID, start=1):
        if deadline is not None and time.monotonic() >= deadline:
            stop_reason = "time limit"
            break
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=MAX_ITERATIONS, history_size=10,
                                      tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")
        strength = 1.0 / (c * n)  # the penalty is strength / 2 * ||W||^2

        def closure() -> torch.Tensor:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeLimitReached()
            loss, gradient = data_loss_and_gradient()
            weight.grad = train_t @ gradient + strength * weight
            bias.grad = gradient.sum(0)
            return torch.tensor(loss + 0.5 * strength * float((weight * weight).sum()))

        try:
            train_loss = float(optimizer.step(closure))
        except TimeLimitReached:
            stop_reason = "time limit"
            break
        with torch.no_grad():
            outputs = (valid_csr @ weight + bias).numpy()
        valid_loss, valid_score = validation_metrics(outputs, data.valid_targets, classification)
        history.append({"epoch": index, "l2_c": c, "train_loss": train_loss, "valid_loss": valid_loss,
                        "valid_score": valid_score, "seconds": time.monotonic() - start})
        if math.isfinite(valid_loss) and (best is None or valid_loss < best[0]):
            best = (valid_loss, index, valid_score, outputs, weight.clone(), bias.clone())
    if best is None:
        raise TimeoutError("the linear model did not finish one fit before the deadline")
    _, best_epoch, best_score, best_outputs, best_weight, best_bias = best
    with torch.no_grad():  # the solution into the model: each input's weight rows, then the bias
        offset = 0
        for name in sorted(model.encoders):
            used = torch.from_numpy(columns[name]).long()
            model.encoders[name].embedding.weight[used] = best_weight[offset:offset + len(used)]
            offset += len(used)
        model.fusion.bias.copy_(best_bias)
    return Candidate(config=config, model=model, history=history, best_epoch=best_epoch,
                     best_score=float(best_score), valid_outputs=np.asarray(best_outputs, dtype=np.float32),
                     stop_reason=stop_reason, seconds=time.monotonic() - start)
