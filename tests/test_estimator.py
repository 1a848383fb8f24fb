"""End-to-end behaviour of AutoMM on real (embedded) data and on edge cases."""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import automm
from automm import AutoMM, AutoMMClassifier, AutoMMRegressor, InputError, NotFittedError, UnknownComponentError
from automm.training import Callback

from helpers import budget_from_the_first_trial, run_in_threads, tiny


@pytest.fixture(scope="module")
def fitted(emoji_split):
    train, _ = emoji_split
    return AutoMM(**tiny(max_epochs=3)).fit(train["image"].tolist(), train["name"].tolist(), train["category"].tolist())


def test_fit_predict_proba_score_transform_positional(fitted, emoji_split):
    _, test = emoji_split
    images, texts = test["image"].tolist(), test["name"].tolist()
    assert set(fitted.classes_) == set(test["category"])
    proba = fitted.predict_proba(images, texts)
    assert proba.shape == (len(test), len(fitted.classes_))
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    predictions = fitted.predict(images, texts)
    assert set(predictions) <= set(fitted.classes_)
    np.testing.assert_array_equal(predictions, fitted.classes_[proba.argmax(1)])
    score = fitted.score(images, texts, test["category"])
    assert score == pytest.approx(np.mean(predictions == test["category"].to_numpy()))
    embedding = fitted.transform(images, texts)
    assert embedding.shape[0] == len(test) and embedding.ndim == 2
    assert fitted.column_roles_ == {"x0": "image", "x1": "text"}
    assert len(fitted.history_) >= 1 and {"epoch", "train_loss", "valid_loss", "valid_score"} <= set(fitted.history_[0])


def test_fit_summary_of_one_configuration(fitted):
    summary = fitted.fit_summary()
    assert summary == {
        "problem_type": "multiclass", "n_classes": len(fitted.classes_), "columns": {"x0": "image", "x1": "text"},
        "components": {"encoders": {"image_0": "cnn", "text_0": "hashed_ngram"}, "fusion": "concat",
                       "inputs": {"image_0": ["x0"], "text_0": ["x1"]}},
        "validation_metric": "accuracy", "validation_score": fitted.best_score_,
        "validation_on": "holdout", "validation_rows": fitted.validation_rows_,
        "epochs_run": len(fitted.history_), "best_epoch": fitted.best_epoch_, "stop_reason": fitted.stop_reason_,
        "fit_seconds": round(fitted.fit_seconds_, 2)}  # no search: no trials, no ensemble
    with pytest.raises(NotFittedError, match="call fit"):
        AutoMM().fit_summary()


def test_learns_from_text_alone(emoji_split):
    train, test = emoji_split
    clf = AutoMM(**tiny(max_epochs=15, learning_rate=5e-3)).fit(train["name"].tolist(), train["category"].tolist())
    chance = test["category"].value_counts(normalize=True).max()
    assert clf.score(test["name"].tolist(), test["category"].tolist()) > chance + 0.15


def test_lists_of_words_are_read_as_texts_and_vectors_are_refused(emoji_split):
    train, test = emoji_split
    words = pd.DataFrame({"words": train["name"].str.split()})  # tags: ["grinning", "face"]
    # on the CPU: equal bit for bit there (on CUDA, sparse sums add in no fixed order: the last bits differ)
    clf = AutoMM(**tiny(max_epochs=15, learning_rate=5e-3, device="cpu")).fit(words, train["category"])
    assert clf.column_roles_ == {"words": "text"}
    query = pd.DataFrame({"words": test["name"].str.split()})
    chance = test["category"].value_counts(normalize=True).max()
    assert clf.score(query, test["category"]) > chance + 0.15
    joined = pd.DataFrame({"words": [", ".join(w) for w in query["words"]]})  # what the model reads
    np.testing.assert_array_equal(clf.predict_proba(query), clf.predict_proba(joined))
    as_sets = pd.DataFrame({"words": [set(w) for w in query["words"]]})  # a set's items in sorted order
    as_sorted = pd.DataFrame({"words": [", ".join(sorted(set(w))) for w in query["words"]]})
    np.testing.assert_array_equal(clf.predict_proba(as_sets), clf.predict_proba(as_sorted))
    # a column of number vectors (embeddings) is no text: the error says how to expand it
    vectors = pd.DataFrame({"embedding": [[0.5, 0.25, float(i)] for i in range(len(train))]})
    with pytest.raises(InputError, match=r"column 'embedding': values are vectors of numbers \(e.g. 3 numbers: "
                                         r"\[0.5, 0.25, 0.0\]...\); give each number its own column.*add_prefix"):
        AutoMM(**tiny()).fit(vectors, train["category"])
    # as numpy arrays (df["embedding"] = list(matrix)): read as their printed text before
    arrays = pd.DataFrame({"embedding": list(np.random.default_rng(0).normal(size=(len(train), 8)))})
    with pytest.raises(InputError, match=r"column 'embedding': values are vectors of numbers \(e.g. 8 numbers: "
                                         r"\[0\.12573"):
        AutoMM(**tiny()).fit(arrays, train["category"])
    # tags as arrays of words (a Parquet list column, as pandas reads it) are texts, as lists are
    tagged = pd.DataFrame({"words": [np.array(w) for w in train["name"].str.split()]})
    listed = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(words, train["category"])
    as_arrays = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(tagged, train["category"])
    assert as_arrays.column_roles_ == {"words": "text"}
    np.testing.assert_array_equal(as_arrays.predict_proba(tagged), listed.predict_proba(words))


def test_a_number_column_with_a_stray_value_is_read_as_numbers(emoji_split):
    """A CSV number column with one "$5" reaches pandas as strings: it was read as text without a
    word. Numbers but for at most 5% are numbers (the others missing, with a warning); a column
    mostly of numbers but with more others is read as text with a warning saying why."""
    import io

    rng = np.random.default_rng(0)
    prices = rng.uniform(0, 1000, 100)
    y = np.where(prices > 500, "high", "low")
    written = [f"{p:.2f}" for p in prices]
    written[3] = "$5"
    frame = pd.read_csv(io.StringIO(pd.DataFrame({"price": written}).to_csv(index=False)))
    with pytest.warns(UserWarning, match=r"column 'price': 1 of 100 values are not numbers \('\$5' at row 3\); "
                                         "they count as missing"):
        model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, y)
    assert model.column_roles_ == {"price": "numeric"}
    written[10:20] = ["n.a."] * 10
    frame = pd.read_csv(io.StringIO(pd.DataFrame({"price": written}).to_csv(index=False)))
    with pytest.warns(UserWarning, match=r"column 'price': 89 of 100 values read are numbers, the others are not "
                                         r"\('\$5', 'n\.a\.'\), so it is read as text; .*column_types=\{'price': "
                                         r"'numeric'\}"):
        model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, y)
    assert model.column_roles_ == {"price": "text"}
    codes = pd.DataFrame({"code": [str(v) for v in rng.integers(0, 5, 100)]})  # strings of numbers alone: as given
    assert AutoMM(max_epochs=1, num_workers=0).fit(codes, y).column_roles_ == {"code": "categorical"}


@pytest.mark.parametrize("placeholder", ["NA", "n/a", "null"])  # ("None": as pandas writes a missing value, below)
def test_a_number_column_with_words_for_missing_values_is_named_when_read_as_text(placeholder):
    """A price column of floats with 12% 'NA' strings (a frame built from JSON or SQL) was read as
    text without a word: its amounts learnt as words (fashion, price from title + list price:
    test RMSE 330 instead of 134 with None for the missing values)."""
    from automm import get_registry
    from automm.data import as_table, infer_roles

    rng = np.random.default_rng(0)
    prices = [round(p, 2) for p in rng.uniform(100, 5000, 100)]
    prices[::8] = [placeholder] * len(prices[::8])
    with pytest.warns(UserWarning, match=rf"column 'price': 87 of 100 values read are numbers, the others are not "
                                         rf"\('{placeholder}'\), so it is read as text; if it holds numbers, make "
                                         r"those values missing \(None\) or give column_types=\{'price': 'numeric'\}"):
        roles = infer_roles(as_table((pd.DataFrame({"price": prices}),)), None, get_registry().plugin_manager,
                            ["numeric", "categorical", "text", "datetime", "image"])
    assert roles == {"price": "text"}


def test_a_number_column_with_blank_cells_is_read_as_numbers_those_cells_missing():
    """A blank cell (" ", a tab: what a hand-edited CSV or a form leaves) is a missing value, as an
    empty one is, not a word that makes the column text."""
    import warnings

    from automm import get_registry
    from automm.data import as_table, infer_roles, is_missing

    assert is_missing(" ") and is_missing("\t\n") and is_missing("") and not is_missing(" a ")
    rng = np.random.default_rng(0)
    prices = [round(p, 2) for p in rng.uniform(100, 5000, 100)]
    prices[::8] = [" ", "\t"] * 6 + [" "]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roles = infer_roles(as_table((pd.DataFrame({"price": prices}),)), None, get_registry().plugin_manager,
                            ["numeric", "categorical", "text", "datetime", "image"])
    assert roles == {"price": "numeric"}


@pytest.mark.parametrize("written", ["NaT", "<NA>", "nan", "NaN", "None", "", pd.NA, pd.NaT])
def test_missing_values_as_pandas_writes_them_are_missing_in_number_and_date_columns(written):
    """What pandas writes for a missing value (``str`` / ``astype(str)`` of NaT, NA, NaN, None; a
    CSV file's "NaT", which read_csv leaves a string): 12% of them made a price, a date or a
    duration column text without a word, 2% were named as values that are not numbers."""
    from automm import get_registry
    from automm.data import as_table, infer_roles, validate_columns

    rng = np.random.default_rng(0)
    n = 100
    frame = pd.DataFrame({
        "price": pd.Series([round(p, 2) for p in rng.uniform(100, 5000, n)], dtype=object),
        "written_price": [f"{p:.2f}" for p in rng.uniform(100, 5000, n)],
        "when": [f"2024-03-{d:02d}" for d in rng.integers(1, 29, n)],
        "duration": [f"0 days 00:{m:02d}:00" for m in rng.integers(0, 60, n)]})
    for share in (2, 12):  # a few (were named in a warning) and more than 5% (were text)
        table = frame.copy()
        for column in range(table.shape[1]):  # (one at a time: pandas 2.0 cannot broadcast NaT over all four)
            table.iloc[:share, column] = written
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = as_table((table,))
            roles = infer_roles(table, None, get_registry().plugin_manager,
                                ["numeric", "categorical", "text", "datetime", "image"])
            assert roles == {"price": "numeric", "written_price": "numeric", "when": "datetime",
                             "duration": "numeric"}, share
            validate_columns(table, roles)


def test_a_wide_tables_columns_are_read_once_and_their_roles_from_no_more_values_than_needed(monkeypatch):
    """On a table of 1,000 columns, ``as_table`` took each DataFrame column twice (30 us a take: a
    one-row predict 127 ms, now 93), and role inference read every value of each column's first
    5,000 for its 500 present ones, then asked the image, date and audio rules about each number
    (1,000 columns x 2,000 rows: 4-5 s, now 2-2.5 s)."""
    from automm import data, get_registry, roles as role_rules
    from automm.data import as_table, infer_roles

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"n{j}": rng.normal(size=2000) for j in range(30)})
    frame["colour"] = rng.choice(["red", "blue"], 2000)
    taken = []
    take = pd.DataFrame.__getitem__
    monkeypatch.setattr(pd.DataFrame, "__getitem__", lambda self, key: (taken.append(key), take(self, key))[1])
    table = as_table((frame,))
    monkeypatch.undo()
    assert len(taken) <= frame.shape[1], taken  # each column once at most (it was twice)
    asked = {"is_missing": 0, "_is_image_object": 0}
    for module, name in ((data, "is_missing"), (role_rules, "_is_image_object")):
        original = getattr(module, name)

        def counted(value, original=original, name=name):
            asked[name] += 1
            return original(value)
        monkeypatch.setattr(module, name, counted)
    roles = infer_roles(table, None, get_registry().plugin_manager, ["numeric", "categorical", "text", "datetime",
                                                                     "image"])
    assert roles == {**{f"n{j}": "numeric" for j in range(30)}, "colour": "categorical"}
    assert asked["is_missing"] <= 31 * 500, asked  # 500 present values a column (it read 2,000)
    assert asked["_is_image_object"] <= 500, asked  # the number columns: none (500 each)


def test_a_missing_value_as_pandas_writes_it_is_missing_in_predict():
    """A one-row predict whose number is "None" or "NaT" (a JSON request, a frame through
    astype(str)) stopped: "1 of 1 values are not numbers"; it predicts as NaN does."""
    X = pd.DataFrame({"price": np.linspace(0, 10, 40), "when": pd.date_range("2024-01-01", periods=40)})
    model = AutoMM(**tiny(max_epochs=1, encoders={}, fusion="concat")).fit(X, ["a", "b"] * 20)
    expected = model.predict_proba(pd.DataFrame({"price": [np.nan], "when": [pd.NaT]}))
    for written in ("NaT", "<NA>", "None", " nan "):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            row = pd.DataFrame({"price": [written], "when": [written]}, dtype=object)
            np.testing.assert_array_equal(model.predict_proba(row), expected)


@pytest.mark.parametrize("values, what", [
    (["11/15/2024", "3/4/2023", "12/01/2022"], "dates in a format automm does not read"),
    (["November 15, 2024", "March 4, 2023", "Dec 1, 2022"], "dates in a format automm does not read"),
    (["2024/03", "2024/4", "2023/12"], r"dates in a format automm does not read \(it reads ISO 8601: 2024-03-05, a "
                                       r"month 2024-03\)"),  # months, as categories they were said nothing of
    (["03/2024", "4/2024", "12/2023"], "dates in a format automm does not read"),
    (["$1,234.00", "$5.50", "$12,000"], "numbers written with a currency, percent sign or digit-group separators"),
    (["45%", "3%", "100%"], "numbers written with a currency"),
])
def test_numbers_and_dates_written_in_formats_automm_does_not_read_are_named(values, what):
    """They were read as text or categories without a word: the model learnt them as words."""
    frame = pd.DataFrame({"col": values * 10, "x": np.arange(30.0)})
    with pytest.warns(UserWarning, match=rf"column 'col': its values look like {what}.*convert them first"):
        AutoMM(max_epochs=1, num_workers=0).fit(frame, [0, 1] * 15)


