"""Run-time checks of what plugin components return, cheap enough for every batch or sample
(shapes, dtypes, kinds): a broken component fails with a :class:`~automm.exceptions.PluginError`
naming it, its plugin and what to fix, rather than a bare torch error further on or silently
wrong training data. The conformance kit (:mod:`automm.testing`) checks far more, once."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .components.base import BatchAugmentation
from .exceptions import PluginError

__all__ = ["CheckedBatchAugmentation"]


def _shapes(tensors: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{name!r}: {_kind(value)}" for name, value in tensors.items()) + "}"


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {value.dtype}"
    return type(value).__name__


class CheckedBatchAugmentation(BatchAugmentation):
    """A batch augmentation whose results are checked: ``apply_masks`` must keep the inputs and
    their ``(batch,)`` bool masks, ``apply_fused`` the shapes of the fused embeddings and targets."""

    def __init__(self, augmentation: Any, label: str):
        self.augmentation, self.label = augmentation, label

    def apply_masks(self, masks: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        new = self.augmentation.apply_masks(masks, generator)
        if (not isinstance(new, Mapping) or new.keys() != masks.keys()
                or any(not isinstance(new[k], torch.Tensor) or new[k].shape != masks[k].shape
                       or new[k].dtype != torch.bool for k in masks)):
            got = _shapes(new) if isinstance(new, Mapping) else _kind(new)
            raise PluginError(f"{self.label}: apply_masks changed the masks from {_shapes(masks)} to {got}; it must "
                              "return the same inputs, each a (batch,) bool tensor (it may only turn True into False)")
        return new

    def apply_fused(self, fused: torch.Tensor, targets: torch.Tensor,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        result = self.augmentation.apply_fused(fused, targets, generator)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise PluginError(f"{self.label}: apply_fused must return (fused, targets), got {_kind(result)}")
        for what, before, after in (("fused embeddings", fused, result[0]), ("targets", targets, result[1])):
            if not isinstance(after, torch.Tensor) or after.shape != before.shape:
                raise PluginError(f"{self.label}: apply_fused changed the {what} from {_kind(before)} to "
                                  f"{_kind(after)}; it must keep their shape")
        return result[0], result[1]
