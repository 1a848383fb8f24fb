"""The search's gradient-boosted model (automm.boosting) and its encoder (automm.components.trees)."""

from __future__ import annotations

import json
import os
import pickle
import signal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import automm
from automm import AutoMM, AutoMMRegressor, boosting
from automm.boosting import BOOSTING_SOLVER, boosting_config, train_boosting, trees_of
from automm.cli import _training_line
from automm.components.trees import BoostedTreesEncoder
from automm.data import MISSING, InputSpec
from automm.exceptions import InputError
from automm.pipeline import PreparedData
from automm.testing import check_encoder


def _noisy_table(n: int = 240, seed: int = 0, noise: int = 30) -> tuple[pd.DataFrame, np.ndarray]:
    """A label that one categorical column tells (10% of its values another class's), beside
    ``noise`` columns of noise: what a network drowns in and trees split through."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["a", "b", "c"], n)
    signal = np.where(rng.random(n) < 0.1, rng.choice(["a", "b", "c"], n), labels)
    table = pd.DataFrame({"signal": [f"s-{v}" for v in signal]})
    for k in range(noise):
        table[f"n{k}"] = rng.normal(size=n)
    for k in range(5):
        table[f"c{k}"] = rng.choice([f"v{j}" for j in range(4 + k)], n)
    return table, labels


def test_a_search_on_table_columns_trains_the_boosted_model_and_the_ensemble_weighs_it(builtin_only, tmp_path):
    X, y = _noisy_table()
    model = AutoMM(n_trials=3, max_epochs=2, random_state=0).fit(X, y)
    board = model.leaderboard_
    boosted = board[board["encoders"] == "tabular=boosted_trees"]
    assert len(boosted) == 1 and boosted["state"].iloc[0] == "COMPLETE"
    config = boosted["config"].iloc[0]
    assert config["training"]["solver"] == BOOSTING_SOLVER and config["fusion"] == {"name": "sum"}
    assert config["encoders"]["tabular"]["learning_rate"] == 0.1  # its own parameters, shown
    assert boosted["score"].iloc[0] >= 0.8  # trees split on the one column that tells the label
    number = int(boosted["number"].iloc[0])
    assert number in [m["trial"] for m in model.fit_summary()["ensemble"]["members"]]
    proba = model.predict_proba(X)
    model.save(tmp_path / "model")
    with open(tmp_path / "model" / "automm.json", encoding="utf-8") as handle:
        assert json.load(handle)["format_version"] == 10  # an automm without the trees refuses it
    np.testing.assert_allclose(AutoMM.load(tmp_path / "model").predict_proba(X), proba, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(X), proba, atol=1e-6)

    without = AutoMM(n_trials=3, max_epochs=2, random_state=0, search_space={"boosting_model": False}).fit(X, y)
    assert "tabular=boosted_trees" not in set(without.leaderboard_["encoders"])
    with pytest.raises(InputError, match=r"search_space\['boosting_model'\]: expected true or false"):
        AutoMM(n_trials=3, search_space={"boosting_model": "no"}).fit(X, y)


def test_no_boosted_model_without_table_columns(builtin_only):
    inputs = [InputSpec("text_0", "text", ["name"], {"name": "text"})]
    assert boosting_config(inputs, {"text_0": {"hashed_ngram": {}}}, {"batch_size": 32}, 3) is None
    table = InputSpec("tabular", "tabular", ["x"], {"x": "numeric"})
    config = boosting_config([*inputs, table], {"tabular": {"tabular": {}}}, {"batch_size": 32}, 3)
    assert list(config["encoders"]) == ["tabular"] and config["encoders"]["tabular"]["output_dim"] == 3


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_the_trees_in_torch_predict_as_scikit_learn(kind, monkeypatch):
    import automm.components.trees as trees_module

    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    rows = [{"x": float(rng.normal()) if rng.random() > 0.1 else None, "n": float(rng.normal()),
             "c": f"k{rng.integers(0, 12)}" if rng.random() > 0.05 else None} for _ in range(500)]
    encoder = BoostedTreesEncoder({"x": "numeric", "n": "numeric", "c": "categorical"},
                                  output_dim={"multiclass": 3, "binary": 2, "regression": 1}[kind])
    encoder.fit(rows[:400])
    batch = encoder.preprocess_batch(rows)
    encoder.fit_bins({key: value[:400] for key, value in batch.items()})
    assert encoder.binned.tolist() == [True, True]  # 400 distinct numbers: read as their bins
    x = encoder.tree_inputs(batch).numpy()
    signal = batch["numeric"][:, 0].numpy() + (x[:, 2] % 3 == 0)  # (the number itself, not its bin)
    y = {"multiclass": np.digitize(signal, [0.0, 1.0]), "binary": (signal > 0.5).astype(int),
         "regression": signal + rng.normal(size=len(x)) * 0.1}[kind]
    grower = HistGradientBoostingRegressor if kind == "regression" else HistGradientBoostingClassifier
    model = grower(max_iter=25, min_samples_leaf=5, categorical_features=encoder.categorical_mask,
                   random_state=0).fit(x[:400], y[:400])
    trees, bias = trees_of(model, 25, encoder.output_dim)
    encoder.set_trees(trees)
    unknown = dict(batch, categorical=batch["categorical"].clone())
    unknown["categorical"][::7] = 200  # a category index the trees never saw: their missing values' side
    x_unknown = x.copy()
    x_unknown[::7, 2] = np.nan
    expected = model._raw_predict(x_unknown)
    with torch.no_grad():
        ours = (encoder(unknown) + torch.as_tensor(bias)).numpy()
    if kind == "binary":  # scikit-learn's one logit: the second class's against the first's
        ours = ours[:, 1:] - ours[:, :1]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)  # (float32 sums)
    with torch.no_grad():
        whole = encoder(unknown)
        monkeypatch.setattr(trees_module, "ROWS_TIMES_TREES", 100)  # a few rows at a time: the same outputs
        assert torch.equal(encoder(unknown), whole)


def _tree_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows as the trees read them: two numbers (the first missing in a fifth of the rows), two
    category indices (0-15, 0-40), a number that is 1 or missing (split on whether it is missing
    alone: weighing twice the others, so that trees of 3 leaves split on it under scikit-learn 1.7
    too, none of whose 32 did at weight 1), and a label of all five."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(size=n), rng.normal(size=n), rng.integers(0, 16, n), rng.integers(0, 41, n),
                  np.where(rng.random(n) < 0.3, np.nan, 1.0)], axis=1).astype(np.float32)
    x[rng.random(n) < 0.2, 0] = np.nan
    signal = (np.nan_to_num(x[:, 0], nan=2.5) + x[:, 1] + (x[:, 2] % 3 == 0) - (x[:, 3] % 4 == 1)
              + 2 * np.isnan(x[:, 4]))
    return x, np.digitize(signal + rng.normal(size=n) * 0.3, [-1.0, 0.0, 1.0])


def _all_leaf_tree(trees: dict, value: float, output: int) -> dict:
    """``trees`` with a tree of one leaf (``value``, adding to ``output``) appended."""
    n = len(trees["node_leaf"])
    extra = {"node_feature": 0, "node_threshold": 0.0, "node_left": 0, "node_right": 0, "node_leaf": True,
             "node_missing_left": False, "node_categorical": False, "node_category_row": 0, "node_value": value}
    grown = {name: np.append(trees[name], fill) for name, fill in extra.items()}
    return {**grown, "category_left": trees["category_left"], "tree_root": np.append(trees["tree_root"], n),
            "tree_output": np.append(trees["tree_output"], output)}


@pytest.mark.parametrize("leaves", [3, 31, None])  # trees of 2 levels; of 31 leaves; as deep as the rows allow
def test_every_kind_of_split_at_every_depth_goes_as_in_scikit_learn(leaves, monkeypatch):
    import automm.components.trees as trees_module

    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _tree_table(1500, 0)
    model = HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=leaves, min_samples_leaf=2,
                                           categorical_features=[False, False, True, True, False], random_state=0)
    model.fit(x[:1000], y[:1000])
    trees, bias = trees_of(model, 8, 4)
    inner = ~trees["node_leaf"]
    assert (trees["node_categorical"] & inner).any() and not (trees["node_missing_left"] & inner).all()
    trees = _all_leaf_tree(trees, 0.25, 2)
    test = x[1000:].copy()
    test[::9, 2] = 200  # a category index the trees never saw: their missing values' side
    test[::11, 3] = np.nan  # a missing category: the same
    expected = model._raw_predict(test) + np.float32(0.25) * (np.arange(4) == 2)
    encoder = BoostedTreesEncoder({"x": "numeric"}, output_dim=4)
    encoder.set_trees(trees)
    layout = encoder._tree_layout()
    if leaves is None:  # deeper than the levels laid out whole, and deep enough to follow fewer pairs
        assert max(layout.depths) > layout.complete_levels + 2
    assert bool(((layout.thresholds[-1] == np.inf) & (layout.inner == 1)).any())  # on missing values alone
    with torch.no_grad():
        ours = encoder.trees_output(torch.as_tensor(test))
        np.testing.assert_allclose(ours.numpy() + bias, expected, rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(trees_module, "ROWS_TIMES_TREES", 7)  # a few rows and trees at a time: the same
        monkeypatch.setattr(trees_module, "BLOCK_VALUES", 300)
        np.testing.assert_allclose(encoder.trees_output(torch.as_tensor(test)).numpy(), ours.numpy(), atol=1e-6)


def test_the_trees_layout_follows_the_trees_held():
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = _tree_table(600, 1)
    grown = [HistGradientBoostingRegressor(max_iter=iterations, categorical_features=[False, False, True, True, False],
                                           random_state=0).fit(x, y) for iterations in (3, 20)]
    encoder = BoostedTreesEncoder({"x": "numeric"})
    inputs = torch.as_tensor(x)
    with torch.no_grad():
        assert torch.equal(encoder.trees_output(inputs), torch.zeros(600, 1))  # no trees
        for model in grown:  # the layout of the trees held before is not reused
            trees, bias = trees_of(model, model.n_iter_, 1)
            encoder.set_trees(trees)
            pickled = len(pickle.dumps(encoder))
            np.testing.assert_allclose(encoder.trees_output(inputs)[:, 0].numpy() + bias, model._raw_predict(x)[:, 0],
                                       rtol=1e-5, atol=1e-5)
        ours = encoder.trees_output(inputs)
        assert len(pickle.dumps(encoder)) == pickled  # (the layout is not pickled: it is derived again)
        loaded = BoostedTreesEncoder({"x": "numeric"})
        loaded.trees_output(inputs)  # (a layout of no trees, before the weights)
        loaded.load_state_dict(encoder.state_dict())
        assert torch.equal(loaded.trees_output(inputs), ours)
        assert torch.equal(pickle.loads(pickle.dumps(encoder)).trees_output(inputs), ours)
        earlier = BoostedTreesEncoder.__new__(BoostedTreesEncoder)  # pickled by an automm without the layout
        earlier.__setstate__({k: v for k, v in encoder.__getstate__().items() if k != "_layout"})
        assert torch.equal(earlier.trees_output(inputs), ours)
        with pytest.raises(InputError, match=r"the trees read 5 columns \(tree_inputs\), got x of shape \(600, 4\)"):
            encoder.trees_output(inputs[:, :4])


def _table_data(table: pd.DataFrame, labels, problem_type="multiclass", weights=None, class_weights=None):
    rows = table.to_dict("records")
    roles = {c: "numeric" if pd.api.types.is_numeric_dtype(table[c]) else "categorical" for c in table.columns}
    index = np.arange(len(rows))
    classes = sorted(set(labels)) if problem_type != "regression" else None
    targets = (np.array([classes.index(v) for v in labels]) if classes is not None
               else np.asarray(labels, dtype=np.float32))
    return PreparedData(inputs=[InputSpec("tabular", "tabular", list(table.columns), roles)],
                        values={"tabular": rows}, targets=targets, problem_type=problem_type,
                        n_outputs=len(classes) if classes else 1, train_index=index[index % 5 != 0],
                        valid_index=index[index % 5 == 0], seed=0, device=torch.device("cpu"), num_workers=0,
                        sample_weights=weights, class_weights=class_weights)


def test_the_boosted_model_stops_by_the_holdout_and_keeps_its_best_iterations(builtin_only):
    X, y = _noisy_table()
    data = _table_data(X, y)
    config = boosting_config(data.inputs, {}, {"batch_size": 32}, data.n_outputs)
    candidate = train_boosting(data, config, refit=False)
    (record,) = candidate.history
    assert 1 <= record["n_iter"] < 500 and "holdout loss: not 0.0001 lower in 10" in candidate.stop_reason
    assert candidate.best_score == record["valid_score"] >= 0.8
    assert candidate.model.encoders["tabular"].n_trees == 3 * record["n_iter"]  # one tree per class and iteration

    with pytest.raises(TimeoutError, match="grew no tree"):
        train_boosting(data, config, deadline=0.0)


def _holdout_the_other_way_round(n: int = 200) -> tuple[pd.DataFrame, list[str]]:
    """A column whose sign tells the label on the training rows and the other label on the
    holdout's (every fifth row, as :func:`_table_data` splits): no tree lowers the holdout loss."""
    x = np.random.default_rng(0).normal(size=n)
    holdout = np.arange(n) % 5 == 0
    return pd.DataFrame({"x": x}), list(np.where((x > 0) != holdout, "a", "b"))


