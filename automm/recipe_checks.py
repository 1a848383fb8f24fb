"""Recipe validation: the recipe's schema (sections, keys, the key of every ``AutoMM``
parameter) and the checks that report every problem of a recipe at once, each at its key path
with what was expected, what was found and a did-you-mean (:class:`RecipeError`).

:mod:`automm.recipes` reads recipes and runs them; this module only judges them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .exceptions import AutoMMError, InputError
from .files import url_problem
from . import registry as _registry
from .roles import BASE_ROLES
from .search import OBJECTIVES, PRUNERS, SAMPLERS
from .search_space import _is_int
from .suggestions import close_match, did_you_mean, quoted_values, shown_names, unique_target
from .tables import data_format, parquet_engine, read_column, read_header
from .training import BINARY_METRICS, CLASSIFICATION_METRICS, REGRESSION_METRICS, metric_name_hint

__all__ = ["RecipeError", "Problem", "PARAM_PATHS", "PYTHON_ONLY_PARAMS", "SECTION_KEYS", "TOP_KEYS", "METRICS",
           "SAMPLERS", "PRUNERS",
           "RECIPE_VERSION", "check_recipe", "get_key_path", "set_key_path", "show_value", "join_path",
           "split_value_problems", "split_text", "split_texts", "recipe_key_path"]


RECIPE_VERSION = 1


#: AutoMM constructor parameter → its key path in a recipe. Every parameter must be here or in
#: :data:`PYTHON_ONLY_PARAMS` (a test compares them with ``AutoMM().get_params()``), and
#: :func:`to_recipe` refuses a parameter it cannot place.
PARAM_PATHS: dict[str, str] = {
    "problem_type": "problem.type",
    "metric": "problem.metric",
    "column_types": "data.column_types",
    "encoders": "components.encoders",
    "fusion": "components.fusion",
    "augmentations": "components.augmentations",
    "max_epochs": "training.max_epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "weight_decay": "training.weight_decay",
    "label_smoothing": "training.label_smoothing",
    "patience": "training.patience",
    "holdout_frac": "training.holdout_frac",
    "class_weight": "training.class_weight",
    "head_dropout": "training.head_dropout",
    "device": "training.device",
    "amp": "training.amp",
    "num_workers": "training.num_workers",
    "cache_dir": "training.cache_dir",
    "time_limit": "search.time_limit",
    "n_trials": "search.n_trials",
    "search_space": "search.search_space",
    "sampler": "search.sampler",
    "pruner": "search.pruner",
    "storage": "search.storage",
    "study_name": "search.study_name",
    "n_jobs": "search.n_jobs",
    "ensemble_size": "search.ensemble_size",
    "bag_folds": "search.bag_folds",
    "objectives": "search.objectives",
    "plot_dir": "output.plot_dir",
    "verbose": "output.verbose",
    "random_state": "seed",
}


#: AutoMM constructor parameters that hold Python objects only, which a recipe cannot: the training
#: ``callbacks``. :func:`to_recipe` refuses an estimator that sets them.
PYTHON_ONLY_PARAMS: tuple[str, ...] = ("callbacks",)


#: The keys each section accepts, in the order :func:`to_recipe` writes them.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("sample", "path", "train", "test", "valid", "format", "files_dir", "label", "columns", "column_types",
             "split_column", "train_values", "test_values", "valid_values", "weight_column", "min_class_rows",
             "max_rows"),
    "problem": ("type", "metric"),
    "components": ("encoders", "fusion", "augmentations"),
    "training": ("max_epochs", "batch_size", "learning_rate", "weight_decay", "label_smoothing", "patience",
                 "holdout_frac", "class_weight", "head_dropout", "device", "amp", "num_workers", "cache_dir"),
    "search": ("n_trials", "time_limit", "sampler", "pruner", "storage", "study_name", "n_jobs", "ensemble_size",
               "bag_folds", "objectives", "search_space"),
    "output": ("dir", "overwrite", "plot_dir", "verbose"),
}


TOP_KEYS = ("version", "description", "data", "problem", "components", "training", "search", "output", "seed")


SCALAR_TOP_KEYS = ("version", "description", "seed")


def recipe_key_path(name: Any, *, fuzzy: bool = True) -> str | None:
    """The key path a bare key names when it names exactly one: a section's key
    (``max_epochs`` → ``training.max_epochs``), an ``AutoMM`` parameter (``random_state`` →
    ``seed``) or a top-level value; with ``fuzzy``, also the one a misspelling stands for."""
    targets = [(key, join_path(section, key)) for section, keys in SECTION_KEYS.items() for key in keys]
    targets += [*PARAM_PATHS.items(), *((key, key) for key in SCALAR_TOP_KEYS)]
    return unique_target(name, targets, fuzzy=fuzzy)


METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS


PROBLEM_TYPES = ("auto", "binary", "multiclass", "regression")


FORMATS = ("csv", "tsv", "parquet", "folder")  # folder: class folders of images (automm.folders)


_SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: where (a key path such as ``search.pruner``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


class RecipeError(AutoMMError, ValueError):
    """A recipe that cannot be used; ``problems`` lists everything found, not just the first."""

    def __init__(self, problems: Iterable[Problem] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"recipe {self.source}" if self.source else "recipe"
        if len(self.problems) == 1:
            return f"{where}: {self.problems[0]}"
        lines = [f"{where}: {len(self.problems)} problems"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._format()


def join_path(path: str, key: Any) -> str:
    """The key path of ``key`` under ``path`` (``search`` + ``pruner`` → ``search.pruner``)."""
    return f"{path}.{key}" if path else str(key)


def show_value(value: Any) -> str:
    """How a found value is named in a message (YAML words for YAML values)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true (a boolean)" if value else "false (a boolean)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "...'"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{value!r} (a number)" if not isinstance(value, (int, np.integer)) else f"{value!r} (an integer)"
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _quoted(choices: Iterable[Any]) -> str:
    return ", ".join(repr(c) for c in choices)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and math.isnan(value))


