"""An encoder runs on the rows of a batch that have its input only (``Encoder.select_rows``): the
rows lacking it are zeroed by the model anyway, so their blank placeholders are not computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import automm
from automm import MISSING, Encoder, PluginError, hookimpl
from automm.components.base import take_rows
from automm.components.image import CNNEncoder, ResNetEncoder
from automm.components.text import GRUTextEncoder, HashedNgramEncoder
from automm.model import MultimodalNet
from helpers import single_torch_thread  # noqa: F401  (autouse: this module's tests on one torch thread)

TINY_CNN = {"name": "cnn", "image_size": 16, "width": 4, "depth": 2, "output_dim": 8}


class RowCounter(Encoder):
    """A text encoder that counts the rows forward is given, and the blank placeholders among them."""

    modality = "text"
    rows = 0
    blanks = 0

    def __init__(self, output_dim=4):
        super().__init__()
        self.output_dim = output_dim
        self.layer = torch.nn.Linear(1, output_dim)

    def preprocess(self, value, augment=None):
        return torch.tensor([-1.0 if value is MISSING else float(len(str(value)))])

    def forward(self, batch):
        RowCounter.rows += len(batch)
        RowCounter.blanks += int((batch == -1.0).sum())
        return self.layer(batch)


class CounterPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("row_counter", RowCounter, modality="text", output_dim=4, defaults={"output_dim": 4})


def test_an_encoder_runs_only_on_the_rows_that_have_its_input(fresh_registry):
    fresh_registry(CounterPlugin())
    rng = np.random.default_rng(0)
    n = 40
    X = {"words": ["" if i % 2 else f"word {i % 3} and {i}" for i in range(n)], "number": rng.normal(size=n)}
    y = [i % 2 for i in range(n)]
    model = automm.AutoMM(encoders={"text": "row_counter"}, column_types={"words": "text", "number": "numeric"},
                          max_epochs=2, random_state=0, num_workers=0)
    RowCounter.rows = RowCounter.blanks = 0
    model.fit(X, y)
    assert RowCounter.blanks == 0  # training and its holdout: no blank placeholder reached the encoder
    assert RowCounter.rows > 0
    RowCounter.rows = 0
    proba = model.predict_proba({"words": ["some words", "", "", "more words here", ""], "number": [0.1] * 5})
    assert RowCounter.rows == 2 and RowCounter.blanks == 0
    alone = model.predict_proba({"words": ["more words here"], "number": [0.1]})
    np.testing.assert_allclose(proba[3], alone[0], atol=1e-6)
    RowCounter.rows = 0
    model.predict_proba({"words": ["", ""], "number": [0.1, 0.2]})  # no row has a text: the encoder is not run
    assert RowCounter.rows == 0


def test_predictions_of_rows_with_the_input_are_those_of_the_encoder_run_on_every_row(emoji_split, monkeypatch):
    train, test = emoji_split
    train, test = train.iloc[:120].copy(), test.iloc[:40].copy()
    train.loc[train.index % 3 == 0, "image"] = None
    model = automm.AutoMM(encoders={"image": TINY_CNN}, max_epochs=1, random_state=0, num_workers=0)
    model.fit(train[["image", "name"]], train["category"])
    test.loc[test.index % 2 == 0, "image"] = None
    selected = model.predict_proba(test[["image", "name"]])
    monkeypatch.setattr(CNNEncoder, "select_rows", lambda self, batch, rows: None)  # every row, as before
    every_row = model.predict_proba(test[["image", "name"]])
    np.testing.assert_allclose(selected, every_row, atol=1e-6)


def _net(encoder):
    fusion = automm.create_fusion("concat", {"image_0": encoder.output_dim}, 3)
    return MultimodalNet({"image_0": encoder}, fusion, 3)


def test_a_batch_without_the_input_gives_every_trainable_parameter_a_zero_gradient():
    # as the encoder's zeroed output did when it ran on the placeholders: the optimizer steps them as before
    torch.manual_seed(0)
    encoder = CNNEncoder(image_size=16, width=4, depth=2, output_dim=8)
    net = _net(encoder).train()
    batch = torch.zeros(4, 3, 16, 16)
    net({"image_0": batch}, {"image_0": torch.zeros(4, dtype=torch.bool)}).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and not parameter.grad.any(), name


def test_take_rows_indexes_every_tensor_of_a_batch():
    batch = {"a": torch.arange(6).view(3, 2), "b": {"c": torch.tensor([1.0, 2.0, 3.0])}}
    taken = take_rows(batch, torch.tensor([0, 2]))
    assert taken["a"].tolist() == [[0, 1], [4, 5]] and taken["b"]["c"].tolist() == [1.0, 3.0]


def test_select_rows_that_returns_other_rows_is_named():
    class EveryRow(CNNEncoder):
        def select_rows(self, batch, rows):
            return batch  # ignores rows

    net = _net(EveryRow(image_size=16, width=4, depth=2, output_dim=8)).eval()
    with pytest.raises(PluginError, match=r"returned 4 rows for the 2 rows \(of 4\) that its select_rows gave it; "
                                          "forward must return one row per sample, and select_rows the batch"):
        net({"image_0": torch.zeros(4, 3, 16, 16)}, {"image_0": torch.tensor([True, False, True, False])})


def test_a_training_batch_where_one_row_has_the_input_runs_the_encoder_on_every_row():
    # a resnet of image_size 16 reaches 1x1 pixels: its batch normalisation cannot train on one image
    # ("Expected more than 1 value per channel when training"), which make_loader's batches avoid
    torch.manual_seed(0)
    net = _net(ResNetEncoder(image_size=16, width=4, depth=3, output_dim=8)).train()
    one = torch.tensor([False, True, False, False])
    out = net({"image_0": torch.rand(4, 3, 16, 16)}, {"image_0": one})
    assert out.shape == (4, 3)
    out.sum().backward()
    net.eval()  # predicting, it runs on the one row
    alone = net({"image_0": torch.rand(1, 3, 16, 16)}, {"image_0": torch.tensor([True])})
    assert alone.shape == (1, 3)


def test_an_encoder_that_adds_its_own_collate_to_a_built_in_one_runs_on_every_row():
    # the built-in select_rows knows its own collate's batch only: a subclass's batch (a key more) is run whole
    class CountingGRU(GRUTextEncoder):
        def collate(self, samples):
            batch = super().collate(samples)
            batch["n"] = batch["length"].float().unsqueeze(1)
            return batch

        def forward(self, batch):
            return super().forward(batch) + batch["n"]

    class CountingNgrams(HashedNgramEncoder):
        def collate(self, samples):
            return {**super().collate(samples), "n": torch.ones(len(samples), 1)}

        def forward(self, batch):
            return super().forward(batch) + batch["n"]

    texts = ["red shirt", MISSING, "blue shoe", MISSING]
    mask = torch.tensor([True, False, True, False])
    for encoder in (CountingGRU(output_dim=8), CountingNgrams(output_dim=8)):
        encoder.fit([t for t in texts if t is not MISSING])
        batch = encoder.collate([encoder.preprocess(t) for t in texts])
        assert encoder.select_rows(batch, torch.nonzero(mask).flatten()) is None
        net = MultimodalNet({"text_0": encoder}, automm.create_fusion("concat", {"text_0": 8}, 3), 3).eval()
        assert net({"text_0": batch}, {"text_0": mask}).shape == (4, 3)


def test_empty_rows_of_the_wrong_shape_are_named():
    class Wrong(GRUTextEncoder):
        def empty_rows(self, batch):
            return torch.zeros(1, dtype=torch.bool)

    encoder = Wrong(output_dim=8)
    encoder.fit(["red shirt", "blue shoe"])
    fusion = automm.create_fusion("concat", {"text_0": 8}, 3)
    net = MultimodalNet({"text_0": encoder}, fusion, 3).eval()
    batch = encoder.collate([encoder.preprocess(t) for t in ["red shirt", "blue shoe", "red shoe"]])
    with pytest.raises(PluginError, match=r"empty_rows returned \(1,\) for a batch of 3 rows"):
        net({"text_0": batch}, {"text_0": torch.ones(3, dtype=torch.bool)})


def test_rows_without_any_input_at_predict_time_are_warned_about_once():
    """A row whose every column is missing got the model's output for no data (the linear model's
    bias, a class of the network's choosing) without a word: a warning names how many and which,
    once per model (a service's requests would repeat it)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 40
    X = pd.DataFrame({"words": [f"word {i % 3} and {i}" for i in range(n)], "number": rng.normal(size=n)})
    model = automm.AutoMM(encoders={"text": {"name": "hashed_ngram", "n_buckets": 256, "emb_dim": 8,
                                              "output_dim": 8}},
                          column_types={"words": "text", "number": "numeric"}, max_epochs=1, random_state=0,
                          num_workers=0).fit(X, [i % 2 for i in range(n)])
    new = pd.DataFrame({"words": ["word 1", " \u200b", None, "", "word 2"],
                        "number": [np.nan, np.nan, np.nan, 0.5, 1.0]}, index=["a", "b", "c", "d", "e"])
    with pytest.warns(automm.AutoMMWarning, match=r"X: 2 of 5 rows have no input at all \(every column missing: "
                                                  r"index 'b', index 'c'\): each gets the same prediction") as caught:
        proba = model.predict_proba(new)
    assert len([w for w in caught if "no input at all" in str(w.message)]) == 1
    np.testing.assert_allclose(proba[1], proba[2])  # (what the warning says)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once for this model; rows with an input are no concern
        model.predict(new)
        model.predict(new.iloc[[0, 3, 4]])
