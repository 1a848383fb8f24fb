"""Built-in fusions: ``concat`` (the default), ``compare`` (``concat`` plus a comparison of two
inputs of one modality, for matching tasks; searched only on data with such inputs),
``attention``, ``gated`` and ``late``; ``sum`` (the search's linear model) and ``neighbors`` (its
nearest-neighbour model) are only used when named.

Every fusion is built as ``factory(input_dims, n_outputs, **hyperparameters)`` and called
as ``fusion(embeddings, masks)`` with ``{name: (B, D)}`` embeddings and ``{name: (B,)}``
boolean masks (True where the sample has that input). Inputs are always handled in
``sorted(name)`` order. A missing input's embedding is replaced by zeros *before* any layer
touches it, so its values (even NaN) never influence the output, and a sample that lacks
every input still gets a finite output.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from automm.components.base import COMPARED_FORMAT_VERSION, Fusion, whole_at_least_one
from automm.hookspecs import hookimpl
from automm.exceptions import InputError

__all__ = [
    "ConcatFusion",
    "CompareFusion",
    "AttentionFusion",
    "GatedFusion",
    "LateFusion",
    "SumFusion",
    "NeighborsFusion",
    "concat_search_space",
    "compared_pairs",
    "input_modality",
    "attention_search_space",
    "gated_search_space",
    "late_search_space",
    "automm_register_fusions",
]


# -- shared helpers ----------------------------------------------------------------------

def _sorted_input_names(input_dims: Mapping[str, int]) -> list[str]:
    if not input_dims:
        raise ValueError("a fusion needs at least one input; input_dims is empty")
    for name, dim in input_dims.items():
        if int(dim) <= 0:
            raise ValueError(f"input {name!r} has invalid embedding width {dim!r}")
    return sorted(input_dims)


def _presence(masks: Mapping[str, torch.Tensor], name: str, embedding: torch.Tensor) -> torch.Tensor:
    """The (B,) bool presence mask of ``name``; all present when ``masks`` lacks it."""
    mask = masks.get(name)
    if mask is None:
        return torch.ones(embedding.shape[0], dtype=torch.bool, device=embedding.device)
    return mask.to(device=embedding.device, dtype=torch.bool).reshape(embedding.shape[0])


def _zero_missing(values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """``values`` (B, ...) with the rows of missing samples replaced by zeros."""
    shape = (present.shape[0],) + (1,) * (values.dim() - 1)
    return torch.where(present.reshape(shape), values, torch.zeros((), dtype=values.dtype, device=values.device))


def _masked_softmax(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 restricted to present entries; rows with nothing present give zeros."""
    any_present = present.any(dim=1, keepdim=True)
    filled = logits.masked_fill(~present, float("-inf"))
    filled = torch.where(any_present, filled, torch.zeros_like(filled))
    return torch.softmax(filled, dim=1) * present.to(logits.dtype)


