"""The interfaces every encoder, fusion and augmentation implements.

Data flow for one input (a column, or all tabular columns together)::

    [values] --encoder.prepare(values)--> (optional, once per input: e.g. cache features)
    raw value --encoder.preprocess(value, augment)--> sample (tensor or dict of tensors)
    [samples] --encoder.collate(samples)--> batch --encoder(batch)--> (B, output_dim)

``preprocess`` runs in DataLoader workers, so it must be cheap to call and must not
touch the network. ``fit`` learns preprocessing state (vocabularies, statistics) from
the training values and builds the layers that depend on it; ``get_state`` /
``set_state`` round-trip that state as JSON for :meth:`automm.AutoMM.save`. An encoder
whose prediction costs more than its module shows (a frozen network outside it, features
computed in ``prepare``) says so with ``external_parameters`` and ``prepare_seconds``.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from automm.exceptions import InputError

__all__ = ["Encoder", "Fusion", "Augmentation", "BatchAugmentation", "MISSING", "UNFAMILIAR_MIN_VALUES", "find_sorted",
           "take_rows", "collate_replaced", "whole_at_least_one", "true_or_false"]


def whole_at_least_one(name: str, value: Any, least: int = 1) -> int:
    """``value`` as an int, refused unless it is a whole number >= 1 (2.5 tokens is no length; a
    width of 0 reads nothing: silently a constant), or >= ``least`` where a smaller one means
    something (``least=0``: a hidden layer of width 0 is none)."""
    if (isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)) or value != value
            or value in (float("inf"), float("-inf")) or value != int(value) or value < least):  # (int(nan) raised)
        raise InputError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def true_or_false(name: str, value: Any) -> bool:
    """``value`` as a bool, refused unless it is one or the integer 0 or 1 (which a saved model, a
    recipe or an integer search range may hold): ``bool()`` reads any text as true, so a recipe's
    ``word_bigrams: "no"`` (or ``"false"``) turned them on."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise InputError(f"{name} must be true or false, got {value!r}")


