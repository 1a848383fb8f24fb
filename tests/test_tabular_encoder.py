"""The ``tabular`` encoder: statistics, vocabularies, edge cases, round trip, registration."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import optuna
import pluggy
import pytest
import torch
from torch import nn

from automm import hookspecs
from automm.components import tabular as tabular_module
from automm.components.base import MISSING
from automm.components.tabular import TabularEncoder, tabular_search_space

ROLES = {"price": "numeric", "colour": "categorical", "weight": "numeric", "size": "categorical"}
ROWS = [
    {"price": 10.0, "colour": "red", "weight": 1.0, "size": "M"},
    {"price": 20.0, "colour": "blue", "weight": None, "size": "L"},
    {"price": float("nan"), "colour": "red", "weight": 3.0, "size": None},
    {"price": 30.0, "colour": None, "weight": np.float64(5.0), "size": "M"},
    MISSING,
]


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(encoder, rows):
    return encoder.collate([encoder.preprocess(r) for r in rows])


def test_fit_learns_statistics_ignoring_missing_and_vocabularies():
    encoder = TabularEncoder(ROLES).fit(ROWS)
    state = encoder.get_state()
    assert state["numeric_columns"] == ["price", "weight"]
    assert state["categorical_columns"] == ["colour", "size"]
    assert state["numeric_mean"] == pytest.approx([20.0, 3.0])
    # median and interquartile range / 1.349 (robust to outliers)
    assert state["numeric_std"] == pytest.approx([10 / 1.349, 2 / 1.349])
    assert state["categories"] == {"colour": ["red", "blue"], "size": ["M", "L"]}
    json.dumps(state)


def test_a_few_outliers_do_not_squash_a_numeric_column():
    """Two sentinels (1e9) among 400 values made the std ~5e7: every other value became ~0."""
    values = [float(v) for v in range(398)] + [1e9, 1e9]
    encoder = TabularEncoder({"x": "numeric"}).fit([{"x": v} for v in values])
    low, high = (encoder.preprocess({"x": v})["numeric"].item() for v in (10.0, 390.0))
    assert high - low > 2.0


@pytest.mark.parametrize("values", [[i * 1e-14 for i in range(100)],  # 0-1 pF in farads: IQR 5e-13
                                    [0.0] * 90 + [1e-13] * 10])  # quartiles agree: the mean and std
def test_a_column_of_tiny_numbers_is_read_not_taken_for_a_constant(values):
    """A spread under 1e-12 read as none: every value standardised to ~0, the column silently
    unused (a regression on it alone: test R² -0.007 against 0.977 for the same numbers x 1e13)."""
    encoder = TabularEncoder({"c": "numeric"}).fit([{"c": v} for v in values])
    low, high = (encoder.preprocess({"c": v})["numeric"].item() for v in (min(values), max(values)))
    assert high - low > 2.0
    constant = TabularEncoder({"c": "numeric"}).fit([{"c": 3e-13}] * 20)  # one value: still no spread
    assert constant.preprocess({"c": 3e-13})["numeric"].item() == 0.0
    # larger numbers as before: a spread above 1e-12 counts (ids near 1e15, 1,000 apart, are no constant)
    big = TabularEncoder({"c": "numeric"}).fit([{"c": 1e6 + i * 1e-8} for i in range(100)])
    assert big.get_state()["numeric_std"] == pytest.approx([49.5e-8 / 1.349], rel=1e-3)


def test_preprocess_standardises_flags_missing_and_maps_unseen_to_zero():
    encoder = TabularEncoder(ROLES).fit(ROWS)
    sample = encoder.preprocess({"price": 20.0, "colour": "green", "weight": float("nan"), "size": "L"})
    assert sample["numeric"].tolist() == pytest.approx([0.0, 0.0])
    assert sample["numeric_missing"].tolist() == [0.0, 1.0]
    assert sample["categorical"].tolist() == [0, 2]  # unseen colour -> 0; "L" is the second size
    missing_row = encoder.preprocess(MISSING)
    assert missing_row["numeric_missing"].tolist() == [1.0, 1.0]
    assert missing_row["categorical"].tolist() == [0, 0]
    assert encoder.preprocess({"price": "n/a"})["numeric_missing"].tolist() == [1.0, 1.0]


def test_categories_compared_as_strings():
    encoder = TabularEncoder({"code": "categorical"}).fit([{"code": 3}, {"code": "4"}, {"code": 3.0}])
    assert encoder.get_state()["categories"]["code"] == ["3", "4"]
    assert encoder.preprocess({"code": "3"})["categorical"].tolist() == [1]
    assert encoder.preprocess({"code": 4})["categorical"].tolist() == [2]


def test_codes_read_back_as_numbers_are_their_categories():
    """Codes fitted as strings come back from a CSV file as numbers (pandas reads "00412" as
    412): they were read as missing, every row. A number equal to exactly one known code is it."""
    encoder = TabularEncoder({"zip": "categorical"}).fit(
        [{"zip": "00412"}, {"zip": "07"}, {"zip": "7"}, {"zip": "3.0"}, {"zip": "red"}])
    ids = {code: i + 1 for i, code in enumerate(encoder.get_state()["categories"]["zip"])}
    assert encoder.preprocess({"zip": 412})["categorical"].tolist() == [ids["00412"]]
    assert encoder.preprocess({"zip": "412.0"})["categorical"].tolist() == [ids["00412"]]
    assert encoder.preprocess({"zip": 3})["categorical"].tolist() == [ids["3.0"]]
    assert encoder.preprocess({"zip": "7"})["categorical"].tolist() == [ids["7"]]  # as written first
    assert encoder.preprocess({"zip": 7.0})["categorical"].tolist() == [ids["7"]]
    assert encoder.preprocess({"zip": "0007"})["categorical"].tolist() == [0]  # "07" or "7": neither
    assert encoder.preprocess({"zip": 413})["categorical"].tolist() == [0]
    assert encoder.unfamiliar_values([{"zip": 412}] * 30) == []


def test_max_categories_keeps_most_frequent():
    rows = [{"c": v} for v in "aaabbc"]
    encoder = TabularEncoder({"c": "categorical"}, max_categories=2).fit(rows)
    assert encoder.get_state()["categories"]["c"] == ["a", "b"]
    assert encoder.preprocess({"c": "c"})["categorical"].tolist() == [0]


def test_forward_shape_and_finite_with_nan_and_missing_rows():
    torch.manual_seed(0)
    encoder = TabularEncoder(ROLES, emb_dim=4, hidden_dim=12, output_dim=7).fit(ROWS)
    assert encoder.modality == "tabular" and encoder.output_dim == 7
    out = encoder(_batch(encoder, ROWS + [{"price": float("inf"), "colour": "unseen"}]))
    assert out.shape == (6, 7) and torch.isfinite(out).all()


def test_emb_dim_hidden_dim_and_dropout_build_the_network_they_name():
    """The output width alone did not show an emb_dim, hidden_dim or dropout left unused."""
    encoder = TabularEncoder(ROLES, emb_dim=3, hidden_dim=9, output_dim=7, dropout=0.3).fit(ROWS)
    assert [(e.num_embeddings, e.embedding_dim) for e in encoder.embeddings] == [(3, 3), (3, 3)]
    # the numerics and their missing flags, then each column's embedding
    assert [(m.in_features, m.out_features) for m in encoder.modules() if isinstance(m, nn.Linear)] == \
        [(2 * 2 + 3 * 2, 9), (9, 7)]
    assert {m.p for m in encoder.modules() if isinstance(m, nn.Dropout)} == {0.3}


@pytest.mark.parametrize("bad", [{"hidden_dim": 0}, {"emb_dim": 0}, {"output_dim": 2.5}])
def test_a_width_that_is_not_a_whole_number_of_at_least_one_is_named(bad):
    """hidden_dim=0 trained a tabular encoder whose output is a constant (the row read through a
    layer of no units), with only PyTorch's 'Initializing zero-element tensors is a no-op'."""
    key, value = next(iter(bad.items()))
    with pytest.raises(ValueError, match=rf"{key} must be a whole number >= 1, got {value}"):
        TabularEncoder(ROLES, **bad)


