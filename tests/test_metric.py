"""``metric=``: what every holdout score measures, so what the search ranks, prunes and reports."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from automm import AutoMM, AutoMMClassifier, AutoMMRegressor
from automm.exceptions import InputError
from automm.recipes import from_recipe
from automm.training import classification_score

from helpers import tiny


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("weighted", [False, True])
def test_classification_scores_match_scikit_learn(weighted):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 300)
    predicted = np.where(rng.random(300) < 0.6, targets, rng.integers(0, 6, 300))  # class 5 only predicted
    weights = rng.uniform(0.1, 3.0, 300) if weighted else None
    expected = {"accuracy": skm.accuracy_score(targets, predicted, sample_weight=weights),
                "balanced_accuracy": skm.balanced_accuracy_score(targets, predicted, sample_weight=weights),
                "macro_f1": skm.f1_score(targets, predicted, average="macro", sample_weight=weights),
                "weighted_f1": skm.f1_score(targets, predicted, average="weighted", sample_weight=weights)}
    for metric, value in expected.items():
        assert classification_score(predicted, targets, metric, weights) == pytest.approx(value, abs=1e-12), metric
    binary_targets, binary_predicted = targets % 2, predicted % 2
    assert classification_score(binary_predicted, binary_targets, "f1", weights) == pytest.approx(
        skm.f1_score(binary_targets, binary_predicted, sample_weight=weights), abs=1e-12)
    assert classification_score(np.zeros(4), np.zeros(4), "f1") == 0.0  # no positive anywhere


def _skewed(n=120, seed=0):
    """Texts of three classes, one rare; one word of the text tells the class."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["common", "middle", "rare"], size=n, p=[0.7, 0.2, 0.1])
    texts = [f"{label} item {i % 11} {rng.choice(['x', 'y', 'z'])}" for i, label in enumerate(labels)]
    return texts, labels


@pytest.mark.parametrize("metric, score", [
    ("macro_f1", lambda y, p: skm.f1_score(y, p, average="macro")),
    ("balanced_accuracy", skm.balanced_accuracy_score),
])
def test_the_holdout_score_is_the_chosen_metric(metric, score):
    texts, labels = _skewed()
    X_val, y_val = texts[90:], labels[90:]
    params = tiny(max_epochs=2, encoders={"text": "hashed_ngram"}, metric=metric)
    est = AutoMMClassifier(**params).fit(texts[:90], labels[:90], X_val=X_val, y_val=y_val)
    by_argmax = est.classes_[est.predict_proba(X_val).argmax(1)]
    assert est.best_score_ == pytest.approx(score(y_val, by_argmax), abs=1e-9)
    # predict's rule (automm.decision) was fitted for the metric on these rows: never worse there
    assert score(y_val, est.predict(X_val)) >= est.best_score_ - 1e-9

    search = AutoMMClassifier(**tiny(encoders={"text": ["hashed_ngram"]}, metric=metric, n_trials=3,
                                     ensemble_size=1, max_epochs=2))
    search.fit(texts[:90], labels[:90], X_val=X_val, y_val=y_val)
    best = search.leaderboard_.set_index("number").loc[search.best_trial_, "score"]
    assert best == pytest.approx(score(y_val, search.classes_[search.predict_proba(X_val).argmax(1)]), abs=1e-9)
    assert best == search.leaderboard_["score"].max()


def test_regression_by_mean_absolute_error():
    rng = np.random.default_rng(1)
    picks = rng.integers(0, 4, 80)
    texts = [f"word{p} item {i % 5}" for i, p in enumerate(picks)]
    values = picks * 2.0 + rng.normal(scale=0.1, size=80)
    # on the CPU: under CUDA's mixed precision, outputs of differently sized batches differ in the 3rd digit
    est = AutoMMRegressor(**tiny(max_epochs=3, encoders={"text": "hashed_ngram"}, metric="mae", device="cpu"))
    est.fit(texts[:60], values[:60], X_val=texts[60:], y_val=values[60:])
    mae = skm.mean_absolute_error(values[60:], est.predict(texts[60:])) / est.target_std_  # standardised
    assert est.best_score_ == pytest.approx(-mae, rel=1e-4)


@pytest.mark.parametrize("metric, message", [
    ("macro-f1", "did you mean 'macro_f1'"),
    # scikit-learn's scorer of a many-class user: was told "did you mean 'accuracy'?", another metric
    ("top_k_accuracy", r"for 'top_k_accuracy', pick one of these and measure it on predict_proba \(e.g. "
                       r"cross_val_score\(model, X, y, scoring='top_k_accuracy'\)\)$"),
    ("f1", "'f1' is the F1 score of a binary problem's positive class, but y holds more than two classes"),
    ("r2", "'r2' is a regression metric, but y holds classes"),
    (3, "expected one of"),
])
def test_a_bad_metric_fails_before_training(metric, message):
    texts, labels = _skewed(40)
    with pytest.raises(InputError, match=f"metric: .*{message}"):
        AutoMM(**tiny(metric=metric)).fit(texts, labels)


