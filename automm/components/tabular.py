"""The ``tabular`` encoder: all numeric, categorical and date-time columns of a row in one MLP.

Each raw value is one row as a mapping ``{column: value}`` (or ``MISSING`` for the whole
row). Numeric columns are centred on their training median and scaled by their interquartile
range (as a normal's standard deviation; the mean and standard deviation where the quartiles
agree), then clipped at ``numeric_clip`` (missing values become 0 plus a 0/1 missing flag);
categorical columns are looked up in per-column vocabularies (index 0 = unknown or missing) and
embedded; while training, a share of the categories
(``category_dropout``) is read as unknown, so that index 0 learns "this column tells nothing" and
a category never seen in fit leans on the other inputs instead of on an untrained embedding. A date-time column (values that
:func:`automm.roles.as_datetime` reads: datetimes, dates, ``datetime64``, ISO 8601 strings)
becomes two numbers, the time in years since 1970 (its trend) and the day of the month, and
up to three categories, the month, the weekday and, when the training times are not all
midnight, the hour: its *features*, treated like numeric and categorical columns named
``"column:part"``.

With ``linear=True`` the encoder is instead a linear function of the row (its linear form, what
the search's linear model, :mod:`automm.linear`, is made of): the standardised numerics, their
missing flags and a one-hot of each categorical column's index, the row scaled by
1 / sqrt(number of columns) so that it weighs about as much as a text's normalised bag, times a
weight ``output_dim`` wide that starts at zero.
"""

from __future__ import annotations

import datetime
import math
import operator
import unicodedata
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..deadlines import check_deadline
from ..hookspecs import hookimpl
from ..roles import as_datetime, written_bool, written_duration
from ..suggestions import quoted_values
from .base import MISSING, UNFAMILIAR_MIN_VALUES, Encoder, is_absent, true_or_false, whole_at_least_one

__all__ = ["TabularEncoder", "tabular_search_space", "automm_register_encoders"]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"
#: A date-time column's features: numbers (standardised), then categories (embedded).
DATETIME_NUMERIC_PARTS = ("time", "day")
DATETIME_CATEGORICAL_PARTS = ("month", "weekday", "hour")
_SECONDS_PER_YEAR = 365.2425 * 86400
#: Standardised values are clipped to this magnitude so that outliers cannot dominate.
_CLIP = 10.0
#: A numeric column's spread (interquartile range, else standard deviation) at or below this
#: share of its largest magnitude (or of 1, for columns of larger numbers) reads as no spread.
_TINY_SPREAD = 1e-12


def _cell(row: Any, column: str) -> Any:
    """The value of ``column`` in ``row`` (None when the row or the cell is absent)."""
    if row is None or row is MISSING:
        return None
    getter = getattr(row, "get", None)
    if getter is None:
        raise TypeError(f"a tabular row must be a mapping of column to value, got {type(row).__name__}")
    return getter(column)


def _to_float(value: Any) -> float:
    """``value`` as a float (a duration in seconds); NaN when missing or not a number."""
    if is_absent(value):
        return math.nan
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, np.timedelta64):
        return float(value / np.timedelta64(1, "s"))
    written = written_duration(value)  # "0 days 00:45:32", as a CSV file holds a duration
    if written is None:
        written = written_bool(value)  # "True" sent as text for a column fitted on bools
    if written is not None:
        return written
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # (an int beyond floats, 10**400: not finite)
        return math.nan
    return number if math.isfinite(number) else math.nan


def _moment(value: Any) -> datetime.datetime | None:
    """A date-time cell's instant (None when missing or not a date-time)."""
    return None if is_absent(value) else as_datetime(value)


def _parts_of(moment: datetime.datetime | None) -> dict[str, float | str]:
    """The features of an instant (empty for None): ``time`` (years since 1970, the instant for
    aware times, naive ones read as UTC) and ``day`` as numbers, ``month``, ``weekday`` (0 =
    Monday) and ``hour`` (wall-clock) as category keys."""
    if moment is None:
        return {}
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)
    return {"time": aware.timestamp() / _SECONDS_PER_YEAR, "day": float(moment.day), "month": str(moment.month),
            "weekday": str(moment.weekday()), "hour": str(moment.hour)}


