"""Date-time columns: reading points in time, the ``datetime`` role, the tabular encoder's
features of a date, and what fit / predict / save do with them."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from automm import AutoMMClassifier, InputError
from automm.components.base import MISSING
from automm.components.tabular import TabularEncoder
from automm.data import as_table, is_missing
from automm.roles import as_datetime, infer_role_builtin

UTC = datetime.timezone.utc


@pytest.mark.parametrize("value, expected", [
    ("2024-03-05", datetime.datetime(2024, 3, 5)),
    (" 2024-03-05 14:30 ", datetime.datetime(2024, 3, 5, 14, 30)),
    ("2024-03-05T14:30:00Z", datetime.datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ("2024-03-05T14:30:00.123456789+01:00",
     datetime.datetime(2024, 3, 5, 14, 30, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
    (pd.Timestamp("2024-03-05 06:00"), datetime.datetime(2024, 3, 5, 6)),
    (datetime.date(2024, 3, 5), datetime.datetime(2024, 3, 5)),
    (np.datetime64("2024-03-05T06:00", "ns"), datetime.datetime(2024, 3, 5, 6)),
    # a date with its zone (XML Schema's xs:date) is midnight there, not 01:00 or 05:00 naive
    ("2024-03-30+01:00", datetime.datetime(2024, 3, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
    ("2024-03-05-05:00", datetime.datetime(2024, 3, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))),
    ("2024-03-05Z", datetime.datetime(2024, 3, 5, tzinfo=UTC)),
    # zones as Python 3.10's fromisoformat does not read them (it takes "+01:00" only)
    ("2024-03-05T14:30:00.123Z", datetime.datetime(2024, 3, 5, 14, 30, 0, 123000, tzinfo=UTC)),
    ("2024-03-05 14:30:00+0100", datetime.datetime(2024, 3, 5, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
    ("2024-03-05T14:30-03", datetime.datetime(2024, 3, 5, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-3)))),
    ("2024-03", datetime.datetime(2024, 3, 1)),  # an ISO 8601 month: its first day
    (" 1999-12 ", datetime.datetime(1999, 12, 1)),
])
def test_as_datetime_reads_points_in_time(value, expected):
    assert as_datetime(value) == expected


@pytest.mark.parametrize("value", ["2024-02-30", "2024", "05/03/2024", "yesterday", 2024, 3.5, None, pd.NaT,
                                   np.datetime64("NaT"), b"2024-03-05",
                                   # no month: a code, a 13th month, none unpadded or ambiguous (pandas reads
                                   # "12-34" as December 2034)
                                   "12-34", "2024-13", "2024-00", "0000-01", "2024-3", "202403", "2024/03", "03/2024"])
def test_as_datetime_rejects_what_is_not_one(value):
    assert as_datetime(value) is None


def test_missing_times_are_missing():
    assert is_missing(np.datetime64("NaT")) and is_missing(pd.NaT)
    assert not is_missing(np.datetime64("2024-01-01"))


def test_role_inference_finds_dates_as_objects_and_iso_strings():
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    assert infer_role_builtin(list(days)) == "datetime"
    assert infer_role_builtin([d.strftime("%Y-%m-%d") for d in days]) == "datetime"
    assert infer_role_builtin([d.date() for d in days]) == "datetime"
    assert infer_role_builtin([d.year for d in days]) == "numeric"  # years as numbers stay numbers
    # a column that is mostly something else is not taken for dates
    mixed = [d.strftime("%Y-%m-%d") for d in days[:30]] + ["unknown"] * 10
    assert infer_role_builtin(mixed) != "datetime"


def test_a_column_of_iso_months_is_dates_and_years_codes_and_seasons_are_not():
    """"2024-03" was read as a category (a monthly series' one value per row: an identifier to
    `automm init`, left out); a month is a date, its first day. Years stay numbers, and
    seasons ("2010-11": November 2010 as a month) stay categories."""
    months = [m.strftime("%Y-%m") for m in pd.period_range("2019-01", periods=40, freq="M")]
    assert infer_role_builtin(months) == "datetime"
    assert infer_role_builtin(months[:38] + ["NaT", "nan"]) == "datetime"
    assert infer_role_builtin([2008, 2012, 2016, 2020] * 5) == "numeric"
    assert infer_role_builtin(["12-34", "56-78", "10-11"] * 5) == "categorical"
    seasons = [f"{year}-{(year + 1) % 100:02d}" for year in range(2000, 2012)]  # 2000-01 ... 2011-12
    assert all(as_datetime(season) is not None for season in seasons)
    assert infer_role_builtin(seasons * 2) == "categorical"
    from automm.data import _warn_mostly_dates

    with warnings.catch_warnings():  # 4 of 5 seasons read as months: no "mostly dates" to fix
        warnings.simplefilter("error")
        assert not _warn_mostly_dates("season", "categorical", ["2008-09", "2009-10", "2010-11", "2011-12", "2012-13"])
    assert infer_role_builtin(["2010-11", "2010-12", "2011-01"] * 5) == "datetime"  # months in a row


def test_a_month_column_gives_the_model_its_trend_and_month():
    """A monthly series' month column: its features, also for months after fit's."""
    months = pd.period_range("2016-01", periods=48, freq="M").strftime("%Y-%m")
    frame = pd.DataFrame({"month": months})
    model = AutoMMClassifier(max_epochs=1, num_workers=0, random_state=0).fit(frame, ["a", "b"] * 24)
    assert model.column_roles_ == {"month": "datetime"}
    encoder = TabularEncoder({"month": "datetime"}).fit([{"month": m} for m in months])
    july = encoder.preprocess({"month": "2020-07"})  # after fit's months
    assert july["numeric_missing"].tolist() == [0.0, 0.0]
    assert july["categorical"][0] == encoder._category_index["month:month"]["7"]
    assert encoder.preprocess({"month": "2020-08"})["numeric"][0] > july["numeric"][0]  # the trend goes on


def test_a_numpy_datetime64_column_keeps_its_times():
    """``datetime64[ns].tolist()`` gives integers (nanoseconds); the column must stay times."""
    times = np.array(["2024-01-01", "2024-06-01", "NaT"], dtype="datetime64[ns]")
    table = as_table([{"when": times, "n": [1, 2, 3]}])
    assert [as_datetime(v) for v in table.columns["when"][:2]] == [datetime.datetime(2024, 1, 1),
                                                                    datetime.datetime(2024, 6, 1)]
    assert is_missing(table.columns["when"][2])


def _rows(times):
    return [{"when": t} for t in times]


def test_encoder_features_of_a_date_column():
    days = ["2024-01-01", "2024-01-06", "2024-02-15", None]  # a Monday, a Saturday, a Thursday, missing
    encoder = TabularEncoder({"when": "datetime"}).fit(_rows(days))
    assert encoder.numeric_features == ["when:time", "when:day"]
    assert encoder.categorical_features == ["when:month", "when:weekday"]  # every time is midnight: no hour
    state = encoder.get_state()
    assert state["categories"]["when:weekday"] == ["0", "3", "5"]
    sample = encoder.preprocess({"when": "2024-01-06"})
    index = encoder._category_index
    assert sample["categorical"].tolist() == [index["when:month"]["1"], index["when:weekday"]["5"]]
    assert sample["numeric_missing"].tolist() == [0.0, 0.0]
    # later times have larger standardised trend values
    later = encoder.preprocess({"when": "2024-02-15"})["numeric"][0]
    assert later > sample["numeric"][0]
    for row in (MISSING, {"when": None}, {"when": "not a date"}):
        missing = encoder.preprocess(row)
        assert missing["numeric_missing"].tolist() == [1.0, 1.0]
        assert missing["categorical"].tolist() == [0, 0]


def test_hour_is_a_feature_only_when_times_of_day_vary():
    encoder = TabularEncoder({"when": "datetime", "x": "numeric"}).fit(
        [{"when": pd.Timestamp("2024-01-01 08:00"), "x": 1.0}, {"when": pd.Timestamp("2024-01-01 17:30"), "x": 2.0}])
    assert encoder.categorical_features == ["when:month", "when:weekday", "when:hour"]
    assert encoder.numeric_features == ["x", "when:time", "when:day"]
    assert encoder.get_state()["categories"]["when:hour"] == ["17", "8"]


def test_aware_times_use_the_instant_for_the_trend_and_the_wall_clock_for_the_calendar():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    encoder = TabularEncoder({"when": "datetime"}).fit(_rows(["2024-01-01T00:30:00+01:00", "2024-01-01T10:00:00Z"]))
    same_instant = [encoder.preprocess({"when": v})["numeric"][0].item()
                    for v in ("2023-12-31T23:30:00Z", datetime.datetime(2024, 1, 1, 0, 30, tzinfo=paris))]
    assert same_instant[0] == pytest.approx(same_instant[1])
    assert encoder._values({"when": "2024-01-01T00:30:00+01:00"}, ["when:hour"]) == ["0"]


def test_each_distinct_time_is_read_once_and_the_other_columns_column_by_column(monkeypatch):
    """One date-time column made the table encoder read every row whole, feature by feature (a
    table of 1,000 columns, 165 of them dates, 2,000 rows: fit 9.3 s, now 4.5 s), and fit read each
    date twice (its features, then its clock). Each distinct time is now read once, on any clock."""
    from automm.components import tabular as tabular_module

    days = pd.date_range("2024-01-01 06:00", periods=10, freq="19h")
    paris = datetime.timezone(datetime.timedelta(hours=1))
    rows = [{"when": days[i % 10], "written": str(days[i % 10]), "x": float(i)} for i in range(200)]
    rows[0]["when"] = days[0].tz_localize("UTC")  # the same instant on two clocks: two times (hours 6 and 7)
    rows[1]["when"] = days[0].tz_localize("UTC").tz_convert(paris)
    roles = {"when": "datetime", "written": "datetime", "x": "numeric"}
    read = []
    monkeypatch.setattr(tabular_module, "as_datetime", lambda value: (read.append(value), as_datetime(value))[1])
    encoder = TabularEncoder(roles).fit(rows)
    assert len(read) == 10 + 2 + 10, len(read)  # (each cell twice: 800)
    read.clear()
    batch = encoder.preprocess_batch(rows)
    assert len(read) == 22, len(read)
    monkeypatch.undo()
    assert encoder.datetime_clocks == {"when": ["+00:00", "+01:00", "naive"], "written": ["naive"]}
    one_by_one = [encoder.preprocess(row) for row in rows]
    for part in ("numeric", "numeric_missing", "categorical"):
        torch.testing.assert_close(batch[part], torch.stack([sample[part] for sample in one_by_one]), rtol=0, atol=0)
    assert encoder._values(rows[1], ["when:hour", "written:hour"]) == ["7", "1"]


def test_a_wall_time_shown_twice_is_read_as_its_own_instant_each_time():
    """At the end of daylight saving 02:30 in Berlin comes twice (``fold`` 0 then 1, an hour apart),
    and Python's ``==`` and ``hash`` do not tell the two apart on one time zone: the encoder's
    reading of each distinct time once gave the second the first's instant (a ``time`` feature an
    hour early)."""
    from zoneinfo import ZoneInfo

    from automm.components.tabular import _each_moment, _moment_features

    berlin = ZoneInfo("Europe/Berlin")
    first = datetime.datetime(2021, 10, 31, 2, 30, tzinfo=berlin)
    second = first.replace(fold=1)
    assert first == second and first.utcoffset() != second.utcoffset()
    read = _each_moment([first, second, second])
    assert read == [_moment_features(first), _moment_features(second), _moment_features(second)]
    assert read[0][0]["time"] < read[1][0]["time"]


def test_state_round_trip_and_a_state_saved_before_date_columns():
    rows = _rows(pd.date_range("2024-01-01 06:00", periods=30, freq="13h"))
    encoder = TabularEncoder({"when": "datetime"}, output_dim=8).fit(rows)
    restored = TabularEncoder({"when": "datetime"}, output_dim=8)
    restored.set_state(encoder.get_state())
    restored.load_state_dict(encoder.state_dict())
    batch = encoder.collate([encoder.preprocess(r) for r in rows])
    encoder.eval(), restored.eval()
    assert torch.equal(encoder(batch), restored(batch))
    old = TabularEncoder({"x": "numeric"})
    old.set_state({"numeric_columns": ["x"], "categorical_columns": [], "numeric_mean": [0.0], "numeric_std": [1.0],
                   "categories": {}})
    assert old.datetime_columns == [] and old.numeric_features == ["x"]


def test_linear_form_covers_the_date_features():
    rows = _rows(pd.date_range("2024-01-01", periods=20, freq="5D"))
    encoder = TabularEncoder({"when": "datetime"}, linear=True, output_dim=3).fit(rows)
    batch = encoder.collate([encoder.preprocess(r) for r in rows])
    width = 2 * 2 + len(encoder.categories["when:month"]) + 1 + len(encoder.categories["when:weekday"]) + 1
    assert encoder.linear_weight.shape == (width, 3)
    encoder.set_linear_weight(torch.randn(width, 3))
    assert torch.allclose(encoder(batch), encoder.linear_design(batch).to_dense() @ encoder.linear_weight, atol=1e-5)


def test_feature_names_may_not_clash_with_columns():
    with pytest.raises(ValueError, match="when:month"):
        TabularEncoder({"when": "datetime", "when:month": "numeric"})


def _weekend_task(n=480, seed=0):
    """Orders whose label is whether they were placed at a weekend: only the date tells."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    X = pd.DataFrame({"when": when, "amount": rng.normal(size=n).round(2)})
    y = np.where(when.day_of_week >= 5, "weekend", "weekday")
    return X, y


