"""Several targets per row (multi-output) and tags (multi-label): automm fits one target, so each such ``y``
is refused before any work, saying how scikit-learn's wrappers fit it."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.multioutput import MultiOutputClassifier

import automm.estimator
from automm import AutoMMClassifier, AutoMMRegressor, InputError

from helpers import tiny

TEXTS = pd.DataFrame({"title": ["red cotton shirt", "blue denim jeans", "plain grey mug", "red and blue cap",
                                "green wool socks", "yellow rain coat"]}, index=[10, 11, 12, 13, 14, 15])
TAGS = [["red", "shirt"], ["blue"], [], ["red", "blue"], ["green"], ["yellow"]]
MULTILABEL_WAY = (r"automm fits one target: for tags \(several labels per sample\), fit one model per tag on a "
                  r"0/1 column each:\n    Y = sklearn\.preprocessing\.MultiLabelBinarizer\(\)\.fit_transform\(y\)\n"
                  r"    model = sklearn\.multioutput\.MultiOutputClassifier\(AutoMMClassifier\(\)\)\.fit\(X, Y\)$")


@pytest.fixture
def no_work(monkeypatch):
    """Fails a fit that gets as far as reading its columns' roles (y is read first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the fit read its columns before refusing y")

    monkeypatch.setattr(automm.estimator, "infer_roles", refuse)


@pytest.fixture
def no_training(monkeypatch):
    """Fails a fit that starts training (y_val is read after X's columns, before any training)."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", refuse)


@pytest.mark.parametrize("y, seen", [
    (TAGS, r"lists of them in 6 of 6 samples \(row 0: \['red', 'shirt'\]\)"),  # numpy: "inhomogeneous shape"
    (pd.Series(TAGS, index=TEXTS.index), r"lists of them in 6 of 6 samples \(index 10: \['red', 'shirt'\]\)"),
    (pd.Series([tuple(t) for t in TAGS]), r"tuples of them in 6 of 6 samples \(row 0: \('red', 'shirt'\)\)"),
    ([set(t) for t in TAGS], r"sets of them in 6 of 6 samples \(row 0: \{'(red|shirt)', '(red|shirt)'\}\)"),
    (pd.Series([frozenset(t) for t in TAGS]), r"frozensets of them in 6 of 6"),
    ([np.array(t, dtype=str) for t in TAGS], r"arrays of them in 6 of 6 samples \(row 0: \['red', 'shirt'\]\)"),
    (["shirt", ["blue", "jeans"], "mug", "cap", "socks", "coat"], r"lists of them in 1 of 6 samples \(row 1: "),
    ([["a", "b"]] * 6 + [["c"]], None),  # (7 labels for 6 rows: the tags are seen first)
])
def test_tags_per_sample_are_refused_before_any_work_naming_the_multilabel_way(y, seen, no_work):
    """A list of tags per sample ended in numpy's "inhomogeneous shape" ValueError, scikit-learn's
    "legacy multi-label data representation" one, or "cannot infer the problem type from labels of
    type 'unknown'" (sets), none naming y."""
    seen = seen or r"lists of them in 7 of 7 samples"
    with pytest.raises(InputError, match=r"^y: expected one label per sample, got " + seen + r".*; "
                                         + MULTILABEL_WAY):
        AutoMMClassifier(**tiny()).fit(TEXTS, y)


def test_tags_to_validate_on_or_as_amounts_get_their_own_way(no_training):
    with pytest.raises(InputError, match=r"^y_val: expected one label per sample, got lists of them in 6 of 6 "
                                         r"samples .*fit one model per tag with X_val and its 0/1 column of y_val"):
        AutoMMClassifier(**tiny()).fit(TEXTS, list("abcabc"), X_val=TEXTS, y_val=TAGS)
    with pytest.raises(InputError, match=r"^y: expected one number per sample, got lists of them in 2 of 6 .*"
                                         r"MultiOutputRegressor\(AutoMMRegressor\(\)\)\.fit\(X, Y\)"):
        AutoMMRegressor(**tiny()).fit(TEXTS, [1.0, [2.0, 3.0], 1.0, 2.0, [1.0], 3.0])


def test_tags_given_to_score_name_the_score_of_a_model_of_tags():
    model = AutoMMClassifier(**tiny(max_epochs=1)).fit(TEXTS, list("abcabc"))
    with pytest.raises(InputError, match=r"^y: expected one label per sample, got lists of them in 6 of 6 samples "
                                         r".*score a model of tags, .*MultiOutputClassifier"):
        model.score(TEXTS, TAGS)


