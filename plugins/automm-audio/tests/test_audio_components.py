"""The audio plugin's components against automm's contracts (automm.testing)."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_audio", reason="the automm-audio plugin is not installed (pip install ./plugins/automm-audio[test])")

import numpy as np
import torch

import automm
import automm_audio
from automm.testing import (check_augmentation, check_component_registration, check_encoder,
                            check_role_inference)
from automm_audio import write_wav
from automm_audio.datasets import make_signal

TINY = {"sample_rate": 8000, "duration": 0.5, "n_mels": 16, "n_fft": 128, "hop_length": 80, "width": 4,
        "depth": 2, "output_dim": 12}


def _values(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.wav"
    write_wav(path, make_signal("chirp_up", rng, 16000), 16000)
    return [str(path), {"array": make_signal("low_tone", rng, 8000), "sample_rate": 8000},
            (make_signal("noise_burst", rng, 22050), 22050), make_signal("high_tone", rng, 8000)]


def test_plugin_registers_cleanly_and_is_discovered():
    found = check_component_registration(
        automm_audio, expected={"encoder": ["audio_cnn"],
                                "augmentation": ["audio_time_shift", "audio_noise", "spec_augment"],
                                "dataset": ["tones"]})
    assert {s.modality for s in found["augmentation"]} == {"audio"}
    assert "audio" in automm.get_registry().modalities()
    assert automm.list_encoders(modality="audio") == ["audio_cnn"]


def test_audio_cnn_conforms(tmp_path):
    report = check_encoder("audio_cnn", _values(tmp_path), **TINY)
    assert report.outputs.shape == (5, 12)
    assert all(set(d) >= {"n_mels", "width", "depth"} for d in report.search_draws)


@pytest.mark.parametrize("name", ["audio_time_shift", "audio_noise", "spec_augment"])
def test_audio_augmentations_conform(name):
    spectrogram = automm.create_encoder("audio_cnn", **TINY).spectrogram(
        (make_signal("chirp_up", np.random.default_rng(1), 8000), 8000))
    check_augmentation(name, spectrogram, p=1.0)


def test_augmentations_change_what_they_say():
    encoder = automm.create_encoder("audio_cnn", **TINY)
    spec = encoder.spectrogram((make_signal("low_tone", np.random.default_rng(2), 8000, seconds=0.5), 8000))
    g = torch.Generator().manual_seed(0)
    shifted = automm.create_augmentation("audio_time_shift", max_shift=0.3, p=1.0)(spec, g)
    assert shifted.shape == spec.shape and not torch.equal(shifted, spec)
    noisy = automm.create_augmentation("audio_noise", snr_min=0.0, snr_max=0.0, p=1.0)(spec, g)
    assert (noisy >= spec - 1e-5).all()  # adding noise power never lowers a bin
    quiet = spec.exp().mean()
    assert 1.5 < float(noisy.exp().mean() / quiet) < 2.6  # 0 dB SNR: about twice the power
    masked = automm.create_augmentation("spec_augment", freq_masks=1, freq_width=4, time_masks=0, p=1.0)(spec, g)
    changed_rows = (masked != spec).any(dim=1).nonzero().flatten().tolist()
    assert len(changed_rows) <= 4  # one band of at most freq_width mel bins
    assert changed_rows == list(range(changed_rows[0], changed_rows[0] + len(changed_rows))) if changed_rows else True
    assert torch.equal(masked[changed_rows], torch.full_like(masked[changed_rows], float(spec.mean())))


def test_role_inference_recognises_audio_columns(tmp_path):
    values = _values(tmp_path)
    check_role_inference(automm_audio, ["a.wav", "b.WAV", "c.wav"], "audio")
    check_role_inference(automm_audio, [values[1], values[1]], "audio")
    check_role_inference(automm_audio, [values[2], values[2]], "audio")
    # other columns fall through to the built-in rules
    check_role_inference(automm_audio, ["a.png", "b.png"], "image")
    check_role_inference(automm_audio, ["red", "blue", "red"], "categorical")


def test_unreadable_audio_is_reported_before_training(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    encoder = automm.create_encoder("audio_cnn", **TINY)
    with pytest.raises(automm.InputError, match=r"2 audio value\(s\).*row 0.*not a WAV.*row 1.*not found"):
        encoder.prepare([str(tmp_path / "bad.wav"), str(tmp_path / "nope.wav"), automm.MISSING])


def _counting_opens(monkeypatch):
    """Count the files the plugin's modules open, by file name."""
    import builtins
    import collections
    import os

    opened = collections.Counter()

    def counting(file, *args, **kwargs):
        opened[os.path.basename(os.fspath(file))] += 1
        return builtins.open(file, *args, **kwargs)

    for module in (automm_audio.signal, automm_audio.encoder):
        monkeypatch.setattr(module, "open", counting, raising=False)
    return opened