@pytest.mark.parametrize("roles", [{"a": "numeric", "b": "numeric"}, {"x": "categorical"}])
def test_only_numeric_or_only_categorical(roles):
    rows = [{"a": 1.0, "b": 2.0, "x": "u"}, {"a": 3.0, "b": None, "x": "v"}]
    encoder = TabularEncoder(roles, output_dim=5).fit(rows)
    batch = _batch(encoder, rows + [MISSING])
    assert encoder(batch).shape == (3, 5)


def test_invalid_roles_and_unfitted_use_raise():
    with pytest.raises(ValueError):
        TabularEncoder({"a": "image"})
    with pytest.raises(ValueError):
        TabularEncoder({})
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularEncoder({"a": "numeric"}).preprocess({"a": 1.0})


def test_state_round_trip_gives_identical_outputs():
    torch.manual_seed(0)
    encoder = TabularEncoder(ROLES, emb_dim=4, hidden_dim=8, output_dim=6).fit(ROWS).eval()
    restored = TabularEncoder(ROLES, emb_dim=4, hidden_dim=8, output_dim=6)
    restored.set_state(json.loads(json.dumps(encoder.get_state())))
    restored.load_state_dict(encoder.state_dict())
    restored.eval()
    rows = ROWS + [{"price": 12.5, "colour": "purple", "weight": 2.0, "size": "L"}]
    with torch.no_grad():
        assert torch.equal(encoder(_batch(encoder, rows)), restored(_batch(restored, rows)))