def test_boosting_the_time_limit_stops_before_an_iteration_lowers_the_holdout_loss_fails(builtin_only, monkeypatch):
    """Stopped by the deadline after an iteration that did not lower the holdout loss, the model
    kept 0 iterations, the class priors: the same guess for every row, scored as a finished trial.
    It now fails, saying it learned nothing; stopped by the holdout (no deadline) it is a result."""
    X, y = _holdout_the_other_way_round()
    data = _table_data(X, y)
    config = boosting_config(data.inputs, {}, {"batch_size": 32}, data.n_outputs)
    finished = train_boosting(data, config, refit=False)
    assert finished.history[0]["n_iter"] == 0 and "holdout loss: not 0.0001 lower" in finished.stop_reason
    stop = boosting._Watch.stop

    def past_the_deadline(watch):  # the deadline passes in the first iteration
        watch.deadline = boosting.time.monotonic() - 1.0
        return stop(watch)

    monkeypatch.setattr(boosting._Watch, "stop", past_the_deadline)
    with pytest.raises(TimeoutError, match=r"the gradient-boosted model was cut by the time limit before it learned: "
                                           r"the 1 iteration grown did not lower the holdout loss from its start "
                                           r"\(the class priors: the same guess for every row\)"):
        train_boosting(data, config, deadline=boosting.time.monotonic() + 60)


