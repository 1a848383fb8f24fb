"""Short real-looking test signals: harmonic tones, chirps and noise bursts over background noise."""

from __future__ import annotations

import numpy as np

CLASSES = ("low_tone", "high_tone", "chirp_up", "noise_burst")


def make_signal(kind: str, rng: np.random.Generator, sample_rate: int = 16000, seconds: float | None = None
                ) -> np.ndarray:
    seconds = rng.uniform(0.6, 1.2) if seconds is None else seconds
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    if kind == "low_tone":
        f0 = rng.uniform(150, 300)
        signal = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
    elif kind == "high_tone":
        f0 = rng.uniform(1500, 3000)
        signal = np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 1.5 * f0 * t)
    elif kind == "chirp_up":
        f_start, f_end = rng.uniform(200, 400), rng.uniform(2500, 3500)
        phase = 2 * np.pi * (f_start * t + (f_end - f_start) * t ** 2 / (2 * seconds))
        signal = np.sin(phase)
    elif kind == "noise_burst":
        signal = np.zeros_like(t)
        for _ in range(rng.integers(2, 5)):
            start = rng.integers(0, max(1, len(t) - sample_rate // 10))
            length = rng.integers(sample_rate // 20, sample_rate // 8)
            signal[start:start + length] += rng.normal(0, 1, size=len(signal[start:start + length]))
    else:
        raise ValueError(kind)
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) * 20)  # 50 ms fade in/out
    signal = signal * envelope
    signal = 0.5 * signal / (np.abs(signal).max() + 1e-9)
    noise_level = 0.5 * 10 ** (-rng.uniform(15, 30) / 20)
    return (signal + rng.normal(0, noise_level, size=len(t))).astype(np.float32)
