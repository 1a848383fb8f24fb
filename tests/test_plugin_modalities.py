"""A third party's new modality (sensor series), treated as the built-in ones are: its role rule
beside other plugins' (order, conflicts, a rule that claims every column), its check's missing
values, its default encoder, and the errors when its plugin was not loaded."""

import importlib
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import automm
from automm import MISSING, Encoder, InputError, hookimpl
from automm.registry import DISABLE_AUTOLOAD_ENV


def _series(value):
    """A value of the test modality as a float tensor: a numeric sequence of at least 4 readings."""
    array = np.asarray(value.get("array") if isinstance(value, dict) else value)
    if array.dtype.kind not in "fiu" or array.ndim != 1 or len(array) < 4:
        raise ValueError("not a series of numbers")
    return torch.as_tensor(array, dtype=torch.float32)


def _is_series(value):
    try:
        _series(value)
    except (ValueError, TypeError):
        return False
    return True


class SeriesStats(Encoder):
    """A series' mean, spread and range through a linear layer."""

    modality = "series"
    static_preprocess = True

    def __init__(self, output_dim=4):
        super().__init__()
        self.output_dim = output_dim
        self.linear = torch.nn.Linear(3, output_dim)

    def preprocess(self, value, augment=None):
        if value is MISSING:
            return torch.zeros(3)
        series = _series(value)
        return torch.stack([series.mean(), series.std(), series.max() - series.min()])

    def forward(self, batch):
        return self.linear(batch)


class SeriesPlugin:
    """The modality ``series``: two encoders (the one first by name tagged ``manual``), a role rule
    and a column check that, as a careless author's may, does not skip missing values."""

    @hookimpl
    def automm_register_encoders(self, register):
        register("a_series_manual", SeriesStats, modality="series", output_dim=4, defaults={"output_dim": 4},
                 tags=("manual",))
        register("series_stats", SeriesStats, modality="series", output_dim=4, defaults={"output_dim": 4})

    @hookimpl
    def automm_infer_column_role(self, name, values):
        return "series" if values and all(_is_series(v) for v in values) else None

    @hookimpl
    def automm_check_column(self, role, name, values):
        if role != "series":
            return None
        return [(row, "not a series of numbers") for row, value in enumerate(values) if not _is_series(value)]


class Greedy:
    """A role rule that claims every column (its author forgot to return None)."""

    @hookimpl
    def automm_infer_column_role(self, name, values):
        return "series"


def _series_rows(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=int(rng.integers(8, 20))).astype(np.float32) * (1 + i % 2) for i in range(n)]


def test_a_column_a_plugin_rule_claimed_that_its_check_refuses_names_the_rule(builtin_only, fresh_registry):
    """A rule claiming every column made a text column 'series': the error said that every value was an
    unreadable series and to give None where a row has none, not whose rule read it so, nor how to say
    what it is."""
    fresh_registry(SeriesPlugin(), Greedy())
    X = {"signal": _series_rows(), "note": [f"left arm reading number {i}" for i in range(24)]}
    with pytest.raises(InputError, match=r"column 'note': 24 of 24 series values cannot be read.*its role 'series' is "
                                         r"what the column-role rule of plugin '.*Greedy' read it as: .*"
                                         r"column_types=\{'note': 'text'\} \(what the other rules read it as\)"):
        automm.AutoMM(max_epochs=1).fit(X, ["a", "b"] * 12)


def test_a_column_whose_role_column_types_named_is_not_said_to_be_a_rules_reading(builtin_only, fresh_registry):
    """With column_types={'note': 'series'} the error said the role was what Greedy's rule read it as, and
    to name its role: the user had."""
    fresh_registry(SeriesPlugin(), Greedy())
    X = {"signal": _series_rows(), "note": [f"left arm reading number {i}" for i in range(24)]}
    with pytest.raises(InputError, match=r"column 'note': 24 of 24 series values cannot be read") as caught:
        automm.AutoMM(max_epochs=1, column_types={"note": "series"}).fit(X, ["a", "b"] * 12)
    assert "column-role rule" not in str(caught.value) and "column_types=" not in str(caught.value), caught.value


def test_missing_values_that_a_plugin_check_names_stay_missing(builtin_only, fresh_registry):
    """A check that does not skip None named the missing rows as unreadable: a series column with
    10% missing values was refused ("row 0 (NoneType): not a series of numbers")."""
    from automm.data import as_table, validate_columns

    fresh_registry(SeriesPlugin())
    column = _series_rows(40)
    for row in range(0, 40, 10):
        column[row] = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a warning that they cannot be read
        table = validate_columns(as_table(({"signal": column},)), {"signal": "series"})
    assert [row for row, value in enumerate(table.columns["signal"]) if value is None] == [0, 10, 20, 30]


def test_a_plugin_modality_gets_its_first_encoder_not_tagged_manual(builtin_only, fresh_registry):
    """The default encoder of a plugin's modality was its first by name, a 'manual' one too, which
    the tag keeps to where the user names it."""
    fresh_registry(SeriesPlugin())
    model = automm.AutoMM(max_epochs=1, batch_size=8, random_state=0)
    model.fit({"signal": _series_rows()}, ["a", "b"] * 12)
    assert model.column_roles_ == {"signal": "series"}
    assert model.config_["encoders"]["series_0"]["name"] == "series_stats"
    named = automm.AutoMM(max_epochs=1, batch_size=8, random_state=0, encoders={"series": "a_series_manual"})
    assert named.fit({"signal": _series_rows()}, ["a", "b"] * 12).config_["encoders"]["series_0"]["name"] == \
        "a_series_manual"


