"""The search's linear model (automm.linear) and the ensemble's temperatures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch

import automm
from automm import AutoMM
from automm.data import MISSING, InputSpec
from automm.ensemble import calibrate
from automm.exceptions import InputError
from automm.linear import L2_GRID, LINEAR_SOLVER, linear_config, raw_design, train_linear
from automm.persistence import MANIFEST_DIGEST, manifest_digest
from automm.pipeline import PreparedData

from helpers import forward_rows, seen_columns


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


def test_the_linear_model_is_logistic_regression_on_the_hashed_ngrams(builtin_only, emoji_split):
    from sklearn.linear_model import LogisticRegression

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    candidate = train_linear(data, _config(data), refit=False)
    assert [r["l2_c"] for r in candidate.history] == list(L2_GRID)
    kept = candidate.history[candidate.best_epoch - 1]
    assert kept["valid_loss"] == min(r["valid_loss"] for r in candidate.history)  # the lowest holdout loss is kept
    assert candidate.best_score == kept["valid_score"]

    # the same problem solved by scikit-learn: C * sum of log-losses + ||W||^2 / 2, intercept free
    def design(index, seen=None):  # (seen: the buckets seen in the fit, the columns)
        return seen_columns(raw_design(candidate.model, data.subset(index))["text_0"][0], seen)

    train_x, seen = design(data.train_index)
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(train_x, data.targets[data.train_index])
    expected = reference.predict_proba(design(data.valid_index, seen)[0])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()[:, reference.classes_]
    assert np.abs(got - expected).max() < 0.02
    # each record's training loss is that of its fitted model (it had been the loss where L-BFGS began)
    from sklearn.metrics import log_loss

    reference_loss = log_loss(data.targets[data.train_index], reference.predict_proba(train_x))
    assert kept["train_loss"] == pytest.approx(reference_loss, abs=0.01)
    assert all(r["train_loss"] < np.log(len(classes)) / 2 for r in candidate.history)

    # the model itself (hashed_ngram in its linear form, sum fusion) gives the same outputs,
    # keeping weight rows only for the buckets of the training texts
    encoder = candidate.model.encoders["text_0"]
    assert encoder.n_buckets == 2 ** 18  # the linear form's preferred default (linear_defaults)
    assert encoder.embedding.weight.shape[0] == len(encoder.kept_buckets) + 1 == len(seen) + 1
    np.testing.assert_allclose(forward_rows(candidate.model, data.subset(data.valid_index)), candidate.valid_outputs,
                               atol=1e-4)

    # by default the kept strength is fitted once more on the training and holdout rows; the
    # holdout outputs (what the ensemble weighs) stay those of the training rows' fit
    refitted = train_linear(data, _config(data))
    assert "refit" in refitted.stop_reason and refitted.best_epoch == candidate.best_epoch
    np.testing.assert_allclose(refitted.valid_outputs, candidate.valid_outputs, atol=1e-5)
    every_row = data.rows
    all_x, seen = design(every_row)
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(all_x, data.targets[every_row])
    got = torch.softmax(torch.from_numpy(forward_rows(refitted.model, data.subset(every_row))), 1).numpy()
    assert np.abs(got[:, reference.classes_] - reference.predict_proba(all_x)).max() < 0.02


class DenseLinearForm:
    """What the test encoders with a dense linear form share: their features are the design, and
    ``linear_layer`` (present when ``linear``) holds the weights fitted on it."""

    def linear_design(self, batch):
        return batch

    def set_linear_weight(self, weight):
        with torch.no_grad():
            self.linear_layer.weight.copy_(weight.t())

    def forward(self, batch):
        return self.linear_layer(batch) if self.linear else batch


class ColourStats(DenseLinearForm, automm.Encoder):
    """A test encoder with a dense linear form: an image's per-channel mean and spread."""

    modality = "image"
    static_preprocess = True
    frozen = True  # fixed features, like a frozen pretrained encoder's

    def __init__(self, size: int = 16, linear: bool = False, output_dim: int = 6):
        super().__init__()
        self.size, self.linear = size, linear
        self.output_dim = output_dim if linear else 6
        if linear:
            self.linear_layer = torch.nn.Linear(6, output_dim, bias=False)
            torch.nn.init.zeros_(self.linear_layer.weight)

    def preprocess(self, value, augment=None):
        from automm.components.image import image_tensor

        if value is MISSING:
            return torch.zeros(6)
        pixels = image_tensor(value, self.size)
        return torch.cat([pixels.mean((1, 2)), pixels.std((1, 2))]) * torch.tensor([1.0, 1, 1, 50, 50, 50])


def image_plugin(name: str, encoder_class: type):
    """A plugin registering a test image encoder with a linear form (six features)."""

    class Plugin:
        @automm.hookimpl
        def automm_register_encoders(self, register):
            register(name, encoder_class, modality="image", tags=("linear",),
                     output_dim=lambda hp: hp["output_dim"] if hp["linear"] else 6,
                     defaults={"size": 16, "linear": False, "output_dim": 6})

    Plugin.__qualname__ = f"{name}_plugin"  # the plugin's name for pluggy: one per encoder
    return Plugin()


def test_dense_features_are_standardised_for_the_fit_and_folded_back_into_the_model(builtin_only, fresh_registry,
                                                                                     emoji_split):
    from sklearn.linear_model import LogisticRegression

    from automm.testing import check_encoder

    fresh_registry(image_plugin("colour_stats", ColourStats))
    train, _ = emoji_split
    assert "linear form checked" in check_encoder("colour_stats", train["image"].tolist()[:4]).notes
    images, texts = train["image"].tolist(), train["name"].tolist()
    images[0] = images[1] = MISSING  # row 0 is a holdout row, row 1 a training row
    classes = sorted(set(train["category"]))
    rows = np.arange(len(texts))
    data = PreparedData(inputs=[InputSpec("image_0", "image", ["image"], {"image": "image"}),
                                InputSpec("text_0", "text", ["name"], {"name": "text"})],
                        values={"image_0": images, "text_0": texts},
                        targets=np.array([classes.index(c) for c in train["category"]]), problem_type="multiclass",
                        n_outputs=len(classes), train_index=rows[rows % 4 != 0], valid_index=rows[rows % 4 == 0],
                        seed=0, device=torch.device("cpu"), num_workers=0)
    config = linear_config(data.inputs, {"image_0": {"cnn": {}, "colour_stats": {}}, "text_0": {"hashed_ngram": {}}},
                           {"batch_size": 32}, data.n_outputs)
    assert config["encoders"]["image_0"]["name"] == "colour_stats"  # the image's only encoder with a linear form
    candidate = train_linear(data, config, refit=False)
    kept = candidate.history[candidate.best_epoch - 1]

    # scikit-learn on the matrix the solver sees: the text's seen buckets, and the colour
    # statistics standardised on the present training rows and scaled by 1 / sqrt(6)
    def features(index, seen=None, stats=None):
        design = raw_design(candidate.model, data.subset(index))
        text, seen = seen_columns(design["text_0"][0], seen)
        colour, present = (t.numpy() for t in design["image_0"])
        stats = (colour[present].mean(0), colour[present].std(0)) if stats is None else stats
        return scipy.sparse.hstack([text, (colour - stats[0]) / stats[1] / np.sqrt(6)], format="csr"), seen, stats

    train_x, seen, stats = features(data.train_index)
    valid_x, _, _ = features(data.valid_index, seen, stats)
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(train_x, data.targets[data.train_index])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()[:, reference.classes_]
    assert np.abs(got - reference.predict_proba(valid_x)).max() < 0.02

    # the model, with the standardisation folded into its weights and bias, gives the same
    # outputs, the holdout row without an image included
    np.testing.assert_allclose(forward_rows(candidate.model, data.subset(data.valid_index)), candidate.valid_outputs,
                               atol=1e-3)



