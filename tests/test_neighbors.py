"""The search's nearest-neighbour model (automm.neighbors, the ``neighbors`` fusion)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import automm
from automm.cli import _training_line
from automm import AutoMM
from automm.components.fusions import NeighborsFusion
from automm.data import MISSING, InputSpec
from automm.exceptions import InputError
from automm.neighbors import K_GRID, NEIGHBORS_SOLVER, TEMPERATURE_GRID, neighbors_config, train_neighbors
from automm.pipeline import PreparedData, bag_folds_for

from helpers import forward_rows


class ColourStats(automm.Encoder):
    """Stands for a frozen pretrained image encoder: an image's per-channel mean and spread."""

    modality = "image"
    static_preprocess = True

    def __init__(self, size: int = 16, trainable_layers: int = 0):
        super().__init__()
        self.size, self.output_dim = size, 6
        self.frozen = trainable_layers == 0

    def preprocess(self, value, augment=None):
        from automm.components.image import image_tensor

        if value is MISSING:
            return torch.zeros(6)
        pixels = image_tensor(value, self.size)
        return torch.cat([pixels.mean((1, 2)), pixels.std((1, 2))]) * torch.tensor([1.0, 1, 1, 50, 50, 50])

    def forward(self, batch):
        return batch.float()


class CharCounts(automm.Encoder):
    """Stands for a frozen pretrained text encoder: character counts."""

    modality = "text"
    static_preprocess = True
    frozen = True

    def __init__(self):
        super().__init__()
        self.output_dim = 32

    def preprocess(self, value, augment=None):
        counts = torch.zeros(32)
        for char in "" if value is MISSING else str(value).lower():
            counts[ord(char) % 32] += 1
        return counts

    def forward(self, batch):
        return batch.float()


class PretrainedPlugin:
    @automm.hookimpl
    def automm_register_encoders(self, register):
        register("colour_stats", ColourStats, modality="image", output_dim=6, tags=("pretrained",),
                 defaults={"size": 16, "trainable_layers": 0})
        register("char_counts", CharCounts, modality="text", output_dim=32, tags=("pretrained",))


def _fusion(dims, n_outputs=3, **kw) -> NeighborsFusion:
    return NeighborsFusion(dims, n_outputs, **kw)


# ----------------------------------------------------------------------------- the fusion

def test_the_fusion_votes_among_the_nearest_remembered_rows():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 3
    labels = np.repeat(np.arange(3), 20)
    rows = torch.tensor(centres[labels] + rng.normal(size=(60, 5)) * 0.3, dtype=torch.float32)
    fusion = _fusion({"x": 5}, k=5)
    fusion.remember({"x": rows}, {"x": torch.ones(60, dtype=torch.bool)}, torch.tensor(labels))
    assert fusion.n_remembered == 60 and fusion.bank.dtype == torch.float16
    outputs = fusion({"x": rows}, {"x": torch.ones(60, dtype=torch.bool)})
    assert outputs.shape == (60, 3)
    np.testing.assert_allclose(outputs.exp().sum(1).numpy(), 1.0, atol=1e-5)  # log-probabilities
    assert (outputs.argmax(1).numpy() == labels).all()
    # a unanimous vote still leaves every class its floor: no log(0) for the ensemble's log-loss
    assert float(outputs.min()) == pytest.approx(np.log(NeighborsFusion.SMOOTHING / 3), abs=1e-4)
    # more neighbours than rows: all of them
    similarities, indices = fusion.neighbours({"x": rows[:2]}, {"x": torch.ones(2, dtype=torch.bool)}, 100)
    assert indices.shape == (2, 60) and (similarities[:, :-1] >= similarities[:, 1:]).all()


def test_the_vote_weights_nearer_rows_more_as_the_temperature_rises():
    fusion = _fusion({"x": 2}, n_outputs=2)
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    fusion.remember({"x": bank}, {"x": torch.ones(3, dtype=torch.bool)}, torch.tensor([0, 1, 1]))
    query = ({"x": torch.tensor([[1.0, 0.05]])}, {"x": torch.ones(1, dtype=torch.bool)})
    similarities, indices = fusion.neighbours(*query, 3)
    assert int(fusion.bank_targets[indices[0, 0]]) == 0  # the nearest row is class 0, the two others class 1
    mild, sharp = (fusion.vote(similarities, indices, t)[0].exp() for t in (0.01, 50.0))
    assert float(mild[1]) > 0.6 and float(sharp[0]) > 0.95