def test_deterministic_under_random_state(emoji_split):
    # the README's promise: same seed, same model on the CPU, bit for bit (on CUDA, atomic
    # additions make the last bits differ; gpu_check measures how much)
    train, test = emoji_split
    args = (train["image"].tolist()[:120], train["name"].tolist()[:120], train["category"].tolist()[:120])
    queries = (test["image"].tolist()[:20], test["name"].tolist()[:20])
    a = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(*args).predict_proba(*queries)
    b = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(*args).predict_proba(*queries)
    np.testing.assert_array_equal(a, b)


def test_a_float64_default_dtype_neither_breaks_fit_and_load_nor_changes_the_model(emoji_split, tmp_path):
    """torch.set_default_dtype(torch.float64) (a user's numerics) made the layers float64: fit and
    load raised "Input type (torch.FloatTensor) and weight type (torch.DoubleTensor)"."""
    train, test = emoji_split
    args = (train["image"].tolist()[:60], train["name"].tolist()[:60], train["category"].tolist()[:60])
    queries = (test["image"].tolist()[:10], test["name"].tolist()[:10])
    reference = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(*args)
    reference.save(tmp_path / "m")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        again = AutoMM(**tiny(max_epochs=1, device="cpu")).fit(*args)
        loaded = AutoMM.load(tmp_path / "m", device="cpu")  # (on a GPU, "auto" predicts under mixed precision)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_array_equal(again.predict_proba(*queries), reference.predict_proba(*queries))
    np.testing.assert_array_equal(loaded.predict_proba(*queries), reference.predict_proba(*queries))


def test_the_float32_default_holds_until_the_last_of_overlapping_blocks_ends():
    """Two fits in threads under a float64 default: the first to end put float64 back under the
    second, whose later trials then built float64 layers and failed."""
    import threading

    from automm.estimator import float32_default

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with float32_default():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with float32_default():
            second_in.set()
            first_out.wait(10)
            seen["inside"] = torch.get_default_dtype()

    try:
        run_in_threads(first, second)
        assert seen["inside"] == torch.float32  # the first block's end left it as the second needs it
        assert torch.get_default_dtype() == torch.float64  # the caller's, once both ended
    finally:
        torch.set_default_dtype(previous)


def test_the_global_generators_come_back_after_overlapping_fits_in_threads(emoji_split):
    """Two fits in threads, the second starting after the first had seeded torch's and numpy's
    generators and ending after it: each put back the states it found, so the second left the
    first's seeded ones and the host's own seeded sequence did not go on."""
    import random
    import threading
    import time

    from automm.estimator import global_random_state_kept

    first_seeded, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with global_random_state_kept():
            torch.manual_seed(0), np.random.seed(0), random.seed(0)  # as a fit seeds them
            first_seeded.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_seeded.wait(10)
        with global_random_state_kept():
            second_in.set()
            first_out.wait(10)
            torch.manual_seed(1), np.random.seed(1), random.seed(1)

    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    run_in_threads(first, second)
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]

    # and through fit itself, two of them at once
    train, _ = emoji_split
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    errors = []

    def fit(rows, delay):
        try:
            time.sleep(delay)
            AutoMM(**tiny(max_epochs=1, device="cpu")).fit(
                train["image"].tolist()[rows], train["name"].tolist()[rows], train["category"].tolist()[rows])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(slice(0, 60), 0.0)),
               threading.Thread(target=fit, args=(slice(60, 180), 0.3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])


def test_dataframe_with_tabular_columns_and_missing_modalities(emoji_split):
    train, test = emoji_split
    frame = train[["image", "name"]].copy()
    frame["n_words"] = frame["name"].str.split().str.len().astype(float)
    frame["first_word"] = frame["name"].str[0]
    frame.loc[::5, "image"] = None          # no picture
    frame.loc[1::7, "name"] = ""            # empty text
    frame.loc[2::9, "n_words"] = np.nan
    clf = AutoMM(**tiny()).fit(frame, train["category"])
    assert clf.column_roles_["n_words"] == "numeric"
    assert clf.column_roles_["first_word"] == "categorical"
    assert [s.modality for s in clf.inputs_] == ["image", "text", "tabular"]
    query = frame.head(12).copy()
    query.loc[0, "image"] = None
    query.loc[0, "name"] = ""
    query.loc[1, "first_word"] = "never-seen-category"
    assert len(clf.predict(query)) == 12
    with pytest.raises(InputError, match=r"columns \['image'\] seen in fit are missing.*give its column with None"):
        clf.predict(query.drop(columns=["image"]))
    assert len(clf.predict(query.assign(image=None))) == 12  # as the error says: without pictures
    with pytest.raises(InputError, match=r"columns \['first_word'\] seen in fit are missing; got columns \[.*\]; "
                                         r"rename 'firstword' to 'first_word'\?"):
        clf.predict(query.rename(columns={"first_word": "firstword"}))
    records = query.to_dict("records")  # a list of dicts (one per sample) is a table too
    assert (clf.predict(records) == clf.predict(query)).all()
    with pytest.raises(InputError, match=r"fitted on a table with columns \['image', 'name', 'n_words', "
                                         r"'first_word'\], got 2 positional input.*a list of records"):
        clf.predict(query["image"], query["name"])


def test_messages_about_a_wide_tables_columns_show_a_few_of_them_and_their_count():
    """Each message naming a table's columns listed every one: with 1,000 columns, 14,500 characters
    for one missing column at predict, 29,000 for an array given (the list twice), and a misspelt
    ``column_types`` key was not pointed to its column among them."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"feature_{j:02d}": rng.normal(size=40) for j in range(60)})
    frame["colour"] = rng.choice(["red", "blue"], 40)
    with pytest.warns(automm.AutoMMWarning, match=r"encoders\['image'\], encoders\['text'\] are not used; the "
                                                  r"columns' roles are 61 columns: 60 numeric \(feature_00, feature_01, "
                                                  r"feature_02, \.\.\.\), 1 categorical \(colour\) \(column_types="):
        clf = AutoMM(**tiny(max_epochs=1)).fit(frame, frame.colour == "red")
    names = "'feature_00', 'feature_01', 'feature_02', 'feature_03', 'feature_04', 'feature_05', 'feature_06', "
    with pytest.raises(InputError, match=r"columns \['feature_07'\] seen in fit are missing; got columns \["
                                         + names + r"'feature_08', 'feature_09', 'feature_10', \.\.\. \(60 in all\)\]"
                                         r" \(to predict without one") as missing:
        clf.predict(frame.drop(columns=["feature_07"]))
    with pytest.raises(InputError, match=r"fitted on a table with columns \[" + names + r".*\.\.\. \(61 in all\)\], "
                                         r"got an array of 61 unnamed columns.*pandas.DataFrame\(X, "
                                         r"columns=model.columns_\)") as array:
        clf.predict(frame.to_numpy())
    with pytest.raises(InputError, match=r"column_types: columns \['color'\] are not in the data; columns are \["
                                         + names + r".*\(61 in all\)\]; did you mean 'colour'\?") as misspelt:
        AutoMM(**tiny(max_epochs=1), column_types={"color": "categorical"}).fit(frame, frame.colour == "red")
    for raised in (missing, array, misspelt):
        assert len(str(raised.value)) < 400, str(raised.value)


@pytest.mark.parametrize("with_text", [False, True])
def test_table_columns_preprocessed_at_once_train_and_predict_as_row_by_row(monkeypatch, tmp_path, with_text):
    """Table columns preprocessed a whole column at once (``preprocess_batch``, the fast way) give
    the model, the probabilities and the saved model's predictions of row-by-row ``preprocess``."""
    from automm.components.tabular import TabularEncoder

    rng = np.random.default_rng(0)
    n = 90
    X = pd.DataFrame({"price": rng.normal(50, 20, n).round(2), "year": rng.integers(2008, 2018, n).astype(float),
                      "colour": rng.choice(["red", "blue", "green", None], n),
                      "sold": pd.date_range("2024-01-01", periods=n, freq="37h")})
    X.loc[::11, "price"] = np.nan
    if with_text:
        X["title"] = [f"{c} shirt number {i} of {rng.choice(['cotton', 'wool'])}" for i, c in enumerate(X.colour)]
    y = np.where(X["price"].fillna(50) > 50, "dear", "cheap")
    params = tiny(max_epochs=2, batch_size=16)
    params["encoders"] = {"text": params["encoders"]["text"]}
    fast = AutoMM(**params).fit(X, y)
    fast.save(tmp_path / "fast")
    with monkeypatch.context() as patched:
        patched.setattr(TabularEncoder, "preprocess_batch", lambda self, values: None)  # row by row, as before
        slow = AutoMM(**params).fit(X, y)
        expected = slow.predict_proba(X)
    np.testing.assert_allclose(fast.history_[-1]["valid_loss"], slow.history_[-1]["valid_loss"], rtol=1e-6)
    np.testing.assert_allclose(fast.predict_proba(X), expected, atol=1e-6)
    np.testing.assert_allclose(AutoMM.load(tmp_path / "fast").predict_proba(X), expected, atol=1e-6)


def test_a_fitted_table_named_when_an_unnamed_array_comes_to_predict(emoji_split):
    train, _ = emoji_split
    X = train[["image", "name"]].head(60)
    clf = AutoMM(**tiny(max_epochs=1)).fit(X, train["category"].head(60))
    with pytest.raises(InputError, match=r"got an array of 2 unnamed columns; pass a pandas DataFrame \(e.g. "
                                         r"pandas.DataFrame\(X, columns=\['image', 'name'\]\)\)"):
        clf.predict(X.to_numpy())
    with pytest.raises(InputError, match=r"got a pandas Series, one row of a table; pass a pandas DataFrame \(one "
                                         r"row: frame.iloc\[\[i\]\] or row.to_frame\(\).T\)"):
        clf.predict(X.iloc[0])
    assert len(clf.predict(X.iloc[[0]])) == 1


def test_other_table_forms_scikit_learn_users_pass(emoji_split):
    import pyarrow as pa
    import scipy.sparse as sparse

    train, _ = emoji_split
    X, y = train[["image", "name"]].head(80).reset_index(drop=True), train["category"].head(80)
    # a pyarrow Table: its named columns
    clf = AutoMM(**tiny(max_epochs=1)).fit(pa.Table.from_pandas(X), y)
    assert clf.column_roles_ == {"image": "image", "name": "text"}
    assert (clf.predict(pa.Table.from_pandas(X.head(5))) == clf.predict(X.head(5))).all()
    # a list of rows of numbers, and a sparse matrix (one-hot output): numeric columns x0, x1, ...
    rows = [[float(len(n)), float(n.count(" "))] for n in X["name"]]
    assert AutoMM(max_epochs=1).fit(rows, y).column_roles_ == {"x0": "numeric", "x1": "numeric"}
    one_hot = sparse.csr_matrix(np.eye(3)[np.arange(80) % 3])
    assert AutoMM(max_epochs=1).fit(one_hot, y).column_roles_ == {"x0": "numeric", "x1": "numeric", "x2": "numeric"}
    with pytest.raises(InputError, match=r"X: a sparse matrix of 5000 columns .*Give it the raw columns"):
        AutoMM(max_epochs=1).fit(sparse.random(80, 5000, density=0.01, format="csr"), y)
    # integer column names (pandas.read_csv(header=None)) in column_types and encoders
    numbered = X.set_axis([0, 1], axis=1)
    clf = AutoMM(**tiny(max_epochs=1, encoders={1: "hashed_ngram", 0: "cnn"}), column_types={0: "image"})
    assert clf.fit(numbered, y).column_roles_ == {"0": "image", "1": "text"}
    assert clf.config_["encoders"]["text_0"]["name"] == "hashed_ngram"


def test_messages_name_rows_by_the_dataframe_index(emoji_split, tmp_path):
    train, _ = emoji_split
    frame = train[["image", "name", "category"]].head(60).copy()
    frame.loc[frame.index[40:], "image"] = str(tmp_path / "gone.png")  # a third unreadable: an error
    kept = frame.iloc[30:]  # a filtered frame keeps its index labels
    with pytest.raises(InputError, match=r"row 40 \('.*gone.png'\): file not found; row 41"):
        AutoMM(max_epochs=1).fit(frame[["image", "name"]], frame["category"])  # index 0..n-1: positions
    with pytest.raises(InputError, match=rf"index {kept.index[10]} \('.*gone.png'\): file not found"):
        AutoMM(max_epochs=1).fit(kept[["image", "name"]], kept["category"])
    by_id = kept.set_index(pd.Index([f"sku-{i}" for i in range(30)], name="sku"))
    with pytest.raises(InputError, match=r"sku 'sku-10' \('.*gone.png'\): file not found"):
        AutoMM(max_epochs=1).fit(by_id[["image", "name"]], by_id["category"])
    with pytest.raises(InputError, match=r"sku 'sku-10' \('.*gone.png'\)"):  # columns of one frame, by position
        AutoMM(max_epochs=1).fit(by_id["image"], by_id["name"], by_id["category"])
    labels = by_id["category"].copy()
    labels.iloc[3] = None
    with pytest.raises(InputError, match=r"y: 1 missing label \(None/NaN/empty\), first at sku 'sku-3'"):
        AutoMM(max_epochs=1).fit(by_id[["name"]], labels)