def test_tiny_training_learns_from_numeric_and_categorical():
    torch.manual_seed(0)
    generator = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(64):
        colour = ["red", "blue"][i % 2]
        value = float(generator.normal())
        rows.append({"value": value, "colour": colour})
        labels.append(int((value > 0) ^ (colour == "red")))
    encoder = TabularEncoder({"value": "numeric", "colour": "categorical"}, hidden_dim=32, output_dim=16).fit(rows)
    head = nn.Linear(16, 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=2e-2)
    batch, target = _batch(encoder, rows), torch.tensor(labels)
    for _ in range(80):
        loss = nn.functional.cross_entropy(head(encoder(batch)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    with torch.no_grad():
        accuracy = (head(encoder(batch)).argmax(1) == target).float().mean().item()
    assert accuracy > 0.9


def test_search_space_and_registration():
    trial = optuna.trial.FixedTrial({"tab.emb_dim": 8, "tab.hidden_dim": 32, "tab.output_dim": 32, "tab.dropout": 0.0})
    params = tabular_search_space(trial, "tab.")
    assert params == {"emb_dim": 8, "hidden_dim": 32, "output_dim": 32, "dropout": 0.0}
    encoder = TabularEncoder(ROLES, **params).fit(ROWS)
    assert encoder(_batch(encoder, ROWS)).shape == (len(ROWS), 32)

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(tabular_module)
    found = {}
    pm.hook.automm_register_encoders(register=lambda name, factory, **kw: found.setdefault(name, (factory, kw)))
    factory, kwargs = found["tabular"]
    assert kwargs["modality"] == "tabular"
    built = factory(column_roles=ROLES, **kwargs["defaults"])
    assert built.output_dim == kwargs["output_dim"](kwargs["defaults"]) == 64


@pytest.mark.parametrize("roles", [ROLES, {"colour": "categorical"}, {"price": "numeric"}], ids=["mixed", "categories", "numbers"])
def test_linear_form_outputs_its_design_times_the_weight(roles):
    rows = [MISSING if row is MISSING else {c: row[c] for c in roles} for row in ROWS]
    encoder = TabularEncoder(roles, linear=True, output_dim=3).fit(rows)
    batch = _batch(encoder, rows)
    design = encoder.linear_design(batch).to_dense()
    n_numeric = sum(r == "numeric" for r in roles.values())
    widths = [len(encoder.categories[c]) + 1 for c in encoder.categorical_columns]
    assert design.shape == (len(rows), 2 * n_numeric + sum(widths))
    # each categorical block is one-hot (index 0: missing or unknown), the row scaled by 1/sqrt(columns)
    scale = 1 / math.sqrt(len(roles))
    start = 2 * n_numeric
    for width in widths:
        torch.testing.assert_close(design[:, start:start + width].sum(1), torch.full((len(rows),), scale))
        start += width
    assert torch.equal(encoder(batch), torch.zeros(len(rows), 3))  # the weight starts at zero
    weight = torch.randn(design.shape[1], 3, generator=torch.Generator().manual_seed(0))
    encoder.set_linear_weight(weight)
    torch.testing.assert_close(encoder(batch), design @ weight)
    restored = TabularEncoder(roles, linear=True, output_dim=3)  # as a saved model is loaded
    restored.set_state(json.loads(json.dumps(encoder.get_state())))
    restored.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(restored(_batch(restored, rows)), design @ weight)
    with pytest.raises(RuntimeError, match="linear form"):
        TabularEncoder(roles).fit(rows).set_linear_weight(weight)


def test_huge_numbers_train_and_predict_without_overflow():
    # squares of 1e160 overflow a float; float32 outputs times a huge target scale did too
    import pandas as pd

    from automm import AutoMMRegressor

    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, 120)
    X = pd.DataFrame({"big": x * 1e160, "noise": rng.normal(size=120)})
    model = AutoMMRegressor(max_epochs=3, num_workers=0, random_state=0).fit(X, x * 1e200)
    predicted = model.predict(X)
    assert np.isfinite(predicted).all()
    assert np.corrcoef(predicted / 1e200, x)[0, 1] > 0.9


def test_prediction_warns_when_a_categorical_column_comes_with_categories_never_seen():
    import warnings

    import pandas as pd

    from automm import AutoMM

    rng = np.random.default_rng(0)
    colour = rng.choice(["Red", "Blue", "Green"], 120)
    frame = pd.DataFrame({"colour": colour, "size": rng.normal(size=120)})
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, colour == "Red")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.predict(frame.head(40))  # known categories: silent
        model.predict(frame.head(5).assign(colour="red"))  # too few values to judge a column
    with pytest.warns(UserWarning, match=r"X: column 'colour': 40 of 40 values are categories never seen in fit "
                                         r"\(e.g. '(red|blue|green)'.*read as missing; fit saw 'Blue', 'Green', 'Red'"):
        model.predict(frame.head(40).assign(colour=frame.colour.head(40).str.lower()))
    # once per model: other unseen values on every request of a service had logged one warning each
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for request in range(3):
            model.predict(frame.head(30).assign(colour=[f"C{request}_{i}" for i in range(30)]))
    model.fit(frame, colour == "Red")  # a new model: said again
    with pytest.warns(UserWarning, match=r"column 'colour': 30 of 30 values are categories never seen .*said once "
                                         r"for this model"):
        model.predict(frame.head(30).assign(colour="purple"))
    encoder = model.model_.encoders["tabular"]
    assert encoder.unfamiliar_values([{"colour": "red", "size": 1.0}] * 30 + [{"colour": "Red"}] * 29)
    assert not encoder.unfamiliar_values([{"colour": "red", "size": 1.0}] * 29 + [{"colour": "Red"}] * 30)