def test_a_missing_input_adds_nothing_to_the_similarity():
    fusion = _fusion({"image": 2, "text": 2}, n_outputs=2, k=1)
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    text = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    fusion.remember({"image": image, "text": text}, {"image": torch.ones(4, dtype=torch.bool),
                                                     "text": torch.ones(4, dtype=torch.bool)}, torch.tensor([0, 1, 1, 0]))
    # the query's image is row 1's, its text (missing) row 0's: only the image counts
    query = {"image": image[1:2], "text": text[0:1]}
    masks = {"image": torch.ones(1, dtype=torch.bool), "text": torch.zeros(1, dtype=torch.bool)}
    similarities, indices = fusion.neighbours(query, masks, 1)
    assert int(indices[0, 0]) == 1
    assert float(similarities[0, 0]) == pytest.approx(0.5, abs=1e-3)  # one input's cosine of 1, averaged over two


def test_a_row_without_any_input_votes_as_every_remembered_row():
    # equally similar to every row: topk's first k (here all of class 1) must not decide its vote
    fusion = _fusion({"x": 2}, n_outputs=2, k=3, temperature=50.0)
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9], [0.2, 0.8]])
    fusion.remember({"x": bank}, {"x": torch.ones(6, dtype=torch.bool)}, torch.tensor([1, 1, 1, 0, 0, 0]))
    outputs = fusion({"x": torch.zeros(1, 2)}, {"x": torch.zeros(1, dtype=torch.bool)})
    np.testing.assert_allclose(outputs[0].exp().numpy(), [0.5, 0.5], atol=1e-6)


def test_regression_averages_the_neighbours_targets():
    fusion = _fusion({"x": 1}, n_outputs=1, k=2, temperature=1e-6, regression=True)
    fusion.remember({"x": torch.tensor([[1.0], [2.0], [-1.0], [-3.0]])}, {"x": torch.ones(4, dtype=torch.bool)},
                    torch.tensor([10.0, 20.0, -5.0, -7.0]))
    outputs = fusion({"x": torch.tensor([[5.0], [-2.0]])}, {"x": torch.ones(2, dtype=torch.bool)})
    # standardised 1-d values have cosine ±1: two neighbours of the same sign, equally weighted
    np.testing.assert_allclose(outputs.numpy().ravel(), [15.0, -6.0], atol=1e-3)