def test_dense_features_are_standardised_on_the_rows_that_have_the_input_only():
    """A missing value's row is zeros in the design: counted, those rows pulled the mean toward 0
    and widened the spread (half the rows without an image: the mean halved), so the scale of a
    dense block, and with it the penalty's effect, depended on how many rows lacked the input."""
    from automm.linear import _Block, _Design

    dense = torch.tensor([[1.0, 10.0], [3.0, 10.0], [0.0, 0.0], [5.0, 10.0], [0.0, 0.0], [100.0, -7.0]])
    present = torch.tensor([True, True, False, True, False, True])
    block = _Block(_Design("image_0", present, 2, dense=dense), 5)  # the last row is a holdout row's
    np.testing.assert_allclose(block.mean.numpy(), [3.0, 10.0], rtol=1e-6)
    # the spread of 1, 3, 5 (the second feature is constant there: left unscaled), over sqrt(width)
    np.testing.assert_allclose(block.scale.numpy(), [1 / np.sqrt(8 / 3) / np.sqrt(2), 1 / np.sqrt(2)], rtol=1e-5)
    nothing = _Block(_Design("image_0", torch.zeros(6, dtype=torch.bool), 2, dense=torch.zeros(6, 2)), 5)
    assert not nothing.mean.any() and torch.isfinite(nothing.scale).all()  # no row has it: left as it is

class ColourQuantiles(ColourStats):
    """A second dense linear form on images: per-channel quartiles."""

    def preprocess(self, value, augment=None):
        from automm.components.image import image_tensor

        if value is MISSING:
            return torch.zeros(6)
        pixels = image_tensor(value, self.size).flatten(1)
        return torch.cat([pixels.quantile(0.25, dim=1), pixels.quantile(0.75, dim=1)])


def test_an_input_with_several_linear_forms_takes_part_through_all_of_them(builtin_only, fresh_registry, emoji_split):
    from sklearn.linear_model import LogisticRegression

    from automm.components.stack import EncoderStack
    from automm.pipeline import build_model

    fresh_registry(image_plugin("colour_stats", ColourStats), image_plugin("colour_quantiles", ColourQuantiles))
    train, _ = emoji_split
    images = train["image"].tolist()
    images[1] = MISSING
    classes = sorted(set(train["category"]))
    rows = np.arange(len(images))
    data = PreparedData(inputs=[InputSpec("image_0", "image", ["image"], {"image": "image"})],
                        values={"image_0": images}, targets=np.array([classes.index(c) for c in train["category"]]),
                        problem_type="multiclass", n_outputs=len(classes), train_index=rows[rows % 4 != 0],
                        valid_index=rows[rows % 4 == 0], seed=0, device=torch.device("cpu"), num_workers=0)
    choices = {"image_0": {"colour_quantiles": {}, "cnn": {}, "colour_stats": {"size": 12}}}
    config = linear_config(data.inputs, choices, {"batch_size": 32}, data.n_outputs)
    stack = config["encoders"]["image_0"]
    assert stack["name"] == "stack"  # every choice with a linear form, in the order given
    assert [(p["name"], p.get("size")) for p in stack["parts"]] == [("colour_quantiles", 16), ("colour_stats", 12)]
    candidate = train_linear(data, config, refit=False)
    assert isinstance(candidate.model.encoders["image_0"], EncoderStack)
    kept = candidate.history[candidate.best_epoch - 1]

    # scikit-learn on the two blocks side by side, each standardised and scaled by 1 / sqrt(6)
    def features(index, stats=None):
        design = raw_design(candidate.model, data.subset(index))
        assert sorted(design) == ["image_0[0]", "image_0[1]"]
        blocks = [design[key][0].numpy() for key in sorted(design)]
        present = design["image_0[0]"][1].numpy()
        stats = stats or [(b[present].mean(0), b[present].std(0)) for b in blocks]
        return np.hstack([(b - m) / sd / np.sqrt(6) for b, (m, sd) in zip(blocks, stats)]), stats

    train_x, stats = features(data.train_index)
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(train_x, data.targets[data.train_index])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()[:, reference.classes_]
    assert np.abs(got - reference.predict_proba(features(data.valid_index, stats)[0])).max() < 0.02

    # the stack's output is the sum of its parts' folded linear forms; it round-trips through
    # its state and weights as a saved model does
    valid = data.subset(data.valid_index)
    np.testing.assert_allclose(forward_rows(candidate.model, valid), candidate.valid_outputs, atol=1e-3)
    states = {name: encoder.get_state() for name, encoder in candidate.model.encoders.items()}
    rebuilt = build_model(data.inputs, config, data.n_outputs, states=states).eval()
    rebuilt.load_state_dict(candidate.model.state_dict(), strict=True)
    np.testing.assert_allclose(forward_rows(rebuilt, valid), forward_rows(candidate.model, valid), atol=1e-6)


class _StackPart(automm.Encoder):
    """A text's length times ``scale``, twice; what the stack asks of a part, answered as given."""

    modality = "text"

    def __init__(self, scale, frozen=False, pending=0.0, message=None):
        super().__init__()
        self.output_dim, self.scale, self.frozen, self.pending, self.message = 2, scale, frozen, pending, message

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else float(len(value))])

    def forward(self, batch):
        return batch.repeat(1, 2) * self.scale

    def pending_share(self, values, *, cache_dir=None):
        return self.pending

    def unfamiliar_values(self, values):
        return [self.message]


class _OwnCollatePart(_StackPart):
    def collate(self, samples):
        return torch.stack(samples)


