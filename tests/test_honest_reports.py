import numpy as np
import pytest

from automm import AutoMM
from automm.pipeline import PreparedData, comparable_rows


def _data(targets, valid, metric):
    targets = np.asarray(targets)
    train = np.setdiff1d(np.arange(len(targets)), valid)
    return PreparedData(inputs=[], values={}, targets=targets, problem_type="multiclass", n_outputs=3,
                        train_index=train, valid_index=np.asarray(valid), seed=0, device=None, num_workers=0,
                        metric=metric)


def test_a_bags_class_averaged_score_covers_the_holdouts_classes():
    data = _data([0, 0, 1, 1, 0, 1, 2, 2], valid=[0, 2], metric="balanced_accuracy")
    assert comparable_rows(data, data.rows).tolist() == [0, 1, 2, 3, 4, 5]
    assert comparable_rows(_data([0, 0, 1, 1, 0, 1, 2, 2], [0, 2], "accuracy"), data.rows).tolist() == list(range(8))


def test_fit_warns_when_the_holdout_lacks_a_class_of_a_class_averaged_metric():
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=200).tolist()}
    y = np.where(np.array(X["x"]) > 0, "a", "b").astype(object)
    y[:1] = "rare"  # (a class of 2 rows or more has a row in the holdout: test_rare_classes)
    with pytest.warns(UserWarning, match="hold no row of 1 class \\('rare'\\).* say nothing of it \\(a class of a "
                                         "single row stays in training"):
        AutoMM(metric="balanced_accuracy", max_epochs=1, random_state=0).fit(X, list(y))


def test_fit_warns_when_the_holdout_lacks_the_positive_class_of_f1():
    """4 positives in 300 rows left none in the 30-row holdout: every model's F1 there was 0, silently.
    (The holdout holds one of them now: test_rare_classes; a single positive row stays in training,
    where no larger holdout_frac helps.)"""
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=300).tolist()}
    y = np.array(["no"] * 300, dtype=object)
    y[150] = "yes"
    with pytest.warns(UserWarning, match="hold no row of the positive class 'yes', so every model's validation F1 "
                                         "is 0") as caught:
        AutoMM(metric="f1", max_epochs=1, random_state=0).fit(X, list(y))
    assert not [w for w in caught if "holdout_frac" in str(w.message)]


def _table(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return {"x": x.tolist(), "z": rng.normal(size=n).tolist()}, np.where(x > 0, "a", "b").tolist()


def test_fit_summary_says_what_the_validation_score_was_measured_on(tmp_path):
    """A holdout score of 80 rows and an out-of-fold one of 800 looked alike in fit_summary."""
    X, y = _table(200)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, y)
    summary = model.fit_summary()
    assert (summary["validation_on"], summary["validation_rows"]) == ("holdout", 20)
    loaded = AutoMM.load(model.save(tmp_path / "m"))
    assert (loaded.fit_summary()["validation_on"], loaded.fit_summary()["validation_rows"]) == ("holdout", 20)

    bagged = AutoMM(max_epochs=1, random_state=0, num_workers=0, bag_folds=3).fit(X, y).fit_summary()
    assert (bagged["validation_on"], bagged["validation_rows"]) == ("out-of-fold", 200)  # a bag folds every row

    Xv, yv = _table(30, seed=1)
    given = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, y, X_val=Xv, y_val=yv).fit_summary()
    assert (given["validation_on"], given["validation_rows"]) == ("X_val", 30)

    tiny_X, tiny_y = _table(8, seed=2)
    with pytest.warns(UserWarning, match="too few to hold any out"):
        tiny = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(tiny_X, tiny_y).fit_summary()
    assert (tiny["validation_on"], tiny["validation_rows"]) == ("training rows", 8)


def test_a_searchs_summary_names_the_rows_its_kept_models_score_is_on():
    X, y = _table(200)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=0, n_trials=3).fit(X, y)
    summary = model.fit_summary()
    board = model.leaderboard_.set_index("number")
    if "ensemble" in summary:
        assert summary["validation_on"] in ("holdout", "out-of-fold")
        assert summary["validation_rows"] == (20 if summary["validation_on"] == "holdout" else 200)
    else:
        assert summary["validation_rows"] == board.loc[summary["best_trial"], "rows"]


def test_predict_proba_is_float64_and_its_rows_sum_to_one():
    """float32 rows summed to 1 within 2.4e-7 only: assert_allclose(p.sum(1), 1) failed on 30 of 108 rows."""
    X, y = _table(120)
    labels = np.where(np.asarray(X["z"]) > 0.5, "c", np.asarray(y, dtype=object)).tolist()
    proba = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, labels).predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=0, atol=1e-12)


def test_a_searchs_bags_and_their_ensemble_are_scored_on_the_same_rows():
    """Under macro F1 a bag's score covers the holdout's classes, but leaderboard_ gave it every
    row, and the ensemble of bags was scored on every row: 0.13 against its members' 0.27 and 0.22."""
    rng = np.random.default_rng(0)
    y = np.array([f"c{i % 4}" for i in range(200)] + [f"r{i}" for i in range(10)])  # 10 classes of one row
    X = {"x": (rng.normal(size=len(y)) + np.array([int(v[1:]) * (3 if v[0] == "r" else 1) for v in y])).tolist()}
    with pytest.warns(UserWarning, match="validation rows hold no row of 10 classes"):
        model = AutoMM(n_trials=2, bag_folds=3, metric="macro_f1", max_epochs=2, random_state=0, num_workers=0,
                       search_space={"linear_model": False, "neighbors_model": False, "warm_start": False}).fit(X, y)
    summary, board = model.fit_summary(), model.leaderboard_
    assert summary["validation_on"] == "out-of-fold" and "ensemble" in summary
    assert summary["validation_rows"] == 200 and set(board["rows"]) == {200}  # the rows of the holdout's 4 classes
    assert summary["validation_score"] >= board["score"].max() - 0.05


def test_predicts_own_score_is_on_the_rows_of_the_validation_score():
    """A bag's validation score leaves out the rows of classes the holdout lacks (comparable_rows);
    predict's own score counted them: a class of one row, wrong out of fold, made it 0.64 beside a
    validation score of 0.77 for decisions chosen because they scored better."""
    from automm.pipeline import decided_score

    data = _data([0, 0, 0, 1, 1, 1, 2], valid=[0, 3], metric="balanced_accuracy")
    outputs = np.log(np.array([[.9, .1, 0], [.9, .1, 0], [.4, .6, 0], [.1, .9, 0], [.1, .9, 0], [.1, .9, 0],
                               [.5, .5, 0]]) + 1e-6)
    score = decided_score(data, outputs, data.rows, np.array([1.0, 0.5, 1.0]))
    assert score == pytest.approx(1.0)  # rows 0-5, classes 0 and 1: each right under the weights; not (1 + 1 + 0) / 3
