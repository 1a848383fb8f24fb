"""The network: one encoder per input, a fusion, and a prediction head."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .components.base import Encoder, Fusion
from .exceptions import PluginError

__all__ = ["MultimodalNet", "move_to_device"]


class MultimodalNet(nn.Module):
    """``inputs → encoders → fusion → head``.

    ``embed`` returns the fused embedding (what :meth:`AutoMM.transform` gives);
    ``forward`` returns logits (classification) or standardised values (regression).
    """

    def __init__(self, encoders: Mapping[str, Encoder], fusion: Fusion, n_outputs: int, head_dropout: float = 0.1):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.n_outputs = int(n_outputs)
        if fusion.produces_outputs:
            self.head: nn.Module = nn.Identity()
        else:
            self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(fusion.output_dim, self.n_outputs))

    def encode(self, inputs: Mapping[str, object]) -> dict[str, torch.Tensor]:
        embeddings = {}
        for name, encoder in self.encoders.items():
            embedding = encoder(inputs[name])
            if embedding.dim() != 2 or embedding.shape[-1] != encoder.output_dim:
                raise PluginError(f"encoder {type(encoder).__name__} of input {name!r} returned a tensor of shape "
                                  f"{tuple(embedding.shape)}; its output_dim says (batch, {encoder.output_dim})")
            embeddings[name] = embedding
        return embeddings

    def embed(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        embeddings = self.encode(inputs)
        masks = dict(masks)
        embeddings = {name: emb.float() * masks[name].unsqueeze(-1).to(emb.dtype).float()
                      for name, emb in embeddings.items()}
        return self.fusion(embeddings, masks)

    def forward(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.embed(inputs, masks))


def move_to_device(obj, device: torch.device, non_blocking: bool = False):
    """Tensors (in nested dicts/lists) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, non_blocking) for v in obj)
    return obj