def _moment_features(value: Any) -> tuple[dict[str, float | str], str | None]:
    """A date-time cell's features (:func:`_parts_of`) and the clock it is written on (:func:`_clock_of`)."""
    moment = _moment(value)
    return _parts_of(moment), _clock_of(moment)


def _each_moment(cells: Sequence[Any]) -> list[tuple[dict[str, float | str], str | None]]:
    """:func:`_moment_features` of each of ``cells``, each distinct date-time (a string, a date, a
    datetime or a ``datetime64``) read once: a day's orders share their date. An instant on another
    clock is another date-time (its wall-clock features differ), as is one of another type, and
    the second of a wall time that a clock shows twice (``fold=1``: an hour later, which Python's
    ``==`` and ``hash`` do not tell apart on one time zone)."""
    known: dict[tuple, tuple[dict[str, float | str], str | None]] = {}
    out = []
    for cell in cells:
        if is_absent(cell):
            out.append(({}, None))
            continue
        if not isinstance(cell, (str, datetime.date, np.datetime64)):
            out.append(_moment_features(cell))
            continue
        key = (type(cell), cell, getattr(cell, "tzinfo", None), getattr(cell, "fold", 0))
        found = known.get(key)
        if found is None:
            found = known[key] = _moment_features(cell)
        out.append(found)
    return out


def _clock_of(moment: datetime.datetime | None) -> str | None:
    """The clock an instant is written on: its time zone's name (``"Europe/Berlin"``), else its
    UTC offset (``"+01:00"``), ``"naive"`` for a time without a zone; None for None."""
    if moment is None:
        return None
    offset = moment.utcoffset()
    if offset is None:
        return "naive"
    name = getattr(moment.tzinfo, "key", None) or getattr(moment.tzinfo, "zone", None)
    if isinstance(name, str) and "/" in name:  # a named zone whose offset changes (daylight saving)
        return name
    minutes = int(offset.total_seconds() // 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _same_clock(clock: str, seen: Sequence[str]) -> bool:
    """Whether ``clock`` is one of ``seen``, or an offset within an hour of a seen offset (the
    other half of a daylight-saving year, which a fit on months of one season never saw)."""
    if clock in seen:
        return True
    if clock[0] not in "+-":
        return False
    minutes = lambda k: (-1 if k[0] == "-" else 1) * (int(k[1:3]) * 60 + int(k[4:6]))
    return any(k[0] in "+-" and abs(minutes(k) - minutes(clock)) <= 60 for k in seen)


def _category_key(value: Any) -> str | None:
    """The string a category is compared by (``3``, ``3.0`` and ``"3"`` agree); None when missing."""
    if is_absent(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if text.strip() else None


def _as_number(key: str) -> float | None:
    """A category key as the number it writes (``"00412"``: 412.0), None when it is none."""
    try:
        number = float(key)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _keys_by_number(keys: Sequence[str]) -> dict[float, str]:
    """The known category keys that write numbers, by their number; a number two keys write
    (``"7"`` and ``"007"``) maps to neither."""
    by_number: dict[float, str | None] = {}
    for key in keys:
        number = _as_number(key)
        if number is not None:
            by_number[number] = key if number not in by_number else None
    return {number: key for number, key in by_number.items() if key is not None}


def _loose(key: str) -> str:
    """A category key as a user reads it: Unicode composed (NFC: the "é" macOS writes as "e" and
    an accent is the "é" others write) and without surrounding spaces (a CSV export's "Red ")."""
    return unicodedata.normalize("NFC", key).strip()


def _keys_by_loose(keys: Sequence[str]) -> dict[str, str]:
    """The known category keys by their :func:`_loose` form; a form two keys share maps to neither."""
    by_loose: dict[str, str | None] = {}
    for key in keys:
        loose = _loose(key)
        by_loose[loose] = key if loose not in by_loose else None
    return {loose: key for loose, key in by_loose.items() if key is not None}


#: The types whose equal values read alike (as numbers, as categories): :func:`_each_distinct`
#: reads each distinct value of these once.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), np.str_, np.bool_, np.float16, np.float32, np.float64,
                          np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64})


