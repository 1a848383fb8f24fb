"""Several linear forms on one input: the linear model's way to use, say, a text's hashed
n-grams and its MiniLM sentence embedding together.

A configuration names a stack as ``{"name": "stack", "parts": [choice, choice, ...]}``, each
part an ordinary encoder choice (``{"name": ..., **hyperparameters}``) built with
``linear=True`` and the same ``output_dim``. The stack's output is the sum of its parts'
outputs, so it is itself linear in the concatenation of the parts' designs; the linear model
(:mod:`automm.linear`) fits each part's weight as a block of its own. ``stack`` is not a
registered component (no search samples it; the name is reserved): the core builds it from
its parts' registered names.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..registry import RESERVED_ENCODER_NAME
from .base import Encoder

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
    """The sum of several encoders' linear forms on one input (see the module documentation)."""

    def __init__(self, parts: Sequence[Encoder]):
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
        self.output_dim = widths.pop()
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

    def forward(self, batch: Sequence[Any]) -> torch.Tensor:
        total = self.parts[0](batch[0])
        for part, part_batch in zip(self.parts[1:], batch[1:]):
            total = total + part(part_batch)
        return total
