"""automm-audio: an ``audio`` modality for automm.

Installing this distribution registers (through the ``automm`` entry-point group):

* the encoder ``audio_cnn`` (log-mel spectrogram → small CNN) with its search space;
* the augmentations ``audio_time_shift``, ``audio_noise`` and ``spec_augment``
  (modality ``"audio"``);
* the sample dataset ``tones`` (generated clips with captions, see :mod:`automm_audio.datasets`);
* a column-role rule: columns of ``.wav`` paths, ``{"array": ..., "sample_rate": ...}``
  dicts or ``(samples, sample_rate)`` tuples get the role ``"audio"``;
* a column check: the values of an audio column that cannot be read, named before any work.

>>> AutoMM().fit(pd.DataFrame({"clip": wav_paths, "caption": texts}), y)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

from automm.exceptions import InputError
from automm.hookspecs import hookimpl

from .augmentations import (BackgroundNoise, SpecAugment, TimeShift, noise_search_space, spec_augment_search_space,
                            time_shift_search_space)
from .datasets import automm_register_datasets, load_tones_sample
from .encoder import AUDIO_CNN_DEFAULTS, AudioCNNEncoder, audio_cnn_search_space
from .signal import LogMelSpectrogram, _is_number, audio_problem, load_audio, looks_like_audio, mel_filterbank, read_wav, write_wav

__version__ = "0.1.0"

__all__ = [
    "AudioCNNEncoder", "audio_cnn_search_space", "TimeShift", "BackgroundNoise", "SpecAugment",
    "LogMelSpectrogram", "mel_filterbank", "load_audio", "read_wav", "write_wav", "looks_like_audio",
    "load_tones_sample", "automm_register_encoders", "automm_register_augmentations",
    "automm_register_datasets", "automm_infer_column_role", "automm_check_column", "audio_problem", "__version__",
]


def _output_dim(hyperparameters: dict) -> int:
    return int(hyperparameters["output_dim"])


@hookimpl
def automm_register_encoders(register):
    register("audio_cnn", AudioCNNEncoder, modality="audio", output_dim=_output_dim,
             defaults=dict(AUDIO_CNN_DEFAULTS), search_space=audio_cnn_search_space,
             description="Log-mel spectrogram (mel filterbank in torch) through a small CNN trained from scratch.")


@hookimpl
def automm_register_augmentations(register):
    register("audio_time_shift", TimeShift, modality="audio", defaults=dict(TimeShift.defaults),
             search_space=time_shift_search_space, description="Shift audio in time, filling with silence.")
    register("audio_noise", BackgroundNoise, modality="audio", defaults=dict(BackgroundNoise.defaults),
             search_space=noise_search_space, description="Add white background noise at a random SNR.")
    register("spec_augment", SpecAugment, modality="audio", defaults=dict(SpecAugment.defaults),
             search_space=spec_augment_search_space,
             description="SpecAugment-style frequency and time masking of the log-mel spectrogram.")


@hookimpl
def automm_check_column(role: str, name: str, values: Sequence[Any]) -> list[tuple[int, str]] | None:
    """The rows of an audio column that cannot be read (WAV files missing, not WAV, cut
    short or in an unsupported encoding; clips of the wrong shape, lists of Python ints), before any work.
    A column of single numbers (the first column of a list of arrays read as a table) is refused,
    saying how to give arrays."""
    if role != "audio":
        return None
    present = [v for v in values if v is not None]
    if present and all(_is_number(v) for v in present):
        raise InputError(
            f"column {name!r} is declared audio but holds single numbers (such as {present[0]!r}), not clips: a list "
            "of equal-length arrays (or a 2-D array) given as the only input is read as a table of numbers, one "
            "column per sample (x0, x1, ...). Give the clips as one column: pandas.Series(list(clips)) as the input "
            "(column 'x0'), or pandas.DataFrame({'clip': list(clips)}) with column_types={'clip': 'audio'}, bare "
            "1-D arrays being taken to be at audio_cnn's sample_rate (16000 Hz unless set); or with their rate, "
            "[{'array': a, 'sample_rate': rate} for a in clips], which needs no column_types")
    return [(row, why) for row, value in enumerate(values)
            if value is not None and (why := audio_problem(value)) is not None]


@hookimpl
def automm_infer_column_role(name: str, values: Sequence[Any]) -> str | None:
    """``"audio"`` when at least 80% of the column's values look like audio."""
    values = list(values)
    others = 0  # (counted no further than 20%: 101 numbers of 500 tell that they are no audio)
    for value in values:
        others += not looks_like_audio(value)
        if others > 0.2 * len(values):
            return None
    return "audio" if values else None