def test_an_encoder_stack_sums_its_parts_and_answers_for_every_part():
    """Only the heavy linear-model test above built a stack: a stack reading its first part alone
    (its output, its warnings, its pending work) or frozen where one part trains passed it."""
    from automm.components.stack import EncoderStack

    stack = EncoderStack([_StackPart(1.0, frozen=True, pending=0.5, message="first"),
                          _StackPart(10.0, message="second")])
    assert not stack.frozen  # one part trains: its outputs may not be cached
    assert EncoderStack([_StackPart(1.0, frozen=True), _StackPart(2.0, frozen=True)]).frozen
    batch = stack.collate([stack.preprocess(v) for v in ("ab", "c", MISSING)])
    assert stack(batch).tolist() == [[22.0, 22.0], [11.0, 11.0], [0.0, 0.0]]
    rows = torch.tensor([0, 2])
    assert stack(stack.select_rows(batch, rows)).tolist() == [[22.0, 22.0], [0.0, 0.0]]
    assert stack.pending_share(["ab"]) == 0.5 and stack.unfamiliar_values(["ab"]) == ["first", "second"]
    # a part with its own collate runs on every row: so does the stack
    mixed = EncoderStack([_StackPart(1.0), _OwnCollatePart(2.0)])
    assert mixed.select_rows(mixed.collate([mixed.preprocess(v) for v in ("ab", "c")]), rows[:1]) is None
    with pytest.raises(ValueError, match="the state describes 1 parts; this stack has 2"):
        stack.set_state({"parts": [{}]})


def test_table_columns_take_part_through_the_tabular_linear_form(builtin_only):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 400
    price = rng.normal(50.0, 10.0, n)
    colour = rng.choice(["red", "blue", "green"], n)
    targets = np.where(price > 60, 2, (colour != "red").astype(int))  # expensive: 2; else red 0, the others 1
    flip = rng.random(n) < 0.1
    targets[flip] = rng.integers(0, 3, flip.sum())
    rows = [{"price": MISSING if i % 17 == 0 else float(p), "colour": MISSING if i % 23 == 0 else c}
            for i, (p, c) in enumerate(zip(price, colour))]
    spec = InputSpec("tabular", "tabular", ["price", "colour"], {"price": "numeric", "colour": "categorical"})
    index = np.arange(n)
    data = PreparedData(inputs=[spec], values={"tabular": rows}, targets=targets, problem_type="multiclass",
                        n_outputs=3, train_index=index[index % 4 != 0], valid_index=index[index % 4 == 0], seed=0,
                        device=torch.device("cpu"), num_workers=0)
    config = linear_config(data.inputs, {"tabular": {"tabular": {}}}, {"batch_size": 32}, 3)
    assert config["encoders"]["tabular"]["linear"] is True
    candidate = train_linear(data, config, refit=False)

    # the design: standardised price, its missing flag, a one-hot of the colour's index (0: missing
    # or unknown), each row scaled by 1 / sqrt(2 columns)
    encoder = candidate.model.encoders["tabular"]
    design = raw_design(candidate.model, data.subset(data.train_index))["tabular"][0].to_dense().numpy()
    train_rows = [rows[i] for i in data.train_index]
    prices = np.array([np.nan if r["price"] is MISSING else r["price"] for r in train_rows])
    q25, median, q75 = np.nanquantile(prices, [0.25, 0.5, 0.75])  # robust: median and IQR / 1.349
    expected_price = np.where(np.isnan(prices), 0.0, (prices - median) / ((q75 - q25) / 1.349))
    absent = np.array([r["price"] is MISSING and r["colour"] is MISSING for r in train_rows])
    assert absent.sum() == 1 and not design[absent].any()  # a row with no value: the bias alone
    design_present = design[~absent] * np.sqrt(2)
    np.testing.assert_allclose(design_present[:, 0], expected_price[~absent], atol=1e-4)
    np.testing.assert_array_equal(design_present[:, 1] > 0.5, np.isnan(prices[~absent]))
    one_hot = design_present[:, 2:]
    np.testing.assert_allclose(one_hot.sum(1), 1.0, atol=1e-6)
    categories = encoder.categories["colour"]
    for row, hot in zip([r for r, a in zip(train_rows, absent) if not a], one_hot.argmax(1)):
        assert hot == (0 if row["colour"] is MISSING else categories.index(row["colour"]) + 1)

    # the fit is scikit-learn's logistic regression on that design, and the model computes it
    kept = candidate.history[candidate.best_epoch - 1]
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(design, targets[data.train_index])
    valid = raw_design(candidate.model, data.subset(data.valid_index))["tabular"][0].to_dense().numpy()
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()
    assert np.abs(got - reference.predict_proba(valid)).max() < 0.02
    np.testing.assert_allclose(forward_rows(candidate.model, data.subset(data.valid_index)), candidate.valid_outputs,
                               atol=1e-4)
    assert candidate.best_score > 0.8  # the columns carry the label (10% of it flipped at random)


def test_the_fit_does_not_depend_on_how_many_rows_the_design_is_built_from_at_a_time(builtin_only, fresh_registry,
                                                                                    emoji_split, monkeypatch):
    """The design is built a chunk of rows at a time (sparse text and table blocks, a dense image
    block, missing values in each); any chunk size gives the same model and holdout outputs."""
    import automm.linear as linear

    fresh_registry(image_plugin("colour_stats", ColourStats))
    train = emoji_split[0].head(300)
    images, texts = train["image"].tolist(), train["name"].tolist()
    images[5] = texts[6] = texts[8] = MISSING
    table = [{"kind": MISSING if i % 11 == 0 else name.split()[0]} for i, name in enumerate(train["name"])]
    classes = sorted(set(train["category"]))
    rows = np.arange(len(train))
    data = PreparedData(inputs=[InputSpec("image_0", "image", ["image"], {"image": "image"}),
                                InputSpec("text_0", "text", ["name"], {"name": "text"}),
                                InputSpec("tabular", "tabular", ["kind"], {"kind": "categorical"})],
                        values={"image_0": images, "text_0": texts, "tabular": table},
                        targets=np.array([classes.index(c) for c in train["category"]]), problem_type="multiclass",
                        n_outputs=len(classes), train_index=rows[rows % 4 != 0], valid_index=rows[rows % 4 == 0],
                        seed=0, device=torch.device("cpu"), num_workers=0)
    config = linear_config(data.inputs, {"image_0": {"colour_stats": {}}, "text_0": {"hashed_ngram": {}},
                                         "tabular": {"tabular": {}}}, {"batch_size": 32}, data.n_outputs)
    assert len(rows) <= linear.DESIGN_CHUNK_ROWS
    whole = train_linear(data, config)
    monkeypatch.setattr(linear, "DESIGN_CHUNK_ROWS", 7)  # many chunks, the last one shorter
    chunked = train_linear(data, config)
    assert "refit" in whole.stop_reason and chunked.best_epoch == whole.best_epoch
    np.testing.assert_allclose(chunked.valid_outputs, whole.valid_outputs, atol=1e-6)
    expected = whole.model.state_dict()
    for key, value in chunked.model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), expected[key].numpy(), atol=1e-6, err_msg=key)
    for key, (design, present) in raw_design(chunked.model, data.subset(rows)).items():
        assert (design.is_sparse and design.is_coalesced()) == (key != "image_0")
        given = [value is not MISSING and value != {"kind": MISSING} for value in data.values[key]]
        np.testing.assert_array_equal(present.numpy(), given)
        assert not design.to_dense()[~present].any()  # a missing value's row: zero


