"""The search's linear model: L2-regularised logistic (or ridge) regression on the inputs'
linear features (a text's hashed n-grams, a frozen pretrained encoder's cached features).

A fitted network and a linear model on TF-IDF features err differently, and the linear model
costs seconds (3-11 s on the shared sets, 2 CPU cores). The search trains it as one of its first
trials (see :func:`linear_config`) and the ensemble takes it where the holdout says it helps.
On the same trained models, the ensemble with it (and with temperatures, see
:mod:`automm.ensemble`) made 12 / 61 / 112 test errors on fashion subCategory / usage / emoji,
against 17 / 71 / 115 for the networks' ensemble without it (``benchmarks/RESULTS.md``,
session 12).

It is an ordinary :class:`~automm.model.MultimodalNet` (so saving, loading, prediction and the
ensemble need nothing special): each input that has encoders with a linear form (tag
``"linear"``: ``hashed_ngram``, ``tabular``, and a plugin's frozen pretrained encoders) among its choices
through each of them with ``linear=True`` (several on one input: an
:class:`~automm.components.stack.EncoderStack`), whose output is its features times a weight
``n_outputs`` wide, summed by the ``sum`` fusion with a bias. Other inputs are left out. :func:`train_linear`
fits every weight at once with full-batch L-BFGS on the training rows for each strength of the
L2 penalty in :data:`L2_GRID`, warm-started from the previous one, and keeps the one with the
lowest holdout loss (temperature-scaled log-loss; MSE for regression). Dense features are
standardised for the fit, each input's block scaled to about unit norm (as a text's
normalised bag is), and the standardisation is folded back into the weights and the bias.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .components.base import find_sorted
from .components.stack import STACK, EncoderStack
from .data import BatchCollator, MultimodalDataset
from .training import TimeLimitReached, validation_metrics

__all__ = ["LINEAR_SOLVER", "L2_GRID", "linear_config", "raw_design", "train_linear"]

#: ``training.solver`` of a linear configuration.
LINEAR_SOLVER = "lbfgs"

#: Inverse L2 strengths tried, as scikit-learn's ``C``: the loss is the mean cross-entropy plus
#: ``||W||^2 / (2 C n)``. Strong to weak; each fit starts from the previous solution.
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)

#: L-BFGS iterations per strength (each one full pass over the training rows' features).
MAX_ITERATIONS = 150


def linear_config(inputs: Sequence[Any], encoder_choices: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  base_training: Mapping[str, Any], n_outputs: int) -> dict | None:
    """The linear model's configuration, or None when no input can take part.

    ``encoder_choices`` maps each input to its encoder choices (``{encoder name:
    hyperparameters the user fixed}``). Each input whose choices include encoders with a
    linear form (registered with the tag ``"linear"``) takes part through every such one that
    builds with what the user fixed (a stack of them when there are several; from-scratch
    encoders first, then pretrained ones), each with the hyperparameters its class prefers for
    it (a ``linear_defaults`` dict, if any) unless the user fixed them. On emoji, a text's
    hashed n-grams and its MiniLM embedding together (with the image features) made 53 test
    errors against 64 for the n-grams alone; on fashion 13 / 59 against 11 / 60 on subCategory
    / usage (``benchmarks/RESULTS.md``, session 14).
    """
    from . import registry as _registry

    reg = _registry.get_registry()
    encoders = {}
    for item in inputs:
        choices = list((encoder_choices.get(item.name) or {}).items())
        linear = [(name, fixed) for name, fixed in choices if "linear" in reg.get("encoder", name).tags]
        parts = []
        for name, fixed in sorted(linear, key=lambda pair: "pretrained" in reg.get("encoder", pair[0]).tags):
            spec = reg.get("encoder", name)
            preferred = getattr(spec.factory, "linear_defaults", None) or {}  # e.g. hashed_ngram's larger n_buckets
            params = {**spec.hyperparameters(), **dict(preferred), **dict(fixed or {}), "linear": True,
                      "output_dim": int(n_outputs)}
            if fixed and not _builds(spec, item, {"name": name, **params}):
                continue  # what the user fixed rules the linear form out (e.g. fine-tuning layers)
            parts.append({"name": name, **params})
        if len(parts) == 1:
            encoders[item.name] = parts[0]
        elif parts:
            encoders[item.name] = {"name": STACK, "parts": parts}
    if not encoders:
        return None
    training = {**base_training, "solver": LINEAR_SOLVER}
    return {"encoders": encoders, "fusion": {"name": "sum"}, "augmentations": [], "training": training}


def _builds(spec, item, choice: Mapping[str, Any]) -> bool:
    from .pipeline import _encoder_arguments

    try:
        spec.factory(**_encoder_arguments(item, dict(choice))[1])
    except Exception:  # noqa: BLE001 - any reason this encoder cannot take part: the next one, or none
        return False
    return True


def _linear_units(model) -> dict[str, tuple[str, int | None, Any]]:
    """The model's linear forms by key: an input's encoder (key: the input's name) or each
    part of an input's stack (key: ``name[k]``), as (input name, part index or None, encoder)."""
    units = {}
    for name, encoder in model.encoders.items():
        if isinstance(encoder, EncoderStack):
            for k, part in enumerate(encoder.parts):
                units[f"{name}[{k}]"] = (name, k, part)
        else:
            units[name] = (name, None, encoder)
    return units


def raw_design(model, values: Mapping[str, Sequence[Any]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each linear form's ``linear_design`` of ``values`` (all rows in one batch), keyed as
    :func:`_linear_units` keys them, the rows of missing values zeroed (sparse COO, coalesced,
    or dense float32), with the rows' presence (bool)."""
    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders)
    batch = BatchCollator(encoders)([dataset[i] for i in range(len(dataset))])
    designs = {}
    for key, (name, part, encoder) in sorted(_linear_units(model).items()):
        inputs = batch["inputs"][name] if part is None else batch["inputs"][name][part]
        design = encoder.linear_design(inputs)
        present = torch.as_tensor(batch["masks"][name], dtype=torch.bool)
        if design.is_sparse:
            design = design.coalesce()
            keep = present[design.indices()[0]]
            design = torch.sparse_coo_tensor(design.indices()[:, keep], design.values()[keep].float(),
                                             design.shape, check_invariants=False).coalesce()
        else:
            design = design.float() * present[:, None]
        designs[key] = (design, present)
    return designs


class _Block:
    """One input's part of the design matrix as the solver sees it. Sparse: the columns seen
    in the training rows (other features keep a zero weight). Dense: standardised on the
    training rows where the value is present, each row scaled by 1 / sqrt(width) so that a
    dense block weighs about as much as a text's normalised bag."""

    def __init__(self, name: str, train: torch.Tensor, present: torch.Tensor):
        self.name = name
        self.sparse = train.is_sparse
        self.width = train.shape[1]
        if self.sparse:
            self.columns = torch.unique(train.indices()[1])
        else:
            rows = train[present] if bool(present.any()) else train
            std = rows.std(0, unbiased=False) if len(rows) > 1 else torch.ones(self.width)
            self.mean = rows.mean(0)
            self.scale = torch.where(std > 1e-6, 1.0 / std, torch.ones_like(std)) / math.sqrt(self.width)

    @property
    def n_columns(self) -> int:
        return len(self.columns) if self.sparse else self.width

    def transform(self, design: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The solver's matrix (CSR, or dense) and, for a sparse block, its transpose (CSR)."""
        if not self.sparse:
            return (design - self.mean) * self.scale, None
        indices, values = design.indices(), design.values()
        position, known = find_sorted(self.columns, indices[1])
        matrix = torch.sparse_coo_tensor(torch.stack([indices[0][known], position[known]]), values[known],
                                         (design.shape[0], len(self.columns)), check_invariants=False).coalesce()
        return _csr(matrix), _csr(matrix.t().coalesce())

    def unfold(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's weight for the raw design, and what the bias gains from it (the
        dense standardisation folded back: ``(x - mean) * scale @ W == x @ W' - mean * scale @ W``)."""
        if self.sparse:
            full = torch.zeros(self.width, weight.shape[1])
            full[self.columns] = weight
            return full, torch.zeros(weight.shape[1])
        return weight * self.scale[:, None], -(self.mean * self.scale) @ weight


def _csr(matrix: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return matrix.to_sparse_csr()


def _outputs(parts: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], bias: torch.Tensor) -> torch.Tensor:
    total = bias.expand(parts[0].shape[0], -1)
    for matrix, weight in zip(parts, weights):
        total = total + matrix @ weight
    return total


class _Objective:
    """The penalised training loss on some rows, minimised in place by :meth:`solve`."""

    def __init__(self, parts: list[tuple[torch.Tensor, torch.Tensor | None]], data, index: np.ndarray):
        """``parts``: each block's matrix (and transpose) over ``data``'s rows ``index``."""
        self.parts = parts
        self.classification = data.problem_type != "regression"
        self.n = len(index)
        targets = torch.as_tensor(data.targets[index])
        weights = torch.ones(self.n)
        if data.sample_weights is not None:
            weights = torch.as_tensor(data.sample_weights[index], dtype=torch.float32)
        if self.classification:
            if data.class_weights is not None:
                weights = weights * torch.as_tensor(data.class_weights, dtype=torch.float32)[targets.long()]
            self.onehot = torch.nn.functional.one_hot(targets.long(), int(data.n_outputs)).float()
        else:
            self.targets = targets.float().view(-1, 1)
        # each row's share of the mean loss (the penalty's scale stays that of n unweighted rows)
        self.sample_weights = weights / weights.sum()

    def data_loss_and_gradient(self, weights, bias) -> tuple[float, torch.Tensor]:
        """The mean loss and its gradient with respect to the outputs (by hand: autograd
        through a sparse product is several times slower on the CPU)."""
        outputs = _outputs([matrix for matrix, _ in self.parts], weights, bias)
        if self.classification:
            log_probs = torch.log_softmax(outputs, dim=1)
            loss = -(self.sample_weights * (log_probs * self.onehot).sum(1)).sum()
            return float(loss), (log_probs.exp() - self.onehot) * self.sample_weights[:, None]
        residual = outputs - self.targets
        shares = self.sample_weights[:, None]
        return float((shares * residual * residual).sum()), 2.0 * residual * shares

    def solve(self, c: float, weights: list[torch.Tensor], bias: torch.Tensor, deadline: float | None) -> float:
        """Minimise the loss plus ``||W||^2 / (2 c n)`` from the current ``weights`` and
        ``bias`` (full-batch L-BFGS); the final training loss. Raises
        :class:`TimeLimitReached` at the deadline."""
        optimizer = torch.optim.LBFGS([*weights, bias], lr=1.0, max_iter=MAX_ITERATIONS, history_size=10,
                                      tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")
        strength = 1.0 / (c * self.n)

        def closure() -> torch.Tensor:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeLimitReached()
            loss, gradient = self.data_loss_and_gradient(weights, bias)
            penalty = 0.0
            for (matrix, transposed), weight in zip(self.parts, weights):
                weight.grad = (transposed if transposed is not None else matrix.t()) @ gradient + strength * weight
                penalty += float((weight * weight).sum())
            bias.grad = gradient.sum(0)
            return torch.tensor(loss + 0.5 * strength * penalty)

        return float(optimizer.step(closure))


def _rows(design: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    index = torch.from_numpy(np.asarray(positions, dtype=np.int64))
    return design.index_select(0, index).coalesce() if design.is_sparse else design[index]


def train_linear(data, config: dict, *, deadline: float | None = None, refit: bool = True):
    """Fit the linear configuration ``config`` (see the module documentation) and return a
    :class:`~automm.pipeline.Candidate`: one ``history`` record per L2 strength fitted on the
    training rows, the one with the lowest holdout loss kept as ``best_epoch``, its holdout
    outputs as ``valid_outputs``. With ``refit`` the model is then fitted once more at that
    strength on the training and holdout rows together (a second or two; logistic regression on
    fashion and emoji made 0-5 fewer test errors with the holdout's 10% more rows, RESULTS.md
    session 13), so ``valid_outputs`` stay honest while the model uses every row; when the
    deadline comes first, or when the holdout is the user's validation data (never trained on),
    the training rows' fit is kept. Runs on the CPU. Training callbacks do
    not apply: its steps are not epochs, and the search never prunes it."""
    from .pipeline import Candidate, build_model

    start = time.monotonic()
    torch.manual_seed(data.seed)
    model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index)).eval()
    for name, encoder in model.encoders.items():  # frozen pretrained features: computed or read once
        encoder.prepare(data.values[name], cache_dir=data.cache_dir)
    rows = np.concatenate([data.train_index, data.valid_index])  # training rows first, then the holdout
    raw = raw_design(model, data.subset(rows))
    n_train = len(data.train_index)
    train_raw = {name: (_rows(design, np.arange(n_train)), present[:n_train]) for name, (design, present) in raw.items()}
    blocks = [_Block(name, *train_raw[name]) for name in sorted(raw)]
    valid_rows = np.arange(n_train, len(rows))
    valid_parts = [block.transform(_rows(raw[block.name][0], valid_rows))[0] for block in blocks]
    objective = _Objective([block.transform(train_raw[block.name][0]) for block in blocks], data, data.train_index)
    del train_raw
    k = int(data.n_outputs)
    weights = [torch.zeros(block.n_columns, k) for block in blocks]
    bias = torch.zeros(k)

    history: list[dict] = []
    best = None
    stop_reason = "l2 grid done"
    for index, c in enumerate(L2_GRID, start=1):  # each strength starts from the previous solution
        if deadline is not None and time.monotonic() >= deadline:
            stop_reason = "time limit"
            break
        try:
            train_loss = objective.solve(c, weights, bias, deadline)
        except TimeLimitReached:
            stop_reason = "time limit"
            break
        with torch.no_grad():
            outputs = _outputs(valid_parts, weights, bias).numpy()
        valid_loss, valid_score = validation_metrics(outputs, data.valid_targets, objective.classification,
                                                     data.valid_weights, data.metric)
        history.append({"epoch": index, "l2_c": c, "train_loss": train_loss, "valid_loss": valid_loss,
                        "valid_score": valid_score, "seconds": time.monotonic() - start})
        if math.isfinite(valid_loss) and (best is None or valid_loss < best[0]):
            best = (valid_loss, index, valid_score, outputs, [w.clone() for w in weights], bias.clone())
    if best is None:
        raise TimeoutError("the linear model did not finish one fit before the deadline")
    _, best_epoch, best_score, best_outputs, best_weights, best_bias = best
    del objective, valid_parts
    if refit and stop_reason != "time limit" and not data.holdout_given:  # never on the user's validation rows
        refitted = _refit(raw, rows, blocks, best_weights, best_bias, data, L2_GRID[best_epoch - 1], deadline)
        if refitted is not None:
            blocks, best_weights, best_bias = refitted
            stop_reason = "l2 grid done; refit on the training and holdout rows"
    with torch.no_grad():  # the solution into the model: each input's weight, then the bias
        total_bias = best_bias.clone()
        units = _linear_units(model)
        for block, weight in zip(blocks, best_weights):
            encoder_weight, bias_part = block.unfold(weight)
            units[block.name][2].set_linear_weight(encoder_weight)
            total_bias += bias_part
        model.fusion.bias.copy_(total_bias)
    return Candidate(config=config, model=model, history=history, best_epoch=best_epoch,
                     best_score=float(best_score), valid_outputs=np.asarray(best_outputs, dtype=np.float32),
                     stop_reason=stop_reason, seconds=time.monotonic() - start)


def _refit(raw: Mapping[str, tuple[torch.Tensor, torch.Tensor]], rows: np.ndarray, blocks: list[_Block],
           weights: list[torch.Tensor], bias: torch.Tensor, data, c: float, deadline: float | None):
    """The fit at strength ``c`` on all of ``raw``'s rows (``data``'s rows ``rows``), started
    from the training rows' solution: (blocks, weights, bias), or None at the deadline."""
    new_blocks, start_weights = [], []
    for block, weight in zip(blocks, weights):
        new = _Block(block.name, *raw[block.name])
        start = weight.clone()
        if block.sparse:  # the holdout may add columns; the known ones start where they were
            start = torch.zeros(new.n_columns, weight.shape[1])
            start[torch.searchsorted(new.columns, block.columns)] = weight
        new_blocks.append(new)
        start_weights.append(start)
    objective = _Objective([block.transform(raw[block.name][0]) for block in new_blocks], data, rows)
    start_bias = bias.clone()
    try:
        objective.solve(c, start_weights, start_bias, deadline)
    except TimeLimitReached:
        return None
    return new_blocks, start_weights, start_bias