def test_a_fit_whose_one_boosted_model_the_time_limit_stops_before_it_learned_raises_naming_time_limit(
        builtin_only, monkeypatch):
    """Without a search (``n_trials=1``), that model was kept, guessing one class for every row,
    without a word (and "grew no tree" left fit as a bare ``TimeoutError``)."""
    X, y = _holdout_the_other_way_round()
    holdout = np.arange(len(X)) % 5 == 0
    stop = boosting._Watch.stop

    def past_the_deadline(watch):  # the deadline passes in the first iteration
        watch.deadline = boosting.time.monotonic() - 1.0
        return stop(watch)

    monkeypatch.setattr(boosting._Watch, "stop", past_the_deadline)
    model = AutoMM(encoders={"tabular": "boosted_trees"}, time_limit=60, n_trials=1, random_state=0)
    with pytest.raises(automm.TimeLimitExceeded, match=r"time_limit=60 s ended before the model finished \(the "
                                                       r"gradient-boosted model was cut by the time limit before it "
                                                       r"learned: .*\); give fit more time"):
        model.fit(X[~holdout], [v for v, h in zip(y, holdout) if not h], X_val=X[holdout],
                  y_val=[v for v, h in zip(y, holdout) if h])


def test_a_scikit_learn_whose_boosting_takes_no_validation_set_is_refused_by_name(builtin_only, monkeypatch):
    """scikit-learn 1.6 (which pyproject.toml allowed) has no ``X_val`` in its histogram gradient
    boosting's ``fit``: the boosted model failed with "fit() got an unexpected keyword argument
    'X_val'"; it is refused, naming the release and how to go on, before any tree is grown."""
    import sklearn.ensemble
    from sklearn.ensemble import HistGradientBoostingClassifier

    class HistGradientBoostingWithoutValidationSet(HistGradientBoostingClassifier):
        def fit(self, X, y, sample_weight=None):  # (scikit-learn 1.6's signature)
            return super().fit(X, y, sample_weight=sample_weight)

    monkeypatch.setattr(sklearn.ensemble, "HistGradientBoostingClassifier", HistGradientBoostingWithoutValidationSet)
    X, y = _noisy_table(noise=3)
    data = _table_data(X, y)
    grown = _trees_grown(monkeypatch)
    with pytest.raises(RuntimeError, match=r"scikit-learn \S+'s HistGradientBoostingWithoutValidationSet takes no "
                                           r"validation set in fit .*>= 1\.7\): upgrade scikit-learn, or leave the "
                                           r"model out, search_space=\{'boosting_model': False\}$"):
        train_boosting(data, boosting_config(data.inputs, {}, {"batch_size": 32}, 3))
    assert grown == []