def test_unseen_categories_of_columns_named_alike_but_for_digits_are_each_said():
    """A finding was said once per model under its message with every digit left out, the column's
    name too: of a wide table's columns 'f0004_cat', 'f0010_cat', ... (or an array's x0, x1) with
    categories never seen in fit, only the first was named, the others went unsaid."""
    import warnings

    import pandas as pd

    from automm import AutoMM

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"shop{j}": rng.choice(["north", "south", "east"], 60) for j in (1, 2, 10)})
    frame["size"] = rng.normal(size=60)
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, frame.shop1 == "north")
    renamed = frame.head(30).assign(shop1="n1", shop2="s2", shop10="e10")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(renamed)
    said = sorted(re.match(r"X: column '(\w+)': 30 of 30 values are categories never seen", str(w.message)).group(1)
                  for w in caught if "never seen in fit" in str(w.message))
    assert said == ["shop1", "shop10", "shop2"]
    with warnings.catch_warnings():  # and each still once for this model
        warnings.simplefilter("error")
        model.predict(renamed.assign(shop1="other", shop2="other", shop10="other"))


def test_values_of_a_numeric_column_that_are_not_numbers_fail_before_training_or_warn():
    """A numeric column's "$548.81" or "oops" had silently become missing values: a served column of
    words gave wrong predictions without a word, and a text column forced numeric trained on nothing."""
    import warnings

    import pandas as pd

    from automm import AutoMM
    from automm.exceptions import InputError

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"price": rng.uniform(0, 1000, 60), "colour": rng.choice(["red", "blue"], 60)})
    y = np.where(frame.price > 500, "high", "low")
    words = frame.assign(price=[f"${p:.2f}" for p in frame.price])
    unfitted = AutoMM(max_epochs=1, num_workers=0, column_types={"price": "numeric"})
    with pytest.raises(InputError, match=r"column 'price': 60 of 60 values are not numbers \('\$\d+\.\d\d' at row 0, "
                                         r".*\.\.\.\); give numbers \(or strings that read as one"):
        unfitted.fit(words, y)
    assert not hasattr(unfitted, "model_")
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, y)
    with pytest.raises(InputError, match="column 'price': 60 of 60 values are not numbers"):
        model.predict(frame.assign(price="oops"))
    from decimal import Decimal

    one_odd = frame.astype({"price": object})
    one_odd["price"] = [Decimal(str(round(p, 2))) for p in frame.price]  # numbers of any kind are numbers
    one_odd.loc[3, "price"] = "1,234"
    with pytest.warns(UserWarning, match=r"column 'price': 1 of 60 values are not numbers \('1,234' at row 3\); "
                                         "they count as missing"):
        assert len(model.predict(one_odd)) == 60
    with warnings.catch_warnings():  # numbers written as strings, as some files hold them, are numbers
        warnings.simplefilter("error", UserWarning)
        as_text = frame.assign(price=[f" {p:.6g} " for p in frame.price])
        np.testing.assert_allclose(model.predict_proba(as_text), model.predict_proba(frame), atol=1e-5)


