"""YAML recipes: the data, the problem, the components, the training, the search and the output
of one ``fit``, in a file a team keeps in version control.

A recipe is a mapping of sections (every key optional unless marked *required*)::

    version: 1                      # recipe format version
    description: free text
    data:                           # one source: sample | path | train (+ test)
      sample: emoji                 #   a registered sample dataset (automm.list_datasets())
      path: data.csv                #   one CSV/TSV/Parquet file (relative to the recipe's folder)
      train: train.csv              #   or separate files
      test: test.csv
      valid: valid.csv              #   optional validation data (fit's X_val, y_val) instead of a random holdout
      format: csv                   # csv | tsv | parquet (else from the file name)
      label: category               # *required*: the label column
      columns: [image, name]        # feature columns (default: all but label, split and weight columns)
      column_types: {image: image}  # role per column (image, text, numeric, categorical, plugin modality)
      split_column: split           # take train/test rows from one file by this column ...
      train_values: [train]         # ... rows whose value is one of these train (default "train")
      test_values: [test]           # ... and these test (default "test"; other rows are ignored)
      valid_values: [valid]         # ... and these validation (fit's X_val, y_val; default: none)
      weight_column: weight         # each row's sample weight (fit's sample_weight; test metrics weighted)
      min_class_rows: 30            # drop classes with fewer training rows (from train and test)
      max_rows: 1000                # a fixed random subsample of at most this many train (and test) rows
    problem:
      type: auto                    # auto | binary | multiclass | regression
      metric: accuracy              # what trials are ranked by, predict's decision rule targets and
                                    #   the test metric reported: auto, accuracy, balanced_accuracy,
                                    #   macro_f1, weighted_f1, f1 (binary) (classification); r2,
                                    #   rmse, mae (regression)
    components:
      encoders:                     # per modality or column: a name, {name: ..., hyperparameters},
        image: {name: cnn, width: 16}   # or a list of such choices for the search
        text: [hashed_ngram, gru]
      fusion: concat                # a name, {name: ..., ...} or a list of choices
      augmentations: default        # default | null | list of names / {name: ..., ...}
    training:                       # max_epochs, batch_size, learning_rate, weight_decay, label_smoothing,
      max_epochs: 10                #   patience, holdout_frac, class_weight, head_dropout, device, amp,
                                    #   num_workers, cache_dir
    search:                         # n_trials, time_limit, sampler, pruner, storage, study_name, n_jobs,
      n_trials: 20                  #   ensemble_size, bag_folds, objectives, search_space
    output:
      dir: models/emoji             # model directory (relative to the current directory)
      plot_dir: null                # search plots
      verbose: 1
    seed: 0                         # random_state

Every :class:`~automm.AutoMM` constructor parameter has one key (:data:`PARAM_PATHS`); ``data``
and ``output.dir`` are the recipe's own. Relative data paths are resolved
against the recipe file's folder (the current directory for a recipe given as a dict); relative
image paths inside the data against the data file's folder, else the recipe's folder. Output
paths (``output.dir``, ``output.plot_dir``, ``training.cache_dir``) and storage URLs are used as
given, i.e. relative to the current directory.

String values may reference environment variables: ``${NAME}`` or ``${NAME:-default}``
(``$${`` writes a literal ``${``). Recipes are read with ``yaml.safe_load`` only.

Validation happens before any work and reports every problem at once, each with its key path,
what was expected and what was found, and a "did you mean ..." for misspelled keys, choices and
component names (those of installed plugins included): :class:`RecipeError`.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .exceptions import AutoMMError, InputError
from . import registry as _registry
from .roles import BASE_ROLES
from .training import BINARY_METRICS, CLASSIFICATION_METRICS, REGRESSION_METRICS

__all__ = [
    "RecipeError", "Problem", "Recipe", "RecipeData", "FitResult", "PARAM_PATHS", "SECTION_KEYS", "METRICS",
    "SAMPLERS", "PRUNERS", "load_recipe", "validate_recipe", "read_recipe_file", "apply_overrides",
    "from_recipe", "from_recipe_with_data", "to_recipe", "fit_recipe", "compute_metrics", "read_table",
    "resolve_image_paths", "dump_recipe", "positive_class",
]

RECIPE_VERSION = 1

#: AutoMM constructor parameter → its key path in a recipe. Every parameter must be here
#: (a test compares this with ``AutoMM().get_params()``), and :func:`to_recipe` refuses
#: a parameter it cannot place.
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

#: The keys each section accepts, in the order :func:`to_recipe` writes them.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("sample", "path", "train", "test", "valid", "format", "label", "columns", "column_types",
             "split_column", "train_values", "test_values", "valid_values", "weight_column", "min_class_rows",
             "max_rows"),
    "problem": ("type", "metric"),
    "components": ("encoders", "fusion", "augmentations"),
    "training": ("max_epochs", "batch_size", "learning_rate", "weight_decay", "label_smoothing", "patience",
                 "holdout_frac", "class_weight", "head_dropout", "device", "amp", "num_workers", "cache_dir"),
    "search": ("n_trials", "time_limit", "sampler", "pruner", "storage", "study_name", "n_jobs", "ensemble_size",
               "bag_folds", "objectives", "search_space"),
    "output": ("dir", "plot_dir", "verbose"),
}
TOP_KEYS = ("version", "description", "data", "problem", "components", "training", "search", "output", "seed")
SCALAR_TOP_KEYS = ("version", "description", "seed")

METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
PROBLEM_TYPES = ("auto", "binary", "multiclass", "regression")
try:  # the search's own lists, when this automm has the search
    from .search import OBJECTIVES, PRUNERS, SAMPLERS
except ImportError:  # pragma: no cover
    SAMPLERS = ("tpe", "random", "cmaes", "nsgaii")
    PRUNERS = ("median", "hyperband", "successive_halving", "none")
    OBJECTIVES = ("score", "latency", "params")
FORMATS = ("csv", "tsv", "parquet", "folder")  # folder: class folders of images (automm.folders)
_SEED_MAX = 2**32 - 1


# ---------------------------------------------------------------------------------- errors
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


# ---------------------------------------------------------------------------------- helpers
def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: Any) -> str:
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


def _close_match(found: Any, candidates: Iterable[Any]) -> str | None:
    """The candidate name ``found`` is most likely a misspelling, other case or abbreviation of."""
    if not isinstance(found, str):
        return None
    names = [c for c in candidates if isinstance(c, str)]
    close = difflib.get_close_matches(found, names, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in names}
        if found.lower() in lowered:
            close = [lowered[found.lower()]]
        elif len(found) >= 2:  # an abbreviation of exactly one candidate
            starts = [c for c in names if c.lower().startswith(found.lower())]
            close = starts if len(starts) == 1 else []
    return close[0] if close else None


def _suggest(found: Any, candidates: Iterable[Any]) -> str:
    close = _close_match(found, candidates)
    return f"; did you mean {close!r}?" if close is not None else ""


def _quoted(choices: Iterable[Any]) -> str:
    return ", ".join(repr(c) for c in choices)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


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

    def expected(self, path: str, expected: str, found: Any, choices: Iterable[Any] = ()) -> None:
        self.report(path, f"expected {expected}, found {_show(found)}{_suggest(found, choices)}")

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
                self.report(_join(path, key), f"keys must be strings, found {_show(key)} (quote it in YAML)")
                ok = False
            elif allowed is not None and key not in allowed:
                self.report(_join(path, key), f"unknown key; expected one of: {', '.join(allowed)}"
                                              f"{_suggest(key, allowed)}")
                ok = False
        return ok

    def one_of(self, value: Any, path: str, choices: Sequence[Any], *, null_ok: bool = False) -> bool:
        if value is None and null_ok:
            return True
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value not in choices:
            self.expected(path, f"one of {_quoted(choices)}" + (" or null" if null_ok else ""), value, choices)
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
        self.report(path, f"no column {name!r} in the data; columns are {', '.join(self.columns)}"
                          f"{_suggest(name, self.columns)}")
        return False


# ---------------------------------------------------------------------------------- loading
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(value, Mapping):
        return {k: _interpolate(v, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is None or (found == "" and default is not None):
            if default is not None:
                return default
            problems.append(Problem(path, f"environment variable {name} is not set (referenced as ${{{name}}}); "
                                          f"set it, or give the value with --set {path}=..."))
            return match.group(0)
        return found
    return _ENV_RE.sub(substitute, value)


def _escape_env(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _escape_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_env(v) for v in value]
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def read_recipe_file(path: str | os.PathLike) -> dict:
    """The mapping in a YAML recipe file (``yaml.safe_load``), or :class:`RecipeError`."""
    import yaml

    source = str(path)
    file = Path(path)
    if not file.exists():
        raise RecipeError(f"file {source!r} not found", source=None)
    if not file.is_file():
        raise RecipeError(f"{source!r} is not a file", source=None)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read {source!r}: {exc}", source=None) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise RecipeError(f"not valid YAML{where}: {detail}", source=source) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. an out-of-range timestamp
        raise RecipeError(f"not valid YAML: {exc}", source=source) from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise RecipeError(f"expected a mapping of sections ({', '.join(TOP_KEYS)}), found {_show(content)}",
                          source=source)
    return content


def _parse_override(item: str) -> tuple[list[str], Any]:
    import yaml

    if not isinstance(item, str) or "=" not in item:
        raise RecipeError([Problem("--set", f"expected KEY.PATH=VALUE, found {item!r}")])
    key, raw = item.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".")]
    if not all(keys):
        raise RecipeError([Problem("--set", f"expected KEY.PATH=VALUE with a key path such as "
                                            f"training.max_epochs, found {item!r}")])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(recipe: Mapping, overrides: Iterable[str]) -> dict:
    """A copy of ``recipe`` with each ``key.path=value`` set (values read as YAML:
    ``3``, ``true``, ``null``, ``[a, b]``, ``{name: cnn}``, else a string)."""
    result = copy.deepcopy(dict(recipe))
    problems = []
    for item in overrides or ():
        try:
            keys, value = _parse_override(item)
        except RecipeError as exc:
            problems.extend(exc.problems)
            continue
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                problems.append(Problem(".".join(keys), f"cannot set it: {where} is {_show(child)}, not a mapping"))
                break
            node = child
        else:
            node[keys[-1]] = value
    if problems:
        raise RecipeError(problems)
    return result


# ---------------------------------------------------------------------------------- data checks
def _data_format(file: Path, declared: str | None) -> str | None:
    if declared:
        return declared
    if file.is_dir():
        return "folder"
    suffixes = [s.lower() for s in file.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    return {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}.get(last)


def _parquet_engine() -> str | None:
    import importlib.util

    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    return None


def _header(file: Path, fmt: str) -> list[str]:
    import pandas as pd

    if fmt == "folder":
        from .folders import folder_columns

        return folder_columns(file)
    if fmt == "parquet":
        if _parquet_engine() == "pyarrow":
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(str(file)).names]
        return [str(c) for c in pd.read_parquet(file).columns]
    frame = pd.read_csv(file, nrows=0, sep="\t" if fmt == "tsv" else ",")
    return [str(c) for c in frame.columns]


def _sample_columns(name: str) -> list[str]:
    """Columns of the registered dataset ``name`` (declared by its plugin, else loaded)."""
    spec = _registry.get_registry().get("dataset", name)
    if spec.columns is not None:
        return list(spec.columns)
    return [str(c) for c in _registry.load_dataset(name).columns]


def _check_file(ck: _Checker, value: Any, path: str, fmt_declared: Any) -> list[str] | None:
    """Check a data file key; returns its columns when the file could be read."""
    if not ck.string(value, path, what="a file path"):
        return None
    file = Path(os.path.expanduser(value))
    if not file.is_absolute():
        file = ck.base_dir / file
    fmt = _data_format(file, fmt_declared if isinstance(fmt_declared, str) and fmt_declared in FORMATS else None)
    if fmt is None and not fmt_declared:
        ck.report(path, f"cannot tell the format of {value!r} from its name; set data.format to one of "
                        f"{_quoted(FORMATS)}")
    if fmt == "parquet" and _parquet_engine() is None:
        ck.report(path, f"reading Parquet ({value!r}) needs the pyarrow package: pip install pyarrow")
        fmt = None
    if not ck.check_data:
        return None
    if not file.exists():
        relative = "" if Path(value).is_absolute() else f" (relative paths are resolved against {ck.base_dir})"
        ck.report(path, f"file not found: {str(file)!r}{relative}")
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
        return _header(file, fmt)
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
                                   f"{', '.join(test_columns)}")
        if valid_columns is not None and label not in valid_columns:
            ck.report("data.valid", f"the validation file has no label column {label!r}; its columns are "
                                    f"{', '.join(valid_columns)}")

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
    if isinstance(get("train_values"), (str, int, float, list)) and isinstance(get("test_values"),
                                                                               (str, int, float, list)):
        train_v = {str(v) for v in (get("train_values") if isinstance(get("train_values"), list)
                                    else [get("train_values")]) if _is_scalar(v)}
        test_v = {str(v) for v in (get("test_values") if isinstance(get("test_values"), list)
                                   else [get("test_values")]) if _is_scalar(v)}
        if train_v & test_v:
            ck.report("data.test_values", f"values {sorted(train_v & test_v)} are also train values")
    if isinstance(get("valid_values"), (str, int, float, list)):
        valid_v = {str(v) for v in (get("valid_values") if isinstance(get("valid_values"), list)
                                    else [get("valid_values")]) if _is_scalar(v)}
        for key, default in (("train_values", "train"), ("test_values", "test")):
            other = get(key, default)
            other_v = {str(v) for v in (other if isinstance(other, list) else [other]) if _is_scalar(v)}
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


# ---------------------------------------------------------------------------------- component checks
def _accepted_hyperparameters(spec: Any) -> list[str] | None:
    """Keyword arguments the component's factory accepts (None: anything)."""
    try:
        signature = inspect.signature(spec.factory)
    except (TypeError, ValueError):
        return None
    names = []
    skip = 2 if spec.kind == "fusion" else 0
    for i, param in enumerate(signature.parameters.values()):
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if param.kind is inspect.Parameter.VAR_POSITIONAL or i < skip:
            continue
        names.append(param.name)
    if spec.kind == "encoder" and spec.modality == "tabular":
        names = [n for n in names if n != "column_roles"]  # given by automm from the data
    return sorted(set(names) | set(spec.defaults))


