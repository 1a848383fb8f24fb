"""Inputs in the containers pandas and friends offer: Decimal labels, records missing a key, structured arrays, misaligned indexes (fit, X_val, score), colliding and repeated names, resumed studies over Decimal or Int64 columns."""

import decimal
import warnings

import numpy as np
import pandas as pd
import pytest

from automm import AutoMMClassifier, AutoMMRegressor
from automm.data import as_table, declared_categorical
from automm.exceptions import InputError
from automm.study import _value_identity

KW = dict(max_epochs=1, random_state=0, augmentations=None)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 60
    colour = rng.choice(["red", "blue", "green"], n)
    X = pd.DataFrame({"colour": colour, "size": rng.normal(size=n)})
    y = pd.Series(np.where(colour == "red", "a", "b"), name="label")
    return X, y


def test_decimal_labels_are_numbers(table):
    X, y = table
    codes = y.map({"a": decimal.Decimal(1), "b": decimal.Decimal(2)})
    model = AutoMMClassifier(**KW).fit(X, codes)
    assert model.classes_.tolist() == [1, 2]
    prices = pd.Series([decimal.Decimal(str(round(v, 2))) for v in X["size"] * 10 + 50])
    assert AutoMMRegressor(**KW).fit(X, prices).problem_type_ == "regression"


def test_whole_numbers_beyond_64_bits_are_amounts_or_refused(table):
    """Token amounts in wei (SQL NUMERIC(78, 0)): as Decimals they were cast to -9223372036854775808
    ("every target ... is -9.22337e+18"), as Python ints a bare OverflowError."""
    X, _ = table
    wei = [decimal.Decimal(int((v + 5) * 1e19)) for v in X["size"]]
    for y in (wei, [int(v) for v in wei]):
        model = AutoMMRegressor(**KW).fit(X, y)
        assert model.target_mean_ == pytest.approx(np.mean([float(v) for v in wei]))
        assert np.all(model.predict(X) > 1e18)
        with pytest.raises(InputError, match=r"y: whole numbers beyond 64-bit integers .*problem_type='regression'"):
            AutoMMClassifier(**KW).fit(X, y)


def test_numpy_float_labels_in_an_object_array_are_not_cut_to_integers(table):
    """A list of np.float32 values (a column read row by row) in an object array took the path of
    Python ints: 0.5 and 1.5 became classes 0 and 1 without a word, and a regression's targets
    were truncated."""
    X, y = table
    halves = np.array([np.float32(0.5) if v == "a" else np.float32(1.5) for v in y], dtype=object)
    with pytest.raises(InputError, match=r"numbers that are not whole"):  # (as floats: scikit-learn's rule)
        AutoMMClassifier(**KW).fit(X, halves)
    amounts = np.array([np.float32(v) for v in X["size"] * 0.25], dtype=object)
    model = AutoMMRegressor(**KW).fit(X, amounts)
    assert model.target_mean_ == pytest.approx(float(np.mean(X["size"] * 0.25)), rel=1e-5)


def test_dict_keys_that_collide_as_strings_are_refused():
    with pytest.raises(InputError, match="differ as strings"):
        as_table(({1: ["a", "b"], "1": [1.0, 2.0]},))


def test_structured_array_is_a_table_of_its_fields(table):
    X, _ = table
    table_ = as_table((X.to_records(index=False),))
    assert table_.names == ["colour", "size"]


def test_a_record_without_an_optional_key_predicts(table):
    X, y = table
    model = AutoMMClassifier(**KW).fit(X, y)
    assert len(model.predict([{"colour": "red"}])) == 1  # 'size' missing in the only record
    with pytest.raises(InputError, match="rename 'Colour' to 'colour'"):
        model.predict([{"Colour": "red", "size": 1.0}])


