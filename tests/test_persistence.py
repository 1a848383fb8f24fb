"""save/load: plain files, no pickle, identical predictions, atomic replacement."""

import json
import os

import numpy as np
import pytest

from automm import AutoMM, ModelFormatError

from helpers import tiny


@pytest.fixture(scope="module")
def data():
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    frame["colour_word"] = frame["name"].str.split().str[-1]
    return frame.head(150)[["image", "name", "colour_word"]], frame.head(150)["category"]


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return AutoMM(**tiny()).fit(X, y)


def test_round_trip_gives_identical_predictions(model, data, tmp_path):
    X, _ = data
    path = model.save(tmp_path / "model")
    assert sorted(os.listdir(path)) == ["automm.json", "preprocessing.json", "weights.safetensors"]
    manifest = json.loads((tmp_path / "model" / "automm.json").read_text())
    assert manifest["versions"]["automm"] and manifest["config"]["fusion"]["name"] == "concat"
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.get_params() == model.get_params()


def test_files_hold_no_pickle(model, tmp_path):
    path = model.save(tmp_path / "m")
    for name in os.listdir(path):
        head = open(os.path.join(path, name), "rb").read(2)
        assert head != b"\x80\x04" and head[:1] != b"\x80", f"{name} looks like a pickle"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_follow_the_umask(model, tmp_path, umask):
    # safetensors and mkdtemp create owner-only files; a model saved for a team must be readable by it
    previous = os.umask(umask)
    try:
        path = model.save(tmp_path / "model")
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o777 & ~umask
    for name in os.listdir(path):
        assert os.stat(os.path.join(path, name)).st_mode & 0o777 == 0o666 & ~umask, name


def test_saving_over_a_model_replaces_it_whole_and_refuses_other_directories(model, tmp_path):
    target = tmp_path / "model"
    model.save(target)
    first = (target / "weights.safetensors").stat().st_mtime_ns
    model.save(target)
    assert (target / "weights.safetensors").stat().st_mtime_ns >= first
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no staging left behind
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an automm model"):
        model.save(precious)
    assert (precious / "thesis.txt").read_text() == "keep me"


def test_saving_over_a_model_keeps_the_other_files_of_its_folder(model, data, tmp_path, monkeypatch):
    X, _ = data
    target = tmp_path / "model"
    model.save(target)
    (target / "notes.txt").write_text("why this model")
    (target / "recipe.yaml").write_text("label: category\n")  # what automm fit leaves beside a model
    (target / "plots").mkdir()
    (target / "plots" / "history.png").write_bytes(b"\x89PNG...")
    model.save(target / "plots" / "older")  # a model nested in it is a file tree like any other
    if os.name == "posix":
        os.symlink("notes.txt", target / "latest-notes")
    monkeypatch.chdir(target)  # saved from inside its own folder: the process keeps a working directory
    model.save(".")
    assert os.getcwd() == str(target)
    (target / "members" / "1").mkdir(parents=True)  # an old ensemble member's folder, not in the new model
    monkeypatch.chdir(target / "members" / "1")
    model.save(target)
    assert os.getcwd() == str(target) and [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    assert (target / "notes.txt").read_text() == "why this model"
    assert (target / "recipe.yaml").read_text() == "label: category\n"
    assert (target / "plots" / "history.png").read_bytes() == b"\x89PNG..."
    np.testing.assert_allclose(AutoMM.load(target / "plots" / "older").predict_proba(X), model.predict_proba(X),
                               atol=1e-6)
    if os.name == "posix":
        assert (target / "latest-notes").is_symlink() and (target / "latest-notes").read_text() == "why this model"
    np.testing.assert_allclose(AutoMM.load(target).predict_proba(X), model.predict_proba(X), atol=1e-6)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_failed_save_keeps_the_previous_model(model, data, tmp_path, monkeypatch):
    X, _ = data
    target = tmp_path / "model"
    model.save(target)
    before = AutoMM.load(target).predict_proba(X)
    import automm.persistence as persistence

    def broken_write(path, payload):
        raise OSError("disk full")

    (target / "notes.txt").write_text("keep me")
    monkeypatch.setattr(persistence, "_write_json", broken_write)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    monkeypatch.undo()
    np.testing.assert_allclose(AutoMM.load(target).predict_proba(X), before)
    assert (target / "notes.txt").read_text() == "keep me"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_a_model_cannot_be_saved_where_no_folder_can_be_made(model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("where a folder should be")
    with pytest.raises(OSError, match=r"path: cannot write a model in '.*a-file'"):
        model.save(blocker / "model")
    assert blocker.read_text() == "where a folder should be"


def test_loading_a_model_whose_plugin_is_missing_names_component_and_plugin(model, tmp_path):
    path = tmp_path / "m"
    model.save(path)
    manifest = json.loads((path / "automm.json").read_text())
    manifest["components"][0].update(name="wav2vec", plugin="automm_speech", package="automm-speech 1.0")
    (path / "automm.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="encoder 'wav2vec' from plugin 'automm_speech'.*automm-speech 1.0"):
        AutoMM.load(path)


def test_load_rejects_non_model_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="no automm model"):
        AutoMM.load(tmp_path)


@pytest.mark.parametrize("damage, message", [
    (("weights.safetensors", b"garbage"), r"weights\.safetensors: weights cannot be read"),
    (("automm.json", b"{not json"), r"automm\.json: cannot be read as JSON"),
    (("preprocessing.json", b"[1, 2]"), r"preprocessing\.json: expected a JSON object"),
])
def test_load_of_a_damaged_model_names_the_damaged_file(model, tmp_path, damage, message):
    path = tmp_path / "m"
    model.save(path)
    name, content = damage
    (path / name).write_bytes(content)
    with pytest.raises(ModelFormatError, match=message):
        AutoMM.load(path)
