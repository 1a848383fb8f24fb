"""``fit(..., sample_weight=...)``: weights count as repeated rows in every loss and holdout
score, weight 0 leaves a row out, and bad weights fail before any training."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from automm import AutoMM, AutoMMClassifier, AutoMMRegressor
from automm.components.fusions import NeighborsFusion
from automm.data import InputSpec
from automm.ensemble import calibrate, select_ensemble
from automm.exceptions import InputError
from automm.linear import linear_config, train_linear
from automm.pipeline import PreparedData
from automm.training import Trainer, TrainingConfig, soft_cross_entropy, validation_metrics

from helpers import seen_columns, tiny

RNG = np.random.default_rng(0)


def _repeat(array, counts):
    return np.repeat(np.asarray(array), counts, axis=0)


# ------------------------------------------------------------------ weighted means = repeated rows
def test_holdout_metrics_weight_rows_as_repeats():
    outputs = RNG.normal(size=(40, 3)).astype(np.float32) * 3
    targets = RNG.integers(0, 3, 40)
    counts = RNG.integers(1, 4, 40)
    weighted = validation_metrics(outputs, targets, True, counts.astype(float))
    repeated = validation_metrics(_repeat(outputs, counts), _repeat(targets, counts), True)
    assert weighted == pytest.approx(repeated, rel=1e-5)
    assert weighted != pytest.approx(validation_metrics(outputs, targets, True), rel=1e-3)

    values = RNG.normal(size=(40, 1)).astype(np.float32)
    real = RNG.normal(size=40).astype(np.float32)
    assert validation_metrics(values, real, False, counts.astype(float)) == pytest.approx(
        validation_metrics(_repeat(values, counts), _repeat(real, counts), False), rel=1e-5)


def test_the_training_loss_weights_rows_as_repeats():
    logits = torch.randn(30, 4)
    soft = torch.nn.functional.one_hot(torch.randint(0, 4, (30,)), 4).float()
    counts = torch.randint(1, 4, (30,))
    weights = counts.float() / counts.float().mean()  # the trainer scales weights to mean 1
    repeated = soft_cross_entropy(logits.repeat_interleave(counts, 0), soft.repeat_interleave(counts, 0))
    assert float(soft_cross_entropy(logits, soft, weights)) == pytest.approx(float(repeated), rel=1e-5)


def test_the_ensemble_calibrates_and_selects_on_weighted_rows():
    targets = RNG.integers(0, 3, 60)
    good = np.eye(3)[targets] * 2 + RNG.normal(size=(60, 3))
    other = np.eye(3)[(targets + (np.arange(60) % 2)) % 3] * 3 + RNG.normal(size=(60, 3))  # wrong on odd rows
    counts = np.where(np.arange(60) % 2 == 0, 5, 1)  # the rows it gets right weigh five times
    outputs = [good.astype(np.float32), other.astype(np.float32)]
    assert calibrate(outputs, targets, "multiclass", counts) == pytest.approx(
        calibrate([_repeat(o, counts) for o in outputs], _repeat(targets, counts), "multiclass"), rel=2e-3)
    weights, pooling = select_ensemble(outputs, targets, "multiclass", sample_weights=counts)
    expected = select_ensemble([_repeat(o, counts) for o in outputs], _repeat(targets, counts), "multiclass")
    assert pooling == expected[1] and weights == pytest.approx(expected[0])


def test_the_linear_model_is_weighted_logistic_regression(builtin_only, emoji_split):
    from sklearn.linear_model import LogisticRegression

    from automm.linear import raw_design

    train, _ = emoji_split
    classes = sorted(set(train["category"]))
    texts = train["name"].tolist()
    targets = np.array([classes.index(c) for c in train["category"]])
    weights = RNG.uniform(0.1, 3.0, len(texts))
    weights = (weights / weights.mean()).astype(np.float32)
    rows = np.arange(len(texts))
    data = PreparedData(inputs=[InputSpec("text_0", "text", ["name"], {"name": "text"})], values={"text_0": texts},
                        targets=targets, problem_type="multiclass", n_outputs=len(classes),
                        train_index=rows[rows % 4 != 0], valid_index=rows[rows % 4 == 0], seed=0,
                        device=torch.device("cpu"), num_workers=0, sample_weights=weights)
    config = linear_config(data.inputs, {"text_0": {"hashed_ngram": {}}}, {"batch_size": 32}, len(classes))
    candidate = train_linear(data, config, refit=False)
    kept = candidate.history[candidate.best_epoch - 1]

    def design(index, seen=None):
        return seen_columns(raw_design(candidate.model, data.subset(index))["text_0"][0], seen)

    # ours: the weighted mean log-loss + ||W||^2 / (2 C n); scikit-learn's: C * sum(w * log-loss) + ||W||^2 / 2
    train_x, seen = design(data.train_index)
    w = weights[data.train_index]
    reference = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(
        train_x, targets[data.train_index], sample_weight=len(w) * w / w.sum())
    expected = reference.predict_proba(design(data.valid_index, seen)[0])
    got = torch.softmax(torch.from_numpy(candidate.valid_outputs), 1).numpy()[:, reference.classes_]
    assert np.abs(got - expected).max() < 0.02
    unweighted = LogisticRegression(C=kept["l2_c"], tol=1e-8, max_iter=5000).fit(train_x, targets[data.train_index])
    assert np.abs(unweighted.predict_proba(design(data.valid_index, seen)[0]) - expected).max() > 0.05
    # its holdout loss and score are the weighted ones
    assert (kept["valid_loss"], kept["valid_score"]) == pytest.approx(validation_metrics(
        candidate.valid_outputs, data.valid_targets, True, data.valid_weights), rel=1e-6)


def test_the_neighbours_vote_weights_rows_and_keeps_them_through_the_state_dict():
    fusion = NeighborsFusion({"a": 2}, 2, k=2, temperature=1.0)
    bank = {"a": torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])}
    masks = {"a": torch.ones(4, dtype=torch.bool)}
    # the query's two nearest rows are equally near: labels 0 and 1, weights 1 and 3
    fusion.remember(bank, masks, torch.tensor([0, 1, 0, 0]), torch.tensor([1.0, 3.0, 1.0, 1.0]))
    query = {"a": torch.tensor([[1.0, 0.0]])}
    probabilities = torch.softmax(fusion(query, {"a": torch.ones(1, dtype=torch.bool)}), 1)
    assert float(probabilities[0, 1]) == pytest.approx(0.75, abs=0.02)  # 3 of the 4 votes' weight
    copy = NeighborsFusion({"a": 2}, 2, k=2, temperature=1.0)
    copy.load_state_dict(fusion.state_dict())
    assert torch.equal(copy.bank_weights, fusion.bank_weights)
    # a model saved before sample weights (no bank_weights) loads, every row counting once
    old = {k: v for k, v in fusion.state_dict().items() if k != "bank_weights"}
    copy.load_state_dict(old)
    assert len(copy.bank_weights) == 0
    assert float(torch.softmax(copy(query, {"a": torch.ones(1, dtype=torch.bool)}), 1)[0, 1]) == pytest.approx(
        0.5, abs=0.02)


class _Recorder:
    """A batch augmentation that records the targets it sees and changes nothing."""

    modality = "batch"

    def __init__(self):
        self.widths = []

    def apply_masks(self, masks, generator):
        return masks

    def apply_fused(self, fused, targets, generator):
        self.widths.append(targets.shape[1])
        return fused, targets


def test_batch_augmentations_see_the_weights_as_the_targets_last_column():
    from automm.components.fusions import ConcatFusion
    from automm.model import MultimodalNet

    class Identity(torch.nn.Module):
        output_dim = 4

        def forward(self, x):
            return x

    def trainer(augmentations):
        torch.manual_seed(0)
        model = MultimodalNet({"x": Identity()}, ConcatFusion({"x": 4}, 3), 3)
        t = Trainer(model, TrainingConfig(max_epochs=1), torch.device("cpu"), batch_augmentations=augmentations)
        t.configure_optimizer(1)
        t.train_weights = torch.tensor([0.5, 1.5, 1.0, 1.0])
        return t

    batch = {"inputs": {"x": torch.randn(4, 4)}, "masks": {"x": torch.ones(4, dtype=torch.bool)},
             "target": torch.tensor([0, 1, 2, 1]), "index": torch.arange(4)}
    recorder = _Recorder()
    with_aug, without = trainer([recorder]), trainer([])
    torch.manual_seed(1)  # (the same head dropout in both steps)
    loss = with_aug.training_step(dict(batch))
    torch.manual_seed(1)
    assert loss == pytest.approx(without.training_step(dict(batch)), rel=1e-6)
    assert recorder.widths == [3 + 1]


# ------------------------------------------------------------------ the estimator
def _conflicting_texts():
    """'red apple' rows: 24 labelled warm, 8 labelled cold; 'blue sea' rows: cold (numbered, so
    that they are read as texts, not as categories; the numbers tell no label apart)."""
    texts = [f"red apple {i % 8}" for i in range(32)] + [f"blue sea {i % 8}" for i in range(32)]
    labels = ["warm"] * 24 + ["cold"] * 8 + ["cold"] * 32
    return texts, labels


def test_weights_decide_between_conflicting_labels():
    texts, labels = _conflicting_texts()
    params = dict(encoders={"text": {"name": "hashed_ngram", "n_buckets": 512, "emb_dim": 16, "output_dim": 16}},
                  fusion={"name": "concat", "proj_dim": 16, "hidden_dim": 16}, augmentations=None, max_epochs=8,
                  batch_size=8, learning_rate=1e-2, num_workers=0, random_state=0)
    plain = AutoMMClassifier(**params).fit(texts, labels)
    assert plain.predict(["red apple"])[0] == "warm"
    weights = [1.0] * 24 + [10.0] * 8 + [1.0] * 32  # the 8 cold 'red' rows now outweigh the 24 warm ones
    weighted = AutoMMClassifier(**params).fit(texts, labels, sample_weight=weights)
    assert weighted.predict(["red apple"])[0] == "cold"
    assert weighted.predict(["blue sea"])[0] == "cold"


def test_zero_weight_rows_are_left_out_exactly(emoji_split):
    train, test = emoji_split
    X = train[["image", "name"]].reset_index(drop=True)
    y = train["category"].reset_index(drop=True)
    # the same rows again with shuffled labels, at weight 0, and every real row at weight 3
    noise = X.sample(frac=0.5, random_state=0).reset_index(drop=True)
    X2 = pd.concat([X, noise], ignore_index=True)
    y2 = pd.concat([y, y.sample(frac=1.0, random_state=1).iloc[:len(noise)]], ignore_index=True)
    weights = np.r_[np.full(len(X), 3.0), np.zeros(len(noise))]
    params = tiny(max_epochs=2)
    clean = AutoMM(**params).fit(X, y)
    weighted = AutoMM(**params).fit(X2, y2, sample_weight=weights)
    probe = test[["image", "name"]].head(40)
    assert np.allclose(clean.predict_proba(probe), weighted.predict_proba(probe), atol=1e-6)
    assert list(weighted.classes_) == list(clean.classes_)
    assert [r["valid_loss"] for r in weighted.history_] == [r["valid_loss"] for r in clean.history_]


def test_weights_in_a_search_with_bagging_and_regression():
    rng = np.random.default_rng(1)
    words = np.array(["alpha", "beta", "gamma", "delta"])
    picks = rng.integers(0, 4, 120)
    texts = [f"{words[p]} item {i % 7}" for i, p in enumerate(picks)]
    values = picks * 1.5 + rng.normal(scale=0.2, size=120)
    weights = rng.uniform(0.2, 3.0, 120)
    est = AutoMMRegressor(encoders={"text": ["hashed_ngram"]}, n_trials=3, max_epochs=3, bag_folds=2,
                          search_space={"linear_model": True}, num_workers=0, random_state=0)
    est.fit(texts, values, sample_weight=weights)
    assert est.leaderboard_["state"].eq("COMPLETE").sum() >= 2
    assert est.score(texts, values, sample_weight=weights) > 0.5


def test_pandas_series_and_lists_are_accepted_and_not_modified():
    texts, labels = _conflicting_texts()
    weights = pd.Series(np.linspace(0.5, 2.0, len(texts)), index=np.arange(100, 100 + len(texts)))
    before = weights.copy()
    est = AutoMMClassifier(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(texts, labels,
                                                                                      sample_weight=weights)
    assert weights.equals(before)
    AutoMMClassifier(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(
        texts, labels, sample_weight=weights.tolist())
    assert 0 <= est.score(texts, labels, sample_weight=weights) <= 1


@pytest.mark.parametrize("weights, message", [
    (np.ones(3), "3 weights for 64 samples"),
    (np.r_[-1.0, np.ones(63)], "must be >= 0; 1 are negative, first at row 0"),
    (np.r_[np.ones(10), np.nan, np.ones(53)], "NaN or infinite, first at row 10"),
    (np.zeros(64), "every weight is zero"),
    (["heavy"] * 64, "not numeric"),
    (np.ones((64, 2)), "1-d"),
    ("heavy", "expected one number per sample"),
    (np.r_[np.zeros(32), np.ones(32)], r"only one class \('cold'\)"),
])
def test_bad_weights_fail_before_training_naming_sample_weight(weights, message):
    texts, labels = _conflicting_texts()
    with pytest.raises(InputError, match=rf"sample_weight: .*{message}"):
        AutoMM(**tiny()).fit(texts, labels, sample_weight=weights)


def test_scikit_learn_routes_sample_weight_to_fit_and_score():
    import sklearn
    from sklearn.model_selection import cross_validate

    texts, labels = _conflicting_texts()
    X = pd.DataFrame({"name": texts})
    weights = np.linspace(0.5, 2.0, len(texts))
    est = AutoMMClassifier(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"}))
    with sklearn.config_context(enable_metadata_routing=True):
        est = est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        scores = cross_validate(est, X, labels, cv=2, params={"sample_weight": weights})
    assert scores["test_score"].shape == (2,)


def test_score_weighs_the_rows_by_sample_weight(monkeypatch):
    """Accuracy and R^2 as scikit-learn weighs them (the rows a weight of 3 counts three times)."""
    from sklearn.metrics import r2_score

    predicted = {"binary": np.array(["a", "a", "b", "b"]), "regression": np.array([1.0, 2.0, 2.5, 5.0])}
    for problem_type, y in (("binary", ["a", "b", "b", "b"]), ("regression", [1.0, 2.0, 3.0, 4.0])):
        est = AutoMM(max_epochs=1)
        est.model_, est.problem_type_, est.classes_ = object(), problem_type, np.array(["a", "b"])
        monkeypatch.setattr(AutoMM, "_predictions_and_probabilities",
                            lambda self, X, probabilities=True, n_labels=None: (predicted[self.problem_type_], None))
        X, weights = {"t": ["w", "x", "y", "z"]}, [1.0, 3.0, 1.0, 1.0]
        expected = (1 + 1 + 1) / 6 if problem_type == "binary" else r2_score(y, predicted["regression"],
                                                                             sample_weight=weights)
        assert est.score(X, y, sample_weight=weights) == pytest.approx(expected)
        assert est.score(X, y) != pytest.approx(expected)


# ------------------------------------------------------------------ validation data (X_val, y_val)
def test_validation_data_replace_the_holdout_and_are_never_trained_on(emoji_split):
    train, test = emoji_split
    X, y = train[["image", "name"]].reset_index(drop=True), train["category"].reset_index(drop=True)
    X_val, y_val = test[["image", "name"]].head(60), test["category"].head(60)
    params = tiny(max_epochs=2)
    est = AutoMM(**params).fit(X, y, X_val=X_val, y_val=y_val)
    # the kept epoch is chosen on the validation rows: its score is the model's accuracy on them
    assert est.best_score_ == pytest.approx(est.score(X_val, y_val), abs=1e-6)
    assert est.n_features_in_ == 2 and set(est.classes_) == set(y)
    # other validation labels change nothing the model trains on, only how its epochs are scored
    shuffled = y_val.sample(frac=1.0, random_state=3).to_numpy()
    other = AutoMM(**params).fit(X, y, X_val=X_val, y_val=shuffled)
    assert [r["train_loss"] for r in other.history_] == [r["train_loss"] for r in est.history_]
    assert [r["valid_loss"] for r in other.history_] != [r["valid_loss"] for r in est.history_]


def test_validation_data_in_a_search_with_a_bag_and_the_linear_model(builtin_only):
    rng = np.random.default_rng(2)
    words = np.array(["alpha", "beta", "gamma"])
    picks = rng.integers(0, 3, 150)
    texts = [f"{words[p]} thing {i % 5}" for i, p in enumerate(picks)]
    labels = words[picks]
    X_val, y_val = texts[100:], labels[100:]
    est = AutoMMClassifier(encoders={"text": ["hashed_ngram"]}, n_trials=3, max_epochs=3, bag_folds=2,
                           num_workers=0, random_state=0)
    est.fit(texts[:100], labels[:100], X_val=X_val, y_val=y_val, sample_weight_val=np.linspace(1, 2, 50))
    board = est.leaderboard_
    linear = board[board["fusion"] == "sum"]
    assert len(linear) == 1 and "refit" not in str(linear["reason"].iloc[0])  # not refitted with X_val
    bags = board[board["folds"].fillna(1) > 1]
    assert len(bags) >= 1 and est.score(X_val, y_val) > 0.9


@pytest.mark.parametrize("kwargs, message", [
    (dict(X_val=["red apple"]), "y_val: X_val was given without it"),
    (dict(y_val=["warm"]), "X_val: y_val was given without it"),
    (dict(sample_weight_val=[1.0]), "sample_weight_val: given without X_val and y_val"),
    (dict(X_val=["red apple", "blue sea"], y_val=["warm"]), "y_val: 1 labels for 2 validation samples"),
    (dict(X_val=["red apple"], y_val=["hot"]), r"y_val: labels \['hot'\] do not occur in y"),
    (dict(X_val=["red apple"], y_val=[None]), "y_val: 1 missing label"),
    (dict(X_val=["red apple"], y_val=["warm"], sample_weight_val=[-1.0]), "sample_weight_val: weights must be >= 0"),
])
def test_bad_validation_data_fail_before_training(kwargs, message):
    texts, labels = _conflicting_texts()
    with pytest.raises(InputError, match=message):
        AutoMM(**tiny()).fit(texts, labels, **kwargs)
    if "y_val" in kwargs and len(kwargs.get("X_val", ())) == 1:
        with pytest.raises(InputError, match="X_val: fit was given 2 positional inputs; pass X_val as a tuple"):
            AutoMM(**tiny()).fit(texts, texts, labels, **kwargs)


def test_validation_data_must_have_the_columns_of_X(emoji_split):
    train, test = emoji_split
    with pytest.raises(InputError, match=r"X_val: columns \['name'\] of X are missing"):
        AutoMM(**tiny()).fit(train[["image", "name"]], train["category"], X_val=test[["image"]],
                             y_val=test["category"])
    with pytest.raises(InputError, match="X_val: .*does-not-exist.png"):
        AutoMM(**tiny()).fit(train["image"].tolist(), train["name"].tolist(), train["category"].tolist(),
                             X_val=(["does-not-exist.png"], ["x"]), y_val=[train["category"].iloc[0]])



def test_x_val_a_pipeline_passes_on_untransformed_is_named_so():
    """In a Pipeline, X_val (routed, or ``model__X_val``) reaches AutoMM as given, while X is what
    the steps before it made: it was refused naming X's missing columns (or taken in order with a
    warning about feature names) without saying why."""
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    texts, labels = _conflicting_texts()
    X = pd.DataFrame({"name": texts, "size": np.arange(len(texts), dtype=float)})
    X_val = pd.DataFrame({"name": ["red apple 9", "blue sea 9"] * 3, "size": np.arange(6) + 100.0})
    y_val = ["warm", "cold"] * 3
    why = (r"\(X is what the Pipeline's step 'prep' made of its input and X_val has the columns the Pipeline was "
           r"given: a Pipeline passes fit parameters such as X_val on as they were given, untransformed; give X_val as "
           r"those steps make it: Pipeline\(\.\.\., transform_input=\['X_val'\]\) under metadata routing \(the steps "
           r"fitted in each fit transform it, in cross-validation too\), or pipe\[:-1\]\.fit\(X, y\)\.transform\(X_val\); "
           r"or leave X_val and y_val out")
    prep = ColumnTransformer([("num", StandardScaler(), ["size"]), ("text", "passthrough", ["name"])])
    with sklearn.config_context(enable_metadata_routing=True):
        model = AutoMM(**tiny(encoders={"text": "hashed_ngram"}, max_epochs=1)).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("prep", prep.set_output(transform="pandas")), ("model", model)])
        with pytest.raises(InputError, match=r"X_val: columns \['num__size', 'text__name'\] of X are missing; got "
                                             r"columns \['name', 'size'\] " + why):
            pipe.fit(X, labels, X_val=X_val, y_val=y_val)
        pipe.fit(X, labels, X_val=pipe[:-1].fit(X, labels).transform(X_val), y_val=y_val)  # as the message says
        assert pipe[-1].validation_on_ == "X_val" and pipe[-1].validation_rows_ == 6
        pipe.set_params(transform_input=["X_val"]).fit(X, labels, X_val=X_val, y_val=y_val)  # or so
    assert pipe[-1].validation_on_ == "X_val" and pipe[-1].validation_rows_ == 6
    numbers = X[["size"]].assign(twice=X["size"] * 2)  # the steps' output unnamed: X_val taken in order, unscaled
    pipe = Pipeline([("prep", StandardScaler()), ("model", AutoMM(**tiny(encoders=None)))])
    with pytest.warns(UserWarning, match=r"X_val has feature names, but fit was given unnamed inputs: its columns "
                                         r"\['size', 'twice'\] are taken in order " + why):
        pipe.fit(numbers, labels, model__X_val=numbers.head(6) + 0.5, model__y_val=y_val)


def test_the_checks_of_validation_data_leave_other_threads_warnings_alone(monkeypatch):
    """X_val's checks caught every warning of the process (warnings.catch_warnings swaps its
    filters and showwarning) to name X_val in them: a warning of another of the host's threads
    meanwhile was taken and raised again as "X_val: ..." from the fit."""
    import threading

    import automm.estimator as estimator

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60)})
    y = np.where(X["x"] > 0, "high", "low")
    X_val = pd.DataFrame({"x": [*rng.normal(size=29).tolist(), "soon"]})
    y_val = ["high", "low"] * 15
    real, calls = estimator.validate_columns, []

    def validate_columns(table, roles, **options):
        calls.append(table)
        if len(calls) == 2:  # X_val's: another thread of the host warns meanwhile
            host = threading.Thread(target=lambda: warnings.warn("the host's own warning", UserWarning))
            host.start()
            host.join()
        return real(table, roles, **options)

    monkeypatch.setattr(estimator, "validate_columns", validate_columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(X, y, X_val=X_val, y_val=y_val)
    messages = [str(w.message) for w in caught]
    assert len(calls) == 2
    assert "the host's own warning" in messages
    assert not [m for m in messages if "X_val: the host" in m]
    assert [m for m in messages if m.startswith("X_val: column 'x': 1 of 30 values are not numbers")]


def test_validation_rows_that_repeat_training_rows_are_named(emoji_split):
    """The holdout that picks the epochs and the model then scores rows the model has seen."""
    from automm.data import Table, rows_repeated

    train, test = emoji_split
    X_val = pd.concat([train[["image", "name"]].head(7), test[["image", "name"]].head(20)])
    y_val = pd.concat([train["category"].head(7), test["category"].head(20)])
    with pytest.warns(UserWarning, match=r"X_val: 7 of 27 rows have the features of a training row"):
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]], train["category"], X_val=X_val, y_val=y_val)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*features of a training row")
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]], train["category"],
                                         X_val=test[["image", "name"]].head(20), y_val=test["category"].head(20))
    numbers = Table({"a": [1, 2.0, np.int64(3), None], "b": ["x", "y", "z", float("nan")]})
    assert rows_repeated(Table({"a": [1.0, 3, 4, np.nan], "b": ["x", "z", "z", None]}), numbers) == 3
    # rows of a few categories repeat each other by chance: an independent validation set repeats them too
    levels = Table({"a": ["lo", "mid", "hi"] * 20, "b": ["x", "y"] * 30})
    assert rows_repeated(Table({"a": ["lo", "hi"] * 5, "b": ["y", "x"] * 5}), levels) == 0
    images = Table({"a": [np.zeros((2, 2)), np.ones((2, 2))]})
    assert rows_repeated(images, images) == 0  # arrays are not compared


def test_an_array_fitted_model_takes_its_validation_data_as_an_array(emoji_split):
    """X as a 2-D array (what a pipeline passes on): X_val is one the same shape, its columns by position."""
    train, test = emoji_split
    X, X_val = train[["image", "name"]].to_numpy(), test[["image", "name"]].head(60).to_numpy()
    y_val = test["category"].head(60)
    est = AutoMM(**tiny(max_epochs=2)).fit(X, train["category"], X_val=X_val, y_val=y_val)
    assert est.column_roles_ == {"x0": "image", "x1": "text"}
    assert est.best_score_ == pytest.approx(est.score(X_val, y_val), abs=1e-6)
    with pytest.raises(InputError, match=r"X_val: an array of 1 column; fit was given 2 \(x0, x1\)"):
        AutoMM(**tiny()).fit(X, train["category"], X_val=X_val[:, :1], y_val=y_val)


def test_balanced_class_weights_count_sample_weights_over_the_training_rows():
    texts, labels = _conflicting_texts()  # 24 warm, 40 cold
    weights = np.where(np.asarray(labels) == "cold", 0.5, 1.0)  # totals: warm 24, cold 20
    params = tiny(max_epochs=1, encoders={"text": "hashed_ngram"}, class_weight="balanced")
    est = AutoMMClassifier(**params).fit(texts, labels, sample_weight=weights)
    per_class = dict(zip(est.classes_, est.class_weights_))
    assert per_class["warm"] * 24 == pytest.approx(per_class["cold"] * 20)
    # validation rows (all cold here) do not count
    alone = AutoMMClassifier(**params).fit(texts, labels)
    with_val = AutoMMClassifier(**params).fit(texts, labels, X_val=["blue sea"] * 30, y_val=["cold"] * 30)
    assert with_val.class_weights_ == pytest.approx(alone.class_weights_)


def test_a_class_weight_weighs_the_rows_of_its_class_not_its_column_of_smoothed_targets():
    """Weighing each class's column of the label-smoothed targets gave every common row some of a
    heavy rare class's weight: with 60 common rows a rare one and ``class_weight="balanced"`` the
    loss was lowest calling every row rare (test accuracy 0.09 against 0.998)."""
    trainer = Trainer.__new__(Trainer)
    trainer.config = TrainingConfig(problem_type="multiclass", label_smoothing=0.05)
    trainer.train_weights, trainer.class_weights = None, torch.tensor([0.5, 30.0])
    batch = {"index": torch.arange(4), "target": torch.tensor([0, 0, 0, 1])}
    assert trainer.batch_weights(batch).tolist() == [0.5, 0.5, 0.5, 30.0]
    trainer.train_weights = torch.tensor([1.0, 2.0, 1.0, 0.5])
    assert trainer.batch_weights(batch).tolist() == [0.5, 1.0, 0.5, 15.0]

    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 600), rng.normal(6, 1, 10)]  # separable, 60 to 1
    y = ["common"] * 600 + ["rare"] * 10
    x_test = np.r_[rng.normal(0, 1, 100), rng.normal(6, 1, 10)]
    model = AutoMM(**tiny(max_epochs=6, class_weight="balanced", encoders=None)).fit({"x": x}, y)
    predicted = model.predict({"x": x_test})
    assert (predicted[:100] == "common").mean() > 0.9 and (predicted[100:] == "rare").mean() > 0.9


def test_validation_data_in_the_table_forms_fit_takes():
    import scipy.sparse as sparse

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 3))
    y = (rows[:, 0] > 0).astype(int)
    val = rng.normal(size=(3, 3))  # as many validation rows as columns: read as rows, not as 3 columns
    y_val = (val[:, 0] > 0).astype(int)
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(rows.tolist(), y, X_val=val.tolist(), y_val=y_val)
    assert len(model.classes_) == 2
    AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(sparse.csr_matrix(rows), y, X_val=sparse.csr_matrix(val),
                                                            y_val=y_val)
    with pytest.raises(InputError, match=r"X_val: an array of 2 columns; fit was given 3"):
        AutoMM(max_epochs=1).fit(rows.tolist(), y, X_val=val[:, :2].tolist(), y_val=y_val)
    # a missing number in a row: NaN, a missing value
    holed = rows.tolist()
    holed[0][1] = None
    assert AutoMM(max_epochs=1, num_workers=0).fit(holed, y).column_roles_ == {"x0": "numeric", "x1": "numeric",
                                                                                "x2": "numeric"}


def test_rows_of_weight_zero_do_not_set_the_targets_scale():
    """15 outliers given weight 0 still set the standardised targets' scale (std 113 against 1.6):
    the network learnt in targets squeezed 70 times and underfit (R^2 0.55 against 0.92)."""
    rng = np.random.default_rng(0)
    texts = [f"item {i % 7} {'big' if i % 2 else 'small'}" for i in range(120)]
    y = np.array([2.0 * (i % 2) + 0.1 * (i % 7) for i in range(120)])
    weights = np.ones(120)
    y_out = y.copy()
    y_out[:6] += rng.standard_cauchy(6) * 500
    weights[:6] = 0.0
    model = AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, y_out, sample_weight=weights)
    assert model.target_mean_ == pytest.approx(y[6:].mean()) and model.target_std_ == pytest.approx(y[6:].std())
    halves = np.where(np.arange(120) < 60, 1.0, 3.0)
    weighted = AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, y, sample_weight=halves)
    assert weighted.target_mean_ == pytest.approx(np.average(y, weights=halves))  # weighted, as the loss
    with pytest.raises(InputError, match=r"y: every target that counts \(120 samples\) is 7\.5e-06; regression needs at least two"):
        AutoMMRegressor(**tiny()).fit(texts, np.full(120, 7.5e-6))


def test_validation_rows_are_encoded_weighed_and_told_apart_as_the_training_rows(monkeypatch):
    """What fit hands the training: the rows of weight 0 left out, the validation rows after the
    training rows (their labels encoded as y's: standardised by y's mean and deviation, classes
    by y's indices) with weight 1 where sample_weight_val is not given."""
    seen = {}

    class Planned(Exception):
        pass

    def fit_candidates(self, data, config, deadline, graceful=True):
        seen["data"], seen["scale"] = data, (self.__dict__.get("target_mean_"), self.__dict__.get("target_std_"))
        raise Planned

    monkeypatch.setattr(AutoMM, "_fit_candidates", fit_candidates)
    X = {"size": np.arange(20.0), "colour": ["red", "blue"] * 10}
    X_val = {"size": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"]}
    y = np.arange(20.0) * 3 + 5
    weights = np.r_[np.zeros(4), np.tile([1.0, 3.0], 8)]  # rows 0 to 3 weigh 0: left out
    with pytest.raises(Planned):
        AutoMMRegressor(max_epochs=1, random_state=0).fit(X, y, sample_weight=weights, X_val=X_val, y_val=[8.0, 11.0, 100.0])
    data = seen["data"]
    assert data.train_index.tolist() == list(range(16)) and data.valid_index.tolist() == [16, 17, 18]
    mean, std = seen["scale"]  # (a fit that fails keeps the estimator as it was)
    values = data.targets * std + mean
    assert values[:16] == pytest.approx(y[4:]) and values[16:] == pytest.approx([8.0, 11.0, 100.0])
    assert data.sample_weights == pytest.approx(np.r_[np.tile([1.0, 3.0], 8), np.ones(3)] / (35 / 19))
    with pytest.raises(Planned):
        AutoMMClassifier(max_epochs=1, random_state=0).fit(X, ["b", "a", "c", "a"] * 5, X_val=X_val,
                                                           y_val=["c", "b", "a"])
    data = seen["data"]
    assert data.targets.tolist() == [1, 0, 2, 0] * 5 + [2, 1, 0] and data.valid_index.tolist() == [20, 21, 22]
    assert data.sample_weights is None


def test_validation_rows_taken_from_a_table_whose_rows_repeat_are_counted():
    """A table of few categories repeats its own rows (here 1 in 10): only repeats beyond twice
    that share count as validation rows taken from the training rows."""
    from automm.data import Table, rows_repeated

    seen = Table({"colour": [f"c{i}" for i in range(90)] + ["c0"] * 10, "size": list(range(90)) + [0] * 10})
    taken = Table({"colour": [f"c{i}" for i in range(30)] + [f"new{i}" for i in range(70)],
                   "size": list(range(30)) + list(range(70))})
    assert rows_repeated(taken, seen) == 30  # 30% > 2 x 10%
    drawn_apart = Table({"colour": [f"c{i}" for i in range(15)] + [f"new{i}" for i in range(85)],
                         "size": list(range(15)) + list(range(85))})
    assert rows_repeated(drawn_apart, seen) == 0  # 15% < 2 x 10%: as often as chance


def test_validation_targets_on_another_scale_than_y_are_named_with_the_transformed_target_regressor():
    """A TransformedTargetRegressor fits on log(y) but passes y_val on as given: the kept epoch was
    chosen on errors of ~45 units against targets of ~4 (fashion titles: test R^2 0.36 against 0.45
    with log(y_val)), no word said."""
    import sklearn
    from sklearn.compose import TransformedTargetRegressor

    texts = [f"item {i % 7} {'big' if i % 2 else 'small'}" for i in range(60)]
    y = np.array([20.0 + 30.0 * (i % 2) + i % 7 for i in range(60)])
    val_texts, y_val = texts[:12], y[:12]
    regressor = AutoMMRegressor(**tiny(max_epochs=1))
    with sklearn.config_context(enable_metadata_routing=True), \
            pytest.warns(UserWarning, match=r"y_val: its median 38 lies more than 10 standard deviations of y beyond "
                                            r"y's range \(2\.99573 to 4\.02535\).*TransformedTargetRegressor .*passes "
                                            r"fit parameters such as y_val on untransformed"):
        TransformedTargetRegressor(regressor.set_fit_request(X_val=True, y_val=True), func=np.log,
                                   inverse_func=np.exp).fit(texts, y, X_val=val_texts, y_val=y_val)
    with warnings.catch_warnings():  # in the units of y, drifted as a later period's may be: no warning
        warnings.simplefilter("error")
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, np.log(y), X_val=val_texts, y_val=np.log(y_val) + 0.5)
    with pytest.warns(UserWarning, match=r"y_val: its median .* give y_val in the units of y"):
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, np.log(y), X_val=val_texts, y_val=y_val)
