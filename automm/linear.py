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
``"linear"``: ``hashed_ngram``, ``tabular``, ``colour_histogram``, and a plugin's frozen pretrained encoders)
among its choices
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

import functools
import json
import logging
import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .components.stack import STACK, EncoderStack
from .data import BatchCollator, MultimodalDataset
from .deadlines import CUT_BEFORE_LEARNING, check_deadline
from .process_state import warnings_left_out
from .training import TimeLimitReached, validation_metrics

__all__ = ["LINEAR_SOLVER", "L2_GRID", "linear_config", "raw_design", "train_linear"]

_log = logging.getLogger("automm.linear")

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
    all_parts = {}
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
        all_parts[item.name] = parts
    positions, pairs = _comparisons(inputs, all_parts)
    encoders = {}
    for item in inputs:
        parts = all_parts[item.name]
        if item.name in positions:
            encoders[item.name] = {"name": STACK, "parts": parts, "compared": positions[item.name]}
        elif len(parts) == 1:
            encoders[item.name] = parts[0]
        elif parts:
            encoders[item.name] = {"name": STACK, "parts": parts}
    if not encoders:
        return None
    training = {**base_training, "solver": LINEAR_SOLVER}
    fusion = {"name": "sum", "compared": pairs} if pairs else {"name": "sum"}
    return {"encoders": encoders, "fusion": fusion, "augmentations": [], "training": training}


def _comparisons(inputs: Sequence[Any],
                 parts: Mapping[str, list[dict]]) -> tuple[dict[str, list[int]], list[list[str]]]:
    """Which linear forms the linear model compares: each input's compared parts (positions in
    ``parts[input]``) and the pairs of inputs compared. Two inputs of one modality (two title
    columns) are compared when their parts with a fixed-width linear form (``linear_width``:
    frozen pretrained features) are the same choices; inputs of a modality of their own are not."""
    from . import registry as _registry
    from .pipeline import _encoder_arguments

    reg = _registry.get_registry()
    modalities = [item.modality for item in inputs]
    comparable = {}
    for item in inputs:
        if modalities.count(item.modality) < 2:
            continue  # (nothing to compare it with: no encoder built)
        found = []
        for k, part in enumerate(parts.get(item.name) or ()):
            name, params = _encoder_arguments(item, dict(part))
            if _linear_width(reg.get("encoder", name).factory, json.dumps(params, sort_keys=True, default=str)):
                found.append((k, part))
        if found:
            comparable[item.name] = (item.modality, found)
    positions: dict[str, list[int]] = {}
    pairs = []
    names = sorted(comparable)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (modality_a, parts_a), (modality_b, parts_b) = comparable[a], comparable[b]
            if modality_a == modality_b and [p for _, p in parts_a] == [p for _, p in parts_b]:
                pairs.append([a, b])
                positions[a], positions[b] = [k for k, _ in parts_a], [k for k, _ in parts_b]
    return positions, pairs


@functools.lru_cache(maxsize=256)
def _linear_width(factory: Any, params_json: str) -> int | None:
    """The ``linear_width`` of the encoder ``factory`` builds with these parameters (None where it
    sets none or does not build); each choice is built once per process (one can load weights)."""
    try:
        width = getattr(factory(**json.loads(params_json)), "linear_width", None)
    except Exception:  # noqa: BLE001 - an encoder that does not build is not compared
        return None
    return width if isinstance(width, int) and not isinstance(width, bool) and width > 0 else None


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


#: Rows preprocessed and collated at a time while a design is built (the per-row samples and a
#: chunk's COO matrix are freed before the next chunk).
DESIGN_CHUNK_ROWS = 4096

#: The share of the time left to it that the linear model's design (the features of its rows) may
#: take under a deadline: more training rows than that builds are left out (a random subset is
#: fitted, every holdout row scored), leaving the L2 grid the rest. Building every row took the
#: whole share: fashion copies, 50,000 photos and titles, time_limit=120, 43 s of its 52 s
#: decoding photos, then L-BFGS cut after a few steps (holdout accuracy 0.004 or 0.984 from run to run).
DESIGN_TIME_SHARE = 0.5

#: Training rows in the first chunk of a design built under a time share: the rate it is built at
#: sizes the next chunks, each as many rows as the share has time for beside the holdout's (a
#: first chunk of DESIGN_CHUNK_ROWS fashion photos outlasted a 12-s or 16-s fit's whole linear model).
DESIGN_FIRST_ROWS = 256


