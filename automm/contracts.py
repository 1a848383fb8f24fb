"""Run-time checks of what plugin components return, cheap enough for every batch or sample
(shapes, dtypes, kinds): a broken component fails with a :class:`~automm.exceptions.PluginError`
naming it, its plugin and what to fix, rather than a bare torch error further on or silently
wrong training data. The conformance kit (:mod:`automm.testing`) checks far more, once."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping

import torch

from .components.base import BatchAugmentation
from .exceptions import AutoMMError, PluginError

__all__ = ["CheckedAugmentation", "CheckedBatchAugmentation", "building", "sample_problem", "augment_input_problem",
           "BUILD_FAILED", "FUSION_INPUTS_HINT"]

#: What :func:`building` says of a component its factory could not build (a failed trial's
#: reason holds it: the search warns about such trials, a value of its space no trial can use).
BUILD_FAILED = "could not be built"
#: What a fusion that cannot be built for its inputs is told.
FUSION_INPUTS_HINT = ("; a fusion must work with whatever inputs it is given (one or more, named like image_0, "
                      "text_0, tabular, audio_0): read their names and widths from input_dims")


@contextlib.contextmanager
def _failures_named(message: Callable[[Exception], str]) -> Iterator[None]:
    """Its body's exception becomes a :class:`PluginError` saying ``message(exc)``; automm's own
    errors (an ``InputError`` a component raises on purpose) and running out of memory pass as they are."""
    try:
        yield
    except AutoMMError:
        raise
    except Exception as exc:
        from .pipeline import is_out_of_memory

        if is_out_of_memory(exc):
            raise
        raise PluginError(message(exc)) from exc


def building(spec: Any, params: Mapping[str, Any], context: str = ""):
    """Around a component's factory call: its exception becomes a :class:`PluginError` naming the
    component (``spec``), its plugin, ``context`` (``" for input 'text_0'"``) and the
    hyperparameters."""
    shown = {key: value for key, value in params.items() if key != "column_roles"}
    return _failures_named(lambda exc: f"{spec.label} {BUILD_FAILED}{context} with hyperparameters {shown}: "
                                       f"{type(exc).__name__}: {exc}")


def calling(label: str, what: str | Callable[[], str]):
    """Around a call of a component's method in the work (an augmentation's): its exception becomes a
    :class:`PluginError` naming the component (``label``) and ``what`` it was doing (or a function
    saying it, called only then), rather than a bare error (a search trial's reason) that names none."""
    return _failures_named(lambda exc: f"{label} failed {what() if callable(what) else what}: "
                                       f"{type(exc).__name__}: {exc}")


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
        with calling(self.label, lambda: f"on a {_kind(value)} sample"):  # (described only when it fails)
            result = self.augmentation(value, generator)
        problem = sample_problem(self.modality, value, result)
        if problem is not None:
            raise PluginError(f"{self.label}: {problem}")
        return result


#: The natural form of a sample of each built-in modality, as augmentations take and return it.
_KINDS = {"image": "the image as a float tensor (3, H, W) in [0, 1] (pixels 0..255 divided by 255)",
          "text": "a list of str tokens (automm.components.text.tokenize(value), not a joined text)"}


def _kind_problem(modality: str, value: Any) -> str | None:
    """What ``value`` is when it is not :data:`_KINDS`' sample of ``modality`` (None: it is, or
    the modality is a plugin's, whose convention is its own)."""
    if modality == "image":
        if not isinstance(value, torch.Tensor):
            return f"a {type(value).__name__}"
        if not torch.is_floating_point(value):
            return f"a {value.dtype} tensor"
        if value.dim() != 3 or value.shape[0] != 3:
            return f"a tensor of shape {tuple(value.shape)}"
    elif modality == "text":
        if not isinstance(value, (list, tuple)):
            return f"a {type(value).__name__}"
        wrong = [token for token in value if not isinstance(token, str)]
        if wrong:
            return f"a list holding a {type(wrong[0]).__name__} ({wrong[0]!r})"
    return None


def augment_input_problem(modality: str, value: Any) -> str | None:
    """What is wrong with the value an encoder's ``preprocess`` gives ``augment`` (None: nothing):
    a sample of the modality's natural form (a text's augmentations read a str as a sequence of
    characters). Other modalities: their plugin's convention, not checked."""
    got = _kind_problem(modality, value)
    return None if got is None else f"preprocess gave augment {got}; give it {_KINDS[modality]}, as augmentations take"


#: How far outside [0, 1] an image augmentation's values may stray (the encoder clamps them): a
#: noise augmentation overshoots a little, one that works on 0..255 pixels by far.
IMAGE_RANGE_SLACK = 0.5


def _image_values_problem(value: torch.Tensor) -> str | None:
    """What is wrong with the values of an image augmentation's float result (None: nothing):
    NaN or infinite values, or values far outside [0, 1] (pixels 0..255), which the encoder's
    clamp to [0, 1] would silently turn into a white (or black) image."""
    if value.numel() == 0 or value.device.type == "meta":
        return None
    # one pass for the usual sample (every value finite and within the slack; a NaN makes both
    # NaN and fails the test): the checks below took 0.4 ms a sample, as long as the augmentations
    low, high = (float(bound) for bound in torch.aminmax(value))
    if -IMAGE_RANGE_SLACK <= low and high <= 1 + IMAGE_RANGE_SLACK:
        return None
    if not torch.isfinite(value).all():
        return "a tensor holding NaN or infinite values"
    # a few pixels past the slack (noise on a white background) lose nothing when clamped; an
    # image whose values lie mostly outside [0, 1] (0..255 pixels, a normalisation) is lost
    outside = ((value < -IMAGE_RANGE_SLACK) | (value > 1 + IMAGE_RANGE_SLACK)).float().mean()
    if float(outside) > 0.05:
        return (f"values in [{low:.4g}, {high:.4g}] (clamped to [0, 1], the image would be lost"
                f"{': pixels 0..255?' if high > 2 else ''})")
    return None


def sample_problem(modality: str, before: Any, after: Any) -> str | None:
    """What is wrong with ``after``, an augmentation's result for the sample ``before`` (None: nothing)."""
    if modality in _KINDS:
        got = _kind_problem(modality, after)
        if got is None and modality == "image":
            got = _image_values_problem(after)
        return None if got is None else f"returned {got}; it must return {_KINDS[modality]}, as it was given"
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
    their ``(batch,)`` bool masks and may only drop inputs (never mark a missing one present),
    ``apply_fused`` must keep the shapes of the fused embeddings and targets."""

    def __init__(self, augmentation: Any, label: str):
        self.augmentation, self.label = augmentation, label

    def apply_masks(self, masks: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        with calling(self.label, "in apply_masks"):
            new = self.augmentation.apply_masks(masks, generator)
        if (not isinstance(new, Mapping) or new.keys() != masks.keys()
                or any(not isinstance(new[k], torch.Tensor) or new[k].shape != masks[k].shape
                       or new[k].dtype != torch.bool for k in masks)):
            got = _shapes(new) if isinstance(new, Mapping) else _kind(new)
            raise PluginError(f"{self.label}: apply_masks changed the masks from {_shapes(masks)} to {got}; it must "
                              "return the same inputs, each a (batch,) bool tensor (it may only turn True into False)")
        revived = [k for k in masks if bool((new[k] & ~masks[k].to(new[k].device)).any())]
        if revived:  # the model would read the missing value's placeholder (zeros) as the input's value
            raise PluginError(f"{self.label}: apply_masks turned a missing input ({', '.join(map(repr, revived))}) "
                              "into a present one; it may only turn True into False (drop inputs)")
        return new

    def apply_fused(self, fused: torch.Tensor, targets: torch.Tensor,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        with calling(self.label, "in apply_fused"):
            result = self.augmentation.apply_fused(fused, targets, generator)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise PluginError(f"{self.label}: apply_fused must return (fused, targets), got {_kind(result)}")
        for what, before, after in (("fused embeddings", fused, result[0]), ("targets", targets, result[1])):
            if not isinstance(after, torch.Tensor) or after.shape != before.shape:
                raise PluginError(f"{self.label}: apply_fused changed the {what} from {_kind(before)} to "
                                  f"{_kind(after)}; it must keep their shape")
        return result[0], result[1]