def test_a_list_of_records_is_a_table(emoji_split):
    train, _ = emoji_split
    records = [{"picture": image, "name": name} for image, name in zip(train["image"], train["name"])]
    records[3] = {"name": records[3]["name"]}  # a key missing from a record: a missing value
    clf = AutoMM(**tiny()).fit(records, train["category"])
    assert clf.column_roles_ == {"picture": "image", "name": "text"} and clf.columns_ == ["picture", "name"]
    assert list(clf.predict(records[:4])) == list(clf.predict(pd.DataFrame(records[:4])))
    # values that are dicts are never read as texts: each case says what to pass
    nested = [{"meta": {"colour": "red"}, "name": name} for name in train["name"]]
    with pytest.raises(InputError, match=r"column 'meta': values are dicts, e.g. \{'colour': 'red'\}; flatten them "
                                         r"\(pandas.json_normalize\)"):
        AutoMM(**tiny()).fit(nested, train["category"])
    with pytest.raises(InputError, match=r"input 1: values are dicts.*only as the one input"):
        AutoMM(**tiny()).fit(train["image"], records, train["category"])



def test_image_records_as_hugging_face_datasets_store_them(emoji_split, tmp_path):
    """An image cell ``{"bytes": ..., "path": ...}`` (a ``datasets`` Image column in pandas, or
    read from its Parquet files) is that image: its bytes, else its path."""
    train, test = emoji_split

    def records(frame, with_bytes=True):
        return [{"bytes": Path(p).read_bytes() if with_bytes else None, "path": p} for p in frame["image"]]

    frame = pd.DataFrame({"image": records(train), "name": train["name"]})
    frame.loc[5, "image"] = None  # a missing image stays missing
    clf = AutoMM(**tiny(max_epochs=2)).fit(frame, train["category"])
    assert clf.column_roles_ == {"image": "image", "name": "text"}
    by_path = clf.predict(test[["image", "name"]])
    as_bytes = clf.predict(pd.DataFrame({"image": records(test), "name": test["name"]}))
    as_paths = clf.predict(pd.DataFrame({"image": records(test, with_bytes=False), "name": test["name"]}))
    assert list(as_bytes) == list(by_path) and list(as_paths) == list(by_path)
    parquet = tmp_path / "images.parquet"
    pd.DataFrame({"image": records(test), "name": test["name"]}).to_parquet(parquet)
    assert list(clf.predict(pd.read_parquet(parquet))) == list(by_path)
    # positional: one column of records, alone or beside the names
    alone = AutoMM(**tiny(max_epochs=1)).fit(records(train), train["category"])
    assert alone.column_roles_ == {"x0": "image"}
    assert AutoMM(**tiny(max_epochs=1)).fit(records(train), train["name"], train["category"]).column_roles_ == {
        "x0": "image", "x1": "text"}
    # records of other bytes (a sound, say) are not images: refused as dicts, unless a plugin reads them
    # (automm-audio: then as WAV files, these cut short)
    sounds = [{"bytes": b"RIFF\x24\x00\x00\x00WAVEfmt ", "path": "a.wav"} for _ in range(len(train))]
    audio = "audio" in automm.get_registry().modalities()
    with pytest.raises(InputError, match="column 'sound': 288 of 288 audio values cannot be read" if audio
                       else "column 'sound': values are dicts"):
        AutoMM(**tiny()).fit(pd.DataFrame({"sound": sounds, "name": train["name"]}), train["category"])


def test_image_arrays_pil_greyscale_and_transparent(emoji_split):
    train, _ = emoji_split
    rng = np.random.default_rng(0)
    n = 40
    labels = np.array(["dark", "light"] * (n // 2))
    arrays = np.stack([np.full((24, 24, 3), 40 if lab == "dark" else 220, np.uint8) for lab in labels])
    arrays = (arrays + rng.integers(0, 20, arrays.shape)).astype(np.uint8)
    clf = AutoMM(**tiny(max_epochs=4)).fit(arrays, labels)
    assert clf.column_roles_ == {"x0": "image"}
    grey = [Image.fromarray(a[..., 0], mode="L") for a in arrays]
    rgba = [Image.fromarray(np.dstack([a, np.full((24, 24), 255, np.uint8)]), mode="RGBA") for a in arrays]
    assert clf.predict(grey).shape == (n,) and clf.predict(rgba).shape == (n,)
    assert clf.predict(arrays[:, :, :, 0]).shape == (n,)   # (N, H, W) greyscale stack


def test_regression(emoji_split):
    train, test = emoji_split
    y = train["name"].str.len().astype(float)
    reg = AutoMMRegressor(**tiny(max_epochs=4)).fit(train["name"].tolist(), y)
    assert reg.problem_type_ == "regression"
    pred = reg.predict(test["name"].tolist())
    assert pred.dtype.kind == "f" and pred.shape == (len(test),)
    assert np.isfinite(reg.score(test["name"].tolist(), test["name"].str.len().astype(float)))
    assert AutoMM(**tiny(max_epochs=1)).fit(train["name"].tolist(), y).problem_type_ == "regression"


def test_binary_problem_keeps_original_labels(emoji_split):
    train, _ = emoji_split
    y = np.where(train["category"] == "Flags", 10, 20)
    clf = AutoMMClassifier(**tiny(max_epochs=1)).fit(train["name"].tolist(), y)
    assert clf.problem_type_ == "binary"
    assert clf.classes_.tolist() == [10, 20]
    assert set(clf.predict(train["name"].tolist()[:10])) <= {10, 20}


def test_time_limit_keeps_best_model_so_far(emoji_split, monkeypatch):
    import time

    train, _ = emoji_split
    # the 6 s from the first trial on: on a loaded machine the work before it (checking the images,
    # first imports) took most of them, and the fit ran past 6 + 3 s
    trials = budget_from_the_first_trial(monkeypatch, 6)
    clf = AutoMM(**tiny(max_epochs=500, patience=0, time_limit=6, ensemble_size=1)).fit(
        train["image"].tolist(), train["name"].tolist(), train["category"].tolist())
    elapsed = time.monotonic() - trials["start"]
    assert elapsed < 6 + 3
    # the schedule was fitted to the time (it ends annealed), or the deadline cut an epoch
    assert clf.stop_reason_.startswith(("schedule fitted to the time limit", "time limit reached"))
    assert len(clf.predict(train["image"].tolist()[:5], train["name"].tolist()[:5])) == 5


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, message", [
    ((["a b", "c d", "e f"], [0, 1]), "2 labels for 3 samples"),
    (([], []), "empty"),
    ((["a b", "c d", "e f"], ["x", "x", "x"]), r"only one class \('x'\)"),
    ((["a b", "c d", "e f"], ["x", None, "y"]), r"missing label .*; leave those rows out \(with pandas: keep = "
                                                r"y.notna\(\); fit\(X\[keep\], y\[keep\]\)\)"),
    ((["a b", "c d", "e f"], [0.0, np.nan, 1.0]), "missing label"),
    # strings and NaN in one list: numpy alone would turn the NaN into a class named 'nan'
    ((["a b", "c d", "e f"], ["x", np.nan, "y"]), "missing label"),
    ((["a b", "c d", "e f"], ["x", "  ", "y"]), "missing label"),
])
@pytest.mark.filterwarnings("ignore:encoders:UserWarning")  # three short texts read as a category
def test_bad_labels_and_lengths(args, message):
    with pytest.raises(InputError, match=message):
        AutoMM(**tiny()).fit(*args)


@pytest.mark.filterwarnings("ignore:encoders:UserWarning")  # four short texts read as a category
def test_bad_regression_labels_are_named_before_any_work():
    """An infinite target was refused without its row ('y: regression labels must be finite
    numbers'), a word among amounts as labels that "mix strings and numbers, so predict would return
    '2000.0'" (a regressor returns floats), and score() of a regressor with such labels raised
    scikit-learn's bare ValueError ("could not convert string to float: 'Men'") once every row had
    been predicted."""
    texts = ["red apple", "green pear", "blue plum", "ripe fig"] * 3
    amounts = pd.Series(np.arange(12.0) * 100 + 2000, index=[f"sku-{i}" for i in range(12)]).rename_axis("sku")
    with pytest.raises(InputError, match=r"y: 1 infinite label \(inf/-inf\), first at sku 'sku-3'; leave those "
                                         r"rows out \(with pandas: keep = np.isfinite\(y\); fit\(X\[keep\], y\[keep\]\)\)"):
        AutoMMRegressor(**tiny()).fit(texts, amounts.where(amounts.index != "sku-3", -np.inf))
    with pytest.raises(InputError, match=r"y_val: 1 infinite label .*first at row 1"):
        AutoMMRegressor(**tiny()).fit(texts, amounts, X_val=(texts[:2],), y_val=[1.0, np.inf])
    words = amounts.astype(object).where(amounts.index != "sku-5", "$12")
    with pytest.raises(InputError, match=r"y: regression needs numeric labels \('\$12' is not one\)"):
        AutoMMRegressor(**tiny()).fit(texts, words)
    model = AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, words.where(words != "$12", "2500"))  # an amount
    assert model.target_mean_ == pytest.approx(amounts.where(amounts.index != "sku-5", 2500).mean())
    predicted = []
    model._raw_outputs = lambda *args, **kwargs: predicted.append(1)  # no prediction before the labels are checked
    with pytest.raises(InputError, match=r"y: regression needs numeric labels \('Men' is not one\)"):
        model.score(texts, ["Men"] * 12)
    with pytest.raises(InputError, match=r"y: 1 infinite label .*keep = np.isfinite\(y\); score\(X\[keep\]"):
        model.score(texts, [np.inf] + [1.0] * 11)
    with pytest.raises(InputError, match=r"missing label .*keep = y.notna\(\); score\(X\[keep\], y\[keep\]\)"):
        model.score(texts, [np.nan] + [1.0] * 11)
    assert predicted == []


def test_numbers_with_nan_written_as_a_string_are_a_number_column():
    """Floats with 10% of "nan" strings among them (an object column from JSON or astype(str) in
    part) were read as text, without a word; the table encoder reads "nan" as a missing value."""
    prices = pd.Series([i + 0.5 for i in range(90)] + ["nan"] * 10, dtype=object)
    X = pd.DataFrame({"price": prices, "title": ["red apple pie", "green pear tart"] * 50})
    model = AutoMM(**tiny(max_epochs=1)).fit(X, ["a", "b"] * 50)
    assert model.column_roles_["price"] == "numeric"
    names = pd.DataFrame({"name": ["Nan", "Li", "Wei", "Ana"] * 10, "n": np.arange(40.0)})  # a word, not a number
    assert AutoMM(**tiny(max_epochs=1)).fit(names, ["a", "b"] * 20).column_roles_["name"] != "numeric"


def test_a_few_far_regression_targets_are_named():
    """3 prices typed as 999999 among 1,500 of 600-5,800 set the scale the network learns in
    (target_std_ 777 -> 44,611) and took test R² from 0.83 to -2.55 without a word."""
    import warnings

    rng = np.random.default_rng(0)
    texts = ["red apple", "green pear", "blue plum", "ripe fig"] * 10
    prices = rng.normal(3000, 800, 40)
    with pytest.warns(UserWarning, match=r"y: 2 of 40 targets lie more than 100 interquartile ranges from the median "
                                         r"[\d.]+ \(999999\); .*or fit log\(y\)"):
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, np.r_[prices[:38], 999999, 999999])
    with warnings.catch_warnings():  # a heavy tail of its own (lognormal, sigma 1) is no such case
        warnings.filterwarnings("error", message=".*interquartile")
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, rng.lognormal(7, 1, 40))


@pytest.mark.filterwarnings("ignore:encoders:UserWarning")  # four short texts read as a category
def test_far_validation_targets_are_named():
    """One validation target typed as 37000 among 200 lengths of 19-75 (fashion titles, 600
    training rows) ruled the validation score that picks the epoch, the trials and the ensemble:
    test R² 0.81 -> 0.69 under time_limit=40, without a word (the same target in y was named).
    It is measured by y's median and spread; a row of sample_weight_val 0 does not count."""
    rng = np.random.default_rng(0)
    texts = ["red apple", "green pear", "blue plum", "ripe fig"] * 10
    lengths = rng.normal(37, 9, 40)
    typed = np.r_[lengths[:9], 37000]
    with pytest.warns(UserWarning, match=r"^y_val: 1 of 10 targets lie more than 100 interquartile ranges of y from "
                                         r"its median [\d.]+ \(37000\); the validation score, which picks the kept "
                                         r"epoch, the search's trials and the ensemble's weights, follows their "
                                         r"squared error: leave out \(or give sample_weight_val 0\)"):
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, lengths, X_val=(texts[:10],), y_val=typed)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*interquartile")
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, lengths, X_val=(texts[:10],), y_val=typed,
                                                  sample_weight_val=np.r_[np.ones(9), 0.0])
        # validation targets of another range than the training targets' bulk, but no typo
        AutoMMRegressor(**tiny(max_epochs=1)).fit(texts, lengths, X_val=(texts[:10],), y_val=lengths[:10] + 60)


@pytest.mark.filterwarnings("ignore:encoders:UserWarning")  # four short texts read as a category
def test_class_weight_is_refused_for_regression():
    """class_weight on a regression target was ignored without a word (the fit was the unweighted one)."""
    texts = ["red apple", "green pear", "blue plum", "ripe fig"] * 3
    amounts = np.arange(12.0) * 100 + 2000
    for class_weight in ("balanced", {2000.0: 5.0}):
        with pytest.raises(InputError, match=r"^class_weight: .* weighs classes, but y is a regression target; weigh "
                                             r"rows with fit\(\.\.\., sample_weight=w\)"):
            AutoMMRegressor(**tiny(class_weight=class_weight)).fit(texts, amounts)
    with pytest.raises(InputError, match=r"class_weight: 'balanced' weighs classes, but y is a regression target"):
        AutoMM(**tiny(class_weight="balanced", problem_type="regression")).fit(texts, amounts)