def test_prepare_does_not_read_again_the_wav_files_the_column_check_read(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    paths = [str(tmp_path / f"{k}.wav") for k in range(3)]
    for path in paths:
        write_wav(path, make_signal("chirp_up", rng, 8000), 8000)
    opened = _counting_opens(monkeypatch)
    assert automm_audio.automm_check_column(role="audio", name="clip", values=paths) == []
    encoder = automm.create_encoder("audio_cnn", **TINY)
    encoder.prepare(paths)
    assert opened == {f"{k}.wav": 1 for k in range(3)}  # read once, by the column check
    (tmp_path / "1.wav").write_bytes(b"not a wav, written since the check")  # changed: read again
    with pytest.raises(automm.InputError, match=r"1 audio value\(s\).*row 1 .*1.wav'\): not a WAV file"):
        encoder.prepare(paths)
    assert opened == {"0.wav": 1, "1.wav": 2, "2.wav": 1}


def test_search_space_sizes_stay_valid():
    # every draw of the search space must build for the default duration (no too-deep nets)
    spec = automm.get_registry().get("encoder", "audio_cnn")
    from automm.testing import check_search_space

    for draw in check_search_space(spec, n_draws=6):
        built = automm.create_encoder("audio_cnn", **draw)
        assert built.output_dim == draw["output_dim"]


def test_readme_names_the_hooks_the_plugin_implements():
    import re
    from pathlib import Path

    import automm.hookspecs

    intro = (Path(__file__).parents[1] / "README.md").read_text().split("\n## ")[0]
    hook_names = {name for name in dir(automm.hookspecs) if name.startswith("automm_")}
    named = set(re.findall(r"`(automm_\w+)`", intro)) & hook_names
    implemented = {name for name in dir(automm_audio) if hasattr(getattr(automm_audio, name), "automm_impl")}
    assert named == implemented and len(implemented) == 5


def test_background_noise_is_white_whatever_the_clip():
    from automm_audio.augmentations import BackgroundNoise
    from automm_audio.signal import LogMelSpectrogram

    melspec = LogMelSpectrogram(16000, 512, 160, 64)
    t = torch.arange(32000) / 16000
    hum = melspec(torch.sin(2 * torch.pi * 150 * t))  # all its power in the lowest bands
    noisy = BackgroundNoise(snr_min=0.0, snr_max=0.0, p=1.0)(hum, torch.Generator().manual_seed(0))
    added = (torch.exp(noisy.double()) - torch.exp(hum.double())).mean(dim=1)  # per band
    low, high = added[:16].mean(), added[-16:].mean()
    assert 0.8 < float(low / high) < 1.25  # the same level in every band, not shaped like the hum
    assert float(added.mean() / torch.exp(hum.double()).mean()) == pytest.approx(1.0, rel=0.1)  # at 0 dB


@pytest.mark.parametrize("name, params, message", [
    ("audio_noise", {"snr_min": float("nan")}, "snr_min must be a finite number"),
    ("spec_augment", {"time_masks": 2.7}, "time_masks must be a whole number"),
    ("audio_time_shift", {"p": "x"}, r"^p must be a number in \[0, 1\], got 'x'$"),  # (float()'s words: 'x' not converted)
])
def test_augmentation_values_are_refused_where_given(name, params, message):
    with pytest.raises(ValueError, match=message):
        automm.get_registry().get("augmentation", name).create(**params)


@pytest.mark.parametrize("params, message", [
    ({"duration": float("inf")}, "duration must be a positive number"),
    ({"duration": 0.015, "hop_length": 5}, "too few for n_fft=512"),
    ({"pooling": "mean"}, r"pooling must be one of 'global', 'bands'; got 'mean'"),
])
def test_audio_cnn_values_are_refused_before_any_work(params, message):
    with pytest.raises(automm.InputError, match=message):
        automm_audio.AudioCNNEncoder(**params)


def test_a_clip_as_a_wav_file_and_as_an_array_gives_the_same_waveform(tmp_path):
    """The file's centre stretch was cropped twice, rounding apart from the array's one crop: one
    sample's offset, a log-mel difference of up to 3."""
    from automm_audio import write_wav

    from automm_audio.encoder import AudioCNNEncoder

    rng = np.random.default_rng(0)
    rate = 22050
    t = np.arange(5 * rate + 1) / rate
    clip = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    write_wav(tmp_path / "c.wav", clip, rate)
    encoder = AudioCNNEncoder(sample_rate=16000, duration=2.0)
    from automm_audio.signal import read_wav

    written, _ = read_wav(tmp_path / "c.wav")
    from_file = encoder.waveform(str(tmp_path / "c.wav"))
    from_array = encoder.waveform({"array": written, "sample_rate": rate})
    assert torch.allclose(from_file, from_array, atol=1e-6)


def test_fit_says_when_much_of_the_training_audio_is_not_heard(tmp_path):
    # voice notes of 3 s, of which audio_cnn hears the middle 0.5 s: a sound elsewhere is lost, which fit
    # did not say (20-40 s notes, a 1.5 s sound anywhere in them: 0.25 accuracy of 4 classes, no warning)
    rng = np.random.default_rng(0)
    notes = [make_signal("chirp_up", rng, 8000, seconds=3.0) for _ in range(3)]
    write_wav(tmp_path / "note.wav", notes[0], 8000)  # a file: measured from its headers
    values = [str(tmp_path / "note.wav"), {"array": np.stack([notes[1]] * 2), "sample_rate": 8000},
              (8000, (notes[2] * 32767).astype(np.int16)), automm.MISSING]
    encoder = automm_audio.AudioCNNEncoder(**TINY).fit(values)
    assert encoder.fit_warnings_ == [
        "83% of the training audio is not heard: audio_cnn hears the middle 0.5 s of each clip (duration), and 100% "
        "of the clips are longer (the longest 3 s), so a sound elsewhere in them is lost. To hear more (its time and "
        "memory grow with it): encoders={'audio': {'name': 'audio_cnn', 'duration': 3}} holds 90% of the clips whole"]
    # clips a little longer than the duration lose little: nothing to say
    short = [{"array": make_signal("low_tone", rng, 8000, seconds=s), "sample_rate": 8000} for s in (0.4, 0.5, 0.6)]
    assert automm_audio.AudioCNNEncoder(**TINY).fit(short).fit_warnings_ == []


def test_audio_cnn_pools_over_time_per_frequency_band_or_over_both():
    import optuna

    spec = automm.create_encoder("audio_cnn", **TINY).preprocess((make_signal("low_tone", np.random.default_rng(3),
                                                                               8000), 8000))
    for pooling, features in (("global", 2 * 8), ("bands", 2 * 8 * (16 // 4))):  # 8 channels, 16 mels / 2**2 bands
        encoder = automm.create_encoder("audio_cnn", **dict(TINY, pooling=pooling)).eval()
        assert encoder.project.in_features == features
        assert encoder(spec[None]).shape == (1, 12)
    # the default pools over both, as before: its parameters are those of a model saved without `pooling`
    default = automm.create_encoder("audio_cnn", **TINY)
    assert default.pooling == "global" and automm_audio.AUDIO_CNN_DEFAULTS["pooling"] == "global"
    # the search picks it per task, under the encoder's prefix
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {automm.get_registry().get("encoder", "audio_cnn").suggest(study.ask(), "audio.")["pooling"]
             for _ in range(12)}
    assert drawn == {"global", "bands"}