def test_infinite_numbers_are_named_as_they_count_as_missing():
    """They counted as missing without a word (a division by zero upstream, say)."""
    import warnings

    from automm.data import validate_numbers

    with pytest.warns(UserWarning, match=r"^column 'ratio': 2 of 4 values are infinite \(inf at row 1, -inf at row "
                                         r"3\); they count as missing$"):
        validate_numbers("ratio", np.array([1.0, np.inf, 3.0, -np.inf]))
    with pytest.warns(UserWarning, match=r"column 'ratio': 1 of 3 values are infinite \(inf at row 1\)"):
        validate_numbers("ratio", [1.0, float("inf"), "3"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_numbers("ratio", [1.0, 2.0, None, float("nan")])


def test_categories_left_out_by_max_categories_are_not_called_never_seen():
    """Rare categories a capped vocabulary leaves out were seen in fit: no warning calls them new."""
    rows = [{"c": f"code{i}"} for i in range(50)] + [{"c": "common"}] * 10
    encoder = TabularEncoder({"c": "categorical"}, max_categories=3).fit(rows)
    assert encoder.preprocess({"c": "code7"})["categorical"].tolist() == [0]
    assert encoder.unfamiliar_values(rows[:40]) == []


def test_a_category_written_in_another_unicode_form_or_with_spaces_around_is_the_same_category():
    """macOS writes "é" as "e" and an accent (NFD); CSV exports leave "Red "."""
    import unicodedata

    from automm.components.tabular import TabularEncoder

    encoder = TabularEncoder({"dish": "categorical"}).fit([{"dish": "Café"}, {"dish": "Red"}, {"dish": "Tea"}])
    nfd = unicodedata.normalize("NFD", "Café")
    assert nfd != "Café"
    assert encoder._category_id("dish", nfd) == encoder._category_id("dish", "Café") != 0
    assert encoder._category_id("dish", "Red ") == encoder._category_id("dish", "Red") != 0
    assert encoder._category_id("dish", "Coffee") == 0


def test_a_column_fitted_on_bools_takes_true_and_false_written_as_text():
    """A JSON or CSV caller sending "True"/"False" for a column fitted on bools was refused:
    "60 of 60 values are not numbers"."""
    import numpy as np
    import pandas as pd

    from automm import AutoMM

    flags = np.arange(60) % 2 == 0
    labels = (np.arange(60) % 3 == 0).astype(int)  # (not the flag itself)
    model = AutoMM(max_epochs=2, num_workers=0, random_state=0).fit(pd.DataFrame({"flag": flags}), labels)
    assert model.column_roles_ == {"flag": "numeric"}
    as_text = pd.DataFrame({"flag": [str(f) for f in flags]})
    np.testing.assert_allclose(model.predict_proba(as_text), model.predict_proba(pd.DataFrame({"flag": flags})))
    assert model.predict_proba(pd.DataFrame({"flag": [" TRUE ", "false"]})).shape == (2, 2)


def test_a_category_never_seen_leans_on_the_other_columns():
    """A shop code that tells the label 19 times in 20 and a position that tells it always: a
    shop never seen in fit must give the answer the position gives. Index 0 (unknown) was an
    embedding no training row reached; category dropout trains it as "this column tells nothing"."""
    import warnings

    import pandas as pd

    from automm import AutoMM

    rng = np.random.default_rng(0)
    quarters = np.array(["NE", "NW", "SE", "SW"])
    a, b = rng.normal(size=480), rng.normal(size=480)
    y = quarters[(a < 0) + 2 * (b < 0)]
    shop_of = np.where(rng.random(480) < 0.95, y, rng.choice(quarters, 480))
    frame = pd.DataFrame({"a": a, "b": b, "shop": np.char.add(shop_of.astype(str), rng.choice(["1", "2", "3"], 480))})
    grid_a, grid_b = (v.ravel() for v in np.meshgrid([-1.5, -0.8, 0.8, 1.5], [-1.5, -0.8, 0.8, 1.5]))
    unseen = pd.DataFrame({"a": grid_a, "b": grid_b, "shop": "a shop never seen"})
    truth = quarters[(grid_a < 0) + 2 * (grid_b < 0)]
    for seed in range(3):  # before: 0.75, 0.625 and 0.5 of these rows right
        model = AutoMM(max_epochs=8, num_workers=0, random_state=seed).fit(frame, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "categories never seen": said, and meant here
            assert model.score(unseen, truth) >= 0.9, seed


def test_category_dropout_acts_only_while_training():
    torch.manual_seed(0)
    encoder = TabularEncoder({"colour": "categorical"}, output_dim=3, dropout=0.0, category_dropout=0.5)
    encoder.fit([{"colour": c} for c in "abcd" * 10])
    batch = _batch(encoder, [{"colour": c} for c in "abcd" * 100])
    unknown = encoder.eval()(_batch(encoder, [{"colour": "never seen"}]))[0]
    assert torch.equal(encoder(batch), encoder(batch))
    assert not torch.isclose(encoder(batch), unknown).all(1).any()  # in predict: no row read as unknown
    encoder.train()
    read_as_unknown = [torch.isclose(encoder(batch), unknown).all(1).float().mean().item() for _ in range(2)]
    assert all(0.4 < share < 0.6 for share in read_as_unknown)
    with pytest.raises(ValueError, match="category_dropout"):
        TabularEncoder({"colour": "categorical"}, category_dropout=1.0)


def test_an_integer_beyond_floats_in_a_number_column_is_a_stray_value_not_a_crash(monkeypatch):
    """A numeric column holding ``10**400`` (a Python int no float holds) made ``fit`` fail with a
    bare ``OverflowError`` naming no column (comparing the column with the labels), and the
    table encoder would too; it is a stray value counted as missing, shown shortened."""
    import pandas as pd

    import automm.estimator
    from automm import AutoMM, AutoMMWarning

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", lambda *a, **k: pytest.skip("reached training"))
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"a": rng.rand(60), "b": pd.Series(list(range(60)), dtype=object)})
    X.loc[5, "b"] = 10 ** 400
    assert math.isnan(tabular_module._to_float(10 ** 400))
    with pytest.warns(AutoMMWarning, match=r"column 'b': 1 of 60 values are not numbers \(1000000000.*\.\.\.0000000000 "
                                           r"\(401 characters\) at row 5\); they count as missing"):
        with pytest.raises(pytest.skip.Exception):
            AutoMM(max_epochs=1).fit(X, (X["a"] > 0.5).astype(int))


@pytest.mark.parametrize("linear", [False, True])
def test_a_whole_column_preprocessed_at_once_is_each_row_preprocessed(linear):
    """``preprocess_batch`` (what datasets use: a row at a time, 100,000 rows took 30 s to
    predict) gives the very numbers of ``preprocess`` row by row, odd cells included."""
    import datetime
    import decimal

    import pandas as pd

    roles = {"n": "numeric", "m": "numeric", "c": "categorical", "d": "datetime"}
    fitted = [{"n": float(i), "m": i % 3, "c": ["red", "blue", "00412", 3, "é"][i % 5],
               "d": f"2024-0{1 + i % 9}-0{1 + i % 7} {i % 24:02d}:00"} for i in range(40)]
    odd = [MISSING, None, {"n": MISSING, "m": MISSING, "c": MISSING, "d": MISSING}, {"c": "red"},
           {"n": 1e308, "m": -1e308, "c": 412, "d": datetime.datetime(2020, 1, 1)},
           {"n": float("inf"), "m": "$5", "c": 3.0, "d": "2024-03-05Z"},
           {"n": "0 days 00:45:32", "m": "True", "c": "e\u0301", "d": pd.Timestamp("2024-01-01", tz="UTC")},
           {"n": decimal.Decimal("2.5"), "m": np.float32(1.5), "c": " red ", "d": np.datetime64("2024-02-02")},
           {"n": -0.0, "m": np.int64(7), "c": np.str_("blue"), "d": datetime.date(2021, 5, 5)},
           {"n": float("nan"), "m": True, "c": decimal.Decimal("412"), "d": "not a date"},
           {"n": datetime.timedelta(seconds=3), "m": pd.NA, "c": "unknown", "d": None},
           {"n": np.float64(2.0), "m": 1, "c": 3, "d": "2024-01-01"}]
    rows = fitted + odd + fitted[::-1]
    for encoder in (TabularEncoder(roles, linear=linear).fit(fitted), TabularEncoder(ROLES, linear=linear).fit(ROWS)):
        expected = _batch(encoder, rows if encoder.datetime_columns else ROWS + odd[:4])
        got = encoder.preprocess_batch(rows if encoder.datetime_columns else ROWS + odd[:4])
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape, key
            assert torch.equal(got[key], expected[key]), key
            assert torch.equal(torch.signbit(got[key].float()), torch.signbit(expected[key].float())), key  # -0.0
    assert TabularEncoder({"x": "categorical"}).fit(ROWS[:0] + [{"x": "a"}]).preprocess_batch([])["numeric"].shape == (0, 0)


def test_a_number_missing_only_at_predict_time_reads_as_the_columns_median():
    """A column never missing in fit: its missing flag's weights were random and untrained, so a
    value missing at predict time moved the output by an amount no training row set (fashion-like
    regression, seeds 0-2: -0.29 / +0.03 / -0.18 on targets of std 3). It reads as the median now,
    through training with weight decay."""
    rng = np.random.default_rng(0)
    rows = [{"z": float(z), "w": float(w)} for z, w in rng.normal(size=(64, 2))]
    torch.manual_seed(0)
    encoder = TabularEncoder({"z": "numeric", "w": "numeric"}, hidden_dim=8).fit(rows)
    target = torch.tensor([[r["z"] - r["w"]] for r in rows])
    head = nn.Linear(encoder.output_dim, 1)
    optimiser = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=0.01, weight_decay=0.1)
    batch = _batch(encoder, rows)
    for _ in range(20):
        optimiser.zero_grad()
        nn.functional.mse_loss(head(encoder(batch)), target).backward()
        optimiser.step()
    encoder.eval()
    median = encoder.get_state()["numeric_mean"][0]
    missing, at_median = (encoder(_batch(encoder, [{"z": z, "w": 0.5}])) for z in (None, median))
    torch.testing.assert_close(missing, at_median)


