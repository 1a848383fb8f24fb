"""Built-in augmentations.

Sample augmentations (``aug(value, generator)``) change one image (a float tensor
(C, H, W) in [0, 1]) or one token list; batch augmentations change a whole training batch
(``modality_dropout`` drops inputs, ``mixup`` mixes fused embeddings and soft targets).
All randomness comes from the ``torch.Generator`` passed in, so the same generator state
always gives the same result.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from automm.components.base import Augmentation, BatchAugmentation
from automm.hookspecs import hookimpl

__all__ = [
    "RandomResizedCrop",
    "HorizontalFlip",
    "ColorJitter",
    "TokenDropout",
    "TokenSwap",
    "ModalityDropout",
    "Mixup",
    "sample_beta",
    "random_resized_crop_search_space",
    "horizontal_flip_search_space",
    "color_jitter_search_space",
    "token_dropout_search_space",
    "token_swap_search_space",
    "modality_dropout_search_space",
    "mixup_search_space",
    "automm_register_augmentations",
]


# -- generator-driven random draws -------------------------------------------------------

def _uniform(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape or (1,), generator=generator, device=generator.device)


def _uniform_scalar(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(_uniform(generator).item())


def _check_probability(name: str, value: float) -> float:
    """``value`` as a float, refused unless it is a number in [0, 1] (``float()`` named ``'x'`` only
    as a string it could not convert, and took ``"0.5"``)."""
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _log_gamma_sample(shape: float, generator: torch.Generator) -> float:
    """log of one Gamma(shape, 1) draw, using only ``generator`` (Marsaglia & Tsang, 2000).

    For ``shape < 1`` it uses Gamma(shape) = Gamma(shape + 1) * U**(1/shape), computed in
    log space so that tiny shapes do not underflow to zero.
    """
    boost = 0.0
    if shape < 1.0:
        boost = math.log(max(_uniform_scalar(generator), 1e-300)) / shape
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn(1, generator=generator, device=generator.device).item())
        v = (1.0 + c * x) ** 3
        if v <= 0.0:
            continue
        u = max(_uniform_scalar(generator), 1e-300)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return math.log(d * v) + boost


def sample_beta(alpha: float, beta: float, generator: torch.Generator) -> float:
    """One Beta(alpha, beta) draw that uses only ``generator``.

    ``torch.distributions.Beta.sample`` cannot take a generator, so this draws
    ``G_a ~ Gamma(alpha)`` and ``G_b ~ Gamma(beta)`` with a Marsaglia-Tsang sampler fed by
    ``torch.randn`` / ``torch.rand`` on the generator and returns ``G_a / (G_a + G_b)``
    (evaluated as ``sigmoid(log G_a - log G_b)`` for numerical safety). Exact, not an
    approximation.
    """
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be > 0, got ({alpha}, {beta})")
    log_a = _log_gamma_sample(float(alpha), generator)
    log_b = _log_gamma_sample(float(beta), generator)
    return 1.0 / (1.0 + math.exp(min(log_b - log_a, 700.0)))


# -- image -------------------------------------------------------------------------------

def _check_image(value: torch.Tensor) -> None:
    if not isinstance(value, torch.Tensor) or value.dim() != 3:
        raise TypeError(f"image augmentations expect a (C, H, W) tensor, got "
                        f"{type(value).__name__}{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")


class RandomResizedCrop(Augmentation):
    """With probability ``p``, crop a random region covering a ``scale`` fraction of the
    area with aspect ratio in ``ratio`` (log-uniform), then resize it back to H×W.
    ``min_scale`` (what the search suggests) sets the low end of ``scale``."""

    modality = "image"
    defaults = {"scale": [0.6, 1.0], "ratio": [3 / 4, 4 / 3], "p": 1.0, "min_scale": None}

    def __init__(self, scale: Sequence[float] = (0.6, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3), p: float = 1.0,
                 min_scale: float | None = None):
        if min_scale is not None:
            scale = (min_scale, scale[1])
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        self.p = _check_probability("p", p)

    def _crop_box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
        area = height * width
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target_area = area * _uniform_scalar(generator, *self.scale)
            aspect = math.exp(_uniform_scalar(generator, log_low, log_high))
            crop_w = int(round(math.sqrt(target_area * aspect)))
            crop_h = int(round(math.sqrt(target_area / aspect)))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(_uniform_scalar(generator) * (height - crop_h + 1))
                left = int(_uniform_scalar(generator) * (width - crop_w + 1))
                return min(top, height - crop_h), min(left, width - crop_w), crop_h, crop_w
        # Fallback: a centred crop with the aspect ratio clamped into range.
        aspect = min(max(width / height, self.ratio[0]), self.ratio[1])
        crop_w, crop_h = (width, int(round(width / aspect))) if width / height < aspect else \
            (int(round(height * aspect)), height)
        crop_w, crop_h = max(1, min(crop_w, width)), max(1, min(crop_h, height))
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_image(value)
        if _uniform_scalar(generator) >= self.p:
            return value
        height, width = value.shape[-2:]
        top, left, crop_h, crop_w = self._crop_box(height, width, generator)
        crop = value[:, top:top + crop_h, left:left + crop_w]
        resized = F.interpolate(crop.unsqueeze(0).float(), size=(height, width), mode="bilinear",
                                align_corners=False).squeeze(0)
        return resized.clamp(0.0, 1.0).to(value.dtype)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(scale={self.scale}, ratio={self.ratio}, p={self.p})"


class HorizontalFlip(Augmentation):
    """Mirror the image left-right with probability ``p``."""

    modality = "image"
    defaults = {"p": 0.5}

    def __init__(self, p: float = 0.5):
        self.p = _check_probability("p", p)

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_image(value)
        if _uniform_scalar(generator) >= self.p:
            return value
        return value.flip(-1)

    def __repr__(self) -> str:
        return f"HorizontalFlip(p={self.p})"


def _grayscale(image: torch.Tensor) -> torch.Tensor:
    """(1, H, W) luminance: ITU-R 601 weights for RGB, the channel mean otherwise."""
    if image.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
        return (image * weights[:, None, None]).sum(dim=0, keepdim=True)
    return image.mean(dim=0, keepdim=True)


class ColorJitter(Augmentation):
    """With probability ``p``, scale brightness, contrast and saturation by factors drawn
    uniformly from ``[1 - strength, 1 + strength]`` (in that order), clamping to [0, 1].
    ``strength`` (what the search suggests) sets all three."""

    modality = "image"
    defaults = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "p": 0.8, "strength": None}

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, p: float = 0.8,
                 strength: float | None = None):
        if strength is not None:
            if not 0.0 <= float(strength) <= 1.0:  # (named as given, not as the brightness it sets)
                raise ValueError(f"strength must be in [0, 1], got {strength}")
            brightness = contrast = saturation = strength
        for name, strength in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0.0 <= float(strength) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {strength}")
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)
        self.p = _check_probability("p", p)

    @staticmethod
    def hyperparameters_as_run(params: dict) -> dict:
        """``params`` with the brightness, contrast and saturation that a ``strength`` sets, so that a
        configuration (a fitted model's ``config_``) shows what runs, not their defaults beside it."""
        if params.get("strength") is None:
            return params
        return {**params, "brightness": params["strength"], "contrast": params["strength"],
                "saturation": params["strength"]}

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _check_image(value)
        if _uniform_scalar(generator) >= self.p:
            return value
        image = value.float()
        brightness = _uniform_scalar(generator, 1 - self.brightness, 1 + self.brightness)
        contrast = _uniform_scalar(generator, 1 - self.contrast, 1 + self.contrast)
        saturation = _uniform_scalar(generator, 1 - self.saturation, 1 + self.saturation)
        image = (image * brightness).clamp(0.0, 1.0)
        mean_luminance = _grayscale(image).mean()
        image = ((image - mean_luminance) * contrast + mean_luminance).clamp(0.0, 1.0)
        if image.shape[0] > 1:
            gray = _grayscale(image)
            image = ((image - gray) * saturation + gray).clamp(0.0, 1.0)
        return image.to(value.dtype)

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, p={self.p})")


