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


# -- WAV layouts and messages (the files are built here, byte by byte) ------------------------

_PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # the subformat GUID after its format tag


def _wav_bytes(fmt: bytes, data: bytes, declared_data_size: int | None = None) -> bytes:
    size = len(data) if declared_data_size is None else declared_data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _extensible_fmt(channels, rate, container_bits, valid_bits, subformat_tag):
    block = channels * container_bits // 8
    return (struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, container_bits)
            + struct.pack("<HHI", 22, valid_bits, 0) + struct.pack("<H", subformat_tag) + _PCM_GUID_TAIL)


def _encode(samples, container_bits, valid_bits, float_samples):
    """(n, channels) floats in [-1, 1] → little-endian bytes, valid bits left-justified in the container."""
    if float_samples:
        return samples.astype("<f4" if container_bits == 32 else "<f8").tobytes()
    ints = np.round(samples * (2 ** (valid_bits - 1) - 1)).astype(np.int64) << (container_bits - valid_bits)
    if container_bits == 8:
        ints = ints + 128  # 8-bit PCM is unsigned
    return b"".join(int(v).to_bytes(container_bits // 8, "little", signed=container_bits > 8) for v in ints.ravel())


@pytest.mark.parametrize("container_bits, valid_bits, float_samples", [
    (8, 8, False), (16, 16, False), (24, 24, False), (32, 32, False), (32, 24, False), (32, 32, True), (64, 64, True)])
def test_extensible_wav_pcm_and_float(tmp_path, container_bits, valid_bits, float_samples):
    # WAVE_FORMAT_EXTENSIBLE (ffmpeg and recorders write it for > 16 bits or > 2 channels), 3 channels
    tone = np.stack([_tone(300, 8000, seconds=0.1), _tone(700, 8000, seconds=0.1), np.zeros(800, np.float32)], 1)
    fmt = _extensible_fmt(3, 8000, container_bits, valid_bits, 3 if float_samples else 1)
    (tmp_path / "ext.wav").write_bytes(_wav_bytes(fmt, _encode(tone, container_bits, valid_bits, float_samples)))
    samples, rate = read_wav(tmp_path / "ext.wav")
    assert rate == 8000 and samples.shape == (800, 3)
    np.testing.assert_allclose(samples, tone, atol=1e-6 if float_samples else 2.0 / 2 ** (valid_bits - 1))


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_samples_in_wider_containers_than_their_bits_are_read_by_the_block_align(channels):
    # 24-bit samples in 32-bit containers under a plain PCM header (bits 24, block align 4 a channel), as
    # some tools write them: read at the block align's width, as scipy.io.wavfile does (they were read 3
    # bytes at a time, the frames misaligned: noise, no error)
    tone = np.stack([_tone(300, 8000, seconds=0.1), _tone(700, 8000, seconds=0.1)][:channels], 1)
    fmt = struct.pack("<HHIIHH", 1, channels, 8000, 8000 * 4 * channels, 4 * channels, 24)
    samples, rate = read_wav(_wav_bytes(fmt, _encode(tone, 32, 24, False)))
    assert rate == 8000 and samples.shape == (800, channels)
    np.testing.assert_allclose(samples, tone, atol=2.0 / 2 ** 23)


@pytest.mark.parametrize("fmt, message", [
    (struct.pack("<HHIIHH", 2, 1, 8000, 4096, 256, 4), r"format tag 0x0002 \(MS ADPCM\), 4 bits"),
    (_extensible_fmt(1, 8000, 8, 8, 6),
     r"extensible format, subformat 00000006-0000-0010-8000-00aa00389b71 \(A-law\), 8 bits"),
    (struct.pack("<HHIIHH", 3, 1, 8000, 16000, 2, 16), r"format tag 0x0003 \(IEEE float\), 16 bits"),
], ids=["adpcm", "extensible-alaw", "float16"])
def test_unsupported_wav_encoding_names_the_real_tag_and_subformat(fmt, message):
    with pytest.raises(InputError, match=r"unsupported WAV encoding \(" + message + r"\): <\d+ bytes>"):
        read_wav(_wav_bytes(fmt, b"\x00" * 16))


def test_unreadable_wav_files_say_why(tmp_path):
    from automm_audio.signal import audio_problem

    (tmp_path / "empty.wav").write_bytes(b"")
    assert audio_problem(str(tmp_path / "empty.wav")) == "not a WAV file (empty, 0 bytes)"  # the row names the path
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    whole = _wav_bytes(fmt, np.arange(100, dtype="<i2").tobytes())
    (tmp_path / "cut.wav").write_bytes(whole[:-51])  # the data chunk cut short, mid-sample
    assert audio_problem(str(tmp_path / "cut.wav")) == (
        "WAV file cut short: its data chunk declares 200 bytes but 149 are left")
    assert audio_problem(whole[:30]).startswith("WAV file cut short before its data chunk")
    assert audio_problem(whole[:36]).startswith("WAV file without a data chunk")
    streamed = _wav_bytes(fmt, whole[44:], declared_data_size=0xFFFFFFFF)  # size unknown: to the end of the file
    assert np.array_equal(read_wav(streamed)[0], read_wav(whole)[0])


def test_an_unreadable_file_of_a_record_is_named_by_its_path(tmp_path):
    """A Hugging Face record's row is shown as its type ("row 0 (dict): ..."): its reason left its path out,
    and no message named the file."""
    from automm_audio.signal import audio_problem

    (tmp_path / "notes.wav").write_bytes(b"not a wav at all")
    assert audio_problem({"path": str(tmp_path / "notes.wav"), "bytes": None}) == (
        f"not a WAV file (no RIFF/WAVE header): {tmp_path / 'notes.wav'}")
    assert audio_problem({"path": str(tmp_path / "gone.wav"), "bytes": None}).endswith(str(tmp_path / "gone.wav"))
    assert audio_problem(str(tmp_path / "notes.wav")) == "not a WAV file (no RIFF/WAVE header)"  # its row names it


# -- samples as lists ----------------------------------------------------------------------

def test_a_list_of_python_ints_is_refused_as_having_no_sample_type():
    ints = (_tone(440, 8000, seconds=0.1) * 32767).astype(np.int16)
    for value in ((ints.tolist(), 8000), {"array": ints.tolist(), "sample_rate": 8000}, ints.tolist(),
                  ([ints.tolist(), ints.tolist()], 8000)):
        with pytest.raises(InputError, match=r"list of Python ints have no sample type.*dtype=np.int16"):
            load_audio(value, 8000)
    typed, _ = load_audio((list(ints), 8000), 8000)  # numpy int16 scalars keep their type
    np.testing.assert_allclose(typed, ints / 32768.0, atol=1e-6)
    floats, _ = load_audio(((ints / 32768.0).tolist(), 8000), 8000)
    np.testing.assert_allclose(floats, typed, atol=1e-6)


def test_tuples_of_numpy_scalar_lists_are_audio_columns():
    import automm_audio
    from automm.testing import check_role_inference
    from automm_audio import looks_like_audio

    tone = _tone(440, 8000, seconds=0.1)
    assert looks_like_audio((list(tone), 8000)) and looks_like_audio((list(tone.astype(np.float64)), np.int64(8000)))
    assert looks_like_audio((tone.astype(np.int16).tolist(), 8000))  # audio, refused with a message when read
    assert not looks_like_audio(([True, False], 8000))
    check_role_inference(automm_audio, [(list(tone), 8000)] * 3, "audio")
    problems = automm_audio.automm_check_column(role="audio", name="clip", values=[(list(tone), 8000), ([1, 2], 8000)])
    assert [row for row, _ in problems] == [1] and "list of Python ints" in problems[0][1]


# -- what users give that a first reading got wrong ------------------------------------------

def test_a_float_wav_with_nan_or_infinite_samples_is_refused_as_arrays_are(tmp_path):
    from automm_audio.signal import audio_problem

    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    for bad in (np.nan, np.inf):
        tone = _tone(440, 8000, seconds=0.1)
        tone[100] = bad
        path = tmp_path / f"{bad}.wav"
        path.write_bytes(_wav_bytes(fmt, tone.astype("<f4").tobytes()))
        assert audio_problem(str(path)) == "WAV file holds NaN or infinite samples"
        with pytest.raises(InputError, match="NaN or infinite"):
            load_audio(str(path), 8000)


def test_a_data_chunk_a_stopped_recorder_never_sized_runs_to_the_end(tmp_path):
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    samples = (_tone(440, 8000, seconds=0.1) * 32767).astype("<i2").tobytes()
    whole = _wav_bytes(fmt, samples)
    unfinished = bytearray(_wav_bytes(fmt, samples, declared_data_size=0))
    unfinished[4:8] = struct.pack("<I", 0)  # the RIFF size never written either
    assert np.array_equal(read_wav(bytes(unfinished))[0], read_wav(whole)[0])
    (tmp_path / "header_only.wav").write_bytes(_wav_bytes(fmt, b""))
    with pytest.raises(InputError, match="WAV file holds no samples"):
        read_wav(tmp_path / "header_only.wav")


def test_scipy_wavfile_order_rate_first_is_audio():
    from automm_audio import looks_like_audio

    tone = (_tone(440, 8000, seconds=0.1) * 32767).astype(np.int16)
    assert looks_like_audio((8000, tone))
    samples, rate = load_audio((8000, tone), 16000)
    assert rate == 8000
    np.testing.assert_allclose(samples, tone / 32768.0, atol=1e-6)


@pytest.mark.parametrize("head, name", [(b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "an MP3"),
                                        (b"\xff\xfb\x90\x00" + b"\x00" * 8, "an MP3"),
                                        (b"fLaC\x00\x00\x00\x22" + b"\x00" * 4, "a FLAC"),
                                        (b"OggS\x00\x02" + b"\x00" * 6, "an Ogg"),
                                        (b"\x00\x00\x00\x20ftypM4A ", "an MP4/M4A")])
def test_other_audio_formats_are_named_with_how_to_convert_them(tmp_path, head, name):
    import automm_audio
    from automm_audio import looks_like_audio

    path = tmp_path / "clip.mp3"
    path.write_bytes(head + b"\x00" * 200)
    with pytest.raises(InputError, match=f"{name}.*file, not WAV.*ffmpeg -i IN -ar 16000 OUT.wav"):
        read_wav(path)
    record = {"bytes": head + b"\x00" * 200, "path": "clip.mp3"}  # a Hugging Face audio record as stored
    assert looks_like_audio(record) and looks_like_audio(str(path))
    with pytest.raises(InputError, match=f"{name}.*file, not WAV"):
        load_audio(record, 16000)
    # a column of .wav and .mp3 files is audio (the .mp3 rows refused, saying why), not their names as text
    assert automm_audio.automm_infer_column_role(name="clip", values=["a.wav", "b.wav", "c.wav", "d.mp3"]) == "audio"


def test_a_sample_rate_below_one_is_refused_before_resampling():
    with pytest.raises(InputError, match="sample rate must be a number of samples per second, at least 1"):
        load_audio((np.zeros(100, dtype=np.float32), 0.3), 16000)


def test_downsampling_by_a_large_ratio_keeps_aliases_down():
    rate, target = 48000, 8000
    tone = torch.from_numpy(_tone(1.1 * target / 2, rate, seconds=1.0))  # 10% above the new Nyquist rate
    down = resample(tone, rate, target).numpy()[400:-400]
    assert 20 * np.log10(np.abs(down).max() / 0.5) < -45


def test_the_column_check_reads_a_pcm_file_s_headers_not_its_samples(tmp_path, monkeypatch):
    # a 60 s 24-bit recording took 150 ms to check (every sample decoded), 150 times what training reads of it
    import automm_audio.signal as signal

    fmt = struct.pack("<HHIIHH", 1, 2, 48000, 48000 * 6, 6, 24)
    path = tmp_path / "long.wav"
    path.write_bytes(_wav_bytes(fmt, b"\x00" * 6 * 48000 * 3))
    decoded = []
    real = signal._pcm_to_float
    monkeypatch.setattr(signal, "_pcm_to_float", lambda raw, *args: decoded.append(len(raw)) or real(raw, *args))
    assert signal.audio_problem(str(path)) is None and decoded == []
    assert signal.audio_problem(path.read_bytes()) is None and decoded == []
    assert load_audio(str(path), 16000, centre_seconds=1.0)[0].shape == (48000,) and decoded == [6 * 48000]
    assert signal.audio_problem(_wav_bytes(fmt, b"\x00" * 5)) == "WAV file holds no samples: <49 bytes>"


@pytest.mark.parametrize("freq, rate, target", [(3000, 8000, 16000), (7000, 22050, 16000), (3500, 11025, 16000),
                                                (7000, 44100, 16000)])
def test_resampling_by_any_ratio_adds_no_images_or_aliases(freq, rate, target, monkeypatch):
    # linear interpolation made a 3 kHz tone at 8 kHz a 5 kHz one too, 10.5 dB down, and itself 5 dB quieter;
    # a 7 kHz tone at 22.05 kHz a 950 Hz one, 12.7 dB down
    import automm_audio.signal as signal

    tone = torch.from_numpy(_tone(freq, rate, seconds=1.0))
    out = resample(tone, rate, target).numpy()
    assert len(out) == target
    spectrum = np.abs(np.fft.rfft(out[500:-500] * np.hanning(target - 1000)))
    hz = np.fft.rfftfreq(target - 1000, 1 / target)
    peak = spectrum[np.abs(hz - freq) < 30].max()
    assert 20 * np.log10(np.delete(spectrum, np.flatnonzero(np.abs(hz - freq) < 60)).max() / peak) < -45
    assert abs(np.abs(out[500:-500]).max() - 0.5) < 0.03  # the tone keeps its level
    monkeypatch.setattr(signal, "_POLYPHASE_LIMIT", 0)  # the path of rates without a small common period
    np.testing.assert_allclose(resample(tone, rate, target).numpy(), out, atol=1e-5)


def test_64_bit_integer_samples_are_refused_not_read_as_silence():
    # np.asarray of a list of ints is int64: scaled by the int64 range, a full-scale tone became 2e-15,
    # silence, and a tone-band task fitted on such clips scored chance (0.5) where int16 scored 0.9
    import automm_audio

    ints = (_tone(440, 8000, seconds=0.1) * 32767).round()
    for value in ((ints.astype(np.int64), 8000), (8000, np.stack([ints, ints], axis=1).astype(np.uint64)),
                  {"array": torch.from_numpy(ints.astype(np.int64)), "sample_rate": 8000}):
        with pytest.raises(InputError, match=r"of type u?int64: no audio format has 64-bit integer samples.*"
                                             r"dtype=np.int16"):
            load_audio(value, 8000)
    problems = automm_audio.automm_check_column(role="audio", name="clip",
                                                values=[(ints.astype(np.int16), 8000), (ints.astype(np.int64), 8000)])
    assert [row for row, _ in problems] == [1] and "64-bit integer" in problems[0][1]
    np.testing.assert_allclose(load_audio((ints.astype(np.int32) << 16, 8000), 8000)[0], ints / 32768, atol=1e-6)


def test_a_long_multichannel_array_is_cropped_before_it_is_converted(monkeypatch):
    # a 10-minute 6-channel int16 clip (346 MB) was converted whole to float64, every channel, at each
    # read: 2.2 GB and 8 s for the 2 s a model keeps; a WAV file of it reads only those seconds
    import automm_audio.signal as signal
    from automm_audio.encoder import AudioCNNEncoder

    rate, seconds = 8000, 30
    ints = (np.random.default_rng(0).uniform(-0.5, 0.5, (rate * seconds, 6)) * 32767).astype(np.int16)
    converted = []
    real = signal._integer_pcm
    monkeypatch.setattr(signal, "_integer_pcm",
                        lambda values, *args: converted.append(values.size) or real(values, *args))
    encoder = AudioCNNEncoder(duration=1.0)
    for value in ((ints, rate), {"array": ints.T, "sample_rate": rate}):
        converted.clear()
        waveform = encoder.waveform(value)
        assert converted and max(converted) <= 1.2 * rate  # 1.1 s of one mixed channel, not 30 s of six
        whole = torch.from_numpy(ints.mean(axis=1) / 32768.0)
        expected = signal.fix_length(resample(signal.fix_length(whole, 8000 + 2 * 256).float(), rate, 16000), 16000)
        np.testing.assert_allclose(waveform.numpy(), expected.numpy(), atol=1e-5)
    mono, _ = load_audio((ints, rate), 16000, centre_seconds=1.1)
    assert mono.shape == (8800,)
    np.testing.assert_allclose(mono, ints.mean(axis=1)[(len(ints) - 8800) // 2:][:8800] / 32768, atol=1e-6)


@pytest.mark.parametrize("magic", [b"RF64", b"BW64"])
def test_an_rf64_wav_file_is_read(tmp_path, magic):
    # the WAV of recordings over 4 GB (field recorders, ffmpeg -rf64 auto) was refused as "not a WAV file
    # (no RIFF/WAVE header)"; its data chunk's size is in the ds64 chunk, chunks may follow the data
    import automm_audio
    from automm_audio import looks_like_audio
    from automm_audio.encoder import AudioCNNEncoder
    from automm_audio.signal import audio_problem

    stereo = np.stack([_tone(440, 8000, seconds=0.1), _tone(880, 8000, seconds=0.1)], axis=1)
    samples = (stereo * 32767).round().astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, 8000, 32000, 4, 16)
    ds64 = b"ds64" + struct.pack("<IQQQI", 28, 0, len(samples), len(stereo), 0)
    body = (b"WAVE" + ds64 + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF)
            + samples + b"LIST" + struct.pack("<I", 4) + b"INFO")
    rf64 = magic + struct.pack("<I", 0xFFFFFFFF) + body
    path = tmp_path / "field.wav"
    path.write_bytes(rf64)
    expected = read_wav(_wav_bytes(fmt, samples))
    for value in (rf64, path):
        read, rate = read_wav(value)
        assert rate == 8000 and np.array_equal(read, expected[0])  # the LIST chunk after the data is not samples
    assert audio_problem(str(path)) is None and audio_problem(rf64) is None and looks_like_audio(rf64)
    assert automm_audio.automm_infer_column_role(name="clip", values=[rf64] * 3) == "audio"
    AudioCNNEncoder(duration=0.5).prepare([str(path)])  # its own header check, for files the column check did not see
    (tmp_path / "short.wav").write_bytes(rf64[:-200])
    assert audio_problem(str(tmp_path / "short.wav")).startswith("WAV file cut short: its data chunk declares 3200")


def test_an_audio_path_that_is_a_pipe_a_device_or_a_folder_is_named_as_one(tmp_path):
    """Such paths were refused as "file not found", though they are there."""
    import os

    from automm_audio.signal import audio_problem

    os.mkfifo(tmp_path / "clip.wav")
    assert audio_problem(str(tmp_path / "clip.wav")) == "a pipe (FIFO), not an audio file"
    assert audio_problem("/dev/zero") == "a device, not an audio file"
    assert audio_problem(str(tmp_path)) == "a directory, not an audio file"
    assert audio_problem(str(tmp_path / "gone.wav")) == "file not found"