def test_no_plugin_may_register_the_stack_name(fresh_registry):
    class Squatter:
        @automm.hookimpl
        def automm_register_encoders(self, register):
            register("stack", ColourStats, modality="image")

    with pytest.raises(automm.PluginError, match="'stack' is reserved"):
        fresh_registry(Squatter())


def test_the_linear_model_regresses_and_a_missing_text_gets_the_bias(builtin_only, emoji_split):
    train, _ = emoji_split
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


def test_fit_summary_lists_only_the_inputs_the_kept_linear_model_reads(builtin_only, emoji_split, tmp_path):
    """The search kept the linear model alone, which reads the names only (the cnn has no linear
    form): fit_summary()["components"]["inputs"] still listed the image column as an input it read."""
    train = emoji_split[0].head(150)
    # a 9-row holdout: too few to weigh an ensemble by, the best-ranked model is kept alone
    model = AutoMM(n_trials=2, max_epochs=1, batch_size=16, num_workers=0, random_state=0, ensemble_size=3,
                   holdout_frac=0.06, encoders={"image": {"name": "cnn", "image_size": 32, "depth": 2}}
                   ).fit(train[["image", "name"]], train["category"])
    assert model.config_["training"].get("solver") == LINEAR_SOLVER and "ensemble_" not in vars(model)
    components = model.fit_summary()["components"]
    assert components["encoders"] == {"text_0": "hashed_ngram"} and components["inputs"] == {"text_0": ["name"]}
    assert AutoMM.load(model.save(tmp_path / "model")).fit_summary()["components"] == components


def test_a_search_trains_the_linear_model_on_the_texts_alone_and_keeps_it_through_save(builtin_only, emoji_split, tmp_path):
    train, test = emoji_split
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


def test_no_linear_model_without_an_encoder_that_has_a_linear_form(builtin_only):
    image = InputSpec("image_0", "image", ["image"], {"image": "image"})
    text = InputSpec("text_0", "text", ["name"], {"name": "text"})
    assert linear_config([image], {"image_0": {"cnn": {}}}, {}, 3) is None
    assert linear_config([image, text], {"image_0": {"cnn": {}}, "text_0": {"gru": {}}}, {}, 3) is None
    config = linear_config([image, text], {"image_0": {"cnn": {}}, "text_0": {"hashed_ngram": {"n_buckets": 512}}},
                           {"batch_size": 8}, 3)
    assert list(config["encoders"]) == ["text_0"]  # images are left out
    assert config["encoders"]["text_0"]["n_buckets"] == 512  # what the user fixed is kept
    assert config["encoders"]["text_0"]["linear"] is True and config["encoders"]["text_0"]["output_dim"] == 3
    table = InputSpec("tabular", "tabular", ["price", "colour"], {"price": "numeric", "colour": "categorical"})
    config = linear_config([image, table], {"image_0": {"cnn": {}}, "tabular": {"tabular": {"emb_dim": 8}}}, {}, 3)
    assert list(config["encoders"]) == ["tabular"]  # a table takes part, even with hyperparameters fixed
    assert config["encoders"]["tabular"]["linear"] is True


def test_calibrate_sharpens_under_confident_and_softens_over_confident_logits():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=300)
    logits = rng.normal(size=(300, 3))
    logits[np.arange(300), targets] += 1.5  # right about 75% of the time
    under, over = calibrate([logits * 0.2, logits * 5], targets, "multiclass")
    assert under > 2 and over < 0.5
    assert calibrate([logits], targets, "regression") == [1.0]
    assert calibrate([np.full((300, 3), np.nan)], targets, "multiclass") == [1.0]


def _lone_model_temperature(logits, targets):
    """``candidate_temperature`` of a model kept alone whose holdout outputs are ``logits``."""
    from types import SimpleNamespace

    from automm.pipeline import Candidate, candidate_temperature

    rows = np.arange(len(targets))
    data = SimpleNamespace(problem_type="multiclass", targets=np.asarray(targets), valid_index=rows,
                           weights=lambda rows: None)
    candidate = Candidate(config={}, model=None, history=[], best_epoch=1, best_score=0.0,
                          valid_outputs=np.asarray(logits, dtype=np.float32), stop_reason="", seconds=0.0)
    return candidate_temperature(data, candidate)


def test_a_lone_models_temperature_is_not_set_by_a_few_wrong_holdout_rows_alone():
    """Tiny data (emoji, 12-15 rows, 9 classes): a holdout of 1-2 rows the model got wrong set the
    temperature to 0.01-0.05, so predict_proba gave every class about 1/9 where accuracy was 0.33.
    A prior on the temperature's logarithm keeps a few rows from setting it alone."""
    logits = np.zeros((2, 9), dtype=np.float32)
    logits[:, 0], logits[:, 1] = 3.0, 1.0
    temperature = _lone_model_temperature(logits, [1, 2])  # both rows wrong
    top = torch.softmax(torch.from_numpy(logits[0]) * temperature, 0).max().item()
    assert 0.3 < temperature < 1.0 and top > 0.3  # (before: 0.048, top 0.125)
    assert calibrate([logits], np.array([1, 2]), "multiclass")[0] < 0.1  # an ensemble member's: as before


def test_the_temperatures_prior_leaves_a_large_holdouts_temperature_about_as_it_was():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 400)
    logits = (rng.normal(size=(400, 5)) + 1.5 * np.eye(5)[targets]).astype(np.float32) * 3  # over-confident
    (plain,) = calibrate([logits], targets, "multiclass")
    assert plain < 0.5 and _lone_model_temperature(logits, targets) == pytest.approx(plain, rel=0.03)


def test_calibrate_does_not_ask_for_certainty_of_a_holdout_it_gets_all_right():
    """15 holdout rows all right: without the half-error prior the temperature went to its
    largest, 100, and predict_proba gave a wrong answer on a new row a probability near 1."""
    targets = np.arange(15) % 3
    logits = np.where(np.arange(3) == targets[:, None], 2.0, 0.0)
    (temperature,) = calibrate([logits], targets, "multiclass")
    assert 1.0 < temperature < 5.0