def _check_choice(ck: _Checker, kind: str, value: Any, path: str, modality: str | None,
                  allow_list: bool = True) -> None:
    """A component choice: a name, ``{name: ..., **hyperparameters}``, or a list of choices."""
    reg = ck.registry
    if isinstance(value, list) and allow_list:
        if not value:
            ck.expected(path, f"a {kind} name or a non-empty list of choices", value)
        for i, item in enumerate(value):
            _check_choice(ck, kind, item, f"{path}[{i}]", modality, allow_list=False)
        return
    params: Mapping = {}
    name_path = path
    if isinstance(value, str):
        name = value
    elif isinstance(value, Mapping):
        name_path = _join(path, "name")
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
        hint = _suggest(name, preferred) or _suggest(name, reg.names(kind))
        ck.report(name_path, f"unknown {kind} {name!r}; installed {kind}s"
                             f"{' for ' + repr(modality) if modality else ''}: {', '.join(preferred) or '(none)'}"
                             + (f"; {hint[2:]}" if hint else ""))
        return
    if kind == "encoder" and modality is not None and spec.modality != modality:
        ck.report(name_path, f"{kind} {name!r} encodes {spec.modality!r}, not {modality!r}; "
                             f"{modality!r} encoders: {', '.join(reg.names(kind, modality=modality)) or '(none)'}")
    accepted = _accepted_hyperparameters(spec)
    for key in params:
        if not isinstance(key, str):
            ck.report(_join(path, key), f"hyperparameter names must be strings, found {_show(key)}")
        elif accepted is not None and key not in accepted:
            ck.report(_join(path, key), f"unknown hyperparameter of {kind} {name!r}; expected one of: "
                                        f"{', '.join(accepted) or '(none)'}{_suggest(key, accepted)}")


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
            elif ck.columns is not None and key not in ck.columns:
                candidates = list(modalities) + list(ck.columns)
                ck.report(path, f"{key!r} is neither a modality ({', '.join(modalities)}) nor a feature column "
                                f"({', '.join(ck.columns)}){_suggest(key, candidates)}")
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