def test_fit_learns_from_a_date_column_and_saves_it(tmp_path):
    X, y = _weekend_task()
    clf = AutoMMClassifier(max_epochs=12, batch_size=32, random_state=0, num_workers=0, augmentations=None)
    clf.fit(X.iloc[:400], y[:400])
    assert clf.column_roles_ == {"when": "datetime", "amount": "numeric"}
    assert clf.score(X.iloc[400:], y[400:]) >= 0.95
    clf.save(tmp_path / "model")
    loaded = AutoMMClassifier.load(tmp_path / "model")
    # the same dates as ISO strings (what a CSV file holds) give the same predictions
    as_text = X.iloc[400:].assign(when=X.when.iloc[400:].dt.strftime("%Y-%m-%d"))
    np.testing.assert_allclose(loaded.predict_proba(as_text), clf.predict_proba(X.iloc[400:]), atol=1e-6)


def test_unreadable_dates_fail_before_training_and_rare_ones_count_as_missing_with_a_warning():
    X, y = _weekend_task(n=100)
    words = X.assign(when=["soon"] * 50 + X.when.iloc[50:].dt.strftime("%Y-%m-%d").tolist())
    clf = AutoMMClassifier(max_epochs=1, column_types={"when": "datetime"}, num_workers=0)
    with pytest.raises(InputError, match=r"column 'when': 50 of 100 values are not dates or times \('soon' at row 0"):
        clf.fit(words, y)
    assert not hasattr(clf, "classes_")
    fitted = AutoMMClassifier(max_epochs=1, batch_size=32, num_workers=0, random_state=0).fit(X, y)
    with pytest.raises(InputError, match="column 'when'"):
        fitted.predict(X.assign(when="later"))
    one_odd = X.astype({"when": object})
    one_odd.loc[3, "when"] = "later"
    with pytest.warns(UserWarning, match=r"column 'when': 1 of 100 values are not dates or times \('later' at row 3\); "
                                         "they count as missing"):
        assert len(fitted.predict(one_odd)) == len(X)