def raw_design(model, values: Mapping[str, Sequence[Any]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each linear form's ``linear_design`` of ``values``, keyed as :func:`_linear_units` keys
    them, the rows of missing values zeroed (sparse COO, coalesced, or dense float32), with the
    rows' presence (bool)."""
    return {key: (design.raw(), design.present) for key, design in _designs(model, values).items()}


class _Design:
    """One linear form's design over a fit's rows, held once. Sparse: a CSR matrix over
    ``columns`` (the raw features seen in any row, ascending) and its transpose (CSR), both with
    32-bit indices where they fit. Dense: one float32 matrix. Rows of missing values are zero."""

    def __init__(self, name: str, present: torch.Tensor, width: int, *, dense: torch.Tensor | None = None,
                 columns: torch.Tensor | None = None, matrix: torch.Tensor | None = None,
                 transposed: torch.Tensor | None = None):
        self.name, self.present, self.width = name, present, width
        self.sparse = dense is None
        self.dense, self.columns, self.matrix, self.transposed = dense, columns, matrix, transposed

    def raw(self) -> torch.Tensor:
        """The design over the raw features: COO (coalesced) or dense."""
        if not self.sparse:
            return self.dense
        crow, col = self.matrix.crow_indices(), self.matrix.col_indices()
        rows = torch.repeat_interleave(torch.arange(len(self.present)), torch.diff(crow).long())
        return torch.sparse_coo_tensor(torch.stack([rows, self.columns[col.long()]]), self.matrix.values(),
                                       (len(self.present), self.width), check_invariants=False).coalesce()


class _DesignBuilder:
    """Collects one linear form's design chunk by chunk (rows of missing values zeroed) into a
    :class:`_Design` of the rows added (up to ``n_rows``); a sparse chunk keeps only its entries'
    row counts, raw columns and values."""

    def __init__(self, name: str, n_rows: int):
        self.name, self.n_rows, self.filled = name, n_rows, 0
        self.sparse = self.width = self.dense = None
        self.present: list[torch.Tensor] = []
        self.row_counts: list[torch.Tensor] = []
        self.columns: list[np.ndarray] = []
        self.values: list[torch.Tensor] = []

    def add(self, design: torch.Tensor, present: torch.Tensor) -> None:
        self.sparse, self.width = design.is_sparse, int(design.shape[1])
        self.present.append(present)
        if self.sparse:
            design = design.coalesce()
            rows, columns = design.indices()
            keep = present[rows]
            self.row_counts.append(torch.bincount(rows[keep], minlength=len(present)))
            self.columns.append(columns[keep].numpy().astype(_index_dtype(self.width)))
            self.values.append(design.values()[keep].float())
        else:
            if self.dense is None:
                self.dense = torch.empty(self.n_rows, self.width)
            self.dense[self.filled:self.filled + len(present)] = design.float() * present[:, None]
        self.filled += len(present)

    def finish(self) -> _Design:
        present = torch.cat(self.present)
        if not self.sparse:  # (rows left out at the end: the matrix cut to those built)
            dense = self.dense if self.filled == self.n_rows else self.dense[:self.filled].clone()
            return _Design(self.name, present, self.width, dense=dense)
        seen = np.zeros(self.width, dtype=bool)
        for columns in self.columns:
            seen[columns] = True
        counts = torch.cat(self.row_counts)
        nnz = int(counts.sum())
        index_dtype = _index_dtype(max(nnz, self.width, self.n_rows))
        position = np.cumsum(seen, dtype=index_dtype) - 1  # a raw feature's column among those seen
        col = np.empty(nnz, dtype=index_dtype)
        values = torch.empty(nnz)
        start = 0
        while self.columns:  # each chunk's entries into place, the chunk freed as it goes
            columns, chunk_values = self.columns.pop(0), self.values.pop(0)
            np.take(position, columns, out=col[start:start + len(columns)])
            values[start:start + len(columns)] = chunk_values
            start += len(columns)
        crow = np.zeros(self.filled + 1, dtype=index_dtype)
        np.cumsum(counts.numpy(), out=crow[1:])
        shape = (self.filled, int(seen.sum()))
        matrix = _csr(torch.from_numpy(crow), torch.from_numpy(col), values, shape)
        return _Design(self.name, present, self.width, columns=torch.from_numpy(np.flatnonzero(seen)),
                       matrix=matrix, transposed=_transposed(crow, col, values.numpy(), shape))


def _index_dtype(largest: int):
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor on these arrays (not copied)."""
    with warnings_left_out(message="Sparse CSR tensor support is in beta"):  # (trials run in threads on GPUs)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _transposed(crow: np.ndarray, col: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """The transpose of the CSR matrix (``crow``, ``col``, ``values``) as CSR, each of its rows'
    entries in ascending column order (a counting sort: no more memory than the result's)."""
    from scipy.sparse import csr_matrix

    csc = csr_matrix((values, col, crow), shape=shape, copy=False).tocsc()
    return _csr(torch.from_numpy(csc.indptr), torch.from_numpy(csc.indices), torch.from_numpy(csc.data),
                (shape[1], shape[0]))


def _designs(model, values: Mapping[str, Sequence[Any]], n_first: int = 0,
             seconds: float | None = None) -> dict[str, _Design]:
    """Each linear form's :class:`_Design` of ``values``, keyed as :func:`_linear_units` keys
    them, built :data:`DESIGN_CHUNK_ROWS` rows at a time. With ``seconds``, of the first ``n_first``
    rows (a fit's training rows, in a random order) only as many are built as the whole design is
    projected to be built within ``seconds`` of its start with (at the rate of the rows built so
    far: :data:`DESIGN_FIRST_ROWS` rows at least); the rows after them (the holdout) are all built.
    The designs then leave out the first rows not built."""
    encoders = dict(model.encoders.items())
    units = sorted(_linear_units(model).items())
    n_rows = len(values[next(iter(encoders))])
    builders = {key: _DesignBuilder(key, n_rows) for key, _ in units}
    collate = BatchCollator(encoders)
    started, built = time.monotonic(), 0

    def chunks():  # (read as the rows are built: a chunk of the first rows is sized by the rate so far)
        start = 0
        while start < n_first:
            size, took = DESIGN_CHUNK_ROWS, time.monotonic() - started
            if seconds is not None and not built:
                size = min(size, DESIGN_FIRST_ROWS)
            elif seconds is not None and took > 0:  # the rows in time beside the holdout's
                size = min(size, int((seconds - took) * built / took) - (n_rows - n_first))
                if size <= 0:
                    break
            yield start, min(start + size, n_first)
            start += size
        for start in range(n_first, n_rows, DESIGN_CHUNK_ROWS):
            yield start, min(start + DESIGN_CHUNK_ROWS, n_rows)

    for start, stop in chunks():
        dataset = MultimodalDataset({name: values[name][start:stop] for name in encoders}, encoders)
        batch = collate([dataset[i] for i in range(len(dataset))])
        del dataset
        for key, (name, part, encoder) in units:
            inputs = batch["inputs"][name] if part is None else batch["inputs"][name][part]
            builders[key].add(encoder.linear_design(inputs), torch.as_tensor(batch["masks"][name], dtype=torch.bool))
        del batch
        built += stop - start
        check_deadline(f"the linear model built the features of {built} of {n_rows} rows")
    return {key: builder.finish() for key, builder in builders.items()}


def _add_pair_designs(model, designs: dict[str, _Design]) -> dict[str, tuple[int, int]]:
    """Add to ``designs`` the designs of the pairs the model's ``sum`` fusion compares: for each
    pair and each compared part of its stacks, ``|a - b|`` and ``a * b`` of the two inputs'
    features (dense; zero where either input is missing). Returns where each one's weight sits:
    its key -> (the pair's index, its first row in the pair's weight)."""
    placed: dict[str, tuple[int, int]] = {}
    for index, (a, b) in enumerate(getattr(model.fusion, "compared", ())):
        lefts = [designs[f"{a}[{k}]"] for k in model.encoders[a].compared]
        rights = [designs[f"{b}[{k}]"] for k in model.encoders[b].compared]
        features = sum(left.width for left in lefts)  # the pair's weight: rows on |a - b|, then on a * b
        offset = 0
        for left, right in zip(lefts, rights):
            both = left.present & right.present
            first, second = _dense(left), _dense(right)
            for kind, start, values in (("difference", offset, torch.sub(first, second).abs_()),
                                        ("product", features + offset, first.mul_(second))):
                key = f"{a}~{b}:{left.name}~{right.name}:{kind}"
                designs[key] = _Design(key, both, left.width, dense=values.mul_(both[:, None]))
                placed[key] = (index, start)
            offset += left.width
    return placed


def _dense(design: _Design) -> torch.Tensor:
    """A copy of the design's matrix, dense."""
    return design.raw().to_dense() if design.sparse else design.dense.clone()


class _Block:
    """One input's part of the design matrix as one fit's solver sees it, on the design's first
    ``n_rows`` rows (the training rows; every row for the refit). Sparse: the columns seen in
    those rows (other features keep a zero weight). Dense: standardised on those rows where the
    value is present, each row scaled by 1 / sqrt(width) so that a dense block weighs about as
    much as a text's normalised bag."""

    def __init__(self, design: _Design, n_rows: int):
        self.name = design.name
        self.sparse = design.sparse
        self.width = design.width
        if self.sparse:
            seen = np.zeros(len(design.columns), dtype=bool)
            seen[design.matrix.col_indices()[:int(design.matrix.crow_indices()[n_rows])].numpy()] = True
            #: where the solver's columns sit among the design's, or None when they are all of them
            self.positions = None if seen.all() else torch.from_numpy(np.flatnonzero(seen))
            self.columns = design.columns if self.positions is None else design.columns[self.positions]
        else:
            train, present = design.dense[:n_rows], design.present[:n_rows]
            rows = train[present] if bool(present.any()) and not bool(present.all()) else train
            std = rows.std(0, unbiased=False) if len(rows) > 1 else torch.ones(self.width)
            self.mean = rows.mean(0)
            self.scale = torch.where(std > 1e-6, 1.0 / std, torch.ones_like(std)) / math.sqrt(self.width)

    @property
    def n_columns(self) -> int:
        return len(self.columns) if self.sparse else self.width

    def parts(self, design: _Design, row_ranges: Sequence[slice], weight_width: int) -> list["_Part"]:
        """The solver's matrix on each of ``row_ranges`` of the design's rows, for a weight
        ``weight_width`` wide. A dense block's is standardised once for all of them (one copy); a
        sparse block's is the design's own."""
        if self.sparse:
            spread = None if self.positions is None else torch.zeros(len(design.columns), weight_width)
            return [_Part(_row_range(design.matrix, rows), design.transposed, rows, self.positions, spread)
                    for rows in row_ranges]
        standardised = torch.sub(design.dense, self.mean).mul_(self.scale)
        return [_Part(standardised[rows], None, rows, None, None) for rows in row_ranges]

    def unfold(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's weight for the raw design, and what the bias gains from it (the
        dense standardisation folded back: ``(x - mean) * scale @ W == x @ W' - mean * scale @ W``)."""
        if self.sparse:
            full = torch.zeros(self.width, weight.shape[1])
            full[self.columns] = weight
            return full, torch.zeros(weight.shape[1])
        return weight * self.scale[:, None], -(self.mean * self.scale) @ weight


def _row_range(matrix: torch.Tensor, rows: slice) -> torch.Tensor:
    """Rows ``rows`` (a step-1 slice) of a CSR matrix, sharing its column indices and values."""
    start, stop, _ = rows.indices(matrix.shape[0])
    crow = matrix.crow_indices()[start:stop + 1]
    first, last = int(crow[0]), int(crow[-1])
    return _csr(crow - first if first else crow, matrix.col_indices()[first:last], matrix.values()[first:last],
                (stop - start, matrix.shape[1]))


class _Part:
    """A block's solver matrix ``X`` on some rows, with the products the solver needs. A sparse
    one is kept in the design's columns: the block's weight is spread into them (``spread``, a
    buffer whose other rows stay zero) for ``X @ W``, and ``X^T @ G`` is the whole design's
    transpose times ``G`` padded with zero rows (adding zeros: the same sums), read at the
    block's columns."""

    def __init__(self, matrix: torch.Tensor, transposed: torch.Tensor | None, rows: slice,
                 positions: torch.Tensor | None, spread: torch.Tensor | None):
        self.matrix, self.transposed, self.rows = matrix, transposed, rows
        self.positions, self.spread = positions, spread
        self.padded: torch.Tensor | None = None

    def product(self, weight: torch.Tensor) -> torch.Tensor:
        if self.positions is not None:
            self.spread[self.positions] = weight
            weight = self.spread
        return self.matrix @ weight

    def transposed_product(self, gradient: torch.Tensor) -> torch.Tensor:
        if self.transposed is None:
            return self.matrix.t() @ gradient
        if len(gradient) != self.transposed.shape[1]:
            if self.padded is None:
                self.padded = gradient.new_zeros(self.transposed.shape[1], gradient.shape[1])
            self.padded[self.rows] = gradient
            gradient = self.padded
        product = self.transposed @ gradient
        return product if self.positions is None else product[self.positions]


def _outputs(parts: Sequence[_Part], weights: Sequence[torch.Tensor], bias: torch.Tensor) -> torch.Tensor:
    total = bias.expand(parts[0].matrix.shape[0], -1)
    for part, weight in zip(parts, weights):
        total = total + part.product(weight)
    return total


class _Objective:
    """The penalised training loss on some rows, minimised in place by :meth:`solve`."""

    def __init__(self, parts: list[_Part], data, index: np.ndarray):
        """``parts``: each block's matrix over ``data``'s rows ``index``."""
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
        outputs = _outputs(self.parts, weights, bias)
        if self.classification:
            log_probs = torch.log_softmax(outputs, dim=1)
            loss = -(self.sample_weights * (log_probs * self.onehot).sum(1)).sum()
            return float(loss), (log_probs.exp() - self.onehot) * self.sample_weights[:, None]
        residual = outputs - self.targets
        shares = self.sample_weights[:, None]
        return float((shares * residual * residual).sum()), 2.0 * residual * shares

    def solve(self, c: float, weights: list[torch.Tensor], bias: torch.Tensor, deadline: float | None,
              keep_best: bool = False) -> float:
        """Minimise the loss plus ``||W||^2 / (2 c n)`` from the current ``weights`` and
        ``bias`` (full-batch L-BFGS); the final training loss (the data's, without the penalty).
        Raises :class:`TimeLimitReached` at the deadline, leaving ``weights`` wherever the line
        search was; with ``keep_best``, :attr:`best_point` then holds the point evaluated with the
        lowest loss plus penalty, ``(its data loss, weights, bias, evaluations)``."""
        self.best_point = None
        evaluations, best_total, best_loss, best_at = 0, math.inf, math.inf, 0
        # the best point is copied into buffers allocated once (not a fresh copy per improving step)
        best_weights = [torch.empty_like(w) for w in weights] if keep_best else []
        best_bias = torch.empty_like(bias)
        optimizer = torch.optim.LBFGS([*weights, bias], lr=1.0, max_iter=MAX_ITERATIONS, history_size=10,
                                      tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")
        strength = 1.0 / (c * self.n)

        def closure() -> torch.Tensor:
            nonlocal evaluations, best_total, best_loss, best_at
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeLimitReached()
            loss, gradient = self.data_loss_and_gradient(weights, bias)
            penalty = 0.0
            for part, weight in zip(self.parts, weights):
                weight.grad = part.transposed_product(gradient).add_(strength * weight)
                penalty += float((weight * weight).sum())
            bias.grad = gradient.sum(0)
            total = loss + 0.5 * strength * penalty
            evaluations += 1
            if keep_best and math.isfinite(total) and total < best_total:
                for kept, weight in zip(best_weights, weights):
                    kept.copy_(weight.detach())
                best_bias.copy_(bias.detach())
                best_total, best_loss, best_at = total, loss, evaluations
            return torch.tensor(total)

        try:
            optimizer.step(closure)  # (it returns the loss where it began)
        finally:
            if best_at:
                self.best_point = (best_loss, best_weights, best_bias, best_at)
        with torch.no_grad():
            return self.data_loss_and_gradient(weights, bias)[0]


def _training_order(data) -> np.ndarray:
    """``data``'s training rows in a random order (seeded by ``data.seed``) whose every first rows
    are a random subset holding each class in its share (classes interleaved: a rare class is among
    the first rows, where a plain shuffle's first 1,000 of 7,000 rows missed a class of 10 rows one
    time in five), for the rows :func:`_designs` builds in time."""
    rng = np.random.default_rng(data.seed)
    order = rng.permutation(data.train_index)
    if data.problem_type == "regression" or not len(order):
        return order
    classes = np.asarray(data.targets)[order]
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    rank = np.empty(len(order))  # each row's place among its class's rows, shuffled
    rank[np.argsort(inverse, kind="stable")] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[np.argsort((rank + rng.random(len(order))) / counts[inverse], kind="stable")]


def train_linear(data, config: dict, *, deadline: float | None = None, refit: bool = True):
    """Fit the linear configuration ``config`` (see the module documentation) and return a
    :class:`~automm.pipeline.Candidate`: one ``history`` record per L2 strength fitted on the
    training rows, the one with the lowest holdout loss kept as ``best_epoch``, its holdout
    outputs as ``valid_outputs``. With ``refit`` the model is then fitted once more at that
    strength on the training and holdout rows together (a second or two; logistic regression on
    fashion and emoji made 0-5 fewer test errors with the holdout's 10% more rows, RESULTS.md
    session 13), so ``valid_outputs`` stay honest while the model uses every row; when the
    deadline comes first, or when the holdout is the user's validation data (never trained on),
    the training rows' fit is kept. The deadline stops the grid between or inside fits; inside
    the first one, its lowest-loss point so far is kept and scored (every L-BFGS step uses every
    row), and a deadline before any point better than the start (every weight zero: one guess for
    every row, which a search kept as a finished trial of 0.004 holdout accuracy) raises
    ``TimeoutError`` (:data:`~automm.deadlines.CUT_BEFORE_LEARNING`). Runs on the CPU.
    Training callbacks do not apply: its steps are not epochs, and the search never prunes it.

    Under a deadline the design takes at most :data:`DESIGN_TIME_SHARE` of the time left: the
    training rows it would not build in time are left out (a random subset is fitted; every holdout
    row is), which ``stop_reason`` says.

    Memory: each linear form's design is built once over every row (training rows first), a
    chunk of rows at a time, and held as one CSR matrix and its transpose (or one dense matrix
    and its standardised copy); the fits read row ranges of it without copies."""
    from .pipeline import _SEEDED_BUILDS, Candidate, build_model

    start = time.monotonic()
    with _SEEDED_BUILDS:
        torch.manual_seed(data.seed)
        model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index),
                            warned=data.warned).eval()
    for name, encoder in model.encoders.items():  # frozen pretrained features: computed or read once
        encoder.prepare(data.values[name], cache_dir=data.cache_dir)
    # training rows first (in a random order: those built in time are a random subset), then the holdout
    train_rows = _training_order(data)
    rows = np.concatenate([train_rows, data.valid_index])
    design_seconds = None if deadline is None else DESIGN_TIME_SHARE * (deadline - time.monotonic())
    designs = _designs(model, data.subset(rows), len(train_rows), design_seconds)
    n_train = len(next(iter(designs.values())).present) - len(data.valid_index)
    rows = np.concatenate([train_rows[:n_train], data.valid_index])
    subset = ""
    if n_train < len(train_rows):
        subset = (f"; fitted on {n_train} of {len(train_rows)} training rows, a random subset: the features of all "
                  "would have taken too long")
        _log.info("the linear model is fitted on %d of %d training rows, at random: the features of all of them "
                  "would have taken more than %.0f s, %.0f%% of its time", n_train, len(train_rows), design_seconds,
                  100 * DESIGN_TIME_SHARE)
    pair_blocks = _add_pair_designs(model, designs)
    blocks = [_Block(designs[name], n_train) for name in sorted(designs)]
    k = int(data.n_outputs)
    parts = [block.parts(designs[block.name], [slice(0, n_train), slice(n_train, len(rows))], k) for block in blocks]
    objective = _Objective([train for train, _ in parts], data, rows[:n_train])
    valid_parts = [valid for _, valid in parts]
    del parts
    weights = [torch.zeros(block.n_columns, k) for block in blocks]
    bias = torch.zeros(k)

    history: list[dict] = []
    last = start
    best = None
    stop_reason, timed_out = "l2 grid done", False
    for index, c in enumerate(L2_GRID, start=1):  # each strength starts from the previous solution
        if deadline is not None and time.monotonic() >= deadline:
            stop_reason, timed_out = "time limit", True
            break
        try:
            train_loss = objective.solve(c, weights, bias, deadline, keep_best=best is None)
        except TimeLimitReached:
            stop_reason, timed_out = "time limit", True
            # (evaluation 1 is the starting point: every weight zero, one same guess for every row)
            if best is not None or objective.best_point is None or objective.best_point[3] == 1:
                break
            # the first strength's fit cut short: its best point so far, scored as it is (each
            # step used every row, so its holdout score is that of the model kept)
            train_loss, weights, bias, evaluations = objective.best_point
            stop_reason = (f"time limit: the first fit (L2 c={c:g}) stopped after {evaluations} "
                           f"evaluation{'s' if evaluations != 1 else ''}, its best point kept")
        with torch.no_grad():
            outputs = _outputs(valid_parts, weights, bias).numpy()
        valid_loss, valid_score = validation_metrics(outputs, data.valid_targets, objective.classification,
                                                     data.valid_weights, data.metric)
        history.append({"epoch": index, "l2_c": c, "train_loss": train_loss, "valid_loss": valid_loss,
                        "valid_score": valid_score, "seconds": time.monotonic() - last})
        last = time.monotonic()  # (seconds per setting, as a network's per epoch)
        if math.isfinite(valid_loss) and (best is None or valid_loss < best[0]):
            best = (valid_loss, index, valid_score, outputs, [w.clone() for w in weights], bias.clone())
        if timed_out:
            break
    if best is None:
        raise TimeoutError(f"the linear model was {CUT_BEFORE_LEARNING}: its first fit (L2 c={L2_GRID[0]:g}) "
                           "stopped before a point better than its start (every weight zero, the same guess for "
                           "every row)")
    _, best_epoch, best_score, best_outputs, best_weights, best_bias = best
    del objective, valid_parts, weights  # a dense block's standardised copy goes with them
    if refit and not timed_out and not data.holdout_given:  # never on the user's validation rows
        refitted = _refit(designs, blocks, best_weights, best_bias, data, rows, L2_GRID[best_epoch - 1], deadline)
        if refitted is not None:
            blocks, best_weights, best_bias = refitted
            stop_reason = "l2 grid done; refit on the training and holdout rows"
    del designs
    with torch.no_grad():  # the solution into the model: each input's weight, each pair's, then the bias
        total_bias = best_bias.clone()
        units = _linear_units(model)
        pair_weights = [torch.zeros_like(weight) for weight in getattr(model.fusion, "pair_weights", ())]
        for block, weight in zip(blocks, best_weights):
            encoder_weight, bias_part = block.unfold(weight)
            if block.name in pair_blocks:
                index, first = pair_blocks[block.name]
                pair_weights[index][first:first + len(encoder_weight)] = encoder_weight
            else:
                units[block.name][2].set_linear_weight(encoder_weight)
            total_bias += bias_part
        for index, weight in enumerate(pair_weights):
            model.fusion.set_pair_weight(index, weight)
        model.fusion.bias.copy_(total_bias)
    return Candidate(config=config, model=model, history=history, best_epoch=best_epoch,
                     best_score=float(best_score), valid_outputs=np.asarray(best_outputs, dtype=np.float32),
                     stop_reason=stop_reason + subset, seconds=time.monotonic() - start)


def _refit(designs: Mapping[str, _Design], blocks: list[_Block], weights: list[torch.Tensor], bias: torch.Tensor,
           data, rows: np.ndarray, c: float, deadline: float | None):
    """The fit at strength ``c`` on all of the designs' rows (``data``'s rows ``rows``), started
    from the training rows' solution: (blocks, weights, bias), or None at the deadline."""
    new_blocks, start_weights = [], []
    for block, weight in zip(blocks, weights):
        new = _Block(designs[block.name], len(rows))
        start = weight.clone()
        if block.sparse:  # the holdout may add columns; the known ones start where they were
            start = torch.zeros(new.n_columns, weight.shape[1])
            start[torch.searchsorted(new.columns, block.columns)] = weight
        new_blocks.append(new)
        start_weights.append(start)
    parts = [block.parts(designs[block.name], [slice(0, len(rows))], int(data.n_outputs))[0] for block in new_blocks]
    objective = _Objective(parts, data, rows)
    start_bias = bias.clone()
    try:
        objective.solve(c, start_weights, start_bias, deadline)
    except TimeLimitReached:
        return None
    return new_blocks, start_weights, start_bias