def test_a_lone_model_selected_under_either_pooling_is_saved_as_linear():
    """One model pools the same way linearly and geometrically: the tie goes to "linear", the
    pooling every automm reads (a "logarithmic" ensemble needs format version 4)."""
    from automm.ensemble import select_ensemble

    targets = np.arange(30) % 3
    logits = np.where(np.arange(3) == targets[:, None], 2.0, 0.0) + np.random.default_rng(0).normal(size=(30, 3))
    weights, pooling = select_ensemble([logits], targets, "multiclass")
    assert weights.tolist() == [1.0] and pooling == "linear"


def test_an_ensembles_repr_shows_a_bag_as_one_trial():
    from automm.ensemble import Ensemble, EnsembleMember

    config = {"encoders": {"text_0": {"name": "hashed_ngram"}}, "fusion": {"name": "concat"}}
    members = [EnsembleMember(trial=0, weight=0.89, config=config, model=None, batch_size=32, score=0.9)] + [
        EnsembleMember(trial=3, weight=0.11 / 5, config=config, model=None, batch_size=32, score=0.8, fold=k)
        for k in range(5)]
    assert repr(Ensemble(members, "multiclass")) == "Ensemble(trial 0: 0.89, trial 3: 0.11 (5 fold models))"


def _ticking_clock(monkeypatch) -> dict:
    """The linear model's clock, each reading one second after the last (``clock["now"]``, reset by
    the test)."""
    import automm.linear as linear

    clock = {"now": 0.0}

    class Clock:
        @staticmethod
        def monotonic():
            clock["now"] += 1.0
            return clock["now"]

    monkeypatch.setattr(linear, "time", Clock)
    return clock


def test_a_first_fit_cut_by_the_deadline_keeps_its_best_point_so_far(builtin_only, emoji_split, monkeypatch):
    # on 80,000 rows a 120-s search's linear model used to fail ("did not finish one fit before the
    # deadline") and its half of the budget was lost; every L-BFGS step uses every row, so the
    # best point so far is a model whose holdout score says what it is worth
    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    clock = _ticking_clock(monkeypatch)  # the deadline comes after a known number of evaluations
    cut = train_linear(data, _config(data), deadline=12.0)
    assert cut.stop_reason.startswith("time limit: the first fit (L2 c=1) stopped after ")
    assert cut.stop_reason.endswith("evaluations, its best point kept")
    assert len(cut.history) == 1 and cut.best_epoch == 1
    prior = np.bincount(data.valid_targets, minlength=data.n_outputs).max() / len(data.valid_targets)
    assert cut.best_score > prior  # better than naming the most frequent class
    np.testing.assert_allclose(forward_rows(cut.model, data.subset(data.valid_index)), cut.valid_outputs, atol=1e-4)
    clock["now"] = 0.0
    with pytest.raises(TimeoutError, match="cut by the time limit before it learned"):  # no evaluation: none kept
        train_linear(data, _config(data), deadline=2.0)


def test_a_first_fit_cut_at_its_starting_point_fails_rather_than_guess_one_class(builtin_only, emoji_split,
                                                                                   monkeypatch):
    """Fashion copies, 50,000 rows, time_limit=120: L-BFGS cut right after evaluating its starting
    point (every weight zero) kept that point, a model giving every row the same guess, and the
    search recorded it as a finished trial of 0.004 holdout accuracy (the share of one class). Every
    deadline now either keeps a model that tells rows apart or raises, saying it learned nothing."""
    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    clock = _ticking_clock(monkeypatch)  # each deadline cuts the first fit one step further
    failed, kept = [], []
    for deadline in range(2, 14):
        clock["now"] = 0.0
        try:
            kept.append(train_linear(data, _config(data), deadline=float(deadline)))
        except TimeoutError as exc:
            failed.append(str(exc))
    assert kept and failed and len(kept) + len(failed) == 12
    for candidate in kept:  # (a first fit cut after one evaluation kept its start: the same outputs for every row)
        assert np.ptp(candidate.valid_outputs, axis=0).max() > 0, candidate.stop_reason
    assert all(reason.startswith("the linear model was cut by the time limit before it learned: its first fit "
                                 "(L2 c=1) stopped before a point better than its start") for reason in failed)


def test_a_refit_the_deadline_overtakes_is_given_up_for_the_training_rows_fit(builtin_only, emoji_split,
                                                                              monkeypatch):
    """The refit on every row watches the deadline too: the grid done in time, a refit past the
    deadline is given up (the training rows' fit is kept) rather than run to its end, beyond the
    time limit. (Found by mutation testing: a refit ignoring its deadline passed every test.)"""
    import automm.linear as linear

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    clock = {"now": 0.0}

    class Clock:  # the time stands still until the refit starts, then the deadline is past
        @staticmethod
        def monotonic():
            return clock["now"]

    refit = linear._refit

    def late_refit(*args, **kwargs):
        clock["now"] = 100.0
        return refit(*args, **kwargs)

    monkeypatch.setattr(linear, "time", Clock)
    monkeypatch.setattr(linear, "_refit", late_refit)
    kept = train_linear(data, _config(data), deadline=50.0)
    assert kept.stop_reason == "l2 grid done" and len(kept.history) == len(L2_GRID)
    np.testing.assert_allclose(forward_rows(kept.model, data.subset(data.valid_index)), kept.valid_outputs, atol=1e-4)


def test_the_linear_models_history_gives_each_settings_own_seconds(builtin_only, emoji_split):
    """A network's history gives each epoch's seconds; the linear model gave the seconds since
    its start, which only grow (their sum was several times the time it took)."""
    import time

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    start = time.monotonic()
    candidate = train_linear(data, _config(data), refit=False)
    took = time.monotonic() - start
    seconds = [r["seconds"] for r in candidate.history]
    assert len(seconds) > 2 and all(s >= 0 for s in seconds) and sum(seconds) <= took


def test_building_a_large_design_stops_at_the_deadline_saying_how_far_it_got(builtin_only, emoji_split, monkeypatch):
    """At 100,000 rows the design took longer than a 30-s fit's budget and was only stopped by the
    hard stop, its reason blaming a plugin; the build now watches the deadline between chunks."""
    import time

    import automm.linear as linear
    from automm.deadlines import deadline_scope

    train = emoji_split[0].head(60)
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    monkeypatch.setattr(linear, "DESIGN_CHUNK_ROWS", 20)
    with deadline_scope(time.monotonic() - 1), pytest.raises(automm.TimeLimitExceeded,
                                                             match=r"the linear model built the features of 20 of \d+ rows"):
        train_linear(data, _config(data), refit=False)


