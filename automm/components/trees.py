"""The ``boosted_trees`` encoder: gradient-boosted decision trees over a row's table columns.

It reads a row as the ``tabular`` encoder does (the same fitted preprocessing: numbers centred
and scaled, not clipped, date-time features, categories by frequency, up to ``max_categories``) and feeds its
trees, per row, each number (NaN where missing; a column of more than 255 distinct values as the
index of its bin among the training rows' quantiles, which scikit-learn would take) and each
category's index (0: missing, rare or unknown). Its output is the trees' summed leaf values, one
column per output (a class's logit, or the standardised value of a regression), so it is a model
of its own: the search's gradient-boosted model (:mod:`automm.boosting`) is this encoder under
the ``sum`` fusion, whose bias holds the trees' baseline, and
:func:`automm.boosting.train_boosting` grows the trees (scikit-learn's
``HistGradientBoostingClassifier`` / ``Regressor``, categories split natively) and hands them
over with :meth:`BoostedTreesEncoder.set_trees`. Nothing trains it by gradient steps. The trees
are buffers, saved with the model's weights and evaluated in torch, on any device, a level of
every tree at a time. Tagged ``"manual"``: a search samples it only when it is named.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..exceptions import InputError
from ..hookspecs import hookimpl
from .base import whole_at_least_one
from .tabular import TabularEncoder

__all__ = ["BoostedTreesEncoder", "boosted_trees_search_space", "MAX_TREE_CATEGORIES", "MAX_BINS", "TREE_BUFFERS",
           "BIN_BUFFERS",
           "automm_register_encoders"]

#: The most categories a column may keep for the trees (scikit-learn's histograms hold 255 bins:
#: the category indices 1..254 and 0, missing, rare or unknown).
MAX_TREE_CATEGORIES = 254

#: The category indices a categorical split's table covers.
_CATEGORY_SLOTS = 256

#: The buffers that hold the trees (their lengths are the fitted trees', restored from the weights).
TREE_BUFFERS = {"node_feature": np.int64, "node_threshold": np.float32, "node_left": np.int64,
                "node_right": np.int64, "node_leaf": bool, "node_missing_left": bool, "node_categorical": bool,
                "node_category_row": np.int64, "node_value": np.float32, "category_left": bool,
                "tree_root": np.int64, "tree_output": np.int64}

#: The buffers that hold the numbers' bins (:meth:`BoostedTreesEncoder.fit_bins`).
BIN_BUFFERS = ("bin_edges", "binned")

#: The most (row, tree) pairs whose nodes are followed at once (see :meth:`BoostedTreesEncoder.trees_output`).
ROWS_TIMES_TREES = 1 << 21

#: Levels of the trees followed between two looks at which (row, tree) pairs are at a leaf.
LEAF_CHECK = 2

#: The most distinct values a number keeps for the trees: a column of more is read as the index of
#: its bin among as many quantiles of the training rows (scikit-learn's ``max_bins``).
MAX_BINS = 255


def _positive_number(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``zero``), else an :class:`InputError` naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if not ok or (float(value) < 0 if zero else float(value) <= 0):
        raise InputError(f"{name} must be a finite number {'>= 0' if zero else '> 0'}, got {value!r}")
    return float(value)


def _max_categories(value: Any) -> int:
    """``value`` as a whole number from 1 to :data:`MAX_TREE_CATEGORIES`, else an :class:`InputError`."""
    value = whole_at_least_one("max_categories", value)
    if value > MAX_TREE_CATEGORIES:
        raise InputError(f"max_categories must be a whole number from 1 to {MAX_TREE_CATEGORIES}, got {value!r} "
                         "(the trees' histograms hold 255 bins)")
    return value


class BoostedTreesEncoder(TabularEncoder):
    """Gradient-boosted trees over the table columns (see the module documentation).

    ``output_dim`` is the model's number of outputs. ``learning_rate``, ``max_leaf_nodes``,
    ``min_samples_leaf``, ``l2_regularization`` and ``max_iter`` (the most boosting iterations;
    early stopping on the holdout keeps fewer) are scikit-learn's, read when the trees are grown;
    ``l2_regularization`` is 1 where scikit-learn's is 0, under which a leaf of a rare class's few
    rows took extreme values: on fashion's 7,563 training rows (a column telling subCategory
    beside 192 of noise) the holdout loss jumped from 1.02 to 7.06 at the third iteration and
    boosting stopped there, 0.866 test accuracy, 0.910 with it (usage: 0.928, 0.933).
    ``max_categories`` (at most 254) caps each categorical column's categories, as ``tabular``'s does.
    """

    #: No gradient step changes it (its trees are grown by :func:`automm.boosting.train_boosting`).
    frozen = True
    #: Trees read the numbers' order, which ``tabular``'s clip at 10 spreads from the median took
    #: from the tail (every larger value read as one: a label split among payments of 100 to 1,000
    #: beside many of 0 to 1 was right on 0.40 of those rows, 1.00 unclipped); float32's range kept.
    numeric_clip = float(np.finfo(np.float32).max)
    #: An automm reading format 9 or older lacks this encoder.
    min_format_version = 10
    training_only_hyperparameters = ()

    def __init__(self, column_roles: Mapping[str, str], output_dim: int = 1, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 31, min_samples_leaf: int = 20, l2_regularization: float = 1.0,
                 max_iter: int = 500, max_categories: int = MAX_TREE_CATEGORIES):
        super().__init__(column_roles, output_dim=output_dim,
                         max_categories=_max_categories(max_categories),
                         category_dropout=0.0)
        self.learning_rate = _positive_number("learning_rate", learning_rate)
        self.max_leaf_nodes = whole_at_least_one("max_leaf_nodes", max_leaf_nodes, 2)
        self.min_samples_leaf = whole_at_least_one("min_samples_leaf", min_samples_leaf)
        self.l2_regularization = _positive_number("l2_regularization", l2_regularization, zero=True)
        self.max_iter = whole_at_least_one("max_iter", max_iter)
        self.set_trees(None)
        self.register_buffer("bin_edges", torch.zeros(0, MAX_BINS - 1))
        self.register_buffer("binned", torch.zeros(0, dtype=torch.bool))

    # -- preprocessing: tabular's, without its layers ---------------------------------------
    def _build_layers(self) -> None:
        """No layers: the trees come from :meth:`set_trees` (or the saved weights)."""

    def _require_fitted(self) -> None:
        if self.categories is None:
            raise RuntimeError("BoostedTreesEncoder is not fitted: call fit(rows) or set_state(state) first")

    @property
    def categorical_mask(self) -> np.ndarray:
        """Which of :meth:`tree_inputs`' columns are category indices (the numbers come first)."""
        return np.array([False] * len(self.numeric_features) + [True] * len(self.categorical_features))

    def fit_bins(self, batch: Mapping[str, torch.Tensor]) -> None:
        """Learn the numbers' bins from the training rows' ``batch`` (as :meth:`preprocess_batch`
        makes it): a column of more than :data:`MAX_BINS` distinct values is read as its bin's
        index among the quantiles scikit-learn would take unweighted (scikit-learn weighs them by
        the sample weights, a percentile at a time: 38 s for 197 columns of 1,000 rows), the
        others as they are; with that, the trees read what they were grown on."""
        numeric = batch["numeric"].float().masked_fill(batch["numeric_missing"].bool(), math.nan).numpy()
        edges = np.full((numeric.shape[1], MAX_BINS - 1), np.inf, dtype=np.float32)
        binned = np.zeros(numeric.shape[1], dtype=bool)
        quantiles = np.linspace(0, 100, MAX_BINS + 1)[1:-1]
        for j, column in enumerate(numeric.T):
            column = column[~np.isnan(column)]
            if len(np.unique(column)) > MAX_BINS:
                found = np.unique(np.percentile(column, quantiles, method="averaged_inverted_cdf").astype(np.float32))
                edges[j, :len(found)] = found
                binned[j] = True
        device = self.bin_edges.device
        self.bin_edges, self.binned = torch.as_tensor(edges).to(device), torch.as_tensor(binned).to(device)

    def tree_inputs(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """What the trees read of a batch (as :meth:`preprocess_batch` makes it): each scaled number
        (or its bin's index, :meth:`fit_bins`), NaN where missing, then each category's index, as
        float32 (rows, columns)."""
        numeric = batch["numeric"].float().masked_fill(batch["numeric_missing"].bool(), math.nan)
        if bool(self.binned.any()):
            index = torch.searchsorted(self.bin_edges.to(numeric.device), numeric.t().contiguous()).t().float()
            numeric = torch.where(self.binned.to(numeric.device) & ~torch.isnan(numeric), index, numeric)
        return torch.cat([numeric, batch["categorical"].float()], dim=1)

    # -- the trees --------------------------------------------------------------------------
    @property
    def n_trees(self) -> int:
        return int(self.tree_root.shape[0])

    def set_trees(self, trees: Mapping[str, np.ndarray] | None) -> None:
        """Hold ``trees`` (the arrays :func:`automm.boosting.trees_of` gives, named as
        :data:`TREE_BUFFERS`), or none (the output is then 0)."""
        empty = {name: np.zeros((0, _CATEGORY_SLOTS) if name == "category_left" else 0, dtype)
                 for name, dtype in TREE_BUFFERS.items()}
        trees = empty if trees is None else trees
        device = self.tree_root.device if hasattr(self, "tree_root") else torch.device("cpu")
        for name in TREE_BUFFERS:
            value = torch.as_tensor(np.ascontiguousarray(trees[name], dtype=empty[name].dtype)).to(device)
            if name in self._buffers:
                setattr(self, name, value)
            else:
                self.register_buffer(name, value)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in (*TREE_BUFFERS, *BIN_BUFFERS):  # the saved trees decide the buffers' lengths
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self._require_fitted()
        return self.trees_output(self.tree_inputs(batch))

    def trees_output(self, x: torch.Tensor) -> torch.Tensor:
        """The trees' summed leaf values (rows, ``output_dim``) of :meth:`tree_inputs` ``x``, the
        rows taken :data:`ROWS_TIMES_TREES` row-tree pairs at a time (each level's indices of every
        row in every tree: 500 iterations of 30 classes on 4,096 rows took 0.5 GB a tensor)."""
        step = max(1, ROWS_TIMES_TREES // max(1, self.n_trees))
        if x.shape[0] > step:
            return torch.cat([self.trees_output(x[start:start + step]) for start in range(0, x.shape[0], step)])
        rows = x.shape[0]
        out = torch.zeros(rows, self.output_dim, dtype=torch.float32, device=x.device)
        if not self.n_trees:
            return out
        # each node's two children side by side, a leaf its own: a (row, tree) pair at a leaf stays
        # there, so LEAF_CHECK levels are followed between two looks at which pairs arrived (those
        # then leave the pairs still followed)
        index = torch.arange(len(self.node_leaf), device=x.device)
        children = torch.stack([torch.where(self.node_leaf, index, self.node_left),
                                torch.where(self.node_leaf, index, self.node_right)], dim=1).reshape(-1)
        n_columns = x.shape[1]
        flat_x = x.reshape(-1)
        categorical = bool(self.category_left.shape[0])
        flat_categories = (torch.nan_to_num(flat_x, nan=0.0).clamp(0, _CATEGORY_SLOTS - 1).long() if categorical
                           else None)
        missing = bool(torch.isnan(x).any())
        reached = self.tree_root.repeat(rows)  # each pair's node, row by row
        pairs = torch.arange(reached.shape[0], device=x.device)  # the pairs still followed
        node, first_cell = reached, pairs // self.n_trees * n_columns  # (their row's first cell in flat_x)
        while pairs.shape[0]:
            for _ in range(LEAF_CHECK):
                cell = first_cell + self.node_feature[node]
                value = flat_x[cell]
                left = value <= self.node_threshold[node]
                if categorical:  # a categorical split: the category's side, from its table
                    left = torch.where(self.node_categorical[node],
                                       self.category_left[self.node_category_row[node], flat_categories[cell]], left)
                if missing:
                    left = torch.where(torch.isnan(value), self.node_missing_left[node], left)
                node = children[2 * node + (~left).long()]
            arrived = self.node_leaf[node]
            reached[pairs[arrived]] = node[arrived]
            going = ~arrived
            pairs, node, first_cell = pairs[going], node[going], first_cell[going]
        node = reached.view(rows, self.n_trees)
        return out.index_add_(1, self.tree_output, self.node_value[node])


def boosted_trees_search_space(trial: Any, prefix: str) -> dict:
    """Optuna search space for ``boosted_trees`` (when a search is given it by name)."""
    return {
        "learning_rate": trial.suggest_float(f"{prefix}learning_rate", 0.03, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_categorical(f"{prefix}max_leaf_nodes", [7, 15, 31, 63]),
        "min_samples_leaf": trial.suggest_categorical(f"{prefix}min_samples_leaf", [5, 10, 20, 40]),
        "l2_regularization": trial.suggest_float(f"{prefix}l2_regularization", 1e-3, 10.0, log=True),
    }


_BOOSTED_TREES_DEFAULTS = {"output_dim": 1, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                           "l2_regularization": 1.0, "max_iter": 500, "max_categories": MAX_TREE_CATEGORIES}


@hookimpl
def automm_register_encoders(register: Callable[..., None]) -> None:
    """Register the ``boosted_trees`` encoder (the core passes ``column_roles``)."""
    register("boosted_trees", BoostedTreesEncoder, modality="tabular", output_dim=lambda hp: int(hp["output_dim"]),
             defaults=dict(_BOOSTED_TREES_DEFAULTS), search_space=boosted_trees_search_space, tags=("manual",),
             description="Gradient-boosted decision trees over the table columns (scikit-learn's histogram "
                         "boosting, categories split natively), grown by the search's boosted model.")
