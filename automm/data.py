"""From user input to batches: input normalisation, validation, roles, dataset, collation.

User input arrives either as several positional inputs (``fit(X_img, X_txt, y)``), each one
column, or as one table (a pandas DataFrame, a dict of equal-length columns, a list of records
or a 2-D array). Both become a :class:`Table` (named columns of equal length); image records
``{"bytes", "path"}`` (Hugging Face ``datasets``) become their bytes or path. Columns get roles
(image, text, numeric, categorical, datetime, or a plugin's modality); roles group into
:class:`InputSpec` s, one per encoder: each image/text/... column is its own input, all
numeric, categorical and datetime columns share one ``tabular`` input.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import io
import itertools
import logging
import math
import os
import re
import stat
import time
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from .components.base import MISSING, Encoder, collate_replaced, take_rows
from .components.text import blank_text
from .contracts import augment_input_problem
from .exceptions import AutoMMWarning, InputError, PluginError, user_stacklevel
from .files import file_kind, is_url as _is_url, lookup_problem
from .suggestions import NAMES_SHOWN, did_you_mean, elided_repr, shown_names, shown_roles
from .roles import (as_datetime, is_image_bytes, is_number, looks_like_image_path, modality_of_role, read_words, written_bool,
                    written_code, written_missing, written_seasons)

__all__ = [
    "Table",
    "declared_categorical",
    "InputSpec",
    "is_missing",
    "reordered_index",
    "as_table",
    "infer_roles",
    "say_column_notes",
    "build_input_specs",
    "warn_unused_modalities",
    "rows_repeated",
    "validate_columns",
    "validate_datetimes",
    "validate_numbers",
    "validate_images",
    "MultimodalDataset",
    "RowNames",
    "single_columns",
    "BatchCollator",
    "take",
]


def is_missing(value: Any) -> bool:
    """None, NaN, pandas NA, an empty/blank string or :data:`MISSING`."""
    if value is None or value is MISSING:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def _row_keys(table: "Table", names: Sequence[str]) -> list[tuple]:
    """Each row of ``table`` as a tuple of its ``names`` cells, missing values as None and numpy
    scalars as Python's; :class:`TypeError` for a cell that is no scalar (an image array)."""
    def key(value: Any) -> Any:
        if is_missing(value):
            return None
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, (str, bytes, int, float, bool, datetime.date, datetime.timedelta)):
            raise TypeError(type(value).__name__)
        return value

    columns = [table.columns[name] for name in names]
    return [tuple(key(column[i]) for column in columns) for i in range(len(table))]


def rows_repeated(rows: "Table", seen: "Table") -> int:
    """How many of ``rows`` have exactly the features of a row of ``seen`` (its columns), when
    more of them do than chance explains; else 0. Rows drawn apart from ``seen`` repeat its
    rows about as often as ``seen``'s rows repeat each other (a table of a few categories: all
    the time), so only a share of repeats above twice that, and above 1%, counts: the rows were
    taken from ``seen`` (a validation or test set that overlaps the training rows). 0 too when
    a cell is no scalar (an image array, a PIL image), whose rows are not compared."""
    try:
        seen_keys = _row_keys(seen, seen.names)
        row_keys = _row_keys(rows, seen.names)
    except (TypeError, KeyError):
        return 0
    known = set(seen_keys)
    repeated = sum(key in known for key in row_keys)
    within = 1.0 - len(known) / max(1, len(seen_keys))  # the share of seen's rows that repeat another
    return repeated if repeated > max(0.01, 2.0 * within) * len(row_keys) else 0


def take(column: Sequence[Any], indices: Sequence[int]) -> Sequence[Any]:
    if isinstance(column, np.ndarray):
        return column[np.asarray(indices, dtype=int)]
    return [column[i] for i in indices]


@dataclass
class Table:
    """Named columns of equal length; ``positional`` when built from positional inputs.

    ``row_labels``: how messages name the rows (a DataFrame's index, when it is not 0..n-1;
    None: by position), ``row_word``: the word before a row's label (``"row"``; ``"index"`` for an
    unnamed index of other labels, the index's name when it has one, e.g. ``"id"``)."""

    columns: dict[str, Sequence[Any]]
    positional: bool = False
    row_labels: list | None = None
    row_word: str = "row"
    #: columns a DataFrame declares categorical by their dtype (pandas ``category``): read as categories
    categorical_dtype: frozenset = frozenset()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def row_name(self, position: int) -> str:
        """The row at ``position`` as messages name it: ``row 3``, ``index 'b'``, ``id 1042``."""
        return row_namer(self.row_labels, self.row_word)(position)

    def with_columns(self, columns: dict[str, Sequence[Any]], positional: bool | None = None) -> "Table":
        """These rows (their names kept) with other columns."""
        return Table(columns, self.positional if positional is None else positional, self.row_labels, self.row_word)

    def subset(self, indices: Sequence[int]) -> "Table":
        labels = None if self.row_labels is None else [self.row_labels[i] for i in indices]
        return Table({k: take(v, indices) for k, v in self.columns.items()}, self.positional, labels, self.row_word)

    def concat(self, other: "Table") -> "Table":
        """This table's rows, then ``other``'s (which has the same column names). The rows are
        named by position unless both tables name them alike."""
        columns = {}
        for name, values in self.columns.items():
            more = other.columns[name]
            if isinstance(values, np.ndarray) and isinstance(more, np.ndarray) and values.ndim == more.ndim > 1:
                columns[name] = np.concatenate([values, more])  # stacks of images
            else:
                columns[name] = list(values) + list(more)
        named = self.row_labels is not None and other.row_labels is not None and self.row_word == other.row_word
        return Table(columns, self.positional, self.row_labels + other.row_labels if named else None,
                     self.row_word if named else "row")


def single_columns(inputs: Iterable[InputSpec]) -> dict[str, str]:
    """Each input of one column: its name -> that column (messages name such an input by the
    column its user knows)."""
    return {spec.name: spec.columns[0] for spec in inputs if len(spec.columns) == 1}


class RowNames:
    """``names[position]``: the row at a position as messages name it (:func:`row_namer`), worked
    out only when asked (an error's one row, not every row of every prediction) and picklable (a
    DataLoader's spawned workers take their dataset by pickle)."""

    def __init__(self, labels: Sequence[Any] | None, word: str = "row"):
        self.labels, self.word = labels, word

    def __getitem__(self, position: int) -> str:
        return row_namer(self.labels, self.word)(position)


def row_namer(labels: Sequence[Any] | None, word: str = "row") -> Callable[[int], str]:
    """A function naming the row at a position for messages: by ``labels`` (after ``word``) when
    given, else ``row <position>``; labels that repeat (a duplicated index: ``df.loc[2]`` is
    several rows) are followed by the position, ``index 2 (row 5)``."""
    repeated = labels is not None and len(set(map(repr, labels))) < len(labels)

    def name(position: int) -> str:
        if labels is None:
            return f"row {position}"
        label = labels[position]
        named = f"{word} {label if isinstance(label, (int, np.integer)) else repr(label)}"
        return f"{named} (row {position})" if repeated else named
    return name


def row_naming(index: Any) -> tuple[list | None, str]:
    """(row labels, word) for a DataFrame's ``index``: by position when it is 0..n-1 unnamed."""
    import pandas as pd

    if index.name is None and isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None, "row"
    labels = [label.item() if isinstance(label, np.generic) else label for label in index.tolist()]
    return labels, str(index.name) if index.name is not None else "index"


