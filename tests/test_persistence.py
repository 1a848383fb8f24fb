"""save/load: plain files, no pickle, identical predictions, atomic replacement."""

import copy
import json
import os

import numpy as np
import optuna
import pytest
import torch

from automm import AutoMM, InputError, ModelFormatError
from automm.persistence import FORMAT_VERSION

from helpers import tiny, write_manifest


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
    assert manifest["versions"]["optuna"] == optuna.__version__  # (it decides what a search samples)
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.get_params() == model.get_params()


def test_loads_in_threads_at_once_leave_torchs_generator_as_the_host_seeded_it(model, tmp_path):
    """Each load put back the torch generator state it found; loads overlapping in a server's
    threads found one another's draws, and left the generator off the host's seeded stream."""
    import threading

    path = model.save(tmp_path / "model")
    for _ in range(3):
        torch.manual_seed(7)
        expected = torch.rand(3)
        torch.manual_seed(7)
        threads = [threading.Thread(target=AutoMM.load, args=(path,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert torch.equal(torch.rand(3), expected)


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


def test_a_save_on_a_full_disk_names_the_model_folder(model, data, tmp_path, monkeypatch):
    """A write that fails for want of space says so with no file name (``handle.write``, an NFS
    ``fsync``): the error names the folder the model was to be saved to, whose model stays."""
    import errno

    import automm.persistence as persistence

    X, _ = data
    target = tmp_path / "models dir" / "modèle"
    model.save(target)
    before = AutoMM.load(target).predict_proba(X)

    def full_disk(path, data, sync=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write() that found no space raises it

    monkeypatch.setattr(persistence, "_write_bytes", full_disk)
    with pytest.raises(OSError) as raised:
        model.save(target)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    np.testing.assert_allclose(AutoMM.load(target).predict_proba(X), before)
    assert [p for p in os.listdir(target.parent) if p.startswith(".")] == []


def test_a_model_cannot_be_saved_where_no_folder_can_be_made(model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("where a folder should be")
    with pytest.raises(OSError, match=r"path: cannot write a model in '.*a-file'"):
        model.save(blocker / "model")
    assert blocker.read_text() == "where a folder should be"


def test_loading_a_model_whose_plugin_is_missing_names_component_and_plugin(model, tmp_path, monkeypatch):
    path = tmp_path / "m"
    model.save(path)
    manifest = json.loads((path / "automm.json").read_text())
    manifest["components"][0].update(name="wav2vec", plugin="automm_speech", package="automm-speech 1.0")
    write_manifest(path / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"^the model needs encoder 'wav2vec' from plugin 'automm_speech' \(package "
                                               r"automm-speech 1\.0\), which is not installed; install it to load this "
                                               r"model$"):
        AutoMM.load(path)
    monkeypatch.setenv("AUTOMM_DISABLE_PLUGIN_AUTOLOAD", "1")  # installed, perhaps, but not loaded: said so
    with pytest.raises(ModelFormatError, match=r"automm-speech 1\.0\), which is not loaded: "
                                               r"AUTOMM_DISABLE_PLUGIN_AUTOLOAD is set, so only the built-in plugins "
                                               r"are; unset it \(or install the plugin\) to load this model$"):
        AutoMM.load(path)


def test_load_rejects_non_model_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="no automm model"):
        AutoMM.load(tmp_path)
    with pytest.raises(ModelFormatError, match=r"^path: '.*/no-such-model' does not exist$"):
        AutoMM.load(tmp_path / "no-such-model")
    (tmp_path / "a-file").write_text("not a model")
    with pytest.raises(ModelFormatError, match=r"^path: '.*/a-file' is a file, not a model's folder$"):
        AutoMM.load(tmp_path / "a-file")


def test_loading_a_missing_relative_folder_names_the_working_directory(tmp_path, monkeypatch):
    """``AutoMM.load("modelA")`` said "path: 'modelA' does not exist", not where it was looked for
    (the CLI says "(from /tmp)")."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFormatError) as raised:
        AutoMM.load("modelA")
    assert str(raised.value) == f"path: 'modelA' (from {tmp_path}) does not exist"


@pytest.fixture(scope="module")
def regressor():
    from automm import AutoMMRegressor

    texts = [f"item {i % 7} size {i % 5}" for i in range(60)]
    text = {"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 8, "output_dim": 8}
    return AutoMMRegressor(**tiny(encoders={"text": text})).fit(texts, np.arange(60) % 5 + 0.5), texts


def test_a_classifier_or_regressor_class_loads_only_its_kind_of_model(model, regressor, data, tmp_path):
    from automm import AutoMMClassifier, AutoMMRegressor

    X, _ = data
    path = model.save(tmp_path / "classifier")  # saved from AutoMM, which loads anything
    with pytest.raises(ModelFormatError, match=r"^path: '.*classifier' holds a multiclass classification model "
                                               r"\(saved from AutoMM\), which AutoMMRegressor\.load does not load: "
                                               r"load it with AutoMMClassifier\.load or AutoMM\.load$"):
        AutoMMRegressor.load(path)
    loaded = AutoMMClassifier.load(path)
    assert type(loaded) is AutoMMClassifier and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    assert type(AutoMM.load(loaded.save(tmp_path / "again"))) is AutoMMClassifier
    fitted, texts = regressor
    path = fitted.save(tmp_path / "regressor")
    with pytest.raises(ModelFormatError, match=r"holds a regression model \(saved from AutoMMRegressor\), which "
                                               r"AutoMMClassifier\.load does not load: load it with "
                                               r"AutoMMRegressor\.load or AutoMM\.load$"):
        AutoMMClassifier.load(path)
    assert type(AutoMM.load(path)) is AutoMMRegressor
    np.testing.assert_allclose(AutoMMRegressor.load(path).predict(texts), fitted.predict(texts), atol=1e-6)


def _without_digests(path):
    """Make the model in ``path`` as saves wrote it before the files' digests (no ``files``)."""
    manifest = json.loads((path / "automm.json").read_text())
    del manifest["files"]
    write_manifest(path / "automm.json", manifest)


DAMAGED = r": does not match the digest recorded at save in automm\.json: the file is damaged"


@pytest.mark.parametrize("digests", [True, False])
@pytest.mark.parametrize("damage, message, older", [
    (("weights.safetensors", b"garbage"), r"weights\.safetensors" + DAMAGED, r"weights\.safetensors: weights cannot be read"),
    (("automm.json", b"{not json"), r"automm\.json: cannot be read as JSON", None),
    (("preprocessing.json", b"[1, 2]"), r"preprocessing\.json" + DAMAGED, r"preprocessing\.json: expected a JSON object"),
    (("weights.safetensors", None), r"weights\.safetensors: cannot be read: No such file", None),
])
def test_load_of_a_damaged_model_names_the_damaged_file(model, tmp_path, damage, message, older, digests):
    path = tmp_path / "m"
    model.save(path)
    if not digests:
        _without_digests(path)
    name, content = damage
    if content is None:
        (path / name).unlink()
    else:
        (path / name).write_bytes(content)
    with pytest.raises(ModelFormatError, match=(older or message) if not digests else message):
        AutoMM.load(path)


def test_a_file_damaged_inside_is_refused_naming_it(model, data, tmp_path):
    # bytes flipped inside a tensor, the size kept: the weights still parse and predict otherwise
    X, _ = data
    path = tmp_path / "m"
    model.save(path)
    weights = bytearray((path / "weights.safetensors").read_bytes())
    weights[-2000:-1000] = bytes(b ^ 0xFF for b in weights[-2000:-1000])
    (path / "weights.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ModelFormatError, match=r"m/weights\.safetensors" + DAMAGED + "$"):
        AutoMM.load(path)
    manifest = json.loads((path / "automm.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors", "preprocessing.json"}
    _without_digests(path)  # a model saved before the digests loads as it is, unchecked
    assert not np.allclose(AutoMM.load(path).predict_proba(X), model.predict_proba(X), atol=1e-4)


@pytest.fixture(scope="module")
def other(model):
    """A model of ``model``'s architecture that predicts otherwise (other weights, its classes reversed)."""
    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in twin.model_.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    twin.classes_ = twin.classes_[::-1].copy()
    return twin


def _which(loaded, X, models):
    """The name of the model in ``models`` that ``loaded`` is, or "a mix"."""
    for name, candidate in models.items():
        if (list(loaded.classes_) == list(candidate.classes_)
                and np.allclose(loaded.predict_proba(X), candidate.predict_proba(X), atol=1e-6)):
            return name
    return "a mix"


def test_a_save_landing_during_a_load_gives_the_old_or_the_new_model_never_a_mix(model, other, data, tmp_path,
                                                                                  monkeypatch):
    import automm.pipeline as pipeline
    import automm.persistence as persistence

    X, _ = data
    models = {"old": model, "new": other}
    target = tmp_path / "model"
    model.save(target)
    build = pipeline.build_model

    def save_then_build(*args, **kwargs):  # the new model saved while the old one is being built
        monkeypatch.setattr(pipeline, "build_model", build)
        other.save(target)
        return build(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_model", save_then_build)
    assert _which(AutoMM.load(target), X, models) == "old"  # every file was read before the save
    assert _which(AutoMM.load(target), X, models) == "new"

    parse, readings = persistence._parse_json, []

    def save_after_the_manifest(path, content):  # the save lands between the manifest and the other files
        if path.name == "automm.json":
            readings.append(path)
            if len(readings) == 1:
                model.save(target)
        return parse(path, content)

    monkeypatch.setattr(persistence, "_parse_json", save_after_the_manifest)
    assert _which(AutoMM.load(target), X, models) == "old" and len(readings) == 2  # read again, whole
    readings.clear()
    _without_digests(target)  # a manifest without digests: read again once it is seen to have changed
    assert _which(AutoMM.load(target), X, models) == "old" and len(readings) == 2

    def save_every_time(path, content):
        if path.name == "automm.json":
            readings.append(path)
            (other if len(readings) % 2 else model).save(target)
        return parse(path, content)

    readings.clear()
    monkeypatch.setattr(persistence, "_parse_json", save_every_time)
    with pytest.raises(ModelFormatError, match=r"path: the model in '.*model' was replaced by a save while it was "
                                               r"being read, 5 times in a row; load it once the saving has stopped"):
        AutoMM.load(target)
    assert len(readings) == persistence.READ_ATTEMPTS == 5
    monkeypatch.setattr(persistence, "_parse_json", parse)
    assert _which(AutoMM.load(target), X, models) == "new"  # the last one saved


def test_an_ensemble_members_files_are_checked_too(model, other, data, tmp_path):
    from automm.ensemble import Ensemble, EnsembleMember

    X, _ = data
    pair = copy.deepcopy(model)
    member = copy.deepcopy(other.model_)
    pair.ensemble_ = Ensemble([EnsembleMember(0, 0.5, pair.config_, pair.model_, 32, 0.9),
                               EnsembleMember(1, 0.5, pair.config_, member, 32, 0.8)], "multiclass")
    target = pair.save(tmp_path / "pair")
    manifest = json.loads((tmp_path / "pair" / "automm.json").read_text())
    assert sorted(manifest["files"]) == ["members/1/preprocessing.json", "members/1/weights.safetensors",
                                         "preprocessing.json", "weights.safetensors"]
    np.testing.assert_allclose(AutoMM.load(target).predict_proba(X), pair.predict_proba(X), atol=1e-6)
    # the first member's weights in the second's place: the same shapes, another model
    (tmp_path / "pair" / "members" / "1" / "weights.safetensors").write_bytes(
        (tmp_path / "pair" / "weights.safetensors").read_bytes())
    with pytest.raises(ModelFormatError, match=r"pair/members/1/weights\.safetensors" + DAMAGED):
        AutoMM.load(target)
    # a member's folder outside the model's (a crafted or hand-edited manifest): refused, not read
    manifest["ensemble"]["members"][1]["path"] = "members/../../elsewhere"
    write_manifest(tmp_path / "pair" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"pair/automm\.json: bad ensemble member path 'members/\.\./\.\./elsewhere'$"):
        AutoMM.load(target)


@pytest.mark.parametrize("key, value, message", [
    ("classes", lambda c: {**c, "values": c["values"][:-1]},
     r"automm\.json: 'classes' lists 7 classes but the model has 8 outputs \('n_outputs'\), one per class"),
    ("decision_weights", lambda w: [1.0, 2.0], r"automm\.json: 'decision_weights' should hold one weight per class \(8\)"),
    ("n_outputs", lambda n: str(n), r"automm\.json: 'n_outputs' should be a whole number >= 1, got '8'"),
    ("problem_type", lambda p: "ranking", r"automm\.json: unknown 'problem_type' 'ranking'"),
])
def test_a_manifest_whose_classes_do_not_match_the_outputs_is_refused_at_load(model, tmp_path, key, value, message):
    path = tmp_path / "m"
    model.save(path)
    manifest = json.loads((path / "automm.json").read_text())
    assert manifest["n_outputs"] == len(manifest["classes"]["values"]) == 8
    manifest[key] = value(manifest.get(key))
    write_manifest(path / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=message):
        AutoMM.load(path)


def test_load_chooses_where_a_loaded_model_keeps_features(model, data, tmp_path):
    from automm import InputError

    X, _ = data
    trained = copy.deepcopy(model).set_params(cache_dir=str(tmp_path / "training-machine"))
    path = trained.save(tmp_path / "m")
    assert AutoMM.load(path).cache_dir == str(tmp_path / "training-machine")  # saved with the model
    loaded = AutoMM.load(path, cache_dir=tmp_path / "serving")
    assert loaded.get_params()["cache_dir"] == str(tmp_path / "serving")  # a str: saved again as it is
    seen = []
    for encoder in loaded.model_.encoders.values():  # where predict has the encoders keep features
        encoder.prepare = lambda values, cache_dir=None: seen.append(cache_dir)
    loaded.predict(X.head(3))
    assert seen and set(seen) == {str(tmp_path / "serving")}
    assert AutoMM.load(loaded.save(tmp_path / "again")).cache_dir == str(tmp_path / "serving")
    with pytest.raises(InputError, match=r"^cache_dir: expected a directory path or None, got 3$"):
        AutoMM.load(path, cache_dir=3)


def test_a_saved_model_holds_no_storage_password(model, tmp_path):
    secret = copy.copy(model).set_params(storage="postgresql://automm:s3cret@db.example.org:5432/automm")
    path = secret.save(tmp_path / "model")
    assert "s3cret" not in (tmp_path / "model" / "automm.json").read_text()
    assert AutoMM.load(path).storage == "postgresql://automm:***@db.example.org:5432/automm"


def test_a_folder_left_by_a_killed_save_does_not_hide_that_a_path_does_not_exist(tmp_path):
    (tmp_path / ".m.saving-abc").mkdir()  # what a save killed before its renames leaves
    with pytest.raises(ModelFormatError, match=r"does not exist"):
        AutoMM.load(tmp_path / "m")


def test_the_next_save_deletes_the_folders_of_saves_killed_while_writing(model, tmp_path):
    """kill -9 (or SIGTERM) while a save wrote its folder left '.m.saving-*' beside the model,
    never deleted: 26 MB each for an emoji model."""
    import fcntl

    left = tmp_path / ".m.saving-0123456789ab"  # a killed save's: no process holds it
    (left / "members").mkdir(parents=True)
    (left / "weights.safetensors").write_bytes(b"x" * 1000)
    writing = tmp_path / ".m.saving-ba9876543210"  # a save still writing it (this process holds it)
    writing.mkdir()
    descriptor = os.open(writing, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        model.save(tmp_path / "m")
    finally:
        os.close(descriptor)
    assert not left.exists() and writing.exists()
    assert AutoMM.load(tmp_path / "m") is not None


def _text_model(**params):
    texts = [f"w{i} w{i % 5} common words here" for i in range(24)]
    model = AutoMM(encoders={"text": {"name": "hashed_ngram", "n_buckets": 1024, "emb_dim": 8, "output_dim": 8}},
                   fusion={"name": "concat", "proj_dim": 8, "hidden_dim": 8}, max_epochs=1, num_workers=0,
                   random_state=0, **params)
    return model, texts, ["x", "y", "z"] * 8


def test_a_refit_naming_an_augmentation_whose_plugin_is_gone_names_its_package(fresh_registry, monkeypatch,
                                                                                 tmp_path):
    from automm import UnknownComponentError, hookimpl
    from automm.components.augmentations import TokenDropout
    from automm.registry import Registry

    class TextAugPlugin:
        @hookimpl
        def automm_register_augmentations(self, register):
            register("token_drop", TokenDropout, modality="text", defaults={"p": 0.1})

    package_of = Registry.package_of
    monkeypatch.setattr(Registry, "package_of", lambda self, name: "automm-textaug 1.0"
                        if name.endswith("TextAugPlugin") else package_of(self, name))
    fresh_registry(TextAugPlugin())
    model, X, y = _text_model(augmentations=["token_drop"])
    path = model.fit(X, y).save(tmp_path / "m")
    manifest = json.loads((path_ := tmp_path / "m" / "automm.json").read_text())
    assert manifest["augmentations"] == [{"name": "token_drop", "plugin": f"{__name__}.{TextAugPlugin.__qualname__}",
                                          "package": "automm-textaug 1.0"}]
    fresh_registry()  # the plugin uninstalled
    loaded = AutoMM.load(path)  # predicting needs no augmentation
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    message = (r"^augmentations: augmentation 'token_drop' comes from plugin '.*TextAugPlugin' \(package "
               r"automm-textaug 1\.0\), which is not installed; install it to fit this model again$")
    with pytest.raises(UnknownComponentError, match=message):
        loaded.fit(X, y)
    assert loaded.set_params(augmentations=None, search_space={"augmentations": ["token_drop"]}) is loaded
    with pytest.raises(UnknownComponentError, match=r"^search_space\['augmentations'\]: .*automm-textaug 1\.0"):
        loaded.fit(X, y)
    loaded.set_params(augmentations=["token_drop"], search_space=None)
    again = AutoMM.load(loaded.save(tmp_path / "again"))  # saved again without the plugin: still recorded
    with pytest.raises(UnknownComponentError, match=message):
        again.fit(X, y)
    del manifest["augmentations"]  # a model saved before augmentations were recorded: as before
    write_manifest(path_, manifest)
    with pytest.raises(UnknownComponentError, match=r"^unknown augmentation 'token_drop'\. Did you mean"):
        AutoMM.load(path).fit(X, y)


def test_set_output_is_saved_with_the_model(model, data, tmp_path):
    import pandas as pd

    X, _ = data
    model.save(tmp_path / "plain")
    assert "set_output" not in json.loads((tmp_path / "plain" / "automm.json").read_text())
    assert not hasattr(AutoMM.load(tmp_path / "plain"), "_sklearn_output_config")
    framed = copy.deepcopy(model).set_output(transform="pandas")
    path = framed.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "automm.json").read_text())
    assert manifest["set_output"] == {"transform": "pandas"}
    loaded = AutoMM.load(path)
    assert loaded._sklearn_output_config == {"transform": "pandas"}
    embedding = loaded.transform(X.head(4))
    assert isinstance(embedding, pd.DataFrame) and list(embedding.columns) == list(model.get_feature_names_out())
    np.testing.assert_allclose(embedding.to_numpy(), model.transform(X.head(4)), atol=1e-6)
    manifest["set_output"] = {"transform": 3}
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"'set_output' should be like \{'transform': 'pandas'\}, got"):
        AutoMM.load(path)


def test_metadata_routing_requests_are_saved_with_the_model(model, data, tmp_path):
    """A loaded model lost its set_score_request / set_fit_request: a cross_validate or GridSearchCV
    routing sample_weight refused it (UnsetMetadataPassedError) where the saved one weighed the
    scores by it."""
    import sklearn
    from sklearn.model_selection import KFold, cross_validate

    X, y = data
    weights = np.where(np.arange(len(y)) % 3 == 0, 5.0, 1.0)
    model.save(tmp_path / "plain")
    assert "metadata_requests" not in json.loads((tmp_path / "plain" / "automm.json").read_text())
    with sklearn.config_context(enable_metadata_routing=True):
        routed = copy.deepcopy(model).set_fit_request(sample_weight=False).set_score_request(sample_weight="w")
        path = routed.save(tmp_path / "m")
        loaded = AutoMM.load(path)
        assert loaded.get_metadata_routing()._serialize() == routed.get_metadata_routing()._serialize()
        assert loaded.get_metadata_routing().score.requests == {"sample_weight": "w"}
        folds = KFold(2)
        result = cross_validate(loaded.set_params(max_epochs=1), X, y, cv=folds, params={"w": weights},
                                return_estimator=True)  # w routed to score as its sample_weight, not to fit
    for fitted, (_, test), scored in zip(result["estimator"], folds.split(X), result["test_score"]):
        assert scored == pytest.approx(fitted.score(X.iloc[test], y.iloc[test], sample_weight=weights[test]))
    assert not hasattr(AutoMM.load(tmp_path / "plain"), "_metadata_request")  # the class's defaults
    manifest = json.loads((tmp_path / "m" / "automm.json").read_text())
    assert manifest["metadata_requests"]["score"] == {"sample_weight": "w"}
    manifest["metadata_requests"]["score"]["sample_weight"] = "not a name"
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"'metadata_requests' of 'score': 'sample_weight' should be true, "
                                               r"false, null or a parameter name to route, got 'not a name'"):
        AutoMM.load(path)
    manifest["metadata_requests"] = {"fitt": {"sample_weight": True}}
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"'metadata_requests' names method 'fitt', which scikit-learn"):
        AutoMM.load(path)


def test_a_mount_point_is_refused_before_any_work(model, tmp_path, monkeypatch):
    # docker -v host/model:/model: a mount point cannot be renamed aside, so no save can replace it whole
    import automm.persistence as persistence
    from automm.cli import UsageError, _check_output_dir
    from automm.persistence import check_save_target

    target = tmp_path / "model"
    model.save(target)
    before = (target / "weights.safetensors").read_bytes()
    ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda path: os.fspath(path) == str(target) or ismount(path))
    message = (rf"^path: '{target}' is a mount point, which a save cannot replace whole; save into a folder "
               rf"inside it, e\.g\. '{target}/model'$")
    with pytest.raises(FileExistsError, match=message):
        model.save(target)
    with pytest.raises(FileExistsError, match=message.replace("path:", "output.dir:")):
        check_save_target(target, "output.dir")  # what automm fit checks before training
    with pytest.raises(UsageError, match=r"^output\.dir: .* is a mount point"):
        _check_output_dir(str(target), "output.dir")
    monkeypatch.undo()
    replace = os.replace

    def busy(source, destination):  # a mount point that the checks miss: the rename aside fails
        if os.fspath(source) == str(target):
            raise OSError(16, "Device or resource busy", str(source))
        return replace(source, destination)

    monkeypatch.setattr(os, "replace", busy)
    monkeypatch.setattr(persistence, "_exchange", lambda first, second: False)  # where folders cannot be swapped
    with pytest.raises(FileExistsError, match=message):
        model.save(target)
    assert (target / "weights.safetensors").read_bytes() == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    monkeypatch.undo()

    def busy_exchange(first, second):  # the swap in one step fails alike
        raise OSError(16, "Device or resource busy", str(second))

    monkeypatch.setattr(persistence, "_exchange", busy_exchange)
    with pytest.raises(FileExistsError, match=message):
        model.save(target)
    assert (target / "weights.safetensors").read_bytes() == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    model.save(target / "model")  # inside it, as the message says


def test_a_write_protected_model_folder_is_refused_and_a_leftover_named(model, tmp_path, monkeypatch):
    import shutil

    from automm.persistence import check_save_target

    target = tmp_path / "model"
    model.save(target)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(target) and access(path, mode))
    message = rf"^path: '{target}' is write-protected, so the model in it could not be removed once replaced"
    with pytest.raises(PermissionError, match=message):
        model.save(target)
    with pytest.raises(PermissionError, match=message.replace("path:", "output.dir:")):
        check_save_target(target, "output.dir")
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
    monkeypatch.undo()
    rmtree = shutil.rmtree

    def undeletable_old_model(path, *args, **kwargs):  # e.g. a read-only folder in it
        if ".model.old-" not in os.fspath(path):
            return rmtree(path, *args, **kwargs)
        where, exc = os.path.join(path, "plots", "a.png"), PermissionError(13, "Permission denied", "a.png")
        if "onexc" in kwargs:  # Python >= 3.12
            kwargs["onexc"](os.unlink, where, exc)
        else:
            kwargs["onerror"](os.unlink, where, (PermissionError, exc, None))

    monkeypatch.setattr(shutil, "rmtree", undeletable_old_model)
    with pytest.warns(UserWarning, match=rf"^path: the model replaced in '{target}' could not be deleted \(Permission "
                                         r"denied: .*/plots/a\.png\); it is left in '.*/\.model\.old-\w+': "
                                         r"delete it yourself$"):
        model.save(target)
    monkeypatch.undo()
    AutoMM.load(target)
    (leftover,) = [p for p in os.listdir(tmp_path) if p.startswith(".model.old-")]
    target.rename(tmp_path / "moved")  # a leftover beside a missing folder is no save in progress
    with pytest.raises(ModelFormatError, match=rf"^path: '{target}' does not exist \(beside it: '{leftover}', a model "
                                               r"that a save moved aside and did not delete\)$"):
        AutoMM.load(target)
    model.save(target)  # a model at the path again, but the leftover may be the only copy of another: kept
    assert os.path.isdir(tmp_path / leftover)
    model.save(target)  # a save over a model deletes the leftovers of killed saves
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("config"), r"lacks 'config' \(the model's configuration"),
    (lambda m: m.pop("inputs"), r"lacks 'inputs'"),
    (lambda m: m.update(format_version="1"), r"unsupported format 'automm-model' version '1': 'format_version' "
                                             r"should be a whole number, got str$"),
    (lambda m: m.update(format_version=FORMAT_VERSION + 1),  # a newer automm's model: an older reader refuses it
     rf"unsupported format 'automm-model' version {FORMAT_VERSION + 1}; this automm reads version {FORMAT_VERSION}$"),
    (lambda m: m["classes"].update(dtype="<q9"), r"'classes' should have a numpy 'dtype' and its 'values'"),
    (lambda m: m.update(columns="image"), r"'columns' should be a list of column names, got 'image'"),
    (lambda m: m.update(components=[{"kind": "encoder"}]), r"'components' should be a list of components"),
    (lambda m: m.update(params=[]), r"'params' should be an object"),
    (lambda m: m.update(history=None), r"'history' should be a list of epoch records, got None"),
    (lambda m: m.update(batch_size="32"), r"'batch_size' should be a whole number >= 1, got '32'"),
    (lambda m: m["inputs"][0].pop("modality"), r"'inputs' should be a list of inputs, each with its 'name', "),
    (lambda m: m["config"].pop("fusion"), r"'config' should be the model's configuration"),
    (lambda m: m.update(ensemble={"members": 3}), r"'ensemble' should be the ensemble's 'problem_type'"),
    # values that loading, predicting and fit_summary read (a bare ValueError or TypeError there, or
    # predictions silently wrong)
    (lambda m: m["params"].update(num_workers="lots"), r"'num_workers' of 'params' should be 'auto' or a whole "
                                                       r"number >= 0, got 'lots'$"),
    (lambda m: m["params"].update(num_workers=-3), r"'num_workers' of 'params' should be .* got -3$"),
    (lambda m: m["params"].update(cache_dir=["/srv"]), r"'cache_dir' of 'params' should be a directory path or null"),
    (lambda m: m["fit"].update(validation_rows=[15]), r"'validation_rows' of 'fit' should be a whole number >= 0"),
    (lambda m: m.update(decision_weights=[-1.0] * m["n_outputs"]), r"'decision_weights' should be a list of "
                                                                   r"numbers > 0, got \[-1\.0, "),
    (lambda m: m.update(seed=-1), r"'seed' should be a whole number in \[0, 2\*\*32 - 1\], got -1$"),
    (lambda m: m.update(best_epoch=2.0), r"'best_epoch' should be a whole number >= 0, got 2\.0$"),
    (lambda m: m.update(target={"mean": 3.0, "std": -1.0}), r"'target' should be the regression target's 'mean' "
                                                            r"and 'std' \(finite numbers, the 'std' > 0\)"),
])
def test_a_manifest_lacking_a_key_or_of_a_wrong_type_is_refused_naming_it(model, tmp_path, edit, message):
    path = tmp_path / "m"
    model.save(path)
    manifest = json.loads((path / "automm.json").read_text())
    edit(manifest)
    write_manifest(path / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"^.*/m/automm\.json: " + message):
        AutoMM.load(path)