def test_the_kit_refuses_a_role_rule_that_claims_ordinary_columns():
    """check_role_inference passed a rule claiming every column, which takes the numbers and texts
    of every user's fit."""
    from automm.testing import ConformanceError, check_role_inference

    assert check_role_inference(SeriesPlugin(), _series_rows(3), "series") == "series"
    with pytest.raises(ConformanceError, match=r"claims a column of numbers .* as 'series'.*return None for values "
                                               r"that are not your modality's"):
        check_role_inference(Greedy(), _series_rows(3), "series")


def _install(folder, monkeypatch, module, source, name=None):
    """A distribution (``name``, else after the module) in ``folder`` with an ``automm`` entry point
    for ``module``, as pip leaves it; ``folder`` put first on sys.path."""
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    dist = folder / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name or module.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[automm]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(folder))


_CLAIMS_RECORDS = """
    from automm import hookimpl

    @hookimpl
    def automm_infer_column_role(name, values):
        return {role!r} if all(isinstance(v, dict) and "readings" in v and "hz" in v for v in values) else None
"""


@pytest.mark.parametrize("sys_path_order", ["sound first", "sensor first"])
def test_two_installed_plugins_claiming_a_column_give_one_role_wherever_installed(sys_path_order, tmp_path,
                                                                                 monkeypatch):
    """Which installed plugin's rule was asked first followed the order in which Python found their
    packages (sys.path, a folder's listing): the same data read as 'sound' on one machine and 'sensor'
    on another, without a word."""
    from automm.data import ask_role_rules

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    folders = {"sound": tmp_path / "one", "sensor": tmp_path / "two"}
    order = ["sound", "sensor"] if sys_path_order == "sound first" else ["sensor", "sound"]
    for role in reversed(order):  # each prepended: the first of order ends first on sys.path
        _install(folders[role], monkeypatch, f"automm_{role}_claims", _CLAIMS_RECORDS.format(role=role))
    importlib.invalidate_caches()
    try:
        registry = automm.reset_registry()
        clips = [{"readings": np.zeros(50, np.float32), "hz": 100}] * 3
        with pytest.warns(automm.AutoMMWarning, match=r"column 'clip': plugins read it as different modalities: "
                                                      r"'automm_sound_claims' \(automm-sound-claims 0.1\) as 'sound', "
                                                      r"'automm_sensor_claims' \(automm-sensor-claims 0.1\) as 'sensor'; "
                                                      r"it is read as 'sound'.*column_types=\{'clip': 'sensor'\}"):
            assert ask_role_rules(registry.plugin_manager, "clip", clips) == "sound"
    finally:
        for role in order:
            sys.modules.pop(f"automm_{role}_claims", None)
        monkeypatch.undo()
        automm.reset_registry()


def test_a_role_or_modality_of_a_plugin_that_was_skipped_says_so(tmp_path, monkeypatch):
    """column_types={'s': 'series'} and encoders={'series': ...} with the series plugin failing at
    import said only that the role or key was unknown (the plugin's components named it, these did not)."""
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    _install(tmp_path, monkeypatch, "automm_series_broken", 'raise ImportError("libsensor.so: cannot open")\n')
    importlib.invalidate_caches()
    try:
        with pytest.warns(automm.PluginLoadWarning, match="'automm_series_broken'.*is skipped"):
            automm.reset_registry()
        skipped = (r"installed plugins skipped, so their components are missing: 'automm_series_broken' "
                   r"\(automm-series-broken 0.1\) could not be loaded: ImportError\('libsensor.so: cannot open'\)")
        X = {"s": [[0.5, 1.5, 2.5, 3.5]] * 4, "t": ["a long text of words", "another one here"] * 2}
        with pytest.raises(InputError, match=r"column_types\['s'\]: unknown role 'series'.*; " + skipped):
            automm.AutoMM(column_types={"s": "series"}).fit(X, [0, 1] * 2)
        with pytest.raises(InputError, match=r"encoders: keys \['series'\] match neither.*; " + skipped):
            automm.AutoMM(encoders={"series": "series_stats"}).fit({"t": X["t"]}, [0, 1] * 2)
    finally:
        sys.modules.pop("automm_series_broken", None)
        monkeypatch.undo()
        automm.reset_registry()


class ShortSeries(SeriesStats):
    """Takes series of at most 30 readings: a longer one is an InputError of its ``preprocess``."""

    def preprocess(self, value, augment=None):
        if value is not MISSING and len(value) > 30:
            raise InputError(f"a series of {len(value)} readings; this encoder takes at most 30")
        return super().preprocess(value, augment)


class ShortSeriesPlugin(SeriesPlugin):
    @hookimpl
    def automm_register_encoders(self, register):
        register("series_stats", ShortSeries, modality="series", output_dim=4, defaults={"output_dim": 4})


def test_a_value_a_plugin_encoders_preprocess_refuses_names_its_column_and_row(builtin_only, fresh_registry):
    """An in-memory value a plugin encoder's preprocess refused reached the user as its bare message,
    "a series of 40 readings; ...": no column, no row of the thousands predicted."""
    import pandas as pd

    fresh_registry(ShortSeriesPlugin())
    model = automm.AutoMM(max_epochs=1, batch_size=8, random_state=0).fit({"signal": _series_rows()}, ["a", "b"] * 12)
    rows = _series_rows(4, seed=1)
    rows[2] = np.ones(40, dtype=np.float32)
    X = pd.DataFrame({"signal": rows}, index=["r0", "r1", "r2", "r3"])
    with pytest.raises(InputError, match=r"^column 'signal', index 'r2': a series of 40 readings; this encoder takes"):
        model.predict(X)
