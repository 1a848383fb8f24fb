"""The network: one encoder per input, a fusion, and a prediction head."""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from torch import nn

from .components.base import Encoder, Fusion
from .contracts import calling
from .exceptions import PluginError

__all__ = ["MultimodalNet", "move_to_device", "fusion_width_problem"]


class MultimodalNet(nn.Module):
    """``inputs → encoders → fusion → head``.

    ``embed`` returns the fused embedding (what :meth:`AutoMM.transform` gives);
    ``forward`` returns logits (classification) or standardised values (regression).
    Each encoder's and the fusion's output is checked against their ``output_dim``, and the
    fusion's ``output_dim`` when the model is built (:func:`fusion_width_problem`): a
    :class:`PluginError` naming the component and its plugin.
    """

    def __init__(self, encoders: Mapping[str, Encoder], fusion: Fusion, n_outputs: int, head_dropout: float = 0.1,
                 fusion_label: str | None = None, encoder_labels: Mapping[str, str] | None = None):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        #: how messages name each input's encoder (its registration: name and plugin)
        self.encoder_labels = {name: (encoder_labels or {}).get(name, f"encoder {type(encoder).__name__}")
                               for name, encoder in encoders.items()}
        #: ... with its input (``"encoder 'cnn' (plugin 'builtin') of input 'image_0'"``), made once, not per batch
        self.input_labels = {name: f"{label} of input {name!r}" for name, label in self.encoder_labels.items()}
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

    def encode(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
        """Each input's embedding, (batch, output_dim). Given ``masks`` (True where a row has the
        input), an encoder runs on the rows that have its input only (:meth:`Encoder.select_rows`;
        one that cannot select runs on every row, and so does one in training where one row of
        several has the input: batch normalisation cannot train on one sample) and the rows
        lacking it are zeros: a batch of mostly missing images does not run the image network on
        blank placeholders. A row whose value the encoder reads as nothing
        (:meth:`Encoder.empty_rows`) lacks the input too: ``masks`` (a dict) is updated in place."""
        embeddings = {}
        for name, encoder in self.encoders.items():
            batch, rows, size = inputs[name], None, None
            if masks is not None:
                mask = masks[name] = self._read_rows(name, batch, masks[name])
                size = len(mask)
                if not bool(mask.all()):
                    rows = torch.nonzero(mask).flatten()
                    if len(rows) == 1 and encoder.training:
                        # batch normalisation cannot train on one sample (make_loader leaves out
                        # a training batch of one for it): every row, as before
                        rows = None
                    else:
                        batch = encoder.select_rows(inputs[name], rows)
                        if batch is None:  # the encoder cannot select rows: every row, as before
                            batch, rows = inputs[name], None
            if rows is not None and len(rows) == 0:
                embeddings[name] = _unused_output(encoder, size, mask.device)
                continue
            with calling(self.input_labels[name], "in forward"):
                embedding = encoder(batch)
            if embedding.dim() != 2 or embedding.shape[-1] != encoder.output_dim:
                raise PluginError(f"{self.input_labels[name]} returned a tensor of shape "
                                  f"{tuple(embedding.shape)}; its output_dim says (batch, {encoder.output_dim}): "
                                  "set output_dim to the width forward returns")
            expected = size if rows is None else len(rows)
            if expected is not None and embedding.shape[0] != expected:
                given, fix = ((f"a batch of {expected} rows", "") if rows is None else
                              (f"the {expected} rows (of {size}) that its select_rows gave it",
                               ", and select_rows the batch of the rows it is given"))
                raise PluginError(f"{self.input_labels[name]} returned {embedding.shape[0]} rows "
                                  f"for {given}; forward must return one row per sample{fix}")
            if rows is not None:
                embedding = embedding.new_zeros((size, embedding.shape[1])).index_copy(0, rows, embedding)
            embeddings[name] = embedding
        return embeddings

    def _read_rows(self, name: str, batch: object, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` less the rows whose value encoder ``name`` reads as nothing (:meth:`Encoder.empty_rows`)."""
        empty_rows = getattr(self.encoders[name], "empty_rows", None)  # (a plain module has none)
        empty = empty_rows(batch) if empty_rows is not None else None
        if empty is None:
            return mask
        if not isinstance(empty, torch.Tensor) or tuple(empty.shape) != tuple(mask.shape):
            got = tuple(empty.shape) if isinstance(empty, torch.Tensor) else type(empty).__name__
            raise PluginError(f"{self.input_labels[name]}: empty_rows returned {got} for a "
                              f"batch of {len(mask)} rows; it must return a ({len(mask)},) bool tensor or None")
        return mask & ~empty.to(device=mask.device, dtype=torch.bool)  # (no .any() first: a CUDA sync per batch)

    def embed(self, inputs: Mapping[str, object], masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
        masks = dict(masks)
        embeddings = self.encode(inputs, masks)
        embeddings = {name: emb.float() * masks[name].unsqueeze(-1).to(emb.dtype).float()
                      for name, emb in embeddings.items()}
        with calling(self.fusion_label, "in forward"):
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


def _unused_output(encoder: Encoder, size: int, device: torch.device) -> torch.Tensor:
    """The zero embeddings of a batch none of whose rows has the encoder's input, the encoder not
    run. While gradients are recorded they carry a zero gradient to each trainable parameter, as
    the masked output of the encoder run on placeholders did: the optimizer steps these parameters
    (weight decay, momentum) as it did then, rather than leaving them out."""
    zeros = torch.zeros(size, encoder.output_dim, device=device)
    if torch.is_grad_enabled():
        trainable = [p for p in encoder.parameters() if p.requires_grad]
        if trainable:
            zeros = zeros + 0.0 * sum(p.flatten()[:1].sum().float() for p in trainable)
    return zeros


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