# ---------------------------------------------------------------------------------- section checks
def _check_problem(ck: _Checker, section: Any) -> None:
    if not ck.mapping(section, "problem", SECTION_KEYS["problem"]) or section is None:
        if not isinstance(section, Mapping):
            return
    ptype = section.get("type", "auto")
    if "type" in section:
        ck.one_of(ptype, "problem.type", PROBLEM_TYPES)
    metric = section.get("metric")
    if metric is not None and ck.one_of(metric, "problem.metric", ("auto", *METRICS)):
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
                ck.report(path, f"labels must be strings or numbers, found {_show(label)}")
            elif not _is_number(weight) or weight <= 0:
                ck.expected(_join(path, label), "a positive number", weight)
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
    if _is_int(value) and (value >= 1 or value == -1):
        return
    ck.expected(path, "a positive integer, or -1 for one per CPU", value)


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
    if "dir" in section:
        ck.string(section["dir"], "output.dir", null_ok=True, what="a directory path")
    if "plot_dir" in section:
        ck.string(section["plot_dir"], "output.plot_dir", null_ok=True, what="a directory path")
    if "verbose" in section:
        ck.integer(section["verbose"], "output.verbose", minimum=0, maximum=3)


def _check(recipe: Mapping, *, check_data: bool, require_data: bool, base_dir: Path,
           known: Sequence[Problem] = ()) -> list[Problem]:
    """``known`` problems (e.g. unset environment variables) are kept, first."""
    from . import registry as _registry

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
    _check_output(ck, recipe.get("output"))
    _check_with_estimator(ck, recipe)
    return ck.problems