def _column_from_array(name: str, value: Any) -> Sequence[Any]:
    """One positional input as one column (a list, or an ndarray indexed by row)."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise InputError(f"{name}: a positional input must be one column, got a DataFrame with "
                             f"{value.shape[1]} columns; pass the whole table as the only input instead")
        value = value.iloc[:, 0]
    if isinstance(value, pd.Series):
        return _series_values(value)
    if hasattr(value, "to_pylist") and not isinstance(value, (list, tuple, np.ndarray)):
        return value.to_pylist()  # a pyarrow Array or ChunkedArray (a Table's column): its Python values, not Scalars
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise InputError(f"{name}: expected one value per sample, got a 0-d array")
        if value.ndim == 1:  # datetime64 stays itself (tolist gives nanoseconds as ints)
            return value.tolist() if value.dtype.kind not in "OMm" else list(value)
        if value.ndim == 2 and value.shape[1] == 1 and not np.issubdtype(value.dtype, np.number):
            return list(value[:, 0])
        if value.ndim == 3 and value.shape[2] in (3, 4) and value.shape[1] > 4:
            # (N, H, W) greyscale images 3 or 4 pixels wide do not occur; one colour image does
            raise InputError(f"{name}: an array of shape {value.shape} is one image (H, W, C), not a stack of "
                             f"{value.shape[0]} greyscale images {value.shape[1]} x {value.shape[2]}; pass [image] "
                             "for one image, or a stack (N, H, W, C)")
        if value.ndim in (3, 4):  # a stack of images (N, H, W[, C])
            return value
        raise InputError(f"{name}: cannot use an array of shape {value.shape} as one input column; "
                         "images need (N, H, W) or (N, H, W, C)")
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise InputError(f"{name}: expected a sequence with one value per sample, got {type(value).__name__} "
                         f"(for one sample, pass a list of one: [value])")
    return list(value)


_NOT_AN_IMAGE_RECORD = object()


def _image_record(value: Mapping) -> Any:
    """An image cell as Hugging Face ``datasets`` (and its Parquet files) store it,
    ``{"bytes": ..., "path": ...}``: its encoded bytes, else its image path, None when it has
    neither; :data:`_NOT_AN_IMAGE_RECORD` for any other mapping."""
    if not value or not set(value) <= {"bytes", "path"}:
        return _NOT_AN_IMAGE_RECORD
    data, path = value.get("bytes"), value.get("path")
    if data is not None and not isinstance(data, (bytes, bytearray)):
        return _NOT_AN_IMAGE_RECORD
    if data:
        return bytes(data) if is_image_bytes(data) else _NOT_AN_IMAGE_RECORD
    if path is None or (isinstance(path, str) and not path.strip()):
        return None
    return path if looks_like_image_path(path) else _NOT_AN_IMAGE_RECORD


def _image_record_column(column: Sequence[Any]) -> bool:
    """Whether ``column`` is a list whose values present are all image records (see
    :func:`_image_record`), at least one of them."""
    if not isinstance(column, list):
        return False
    first = next((v for v in column if not is_missing(v)), None)
    return isinstance(first, Mapping) and all(
        _image_record(v) is not _NOT_AN_IMAGE_RECORD if isinstance(v, Mapping) else is_missing(v) for v in column)


def _unwrap_image_records(column: Sequence[Any]) -> Sequence[Any]:
    """``column`` with its image records replaced by their bytes or path when it is an image
    record column; otherwise ``column`` itself."""
    if not _image_record_column(column):
        return column
    return [_image_record(v) if isinstance(v, Mapping) else v for v in column]


def _records(value: Any) -> bool:
    """Whether ``value`` is a list of records (dicts, one per sample; None for an empty one)."""
    return (isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value)
            and all(v is None or isinstance(v, Mapping) for v in value))


def _records_table(records: Sequence[Any], argument: str) -> "Table":
    """A table of ``records``: a column per key (in the order first seen), None where a record
    lacks it, as ``pandas.DataFrame(records)`` gives."""
    names: dict[Any, None] = {}
    for record in records:
        names.update(dict.fromkeys(record or {}))
    if not names:
        raise InputError(f"{argument}: the records (dicts) have no keys")
    columns = {str(k): [None if r is None else r.get(k) for r in records] for k in names}
    if len(columns) != len(names):
        raise InputError(f"{argument}: record keys must differ as strings, got {list(names)}")
    return Table(columns)


def _claimed_by_a_modality(values: Sequence[Any], plugin_manager: Any) -> bool:
    """Whether the role rules read ``values`` (dicts) as one column of a modality rather than
    as text (the built-in rule's reading of anything unknown)."""
    if plugin_manager is None:
        return False
    role = ask_role_rules(plugin_manager, "x0", _role_sample(values))
    return role not in (None, "text", "categorical")


_failed_role_rules: set[str] = set()


def ask_role_rules(plugin_manager: Any, name: str, values: Sequence[Any]) -> str | None:
    """The first answer of the plugins' :func:`~automm.hookspecs.automm_infer_column_role` for
    column ``name`` (its present ``values``), asked in pluggy's order (installed plugins are
    registered in the order of their packages' names, and pluggy asks the last registered first: the
    same order wherever they are installed; the built-in rules last). Where a plugin claims the column, the other plugins' rules
    are asked too, and a claim of another role is warned about, naming both and the
    ``column_types`` that chooses. An installed plugin whose rule raises is passed over for the
    column, with a :class:`~automm.registry.PluginLoadWarning` naming it and its package (once per
    plugin and process): one plugin's rule must not stop every fit, of data it was never meant for.
    An in-process plugin's (a built-in, or one given to :func:`~automm.reset_registry`) raises,
    naming it, as its registration would."""
    from .builtin import DEFAULT_PLUGINS

    claims: list[tuple[str, str]] = []  # (plugin, role) of the plugins' rules that claimed the column
    for plugin, role in _rule_answers(plugin_manager, name, values):
        if plugin in DEFAULT_PLUGINS:
            if claims:
                break  # the built-in rules decide only columns no plugin claimed
            if role is not None:
                return role
        elif role is not None:
            claims.append((plugin, role))
    if not claims:
        return None
    role = claims[0][1]
    others = [(plugin, other) for plugin, other in claims[1:] if other != role]
    if others:
        from .registry import _distributions

        def label(plugin: str) -> str:
            package = _distributions(plugin_manager).get(plugin)
            return f"{plugin!r}" + (f" ({package})" if package else "")

        read = ", ".join(f"{label(plugin)} as {other!r}" for plugin, other in claims if other in (role, others[0][1]))
        warnings.warn(f"column {name!r}: plugins read it as different modalities: {read}; it is read as {role!r}, the "
                      f"answer of the rule asked first; name its role to choose: column_types={{{name!r}: "
                      f"{others[0][1]!r}}} (or {role!r})", AutoMMWarning, stacklevel=user_stacklevel())
    return role


def _rule_answers(plugin_manager: Any, name: str, values: Sequence[Any]) -> Iterable[tuple[str, str | None]]:
    """``(plugin, role or None)`` of each column-role rule, asked one by one in the order
    :func:`ask_role_rules` asks them; an installed plugin's rule that raises is passed over (see there)."""
    from .registry import PluginLoadWarning, _distributions

    arguments = {"name": name, "values": values}
    for impl in reversed(plugin_manager.hook.automm_infer_column_role.get_hookimpls()):
        try:
            role = impl.function(*[arguments[a] for a in impl.argnames])
        except Exception as exc:  # noqa: BLE001 - a plugin's bug, named
            package = _distributions(plugin_manager).get(impl.plugin_name)
            why = (f"plugin {impl.plugin_name!r}{f' ({package})' if package else ''}: its automm_infer_column_role "
                   f"raised {type(exc).__name__}: {exc} on column {name!r}")
            if package is None:
                raise PluginError(why) from exc
            if impl.plugin_name not in _failed_role_rules:
                _failed_role_rules.add(impl.plugin_name)
                warnings.warn(f"{why}; its rule is passed over for such columns (the other rules decide)",
                              PluginLoadWarning, stacklevel=user_stacklevel())
            continue
        yield impl.plugin_name, role


def _claim_hint(column_name: str, column: Sequence[Any], role: str) -> str:
    """For a column of a plugin's modality ``role`` whose values its check refuses: the plugin whose
    column-role rule read it so, and the role the other rules read it as, as a ``column_types``
    to give (a rule that claims columns not of its modality, such as every column); "" where no
    rule reads it as ``role``. Not asked of a column whose role ``column_types`` named."""
    from .registry import get_registry

    registry = get_registry()
    answers = iter(_rule_answers(registry.plugin_manager, column_name, _role_sample(column)))
    claimant = next(((plugin, answer) for plugin, answer in answers if answer is not None), None)
    if claimant is None or claimant[1] != role:
        return ""
    package = registry.package_of(claimant[0])
    other = next((answer for _, answer in answers if answer not in (None, role)), None)
    example = (f"column_types={{{column_name!r}: {other!r}}} (what the other rules read it as)" if other else
               f"column_types={{{column_name!r}: ...}}")
    return (f"; its role {role!r} is what the column-role rule of plugin {claimant[0]!r}"
            f"{f' ({package})' if package else ''} read it as: if the column holds other values, name its role, "
            f"e.g. {example}")


def _role_sample(column: Sequence[Any]) -> list[Any]:
    """The present values the role rules are asked about: up to 500 among the first 5,000, or,
    where those are all missing (a column filled only further down), among the rest."""
    # (500 taken, the rest is not read: a column of 2,000 numbers read whole cost 1 ms more)
    present = list(itertools.islice((v for v in column[:5000] if not is_missing(v)), 500))
    if not present and len(column) > 5000:
        present = list(itertools.islice((v for v in column[5000:] if not is_missing(v)), 500))
    return present


def _kind_of(value: Any) -> str:
    """What a positional input is, in a word, for messages: ``list``, ``ndarray (3, 32, 32)``."""
    shape = getattr(value, "shape", None)
    return type(value).__name__ + (f" {tuple(shape)}" if shape is not None and len(shape) > 1 else "")


def declared_categorical(column: Any) -> bool:
    """Whether ``column`` is a pandas ``Categorical``, a Series of that dtype or a one-column
    DataFrame of one: values the user has declared to be categories."""
    import pandas as pd

    if isinstance(column, pd.DataFrame) and column.shape[1] == 1:
        column = column.iloc[:, 0]
    return _categorical_dtype(getattr(column, "dtype", None))


def _categorical_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is pandas' ``category``, or the Arrow ``dictionary`` that pyarrow-backed
    pandas reads a Categorical as."""
    import pandas as pd

    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return pa.types.is_dictionary(dtype.pyarrow_dtype)
    return isinstance(dtype, pd.CategoricalDtype)


def _series_values(series: Any) -> list:
    """The values of a pandas Series as a list, missing values of the dtypes that hold ``pandas.NA``
    (``Int64``, ``Float64``, ``boolean``, ``string``, ``pd.ArrowDtype``) as None: a column of numbers
    with None converts to floats at C speed, where one with ``pandas.NA`` is read value by value
    (2 columns of 300,000: 12 s instead of 0.4 s to read and check)."""
    import pandas as pd

    if getattr(series.dtype, "na_value", None) is pd.NA:
        return series.to_numpy(dtype=object, na_value=None).tolist()
    return series.tolist()


def as_table(inputs: Sequence[Any], argument: str = "X", records: bool = True, plugin_manager: Any = None) -> Table:
    """Normalise ``fit``/``predict`` inputs to a :class:`Table`.

    One DataFrame, dict of columns, list of records (dicts, one per sample) or 2-D array
    (numbers, strings or objects, as scikit-learn's transformers pass them on) → named
    columns; otherwise each positional input is one column, named ``x0``, ``x1``, ... A list
    of dicts stays one column when ``records`` is false, when a plugin's role rule (asked
    through ``plugin_manager``) claims its dicts as values of a modality (an audio plugin's
    ``{"array": ..., "sampling_rate": ...}`` clips), or when they are image records
    (``{"bytes": ..., "path": ...}``). Image records become their bytes or path.
    """
    if not inputs:
        raise InputError(f"{argument}: no input given; pass images and/or texts (or one table of columns)")
    import pandas as pd

    if len(inputs) == 1:
        x = table_like(inputs[0], argument)
        if isinstance(x, pd.DataFrame):
            if x.shape[1] == 0:
                raise InputError(f"{argument}: the DataFrame has no columns")
            names = [str(c) for c in x.columns]
            if len(set(names)) != len(names):
                repeated = list(dict.fromkeys(n for n in names if names.count(n) > 1))
                raise InputError(f"{argument}: column names must be unique, got {shown_names(names)} "
                                 f"({shown_names(repeated)} more than once)")
            # each column taken once (x[c] costs 30 us: 1,000 columns taken twice were half of a one-row predict)
            table = Table({str(c): _series_values(series) for c, series in x.items()}, False, *row_naming(x.index))
            table.categorical_dtype = frozenset(str(c) for c, dtype in x.dtypes.items() if _categorical_dtype(dtype))
        elif isinstance(x, Mapping):
            if not x:
                raise InputError(f"{argument}: the dict of columns is empty")
            if len({str(k) for k in x}) != len(x):  # {1: ..., "1": ...}: one would silently replace the other
                raise InputError(f"{argument}: column names must differ as strings, got {list(x)}")
            _warn_misaligned_series([(f"{argument}[{k!r}]", v) for k, v in x.items()],
                                    "pass pandas.DataFrame(X), which pairs them by index")
            table = Table({str(k): _column_from_array(f"{argument}[{k!r}]", v) for k, v in x.items()})
            table.categorical_dtype = frozenset(str(k) for k, v in x.items() if declared_categorical(v))
        elif isinstance(x, np.ndarray) and x.ndim == 2:  # numbers, strings or objects (what pipelines pass on)
            if x.shape[1] == 0:
                raise InputError(f"{argument}: 0 feature(s) (shape={x.shape}) while a minimum of 1 is required.")
            if x.dtype.kind == "c":
                raise InputError(f"{argument}: Complex data not supported; give the real and imaginary parts (or "
                                 "the magnitude) as columns of their own")
            table = Table({f"x{j}": _column_from_array(argument, x[:, j]) for j in range(x.shape[1])},
                          positional=True)
        elif (records and _records(x) and not _claimed_by_a_modality(x, plugin_manager)
              and not _image_record_column(list(x))):
            table = _records_table(x, argument)
        else:
            table = Table({"x0": _column_from_array(argument, x)}, positional=True)
            if isinstance(x, pd.Series):
                table.row_labels, table.row_word = row_naming(x.index)
    else:
        _warn_misaligned_series([(f"{argument} input {i}", v) for i, v in enumerate(inputs)],
                                "align them first (each as s.loc[first.index])")
        table = Table({f"x{i}": _column_from_array(f"{argument} input {i}", v) for i, v in enumerate(inputs)},
                      positional=True)
        if all(isinstance(v, pd.Series) for v in inputs) and all(
                v.index.equals(inputs[0].index) for v in inputs[1:]):  # columns of one frame: its rows' names
            table.row_labels, table.row_word = row_naming(inputs[0].index)
    lengths = {name: len(col) for name, col in table.columns.items()}
    if len(set(lengths.values())) > 1:
        if len(inputs) > 1:  # positional inputs: named as the user gave them
            shown = ", ".join(f"input {i} ({_kind_of(v)}): {n} values"
                              for i, (v, n) in enumerate(zip(inputs, lengths.values())))
            raise InputError(f"{argument}: the positional inputs have different lengths: {shown}; every input "
                             "needs one value per sample")
        raise InputError(f"{argument}: columns have different lengths: {lengths}")
    table.columns = {name: _unwrap_image_records(column) for name, column in table.columns.items()}
    if len(table) == 0:
        raise InputError(f"{argument}: empty input (0 samples)")
    return table


def _warn_misaligned_series(columns: Sequence[tuple[str, Any]], fix: str) -> None:
    """Warn when pandas Series given as the columns of one table (a dict of columns, positional
    inputs) hold the same index labels in another order: their rows are paired by position, where
    ``pandas.DataFrame`` would pair them by label, so most rows would get another row's values."""
    import pandas as pd

    series = [(name, v) for name, v in columns if isinstance(v, pd.Series)]
    if not series:
        return
    first_name, first = series[0]
    for name, other in series[1:]:
        if reordered_index(first.index, other.index):
            warnings.warn(f"{name}: its index holds the labels of {first_name}'s index in another order; rows are "
                          f"paired by position, not by index, so most rows get another row's values; {fix}, or "
                          "reset the indexes", AutoMMWarning, stacklevel=user_stacklevel())
            return


def reordered_index(first: Any, other: Any) -> bool:
    """Whether two pandas indexes hold the same unique labels in another order: inputs paired by
    position that pandas would pair by label."""
    if first.equals(other) or len(first) != len(other):
        return False
    try:
        return bool(first.is_unique and other.is_unique and first.sort_values().equals(other.sort_values()))
    except TypeError:  # labels that do not sort (mixed types)
        return False


def table_like(x: Any, argument: str = "X") -> Any:
    """``x`` with the table forms scikit-learn users pass turned into a DataFrame or a 2-D array:
    a pyarrow Table (or polars DataFrame) by its columns, a sparse matrix (:func:`_densified`), a
    list of rows of numbers, an array-like that only converts; anything else as it is."""
    import pandas as pd

    if not isinstance(x, pd.DataFrame) and hasattr(x, "schema") and hasattr(x, "to_pandas"):
        return x.to_pandas()
    if isinstance(x, np.ndarray) and x.dtype.names and x.ndim == 1:
        # a structured (record) array, as np.genfromtxt(names=True) gives: a table of its fields
        return pd.DataFrame.from_records(x)
    if type(x).__name__ == "LazyFrame" and hasattr(x, "collect"):
        raise InputError(f"{argument}: a polars LazyFrame holds no rows yet; pass {argument}.collect()")
    if _is_sparse_matrix(x):
        return _densified(x, argument)
    if _number_rows(x):
        return np.asarray(x, dtype=float)  # None cells become NaN: missing numbers
    if _value_rows(x):  # rows of a table as scikit-learn reads them: list(zip(paths, titles))
        return np.array(x, dtype=object)
    if hasattr(x, "__array__") and not isinstance(x, (np.ndarray, list, tuple, Mapping, pd.DataFrame, pd.Series)):
        return np.asarray(x)  # scikit-learn's checks pass such an object
    return x


#: A sparse matrix (scikit-learn's one-hot or TF-IDF output) at most this wide becomes dense columns.
MAX_SPARSE_COLUMNS = 1024


def _is_sparse_matrix(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz") and len(getattr(x, "shape", ())) == 2


def _densified(x: Any, argument: str) -> np.ndarray:
    """A scipy sparse matrix as a dense 2-D array (a table of numeric columns), or an error when
    it is too wide to be one (a TF-IDF matrix: automm reads the texts themselves)."""
    rows, columns = x.shape
    if columns > MAX_SPARSE_COLUMNS:
        raise InputError(f"{argument}: a sparse matrix of {columns} columns (e.g. TF-IDF or one-hot features); "
                         f"automm takes at most {MAX_SPARSE_COLUMNS} such columns, as numbers. Give it the raw "
                         "columns instead (texts as strings: its text encoders build their own features)")
    return np.asarray(x.toarray())


def _value_rows(x: Any) -> bool:
    """Whether ``x`` is a list of equal-length rows (lists or tuples) of single values that are
    not all words: rows of a table (``list(zip(paths, titles))``, ``frame.values.tolist()``), not
    a column of word lists (tags, ``["red", "cotton"]``): rows of one value each, tuples, or rows
    holding a number, an image path or a missing value at some position."""
    from .roles import looks_like_image_path

    if not isinstance(x, (list, tuple)) or not x or not all(isinstance(row, (list, tuple)) for row in x):
        return False
    width = len(x[0])
    if width == 0 or any(len(row) != width for row in x):
        return False
    cells = [v for row in x for v in row]
    if not all(v is None or isinstance(v, (str, bytes, int, float, np.generic)) for v in cells):
        return False  # a cell that is itself a list, an array, an image: not a row of values
    if width == 1 or any(isinstance(row, tuple) for row in x):
        return True
    return any(not isinstance(v, str) or looks_like_image_path(v) for v in cells)


def _number_rows(x: Any) -> bool:
    """Whether ``x`` is a list of equal-length rows (lists, tuples, 1-D numeric arrays) of numbers
    (``None`` for a missing one): rows of a table. Not when every cell is ``None``."""
    if not isinstance(x, (list, tuple)) or not x:
        return False
    if not all(isinstance(row, (list, tuple)) or (isinstance(row, np.ndarray) and row.ndim == 1
                                                  and row.dtype.kind in "iuf") for row in x):
        return False
    width = len(x[0])
    if width == 0 or any(len(row) != width for row in x):
        return False
    cells = [v for row in x for v in row]
    return any(v is not None for v in cells) and all(
        v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)))
        for v in cells)