def _float_or_nan(value: Any) -> float | None:
    """:func:`_to_float` of a float, computed faster; None for any other value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else math.nan
    return None


def _each_distinct(cells: Sequence[Any], read: Callable[[Any], Any],
                   plain: Callable[[Any], Any] | None = None) -> list[Any]:
    """``[read(x) for x in cells]``, each distinct value of a plain type read once; ``plain``, when
    given, answers first (None: ask ``read``)."""
    known: dict[tuple, Any] = {}
    out = []
    for cell in cells:
        found = None if plain is None else plain(cell)
        if found is None:
            kind = type(cell)
            if kind in _PLAIN_TYPES:
                key = (kind, cell)
                found = known.get(key)
                if found is None:
                    found = known[key] = read(cell)
            else:
                found = read(cell)
        out.append(found)
    return out


#: The types of the cells :func:`_numbers` converts at C speed (``float`` of each, as :func:`_to_float`
#: reads them), and of the missing ones among them.
_NUMBER_TYPES = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})
_NO_VALUE_TYPES = frozenset({type(None), type(MISSING)})


def _numbers(cells: Sequence[Any]) -> np.ndarray:
    """``[_to_float(x) for x in cells]`` as an array: a column of plain numbers (floats, ints,
    numpy's; None or :data:`MISSING` where missing) converted at C speed, any other value by value."""
    kinds = set(map(type, cells))
    if kinds <= _NUMBER_TYPES | _NO_VALUE_TYPES:
        try:  # (None converts to NaN; an int beyond floats, 10**400, raises: value by value)
            numbers = np.array([None if x is MISSING else x for x in cells] if type(MISSING) in kinds else cells,
                               dtype=np.float64)
        except OverflowError:
            pass
        else:
            numbers[~np.isfinite(numbers)] = np.nan
            return numbers
    return np.array(_each_distinct(cells, _to_float, plain=_float_or_nan), dtype=np.float64)


def _each_category(cells: Sequence[Any], read: Callable[[Any], Any]) -> list[Any]:
    """``[read(x) for x in cells]`` (:func:`_each_distinct`), a column of strings (None or
    :data:`MISSING` where missing) looked up at C speed."""
    if not set(map(type, cells)) <= {str} | _NO_VALUE_TYPES:
        return _each_distinct(cells, read)
    distinct = dict.fromkeys(cells)
    answers = dict(zip(distinct, map(read, distinct)))
    return list(map(answers.__getitem__, cells))


def _cell_columns(rows: Sequence[Any], columns: Sequence[str]) -> list[Sequence[Any]]:
    """Each of ``columns``' cells over ``rows`` (:func:`_cell`: None where a row lacks it); rows
    that are dicts with every column (:meth:`automm.data.InputSpec.values`' rows) read at C speed."""
    if columns and all(type(row) is dict for row in rows):
        try:  # (a column at a time: zip(*rows) of 200,000 rows took 6 times as long)
            return [list(map(operator.itemgetter(column), rows)) for column in columns]
        except KeyError:
            pass
    return [[_cell(row, column) for row in rows] for column in columns]


#: :meth:`TabularEncoder.unfamiliar_values` speaks when at least this share of a column's values
#: (:data:`~automm.components.base.UNFAMILIAR_MIN_VALUES` or more) are unknown categories.
UNFAMILIAR_SHARE = 0.5


class TabularEncoder(Encoder):
    """MLP over standardised numerics, their missing flags and categorical embeddings.

    ``column_roles`` maps each column to ``"numeric"``, ``"categorical"`` or ``"datetime"``
    (the core passes it). ``max_categories`` caps each column's vocabulary (most frequent kept,
    ties broken by the string); rarer and unseen categories share index 0 with missing.
    ``category_dropout`` is the share of categories read as index 0 in training steps.
    """

    modality = "tabular"
    reusable_samples = True
    training_only_hyperparameters = ("category_dropout",)  # not saved: an older automm's lacks it
    #: The magnitude at which standardised numbers are clipped (:data:`_CLIP`).
    numeric_clip = _CLIP

    def __init__(self, column_roles: Mapping[str, str], emb_dim: int = 16, hidden_dim: int = 64,
                 output_dim: int = 64, dropout: float = 0.1, max_categories: int = 1000, linear: bool = False,
                 category_dropout: float = 0.1):
        super().__init__()
        unknown = {c: r for c, r in column_roles.items() if r not in (NUMERIC, CATEGORICAL, DATETIME)}
        if unknown:
            raise ValueError(f"tabular columns must be 'numeric', 'categorical' or 'datetime', got {unknown}")
        if not column_roles:
            raise ValueError("the tabular encoder needs at least one column")
        self.numeric_columns = [c for c, r in column_roles.items() if r == NUMERIC]
        self.categorical_columns = [c for c, r in column_roles.items() if r == CATEGORICAL]
        self.datetime_columns = [c for c, r in column_roles.items() if r == DATETIME]
        clashes = sorted({f"{c}:{p}" for c in self.datetime_columns
                          for p in DATETIME_NUMERIC_PARTS + DATETIME_CATEGORICAL_PARTS} & set(column_roles))
        if clashes:
            raise ValueError(f"columns {clashes} have the names of date-time features; rename them")
        self.datetime_hours: list[str] = []  # the date-time columns whose hour is a feature (set by fit)
        self.datetime_clocks: dict[str, list[str]] = {}  # each date-time column's clocks in fit (_clock)
        self.emb_dim = whole_at_least_one("emb_dim", emb_dim)
        self.hidden_dim = whole_at_least_one("hidden_dim", hidden_dim)
        self.output_dim = whole_at_least_one("output_dim", output_dim)
        self.dropout_p = float(dropout)
        if not 0.0 <= float(category_dropout) < 1.0:
            raise ValueError(f"category_dropout must be in [0, 1), got {category_dropout!r}")
        self.category_dropout = float(category_dropout)
        self.max_categories = int(max_categories)
        self.linear = true_or_false("linear", linear)
        self.numeric_mean: list[float] | None = None
        self.numeric_std: list[float] | None = None
        self.categories: dict[str, list[str]] | None = None
        self._category_index: dict[str, dict[str, int]] = {}
        self._category_by_number: dict[str, dict[float, str]] = {}
        self._category_by_loose: dict[str, dict[str, str]] = {}
        self.embeddings = nn.ModuleList()
        self.mlp: nn.Sequential | None = None
        self.linear_weight: nn.Parameter | None = None

    @property
    def column_roles(self) -> dict[str, str]:
        roles = {c: NUMERIC for c in self.numeric_columns}
        roles.update({c: CATEGORICAL for c in self.categorical_columns})
        roles.update({c: DATETIME for c in self.datetime_columns})
        return roles

    @property
    def numeric_features(self) -> list[str]:
        """What is standardised: the numeric columns, then each date-time column's numbers."""
        return self.numeric_columns + [f"{c}:{p}" for c in self.datetime_columns for p in DATETIME_NUMERIC_PARTS]

    @property
    def categorical_features(self) -> list[str]:
        """What is embedded: the categorical columns, then each date-time column's categories."""
        return self.categorical_columns + [f"{c}:{p}" for c in self.datetime_columns for p in DATETIME_CATEGORICAL_PARTS
                                           if p != "hour" or c in self.datetime_hours]

    def _values(self, row: Any, features: Sequence[str]) -> list[Any]:
        """The row's value of each feature (:meth:`_feature_columns` of the one row)."""
        return [column[0] for column in self._feature_columns([row], features)]

    def _feature_columns(self, values: Sequence[Any], features: Sequence[str],
                         moments: Mapping[str, Sequence[tuple[dict, str | None]]] | None = None) -> list[list[Any]]:
        """Each feature's values over the rows ``values``, one list per feature: a column's cells,
        or a date-time column's part (None when missing), from ``moments`` (:func:`_each_moment` of
        each date-time column's cells) when given. (Read row by row where a date-time column was
        among them, a table of 1,000 columns took 5 s more to fit.)"""
        if moments is None:
            moments = {c: _each_moment(_cell_columns(values, [c])[0]) for c in self.datetime_columns}
        datetime_parts = DATETIME_NUMERIC_PARTS + DATETIME_CATEGORICAL_PARTS
        of_moments = [f.rpartition(":")[0] in moments and f.rpartition(":")[2] in datetime_parts for f in features]
        cells = iter(_cell_columns(values, [f for f, dated in zip(features, of_moments) if not dated]))
        columns = []
        for feature, dated in zip(features, of_moments):
            if dated:
                column, _, part = feature.rpartition(":")
                columns.append([parts.get(part) for parts, _ in moments[column]])
            else:
                columns.append(next(cells))
        return columns

    # -- preprocessing state -------------------------------------------------------------
    def fit(self, values: Sequence[Any]) -> "TabularEncoder":
        """Learn each numeric feature's centre and scale (median and interquartile range, robust to
        a few outliers; mean and standard deviation where the quartiles agree), each categorical
        feature's vocabulary (most frequent first, up to ``max_categories``) and the date-time
        columns' hours and clocks; each distinct value and date-time is read once."""
        moments = {c: _each_moment([_cell(row, c) for row in values]) for c in self.datetime_columns}
        self.datetime_hours = [c for c in self.datetime_columns
                               if len({parts.get("hour") for parts, _ in moments[c]} - {None}) > 1]
        numeric_features, categorical_features = self.numeric_features, self.categorical_features
        columns = self._feature_columns(values, numeric_features + categorical_features, moments)
        means, stds = [], []
        for j, column in enumerate(numeric_features):
            check_deadline(f"the table preprocessing's fit, at column {j + 1} of {len(columns)}")
            array = _numbers(columns[j])
            array = array[np.isfinite(array)]
            numbers = array.tolist()
            # in units of the largest magnitude: the squares of huge numbers (1e160) do not overflow
            scale = float(np.abs(array).max()) if numbers else 0.0
            scale = scale or 1.0
            # a spread below 1e-12 of the column's magnitude (of 1 for larger numbers) is none:
            # capacitances in farads, 1e-13 apart, are read, not taken for a constant column
            tiny = _TINY_SPREAD * min(1.0, scale)
            # robust: the median and the interquartile range (as a normal's std), so that a few
            # outliers or sentinels (999999, 1e9) do not squash every other value to ~0; where
            # the quartiles agree (a mostly constant or 0/1 column), the mean and std as before
            if numbers:
                q25, median, q75 = (float(q) for q in np.quantile(array, [0.25, 0.5, 0.75]))
                iqr = (q75 - q25) / 1.349
            if numbers and iqr > tiny and math.isfinite(iqr):
                means.append(median)
                stds.append(iqr)
                continue
            mean = sum(x / scale for x in numbers) / len(numbers) * scale if numbers else 0.0
            var = sum(((x - mean) / scale) ** 2 for x in numbers) / len(numbers) if numbers else 0.0
            std = math.sqrt(var) * scale
            means.append(mean)
            stds.append(std if std > tiny and math.isfinite(std) else 1.0)
        categories = {}
        for j, column in enumerate(categorical_features, start=len(numeric_features)):
            check_deadline(f"the table preprocessing's fit, at column {j + 1} of {len(columns)}")
            counts = Counter(k for k in _each_category(columns[j], _category_key) if k is not None)
            ranked = sorted(counts, key=lambda k: (-counts[k], k))
            categories[column] = ranked[: self.max_categories]
        clocks = {c: sorted({clock for _, clock in moments[c]} - {None}) for c in self.datetime_columns}
        self.set_state({"numeric_columns": self.numeric_columns, "categorical_columns": self.categorical_columns,
                        "datetime_columns": self.datetime_columns, "datetime_hours": self.datetime_hours,
                        "datetime_clocks": clocks,
                        "numeric_mean": means, "numeric_std": stds, "categories": categories})
        return self

    def get_state(self) -> dict:
        self._require_fitted()
        return {"numeric_columns": list(self.numeric_columns), "categorical_columns": list(self.categorical_columns),
                "datetime_columns": list(self.datetime_columns), "datetime_hours": list(self.datetime_hours),
                "datetime_clocks": {c: list(v) for c, v in self.datetime_clocks.items()},
                "numeric_mean": list(self.numeric_mean), "numeric_std": list(self.numeric_std),
                "categories": {c: list(v) for c, v in self.categories.items()}}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.numeric_columns = list(state["numeric_columns"])
        self.categorical_columns = list(state["categorical_columns"])
        self.datetime_columns = list(state.get("datetime_columns", []))  # absent from models saved before them
        self.datetime_hours = list(state.get("datetime_hours", []))
        self.datetime_clocks = {c: [str(k) for k in v] for c, v in state.get("datetime_clocks", {}).items()}
        self.numeric_mean = [float(x) for x in state["numeric_mean"]]
        self.numeric_std = [float(x) for x in state["numeric_std"]]
        self.categories = {c: [str(k) for k in state["categories"][c]] for c in self.categorical_features}
        self._category_index = {c: {k: i + 1 for i, k in enumerate(keys)} for c, keys in self.categories.items()}
        self._category_by_number = {c: _keys_by_number(keys) for c, keys in self.categories.items()}
        self._category_by_loose = {c: _keys_by_loose(keys) for c, keys in self.categories.items()}
        self._build_layers()

    def _category_id(self, column: str, value: Any) -> int:
        """The index of ``value``'s category in ``column`` (0: missing or never seen). A value
        unknown as written but equal as a number to exactly one known category is that category:
        codes fitted as strings (``"00412"``) come back as numbers (``412``) from a CSV file read
        with pandas, and whole numbers fitted as floats as ``"3.0"``."""
        key = _category_key(value)
        if key is None:
            return 0
        found = self._category_index[column].get(key)
        if found is None:  # written otherwise: as a number, in another Unicode form, with spaces around
            number = _as_number(key)
            match = None if number is None else self._category_by_number[column].get(number)
            if match is None:
                match = self._category_by_loose[column].get(_loose(key))
            found = 0 if match is None else self._category_index[column][match]
        return found

    def _build_layers(self) -> None:
        numeric, categorical = self.numeric_features, self.categorical_features
        if self.linear:
            sizes = [len(self.categories[c]) + 1 for c in categorical]
            offsets = [2 * len(numeric)]
            for size in sizes:
                offsets.append(offsets[-1] + size)
            self.register_buffer("category_offsets", torch.tensor(offsets[:-1], dtype=torch.long), persistent=False)
            self.linear_weight = nn.Parameter(torch.zeros(offsets[-1], self.output_dim))
            self.linear_scale = 1.0 / math.sqrt(max(1, len(numeric) + len(categorical)))
            return
        self.embeddings = nn.ModuleList(nn.Embedding(len(self.categories[c]) + 1, self.emb_dim) for c in categorical)
        input_dim = 2 * len(numeric) + self.emb_dim * len(categorical)
        self.mlp = nn.Sequential(nn.Linear(input_dim, self.hidden_dim), nn.GELU(), nn.Dropout(self.dropout_p),
                                 nn.Linear(self.hidden_dim, self.output_dim))
        with torch.no_grad():  # the missing flags' weights start at 0: a flag fit never set (a column
            # missing only at predict time) gets no gradient and keeps them, so the value reads as the
            # column's median, not through weights no row trained
            self.mlp[0].weight[:, len(numeric): 2 * len(numeric)].zero_()

    def _require_fitted(self) -> None:
        if self.mlp is None and self.linear_weight is None:
            raise RuntimeError("TabularEncoder is not fitted: call fit(rows) or set_state(state) first")

    def unfamiliar_values(self, values: Sequence[Any]) -> list[str]:
        """A message for each categorical column (not a date-time part) whose values, 20 or more
        given, are at least half categories ``fit`` never saw (read as missing); a column whose
        vocabulary was capped at ``max_categories`` is not judged; for each date-time column whose
        times, 20 or more, at least half fall in months (weekdays, hours) ``fit`` never saw; and for
        each whose times are at least half written on a clock (a UTC offset, or none) that ``fit``
        never saw: their calendar features would be read on another clock."""
        self._require_fitted()
        messages = []
        for column in self.categorical_columns:
            known = self._category_index[column]
            if len(known) >= self.max_categories:
                continue
            given = [k for k in (_category_key(_cell(row, column)) for row in values) if k is not None]
            unseen = [k for k in given if self._category_id(column, k) == 0]
            if len(given) >= UNFAMILIAR_MIN_VALUES and len(unseen) >= UNFAMILIAR_SHARE * len(given):
                examples = quoted_values(list(dict.fromkeys(unseen))[:3])  # (a long one cut: a request's whole value)
                seen = quoted_values(self.categories[column][:5])  # (the training rows' values: cut too)
                messages.append(f"column {column!r}: {len(unseen)} of {len(given)} values are categories never seen "
                                f"in fit (e.g. {examples}) and are read as missing; fit saw {seen}"
                                f"{', ...' if len(known) > 5 else ''}")
        for column in self.datetime_columns:  # each cell read once for both findings below
            moments = [m for m in (_moment(_cell(row, column)) for row in values) if m is not None]
            if len(moments) < UNFAMILIAR_MIN_VALUES:
                continue
            messages += self._unseen_calendar(column, [_parts_of(m) for m in moments])
            seen = self.datetime_clocks.get(column)
            clocks = [_clock_of(m) for m in moments]
            other = [k for k in clocks if not _same_clock(k, seen)] if seen else []
            if len(other) >= UNFAMILIAR_SHARE * len(clocks) and other:
                shown = lambda keys: ", ".join("no time zone" if k == "naive" else k if k[0] not in "+-" else f"UTC{k}"
                                               for k in list(dict.fromkeys(keys))[:3])
                messages.append(f"column {column!r}: {len(other)} of {len(clocks)} times are written on a clock fit "
                                f"never saw (e.g. {shown(other)}; fit saw {shown(seen)}{', ...' if len(seen) > 3 else ''}"
                                "): their hour, weekday, day and month are read on that clock, so the same instant "
                                "gets other features; give them in fit's time zone (pandas: .dt.tz_convert)")
        return messages

    def _unseen_calendar(self, column: str, parts: Sequence[dict]) -> list[str]:
        """A message for each calendar feature (month, weekday, hour) of ``column`` whose values in
        ``parts`` are at least half ones ``fit`` never saw: read as unknown, an untrained embedding."""
        messages = []
        for part, word in (("month", "months"), ("weekday", "weekdays"), ("hour", "hours of the day")):
            feature = f"{column}:{part}"
            if feature not in self.categorical_features:
                continue
            seen = set(self.categories.get(feature, ()))
            unseen = [p[part] for p in parts if p[part] not in seen]
            if len(unseen) >= UNFAMILIAR_SHARE * len(parts):
                kinds = sorted(set(unseen), key=int)
                examples = ", ".join(kinds[:3]) + (", ..." if len(kinds) > 3 else "")
                messages.append(f"column {column!r}: {len(unseen)} of {len(parts)} times fall in {word} fit never "
                                f"saw ({part} {examples}; fit saw {', '.join(sorted(seen, key=int))}): that "
                                f"feature is read as unknown, and the model has learnt nothing of those {word}")
        return messages

    # -- samples -----------------------------------------------------------------------
    def preprocess(self, value: Any, augment: Callable[[Any], Any] | None = None) -> dict:
        """One row → {"numeric", "numeric_missing", "categorical"}; ``augment`` (if given)
        receives and returns the row mapping."""
        self._require_fitted()
        row = value
        if augment is not None and row is not MISSING and row is not None:
            row = augment(row)
        numeric_features, categorical_features = self.numeric_features, self.categorical_features
        cells = self._values(row, numeric_features + categorical_features)
        raw = [_to_float(x) for x in cells[:len(numeric_features)]]
        missing = [math.isnan(x) for x in raw]
        clip = self.numeric_clip
        numeric = [0.0 if m else max(-clip, min(clip, (x - mu) / sd))
                   for x, m, mu, sd in zip(raw, missing, self.numeric_mean, self.numeric_std)]
        categorical = [self._category_id(c, x) for c, x in zip(categorical_features, cells[len(numeric_features):])]
        return {"numeric": torch.tensor(numeric, dtype=torch.float32),
                "numeric_missing": torch.tensor(missing, dtype=torch.float32),
                "categorical": torch.tensor(categorical, dtype=torch.long)}

    def preprocess_batch(self, values: Sequence[Any]) -> dict:
        """Every row's sample at once, as :meth:`collate` stacks them (the same numbers as
        :meth:`preprocess` gives row by row): a column's cells read in one pass, a distinct
        category (or number of another kind than float) read once, one tensor per part."""
        self._require_fitted()
        numeric_features, categorical_features = self.numeric_features, self.categorical_features
        columns = self._feature_columns(values, numeric_features + categorical_features)
        n, k = len(values), len(numeric_features)
        raw = np.empty((n, k), dtype=np.float64)
        for j, cells in enumerate(columns[:k]):
            check_deadline(f"the table preprocessing, at column {j + 1} of {len(columns)}")
            raw[:, j] = _numbers(cells)
        missing = np.isnan(raw)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.clip((raw - np.asarray(self.numeric_mean, dtype=np.float64))
                             / np.asarray(self.numeric_std, dtype=np.float64), -self.numeric_clip, self.numeric_clip)
        numeric = np.where(missing, 0.0, scaled)
        categorical = np.zeros((n, len(categorical_features)), dtype=np.int64)
        for j, (feature, cells) in enumerate(zip(categorical_features, columns[k:])):
            check_deadline(f"the table preprocessing, at column {k + j + 1} of {len(columns)}")
            categorical[:, j] = _each_category(cells, lambda x, c=feature: self._category_id(c, x))
        return {"numeric": torch.from_numpy(numeric.astype(np.float32)),
                "numeric_missing": torch.from_numpy(missing.astype(np.float32)),
                "categorical": torch.from_numpy(categorical)}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self._require_fitted()
        if self.linear:
            return self._linear_forward(batch)
        parts = [batch["numeric"].float(), batch["numeric_missing"].float()]
        categorical = batch["categorical"]
        if self.training and self.category_dropout > 0 and categorical.numel():
            # a share of the categories read as unknown (index 0) while training, so that index 0's
            # embedding learns "this column tells nothing" and an unseen or missing category at
            # predict time leans on the other inputs instead of on an embedding never trained
            dropped = torch.rand(categorical.shape, device=categorical.device) < self.category_dropout
            categorical = categorical.masked_fill(dropped, 0)
        parts.extend(embedding(categorical[:, i]) for i, embedding in enumerate(self.embeddings))
        return self.mlp(torch.cat(parts, dim=1))

    # -- the linear form (linear=True) ------------------------------------------------------
    @staticmethod
    def _numeric_block(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The standardised numerics and their missing flags, side by side (the design's first columns)."""
        return torch.cat([batch["numeric"].float(), batch["numeric_missing"].float()], dim=1)

    def _linear_forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        numeric = self._numeric_block(batch)
        weight = self.linear_weight
        out = numeric @ weight[: numeric.shape[1]]
        if len(self.categorical_features):
            out = out + weight[batch["categorical"] + self.category_offsets].sum(1)
        return out * self.linear_scale

    def linear_design(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The rows as a sparse (rows, features) matrix: standardised numerics, missing flags and
        one one-hot block per categorical column, scaled by 1 / sqrt(number of columns)."""
        self._require_fitted()
        numeric = self._numeric_block(batch).to_sparse()
        indices, values = [numeric.indices()], [numeric.values()]
        categorical = batch["categorical"]
        if len(self.categorical_features):
            rows = torch.arange(categorical.shape[0]).repeat_interleave(categorical.shape[1])
            columns = (categorical + self.category_offsets).reshape(-1)
            indices.append(torch.stack([rows, columns]))
            values.append(torch.ones(len(rows)))
        shape = (categorical.shape[0], self.linear_weight.shape[0])
        return torch.sparse_coo_tensor(torch.cat(indices, dim=1), torch.cat(values) * self.linear_scale, shape,
                                       check_invariants=False).coalesce()

    def set_linear_weight(self, weight: torch.Tensor) -> None:
        """Set the linear form's weight (features, ``output_dim``)."""
        if not self.linear:
            raise RuntimeError("set_linear_weight needs tabular's linear form (linear=True)")
        self._require_fitted()
        with torch.no_grad():
            self.linear_weight.copy_(weight.detach().to(self.linear_weight.dtype))


def tabular_search_space(trial: Any, prefix: str) -> dict:
    """Optuna search space for ``tabular`` (CPU-sized)."""
    return {
        "emb_dim": trial.suggest_categorical(f"{prefix}emb_dim", [8, 16, 32]),
        "hidden_dim": trial.suggest_categorical(f"{prefix}hidden_dim", [32, 64, 128, 256]),
        "output_dim": trial.suggest_categorical(f"{prefix}output_dim", [32, 64, 128]),
        "dropout": trial.suggest_float(f"{prefix}dropout", 0.0, 0.4),
    }


_TABULAR_DEFAULTS = {"emb_dim": 16, "hidden_dim": 64, "output_dim": 64, "dropout": 0.1, "max_categories": 1000,
                     "linear": False, "category_dropout": 0.1}


@hookimpl
def automm_register_encoders(register: Callable[..., None]) -> None:
    """Register the ``tabular`` encoder (the core passes ``column_roles``)."""
    register("tabular", TabularEncoder, modality="tabular", output_dim=lambda hp: int(hp["output_dim"]),
             defaults=dict(_TABULAR_DEFAULTS), search_space=tabular_search_space, tags=("linear",),
             description="Standardised numerics with missing flags and categorical embeddings, through an MLP.")