def test_sample_and_class_weights_weigh_the_boosted_models_rows(builtin_only):
    X, y = _noisy_table(noise=5)
    X = X.drop(columns="signal")  # nothing tells the label: the weights decide
    config = boosting_config(_table_data(X, y).inputs, {}, {"batch_size": 32}, 3)

    def share_of_a(**weighting) -> float:
        candidate = train_boosting(_table_data(X, y, **weighting), config, refit=False)
        return float((candidate.valid_outputs.argmax(1) == 0).mean())

    plain = share_of_a()
    assert share_of_a(class_weights=[20.0, 1.0, 1.0]) > plain + 0.3
    assert share_of_a(weights=np.where(np.asarray(y) == "a", 20.0, 1.0)) > plain + 0.3


def test_a_user_may_name_the_boosted_trees_alone_but_not_beside_other_inputs(builtin_only):
    X, y = _noisy_table(noise=5)
    model = AutoMM(encoders={"tabular": "boosted_trees"}, random_state=0).fit(X, y)
    summary = model.fit_summary()
    assert summary["solver"] == BOOSTING_SOLVER and summary["kept_setting"]["n_iter"] >= 1
    label, line = _training_line(summary)  # what automm fit prints of it
    assert label == "boosting" and line.startswith("learning rate 0.1, up to 31 leaves a tree (holdout loss: ")
    assert model.score(X, y) >= 0.8
    values = np.random.default_rng(0).normal(size=len(y)) * 0.5 + 3 * (np.asarray(y) == "a")
    regressor = AutoMMRegressor(encoders={"tabular": "boosted_trees"}, random_state=0).fit(X, values)
    assert regressor.score(X, values) > 0.3

    texts = X.assign(title=[f"a title of {v} words here" for v in range(len(X))])
    named = r"'boosted_trees' makes a model of the table columns alone.*text_0='hashed_ngram' \(columns \['title'\]\)"
    with pytest.raises(InputError, match=named):  # (the column, not only the input text_0, that it reads as text)
        AutoMM(encoders={"tabular": "boosted_trees"}, max_epochs=1).fit(texts, y)
    with pytest.raises(InputError, match=named):
        AutoMM(encoders={"tabular": ["tabular", "boosted_trees"]}, n_trials=2, max_epochs=1).fit(texts, y)