def infer_roles(table: Table, column_types: Mapping[str, str] | None, plugin_manager: Any,
                known_roles: Sequence[str], notes: list[ColumnNote] | None = None) -> dict[str, str]:
    """Role of every column: ``column_types`` where given, else asked of the plugins. What the
    values call for (a number column written as strings, URLs, ...) is warned of once per kind,
    naming every column of that kind (:func:`say_column_notes`); given a list ``notes``, it is
    added to it instead, for the caller to say (fit leaves its identifier columns' unsaid)."""
    collected: list[ColumnNote] = []
    token = _column_notes.set(collected)
    try:
        roles = _inferred_roles(table, column_types, plugin_manager, known_roles)
    finally:
        _column_notes.reset(token)
    if notes is None:
        say_column_notes(collected)
    else:
        notes.extend(collected)
    return roles


#: A role inference's warning about one column: (kind, column, message).
ColumnNote = tuple[str, str, str]
#: Where the role inference's warnings about columns go while :func:`infer_roles` runs (None: said at once).
_column_notes: contextvars.ContextVar[list[ColumnNote] | None] = contextvars.ContextVar("automm_column_notes",
                                                                                        default=None)


def _say_of_column(kind: str, name: str, message: str) -> None:
    """Warn ``message`` about column ``name``, or, within :func:`infer_roles`, note it to be said
    with the other columns of its ``kind``."""
    notes = _column_notes.get()
    if notes is None:
        warnings.warn(message, AutoMMWarning, stacklevel=user_stacklevel())
    else:
        notes.append((kind, name, message))


def say_column_notes(notes: Sequence[ColumnNote], left_out: Iterable[str] = ()) -> None:
    """Warn each kind of ``notes`` once: its first column's message, followed by the other columns of
    that kind (``; likewise 29 more columns: [...]``: 30 columns of order numbers gave 30 warnings),
    leaving out the notes of the columns ``left_out``."""
    left_out = set(left_out)
    kinds: dict[str, list[ColumnNote]] = {}
    for note in notes:
        if note[1] not in left_out:
            kinds.setdefault(note[0], []).append(note)
    for same in kinds.values():
        message = same[0][2]
        if len(same) > 1:
            others = [name for _, name, _ in same[1:]]
            message += f"; likewise {len(others)} more column{'s' if len(others) > 1 else ''}: {shown_names(others)}"
        warnings.warn(message, AutoMMWarning, stacklevel=user_stacklevel())


def _inferred_roles(table: Table, column_types: Mapping[str, str] | None, plugin_manager: Any,
                    known_roles: Sequence[str]) -> dict[str, str]:
    column_types = {str(k): v for k, v in (column_types or {}).items()}  # a table's names are strings
    unknown_cols = sorted(set(column_types) - set(table.names))
    if unknown_cols:
        raise InputError(f"column_types: columns {shown_names(unknown_cols)} are not in the data; columns are "
                         f"{shown_names(table.names)}{did_you_mean(unknown_cols[0], table.names)}")
    roles = {}
    for name, column in table.columns.items():
        if name in column_types:
            role = column_types[name]
            if role not in known_roles:
                from .registry import plugins_left_out

                left_out = plugins_left_out(plugin_manager)  # a plugin's modality, where its plugin was not loaded
                raise InputError(f"column_types[{name!r}]: unknown role {role!r}; known roles: {sorted(known_roles)}"
                                 f"{did_you_mean(role, known_roles)}{f'; {left_out}' if left_out else ''}")
            roles[name] = role
            continue
        if isinstance(column, np.ndarray) and column.ndim >= 3:
            roles[name] = "image"
            continue
        present = _role_sample(column)
        if not present:
            raise InputError(f"column {name!r}: every value is missing; drop it or give its role in column_types")
        role = ask_role_rules(plugin_manager, name, present)
        nested = next((v for v in present if isinstance(v, Mapping)), None) if role in ("text", "categorical") else None
        if nested is not None:  # dicts no role rule claims
            where = f"input {name[1:]}" if table.positional else f"column {name!r}"
            fix = ("a list of records (dicts) is read as a table only as the one input: pass it alone, or "
                   "pandas.DataFrame(records)" if table.positional else
                   "flatten them (pandas.json_normalize) or leave the column out")
            example = repr(nested)
            example = example if len(example) < 80 else example[:76] + "...}"
            raise InputError(f"{where}: values are dicts, e.g. {example}; {fix}")
        named = False  # (the column's numbers and others named in a warning already)
        if role == "numeric" and name not in column_types and not _plain_numbers(column):
            # the sample read numbers; the rest of the column (beyond the 500 values sampled) may not
            role = _numbers_beyond_the_sample(name, column, role, present)
            named = role != "numeric"
        if role in ("numeric", "text") and name in table.categorical_dtype:
            role = "categorical"  # the DataFrame's dtype says so (store codes 0..k as a pandas Categorical)
        if role in ("text", "categorical"):
            _warn_media_paths(name, present)
            _warn_image_paths_in_bytes(name, present)
            _warn_urls(name, present)
            (named or _warn_mostly_numbers(name, role, present) or _warn_mostly_dates(name, role, present)
             or _warn_written_numbers_or_dates(name, role, present))
        if role == "categorical":
            _warn_words_as_categories(name, present)
        elif role == "text":
            _warn_numbers_as_text(name, present)
        roles[name] = role
    return roles