def _timed_design(monkeypatch, per_row: float) -> tuple[dict, list, list]:
    """A clock for automm.linear that moves only while rows are preprocessed for the design
    (``per_row`` seconds a row): (the clock, the texts preprocessed, each fit's ``(rows, time)``
    as the fit starts)."""
    import automm.linear as linear

    clock, built, fitted_on = {"now": 0.0}, [], []

    class Clock:
        @staticmethod
        def monotonic():
            return clock["now"]

    class TimedDataset(linear.MultimodalDataset):
        def __init__(self, values, *args, **kwargs):
            clock["now"] += per_row * len(values["text_0"])
            built.extend(values["text_0"])
            super().__init__(values, *args, **kwargs)

    class Objective(linear._Objective):
        def __init__(self, parts, data, index):
            fitted_on.append(np.asarray(index))
            super().__init__(parts, data, index)

    monkeypatch.setattr(linear, "time", Clock)
    monkeypatch.setattr(linear, "MultimodalDataset", TimedDataset)
    monkeypatch.setattr(linear, "_Objective", Objective)
    return clock, built, fitted_on


def test_a_design_too_slow_for_its_share_is_built_on_a_random_subset_of_the_training_rows(builtin_only, emoji_split,
                                                                                           monkeypatch):
    """Fashion copies, 50,000 photos and titles, time_limit=120: the design (decoding every photo)
    took 43 s of the linear model's 52 s and L-BFGS was cut after a few steps (holdout accuracy
    0.004 in one run). The design now takes at most DESIGN_TIME_SHARE of the time left: the
    training rows it cannot build in time are left out (a random subset is fitted), every holdout
    row is scored, and the rest of the time is the solver's. The rows fitted are those built: as
    many as the share has time for at the rate the first chunk was built at."""
    import automm.linear as linear

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    per_row, chunk = 0.01, 100
    clock, built, fitted_on = _timed_design(monkeypatch, per_row)
    monkeypatch.setattr(linear, "DESIGN_CHUNK_ROWS", chunk)
    monkeypatch.setattr(linear, "DESIGN_FIRST_ROWS", chunk, raising=False)
    whole = train_linear(data, _config(data), deadline=None)
    assert "fitted on" not in whole.stop_reason and len(fitted_on[0]) == len(data.train_index)
    n_train, n_valid = len(data.train_index), len(data.valid_index)
    seconds = 0.75 * per_row * (n_train + n_valid)  # a design of every row would take more
    assert per_row * (chunk + n_valid) < seconds
    deadline = seconds / linear.DESIGN_TIME_SHARE
    fitted_on.clear(), built.clear()
    clock["now"] = 0.0
    cut = train_linear(data, _config(data), deadline=deadline, refit=False)  # (a refit: on the same rows + the holdout)
    kept = len(fitted_on[0])
    assert cut.stop_reason == (f"l2 grid done; fitted on {kept} of {n_train} training rows, a random "
                               "subset: the features of all would have taken too long")
    assert per_row * (kept + n_valid) <= seconds < per_row * (kept + 2 + n_valid)  # (a row lost to rounding at most)
    assert set(fitted_on[0]) < set(data.train_index) and len(set(fitted_on[0])) == kept
    assert not np.array_equal(np.sort(fitted_on[0]), data.train_index[:kept])  # not the first rows
    texts = data.values["text_0"]
    assert built == [texts[i] for i in fitted_on[0]] + [texts[i] for i in data.valid_index]  # the rows fitted
    assert cut.valid_outputs.shape == (n_valid, data.n_outputs)
    np.testing.assert_allclose(forward_rows(cut.model, data.subset(data.valid_index)), cut.valid_outputs, atol=1e-4)
    prior = np.bincount(data.valid_targets, minlength=data.n_outputs).max() / n_valid
    assert cut.best_score > prior


def test_a_design_whose_first_chunk_would_outlast_its_share_is_built_on_as_many_rows_as_it_has_time_for(
        builtin_only, emoji_split, monkeypatch):
    """Fashion, 6,921 training rows, time_limit=12 or 16: the first chunk of DESIGN_CHUNK_ROWS photos
    (4,096, built whatever its time) outlasted the linear model's whole time and its trial failed
    ("the linear model built the features of 4096 of 7690 rows"). A first chunk of
    DESIGN_FIRST_ROWS rows now measures the rate, and the next is as long as the share has time for."""
    import automm.linear as linear

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    data = _text_data(train["name"].tolist(), [classes.index(c) for c in train["category"]])
    per_row, first = 0.01, 20
    clock, built, fitted_on = _timed_design(monkeypatch, per_row)
    monkeypatch.setattr(linear, "DESIGN_CHUNK_ROWS", len(data.train_index))  # one chunk of every training row
    monkeypatch.setattr(linear, "DESIGN_FIRST_ROWS", first, raising=False)
    n_valid = len(data.valid_index)
    seconds = per_row * (3 * first + n_valid)  # the first chunk, and twice as many rows after it
    cut = train_linear(data, _config(data), deadline=seconds / linear.DESIGN_TIME_SHARE, refit=False)
    kept = len(fitted_on[0])
    assert clock["now"] <= seconds + 1e-9  # (the time moved only while the design was built)
    assert 2 * first <= kept <= 3 * first and cut.stop_reason.endswith(
        f"fitted on {kept} of {len(data.train_index)} training rows, a random subset: the features of all would "
        "have taken too long")
    texts = data.values["text_0"]
    assert built == [texts[i] for i in fitted_on[0]] + [texts[i] for i in data.valid_index]