def test_concurrent_saves_to_one_path_all_succeed_one_after_another(model, other, data, tmp_path):
    import threading

    X, _ = data
    target = tmp_path / "model"
    model.save(target)
    (target / "notes.txt").write_text("keep me")
    failures = []

    def save_repeatedly(estimator):
        for _ in range(10):
            try:
                estimator.save(target)
            except Exception as exc:  # noqa: BLE001 - every failure is one
                failures.append(exc)

    threads = [threading.Thread(target=save_repeatedly, args=(m,)) for m in (model, other, model, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert _which(AutoMM.load(target), X, {"old": model, "new": other}) != "a mix"
    assert (target / "notes.txt").read_text() == "keep me"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_save_and_load_expand_the_home_folder(model, tmp_path, monkeypatch):
    from automm.persistence import check_save_target

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    check_save_target("~/models/m")
    assert model.save("~/models/m") == str(tmp_path / "home" / "models" / "m")
    assert AutoMM.load("~/models/m").get_params() == model.get_params()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_ctrl_c_while_a_save_puts_its_model_in_place_leaves_the_earlier_model_there(model, data, tmp_path,
                                                                                    monkeypatch, swap):
    """Ctrl-C just after the earlier model was renamed aside left no model at the path."""
    import automm.persistence as persistence

    target = tmp_path / "model"
    model.save(target)
    (target / "notes.txt").write_text("mine")
    before = (target / "weights.safetensors").read_bytes()
    replace = os.replace
    if swap == "two renames":
        monkeypatch.setattr(persistence, "_exchange", lambda first, second: False)

    def interrupted(source, destination):  # the signal arrives as the rename aside returns
        replace(source, destination)
        if os.fspath(source) == str(target) or swap == "exchange":
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.model_.parameters()).add_(1.0)  # a model that differs
    with pytest.raises(KeyboardInterrupt):
        other.save(target)
    monkeypatch.undo()
    if swap == "two renames":  # put back: the earlier model is there, as it was
        assert (target / "weights.safetensors").read_bytes() == before
    else:  # swapped in one step: the new model is there, whole
        assert (target / "weights.safetensors").read_bytes() != before
    assert (target / "notes.txt").read_text() == "mine"
    assert len(AutoMM.load(target).predict(data[0])) == len(data[0])


def test_a_save_over_a_model_swaps_the_folders_in_one_step_where_the_system_can(model, data, tmp_path, monkeypatch):
    """Linux (renameat2): a save killed at any moment leaves one model or the other at the path."""
    import sys

    import automm.persistence as persistence

    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "mark").write_text("a")
    if not persistence._exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this file system cannot exchange two folders (saves rename twice there)")
    assert (tmp_path / "b" / "mark").read_text() == "a" and not (tmp_path / "a" / "mark").exists()
    target = tmp_path / "model"
    model.save(target)
    swaps, exchange = [], persistence._exchange
    monkeypatch.setattr(persistence, "_exchange", lambda a, b: swaps.append(exchange(a, b)) or swaps[-1])
    model.save(target)
    assert swaps == [True]
    assert len(AutoMM.load(target).predict(data[0])) == len(data[0])
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_a_manifest_damaged_or_edited_since_its_save_is_refused(model, data, tmp_path):
    """One flipped bit in automm.json (an image size 224 -> 226, an ensemble weight) loaded without
    a word and changed the predictions: the other files had digests, the manifest none."""
    path = tmp_path / "m"
    model.save(path)
    text = (path / "automm.json").read_text()
    assert json.loads(text)["manifest_sha256"]
    edited = text.replace('"max_epochs": 1', '"max_epochs": 3', 1) if '"max_epochs": 1' in text else \
        text.replace('"seed": 0', '"seed": 1', 1)
    assert edited != text
    (path / "automm.json").write_text(edited)
    with pytest.raises(ModelFormatError, match=r"m/automm\.json: does not match its own digest, recorded at save: "
                                               r"the file is damaged, or was edited since$"):
        AutoMM.load(path)
    write_manifest(path / "automm.json", json.loads(edited))  # as saved before the digest: read as it is
    assert len(AutoMM.load(path).predict(data[0])) == len(data[0])