_MESSAGE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])*)\s*:\s*(.*)$", re.S)


def _check_with_estimator(ck: _Checker, recipe: Mapping) -> None:
    """AutoMM's own parameter checks (and the search's, e.g. the ``search_space`` format and
    storage URLs) on the parameters the checks above accepted; each failure is reported at its
    key path and the check repeats without that parameter, so that all are found."""
    from .estimator import AutoMM

    flagged = [p.path for p in ck.problems]
    params = {}
    for param, path in PARAM_PATHS.items():
        found, value = _get(recipe, path)
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
    if not match:
        return message
    try:
        unknown, expected = ast.literal_eval(match.group(1)), ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return message
    hints = [f"{key!r} → {_suggest(key, expected)[len('; did you mean '):-1]}" for key in unknown
             if _suggest(key, expected)]
    return message + (f"; did you mean {', '.join(hints)}?" if hints else "")


# ---------------------------------------------------------------------------------- the Recipe
def _get(mapping: Mapping, path: str) -> tuple[bool, Any]:
    node: Any = mapping
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _set(mapping: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node = mapping
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


@dataclass
class Recipe:
    """A validated recipe: ``content`` (the mapping, overrides and environment variables
    applied), where it came from, and what it asks for."""

    content: dict
    source: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def name(self) -> str:
        if self.source:
            return Path(self.source).name.rsplit(".", 1)[0]
        return "recipe"

    def section(self, name: str) -> dict:
        value = self.content.get(name)
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def label(self) -> str | None:
        return self.section("data").get("label")

    @property
    def metric(self) -> str | None:
        """``problem.metric`` when the recipe names one (not "auto")."""
        metric = self.section("problem").get("metric")
        return None if metric == "auto" else metric

    @property
    def output_dir(self) -> str | None:
        value = self.section("output").get("dir")
        return os.path.expanduser(value) if isinstance(value, str) else None

    def params(self) -> dict:
        """The AutoMM constructor arguments the recipe sets (absent keys keep AutoMM's defaults)."""
        params = {}
        for param, path in PARAM_PATHS.items():
            found, value = _get(self.content, path)
            if found:
                params[param] = copy.deepcopy(value)
        return params

    def estimator(self, cls: type | None = None):
        """An unfitted estimator (``cls``, default :class:`~automm.AutoMM`) with the recipe's parameters."""
        if cls is None:
            from .estimator import AutoMM as cls  # noqa: N813
        estimator = cls(**self.params())
        estimator._recipe_context = self._context()
        return estimator

    def _context(self) -> dict:
        """What a recipe holds beyond the estimator's parameters (for :func:`to_recipe`),
        with data paths made absolute so that the recipe works from anywhere."""
        context: dict = {}
        if isinstance(self.content.get("description"), str):
            context["description"] = self.content["description"]
        data = self.section("data")
        if data:
            data = copy.deepcopy(data)
            for key in ("path", "train", "test", "valid"):
                if isinstance(data.get(key), str):
                    data[key] = str(self._data_file(data[key]))
            data.pop("column_types", None)  # a parameter, written from the estimator
            context["data"] = data
        if self.metric is not None:
            context["metric"] = self.metric
        if self.output_dir is not None:
            context["output_dir"] = os.path.abspath(self.output_dir)
        return context

    def _data_file(self, value: str) -> Path:
        return Path(os.path.abspath(self.base_dir / os.path.expanduser(value)))

    def describe(self) -> list[tuple[str, str]]:
        """(what, value) rows summarising the recipe, for ``automm validate``."""
        data = self.section("data")
        rows = []
        if data.get("sample"):
            rows.append(("data", f"sample dataset {data['sample']!r}"))
        for key in ("path", "train", "test", "valid"):
            if data.get(key):
                rows.append((f"data.{key}", str(self._data_file(data[key]))))
        if data.get("split_column"):
            rows.append(("split", f"column {data['split_column']!r}: train {data.get('train_values', 'train')!r}, "
                                  f"test {data.get('test_values', 'test')!r}"
                                  + (f", validation {data['valid_values']!r}" if data.get("valid_values") else "")))
        if data.get("label"):
            rows.append(("label", str(data["label"])))
        if data.get("weight_column"):
            rows.append(("sample weights", f"column {data['weight_column']!r}"))
        params = self.params()
        rows.append(("problem", str(params.get("problem_type", "auto"))
                     + (f", metric {self.metric}" if self.metric else "")))
        for key in ("encoders", "fusion", "augmentations"):
            if key in params:
                rows.append((key, _inline(params[key])))
        search = {k: params[k] for k in ("n_trials", "time_limit", "sampler", "pruner", "storage", "study_name",
                                          "n_jobs", "ensemble_size", "bag_folds", "objectives") if k in params}
        if search:
            rows.append(("search", ", ".join(f"{k}={_inline(v)}" for k, v in search.items())))
        if self.output_dir:
            rows.append(("output", self.output_dir))
        if "random_state" in params:
            rows.append(("seed", str(params["random_state"])))
        return rows

    # -- data --------------------------------------------------------------------------------
    def load_data(self) -> "RecipeData":
        """Read the recipe's data: train (and test) features and labels, image paths resolved."""
        data = self.section("data")
        if not data:
            raise RecipeError([Problem("data", "missing: this needs data (data.sample, data.path or data.train, "
                                               "and data.label)")], self.source)
        label = data["label"]
        fmt = data.get("format")
        train = test = valid = None
        folder = self.base_dir
        if data.get("sample"):
            frame = _registry.load_dataset(data["sample"])
            what = f"the {data['sample']} sample dataset"
        elif data.get("path"):
            file = self._data_file(data["path"])
            frame, folder = read_table(file, fmt), file.parent
            what = str(file)
        else:
            file = self._data_file(data["train"])
            train, folder = read_table(file, fmt), file.parent
            what = str(file)
            parts = {}
            for key in ("test", "valid"):  # separate files, their image paths relative to each
                if data.get(key):
                    part_file = self._data_file(data[key])
                    parts[key] = resolve_image_paths(read_table(part_file, fmt), [part_file.parent, self.base_dir],
                                                     data.get("column_types") or {})
                    what += f" + {part_file}"
            test, valid = parts.get("test"), parts.get("valid")
            frame = None
        if frame is not None:
            split_column = data.get("split_column")
            if split_column:
                train, test = _split_rows(frame, split_column, data.get("train_values", "train"),
                                          data.get("test_values", "test"), self.source)
                if data.get("valid_values") is not None:
                    valid = _rows_with(frame, split_column, data["valid_values"])
            else:
                train = frame
        weight_column = data.get("weight_column")
        missing = [c for c in [label] + list(data.get("columns") or []) + [weight_column]
                   if c is not None and c not in train.columns]
        if missing:
            raise RecipeError([Problem("data", f"columns {missing} are not in {what}; columns are "
                                               f"{', '.join(map(str, train.columns))}")], self.source)
        features = list(data.get("columns") or [c for c in train.columns
                                                if c not in (label, data.get("split_column"), weight_column)])
        if not features:
            raise RecipeError([Problem("data.columns", "no feature columns left besides the label")], self.source)
        # rows without a label can neither train nor be scored (as automm evaluate ignores them)
        unlabelled: dict[str, int] = {}
        train = _labelled_rows(train, label, "train", unlabelled)
        test = _labelled_rows(test, label, "test", unlabelled)
        valid = _labelled_rows(valid, label, "validation", unlabelled)
        dropped: list = []
        if data.get("min_class_rows"):
            counts = train[label].value_counts()
            dropped = sorted(counts[counts < int(data["min_class_rows"])].index.tolist(), key=str)
            if dropped:
                train = train[~train[label].isin(dropped)]
                test = test[~test[label].isin(dropped)] if test is not None and label in test.columns else test
                valid = valid[~valid[label].isin(dropped)] if valid is not None and label in valid.columns else valid
        max_rows = data.get("max_rows")
        # A fixed subsample, whatever the seed: the same recipe always sees the same rows.
        train = _subsample(train, max_rows, 0)
        test = _subsample(test, max_rows, 1) if test is not None else None
        valid = _subsample(valid, max_rows, 2) if valid is not None else None
        roles = data.get("column_types") or {}
        train = resolve_image_paths(train, [folder, self.base_dir], roles)
        if test is not None and frame is not None:
            test = resolve_image_paths(test, [folder, self.base_dir], roles)
        if valid is not None and frame is not None:
            valid = resolve_image_paths(valid, [folder, self.base_dir], roles)
        if len(train) == 0:
            raise RecipeError([Problem("data", f"no training rows in {what}")], self.source)
        result = RecipeData(X_train=train[features].reset_index(drop=True),
                            y_train=train[label].reset_index(drop=True), label=label, source=what,
                            dropped_classes=dropped, unlabelled_rows=unlabelled)
        if weight_column is not None:
            result.w_train = _weights(train, weight_column, what, self.source)
        if valid is not None:
            if len(valid) == 0:
                raise RecipeError([Problem("data.valid_values" if frame is not None else "data.valid",
                                           f"no validation rows in {what}")], self.source)
            result.X_val, result.y_val, result.w_val = _labelled_part(valid, features, label, weight_column, "valid",
                                                                      f"the validation data of {what}", self.source)
        if test is not None and len(test):
            result.X_test, result.y_test, result.w_test = _labelled_part(test, features, label, weight_column, "test",
                                                                         f"the test data of {what}", self.source)
        return result


def _labelled_rows(frame, label: str, part: str, counts: dict[str, int]):
    """The rows of ``frame`` (None stays None) that have a label; counts the others in ``counts``."""
    if frame is None or label not in frame.columns:
        return frame
    from .data import is_missing

    keep = [not is_missing(v) for v in frame[label].tolist()]
    if all(keep):
        return frame
    counts[part] = len(keep) - sum(keep)
    return frame[keep]


def _labelled_part(frame, features: list, label: str, weight_column: str | None, key: str, what: str,
                   source: str | None) -> tuple[Any, Any, np.ndarray | None]:
    """(features, labels, sample weights or None) of the test or validation rows ``frame``;
    :class:`RecipeError` at ``data.<key>`` when it lacks the label or a feature column."""
    absent = [c for c in [label, *features] if c not in frame.columns]
    if absent:
        raise RecipeError([Problem(f"data.{key}", f"{what} lack the columns {absent}")], source)
    weights = None
    if weight_column is not None and weight_column in frame.columns:
        weights = _weights(frame, weight_column, what, source)
    return frame[features].reset_index(drop=True), frame[label].reset_index(drop=True), weights


def _weight_column_values(frame, column: str) -> tuple[np.ndarray, str | None]:
    """Column ``column`` of ``frame`` as sample weights, and what is wrong with it (None when
    every value is a number >= 0)."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if not len(bad):
        return values, None
    shown = ", ".join(repr(frame[column].iloc[i]) for i in bad[:3])
    return values, f"column {column!r} needs numbers >= 0; {len(bad)} rows are not ({shown})"


def _weights(frame, column: str, what: str, source: str | None) -> np.ndarray:
    """Column ``column`` of ``frame`` as sample weights: :class:`RecipeError` at
    ``data.weight_column`` when a value is missing, not a number or negative."""
    values, problem = _weight_column_values(frame, column)
    if problem:
        raise RecipeError([Problem("data.weight_column", f"{problem} in {what}")], source)
    return values


def _inline(value: Any) -> str:
    import json

    try:
        return json.dumps(value, default=str) if not isinstance(value, str) else value
    except (TypeError, ValueError):  # pragma: no cover
        return repr(value)


def _rows_with(frame, column: str, values: Any):
    """The rows of ``frame`` whose ``column`` (as text) is one of ``values`` (a value or a list)."""
    wanted = [str(x) for x in (values if isinstance(values, list) else [values])]
    return frame[frame[column].astype(str).isin(wanted)]


def _split_rows(frame, column: str, train_values: Any, test_values: Any, source: str | None):
    values = frame[column].astype(str)
    as_list = lambda v: [str(x) for x in (v if isinstance(v, list) else [v])]  # noqa: E731
    train = frame[values.isin(as_list(train_values))]
    test = frame[values.isin(as_list(test_values))]
    if len(train) == 0:
        found = sorted(values.unique().tolist())[:20]
        raise RecipeError([Problem("data.train_values", f"no rows of column {column!r} have a value in "
                                                        f"{as_list(train_values)}; values found: {found}")], source)
    return train, test


def _subsample(frame, max_rows: int | None, seed: int):
    if frame is None or not max_rows or len(frame) <= max_rows:
        return frame
    rng = np.random.RandomState(seed % (2**32))
    keep = np.sort(rng.choice(len(frame), size=int(max_rows), replace=False))
    return frame.iloc[keep]


@dataclass
class RecipeData:
    """Data read for a recipe: train features/labels and, when the recipe has a test set, test."""

    X_train: Any
    y_train: Any
    label: str
    source: str
    X_test: Any = None
    y_test: Any = None
    dropped_classes: list = field(default_factory=list)  # by data.min_class_rows
    unlabelled_rows: dict = field(default_factory=dict)   # rows left out for a missing label, per part
    w_train: Any = None   # sample weights (data.weight_column), or None
    w_test: Any = None
    X_val: Any = None     # validation data (data.valid or data.valid_values), or None
    y_val: Any = None
    w_val: Any = None


# ---------------------------------------------------------------------------------- tables
def read_table(path: str | os.PathLike, fmt: str | None = None):
    """A DataFrame from a CSV/TSV/Parquet file, or from a folder of images (class folders:
    :func:`automm.folders.read_image_folder`); :class:`InputError` naming the file if unreadable."""
    import pandas as pd

    file = Path(path)
    if file.is_dir() and fmt in (None, "folder"):
        from .folders import read_image_folder

        return read_image_folder(file)
    if not file.is_file():
        raise FileNotFoundError(f"data file not found: {str(file)!r}")
    fmt = _data_format(file, fmt)
    if fmt is None:
        raise InputError(f"{str(file)!r}: cannot tell the format from the name; use a .csv, .tsv or .parquet file, "
                         "or a folder of images")
    try:
        if fmt == "parquet":
            if _parquet_engine() is None:
                raise InputError(f"{str(file)!r}: reading Parquet needs the pyarrow package: pip install pyarrow")
            return pd.read_parquet(file)
        return pd.read_csv(file, sep="\t" if fmt == "tsv" else ",")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - parser/encoding errors in a user's file
        raise InputError(f"{str(file)!r}: cannot read it as {fmt}: {type(exc).__name__}: {exc}") from None


def _image_columns(frame, roles: Mapping[str, str]) -> list[str]:
    from .roles import looks_like_image_path

    columns = []
    for column in frame.columns:
        role = roles.get(column)
        if role is not None:
            if role == "image":
                columns.append(column)
            continue
        values = [v for v in frame[column].head(500).tolist() if isinstance(v, str) and v.strip()]
        if values and sum(looks_like_image_path(v) for v in values) >= 0.8 * len(values):
            columns.append(column)
    return columns


def resolve_image_paths(frame, folders: Sequence[Path], roles: Mapping[str, str] | None = None):
    """A copy of ``frame`` whose relative image paths (in columns of role image, or that look
    like image paths) point into the first of ``folders`` where the file exists (else the first)."""
    columns = _image_columns(frame, roles or {})
    if not columns:
        return frame
    frame = frame.copy()
    folders = [Path(f) for f in folders]

    def resolve(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip() or "://" in value or os.path.isabs(value):
            return value
        for folder in folders:
            candidate = folder / value
            if candidate.exists():
                return str(candidate)
        return str(folders[0] / value)
    for column in columns:
        frame[column] = [resolve(v) for v in frame[column].tolist()]
    return frame


# ---------------------------------------------------------------------------------- public API
MAX_RECIPE_NODES = 100_000


def _too_large(content: Any, limit: int = MAX_RECIPE_NODES) -> bool:
    """More than ``limit`` values once YAML aliases are expanded (a "billion laughs" file)."""
    stack, seen = [content], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return False


def _load_content(recipe: Any, base_dir: str | os.PathLike | None) -> tuple[dict, str | None, Path]:
    if isinstance(recipe, Recipe):
        return copy.deepcopy(recipe.content), recipe.source, recipe.base_dir
    if isinstance(recipe, Mapping):
        if _too_large(recipe):
            raise RecipeError(f"more than {MAX_RECIPE_NODES} values: not a recipe")
        content = copy.deepcopy(dict(recipe))
        return content, None, Path(base_dir) if base_dir is not None else Path.cwd()
    if isinstance(recipe, (str, os.PathLike)):
        content = read_recipe_file(recipe)
        if _too_large(content):
            raise RecipeError(f"more than {MAX_RECIPE_NODES} values (YAML aliases expanded): not a recipe",
                              source=str(recipe))
        folder = Path(base_dir) if base_dir is not None else Path(recipe).resolve().parent
        return content, str(recipe), folder
    raise RecipeError(f"expected a recipe file path or a mapping, found {_show(recipe)}")


def load_recipe(recipe: Any, overrides: Iterable[str] = (), *, base_dir: str | os.PathLike | None = None,
                check_data: bool = True, require_data: bool = False) -> Recipe:
    """Read (path, mapping or :class:`Recipe`), apply ``overrides`` (``key.path=value``) and
    environment variables, validate: a :class:`Recipe`, or :class:`RecipeError` listing every
    problem. ``check_data`` reads the data files' headers (columns, label, did-you-mean);
    ``require_data`` makes the ``data`` section mandatory (as for fitting)."""
    content, source, folder = _load_content(recipe, base_dir)
    try:
        content = apply_overrides(content, overrides)
    except RecipeError as exc:
        raise RecipeError(exc.problems, source) from None
    problems: list[Problem] = []
    content = _interpolate(content, "", problems)
    problems = _check(content, check_data=check_data, require_data=require_data, base_dir=folder, known=problems)
    if problems:
        raise RecipeError(_unique(problems), source)
    return Recipe(content=content, source=source, base_dir=folder)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, result = set(), []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            result.append(problem)
    return result


def validate_recipe(recipe: Any, overrides: Iterable[str] = (), *, check_data: bool = True,
                    require_data: bool = False) -> list[Problem]:
    """Every problem of a recipe ([] when valid); never raises for a bad recipe."""
    try:
        load_recipe(recipe, overrides, check_data=check_data, require_data=require_data)
    except RecipeError as exc:
        return exc.problems
    return []


def from_recipe(recipe: Any, cls: type | None = None, overrides: Iterable[str] = ()):
    """An unfitted estimator from a recipe (path, mapping or :class:`Recipe`); the data
    section, if any, is checked for form but its files are not read."""
    return load_recipe(recipe, overrides, check_data=False).estimator(cls)


def from_recipe_with_data(recipe: Any, overrides: Iterable[str] = (), cls: type | None = None):
    """(unfitted estimator, :class:`RecipeData`): the recipe validated (data files included)
    and its data read."""
    loaded = load_recipe(recipe, overrides, check_data=True, require_data=True)
    return loaded.estimator(cls), loaded.load_data()


def _plain(value: Any, path: str, problems: list[Problem]) -> Any:
    """``value`` as plain YAML data (lists, mappings, strings, numbers, booleans, null)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), path, problems)
    if isinstance(value, Mapping):
        return {_plain(k, path, problems): _plain(v, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    problems.append(Problem(path, f"a {type(value).__name__} object cannot be written to a recipe; "
                                  "give it by name instead"))
    return None


def to_recipe(estimator) -> dict:
    """A recipe (plain mapping, ready for ``yaml.safe_dump``) that rebuilds ``estimator``;
    for a fitted estimator without ``random_state``, the seed it used, so that fitting the
    recipe on the same data gives the same model on CPU."""
    params = estimator.get_params(deep=False)
    problems: list[Problem] = []
    unmapped = sorted(set(params) - set(PARAM_PATHS))
    for name in unmapped:
        problems.append(Problem(name, f"the {type(estimator).__name__} parameter {name!r} has no recipe key "
                                      "(automm.recipes.PARAM_PATHS)"))
    context = dict(getattr(estimator, "_recipe_context", None) or {})
    recipe: dict = {"version": RECIPE_VERSION}
    if context.get("description"):
        recipe["description"] = context["description"]
    if context.get("data"):
        recipe["data"] = copy.deepcopy(context["data"])
    for section in ("data", "problem", "components", "training", "search", "output"):
        recipe.setdefault(section, {})
    for name, path in PARAM_PATHS.items():
        if name in params:
            _set(recipe, path, _plain(params[name], path, problems))
    if context.get("metric"):
        recipe["problem"]["metric"] = context["metric"]
    from .estimator import AutoMMRegressor

    if isinstance(estimator, AutoMMRegressor) and recipe["problem"].get("type") == "auto":
        recipe["problem"]["type"] = "regression"
    if recipe.get("seed") is None and getattr(estimator, "seed_", None) is not None:
        recipe["seed"] = int(estimator.seed_)
    if context.get("output_dir"):
        recipe["output"] = {"dir": context["output_dir"], **recipe["output"]}
    if problems:
        raise RecipeError(problems)
    order = {"data": list(SECTION_KEYS["data"])}
    if recipe["data"]:
        recipe["data"] = {k: recipe["data"][k] for k in order["data"] if k in recipe["data"]}
    else:
        del recipe["data"]
    ordered = {k: recipe[k] for k in TOP_KEYS if k in recipe}
    return _escape_env(ordered)


def dump_recipe(recipe: Mapping) -> str:
    """YAML text of a recipe mapping (key order kept)."""
    import yaml

    return yaml.safe_dump(dict(recipe), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


# ---------------------------------------------------------------------------------- metrics and fit
def positive_class(estimator) -> Any:
    """A fitted binary classifier's positive class (the second of ``classes_``), else None."""
    if getattr(estimator, "problem_type_", None) != "binary":
        return None
    positive = estimator.classes_[1]
    return positive.item() if isinstance(positive, np.generic) else positive


def compute_metrics(problem_type: str, y_true: Any, y_pred: Any, sample_weight: Any = None,
                    positive: Any = None) -> dict:
    """Accuracy, balanced accuracy, macro/weighted F1 and, for a binary problem with its
    ``positive`` class given, the positive class's F1 (classification), or R², RMSE, MAE
    (regression), plus ``n``; each weighted by ``sample_weight`` when given."""
    from sklearn import metrics

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if problem_type == "regression":
        y_true = y_true.astype(float)
        y_pred = y_pred.astype(float)
        return {"n": int(len(y_true)),
                "r2": float(metrics.r2_score(y_true, y_pred, sample_weight=w)) if len(y_true) > 1 else float("nan"),
                "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred, sample_weight=w))),
                "mae": float(metrics.mean_absolute_error(y_true, y_pred, sample_weight=w))}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if y_true.dtype != y_pred.dtype:  # e.g. labels read back from CSV as numbers vs strings
            y_true, y_pred = y_true.astype(str), y_pred.astype(str)
            positive = None if positive is None else str(positive)
        result = {"n": int(len(y_true)), "accuracy": float(metrics.accuracy_score(y_true, y_pred, sample_weight=w)),
                  "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred, sample_weight=w)),
                  "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", sample_weight=w)),
                  "weighted_f1": float(metrics.f1_score(y_true, y_pred, average="weighted", sample_weight=w))}
        if problem_type == "binary" and positive is not None:
            result["f1"] = float(metrics.f1_score(y_true == positive, y_pred == positive, sample_weight=w))
        return result


@dataclass
class FitResult:
    """What :func:`fit_recipe` did."""

    estimator: Any
    recipe: Recipe
    data: RecipeData
    model_dir: str | None
    test_metrics: dict | None
    seconds: float

    @property
    def metric(self) -> str:
        if self.recipe.metric:
            return self.recipe.metric
        return "r2" if self.estimator.problem_type_ == "regression" else "accuracy"

    def summary(self) -> dict:
        """The recipe's data and results, with the estimator's :meth:`~automm.AutoMM.fit_summary`."""
        summary = {
            "recipe": self.recipe.source or self.recipe.name,
            "data": self.data.source,
            "label": self.data.label,
            "train_rows": int(len(self.data.X_train)),
            "test_rows": int(len(self.data.X_test)) if self.data.X_test is not None else 0,
            "validation_rows": int(len(self.data.X_val)) if self.data.X_val is not None else 0,
            "fit_seconds": round(self.seconds, 2),
            **self.estimator.fit_summary(),
            "model_dir": self.model_dir,
            "metric": self.metric,
            "test": self.test_metrics,
        }
        weight_column = self.recipe.section("data").get("weight_column")
        if weight_column:
            summary["weight_column"] = weight_column
            summary["test_weighted"] = self.data.w_test is not None
        return summary


def fit_recipe(recipe: Any, overrides: Iterable[str] = (), *, verbose: int | None = None,
               log: Callable[[str], None] | None = None, output_dir: str | None = None,
               save: bool = True) -> FitResult:
    """Validate the recipe, read its data, fit, save the model to ``output.dir`` (with the
    ``recipe.yaml`` that reproduces it) and score the test set when there is one."""
    start = time.monotonic()
    log = log or (lambda message: None)
    loaded = load_recipe(recipe, overrides, check_data=True, require_data=True)
    estimator = loaded.estimator()
    if verbose is not None:
        estimator.set_params(verbose=int(verbose))
    data = loaded.load_data()
    test_rows = f", {len(data.X_test)} test rows" if data.X_test is not None else ", no test set"
    if data.X_val is not None:
        test_rows = f", {len(data.X_val)} validation rows" + test_rows
    log(f"data: {data.source}: {len(data.X_train)} train rows{test_rows}; label {data.label!r}; "
        f"features {', '.join(map(str, data.X_train.columns))}")
    if data.unlabelled_rows:
        log("left out rows without a label: " + ", ".join(f"{n} {part}" for part, n in data.unlabelled_rows.items()))
    if data.dropped_classes:
        shown = ", ".join(map(str, data.dropped_classes[:10])) + (" ..." if len(data.dropped_classes) > 10 else "")
        log(f"data.min_class_rows: dropped {len(data.dropped_classes)} rare classes ({shown})")
    target = output_dir or loaded.output_dir
    if save and target:  # before the fit: a long fit whose model cannot be saved would be lost
        from .persistence import check_save_target

        check_save_target(target, "output.dir" if output_dir is None else "output directory")
    log("fitting ...")
    estimator.fit(data.X_train, data.y_train, sample_weight=data.w_train, X_val=data.X_val, y_val=data.y_val,
                  sample_weight_val=data.w_val)
    log(f"fitted in {getattr(estimator, 'fit_seconds_', time.monotonic() - start):.1f} s")
    model_dir = None
    if save and target:
        model_dir = estimator.save(target)
        reproduce = to_recipe(estimator)
        reproduce.setdefault("output", {})["dir"] = model_dir
        Path(model_dir, "recipe.yaml").write_text(
            "# The recipe that reproduces this model (written by automm fit).\n" + dump_recipe(reproduce),
            encoding="utf-8")
        log(f"saved the model to {model_dir}")
    test_metrics = None
    if data.X_test is not None:
        predictions = estimator.predict(data.X_test)
        test_metrics = compute_metrics(estimator.problem_type_, data.y_test.to_numpy(), predictions,
                                       sample_weight=data.w_test, positive=positive_class(estimator))
    return FitResult(estimator=estimator, recipe=loaded, data=data, model_dir=model_dir, test_metrics=test_metrics,
                     seconds=time.monotonic() - start)
