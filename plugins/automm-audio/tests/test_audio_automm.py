"""A tiny end-to-end AutoMM fit on an audio + text DataFrame."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_audio", reason="the automm-audio plugin is not installed (pip install ./plugins/automm-audio[test])")

import numpy as np
import pandas as pd

import automm
from automm import AutoMM
from automm_audio import write_wav
from automm_audio.datasets import CLASSES, make_signal

TINY = {"name": "audio_cnn", "sample_rate": 8000, "duration": 1.0, "n_mels": 32, "n_fft": 256, "hop_length": 80,
        "width": 8, "depth": 3, "output_dim": 32}
WORDS = {"low_tone": "hum", "high_tone": "beep", "chirp_up": "sweep", "noise_burst": "crackle"}


def _dataset(folder, n_per_class, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n_per_class * len(CLASSES)):
        label = CLASSES[index % len(CLASSES)]
        rate = int(rng.choice([8000, 16000, 22050]))
        samples = make_signal(label, rng, rate)
        if index % 3 == 0:
            path = folder / f"{seed}-{index}.wav"
            write_wav(path, samples, rate)
            clip = str(path)
        else:
            clip = {"array": samples, "sample_rate": rate}
        # the caption names the class only half of the time (and sometimes wrongly)
        hint = WORDS[label] if rng.random() < 0.5 else WORDS[CLASSES[rng.integers(len(CLASSES))]]
        rows.append({"clip": clip, "caption": f"recording number {index} {hint}", "label": label})
    frame = pd.DataFrame(rows)
    return frame[["clip", "caption"]], frame["label"]


def test_audio_and_text_fit_predict_save_load(tmp_path):
    X, y = _dataset(tmp_path, 16, seed=0)
    X_test, y_test = _dataset(tmp_path, 6, seed=1)
    model = AutoMM(encoders={"audio": TINY, "text": {"name": "hashed_ngram", "n_buckets": 4096, "emb_dim": 16,
                                                     "output_dim": 16}},
                   fusion={"name": "concat", "proj_dim": 16, "hidden_dim": 32},
                   augmentations=["audio_time_shift", "spec_augment", {"name": "audio_noise", "p": 0.3}],
                   max_epochs=12, batch_size=16, learning_rate=3e-3, num_workers=0, random_state=0)
    model.fit(X, y)
    assert model.column_roles_ == {"clip": "audio", "caption": "text"}  # inferred by the plugin
    assert model.config_["encoders"]["audio_0"]["name"] == "audio_cnn"
    assert model.score(X_test, y_test) >= 0.75  # 4 classes: the audio carries the answer
    path = model.save(tmp_path / "model")
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=1e-5)


def test_missing_audio_is_handled(tmp_path):
    X, y = _dataset(tmp_path, 4, seed=2)
    X.loc[[0, 5], "clip"] = None
    model = AutoMM(encoders={"audio": dict(TINY, depth=2), "text": {"name": "hashed_ngram", "n_buckets": 1024,
                                                                    "emb_dim": 8, "output_dim": 8}},
                   max_epochs=1, batch_size=8, num_workers=0, random_state=0, augmentations=None)
    model.fit(X, y)
    assert model.predict(X).shape == (len(X),)


def test_a_list_of_clip_dicts_is_one_audio_input_not_a_table_of_records(tmp_path):
    # automm reads a lone list of dicts as records (a table), unless a role rule claims the dicts
    X, y = _dataset(tmp_path, 4, seed=3)
    clips = [{"array": np.zeros(4000) if isinstance(c, str) else c["array"], "sample_rate": 8000} for c in X["clip"]]
    model = AutoMM(encoders={"audio": dict(TINY, depth=2)}, max_epochs=1, batch_size=8, num_workers=0,
                   random_state=0, augmentations=None)
    model.fit(clips, y)
    assert model.column_roles_ == {"x0": "audio"} and model.input_positional_
    assert model.predict(clips[:3]).shape == (3,)
    labels = list(y)  # validation data given the same way
    model.fit(clips[6:], labels[6:], X_val=clips[:6], y_val=labels[:6])
    assert model.input_positional_ and model.predict(clips[:2]).shape == (2,)


def test_tones_sample_dataset_is_registered_deterministic_and_inferred_as_audio():
    import automm
    assert "tones" in automm.list_datasets()
    spec = automm.get_registry().get("dataset", "tones")
    assert spec.package and spec.package.startswith("automm-audio")
    frame = automm.load_dataset("tones")
    assert list(frame.columns) == list(spec.columns)
    assert frame["split"].value_counts().to_dict() == {"train": 160, "test": 80}
    assert frame["label"].nunique() == len(CLASSES)
    again = automm.load_dataset("tones")
    np.testing.assert_array_equal(frame["clip"][7]["array"], again["clip"][7]["array"])
    hook = automm.get_registry().plugin_manager.hook.automm_infer_column_role
    assert hook(name="clip", values=list(frame["clip"][:20])) == "audio"


def test_unreadable_audio_is_named_before_any_work_like_unreadable_images(tmp_path, monkeypatch):
    import automm
    from automm.exceptions import InputError

    X, y = _dataset(tmp_path, 8, seed=2)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "2-0.wav").read_bytes()[:30])  # a header, no data chunk
    monkeypatch.setattr(AutoMM, "_fit_candidates", lambda *a, **k: pytest.fail("training started"))
    broken = X.copy()
    broken.loc[1, "clip"] = str(tmp_path / "gone.wav")
    broken.loc[2, "clip"] = str(tmp_path / "cut.wav")
    with pytest.raises(InputError, match=r"column 'clip': 2 of 32 audio values cannot be read: row 1 "
                                         r"\('.*gone.wav'\): file not found; row 2 \('.*cut.wav'\): ") as caught:
        AutoMM(encoders={"audio": TINY}).fit(broken, y)
    assert str(caught.value).count("cut.wav") == 1  # named by its row, not again after why
    monkeypatch.undo()
    few = X.copy()
    few.loc[1, "clip"] = str(tmp_path / "gone.wav")  # 1 of 32 (3%): a missing clip, with a warning
    with pytest.warns(UserWarning, match=r"column 'clip': 1 of 32 audio values cannot be read and count as missing"):
        AutoMM(encoders={"audio": TINY}, max_epochs=1, num_workers=0).fit(few, y)


def test_a_data_file_names_its_wav_files_relative_to_its_folder(tmp_path, monkeypatch):
    from automm.cli import main

    folder = tmp_path / "sounds"
    folder.mkdir()
    X, y = _dataset(folder, 6, seed=3)
    paths = [c if isinstance(c, str) else None for c in X["clip"]]
    frame = pd.DataFrame({"clip": [p and p.split("/")[-1] for p in paths], "caption": X["caption"], "label": y})
    frame = frame[frame["clip"].notna()]
    frame.to_csv(folder / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)  # not the data file's folder
    assert main(["fit", str(folder / "data.csv"), "--label", "label", "--set", "search.time_limit=null", "--set",
                 "training.max_epochs=1", "--set", f"output.dir={tmp_path / 'model'}", "-q"]) == 0
    assert AutoMM.load(tmp_path / "model").column_roles_["clip"] == "audio"


def test_wav_bytes_hugging_face_records_and_float_rate_tuples_are_audio(tmp_path):
    X, y = _dataset(tmp_path, 8, seed=4)
    paths = [tmp_path / f"r{i}.wav" for i in range(len(X))]
    for path, clip in zip(paths, X["clip"]):
        samples, rate = (clip["array"], clip["sample_rate"]) if isinstance(clip, dict) else (None, None)
        if samples is None:
            path.write_bytes(open(clip, "rb").read())
        else:
            write_wav(path, samples, rate)
    records = [{"bytes": p.read_bytes(), "path": p.name} if i % 2 else {"bytes": None, "path": str(p)}
               for i, p in enumerate(paths)]
    model = AutoMM(encoders={"audio": TINY}, max_epochs=1, num_workers=0, random_state=0)
    model.fit(pd.DataFrame({"clip": records, "caption": X["caption"]}), y)
    assert model.column_roles_["clip"] == "audio"
    raw = pd.DataFrame({"clip": [p.read_bytes() for p in paths], "caption": X["caption"]})
    assert len(model.predict(raw)) == len(paths)  # WAV bytes: audio, not images
    from automm_audio import looks_like_audio

    assert looks_like_audio(([0.1] * 800, 8000.0)) and looks_like_audio(raw["clip"][0])


def test_without_audio_augmentations_each_clips_spectrogram_is_computed_once(tmp_path, monkeypatch):
    """Without an audio augmentation a clip's spectrogram is the same every epoch: a fit computes
    it once per clip (it was recomputed every epoch, a third of an epoch's time)."""
    from automm_audio.encoder import AudioCNNEncoder

    X, y = _dataset(tmp_path, 4, seed=4)
    calls = []
    original = AudioCNNEncoder.preprocess

    def counted(self, value, augment=None):
        calls.append(1)
        return original(self, value, augment)

    monkeypatch.setattr(AudioCNNEncoder, "preprocess", counted)
    model = AutoMM(encoders={"audio": dict(TINY, depth=2)}, column_types={"clip": "audio"}, max_epochs=3,
                   patience=0, batch_size=8, num_workers=0, random_state=0, augmentations=None)
    model.fit(X[["clip"]], y)
    assert len(model.history_) == 3
    assert len(calls) <= len(X) + 2  # once per clip (and the core's probe of the first clip's size)


def test_a_fit_on_clips_much_longer_than_the_duration_says_so_naming_the_column(tmp_path):
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"clip": [{"array": make_signal(label, rng, 8000, seconds=4.0), "sample_rate": 8000}
                               for label in CLASSES * 3]})
    model = AutoMM(encoders={"audio": dict(TINY, depth=2)}, max_epochs=1, batch_size=8, num_workers=0,
                   random_state=0, augmentations=None)
    with pytest.warns(automm.AutoMMWarning, match=r"column 'clip': 75% of the training audio is not heard: audio_cnn "
                                                  r"hears the middle 1 s of each clip \(duration\).*'duration': 4\}"):
        model.fit(X, list(CLASSES * 3))


def test_a_list_of_bare_arrays_declared_audio_says_how_to_give_them(tmp_path):
    from automm.exceptions import InputError

    rng = np.random.default_rng(4)
    clips = [make_signal(CLASSES[i % 2], rng, 8000, seconds=0.5) for i in range(12)]  # equal lengths
    labels = [i % 2 for i in range(12)]
    # given alone, they are read as a table of numbers: its first column is no audio
    with pytest.raises(InputError, match=r"column 'x0' is declared audio but holds single numbers .* "
                                         r"pandas.Series\(list\(clips\)\)"):
        AutoMM(encoders={"audio": TINY}, column_types={"x0": "audio"}, max_epochs=1).fit(clips, labels)
    # the ways it names work, at the encoder's sample rate
    for X, types in ((pd.Series(clips), {"x0": "audio"}), (pd.DataFrame({"clip": clips}), {"clip": "audio"})):
        model = AutoMM(encoders={"audio": dict(TINY, depth=2)}, column_types=types, max_epochs=1, num_workers=0,
                       augmentations=None, random_state=0).fit(X, labels)
        assert list(model.column_roles_.values()) == ["audio"] and model.predict(X[:2]).shape == (2,)