def test_class_weights_of_number_classes_load_as_they_were_given(tmp_path):
    """JSON wrote the classes 0 and 1 as "0" and "1": the loaded model's refit refused its own
    class_weight ("labels ['0', '1'] are not among the classes [0, 1]")."""
    texts, labels = ["red apple", "blue sea", "green leaf", "dark night"] * 6, [0, 1, 0, 1] * 6
    model = AutoMM(**tiny(class_weight={0: 1.0, 1: 2.0})).fit(texts, labels)
    loaded = AutoMM.load(model.save(tmp_path / "m"))
    assert loaded.class_weight == {0: 1.0, 1: 2.0}
    assert loaded.fit(texts, labels).classes_.tolist() == [0, 1]


def test_a_loaded_model_keeps_the_class_weights_it_was_fitted_with(model, tmp_path):
    """``class_weights_`` (what ``class_weight`` weighed each class by) was None after a load, where
    the fitted model had it; a model saved before it was recorded, or fitted without, has None."""
    texts, labels = [f"item {i} of colour {i % 4}" for i in range(24)], [0, 1, 1, 1] * 6
    fitted = AutoMM(**tiny(class_weight="balanced")).fit(texts, labels)
    assert fitted.class_weights_ == pytest.approx([2.0, 2 / 3])
    path = fitted.save(tmp_path / "m")
    assert AutoMM.load(path).class_weights_ == pytest.approx(fitted.class_weights_)
    manifest = json.loads((tmp_path / "m" / "automm.json").read_text())
    manifest["class_weights"] = [1.0]
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"'class_weights' should hold one weight per class \(2\), got \[1\.0\]"):
        AutoMM.load(path)
    del manifest["class_weights"]  # as saved before automm recorded them
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    assert AutoMM.load(path).class_weights_ is None
    assert AutoMM.load(model.save(tmp_path / "unweighted")).class_weights_ is None


