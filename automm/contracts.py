"""Run-time checks of what plugin components return, cheap enough for every batch or sample
(shapes, dtypes, kinds): a broken component fails with a :class:`~automm.exceptions.PluginError`
naming it, its plugin and what to fix, rather than a bare torch error further on or silently
wrong training data. The conformance kit (:mod:`automm.testing`) checks far more, once."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch

from .components.base import BatchAugmentation
from .exceptions import AutoMMError, PluginError

__all__ = ["CheckedAugmentation", "CheckedBatchAugmentation", "building", "sample_problem", "augment_input_problem",
           "FUSION_INPUTS_HINT"]

#: What a fusion that cannot be built for its inputs is told.
FUSION_INPUTS_HINT = ("; a fusion must work with whatever inputs it is given (one or more, named like image_0, "
                      "text_0, tabular, audio_0): read their names and widths from input_dims")


@contextlib.contextmanager
def building(spec: Any, params: Mapping[str, Any], context: str = "", hint: str = "") -> Iterator[None]:
    """Around a component's factory call: its exception becomes a :class:`PluginError` naming the
    component (``spec``), its plugin, ``context`` (``" for input 'text_0'"``) and the
    hyperparameters, with ``hint``. automm's own errors (an ``InputError`` a factory raises on
    purpose) and running out of memory pass as they are."""
    try:
        yield
    except AutoMMError:
        raise
    except Exception as exc:
        from .pipeline import is_out_of_memory

        if is_out_of_memory(exc):
            raise
        shown = {key: value for key, value in params.items() if key != "column_roles"}
        raise PluginError(f"{spec.label} could not be built{context} with hyperparameters {shown}: "
                          f"{type(exc).__name__}: {exc}{hint}") from exc


def _shapes(tensors: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{name!r}: {_kind(value)}" for name, value in tensors.items()) + "}"


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {value.dtype}"
    return type(value).__name__


class CheckedAugmentation:
    """A per-sample augmentation whose result is checked to be of the kind it was given: for
    images a floating tensor (3, H, W), for texts a list of str tokens, for another modality a
    tensor of as many dimensions (floating when it was), a list or a mapping."""

    def __init__(self, augmentation: Any, modality: str, label: str):
        self.augmentation, self.modality, self.label = augmentation, modality, label

    def __call__(self, value: Any, generator: torch.Generator) -> Any:
        result = self.augmentation(value, generator)
        problem = sample_problem(self.modality, value, result)
        if problem is not None:
            raise PluginError(f"{self.label}: {problem}")
        return result


def augment_input_problem(modality: str, value: Any) -> str | None:
    """What is wrong with the value an encoder's ``preprocess`` gives ``augment`` (None: nothing):
    an image's augmentations take a float tensor (3, H, W) in [0, 1], a text's a list of str
    tokens (a text's augmentations read a str as a sequence of characters). Other modalities:
    their plugin's convention, not checked."""
    if modality == "image" and not (isinstance(value, torch.Tensor) and torch.is_floating_point(value)
                                    and value.dim() == 3 and value.shape[0] == 3):
        return (f"preprocess gave augment {_kind(value)}; give it the image as a float tensor (3, H, W) in [0, 1] "
                "(automm.components.image.image_tensor), as image augmentations take")
    if modality == "text" and not (isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value[:1])):
        return (f"preprocess gave augment a {type(value).__name__}; give it the text's tokens, a list of str "
                "(automm.components.text.tokenize(value)), as text augmentations take")
    return None


def sample_problem(modality: str, before: Any, after: Any) -> str | None:
    """What is wrong with ``after``, an augmentation's result for the sample ``before`` (None: nothing)."""
    if modality == "image":
        if not isinstance(after, torch.Tensor):
            return f"returned a {type(after).__name__}; it must return the image as a float tensor (3, H, W) in [0, 1]"
        if not torch.is_floating_point(after):
            return (f"returned a {after.dtype} tensor; it must return a float tensor (3, H, W) in [0, 1], as it was "
                    "given (pixels 0..255 divided by 255)")
        if after.dim() != 3 or after.shape[0] != 3:
            return f"returned a tensor of shape {tuple(after.shape)}; it must return a (3, H, W) tensor"
        return None
    if modality == "text":
        if not isinstance(after, (list, tuple)):
            return (f"returned a {type(after).__name__}; it must return a list of str tokens, as it was given "
                    "(not a joined text)")
        wrong = after[0] if after and not isinstance(after[0], str) else None  # (per sample: the first token)
        if wrong is not None:
            return f"returned a list holding a {type(wrong).__name__} ({wrong!r}); it must return a list of str tokens"
        return None
    if isinstance(before, torch.Tensor):
        if (not isinstance(after, torch.Tensor) or after.dim() != before.dim()
                or torch.is_floating_point(after) != torch.is_floating_point(before)):
            return f"returned {_kind(after)} for a {_kind(before)} sample; it must return a sample of the same kind"
    elif isinstance(before, (list, tuple)) and not isinstance(after, (list, tuple)):
        return f"returned a {type(after).__name__} for a list sample; it must return a list"
    elif isinstance(before, Mapping) and not isinstance(after, Mapping):
        return f"returned a {type(after).__name__} for a mapping sample; it must return a mapping"
    return None


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