class _Missing:
    """Marker for a sample that lacks this input (no image, empty text)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self):
        return (_Missing, ())


MISSING = _Missing()


def is_absent(value: Any) -> bool:
    """Whether a cell holds no value: None, :data:`MISSING`, NaN (float, numpy, pandas) or a value
    whose comparison is undefined (pandas.NA); a blank string is present (unlike
    :func:`automm.data.is_missing`)."""
    if value is None or value is MISSING:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


#: Fewer new values than this are not judged by :meth:`Encoder.unfamiliar_values` (a few rows of
#: unknown categories are normal; ``predict`` does not ask for fewer rows).
UNFAMILIAR_MIN_VALUES = 20
#: The saved-model format an automm needs to build the search's linear model that compares two
#: inputs (an encoder stack's ``compared`` parts, the ``sum`` fusion's ``compared`` pairs): an
#: automm reading format 8 or older has neither.
COMPARED_FORMAT_VERSION = 9


class Encoder(nn.Module):
    """Turns one input's raw values into a fixed-width embedding.

    Subclasses set ``modality`` and ``output_dim`` and implement ``preprocess`` and
    ``forward``; most also override ``fit`` (to learn a vocabulary) and ``collate``
    (to pad sequences). Hyperparameters are the constructor's keyword arguments.
    """

    modality: str = ""
    output_dim: int = 0
    #: True when the encoder holds pretrained weights that stay frozen: the core may
    #: then cache its outputs. Set by the encoder.
    frozen: bool = False
    #: True when ``preprocess(value)`` ignores ``augment`` and returns the same small sample
    #: for a value every time (e.g. a feature vector looked up in a cache): the core then calls
    #: it once per row and reuses that sample in every epoch. Set by the encoder.
    static_preprocess: bool = False
    #: True when ``preprocess(value)`` without ``augment`` returns the same small sample for a
    #: value every time (a table row's numbers and category ids, a text's token or n-gram ids):
    #: a training run whose inputs of this modality get no augmentation computes each row's
    #: sample once and reuses it in every epoch (up to :data:`automm.data.REUSED_SAMPLE_BYTES`).
    #: Unlike ``static_preprocess``, ``augment`` still applies when given. Set by the encoder.
    reusable_samples: bool = False
    #: The oldest model format (:data:`automm.persistence.FORMAT_VERSION`) whose reader predicts
    #: with this fitted encoder as it does: a saved model carries at least the highest of its
    #: encoders', so an automm that would fail on it or read it otherwise refuses it, naming the
    #: version. Set by a built-in encoder that is newer than format 1 or that preprocesses
    #: differently than an older automm would read its saved state (1: any reader).
    min_format_version: int = 1
    #: The hyperparameters that only training reads (a dropout rate of the inputs): left out of the
    #: configurations a saved model holds, so that an automm whose encoder lacks them loads it.
    training_only_hyperparameters: tuple[str, ...] = ()

    def fit(self, values: Sequence[Any]) -> "Encoder":
        """Learn preprocessing state from the training values (``MISSING`` included).

        What it finds worth a warning it may leave for the core, which says each once per fit
        (its folds and trials fit again), naming the column: ``truncated_share_``, the share of
        the present texts longer than ``max_length`` tokens (read to it only; over a tenth is
        warned about, with ``token_unit`` saying what a token is, when not a word or a
        punctuation mark), and ``fit_warnings_``, a list of messages (without the column's name)."""
        return self

    def prepare(self, values: Sequence[Any], *, cache_dir: str | None = None) -> None:
        """Optional: called by the core once with all values of this input (training and
        validation values before training, the new values before prediction), in the main
        process, before any DataLoader is built; ``fit`` has already run. Default: nothing.

        A frozen pretrained encoder overrides it to compute (or read from its feature
        cache under ``cache_dir``, ``None`` meaning its default place) the features of
        every value in batches, so that ``preprocess`` only looks them up.
        """

    def pending_share(self, values: Sequence[Any], *, cache_dir: str | None = None) -> float:
        """Optional: the share of ``values`` (as :meth:`prepare` gets them) whose one-off work
        :meth:`prepare` would still have to do, from 0.0 (none: the default) to 1.0; an estimate
        from a sample is enough. A frozen pretrained encoder answers the share of features not
        yet in its cache. Under a time limit the search runs its cheap models (linear,
        nearest-neighbour) first only when their encoders have nothing pending: computing every
        feature is not cheap.
        """
        return 0.0

    # -- optional costs of predicting new data (the search's "latency" and "params") -------
    # Both default to nothing, which is right for an encoder whose work is all in
    # ``preprocess`` and ``forward`` and whose weights are all its module's parameters: the
    # search measures and counts those itself. Every Encoder module of a model is asked (the
    # parts of a ``stack`` too), so report only your own costs, not those of encoders you hold.

    def external_parameters(self) -> Iterable[torch.Tensor]:
        """Optional: the weight tensors this encoder predicts with that are not its module's
        parameters, e.g. a frozen pretrained network shared by every instance in the process
        (default: none). The search's ``params`` objective counts them with the model's own,
        each tensor once however many encoders name it."""
        return ()

    def prepare_seconds(self, values: Sequence[Any]) -> float:
        """Optional: the seconds per value of ``values`` that :meth:`prepare` spends on values
        it has never seen (e.g. computing features no cache holds yet): the one-off work that
        predicting new data costs besides ``preprocess`` and ``forward`` (default: 0.0).
        Measure it on a few of ``values`` (``MISSING`` costs nothing) on
        :func:`automm.devices.compute_device`, neither reading nor writing a feature cache, and
        remember it: the search asks after each trial. Its ``latency`` objective adds it to the
        model's measured time per sample."""
        return 0.0

    def unfamiliar_values(self, values: Sequence[Any]) -> list[str]:
        """Optional: what in ``values`` (new data at prediction) is unlike anything ``fit`` saw,
        in messages naming the column, e.g. a categorical column whose values are mostly unknown
        categories (a renamed or re-cased upstream value): the core warns with each (default: none).
        An encoder of one column's values (a text's, an image's) leaves the column's name out: the
        core puts it first."""
        return []

    def preprocess(self, value: Any, augment: Callable[[Any], Any] | None = None) -> Any:
        """Turn one raw value (or ``MISSING``) into a sample; apply ``augment`` to the
        modality's natural representation (image tensor in [0, 1], token list) if given.
        Must return a placeholder of the usual shape for ``MISSING``."""
        raise NotImplementedError

    def preprocess_batch(self, values: Sequence[Any]) -> Any | None:
        """Optional, for an encoder with ``reusable_samples`` or ``static_preprocess`` and the
        default ``collate``: every value's sample at once, collated, equal to
        ``collate([preprocess(v) for v in values])`` (``MISSING`` included). Where its modality
        gets no augmentation, the core then preprocesses a whole column once per dataset (the
        training rows, a prediction's rows) and batches are taken from it, instead of a sample
        per row (the ``tabular`` encoder: each distinct category looked up once). Default:
        ``None``, row by row."""
        return None

    def collate(self, samples: list[Any]) -> Any:
        """Stack samples into a batch (default: ``torch.stack`` or per-key stack)."""
        return default_collate(samples)

    def select_rows(self, batch: Any, rows: torch.Tensor) -> Any:
        """The collated ``batch`` of only ``rows`` (a 1-D long tensor of ascending positions, on the
        batch's device), as ``collate`` would have made it of those samples. The model runs
        ``forward`` on the rows that have the input only (the rows lacking it are zeroed anyway), so
        that a batch of mostly missing images does not run the image network on blank placeholders.

        Default: the batch of the default ``collate`` (stacked tensors, in dicts), indexed by
        ``rows``; ``None`` for an encoder with its own ``collate``, which then runs on every row.
        Such an encoder whose every batch tensor holds one row per sample returns
        ``take_rows(batch, rows)``; one with another layout (flat ids and offsets) builds the batch
        of those rows. A row's output must not depend on the batch's other rows (in eval mode)."""
        if collate_replaced(self, Encoder):
            return None
        return take_rows(batch, rows)

    def empty_rows(self, batch: Any) -> torch.Tensor | None:
        """A (batch,) bool tensor, True for the rows of the collated ``batch`` whose value this
        encoder reads as nothing although it was given (a text of only words it never saw in fit);
        the model reads those rows as lacking the input, as it reads a missing value. Default:
        ``None``, every given value is read."""
        return None

    def get_state(self) -> dict:
        """JSON-serialisable preprocessing state learned by ``fit``."""
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore ``get_state()`` output and build the layers that depend on it."""

    def forward(self, batch: Any) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    # -- the optional linear form (encoders registered with the tag "linear") -------------
    # Constructed with ``linear=True`` and ``output_dim=k``, such an encoder's output is
    # ``linear_design(batch) @ W`` for a (features, k) weight ``W`` that starts at zero. The
    # search's linear model (:mod:`automm.linear`) sums these outputs over the inputs and
    # fits every ``W`` at once by regularised logistic (or ridge) regression.

    #: Linear form: the width of ``linear_design``'s matrix when it is fixed when the encoder is
    #: built (frozen pretrained features); None otherwise. The search's linear model compares such
    #: a form of two inputs of one modality (``|a - b|`` and ``a * b`` of their features, see
    #: :mod:`automm.linear`), as a matching task needs. Set by the encoder.
    linear_width: int | None = None

    def linear_design(self, batch: Any) -> torch.Tensor:
        """Linear form: the (rows, features) matrix of a collated batch that the linear
        weight multiplies, sparse (COO) or dense; the core zeroes the rows of missing
        values. Sparse features are used as they are; dense ones are standardised by the
        linear model's fit (and the standardisation folded back into the weight and bias)."""
        raise NotImplementedError(f"{type(self).__name__} has no linear form")

    def set_linear_weight(self, weight: torch.Tensor) -> None:
        """Linear form: set ``W`` (features, ``output_dim``), so that ``forward`` returns
        ``linear_design(batch) @ weight``."""
        raise NotImplementedError(f"{type(self).__name__} has no linear form")


def find_sorted(sorted_values: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each of ``values`` sits in the ascending, duplicate-free ``sorted_values``: its
    position, and whether it is there at all (a position of a missing value is meaningless)."""
    position = torch.searchsorted(sorted_values, values)
    found = position < len(sorted_values)
    found[found.clone()] = sorted_values[position[found]] == values[found]
    return position, found


def collate_replaced(encoder: Encoder, cls: type) -> bool:
    """Whether ``encoder``'s class replaced the ``collate`` of ``cls`` (a class it derives from):
    then its batches are not those ``cls``'s ``select_rows`` and ``empty_rows`` know, which
    leave them alone (``None``: every row run, every given value read)."""
    return type(encoder).collate is not cls.collate


def take_rows(batch: Any, rows: torch.Tensor) -> Any:
    """``rows`` of a batch whose every tensor (in nested dicts) holds one row per sample, as
    :func:`default_collate` makes it (see :meth:`Encoder.select_rows`)."""
    if isinstance(batch, torch.Tensor):
        return batch.index_select(0, rows.to(batch.device))
    if isinstance(batch, Mapping):
        return {key: take_rows(value, rows) for key, value in batch.items()}
    raise TypeError(f"cannot take rows of a batch of type {type(batch).__name__}")


def default_collate(samples: list[Any]) -> Any:
    first = samples[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(samples)
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (int, float)):
        return torch.tensor(samples)
    raise TypeError(f"cannot collate samples of type {type(first).__name__}")


class Fusion(nn.Module):
    """Combines one embedding per input into one vector per sample.

    Constructed as ``factory(input_dims, n_outputs, **hyperparameters)`` where ``input_dims``
    maps input name to embedding width. The inputs are whatever the data have, one or more:
    ``image_0``, ``text_0``, ... (one per image or text column), ``tabular`` (every table
    column), a plugin modality's ``audio_0``; read their names from ``input_dims``. ``__init__``
    sets ``self.output_dim`` to the width ``forward`` returns (the head is built on it).

    ``forward(embeddings, masks)`` receives ``{name: (B, D_name)}`` and ``{name: (B,) bool}``
    (True where the sample has that input) and returns ``(B, output_dim)``. A missing input's
    embedding holds anything (even NaN) and must not change the output: leave it out with
    ``masks[name]`` before any layer touches it (``torch.where(masks[name][:, None], emb, 0)``);
    a sample lacking every input still gets a finite output. A fusion that already produces
    predictions (``late``) sets ``produces_outputs = True`` and ``output_dim = n_outputs``;
    the model then adds no head. :func:`automm.testing.check_fusion` checks all this.
    """

    output_dim: int = 0
    produces_outputs: bool = False

    def forward(self, embeddings: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class Augmentation:
    """A training-time change to one sample of one modality.

    ``__call__(value, generator)`` receives the modality's natural representation
    (an image tensor (C, H, W) in [0, 1]; a list of text tokens) and a
    ``torch.Generator``, and returns a new value of the same kind (a float image tensor
    (3, H, W) in [0, 1]; a list of str tokens), leaving ``value`` as it was. Every random
    number comes from ``generator`` (``torch.rand(1, generator=generator)``), never from
    ``random``, numpy or torch's global generators: a seed must give the same model.
    """

    modality: str = ""

    def __call__(self, value: Any, generator: torch.Generator) -> Any:  # pragma: no cover
        raise NotImplementedError


class BatchAugmentation:
    """A training-time change to a whole batch, applied inside the model step.

    ``apply_masks(masks, generator)`` may drop inputs (modality dropout: True to False, the
    same inputs and ``(B,)`` bool masks);
    ``apply_fused(fused, targets, generator)`` may mix fused embeddings and soft
    targets (mixup) and returns ``(fused, targets)``; targets are one-hot or soft
    class probabilities for classification and values for regression. When the fit has
    sample weights, the targets carry one more last column, the rows' weights: treat it as
    part of the targets (mixing rows mixes their weights), keep the width. Random numbers come
    from ``generator`` only, as for :class:`Augmentation`.
    """

    modality: str = "batch"
    #: The fewest inputs with which it can change anything (modality dropout: 2, as it never
    #: drops a sample's last input); with fewer, automm neither searches nor lists it.
    min_inputs: int = 1

    def apply_masks(self, masks: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return masks

    def apply_fused(self, fused: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return fused, targets