# -- text --------------------------------------------------------------------------------

class TokenDropout(Augmentation):
    """Drop each token with probability ``p``; always keeps at least one token of a
    non-empty list."""

    modality = "text"
    defaults = {"p": 0.1}

    def __init__(self, p: float = 0.1):
        self.p = _check_probability("p", p)

    def __call__(self, value: Sequence[str], generator: torch.Generator) -> list[str]:
        tokens = list(value)
        if not tokens:
            return tokens
        keep = (_uniform(generator, len(tokens)) >= self.p).tolist()
        if not any(keep):
            keep[int(_uniform_scalar(generator) * len(tokens)) % len(tokens)] = True
        return [token for token, kept in zip(tokens, keep) if kept]

    def __repr__(self) -> str:
        return f"TokenDropout(p={self.p})"


class TokenSwap(Augmentation):
    """Walk left to right and swap each adjacent pair with probability ``p`` (a swapped
    token is not swapped again in the same call)."""

    modality = "text"
    defaults = {"p": 0.1}

    def __init__(self, p: float = 0.1):
        self.p = _check_probability("p", p)

    def __call__(self, value: Sequence[str], generator: torch.Generator) -> list[str]:
        tokens = list(value)
        if len(tokens) < 2:
            return tokens
        swap = (_uniform(generator, len(tokens) - 1) < self.p).tolist()
        index = 0
        while index < len(tokens) - 1:
            if swap[index]:
                tokens[index], tokens[index + 1] = tokens[index + 1], tokens[index]
                index += 2
            else:
                index += 1
        return tokens

    def __repr__(self) -> str:
        return f"TokenSwap(p={self.p})"


