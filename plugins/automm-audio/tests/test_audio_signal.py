"""WAV reading, resampling and the log-mel spectrogram."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_audio", reason="the automm-audio plugin is not installed (pip install ./plugins/automm-audio[test])")

import struct
import wave

import numpy as np
import torch

from automm import InputError
from automm_audio import LogMelSpectrogram, load_audio, mel_filterbank, read_wav, write_wav
from automm_audio.signal import fix_length, hz_to_mel, mel_to_hz, resample


def _tone(freq, rate, seconds=0.5, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spectrum) * rate / len(samples)


def test_wav_round_trip_16_bit_stereo(tmp_path):
    left, right = _tone(440, 8000), _tone(880, 8000)
    write_wav(tmp_path / "a.wav", np.stack([left, right], axis=1), 8000)
    samples, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and samples.shape == (4000, 2)
    np.testing.assert_allclose(samples[:, 0], left, atol=1e-4)
    mono, rate = load_audio(str(tmp_path / "a.wav"), 16000)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-4)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_wav_other_pcm_widths(tmp_path, width):
    tone = _tone(300, 8000)
    if width == 1:
        raw = (np.clip(tone, -1, 1) * 127 + 128).round().astype(np.uint8).tobytes()
    else:
        bits = 8 * width
        ints = (tone * (2 ** (bits - 1) - 1)).round().astype(np.int64)
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    with wave.open(str(tmp_path / "w.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(width)
        handle.setframerate(8000)
        handle.writeframes(raw)
    samples, _ = read_wav(tmp_path / "w.wav")
    np.testing.assert_allclose(samples[:, 0], tone, atol=1.0 / 2 ** (8 * width - 2))


def test_float_wav(tmp_path):
    tone = _tone(500, 11025)
    data = tone.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 11025, 11025 * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "f.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    samples, rate = read_wav(tmp_path / "f.wav")
    assert rate == 11025
    np.testing.assert_array_equal(samples[:, 0], tone)


def test_load_audio_accepts_arrays_with_rates():
    tone = _tone(440, 8000)
    for value in ({"array": tone, "sample_rate": 8000}, {"array": tone, "sampling_rate": 8000}, (tone, 8000)):
        samples, rate = load_audio(value, 16000)
        assert rate == 8000 and np.array_equal(samples, tone)
    samples, rate = load_audio(tone, 16000)  # a bare array is at the encoder's rate
    assert rate == 16000
    ints, _ = load_audio(((tone * 32767).astype(np.int16), 8000), 16000)
    np.testing.assert_allclose(ints, tone, atol=1e-4)
    stereo, _ = load_audio((np.stack([tone, tone]), 8000), 16000)  # channels first
    np.testing.assert_allclose(stereo, tone, atol=1e-6)


@pytest.mark.parametrize("value, message", [
    ({"array": [0.1]}, "sample_rate"), ((np.zeros(10), -5), "sample rate"), (3.5, "cannot read audio"),
    ((np.full(10, np.nan), 8000), "NaN"), ("missing.wav", "cannot read audio file"),
])
def test_load_audio_errors(value, message):
    with pytest.raises(InputError, match=message):
        load_audio(value, 16000)


def test_not_a_wav_file(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"this is not audio at all")
    with pytest.raises(InputError, match="WAV"):
        read_wav(tmp_path / "x.wav")


def test_resample_keeps_frequency_and_suppresses_aliases():
    tone = torch.from_numpy(_tone(1000, 22050, seconds=1.0))
    down = resample(tone, 22050, 8000).numpy()
    assert len(down) == 8000 and abs(_peak_hz(down, 8000) - 1000) < 5
    up = resample(torch.from_numpy(_tone(1000, 8000, seconds=1.0)), 8000, 16000).numpy()
    assert len(up) == 16000 and abs(_peak_hz(up, 16000) - 1000) < 5
    above_nyquist = resample(torch.from_numpy(_tone(6000, 22050, seconds=1.0)), 22050, 8000).numpy()
    assert np.abs(above_nyquist[200:-200]).max() < 0.05  # 6 kHz cannot exist at 8 kHz: filtered, not aliased


def test_fix_length():
    x = torch.arange(10.0)
    assert torch.equal(fix_length(x, 4), torch.tensor([3.0, 4.0, 5.0, 6.0]))
    padded = fix_length(x, 14)
    assert padded.shape == (14,) and torch.equal(padded[2:12], x) and padded[:2].abs().sum() == 0


def test_mel_scale_and_filterbank():
    assert abs(float(hz_to_mel(1000.0)) - 1000.0) < 0.5  # HTK: 1000 Hz is ~1000 mel
    assert abs(float(mel_to_hz(hz_to_mel(3210.0))) - 3210.0) < 1e-6
    filters = mel_filterbank(40, 512, 16000)
    assert filters.shape == (40, 257) and (filters >= 0).all()
    assert (filters.sum(dim=1) > 0).all()  # no empty filter
    peaks = filters.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all()  # centres increase with the band index
    bin_hz = 16000 / 512
    areas = filters.sum(dim=1) * bin_hz  # unit-area (Slaney) normalisation, up to discretisation
    assert torch.allclose(areas[10:], torch.ones(30), atol=0.15)


def test_log_mel_of_a_tone_peaks_in_its_band():
    mel = LogMelSpectrogram(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64)
    for freq in (300, 1000, 4000):
        spec = mel(torch.from_numpy(_tone(freq, 16000)))
        assert spec.shape == (64, 51)
        band = int(spec.mean(dim=1).argmax())
        centres = mel_to_hz(torch.linspace(float(hz_to_mel(20.0)), float(hz_to_mel(8000.0)), 66))[1:-1]
        assert abs(float(centres[band]) - freq) / freq < 0.15
    louder = mel(torch.from_numpy(_tone(1000, 16000, amplitude=1.0)))
    quieter = mel(torch.from_numpy(_tone(1000, 16000, amplitude=0.1)))
    assert abs(float((louder - quieter).max()) - 2 * np.log(10)) < 0.1  # power scales with amplitude squared


def test_a_long_clip_is_cropped_before_resampling_to_the_same_waveform():
    from automm_audio.encoder import AudioCNNEncoder

    encoder = AudioCNNEncoder(sample_rate=16000, duration=1.0)
    t = np.arange(44100 * 30) / 44100  # 30 s at 44.1 kHz of tones below 2 kHz
    long = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1830 * t + 1)).astype(np.float32)
    whole = fix_length(resample(torch.from_numpy(long), 44100, 16000), encoder.n_samples)
    cropped = encoder.waveform({"array": long, "sample_rate": 44100})
    assert cropped.shape == whole.shape
    # the same centre second (its samples' phase may differ by a fraction of a sample)
    assert float((cropped - whole).abs().max()) < 0.15 and float(torch.corrcoef(torch.stack([cropped, whole]))[0, 1]) > 0.98


def test_unsigned_8_bit_samples_are_centred_on_silence():
    samples, _ = load_audio({"array": np.array([128, 0, 255], np.uint8), "sample_rate": 8000}, 8000)
    np.testing.assert_allclose(samples, [0.0, -1.0, 127 / 128])


def test_read_wav_decodes_only_the_centre_stretch_asked_for(tmp_path):
    ramp = (np.arange(8000 * 10) % 8000 / 8000 - 0.5).astype(np.float32)  # 10 s at 8 kHz, one ramp per second
    write_wav(tmp_path / "long.wav", ramp, 8000)
    whole, rate = read_wav(tmp_path / "long.wav")
    centre, _ = read_wav(tmp_path / "long.wav", centre_seconds=2.0)
    assert rate == 8000 and len(whole) == 80000 and len(centre) == 16000
    np.testing.assert_array_equal(centre, whole[32000:48000])  # the middle two seconds
    short, _ = read_wav(tmp_path / "long.wav", centre_seconds=20.0)
    assert len(short) == 80000  # a clip shorter than asked: whole
