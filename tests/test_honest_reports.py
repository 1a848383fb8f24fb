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
    y[:2] = "rare"
    with pytest.warns(UserWarning, match="hold no row of 1 class \\('rare'\\)"):
        AutoMM(metric="balanced_accuracy", max_epochs=1, random_state=0).fit(X, list(y))