# -- batch -------------------------------------------------------------------------------

class ModalityDropout(BatchAugmentation):
    """Mark each present input of each sample missing with probability ``p``, but never
    the last present input of a sample (one of its inputs, picked at random, is kept)."""

    defaults = {"p": 0.1}
    min_inputs = 2  # never drops a sample's last input: with one input, nothing

    def __init__(self, p: float = 0.1):
        self.p = _check_probability("p", p)

    def apply_masks(self, masks: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        if not masks or self.p == 0.0:
            return dict(masks)
        names = sorted(masks)
        device = masks[names[0]].device
        present = torch.stack([masks[name].to(device=device, dtype=torch.bool) for name in names], dim=1)
        batch_size, n_inputs = present.shape
        draws = _uniform(generator, batch_size, n_inputs).to(device)
        kept = present & (draws >= self.p)
        emptied = present.any(dim=1) & ~kept.any(dim=1)
        if emptied.any():
            # Among a row's present inputs, restore the one with the highest fresh draw.
            scores = _uniform(generator, batch_size, n_inputs).to(device).masked_fill(~present, -1.0)
            restored = torch.zeros_like(present)
            restored[torch.arange(batch_size, device=device), scores.argmax(dim=1)] = True
            kept = kept | (restored & emptied.unsqueeze(1))
        return {name: kept[:, index].to(masks[name].dtype) for index, name in enumerate(names)}

    def __repr__(self) -> str:
        return f"ModalityDropout(p={self.p})"


class Mixup(BatchAugmentation):
    """With probability ``p`` per batch, replace fused embeddings and targets by
    ``lam * x + (1 - lam) * x[perm]`` with one ``lam ~ Beta(alpha, alpha)`` per batch
    (drawn by :func:`sample_beta`, generator-driven) and a random permutation ``perm``.
    Targets must be floating point (one-hot / soft class probabilities or regression
    values), so soft class targets keep summing to 1."""

    defaults = {"alpha": 0.2, "p": 0.5}

    def __init__(self, alpha: float = 0.2, p: float = 0.5):
        if float(alpha) <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.p = _check_probability("p", p)

    def apply_fused(self, fused: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_floating_point(targets):
            raise TypeError("mixup needs floating-point targets (one-hot or soft class probabilities, or "
                            f"regression values), got dtype {targets.dtype}")
        if fused.shape[0] != targets.shape[0]:
            raise ValueError(f"fused has {fused.shape[0]} rows but targets has {targets.shape[0]}")
        if fused.shape[0] < 2 or _uniform_scalar(generator) >= self.p:
            return fused, targets
        lam = sample_beta(self.alpha, self.alpha, generator)
        perm = torch.randperm(fused.shape[0], generator=generator, device=generator.device)
        mixed_fused = lam * fused + (1.0 - lam) * fused[perm.to(fused.device)]
        mixed_targets = lam * targets + (1.0 - lam) * targets[perm.to(targets.device)]
        return mixed_fused, mixed_targets

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, p={self.p})"


# -- search spaces -----------------------------------------------------------------------

def random_resized_crop_search_space(trial: Any, prefix: str) -> dict:
    # min_scale: a factory keyword too, so that search_space= can narrow or fix it by this name
    return {"scale": [trial.suggest_float(f"{prefix}min_scale", 0.3, 0.9), 1.0]}


def horizontal_flip_search_space(trial: Any, prefix: str) -> dict:
    return {"p": trial.suggest_float(f"{prefix}p", 0.0, 0.5)}


def color_jitter_search_space(trial: Any, prefix: str) -> dict:
    strength = trial.suggest_float(f"{prefix}strength", 0.0, 0.4)  # (a factory keyword too)
    return {"brightness": strength, "contrast": strength, "saturation": strength,
            "p": trial.suggest_float(f"{prefix}p", 0.3, 1.0)}


def token_dropout_search_space(trial: Any, prefix: str) -> dict:
    return {"p": trial.suggest_float(f"{prefix}p", 0.0, 0.3)}


def token_swap_search_space(trial: Any, prefix: str) -> dict:
    return {"p": trial.suggest_float(f"{prefix}p", 0.0, 0.3)}


def modality_dropout_search_space(trial: Any, prefix: str) -> dict:
    return {"p": trial.suggest_float(f"{prefix}p", 0.0, 0.3)}


def mixup_search_space(trial: Any, prefix: str) -> dict:
    return {"alpha": trial.suggest_float(f"{prefix}alpha", 0.1, 0.4, log=True),
            "p": trial.suggest_float(f"{prefix}p", 0.0, 1.0)}


# -- registration ------------------------------------------------------------------------

@hookimpl
def automm_register_augmentations(register):
    register("random_resized_crop", RandomResizedCrop, modality="image", defaults=dict(RandomResizedCrop.defaults),
             search_space=random_resized_crop_search_space,
             description="Crop a random region (scale/aspect ratio ranges) and resize it back to the image size.")
    register("horizontal_flip", HorizontalFlip, modality="image", defaults=dict(HorizontalFlip.defaults),
             search_space=horizontal_flip_search_space, description="Mirror the image left-right.")
    register("color_jitter", ColorJitter, modality="image", defaults=dict(ColorJitter.defaults),
             search_space=color_jitter_search_space,
             description="Random brightness, contrast and saturation changes, clamped to [0, 1].")
    register("token_dropout", TokenDropout, modality="text", defaults=dict(TokenDropout.defaults),
             search_space=token_dropout_search_space,
             description="Drop random tokens (never all of them).")
    register("token_swap", TokenSwap, modality="text", defaults=dict(TokenSwap.defaults),
             search_space=token_swap_search_space, description="Swap random adjacent token pairs.")
    register("modality_dropout", ModalityDropout, modality="batch", defaults=dict(ModalityDropout.defaults),
             search_space=modality_dropout_search_space,
             description="Mark random inputs missing per sample, never the last present one.")
    register("mixup", Mixup, modality="batch", defaults=dict(Mixup.defaults), search_space=mixup_search_space,
             description="Mix fused embeddings and soft targets of random sample pairs (Beta(alpha, alpha) weight).")