def test_the_first_optimizer_of_a_process_is_built_before_the_trials_shares_are_set(tmp_path):
    """torch imports torch._dynamo when a process builds its first optimizer (seconds: 16 s on a
    busy 2-core machine); inside the linear model's share of time_limit it cut that model to its
    first, most regularised fit, or failed it (fashion gender, time_limit=45: 0.956 against 0.993)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        import automm.search as search
        from automm import AutoMM
        from automm.datasets import load_emoji_sample
        original, seen = search.run_search, []
        def spy(*args, **kwargs):
            seen.append("torch._dynamo" in sys.modules)
            return original(*args, **kwargs)
        search.run_search = spy
        frame = load_emoji_sample()[:120]
        AutoMM(time_limit=8, random_state=0, n_trials=1, search_space={"warm_start": False},
               max_epochs=1).fit(frame["name"].tolist(), frame["category"].tolist())
        print("seen", seen)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=170,
                            env={**__import__("os").environ, "AUTOMM_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "seen [True]" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def _synthetic_text_data(**kwargs) -> PreparedData:
    rng = np.random.default_rng(0)
    targets = rng.choice(3, size=120, p=[0.6, 0.3, 0.1])
    words = np.array(["red", "blue", "green"])
    texts = [f"{words[t] if rng.random() < 0.7 else rng.choice(words)} item {i % 7}" for i, t in enumerate(targets)]
    data = _text_data(texts, targets)
    for name, value in kwargs.items():
        setattr(data, name, value)
    return data


def test_class_weights_weigh_the_linear_models_rows_as_sample_weights_do(builtin_only):
    class_weights = np.array([1.0, 2.0, 8.0])
    by_class = _synthetic_text_data(class_weights=class_weights)
    by_row = _synthetic_text_data()
    by_row.sample_weights = class_weights[by_row.targets].astype(np.float32)
    plain = train_linear(_synthetic_text_data(), _config(by_row), refit=False).valid_outputs
    weighted = train_linear(by_class, _config(by_class), refit=False).valid_outputs
    np.testing.assert_allclose(weighted, train_linear(by_row, _config(by_row), refit=False).valid_outputs,
                               rtol=1e-3, atol=1e-3)
    assert np.abs(weighted - plain).max() > 0.05  # (the weights changed the fit)


def test_the_linear_model_is_never_refitted_on_the_users_validation_rows(builtin_only):
    data = _synthetic_text_data(holdout_given=True)
    candidate = train_linear(data, _config(data), refit=True)
    assert "refit" not in candidate.stop_reason
    outputs = forward_rows(candidate.model, data.subset(data.valid_index))
    np.testing.assert_allclose(outputs, candidate.valid_outputs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, key, options", [("hashed_ngram", "word_bigrams", {}), ("hashed_ngram", "linear", {}),
                                                ("colour_histogram", "linear", {}),
                                                ("tabular", "linear", {"column_roles": {"a": "numeric"}})])
def test_a_switch_given_as_text_is_refused_naming_it(builtin_only, name, key, options):
    """bool("no") is true: a recipe's word_bigrams: "no" (or "false") turned them on."""
    for value in ("no", "false", 2, 1.0, None):
        with pytest.raises(InputError, match=rf"{key} must be true or false, got {value!r}"):
            automm.create_encoder(name, **options, **{key: value})
    assert getattr(automm.create_encoder(name, **options, **{key: np.bool_(False)}), key) is False


@pytest.mark.parametrize("name, key, options", [("hashed_ngram", "word_bigrams", {}), ("hashed_ngram", "linear", {}),
                                                ("colour_histogram", "linear", {}),
                                                ("tabular", "linear", {"column_roles": {"a": "numeric"}})])
def test_a_switch_given_as_0_or_1_is_still_read_as_false_or_true(builtin_only, name, key, options):
    """Refusing every non-bool refused 0 and 1, which bool() had read: a model saved with
    word_bigrams=1 no longer loaded, nor a recipe's word_bigrams: 1 or an integer search range."""
    for value, expected in ((1, True), (0, False), (np.int64(1), True), (np.int64(0), False)):
        assert getattr(automm.create_encoder(name, **options, **{key: value}), key) is expected


def test_a_model_saved_with_a_switch_of_1_loads(builtin_only, tmp_path):
    """A model saved before the switch check, its configuration holding word_bigrams: 1, raised an
    InputError on load."""
    X = pd.DataFrame({"name": [f"{colour} apple {n}" for n in range(6) for colour in ("red", "green")]
                      + [f"{colour} sky {n}" for n in range(6) for colour in ("blue", "grey")]})
    y = ["fruit"] * 12 + ["sky"] * 12
    model = automm.AutoMM(max_epochs=1, random_state=0, column_types={"name": "text"}, augmentations=[],
                          encoders={"text": {"name": "hashed_ngram", "word_bigrams": True}}).fit(X, y)
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "automm.json"
    text = path.read_text()
    assert text.count('"word_bigrams": true') == 2  # (the parameters and the model's configuration)
    manifest = json.loads(text.replace('"word_bigrams": true', '"word_bigrams": 1'))  # as an older automm saved it
    manifest[MANIFEST_DIGEST] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest))
    loaded = automm.AutoMM.load(tmp_path / "m")
    assert [encoder.word_bigrams for encoder in loaded.model_.encoders.values()] == [True]
    assert (loaded.predict(X) == model.predict(X)).all()


# -- pairs: two inputs of one modality compared -----------------------------------------------

WORDS = ("red", "green", "blue", "black", "white", "grey")


class FirstWord(DenseLinearForm, automm.Encoder):
    """A test text encoder with fixed dense features, like a frozen pretrained one's: the one-hot
    of a text's first word among :data:`WORDS` (its linear form declares their width)."""

    modality = "text"
    static_preprocess = True
    frozen = True

    def __init__(self, linear: bool = False, output_dim: int = len(WORDS)):
        super().__init__()
        self.linear = linear
        self.output_dim = output_dim if linear else len(WORDS)
        if linear:
            self.linear_width = len(WORDS)
            self.linear_layer = torch.nn.Linear(len(WORDS), output_dim, bias=False)
            torch.nn.init.zeros_(self.linear_layer.weight)

    def preprocess(self, value, augment=None):
        features = torch.zeros(len(WORDS))
        if value is not MISSING and value.split()[0] in WORDS:
            features[WORDS.index(value.split()[0])] = 1.0
        return features


class FirstWordPlugin:
    @automm.hookimpl
    def automm_register_encoders(self, register):
        register("first_word", FirstWord, modality="text", tags=("linear",),
                 output_dim=lambda hp: hp["output_dim"] if hp["linear"] else len(WORDS),
                 defaults={"linear": False, "output_dim": len(WORDS)})


def _pair_data(n: int = 240, missing_every: int = 0) -> PreparedData:
    """Two title columns; the label: whether they name one colour (half the rows), which neither
    title alone tells."""
    rng = np.random.default_rng(0)
    first = rng.integers(len(WORDS), size=n)
    same = np.arange(n) % 2 == 0
    second = np.where(same, first, (first + rng.integers(1, len(WORDS), size=n)) % len(WORDS))
    left = [f"{WORDS[k]} shirt {i}" for i, k in enumerate(first)]
    right = [f"{WORDS[k]} dress {i}" for i, k in enumerate(second)]
    if missing_every:
        right = [MISSING if i % missing_every == 1 else text for i, text in enumerate(right)]
    rows = np.arange(n)
    return PreparedData(inputs=[InputSpec("text_0", "text", ["a"], {"a": "text"}),
                                InputSpec("text_1", "text", ["b"], {"b": "text"})],
                        values={"text_0": left, "text_1": right}, targets=same.astype(int), problem_type="binary",
                        n_outputs=2, train_index=rows[rows % 4 != 0], valid_index=rows[rows % 4 == 0], seed=0,
                        device=torch.device("cpu"), num_workers=0)