def _tricky_table(n=60):
    """Columns of every kind a DataFrame gives (``tolist`` cells) with the values that read oddly."""
    import datetime

    import pandas as pd

    rng = np.random.default_rng(0)
    floats = rng.normal(size=n) * 1e3
    floats[::7], floats[1::11], floats[2::13], floats[3] = np.nan, np.inf, -np.inf, -0.0
    floats[4], floats[5] = 1e308, -1e-310
    words = ["red", "blue", "", "  ", "Red ", "e\u0301", "\u00e9", "00412", "nan", "None", "NaT", "x" * 300]
    zone = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    codes = [412, "412", 3.0, None, 1, True, 1.0, False, 0]  # (equal as dict keys, other categories)
    return {"f": floats.tolist(), "a": floats.clip(-1e38, 1e38).astype(np.float32),
            "i": [int(v) * 10 ** 3 for v in rng.integers(-9, 9, n)],
            "big": [2 ** 70 + k for k in range(n)], "huge": [10 ** 400] + [1] * (n - 1),
            "b": [bool(k % 3) for k in range(n)], "s": [str(v) for v in floats],
            "mixed": [[1.5, "2", "$5", None, "True", "0 days 00:45:32", np.float64(3)][k % 7] for k in range(n)],
            "c": [words[k % len(words)] for k in range(n)], "codes": [codes[k % len(codes)] for k in range(n)],
            "d": [pd.Timestamp("2024-03-05 14:30", tz="Europe/Berlin") + pd.Timedelta(hours=7 * k) for k in range(n)],
            "z": [datetime.datetime(2021, 1, 1 + k % 28, k % 24, tzinfo=zone) if k % 5 else None for k in range(n)]}


