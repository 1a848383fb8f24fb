"""A small synthetic sound dataset, generated in memory (nothing is downloaded or shipped).

``tones``: short clips of four kinds of sound (harmonic hum, high beep, upward sweep,
crackling noise bursts) over background noise at random levels, lengths and sample rates,
each with a caption that names its kind only half of the time (and sometimes wrongly), so
that the audio carries most of the answer. Registered as the sample dataset ``tones``, so
that a recipe can say ``data: {sample: tones}``.
"""

from __future__ import annotations

import numpy as np

from automm.hookspecs import hookimpl

__all__ = ["CLASSES", "make_signal", "load_tones_sample", "automm_register_datasets"]

CLASSES = ("low_tone", "high_tone", "chirp_up", "noise_burst")
_WORDS = {"low_tone": "hum", "high_tone": "beep", "chirp_up": "sweep", "noise_burst": "crackle"}


def make_signal(kind: str, rng: np.random.Generator, sample_rate: int = 16000, seconds: float | None = None
                ) -> np.ndarray:
    """One float32 clip of ``kind`` (one of :data:`CLASSES`) at ``sample_rate``: the sound,
    faded in and out, scaled to peak 0.5, over white noise 15-30 dB below it."""
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


def load_tones_sample(n_train_per_class: int = 40, n_test_per_class: int = 20, seed: int = 0):
    """A pandas DataFrame of generated clips: ``clip`` (``{"array": float32 samples,
    "sample_rate": 8000 or 16000}``), ``caption`` (text), ``label`` (4 classes) and ``split``
    (train/test). The same arguments always give the same data."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for split, per_class in (("train", n_train_per_class), ("test", n_test_per_class)):
        for index in range(per_class * len(CLASSES)):
            label = CLASSES[index % len(CLASSES)]
            rate = int(rng.choice([8000, 16000]))
            clip = {"array": make_signal(label, rng, rate), "sample_rate": rate}
            hint = _WORDS[label] if rng.random() < 0.5 else _WORDS[CLASSES[rng.integers(len(CLASSES))]]
            rows.append({"clip": clip, "caption": f"recording {index} {hint}", "label": label, "split": split})
    return pd.DataFrame(rows)


@hookimpl
def automm_register_datasets(register):
    register("tones", load_tones_sample, columns=("clip", "caption", "label", "split"),
             description="240 generated sound clips (hum, beep, sweep, crackle) with noisy captions; in memory.")