def test_loading_a_model_leaves_the_hosts_random_streams_alone(model, tmp_path):
    """Building the network drew its initial weights (replaced by the saved ones) from torch's
    generator: a host that seeded torch got another stream after a load."""
    import random

    path = model.save(tmp_path / "m")
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    expected = (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    AutoMM.load(path)
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()) == expected


def test_files_saved_beside_a_model_replace_the_previous_folders_in_the_same_step(model, tmp_path):
    from automm.persistence import save_model

    target = tmp_path / "m"
    save_model(model, target, beside={"recipe.yaml": "first"})
    (target / "notes.txt").write_text("mine")
    save_model(model, target, beside={"recipe.yaml": "second"})
    assert (target / "recipe.yaml").read_text() == "second" and (target / "notes.txt").read_text() == "mine"
    AutoMM.load(target)  # not part of the model: load does not check it


def test_a_save_over_an_automm_fit_model_does_not_keep_its_recipe(model, tmp_path):
    """AutoMM.save over a model that automm fit saved kept the fit's recipe.yaml beside the new
    model: automm evaluate then scored the new model against the old one's label (an R2 of 0.03
    against another column, without a word). A recipe.yaml of the user's own stays."""
    from automm.persistence import save_model

    target = tmp_path / "m"
    written = "# The recipe that reproduces this model (written by automm fit).\ndata: {label: old}\n"
    save_model(model, target, beside={"recipe.yaml": written})
    (target / "notes.txt").write_text("mine")
    model.save(target)
    assert sorted(p.name for p in target.iterdir()) == ["automm.json", "notes.txt", "preprocessing.json",
                                                        "weights.safetensors"]
    (target / "recipe.yaml").write_text("data: {label: mine}\n")  # the user's: not automm fit's
    model.save(target)
    assert (target / "recipe.yaml").read_text() == "data: {label: mine}\n"