TRICKY_ROLES = {"f": "numeric", "a": "numeric", "i": "numeric", "big": "numeric", "huge": "numeric", "b": "numeric",
                "s": "numeric", "mixed": "numeric", "c": "categorical", "codes": "categorical", "d": "datetime",
                "z": "datetime"}


def _cell_by_cell(monkeypatch):
    """The encoder's per-cell reading (how every column was read before the whole-column ways)."""
    monkeypatch.setattr(tabular_module, "_NUMBER_TYPES", frozenset())
    monkeypatch.setattr(tabular_module, "_NO_VALUE_TYPES", frozenset())
    monkeypatch.setattr(tabular_module, "_cell_columns", lambda rows, columns: [
        [tabular_module._cell(row, column) for row in rows] for column in columns])


def _as_bits(batch):
    return {key: (value.dtype, value.numpy().tobytes()) for key, value in batch.items()}


@pytest.mark.parametrize("linear", [False, True])
def test_whole_columns_read_at_c_speed_give_the_numbers_cell_by_cell_reading_gives(linear, monkeypatch):
    """The table preprocessing reads plain columns whole (numbers with numpy, each distinct text
    once; 50,000 rows of 100 columns took 8 s before training): the fitted state and the samples
    are bit for bit those of reading each cell (NaN, inf, -0.0, 1e308, ints beyond floats, bools,
    numbers as text, blank and unseen categories, date-times in time zones), a saved model's too."""
    from automm.data import InputSpec, Table

    columns = _tricky_table()
    spec = InputSpec("tabular", "tabular", list(TRICKY_ROLES), dict(TRICKY_ROLES))
    rows = spec.values(Table(columns))
    other = spec.values(Table({**_tricky_table(), "c": ["green", "blue ", "", None] * 15}))  # unseen categories
    fast = TabularEncoder(TRICKY_ROLES, linear=linear).fit(rows)
    got = [_as_bits(fast.preprocess_batch(values)) for values in (rows, other)]
    with monkeypatch.context() as patched:
        _cell_by_cell(patched)
        slow = TabularEncoder(TRICKY_ROLES, linear=linear).fit(rows)
        assert repr(fast.get_state()) == repr(slow.get_state())
        assert got == [_as_bits(slow.preprocess_batch(values)) for values in (rows, other)]
        assert got[1] == _as_bits(slow.collate([slow.preprocess(row) for row in other]))