def test_a_search_of_the_named_boosted_trees_grows_each_model_once(builtin_only):
    """A search whose table encoder is ``boosted_trees`` alone: its default is the gradient-boosted
    model, so neither the boosting preset nor a replicate (another seed grows the same trees) trains
    it again; the trials after the default are sampled settings."""
    X, y = _noisy_table(noise=5)
    model = AutoMM(encoders={"tabular": "boosted_trees"}, n_trials=3, max_epochs=1, random_state=0).fit(X, y)
    board = model.leaderboard_
    assert len(board) == 3 and set(board["encoders"]) == {"tabular=boosted_trees"}
    assert board["default"].sum() == 1 and (board.loc[~board["default"], "params"].map(len) > 0).all()
    grown_with = [json.dumps(config["encoders"], sort_keys=True) for config in board["config"]]
    assert len(set(grown_with)) == 3  # three models, none grown twice
    # a network default keeps its replicate and the boosted model beside it
    searched = AutoMM(n_trials=4, max_epochs=1, random_state=0).fit(X, y).leaderboard_
    assert (searched["encoders"] == "tabular=boosted_trees").sum() == 1
    assert [config["training"].get("seed_offset") for config in searched["config"]].count(1) == 1


def test_the_boosted_trees_encoder_passes_the_kit_and_refuses_bad_hyperparameters(builtin_only):
    rows = [{"price": 3.5, "colour": "red"}, {"price": MISSING, "colour": "blue"},
            {"price": 10.0, "colour": MISSING}, {"price": 7, "colour": "red"}]
    assert check_encoder("boosted_trees", rows, output_dim=3).output_dim == 3
    with pytest.raises(InputError, match="max_categories must be a whole number from 1 to 254, got 1000"):
        BoostedTreesEncoder({"c": "categorical"}, max_categories=1000)
    with pytest.raises(InputError, match="learning_rate must be a finite number > 0, got 0"):
        BoostedTreesEncoder({"c": "categorical"}, learning_rate=0)


