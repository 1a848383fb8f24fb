"""Classes of very few rows: a class of one row stays in training, and metric="f1" names its positive class."""

import numpy as np
import pytest

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


def test_a_holdout_of_fewer_rows_than_classes_leaves_every_class_in_training():
    """15 classes of 2 rows, a 3-row holdout (unstratified): both rows of a class were held out
    for 11% of the seeds, a class no model trained on and the holdout judged."""
    model = AutoMMClassifier()
    model.problem_type_ = "multiclass"
    for targets in (np.repeat(np.arange(15), 2), np.repeat(np.arange(12), [1] + [2] * 10 + [9])):
        for seed in range(100):
            train, valid = model._holdout_split(targets, seed)
            assert len(valid) == 3 and set(targets[train]) == set(targets)
            assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(targets)


def test_f1_warns_when_its_positive_class_is_the_majority():
    import pandas as pd
    import pytest

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = np.where(X.a > 1.5, "fraud", "ok")
    with pytest.warns(UserWarning, match=r"metric='f1' scores the F1 of .*'ok'.*majority"):
        AutoMMClassifier(metric="f1", max_epochs=1, random_state=0).fit(X, y)


def test_a_categorical_target_is_classes_whatever_its_values():
    """Shoe sizes 8.5 / 9.5 as a pandas Categorical were regressed on under problem_type="auto"
    (and refused by AutoMMClassifier): the dtype says they are classes, as their strings would."""
    import pandas as pd

    from automm import AutoMM

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60)})
    sizes = pd.Series(pd.Categorical(np.where(X.a > 0, 8.5, 9.5)))
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(X, sizes)
    assert model.problem_type_ == "binary" and model.classes_.tolist() == [8.5, 9.5]
    assert set(model.predict(X)) <= {8.5, 9.5}
    assert AutoMMClassifier(max_epochs=1, num_workers=0).fit(X, sizes.to_frame()).problem_type_ == "binary"
    three = pd.Categorical(np.select([X.a < -0.5, X.a < 0.5], [8.5, 9.0], 9.5))
    assert AutoMM(max_epochs=1, num_workers=0).fit(X, three).problem_type_ == "multiclass"
    assert AutoMM(max_epochs=1, num_workers=0).fit(X, np.where(X.a > 0, 8.5, 9.5)).problem_type_ == "regression"


def test_a_regressor_regresses_on_a_categorical_target_of_numbers():
    import pandas as pd

    from automm import AutoMMRegressor

    X = pd.DataFrame({"a": np.arange(60.0)})
    sizes = pd.Categorical(np.where(X.a > 30, 8.5, 9.5))
    assert AutoMMRegressor(max_epochs=1, num_workers=0).fit(X, sizes).problem_type_ == "regression"


def test_a_few_distinct_names_are_text_not_categories():
    """19 distinct emoji names were read as categories: every new name was 'missing' and the model
    answered one class for every test row (0.111, chance)."""
    from automm.roles import infer_role_builtin

    assert infer_role_builtin(["grinning face", "red apple", "flag: egypt", "cat", "rocket"]) == "text"
    assert infer_role_builtin(["red", "blue", "red", "green", "blue"]) == "categorical"  # repeats: categories


def test_under_10_rows_fit_says_its_scores_are_on_the_training_rows():
    import pytest

    from automm import AutoMM

    with pytest.warns(UserWarning, match=r"9 samples are too few to hold any out: the validation score"):
        model = AutoMM(max_epochs=2, num_workers=0, random_state=0).fit({"x": np.arange(9.0)}, [0, 1] * 4 + [0])
    assert model.fit_summary()["validation_score"] is not None