def test_labels_in_another_index_order_warn(table):
    X, y = table
    with pytest.warns(UserWarning, match="another order"):
        AutoMMClassifier(**KW).fit(X, y.sample(frac=1, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoMMClassifier(**KW).fit(X, y.reset_index(drop=True))


def test_score_and_validation_labels_in_another_index_order_warn(table):
    X, y = table
    model = AutoMMClassifier(**KW).fit(X, y)
    with pytest.warns(UserWarning, match="y: its index holds the labels of X's index in another order"):
        model.score(X, y.sample(frac=1, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.score(X.sample(frac=1, random_state=0), y.sample(frac=1, random_state=0))  # aligned: no warning
    with pytest.warns(UserWarning, match="y_val: its index holds the labels of X_val's index in another order"):
        AutoMMClassifier(**KW).fit(X.iloc[:40], y.iloc[:40], X_val=X.iloc[40:],
                                   y_val=y.iloc[40:].sample(frac=1, random_state=0))


def test_sample_weights_in_another_index_order_warn(table):
    """A weight Series sorted apart from X was paired by position without a word: most rows trained
    (and were scored) with another row's weight, where labels so misaligned are warned about."""
    X, y = table
    weights = pd.Series(np.where(y == y.iloc[0], 3.0, 1.0), index=X.index)
    shuffled = weights.sample(frac=1, random_state=0)
    with pytest.warns(UserWarning, match=r"sample_weight: its index holds the labels of X's index in another order; "
                                         r"rows are paired by position, not by index, so most rows get another row's "
                                         r"weight; align them first \(sample_weight = sample_weight\.loc\[X\.index\]\)"):
        model = AutoMMClassifier(**KW).fit(X, y, sample_weight=shuffled)
    with pytest.warns(UserWarning, match=r"sample_weight: its index holds the labels of X's index in another order"):
        model.score(X, y, sample_weight=shuffled)
    with pytest.warns(UserWarning, match=r"sample_weight_val: its index holds the labels of X_val's index"):
        AutoMMClassifier(**KW).fit(X.iloc[:40], y.iloc[:40], X_val=X.iloc[40:], y_val=y.iloc[40:],
                                   sample_weight_val=weights.iloc[40:].sample(frac=1, random_state=0))
    with warnings.catch_warnings():  # aligned, or by position only: no warning
        warnings.simplefilter("error")
        AutoMMClassifier(**KW).fit(X, y, sample_weight=weights)
        model.score(X, y, sample_weight=shuffled.to_numpy())


def test_series_of_one_table_in_another_index_order_warn(table):
    X, y = table
    model = AutoMMClassifier(**KW).fit(X, y)
    shuffled = X["size"].sample(frac=1, random_state=0)  # the same rows in another order
    with pytest.warns(UserWarning, match=r"X\['size'\]: its index holds the labels of X\['colour'\]'s index in "
                                         r"another order.*pandas.DataFrame\(X\)"):
        model.predict({"colour": X["colour"], "size": shuffled})
    with pytest.warns(UserWarning, match="X input 1: its index holds the labels of X input 0's index"):
        AutoMMClassifier(**KW).fit(X["colour"], shuffled, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict({"colour": X["colour"], "size": X["size"]})
        model.predict({"colour": X["colour"], "size": shuffled.reset_index(drop=True)})


def test_repeated_columns_the_model_does_not_read_are_left_out_of_predict(table):
    X, y = table
    model = AutoMMClassifier(**KW).fit(X, y)
    ids = pd.DataFrame({"id": range(len(X))})
    joined = pd.concat([ids, X, ids], axis=1)  # two frames that each hold an 'id', as pandas.concat joins them
    np.testing.assert_array_equal(model.predict_proba(joined), model.predict_proba(X))
    with pytest.raises(InputError, match=r"\['size'\] more than once"):
        model.predict(pd.concat([X, X[["size"]]], axis=1))


def test_predict_reads_only_the_columns_of_fit(table, monkeypatch):
    import automm.data

    X, y = table
    model = AutoMMClassifier(**KW).fit(X, y)
    wide = pd.concat([X, pd.DataFrame(np.zeros((len(X), 50)), columns=[f"f{i}" for i in range(50)])], axis=1)
    expected = model.predict_proba(X)
    read = []
    series_values = automm.data._series_values
    monkeypatch.setattr(automm.data, "_series_values", lambda s: read.append(s.name) or series_values(s))
    np.testing.assert_array_equal(model.predict_proba(wide[["f3"] + list(X.columns)[::-1] + ["f7"]]), expected)
    assert sorted(read) == ["colour", "size"]  # not the 50 others: a wide frame's fields cost no lists


def test_pyarrow_table_has_feature_names(table):
    pa = pytest.importorskip("pyarrow")
    X, y = table
    model = AutoMMClassifier(**KW).fit(pa.Table.from_pandas(X), y)
    assert model.feature_names_in_.tolist() == ["colour", "size"]


def test_value_digests_read_numbers_as_the_encoder_does():
    assert _value_identity(3, "tabular") == _value_identity(3.0, "tabular")
    assert _value_identity(decimal.Decimal("1.5"), "tabular") != _value_identity(decimal.Decimal("2.5"), "tabular")
    assert _value_identity(pd.Timedelta(3, "s"), "tabular") != _value_identity(pd.Timedelta(4, "s"), "tabular")


def test_an_array_fitted_model_takes_a_dataframe_as_validation_data(table):
    X, y = table
    with pytest.warns(UserWarning, match="X_val has feature names"):
        AutoMMClassifier(**KW).fit(X.iloc[:45].to_numpy(dtype=object), y[:45], X_val=X.iloc[45:], y_val=y[45:])


def test_a_dataframe_made_from_an_array_has_no_feature_names_to_warn_about(table):
    """scikit-learn reads only string column names as feature names: pd.DataFrame(array) as X_val
    or at predict, for a model fitted on the array, was warned about as 'has feature names'."""
    X, y = table
    A = X.to_numpy(object)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = AutoMMClassifier(**KW).fit(A[:40], y[:40], X_val=pd.DataFrame(A[40:]), y_val=y[40:])
        assert model.predict(pd.DataFrame(A[40:])).shape == (20,)
    with pytest.warns(UserWarning, match="X has feature names"):
        model.predict(X.iloc[40:])


def test_score_with_labels_of_another_kind_names_y(table):
    """score(X, ['1', ...]) for classes 1, 2 raised scikit-learn's 'Mix of label input types'."""
    X, y = table
    codes = (y == "a").astype(int) + 1
    model = AutoMMClassifier(**KW).fit(X, codes)
    with pytest.raises(InputError, match=r"^y: labels are texts \('1', .*the model's classes numbers \(1, 2\)"):
        model.score(X, codes.astype(str))
    unseen = codes.copy()
    unseen.iloc[:3] = 7
    with pytest.warns(UserWarning, match=r"y: 3 of 60 labels are no class of the model \(7\)"):
        model.score(X, unseen)


def test_a_record_with_an_optional_key_left_out_and_an_extra_one_predicts(table):
    """An extra key sharing one word with a fitted one ('brand_name', 'name') was taken for its
    misspelling, and the record refused."""
    rng = np.random.default_rng(1)
    records = [{"size": float(rng.normal()), "name": f"item {i}"} for i in range(60)]
    labels = ["a" if r["size"] > 0 else "b" for r in records]
    model = AutoMMClassifier(**KW).fit(records, labels)
    assert model.predict([{"size": 0.5, "brand_name": "acme"}]).shape == (1,)


def _roles(x):
    from automm import get_registry
    from automm.data import infer_roles

    known = ["numeric", "categorical", "text", "datetime", "image"]
    return infer_roles(as_table((x,)), None, get_registry().plugin_manager, known)


def test_pyarrow_columns_given_one_by_one_are_their_values():
    """A pyarrow Table's columns (ChunkedArrays) or Arrays, positional or in a dict: their Python
    values, not pyarrow Scalars (numbers were read as text, image paths as text, nulls as present)."""
    pa = pytest.importorskip("pyarrow")
    sizes = pa.chunked_array([[1.5, None, 2.0] * 10, [3.5] * 10])
    colours = pa.array(["red", "blue", None, "green"] * 10)
    table = as_table(({"size": sizes, "colour": colours},))
    assert table.columns["size"][:3] == [1.5, None, 2.0] and table.columns["colour"][:3] == ["red", "blue", None]
    assert _roles({"size": sizes, "colour": colours}) == {"size": "numeric", "colour": "categorical"}
    assert as_table((sizes, colours)).columns["x1"][:3] == ["red", "blue", None]


def test_an_arrow_dictionary_column_is_declared_categorical():
    """pyarrow-backed pandas (read_parquet(dtype_backend="pyarrow")) reads a Categorical column as an
    Arrow dictionary: categories whatever its values, as the same column in numpy-backed pandas."""
    pa = pytest.importorskip("pyarrow")
    names = [f"Turtle Check Men Navy {i}" for i in range(40)]  # mostly unique, 5 words: text unless declared
    frame = pd.DataFrame({"line": pd.Categorical(names), "store": pd.Categorical(np.arange(40) % 4)})
    arrow = pa.Table.from_pandas(frame).to_pandas(types_mapper=pd.ArrowDtype)
    assert str(arrow["line"].dtype).startswith("dictionary")
    assert _roles(frame) == _roles(arrow) == {"line": "categorical", "store": "categorical"}
    sizes = pa.Table.from_pandas(pd.DataFrame({"size": pd.Categorical([8.5, 9.5, 10.5] * 10)})).to_pandas(
        types_mapper=pd.ArrowDtype)["size"]
    model = AutoMMClassifier()
    labels = model._labels_array(sizes)
    assert model._resolve_problem_type(labels, declared_classes=declared_categorical(sizes)) == "multiclass"


def test_pandas_na_of_nullable_and_arrow_columns_is_none():
    """Int64, Float64, boolean, string and pd.ArrowDtype columns' pandas.NA cells come as None, which
    numbers convert with at C speed (with pandas.NA each value was checked one by one: 300,000
    rows of 2 columns: 12 s to read and check instead of the 0.4 s of numpy-backed pandas)."""
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"count": pd.array([1, None, 3] * 10, dtype="Int64"),
                          "price": pd.array([1.5, None, 2.5] * 10, dtype="Float64"),
                          "weight": pd.array([1.5, None, 2.5] * 10, dtype="double[pyarrow]"),
                          "colour": pd.array(["red", None, "blue"] * 10, dtype="string[pyarrow]")})
    table = as_table((frame,))
    assert {name: column[:3] for name, column in table.columns.items()} == {
        "count": [1, None, 3], "price": [1.5, None, 2.5], "weight": [1.5, None, 2.5], "colour": ["red", None, "blue"]}
    assert _roles(frame) == {"count": "numeric", "price": "numeric", "weight": "numeric", "colour": "categorical"}


def test_a_one_column_arrow_table_of_labels_is_a_column():
    """A one-column pyarrow Table (or polars DataFrame) as y is its column, as a one-column pandas
    DataFrame is: no warning that asks for y.ravel(), which neither has."""
    pa = pytest.importorskip("pyarrow")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = AutoMMClassifier._labels_array(pa.table({"label": ["a", "b", "a"]}))
    assert labels.tolist() == ["a", "b", "a"]
    with pytest.raises(InputError, match="expected one label column, got a DataFrame with 2 columns"):
        AutoMMClassifier._labels_array(pa.table({"a": [1, 2], "b": [3, 4]}))