def _plain_numbers(column: Sequence[Any]) -> bool:
    """Whether every value of ``column`` is a number or missing (``None``, NaN), checked at C speed."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "biuf":
        return True
    try:
        return np.asarray(column, dtype=np.float64).ndim == 1  # (strings of numbers convert too)
    except (TypeError, ValueError, OverflowError):
        return False


def _numbers_beyond_the_sample(name: str, column: Sequence[Any], role: str, present: Sequence[Any]) -> str:
    """A column of strings read as numbers from its first values (numbers but for a few,
    :func:`automm.roles.stray_numbers`): ``role`` when the whole column is too, else text or
    categories (the later rows hold more than :data:`NUMBER_TOLERANCE` that are not numbers),
    with a warning; ``validate_numbers`` would otherwise stop the fit."""
    from .roles import text_or_categorical

    values = [v for v in column if not is_missing(v) and not written_missing(v)]
    others = sum(not is_number(v) for v in values)
    if others <= NUMBER_TOLERANCE * len(values):
        return role
    role = text_or_categorical(present)
    _say_of_column("numbers beyond the sample", name, f"column {name!r}: its first values are numbers, but {others} of its {len(values)} values are not, "
                  f"so it is read as {role}; give column_types={{{name!r}: 'numeric'}} if it holds numbers (up to "
                  f"{NUMBER_TOLERANCE:.0%} of them may be other than numbers: they count as missing)")
    return role


#: A column read as text or categories with at least this share of numbers is named in a warning.
MOSTLY_NUMBERS = 0.8


#: Numbers written with a currency, a percent sign or digit-group separators (``$1,234.00``, ``45%``).
_WRITTEN_NUMBER = re.compile(r"\s*[-+]?[$€£¥]?\s*\d{1,3}(?:[,.' \u00a0]?\d{3})*(?:[.,]\d+)?\s*[%$€£¥]?\s*")
#: Dates written other than as ISO 8601: ``11/15/2024``, ``15.11.2024``, ``November 15, 2024``, ``15 Nov 2024``,
#: months ``2024/03``, ``03/2024``.
_WRITTEN_DATE = re.compile(r"\s*(?:\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}-\d{1,2}-\d{2,4}|\d{1,2}\.\d{1,2}\.\d{4}|"
                           r"[12]\d{3}/(?:0?[1-9]|1[0-2])|(?:0?[1-9]|1[0-2])/[12]\d{3}|"
                           r"[A-Za-z]{3,9}\.? \d{1,2},? \d{4}|"
                           r"\d{1,2} [A-Za-z]{3,9}\.? \d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*")


#: A number with a decimal comma and one or two decimals (``84,63``): not a thousands separator.
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d{1,2}\s*")


def _warn_written_numbers_or_dates(name: str, role: str, present: Sequence[Any]) -> bool:
    """Warn (and say True) when a column read as text or categories holds, 80% of its values or
    more, numbers written with symbols or separators or dates not in ISO 8601: automm reads
    neither as such, so the model would learn them as words."""
    texts = [v for v in present if isinstance(v, str)]
    if len(texts) < max(1, MOSTLY_NUMBERS * len(present)):
        return False
    for pattern, what, fix in (
            (_WRITTEN_DATE, "dates in a format automm does not read (it reads ISO 8601: 2024-03-05, a month 2024-03)",
             "pandas.to_datetime(column, format=...)"),
            (_WRITTEN_NUMBER, "numbers written with a currency, percent sign or digit-group separators",
             "pandas.to_numeric(column.str.replace(r'[$€£¥%,]', '', regex=True))")):
        matching = [v for v in texts if pattern.fullmatch(v)]
        if pattern is _WRITTEN_NUMBER and matching and all(_DECIMAL_COMMA.fullmatch(v) for v in matching):
            what, fix = "numbers written with a decimal comma", "pandas.to_numeric(column.str.replace(',', '.'))"
        if len(matching) >= MOSTLY_NUMBERS * len(present) and not all(map(is_number, matching)):
            shown = ", ".join(repr(v) for v in list(dict.fromkeys(matching))[:3])
            _say_of_column(f"{what}, read as {role}", name, f"column {name!r}: its values look like {what} "
                           f"({shown}), so it is read as {role}; convert them first, e.g. {fix}")
            return True
    return False


def _warn_numbers_as_text(name: str, present: Sequence[Any]) -> None:
    """Warn when every value of a column read as text is a number written as a string (``"19.99"``:
    ``pandas.read_csv(dtype=str)``, JSON): its digits would be learnt as words, not as an amount."""
    if not all(isinstance(v, str) and is_number(v) for v in present):
        return
    if any(written_code(v) for v in present):
        return  # codes ("00412"), not amounts
    shown = ", ".join(repr(v) for v in list(dict.fromkeys(present))[:3])
    _say_of_column("numbers as text", name, f"column {name!r}: every value is a number written as a string "
                   f"({shown}), so it is read as text, its digits as words; if it holds amounts, give "
                   f"column_types={{{name!r}: 'numeric'}} or convert it (pandas.to_numeric)")



def _warn_words_as_categories(name: str, present: Sequence[Any]) -> None:
    """Warn when a column read as categories holds phrases built of shared words (``"red shirt"``,
    ``"blue shirt"``, ``"red jeans"``: 20 values or more, most of several words, fewer distinct words
    than distinct values): a category never seen in fit is missing at prediction, while the
    text encoders would read its words."""
    distinct = {str(v) for v in present if isinstance(v, str)}
    if len(distinct) < 20:
        return
    # words as the text encoders read them where str.split sees none ("黒い靴", "白いシャツ": a
    # character each in scripts written without spaces)
    split = [v.casefold().split() if v.isascii() else read_words(v) for v in distinct]
    words = {w for ws in split for w in ws}
    if sum(len(ws) >= 2 for ws in split) >= 0.8 * len(split) and len(words) < len(distinct):
        _say_of_column("words as categories", name, f"column {name!r}: read as categorical ({len(distinct)} distinct "
                       f"values made of {len(words)} distinct words, e.g. "
                       + ", ".join(repr(v) for v in sorted(distinct)[:3]) + "); a value not seen in fit counts as "
                       f"missing. To read its words: column_types={{{name!r}: 'text'}}")


#: Words written for a missing value (pandas reads them as missing from a CSV file; ``"n.a."``),
#: compared in lower case: in a column mostly of numbers, placeholders, not values.
MISSING_WORDS = frozenset({"na", "n/a", "n.a.", "#n/a", "#na", "<na>", "null", "none"})


def _warn_mostly_numbers(name: str, role: str, present: Sequence[Any]) -> bool:
    """Warn when a column read as text or categories is mostly numbers (80%, but more than the 5%
    of others a number column tolerates): likely a number column with values to fix (``"$5"``)
    or placeholders of missing values (``"NA"``, ``"null"``: a frame built from JSON or SQL)."""
    present = [v for v in present if not written_missing(v)]  # ("NaT": missing, not another value)
    numbers = [v for v in present if is_number(v) and not isinstance(v, (bool, np.bool_))]
    others = [v for v in present if not is_number(v)]
    # a broken number column has numbers written with symbols among its others ('$5') or words for
    # a missing value ('NA'); sizes ('S', 'XL' among 38, 40) or codes ('K1A 0B1' among zip codes)
    # are no numbers to fix
    written = any(isinstance(v, str) and _WRITTEN_NUMBER.fullmatch(v) for v in others)
    placeholders = any(isinstance(v, str) and v.strip().lower() in MISSING_WORDS for v in others)
    if others and len(numbers) >= MOSTLY_NUMBERS * len(present) and (written or placeholders):
        fix = "fix those values" if written else "make those values missing (None)"
        _say_mostly(name, role, len(present), len(numbers), others, "numbers", "numbers", fix,
                    "numeric", NUMBER_TOLERANCE, "number")
        return True
    return False


def _warn_mostly_dates(name: str, role: str, present: Sequence[Any]) -> bool:
    """Warn when a column read as text or categories is mostly dates or times (80%, but more than
    the 5% of others a date-time column tolerates): a date column with placeholders (``"unknown"``)."""
    present = [v for v in present if not written_missing(v)]  # ("NaT": missing, not another value)
    if written_seasons(present):  # ("2011-12", "2012-13": seasons, some of which read as months)
        return False
    others = [v for v in present if as_datetime(v) is None]
    dates = len(present) - len(others)
    if MOSTLY_NUMBERS * len(present) <= dates < len(present):
        _say_mostly(name, role, len(present), dates, others, "dates or times", "dates",
                    "make those values missing (None)", "datetime", DATETIME_TOLERANCE, "date-time")
        return True
    return False


def _say_mostly(name: str, role: str, n_present: int, n_read: int, others: Sequence[Any], read_as: str, holds: str,
                fix: str, wanted_role: str, tolerance: float, kind: str) -> None:
    """The warning of a column read as ``role`` though ``n_read`` of its ``n_present`` values read
    as ``read_as`` (numbers, dates): which values are not, and how to read it as ``wanted_role``."""
    shown = ", ".join(repr(v) for v in list(dict.fromkeys(map(str, others)))[:3])
    _say_of_column(f"mostly {read_as}, {fix}", name,
                   f"column {name!r}: {n_read} of {n_present} values read are {read_as}, the others are not "
                   f"({shown}), so it is read as {role}; if it holds {holds}, {fix} or give column_types={{{name!r}: "
                   f"'{wanted_role}'}} (up to {tolerance:.0%} of a {kind} column's values may be other than {holds}: "
                   "they count as missing)")


def _warn_media_paths(name: str, present: Sequence[Any]) -> None:
    """Warn when a column read as text holds file names of a medium no installed plugin reads
    (``.wav`` files without automm-audio): the model would learn from the names."""
    from .tables import MEDIA_SUFFIXES

    names = [str(v).lower() for v in present if isinstance(v, (str, os.PathLike))]
    suffixes = sorted({n[n.rfind("."):] for n in names if n.endswith(MEDIA_SUFFIXES)})
    if names and sum(n.endswith(MEDIA_SUFFIXES) for n in names) >= 0.8 * len(names):
        _say_of_column("media paths", name, f"column {name!r} holds {'/'.join(suffixes)} file paths, but no "
                       "installed plugin reads them (e.g. automm-audio for .wav; is AUTOMM_DISABLE_PLUGIN_AUTOLOAD "
                       "set?): it is read as text, the file names, not the files; give it its role in column_types "
                       "or leave it out")


def _path_in_bytes(value: Any) -> str | None:
    """The text of bytes that hold an image file's path or URL (``b"images/1.jpg"``: h5py's strings,
    a numpy ``S`` array's), not an image's data; else None."""
    if not isinstance(value, (bytes, bytearray, memoryview)) or not 0 < len(value) <= 4096:
        return None
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if looks_like_image_path(text) else None


def _warn_image_paths_in_bytes(name: str, present: Sequence[Any]) -> None:
    """Warn when a column read as text holds image paths as bytes: the model would learn from the
    paths, where the same paths as ``str`` are an image column."""
    paths = [text for v in present if (text := _path_in_bytes(v)) is not None]
    if present and len(paths) >= 0.8 * len(present):
        _say_of_column("image paths as bytes", name, f"column {name!r} holds image file paths as bytes (e.g. "
                       f"b{_short(paths[0])}): it is read as text, the paths, not the images; decode them to str "
                       "([p.decode() for p in paths]) to read the images, or give "
                       f"column_types={{{name!r}: 'text'}} to keep the paths as text")


def _warn_urls(name: str, present: Sequence[Any]) -> None:
    """Warn when a column read as text holds URLs (without an image file extension, such as a
    shop's ``https://cdn/images/1234``): automm never downloads, so it would learn from the addresses."""
    urls = [v for v in present if _is_url(v)]
    # a few addresses repeated (a shop's or a referrer's site, read as a category) are a feature;
    # one per row (each product's picture) is what automm cannot fetch
    if present and len(urls) >= 0.8 * len(present) and len(set(urls)) > 0.5 * len(urls):
        _say_of_column("urls", name, f"column {name!r} holds URLs (e.g. {_short(urls[0])}): it is read "
                       "as text, the addresses, not what they point to; automm never downloads: download the images "
                       "and give their paths, leave the column out, or give it column_types={..: 'text'} to keep it")


@dataclass
class InputSpec:
    """One encoder's input: a column (image, text, ...) or all tabular columns together.
    ``blank_texts_missing``: a text of only spaces, controls and zero-width characters is a missing
    text (False for a model saved before automm read them so: they are texts of no tokens there)."""

    name: str
    modality: str
    columns: list[str]
    column_roles: dict[str, str] = field(default_factory=dict)
    blank_texts_missing: bool = True

    def values(self, table: Table) -> list[Any]:
        """Raw values per sample, with :data:`MISSING` for missing ones."""
        missing = self.missing_cell
        if self.modality == "tabular":
            cols = [_missing_marked(table.columns[c]) for c in self.columns]
            return [dict(zip(self.columns, cells)) for cells in zip(*cols)] if cols else [{} for _ in range(len(table))]
        column = table.columns[self.columns[0]]
        return [MISSING if missing(column[i]) else column[i] for i in range(len(column))]

    @property
    def missing_cell(self) -> Callable[[Any], bool]:
        """Whether a cell of this input's columns is a missing value (:meth:`values`' rule)."""
        if self.modality == "tabular":
            return is_missing
        return _missing_text if self.modality == "text" and self.blank_texts_missing else _missing_cell

    def to_dict(self) -> dict:
        return {"name": self.name, "modality": self.modality, "columns": list(self.columns),
                "column_roles": dict(self.column_roles)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputSpec":
        return cls(data["name"], data["modality"], list(data["columns"]), dict(data.get("column_roles", {})))


def _missing_marked(column: Sequence[Any]) -> Sequence[Any]:
    """A table column's cells with :data:`MISSING` where :func:`is_missing`; a column of floats
    (NaN where missing) read at C speed, one of texts a distinct text at a time."""
    numeric_array = isinstance(column, np.ndarray) and column.dtype.kind in "biuf"
    kinds = None if numeric_array else set(map(type, column))  # (an array's dtype tells: no scalar made a cell)
    if numeric_array or kinds <= {float}:
        absent = np.isnan(np.asarray(column, dtype=np.float64))
    elif kinds <= {str}:  # (each distinct text read once)
        blank = {value for value in dict.fromkeys(column) if is_missing(value)}
        absent = np.fromiter(map(blank.__contains__, column), dtype=bool, count=len(column)) if blank else None
    else:
        return [MISSING if is_missing(value) else value for value in column]
    if absent is None or not absent.any():
        return column
    marked = np.empty(len(column), dtype=object)
    marked[:] = list(column)  # (the cells themselves, numpy's scalars for an array's)
    marked[absent] = MISSING
    return marked.tolist()


def _missing_cell(value: Any) -> bool:
    return not isinstance(value, np.ndarray) and is_missing(value)


def _missing_text(value: Any) -> bool:
    """A text cell that is missing, or made only of spaces, controls and zero-width characters."""
    return _missing_cell(value) or (isinstance(value, str) and blank_text(value))


def rows_without_input(table: Table, specs: Sequence[InputSpec]) -> list[int]:
    """The positions of ``table``'s rows that have no input at all: every column of every input
    missing, as :meth:`InputSpec.values` reads them (``None``, NaN, a blank text)."""
    rows = list(range(len(table)))
    for spec in sorted(specs, key=lambda spec: spec.modality == "text"):  # (a text's blank check is the slowest)
        missing = spec.missing_cell
        for name in spec.columns:
            column = table.columns[name]
            rows = [i for i in rows if missing(column[i])]  # (rows with an input so far leave the check)
            if not rows:
                return rows
    return rows


def build_input_specs(roles: Mapping[str, str]) -> list[InputSpec]:
    """Group columns into encoder inputs, in column order, named ``<modality>_<k>``."""
    specs: list[InputSpec] = []
    counts: dict[str, int] = {}
    tabular = [c for c, r in roles.items() if modality_of_role(r) == "tabular"]
    for column, role in roles.items():
        modality = modality_of_role(role)
        if modality == "tabular":
            if column == tabular[0]:
                specs.append(InputSpec("tabular", "tabular", tabular, {c: roles[c] for c in tabular}))
            continue
        k = counts.get(modality, 0)
        counts[modality] = k + 1
        specs.append(InputSpec(f"{modality}_{k}", modality, [column], {column: role}))
    return specs


def choice_key(spec: InputSpec, mapping: Mapping[str, Any], specs: Sequence[InputSpec]) -> str | None:
    """The key of ``mapping`` (``encoders=``, ``search_space['encoders']``) that chooses for input
    ``spec``, or None: one of its columns, else its input name (``image_1``, as ``config_`` and
    the leaderboard name it) unless that is another input's column, else its modality unless
    that is a column of another modality (a column named ``image`` holding texts). The same rule
    for a fit with and without a search."""
    columns = {c: s.modality for s in specs for c in s.columns}
    for key in spec.columns:
        if key in mapping:
            return key
    if spec.name in mapping and spec.name not in columns:
        return spec.name
    if spec.modality in mapping and columns.get(spec.modality, spec.modality) == spec.modality:
        return spec.modality
    return None


def warn_unused_modalities(where: str, keys: Iterable[Any], specs: Sequence[InputSpec],
                           modalities: Iterable[str]) -> None:
    """Warn when ``where`` (``encoders``, ``search_space['encoders']``) names a modality that no
    input of the data has while some columns were read as table values: most likely texts taken
    for categories (short, repeated), so the user's choice would go unused without a word."""
    present = {s.modality for s in specs}
    unused = sorted(k for k in map(str, keys) if k in set(modalities) - present - {"tabular"})
    tabular = [c for s in specs if s.modality == "tabular" for c in s.columns]
    if unused and tabular:
        roles = {c: r for s in specs for c, r in s.column_roles.items()}
        shown = roles if len(roles) <= NAMES_SHOWN else shown_roles(roles)
        named = ", ".join(f"{where}[{k!r}]" for k in unused)
        warnings.warn(f"{where}: no input of the data is {' or '.join(map(repr, unused))}, so {named} "
                      f"{'is' if len(unused) == 1 else 'are'} not used; the columns' roles are {shown} (column_types= "
                      f"sets a column's role, e.g. column_types={{{tabular[0]!r}: {unused[0]!r}}})",
                      AutoMMWarning, stacklevel=user_stacklevel())


#: The argument whose values the checks in progress in this thread (or task) are of, named
#: before their warnings ("X_val: column 'image': ..."); "" for ``X``.
_checked_argument: contextvars.ContextVar[str] = contextvars.ContextVar("automm_checked_argument", default="")


@contextlib.contextmanager
def checks_of(argument: str):
    """Within: the warnings of :func:`validate_columns` name ``argument`` first (``X_val``).
    Per thread, unlike catching the warnings to say it again: ``warnings.catch_warnings``
    swaps the process's filters and ``showwarning``, so it took the warnings of the host's
    other threads meanwhile (and re-raised them as ``X_val``'s)."""
    token = _checked_argument.set(f"{argument}: ")
    try:
        yield
    finally:
        _checked_argument.reset(token)


#: The messages of the checks in progress in this thread (or task) already given, when they are to be
#: given once (:func:`warned_once_in`), else None.
_said_before: contextvars.ContextVar[dict[str, None] | None] = contextvars.ContextVar("automm_said_before",
                                                                                        default=None)
#: How many messages :func:`warned_once_in` remembers (the latest): a service that meets a new
#: unreadable file in each request keeps no growing record.
SAID_REMEMBERED = 256


@contextlib.contextmanager
def warned_once_in(said: dict[str, None]):
    """Within: each warning of :func:`validate_columns` given once for ``said`` (a fitted model's
    record, kept by the caller), the others left out. scikit-learn's tools that predict or score
    one model on the same rows many times (``permutation_importance``: each column's each repeat)
    reset Python's once-per-place memory of warnings between the calls (their ``catch_warnings``),
    so a column's unreadable image was named once per call."""
    token = _said_before.set(said)
    try:
        yield
    finally:
        _said_before.reset(token)


def warn_once(said: dict[str, None], message: str, key: str | None = None) -> None:
    """An ``AutoMMWarning`` with ``message``, pointing at the user's line, unless ``said`` holds its
    ``key``; remembered there once given (among the latest :data:`SAID_REMEMBERED`), not where the
    program's filters made it an error: a service that turns automm's warnings into errors refuses
    each request with an unreadable image, not the first only. By default keyed by the message and
    the line, as Python's once-per-line rule is (a notebook cell run again is a new line: it shows
    again), but kept beside the model, which scikit-learn's resets of that rule's memory leave alone."""
    level = user_stacklevel()
    if key is None:
        try:
            frame = sys._getframe(level - 1)  # (the frame warnings.warn(stacklevel=level) names, called from here)
            key = f"{frame.f_code.co_filename}:{frame.f_lineno}\0{message}"
        except ValueError:  # (a stack shorter than that)
            key = message
    if key in said:
        return
    warnings.warn(message, AutoMMWarning, stacklevel=level)
    said[key] = None
    while len(said) > SAID_REMEMBERED:
        try:
            del said[next(iter(said))]
        except (KeyError, StopIteration, RuntimeError):  # (another thread's prediction took it meanwhile)
            break


def _warn_of_column(message: str) -> None:
    """A check's ``AutoMMWarning`` about a column's values, naming the argument being checked;
    within :func:`warned_once_in`, once."""
    message = _checked_argument.get() + message
    said = _said_before.get()
    if said is None:
        warnings.warn(message, AutoMMWarning, stacklevel=user_stacklevel())
    else:
        warn_once(said, message)


def validate_columns(table: Table, roles: Mapping[str, str], roles_fixed: bool = False,
                     named_roles: Iterable[Any] = ()) -> Table:
    """:func:`validate_images` on every column of ``table`` whose role is ``image``,
    :func:`validate_datetimes` on every ``datetime`` one. Returns ``table`` with the few
    unreadable images that :data:`IMAGE_TOLERANCE` allows made missing (with a warning), and
    the list cells of text and categorical columns (tags) joined into texts. ``roles_fixed``: the
    ``roles`` are a fitted model's (predict), so errors suggest no other ``column_types``.
    ``named_roles``: the columns whose role the user named (``column_types``' keys), which no
    error says a plugin's role rule chose."""
    named_roles = {str(name) for name in named_roles}  # a table's names are strings
    columns = dict(table.columns)
    for column, role in roles.items():
        if role == "image":
            values = _home_expanded(table.columns[column])
            try:
                unreadable = validate_images(column, values, row_name=table.row_name)
            except InputError as exc:  # arrays that are not images may be another modality's (stereo audio)
                hint = "" if roles_fixed else _plugin_roles_hint(column, values)
                if not hint:
                    raise
                raise InputError(f"{exc}{hint}") from None
            columns[column] = _made_missing(values, unreadable)
        elif role == "datetime":
            validate_datetimes(column, table.columns[column], row_name=table.row_name)
            columns[column] = _written_missing_as_none(table.columns[column])
        elif role == "numeric":
            validate_numbers(column, table.columns[column], row_name=table.row_name)
            columns[column] = _written_missing_as_none(table.columns[column])
        elif role in ("text", "categorical"):
            columns[column] = _items_as_text(column, table.columns[column])
            if role == "text":
                columns[column] = _bytes_as_text(columns[column])
        else:  # a plugin's modality: its own check of the values
            try:
                unreadable = _plugin_check(role, column, table.columns[column], table.row_name)
            except InputError as exc:  # most values not of that modality: the role may be a plugin rule's mistake
                hint = "" if roles_fixed or column in named_roles else _claim_hint(column, table.columns[column], role)
                if not hint:
                    raise
                raise InputError(f"{exc}{hint}") from None
            columns[column] = _made_missing(table.columns[column], unreadable)
    changed = any(columns[name] is not values for name, values in table.columns.items())
    return table.with_columns(columns) if changed else table


def _home_expanded(column: Sequence[Any]) -> Sequence[Any]:
    """``column`` with its image paths that start with ``~`` expanded (as ``save`` and ``load``
    expand theirs), and those written with spaces around them (a spreadsheet's cell ``"1.jpg "``,
    read as an image path by :func:`~automm.roles.looks_like_image_path`) without the spaces,
    unless a file is so named; ``column`` itself when none is either."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column
    values = [_path_as_meant(v) if isinstance(v, (str, os.PathLike)) else v for v in column]
    if all(a is b for a, b in zip(values, column)):
        return column
    return values


def _path_as_meant(value: str | os.PathLike) -> str | os.PathLike:
    """An image path of :func:`_home_expanded`: ``value`` itself when it needs no change."""
    if isinstance(value, str) and value != value.strip() and value.strip() and not os.path.lexists(value):
        value = value.strip()
    return os.path.expanduser(value) if os.fspath(value).startswith("~") else value


def _made_missing(column: Sequence[Any], rows: Sequence[int]) -> Sequence[Any]:
    """``column`` with the values at ``rows`` missing (``column`` itself when there are none)."""
    if not rows:
        return column
    values = list(column)
    for row in rows:
        values[row] = None
    return values


def _written_missing_as_none(column: Sequence[Any]) -> Sequence[Any]:
    """A number or date-time ``column`` with its missing values as pandas writes them (``"NaT"``,
    ``"<NA>"``, ``"None"``, ``"nan"``: :func:`~automm.roles.written_missing`) made None, so that a
    row of the table input with no other value lacks it, as with None (``column`` itself when
    there are none)."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "biufcmM":
        return column
    if not any(issubclass(kind, str) for kind in set(map(type, column))):  # (only a string writes one)
        return column
    return _made_missing(column, [row for row, value in enumerate(column) if written_missing(value)])


def _items_as_text(column_name: str, column: Sequence[Any]) -> Sequence[Any]:
    """A text or categorical column with its list cells (tags) joined into texts
    (:func:`automm.roles.joined_items`); raises :class:`InputError` for vectors of numbers,
    which no text or category encoder can use."""
    from .roles import LIST_TYPES, is_items, is_number_vector, joined_items

    if isinstance(column, np.ndarray) and column.dtype.kind != "O":
        return column
    if not any(issubclass(kind, (*LIST_TYPES, np.ndarray)) for kind in set(map(type, column))):
        return column  # (no cell a list: the column's types tell, at C speed)
    listed = [row for row, v in enumerate(column) if is_items(v)]
    if not listed:
        return column
    vector = next((column[row] for row in listed if is_number_vector(column[row])), None)
    if vector is not None:
        raise InputError(f"column {column_name!r}: values are vectors of numbers (e.g. {len(vector)} numbers: "
                         f"{[v.item() if isinstance(v, np.generic) else v for v in list(vector)[:3]]}...); give "
                         f"each number its own column, e.g. pandas.DataFrame(frame[{column_name!r}].tolist())"
                         f".add_prefix('{column_name}_'){_plugin_roles_hint(column_name, column)}")
    values = list(column)
    for row in listed:
        values[row] = joined_items(values[row])
    return values


def _plugin_roles_hint(column_name: str, column: Sequence[Any], sample: int = 20) -> str:
    """For the error about a column of arrays that the built-in roles cannot read: the modalities
    of installed plugins whose check (:func:`~automm.hookspecs.automm_check_column`) of its first
    ``sample`` present values finds every one readable, as ``"; or, if they are audio values,
    column_types={'clip': 'audio'} (the modality of automm-audio)"``; "" where none does. A
    modality whose plugins check nothing, or whose check raises, is not named."""
    from .registry import get_registry
    from .roles import BASE_ROLES

    registry = get_registry()
    present = [v for v in column[:5000] if not _missing_cell(v)][:sample]
    if not present:
        return ""
    named = []
    for modality in registry.modalities():
        if modality in BASE_ROLES or modality == "tabular":
            continue
        try:
            answers = registry.plugin_manager.hook.automm_check_column(role=modality, name=column_name, values=present)
        except Exception:  # noqa: BLE001 - only a hint: a check that fails names nothing
            continue
        if answers and not any(answers):  # checked by a plugin, and every value readable
            providers = sorted({s.package or f"plugin {s.provider!r}" for s in registry.specs("encoder")
                                if s.modality == modality})
            named.append(f"if they are {modality} values, column_types={{{column_name!r}: {modality!r}}} "
                         f"(the modality of {', '.join(providers)})")
    return "".join(f"; or, {hint}" for hint in named)


def _bytes_as_text(column: Sequence[Any]) -> Sequence[Any]:
    """A text column with its bytes cells (a database's BLOB of titles) decoded as UTF-8, as the
    built-in tokenizer reads them (an undecodable byte a U+FFFD), so that every text encoder reads
    the text, not ``str(value)``'s ``"b'\\xd0\\x9c...'"`` (MiniLM did), and a blank one is missing;
    ``column`` itself when it has none."""
    if isinstance(column, np.ndarray) and column.dtype.kind not in "OS":
        return column
    rows = [row for row, v in enumerate(column) if isinstance(v, (bytes, bytearray, memoryview))]
    if not rows:
        return column
    values = list(column)
    for row in rows:
        values[row] = bytes(values[row]).decode("utf-8", errors="replace")
    return values


#: The share of an image column's present values that may be unreadable (files missing, not
#: images; they count as missing, with a warning): a scraped set of thousands of photos with a
#: few broken files still trains; more than this is a mistake to fix (a wrong folder, URLs).
IMAGE_TOLERANCE = 0.05
#: The share of a date-time column's present values that may be unreadable (they count as missing).
DATETIME_TOLERANCE = 0.05
#: The share of a numeric column's present values that may be other than numbers (they count as missing).
NUMBER_TOLERANCE = 0.05
#: The image check (:func:`validate_images`) reports its progress once it has taken this many seconds
#: (then every :data:`CHECK_PROGRESS_EVERY_S`): 30,000 files on a slow or shared disk take minutes.
CHECK_PROGRESS_AFTER_S = 5.0
CHECK_PROGRESS_EVERY_S = 30.0

_log = logging.getLogger("automm.data")


def validate_datetimes(column_name: str, column: Sequence[Any],
                       row_name: Callable[[int], str] | None = None) -> list[int]:
    """Raise :class:`InputError` when more than :data:`DATETIME_TOLERANCE` of the column's present
    values are not dates or times (see :func:`automm.roles.as_datetime`); fewer count as missing,
    with a warning naming them (their rows returned). ``row_name`` names a row in messages
    (:meth:`Table.row_name`; default: by position)."""
    return _check_values(column_name, column, lambda v: as_datetime(v) is not None, "dates or times",
                         "give datetimes, dates, numpy datetime64 or ISO 8601 strings ('2024-03-05', "
                         "'2024-03-05 14:30'), or another role in column_types", DATETIME_TOLERANCE, row_name)


def validate_numbers(column_name: str, column: Sequence[Any],
                     row_name: Callable[[int], str] | None = None) -> list[int]:
    """Raise :class:`InputError` when more than :data:`NUMBER_TOLERANCE` of a numeric column's
    present values are not numbers (see :func:`automm.roles.is_number`: ``"$5"``, ``"1,234"``,
    ``"oops"``); fewer count as missing, with a warning naming them (their rows returned)."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "biufm":
        if column.dtype.kind == "f":
            _warn_infinite(column_name, column, row_name)
        return []
    try:  # the common case at C speed: numbers (None or NaN where missing), or strings of numbers
        numbers = np.asarray(column, dtype=np.float64)
        if numbers.ndim == 1:  # (not vectors)
            _warn_infinite(column_name, numbers, row_name)
            return []
    except (TypeError, ValueError, OverflowError):
        pass  # something else among them (a word, pandas.NA, a duration): value by value
    return _check_values(column_name, column, lambda v: is_number(v) or written_bool(v) is not None, "numbers",
                         "give numbers (or strings that read as one: '1.5', '-2e3')", NUMBER_TOLERANCE, row_name)


def _warn_infinite(column_name: str, numbers: np.ndarray, row_name: Callable[[int], str] | None) -> None:
    """Warn that the infinite values of a numeric column count as missing, naming the first rows."""
    rows = np.flatnonzero(np.isinf(numbers))
    if rows.size:
        row_name = row_name or row_namer(None)
        shown = ", ".join(f"{float(numbers[r])!r} at {row_name(int(r))}" for r in rows[:3]) + (", ..." if rows.size > 3 else "")
        _warn_of_column(f"column {column_name!r}: {rows.size} of {len(numbers)} values are infinite ({shown}); they "
                        "count as missing")


def _check_values(column_name: str, column: Sequence[Any], readable: Callable[[Any], bool], what: str, hint: str,
                  tolerance: float, row_name: Callable[[int], str] | None) -> list[int]:
    """The rows of the present values of a column that are not ``readable`` (``what``: "numbers"),
    with a warning naming them, when they are at most ``tolerance`` of those values; otherwise
    :class:`InputError` naming the first three and ending with ``hint``. A missing value as pandas
    writes one (:func:`~automm.roles.written_missing`: ``"NaT"``, ``"<NA>"``) is missing, not present."""
    row_name = row_name or row_namer(None)
    present = [(row, v) for row, v in enumerate(column) if not is_missing(v) and not written_missing(v)]
    bad = [(row, v) for row, v in present if not readable(v)]
    if not bad:
        return []
    shown = ", ".join(f"{elided_repr(v)} at {row_name(row)}" for row, v in bad[:3]) + (", ..." if len(bad) > 3 else "")
    message = f"column {column_name!r}: {len(bad)} of {len(present)} values are not {what} ({shown})"
    if len(bad) > tolerance * len(present):
        raise InputError(f"{message}; {hint}")
    _warn_of_column(f"{message}; they count as missing")
    return [row for row, _ in bad]


def validate_images(column_name: str, column: Sequence[Any], max_listed: int = 5,
                    tolerance: float = IMAGE_TOLERANCE, row_name: Callable[[int], str] | None = None) -> list[int]:
    """Raise :class:`InputError` naming the first unreadable images (paths missing or not
    images, undecodable bytes, arrays of the wrong shape or dtype) when more than ``tolerance``
    of the present values are unreadable; otherwise warn and return the unreadable rows (to be
    treated as missing: positions). Reads headers only. ``row_name`` names a row in messages."""
    row_name = row_name or row_namer(None)
    from PIL import Image

    from .components.image import array_image_problem, pil_image_problem, pixel_limit_warning_left_out

    if isinstance(column, np.ndarray) and column.dtype != object:
        problem = array_image_problem(column, stacked=True)
        if problem is None:
            return []
        if array_image_problem(column[:0], stacked=True) is not None or column.shape[0] == 0:  # the shape
            raise InputError(f"column {column_name!r}: {problem}")
        # the values of some images: name them, and make a few missing, as a list of arrays would
        problems = [(row, column[row], why) for row in range(len(column))
                    if (why := array_image_problem(column[row])) is not None]
        if len(problems) > tolerance * len(column):  # the stack's own range: its hint fits every image
            listed = ", ".join(row_name(row) for row, _, _ in problems[:3]) + (", ..." if len(problems) > 3 else "")
            raise InputError(f"column {column_name!r}: {problem} ({len(problems)} of {len(column)} images: {listed})")
        return _tolerate(column_name, "images", problems, len(column), len(column), row_name, max_listed, tolerance)
    files = list(dict.fromkeys(os.fspath(v) for v in column
                               if isinstance(v, (str, os.PathLike)) and not _missing_cell(v)))
    with pixel_limit_warning_left_out():  # (named below, with their rows)
        checked_paths = _check_image_files(column_name, files)  # each distinct path read once
        problems, large, present = [], [], 0
        for row, value in enumerate(column):
            if _missing_cell(value):
                continue
            present += 1
            reason = None
            if isinstance(value, (str, os.PathLike)):
                reason = checked_paths[os.fspath(value)]
            elif isinstance(value, (bytes, bytearray, memoryview)):  # memoryview: a database's BLOB (psycopg2)
                reason = _image_file_problem(io.BytesIO(value))
                if reason and (path := _path_in_bytes(value)) is not None:
                    reason = f"bytes of the path {_short(path)}, not of an image (give paths as str: value.decode())"
                elif reason and not isinstance(reason, _OverPixelLimit):
                    reason = f"bytes are not a readable image ({reason})" if not reason.startswith("truncated") else \
                        f"bytes of a {reason}"
            elif isinstance(value, np.ndarray):
                reason = array_image_problem(value)
            elif isinstance(value, Image.Image):
                reason = pil_image_problem(value)
            else:
                reason = f"unsupported type {type(value).__name__}"
            if isinstance(reason, _OverPixelLimit):
                large.append((row, value, reason))
            elif reason:
                problems.append((row, value, reason))
    _warn_over_pixel_limit(column_name, large, present, row_name, max_listed)
    return _tolerate(column_name, "images", problems, present, len(column), row_name, max_listed, tolerance)


class _OverPixelLimit(str):
    """No problem: the size (``"12000x12000"``) of a readable image larger than Pillow's
    decompression-bomb warning limit, ``PIL.Image.MAX_IMAGE_PIXELS`` (twice it is an error)."""


def _warn_over_pixel_limit(column_name: str, large: list[tuple[int, Any, str]], present: int,
                           row_name: Callable[[int], str], max_listed: int) -> None:
    """One warning naming the rows and files of column ``column_name`` over Pillow's pixel limit
    (``(position, value, size)``), in place of Pillow's, which names none, at the check and again
    at each decoding."""
    from PIL import Image

    from .components.image import NAMED_LARGE_FILES

    if not large:
        return
    NAMED_LARGE_FILES.update(os.fspath(v) for _, v, _ in large if isinstance(v, (str, os.PathLike)))
    listed = "; ".join(f"{row_name(r)} ({_short(v)}): {size}" for r, v, size in large[:max_listed])
    more = f" and {len(large) - max_listed} more" if len(large) > max_listed else ""
    _warn_of_column(f"column {column_name!r}: {len(large)} of {present} images have more pixels than Pillow's "
                    f"decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}): {listed}{more}; "
                    "they are read, each decoded whole (slow, and memory-hungry): shrink them, or raise the limit if "
                    "they are genuine")


#: Files of an image column checked at once (threads) when the disk is slow: reading a file's
#: first and last bytes then waits on the disk (a network or shared disk, 2.5 ms a file: 30,760
#: files took 77 s one at a time, 10 s with 8 threads). A fast disk is checked in one thread,
#: where threads only contend for the interpreter (the same files from the page cache: 1.3 s in
#: one thread, 4.8 s in 8).
CHECK_THREADS = 8
#: Seconds a file that make a disk slow (:data:`CHECK_THREADS`), timed on the first files.
CHECK_SLOW_FILE_S = 0.001
_CHECK_PROBE = 64


def _check_image_files(column_name: str, paths: Sequence[str]) -> dict[str, str | None]:
    """Why each of ``paths`` (distinct) is not a readable image file, or None: the first
    files one by one, the rest by :data:`CHECK_THREADS` threads when those took longer than
    :data:`CHECK_SLOW_FILE_S` each; progress logged (``automm.data``) once it takes a while."""
    from concurrent.futures import ThreadPoolExecutor

    start = reported = time.monotonic()
    reasons = {path: _image_path_problem(path) for path in paths[:_CHECK_PROBE]}
    rest = paths[_CHECK_PROBE:]
    slow = (time.monotonic() - start) > CHECK_SLOW_FILE_S * len(reasons) and len(rest) > CHECK_THREADS
    pool = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="automm-image-check") if slow else None
    with pool or contextlib.nullcontext():
        answers = pool.map(_image_path_problem, rest) if pool else map(_image_path_problem, rest)
        for done, (path, reason) in enumerate(zip(rest, answers), len(reasons) + 1):
            reasons[path] = reason
            if done % 256 == 0 and time.monotonic() - reported > (
                    CHECK_PROGRESS_EVERY_S if reported > start else CHECK_PROGRESS_AFTER_S):
                reported = time.monotonic()
                _log.info("checking the image files of column %r: %d of %d (%.0f s, %.1f ms a file%s: each file's "
                          "first and last bytes read)", column_name, done, len(paths), reported - start,
                          1000 * (reported - start) / done, f", {CHECK_THREADS} at once" if slow else "")
    if reported > start:
        _log.info("checked the image files of column %r: %d in %.0f s", column_name, len(paths),
                  time.monotonic() - start)
    return reasons


def _image_path_problem(path: str) -> str | None:
    """Why the file at ``path`` is not a readable image, or None (see :func:`_image_file_problem`)."""
    if _is_url(path):
        if path.lower().startswith("file://"):
            return "a file:// URL; give the file's path itself (the part after file://)"
        return "a URL; automm reads local files only (it never downloads), so download the images first"
    try:
        status = os.stat(path)  # one call: each costs a round trip on a network disk
    except (OSError, ValueError) as exc:  # missing, or what the system said instead (a link's loop, a folder's rights)
        return lookup_problem(path, exc)
    if not stat.S_ISREG(status.st_mode):  # a directory, a pipe (read, it would block), a device (/dev/zero)
        return f"{file_kind(status.st_mode)}, not an image file"
    if status.st_size == 0:
        return "an empty file (0 bytes: re-copy it)"
    try:
        with open(path, "rb") as file:
            reason = _image_file_problem(file)
    except OSError as exc:
        return f"cannot be opened: {lookup_problem(path, exc, opening=True)}"
    if reason and not isinstance(reason, _OverPixelLimit):
        reason = f"not a readable image ({reason})" if not reason.startswith("truncated") else reason
    return reason


def _tolerate(column_name: str, what: str, problems: list[tuple[int, Any, str]], present: int, n_rows: int,
              row_name: Callable[[int], str], max_listed: int = 5, tolerance: float = IMAGE_TOLERANCE) -> list[int]:
    """The rows of ``problems`` (``(position, value, why)``), to be made missing with a warning
    when they are at most ``tolerance`` of the ``present`` values of column ``column_name``;
    otherwise :class:`InputError` naming the first of them (``what``: "images", "audio values")."""
    if not problems:
        return []
    from .components.image import HEIF_HINT, HEIF_UNREADABLE

    listed = "; ".join(f"{row_name(r)} ({_short(v)}): {why}" for r, v, why in problems[:max_listed])
    more = f" and {len(problems) - max_listed} more" if len(problems) > max_listed else ""
    if any(HEIF_UNREADABLE in why for _, _, why in problems):
        more += f": {HEIF_HINT}"
    if len(problems) <= tolerance * present:
        _warn_of_column(f"column {column_name!r}: {len(problems)} of {present} {what} cannot be read and count as "
                        f"missing: {listed}{more}")
        return [row for row, _, _ in problems]
    relative_missing = sum(why == "file not found" and isinstance(v, (str, os.PathLike)) and not os.path.isabs(v)
                           for _, v, why in problems)
    missing = [v for _, v, why in problems if why == "file not found"]
    hint = ""
    # ($HOME/1.jpg, C:\\photos\\1.jpg: relative here, but written for a shell or another machine)
    if relative_missing >= max(1, 0.5 * n_rows) and not (variable_hint(missing) or windows_path_hint(missing)):
        hint = (f"; relative paths are read from the working directory ({os.getcwd()}): make them absolute, "
                "or join them to the folder they are relative to (e.g. the CSV file's)")
    hint += backslash_hint(missing) + variable_hint(missing) + dangling_link_hint(missing) + unicode_form_hint(missing)
    # what would pass: a few unreadable values, or the rows that have none marked so
    hint += (f"; at most {tolerance * 100:g}% of a column's values may be unreadable (they then count as missing, "
             f"with a warning): give None where a row has none")
    raise InputError(f"column {column_name!r}: {len(problems)} of {present} {what} cannot be read: "
                     f"{listed}{more}{hint}")


def backslash_hint(paths: Sequence[Any]) -> str:
    """A hint when paths not found are written with Windows' ``\\`` separators on a system whose
    separator is ``/`` (which reads ``imgs\\1.jpg`` as one file name), or are a Windows machine's
    (``C:\\photos\\1.jpg``, a share's ``\\\\server\\photos\\1.jpg``), which name no file here; "" otherwise."""
    windows = windows_path_hint(paths)
    if windows or os.sep != "/" or not any(isinstance(v, str) and "\\" in v for v in paths):
        return windows
    return "; they are written with '\\' (Windows) separators, which this system reads as part of a name: write them with '/'"


#: A Windows machine's absolute path: a drive's (``C:\\``, ``C:/``) or a network share's (``\\\\server\\share``).
_WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]|\\\\[^\\]")


def windows_path_hint(paths: Sequence[Any]) -> str:
    """A hint when a path not found is a Windows machine's, which names no file on another system; ""
    otherwise (and on Windows)."""
    windows = next((v for v in paths if isinstance(v, str) and _WINDOWS_PATH.match(v)), None)
    if windows is None or os.name == "nt":
        return ""
    return (f"; {windows!r} is a Windows path (a drive or a network share), which names no file on this system: "
            "give the files' paths on this machine (where that drive or share is mounted)")


#: A path's start that names an environment variable: ``$HOME/``, ``${DATA}/``, Windows' ``%USERPROFILE%\\``.
_VARIABLE_START = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%[A-Za-z_][A-Za-z0-9_()]*%")


def variable_hint(paths: Sequence[Any]) -> str:
    """A hint when a path not found starts with an environment variable (``$HOME/photos/1.jpg``,
    as a shell script wrote it), which automm reads as a folder of that name; "" otherwise."""
    for value in paths:
        match = _VARIABLE_START.match(value) if isinstance(value, str) else None
        if match:
            return (f"; {value!r} starts with an environment variable ({match.group(0)}), which automm does not expand "
                    "in data (a shell does): expand it first, e.g. os.path.expandvars(path)")
    return ""


def dangling_link_hint(paths: Sequence[Any], folders: Sequence[Any] = ("",), looked_at: int = 20) -> str:
    """A hint when a path not found (among the first ``looked_at`` of ``paths``, relative ones
    looked up in ``folders``) goes through a symbolic link to a folder that is not there (a share
    not mounted, a synced folder moved or renamed), which reads as a missing file; "" otherwise."""
    looked: set[str] = set()
    for value in [v for v in paths if isinstance(v, (str, os.PathLike))][:looked_at]:
        text = os.fspath(value)
        for folder in ([""] if os.path.isabs(text) else folders):
            for part in reversed(Path(os.path.abspath(os.path.join(os.fspath(folder), text))).parents):
                if str(part) in looked:
                    continue
                looked.add(str(part))
                try:
                    target = os.readlink(part)
                except (OSError, ValueError):  # not a link (or nothing there)
                    continue
                if not os.path.exists(part):
                    return (f"; {str(part)!r} is a symbolic link to a folder that is not there ({target!r}): mount "
                            "or put back that folder, or point the link (or the paths) at where the files are now")
    return ""


def unicode_form_hint(paths: Sequence[Any], folders: Sequence[Any] = ("",), looked_at: int = 20) -> str:
    """A hint when a path not found (among the first ``looked_at`` of ``paths``, relative ones
    looked up in ``folders``) names a file whose name writes its accented letters in another Unicode
    form (``'e'`` and a combining accent for ``'\\xe9'``: files from macOS, paths typed elsewhere),
    which the system reads as another name; "" otherwise."""
    import codecs
    import sys
    import unicodedata

    named = [v for v in paths if isinstance(v, str) and not v.isascii()][:looked_at]
    if named and codecs.lookup(sys.getfilesystemencoding()).name == "ascii":
        return (f"; {named[0]!a} has letters other than ASCII, and this Python names files in ASCII only "
                "(sys.getfilesystemencoding() is 'ascii': the C locale, LC_ALL=C, with UTF-8 mode off, PYTHONUTF8=0): "
                "run it with PYTHONUTF8=1, or under a UTF-8 locale (LC_ALL=C.UTF-8)")
    for value in named:
        for form in ("NFC", "NFD"):
            other = unicodedata.normalize(form, value)
            if other == value:
                continue
            for folder in ([""] if os.path.isabs(value) else folders):
                if os.path.exists(os.path.join(folder, other)):
                    return (f"; {value!a} is no file, but {other!a} is: the same name with its accented letters "
                            f"written in another Unicode form ({form}), which this system reads as another name: "
                            f"write the paths as the files are named (unicodedata.normalize({form!r}, path)), or "
                            f"rename the files (convmv -r -f utf8 -t utf8 --{'nfd' if form == 'NFC' else 'nfc'} --notest FOLDER)")
    return ""


def _plugin_check(role: str, column_name: str, column: Sequence[Any], row_name: Callable[[int], str]) -> list[int]:
    """The plugins' :func:`~automm.hookspecs.automm_check_column` for a column of their modality
    ``role``, under the images' tolerance (:func:`_tolerate`): the rows to make missing (the
    rows of missing values it names are left out: they count as missing, not as unreadable)."""
    from .registry import get_registry

    values = [None if _missing_cell(v) else v for v in column]
    registry = get_registry()
    try:
        answers = registry.plugin_manager.hook.automm_check_column(role=role, name=column_name, values=values)
    except InputError:
        raise
    except Exception as exc:  # a plugin's bug: name the modality's plugin, not a bare traceback
        providers = [f"{impl.plugin_name!r}" + (f" ({package})" if (package := registry.package_of(impl.plugin_name))
                                                else "")
                     for impl in registry.plugin_manager.hook.automm_check_column.get_hookimpls()]
        raise PluginError(f"column {column_name!r} ({role}): the check of its values (automm_check_column of plugin "
                          f"{', '.join(providers)}) raised {type(exc).__name__}: {exc}") from exc
    # a missing value is missing whatever a check says of it (one that does not skip None reads it as unreadable)
    problems = sorted({(int(r), why) for answer in answers if answer for r, why in answer if values[int(r)] is not None})
    if not problems:
        return []
    present = sum(v is not None for v in values)
    return _tolerate(column_name, f"{role} values", [(r, column[r], why) for r, why in problems], present,
                     len(column), row_name)


#: Where a complete file of these formats ends: JPEG's end-of-image marker (in its last bytes:
#: some writers pad after it; an MPO, a JPEG with further pictures after its first, ends as one),
#: PNG's IEND chunk.
_END_MARKERS = {"JPEG": (b"\xff\xd9", 1024), "MPO": (b"\xff\xd9", 1024), "PNG": (b"IEND\xaeB`\x82", 12)}


def _jpeg_end_inside(file) -> bool:
    """Whether a JPEG's end-of-image marker follows its first scan, where the file's last bytes lack
    it: phones append data after it (a motion photo's video, Samsung's metadata trailer), and such a
    file, whole, was decoded to be sure (130 ms for a 12-megapixel photo, 400 times the check). The
    marker segments before the scan (EXIF, whose thumbnail ends in one too) are stepped over by
    their lengths; in the scan's data a 0xFF byte is never followed by 0xD9, so the first such pair
    after it ends the image (the trailer after it is never read). False where unsure: decoded then."""
    file.seek(2)
    while True:
        head = file.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return False
        if head[1] == 0xFF:  # fill bytes before a marker
            file.seek(-3, io.SEEK_CUR)
            continue
        if head[1] == 0xD9:
            return False  # an end before any scan: not an image's
        if head[1] == 0x01 or 0xD0 <= head[1] <= 0xD7:  # markers without a segment
            file.seek(-2, io.SEEK_CUR)
            continue
        length = int.from_bytes(head[2:4], "big")
        if length < 2:
            return False
        file.seek(length - 2, io.SEEK_CUR)
        if head[1] == 0xDA:  # start of scan: its data follows
            break
    carry = b""
    while chunk := file.read(1 << 20):
        if b"\xff\xd9" in carry + chunk:
            return True
        carry = chunk[-1:]
    return False


def _png_end_inside(file) -> bool:
    """Whether a PNG's chunks, followed by their lengths, reach its IEND chunk, where the file's last
    bytes lack it: data appended after it (a cropped screenshot's leftover pixels, a web page's
    additions) was decoded to be sure. Reads 8 bytes a chunk."""
    file.seek(8)
    while len(head := file.read(8)) == 8:
        if head[4:8] == b"IEND":
            return True
        file.seek(int.from_bytes(head[:4], "big") + 4, io.SEEK_CUR)
    return False


#: Where :func:`_image_file_problem` looks for a format's end marker when it is not in the file's last bytes.
_END_FINDERS = {"JPEG": _jpeg_end_inside, "MPO": _jpeg_end_inside, "PNG": _png_end_inside}


def _image_file_problem(file) -> str | None:
    """Why the open binary ``file`` is not a readable image, or None. Reads the header, and for
    JPEG and PNG the file's last bytes: a file cut short (an interrupted copy or download) has a
    valid header and fails only when decoded, inside training; where the end marker is missing
    the image is decoded to be sure."""
    from PIL import Image, UnidentifiedImageError

    from .components.image import HEIF_UNREADABLE, _starts_heif, heif_opener_registered_now

    fine = None  # (or the size of an image over Pillow's warning limit: _OverPixelLimit)
    try:
        with Image.open(file) as image:
            width, height = image.size
            if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
                fine = _OverPixelLimit(f"{width}x{height}")
            marker = _END_MARKERS.get(image.format)
            if marker is None:
                return fine
            end, span = marker
            file.seek(0, io.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - span))
            if end in file.read(span) or _END_FINDERS[image.format](file):
                return fine
            file.seek(0)
            with Image.open(file) as again:
                again.load()
    except Image.DecompressionBombError as exc:  # a huge image (or a malicious one): Pillow's own limit
        return (f"DecompressionBombError: {str(exc).rstrip('.')}; raise the limit with PIL.Image.MAX_IMAGE_PIXELS = ... "
                "before fit if the image is genuine, or shrink it")
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        text = str(exc)
        if "truncated" in text:
            return "truncated image file (cut short: re-copy it)"
        if isinstance(exc, UnidentifiedImageError) and _starts_heif(file):
            if heif_opener_registered_now():
                file.seek(0)
                return _image_file_problem(file)
            return HEIF_UNREADABLE
        return type(exc).__name__
    return fine


def _short(value: Any) -> str:
    """A value for a message: a path's repr, its middle elided when long (its file name, at the
    end, is what the reader needs), else the value's type."""
    text = repr(value) if isinstance(value, (str, os.PathLike)) else type(value).__name__
    return text if len(text) < 80 else text[:28] + "..." + text[-48:]


#: The most memory the samples a training run reuses may take (see
#: :attr:`~automm.components.base.Encoder.reusable_samples`), estimated from the first row's;
#: an input whose samples would take more is preprocessed again in every epoch.
REUSED_SAMPLE_BYTES = 512 * 2 ** 20


def _sample_bytes(sample: Any) -> int:
    """A rough size of a preprocessed sample: its tensors' and arrays' data plus each one's overhead."""
    if isinstance(sample, torch.Tensor):
        return sample.element_size() * sample.nelement() + 200
    if isinstance(sample, np.ndarray):
        return sample.nbytes + 120
    if isinstance(sample, Mapping):
        return 100 + sum(_sample_bytes(v) for v in sample.values())
    if isinstance(sample, (list, tuple)):
        return 60 + sum(_sample_bytes(v) for v in sample)
    return 32


class MultimodalDataset(torch.utils.data.Dataset):
    """Samples for training or prediction: raw values are preprocessed lazily (in
    DataLoader workers), with per-sample augmentations seeded by (seed, epoch, index).
    With ``reuse`` (a training run's data, read once per epoch), an input whose encoder has
    :attr:`~automm.components.base.Encoder.reusable_samples` and whose modality gets no
    augmentation is preprocessed once, here, as a ``static_preprocess`` one is. An input whose
    encoder preprocesses a whole column at once (:meth:`~automm.components.base.Encoder.preprocess_batch`)
    and whose modality gets no augmentation is preprocessed so, here, in any dataset (training or
    prediction); the loader's batches take their rows of it (:meth:`__getitems__`, :class:`BatchCollator`).
    ``columns`` (an input's column, for inputs of one) and ``row_names`` (:class:`RowNames`: ``index 'b'``)
    name an in-memory value that an encoder's ``preprocess`` refuses (an :class:`InputError`), as the
    error then says; without them, the input."""

    def __init__(self, values: Mapping[str, Sequence[Any]], encoders: Mapping[str, Encoder],
                 targets: np.ndarray | None = None,
                 augmentations: Mapping[str, Sequence[Callable]] | None = None, seed: int = 0, reuse: bool = False,
                 columns: Mapping[str, str] | None = None, row_names: RowNames | None = None):
        self.values = dict(values)
        self.columns = dict(columns or {})
        self.row_names = row_names
        self.encoders = dict(encoders)
        self.targets = targets
        self.augmentations = {k: list(v) for k, v in (augmentations or {}).items() if v}
        self.seed = int(seed)
        self.epoch = 0
        self._length = len(next(iter(self.values.values())))
        self._failed: dict[tuple, str] = {}  # (input, path or row) -> why it could not be decoded
        # inputs preprocessed a whole column at once (Encoder.preprocess_batch): the batch of every
        # row and whether each row has the input
        self._columns: dict[str, tuple[Any, torch.Tensor]] = {}
        for name in self.encoders:
            column = self._column(name)
            if column is not None:
                self._columns[name] = column
        # inputs whose sample never changes (Encoder.static_preprocess): computed once, here
        self._static_missing: dict[str, set[int]] = {}
        self._static = {name: [self._static_sample(name, index, value) for index, value in enumerate(self.values[name])]
                        for name, encoder in self.encoders.items() if name not in self._columns
                        and (getattr(encoder, "static_preprocess", False) or (reuse and self._reusable(name)))}

    def _column(self, name: str) -> tuple[Any, torch.Tensor] | None:
        """Input ``name``'s batch of every row and its mask, where its encoder preprocesses a
        whole column (see the class doc); else None."""
        encoder = self.encoders[name]
        if not self._length or self.augmentations.get(encoder.modality) or collate_replaced(encoder, Encoder) \
                or not (getattr(encoder, "static_preprocess", False) or getattr(encoder, "reusable_samples", False)) \
                or _preprocess_replaced(encoder):
            return None
        batch = encoder.preprocess_batch(self.values[name])
        if batch is None:
            return None
        present = torch.tensor([_present(value) for value in self.values[name]], dtype=torch.bool)
        return batch, present

    def _reusable(self, name: str) -> bool:
        """Whether input ``name``'s samples are computed once (see the class doc)."""
        encoder = self.encoders[name]
        if not getattr(encoder, "reusable_samples", False) or self.augmentations.get(encoder.modality):
            return False
        if not self._length:
            return True
        first, _ = self._preprocess(name, 0, self.values[name][0], None)
        return _sample_bytes(first) * self._length <= REUSED_SAMPLE_BYTES

    def _preprocess(self, name: str, index: int, value: Any, augment: Callable | None) -> tuple[Any, bool]:
        """``(preprocess(value, augment), True)``; for a file that cannot be decoded after all
        (see :meth:`_unreadable`), the input's missing sample and False."""
        encoder = self.encoders[name]
        try:
            return encoder.preprocess(value, augment), True
        except InputError as exc:
            from PIL.Image import Image as PILImage  # (imported only where a value failed)

            if value is MISSING:
                raise
            if not isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview, PILImage)):
                column = self.columns.get(name)
                where = f"column {column!r}" if column is not None else f"input {name!r}"
                where += f", {self.row_names[index]}" if self.row_names is not None else ""
                raise InputError(f"{where}: {exc}") from exc
            self._unreadable(name, index, value, exc)
            return encoder.preprocess(MISSING, None), False

    def _static_sample(self, name: str, index: int, value: Any) -> Any:
        """``preprocess(value)`` of a static input; one that cannot be decoded masks its row."""
        sample, readable = self._preprocess(name, index, value, None)
        if not readable:
            self._static_missing.setdefault(name, set()).add(index)
        return sample

    def __len__(self) -> int:
        return self._length

    def _unreadable(self, name: str, index: int, value: Any, exc: InputError) -> None:
        """A file (or bytes) that the check before the work passed (its header and end were fine)
        but that cannot be decoded (broken data inside, or changed since): missing from now on,
        with a warning naming it, as the check makes a few unreadable files missing; more than
        :data:`IMAGE_TOLERANCE` of the rows (counted per process) raises."""
        failed = self._failed
        key = (name, os.fspath(value) if isinstance(value, (str, os.PathLike)) else index)
        if key in failed:
            return
        failed[key] = str(exc)
        if len(failed) > max(1.0, IMAGE_TOLERANCE * self._length):
            raise InputError(f"{len(failed)} of {self._length} values of input {name!r} could not be decoded "
                             f"although their check before the work passed (the last, {_short(value)}: {exc}); "
                             "are the files being changed or removed meanwhile?") from exc
        warnings.warn(f"input {name!r}: {exc}; its header and end are fine, so the check before the work passed "
                      "it, but the data inside is broken: it counts as missing",
                      AutoMMWarning, stacklevel=user_stacklevel())

    def _augmenter(self, name: str, index: int) -> Callable | None:
        modality = self.encoders[name].modality
        augs = self.augmentations.get(modality)
        if not augs:
            return None
        generator = torch.Generator()
        generator.manual_seed(hash_seed(self.seed, self.epoch, index, name))

        def augment(value: Any) -> Any:
            problem = augment_input_problem(modality, value)
            if problem is not None:
                raise PluginError(f"the encoder of input {name!r} ({type(self.encoders[name]).__name__}): {problem}")
            for aug in augs:
                value = aug(value, generator)
            return value
        return augment

    def __getitem__(self, index: int) -> dict:
        sample = self._sample(index)
        for name, (batch, present) in self._columns.items():
            sample["inputs"][name] = take_row(batch, index)
            sample["masks"][name] = bool(present[index])
        return sample

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """The samples of ``indices`` (one batch of a DataLoader), ``[self[i] for i in indices]``
        but for the inputs preprocessed a whole column at once: their rows are taken together, as
        ``columns`` ``{input: (batch, masks)}`` of the returned list, which :class:`BatchCollator` uses."""
        samples = Samples(self._sample(index) for index in indices)
        if self._columns:
            rows = torch.as_tensor(list(indices), dtype=torch.long)
            samples.columns = {name: (take_rows(batch, rows), present[rows])
                               for name, (batch, present) in self._columns.items()}
        return samples

    def _sample(self, index: int) -> dict:
        """Row ``index``'s sample of the inputs not preprocessed as a whole column."""
        inputs, masks = {}, {}
        for name in self.encoders:
            if name in self._columns:
                continue
            value = self.values[name][index]
            present = _present(value)
            static = self._static.get(name)
            if static is not None:
                inputs[name] = static[index]
                present = present and index not in self._static_missing.get(name, ())
            else:
                inputs[name], readable = self._preprocess(name, index, value,
                                                          self._augmenter(name, index) if present else None)
                present = present and readable
            masks[name] = present
        sample = {"inputs": inputs, "masks": masks, "index": index}
        if self.targets is not None:
            sample["target"] = self.targets[index]
        return sample