@pytest.mark.filterwarnings("ignore:encoders:UserWarning")  # four short texts read as a category
def test_complex_regression_targets_are_refused():
    """Complex targets lost their imaginary parts, with only numpy's ComplexWarning said."""
    texts = ["red apple", "green pear", "blue plum", "ripe fig"] * 3
    amounts = np.arange(12.0) * 100 + 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error", getattr(np, "exceptions", np).ComplexWarning)  # (numpy 1.24: np.ComplexWarning)
        with pytest.raises(InputError, match=r"^y: regression needs real numbers \(\(2000\+1j\) is complex\)"):
            AutoMMRegressor(**tiny()).fit(texts, amounts + 1j)
        with pytest.raises(InputError, match=r"^y_val: regression needs real numbers"):
            AutoMMRegressor(**tiny()).fit(texts, amounts, X_val=(texts[:2],), y_val=np.array([1.0, 2.0]) + 0j)


def test_far_targets_are_named_where_most_targets_are_one_value():
    """Where half the targets or more are one value the quartiles agree (an interquartile range of
    0), and 3 targets typed as 1e9 among 95% of 5.0 were never named. Their spread is then that of
    the other targets; the ordinary targets of that kind are not named."""
    import warnings

    from sklearn.datasets import load_diabetes

    from automm.estimator import _warn_far_targets

    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match=r"^y: 3 of 1000 targets lie more than 100 times the spread of the 50 targets "
                                         r"other than 5 \(which 95% of them equal\) from the median 5 \(1e\+09\); "):
        _warn_far_targets(np.r_[np.full(950, 5.0), rng.uniform(1, 10, 47), [1e9] * 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ordinary in (np.r_[np.zeros(980), np.ones(20)],  # a rare event
                         np.r_[np.zeros(800), rng.integers(1, 6, 200)],  # counts, mostly none
                         np.r_[np.zeros(950), rng.lognormal(10, 2, 50)],  # claims, mostly none
                         np.r_[np.full(600, 5.0), rng.integers(1, 5, 400)],  # ratings, mostly the top one
                         load_diabetes().target):  # (shipped with scikit-learn)
            _warn_far_targets(ordinary.astype(float))


def test_mismatched_input_lengths():
    with pytest.raises(InputError, match=r"the positional inputs have different lengths: input 0 \(list\): 2 values, "
                                         r"input 1 \(list\): 3 values; every input needs one value per sample"):
        AutoMM(**tiny()).fit(["a.png", "b.png"], ["one", "two", "three"], [0, 1, 0])
    with pytest.raises(InputError, match=r"columns have different lengths: \{'a': 3, 'b': 2\}"):
        AutoMM(**tiny()).fit({"a": [1, 2, 3], "b": [1, 2]}, [0, 1, 0])


def test_score_with_labels_of_another_length_fails_before_predicting(fitted, emoji_split, monkeypatch):
    """score had predicted every row (seconds on thousands of images) before comparing the counts."""
    _, test = emoji_split
    monkeypatch.setattr(type(fitted), "_raw_outputs_of_table", lambda *a: pytest.fail("predicted first"))
    with pytest.raises(InputError, match=f"y: 10 labels for {len(test)} samples"):
        fitted.score(test["image"].tolist(), test["name"].tolist(), test["category"].tolist()[:10])


@pytest.mark.parametrize("params, message", [
    (dict(search_space={"trainig": {}}), "did you mean 'training'"),
    (dict(search_space={"training": {"learning_rat": 1e-3}}), "did you mean 'learning_rate'"),
    (dict(column_types={"x0": "imag"}), "unknown role 'imag'.*did you mean 'image'"),
    (dict(encoders={"imag": "cnn"}), "match neither a modality nor a column.*did you mean 'image'"),
])
def test_misspelt_names_in_parameters_get_a_suggestion(params, message):
    with pytest.raises(InputError, match=message):
        AutoMM(**{**tiny(), **params}).fit(["a b", "c d", "e f"] * 10, ["x", "y", "z"] * 10)


def test_a_misspelt_keyword_of_fit_score_or_predict_gets_a_suggestion_and_the_signatures_stay_explicit():
    import inspect

    X, y = ["a b", "c d", "e f"] * 4, ["x", "y", "z"] * 4
    with pytest.raises(TypeError, match=r"^AutoMMClassifier\.fit\(\) got an unexpected keyword argument "
                                        r"'sample_weights'; did you mean 'sample_weight'\?$"):
        AutoMMClassifier(**tiny()).fit(X, y, sample_weights=[1.0] * 12)
    with pytest.raises(TypeError, match=r"AutoMM\.fit\(\) .* 'X_valid'; did you mean 'X_val'\?"):
        AutoMM(**tiny()).fit(X, y, X_valid=X)
    with pytest.raises(TypeError, match=r"AutoMM\.score\(\) .* 'sampleweight'; did you mean 'sample_weight'\?"):
        AutoMM().score(X, y=y, sampleweight=None)
    with pytest.raises(TypeError, match=r"AutoMM\.predict\(\) .* 'X'; it takes the inputs as positional"):
        AutoMM().predict(X=X)
    with pytest.raises(TypeError, match=r"AutoMM\.fit\(\) .* 'X'; it takes the inputs as positional arguments: "
                                        r"fit\(X, y\) or fit\(X_img, X_txt, y\)$"):
        AutoMM(**tiny()).fit(X=X, y=y)  # scikit-learn's habit
    # scikit-learn's metadata routing and IDEs read the explicit parameters, no catch-all
    def plain(method):  # (the signature without its annotations)
        return str(inspect.signature(method).replace(
            parameters=[p.replace(annotation=p.empty) for p in inspect.signature(method).parameters.values()],
            return_annotation=inspect.Signature.empty))

    assert plain(AutoMM.fit) == "(self, *X, y=None, sample_weight=None, X_val=None, y_val=None, sample_weight_val=None)"
    assert plain(AutoMMRegressor.score) == "(self, *X, y=None, sample_weight=None)"
    assert [plain(getattr(AutoMMClassifier, m)) for m in ("predict", "predict_proba", "transform")] == ["(self, *X)"] * 3
    routing = AutoMMClassifier()._get_metadata_request()
    assert set(routing.fit.requests) == {"sample_weight", "X_val", "y_val", "sample_weight_val"}
    assert set(routing.score.requests) == {"sample_weight"} and not routing.predict.requests


def test_autogluon_style_calls_say_what_to_use_instead():
    # a user coming from AutoGluon's MultiModalPredictor writes its keywords: each names automm's way
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"] * 4, "w": [1.0, 2.0, 1.0] * 4, "label": ["x", "y", "z"] * 4})
    X, y = frame[["text"]], frame["label"]
    with pytest.raises(TypeError, match=r"^AutoMM\(\) got an unexpected keyword argument 'label'; the labels are "
                                        r"fit's y: .*fit\(frame.drop\(columns=\['label'\]\), frame\['label'\]\)$"):
        AutoMM(label="label")  # (not "did you mean 'label_smoothing'?")
    with pytest.raises(TypeError, match=r"'presets'; there are no presets: time_limit= .* n_trials="):
        AutoMM(presets="best_quality")
    with pytest.raises(TypeError, match=r"^AutoMM\.fit\(\) got an unexpected keyword argument 'label'; the labels "
                                        r"are y: fit\(X.drop\(columns=\['label'\]\), X\['label'\]\)"):
        AutoMM(**tiny()).fit(frame, label="label")
    with pytest.raises(TypeError, match=r"'tuning_data'; validation rows are X_val and y_val: fit\(X, y, X_val="):
        AutoMM(**tiny()).fit(X, y, tuning_data=frame)
    with pytest.raises(TypeError, match=r"'time_limit'; time_limit is a parameter of AutoMM, not of fit: "
                                        r"AutoMM\(time_limit=\.\.\.\)\.fit\(X, y\)"):
        AutoMM(**tiny()).fit(X, y, time_limit=30)
    with pytest.raises(TypeError, match=r"AutoMM\.fit\(\) .* 'presets'; there are no presets"):
        AutoMM(**tiny()).fit(X, y, presets="medium_quality")
    with pytest.raises(TypeError, match=r"'as_pandas'; .*pandas\.DataFrame\(model\.predict_proba\(X\), "
                                        r"columns=model\.classes_, index=X\.index\)"):
        AutoMM().predict_proba(X, as_pandas=True)
    with pytest.raises(TypeError, match=r"AutoMM\.score\(\) .* 'metrics'; .*compute_metrics\(model\.problem_type_"):
        AutoMM().score(X, y, metrics=["acc"])
    for method, hint in (("evaluate", r"score\(X, y\) gives accuracy .*compute_metrics"),
                         ("leaderboard", r"the search.s trials are the attribute leaderboard_"), ("extract_embedding", r"transform\(X\)")):
        with pytest.raises(AttributeError, match=rf"^'AutoMM' object has no attribute '{method}'; {hint}"):
            getattr(AutoMM(), method)
    with pytest.raises(AttributeError, match=r"^'AutoMM' object has no attribute 'leaderboard_'$"):
        AutoMM().leaderboard_  # not fitted: as it was
    # labels, weights and validation labels given as a column's name
    with pytest.raises(InputError, match=r"^y_val: .*: fit\(X, y, X_val=frame.drop\(columns='label'\), "
                                         r"y_val=frame\['label'\]\)$"):
        AutoMM(max_epochs=1).fit(X, y, X_val=frame, y_val="label")
    with pytest.raises(InputError, match=r"^sample_weight: .*got the string 'w'; .*: fit\(X.drop\(columns=\['w'\]\), "
                                         r"y, sample_weight=X\['w'\]\)$"):
        AutoMM(max_epochs=1).fit(frame[["text", "w"]], y, sample_weight="w")
    with pytest.raises(InputError, match=r"got the string 'balanced'; .*AutoMM\(class_weight='balanced'\)$"):
        AutoMM(max_epochs=1).fit(X, y, sample_weight="balanced")


def test_autogluon_keywords_that_no_spelling_matches_name_automms_equivalent():
    # a did-you-mean by spelling found nothing for these (seed, hyperparameter_tune_kwargs) or misled
    # (classes: 'class_weight', pipeline: 'patience'); each names automm's parameter, with the value given
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"] * 4, "label": ["x", "y", "z"] * 4})
    X, y = frame[["text"]], frame["label"]
    for keyword, value, hint in (
            ("seed", 7, r"the seed is random_state=: AutoMM\(random_state=7\)"),
            ("eval_metric", "acc", r"metric=: AutoMM\(metric='accuracy'\)"),
            ("validation_metric", "f1_macro", r"metric=: AutoMM\(metric='macro_f1'\)"),
            ("eval_metric", "roc_auc", r"is metric=, one of \['auto', 'accuracy', "),
            ("verbosity", 2, r"AutoMM\(verbose=\.\.\.\): 0 nothing \(the default\), 1 its progress"),
            ("classes", ["x", "y"], r"the classes are the labels in fit's y \(the attribute classes_ after fit\)$"),
            ("pipeline", "classification", r"AutoMM\(problem_type=\.\.\.\): 'auto' \(read from y\)"),
            ("num_gpus", 1, r"the device is AutoMM\(device=\.\.\.\): 'auto'"),
            ("pretrained", True, r"encoders=\{'image': 'efficientnet_lite0', 'text': 'minilm'\}"),
            ("hyperparameter_tune_kwargs", {"searcher": "bayes", "scheduler": "ASHA", "num_trials": 20},
             r"\(here AutoMM\(n_trials=20, sampler='tpe', pruner='successive_halving'\)\)$"),
            ("use_ensemble", True, r"the ensemble is AutoMM\(ensemble_size=\.\.\.\): 'auto'"),
            ("max_trials", 10, r"n_trials=: AutoMM\(n_trials=10\)$")):  # (AutoKeras's)
        with pytest.raises(TypeError, match=rf"^AutoMM\(\) got an unexpected keyword argument '{keyword}'; .*{hint}"):
            AutoMM(**{keyword: value})
    # AutoGluon's fit takes seed=, save_path=, ...; Keras's epochs=, validation_data=, validation_split=
    for keyword, value, hint in (
            ("seed", 0, r"AutoMM\(random_state=0\)$"),
            ("save_path", "m", r"written with save\(path\) and read with AutoMM\.load\(path\)$"),
            ("eval_metric", "root_mean_squared_error", r"AutoMM\(metric='rmse'\)$"),
            ("hyperparameter_tune_kwargs", {"num_trials": 5}, r"\(here AutoMM\(n_trials=5\)\)$"),
            ("epochs", 3, r"max_epochs=: AutoMM\(max_epochs=3\)$"),
            ("validation_data", (X, y), r"fit\(X, y, X_val=X_val, y_val=y_val\)$"),
            ("validation_split", 0.2, r"holdout_frac=: AutoMM\(holdout_frac=0\.2\)$")):
        with pytest.raises(TypeError, match=rf"^AutoMM\.fit\(\) got an unexpected keyword argument '{keyword}'; .*{hint}"):
            AutoMM(**tiny()).fit(X, y, **{keyword: value})
    # AutoGluon's names of automm's metrics, given as metric=
    with pytest.raises(InputError, match=r"got 'mean_absolute_error'; AutoGluon's 'mean_absolute_error' is 'mae' here$"):
        AutoMM(max_epochs=1, metric="mean_absolute_error").fit(X, [1.5, 2.5, 3.5] * 4)
    # AutoGluon's options of predict and extract_embedding, given beside the inputs: no "pass the inputs positionally"
    with pytest.raises(TypeError, match=r"^AutoMM\.predict\(\) got an unexpected keyword argument 'realtime'; it takes "
                                        r"the inputs only: predict\(X\) or predict\(X_img, X_txt\)$"):
        AutoMM().predict(X, realtime=False)
    with pytest.raises(TypeError, match=r"'as_tensor'; it takes the inputs only: transform\(X\)"):
        AutoMM().transform(X, as_tensor=True)
    with pytest.raises(TypeError, match=r"'data'; it takes the inputs as positional arguments: predict\(X\)"):
        AutoMM().predict(data=X)  # (AutoGluon's name of the inputs)
    # and its attributes
    for attribute, hint in (("class_labels", r"the attribute classes_"), ("positive_class", r"positive_class\(model\)"),
                            ("eval_metric", r"the parameter metric; .*fit_summary\(\)\['validation_metric'\]$")):
        with pytest.raises(AttributeError, match=rf"^'AutoMM' object has no attribute '{attribute}'; .*{hint}"):
            getattr(AutoMM(), attribute)


def test_the_hint_for_autogluons_tune_kwargs_writes_only_values_automm_takes():
    """AutoGluon's ``searcher="grid"`` was written back as ``AutoMM(sampler='grid')``, which automm
    refuses (its samplers: tpe, random, cmaes, nsgaii); a value automm has no name for is left out
    of the example, one it names otherwise is written its way."""
    for given, example in (({"searcher": "grid", "num_trials": 4}, r" \(here AutoMM\(n_trials=4\)\)$"),
                           ({"searcher": "grid"}, r"for ASHA, \.\.\.\)$"),
                           ({"searcher": "Random", "scheduler": "hyperband"},
                            r" \(here AutoMM\(sampler='random', pruner='hyperband'\)\)$"),
                           ({"num_trials": "20"}, r"for ASHA, \.\.\.\)$")):
        with pytest.raises(TypeError, match=r"'hyperparameter_tune_kwargs'; the search is the estimator's: .*"
                                            + example) as caught:
            AutoMM(hyperparameter_tune_kwargs=given)
        written = re.search(r"here (AutoMM\(.*\))\)$", str(caught.value))
        if written:  # the example's values are valid ones
            eval(written.group(1), {"AutoMM": AutoMM})._validate_params()


def test_a_missing_leaderboard_and_a_label_columns_name_given_to_score_say_what_to_do(tmp_path):
    X, y = ["a b", "c d", "e f"] * 6, ["x", "y", "z"] * 6
    single = AutoMM(**tiny(max_epochs=1)).fit(X, y)
    frame = pd.DataFrame({"x0": X, "label": y})
    with pytest.raises(InputError, match=r"^y: .*got the string 'label'.*: score\(frame.drop\(columns='label'\)"):
        single.score(frame, "label")  # (not "fit(...)")
    weighted = frame.assign(w=1.0)
    with pytest.raises(InputError, match=r"^sample_weight: .*got the string 'w'; .*: score\(X.drop\(columns=\['w'\]\), "
                                         r"y, sample_weight=X\['w'\]\)$"):
        single.score(weighted[["x0", "w"]], y, sample_weight="w")  # (not "fit(...)")
    with pytest.raises(InputError, match=r"^sample_weight: .*got the string 'balanced'; .*score\(X.drop"):
        single.score(frame[["x0"]], y, sample_weight="balanced")  # (no class_weight: a score weighs no training)
    with pytest.raises(InputError, match=r"^sample_weight_val: .*got the string 'w'; .*: fit\(X, y, "
                                         r"X_val=X_val.drop\(columns=\['w'\]\), y_val=y_val, sample_weight_val=X_val\['w'\]\)$"):
        AutoMM(max_epochs=1).fit(frame[["x0"]], y, X_val=frame[["x0"]], y_val=y, sample_weight_val="w")
    with pytest.raises(AttributeError, match=r"'leaderboard_'; a fit without a search .* n_trials= of 2 or more$"):
        single.leaderboard_
    searched = AutoMM(**tiny(max_epochs=1), n_trials=2, search_space={"linear_model": False}).fit(X, y)
    assert len(searched.leaderboard_) == 2
    loaded = AutoMM.load(searched.save(tmp_path / "model"))
    with pytest.raises(AttributeError, match=r"'leaderboard_'; a loaded model keeps no leaderboard_ "
                                             r"\(fit_summary\(\)\['trials'\]"):
        loaded.leaderboard_
    assert not hasattr(loaded, "leaderboard_") and loaded.fit_summary()["trials"]["total"] == 2


def test_missing_image_files_are_named_before_training(tmp_path):
    good = tmp_path / "ok.png"
    Image.new("RGB", (8, 8)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [str(good), str(tmp_path / "missing.png"), str(broken), str(good)]
    with pytest.raises(InputError, match=r"2 of [0-9]+ images cannot be read: row 1 .*file not found; row 2 .*not a readable"):
        AutoMM(**tiny()).fit(paths, ["a b", "c d", "e f", "g h"], [0, 1, 0, 1])
    paths = [str(good), "https://example.com/a.png", str(tmp_path), str(good), str(good)]
    with pytest.raises(InputError, match=r"row 1 \('https://example.com/a.png'\): a URL; automm reads local files only "
                                         r".*; row 2 .*: a directory, not an image file"):
        AutoMM(**tiny()).fit(paths, ["a b", "c d", "e f", "g h", "i j"], [0, 1, 0, 1, 0])


def test_truncated_image_files_are_found_before_training(tmp_path):
    # a copy cut short has a valid header and used to fail only when decoded, in every trial
    from automm.data import validate_images

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    paths = []
    tmp_path = tmp_path / "photos-copied-from-the-shop" / "a-second-folder-to-make-paths-long"  # over 80 characters
    tmp_path.mkdir(parents=True)
    for fmt in ("PNG", "JPEG"):
        whole = tmp_path / f"whole.{fmt.lower()}"
        Image.fromarray(pixels).save(whole, format=fmt)
        cut = tmp_path / f"cut.{fmt.lower()}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        padded = tmp_path / f"padded.{fmt.lower()}"  # bytes after the end marker are fine
        padded.write_bytes(whole.read_bytes() + b"\0" * 64)
        paths += [str(whole), str(cut), str(padded)]
    with pytest.raises(InputError, match=r"2 of [0-9]+ images cannot be read: row 1 \('.*cut.png'\): truncated image file "
                                         r"\(cut short: re-copy it\); row 4 \('.*cut.jpeg'\): truncated") as caught:
        validate_images("photo", paths)
    # a long path is elided in its middle: its start and its file name stay
    assert re.search(r"row 1 \('[^']{10,}\.\.\.[^']*paths-long/cut\.png'\)", str(caught.value)), str(caught.value)
    data = Path(paths[0]).read_bytes()
    with pytest.raises(InputError, match=r"row 1 \(bytes\): bytes of a truncated image file"):
        validate_images("photo", [data, data[:-40]])
    with pytest.raises(InputError, match=r"row 0 .*: truncated image file"):
        AutoMM(**tiny()).fit([paths[1]] + [paths[0]] * 3, ["a red cup", "the blue hat", "one green box", "a car"],
                             [0, 1, 0, 1])


def test_a_few_unreadable_images_count_as_missing_with_a_warning(tmp_path):
    # a scraped set of photos with a broken file or two still trains; more is a mistake to fix
    rng = np.random.default_rng(0)
    labels = ["dark", "light"] * 20
    paths = []
    for i, label in enumerate(labels):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((12, 12, 3), 30 if label == "dark" else 220, np.uint8)).save(path)
        paths.append(str(path))
    paths[3] = str(tmp_path / "gone.png")
    texts = [" ".join(rng.choice(["a", "plain", "small", "photo", "of", "it"], 3)) for _ in labels]
    with pytest.warns(UserWarning, match=r"column 'x0': 1 of 40 images cannot be read and count as missing: "
                                         r"row 3 \('.*gone.png'\): file not found"):
        model = AutoMM(**tiny()).fit(paths, texts, labels)
    with pytest.warns(UserWarning, match="1 of 40 images cannot be read"):
        assert len(model.predict(paths, texts)) == 40
    paths[5] = str(tmp_path / "also_gone.png")
    paths[7] = "https://example.com/x.png"
    with pytest.raises(InputError, match=r"column 'x0': 3 of [0-9]+ images cannot be read"):
        model.predict(paths, texts)


def test_relative_image_paths_that_are_missing_get_a_hint(tmp_path, monkeypatch):
    # paths relative to a CSV file's folder, read from another working directory
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / name)
    paths = ["images/a.png", "images/b.png"] * 2
    monkeypatch.chdir(tmp_path / "images")
    with pytest.raises(InputError, match=r"4 of [0-9]+ images cannot be read: .*relative paths are read from the working "
                                         r"directory \(.*images\)"):
        AutoMM(**tiny()).fit(paths, ["a b", "c d", "e f", "g h"], [0, 1, 0, 1])
    monkeypatch.chdir(tmp_path)
    texts = ["a red cup", "the blue hat", "one green box", "big yellow car"]
    model = AutoMM(**tiny()).fit(paths, texts, [0, 1, 0, 1])
    assert model.predict(paths[:1], texts[:1]).shape == (1,)


@pytest.mark.parametrize("y, message", [
    ("label", r"got the string 'label'; to take the labels from a column of the table: "
              r"fit\(frame.drop\(columns='label'\), frame\['label'\]\)"),
    (np.zeros((4, 2)), r"shape \(4, 2\) \(for several targets, one model each: sklearn.multioutput"),
    (pd.DataFrame({"a": [0, 1, 1, 0], "b": [1, 1, 0, 0]}), r"2 columns \(for several targets.*MultiOutputClassifier"),
    (np.eye(2)[[0, 1, 1, 0]], r"shape \(4, 2\) \(one-hot encoded labels: pass each row's class, e.g. "
                              r"y.argmax\(axis=1\)\)"),
    (pd.get_dummies(pd.Series(["x", "y", "y", "x"])), r"2 columns \(one-hot encoded labels \(dummies\).*idxmax"),
])
def test_labels_of_the_wrong_shape_say_what_to_pass(y, message):
    with pytest.raises(InputError, match=r"^y: .*" + message):
        AutoMM(**tiny()).fit(pd.DataFrame({"text": ["a b", "c d", "e f", "g h"]}), y)


@pytest.mark.parametrize("images, message", [
    (np.random.default_rng(0).uniform(0, 16, (6, 8, 8)), r"values in \[0, 1\]; got values in \[0\.\d+, 15\.\d+\] "
                                                          r"\(divide by 15\.\d+, its maximum"),  # sklearn's digits
    (np.full((6, 8, 8), 300), r"0\.\.255; got values in 300\.\.300"),
    (np.zeros((6, 8, 8, 2), np.uint8), r"\(N, H, W\) or \(N, H, W, C\).*shape \(6, 8, 8, 2\)"),
    ([np.zeros((8, 8), np.uint8)] * 5 + [np.full((8, 8), -1.0)], r"row 5 \(ndarray\): float image arrays"),
])
def test_unusable_image_arrays_are_named_before_training(images, message, monkeypatch):
    import automm.estimator

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", no_training)
    with pytest.raises(InputError, match=r"column 'x0': .*" + message):
        AutoMM(**tiny()).fit(images, [0, 1] * 3)


def test_bad_parameters_are_named():
    with pytest.raises(InputError, match="time_limit"):
        AutoMM(time_limit=-1).fit(["a b", "c d"], [0, 1])
    with pytest.raises(InputError, match="max_epochs"):
        AutoMM(max_epochs=0).fit(["a b", "c d"], [0, 1])
    with pytest.raises(UnknownComponentError, match=r"unknown fusion 'concatt'. Did you mean 'concat'\?.*Known fusions: attention, compare, concat"):
        AutoMM(fusion="concatt").fit(["a b", "c d"], [0, 1])
    with pytest.raises(InputError, match="encoders.*'cnn' encodes 'image'"):
        AutoMM(encoders={"text": "cnn"}).fit(["a long text here", "another long text"], [0, 1])
    with pytest.raises(InputError, match=r"cache_dir: expected a directory path or None, got 5"):
        AutoMM(cache_dir=5).fit(["a b", "c d"], [0, 1])
    with pytest.raises(InputError, match=r"verbose: expected an integer >= 0"):
        AutoMM(verbose="loud").fit(["a b", "c d"], [0, 1])


@pytest.mark.parametrize("params, message", [
    (dict(weight_decay=float("nan")), r"weight_decay: expected a number >= 0, got nan"),
    (dict(learning_rate=float("inf")), r"learning_rate: expected a positive number, got inf"),
    (dict(label_smoothing="0.1"), r"label_smoothing: expected a number in \[0, 1\), got '0.1'"),
    (dict(random_state=-1), r"random_state: expected an integer in \[0, 2\*\*32 - 1\], a numpy RandomState or None, got -1"),
    (dict(random_state=2**40), r"random_state: expected an integer"),
    (dict(random_state=2**32), r"random_state: expected an integer in \[0, 2\*\*32 - 1\]"),  # (numpy's seeds end there)
    (dict(holdout_frac=0), r"holdout_frac: expected a number in \(0, 1\), got 0"),
    (dict(holdout_frac=1.0), r"holdout_frac: expected a number in \(0, 1\), got 1.0"),
    (dict(amp="no"), r"amp: expected True or False, got 'no'"),
    (dict(class_weight={0: -5}), r"class_weight: weights must be finite numbers >= 0; wrong: \{0: -5\}"),
    (dict(class_weight={0: "2"}), r"class_weight: weights must be finite numbers >= 0; wrong: \{0: '2'\}"),
    (dict(class_weight={0: float("nan")}), r"class_weight: weights must be finite"),
    (dict(class_weight={0: 0, 1: 0}), r"class_weight: \{0: 0, 1: 0\} gives every training row the weight 0"),
    (dict(class_weight="balance"), r"class_weight: expected None, 'balanced' or a dict label -> weight, got 'balance'; "
                                   r"did you mean 'balanced'\?$"),  # (a typo had no hint where other names have)
    (dict(problem_type="clasification"), r"problem_type: expected one of .*, got 'clasification'; classes are "
                                         r"'binary' or 'multiclass'"),
    (dict(problem_type="regresion"), r"problem_type: .*got 'regresion'; did you mean 'regression'\?$"),
    (dict(bag_folds=10000), r"bag_folds: 10000 folds need at least as many training rows; there are 12"),
    (dict(encoders={"text": {"name": "hashed_ngram", "n_bucket": 64}}),
     r"encoders\['text'\]: encoder 'hashed_ngram' has no hyperparameter 'n_bucket' \(did you mean 'n_buckets'\?\)"),
    (dict(fusion={"name": "concat", "hidden": 8}), r"fusion: fusion 'concat' has no hyperparameter 'hidden'"),
    (dict(augmentations=[{"name": "token_dropout", "rate": 0.1}]),
     r"augmentations\[0\]: augmentation 'token_dropout' has no hyperparameter 'rate'"),
    (dict(time_limit=10**400), r"time_limit: expected a positive number of seconds or None, got 1000"),
    (dict(column_types={"x0": "text"}, encoders={"x0": {"name": "hashed_ngram", "emb": 8}}),
     r"encoders\['x0'\]: encoder 'hashed_ngram' has no hyperparameter 'emb'"),  # named as the user keyed it
])
def test_wrong_parameter_values_are_named_before_training(params, message, monkeypatch):
    import automm.estimator

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", no_training)
    with pytest.raises(InputError, match=message):
        AutoMM(max_epochs=1, **params).fit([f"title {i} of item {i % 5}" for i in range(12)], [0, 1, 1] * 4)


def test_a_class_weight_label_that_yaml_read_as_a_boolean_is_named_so(monkeypatch):
    """A recipe's ``class_weight: {yes: 20}`` is ``{True: 20}`` to YAML 1.1 (PyYAML): the error said only
    "labels [True] are not among the classes ['no', 'yes']", naming a label nobody wrote."""
    import automm.estimator
    from automm.recipes import load_yaml

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", lambda *a, **k: pytest.fail("training started"))
    texts = [f"title {i} of item {i % 5}" for i in range(12)]
    weights = load_yaml("class_weight: {yes: 20}")["class_weight"]
    with pytest.raises(InputError, match=r"labels \[True\] are not among the classes \['no', 'yes'\]; True is how a "
                                         r"YAML recipe reads yes: quote the label there \('yes': \.\.\.\)"):
        AutoMM(max_epochs=1, class_weight=weights).fit(texts, ["no", "yes", "yes"] * 4)
    with pytest.raises(InputError, match=r"labels \['1'\] are not among the classes \[0, 1\]; did you mean 1\?"):
        AutoMM(max_epochs=1, class_weight={"1": 5}).fit(texts, [0, 1, 1] * 4)


def test_max_epochs_that_no_training_gets_through_is_refused_without_a_time_limit(stop_at_training):
    """max_epochs=10**23 trained for ever at chance: the schedule, spanning every epoch, warmed up for
    5e21 of them, so no epoch settled and early stopping never came. With a time_limit the schedule
    is fitted to the time, and any max_epochs means "until then"."""
    X, y = [f"title {i} of item {i % 5}" for i in range(12)], [0, 1, 1] * 4
    with pytest.raises(InputError, match=r"^max_epochs: 100000000000000000000000 epochs without a time_limit would "
                                         r"not end \(the learning rate warms up over the first 5e\+21 of them\); "
                                         r"give at most 1000000, or a time_limit= to train by time"):
        AutoMM(max_epochs=10**23).fit(X, y)
    for params in (dict(max_epochs=10**23, time_limit=60, n_trials=1), dict(max_epochs=10**6)):
        with pytest.raises(stop_at_training):
            AutoMM(**params).fit(X, y)


@pytest.mark.parametrize("spec", [[10**23], 10**23, {"low": 1, "high": 10**23}, {"choices": [5, 10**23]}])
def test_a_search_space_max_epochs_that_no_training_gets_through_is_refused_without_a_time_limit(spec, stop_at_training):
    """search_space={"training": {"max_epochs": [10**23]}} without a time_limit trained its trials for
    ever (each trial's schedule spans its max_epochs), while max_epochs=10**23 is refused before any
    work: the search space's value, choice or range is refused the same way, before any trial."""
    X, y = [f"title {i} of item {i % 5}" for i in range(12)], [0, 1, 1] * 4
    space = {"training": {"max_epochs": spec}}
    with pytest.raises(InputError, match=r"^search_space\['training'\]\['max_epochs'\]: 100000000000000000000000 "
                                         r"epochs without a time_limit would not end \(the learning rate warms up "
                                         r"over the first 5e\+21 of them\); give at most 1000000, or a time_limit="):
        AutoMM(n_trials=1, search_space=space).fit(X, y)
    for params in (dict(search_space=space, time_limit=60), dict(search_space={"training": {"max_epochs": [10**6]}})):
        with pytest.raises(stop_at_training):
            AutoMM(n_trials=1, **params).fit(X, y)


def test_a_misspelt_hyperparameter_in_the_search_space_is_named_before_any_trial():
    # were trials run, each would fail and fit would raise SearchError after them
    space = {"encoders": {"text": {"hashed_ngram": {"emb_dimm": [16, 32]}}}}
    with pytest.raises(InputError, match=r"search_space\[.*\]\['hashed_ngram'\]: encoder 'hashed_ngram' has no "
                                         r"hyperparameter 'emb_dimm' \(did you mean 'emb_dim'\?\)"):
        AutoMM(n_trials=3, max_epochs=1, search_space=space).fit(
            [f"title {i} of item {i % 5}" for i in range(12)], [0, 1, 1] * 4)


def test_numpy_scalars_are_numbers_for_every_parameter(stop_at_training):
    # what GridSearchCV passes when its grid is a numpy array
    clf = AutoMM(weight_decay=np.float32(0.01), holdout_frac=np.float64(0.2), label_smoothing=np.float32(0.1),
                 head_dropout=np.float32(0.1), num_workers=np.int64(0), max_epochs=np.int64(1),
                 patience=np.int32(2), random_state=np.int64(3), amp=np.bool_(True))
    with pytest.raises(stop_at_training):  # validation passed
        clf.fit(["a b", "c d", "e f"] * 4, [0, 1, 1] * 4)


def test_labels_mixing_strings_and_numbers_are_refused():
    # numpy would make every label a string: predict would return '1' where y held 1
    with pytest.raises(InputError, match=r"y: labels mix strings and numbers \(e.g. 'other' and 1\), so predict "
                                         r"would return '1' for 1; give them one type"):
        AutoMM(max_epochs=1).fit(["a b", "c d", "e f", "g h"], [1, "other", 1, "other"])


def test_labels_mixing_strings_and_booleans_are_refused():
    # as with numbers: numpy would make True the string 'True' (a list), or the problem type unknown (a Series)
    for y in ([True, "no", True, "no"], pd.Series([True, "no", True, "no"]), [np.bool_(True), "no"] * 2):
        with pytest.raises(InputError, match=r"y: labels mix strings and booleans \(e.g. 'no' and True\), so "
                                             r"predict would return 'True' for True; give them one type"):
            AutoMM(max_epochs=1).fit(["a b", "c d", "e f", "g h"], y)


def test_a_holdout_that_leaves_too_few_rows_to_train_on_is_named(emoji_split):
    train, _ = emoji_split  # 9 classes
    texts, labels = train["name"].tolist()[:120], train["category"].tolist()[:120]
    with pytest.raises(InputError, match=r"holdout_frac: 0.95 of the 120 samples holds out 114 and leaves 6 to train "
                                         r"on, fewer than the 9 classes \(every class needs a training row\); use "
                                         r"holdout_frac=0.92 or less \(at most 111 rows held out\)"):
        AutoMM(holdout_frac=0.95, max_epochs=1).fit(texts, labels)
    assert len(AutoMM(holdout_frac=0.5, max_epochs=1).fit(texts, labels).classes_) == 9
    with pytest.raises(InputError, match=r"y: 120 classes among 120 samples, so no row can be held out.*"
                                         r"problem_type='regression'"):
        AutoMM(problem_type="multiclass", max_epochs=1).fit(texts, [f"id-{i}" for i in range(120)])


def test_predict_before_fit_and_wrong_number_of_inputs(fitted, emoji_split):
    _, test = emoji_split
    with pytest.raises(NotFittedError, match="not fitted"):
        AutoMM().predict(["a"])
    with pytest.raises(InputError, match=r"expecting 2 features as input: fit was given 2 unnamed input column"):
        fitted.predict(test["name"].tolist())
    with pytest.raises(InputError, match="shape"):
        fitted.predict(np.zeros((3, 4, 4, 7)), ["a", "b", "c"])
    # one sample given bare rather than as a list of one
    with pytest.raises(InputError, match=r"X input 0: expected a sequence .* got str \(for one sample, pass a list"):
        fitted.predict(test["image"].iloc[0], test["name"].iloc[0])


# ---------------------------------------------------------------- Ctrl-C and failed fits


def test_ctrl_c_ends_training_with_the_best_epoch_so_far(emoji_split, monkeypatch):
    from helpers import CtrlC

    train, test = emoji_split
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [CtrlC(epoch=3)])
    model = AutoMM(**tiny(max_epochs=20))
    with pytest.warns(UserWarning, match=r"fit interrupted \(KeyboardInterrupt\) after 2 epochs: kept epoch [12]"):
        assert model.fit(train["name"].tolist(), train["category"].tolist()) is model
    assert len(model.history_) == 2 and model.best_epoch_ in (1, 2)
    assert model.stop_reason_ == "interrupted (KeyboardInterrupt) in epoch 3"
    assert model.predict(test["name"].tolist()[:4]).shape == (4,)


