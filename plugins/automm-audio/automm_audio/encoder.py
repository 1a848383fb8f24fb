"""The ``audio_cnn`` encoder: log-mel spectrogram → small CNN → embedding.

``preprocess`` loads a value (see :func:`~automm_audio.signal.load_audio`), mixes it to
mono, resamples it to ``sample_rate``, centre-crops or zero-pads it to ``duration``
seconds and computes its log-mel spectrogram (n_mels, frames). Augmentations receive that
spectrogram (the natural representation of audio in automm: natural-log mel power) and
return one of the same shape; it is then standardised with the mean and standard
deviation ``fit`` measured on the training values. The network stacks ``depth`` blocks of
Conv3x3-BatchNorm-ReLU-MaxPool2, pools its feature maps (mean and max) over frequency and
time (``pooling="global"``: where a sound lies in pitch is lost) or over time only, per
frequency band (``pooling="bands"``: pitch is kept), and projects to ``output_dim``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from automm.components.base import MISSING, Encoder
from automm.exceptions import InputError

from .signal import RIFF_IDS, LogMelSpectrogram, checked_readable, clip_seconds, fix_length, load_audio, resample

__all__ = ["AudioCNNEncoder", "audio_cnn_search_space", "AUDIO_CNN_DEFAULTS", "POOLINGS"]

#: How ``audio_cnn`` pools its last feature maps: over frequency and time, or over time per frequency band.
POOLINGS = ("global", "bands")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"hyperparameter {name} must be a positive integer; got {value!r}")
    return int(value)


#: Over this share of the training audio beyond the middle ``duration`` seconds of its clips, ``fit`` warns.
UNHEARD_WARNING_SHARE = 0.1
#: Source samples kept on each side of the centre part a long clip is cropped to, before resampling.
RESAMPLE_MARGIN = 256


class AudioCNNEncoder(Encoder):
    modality = "audio"
    #: preprocess without augment is the same spectrogram every time: without audio augmentations
    #: (the default) training computes it once per clip, not once per clip and epoch
    reusable_samples = True

    def __init__(self, sample_rate: int = 16000, duration: float = 2.0, n_mels: int = 64, n_fft: int = 512,
                 hop_length: int = 160, width: int = 16, depth: int = 3, output_dim: int = 128,
                 dropout: float = 0.1, pooling: str = "global"):
        super().__init__()
        self.sample_rate = _positive_int("sample_rate", sample_rate)
        if (isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0
                or not np.isfinite(duration)):
            raise InputError(f"hyperparameter duration must be a positive number of seconds; got {duration!r}")
        self.duration = float(duration)
        self.n_samples = max(1, int(round(self.duration * self.sample_rate)))
        self.n_mels = _positive_int("n_mels", n_mels)
        self.n_fft = _positive_int("n_fft", n_fft)
        self.hop_length = _positive_int("hop_length", hop_length)
        self.width = _positive_int("width", width)
        self.depth = _positive_int("depth", depth)
        self.output_dim = _positive_int("output_dim", output_dim)
        if not isinstance(pooling, str) or pooling not in POOLINGS:
            raise InputError(f"hyperparameter pooling must be one of {', '.join(map(repr, POOLINGS))}; got {pooling!r}")
        self.pooling = pooling
        if not 0 <= float(dropout) < 1:
            raise InputError(f"hyperparameter dropout must be in [0, 1); got {dropout!r}")
        if self.n_samples <= self.n_fft // 2:  # the STFT's reflect padding needs more
            raise InputError(f"duration={duration} s at sample_rate={self.sample_rate} gives {self.n_samples} samples, "
                             f"too few for n_fft={self.n_fft} (more than {self.n_fft // 2} needed): raise duration or "
                             "lower n_fft")
        if self.n_fft // 2 + 1 < self.n_mels:
            raise InputError(f"n_fft={self.n_fft} gives {self.n_fft // 2 + 1} frequency bins, fewer than "
                             f"n_mels={self.n_mels}")
        # Preprocessing runs in the data loader, on the CPU, while the trainer moves the network to its
        # device: the spectrogram transform (its window and filterbank) is kept out of the module's
        # children so that ``.to("cuda")`` leaves it on the CPU with the waveforms it is given.
        object.__setattr__(self, "melspec", LogMelSpectrogram(self.sample_rate, self.n_fft, self.hop_length,
                                                              self.n_mels))
        self.n_frames = self.melspec.frames(self.n_samples)
        if min(self.n_mels, self.n_frames) < 2 ** self.depth:
            raise InputError(f"a {self.n_mels}x{self.n_frames} spectrogram is too small for depth={self.depth} "
                             f"(each block halves it); lower depth or raise n_mels/duration")
        self.mean, self.std = 0.0, 1.0
        layers: list[nn.Module] = []
        channels_in = 1
        for index in range(self.depth):
            channels = min(self.width * 2 ** index, 8 * self.width)
            layers += [nn.Conv2d(channels_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels_in = channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(float(dropout))
        bands = self.n_mels // 2 ** self.depth if pooling == "bands" else 1  # frequency rows left after the blocks
        self.project = nn.Linear(2 * channels_in * bands, self.output_dim)

    # -- preprocessing ---------------------------------------------------------------------
    def waveform(self, value: Any) -> torch.Tensor:
        """The value as ``n_samples`` mono samples at ``sample_rate``."""
        samples, rate = load_audio(value, self.sample_rate, centre_seconds=self.n_samples / self.sample_rate + 0.1)
        # only the centre part that fix_length keeps is resampled (a long recording costs no more
        # than a short one), with a margin for the resampling filter's edges
        needed = int(np.ceil(self.n_samples * rate / self.sample_rate)) + 2 * RESAMPLE_MARGIN
        if len(samples) > needed:
            start = (len(samples) - needed) // 2
            samples = samples[start:start + needed]
        wave = resample(torch.from_numpy(np.ascontiguousarray(samples)), rate, self.sample_rate)
        return fix_length(wave, self.n_samples)

    def spectrogram(self, value: Any) -> torch.Tensor:
        with torch.no_grad():
            return self.melspec(self.waveform(value))

    def fit(self, values: Sequence[Any]) -> "AudioCNNEncoder":
        """Measure the mean and standard deviation of the log-mel values (up to 256 samples), and say
        (``fit_warnings_``, which the core warns with once per fit) when over
        :data:`UNHEARD_WARNING_SHARE` of the training audio is not heard: the part of each clip
        beyond the middle ``duration`` seconds (judged on up to 500 clips, evenly spaced; of a WAV
        file, from its headers)."""
        present = [v for v in values if v is not MISSING]
        self.fit_warnings_ = []
        if present:
            step = max(1, len(present) // 256)
            specs = torch.stack([self.spectrogram(v) for v in present[::step][:256]])
            self.mean = float(specs.mean())
            self.std = float(specs.std()) or 1.0
            self._warn_unheard(present[::max(1, len(present) // 500)][:500])
        return self

    def _warn_unheard(self, values: Sequence[Any]) -> None:
        seconds = np.array([clip_seconds(v, self.sample_rate) for v in values])
        unheard = np.clip(seconds - self.duration, 0, None).sum() / max(seconds.sum(), 1e-12)
        if unheard > UNHEARD_WARNING_SHARE:
            enough = int(np.ceil(np.quantile(seconds, 0.9)))
            self.fit_warnings_.append(
                f"{unheard:.0%} of the training audio is not heard: audio_cnn hears the middle "
                f"{self.duration:g} s of each clip (duration), and {np.mean(seconds > self.duration):.0%} of the clips "
                f"are longer (the longest {seconds.max():.3g} s), so a sound elsewhere in them is lost. To hear more "
                f"(its time and memory grow with it): encoders={{'audio': {{'name': 'audio_cnn', 'duration': "
                f"{enough}}}}} holds 90% of the clips whole")

    def prepare(self, values: Sequence[Any], *, cache_dir: str | None = None) -> None:
        """Check, before any training, that every WAV path can be read (headers only); files the
        column check (:func:`~automm_audio.signal.audio_problem`, run before fit and predict)
        read whole and found unchanged since are not read again."""
        problems = []
        for row, value in enumerate(values):
            if isinstance(value, (str, os.PathLike)) and not checked_readable(value):
                if not os.path.isfile(value):
                    problems.append(f"row {row} ({str(value)!r}): file not found")
                    continue
                try:
                    with open(value, "rb") as handle:
                        head = handle.read(12)
                    if head[:4] not in RIFF_IDS or head[8:12] != b"WAVE":
                        problems.append(f"row {row} ({str(value)!r}): not a WAV file")
                except OSError as exc:
                    problems.append(f"row {row} ({str(value)!r}): {exc}")
        if problems:
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise InputError(f"{len(problems)} audio value(s) cannot be read: {'; '.join(problems[:5])}{more}")

    def preprocess(self, value: Any, augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        if value is MISSING:
            return torch.zeros(1, self.n_mels, self.n_frames)
        spec = self.spectrogram(value)
        if augment is not None:
            spec = augment(spec)
            if not isinstance(spec, torch.Tensor) or spec.shape != (self.n_mels, self.n_frames):
                raise InputError(f"audio augmentations must return a ({self.n_mels}, {self.n_frames}) spectrogram; got "
                                 f"{tuple(spec.shape) if isinstance(spec, torch.Tensor) else type(spec).__name__}")
        return ((spec - self.mean) / self.std).unsqueeze(0).float()

    def get_state(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.mean = float(state.get("mean", 0.0))
        self.std = float(state.get("std", 1.0)) or 1.0

    # -- network ----------------------------------------------------------------------------
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        maps = self.features(batch)  # (batch, channels, frequency bands, frames)
        over = (2, 3) if self.pooling == "global" else 3
        pooled = torch.cat([maps.mean(dim=over).flatten(1), maps.amax(dim=over).flatten(1)], dim=1)
        return self.project(self.dropout(pooled))


def audio_cnn_search_space(trial: Any, prefix: str) -> dict:
    """CPU-sized search space of ``audio_cnn``."""
    return {
        "n_mels": trial.suggest_categorical(f"{prefix}n_mels", [32, 48, 64]),
        "width": trial.suggest_categorical(f"{prefix}width", [8, 16, 32]),
        "depth": trial.suggest_int(f"{prefix}depth", 2, 4),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [64, 128, 256]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.4),
        "pooling": trial.suggest_categorical(f"{prefix}pooling", list(POOLINGS)),
    }


AUDIO_CNN_DEFAULTS = {"sample_rate": 16000, "duration": 2.0, "n_mels": 64, "n_fft": 512, "hop_length": 160,
                      "width": 16, "depth": 3, "output_dim": 128, "dropout": 0.1, "pooling": "global"}