def test_a_row_of_a_duplicated_index_is_named_with_its_position():
    """"first at index 2" named two rows (df.loc[2] returned both)."""
    import pandas as pd
    import pytest

    from automm import AutoMM, InputError

    X = pd.DataFrame({"a": np.arange(20.0)}, index=[i // 2 for i in range(20)])
    y = pd.Series(["x", "y"] * 10, index=X.index)
    y.iloc[5] = None
    with pytest.raises(InputError, match=r"first at index 2 \(row 5\)"):
        AutoMM(max_epochs=1).fit(X, y)


def test_bag_folds_stay_stratified_when_a_class_has_fewer_rows_than_folds():
    """One class of one row made the folds unstratified: a class of 2 rows then fell in one fold
    (fashion subCategory: 4 of 20 seeds), whose model never saw it while scoring its rows."""
    from automm.pipeline import PreparedData, _folds

    targets = np.array([0] * 40 + [k // 2 for k in range(2, 62)] + [31], dtype=np.float32)  # 30 classes of 2, one of 1
    data = PreparedData(inputs=[], values={}, targets=targets, problem_type="multiclass", n_outputs=32,
                        train_index=np.arange(len(targets)), valid_index=np.arange(0), seed=0, device=None,
                        num_workers=0)
    counts = np.bincount(targets.astype(int))
    folds = _folds(data, 5)
    assert sorted(np.concatenate([valid for _, valid in folds]).tolist()) == list(range(len(targets)))
    for train, _ in folds:
        trained = np.bincount(targets[train].astype(int), minlength=len(counts))
        assert (trained[counts >= 2] > 0).all()


@pytest.mark.parametrize("seed", range(8))
def test_bag_folds_spread_each_class_when_every_class_is_smaller_than_the_folds(seed):
    """20 rows in classes of 2-4 (none of 5 rows): the folds were unstratified, and both rows of a
    class of 2 could fall in one fold, whose model never saw the class while scoring its rows."""
    from automm.pipeline import PreparedData, _folds

    targets = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6], dtype=np.float32)
    data = PreparedData(inputs=[], values={}, targets=targets, problem_type="multiclass", n_outputs=7,
                        train_index=np.arange(len(targets)), valid_index=np.arange(0), seed=seed, device=None,
                        num_workers=0)
    folds = _folds(data, 5)
    assert sorted(np.concatenate([valid for _, valid in folds]).tolist()) == list(range(len(targets)))
    assert sorted(len(valid) for _, valid in folds) == [4] * 5
    for train, _ in folds:
        assert set(targets[train].astype(int)) == set(range(7))


def test_the_holdout_is_stratified_when_every_class_has_rows_to_spare():
    """90 rows of one class, 10 of another, a 10-row holdout: one row of the small class each
    time. Unstratified, 0 to 4 of them were held out (the holdout's score then swung with the
    seed); the other holdout tests look only at classes of one or two rows. Each seed holds out
    its own rows (a seed ignored held out the same rows whatever random_state said)."""
    from automm import AutoMMClassifier

    model = AutoMMClassifier()
    model.problem_type_ = "binary"
    targets = np.array([0] * 90 + [1] * 10)
    holdouts = set()
    for seed in range(20):
        train, valid = model._holdout_split(targets, seed)
        assert len(valid) == 10 and (targets[valid] == 1).sum() == 1
        assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(targets)
        assert model._holdout_split(targets, seed)[1].tolist() == valid.tolist()  # the seed's holdout
        holdouts.add(tuple(valid))
    assert len(holdouts) > 10  # another seed, another holdout


def test_ten_rows_hold_one_out_and_nine_validate_on_the_training_rows():
    """The documented threshold: under 10 rows the holdout is the training rows (with a warning),
    from 10 rows on a row is held out."""
    from automm import AutoMMClassifier

    model = AutoMMClassifier()
    model.problem_type_ = "binary"
    train, valid = model._holdout_split(np.array([0, 1] * 5), 0)
    assert len(valid) == 1 and len(train) == 9 and valid[0] not in train
    with pytest.warns(UserWarning, match="9 samples are too few to hold any out"):
        train, valid = model._holdout_split(np.array([0, 1] * 4 + [0]), 0)
    assert train.tolist() == valid.tolist() == list(range(9))


@pytest.mark.parametrize("problem_type, targets", [
    ("multiclass", np.arange(60) % 3),                       # stratified
    ("regression", np.linspace(0.0, 1.0, 60)),               # plain k-fold
    ("multiclass", np.repeat(np.arange(15), 4)),             # every class smaller than the folds: spread
])
def test_bag_folds_follow_the_seed(problem_type, targets):
    """The folds are drawn from the fit's seed: another ``random_state`` bags on other folds, the
    same one on the same folds (a seed ignored gave every replicate and every seed one split)."""
    from automm.pipeline import PreparedData, _folds

    def folds(seed):
        data = PreparedData(inputs=[], values={}, targets=targets.astype(np.float32), problem_type=problem_type,
                            n_outputs=1 if problem_type == "regression" else int(targets.max()) + 1,
                            train_index=np.arange(len(targets)), valid_index=np.arange(0), seed=seed, device=None,
                            num_workers=0)
        return [valid.tolist() for _, valid in _folds(data, 5)]

    assert folds(3) == folds(3)
    assert folds(3) != folds(4)


@pytest.mark.parametrize("metric", ["balanced_accuracy", "macro_f1"])
def test_a_class_averaged_metrics_holdout_holds_every_class_of_two_rows_or_more(metric):
    """Fashion baseColour, 1,500 rows of 34 classes (nine of 2-5 rows): the stratified 150-row
    holdout held none of those nine, so the macro-F1 the search ranks by, and the decision
    weights fitted on it, knew nothing of them. Under a class-averaged metric it holds one row of
    each class of 2 rows or more, at the same size; a class's last training row and a class of one
    row stay in training. Accuracy's holdout is unchanged."""
    counts = [333, 187, 174, 115, 110, 98, 95, 87, 69, 35, 27, 26, 24, 18, 16, 15, 10, 8, 8, 7, 6, 5, 4, 4,
              3, 3, 3, 2, 2, 2, 1, 1, 1, 1]
    targets = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(0)
    targets = targets[rng.permutation(len(targets))]
    counts = np.bincount(targets)
    for seed in range(5):
        plain = AutoMMClassifier()
        plain.problem_type_ = "multiclass"
        before = plain._holdout_split(targets, seed)
        model = AutoMMClassifier(metric=metric)
        model.problem_type_ = "multiclass"
        train, valid = model._holdout_split(targets, seed)
        assert set(targets[valid]) == set(np.flatnonzero(counts >= 2))
        assert set(targets[train]) == set(range(len(counts)))
        assert len(valid) == len(before[1]) == 150
        assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(targets)
        assert model._holdout_split(targets, seed)[1].tolist() == valid.tolist()  # the seed's holdout
        accuracy = AutoMMClassifier(metric="accuracy")
        accuracy.problem_type_ = "multiclass"
        assert accuracy._holdout_split(targets, seed)[1].tolist() == before[1].tolist()


def test_the_f1_holdout_holds_the_positive_class():
    """metric='f1' scores the positive class alone: 4 positives in 300 rows left none in the 30-row
    stratified holdout for every seed, so every model's validation F1 was 0 (the search ranked
    trials by loss alone and the decision weights learnt nothing), while macro_f1's held one."""
    targets = np.zeros(300, dtype=int)
    targets[[5, 50, 150, 250]] = 1
    for seed in range(5):
        model = AutoMMClassifier(metric="f1")
        model.problem_type_ = "binary"
        train, valid = model._holdout_split(targets, seed)
        assert targets[valid].sum() == 1 and len(valid) == 30 and len(train) == 270


@pytest.fixture
def many_classes(stop_at_training):
    """150 classes of 2 rows (``class-000`` ...), texts, and no training: a fit gets past every check."""
    labels = [f"class-{i // 2:03d}" for i in range(300)]
    texts = [f"title {i} of item {i // 2}" for i in range(300)]
    return texts, labels, stop_at_training


def test_a_label_of_many_classes_that_is_none_of_them_is_named_briefly_with_the_class_it_stands_for(many_classes):
    """``class_weight`` and ``y_val`` labels that are no class: with 150 classes the class_weight
    error listed every class (2 KB) and neither said which class a label stood for."""
    from automm.exceptions import InputError

    texts, labels, started = many_classes
    with pytest.raises(started):  # a dict naming some of the classes
        AutoMMClassifier(max_epochs=1, class_weight={"class-007": 2.0}).fit(texts, labels)
    cases = [
        (dict(class_weight={"Class-007": 2.0}), {},
         r"^class_weight: labels \['Class-007'\] are not among the 150 classes \['class-000', .*'class-019', \.\.\.\]; "
         r"1 of them are a class written otherwise \(e.g. 'Class-007' for the class 'class-007'"),
        (dict(class_weight={"clas-007": 2.0}), {}, r"; did you mean 'class-007'\?$"),
        (dict(class_weight={7: 2.0, 8: 1.0}), {},
         r"labels \[7, 8\] are not among .*; the labels are the classes themselves \('class-000', not 0, its "
         r"position in classes_\), as y holds them$"),
        (dict(class_weight={f"c{i}": 1.0 for i in range(40)}), {},
         r"labels \['c0', 'c1', 'c2', 'c3', 'c4', \.\.\.\] \(40 labels\) are not among"),
        ({}, dict(X_val=["another title", "one more title"], y_val=["class-000", "class 001 "]),
         r"^y_val: labels \['class 001 '\] do not occur in y; y holds the 150 classes \['class-000', .* \.\.\.\]; "
         r"did you mean 'class-001'\?$"),
    ]
    for params, fit_params, message in cases:
        with pytest.raises(InputError, match=message) as raised:
            AutoMMClassifier(max_epochs=1, **params).fit(texts, labels, **fit_params)
        assert len(str(raised.value)) < 700


@pytest.mark.parametrize("method", ["fit", "score"])
def test_the_line_that_leaves_missing_labels_out_leaves_blank_ones_out_too(method):
    """A blank label ("", "  ") is a missing one, but the line the error gave, ``keep = y.notna()``,
    kept it: run as told, the fit failed again on the same rows."""
    import re

    import pandas as pd

    from automm.exceptions import InputError
    from helpers import tiny

    texts = pd.Series([f"title {i} of item {i % 4}" for i in range(16)])
    y = pd.Series(["a", "b", "", "a", "  ", None, "b", "a"] * 2)
    model = AutoMMClassifier(**tiny(max_epochs=1))
    if method == "score":
        model.fit(texts[y.str.strip().fillna("") != ""], y[y.str.strip().fillna("") != ""])
    with pytest.raises(InputError, match=r"y: 6 missing labels") as raised:
        getattr(model, method)(texts, y)
    line = re.search(r"with pandas: keep = (.*); " + method + r"\(X\[keep\], y\[keep\]\)\)$", str(raised.value)).group(1)
    keep = eval(line, {"y": y, "np": np})
    assert y[keep].tolist() == ["a", "b", "a", "b", "a"] * 2
    getattr(model, method)(texts[keep], y[keep])  # now it runs


def test_a_holdout_too_large_for_the_classes_names_the_holdout_frac_that_fits():
    """16 rows of 15 classes: the default 10% holds out 2 rows and was refused with "use a smaller
    holdout_frac" (0.09, 0.05 or 0.01? the user guessed); one row per class named no way out."""
    from automm import InputError

    texts = [f"item {i} word{i % 15}" for i in range(16)]
    labels = [f"c{i % 15}" for i in range(16)]
    with pytest.raises(InputError, match=r"holdout_frac: 0.1 of the 16 samples holds out 2 and leaves 14 to train on, "
                                         r"fewer than the 15 classes .*use holdout_frac=0.093 or less \(at most 1 row "
                                         r"held out\), or pass X_val=, y_val="):
        AutoMMClassifier(max_epochs=1).fit(texts, labels)
    model = AutoMMClassifier(holdout_frac=0.093, max_epochs=1, num_workers=0, random_state=0).fit(texts, labels)
    assert model.fit_summary()["validation_rows"] == 1
    with pytest.raises(InputError, match=r"y: 15 classes among 15 samples, so no row can be held out .*a second row "
                                         r"of at least one class, or validation rows passed as X_val=, y_val="):
        AutoMMClassifier(max_epochs=1).fit(texts[:15], labels[:15])


def test_the_largest_holdout_frac_named_holds_out_no_more_rows_than_it_says():
    from automm.estimator import _largest_holdout_frac

    for n in range(2, 400):
        for rows in {1, 2, n // 3, n - 2}:
            if 1 <= rows < n:
                frac = _largest_holdout_frac(n, rows)
                assert 0 < frac < 1 and 1 <= max(1, int(round(frac * n))) <= rows, (n, rows, frac)