def test_the_ctrl_c_warning_names_the_score_it_shows(monkeypatch):
    """It said "holdout score -0.1100" of a regression, the negated mean squared error of the
    standardised targets, where the verbose lines say "r2 0.76"; a classifier's is its accuracy."""
    from helpers import CtrlC

    rng = np.random.RandomState(0)
    x = rng.uniform(size=(80, 2))
    y = 3 * x[:, 0] - x[:, 1]
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [CtrlC(epoch=3)])
    for target, named in ((y, r"holdout r2 0\.\d{4}"), (y > 1, r"holdout accuracy [01]\.\d{4}")):
        with pytest.warns(UserWarning, match=rf"fit interrupted \(KeyboardInterrupt\) after 2 epochs: kept epoch [12] "
                                             rf"\({named}\)$"):
            AutoMM(**tiny(max_epochs=10, encoders=None)).fit({"a": x[:, 0], "b": x[:, 1]}, target)


def test_a_fit_that_raises_keeps_the_earlier_model(emoji_split, monkeypatch):
    from helpers import CtrlC

    train, test = emoji_split
    texts = test["name"].tolist()
    model = AutoMM(**tiny(max_epochs=1)).fit(train["name"].tolist(), train["category"].tolist())
    before, classes, model_ = model.predict_proba(texts), model.classes_, model.model_
    relabelled = ["even" if i % 2 else "odd" for i in range(len(train))]
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [CtrlC(epoch=1)])  # before any epoch ends
    with pytest.raises(KeyboardInterrupt):
        model.fit(train["name"].tolist(), relabelled)
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [Exploding()])
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(train["image"].tolist(), train["name"].tolist(), relabelled)
    # not a mix of the new labels (or inputs) and the old network
    assert model.model_ is model_ and list(model.classes_) == list(classes) and model.input_positional_
    assert len(model.inputs_) == 1
    np.testing.assert_array_equal(model.predict_proba(texts), before)


