"""Audio input and features: WAV reading (the RIFF or RF64 chunks read here: PCM and IEEE float, plain
or WAVE_FORMAT_EXTENSIBLE, whatever the Python version), mono mixing, resampling, fixed-length framing, and the log-mel spectrogram in torch with a mel
filterbank built here (HTK mel scale, triangular filters).

Accepted raw values (:func:`load_audio`):

* a path (``str`` / ``os.PathLike``) of a ``.wav`` file, or the bytes of one;
* ``{"array": samples, "sample_rate": rate}`` (also ``"sampling_rate"``, as in
  Hugging Face datasets);
* a tuple ``(samples, rate)``, or ``(rate, samples)`` as ``scipy.io.wavfile.read`` returns;
* a bare 1-D array of samples, taken to be at the encoder's sample rate (role inference does
  not claim a column of these: give ``column_types={"clip": "audio"}``).

Other audio formats (MP3, FLAC, Ogg, M4A, AIFF) are refused with their name and how to convert them.

Samples are a 1-D array (mono) or 2-D (channels first or last; the shorter axis is the
channel axis), integers (scaled by their type's range) or floats in [-1, 1]. A list of Python
ints is refused: it has no type, so its scale (int16? int32? uint8?) is unknown; so are 64-bit
integers, what ``np.asarray`` makes of such a list.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
import threading
import uuid
import wave
from functools import lru_cache
from stat import S_ISREG
from typing import Any, Callable

import numpy as np
import torch

from automm.exceptions import InputError

try:
    from automm.files import file_kind
except ImportError:  # an automm 0.1.0 of before file_kind (this plugin takes any 0.1.x)
    def file_kind(mode: int) -> str:
        return "not a regular file"
try:
    from automm.files import lookup_problem
except ImportError:  # an automm 0.1.x of before lookup_problem
    def lookup_problem(path: Any, error: Exception, opening: bool = False) -> str:
        return "file not found"

__all__ = ["AUDIO_EXTENSIONS", "load_audio", "clip_seconds", "read_wav", "write_wav", "resample", "fix_length",
           "mel_filterbank", "hz_to_mel", "mel_to_hz", "LogMelSpectrogram", "looks_like_audio"]

AUDIO_EXTENSIONS = (".wav", ".wave")


# -- reading -----------------------------------------------------------------------------

def _pcm_to_float(raw: bytes | memoryview, width: int, channels: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise InputError(f"unsupported WAV sample width: {width} bytes")
    return data.reshape(-1, channels)


#: Names of WAV format tags, for messages.
_FORMAT_NAMES = {1: "PCM", 2: "MS ADPCM", 3: "IEEE float", 6: "A-law", 7: "mu-law", 0x11: "IMA ADPCM", 0x55: "MP3",
                 0xFFFE: "extensible"}
_PCM, _IEEE_FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
#: A WAVE_FORMAT_EXTENSIBLE subformat GUID (as stored) after its first two bytes, which hold the format tag it means.
_SUBFORMAT_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
#: The data chunk size a streaming writer (ffmpeg to a pipe) leaves: unknown, the chunk runs to the end of the file.
_UNKNOWN_SIZE = 0xFFFFFFFF
#: The first four bytes of a WAV file: RIFF, or RF64 / BW64 (EBU Tech 3306 / ITU-R BS.2088: the WAV of recordings
#: over 4 GB that field recorders and ffmpeg write), whose data chunk's size is in a ``ds64`` chunk.
RIFF_IDS = (b"RIFF", b"RF64", b"BW64")


class _WavError(InputError):
    """An unreadable WAV file: the message names it (``description``, its path or byte count);
    ``reason`` says why without naming it, for a message that names the file already."""

    def __init__(self, reason: str, description: str, advice: str = ""):
        super().__init__(f"{reason}: {description}{advice}")
        self.reason = f"{reason}{advice}"


def _wav_chunks(data: bytes | mmap.mmap, description: str) -> tuple[bytes, int, int]:
    """The fmt chunk's body and where the data chunk's bytes are (start, size) in a RIFF/WAVE file."""
    if not data:
        raise _WavError("not a WAV file (empty, 0 bytes)", description)
    if len(data) < 12 or data[:4] not in RIFF_IDS or data[8:12] != b"WAVE":
        other = other_audio_format(data[:12])
        if other:
            raise _WavError(f"{other} file, not WAV: automm-audio reads WAV files only (PCM or float); convert it "
                            "first, e.g. ffmpeg -i IN -ar 16000 OUT.wav", description)
        raise _WavError("not a WAV file (no RIFF/WAVE header)", description)
    position, fmt, samples, cut_short, data_size64 = 12, None, None, False, None
    while position + 8 <= len(data):
        chunk_id, size = data[position:position + 4], struct.unpack_from("<I", data, position + 4)[0]
        start, available = position + 8, len(data) - position - 8
        if chunk_id == b"ds64" and data[:4] != b"RIFF" and size >= 16 and available >= 16:
            data_size64 = struct.unpack_from("<Q", data, start + 8)[0]  # RF64: the data chunk's 64-bit size
        if chunk_id == b"data" and samples is None:
            riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
            if size == _UNKNOWN_SIZE and data_size64 is not None:
                size = data_size64
            elif size == _UNKNOWN_SIZE or (size == 0 and available and riff_end <= start):
                # unknown (a streaming writer), or never filled in (a recording stopped before its
                # header was written, the RIFF size unwritten too): the chunk runs to the end
                size = available
            if size > available:
                raise _WavError(f"WAV file cut short: its data chunk declares {size} bytes but {available} are "
                                "left", description)
            samples = (start, size)
        elif chunk_id == b"fmt " and fmt is None:
            fmt = data[start:start + size]
        cut_short = size > available
        position = start + size + (size & 1)
    if fmt is None or samples is None:
        missing = "fmt" if fmt is None else "data"
        why = f"cut short before its {missing} chunk" if cut_short else f"without a {missing} chunk"
        raise _WavError(f"WAV file {why}", description)
    return fmt, *samples


def other_audio_format(head: bytes) -> str | None:
    """The name of the audio format of a file starting with ``head`` (its first 12 bytes) when it
    is one automm-audio does not read (an MP3, FLAC, Ogg, MP4/M4A or AIFF file), else None."""
    head = bytes(head)
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "an MP3 (or AAC)"
    if head[:4] == b"fLaC":
        return "a FLAC"
    if head[:4] == b"OggS":
        return "an Ogg (Vorbis or Opus)"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF"
    return None


def _wav_encoding(fmt: bytes, description: str) -> tuple[int, int, int, int]:
    """(format tag: PCM or IEEE float, channels, sample rate, bytes per sample) of a fmt chunk, plain or
    WAVE_FORMAT_EXTENSIBLE (whose subformat GUID gives the tag). PCM samples whose frame (the block
    align) holds more bytes per channel than their bits need, up to 4 (24-bit samples in 32-bit
    containers, as some tools write them with a plain PCM header), are read at the container's width,
    the bits left-justified in it as the format puts them, as scipy.io.wavfile reads them."""
    if len(fmt) < 16:
        raise _WavError(f"WAV fmt chunk too short ({len(fmt)} bytes, at least 16 needed)", description)
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    encoding = f"format tag 0x{tag:04X} ({_FORMAT_NAMES.get(tag, 'unknown')})"
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise _WavError(f"WAV fmt chunk of the extensible format too short ({len(fmt)} bytes, 40 needed)",
                            description)
        guid = fmt[24:40]
        tag = struct.unpack_from("<H", guid)[0] if guid[2:] == _SUBFORMAT_GUID_TAIL else None
        encoding = (f"extensible format, subformat {uuid.UUID(bytes_le=guid)}"
                    + (f" ({_FORMAT_NAMES.get(tag, 'unknown')})" if tag is not None else ""))
    if channels == 0 or rate == 0:
        raise _WavError(f"WAV file with {channels} channels at {rate} Hz", description)
    if tag == _PCM and 1 <= bits <= 32:
        width = (bits + 7) // 8
        if block_align > channels * width and block_align % channels == 0 and block_align // channels <= 4:
            width = block_align // channels  # samples in wider containers
        return tag, channels, rate, width
    if tag == _IEEE_FLOAT and bits in (32, 64):
        return tag, channels, rate, bits // 8
    raise _WavError(f"unsupported WAV encoding ({encoding}, {bits} bits)", description, "; supported: PCM of 8, 16, "
                    "24 or 32 bits and IEEE float of 32 or 64 bits, plain or extensible")


def read_wav(source: str | os.PathLike | bytes, centre_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """(samples (n, channels) float32 in [-1, 1], sample rate) of a WAV file or its bytes; with
    ``centre_seconds``, only that long a stretch from the middle is decoded. A file is mapped into
    memory, not read: of a long recording of which a model keeps a few seconds, only those
    seconds (and the headers) are read from disk. A float file's NaN or infinite samples, and a
    file without samples, are refused."""
    return _with_wav_data(source, lambda data, description: _decode_wav(data, description, centre_seconds))


def check_wav(source: str | os.PathLike | bytes) -> None:
    """Raise the :class:`InputError` :func:`read_wav` would raise for this WAV file or its bytes,
    without decoding its samples: PCM samples, whatever their values, always decode, so of a PCM
    file only the headers are read; a float file's samples are checked for NaN and infinities."""
    _with_wav_data(source, lambda data, description: _decode_wav(data, description, None, decode=False))