def test_a_recipe_reads_iso_dates_from_a_csv_file(tmp_path, capsys):
    """A CSV file holds dates as strings: the recipe's table reads them as a datetime column."""
    import json

    import yaml

    from automm.cli import main

    X, y = _weekend_task()
    X.assign(when=X.when.dt.strftime("%Y-%m-%d"), label=y, part=["train"] * 400 + ["test"] * 80).to_csv(
        tmp_path / "orders.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({
        "data": {"path": "orders.csv", "label": "label", "split_column": "part"},
        "training": {"max_epochs": 12, "batch_size": 32, "num_workers": 0},
        "components": {"augmentations": None},
        "output": {"dir": str(tmp_path / "model")}, "seed": 0}))
    assert main(["fit", str(tmp_path / "recipe.yaml"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test"]["accuracy"] >= 0.95
    assert AutoMMClassifier.load(tmp_path / "model").column_roles_["when"] == "datetime"


def test_durations_are_numbers_of_seconds():
    hours = pd.to_timedelta(np.arange(30), unit="h")
    assert infer_role_builtin(list(hours)) == "numeric"
    table = as_table([{"took": hours.to_numpy(), "n": list(range(30))}])  # timedelta64[ns] stays durations
    assert infer_role_builtin(table.columns["took"]) == "numeric"
    rows = [{"took": v} for v in [pd.Timedelta("1h"), np.timedelta64(3, "h"), datetime.timedelta(hours=2), pd.NaT]]
    encoder = TabularEncoder({"took": "numeric"}).fit(rows)
    assert encoder.get_state()["numeric_mean"] == [pytest.approx(7200.0)]
    assert encoder.preprocess(rows[3])["numeric_missing"].tolist() == [1.0]


def test_durations_written_to_a_csv_file_are_numbers_of_seconds(tmp_path):
    """pandas writes a timedelta column as "0 days 00:45:32": read back from the CSV file it became
    text (train accuracy 0.95 against 1.00), while the README says durations are seconds."""
    import io

    import numpy as np
    import pandas as pd

    from automm import AutoMM
    from automm.roles import written_duration

    assert written_duration("0 days 00:45:32") == 2732.0 and written_duration("-1 days +23:59:59.5") == -0.5
    assert written_duration("1 day, 2:03:04") == 93784.0 and written_duration("00:45:32") is None
    seconds = np.random.default_rng(0).uniform(0, 7200, 80)
    written = pd.DataFrame({"duration": pd.to_timedelta(seconds, "s")}).to_csv(index=False)
    frame = pd.read_csv(io.StringIO(written))
    y = np.where(seconds > 3600, "long", "short")
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(frame, y)
    assert model.column_roles_ == {"duration": "numeric"}
    state = model.model_.encoders["tabular"].get_state()
    assert state["numeric_mean"][0] == pytest.approx(np.median(seconds), rel=1e-3)


def test_a_pandas_period_column_is_dates_at_the_start_of_each_period():
    days = pd.Series(pd.period_range("2024-01-01", periods=30, freq="D"))
    assert infer_role_builtin(days.tolist()) == "datetime"
    assert as_datetime(pd.Period("2024-03", "M")) == datetime.datetime(2024, 3, 1)
    assert as_datetime(days.astype(object).where(days.index != 3).tolist()[3]) is None  # NaT


def test_times_on_a_clock_fit_never_saw_are_pointed_out():
    winter = pd.date_range("2024-01-01", periods=40, freq="D", tz="Europe/Berlin")
    summer = pd.date_range("2024-07-01", periods=40, freq="D", tz="Europe/Berlin")
    encoder = TabularEncoder({"d": "datetime"}).fit([{"d": v} for v in winter])

    def clocks(encoder, values):  # (summer's months, which fit never saw, are named apart)
        return [m for m in encoder.unfamiliar_values([{"d": v} for v in values]) if "clock" in m]

    assert clocks(encoder, summer) == []  # the zone's other offset: the same clock
    said = clocks(encoder, summer.tz_convert("UTC"))
    assert len(said) == 1 and "40 of 40 times" in said[0] and "Europe/Berlin" in said[0]
    assert clocks(encoder, summer.tz_localize(None))  # naive, fit saw aware
    strings = TabularEncoder({"d": "datetime"}).fit([{"d": v.isoformat()} for v in winter])  # +01:00 only
    assert clocks(strings, [v.isoformat() for v in summer]) == []  # +02:00: an hour apart
    assert any("fall in months fit never saw (month 7, 8; fit saw 1, 2)" in m
               for m in encoder.unfamiliar_values([{"d": v} for v in summer]))
    copy = TabularEncoder({"d": "datetime"})
    copy.set_state(encoder.get_state())
    assert copy.datetime_clocks == {"d": ["Europe/Berlin"]}


def test_times_in_months_fit_never_saw_are_named_at_predict():
    """A model fitted on January to September read October's month as unknown (an untrained
    embedding) without a word: its predictions moved by up to 0.3 of the noise's 0.5."""
    import pandas as pd

    from automm import AutoMM

    days = pd.date_range("2023-01-01", "2023-09-30", freq="D")
    y = (days.day_of_week >= 5).astype(int)
    model = AutoMM(max_epochs=1, num_workers=0, random_state=0).fit(pd.DataFrame({"day": days}), y)
    autumn = pd.DataFrame({"day": pd.date_range("2023-10-01", "2023-11-30", freq="D")})
    with pytest.warns(UserWarning, match=r"column 'day': 61 of 61 times fall in months fit never saw \(month 10, 11; "
                                         r"fit saw 1, 2, 3, 4, 5, 6, 7, 8, 9\)"):
        model.predict(autumn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(pd.DataFrame({"day": days[:40]}))  # months it knows: nothing to say