def test_rows_of_as_many_tags_read_as_several_targets_mention_tags_too(no_work):
    """Equal-length rows are several targets' rows, as scikit-learn reads them (a 2-d y), but a list
    of word rows may be tags: the refusal names both ways; a 2-d array of numbers, only the first."""
    rows = [["red", "shirt"], ["blue", "jeans"], ["grey", "mug"], ["red", "cap"], ["green", "socks"], ["yellow", "coat"]]
    with pytest.raises(InputError, match=r"shape \(6, 2\) \(for several targets, one model each: .*; for a list of "
                                         r"tags per sample, one 0/1 column per tag: "
                                         r"sklearn\.preprocessing\.MultiLabelBinarizer\(\)\.fit_transform\(y\)\)$"):
        AutoMMClassifier(**tiny()).fit(TEXTS, rows)
    with pytest.raises(InputError) as refused:
        AutoMMClassifier(**tiny()).fit(TEXTS, np.zeros((6, 2)))
    assert "MultiLabelBinarizer" not in str(refused.value)


def test_a_y_val_of_several_targets_names_a_model_per_target_not_the_wrapper_that_passed_it(no_training):
    """MultiOutputClassifier passes fit's y_val to each target's model whole: the refusal told the user
    to use MultiOutputClassifier, which they were using."""
    targets = pd.DataFrame({"colour": list("rbgrgy"), "kind": list("sjmcsc")}, index=TEXTS.index)
    with pytest.raises(InputError) as refused:
        MultiOutputClassifier(AutoMMClassifier(**tiny())).fit(TEXTS, targets, X_val=TEXTS, y_val=targets)
    message = str(refused.value)
    assert re.match(r"^y_val: expected one label column, got a DataFrame with 2 columns \(for several targets, one "
                    r"model each, given its own column: models = \{c: AutoMMClassifier\(\)\.fit\(X, Y\[c\], "
                    r"X_val=X_val, y_val=Y_val\[c\]\) for c in Y\}; sklearn\.multioutput's MultiOutputClassifier "
                    r"passes y_val to each target's model whole\)$", message), message
    with pytest.raises(InputError, match=r"models = \{c: AutoMMRegressor\(\)\.fit\(X, Y\[c\], X_val=X_val"):
        AutoMMRegressor(**tiny()).fit(TEXTS, np.arange(6.0), X_val=TEXTS, y_val=np.ones((6, 2)))


def test_sparse_labels_say_to_make_them_dense(no_work):
    """A sparse tag indicator (MultiLabelBinarizer(sparse_output=True)) was "a 1-d sequence of labels,
    got shape ()": MultiOutputClassifier passes each model a sparse column."""
    indicator = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]]))
    with pytest.raises(InputError, match=r"^y: got a scipy sparse matrix of shape \(6, 1\); labels must be dense: "
                                         r"pass y\.toarray\(\)\.ravel\(\) .*give it Y\.toarray\(\)"):
        MultiOutputClassifier(AutoMMClassifier(**tiny())).fit(TEXTS, indicator)
    with pytest.raises(InputError, match=r"^y: got a scipy sparse matrix of shape \(6, 3\); labels must be dense: "
                                         r"pass y\.toarray\(\) \(for several targets, one model each: "
                                         r"sklearn\.multioutput\.MultiOutputClassifier"):
        AutoMMClassifier(**tiny()).fit(TEXTS, indicator)


def test_a_tag_that_every_row_has_or_none_says_to_leave_its_column_out(no_training):
    """MultiOutputClassifier fits each tag's 0/1 column alone: a tag no training row has said only
    "only one class (0) in the labels", not which column nor what to do."""
    indicator = np.array([[0, 1], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])  # no row has the first tag
    with pytest.raises(InputError, match=r"^y: only one class \(0\) in the labels; classification needs at least 2 "
                                         r"\(if it is a tag's 0/1 column, .*: every training row has the tag, or none; leave "
                                         r"such columns out, e\.g\. Y = Y\[:, Y\.min\(axis=0\) != Y\.max\(axis=0\)\]\)$"):
        MultiOutputClassifier(AutoMMClassifier(**tiny())).fit(TEXTS, indicator)
    with pytest.raises(InputError, match=r"^y: only one class \('x'\) in the labels; classification needs at least 2$"):
        AutoMMClassifier(**tiny()).fit(TEXTS, ["x"] * 6)