def _with_wav_data(source: str | os.PathLike | bytes, work: Callable[[Any, str], Any]) -> Any:
    """``work(data, description)`` on the bytes of a WAV file, mapped into memory, or on the bytes given."""
    if isinstance(source, (bytes, bytearray)):
        return work(bytes(source), f"<{len(source)} bytes>")
    description = str(source)
    try:
        with open(source, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return work(b"", description)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return work(mapped, description)
    except OSError as exc:
        raise _WavError(f"cannot read audio file ({exc.strerror or exc})", description) from None


def _decode_wav(data: bytes | mmap.mmap, description: str, centre_seconds: float | None,
                decode: bool = True) -> tuple[np.ndarray, int] | None:
    """The samples and rate of a WAV file's bytes; with ``decode=False``, of a PCM file only the
    checks of its headers (None): its samples, whatever their values, always decode."""
    fmt, start, size = _wav_chunks(data, description)
    tag, channels, rate, width = _wav_encoding(fmt, description)
    frame_size = channels * width
    frames = size // frame_size  # a partial last frame is dropped
    first, frames = _centre_frames(frames, rate, centre_seconds)
    if frames == 0:
        raise _WavError("WAV file holds no samples", description)
    if not decode and tag != _IEEE_FLOAT:
        return None
    begin = start + first * frame_size
    # views of a mapped file released on the way out, whatever happens (it closes only once none is left)
    with memoryview(data) as whole, whole[begin:begin + frames * frame_size] as part:
        if tag == _IEEE_FLOAT:
            samples = np.frombuffer(part, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
            samples = samples.reshape(-1, channels)
            if not np.isfinite(samples).all():
                raise _WavError("WAV file holds NaN or infinite samples", description)
        else:
            samples = _pcm_to_float(part, width, channels)
    return samples, int(rate)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono or (n, channels) float samples in [-1, 1] as 16-bit PCM WAV."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    pcm = (np.clip(array, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(os.fspath(path), "wb") as handle:
        handle.setnchannels(array.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())


def _integer_pcm(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Integer PCM samples of type ``dtype`` (``values``: those samples, or a mean of them) in
    [-1, 1): signed ones by their range, unsigned ones (8-bit WAV's kind) around their midpoint,
    which is silence."""
    info = np.iinfo(dtype)
    if info.min == 0:
        half = (float(info.max) + 1) / 2
        return (values.astype(np.float64) - half) / half
    return values.astype(np.float64) / float(info.max + 1)


def _first_sample(samples: Any) -> Any:
    """The first leaf of a (nested) list or tuple of samples."""
    while isinstance(samples, (list, tuple)) and samples:
        samples = samples[0]
    return samples


def _centre_frames(frames: int, rate: float, centre_seconds: float | None) -> tuple[int, int]:
    """(first frame, frames) of the ``centre_seconds`` long stretch from the middle of ``frames``
    frames at ``rate`` (all of them without ``centre_seconds``): the stretch read of a WAV file."""
    if centre_seconds is not None and frames > centre_seconds * rate:
        wanted = int(np.ceil(centre_seconds * rate))
        wanted += (frames - wanted) % 2  # an even margin: a centre crop of this stretch is that of the whole
        return (frames - wanted) // 2, wanted
    return 0, frames


def _to_mono_float(samples: Any, description: str, rate: float | None = None,
                   centre_seconds: float | None = None) -> np.ndarray:
    """Mono float32 samples; with ``rate`` and ``centre_seconds``, of only that long a stretch from
    the middle (cropped before the samples are converted: a long recording costs no more than a short one)."""
    array = np.asarray(samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples)
    if (isinstance(samples, (list, tuple)) and np.issubdtype(array.dtype, np.integer)
            and isinstance(_first_sample(samples), int)):
        raise InputError(f"audio samples ({description}) given as a list of Python ints have no sample type, so "
                         "their scale (int16? int32? uint8?) is unknown: pass a numpy array of their type, e.g. "
                         "np.asarray(samples, dtype=np.int16), or floats in [-1, 1]")
    if array.ndim not in (1, 2):
        raise InputError(f"audio samples must be 1-D (mono) or 2-D (channels), got shape {array.shape}: {description}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise InputError(f"audio samples must be numbers, got dtype {array.dtype}: {description}")
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize > 4:
        # no audio format has 64-bit integer samples: these are ints of another type widened (np.asarray or
        # torch.tensor of a list of ints), which scaled by the int64 range would all be silence
        raise InputError(f"audio samples ({description}) of type {array.dtype}: no audio format has 64-bit integer "
                         "samples, so their scale (int16? int32? uint8?) is unknown: pass a numpy array of their "
                         "type, e.g. np.asarray(samples, dtype=np.int16), or floats in [-1, 1]")
    channel_axis = None if array.ndim == 1 else 0 if array.shape[0] <= array.shape[1] else 1
    time_axis = 0 if channel_axis != 0 else 1
    if rate is not None:
        first, frames = _centre_frames(array.shape[time_axis], rate, centre_seconds)
        array = array[first:first + frames] if time_axis == 0 else array[:, first:first + frames]
    # channels mixed by a mean accumulated in float64, without a float copy of every channel
    mono = array if channel_axis is None else array.mean(axis=channel_axis, dtype=np.float64)
    if np.issubdtype(array.dtype, np.integer):
        mono = _integer_pcm(mono, array.dtype)
    mono = mono.astype(np.float32)
    if not np.isfinite(mono).all():
        raise InputError(f"audio samples contain NaN or infinite values: {description}")
    return mono


def load_audio(value: Any, default_rate: int, centre_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Any accepted raw value (see the module doc) → (mono float32 samples, sample rate); with
    ``centre_seconds``, of only that long a stretch from the middle (of a WAV file, only that stretch is read)."""
    source = _wav_source(value)
    if source is not None:
        samples, rate = read_wav(source, centre_seconds)
        return samples.mean(axis=1).astype(np.float32), rate
    samples, rate, description = _samples_and_rate(value, default_rate)
    return _to_mono_float(samples, description, rate, centre_seconds), rate


def clip_seconds(value: Any, default_rate: int) -> float:
    """How long a clip (any accepted raw value) lasts, in seconds: of a WAV file, from its headers
    (its samples are not read); of samples, from their shape (a 2-D array's longer axis is time)."""
    source = _wav_source(value)
    if source is not None:
        return _with_wav_data(source, _wav_seconds)
    samples, rate, _ = _samples_and_rate(value, default_rate)
    shape = tuple(samples.shape) if isinstance(samples, (np.ndarray, torch.Tensor)) else np.shape(samples)
    return (max(shape) if shape else 0) / rate


def _wav_seconds(data: bytes | mmap.mmap, description: str) -> float:
    fmt, _, size = _wav_chunks(data, description)
    _, channels, rate, width = _wav_encoding(fmt, description)
    return size // (channels * width) / rate


def _wav_source(value: Any) -> str | os.PathLike | bytes | None:
    """The WAV path or bytes that ``value`` is (of a Hugging Face audio record, its bytes, else its
    path), or None for a value of samples."""
    if _wav_record(value):
        value = value["bytes"] if value.get("bytes") is not None else value["path"]
    if isinstance(value, (str, os.PathLike, bytes)):
        return value
    return bytes(value) if isinstance(value, bytearray) else None


def _samples_and_rate(value: Any, default_rate: int) -> tuple[Any, int, str]:
    """(samples as given, sample rate, what they were given as) of a dict, tuple or array of samples."""
    if isinstance(value, dict):
        array = value.get("array", value.get("samples"))
        rate = value.get("sample_rate", value.get("sampling_rate"))
        if array is None or rate is None:
            raise InputError("an audio dict needs 'array' and 'sample_rate' (or 'sampling_rate') keys; got keys "
                             f"{sorted(value)}")
        return array, _check_rate(rate), "dict"
    if isinstance(value, tuple) and len(value) == 2 and np.isscalar(value[1]):
        return value[0], _check_rate(value[1]), "tuple"
    if isinstance(value, tuple) and len(value) == 2 and np.isscalar(value[0]):  # scipy.io.wavfile.read's order
        return value[1], _check_rate(value[0]), "tuple"
    if isinstance(value, (np.ndarray, torch.Tensor, list)):
        return value, int(default_rate), "array"
    raise InputError(f"cannot read audio from a {type(value).__name__}; expected a .wav path, WAV bytes, "
                     "{'array': samples, 'sample_rate': rate}, (samples, rate), (rate, samples) or a 1-D array")


def _check_rate(rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not rate >= 1 or not np.isfinite(rate):
        raise InputError(f"audio sample rate must be a number of samples per second, at least 1, got {rate!r}")
    return int(round(float(rate)))


def _is_wav_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray)) and bytes(value[:4]) in RIFF_IDS and value[8:12] == b"WAVE"


#: File name endings of audio formats automm-audio does not read: a column of them is audio
#: still (its rows are refused, saying to convert them), not text made of the file names.
OTHER_AUDIO_EXTENSIONS = (".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")


def _audio_name(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(
        AUDIO_EXTENSIONS + OTHER_AUDIO_EXTENSIONS)


def _wav_record(value: Any) -> bool:
    """A Hugging Face ``datasets`` audio record as stored (Parquet, pandas): ``{"bytes", "path"}``
    with the bytes of an audio file (WAV, or a format refused with its name when read), or
    without bytes an audio file's path."""
    if not isinstance(value, dict) or not set(value) <= {"bytes", "path"} or not value:
        return False
    data, path = value.get("bytes"), value.get("path")
    if isinstance(data, (bytes, bytearray)):
        return _is_wav_bytes(data) or other_audio_format(data[:12]) is not None
    return data is None and _audio_name(path)


def _is_number(value: Any) -> bool:
    """A Python or numpy int or float (``list(array)`` gives numpy scalars), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def looks_like_audio(value: Any) -> bool:
    """Whether a column value is audio: a .wav path, WAV bytes, a ``{"bytes", "path"}`` record of
    them, or samples with a sample rate (a dict, or a ``(samples, rate)`` or ``(rate, samples)``
    tuple). The path or bytes of another audio format (MP3, FLAC, ...) is audio too, so that its
    column is read as audio and its rows refused, saying to convert them, not learnt as names."""
    if isinstance(value, (str, os.PathLike)):
        return _audio_name(value)
    if _is_wav_bytes(value) or _wav_record(value):
        return True
    if isinstance(value, dict):
        return "array" in value and ("sample_rate" in value or "sampling_rate" in value)
    if isinstance(value, tuple) and len(value) == 2:
        samples, rate = value[::-1] if _is_number(value[0]) else value  # (rate, samples): scipy.io.wavfile.read
        numeric_rate = _is_number(rate)
        is_samples = (isinstance(samples, (np.ndarray, torch.Tensor)) and 1 <= samples.ndim <= 2) or (
            isinstance(samples, list) and bool(samples) and _is_number(samples[0]))
        return is_samples and numeric_rate and rate > 0
    return False


# -- resampling and framing --------------------------------------------------------------

#: Zero crossings of the windowed-sinc interpolation kernel on each side of its centre.
_ZERO_CROSSINGS = 16
#: Polyphase kernels (phases x taps) larger than this are not built: the kernel is evaluated per output sample.
_POLYPHASE_LIMIT = 1 << 22


def _sinc_weights(distance: torch.Tensor, cutoff: float, half: int) -> torch.Tensor:
    """The Hann-windowed sinc low-pass kernel (``cutoff`` as a fraction of the source's Nyquist
    rate, ``half`` source samples each side) at ``distance`` (source samples, float64) from each
    output sample, each row normalised to a sum of one (a constant stays that constant, but within
    ``half`` source samples of either end, where the signal is padded with zeros)."""
    window = torch.cos(math.pi * distance.clamp(-half, half) / (2 * half)).square() * (distance.abs() < half)
    weights = cutoff * torch.sinc(cutoff * distance) * window
    return (weights / weights.sum(dim=-1, keepdim=True)).float()


@lru_cache(maxsize=32)
def _polyphase_kernels(orig: int, new: int, half: int, cutoff: float) -> torch.Tensor:
    """(new, 1, 2 half + orig) kernels: output ``i`` of each group of ``new`` from the ``orig``
    source samples of its group and ``half`` on each side."""
    phase = torch.arange(new, dtype=torch.float64)
    offsets = torch.arange(-half, half + orig, dtype=torch.float64)
    return _sinc_weights(((phase + 0.5) * orig / new - 0.5)[:, None] - offsets[None, :], cutoff, half)[:, None, :]


def resample(samples: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """Resample a 1-D signal from ``rate`` to ``target`` Hz by windowed-sinc interpolation (a
    Hann-windowed sinc low-pass at 0.95 of the lower Nyquist rate, evaluated at each output
    sample's position): no images when upsampling, no aliases when downsampling, by any ratio.
    Output sample ``j`` is at source position ``(j + 0.5) * rate / target - 0.5``."""
    if rate == target or samples.numel() == 0:
        return samples
    x = samples.float().reshape(-1)
    n = x.numel()
    length = max(1, int(round(n * target / rate)))
    cutoff = 0.95 * min(1.0, target / rate)
    half = int(math.ceil(_ZERO_CROSSINGS / cutoff))
    common = math.gcd(int(rate), int(target))
    orig, new = int(rate) // common, int(target) // common
    if new * (2 * half + orig) <= _POLYPHASE_LIMIT:  # the usual rates: one strided convolution
        groups = -(-length // new)
        padded = torch.nn.functional.pad(x, (half, max(0, groups * orig + half - n)))
        out = torch.nn.functional.conv1d(padded.view(1, 1, -1), _polyphase_kernels(orig, new, half, cutoff),
                                         stride=orig)
        return out[0].t().reshape(-1)[:length]
    # rates without a small common period (16001 Hz): the kernel at each output sample, in blocks
    offsets = torch.arange(-half + 1, half + 1)
    padded = torch.nn.functional.pad(x, (half, half + 1))
    out = torch.empty(length)
    block = max(1, (1 << 20) // (2 * half))
    for first in range(0, length, block):
        position = (torch.arange(first, min(length, first + block), dtype=torch.float64) + 0.5) * rate / target - 0.5
        base = torch.floor(position)
        weights = _sinc_weights((position - base)[:, None] - offsets[None, :].double(), cutoff, half)
        index = (base.long()[:, None] + offsets[None, :] + half).clamp(0, padded.numel() - 1)
        out[first:first + len(position)] = (padded[index] * weights).sum(dim=1)
    return out


def fix_length(samples: torch.Tensor, length: int) -> torch.Tensor:
    """Centre-crop or zero-pad (both sides) to exactly ``length`` samples."""
    n = samples.numel()
    if n == length:
        return samples
    if n > length:
        start = (n - length) // 2
        return samples[start:start + length]
    before = (length - n) // 2
    return torch.nn.functional.pad(samples, (before, length - n - before))


# -- mel spectrogram ---------------------------------------------------------------------

def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale between
    ``f_min`` and ``f_max`` (default: Nyquist), each normalised to unit area (Slaney-style
    2 / bandwidth), so that loudness does not depend on a band's width."""
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}, {sample_rate}")
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                                     dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    filters = filters * (2.0 / (upper - lower))
    return filters.float()


class LogMelSpectrogram(torch.nn.Module):
    """Waveform (..., samples) → natural-log mel power spectrogram (..., n_mels, frames):
    a Hann-windowed STFT (centred, reflect padding), power, the mel filterbank, ``log(x + 1e-6)``."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 20.0, f_max: float | None = None):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = int(sample_rate), int(n_fft), int(hop_length), int(n_mels)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(self.n_mels, self.n_fft, self.sample_rate, f_min, f_max),
                             persistent=False)

    def frames(self, n_samples: int) -> int:
        return n_samples // self.hop_length + 1

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        flat = waveform.reshape(-1, shape[-1]).float()
        spec = torch.stft(flat, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.filters, power)
        return torch.log(mel + 1e-6).reshape(*shape[:-1], self.n_mels, -1)


#: WAV files :func:`audio_problem` checked (:func:`check_wav`) and found readable: absolute path -> (size,
#: modification time), so that the encoder's ``prepare`` (run after that check, and in every
#: trial of a search) does not read their headers again while they stay unchanged.
_READABLE: dict[str, tuple[int, int]] = {}
_READABLE_LIMIT = 100_000
_READABLE_LOCK = threading.Lock()


def _file_key(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


def checked_readable(path: str | os.PathLike) -> bool:
    """Whether :func:`audio_problem` found the WAV file ``path`` readable and it has not changed since."""
    try:
        key = _file_key(os.stat(path))
    except (OSError, ValueError):
        return False
    return _READABLE.get(os.path.abspath(os.fspath(path))) == key


def audio_problem(value: Any) -> str | None:
    """Why ``value`` (a WAV path or bytes, a clip dict or tuple, an array) cannot be read as
    audio, or None: checked as training will read it (a WAV file's chunks and encoding, and a
    float file's samples; PCM samples always decode, so they are not read: :func:`check_wav`).
    Of a path, the reason without it (the message about its row names it); of a record's path,
    with it (the row shows the record's type only). A readable WAV file is remembered
    (:func:`checked_readable`)."""
    info = None
    if isinstance(value, (str, os.PathLike)):
        try:
            info = os.stat(value)
        except (OSError, ValueError) as exc:  # missing, or what the system said instead (a link's loop, a folder's rights)
            return lookup_problem(value, exc)
        if not S_ISREG(info.st_mode):  # a directory, a pipe (read, it would block), a device (/dev/zero)
            return f"{file_kind(info.st_mode)}, not an audio file"
    try:
        if isinstance(value, (str, os.PathLike, bytes, bytearray)):
            check_wav(value)
        else:
            load_audio(value, 16000)
    except _WavError as exc:  # a path the message about its row names already: why, not the path again
        return exc.reason if isinstance(value, (str, os.PathLike)) else str(exc)
    except InputError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        return f"{type(exc).__name__}: {exc}"
    if info is not None:
        with _READABLE_LOCK:
            if len(_READABLE) >= _READABLE_LIMIT:
                del _READABLE[next(iter(_READABLE))]  # the oldest
            _READABLE[os.path.abspath(os.fspath(value))] = _file_key(info)
    return None
