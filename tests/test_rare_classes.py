"""Classes of very few rows: a class of one row stays in training, and metric="f1" names its positive class."""

import numpy as np

from automm import AutoMMClassifier


def test_a_class_of_one_row_stays_in_training_and_the_rest_is_stratified():
    model = AutoMMClassifier()
    model.problem_type_ = "multiclass"
    targets = np.array([0] * 990 + [1] * 9 + [2])
    for seed in range(50):
        train, valid = model._holdout_split(targets, seed)
        assert 999 in train and 999 not in valid
        assert (targets[valid] == 1).sum() == 1  # stratified: the 9-row class is in the holdout
        assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(targets)


def test_f1_warns_when_its_positive_class_is_the_majority():
    import pandas as pd
    import pytest

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = np.where(X.a > 1.5, "fraud", "ok")
    with pytest.warns(UserWarning, match=r"metric='f1' scores the F1 of .*'ok'.*majority"):
        AutoMMClassifier(metric="f1", max_epochs=1, random_state=0).fit(X, y)