class Exploding(Callback):
    def on_epoch_end(self, trainer, record) -> None:
        raise RuntimeError("boom")


@pytest.mark.parametrize("run, epoch, message, folds", [
    (3, 1, r"fit interrupted \(KeyboardInterrupt\) in fold 3 of 5: kept the 2 fold models trained", 2),
    (2, 1, r"fit interrupted \(KeyboardInterrupt\) in fold 2 of 5: kept the 1 fold model trained", 1),
    (1, 2, r"fit interrupted \(KeyboardInterrupt\) in epoch 2 of fold 1 of 5: kept its epoch 1", 1),
])
def test_ctrl_c_ends_a_bagged_fit_with_its_finished_folds(emoji_split, monkeypatch, run, epoch, message, folds):
    from automm import pipeline
    from helpers import CtrlC

    train, test = emoji_split
    train_fold, calls = pipeline.train_candidate, []

    def train_candidate(*args, callbacks=(), **kwargs):  # Ctrl-C in the run-th fold
        calls.append(1)
        extra = [CtrlC(epoch=epoch)] if len(calls) == run else []
        return train_fold(*args, callbacks=[*callbacks, *extra], **kwargs)
    monkeypatch.setattr(pipeline, "train_candidate", train_candidate)
    model = AutoMM(**tiny(max_epochs=2, bag_folds=5))
    with pytest.warns(UserWarning, match=message):
        model.fit(train["name"].tolist(), train["category"].tolist())
    kept = len(model.ensemble_.members) if hasattr(model, "ensemble_") else 1
    assert kept == folds and model.predict(test["name"].tolist()[:4]).shape == (4,)


@pytest.mark.parametrize("search", [False, True])
def test_ctrl_c_inside_cross_validation_stops_the_whole_loop(emoji_split, monkeypatch, search):
    # stopping one fit gracefully would only move cross_val_score on to the next fold
    from sklearn.model_selection import cross_val_score

    from helpers import CtrlC

    train, _ = emoji_split
    callback = CtrlC(at=2, epoch=2)  # in the second training run, after an epoch
    monkeypatch.setattr(AutoMMClassifier, "_extra_callbacks", lambda self: [callback])
    params = tiny(max_epochs=3, **({"n_trials": 3, "ensemble_size": 1, "pruner": "none"} if search else {}))
    with pytest.raises(KeyboardInterrupt):
        cross_val_score(AutoMMClassifier(**params), train[["name"]], train["category"], cv=3)
    assert callback.runs == 2  # nothing trained after the interrupt


def test_an_encoder_named_for_a_modality_the_data_lack_is_reported():
    """Short one-word texts are read as categories: the text encoder the user named would be
    silently unused; the warning names the roles and how to set one."""
    words, labels = ["LOUD!", "quiet", "HEY!!", "calm"] * 5, ["loud", "quiet", "loud", "quiet"] * 5
    with pytest.warns(UserWarning, match=r"encoders\['text'\] is not used; the columns' roles are "
                                         r"\{'x0': 'categorical'\}.*column_types=\{'x0': 'text'\}") as record:
        AutoMM(**tiny(encoders={"text": "gru"}, max_epochs=1)).fit(words, labels)
    assert record[0].filename == __file__  # points at the user's call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoMM(**tiny(encoders={"text": "gru"}, max_epochs=1, column_types={"x0": "text"})).fit(words, labels)


