"""The gradient-boosted model on what a user's table holds (automm.components.trees)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from automm import AutoMMRegressor
from automm.components.tabular import TabularEncoder
from automm.components.trees import BoostedTreesEncoder


def test_the_trees_read_a_heavy_tailed_columns_top_values_apart(builtin_only):
    # prices spanning four orders of magnitude: the tabular encoder's clip at 10 spreads read their
    # top 5% as one value, so the trees could not split among them
    rng = np.random.default_rng(0)
    price = np.exp(rng.normal(7, 2, 2000)).round(2)
    rows = [{"price": p} for p in price]
    trees = BoostedTreesEncoder({"price": "numeric"}).fit(rows)
    batch = trees.preprocess_batch(rows)
    trees.fit_bins(batch)  # (as train_boosting does: a column of more than 255 values read as its bins)
    inputs = trees.tree_inputs(batch).numpy()[:, 0]
    top = price >= np.quantile(price, 0.97)
    order = np.argsort(price)
    assert (np.diff(inputs[order]) >= 0).all()  # (bins of a few rows each, in the prices' order)
    assert len(np.unique(inputs[top])) >= 5  # (was 1: the top 3% read alike, in one bin)
    row = {"price": float(price.max() * 10)}  # and so does one row, as prediction reads it
    assert float(trees.preprocess(row)["numeric"][0]) == float(trees.preprocess_batch([row])["numeric"][0, 0]) > 10
    with warnings.catch_warnings():  # a number beyond float32's range: its largest, no overflow warning
        warnings.simplefilter("error")
        assert np.isfinite(trees.preprocess_batch([{"price": 1e300}])["numeric"].numpy()).all()
    network = TabularEncoder({"price": "numeric"}).fit(rows)  # the network's input stays clipped
    assert float(network.preprocess_batch([row])["numeric"][0, 0]) == float(network.preprocess(row)["numeric"][0]) == 10

    # log sale price from the list price: the boosted model as good as scikit-learn's (was 1.6 times its error)
    table = pd.DataFrame({"price": price, "season": rng.choice(["summer", "winter"], len(price))})
    target = np.log(price * np.where(table["season"] == "summer", 0.7, 0.9)) + rng.normal(0, 0.05, len(price))
    train, test = np.arange(1500), np.arange(1500, 2000)
    model = AutoMMRegressor(encoders={"tabular": "boosted_trees"}, random_state=0)
    model.fit(table.iloc[train], target[train])
    reference = HistGradientBoostingRegressor(categorical_features=[False, True], random_state=0)
    reference.fit(table.assign(season=table["season"] == "summer").iloc[train], target[train])

    def rmse(predicted):
        return float(np.sqrt(np.mean((predicted - target[test]) ** 2)))

    ours = rmse(model.predict(table.iloc[test]))
    theirs = rmse(reference.predict(table.assign(season=table["season"] == "summer").iloc[test]))
    assert ours < 1.25 * theirs, (ours, theirs)


def _told_exactly():
    """600 rows whose label one categorical column tells without error, beside a column of noise,
    prepared as a fit would (every fifth row the holdout)."""
    import torch

    from automm.data import InputSpec
    from automm.pipeline import PreparedData

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    rows = [{"kind": f"k{label}{rng.integers(0, 4)}", "noise": float(rng.normal())} for label in labels]
    index = np.arange(len(rows))
    return PreparedData(inputs=[InputSpec("tabular", "tabular", ["kind", "noise"],
                                          {"kind": "categorical", "noise": "numeric"})],
                        values={"tabular": rows}, targets=labels, problem_type="multiclass", n_outputs=3,
                        train_index=index[index % 5 != 0], valid_index=index[index % 5 == 0], seed=0,
                        device=torch.device("cpu"), num_workers=0)


def test_the_boosted_model_stops_once_the_holdout_loss_no_longer_falls_by_a_useful_amount(builtin_only):
    # a label that one column tells without error (fashion's masterCategory from subCategory): the holdout
    # loss fell by ever less, under 1e-5 an iteration, and boosting grew all 500 iterations (fashion:
    # 4.7 s to fit, 0.44 s to predict 1,000 rows; stopped where it no longer falls by 1e-4 in 10: 70
    # iterations, 0.7 s and 0.08 s)
    from automm.boosting import boosting_config, train_boosting

    data = _told_exactly()
    config = boosting_config(data.inputs, {}, {"batch_size": 32}, data.n_outputs)
    candidate = train_boosting(data, config, refit=False)
    (record,) = candidate.history
    assert "holdout loss: not 0.0001 lower in 10 iterations" in candidate.stop_reason, candidate.stop_reason
    assert record["n_iter"] < 200 and candidate.best_score == 1.0 and record["valid_loss"] < 0.01


def test_the_stop_reason_says_the_loss_fell_too_little_where_it_still_fell(builtin_only, monkeypatch):
    """Stopped by the tolerance, the holdout loss may still fall at every iteration (its lowest the
    last one's, all kept): the stop reason says it fell by under the tolerance, not that it fell no more."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from automm.boosting import LOSS_TOLERANCE, N_ITER_NO_CHANGE, boosting_config, train_boosting

    losses = []
    fit = HistGradientBoostingClassifier.fit

    def recording(self, *args, **kwargs):
        fitted = fit(self, *args, **kwargs)
        if self.early_stopping:
            losses[:] = -np.asarray(self.validation_score_)
        return fitted

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", recording)
    data = _told_exactly()
    candidate = train_boosting(data, boosting_config(data.inputs, {}, {"batch_size": 32}, 3), refit=False)
    recent = np.asarray(losses[-N_ITER_NO_CHANGE - 1:])
    assert (np.diff(recent) < 0).all() and recent[0] - recent[-1] < LOSS_TOLERANCE  # still falling, by too little
    assert candidate.history[0]["n_iter"] == len(losses) - 1  # (every iteration kept: its loss the lowest)
    assert candidate.stop_reason.startswith(f"holdout loss: not {LOSS_TOLERANCE:g} lower in {N_ITER_NO_CHANGE} "
                                            "iterations;"), candidate.stop_reason