class _Checker:
    """Collects problems while a recipe is walked."""

    def __init__(self, *, check_data: bool, base_dir: Path, registry: Any):
        self.problems: list[Problem] = []
        self.check_data = check_data
        self.base_dir = base_dir
        self.registry = registry
        self.columns: list[str] | None = None      # feature-or-label columns of the data, when known
        self.column_roles: dict[str, str] = {}

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def expected(self, path: str, expected: str, found: Any, choices: Iterable[Any] = (),
                 hint: Callable[[Any, Iterable[Any]], str] = did_you_mean) -> None:
        # YAML (and --set) read 2024, 1e3, no, off as numbers and booleans: a text must be quoted
        quote = ""
        if (not expected.startswith("one of") and any(w in expected for w in ("string", "name", "path", "text", "URL"))
                and isinstance(found, (bool, int, float))):
            example = "'...'" if isinstance(found, (bool, float)) else f"'{found}'"
            quote = (f" (YAML reads it as {'a boolean' if isinstance(found, bool) else 'a number'}: quote the text "
                     f"you meant, {example}, or --set {path}=\"{example}\")")
        self.report(path, f"expected {expected}, found {show_value(found)}{quote}{hint(found, choices)}")

    # -- typed checks: each returns True when the value is acceptable --------------------------
    def mapping(self, value: Any, path: str, allowed: Sequence[str] | None = None, *,
                null_ok: bool = True) -> bool:
        if value is None and null_ok:
            return True
        if not isinstance(value, Mapping):
            self.expected(path, "a mapping", value)
            return False
        ok = True
        for key in value:
            if not isinstance(key, str):
                self.report(join_path(path, key), f"keys must be strings, found {show_value(key)} (quote it in YAML)")
                ok = False
            elif allowed is not None and key not in allowed:
                hint = did_you_mean(key, allowed)
                if not hint and path in ("", *SECTION_KEYS):  # a key of another section: where it goes
                    elsewhere = recipe_key_path(key)
                    hint = f"; did you mean {elsewhere!r}?" if elsewhere not in (None, join_path(path, key)) else ""
                self.report(join_path(path, key), f"unknown key; expected one of: {', '.join(allowed)}{hint}")
                ok = False
        return ok

    def one_of(self, value: Any, path: str, choices: Sequence[Any], *, null_ok: bool = False,
               hint: Callable[[Any, Iterable[Any]], str] = did_you_mean) -> bool:
        """Whether ``value`` is one of ``choices``; else reported, with ``hint``'s word on it (a
        did-you-mean)."""
        if value is None and null_ok:
            return True
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value not in choices:
            self.expected(path, f"one of {_quoted(choices)}" + (" or null" if null_ok else ""), value, choices, hint)
            return False
        return True

    def integer(self, value: Any, path: str, *, minimum: int | None = None, maximum: int | None = None,
                null_ok: bool = False, extra: Sequence[Any] = ()) -> bool:
        if (value is None and null_ok) or (isinstance(value, str) and value in extra):
            return True
        if _is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
            return True
        if minimum is not None and maximum is not None:
            what = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        else:
            what = "an integer"
        alternatives = [repr(e) for e in extra] + (["null"] if null_ok else [])
        if alternatives:
            what += " or " + " or ".join(alternatives)
        self.expected(path, what, value, extra)
        return False

    def number(self, value: Any, path: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, null_ok: bool = False) -> bool:
        if value is None and null_ok:
            return True
        ok = _is_number(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if ok:
            return True
        if low is not None and high is not None:
            what = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low == 0 and low_open:
            what = "a positive number"
        elif low is not None:
            what = f"a number {'>' if low_open else '>='} {low:g}"
        else:
            what = "a number"
        self.expected(path, what + (" or null" if null_ok else ""), value)
        return False

    def string(self, value: Any, path: str, *, null_ok: bool = False, what: str = "a string") -> bool:
        if value is None and null_ok:
            return True
        if isinstance(value, str) and value.strip():
            return True
        self.expected(path, ("a non-empty " + what[2:] if what.startswith("a ") else what)
                      + (" or null" if null_ok else ""), value)
        return False

    def boolean(self, value: Any, path: str) -> bool:
        if isinstance(value, bool):
            return True
        self.expected(path, "true or false", value)
        return False

    def string_list(self, value: Any, path: str, what: str = "names") -> list[str] | None:
        if not isinstance(value, list) or not value:
            self.expected(path, f"a non-empty list of {what}", value)
            return None
        good = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                good.append(item)
            else:
                self.expected(f"{path}[{i}]", "a string", item)
        duplicates = sorted({v for v in good if good.count(v) > 1})
        if duplicates:
            self.report(path, f"duplicated entries {duplicates}")
        return good

    def column(self, name: str, path: str) -> bool:
        """``name`` is a column of the data (when the data's columns are known)."""
        if self.columns is None or name in self.columns:
            return True
        self.report(path, f"no column {name!r} in the data; columns are {shown_names(self.columns, plain=True)}"
                          f"{did_you_mean(name, self.columns)}")
        return False


def _sample_columns(name: str) -> list[str]:
    """Columns of the registered dataset ``name`` (declared by its plugin, else loaded)."""
    spec = _registry.get_registry().get("dataset", name)
    if spec.columns is not None:
        return list(spec.columns)
    return [str(c) for c in _registry.load_dataset(name).columns]


def _data_path(ck: _Checker, value: str) -> Path:
    file = Path(os.path.expanduser(value))
    return file if file.is_absolute() else ck.base_dir / file


def split_text(value: Any) -> str:
    """A split value as text, a whole number written without its ``.0`` (a fold column with an
    empty cell is read as floats, 0.0 and 1.0, and rows are matched by number: 0 is 0.0)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def split_texts(column: Any, missing: str | None = None) -> Any:
    """A pandas column's cells as :func:`split_text` writes them, a missing cell ``missing`` (None:
    equal to no value, and left out of counts): how ``fit``, ``--filter`` and the messages about
    split values read a split column."""
    from .data import is_missing

    return column.map(lambda v: missing if is_missing(v) else split_text(v)).astype(object)


def split_value_problems(found: Iterable[Any], data: Mapping) -> list[Problem]:
    """What is wrong with data.train_values, test_values and valid_values given the values
    ``found`` in the split column (compared as text): a value that no row has, as a problem
    at its key listing the values found (with a did-you-mean). The default train value
    ("train") is a problem only when no row has it; default test rows may be absent."""
    found = sorted({split_text(v) for v in found})
    shown = quoted_values(found)
    problems = []
    for key in ("train_values", "test_values", "valid_values"):
        given = data.get(key, "train" if key == "train_values" else None)
        if given is None:
            continue
        items = given if isinstance(given, list) else [given]
        absent = [split_text(v) for v in items if _is_scalar(v) and split_text(v) not in found]
        if absent:
            default = "" if key in data else " (the default train value; name yours in data.train_values)"
            problems.append(Problem(f"data.{key}", f"no rows of column {data.get('split_column')!r} have the value"
                                                   f"{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))}"
                                                   f"{default}; values found: {shown}{did_you_mean(absent[0], found)}"))
    return problems


def _split_values(ck: _Checker, data: Mapping, column: str) -> list[str] | None:
    """The values (as text) of the split column of data.sample or data.path; None when they
    cannot be read here (reading the rows reports why)."""
    fmt = data.get("format") if data.get("format") in FORMATS else None
    try:
        if data.get("sample") is not None:
            values = _registry.load_dataset(data["sample"])[column]
        else:
            file = _data_path(ck, data["path"])
            values = read_column(file, data_format(file, fmt), column)
        return values.unique().tolist()  # (as the values are: split_value_problems reads 0.0 as 0)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by load_data with its reason
        return None


def _check_files_dir(ck: _Checker, value: Any) -> None:
    """``data.files_dir``: a folder or a list of folders (existing ones, when the data are read)."""
    if value is None:
        return
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        ck.expected("data.files_dir", "a folder or a list of folders", value)
        return
    if ck.check_data:
        for item in items:
            folder = _data_path(ck, item)
            if not folder.is_dir():
                relative = "" if Path(item).is_absolute() else f" (relative paths are resolved against {ck.base_dir})"
                ck.report("data.files_dir", f"{'not a folder' if folder.exists() else 'folder not found'}: "
                                            f"{str(folder)!r}{relative}")


def _check_file(ck: _Checker, value: Any, path: str, fmt_declared: Any) -> list[str] | None:
    """Check a data file key; returns its columns when the file could be read."""
    if not ck.string(value, path, what="a file path"):
        return None
    file = _data_path(ck, value)
    fmt = data_format(file, fmt_declared if isinstance(fmt_declared, str) and fmt_declared in FORMATS else None)
    if fmt is None and not fmt_declared:
        ck.report(path, f"cannot tell the format of {value!r} from its name; set data.format to one of "
                        f"{_quoted(FORMATS)}")
    if fmt == "parquet" and parquet_engine() is None:
        ck.report(path, f"reading Parquet ({value!r}) needs the pyarrow package: pip install pyarrow")
        fmt = None
    if not ck.check_data:
        return None
    if (problem := url_problem(value)) is not None:
        ck.report(path, f"{value!r} is {problem}")
        return None
    if not file.exists():
        from .data import unicode_form_hint

        relative = "" if Path(value).is_absolute() else f" (relative paths are resolved against {ck.base_dir})"
        ck.report(path, f"file not found: {str(file)!r}{relative}{unicode_form_hint([str(file)])}")
        return None
    if fmt == "folder" and not file.is_dir():
        ck.expected(path, "a folder of images (data.format: folder)", f"{value} (a file)")
        return None
    if fmt != "folder" and not file.is_file():
        ck.expected(path, "a file", f"{value} (a directory)")
        return None
    if fmt is None:
        return None
    try:
        return read_header(file, fmt)
    except Exception as exc:  # noqa: BLE001 - any failure to read a user's file is a problem to report
        ck.report(path, f"cannot read the {fmt} header of {str(file)!r}: {type(exc).__name__}: {exc}")
        return None


def _check_data(ck: _Checker, data: Any, require: bool) -> None:
    path = "data"
    if data is None:
        if require:
            ck.report(path, "missing: give the data (data.sample, data.path, or data.train and data.test) and "
                            "data.label")
        return
    if not ck.mapping(data, path, SECTION_KEYS["data"], null_ok=False):
        if not isinstance(data, Mapping):
            return
    get = data.get
    sources = [k for k in ("sample", "path", "train") if get(k) is not None]
    # A data section holding only column types (as to_recipe writes for an estimator built
    # without data) names no data; that is fine unless data is needed.
    describes_data = require or any(k in data for k in ("sample", "path", "train", "test", "valid", "label",
                                                        "columns", "split_column", "train_values", "test_values",
                                                        "valid_values", "weight_column"))
    for key in ("test", "valid"):
        if get(key) is not None and get("train") is None:
            ck.report(f"data.{key}", f"needs data.train (to take {key} rows from one file, use data.path with "
                                     f"data.split_column and data.{key}_values)")
    if not describes_data:
        pass
    elif not sources:
        ck.report(path, "no data source: give one of data.sample, data.path, or data.train (with an optional "
                        "data.test)")
    elif len(sources) > 1:
        ck.report(path, f"give only one data source; found {', '.join('data.' + s for s in sources)}")
    fmt = get("format")
    if fmt is not None:
        ck.one_of(fmt, "data.format", FORMATS, null_ok=True)
    _check_files_dir(ck, get("files_dir"))

    columns: list[str] | None = None
    test_columns: list[str] | None = None
    if get("sample") is not None:
        samples = _registry.get_registry().names("dataset")
        if ck.one_of(get("sample"), "data.sample", samples):
            columns = _sample_columns(get("sample"))
    if get("path") is not None:
        columns = _check_file(ck, get("path"), "data.path", fmt)
    if get("train") is not None:
        columns = _check_file(ck, get("train"), "data.train", fmt)
    if get("test") is not None:
        test_columns = _check_file(ck, get("test"), "data.test", fmt)
    valid_columns = None
    if get("valid") is not None:
        valid_columns = _check_file(ck, get("valid"), "data.valid", fmt)
    ck.columns = columns

    label = get("label")
    if label is None and not describes_data:
        pass
    elif label is None:
        ck.report("data.label", "missing required key: the name of the label column")
    elif ck.string(label, "data.label", what="a column name"):
        ck.column(label, "data.label")
        if test_columns is not None and label not in test_columns:
            ck.report("data.test", f"the test file has no label column {label!r}; its columns are "
                                   f"{shown_names(test_columns, plain=True)}")
        if valid_columns is not None and label not in valid_columns:
            ck.report("data.valid", f"the validation file has no label column {label!r}; its columns are "
                                    f"{shown_names(valid_columns, plain=True)}")

    split_column = get("split_column")
    if split_column is not None:
        if get("train") is not None:
            ck.report("data.split_column", "applies to one file (data.path or data.sample), not to data.train")
        if ck.string(split_column, "data.split_column", what="a column name"):
            ck.column(split_column, "data.split_column")
            if split_column == label:
                ck.report("data.split_column", "is the label column")
    for key in ("train_values", "test_values", "valid_values"):
        value = get(key)
        if value is None:
            continue
        if split_column is None:
            ck.report(f"data.{key}", "needs data.split_column")
        items = value if isinstance(value, list) else [value]
        if not items or not all(_is_scalar(v) for v in items):
            ck.expected(f"data.{key}", "a value of the split column or a non-empty list of such values", value)
    values_flagged = any(p.path.startswith("data.") and p.path.endswith("_values") for p in ck.problems)
    if (ck.check_data and isinstance(split_column, str) and columns is not None and split_column in columns
            and split_column != label and get("train") is None and not values_flagged):
        found = _split_values(ck, data, split_column)
        if found is not None:
            ck.problems.extend(split_value_problems(found, data))
    # the defaults count: train_values [train, test] made the default test rows training rows too,
    # and the test score counted rows the model had trained on (emoji: 0.97 against 0.55)
    train_values = get("train_values", "train" if split_column is not None else None)
    test_values = get("test_values", "test" if split_column is not None else None)
    if isinstance(train_values, (str, int, float, list)) and isinstance(test_values, (str, int, float, list)):
        train_v = {split_text(v) for v in (train_values if isinstance(train_values, list)
                                    else [train_values]) if _is_scalar(v)}
        test_v = {split_text(v) for v in (test_values if isinstance(test_values, list)
                                   else [test_values]) if _is_scalar(v)}
        both = sorted(train_v & test_v)
        if both and get("test_values") is not None:
            ck.report("data.test_values", f"values {both} are also train values"
                      + ("" if get("train_values") is not None else " (data.train_values defaults to 'train')"))
        elif both:
            ck.report("data.train_values", f"values {both} are also the test values (data.test_values defaults to "
                                           "'test'): the test score would count rows the model trained on; name "
                                           "other test values in data.test_values, or, to fit on every row with no "
                                           "test set, leave data.split_column out and list the features in "
                                           "data.columns")
    if isinstance(get("valid_values"), (str, int, float, list)):
        valid_v = {split_text(v) for v in (get("valid_values") if isinstance(get("valid_values"), list)
                                    else [get("valid_values")]) if _is_scalar(v)}
        for key, default in (("train_values", "train"), ("test_values", "test")):
            other = get(key, default)
            other_v = {split_text(v) for v in (other if isinstance(other, list) else [other]) if _is_scalar(v)}
            if valid_v & other_v:
                ck.report("data.valid_values", f"values {sorted(valid_v & other_v)} are also "
                                               f"{key.split('_')[0]} values")

    weight_column = get("weight_column")
    if weight_column is not None and ck.string(weight_column, "data.weight_column", what="a column name"):
        ck.column(weight_column, "data.weight_column")
        if weight_column == label:
            ck.report("data.weight_column", "is the label column")
        elif weight_column == split_column:
            ck.report("data.weight_column", "is the split column")

    features = None
    if get("columns") is not None:
        features = ck.string_list(get("columns"), "data.columns", "column names")
        for i, name in enumerate(get("columns") if features is not None else []):
            if not isinstance(name, str) or not name:
                continue
            if ck.column(name, f"data.columns[{i}]"):
                if name == label:
                    ck.report(f"data.columns[{i}]", f"{name!r} is the label column (data.label)")
                elif name == split_column:
                    ck.report(f"data.columns[{i}]", f"{name!r} is the split column (data.split_column)")
                elif name == weight_column:
                    ck.report(f"data.columns[{i}]", f"{name!r} is the weight column (data.weight_column)")
                elif test_columns is not None and name not in test_columns:
                    ck.report(f"data.columns[{i}]", f"{name!r} is not in the test file")
                elif valid_columns is not None and name not in valid_columns:
                    ck.report(f"data.columns[{i}]", f"{name!r} is not in the validation file")

    known_roles = sorted(set(BASE_ROLES) | set(ck.registry.modalities()) - {"tabular"})
    column_types = get("column_types")
    if column_types is not None and ck.mapping(column_types, "data.column_types"):
        for name, role in column_types.items():
            if not isinstance(name, str):
                continue
            where = f"data.column_types.{name}"
            if ck.column(name, where):
                if name == label:
                    ck.report(where, f"{name!r} is the label column")
                elif features is not None and name not in features:
                    ck.report(where, f"{name!r} is not one of data.columns")
            if ck.one_of(role, where, known_roles):
                ck.column_roles[name] = role
    for key in ("max_rows", "min_class_rows"):
        if get(key) is not None:
            ck.integer(get(key), f"data.{key}", minimum=1, null_ok=True)
    if features is not None and ck.columns is not None:
        ck.columns = [c for c in ck.columns if c in features]
    elif ck.columns is not None:
        ck.columns = [c for c in ck.columns if c not in (label, split_column, weight_column)]


def _check_choice(ck: _Checker, kind: str, value: Any, path: str, modality: str | None,
                  allow_list: bool = True) -> None:
    """A component choice: a name, ``{name: ..., **hyperparameters}``, or a list of choices."""
    reg = ck.registry
    if isinstance(value, list) and allow_list:
        if not value:
            article = "an" if kind[0] in "aeiou" else "a"
            ck.report(path, f"expected {article} {kind} name or a non-empty list of choices, found an empty list")
        for i, item in enumerate(value):
            _check_choice(ck, kind, item, f"{path}[{i}]", modality, allow_list=False)
        return
    params: Mapping = {}
    name_path = path
    if isinstance(value, str):
        name = value
    elif isinstance(value, Mapping):
        name_path = join_path(path, "name")
        name = value.get("name")
        if not isinstance(name, str):
            ck.expected(name_path, f"a {kind} name", name, reg.names(kind, modality=modality))
            return
        params = {k: v for k, v in value.items() if k != "name"}
    else:
        what = f"a {kind} name, a mapping {{name: ..., hyperparameters}}"
        ck.expected(path, what + (" or a list of choices" if allow_list else ""), value)
        return
    from .exceptions import UnknownComponentError

    try:
        spec = reg.get(kind, name)
    except UnknownComponentError:  # reported below, with the modality's components first
        spec = None
    if spec is None:
        preferred = reg.names(kind, modality=modality) if modality else reg.names(kind)
        hint = did_you_mean(name, preferred) or did_you_mean(name, reg.names(kind))
        ck.report(name_path, f"unknown {kind} {name!r}; installed {kind}s"
                             f"{' for ' + repr(modality) if modality else ''}: {', '.join(preferred) or '(none)'}"
                             + (f"; {hint[2:]}" if hint else ""))
        return
    if kind == "encoder" and modality is not None and spec.modality != modality:
        ck.report(name_path, f"{kind} {name!r} encodes {spec.modality!r}, not {modality!r}; "
                             f"{modality!r} encoders: {', '.join(reg.names(kind, modality=modality)) or '(none)'}")
    accepted = spec.accepted_hyperparameters()
    named = True
    for key in params:
        if not isinstance(key, str):
            ck.report(join_path(path, key), f"hyperparameter names must be strings, found {show_value(key)}")
            named = False
        elif accepted is not None and key not in accepted:
            ck.report(join_path(path, key), f"unknown hyperparameter of {kind} {name!r}; expected one of: "
                                        f"{', '.join(accepted) or '(none)'}{did_you_mean(key, accepted)}")
            named = False
    if named and params:
        _check_values(ck, spec, params, path, modality)


def _check_values(ck: _Checker, spec: Any, params: Mapping[str, Any], path: str, modality: str | None) -> None:
    """The values a component is given, built with them as ``fit`` builds it before any work
    (:func:`automm.search_space.check_component_values`): what ``fit`` would refuse, said here."""
    from .data import InputSpec
    from .exceptions import InputError
    from .search_space import check_given_values

    if spec.kind == "encoder":
        if modality is None or modality == "tabular":  # (a table encoder needs the table's columns)
            return
        context = {"input_spec": InputSpec(f"{modality}_0", modality, ["column"], {"column": modality})}
    elif spec.kind == "fusion":
        context = {"input_dims": {"image_0": 8, "text_0": 8}}
    else:
        context = {}
    try:
        check_given_values(spec, params, "", **context)
    except InputError as exc:
        message = str(exc)
        key = re.match(r"\['([^']*)'\]: ", message)
        if key:
            ck.report(join_path(path, key.group(1)), message[key.end():])
        else:
            ck.report(path, message.lstrip(": "))


def _check_components(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "components", SECTION_KEYS["components"]) or section is None:
        if not isinstance(section, Mapping):
            return
    reg = ck.registry
    encoders = section.get("encoders")
    if encoders is not None and ck.mapping(encoders, "components.encoders"):
        modalities = reg.modalities()
        for key, choice in encoders.items():
            if not isinstance(key, str):
                continue
            path = f"components.encoders.{key}"
            if key in modalities:
                modality = key
            elif (ck.columns is None or key not in ck.columns) and (named := _input_modality(key, modalities)):
                modality = named  # an input as config_ names it (image_1)
            elif _unknown_encoder_key(ck, key, path, modalities):
                continue
            else:
                from .roles import modality_of_role

                role = ck.column_roles.get(key)
                modality = modality_of_role(role) if role else None
            _check_choice(ck, "encoder", choice, path, modality)
    if "fusion" in section:
        fusion = section["fusion"]
        if fusion is None:
            ck.expected("components.fusion", "a fusion name, a mapping {name: ..., hyperparameters} or a list of "
                                             "choices", fusion)
        else:
            _check_choice(ck, "fusion", fusion, "components.fusion", None)
    if "augmentations" in section:
        augs = section["augmentations"]
        if augs is None or augs == "default":
            pass
        elif isinstance(augs, list):
            for i, item in enumerate(augs):
                _check_choice(ck, "augmentation", item, f"components.augmentations[{i}]", None, allow_list=False)
        else:
            ck.expected("components.augmentations", "'default', null, or a list of augmentation names / "
                                                    "{name: ..., hyperparameters}", augs, ["default"])


def _check_problem(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "problem", SECTION_KEYS["problem"]) or section is None:
        if not isinstance(section, Mapping):
            return
    ptype = section.get("type", "auto")
    if "type" in section:
        ck.one_of(ptype, "problem.type", PROBLEM_TYPES)
    metric = section.get("metric")
    if metric is not None and ck.one_of(metric, "problem.metric", ("auto", *METRICS), hint=metric_name_hint):
        if ptype == "regression" and metric in CLASSIFICATION_METRICS:
            ck.report("problem.metric", f"{metric!r} is a classification metric but problem.type is regression; "
                                        f"use one of {_quoted(REGRESSION_METRICS)}")
        if ptype in ("binary", "multiclass") and metric in REGRESSION_METRICS:
            ck.report("problem.metric", f"{metric!r} is a regression metric but problem.type is {ptype}; "
                                        f"use one of {_quoted(CLASSIFICATION_METRICS)}")
        if ptype == "multiclass" and metric in BINARY_METRICS:
            ck.report("problem.metric", f"{metric!r} is the F1 score of a binary problem's positive class but "
                                        "problem.type is multiclass; use 'macro_f1' or 'weighted_f1'")


def _check_training(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "training", SECTION_KEYS["training"]) or section is None:
        if not isinstance(section, Mapping):
            return
    p = "training."
    checks: dict[str, Callable[[Any, str], Any]] = {
        "max_epochs": lambda v, path: ck.integer(v, path, minimum=1),
        "batch_size": lambda v, path: ck.integer(v, path, minimum=1, extra=("auto",)),
        "learning_rate": lambda v, path: ck.number(v, path, low=0, low_open=True),
        "weight_decay": lambda v, path: ck.number(v, path, low=0),
        "label_smoothing": lambda v, path: ck.number(v, path, low=0, high=1, high_open=True),
        "patience": lambda v, path: ck.integer(v, path, minimum=0),
        "holdout_frac": lambda v, path: ck.number(v, path, low=0, high=1, low_open=True, high_open=True),
        "head_dropout": lambda v, path: ck.number(v, path, low=0, high=1, high_open=True),
        "amp": lambda v, path: ck.boolean(v, path),
        "num_workers": lambda v, path: ck.integer(v, path, minimum=0, extra=("auto",)),
        "cache_dir": lambda v, path: ck.string(v, path, null_ok=True, what="a directory path"),
        "device": lambda v, path: _check_device(ck, v, path),
        "class_weight": lambda v, path: _check_class_weight(ck, v, path),
    }
    for key, value in section.items():
        if key in checks:
            checks[key](value, p + key)


def _check_device(ck: _Checker, value: Any, path: str) -> None:
    if value == "auto":
        return
    if isinstance(value, str) and value.strip():
        import torch

        try:
            torch.device(value)
            return
        except (RuntimeError, ValueError, TypeError):
            pass
    ck.expected(path, "'auto', 'cpu', 'cuda', 'cuda:N' or another torch device", value, ["auto", "cpu", "cuda"])


def _check_class_weight(ck: _Checker, value: Any, path: str) -> None:
    if value is None or value == "balanced":
        return
    if isinstance(value, Mapping):
        if not value:
            ck.expected(path, "null, 'balanced' or a non-empty mapping label -> weight", value)
        for label, weight in value.items():
            if not _is_scalar(label):
                ck.report(path, f"labels must be strings or numbers, found {show_value(label)}")
            elif not _is_number(weight) or weight < 0:  # as AutoMM(class_weight=...): 0 leaves a class out
                ck.expected(join_path(path, label), "a number >= 0", weight)
        return
    ck.expected(path, "null, 'balanced' or a mapping label -> weight", value, ["balanced"])


def _check_search(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "search", SECTION_KEYS["search"]) or section is None:
        if not isinstance(section, Mapping):
            return
    p = "search."
    checks: dict[str, Callable[[Any, str], Any]] = {
        "n_trials": lambda v, path: ck.integer(v, path, minimum=1, null_ok=True),
        "time_limit": lambda v, path: ck.number(v, path, low=0, low_open=True, null_ok=True),
        "sampler": lambda v, path: ck.one_of(v, path, SAMPLERS),
        "pruner": lambda v, path: ck.one_of(v, path, PRUNERS, null_ok=True),
        "storage": lambda v, path: ck.string(v, path, null_ok=True, what="a storage URL"),
        "study_name": lambda v, path: ck.string(v, path, null_ok=True),
        "n_jobs": lambda v, path: _check_n_jobs(ck, v, path),
        "ensemble_size": lambda v, path: ck.integer(v, path, minimum=1, extra=("auto",)),
        "bag_folds": lambda v, path: ck.integer(v, path, minimum=1, extra=("auto",)),
        "objectives": lambda v, path: _check_objectives(ck, v, path),
        "search_space": lambda v, path: ck.mapping(v, path),
    }
    for key, value in section.items():
        if key in checks:
            checks[key](value, p + key)


def _check_n_jobs(ck: _Checker, value: Any, path: str) -> None:
    if value is None or (_is_int(value) and (value >= 1 or value == -1)):
        return
    ck.expected(path, "a positive integer, -1 for one per CPU, or null for 1", value)


def _check_objectives(ck: _Checker, value: Any, path: str) -> None:
    if value == "score":
        return
    second = [o for o in OBJECTIVES if o != "score"]
    if isinstance(value, list) and 1 <= len(value) <= 2:
        for i, name in enumerate(value):
            if i == 0 and name != "score":
                ck.expected(f"{path}[0]", "'score' (the first objective)", name, ["score"])
            elif i == 1 and name not in second:
                ck.expected(f"{path}[1]", f"one of {_quoted(second)}", name, second)
        return
    ck.expected(path, f"'score' or a list [score, {' | '.join(second)}]", value, ["score"])


def _check_output(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "output", SECTION_KEYS["output"]) or section is None:
        if not isinstance(section, Mapping):
            return
    for key in ("dir", "plot_dir"):
        if key in section and ck.string(section[key], f"output.{key}", null_ok=True, what="a directory path"):
            if (problem := url_problem(section[key], writing=True)) is not None:
                ck.report(f"output.{key}", f"{section[key]!r} is {problem}")
    if "overwrite" in section:
        ck.boolean(section["overwrite"], "output.overwrite")
    if "verbose" in section:
        ck.integer(section["verbose"], "output.verbose", minimum=0, maximum=3)


def check_recipe(recipe: Mapping, *, check_data: bool, require_data: bool, base_dir: Path,
                 known: Sequence[Problem] = ()) -> list[Problem]:
    """Every problem of ``recipe`` (a mapping, overrides and environment variables applied);
    ``check_data`` reads the data files' headers (relative paths against ``base_dir``),
    ``require_data`` makes the data section mandatory. ``known`` problems (e.g. unset
    environment variables) are kept, first, and the others at their key paths left out (the value
    there is the reference as written, such as ``'${EPOCHS}'``: not what the recipe meant)."""
    ck = _Checker(check_data=check_data, base_dir=base_dir, registry=_registry.get_registry())
    ck.problems.extend(known)
    ck.mapping(recipe, "", TOP_KEYS, null_ok=False)
    if "version" in recipe:
        ck.one_of(recipe["version"], "version", (RECIPE_VERSION,))
    if "description" in recipe and recipe["description"] is not None and not isinstance(recipe["description"], str):
        ck.expected("description", "a string", recipe["description"])
    if "seed" in recipe:
        ck.integer(recipe["seed"], "seed", minimum=0, maximum=_SEED_MAX, null_ok=True)
    _check_data(ck, recipe.get("data"), require_data)
    _check_problem(ck, recipe.get("problem"))
    _check_components(ck, recipe.get("components"))
    _check_training(ck, recipe.get("training"))
    _check_search(ck, recipe.get("search"))
    _check_search_space_inputs(ck, recipe.get("search"))
    _check_output(ck, recipe.get("output"))
    _check_with_estimator(ck, recipe)
    said = {problem.path for problem in known}
    return [*known, *(problem for problem in ck.problems[len(known):] if problem.path not in said)]


def _check_search_space_inputs(ck: _Checker, section: Any) -> None:
    """The keys of ``search.search_space.encoders`` name modalities, inputs (``image_1``) or
    feature columns, as ``components.encoders``' do (``fit`` refuses others: said here), and the
    choices of an input or of a column whose role ``data.column_types`` gives encode its modality
    (a modality's are checked with the rest of the space, :func:`_check_with_estimator`)."""
    from .roles import modality_of_role

    space = section.get("search_space") if isinstance(section, Mapping) else None
    encoders = space.get("encoders") if isinstance(space, Mapping) else None
    if not isinstance(encoders, Mapping):
        return
    modalities = ck.registry.modalities()
    for key, choices in encoders.items():
        if not isinstance(key, str) or key in modalities:
            continue
        path = f"search.search_space.encoders.{key}"
        named = _input_modality(key, modalities) if ck.columns is None or key not in ck.columns else None
        if named is None and _unknown_encoder_key(ck, key, path, modalities):
            continue
        role = ck.column_roles.get(key) if named is None else None
        modality = named or (modality_of_role(role) if role else None)
        if modality is not None:
            why = f" (data.column_types.{key}: {role!r})" if role else ""
            _check_choice_modalities(ck, choices, path, modality, why)


def _check_choice_modalities(ck: _Checker, choices: Any, path: str, modality: str, why: str) -> None:
    """Report at ``path`` each encoder of a search space's ``choices`` (a name, a list, a mapping
    name -> parameter specs) that encodes another modality than ``modality``; names that are not
    encoders, and malformed choices, are said by the space's own check."""
    from .exceptions import UnknownComponentError
    from .search_space import _parsed_choices

    try:
        names = list(_parsed_choices(choices, path, lambda name: name))
    except InputError:
        return
    for name in names:
        try:
            spec = ck.registry.get("encoder", name)
        except (UnknownComponentError, TypeError):
            continue
        if spec.modality != modality:
            others = ", ".join(ck.registry.names("encoder", modality=modality)) or "(none)"
            ck.report(path, f"encoder {name!r} encodes {spec.modality!r}, not {modality!r}{why}; {modality!r} "
                            f"encoders: {others}")


def _input_modality(key: str, modalities: Sequence[str]) -> str | None:
    """The modality of ``key`` when it names an input as ``config_`` does (``image_1``; fit checks
    that it is one), else None."""
    match = re.fullmatch(r"([a-z][a-z0-9_-]*)_\d+", key)
    return match.group(1) if match and match.group(1) in modalities and match.group(1) != "tabular" else None


def _unknown_encoder_key(ck: _Checker, key: str, path: str, modalities: Sequence[str]) -> bool:
    """Report ``key`` of an ``encoders`` mapping at ``path`` when it names no feature column (the
    data's columns known); True when reported."""
    if ck.columns is None or key in ck.columns:
        return False
    ck.report(path, f"{key!r} is neither a modality ({', '.join(modalities)}) nor a feature column "
                    f"({', '.join(ck.columns)}){did_you_mean(key, list(modalities) + list(ck.columns))}")
    return True


_MESSAGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])*)\s*:\s*(.*)$", re.S)