def hash_seed(*parts: Any) -> int:
    """A stable 63-bit seed from its parts (unlike ``hash``, equal across processes)."""
    import zlib

    return zlib.crc32(repr(parts).encode()) * 2654435761 % (2**63 - 1)


def _preprocess_replaced(encoder: Encoder) -> bool:
    """Whether ``encoder``'s class replaced the ``preprocess`` of the class its ``preprocess_batch``
    is from (a plugin's subclass of the ``tabular`` encoder reading its rows otherwise): that
    ``preprocess_batch`` would not give its samples, which are then made row by row."""
    def owner(method: str) -> type:
        return next(cls for cls in type(encoder).__mro__ if method in vars(cls))

    return not issubclass(owner("preprocess_batch"), owner("preprocess"))


def _present(value: Any) -> bool:
    """Whether a sample's raw value gives its input: not :data:`MISSING`, a tabular row with a cell."""
    if isinstance(value, dict):  # a tabular row is present if any cell is
        return any(v is not MISSING for v in value.values())
    return value is not MISSING


class Samples(list):
    """The samples of one batch (:meth:`MultimodalDataset.__getitems__`), with ``columns``: the
    inputs whose rows were taken from a whole column's batch, ``{input: (batch, masks)}``."""

    columns: dict[str, tuple[Any, torch.Tensor]] = {}


def take_row(batch: Any, index: int) -> Any:
    """Row ``index``'s sample of a batch whose every tensor (in nested dicts) holds one row per sample."""
    if isinstance(batch, torch.Tensor):
        return batch[index].clone()  # not a view: a view pickles the whole column
    return {key: take_row(value, index) for key, value in batch.items()}


class BatchCollator:
    """Collates samples with each encoder's own ``collate`` (an input whose rows
    :meth:`MultimodalDataset.__getitems__` took from a whole column's batch as they are)."""

    def __init__(self, encoders: Mapping[str, Encoder]):
        self.encoders = dict(encoders)

    def __call__(self, samples: list[dict]) -> dict:
        columns = getattr(samples, "columns", {})
        batch = {
            "inputs": {name: columns[name][0] if name in columns else enc.collate([s["inputs"][name] for s in samples])
                       for name, enc in self.encoders.items()},
            "masks": {name: columns[name][1] if name in columns else
                      torch.tensor([s["masks"][name] for s in samples], dtype=torch.bool) for name in self.encoders},
            "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
        }
        if "target" in samples[0]:
            batch["target"] = torch.as_tensor(np.stack([s["target"] for s in samples]))
        return batch