def test_the_fusion_checks_its_arguments_and_refuses_to_predict_before_it_remembers():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        _fusion({"x": 2}, k=0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        _fusion({"x": 2}, temperature=-1)
    with pytest.raises(ValueError, match="regression has one output"):
        _fusion({"x": 2}, n_outputs=3, regression=True)
    with pytest.raises(RuntimeError, match="no rows remembered"):
        _fusion({"x": 2})({"x": torch.zeros(1, 2)}, {"x": torch.ones(1, dtype=torch.bool)})


def test_the_remembered_rows_travel_in_the_state_dict():
    fusion = _fusion({"x": 4}, k=3)
    rows = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    fusion.remember({"x": rows}, {"x": torch.ones(30, dtype=torch.bool)}, torch.arange(30) % 3)
    fresh = _fusion({"x": 4}, k=3)
    fresh.load_state_dict(fusion.state_dict(), strict=True)
    assert fresh.n_remembered == 30
    query = ({"x": rows[:7] + 0.1}, {"x": torch.ones(7, dtype=torch.bool)})
    torch.testing.assert_close(fresh(*query), fusion(*query))


# ----------------------------------------------------------------------------- training

def _data(train) -> PreparedData:
    classes = sorted(set(train["category"]))
    rows = np.arange(len(train))
    images = train["image"].tolist()
    images[0] = images[1] = MISSING  # row 0 is a holdout row, row 1 a training row
    return PreparedData(inputs=[InputSpec("image_0", "image", ["image"], {"image": "image"}),
                                InputSpec("text_0", "text", ["name"], {"name": "text"})],
                        values={"image_0": images, "text_0": train["name"].tolist()},
                        targets=np.array([classes.index(c) for c in train["category"]]), problem_type="multiclass",
                        n_outputs=len(classes), train_index=rows[rows % 4 != 0], valid_index=rows[rows % 4 == 0],
                        seed=0, device=torch.device("cpu"), num_workers=0)


def _reference_outputs(data, train_rows, query_rows, k, temperature):
    """The vote computed from scratch in numpy (see NeighborsFusion)."""
    blocks = []
    for name, encoder in (("image_0", ColourStats()), ("text_0", CharCounts())):
        values = data.values[name]
        x = np.stack([encoder.preprocess(values[i]).numpy() for i in range(len(values))]).astype(np.float64)
        present = np.array([v is not MISSING for v in values])
        reference = x[train_rows][present[train_rows]]
        std = reference.std(0)
        z = (x - reference.mean(0)) / np.where(std > 1e-6, std, 1.0)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        blocks.append(z * present[:, None])
    similarity = sum(b[query_rows] @ b[train_rows].T for b in blocks) / 2
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(similarity, order, 1)
    weights = np.exp(temperature * (top - top[:, :1]))
    votes = np.zeros((len(query_rows), data.n_outputs))
    for j in range(k):
        np.add.at(votes, (np.arange(len(query_rows)), data.targets[train_rows][order[:, j]]), weights[:, j])
    probabilities = votes / votes.sum(1, keepdims=True)
    smoothing = NeighborsFusion.SMOOTHING
    return np.log((1 - smoothing) * probabilities + smoothing / data.n_outputs)


def test_train_neighbors_picks_k_and_temperature_on_the_holdout_then_remembers_every_row(builtin_only, fresh_registry,
                                                                                        emoji_split):
    fresh_registry(PretrainedPlugin())
    data = _data(emoji_split[0])
    config = neighbors_config(data.inputs, {"image_0": {"cnn": {}, "colour_stats": {}}, "text_0": {"char_counts": {}}},
                              {"batch_size": 32}, regression=False)
    assert config["training"]["solver"] == NEIGHBORS_SOLVER and config["fusion"]["name"] == "neighbors"
    assert config["encoders"]["image_0"]["name"] == "colour_stats"  # the image's pretrained choice
    assert bag_folds_for(5, data, config) == 1  # never bagged: it remembers every row instead

    candidate = train_neighbors(data, config)
    assert len(candidate.history) == len(K_GRID) * len(TEMPERATURE_GRID)
    losses = [record["valid_loss"] for record in candidate.history]
    kept = candidate.history[candidate.best_epoch - 1]
    assert kept["valid_loss"] == min(losses)
    assert candidate.config["fusion"]["k"] == kept["k"] and candidate.config["fusion"]["temperature"] == kept["temperature"]
    expected = _reference_outputs(data, data.train_index, data.valid_index, kept["k"], kept["temperature"])
    np.testing.assert_allclose(candidate.valid_outputs, expected, atol=2e-2)  # the bank is float16
    assert (candidate.valid_outputs.argmax(1) == expected.argmax(1)).mean() > 0.97
    # the returned model remembers the holdout rows too: each of them now finds itself
    assert candidate.model.fusion.n_remembered == len(data.rows)
    outputs = forward_rows(candidate.model, data.subset(data.valid_index))
    assert (outputs.argmax(1) == data.valid_targets).mean() > (candidate.valid_outputs.argmax(1)
                                                                == data.valid_targets).mean()


def test_train_neighbors_regresses(builtin_only, fresh_registry, emoji_split):
    fresh_registry(PretrainedPlugin())
    train = emoji_split[0].head(120)
    data = _data(train)
    values = (train["category"] == train["category"].mode()[0]).to_numpy(np.float32)  # the commonest category
    data.targets, data.problem_type, data.n_outputs = (values - values.mean()) / values.std(), "regression", 1
    config = neighbors_config(data.inputs, {"text_0": {"char_counts": {}}}, {"batch_size": 32}, regression=True)
    candidate = train_neighbors(data, config)
    assert candidate.valid_outputs.shape == (len(data.valid_index), 1)
    kept = candidate.history[candidate.best_epoch - 1]
    mse = float(np.mean((candidate.valid_outputs.ravel() - data.valid_targets) ** 2))
    assert kept["valid_loss"] == pytest.approx(mse, rel=1e-4)
    assert mse < 0.8 * float(np.var(data.valid_targets))  # well below the constant prediction's error
    assert kept["valid_score"] == pytest.approx(-mse, rel=1e-4)


def test_no_neighbors_model_without_a_frozen_pretrained_encoder(builtin_only, fresh_registry):
    fresh_registry(PretrainedPlugin())
    image = InputSpec("image_0", "image", ["image"], {"image": "image"})
    text = InputSpec("text_0", "text", ["name"], {"name": "text"})
    assert neighbors_config([image, text], {"image_0": {"cnn": {}}, "text_0": {"hashed_ngram": {}}}, {},
                            regression=False) is None
    # fine-tuning, as the user fixed it, is not a frozen embedding
    assert neighbors_config([image], {"image_0": {"colour_stats": {"trainable_layers": 1}}}, {},
                            regression=False) is None
    config = neighbors_config([image, text], {"image_0": {"colour_stats": {"size": 8}}, "text_0": {"gru": {}}}, {},
                              regression=True)
    assert list(config["encoders"]) == ["image_0"] and config["encoders"]["image_0"]["size"] == 8
    assert config["fusion"]["regression"] is True


def test_a_search_trains_the_neighbors_model_and_keeps_it_through_save(builtin_only, fresh_registry, emoji_split,
                                                                      tmp_path):
    fresh_registry(PretrainedPlugin())
    train, test = emoji_split
    train = train.head(200)
    X = (train["image"].tolist(), train["name"].tolist())
    params = dict(n_trials=4, max_epochs=2, batch_size=16, num_workers=0, random_state=0, ensemble_size=2,
                  pruner="none", encoders={"image": {"name": "cnn", "image_size": 32, "depth": 2},
                                           "text": ["hashed_ngram", "char_counts"]})
    model = AutoMM(**params).fit(*X, train["category"].tolist())
    board = model.leaderboard_.set_index("number")
    # the default, its pretrained variant, the linear model, then the nearest-neighbour model
    neighbors = board.loc[3]
    assert neighbors["fusion"] == "neighbors" and neighbors["state"] == "COMPLETE"
    assert neighbors["encoders"] == "text_0=char_counts"  # the cnn is no pretrained embedding
    assert neighbors["config"]["training"]["solver"] == NEIGHBORS_SOLVER
    X_test = (test["image"].tolist(), test["name"].tolist())
    proba = model.predict_proba(*X_test)
    loaded = AutoMM.load(model.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(*X_test), proba, atol=1e-6)

    without = AutoMM(**params, search_space={"neighbors_model": False}).fit(*X, train["category"].tolist())
    assert "neighbors" not in set(without.leaderboard_["fusion"])
    with pytest.raises(InputError, match=r"search_space\['neighbors_model'\]: expected true or false"):
        AutoMM(**params, search_space={"neighbors_model": 1}).fit(*X, train["category"].tolist())


def test_naming_the_neighbors_fusion_fits_a_nearest_neighbour_model(builtin_only, fresh_registry, emoji_split,
                                                                    tmp_path):
    fresh_registry(PretrainedPlugin())
    train, test = emoji_split
    X, X_test = ((frame["image"].tolist(), frame["name"].tolist()) for frame in (train, test))
    model = AutoMM(encoders={"image": "colour_stats", "text": "char_counts"}, fusion="neighbors", bag_folds=3,
                   num_workers=0, random_state=0).fit(*X, train["category"].tolist())
    assert model.config_["fusion"]["k"] in K_GRID and model.config_["fusion"]["temperature"] in TEMPERATURE_GRID
    assert model.model_.fusion.n_remembered == len(train)  # every row, in one model: never bagged
    # what fit says it kept: the (k, temperature) setting chosen, not "epochs"
    summary = model.fit_summary()
    kept = {"k": model.config_["fusion"]["k"], "temperature": model.config_["fusion"]["temperature"]}
    assert summary["solver"] == "neighbors" and summary["kept_setting"] == kept
    assert _training_line(summary) == ("neighbours", f"k = {kept['k']}, temperature {kept['temperature']:g} kept of "
                                                     f"{len(K_GRID) * len(TEMPERATURE_GRID)} settings tried "
                                                     f"({summary['stop_reason']})")
    majority = float(test["category"].value_counts(normalize=True).max())
    assert model.score(*X_test, test["category"].tolist()) > majority + 0.1
    # an automm reading format 6 or older may predate the prior vote of rows without input: it refuses the model
    import json

    from automm.persistence import MANIFEST

    path = model.save(tmp_path / "neighbors")
    assert json.loads((Path(path) / MANIFEST).read_text())["format_version"] >= 7


def test_class_weight_weighs_the_neighbours_votes(builtin_only, fresh_registry, emoji_split):
    """class_weight was used by every loss but the nearest-neighbour vote: the same model came back."""
    fresh_registry(PretrainedPlugin())
    train, test = emoji_split
    X, X_test = ((frame["image"].tolist(), frame["name"].tolist()) for frame in (train, test))
    y = np.where(train["category"] == train["category"].iloc[0], "rare", "other")
    common = dict(encoders={"image": "colour_stats", "text": "char_counts"}, fusion="neighbors", num_workers=0,
                  random_state=0)
    plain = AutoMM(**common).fit(*X, y).predict_proba(*X_test)[:, 1]
    weighted = AutoMM(**common, class_weight={"rare": 20.0}).fit(*X, y).predict_proba(*X_test)[:, 1]
    assert weighted.mean() > plain.mean()


def test_a_tables_input_is_not_warned_about_as_untrained():
    """The warning advised a pretrained encoder for a table, which has none."""
    import warnings

    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=60).tolist(), "b": rng.choice(["x", "y"], 60).tolist()}
    y = ["p" if v > 0 else "q" for v in X["a"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoMM(fusion="neighbors", random_state=0).fit(X, y)
    assert not [w for w in caught if "trains no encoder" in str(w.message)]


def test_comparing_a_large_holdout_stops_at_the_deadline_saying_how_far_it_got(builtin_only, fresh_registry,
                                                                               emoji_split, monkeypatch):
    """The holdout is compared with the remembered rows a batch at a time, watching the deadline
    (at 160,000 rows the one comparison outlasted a 30-s budget and bounded nothing)."""
    import time

    import automm.neighbors as neighbors
    from automm.deadlines import deadline_scope

    fresh_registry(PretrainedPlugin())
    data = _data(emoji_split[0].head(200))
    config = neighbors_config(data.inputs, {"image_0": {"colour_stats": {}}, "text_0": {"char_counts": {}}},
                              {"batch_size": 32}, regression=False)
    monkeypatch.setattr(neighbors, "EMBED_BATCH", 8)
    with deadline_scope(time.monotonic() + 1e-3), pytest.raises(
            automm.TimeLimitExceeded, match=r"the nearest-neighbour model compared 8 of \d+ holdout rows with \d+ training"):
        train_neighbors(data, config)


def _neighbors_candidate(data):
    config = neighbors_config(data.inputs, {"image_0": {"colour_stats": {}}, "text_0": {"char_counts": {}}},
                              {"batch_size": 32}, regression=False)
    return train_neighbors(data, config)


def test_the_neighbors_model_never_remembers_the_users_validation_rows(builtin_only, fresh_registry, emoji_split):
    fresh_registry(PretrainedPlugin())
    data = _data(emoji_split[0])
    data.holdout_given = True
    candidate = _neighbors_candidate(data)
    assert candidate.model.fusion.n_remembered == len(data.train_index)
    assert "holdout" not in candidate.stop_reason


def test_class_weight_weighs_the_votes_of_sample_weighted_rows_too(builtin_only, fresh_registry, emoji_split):
    fresh_registry(PretrainedPlugin())
    both, by_row = _data(emoji_split[0]), _data(emoji_split[0])
    sample = np.random.default_rng(0).uniform(0.5, 2.0, len(both.targets)).astype(np.float32)
    class_weights = np.linspace(1.0, 10.0, both.n_outputs)
    both.sample_weights, both.class_weights = sample, list(class_weights)
    by_row.sample_weights = (sample * class_weights[by_row.targets]).astype(np.float32)
    np.testing.assert_allclose(_neighbors_candidate(both).valid_outputs, _neighbors_candidate(by_row).valid_outputs,
                               atol=1e-5)
