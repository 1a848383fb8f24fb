"""The network: one encoder per input, a fusion, and a prediction head."""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from torch import nn

from .components.base import Encoder, Fusion
from .exceptions import PluginError

__all__ = ["MultimodalNet", "move_to_device", "fusion_width_problem"]


class MultimodalNet(nn.Module):
    """``inputs → encoders → fusion → head``.

    ``embed`` returns the fused embedding (what :meth:`AutoMM.transform` gives);
    ``forward`` returns logits (classification) or standardised values (regression).
    """

    def __init__(self, encoders: Mapping[str, Encoder], fusion: Fusion, n_outputs: int, head_dropout: float = 0.1,
                 fusion_label: str | None = None, encoder_labels: Mapping[str, str] | None = None):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        #: how messages name each input's encoder (its registration: name and plugin)
        self.encoder_labels = {name: (encoder_labels or {}).get(name, f"encoder {type(encoder).__name__}")
                               for name, encoder in encoders.items()}
        self.fusion = fusion
        self.n_outputs = int(n_outputs)
        #: how messages name the fusion (its registration: name and plugin)
        self.fusion_label = fusion_label or f"fusion {type(fusion).__name__}"
        problem = fusion_width_problem(fusion, self.n_outputs)
        if problem is not None:
            raise PluginError(f"{self.fusion_label} {problem}")
        if fusion.produces_outputs:
            self.head: nn.Module = nn.Identity()
        else:
            self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(fusion.output_dim, self.n_outputs))

    def encode(self, inputs: Mapping[str, object]) -> dict[str, torch.Tensor]:
        embeddings = {}
        for name, encoder in self.encoders.items():
            embedding = encoder(inputs[name])
            if embedding.dim() != 2 or embedding.shape[-1] != encoder.output_dim:
                raise PluginError(f"{self.encoder_labels[name]} of input {name!r} returned a tensor of shape "
                                  f"{tuple(embedding.shape)}; its output_dim says (batch, {encoder.output_dim}): "
                                  "set output_dim to the width forward returns")
            embeddings[name] = embedding
        return embeddings

    def embed(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        embeddings = self.encode(inputs)
        masks = dict(masks)
        embeddings = {name: emb.float() * masks[name].unsqueeze(-1).to(emb.dtype).float()
                      for name, emb in embeddings.items()}
        fused = self.fusion(embeddings, masks)
        if not isinstance(fused, torch.Tensor) or fused.dim() != 2 or fused.shape[-1] != self.fusion.output_dim:
            got = (f"a tensor of shape {tuple(fused.shape)}" if isinstance(fused, torch.Tensor)
                   else f"a {type(fused).__name__}")
            raise PluginError(f"{self.fusion_label} returned {got}, but its output_dim is {self.fusion.output_dim}; "
                              "forward must return a (batch, output_dim) tensor: set self.output_dim to the width "
                              "forward returns")
        return fused

    def forward(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.embed(inputs, masks))


def fusion_width_problem(fusion: Fusion, n_outputs: int) -> str | None:
    """What is wrong with a fusion's ``output_dim``, what the head is built on (None: nothing): it
    must be a positive int, ``n_outputs`` for a fusion that ``produces_outputs``. (The model and
    the conformance kit both ask.)"""
    width = getattr(fusion, "output_dim", None)
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width <= 0:
        return f"has output_dim {width!r} (never set?); set self.output_dim in __init__ to the width forward returns"
    if fusion.produces_outputs and width != n_outputs:
        return (f"sets produces_outputs, so its output_dim must be n_outputs={n_outputs}, not {width}; set "
                "self.output_dim = n_outputs")
    return None


def move_to_device(obj, device: torch.device, non_blocking: bool = False):
    """Tensors (in nested dicts/lists) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, non_blocking) for v in obj)
    return obj
