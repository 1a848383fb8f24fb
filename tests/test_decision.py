"""The decision rule (automm.decision): class weights fitted for the metric, used by predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from automm import AutoMM
from automm.decision import PRIOR_EXPONENTS, class_priors, decide, fit_decision_weights
from automm.training import classification_score


def test_class_priors_are_weighted_shares_with_a_floor():
    priors = class_priors(np.array([0, 0, 0, 1]), 3)
    assert priors.sum() == pytest.approx(1.0)
    assert priors[0] / priors[1] == pytest.approx(3.0) and priors[2] == pytest.approx(0.5 * priors[1])
    weighted = class_priors(np.array([0, 1]), 2, weights=np.array([1.0, 3.0]))
    assert weighted.tolist() == pytest.approx([0.25, 0.75])


def test_decide_weighs_probabilities():
    logits = np.log(np.array([[0.7, 0.3], [0.9, 0.1]]))
    assert decide(logits).tolist() == [0, 0]
    assert decide(logits, np.array([1.0, 4.0])).tolist() == [1, 0]  # 0.3 * 4 > 0.7; 0.1 * 4 < 0.9


def _rare_class_holdout(n_common=900, n_rare=100, seed=0):
    """Outputs of a calibrated model that never gives the rare class (1) more than 0.45."""
    rng = np.random.default_rng(seed)
    targets = np.array([0] * n_common + [1] * n_rare)
    p_rare = np.where(targets == 1, rng.uniform(0.1, 0.45, len(targets)), rng.uniform(0.0, 0.2, len(targets)))
    return np.log(np.stack([1 - p_rare, p_rare], 1)), targets


def test_weights_are_fitted_for_the_metric_and_only_when_they_help():
    outputs, targets = _rare_class_holdout()
    priors = class_priors(targets, 2)
    assert classification_score(decide(outputs), targets, "balanced_accuracy") == 0.5  # argmax: never the rare class
    weights = fit_decision_weights(outputs, targets, priors, "balanced_accuracy")
    assert weights is not None and weights[1] > weights[0] and weights.max() == 1.0
    alphas = [a for a in PRIOR_EXPONENTS if np.allclose(weights, (priors ** -a) / (priors ** -a).max())]
    assert len(alphas) == 1 and alphas[0] > 0
    assert classification_score(decide(outputs, weights), targets, "balanced_accuracy") > 0.8
    assert fit_decision_weights(outputs, targets, priors, "macro_f1") is not None
    assert fit_decision_weights(outputs, targets, priors, "accuracy") is None  # argmax is accuracy's rule
    confident = np.log(np.eye(2)[targets] * 0.98 + 0.01)  # argmax is already perfect: nothing to change
    assert fit_decision_weights(confident, targets, priors, "balanced_accuracy") is None
    assert fit_decision_weights(np.full_like(outputs, np.nan), targets, priors, "macro_f1") is None


def _texts(n, seed):
    """A rare class (10%) whose marker word also appears in 10% of the common class's texts:
    a calibrated model gives the rare class about 0.4 where the word is, never the argmax."""
    rng = np.random.default_rng(seed)
    filler = ["red", "blue", "green", "small", "large", "round", "square", "soft", "hard", "bright", "dark", "old"]
    labels = np.where(rng.random(n) < 0.1, "rare", "common")
    texts = []
    for label in labels:
        words = list(rng.choice(filler, 4))
        if rng.random() < (0.6 if label == "rare" else 0.1):
            words.insert(int(rng.integers(0, 4)), "zeta")
        texts.append(" ".join(words))
    return texts, labels


SMALL = dict(encoders={"text": {"name": "hashed_ngram", "n_buckets": 1024, "emb_dim": 16, "output_dim": 16}},
             fusion={"name": "concat", "proj_dim": 16, "hidden_dim": 16}, augmentations=None, max_epochs=8,
             batch_size=64, learning_rate=0.01, holdout_frac=0.3, num_workers=0, random_state=0)


def test_predict_follows_the_metric_and_the_rule_is_saved(tmp_path):
    X, y = _texts(800, seed=0)
    X_test, y_test = _texts(1000, seed=1)
    model = AutoMM(metric="balanced_accuracy", **SMALL).fit(X, y)
    weights = dict(zip(model.classes_, model.decision_weights_))
    assert weights["rare"] > weights["common"]
    assert model.fit_summary()["decision_weights"] == {c: pytest.approx(w) for c, w in weights.items()}
    by_rule = model.predict(X_test)
    by_argmax = model.classes_[model.predict_proba(X_test).argmax(1)]
    codes = {c: i for i, c in enumerate(model.classes_)}

    def balanced(predicted):
        return classification_score(np.array([codes[p] for p in predicted]), np.array([codes[t] for t in y_test]),
                                    "balanced_accuracy")

    assert balanced(by_rule) > balanced(by_argmax) + 0.1
    path = model.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "automm.json").read_text())
    # (6: its logits' temperature; 11, which holds both: its hashed_ngram keeps its fitted buckets' rows)
    assert manifest["format_version"] == max(6 if "temperature" in manifest else 5, 11)
    from automm.persistence import _format_version_of_outputs
    assert _format_version_of_outputs(None, model.decision_weights_) == 5
    np.testing.assert_array_equal(AutoMM.load(path).predict(X_test), by_rule)

    plain = AutoMM(**SMALL).fit(X, y)  # accuracy: the most probable class
    assert plain.decision_weights_ is None and "decision_weights" not in plain.fit_summary()
    np.testing.assert_array_equal(plain.predict(X_test), plain.classes_[plain.predict_proba(X_test).argmax(1)])


def test_the_command_line_reports_the_rule(tmp_path, capsys):
    import pandas as pd
    import yaml

    from automm.cli import main

    X, y = _texts(800, seed=0)
    pd.DataFrame({"text": X, "label": y}).to_csv(tmp_path / "rare.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "rare.csv", "label": "label", "column_types": {"text": "text"}},
        "problem": {"type": "multiclass", "metric": "balanced_accuracy"},
        "components": {"encoders": {"text": SMALL["encoders"]["text"]}, "fusion": SMALL["fusion"],
                       "augmentations": None},
        "training": {k: SMALL[k] for k in ("max_epochs", "batch_size", "learning_rate", "holdout_frac", "num_workers")},
        "output": {"dir": str(tmp_path / "model")}, "seed": 0}))
    assert main(["fit", str(tmp_path / "recipe.yaml")]) == 0
    out = capsys.readouterr().out
    assert "class probabilities weighted for the metric: rare 1, common 0." in out


def test_binary_f1_of_the_positive_class():
    from sklearn.metrics import f1_score

    from automm.evaluation import positive_class

    X, y = _texts(800, seed=0)
    X_test, y_test = _texts(1000, seed=1)
    model = AutoMM(metric="f1", **SMALL).fit(X, y)
    assert positive_class(model) == "rare" and model.problem_type_ == "binary"
    weights = dict(zip(model.classes_, model.decision_weights_))
    assert weights["rare"] > weights["common"]
    by_argmax = model.classes_[model.predict_proba(X_test).argmax(1)]
    by_rule = model.predict(X_test)
    assert f1_score(y_test == "rare", by_rule == "rare") > f1_score(y_test == "rare", by_argmax == "rare") + 0.1


def test_the_summary_gives_the_score_of_predicts_own_decisions(tmp_path):
    """validation_score is the most probable class's; with decision weights, predict decides
    otherwise, and its own score on those rows (which chose the weights) was nowhere."""
    X, y = _texts(800, seed=0)
    X_val, y_val = _texts(300, seed=2)
    model = AutoMM(metric="balanced_accuracy", **SMALL).fit(X, y, X_val=X_val, y_val=y_val)
    assert model.decision_weights_ is not None
    codes = {c: i for i, c in enumerate(model.classes_)}
    truth = np.array([codes[t] for t in y_val])

    def balanced(predicted):
        return classification_score(np.array([codes[p] for p in predicted]), truth, "balanced_accuracy")

    summary = model.fit_summary()
    assert summary["validation_score"] == pytest.approx(balanced(model.classes_[model.predict_proba(X_val).argmax(1)]))
    assert summary["predict_validation_score"] == pytest.approx(balanced(model.predict(X_val)))
    assert summary["predict_validation_score"] > summary["validation_score"]
    assert AutoMM.load(model.save(tmp_path / "m")).fit_summary()["predict_validation_score"] == \
        pytest.approx(summary["predict_validation_score"])
    assert "predict_validation_score" not in AutoMM(**SMALL).fit(X, y).fit_summary()  # argmax: the one score


def test_a_lone_classifiers_probabilities_are_calibrated_on_its_holdout(tmp_path):
    """An ensemble's members were temperature-scaled, a lone model not: label smoothing floored a
    rare class's probabilities (mean predicted share 1.4-1.8 times its frequency) and one searched
    model scored worse than the base rate on the Brier score."""
    X, y = _texts(800, seed=0)
    X_val, y_val = _texts(300, seed=2)
    model = AutoMM(**{**SMALL, "label_smoothing": 0.1}).fit(X, y, X_val=X_val, y_val=y_val)
    assert model.temperature_ != 1.0
    codes = {c: i for i, c in enumerate(model.classes_)}
    truth = np.array([codes[t] for t in y_val])
    raw = model._raw_outputs((X_val,)) / model.temperature_

    def log_loss(probabilities):
        return float(-np.log(probabilities[np.arange(len(truth)), truth]).mean())

    proba = model.predict_proba(X_val)
    np.testing.assert_allclose(proba, torch.softmax(torch.from_numpy(raw * model.temperature_), 1).numpy(), atol=1e-6)
    assert log_loss(proba) < log_loss(torch.softmax(torch.from_numpy(raw), 1).numpy())
    np.testing.assert_array_equal(model.predict(X_val), model.classes_[proba.argmax(1)])  # accuracy: argmax still
    loaded = AutoMM.load(model.save(tmp_path / "m"))
    assert loaded.temperature_ == model.temperature_
    np.testing.assert_allclose(loaded.predict_proba(X_val), proba, atol=1e-6)


@pytest.mark.parametrize("searched", [False, True])
def test_a_bag_kept_alone_is_calibrated_on_its_out_of_fold_outputs(searched, monkeypatch):
    """A bag kept alone (``bag_folds``, or a search whose pool is one bag) kept every fold model at
    temperature 1: its ``predict_proba`` kept the under-confidence of label smoothing, although
    a lone model is scaled."""
    import automm.estimator
    import automm.search
    from automm.ensemble import calibrate
    from automm.pipeline import train_bagged

    bags = []
    for module in (automm.estimator, automm.search):
        monkeypatch.setattr(module, "train_bagged", lambda data, config, n, **kw: bags.append(
            (data, train_bagged(data, config, n, **kw))) or bags[-1][1])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = np.where(x[:, 0] + 0.5 * rng.normal(size=300) > 0, "a", "b")
    params = dict(bag_folds=3, max_epochs=4, label_smoothing=0.1, num_workers=0, random_state=0)
    if searched:
        params.update(n_trials=1, search_space={"fusion": ["concat"]}, ensemble_size=1)
    model = AutoMM(**params).fit({f"f{i}": x[:, i] for i in range(3)}, y)
    (data, bag), = bags
    wanted = calibrate([bag.oof_outputs[data.rows]], data.targets[data.rows], "binary")[0]
    assert wanted != pytest.approx(1.0, abs=0.05) and len(model.ensemble_.members) == 3
    assert [member.temperature for member in model.ensemble_.members] == pytest.approx([wanted] * 3)
