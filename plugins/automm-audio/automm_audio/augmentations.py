"""Audio augmentations. Each receives a log-mel spectrogram (n_mels, frames) in natural-log
power units (what ``audio_cnn.preprocess`` passes) and a ``torch.Generator``, and returns
a new spectrogram of the same shape; all randomness comes from the generator.

* ``audio_time_shift`` — shift in time by up to ``max_shift`` of the length, filling with
  silence (the spectrogram's minimum), as if the recording started earlier or later;
* ``audio_noise`` — add white background noise at a random signal-to-noise ratio in
  [``snr_min``, ``snr_max``] dB. The noise is added in the power domain: its periodogram
  is exponentially distributed around one level in every mel band (what white noise in the
  waveform gives, in expectation, through unit-area mel filters such as ``audio_cnn``'s). The
  SNR is that of the spectrogram's mean mel power, which weighs low frequencies more than the
  waveform's power does (the spectrogram does not say its bands' widths in Hz);
* ``spec_augment`` — SpecAugment-style masking (Park et al., 2019): ``freq_masks`` bands of
  up to ``freq_width`` mel bins and ``time_masks`` spans of up to ``time_width`` of the
  frames are set to the spectrogram's mean.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from automm.components.base import Augmentation

__all__ = ["TimeShift", "BackgroundNoise", "SpecAugment", "time_shift_search_space", "noise_search_space",
           "spec_augment_search_space"]


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator).item())


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def _check_spec(value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 2:
        raise TypeError("audio augmentations expect a (n_mels, frames) log-mel spectrogram, got "
                        f"{type(value).__name__}{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
    return value


def _probability(name: str, value: float) -> float:
    """``value`` as a float, refused unless it is a number in [0, 1]."""
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class TimeShift(Augmentation):
    modality = "audio"
    defaults = {"max_shift": 0.2, "p": 0.5}

    def __init__(self, max_shift: float = 0.2, p: float = 0.5):
        self.max_shift = _probability("max_shift", max_shift)
        self.p = _probability("p", p)

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        spec = _check_spec(value)
        frames = spec.shape[1]
        if _uniform(generator) >= self.p or frames < 2:
            return spec.clone()
        limit = int(self.max_shift * frames)
        shift = _randint(generator, -limit, limit) if limit > 0 else 0
        out = torch.full_like(spec, float(spec.min()))
        if shift >= 0:
            out[:, shift:] = spec[:, :frames - shift]
        else:
            out[:, :shift] = spec[:, -shift:]
        return out

    def __repr__(self) -> str:
        return f"TimeShift(max_shift={self.max_shift}, p={self.p})"


class BackgroundNoise(Augmentation):
    """With probability ``p``, white noise at a signal-to-noise ratio drawn from
    [``snr_min``, ``snr_max``] dB; ``snr_range`` (what the search suggests) sets ``snr_max`` to
    ``snr_min + snr_range``."""

    modality = "audio"
    defaults = {"snr_min": 10.0, "snr_max": 30.0, "p": 0.5, "snr_range": None}

    def __init__(self, snr_min: float = 10.0, snr_max: float = 30.0, p: float = 0.5, snr_range: float | None = None):
        if snr_range is not None:
            if isinstance(snr_range, bool) or not isinstance(snr_range, (int, float)) or not snr_range >= 0:
                raise ValueError(f"snr_range must be a number of dB >= 0, got {snr_range!r}")
            snr_max = snr_min + snr_range
        for name, value in (("snr_min", snr_min), ("snr_max", snr_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of dB, got {value!r}")
        if float(snr_min) > float(snr_max):
            raise ValueError(f"need snr_min <= snr_max, got {snr_min} > {snr_max}")
        self.snr_min, self.snr_max = float(snr_min), float(snr_max)
        self.p = _probability("p", p)

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        spec = _check_spec(value)
        if _uniform(generator) >= self.p:
            return spec.clone()
        power = torch.exp(spec.double())
        snr_db = _uniform(generator, self.snr_min, self.snr_max)
        level = power.mean() / (10.0 ** (snr_db / 10.0))
        draws = torch.rand(spec.shape, generator=generator, dtype=torch.float64).clamp_min(1e-12)
        noise = -torch.log(draws) * level  # exponential periodogram, the same level in every band
        return torch.log(power + noise).to(spec.dtype)

    def __repr__(self) -> str:
        return f"BackgroundNoise(snr_min={self.snr_min}, snr_max={self.snr_max}, p={self.p})"


class SpecAugment(Augmentation):
    modality = "audio"
    defaults = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 0.1, "p": 0.8}

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: float = 0.1,
                 p: float = 0.8):
        for name, value in (("freq_masks", freq_masks), ("freq_width", freq_width), ("time_masks", time_masks)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), _probability("time_width", time_width)
        self.p = _probability("p", p)

    def __call__(self, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        spec = _check_spec(value).clone()
        if _uniform(generator) >= self.p:
            return spec
        n_mels, frames = spec.shape
        fill = float(spec.mean())
        for _ in range(self.freq_masks):
            width = _randint(generator, 0, min(self.freq_width, n_mels))
            start = _randint(generator, 0, n_mels - width)
            spec[start:start + width, :] = fill
        max_time = int(math.floor(self.time_width * frames))
        for _ in range(self.time_masks):
            width = _randint(generator, 0, max_time)
            start = _randint(generator, 0, frames - width)
            spec[:, start:start + width] = fill
        return spec

    def __repr__(self) -> str:
        return (f"SpecAugment(freq_masks={self.freq_masks}, freq_width={self.freq_width}, "
                f"time_masks={self.time_masks}, time_width={self.time_width}, p={self.p})")


def time_shift_search_space(trial: Any, prefix: str) -> dict:
    return {"max_shift": trial.suggest_float(f"{prefix}max_shift", 0.05, 0.3)}


def noise_search_space(trial: Any, prefix: str) -> dict:
    low = trial.suggest_float(f"{prefix}snr_min", 5.0, 20.0)  # (snr_range: a factory keyword too)
    return {"snr_min": low, "snr_max": low + trial.suggest_float(f"{prefix}snr_range", 5.0, 20.0)}


def spec_augment_search_space(trial: Any, prefix: str) -> dict:
    return {"freq_masks": trial.suggest_int(f"{prefix}freq_masks", 0, 2),
            "freq_width": trial.suggest_int(f"{prefix}freq_width", 4, 12),
            "time_masks": trial.suggest_int(f"{prefix}time_masks", 0, 2),
            "time_width": trial.suggest_float(f"{prefix}time_width", 0.05, 0.2)}