def test_special_files_in_a_model_folder_are_refused_not_read(model, tmp_path):
    """A FIFO in place of a model file blocked load for ever; /dev/zero was read until memory ran out."""
    import pathlib

    path = pathlib.Path(model.save(tmp_path / "fifo"))
    (path / "weights.safetensors").unlink()
    os.mkfifo(path / "weights.safetensors")
    with pytest.raises(ModelFormatError, match="weights.safetensors: cannot be read: not a regular file"):
        AutoMM.load(path)
    path = pathlib.Path(model.save(tmp_path / "zero"))
    (path / "preprocessing.json").unlink()
    (path / "preprocessing.json").symlink_to("/dev/zero")
    with pytest.raises(ModelFormatError, match="preprocessing.json: cannot be read: not a regular file"):
        AutoMM.load(path)


def test_a_manifest_nested_deeper_than_any_model_is_a_format_error(model, tmp_path):
    import pathlib

    path = pathlib.Path(model.save(tmp_path / "deep"))
    (path / "automm.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFormatError, match="cannot be read as JSON"):
        AutoMM.load(path)


def test_save_refuses_a_link_at_its_path_rather_than_replace_the_model_it_points_to(model, tmp_path):
    import pathlib

    theirs = pathlib.Path(model.save(tmp_path / "theirs"))
    before = (theirs / "weights.safetensors").read_bytes()
    (tmp_path / "mine").symlink_to(theirs)
    with pytest.raises(InputError, match=r"is a symbolic link \(to .*theirs'\); a save replaces the folder at its"):
        model.save(tmp_path / "mine")
    assert (theirs / "weights.safetensors").read_bytes() == before
    here = os.getcwd()
    os.chdir(tmp_path / "theirs")
    try:
        assert model.save(".") == str(theirs)  # the folder itself, not its parent
    finally:
        os.chdir(here)


def test_a_model_folder_on_a_read_only_file_system_is_named_as_such(model, tmp_path, monkeypatch):
    """chmod cannot help there: the message said to chmod u+w."""
    target = tmp_path / "model"
    model.save(target)
    access, statvfs = os.access, os.statvfs

    class ReadOnly:
        def __init__(self, result):
            self.f_flag = result.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(target) and access(path, mode))
    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly(statvfs(path)) if os.fspath(path) == str(target)
                        else statvfs(path))
    with pytest.raises(PermissionError, match=rf"^path: '{target}' is on a read-only file system; save elsewhere$"):
        model.save(target)