def _check_with_estimator(ck: _Checker, recipe: Mapping) -> None:
    """AutoMM's own parameter checks (and the search's, e.g. the ``search_space`` format and
    storage URLs) on the parameters the checks above accepted; each failure is reported at its
    key path and the check repeats without that parameter, so that all are found."""
    from .estimator import AutoMM

    flagged = [p.path for p in ck.problems]
    params = {}
    for param, path in PARAM_PATHS.items():
        found, value = get_key_path(recipe, path)
        if found and not any(f == path or f.startswith(path + ".") or f.startswith(path + "[") for f in flagged):
            params[param] = value
    params["device"] = "cpu"  # whether a GPU is there is for fit to say, on the machine that runs it
    for _ in range(len(PARAM_PATHS)):
        try:
            AutoMM(**params)._validate_params()
            return
        except (InputError, TypeError, ValueError) as exc:
            message = str(exc)
            match = _MESSAGE_RE.match(message)
            name = match.group(1) if match else None
            if name not in PARAM_PATHS:
                ck.report("", message)
                return
            subscripts = re.findall(r"\[\s*'?\"?([^\]'\"]*)'?\"?\s*\]", match.group(2))
            ck.report(".".join([PARAM_PATHS[name], *subscripts]), _with_suggestions(match.group(3)))
            if name not in params:
                return
            del params[name]


def _with_suggestions(message: str) -> str:
    """Adds "did you mean" to a message of the form "unknown keys [...]; expected some of [...]"."""
    import ast

    match = re.search(r"unknown keys (\[.*?\]); expected (?:some |one )?of (\[.*?\])", message)
    if not match or "did you mean" in message:  # (the message may carry its own already)
        return message
    try:
        unknown, expected = ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return message
    hints = [(key, close) for key in unknown if (close := close_match(key, expected)) is not None]
    if len(hints) == 1 and len(unknown) == 1:  # as every other hint reads
        return message + f"; did you mean {hints[0][1]!r}?"
    return message + (f"; did you mean {', '.join(f'{close!r} for {key!r}' for key, close in hints)}?" if hints else "")


def get_key_path(mapping: Mapping, path: str) -> tuple[bool, Any]:
    """(found, value) at the dotted key ``path`` of a nested mapping."""
    node: Any = mapping
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def set_key_path(mapping: dict, path: str, value: Any) -> None:
    """Set the dotted key ``path`` of a nested dict, creating the mappings on the way."""
    keys = path.split(".")
    node = mapping
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