def test_a_search_space_naming_a_modality_the_data_lack_is_reported():
    """The same choice given through ``search_space=`` was ignored without a word."""
    words, labels = ["LOUD!", "quiet", "HEY!!", "calm"] * 5, ["loud", "quiet", "loud", "quiet"] * 5
    space = {"encoders": {"text": ["gru", "transformer"]}}
    with pytest.warns(UserWarning, match=r"search_space\['encoders'\]\['text'\] is not used; the columns' roles "
                                         r"are \{'x0': 'categorical'\}") as record:
        AutoMM(**tiny(search_space=space, n_trials=1, max_epochs=1, pruner="none")).fit(words, labels)
    assert record[0].filename == __file__

def test_many_integer_classes_and_media_paths_read_as_text_are_warned_about(builtin_only, emoji_split, tmp_path):
    train, _ = emoji_split
    with pytest.warns(UserWarning, match=r"y: \d+ integer values, read as classes .*problem_type='regression'"):
        model = AutoMM(max_epochs=1, num_workers=0).fit(train[["name"]], train["name"].str.len())
    assert model.problem_type_ == "multiclass"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a classifier's integer labels are classes: nothing to warn about
        AutoMMClassifier(max_epochs=1, num_workers=0).fit(train[["name"]], train["name"].str.len())
    clips = {"clip": [str(tmp_path / f"c{i}.wav") for i in range(40)], "caption": train["name"].head(40).tolist()}
    with pytest.warns(UserWarning, match=r"column 'clip' holds \.wav file paths, but no installed plugin reads them"):
        model = AutoMM(max_epochs=1, num_workers=0).fit(clips, train["category"].head(40))
    assert model.column_roles_["clip"] == "text"


def test_whole_number_labels_read_as_amounts_near_the_rule_are_noted():
    """12 distinct whole-number floats in 60 rows became a regression target without a word, while
    the opposite decision (more than 20 integer classes) warned."""
    X = np.arange(60, dtype=float).reshape(-1, 1)
    with pytest.warns(UserWarning, match=r"y: 12 whole-number values, read as a regression target \(whole-number "
                                         r"floats are classes only up to 10 .*problem_type='multiclass'") as record:
        model = AutoMM(max_epochs=1, num_workers=0).fit(X, [float(i % 12) for i in range(60)])
    assert model.problem_type_ == "regression" and record[0].filename == __file__
    with pytest.warns(UserWarning, match=r"y: 25 whole-number values, read as a regression target \(integers"):
        assert AutoMM()._resolve_problem_type(np.arange(30) % 25) == "regression"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # far from the rule, asked for, or not whole: nothing to note
        assert AutoMM()._resolve_problem_type(18.0 + np.arange(1000) % 60) == "regression"
        assert AutoMM()._resolve_problem_type(np.arange(300) % 200) == "regression"
        assert AutoMM()._resolve_problem_type(np.arange(60) % 12 + 0.5) == "regression"
        assert AutoMM(problem_type="regression")._resolve_problem_type(np.arange(60) % 12.0) == "regression"
        assert AutoMMRegressor()._resolve_problem_type(np.arange(60) % 12.0) == "regression"


def test_scikit_learn_1_7s_warning_on_many_integer_values_is_not_passed_on(monkeypatch):
    """scikit-learn 1.7's type_of_target (the floor's; 1.8 moved the warning to its classifiers)
    warned "The number of unique classes is greater than 50% of the number of samples" on the
    labels automm read to choose the problem type: amounts it then read as a regression target."""
    import sklearn.utils.multiclass as multiclass

    newer = multiclass.type_of_target
    said = "The number of unique classes is greater than 50% of the number of samples."
    monkeypatch.setattr(multiclass, "type_of_target", lambda y, *a, **k: (warnings.warn(said), newer(y, *a, **k))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AutoMM()._resolve_problem_type(np.arange(300) % 200) == "regression"
        with pytest.raises(InputError, match=r"AutoMMClassifier needs class labels, got 'continuous' values"):
            AutoMMClassifier()._resolve_problem_type(np.linspace(0, 1, 30))
    with pytest.warns(UserWarning, match="The number of unique classes"):  # (what is not automm's shows)
        multiclass.type_of_target(np.arange(30))


def test_evenly_spaced_whole_numbers_read_as_classes_are_warned_about():
    """Years (2008 to 2019) or a title's word count (2 to 12) became classes under AutoMM() without
    a word (only automm init said that regression may be meant); fit says so now. Class codes
    0..k-1 or 1..k (digits) are left unremarked."""
    years = 2008 + np.arange(240) % 12
    with pytest.warns(UserWarning, match=r"y: 12 evenly spaced whole numbers, 2008 to 2019, read as 12 classes: .*"
                                         r"pass problem_type='regression' if they are years") as record:
        model = AutoMM(max_epochs=1, num_workers=0).fit(np.arange(240.0).reshape(-1, 1), years)
    assert model.problem_type_ == "multiclass" and record[0].filename == __file__
    with pytest.warns(UserWarning, match=r"y: 11 evenly spaced whole numbers, 0 to 100 by 10, read as 11 classes"):
        assert AutoMM()._resolve_problem_type(np.arange(220) % 11 * 10) == "multiclass"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AutoMM()._resolve_problem_type(np.arange(200) % 10) == "multiclass"  # digits
        assert AutoMM()._resolve_problem_type(1 + np.arange(240) % 12) == "multiclass"
        assert AutoMM()._resolve_problem_type(2008 + np.arange(240) % 5) == "multiclass"  # too few to say
        assert AutoMMClassifier()._resolve_problem_type(years) == "multiclass"
        assert AutoMM(problem_type="multiclass")._resolve_problem_type(years) == "multiclass"


def test_a_regressors_holdout_error_is_reported_in_the_targets_units(builtin_only):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] * 100 + rng.normal(size=200) * 10  # noise of 10 units: the best error possible
    summary = AutoMMRegressor(max_epochs=20, num_workers=0, random_state=0).fit(X, y).fit_summary()
    assert 5 < summary["validation_rmse"] < 30
    summary = AutoMMRegressor(max_epochs=20, num_workers=0, random_state=0, metric="mae").fit(X, y).fit_summary()
    assert 4 < summary["validation_mae"] < 25 and "validation_rmse" not in summary


def test_a_regression_fitted_for_r2_reports_its_validation_r2(builtin_only, tmp_path):
    """metric="r2" reported only the standardised negative MSE (-0.84 where the holdout's R² was
    0.16) and the RMSE: the R² asked for was nowhere in fit_summary() or automm fit's report."""
    from sklearn.metrics import r2_score

    from automm.cli import _fit_report

    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(120, 3)), rng.normal(size=(40, 3))
    y, y_val = (x[:, 0] * 100 + rng.normal(size=len(x)) * 50 + 500 for x in (X, X_val))
    weights = np.linspace(0.5, 2.0, 40)
    model = AutoMMRegressor(max_epochs=3, num_workers=0, random_state=0, metric="r2")
    summary = model.fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=weights).fit_summary()
    assert summary["validation_on"] == "X_val"
    assert summary["validation_r2"] == pytest.approx(r2_score(y_val, model.predict(X_val), sample_weight=weights),
                                                     abs=1e-4)
    assert summary["validation_r2"] != pytest.approx(summary["validation_score"], abs=0.05)  # (not the same number)
    assert AutoMMRegressor.load(model.save(tmp_path / "model")).fit_summary()["validation_r2"] == summary["validation_r2"]
    report = _fit_report({**summary, "recipe": "r.yaml", "data": "d.csv", "label": "y", "train_rows": 120,
                          "test_rows": 0, "model_dir": "m"}, None)
    assert re.search(rf"\n  validation r2 +{summary['validation_r2']:.4f}\n", report)
    # a bag's out-of-fold rows are every training row, whose standardised targets' variance is 1
    bagged = AutoMMRegressor(max_epochs=2, num_workers=0, random_state=0, metric="r2", bag_folds=2).fit(X, y)
    summary = bagged.fit_summary()
    assert summary["validation_on"] == "out-of-fold"
    assert summary["validation_r2"] == pytest.approx(1 + summary["validation_score"], abs=1e-4)
    # metric="mae" scores no squared error: its MAE, no R²
    assert "validation_r2" not in AutoMMRegressor(max_epochs=1, num_workers=0, random_state=0,
                                                  metric="mae").fit(X, y).fit_summary()


def test_fit_warns_when_the_label_column_is_left_among_the_inputs(emoji_split):
    import warnings as _warnings

    train = emoji_split[0].head(40)
    with pytest.warns(UserWarning, match=r"X: column 'category' holds the labels y in every row: .*; "
                                         r"leave it out of X: X.drop\(columns=\['category'\]\)$"):
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name", "category"]], train["category"])
    with _warnings.catch_warnings():
        _warnings.simplefilter("error", UserWarning)
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]], train["category"])


def test_predict_without_the_label_column_left_in_fit_says_it_held_the_labels(emoji_split, tmp_path):
    """Fitted with the label column among the inputs (warned), the model failed on new rows without it
    as on any missing column, advising a column of None, which predicts from nothing the model learnt
    to read; it names the column as the labels' and says to fit again without it (a loaded model too)."""
    train, test = emoji_split[0].head(40), emoji_split[1].head(5)
    with pytest.warns(UserWarning, match="holds the labels y"):
        model = AutoMM(**tiny(max_epochs=1)).fit(train[["name", "category"]], train["category"])
    said = (r"X: columns \['category'\] seen in fit are missing; got columns \['name'\]; column 'category' held the "
            r"labels y in every row in fit \(warned then\): the model reads the answer off it, so it cannot predict "
            r"rows without the answer: fit again without it: X\.drop\(columns=\['category'\]\)$")
    model.save(tmp_path / "model")
    for fitted in (model, AutoMM.load(tmp_path / "model")):
        with pytest.raises(InputError, match=said):
            fitted.predict(test[["name"]])
    with pytest.warns(UserWarning, match="holds the labels y"):
        positional = AutoMM(**tiny(max_epochs=1)).fit(train["name"].tolist(), train["category"].tolist(),
                                                      train["category"].tolist())
    with pytest.raises(InputError, match=r"expecting 2 features .*; column 'x1' held the labels y in every row in fit "
                                         r"\(warned then\): .*: fit again without that input$"):
        positional.predict(test["name"].tolist())
    other = AutoMM(**tiny(max_epochs=1)).fit(train[["name", "image"]], train["category"])
    with pytest.raises(InputError, match=r"missing; got columns \['name'\] \(to predict without one, give its "
                                         r"column with None in every row\)$"):
        other.predict(test[["name"]])


def test_fit_warns_of_split_constant_identifier_and_copied_columns(emoji_split):
    """A whole table handed to fit as it came (X = df.drop(columns=[label])): its split column
    (one value in the training rows), a constant and a copy of a column are kept, and fit says
    which they are and how to leave them out; an id is left out, said so with how to keep it; the
    same fit without them says nothing."""
    import warnings as _warnings

    train = emoji_split[0].head(40)
    X = train[["image", "name", "split"]].assign(id=range(1000, 1040), source="web", title=train["name"])
    with pytest.warns(UserWarning) as caught:
        clf = AutoMM(**tiny(max_epochs=1)).fit(X, train["category"])
    said = [str(w.message) for w in caught if str(w.message).startswith("X: column")]
    assert any(re.search(r"'split' \('train' \(a split column.*'source' \('web'\) hold one value in every row: .*"
                         r"X\.drop\(columns=\['split', 'source'\]\)", m) for m in said), said
    assert any(re.search(r"'id' \(read as numeric\) holds a distinct value in every row, as an identifier does.*: .*"
                         r"the model is fitted without it .*to keep it, give its role: column_types=\{'id': 'numeric'\}$",
                         m) for m in said), said
    assert any(re.search(r"'title' \(of 'name'\) holds the values of an earlier column in every row: .*"
                         r"X\.drop\(columns=\['title'\]\)", m) for m in said), said
    assert set(clf.column_roles_) == {"image", "name", "split", "source", "title"}  # kept, as given; the id left out
    assert clf.identifier_columns_ == ["id"] and clf.n_features_in_ == 6 and list(clf.feature_names_in_) == list(X.columns)
    with _warnings.catch_warnings():
        _warnings.simplefilter("error", UserWarning)
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]].assign(price=np.arange(40) * 7.5 % 11), train["category"])
        AutoMM(**tiny(max_epochs=1)).fit(train[["image", "name"]].assign(id=range(40)).to_numpy(), train["category"])
    # distinct whole numbers written as strings (prices): fit says how they read, and calls them no identifier
    from automm.data import as_table
    from automm.estimator import _identifier_columns

    prices = as_table([pd.DataFrame({"price": [str(100 + 7 * i) for i in range(40)], "sku": [f"SKU-{i:04d}" for i in range(40)]})])
    assert _identifier_columns(prices, {"price": "text", "sku": "text"}) == {"sku": "'sku' (read as text)"}


def test_fit_calls_no_sorted_number_an_identifier_and_names_a_constant_date_as_one():
    """A table sorted by a price or a time (distinct integers, rising by a few a row) was said
    to hold an identifier (automm init left such columns out); a constant datetime64 column was
    shown as its nanoseconds (1704103200000000000)."""
    from automm.data import as_table
    from automm.estimator import _columns_that_cannot_help, _identifier_columns

    n = 40
    table = as_table([{"price": np.array([100 + 3 * i + i % 4 for i in range(n)]),
                       "timestamp": 1_700_000_000 + 5 * np.arange(n), "row": np.arange(n) + 1,
                       "when": np.array(["2024-01-01T10:00"] * n, dtype="datetime64[ns]")}])
    roles = {"price": "numeric", "timestamp": "numeric", "row": "numeric", "when": "datetime"}
    said = _columns_that_cannot_help(table, roles)
    assert len(said) == 1, said
    assert said[0].startswith("column 'when' ('2024-01-01T10:00:00.000000000') holds one value in every row"), said
    assert list(_identifier_columns(table, roles)) == ["row"]


