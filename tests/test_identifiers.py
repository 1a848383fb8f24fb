"""Identifier columns (an id, a row number, an order number, a UUID, a hash, a product page's URL):
fit leaves them out with one warning, keeps real texts, and says the column warnings of many columns once."""

import hashlib
import random
import re
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest

from automm import AutoMM, InputError

from helpers import TINY, tiny

TEXT_ONLY = tiny(encoders={"text": TINY["encoders"]["text"]}, max_epochs=1)


def _with_identifiers(frame: pd.DataFrame, n_codes: int = 0, seed: int = 0) -> pd.DataFrame:
    """``frame``'s ``name`` with identifier columns of the kinds real tables carry."""
    rng = random.Random(seed)
    n = len(frame)
    out = pd.DataFrame({"name": frame["name"].tolist()})
    out["id"] = np.arange(5000, 5000 + n)[rng.sample(range(n), n)]  # an id column, shuffled
    out["id_text"] = out["id"].astype(str)  # the same ids written as text
    out["uuid"] = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]
    out["page"] = [f"https://shop.example.com/p/{i}" for i in out["id"]]
    for k in range(n_codes):
        out[f"code{k}"] = ([hashlib.md5(f"{k}-{i}".encode()).hexdigest()[:16] for i in range(n)] if k % 2 else
                           [f"ORD-{rng.randrange(10 ** 7):07d}" for _ in range(n)])
    return out


