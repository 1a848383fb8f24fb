"""The search's linear model (automm.linear) and the ensemble's temperatures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import automm
from automm import AutoMM
from automm.data import MISSING, InputSpec
from automm.ensemble import calibrate
from automm.exceptions import InputError
from automm.linear import L2_GRID, LINEAR_SOLVER, linear_config, raw_design, train_linear
from automm.pipeline import PreparedData


@pytest.fixture(scope="module")
def emoji():
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    return frame[frame.split == "train"], frame[frame.split == "test"]


@pytest.fixture
def builtin_only(monkeypatch):
    monkeypatch.setenv(automm.registry.DISABLE_AUTOLOAD_ENV, "1")
    automm.reset_registry()
    yield
    monkeypatch.delenv(automm.registry.DISABLE_AUTOLOAD_ENV)
    automm.reset_registry()


def _text_data(texts, targets, problem_type="multiclass", n_outputs=None, valid_every=4) -> PreparedData:
    rows = np.arange(len(texts))
    return PreparedData(inputs=[InputSpec("text_0", "text", ["name"], {"name": "text"})],
                        values={"text_0": list(texts)}, targets=np.asarray(targets), problem_type=problem_type,
                        n_outputs=n_outputs or int(np.max(targets)) + 1,
                        train_index=rows[rows % valid_every != 0], valid_index=rows[rows % valid_every == 0],
                        seed=0, device=torch.device("cpu"), num_workers=0)


def _config(data: PreparedData) -> dict:
    config = linear_config(data.inputs, {"text_0": {"hashed_ngram": {}}}, {"batch_size": 32}, data.n_outputs)
    assert config["training"]["solver"] == LINEAR_SOLVER and config["fusion"] == {"name": "sum"}
    return config


def test_the_linear_model_is_logistic_regression_on_the_hashed_ngrams(builtin_only, emoji):
    from sklearn.linear_model import LogisticRegression

    train, _ = emoji
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    candidate = train_linear(data, _config(data))
    assert [r["l2_c"] for r in candidate.history] == list(L2_GRID)
    kept = candidate.history[candidate.best_epoch - 1]
    assert kept["valid_loss"] == min(r["valid_loss"] for r in candidate.history)  # the lowest holdout loss is kept
    assert candidate.best_score == kept["valid_score"]

    # the same problem solved by scikit-learn: C * sum of log-losses + ||W||^2 / 2, intercept free
    train_x, _ = raw_design(candidate.model, data.subset(data.train_index))["text_0"]
    valid_x, _ = raw_design(candidate.model, data.subset(data.valid_index))["text_0"]
    seen = np.unique(train_x.indices()[1].numpy())  # buckets of the training texts: the solver's columns
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(
        train_x.to_dense().numpy()[:, seen], data.targets[data.train_index])
    expected = reference.predict_proba(valid_x.to_dense().numpy()[:, seen])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()[:, reference.classes_]
    assert np.abs(got - expected).max() < 0.02

    # the model itself (hashed_ngram in its linear form, sum fusion) gives the same outputs
    encoders = dict(candidate.model.encoders.items())
    from automm.data import BatchCollator, MultimodalDataset

    dataset = MultimodalDataset(data.subset(data.valid_index), encoders)
    batch = BatchCollator(encoders)([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        outputs = candidate.model(batch["inputs"], batch["masks"]).numpy()
    np.testing.assert_allclose(outputs, candidate.valid_outputs, atol=1e-4)


def test_the_linear_model_regresses_and_a_missing_text_gets_the_bias(builtin_only, emoji):
    train, _ = emoji
    texts = train["name"].tolist()
    lengths = np.array([len(t) for t in texts], dtype=np.float32)
    targets = (lengths - lengths.mean()) / lengths.std()
    texts[0] = MISSING
    data = _text_data(texts, targets, problem_type="regression", n_outputs=1)
    candidate = train_linear(data, _config(data))
    assert candidate.valid_outputs.shape == (len(data.valid_index), 1)
    assert candidate.best_score > -1.0  # -MSE of standardised targets: better than predicting the mean
    model = candidate.model
    from automm.data import BatchCollator, MultimodalDataset

    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset({"text_0": [MISSING]}, encoders)
    batch = BatchCollator(encoders)([dataset[0]])
    with torch.no_grad():
        torch.testing.assert_close(model(batch["inputs"], batch["masks"])[0], model.fusion.bias)


def test_a_search_trains_the_linear_model_on_the_texts_alone_and_keeps_it_through_save(builtin_only, emoji, tmp_path):
    train, test = emoji
    train = train.head(150)
    X = (train["image"].tolist(), train["name"].tolist())
    params = dict(n_trials=3, max_epochs=2, batch_size=16, num_workers=0, random_state=0, ensemble_size=3,
                  encoders={"image": {"name": "cnn", "image_size": 32, "depth": 2}})
    model = AutoMM(**params).fit(*X, train["category"].tolist())
    board = model.leaderboard_.set_index("number")
    linear = board.loc[1]  # right after the default (no pretrained variant here), before its replicate
    assert linear["fusion"] == "sum" and linear["encoders"] == "text_0=hashed_ngram"  # no image encoder
    assert linear["config"]["training"]["solver"] == LINEAR_SOLVER and linear["state"] == "COMPLETE"
    assert board.loc[2, "config"]["training"]["seed_offset"] == 1
    X_test = (test["image"].tolist(), test["name"].tolist())
    proba = model.predict_proba(*X_test)
    loaded = AutoMM.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(*X_test), proba, atol=1e-6)

    without = AutoMM(**params, search_space={"linear_model": False}).fit(*X, train["category"].tolist())
    assert "sum" not in set(without.leaderboard_["fusion"])
    with pytest.raises(InputError, match=r"search_space\['linear_model'\]: expected true or false"):
        AutoMM(**params, search_space={"linear_model": "yes"}).fit(*X, train["category"].tolist())


def test_no_linear_model_without_a_text_input_or_without_hashed_ngram(builtin_only):
    image = InputSpec("image_0", "image", ["image"], {"image": "image"})
    text = InputSpec("text_0", "text", ["name"], {"name": "text"})
    assert linear_config([image], {"image_0": {"cnn": {}}}, {}, 3) is None
    assert linear_config([image, text], {"image_0": {"cnn": {}}, "text_0": {"gru": {}}}, {}, 3) is None
    config = linear_config([image, text], {"image_0": {"cnn": {}}, "text_0": {"hashed_ngram": {"n_buckets": 512}}},
                           {"batch_size": 8}, 3)
    assert list(config["encoders"]) == ["text_0"]  # images are left out
    assert config["encoders"]["text_0"]["n_buckets"] == 512  # what the user fixed is kept
    assert config["encoders"]["text_0"]["linear"] is True and config["encoders"]["text_0"]["output_dim"] == 3


def test_calibrate_sharpens_under_confident_and_softens_over_confident_logits():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=300)
    logits = rng.normal(size=(300, 3))
    logits[np.arange(300), targets] += 1.5  # right about 75% of the time
    under, over = calibrate([logits * 0.2, logits * 5], targets, "multiclass")
    assert under > 2 and over < 0.5
    assert calibrate([logits], targets, "regression") == [1.0]
    assert calibrate([np.full((300, 3), np.nan)], targets, "multiclass") == [1.0]