def test_fit_calls_no_column_of_titles_written_without_spaces_an_identifier():
    """Chinese or Japanese titles have no space and often a number (a size, a year): fit said such a
    column of distinct titles held an identifier ("X.drop(columns=['title'])"), where the same titles
    in English passed, and automm init left it out (a title read as a one-word code such as SKU-0012)."""
    from automm.data import as_table
    from automm.estimator import _identifier_columns

    words = ["男士T恤", "女士高跟鞋", "儿童运动鞋", "男士衬衫", "女士手提包"]
    titles = [f"{words[i % 5]}{2020 + i}新款" for i in range(40)]
    japanese = [f"メンズTシャツ{i + 1}枚組" for i in range(40)]
    table = as_table([{"title": titles, "japanese": japanese, "sku": [f"SKU-{i:04d}" for i in range(40)]}])
    assert list(_identifier_columns(table, {"title": "text", "japanese": "text", "sku": "text"})) == ["sku"]


def test_an_image_path_repeated_in_many_rows_is_checked_once(emoji_split, monkeypatch, tmp_path):
    import automm.data as data_module

    calls = []
    problem = data_module._image_file_problem
    monkeypatch.setattr(data_module, "_image_file_problem", lambda file: calls.append(1) or problem(file))
    paths = emoji_split[0]["image"].head(3).tolist()
    column = paths * 50 + [str(tmp_path / "gone.png")] * 2 + [None]
    with pytest.warns(UserWarning, match=r"2 of 152 images cannot be read"):
        unreadable = data_module.validate_images("image", column)
    assert unreadable == [150, 151] and len(calls) == 3


def test_prediction_in_chunks_gives_the_same_outputs(fitted, emoji_split, monkeypatch):
    import automm.estimator as estimator_module

    test = emoji_split[1].head(20)
    inputs = (test["image"].tolist(), test["name"].tolist())
    whole, embedding = fitted.predict_proba(*inputs), fitted.transform(*inputs)
    monkeypatch.setattr(estimator_module, "PREDICT_CHUNK_ROWS", 7)  # 7 + 7 + 6 rows
    chunked = fitted.predict_proba(*inputs)
    assert chunked.shape == whole.shape == (20, len(fitted.classes_))
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    np.testing.assert_allclose(fitted.transform(*inputs), embedding, atol=1e-5)


def test_classes_that_differ_only_in_case_or_spaces_are_warned_about(emoji_split):
    train, _ = emoji_split
    labels = train["category"].tolist()
    labels[:3] = [labels[0].lower() + " "] * 3  # "smileys & emotion ": one class written two ways
    with pytest.warns(UserWarning, match=r"y: 2 classes differ from another only in case, spaces or the Unicode "
                                         r"form of accented letters \(.*\(3 rows\).*\) and are learnt as "
                                         r"different classes") as record:
        AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(train["name"].tolist(), labels)
    assert record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(train["name"].tolist(),
                                                                          train["category"].tolist())


def test_ordinary_columns_of_mixed_values_raise_no_number_or_date_warning():
    """Sizes ('S' among 38, 40), postal codes among zip codes, version numbers: read as they are,
    without a warning that they are numbers or dates to fix."""
    rng = np.random.default_rng(0)
    columns = {"size": list(rng.choice(["38", "40", "42"], 85)) + list(rng.choice(["S", "M", "XL"], 15)),
               "zip": [f"{z:05d}" for z in rng.integers(10000, 99999, 90)] + ["K1A 0B1"] * 10,
               "version": [f"1.{i % 9}.{i}" for i in range(100)]}
    for name, values in columns.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            AutoMM(max_epochs=1, num_workers=0).fit(pd.DataFrame({name: values, "x": np.arange(100.0)}), [0, 1] * 50)


def test_a_column_whose_first_values_are_numbers_and_later_ones_not_is_read_as_text():
    """Its first 500 values (what roles are inferred from) made it numeric, and fit then stopped
    on the later words; codes with leading zeros are no numbers either."""
    quantities = [str(i) for i in range(490)] + ["tbd"] * 10 + ["a few words"] * 600 + ["1"] * 100
    frame = pd.DataFrame({"qty": quantities, "x": np.arange(1200.0)})
    with pytest.warns(UserWarning, match=r"column 'qty': its first values are numbers, but 610 of its 1200 values "
                                         r"are not, so it is read as text"):
        model = AutoMM(max_epochs=1, num_workers=0).fit(frame, [0, 1] * 600)
    assert model.column_roles_["qty"] == "text"
    codes = pd.DataFrame({"code": [f"{i:05d}" for i in range(97)] + ["A1234"] * 3, "x": np.arange(100.0)})
    assert AutoMM(max_epochs=1, num_workers=0).fit(codes, [0, 1] * 50).column_roles_["code"] != "numeric"


def test_a_column_of_ints_with_later_words_is_read_as_categories_not_refused():
    """The same, with the first values real ints (pandas.concat of two sources): numeric from the
    sample, then fit stopped with 'values are not numbers' for a role the user never gave."""
    from automm import get_registry
    from automm.data import as_table, infer_roles

    sizes = list(np.arange(600) % 50) + ["unknown"] * 100
    with pytest.warns(UserWarning, match=r"column 'size': its first values are numbers, but 100 of its 700"):
        roles = infer_roles(as_table((pd.DataFrame({"size": sizes}),)), None, get_registry().plugin_manager,
                            ["numeric", "categorical", "text", "datetime", "image"])
    assert roles == {"size": "categorical"}


def test_decimals_and_amounts_written_as_strings_are_numbers_and_dates_with_placeholders_are_named():
    """Decimal (a SQL NUMERIC) and '12.50' strings were read as text, silently, while the same
    strings with one '$5' among them were numbers; a date column with 10% 'unknown' became text
    without a word."""
    from decimal import Decimal

    from automm import get_registry
    from automm.data import as_table, infer_roles

    rng = np.random.default_rng(0)
    prices = rng.uniform(0, 100, 100)
    dates = [f"2024-{m:02d}-{d:02d}" for m, d in zip(rng.integers(1, 13, 100), rng.integers(1, 28, 100))]
    frame = pd.DataFrame({"decimal": [Decimal(f"{p:.2f}") for p in prices], "written": [f"{p:.2f}" for p in prices],
                          "code": [str(v) for v in rng.integers(0, 5, 100)], "shipped": ["unknown"] * 10 + dates[10:]})
    with pytest.warns(UserWarning, match=r"column 'shipped': 90 of 100 values read are dates or times"):
        roles = infer_roles(as_table((frame,)), None, get_registry().plugin_manager,
                            ["numeric", "categorical", "text", "datetime", "image"])
    assert roles == {"decimal": "numeric", "written": "numeric", "code": "categorical", "shipped": "text"}


def test_a_cache_dir_that_is_a_file_is_refused_before_any_work(tmp_path):
    """It only warned, and every fit then computed every feature again."""
    blocker = tmp_path / "cache"
    blocker.write_text("a file")
    with pytest.raises(InputError, match=r"cache_dir: '.*cache' is a file, not a directory"):
        AutoMM(cache_dir=str(blocker)).fit(["red apple", "blue sea"] * 4, ["a", "b"] * 4)


def test_a_column_filled_only_after_its_first_5000_rows_is_not_called_empty():
    from automm.data import _role_sample

    column = [None] * 6000 + ["a long review of the product"] * 10
    assert _role_sample(column) == ["a long review of the product"] * 10


def test_a_pandas_categorical_column_is_read_as_categories_whatever_its_values():
    """Store codes 0..3 given as a pandas Categorical were standardised as amounts (store 3 'more
    than' store 2): the DataFrame's dtype says what the column is, as column_types would."""
    from automm import get_registry
    from automm.data import as_table, infer_roles

    codes = pd.Categorical(np.arange(40) % 4)
    frame = pd.DataFrame({"store": codes, "amount": np.arange(40.0), "word": pd.Categorical(["a", "b"] * 20)})
    known = ["numeric", "categorical", "text", "datetime", "image"]
    manager = get_registry().plugin_manager
    assert infer_roles(as_table((frame,)), None, manager, known) == {"store": "categorical", "amount": "numeric",
                                                                       "word": "categorical"}
    assert infer_roles(as_table(({"store": codes, "amount": np.arange(40.0)},)), None, manager, known) == \
        {"store": "categorical", "amount": "numeric"}
    assert infer_roles(as_table((frame,)), {"store": "numeric"}, manager, known)["store"] == "numeric"  # said so
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, ["x", "y"] * 20)
    assert model.column_roles_["store"] == "categorical"
    assert len(model.predict(frame.head(3))) == 3


def test_naming_a_text_encoder_for_a_column_read_as_categories_says_how_to_read_it_as_text():
    """It said only "choose one of ['tabular']", when the user meant the column to be text."""
    X = pd.DataFrame({"k": ["red apple", "green pear"] * 20, "n": np.arange(40.0)})
    with pytest.raises(InputError, match=r"choose one of \['boosted_trees', 'tabular'\], or, if 'k' holds texts, say so: "
                                         r"column_types=\{'k': 'text'\} \(it was read as categorical\)"):
        AutoMM(max_epochs=1, encoders={"k": "hashed_ngram"}).fit(X, [0, 1] * 20)


def test_three_words_on_average_make_a_repeating_column_text():
    """architecture.md: "3 words or more on average ... → text; else categorical"; the other role
    tests' columns were far from the threshold on either side."""
    from automm.roles import infer_role_builtin

    assert infer_role_builtin(["red cotton shirt", "blue wool hat"] * 10) == "text"
    assert infer_role_builtin(["red apple", "green pear"] * 10) == "categorical"
    assert infer_role_builtin(["ann", "bob", "cy", "dee", "ed"]) == "text"  # 5 values, each distinct
    assert infer_role_builtin(["ann", "bob", "cy", "dee"]) == "categorical"


def test_classes_that_differ_only_in_the_unicode_form_of_their_accents_are_warned_about(emoji_split):
    """'Caf\\xe9' from one system and 'Cafe\\u0301' from another (macOS) were learnt as two classes
    without a word, where classes differing in case or spaces were warned about; the warning shows
    them apart (ascii), not as two identical-looking names."""
    import unicodedata

    train, _ = emoji_split
    labels = [f"{c} caf\u00e9" for c in train["category"]]
    labels[:3] = [unicodedata.normalize("NFD", labels[0])] * 3
    with pytest.warns(UserWarning, match=r"y: 2 classes differ from another only in case, spaces or the Unicode form "
                                         r"of accented letters \(.*cafe\\u0301' \(3 rows\), .*caf\\xe9' \(\d+ rows\)\)"):
        AutoMM(**tiny(max_epochs=1, encoders={"text": "hashed_ngram"})).fit(train["name"].tolist(), labels)


def test_labels_written_otherwise_than_the_classes_are_named_so():
    import unicodedata

    from automm.suggestions import labels_written_otherwise

    classes = ["Schuh\u00e9", "Hemd"]
    hint = labels_written_otherwise([unicodedata.normalize("NFD", "Schuh\u00e9"), "hemd ", "Hut"], classes)
    assert hint.startswith("; 2 of them are a class written otherwise (e.g. 'Schuhe\\u0301' for the class "
                           "'Schuh\\xe9': other case, spaces or Unicode form of accented letters)"), hint
    assert labels_written_otherwise(["Hut"], classes) == ""


def test_the_cleaning_that_the_near_duplicate_classes_warning_suggests_merges_each_group():
    """The warning groups classes by NFKC and casefold ('\ufb01lm' and 'film', 'STRASSE' and
    'Stra\xdfe'); its suggested cleaning, NFC and lower(), left both pairs apart."""
    import re
    import unicodedata
    import warnings

    from automm.estimator import _warn_near_duplicate_classes

    classes = np.array(["\ufb01lm", "film", "Stra\xdfe", "STRASSE", "Caf\xe9", unicodedata.normalize("NFD", "Caf\xe9")],
                       dtype=object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_near_duplicate_classes(classes, np.arange(1, 7))
    assert len(caught) == 1 and "6 classes differ" in str(caught[0].message)
    code = re.search(r"e\.g\. (y\.str\..*)\)$", str(caught[0].message)).group(1)
    cleaned = eval(code, {"y": pd.Series(classes)})  # noqa: S307 - the message's own code
    assert cleaned.nunique() == 3, cleaned.tolist()


def test_labels_written_otherwise_are_told_the_unicode_form_their_class_is_written_in():
    """Classes fitted from macOS file names (NFD) and labels typed elsewhere (NFC): the hint's
    normalize('NFC') left the labels unlike the classes."""
    import re
    import unicodedata

    from automm.suggestions import labels_written_otherwise

    for form in ("NFC", "NFD"):
        classes = [unicodedata.normalize(form, "Schuh\xe9"), "Hemd"]
        label = unicodedata.normalize("NFD" if form == "NFC" else "NFC", "Schuh\xe9")
        hint = labels_written_otherwise([label], classes)
        suggested = re.search(r"unicodedata\.normalize\('(NF[CD])', label\)", hint).group(1)
        assert unicodedata.normalize(suggested, label) in classes, hint


def test_rows_of_two_tables_keep_their_names_only_when_both_name_them_alike():
    """X's rows after X_val's: named by their index where both tables' indexes are of one kind
    (``sku 'A'``), else by position (an ``sku`` and an ``id`` index: ``id 7`` is no sku)."""
    from automm.data import Table

    skus = Table({"x": [1, 2]}, row_labels=["A", "B"], row_word="sku")
    assert skus.concat(Table({"x": [3]}, row_labels=["C"], row_word="sku")).row_name(2) == "sku 'C'"
    mixed = skus.concat(Table({"x": [3]}, row_labels=[7], row_word="id"))
    assert mixed.row_labels is None and mixed.row_name(2) == "row 2" and mixed.columns["x"] == [1, 2, 3]
    assert skus.concat(Table({"x": [3]})).row_name(0) == "row 0"