def test_fit_leaves_identifier_columns_out_with_one_warning(emoji_split, tmp_path):
    """Each mostly-unique code column became a text encoder of its own, kept with a warning that
    fit them anyway (30 of them on 300 fashion rows: 190.7M parameters, 4.4 GB, test accuracy 0.384
    against 0.942 for the title alone); now one warning names them, they are left out (the fashion
    figures of the title alone), and predict does not need them."""
    train, test = emoji_split[0].head(120), emoji_split[1].head(40)
    X = _with_identifiers(train, n_codes=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = AutoMM(**TEXT_ONLY).fit(X, train["category"])
    said = [str(w.message) for w in caught if "distinct value in every row" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert re.match(r"X: columns 'id' \(read as numeric\); 'id_text' \(read as text, a copy of 'id'\); 'uuid' \(read "
                    r"as text\); 'page' \(read as text\); 'code0' \(read as text\) and 9 more hold a distinct value in "
                    r"every row, as identifiers do .*so the model is fitted without them .*to keep one, give its role: "
                    r"e\.g\. column_types=\{'id': 'numeric'\}$", said[0]), said[0]
    assert not [m for m in map(str, (w.message for w in caught)) if "URLs" in m or "written as a string" in m]
    assert clf.column_roles_ == {"name": "text"} and [spec.columns for spec in clf.inputs_] == [["name"]]
    assert clf.identifier_columns_ == list(X.columns[1:]) and clf.n_features_in_ == 15
    assert list(clf.feature_names_in_) == list(X.columns) and clf.fit_summary()["identifier_columns"] == list(X.columns[1:])
    expected = clf.predict_proba(test[["name"]])
    np.testing.assert_allclose(clf.predict_proba(_with_identifiers(test, n_codes=10, seed=1)), expected, atol=1e-6)
    clf.save(tmp_path / "model")
    loaded = AutoMM.load(tmp_path / "model")
    assert loaded.identifier_columns_ == clf.identifier_columns_ and loaded.n_features_in_ == 15
    np.testing.assert_allclose(loaded.predict_proba(test[["name"]]), expected, atol=1e-6)


def test_column_types_keeps_an_identifier_and_a_table_of_identifiers_alone_is_refused(emoji_split):
    """The role override the warning names keeps a column; where every column is an identifier,
    fit stops before any training, saying how to learn from one anyway."""
    train = emoji_split[0].head(60)
    X = _with_identifiers(train)
    with pytest.warns(UserWarning, match=r"columns 'id' .*; 'id_text' .*; 'page' \(read as text\) hold a distinct"):
        clf = AutoMM(**TEXT_ONLY).fit(X, train["category"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = AutoMM(**TEXT_ONLY, column_types={"uuid": "text"}).fit(X, train["category"])
    assert "uuid" not in clf.column_roles_ and kept.column_roles_ == {"name": "text", "uuid": "text"}
    assert not any("'uuid'" in str(w.message) for w in caught), [str(w.message) for w in caught]
    # a copy of an identifier is one, before or after it
    from automm.data import as_table
    from automm.estimator import _identifier_columns

    reordered = as_table([X[["id_text", "name", "id"]]])
    assert _identifier_columns(reordered, {"id_text": "text", "name": "text", "id": "numeric"}) == {
        "id_text": "'id_text' (read as text, a copy of 'id')", "id": "'id' (read as numeric)"}
    with pytest.raises(InputError, match=r"^X: columns 'id' .* hold a distinct value in every row, as identifiers do "
                                         r".*, and X has no other column: .*column_types=\{'id': 'numeric'\}$"):
        AutoMM(**TEXT_ONLY).fit(X.drop(columns=["name"]), train["category"])


@pytest.mark.parametrize("name, values, expected", [
    ("amount", [f"${1000 + 37 * i:,}" for i in range(30)], False),  # amounts written with a currency
    ("weight", [f"{100 + i}kg" for i in range(30)], False),          # measurements with their unit
    ("day", [f"2024/{1 + i // 28:02d}/{1 + i % 28:02d}" for i in range(30)], False),  # dates written year first
    ("at", [f"{i // 4:02d}:{(i * 7) % 60:02d}" for i in range(30)], False),  # times of day
    ("where", [f"48.{i:03d},2.{i * 3:03d}" for i in range(30)], False),  # coordinates
    ("balance", [str((i - 15) * 37) for i in range(30)], False),     # amounts written as strings, some negative
    ("article", [f"{['TS', 'JN', 'SK'][i % 3]}-{i:04d}" for i in range(30)], False),  # a product line's prefix
    ("link", [f"https://shop.example.com/{['women', 'men'][i % 2]}/{['shoes', 'shirts', 'bags'][i % 3]}/{i}"
              for i in range(30)], False),                          # a URL whose path sorts the rows
    ("order", [f"ORD-{i:05d}" for i in range(30)], True),           # the same prefix on every code
    ("link", [f"https://shop.example.com/p/{1000 + 7 * i}" for i in range(30)], True),
    ("code", [f"{(i * 7919) % 10 ** 6:06d}" for i in range(30)], True),  # digits with leading zeros: codes
    ("hash", [hashlib.sha1(str(i).encode()).hexdigest()[:12] for i in range(30)], True),
])
def test_amounts_times_and_grouped_codes_are_no_identifiers(name, values, expected):
    """Distinct one-word values holding a digit all read as codes: amounts (``$1,037``), a weight
    (``100kg``), dates, times and places written as text, a product line's codes and a URL whose
    path names a category, which automm init left out and fit would now leave out too."""
    from automm.drafting import _is_identifier

    assert _is_identifier(name, values, len(values)) is expected


def test_the_years_of_a_yearly_series_are_no_row_number():
    """A yearly series' year (1990, 1991, ... one per row) rose by one a row as a row number does:
    fit left out the trend a forecast needs; a row number is still one."""
    from automm.data import as_table
    from automm.drafting import _is_identifier
    from automm.estimator import _identifier_columns

    table = as_table([pd.DataFrame({"year": np.arange(1990, 2025), "row": np.arange(1, 36),
                                    "rain": np.linspace(600.0, 900.0, 35)})])
    assert list(_identifier_columns(table, {"year": "numeric", "row": "numeric", "rain": "numeric"})) == ["row"]
    assert not _is_identifier("season", list(range(1871, 1901)), 30)


def test_the_warnings_of_many_columns_of_one_kind_are_one(emoji_split):
    """Six columns of numbers written as strings and six of dates written as 11/15/2024 gave twelve
    warnings, one per column; now one per kind, naming the other columns."""
    train = emoji_split[0].head(40)
    rng = random.Random(0)
    X = pd.DataFrame({"name": train["name"]})
    for k in range(6):
        X[f"amount{k}"] = [str(rng.randrange(100, 999)) for _ in range(40)]
        X[f"day{k}"] = [f"{rng.randrange(1, 13)}/{rng.randrange(1, 28)}/2024" for _ in range(40)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoMM(**TEXT_ONLY).fit(X, train["category"])
    said = [str(w.message) for w in caught if str(w.message).startswith("column ")]
    assert len(said) == 2, said
    assert said[0].startswith("column 'amount0': every value is a number written as a string") and said[0].endswith(
        "; likewise 5 more columns: ['amount1', 'amount2', 'amount3', 'amount4', 'amount5']"), said[0]
    assert said[1].startswith("column 'day0': its values look like dates") and said[1].endswith(
        "; likewise 5 more columns: ['day1', 'day2', 'day3', 'day4', 'day5']"), said[1]


@pytest.mark.parametrize("dataset, columns", [("fashion", ["id"]), ("emoji", [])])
def test_no_real_text_column_is_an_identifier(request, dataset, columns):
    """The shared data's titles, names, short names and attributes, in samples of 20 to all rows,
    in the file's order and sorted: only fashion's product id is an identifier."""
    from automm.data import as_table, infer_roles
    from automm.estimator import _identifier_columns
    from automm.registry import get_registry

    folder = request.getfixturevalue(f"{dataset}_dir")
    full = pd.read_csv(folder / f"{dataset}.csv", keep_default_na=False).drop(columns=["image"])
    reg = get_registry()
    for n in (20, 300, len(full)):
        frame = full.sample(n, random_state=n).reset_index(drop=True)
        for table in (frame, frame.sort_values(frame.columns[0]).reset_index(drop=True)):
            table = as_table([table])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                roles = infer_roles(table, None, reg.plugin_manager, ["text", "numeric", "categorical", "datetime"])
            assert list(_identifier_columns(table, roles)) == columns