class _MaskedInputsFusion(Fusion):
    """Base for fusions that normalise each input with its own LayerNorm."""

    def __init__(self, input_dims: Mapping[str, int]):
        super().__init__()
        self.input_names = _sorted_input_names(input_dims)
        self.input_dims = {name: int(input_dims[name]) for name in self.input_names}
        # ModuleList (not ModuleDict): input names may contain '.', which ModuleDict rejects.
        self.input_norms = nn.ModuleList(nn.LayerNorm(self.input_dims[name]) for name in self.input_names)

    def _normalised_inputs(self, embeddings: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
                           ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per input: LayerNorm of the embedding, zeroed where missing; plus the (B, K) presence."""
        missing = [name for name in self.input_names if name not in embeddings]
        if missing:
            raise KeyError(f"{type(self).__name__} expects embeddings for inputs {self.input_names}; "
                           f"missing {missing}")
        normalised, presence = [], []
        for name, norm in zip(self.input_names, self.input_norms):
            embedding = embeddings[name]
            present = _presence(masks, name, embedding)
            normalised.append(_zero_missing(norm(_zero_missing(embedding, present)), present))
            presence.append(present)
        return normalised, torch.stack(presence, dim=1)


# -- concat ------------------------------------------------------------------------------

class ConcatFusion(_MaskedInputsFusion):
    """Per input LayerNorm + Linear to ``proj_dim`` (zeroed where missing) and a 1-dim
    "present" flag, all concatenated and passed through ``n_layers`` GELU layers of width
    ``hidden_dim``. ``output_dim`` is ``hidden_dim``, or the concatenation's width when
    ``n_layers == 0``."""

    defaults = {"proj_dim": 128, "hidden_dim": 256, "n_layers": 1, "dropout": 0.1}

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, proj_dim: int = 128,
                 hidden_dim: int = 256, n_layers: int = 1, dropout: float = 0.1):
        super().__init__(input_dims)
        proj_dim, hidden_dim = whole_at_least_one("proj_dim", proj_dim), whole_at_least_one("hidden_dim", hidden_dim)
        n_layers = whole_at_least_one("n_layers", n_layers, least=0)  # 0: the concatenation itself
        self.projections = nn.ModuleList(nn.Linear(self.input_dims[name], proj_dim) for name in self.input_names)
        self.mlp, self.output_dim = _mlp(len(self.input_names) * (proj_dim + 1) + self._extra_width(proj_dim),
                                         hidden_dim, n_layers, dropout)

    def _extra_width(self, proj_dim: int) -> int:
        """The width of what a subclass adds to the concatenation (:meth:`_extra_parts`)."""
        return 0

    def _extra_parts(self, embeddings: Mapping[str, torch.Tensor], presence: torch.Tensor) -> list[torch.Tensor]:
        """What a subclass adds to the concatenation, from the embeddings and the (B, K) presence."""
        return []

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        normalised, presence = self._normalised_inputs(embeddings, masks)
        parts = []
        for index, (values, projection) in enumerate(zip(normalised, self.projections)):
            present = presence[:, index]
            parts.append(_zero_missing(projection(values), present))
            parts.append(present.to(parts[-1].dtype).unsqueeze(1))
        parts += self._extra_parts(embeddings, presence)
        return self.mlp(torch.cat(parts, dim=1))


def _mlp(width: int, hidden_dim: int, n_layers: int, dropout: float) -> tuple[nn.Sequential, int]:
    """``n_layers`` GELU layers of width ``hidden_dim`` on ``width`` inputs, and the output width."""
    layers: list[nn.Module] = []
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        width = hidden_dim
    return nn.Sequential(*layers), width


def concat_search_space(trial: Any, prefix: str) -> dict:
    return {
        "proj_dim": trial.suggest_categorical(f"{prefix}proj_dim", [32, 64, 128]),
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [64, 128, 256]),
        "n_layers": trial.suggest_int(f"{prefix}n_layers", 0, 2),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


# -- compare -----------------------------------------------------------------------------

def input_modality(name: str) -> str:
    """The modality of an input named ``<modality>_<k>`` (``text_1``: ``text``); the name itself
    otherwise (``tabular``, whose columns share one input)."""
    head, _, index = name.rpartition("_")
    return head if head and index.isdigit() else name


def compared_pairs(input_dims: Mapping[str, int]) -> list[tuple[str, str]]:
    """Every pair of inputs of one modality whose embeddings are equally wide (``text_0`` and
    ``text_1`` from two title columns), in sorted order: what :class:`CompareFusion` compares."""
    names = _sorted_input_names(input_dims)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if input_modality(a) == input_modality(b) and int(input_dims[a]) == int(input_dims[b])]


class CompareFusion(ConcatFusion):
    """``concat`` plus a comparison of each pair of inputs of one modality whose encoders give
    equally wide embeddings (:func:`compared_pairs`: two titles, two photos), as matching models
    compare two items ("are these the same product?"): both embeddings normalised by one
    LayerNorm of their modality and width, then ``|a - b|`` and ``a * b`` side by side, through
    a Linear to ``proj_dim`` (zeroed where either input is missing) with a flag for "both
    present", concatenated with ``concat``'s parts before its GELU layers. The comparison is
    symmetric, so it does not matter which column holds which item. Frozen pretrained encoders
    embed both columns with one network; from-scratch encoders of one choice are one module too
    (``shared_encoders``, :func:`automm.pipeline.with_shared_encoders`).
    Inputs without such a partner are fused as ``concat`` fuses them, and with no pair at all
    this is ``concat``. The search tries it when the data have two inputs of one modality."""

    defaults = dict(ConcatFusion.defaults)

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, proj_dim: int = 128,
                 hidden_dim: int = 256, n_layers: int = 1, dropout: float = 0.1):
        super().__init__(input_dims, n_outputs, proj_dim=proj_dim, hidden_dim=hidden_dim, n_layers=n_layers,
                         dropout=dropout)
        names, dims = self.input_names, self.input_dims
        pairs = compared_pairs(dims)
        #: the pairs compared, as positions in ``input_names``
        self.pairs = [(names.index(a), names.index(b)) for a, b in pairs]
        groups = sorted({(input_modality(a), dims[a]) for a, _ in pairs})
        #: one normalisation per modality and width, shared by the inputs compared
        self.pair_norms = nn.ModuleList(nn.LayerNorm(width) for _, width in groups)
        self.pair_groups = [groups.index((input_modality(a), dims[a])) for a, _ in pairs]
        self.pair_projections = nn.ModuleList(nn.Linear(2 * dims[a], int(proj_dim)) for a, _ in pairs)

    def _extra_width(self, proj_dim: int) -> int:
        return len(compared_pairs(self.input_dims)) * (int(proj_dim) + 1)

    def _extra_parts(self, embeddings: Mapping[str, torch.Tensor], presence: torch.Tensor) -> list[torch.Tensor]:
        parts = []
        for (a, b), group, projection in zip(self.pairs, self.pair_groups, self.pair_projections):
            both = presence[:, a] & presence[:, b]
            norm = self.pair_norms[group]
            left = norm(_zero_missing(embeddings[self.input_names[a]], both))
            right = norm(_zero_missing(embeddings[self.input_names[b]], both))
            compared = projection(torch.cat([(left - right).abs(), left * right], dim=1))
            parts.append(_zero_missing(compared, both))
            parts.append(both.to(compared.dtype).unsqueeze(1))
        return parts


# -- attention ---------------------------------------------------------------------------

class AttentionFusion(_MaskedInputsFusion):
    """Each input becomes one token (LayerNorm + Linear to ``d_model`` + a learned input
    embedding); a learned [CLS] token attends over the present tokens through ``n_layers``
    pre-norm Transformer encoder layers. Output: the final (normalised) CLS state."""

    defaults = {"d_model": 64, "n_heads": 4, "n_layers": 1, "ff_multiplier": 2, "dropout": 0.1}

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 1, ff_multiplier: int = 2, dropout: float = 0.1):
        super().__init__(input_dims)
        d_model, n_heads = whole_at_least_one("d_model", d_model), whole_at_least_one("n_heads", n_heads)
        n_layers, ff_multiplier = whole_at_least_one("n_layers", n_layers), whole_at_least_one("ff_multiplier",
                                                                                            ff_multiplier)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.projections = nn.ModuleList(nn.Linear(self.input_dims[name], d_model) for name in self.input_names)
        self.input_embeddings = nn.Parameter(torch.randn(len(self.input_names), d_model) * 0.02)
        self.cls_token = nn.Parameter(torch.randn(d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=ff_multiplier * d_model,
                                           dropout=dropout, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(d_model)
        self.output_dim = d_model

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        normalised, presence = self._normalised_inputs(embeddings, masks)
        tokens = [projection(values) for values, projection in zip(normalised, self.projections)]
        tokens = torch.stack(tokens, dim=1) + self.input_embeddings.to(tokens[0].dtype)
        tokens = torch.where(presence.unsqueeze(2), tokens, torch.zeros((), dtype=tokens.dtype, device=tokens.device))
        batch_size = tokens.shape[0]
        cls = self.cls_token.to(tokens.dtype).expand(batch_size, 1, -1)
        sequence = torch.cat([cls, tokens], dim=1)
        cls_is_never_masked = torch.zeros(batch_size, 1, dtype=torch.bool, device=presence.device)
        padding_mask = torch.cat([cls_is_never_masked, ~presence], dim=1)
        encoded = self.encoder(sequence, src_key_padding_mask=padding_mask)
        return self.output_norm(encoded[:, 0])


def attention_search_space(trial: Any, prefix: str) -> dict:
    return {
        "d_model": trial.suggest_categorical(f"{prefix}d_model", [32, 64, 128]),
        "n_heads": trial.suggest_categorical(f"{prefix}n_heads", [2, 4]),
        "n_layers": trial.suggest_int(f"{prefix}n_layers", 1, 2),
        "ff_multiplier": trial.suggest_categorical(f"{prefix}ff_multiplier", [2, 4]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


# -- gated -------------------------------------------------------------------------------

class GatedFusion(_MaskedInputsFusion):
    """Gated multimodal unit: ``h_i = tanh(W_i LN(x_i))`` (width ``hidden_dim``) and gate
    weights ``z = masked_softmax(G [LN(x_1), ..., LN(x_K), present flags])`` over the
    present inputs; output ``sum_i z_i h_i`` (zeros when every input is missing)."""

    defaults = {"hidden_dim": 128, "dropout": 0.1}

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, hidden_dim: int = 128,
                 dropout: float = 0.1):
        super().__init__(input_dims)
        hidden_dim = whole_at_least_one("hidden_dim", hidden_dim)
        self.transforms = nn.ModuleList(nn.Linear(self.input_dims[name], hidden_dim) for name in self.input_names)
        gate_width = sum(self.input_dims.values()) + len(self.input_names)
        self.gate = nn.Linear(gate_width, len(self.input_names))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = hidden_dim

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        normalised, presence = self._normalised_inputs(embeddings, masks)
        hidden = torch.stack([torch.tanh(transform(values)) for values, transform in zip(normalised, self.transforms)],
                             dim=1)
        gate_input = torch.cat(normalised + [presence.to(normalised[0].dtype)], dim=1)
        weights = _masked_softmax(self.gate(gate_input), presence)
        return (weights.unsqueeze(2) * self.dropout(hidden)).sum(dim=1)


def gated_search_space(trial: Any, prefix: str) -> dict:
    return {
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


# -- late --------------------------------------------------------------------------------

class LateFusion(_MaskedInputsFusion):
    """One prediction head per input (LayerNorm → Linear(``hidden_dim``) → GELU → dropout →
    Linear(n_outputs)) averaged with learned per-input weights (softmax over the present
    inputs). Produces predictions itself: ``produces_outputs = True``,
    ``output_dim = n_outputs``; zeros when every input is missing."""

    defaults = {"hidden_dim": 64, "dropout": 0.1}
    produces_outputs = True

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, hidden_dim: int = 64, dropout: float = 0.1):
        super().__init__(input_dims)
        if int(n_outputs) < 1:
            raise ValueError(f"late fusion needs n_outputs >= 1, got {n_outputs}")
        hidden_dim = whole_at_least_one("hidden_dim", hidden_dim)
        # The LayerNorm of each head is ``input_norms`` from the base class.
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(self.input_dims[name], hidden_dim), nn.GELU(), nn.Dropout(dropout),
                          nn.Linear(hidden_dim, int(n_outputs)))
            for name in self.input_names)
        self.input_weight_logits = nn.Parameter(torch.zeros(len(self.input_names)))
        self.output_dim = int(n_outputs)

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        normalised, presence = self._normalised_inputs(embeddings, masks)
        outputs = torch.stack([head(values) for values, head in zip(normalised, self.heads)], dim=1)
        logits = self.input_weight_logits.to(outputs.dtype).expand(presence.shape[0], -1)
        weights = _masked_softmax(logits, presence)
        return (weights.unsqueeze(2) * outputs).sum(dim=1)


def late_search_space(trial: Any, prefix: str) -> dict:
    return {
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [32, 64, 128]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.3),
    }


# -- sum ---------------------------------------------------------------------------------

class SumFusion(Fusion):
    """The sum of the present inputs' embeddings, each ``n_outputs`` wide, plus a bias: the
    encoders' outputs are already predictions (logits), as with ``hashed_ngram`` in its
    ``linear`` form, and the whole model stays linear. No normalisation, no hidden layer.
    ``produces_outputs = True``; the bias alone when every input is missing. Tagged
    ``"manual"``: a search tries it only when it is named (the search's linear model uses it).

    ``compared``: pairs ``[a, b]`` of inputs whose embeddings carry, after their ``n_outputs``
    logits, features of one width (an encoder stack's compared parts, see
    :mod:`automm.components.stack`): each pair adds ``[|fa - fb|, fa * fb] @ W`` for the rows
    that have both, ``W`` (2 x the features' width, ``n_outputs``) starting at zero and fitted by
    the search's linear model (:meth:`set_pair_weight`): a linear model that compares two
    titles or two photos, as a matching task needs."""

    defaults: dict = {}
    produces_outputs = True

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, compared: Any = ()):
        super().__init__()
        self.input_names = _sorted_input_names(input_dims)
        self.output_dim = int(n_outputs)
        #: the compared pairs of input names, in the order given
        self.compared = _checked_pairs(compared, self.input_names)
        in_pairs = {name for pair in self.compared for name in pair}
        wrong = {name: int(dim) for name, dim in input_dims.items()
                 if name not in in_pairs and int(dim) != self.output_dim}
        if wrong:
            raise InputError(f"fusion: 'sum' adds its inputs, so each must be as wide as the outputs ({n_outputs}), "
                             f"got {wrong}: it is the fusion of encoders in their linear form (linear=True, "
                             f"output_dim={n_outputs}), as the search's linear model uses them; with these encoders "
                             "use another fusion, e.g. 'concat'")
        widths = []
        for a, b in self.compared:
            width_a, width_b = int(input_dims[a]) - self.output_dim, int(input_dims[b]) - self.output_dim
            if width_a < 1 or width_a != width_b:
                raise InputError(f"fusion: 'sum' compares {a!r} and {b!r}, so each must be as wide as the outputs "
                                 f"({n_outputs}) plus features of one width; got widths {int(input_dims[a])} and "
                                 f"{int(input_dims[b])}: it is the fusion of the search's linear model, whose encoder "
                                 "stacks of compared inputs give those features")
            widths.append(width_a)
        self.bias = nn.Parameter(torch.zeros(self.output_dim))
        #: each pair's weight on ``[|fa - fb|, fa * fb]``
        self.pair_weights = nn.ParameterList(nn.Parameter(torch.zeros(2 * w, self.output_dim)) for w in widths)

    @property
    def min_format_version(self) -> int:
        """:data:`COMPARED_FORMAT_VERSION` when it compares pairs (an older reader cannot build it); else 1."""
        return COMPARED_FORMAT_VERSION if self.compared else 1

    def set_pair_weight(self, index: int, weight: torch.Tensor) -> None:
        """Set the weight of pair ``index`` of ``compared``: (2 x features, ``n_outputs``), the
        rows on ``|fa - fb|`` first, then those on ``fa * fb``."""
        with torch.no_grad():
            self.pair_weights[index].copy_(weight)

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        k = self.output_dim
        total = self.bias.expand(next(iter(embeddings.values())).shape[0], -1)
        for name in self.input_names:
            values = embeddings[name]
            total = total + _zero_missing(values[:, :k].to(total.dtype), _presence(masks, name, values))
        for (a, b), weight in zip(self.compared, self.pair_weights):
            left, right = embeddings[a][:, k:].to(total.dtype), embeddings[b][:, k:].to(total.dtype)
            both = _presence(masks, a, left) & _presence(masks, b, right)
            compared = torch.cat([(left - right).abs(), left * right], dim=1) @ weight.to(total.dtype)
            total = total + _zero_missing(compared, both)
        return total


def _checked_pairs(compared: Any, names: list[str]) -> list[tuple[str, str]]:
    """``compared`` as a list of pairs of distinct input names among ``names`` (an InputError naming it
    otherwise)."""
    def is_pair(pair: Any) -> bool:
        return (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(n, str) for n in pair)
                and pair[0] != pair[1] and all(n in names for n in pair))

    if isinstance(compared, (str, bytes)) or not isinstance(compared, (list, tuple)) \
            or not all(is_pair(pair) for pair in compared):
        raise InputError(f"fusion: 'sum''s compared must be a list of pairs of distinct inputs among {names}; "
                         f"got {compared!r}")
    return [(str(a), str(b)) for a, b in compared]


# -- neighbors ---------------------------------------------------------------------------

class NeighborsFusion(Fusion):
    """k nearest neighbours among remembered rows: the search's nearest-neighbour model over
    frozen pretrained embeddings (:mod:`automm.neighbors`). ``produces_outputs = True``.

    Built empty; :meth:`remember` stores the reference rows as buffers (so the saved model
    carries them): each input's embedding standardised on those rows, scaled to unit norm
    (zero where the input is missing) and divided by ``sqrt(number of inputs)``, concatenated,
    in float16, with the rows' targets. The similarity of two rows is then the mean over
    inputs of the cosine of their standardised embeddings. A row's ``k`` most similar
    reference rows vote with weights ``exp(temperature * (similarity - the nearest's))``, each
    times the row's sample weight when the rows were remembered with weights.
    Classification: the log of the normalised votes, each class floored at ``SMOOTHING /
    n_classes``; regression (``regression=True``, one output; by default when ``n_outputs`` is 1):
    the weighted mean target. Trained by :func:`automm.neighbors.train_neighbors`, which
    remembers the rows (a configuration naming this fusion needs no gradient steps).
    Tagged ``"manual"``: a search never samples it."""

    defaults: dict = {"k": 10, "temperature": 20.0, "regression": None}
    produces_outputs = True

    #: An automm reading format 6 or older may predate the prior vote of rows without any input
    #: (:meth:`without_inputs`): it would read them as voting the first remembered rows, so refuses.
    min_format_version = 7
    #: The share of probability spread evenly over the classes (no class gets log(0)).
    SMOOTHING = 0.01
    #: Reference rows compared at once (bounds the similarity matrix's memory).
    CHUNK = 4096

    def __init__(self, input_dims: Mapping[str, int], n_outputs: int, k: int = 10, temperature: float = 20.0,
                 regression: bool | None = None):
        super().__init__()
        self.input_names = _sorted_input_names(input_dims)
        self.widths = [int(input_dims[name]) for name in self.input_names]
        if isinstance(k, bool) or int(k) != k or int(k) < 1:
            raise ValueError(f"neighbors fusion: k must be a positive integer, got {k!r}")
        if not float(temperature) > 0:
            raise ValueError(f"neighbors fusion: temperature must be positive, got {temperature!r}")
        if regression is None:  # automm gives classification one output per class, regression one
            regression = int(n_outputs) == 1
        self.k, self.temperature, self.regression = int(k), float(temperature), bool(regression)
        if self.regression and int(n_outputs) != 1:
            raise ValueError(f"neighbors fusion: regression has one output, got n_outputs={n_outputs}")
        self.output_dim = int(n_outputs)
        width = sum(self.widths)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        self.register_buffer("bank", torch.zeros(0, width, dtype=torch.float16))
        self.register_buffer("bank_targets", torch.zeros(0))
        self.register_buffer("bank_weights", torch.zeros(0))  # empty: every row's vote counts once

    @property
    def n_remembered(self) -> int:
        return int(self.bank.shape[0])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before sample weights has no bank_weights: every row counts once
        state_dict.setdefault(prefix + "bank_weights", torch.zeros(0))
        for name in ("bank", "bank_targets", "bank_weights"):  # the saved rows decide the buffers' length
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _rows(self, embeddings: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        blocks, start = [], 0
        for name, width in zip(self.input_names, self.widths):
            values = embeddings[name].float()
            present = _presence(masks, name, values)
            values = (_zero_missing(values, present) - self.mean[start:start + width]) * self.scale[start:start + width]
            values = nn.functional.normalize(values, dim=1) * present.unsqueeze(1).to(values.dtype)
            blocks.append(values)
            start += width
        return torch.cat(blocks, dim=1) / len(self.input_names) ** 0.5

    @torch.no_grad()
    def remember(self, embeddings: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                 targets: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        """Keep these rows (``{name: (N, D)}`` embeddings, ``{name: (N,)}`` masks, ``(N,)``
        targets: class indices, or values for regression; ``(N,)`` positive sample weights that
        scale their votes, or None) as the reference rows, replacing any remembered before; the
        standardisation is fitted on them."""
        means, scales = [], []
        for name, width in zip(self.input_names, self.widths):
            values = embeddings[name].float()
            rows = values[_presence(masks, name, values)]
            if len(rows) > 1:
                std = rows.std(0, unbiased=False)
                means.append(rows.mean(0))
                scales.append(torch.where(std > 1e-6, 1.0 / std, torch.ones_like(std)))
            else:
                means.append(torch.zeros(width, device=values.device))
                scales.append(torch.ones(width, device=values.device))
        self.mean = torch.cat(means).to(self.mean.device)
        self.scale = torch.cat(scales).to(self.scale.device)
        self.bank = self._rows(embeddings, masks).to(self.bank.device, torch.float16)
        self.bank_targets = torch.as_tensor(targets, dtype=torch.float32).reshape(-1).to(self.bank.device)
        if len(self.bank_targets) != len(self.bank):
            raise ValueError(f"remember: {len(self.bank)} rows but {len(self.bank_targets)} targets")
        self.bank_weights = (torch.zeros(0) if weights is None
                             else torch.as_tensor(weights, dtype=torch.float32).reshape(-1)).to(self.bank.device)
        if weights is not None and len(self.bank_weights) != len(self.bank):
            raise ValueError(f"remember: {len(self.bank)} rows but {len(self.bank_weights)} weights")

    @torch.no_grad()
    def neighbours(self, embeddings: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The similarities and indices (each ``(B, k)``, most similar first) of each row's
        ``k`` nearest remembered rows (fewer when fewer are remembered)."""
        if not self.n_remembered:
            raise RuntimeError("neighbors fusion: no rows remembered; call remember() first")
        k = min(int(k), self.n_remembered)
        best_values = best_indices = None
        with torch.autocast(self.bank.device.type, enabled=False):  # similarities in float32, also under AMP
            queries = self._rows(embeddings, masks)
            for start in range(0, self.n_remembered, self.CHUNK):
                similarity = queries @ self.bank[start:start + self.CHUNK].float().t()
                values, indices = similarity.topk(min(k, similarity.shape[1]), dim=1)
                indices = indices + start
                if best_values is not None:
                    values, order = torch.cat([best_values, values], 1).topk(k, dim=1)
                    indices = torch.cat([best_indices, indices], 1).gather(1, order)
                best_values, best_indices = values, indices
        return best_values, best_indices

    def vote(self, similarities: torch.Tensor, indices: torch.Tensor, temperature: float) -> torch.Tensor:
        """The outputs (see the class documentation) from :meth:`neighbours`' result."""
        weights = torch.exp(float(temperature) * (similarities - similarities[:, :1]))
        if len(self.bank_weights):
            weights = weights * self.bank_weights[indices]
        targets = self.bank_targets[indices]
        if self.regression:
            return ((weights * targets).sum(1) / weights.sum(1)).unsqueeze(1)
        votes = torch.zeros(len(indices), self.output_dim, device=weights.device)
        votes.scatter_add_(1, targets.long(), weights)
        probabilities = votes / votes.sum(1, keepdim=True)
        return torch.log((1 - self.SMOOTHING) * probabilities + self.SMOOTHING / self.output_dim)

    def without_inputs(self, outputs: torch.Tensor, embeddings: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor], temperature: float) -> torch.Tensor:
        """``outputs`` with the rows that have none of the inputs voting as every remembered row
        does (they are equally similar to all of them: their "nearest" would be whichever rows
        topk returns first)."""
        present = torch.zeros(outputs.shape[0], dtype=torch.bool, device=outputs.device)
        for name in self.input_names:
            present |= _presence(masks, name, embeddings[name]).to(outputs.device)
        if bool(present.all()):
            return outputs
        everyone = torch.arange(self.n_remembered, device=self.bank.device).unsqueeze(0)
        flat = torch.zeros(1, self.n_remembered, device=self.bank.device)
        outputs = outputs.clone()
        outputs[~present] = self.vote(flat, everyone, temperature).to(outputs.device, outputs.dtype)
        return outputs

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        similarities, indices = self.neighbours(embeddings, masks, self.k)
        return self.without_inputs(self.vote(similarities, indices, self.temperature), embeddings, masks,
                                   self.temperature)


# -- registration ------------------------------------------------------------------------

@hookimpl
def automm_register_fusions(register):
    register("concat", ConcatFusion, defaults=dict(ConcatFusion.defaults), search_space=concat_search_space,
             description="Per-input LayerNorm + projection and presence flags, concatenated, then an MLP (default).")
    register("compare", CompareFusion, defaults=dict(CompareFusion.defaults), search_space=concat_search_space,
             tags=("pairs",),
             description="concat plus |a - b| and a * b of each pair of inputs of one modality and width (two titles, "
                         "two photos): for matching tasks. Searched when the data have two inputs of one modality.")
    register("attention", AttentionFusion, defaults=dict(AttentionFusion.defaults),
             search_space=attention_search_space,
             description="One token per input plus a [CLS] token through a Transformer encoder; missing inputs masked.")
    register("gated", GatedFusion, defaults=dict(GatedFusion.defaults), search_space=gated_search_space,
             description="Gated multimodal unit: softmax gates over present inputs weight tanh projections.")
    register("late", LateFusion, defaults=dict(LateFusion.defaults), search_space=late_search_space,
             description="Late fusion: one prediction head per input, averaged with learned per-input weights.")
    register("sum", SumFusion, defaults=dict(SumFusion.defaults), search_space=None, tags=("manual",),
             description="The inputs' embeddings (each as wide as the outputs) summed with a bias: a linear model "
                         "over linear encoders. Searched only when named.")
    register("neighbors", NeighborsFusion, defaults=dict(NeighborsFusion.defaults), search_space=None,
             tags=("manual",),
             description="k nearest remembered rows by the mean cosine of the inputs' standardised embeddings, "
                         "voting (classification) or averaging (regression): the search's nearest-neighbour "
                         "model over frozen pretrained features. Searched only when named.")