def test_a_tables_rows_mark_their_missing_cells_as_reading_each_cell_does():
    """``InputSpec.values`` of a table input (a column of floats read at C speed, a column of texts
    a distinct text at a time): the rows of marking each cell with ``is_missing``, same types."""
    from automm.data import InputSpec, Table, is_missing

    columns = {**_tricky_table(), "n": np.array([1.5, np.nan, 3.0] * 20), "k": np.arange(60),
               "t": ["a", "", " ", "b"] * 15, "u": [None, MISSING, "", 2.0] * 15, "full": [1.0] * 60}
    spec = InputSpec("tabular", "tabular", list(columns), {})
    expected = [{c: (MISSING if is_missing(col[i]) else col[i]) for c, col in columns.items()} for i in range(60)]
    got = spec.values(Table(columns))
    assert [[(type(v), repr(v)) for v in row.values()] for row in got] == \
           [[(type(v), repr(v)) for v in row.values()] for row in expected]
    assert [list(row) for row in got] == [list(row) for row in expected]


def test_the_table_preprocessing_stops_at_its_deadline_saying_so():
    """Automm's own table preprocessing, minutes long on a large table, stops at the deadline
    (between columns) and says what it was doing, instead of running on until the search's alarm."""
    import time

    import automm
    from automm.deadlines import deadline_scope

    rows = [{"x": float(i), "c": "a"} for i in range(10)]
    encoder = TabularEncoder({"x": "numeric", "c": "categorical"})
    with deadline_scope(time.monotonic() - 1):
        with pytest.raises(automm.TimeLimitExceeded, match=r"stopped at the time limit: the table preprocessing's "
                                                             r"fit, at column 1 of 2"):
            encoder.fit(rows)
    encoder.fit(rows)
    with deadline_scope(time.monotonic() - 1):
        with pytest.raises(automm.TimeLimitExceeded, match=r"the table preprocessing, at column 1 of 2"):
            encoder.preprocess_batch(rows)