def test_a_relative_cache_dir_is_saved_as_the_folder_it_named(model, tmp_path, monkeypatch):
    """Loaded from another working directory, a model fitted with cache_dir="automm-cache" made
    a new cache there and computed every feature again."""
    monkeypatch.chdir(tmp_path)
    model = copy.copy(model).set_params(cache_dir="automm-cache")  # (the module's model left as it was)
    path = model.save(tmp_path / "m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert AutoMM.load(path).get_params()["cache_dir"] == str(tmp_path / "automm-cache")


def _saved_manifest(estimator, path):
    estimator.save(path)
    return json.loads((path / "automm.json").read_text())


def test_only_a_model_an_older_reader_would_misread_is_written_with_the_newer_format(model, data, tmp_path):
    """A gru that leaves out words never seen in fit (an automm reading format 6 read them as the
    unknown word) and a colour_histogram (which such an automm lacks) need format 7; models an
    older reader reads in full keep the oldest format that holds them."""
    X, y = data
    assert _saved_manifest(model, tmp_path / "hashed")["format_version"] == 11  # (its hashed_ngram's fitted rows)
    fit = lambda **encoders: AutoMM(**tiny(encoders=encoders, max_epochs=1)).fit(X[["image", "name"]], y)
    gru = {"name": "gru", "emb_dim": 8, "hidden_dim": 8, "output_dim": 8}
    assert _saved_manifest(fit(text=gru), tmp_path / "gru")["format_version"] == 7
    assert _saved_manifest(fit(text={**gru, "min_freq": 2}), tmp_path / "rare")["format_version"] <= 6
    colour = fit(image={"name": "colour_histogram", "image_size": 16, "output_dim": 8},
                 text={**gru, "min_freq": 2})
    assert _saved_manifest(colour, tmp_path / "colour")["format_version"] == 7
    np.testing.assert_allclose(AutoMM.load(tmp_path / "colour").predict_proba(X), colour.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("text", [{"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 8, "output_dim": 8},
                                  {"name": "gru", "emb_dim": 8, "hidden_dim": 8, "output_dim": 8, "min_freq": 2}])
def test_a_text_model_fitted_on_letters_an_older_reader_reads_as_other_words_needs_format_8(data, text, tmp_path):
    """An automm reading format 7 read Greek accented letters, Turkish İ/ı and the Arabic tatweel
    as other words than the one the model learned ("ΠΑΠΟΥΤΣΙΑ" and "παπούτσια" are one word here):
    a model fitted on texts holding them needs format 8, others keep their format; a loaded one
    keeps it when saved again."""
    X, y = data
    fit = lambda X: AutoMM(**tiny(encoders={"text": text}, max_epochs=1)).fit(X[["name"]], y)
    # (a hashed_ngram network, which keeps its fitted buckets' rows, needs format 11 anyway: its state says)
    fitted_rows = 11 if text["name"] == "hashed_ngram" else 1
    plain = _saved_manifest(fit(X), tmp_path / "plain")["format_version"]
    assert plain < 8 or plain == fitted_rows
    greek = X.assign(name=[f"{name} Παπούτσια" if i % 3 == 0 else name for i, name in enumerate(X["name"])])
    greek_model = fit(greek)
    assert greek_model.model_.encoders["text_0"].letter_forms_in_fit
    assert _saved_manifest(greek_model, tmp_path / "greek")["format_version"] == max(8, fitted_rows)
    loaded = AutoMM.load(tmp_path / "greek")
    assert loaded.model_.encoders["text_0"].letter_forms_in_fit
    assert _saved_manifest(loaded, tmp_path / "again")["format_version"] == max(8, fitted_rows)


def test_a_hashed_ngram_fitted_on_thai_letters_needs_format_12_and_predicts_so_when_loaded(data, tmp_path):
    """hashed_ngram reads a run of Thai, Lao, Khmer or Myanmar letters as one word, where an automm
    reading format 11 read a letter a token (none of the model's n-grams): a model fitted on texts
    holding them needs format 12, others keep theirs; a loaded one predicts as it did, and keeps it."""
    from automm.components.text import ALPHABET_WORDS_FORMAT_VERSION

    X, y = data
    fit = lambda X: AutoMM(**tiny(encoders={"text": "hashed_ngram"}, max_epochs=1)).fit(X[["name"]], y)
    assert _saved_manifest(fit(X), tmp_path / "plain")["format_version"] == 11
    thai = X.assign(name=[f"{name} เสื้อยืดผู้ชาย" if i % 3 == 0 else name for i, name in enumerate(X["name"])])
    model = fit(thai)
    assert _saved_manifest(model, tmp_path / "thai")["format_version"] == ALPHABET_WORDS_FORMAT_VERSION == 12
    loaded = AutoMM.load(tmp_path / "thai")
    np.testing.assert_allclose(loaded.predict_proba(thai[["name"]]), model.predict_proba(thai[["name"]]), atol=1e-6)
    assert _saved_manifest(loaded, tmp_path / "again")["format_version"] == 12


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_a_vocabulary_model_fitted_on_thai_letters_or_other_digits_needs_format_13_and_one_saved_before_predicts_as_then(
        data, name, tmp_path, monkeypatch):
    """gru and transformer read a run of Thai letters in the pieces learned in fit, and ๔๒ or ٤٢ as 42,
    where an automm reading format 12 reads a letter a token and such digits as other words: a model
    fitted on texts holding them needs format 13, and predicts so when loaded. A model that reads them
    as automm did before (fitted so: a letter a token, digits as written) keeps an older format, and
    predicts here exactly as it did."""
    from automm.components import text

    X, y = data
    thai = X.assign(name=[f"{name} เสื้อยืดผู้ชาย ไซส์ ๔๒" if i % 3 == 0 else name for i, name in enumerate(X["name"])])
    fit = lambda: AutoMM(**tiny(encoders={"text": name}, max_epochs=1)).fit(thai[["name"]], y)
    model = fit()
    assert _saved_manifest(model, tmp_path / "now")["format_version"] == 13 == FORMAT_VERSION
    np.testing.assert_allclose(AutoMM.load(tmp_path / "now").predict_proba(thai[["name"]]),
                               model.predict_proba(thai[["name"]]), atol=1e-6)
    read_as_now = text._read_as_now

    def read_as_before(encoder):  # (automm before: a letter a token, digits as written)
        read_as_now(encoder)
        encoder.unspaced_alphabet_words = encoder.fold_digits = False

    monkeypatch.setattr(text, "_read_as_now", read_as_before)
    before = fit()
    assert before.model_.encoders["text_0"].tokens("ผู้ชาย ๔๒") == ["ผู้", "ช", "า", "ย", "๔", "๒"]
    expected = before.predict_proba(thai[["name"]])
    assert _saved_manifest(before, tmp_path / "before")["format_version"] == 7  # (words never seen left out)
    monkeypatch.undo()
    loaded = AutoMM.load(tmp_path / "before")
    np.testing.assert_array_equal(loaded.predict_proba(thai[["name"]]), expected)
    assert _saved_manifest(loaded, tmp_path / "again")["format_version"] == 7


def test_a_hashed_ngram_network_keeps_the_rows_of_its_fitted_buckets_and_needs_format_11(data, tmp_path):
    """The default text encoder saved a row per bucket whatever the texts held (2**16 x 96: 25 MB a
    text column): it keeps the rows of the buckets its training texts hold, which a version-10 reader
    would build a row per bucket for (and fail to load); the model loads and predicts as it did."""
    from automm.components.text import FITTED_ROWS_FORMAT_VERSION

    X, y = data
    X = X[["name"]]
    model = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(X, y)
    encoder = model.model_.encoders["text_0"]
    n_kept = len(encoder.kept_buckets)
    assert 0 < n_kept < 2 ** 12 and encoder.embedding.weight.shape == (n_kept + 1, 96)
    assert _saved_manifest(model, tmp_path / "m")["format_version"] == FITTED_ROWS_FORMAT_VERSION == 11
    assert (tmp_path / "m" / "weights.safetensors").stat().st_size < 2_000_000  # (25 MB with a row per bucket)
    loaded = AutoMM.load(tmp_path / "m")
    assert torch.equal(loaded.model_.encoders["text_0"].kept_buckets, encoder.kept_buckets)
    X_new = X.assign(name=X["name"] + " qzxv")  # with n-grams fit never saw
    np.testing.assert_allclose(loaded.predict_proba(X_new), model.predict_proba(X_new), atol=1e-6)


def test_a_hashed_ngram_model_saved_with_a_row_per_bucket_loads_and_predicts_as_then(data, tmp_path, monkeypatch):
    """A model saved before automm kept the fitted buckets' rows only holds a row per bucket and no
    ``kept_buckets`` in its state: it loads as it was, a row per bucket, and predicts as it did."""
    from automm.components.text import HashedNgramEncoder

    X, y = data
    X = X[["name"]]
    with monkeypatch.context() as before:  # fitted as automm did then: every bucket keeps its row
        before.setattr(HashedNgramEncoder, "_keep_rows", lambda self, kept: None)
        older = AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(X, y)
        assert _saved_manifest(older, tmp_path / "older")["format_version"] < 11
    assert "kept_buckets" not in (tmp_path / "older" / "preprocessing.json").read_text()
    loaded = AutoMM.load(tmp_path / "older")
    encoder = loaded.model_.encoders["text_0"]
    assert encoder.kept_buckets is None and encoder.embedding.weight.shape == (2 ** 16, 96)
    X_new = X.assign(name=X["name"] + " qzxv")
    np.testing.assert_allclose(loaded.predict_proba(X_new), older.predict_proba(X_new), atol=1e-6)
    assert _saved_manifest(loaded, tmp_path / "again")["format_version"] < 11  # saved again: as it was


def test_a_hyperparameter_only_training_reads_is_not_saved(data, tmp_path):
    """An automm whose tabular encoder predates category_dropout builds a saved model's encoders
    from its configuration: the hyperparameter, which prediction does not read, is left out."""
    X, y = data
    X = X[["name", "colour_word"]]
    model = AutoMM(**tiny(max_epochs=1, column_types={"colour_word": "categorical"})).fit(X, y)
    assert model.config_["encoders"]["tabular"]["category_dropout"] == 0.1
    manifest = _saved_manifest(model, tmp_path / "m")
    assert "category_dropout" not in manifest["config"]["encoders"]["tabular"]
    assert model.model_.encoders["tabular"].min_format_version == 1  # it raises no format ...
    assert manifest["format_version"] == 11  # (... the hashed_ngram's fitted rows do)
    assert model.config_["encoders"]["tabular"]["category_dropout"] == 0.1  # the fitted model's own is kept
    np.testing.assert_allclose(AutoMM.load(tmp_path / "m").predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_a_hyperparameter_only_training_reads_comes_back_in_the_loaded_config(data, tmp_path):
    """category_dropout, kept out of the saved configuration (above), was missing from a loaded
    model's config_: it is kept beside it (manifest key training_only) and put back at load."""
    X, y = data
    X = X[["name", "colour_word"]]
    model = AutoMM(**tiny(max_epochs=1, column_types={"colour_word": "categorical"},
                          encoders={"tabular": {"name": "tabular", "category_dropout": 0.3}})).fit(X, y)
    manifest = _saved_manifest(model, tmp_path / "m")
    assert "category_dropout" not in manifest["config"]["encoders"]["tabular"]
    assert manifest["training_only"] == {"tabular": [{"category_dropout": 0.3}]}
    loaded = AutoMM.load(tmp_path / "m")
    assert loaded.config_ == model.config_
    assert loaded.config_["encoders"]["tabular"]["category_dropout"] == 0.3
    manifest["training_only"] = {"tabular": [{"category_dropout": 0.3}, {}]}  # not one per part
    write_manifest(tmp_path / "m" / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"'training_only' of input 'tabular' should hold one object per part"):
        AutoMM.load(tmp_path / "m")


def test_a_training_only_hyperparameter_an_older_encoder_lacks_is_not_put_back(data, tmp_path, monkeypatch):
    """A model whose encoder kept a training-only hyperparameter beside its configuration loads where
    the installed encoder predates it (automm-pretrained's learning_rate_scale, loaded with an older
    automm-pretrained): it is not put back into the configuration that builds the encoder."""
    from automm.components.tabular import TabularEncoder

    X, y = data
    X = X[["name", "colour_word"]]
    model = AutoMM(**tiny(max_epochs=1, column_types={"colour_word": "categorical"},
                          encoders={"tabular": {"name": "tabular", "category_dropout": 0.3}})).fit(X, y)
    model.save(tmp_path / "m")
    init = TabularEncoder.__init__

    def older_init(self, column_roles, **params):  # as an encoder that predates category_dropout
        if "category_dropout" in params:
            raise TypeError("__init__() got an unexpected keyword argument 'category_dropout'")
        init(self, column_roles, **params)

    monkeypatch.setattr(TabularEncoder, "__init__", older_init)
    monkeypatch.setattr(TabularEncoder, "training_only_hyperparameters", ())
    loaded = AutoMM.load(tmp_path / "m")
    assert "category_dropout" not in loaded.config_["encoders"]["tabular"]
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_a_model_needing_a_built_in_encoder_this_automm_lacks_says_to_upgrade(model, tmp_path):
    path = tmp_path / "m"
    model.save(path)
    manifest = json.loads((path / "automm.json").read_text())
    manifest["components"][0].update(name="edge_histogram")  # a built-in of a newer automm
    write_manifest(path / "automm.json", manifest)
    with pytest.raises(ModelFormatError, match=r"needs encoder 'edge_histogram', built into the automm that saved it "
                                               r"\(.*\); this automm \(.*\) does not have it: .*upgrade automm"):
        AutoMM.load(path)


@pytest.mark.parametrize("text", [None, {"name": "gru", "emb_dim": 8, "hidden_dim": 8, "output_dim": 8,
                                         "min_freq": 2}])
def test_a_model_saved_before_blank_texts_were_missing_reads_them_as_texts_as_then(model, data, tmp_path, text):
    """An automm before blank texts (zero-width, control characters only) were missing ones read
    them as present texts of no tokens; a model it saved (no manifest key ``blank_texts``) read them
    as missing here (a gru leaving out no word: through its empty_rows): its predictions on such
    texts moved (emoji, fashion: by up to 0.17 with hashed_ngram, 0.64 with gru, 79 of 200 decisions
    changed), though a model saved by an older automm predicts here as it did there."""
    X, y = data
    if text is not None:
        model = AutoMM(**tiny(encoders={"text": text}, max_epochs=1)).fit(X, y)
    blank = X.iloc[[0, 0, 0, 0]].reset_index(drop=True)  # one row, its text four ways
    blank["name"] = ["\u200b", " \u200c\ufeff ", "", None]
    path = tmp_path / "m"
    manifest = _saved_manifest(model, path)
    assert manifest["blank_texts"] == "missing"
    new = AutoMM.load(path).predict_proba(blank)
    np.testing.assert_allclose(new[:3], np.repeat(new[3:], 3, axis=0), atol=1e-6)  # all read as missing
    manifest.pop("blank_texts")  # as an older automm saved it
    write_manifest(path / "automm.json", manifest)
    older = AutoMM.load(path)
    as_then = older.predict_proba(blank)
    np.testing.assert_allclose(as_then[2:], new[2:], atol=1e-6)  # "" and None were missing then too
    assert np.abs(as_then[:2] - new[:2]).max() > 1e-3  # the blank ones texts of no tokens, as then
    older.save(tmp_path / "again")  # and so once saved again
    assert "blank_texts" not in json.loads((tmp_path / "again" / "automm.json").read_text())
    np.testing.assert_allclose(AutoMM.load(tmp_path / "again").predict_proba(blank), as_then, atol=1e-6)
