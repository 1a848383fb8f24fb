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
are buffers, saved with the model's weights as scikit-learn's nodes; at first use they are laid
out for prediction (:class:`_TreeLayout`, derived from the buffers, never saved) and evaluated in
torch, on any device, a level of many trees at a time. Tagged ``"manual"``: a search samples it
only when it is named.
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

#: The most (tree, row) pairs whose nodes are followed at once (see :meth:`BoostedTreesEncoder.trees_output`),
#: their indices in the cache: 20,000 rows x 400 trees of 31 leaves, one thread, 2^13 pairs 0.54 s,
#: 2^15 0.32-0.35 s, 2^17 0.29 s, 2^19 0.29-0.32 s.
ROWS_TIMES_TREES = 1 << 17

#: The most values in a block of rows as the trees read them (each number twice, each categorical
#: split's side of each row: see :class:`_TreeLayout`), 8 MB.
BLOCK_VALUES = 1 << 21

#: The most levels of each tree laid out as a complete binary tree (see :class:`_TreeLayout`).
MAX_COMPLETE_LEVELS = 6

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
        self._layout = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in (*TREE_BUFFERS, *BIN_BUFFERS):  # the saved trees decide the buffers' lengths
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        self._layout = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self._require_fitted()
        return self.trees_output(self.tree_inputs(batch))

    def trees_output(self, x: torch.Tensor) -> torch.Tensor:
        """The trees' summed leaf values (rows, ``output_dim``) of :meth:`tree_inputs` ``x``.

        A block of rows (:data:`BLOCK_VALUES`) is read once into the values the nodes compare,
        then the trees (:class:`_TreeLayout`) follow it a level at a time, :data:`ROWS_TIMES_TREES`
        (tree, row) pairs at once: per level, a few lookups and one comparison per pair, whatever
        the split's kind; where most pairs have reached a leaf, only the others go on. On 1,000 to
        100,000 rows x 50 columns (NaN, 10 categorical), 400-600 trees of 31 leaves, one thread:
        0.5-0.9x scikit-learn's time (``benchmarks/bench_trees.py``; level by level with a branch
        per kind of split: 3-7x)."""
        layout = self._tree_layout()
        if x.dim() != 2 or x.shape[1] < layout.n_columns:
            raise InputError(f"the trees read {layout.n_columns} columns (tree_inputs), got x of shape "
                             f"{tuple(x.shape)}")
        rows, device = x.shape[0], x.device
        out = torch.zeros(rows, self.output_dim, dtype=torch.float32, device=device)
        if not layout.depths or not rows:
            return out
        x = x.float()
        lowest = torch.nan_to_num(x, nan=-math.inf)
        width = 1 + layout.n_sides + 2 * x.shape[1]
        block_rows = max(1, min(rows, BLOCK_VALUES // width, ROWS_TIMES_TREES))
        step = max(1, ROWS_TIMES_TREES // block_rows)  # trees followed at once
        block_buffer = torch.empty(width * block_rows, device=device)
        buffers = _PairBuffers(min(step, len(layout.depths)) * block_rows, device)
        for start in range(0, rows, block_rows):
            r = min(block_rows, rows - start)
            block = block_buffer[:width * r].view(width, r)
            layout.read_block(block, x[start:start + r], lowest[start:start + r])
            cells = [(rows_read * r).int() for rows_read in layout.rows]  # (each slot's, node's first cell)
            rows_of_pairs = torch.arange(r, dtype=torch.int32, device=device).repeat(min(step, len(layout.depths)))
            summed = torch.zeros(self.output_dim, r, device=device)
            for first in range(0, len(layout.depths), step):
                last = min(len(layout.depths), first + step)
                reached = layout.leaves(block.view(-1), cells, first, last, rows_of_pairs[:(last - first) * r], buffers)
                summed.index_add_(0, layout.outputs[first:last], layout.value.index_select(0, reached).view(-1, r))
            out[start:start + r] = summed.t()
        return out

    def _tree_layout(self) -> "_TreeLayout":
        """The trees as :meth:`trees_output` follows them, derived from the buffers at first use
        (again after :meth:`set_trees`, loading weights or moving to another device)."""
        if self.__dict__.get("_layout") is None:  # (None too in an encoder pickled before it had one)
            self._layout = _TreeLayout({name: getattr(self, name) for name in TREE_BUFFERS})
        return self._layout

    def _apply(self, *args, **kwargs):
        self._layout = None  # (the buffers move)
        return super()._apply(*args, **kwargs)

    def __getstate__(self):
        return {**super().__getstate__(), "_layout": None}


class _PairBuffers:
    """Room for the indices, values and thresholds of ``size`` (tree, row) pairs, reused level after level."""

    def __init__(self, size: int, device: torch.device):
        self.node, self.index, self.left = (torch.empty(size, dtype=torch.int32, device=device) for _ in range(3))
        self.value, self.threshold = (torch.empty(size, device=device) for _ in range(2))

    def goes_left(self, block: torch.Tensor, cells: torch.Tensor, thresholds: torch.Tensor, node: torch.Tensor,
                  row: torch.Tensor) -> torch.Tensor:
        """1 where pair ``(node, row)``'s value in ``block`` is at most its node's threshold, else 0 (int32)."""
        n = len(node)
        index = torch.index_select(cells, 0, node, out=self.index[:n]).add_(row)
        return torch.le(torch.index_select(block, 0, index, out=self.value[:n]),
                        torch.index_select(thresholds, 0, node, out=self.threshold[:n]), out=self.left[:n])


class _TreeLayout:
    """The trees of :data:`TREE_BUFFERS` laid out for :meth:`BoostedTreesEncoder.trees_output`.

    A block of ``r`` rows is read as a (values, ``r``) matrix (:meth:`read_block`), a row of it
    per value a node compares: row 0 zeros; each categorical split's side of every row (0.0 left,
    1.0 right, from its table of the column's category indices, NaN the missing values' side); each
    number twice, NaN as -inf (for a split sending missing values left) and as NaN (right: NaN <= t
    is false). Every node goes left where its value is <= its threshold (a categorical split's
    0.5), so a split costs the same whatever its kind; a leaf reads row 0 against +inf.

    The trees are sorted by depth. Their first :data:`MAX_COMPLETE_LEVELS` levels at most, to
    where a balanced tree of as many leaves ends (``complete_levels``), are laid out as complete
    binary trees, level by level, tree after tree: slot ``s``'s children are ``2s + 1`` (left) and
    ``2s``, a leaf its own child, so no child is looked up; ``top_nodes`` maps a level's slots to
    the nodes. The nodes are numbered tree after tree, breadth-first, two children side by side: a
    node's next is its right child's number minus 1 where it goes left; a leaf's "right child" is
    its own number plus 1 (a pair stays there)."""

    def __init__(self, trees: Mapping[str, torch.Tensor]):
        device = trees["tree_root"].device
        trees = {name: value.cpu() for name, value in trees.items()}
        leaf, roots = trees["node_leaf"], trees["tree_root"]
        order, tree_of, level = _breadth_first(leaf, trees["node_left"], trees["node_right"], roots)
        depth = torch.zeros(len(roots), dtype=torch.long).scatter_reduce_(0, tree_of, level, "amax")
        by_depth = torch.sort(depth, stable=True).indices
        rank = torch.empty_like(by_depth)
        rank[by_depth] = torch.arange(len(by_depth))
        order = order[torch.sort(rank[tree_of], stable=True).indices]  # tree after tree, each breadth-first
        number = torch.empty_like(order)
        number[order] = torch.arange(len(order))
        leaf, column, missing_left = leaf[order], trees["node_feature"][order], trees["node_missing_left"][order]
        categorical = torch.nonzero(trees["node_categorical"][order] & ~leaf).view(-1)
        categorical = categorical[torch.sort(column[categorical], stable=True).indices]  # column by column
        row = 1 + len(categorical) + 2 * column + (~missing_left).long()
        row[categorical] = 1 + torch.arange(len(categorical))
        row[leaf] = 0
        threshold = trees["node_threshold"][order].clone()
        threshold[categorical] = 0.5
        threshold[leaf] = math.inf
        right = torch.where(leaf, torch.arange(len(order)) + 1, number[trees["node_right"][order]])
        self.sides = self._side_tables(column[categorical], torch.cat(
            [~trees["category_left"][trees["node_category_row"][order][categorical]], ~missing_left[categorical, None]],
            dim=1), device)
        leaves = float(leaf.sum()) / max(1, len(roots))
        self.complete_levels = min(MAX_COMPLETE_LEVELS, max(1, math.ceil(math.log2(max(1.0, leaves)))))
        slots, tops = number[roots[by_depth]], []
        for _ in range(self.complete_levels):
            tops.append(slots)
            inner = ~leaf[slots]
            slots = torch.stack([torch.where(inner, right[slots], slots), torch.where(inner, right[slots] - 1, slots)],
                                dim=1).reshape(-1)
        self.top_nodes = [nodes.int().to(device) for nodes in (*tops, slots)]
        self.rows = [row[nodes].int().to(device) for nodes in tops] + [row.int().to(device)]
        self.thresholds = [threshold[nodes].to(device) for nodes in tops] + [threshold.to(device)]
        self.right, self.inner = right.int().to(device), (~leaf).to(torch.uint8).to(device)
        self.value = trees["node_value"][order].to(device)
        self.outputs = trees["tree_output"][by_depth].to(device)
        self.depths = depth[by_depth].tolist()
        self.n_sides = len(categorical)
        self.n_columns = int(column[~leaf].max()) + 1 if bool((~leaf).any()) else 0

    @staticmethod
    def _side_tables(columns: torch.Tensor, goes_right: torch.Tensor, device) -> list[tuple[int, int, torch.Tensor]]:
        """(column, ``last``, table) per categorical column, the rows of ``goes_right`` (each of its
        categorical splits, ``columns`` sorted) cut to the category indices up to ``last`` (those from
        ``last`` on all go the same way, as indices the trees never saw) and NaN's side, as float32."""
        tables, first = [], 0
        for column, count in zip(*torch.unique_consecutive(columns, return_counts=True)):
            table = goes_right[first:first + int(count)]
            first += int(count)
            differs = torch.nonzero((table[:, :_CATEGORY_SLOTS] != table[:, _CATEGORY_SLOTS - 1, None]).any(0))
            last = int(differs.max()) + 1 if len(differs) else 0
            tables.append((int(column), last, torch.cat([table[:, :last + 1], table[:, -1:]], 1).float().to(device)))
        return tables

    def read_block(self, block: torch.Tensor, x: torch.Tensor, lowest: torch.Tensor) -> None:
        """Fill ``block`` (values, rows) with what the nodes compare of rows ``x`` (``lowest``: NaN as -inf)."""
        block[0] = 0.0
        first = 1
        for column, last, table in self.sides:
            slot = x[:, column].clamp(0, last).nan_to_num(nan=last + 1).long()
            torch.index_select(table, 1, slot, out=block[first:first + len(table)])
            first += len(table)
        numbers = block[first:].view(x.shape[1], 2, x.shape[0])
        numbers[:, 0] = lowest.t()
        numbers[:, 1] = x.t()

    def leaves(self, block: torch.Tensor, cells: list[torch.Tensor], first: int, last: int, row: torch.Tensor,
               buffers: _PairBuffers) -> torch.Tensor:
        """The leaf each pair of trees ``first`` to ``last`` (exclusive) and rows ``row`` reaches,
        tree after tree, in ``block`` (flat; ``cells``: :attr:`rows` times its rows)."""
        depth = self.depths[last - 1]
        slot = buffers.node[:len(row)]
        slot.view(last - first, -1).copy_(torch.arange(first, last, dtype=torch.int32, device=row.device)[:, None])
        top = min(depth, self.complete_levels)
        for level in range(top):
            torch.add(buffers.goes_left(block, cells[level], self.thresholds[level], slot, row), slot, alpha=2,
                      out=slot)
        node = reached = self.top_nodes[top].index_select(0, slot)
        kept = None
        if depth - top >= 2:  # most pairs are at a leaf: only the others go on
            kept = torch.nonzero(self.inner.index_select(0, node)).view(-1)
            node, row = node.index_select(0, kept), row.index_select(0, kept)
        for _ in range(top, depth):
            left = buffers.goes_left(block, cells[-1], self.thresholds[-1], node, row)
            torch.sub(torch.index_select(self.right, 0, node, out=buffers.index[:len(node)]), left, out=node)
        if kept is not None:
            reached.index_copy_(0, kept, node)
        return reached


def _breadth_first(leaf: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                   roots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every node reached from ``roots``, level by level, two children side by side: (the nodes,
    their tree's index, their level)."""
    nodes, trees = roots, torch.arange(len(roots))
    found = [(nodes, trees, torch.zeros_like(nodes))]
    level = 0
    while len(nodes):
        split = ~leaf[nodes]
        nodes = torch.stack([left[nodes[split]], right[nodes[split]]], dim=1).reshape(-1)
        trees, level = trees[split].repeat_interleave(2), level + 1
        found.append((nodes, trees, torch.full_like(nodes, level)))
    return tuple(torch.cat(part) for part in zip(*found))


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