def test_a_column_with_no_value_in_the_training_rows_is_no_failure(builtin_only):
    # (scikit-learn 1.9 cannot bin a column of NaN only: "window shape cannot be larger than input array shape")
    X, y = _noisy_table(noise=3)
    X["later"] = np.where(np.arange(len(X)) % 5 == 0, 1.0, np.nan)  # values in the holdout rows alone
    data = _table_data(X, y)
    candidate = train_boosting(data, boosting_config(data.inputs, {}, {"batch_size": 32}, 3))
    assert candidate.best_score >= 0.8 and "grown again" in candidate.stop_reason
    model = AutoMM(encoders={"tabular": "boosted_trees"}, random_state=0,
                   column_types={"never": "numeric"}).fit(X.drop(columns="later").assign(never=np.nan), y)
    assert model.score(X.drop(columns="later").assign(never=2.0), y) >= 0.8


def test_a_class_only_the_holdout_holds_stops_no_boosting(builtin_only):
    # (scikit-learn's early stopping refused it: "y contains previously unseen labels")
    X, y = _noisy_table(noise=3)
    y = np.where((np.arange(len(y)) % 10 == 0), "d", y)  # rows 0, 10, 20, ...: all in the holdout (index % 5 == 0)
    data = _table_data(X, y)
    data.holdout_given = True
    assert "d" not in set(y[data.train_index]) and (data.targets[data.valid_index] == 3).sum() == 24
    candidate = train_boosting(data, boosting_config(data.inputs, {}, {"batch_size": 32}, 4))
    assert 1 <= candidate.history[0]["n_iter"] < 500  # stopped by the holdout rows of the classes it learns
    assert candidate.valid_outputs.shape == (len(data.valid_index), 4)
    assert (candidate.valid_outputs.argmax(1) != 3).all()  # a class no training row holds: never predicted


def test_the_trees_read_numbers_beyond_the_tabular_encoders_clip_in_their_order(builtin_only):
    # payments: most small, a few large ones, whose label the trees must split far out in the tail,
    # beyond tabular's clip at 10 spreads from the median (every such value read there as one)
    rng = np.random.default_rng(0)
    amount = np.where(rng.random(1000) < 0.1, rng.uniform(100, 1000, 1000), rng.uniform(0, 1, 1000))
    labels = np.where(amount < 1, "small", np.where(amount < 500, "large", "huge"))
    data = _table_data(pd.DataFrame({"amount": amount, "noise": rng.normal(size=1000)}), labels)
    candidate = train_boosting(data, boosting_config(data.inputs, {}, {"batch_size": 32}, 3), refit=False)
    tail = amount[data.valid_index] >= 1
    assert tail.sum() >= 15
    assert (candidate.valid_outputs.argmax(1) == data.valid_targets)[tail].mean() >= 0.95


def _trees_grown(monkeypatch, ctrl_c=None, clock=None, seconds=None) -> list[int]:
    """The rows of each tree scikit-learn grows, in order. SIGINT (Ctrl-C, as a terminal sends it)
    is sent as the tree ``ctrl_c(number, rows)`` picks begins; each tree moves ``clock[0]`` on by
    ``seconds(rows)``."""
    from sklearn.ensemble._hist_gradient_boosting.grower import TreeGrower

    grown, grow = [], TreeGrower.grow

    def counted(self):
        grown.append(self.X_binned.shape[0])
        if ctrl_c is not None and ctrl_c(len(grown), grown[-1]):
            os.kill(os.getpid(), signal.SIGINT)
        if clock is not None:
            clock[0] += seconds(grown[-1])
        return grow(self)
    monkeypatch.setattr(TreeGrower, "grow", counted)
    return grown


