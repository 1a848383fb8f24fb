"""Several linear forms on one input: the linear model's way to use, say, a text's hashed
n-grams and its MiniLM sentence embedding together.

A configuration names a stack as ``{"name": "stack", "parts": [choice, choice, ...]}``, each
part an ordinary encoder choice (``{"name": ..., **hyperparameters}``) built with
``linear=True`` and the same ``output_dim``. The stack's output is the sum of its parts'
outputs, so it is itself linear in the concatenation of the parts' designs; the linear model
(:mod:`automm.linear`) fits each part's weight as a block of its own. ``stack`` is not a
registered component (no search samples it; the name is reserved): the core builds it from
its parts' registered names.

A stack of an input the linear model compares with another (two title columns) also names
the parts it compares, ``"compared": [k, ...]`` (parts whose ``linear_width`` is set: frozen
features): their features follow the sum in its output, for the ``sum`` fusion's comparison
(:class:`~automm.components.fusions.SumFusion`'s ``compared``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..registry import RESERVED_ENCODER_NAME
from .base import COMPARED_FORMAT_VERSION, Encoder

__all__ = ["STACK", "EncoderStack", "encoder_parts", "encoder_names", "describe_encoder", "describe_encoders"]

#: The encoder name of a stack in a configuration (no plugin may register it).
STACK = RESERVED_ENCODER_NAME


def encoder_parts(choice: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The registered encoders' choices an encoder choice consists of: a stack's parts, in
    order, or the choice itself."""
    return list(choice["parts"]) if choice["name"] == STACK else [choice]


def encoder_names(choice: Mapping[str, Any]) -> list[str]:
    """The registered encoder names an encoder choice needs (a stack's parts, in order)."""
    return [str(part["name"]) for part in encoder_parts(choice)]


def describe_encoder(choice: Mapping[str, Any]) -> str:
    """A short label of an encoder choice: its name, or a stack's parts joined by ``+``."""
    return "+".join(encoder_names(choice))


def describe_encoders(encoders: Mapping[str, Any], columns: Mapping[str, Sequence[str]] | None = None) -> str:
    """Each input's encoder for a progress line or a table: ``text_1 (description)=hashed_ngram,
    tabular=tabular``; an input of one column (``columns``: each input's columns) is named with
    it, as its user knows it (``config_`` and the leaderboard keep the input's name alone)."""
    def named(name: str) -> str:
        cols = (columns or {}).get(name) or []
        return f"{name} ({cols[0]})" if len(cols) == 1 and cols[0] != name else name

    return ", ".join(f"{named(name)}={describe_encoder(choice)}" for name, choice in encoders.items())


class EncoderStack(Encoder):
    """The sum of several encoders' linear forms on one input (see the module documentation),
    followed by the features (``linear_design``) of the parts at the positions ``compared``."""

    def __init__(self, parts: Sequence[Encoder], compared: Sequence[int] = ()):
        super().__init__()
        if not parts:
            raise ValueError("an encoder stack needs at least one part")
        widths = {int(part.output_dim) for part in parts}
        modalities = {part.modality for part in parts}
        if len(widths) != 1 or len(modalities) != 1:
            raise ValueError(f"the parts of an encoder stack must share one modality and one output width; "
                             f"got modalities {sorted(modalities)} and widths {sorted(widths)}")
        self.parts = nn.ModuleList(parts)
        self.modality = modalities.pop()
        #: the positions of the parts whose features follow the sum, in order
        self.compared = _compared_positions(compared, parts)
        self.output_dim = widths.pop() + sum(int(parts[k].linear_width) for k in self.compared)
        self.frozen = all(getattr(part, "frozen", False) for part in parts)
        self.static_preprocess = all(getattr(part, "static_preprocess", False) for part in parts)
        self.reusable_samples = all(getattr(part, "static_preprocess", False) or getattr(part, "reusable_samples", False)
                                    for part in parts)

    def fit(self, values: Sequence[Any]) -> "EncoderStack":
        for part in self.parts:
            part.fit(values)
        return self

    def prepare(self, values: Sequence[Any], *, cache_dir: str | None = None) -> None:
        for part in self.parts:
            part.prepare(values, cache_dir=cache_dir)

    def unfamiliar_values(self, values: Sequence[Any]) -> list[str]:
        messages: list[str] = []
        for part in self.parts:
            messages += [m for m in part.unfamiliar_values(values) if m not in messages]
        return messages

    def pending_share(self, values: Sequence[Any], *, cache_dir: str | None = None) -> float:
        return max(float(part.pending_share(values, cache_dir=cache_dir)) for part in self.parts)

    def preprocess(self, value: Any, augment: Callable[[Any], Any] | None = None) -> tuple:
        return tuple(part.preprocess(value, augment) for part in self.parts)

    def collate(self, samples: list[tuple]) -> list:
        return [part.collate([sample[k] for sample in samples]) for k, part in enumerate(self.parts)]

    def select_rows(self, batch: Sequence[Any], rows: torch.Tensor) -> list | None:
        parts = [part.select_rows(part_batch, rows) for part, part_batch in zip(self.parts, batch)]
        return None if any(part is None for part in parts) else parts

    def get_state(self) -> dict:
        return {"parts": [part.get_state() for part in self.parts]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        states = list(state.get("parts", []))
        if len(states) != len(self.parts):
            raise ValueError(f"the state describes {len(states)} parts; this stack has {len(self.parts)}")
        for part, part_state in zip(self.parts, states):
            part.set_state(part_state)

    @property
    def min_format_version(self) -> int:
        """:data:`COMPARED_FORMAT_VERSION` for a stack that compares (an older reader would build
        it without its features, and its ``sum`` fusion not at all); else 1."""
        return COMPARED_FORMAT_VERSION if self.compared else 1

    def forward(self, batch: Sequence[Any]) -> torch.Tensor:
        total = self.parts[0](batch[0])
        for part, part_batch in zip(self.parts[1:], batch[1:]):
            total = total + part(part_batch)
        if not self.compared:
            return total
        features = []
        for k in self.compared:
            design = self.parts[k].linear_design(batch[k])
            features.append((design.to_dense() if design.is_sparse else design).to(total.dtype))
        return torch.cat([total, *features], dim=1)


def _compared_positions(compared: Sequence[int], parts: Sequence[Encoder]) -> tuple[int, ...]:
    """``compared`` checked: distinct positions of parts that set ``linear_width``."""
    if isinstance(compared, (str, bytes)) or not isinstance(compared, Sequence):
        raise ValueError(f"an encoder stack's compared must be a list of part positions; got {compared!r}")
    positions = []
    for k in compared:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(parts) or k in positions:
            raise ValueError(f"an encoder stack's compared must list distinct positions of its {len(parts)} "
                             f"parts; got {list(compared)!r}")
        width = getattr(parts[k], "linear_width", None)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"part {k} of an encoder stack ({type(parts[k]).__name__}) is compared, but its "
                             f"linear_width is {width!r}: only a linear form of fixed width (frozen features) "
                             "can be compared")
        positions.append(k)
    return tuple(positions)