def test_a_problem_type_that_the_labels_contradict_fails_before_training():
    """problem_type='binary' had trained on five classes, scoring one class's F1; a regressor
    asked for classes had done regression without a word."""
    texts = [f"t {i}" for i in range(40)]
    five = [f"c{i % 5}" for i in range(40)]
    with pytest.raises(InputError, match=r"problem_type: 'binary' needs two classes, but y holds 5 \('c0', 'c1', 'c2', "
                                         r"'c3', \.\.\.\); use 'multiclass' or 'auto'"):
        AutoMMClassifier(**tiny(problem_type="binary", metric="f1")).fit(texts, five)
    two = [f"c{i % 2}" for i in range(40)]
    with pytest.raises(InputError, match="metric: 'f1' is the F1 score of a binary problem's positive class, but "
                                         "problem_type is 'multiclass'"):
        AutoMM(**tiny(problem_type="multiclass", metric="f1")).fit(texts, two)
    with pytest.raises(InputError, match="problem_type: AutoMMRegressor does regression, not 'multiclass'"):
        AutoMMRegressor(**tiny(problem_type="multiclass")).fit(texts, np.arange(40) % 3)


def test_a_classification_metric_for_a_regression_target_fails():
    with pytest.raises(InputError, match="'macro_f1' is a classification metric"):
        AutoMMRegressor(**tiny(metric="macro_f1")).fit([f"t {i}" for i in range(30)], np.linspace(0, 1, 30))


def test_binary_f1_is_the_positive_class_s_and_tested_in_recipes():
    from automm.evaluation import compute_metrics
    from automm.recipes import validate_recipe

    y_true, y_pred = np.array(["no", "yes", "yes", "no"]), np.array(["yes", "yes", "no", "no"])
    assert compute_metrics("binary", y_true, y_pred, positive="yes")["f1"] == pytest.approx(0.5)
    assert "f1" not in compute_metrics("multiclass", y_true, y_pred)
    problems = validate_recipe({"data": {"sample": "emoji", "label": "category"},
                                "problem": {"type": "multiclass", "metric": "f1"}})
    assert any("binary problem's positive class" in str(p) for p in problems)


def test_a_recipe_names_the_metric_once():
    est = from_recipe({"problem": {"metric": "balanced_accuracy"}})
    assert est.metric == "balanced_accuracy"
    assert est.to_recipe()["problem"]["metric"] == "balanced_accuracy"
    assert from_recipe({}).metric == "auto"


def test_test_metrics_leave_weight_0_rows_out_as_the_fit_s_scores_do():
    from sklearn.metrics import f1_score

    from automm.evaluation import compute_metrics
    from automm.training import classification_score

    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 1, 2])
    w = np.array([1.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 1.0])  # class 2's rows all weigh 0
    kept = w > 0
    metrics = compute_metrics("multiclass", y_true, y_pred, sample_weight=w)
    assert metrics["n"] == int(kept.sum())
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true[kept], y_pred[kept], average="macro",
                                                          sample_weight=w[kept]))
    assert metrics["macro_f1"] == pytest.approx(classification_score(y_pred, y_true, "macro_f1", w))


def test_test_metrics_compare_int_predictions_with_labels_read_as_floats():
    from automm.evaluation import compute_metrics

    metrics = compute_metrics("binary", np.array([1.0, 0.0, 1.0]), np.array([1, 0, 0]), positive=1)
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["f1"] == pytest.approx(2 / 3)



def test_the_positive_class_is_compared_as_a_string_where_the_labels_were_read_back_as_strings():
    """Labels read back as strings (a CSV's "0"/"1" against int classes; True/False in a column with
    an empty cell, read as objects, against bool classes) are compared with the predictions as
    strings: the positive class must be one too, or no row is positive and f1 is 0."""
    from automm.evaluation import compute_metrics

    metrics = compute_metrics("binary", np.array(["1", "0", "1", "1"]), np.array([1, 0, 0, 1]), positive=1)
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["f1"] == pytest.approx(0.8)
    labels = np.array([True, False, True, True], dtype=object)
    metrics = compute_metrics("binary", labels, np.array([True, False, False, True]), positive=True)
    assert metrics["accuracy"] == pytest.approx(0.75) and metrics["f1"] == pytest.approx(0.8)

def test_class_averaged_scores_leave_out_classes_neither_in_the_targets_nor_predicted():
    # a holdout of classes 0, 2 and 4 of five, none predicted as 1 or 3: those two are no part of the average
    targets, predicted = np.array([0, 0, 2, 2, 4, 4]), np.array([0, 2, 2, 2, 4, 0])
    for metric, expected in (("macro_f1", skm.f1_score(targets, predicted, average="macro")),
                             ("balanced_accuracy", skm.balanced_accuracy_score(targets, predicted))):
        assert classification_score(predicted, targets, metric) == pytest.approx(expected, abs=1e-12), metric


def test_test_metrics_of_a_regression_are_in_the_targets_units():
    from automm.evaluation import compute_metrics

    result = compute_metrics("regression", [1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 1.0, 2.0])
    assert result["rmse"] == pytest.approx(2.0) and result["mae"] == pytest.approx(2.0)  # (the MSE is 4)
    assert result["r2"] == pytest.approx(1 - 16 / 5) and result["n"] == 4


def test_every_test_metric_weighs_the_rows_by_their_weights():
    from automm.evaluation import compute_metrics

    y, predicted = np.array(["a", "a", "b", "b", "c", "c"]), np.array(["a", "b", "b", "b", "c", "a"])
    weights = np.array([1.0, 3.0, 2.0, 1.0, 0.5, 4.0])
    result = compute_metrics("multiclass", y, predicted, sample_weight=weights)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted, sample_weight=weights))
    assert result["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, predicted, sample_weight=weights))
    for average in ("macro", "weighted"):
        assert result[f"{average}_f1"] == pytest.approx(skm.f1_score(y, predicted, average=average,
                                                                     sample_weight=weights))