@pytest.mark.parametrize("moment", ["first iteration", "growing", "growing again"])
def test_ctrl_c_ends_a_boosted_fit_with_the_trees_grown_so_far(builtin_only, monkeypatch, moment):
    """A fit of the named boosted trees without a search raised KeyboardInterrupt at any Ctrl-C,
    every tree grown lost; now, as a network keeps its best epoch so far, the growth stops after
    the iteration in progress and the trees grown are kept, with a warning (those grown on the
    training rows, where Ctrl-C stops their growth again on every row). In the first iteration
    nothing is kept: KeyboardInterrupt, an earlier model left as it was."""
    X, y = _noisy_table(noise=5)
    model = AutoMM(encoders={"tabular": "boosted_trees"}, random_state=0)
    pick = {"first iteration": lambda number, rows: number == 1,
            "growing": lambda number, rows: number == 3 * 5 + 1,  # the 6th iteration's first tree (3 classes)
            "growing again": lambda number, rows: rows == len(X)}[moment]  # the first tree grown on every row
    if moment == "first iteration":
        before, earlier = model.fit(X, y).predict_proba(X), model.model_
        grown = _trees_grown(monkeypatch, pick)
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, pd.Series(y).map({"a": "b", "b": "c", "c": "a"}))
        assert len(grown) == 3 and model.model_ is earlier  # (the first iteration's tree of each class)
        np.testing.assert_array_equal(model.predict_proba(X), before)
        return
    grown = _trees_grown(monkeypatch, pick)
    warned = {"growing": r"after 6 iterations; kept [1-6] iterations?",
              "growing again": r"before the trees were grown again on the training and holdout rows: kept those grown "
                               r"on the training rows \(holdout loss: not 0\.0001 lower in 10 iterations; kept \d+ "
                               r"iterations\)"}[moment]
    with pytest.warns(UserWarning, match=rf"^fit interrupted \(KeyboardInterrupt\) {warned} \(holdout accuracy [01]\.\d{{4}}\)$"):
        try:
            assert model.fit(X, y) is model
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C lost the trees grown")
    kept = model.history_[0]["n_iter"]
    assert model.interrupted_ and model.fit_summary()["interrupted"]
    assert model.model_.encoders["tabular"].n_trees == 3 * kept  # the trees grown on the training rows
    assert grown.count(len(X)) == (0 if moment == "growing" else 3)  # no tree after the iteration in progress
    assert len(grown) == (18 if moment == "growing" else len(grown))
    assert model.predict(X).shape == (len(X),)


def test_the_boosted_model_ends_its_growth_and_its_growth_again_by_the_deadline(builtin_only, monkeypatch):
    """The deadline is watched after every iteration, that of the growth again on every row too:
    that scikit-learn call was not watched at all, and ran on past the deadline where it took
    longer than the growth on the training rows foretold. On a clock of the trees grown: a
    second a tree on the training rows, three on every row."""
    X, y = _noisy_table(noise=5)
    data = _table_data(X, y)
    config = boosting_config(data.inputs, {}, {"batch_size": 32}, 3)
    n_train, clock = len(data.train_index), [0.0]
    monkeypatch.setattr(boosting, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    grown = _trees_grown(monkeypatch, clock=clock, seconds=lambda rows: 1.0 if rows == n_train else 3.0)
    free = train_boosting(data, config)
    kept, growth = free.history[0]["n_iter"], grown.count(n_train)
    assert "grown again" in free.stop_reason and grown.count(len(X)) == 3 * kept
    for deadline, stopped in ((growth / 2, "time limit; kept"),
                              (growth + 6.0 * kept, "growing them again on the training and holdout rows stopped "
                                                    "at the time limit")):
        clock[0] = 0.0
        candidate = train_boosting(data, config, deadline=deadline)
        assert clock[0] <= deadline and stopped in candidate.stop_reason
        assert candidate.model.encoders["tabular"].n_trees == 3 * candidate.history[0]["n_iter"] > 0


def test_a_timeout_of_a_fits_own_code_is_not_reported_as_the_time_limit(builtin_only, monkeypatch):
    """Under a time limit every ``TimeoutError`` of a fit without a search became "time_limit=60 s ended
    before the model finished", a plugin's own (a socket's, long before the limit) too: only a model
    cut before it learned is the limit's now."""
    X, y = _holdout_the_other_way_round()

    def socket_timeout(*args, **kwargs):
        raise TimeoutError("timed out reading from the feature server")

    monkeypatch.setattr(AutoMM, "_fit_one", socket_timeout)
    with pytest.raises(TimeoutError, match="^timed out reading from the feature server$") as raised:
        AutoMM(encoders={"tabular": "boosted_trees"}, time_limit=60, n_trials=1, random_state=0).fit(X, y)
    assert not isinstance(raised.value, automm.TimeLimitExceeded)