def test_the_linear_model_compares_the_frozen_features_of_two_inputs_of_one_modality(builtin_only, fresh_registry,
                                                                                     tmp_path):
    """Side by side, two titles' features cannot say whether they match: a linear model on fashion
    title pairs ("same subCategory?") scored 0.56 on test pairs; given |a - b| and a * b of their
    MiniLM features, 0.85 (photo pairs, EfficientNet-Lite0: 0.58 -> 0.91)."""
    from automm.persistence import _format_version, read_model_files, write_model_files

    fresh_registry(FirstWordPlugin())
    data = _pair_data(missing_every=7)
    choices = {"hashed_ngram": {"n_buckets": 4096}, "first_word": {}}
    config = linear_config(data.inputs, {name: choices for name in data.values}, {"batch_size": 32}, data.n_outputs)
    # the n-grams (part 0, sparse) are summed as before; the features of fixed width (part 1) compared
    for name in ("text_0", "text_1"):
        assert [p["name"] for p in config["encoders"][name]["parts"]] == ["hashed_ngram", "first_word"]
        assert config["encoders"][name]["compared"] == [1]
    assert config["fusion"] == {"name": "sum", "compared": [["text_0", "text_1"]]}
    candidate = train_linear(data, config)
    side_by_side = {**config, "fusion": {"name": "sum"},
                    "encoders": {name: {"name": "stack", "parts": choice["parts"]}
                                 for name, choice in config["encoders"].items()}}
    # (a row lacking its second title, one in 7, is a coin toss)
    assert candidate.best_score >= 0.85 and train_linear(data, side_by_side).best_score <= 0.65
    outputs = forward_rows(candidate.model, data.subset(data.valid_index))
    refitted = train_linear(data, config, refit=False)  # the model computes what the solver fitted ...
    np.testing.assert_allclose(forward_rows(refitted.model, data.subset(data.valid_index)), refitted.valid_outputs,
                               atol=1e-4)
    # ... the rows lacking a title (every 7th's second) included; saved, as format 9, it reads back whole
    assert _format_version(None, models=[candidate.model]) == 9
    write_model_files(candidate.model, tmp_path, sync=False)
    loaded = read_model_files(tmp_path, data.inputs, config, data.n_outputs)
    np.testing.assert_allclose(forward_rows(loaded, data.subset(data.valid_index)), outputs, atol=1e-6)

    # no pair, nothing compared: the configuration as it was
    alone = linear_config(data.inputs[:1], {"text_0": {"hashed_ngram": {}, "first_word": {}}}, {"batch_size": 32}, 2)
    assert alone["fusion"] == {"name": "sum"} and "compared" not in alone["encoders"]["text_0"]
    both_sparse = linear_config(data.inputs, {name: {"hashed_ngram": {}} for name in data.values},
                                {"batch_size": 32}, 2)
    assert both_sparse["fusion"] == {"name": "sum"} and both_sparse["encoders"]["text_0"]["name"] == "hashed_ngram"


def test_a_compared_pair_is_logistic_regression_on_both_inputs_and_their_comparison(builtin_only, fresh_registry):
    from sklearn.linear_model import LogisticRegression

    fresh_registry(FirstWordPlugin())
    data = _pair_data(n=160, missing_every=5)
    config = linear_config(data.inputs, {name: {"first_word": {}} for name in data.values}, {"batch_size": 32}, 2)
    assert config["encoders"]["text_0"] == {"name": "stack", "compared": [0],
                                            "parts": [{"name": "first_word", "linear": True, "output_dim": 2}]}
    candidate = train_linear(data, config, refit=False)
    kept = candidate.history[candidate.best_epoch - 1]

    # each block standardised on the training rows that have it (a pair's: both inputs) and scaled
    # by 1 / sqrt(its width), as the solver sees it
    def blocks(index):
        left, right = ([data.values[name][i] for i in index] for name in ("text_0", "text_1"))
        a, b = (np.stack([FirstWord().preprocess(v).numpy() for v in texts]) for texts in (left, right))
        has_b = np.array([v is not MISSING for v in right])
        return [(a, np.ones(len(a), bool)), (b, has_b), (np.abs(a - b) * has_b[:, None], has_b), (a * b, has_b)]

    train = blocks(data.train_index)
    stats = [(x[p].mean(0), x[p].std(0)) for x, p in train]

    def design(parts):
        return np.hstack([(x - m) / np.where(s > 1e-6, s, 1) / np.sqrt(x.shape[1])
                          for (x, _), (m, s) in zip(parts, stats)])

    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(design(train),
                                                                                 data.targets[data.train_index])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()
    np.testing.assert_allclose(got, reference.predict_proba(design(blocks(data.valid_index))), atol=0.02)


def test_a_comparison_the_fusion_or_a_stack_cannot_make_is_refused_naming_it():
    from automm.components.fusions import SumFusion
    from automm.components.stack import EncoderStack

    with pytest.raises(InputError, match="'sum''s compared must be a list of pairs of distinct inputs"):
        SumFusion({"text_0": 8, "text_1": 8}, 2, compared=[["text_0", "text_2"]])
    with pytest.raises(InputError, match="'sum' compares 'text_0' and 'text_1'.*got widths 8 and 5"):
        SumFusion({"text_0": 8, "text_1": 5}, 2, compared=[["text_0", "text_1"]])
    with pytest.raises(InputError, match="each must be as wide as the outputs"):
        SumFusion({"text_0": 8, "text_1": 8}, 2)  # features no pair compares
    with pytest.raises(ValueError, match=r"part 0 of an encoder stack \(FirstWord\) is compared, but its "
                                         "linear_width is None"):
        EncoderStack([FirstWord()], compared=[0])  # its plain form: no linear form to compare
    with pytest.raises(ValueError, match="distinct positions of its 1 parts"):
        EncoderStack([FirstWord(linear=True, output_dim=2)], compared=[1])


def test_the_training_rows_a_design_cut_short_keeps_hold_every_class_in_its_share():
    """The training rows in the order the design builds them: a shuffle, whose first 1,000 of 7,000 rows
    missed a class of 10 rows about one seed in five (the linear model then never predicts it), now with
    the classes interleaved: each class in every prefix in its share (within two rows), still at random."""
    from types import SimpleNamespace

    from automm.linear import _training_order

    targets = np.repeat(np.arange(4), [10, 90, 2900, 4000])
    orders = []
    for seed in range(20):
        data = SimpleNamespace(seed=seed, problem_type="classification", targets=targets,
                               train_index=np.arange(len(targets)))
        order = _training_order(data)
        assert sorted(order) == list(range(len(targets)))  # every row, once
        for prefix in (10, 100, 1000, 7000):
            counts = np.bincount(targets[order[:prefix]], minlength=4)
            assert np.all(np.abs(counts - prefix * np.array([10, 90, 2900, 4000]) / 7000) < 2), (seed, prefix, counts)
        assert np.bincount(targets[order[:1000]], minlength=4).min() >= 1
        orders.append(order[:1000])
    assert len({tuple(sorted(o)) for o in orders}) == 20  # a random subset, other for every seed
    regression = SimpleNamespace(seed=0, problem_type="regression", targets=np.arange(50.0), train_index=np.arange(50))
    assert sorted(_training_order(regression)) == list(range(50))
