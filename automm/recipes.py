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
      format: csv                   # csv | tsv | parquet | folder (else from the path)
      files_dir: images             # where the data's relative file paths (images) are looked up first
      label: category               # *required*: the label column
      columns: [image, name]        # feature columns (default: all but label, split and weight columns)
      column_types: {image: image}  # role per column (image, text, numeric, categorical, datetime, plugin modality)
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
      overwrite: false              # true: replace the model a run saved there before (else refused)
      plot_dir: null                # search plots
      verbose: 1
    seed: 0                         # random_state

Every :class:`~automm.AutoMM` constructor parameter has one key (:data:`PARAM_PATHS`), but for the
training ``callbacks``, Python objects (:data:`~automm.recipe_checks.PYTHON_ONLY_PARAMS`); ``data``
and ``output.dir`` are the recipe's own. Relative data paths are resolved
against the recipe file's folder (the current directory for a recipe given as a dict); relative
image paths inside the data are looked up in ``data.files_dir`` (one folder or a list, relative to
the recipe's folder), the data file's folder, then the recipe's folder, then the current directory
(:func:`automm.tables.image_folders`); the ``recipe.yaml`` that ``automm fit`` saves writes the
folders they were found in, other than the data file's, as an absolute ``data.files_dir``. Output
paths (``output.dir``, ``output.plot_dir``, ``training.cache_dir``) and storage URLs are used as
given, i.e. relative to the current directory.

String values may reference environment variables: ``${NAME}`` or ``${NAME:-default}``, whose
default may reference others (``${MODELS:-${HOME}/models}``); ``$${`` writes a literal ``${``, also
in the ``recipe.yaml`` that ``automm fit`` saves, and any other ``${`` is refused (as is a shell's
``$NAME`` without braces in a file's or folder's key, where NAME is a set variable); a value
that is one such reference alone is read as a YAML
scalar, as ``--set`` values are (``max_epochs: ${EPOCHS:-2}`` is the number 2, ``${STORE:-null}``
none). Recipes are read with PyYAML's safe loader only (:func:`load_yaml`), which also reads numbers
written without a dot as YAML 1.2 does: ``1e-3`` is a number, not the string YAML 1.1 makes of it.

A password never leaves a recipe: ``automm validate`` shows ``search.storage`` with its password
as ``***`` (:func:`automm.storage.redact_url`), and the ``recipe.yaml`` that ``automm fit``
saves (:func:`to_recipe`) writes back the recipe's own ``${NAME}`` reference when the storage
came from one, else the URL with its password as ``***`` (with a warning: give such a URL from
an environment variable, or with ``--set search.storage=...``).

Validation happens before any work and reports every problem at once, each with its key path,
what was expected and what was found, and a "did you mean ..." for misspelled keys, choices and
component names (those of installed plugins included): :class:`RecipeError`. The schema and its
checks live in :mod:`automm.recipe_checks`, reading data files in :mod:`automm.tables`, the
test metrics in :mod:`automm.evaluation`; this module reads recipes, loads their data and fits.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import registry as _registry
from .evaluation import compute_metrics, positive_class
from .exceptions import AutoMMWarning, InputError, user_stacklevel
from .files import url_problem
from .process_state import all_warnings_left_out
from .storage import redact_url
from .suggestions import shown_names
from .recipe_checks import (METRICS, PARAM_PATHS, PRUNERS, PYTHON_ONLY_PARAMS, RECIPE_VERSION, SAMPLERS, SECTION_KEYS,
                            TOP_KEYS, Problem, RecipeError, check_recipe, get_key_path, join_path, set_key_path,
                            show_value, split_text, split_texts, split_value_problems)
from .tables import (data_file_folders, image_folders, labelled_rows, read_table, resolve_image_paths,
                     whole_number_labels, weight_column_values, with_file_rows)

__all__ = [
    "RecipeError", "Problem", "Recipe", "RecipeData", "FitResult", "PARAM_PATHS", "SECTION_KEYS", "METRICS",
    "SAMPLERS", "PRUNERS", "load_recipe", "validate_recipe", "read_recipe_file", "apply_overrides",
    "from_recipe", "from_recipe_with_data", "to_recipe", "fit_recipe", "dump_recipe", "load_yaml",
]

#: A number in exponent notation without a dot (``1e-3``, ``-2E+5``): a float in YAML 1.2, which
#: PyYAML (YAML 1.1, whose floats need a dot: ``1.0e-3``) reads as a string.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


@functools.lru_cache(maxsize=1)
def _recipe_yaml() -> tuple:
    """PyYAML's safe loader and dumper, both knowing :data:`_EXPONENT_FLOAT` (the dumper then
    quotes a string such as ``"1e3"``, which would read back as a number)."""
    import yaml

    class RecipeLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            # a key given twice (two training: sections, two label: lines): PyYAML keeps the last
            # without a word; a recipe is refused, naming the line of each
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base loader says so
                    break
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"found the key {key!r} twice (line {first.start_mark.line + 1} and line "
                        f"{key_node.start_mark.line + 1}): keep one", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    class RecipeDumper(yaml.SafeDumper):
        pass

    for cls in (RecipeLoader, RecipeDumper):
        cls.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return RecipeLoader, RecipeDumper


def load_yaml(text: str) -> Any:
    """``text`` read by PyYAML's safe loader, with ``1e-3`` read as the number it is (YAML 1.2)."""
    import yaml

    return yaml.load(text, Loader=_recipe_yaml()[0])  # noqa: S506 - a SafeLoader


# ---------------------------------------------------------------------------------- reading
_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_STORAGE = PARAM_PATHS["storage"]


def _env_references(content: Any, path: str = "") -> dict[str, str]:
    """Every string value of ``content`` (mappings walked, not lists) naming environment
    variables (``${NAME}``), as written, by its dotted path."""
    found: dict[str, str] = {}
    if isinstance(content, Mapping):
        for key, value in content.items():
            if isinstance(key, str):
                found.update(_env_references(value, join_path(path, key)))
    elif isinstance(content, str) and path and any(m.group(0) != "$${" for m in _ENV_RE.finditer(content)):
        found[path] = content
    return found


def _redacted_storage(value: Any) -> Any:
    return redact_url(value) if isinstance(value, str) else value


def _interpolate(value: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(value, Mapping):
        return {k: _interpolate(v, join_path(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value and _path_key(path):
        _bare_variables(value, path, problems)
    if not isinstance(value, str) or "${" not in value:
        return value
    try:
        result, _, whole = _expand(value, 0, path, problems)
    except _NoReference as exc:  # (kept as written, it named a folder such as `${HOME`)
        problems.append(Problem(path, f"{exc.args[0]!r} is not an environment variable reference automm reads: "
                                      "write ${NAME} or ${NAME:-default} (NAME of letters, digits and _), and $${ for "
                                      "a literal ${"))
        return value
    if whole and result != value:
        typed = _yaml_scalar(result)  # the whole value is one variable: typed as --set values are
        return typed if typed is None or not _text_key(path) else result  # (${STORE:-null}: none)
    return result


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Keys naming files or folders, where ``$HOME/models`` (a shell's spelling, which automm does not
#: expand) made a folder named ``$HOME`` in the working directory.
_PATH_KEYS = ("data.path", "data.train", "data.test", "data.valid", "data.files_dir", "output.dir",
              "output.plot_dir", "training.cache_dir")
_BARE_VARIABLE = re.compile(r"(?<![$\w])\$([A-Za-z_][A-Za-z0-9_]*)")


def _path_key(path: str) -> bool:
    return _at_key(path, _PATH_KEYS)


def _bare_variables(value: str, path: str, problems: list[Problem]) -> None:
    """A problem at ``path`` for each ``$NAME`` without braces in a file's or folder's ``value``
    that names a set environment variable: a shell would expand it, automm reads ``${NAME}`` only."""
    for name in dict.fromkeys(m.group(1) for m in _BARE_VARIABLE.finditer(value)):
        if name in os.environ:
            problems.append(Problem(path, f"{value!r} holds ${name} without braces, which automm does not expand "
                                          f"(it would name a folder '${name}'): write ${{{name}}}"))


class _NoReference(ValueError):
    """A ``${`` that starts no environment variable reference (its text: ``args[0]``)."""


def _expand(value: str, start: int, path: str, problems: list[Problem],
            nested: bool = False) -> tuple[str, int | None, bool]:
    """``value`` from ``start`` with its ``${NAME}``, ``${NAME:-default}`` (the default may hold
    references too, as in sh: ``${MODELS:-${HOME}/models}``, read only where it is used) and
    ``$${`` expanded; ``nested``: a default, up to its closing ``}``. Returns the text, the index
    after it (None: a default never closed) and whether it is one reference alone; unset variables
    are problems at ``path``. A ``${`` that starts no reference (``${HOME/x}``, ``${NAME-x}``, one
    never closed), in a default too, raises :class:`_NoReference`."""
    parts: list[str] = []
    references, whole_reference = 0, False
    i = start
    while i < len(value):
        if value.startswith("$${", i):
            parts.append("${")
            i += 3
            continue
        if nested and value[i] == "}":
            return "".join(parts), i + 1, False
        if not value.startswith("${", i):
            parts.append(value[i])
            i += 1
            continue
        name = _ENV_NAME.match(value, i + 2)
        after = name.end() if name else i + 2
        default: str | None = None
        if name and value.startswith(":-", after):
            used_problems: list[Problem] = []
            default, end, _ = _expand(value, after + 2, path, used_problems, nested=True)
        elif name and value.startswith("}", after):
            end, used_problems = after + 1, []
        else:
            end = None
        if end is None:
            raise _NoReference(value[i:value.find("}", i) + 1 or len(value)])
        found = os.environ.get(name.group(0))
        if found is None or (found == "" and default is not None):
            if default is not None:
                problems.extend(used_problems)
                found = default
            else:
                problems.append(Problem(path, f"environment variable {name.group(0)} is not set (referenced as "
                                              f"${{{name.group(0)}}}); set it, or give the value with --set {path}=..."))
                found = value[i:end]
        parts.append(found)
        references += 1
        whole_reference = i == start and end == len(value)
        i = end
    if nested:
        return "".join(parts), None, False
    return "".join(parts), i, references == 1 and whole_reference


#: Keys whose values are text whatever they read as (a folder, a column or a study named
#: ``2024``, a label column named ``no``): a variable alone there gives its text.
_TEXT_KEYS = ("description", "data.sample", *_PATH_KEYS, "data.label", "data.columns", "data.split_column",
              "data.weight_column", "search.storage", "search.study_name")


def _text_key(path: str) -> bool:
    return _at_key(path, _TEXT_KEYS)


def _at_key(path: str, keys: Sequence[str]) -> bool:
    """Whether the dotted ``path`` is one of ``keys`` or an item of one (``data.columns[0]``)."""
    return any(path == key or path.startswith(key + "[") for key in keys)


def _yaml_scalar(text: str) -> Any:
    """``text`` read as a YAML scalar (``2`` → 2, ``0.5`` → 0.5, ``true``, ``null`` → None),
    else the string itself (a list or mapping from a variable stays text)."""
    import yaml

    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def _escape_env(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _escape_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_env(v) for v in value]
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def read_recipe_file(path: str | os.PathLike) -> dict:
    """The mapping in a YAML recipe file (:func:`load_yaml`), or :class:`RecipeError`."""
    import yaml

    source = str(path)
    file = Path(path)
    problem = url_problem(source)
    if problem is not None:
        raise RecipeError(f"{source!r} is {problem}", source=None)
    if not file.exists():
        raise RecipeError(f"file {source!r} not found", source=None)
    if not file.is_file():
        raise RecipeError(f"{source!r} is not a file", source=None)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise RecipeError(f"cannot read {source!r}: {exc}", source=None) from None
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    try:  # (UTF-16 with its byte-order mark, as Windows' Notepad saves "Unicode": YAML allows it)
        text = data.decode("utf-16") if utf16 else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if utf16:  # (its byte-order mark says UTF-16: it is not UTF-8 text in another encoding)
            raise RecipeError(f"cannot read {source!r}: it starts as UTF-16 text (its byte-order mark) but is not "
                              f"valid UTF-16 from byte {exc.start} ({exc.reason}: a file cut short or damaged); "
                              "save it again, as UTF-8", source=None) from None
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise RecipeError(f"cannot read {source!r}: it is not UTF-8 text (byte {exc.start}, on line {line}, is "
                          f"{exc.object[exc.start:exc.start + 1]!r}: a file saved in another encoding, such as "
                          "Windows-1252); save it as UTF-8", source=None) from None
    try:
        content = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        if "'\\t'" in problem:
            detail += " (YAML indents with spaces, never tabs: replace the tabs with spaces)"
        raise RecipeError(f"not valid YAML{where}: {detail}", source=source) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. an out-of-range timestamp
        raise RecipeError(f"not valid YAML: {exc}", source=source) from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise RecipeError(f"expected a mapping of sections ({', '.join(TOP_KEYS)}), found {show_value(content)}",
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
        value = load_yaml(raw) if raw.strip() else ""
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
        indexed = next((key for key in keys if re.search(r"\[\d+\]$", key)), None)
        if indexed is not None:  # image[1].width: list items cannot be addressed
            problems.append(Problem(".".join(keys), f"--set cannot reach into a list ({indexed!r}): set the whole "
                                                    f"list, --set {'.'.join(keys[:keys.index(indexed)])}"
                                                    f"{'.' if keys.index(indexed) else ''}{indexed.split('[')[0]}=[...]"))
            continue
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                hint = (f"; --set cannot reach into a list: set the whole list, --set {where}=[...]"
                        if isinstance(child, list) else "")
                problems.append(Problem(".".join(keys),
                                        f"cannot set it: {where} is {show_value(child)}, not a mapping{hint}"))
                break
            node = child
        else:
            node[keys[-1]] = value
    if problems:
        raise RecipeError(problems)
    return result


# ---------------------------------------------------------------------------------- the Recipe


@dataclass
class Recipe:
    """A validated recipe: ``content`` (the mapping, overrides and environment variables
    applied), where it came from, and what it asks for."""

    content: dict
    source: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    #: every value the recipe wrote with environment variables (``${NAME}``), as written, by its
    #: dotted path: :func:`to_recipe` writes these back, not the values they gave, so that a token a
    #: recipe puts in ``description`` stays out of the saved ``recipe.yaml``. ``automm.json`` holds
    #: the parameter values the model was fitted with (``study_name``, ``cache_dir`` as given), and
    #: a storage URL only with its password redacted.
    env_references: dict = field(default_factory=dict, compare=False)
    #: the folders :meth:`load_data` found the data's relative file paths in, other than the data
    #: files' own: what :func:`to_recipe` writes as ``data.files_dir``
    files_found_in: list[Path] = field(default_factory=list, compare=False)

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

    @property
    def overwrite(self) -> bool:
        """``output.overwrite``: whether a fit replaces a model already in ``output.dir``."""
        return self.section("output").get("overwrite") is True

    def params(self) -> dict:
        """The AutoMM constructor arguments the recipe sets (absent keys keep AutoMM's defaults)."""
        params = {}
        for param, path in PARAM_PATHS.items():
            found, value = get_key_path(self.content, path)
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
            # where relative image paths were found (the recipe's folder, the current directory):
            # absolute, so that the recipe finds them again from anywhere
            found = [str(folder) for folder in self.files_found_in]
            if found:
                data["files_dir"] = found[0] if len(found) == 1 else found
            elif data.get("files_dir") is not None:
                data["files_dir"] = [str(folder) for folder in self._files_dirs()]
            data.pop("column_types", None)  # a parameter, written from the estimator
            context["data"] = data
        if self.metric is not None:
            context["metric"] = self.metric
        if self.output_dir is not None:
            context["output_dir"] = os.path.abspath(self.output_dir)
        context["env_references"] = {path: (raw, get_key_path(self.content, path)[1])  # (the reference, its value)
                                     for path, raw in self.env_references.items()}
        return context

    def shown(self) -> dict:
        """The content as it may be shown (``automm validate --show``): ``search.storage``'s
        password as ``***``, a literal ``${`` as ``$${`` (read back, the text is the same recipe)."""
        content = copy.deepcopy(self.content)
        found, value = get_key_path(content, _STORAGE)
        if found:
            set_key_path(content, _STORAGE, _redacted_storage(value))
        return _escape_env(content)

    def _data_file(self, value: str) -> Path:
        return Path(os.path.abspath(self.base_dir / os.path.expanduser(value)))

    def _files_dirs(self) -> list[Path]:
        """``data.files_dir`` (one folder or a list), each made absolute against the recipe's folder."""
        value = self.section("data").get("files_dir")
        return [self._data_file(v) for v in ([value] if isinstance(value, str) else value or [])]

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
        space = params.get("search_space") or {}
        for key in ("encoders", "fusion", "augmentations"):
            if key in params:
                note = _replaced_by_space(key, params[key], space)
                if key == "fusion" and not note and params[key] == "concat":
                    from .search import search_requested

                    if search_requested(self.estimator()):  # (AutoMM's default: no recipe can tell it apart)
                        note = "  (the default: the search tries every fusion; [concat] keeps it)"
                rows.append((key, _inline(params[key]) + note))
        for key, value in space.items():  # what the search samples from, where search.search_space says
            rows.append((f"search_space.{key}", _inline(value)))
        search = {k: params[k] for k in ("n_trials", "time_limit", "sampler", "pruner", "storage", "study_name",
                                          "n_jobs", "ensemble_size", "bag_folds", "objectives") if k in params}
        if "storage" in search:
            search["storage"] = _redacted_storage(search["storage"])
        if search:
            rows.append(("search", ", ".join(f"{k}={_inline(v)}" for k, v in search.items())))
        if self.output_dir:
            rows.append(("output", self.output_dir + ("  (a model there replaced: output.overwrite)"
                                                      if self.overwrite else "")))
        if "random_state" in params:
            rows.append(("seed", str(params["random_state"])))
        return rows

    # -- data --------------------------------------------------------------------------------
    def load_data(self) -> "RecipeData":
        """Read the recipe's data: train (and test) features and labels, image paths resolved
        (:func:`automm.tables.image_folders`), each part's rows in its data file remembered."""
        data = self.section("data")
        if not data:
            raise RecipeError([Problem("data", "missing: this needs data (data.sample, data.path or data.train, "
                                               "and data.label)")], self.source)
        label = data["label"]
        fmt = data.get("format")
        roles = data.get("column_types") or {}
        train = test = valid = None
        other_split_rows: dict[str, int] = {}
        files: dict[str, Path | None] = {}  # each part's data file (None: a sample dataset)
        if data.get("sample"):
            frame = _registry.load_dataset(data["sample"]).reset_index(drop=True)
            what = f"the {data['sample']} sample dataset"
            names = dict.fromkeys(("train", "test", "valid"), f"{data['sample']} sample")
        elif data.get("path"):
            file = self._data_file(data["path"])
            frame, what = whole_number_labels(read_table(file, fmt), label), str(file)
            files = dict.fromkeys(("train", "test", "valid"), file)
            names = dict.fromkeys(("train", "test", "valid"), what)
        else:
            file = self._data_file(data["train"])
            train, what = whole_number_labels(read_table(file, fmt), label), str(file)
            files, names = {"train": file}, {"train": what}
            parts = {}
            for key in ("test", "valid"):  # separate files
                if data.get(key):
                    files[key] = self._data_file(data[key])
                    names[key] = str(files[key])
                    parts[key] = whole_number_labels(read_table(files[key], fmt), label)
                    what += f" + {files[key]}"
            test, valid = parts.get("test"), parts.get("valid")
            frame = None
        if frame is not None:
            split_column = data.get("split_column")
            if split_column:
                train, test, valid = _split_rows(frame, split_column, data, self.source)
                kept = set(train.index) | set(test.index) | (set(valid.index) if valid is not None else set())
                # (astype(str) keeps a blank cell NaN, which value_counts would drop unsaid)
                others = split_texts(frame[split_column][~frame.index.isin(list(kept))], "(empty)").value_counts()
                other_split_rows = {str(value): int(n) for value, n in others.items()}
            else:
                train = frame
        weight_column = data.get("weight_column")
        missing = [c for c in [label] + list(data.get("columns") or []) + [weight_column]
                   if c is not None and c not in train.columns]
        if missing:
            raise RecipeError([Problem("data", f"columns {shown_names(missing)} are not in {what}; columns are "
                                               f"{shown_names(train.columns, plain=True)}")], self.source)
        features = list(data.get("columns") or [c for c in train.columns
                                                if c not in (label, data.get("split_column"), weight_column)])
        if not features:
            raise RecipeError([Problem("data.columns", "no feature columns left besides the label")], self.source)
        # rows without a label can neither train nor be scored (as automm evaluate ignores them)
        unlabelled: dict[str, int] = {}
        train = labelled_rows(train, label, "train", unlabelled)
        test = labelled_rows(test, label, "test", unlabelled)
        valid = labelled_rows(valid, label, "validation", unlabelled)
        dropped: list = []
        if data.get("min_class_rows"):
            counts = train[label].value_counts()
            dropped = sorted(counts[counts < int(data["min_class_rows"])].index.tolist(), key=str)
            # a class of the test (or validation) rows that no training row has: fewer than
            # min_class_rows training rows too (0), so dropped from them alike
            kept = set(counts[counts >= int(data["min_class_rows"])].index.tolist())
            absent = sorted({v for part in (test, valid) if part is not None and label in part.columns
                             for v in part[label].tolist() if v not in counts.index}, key=str)
            dropped = sorted(set(dropped) | set(absent), key=str)
            if len(train) and not kept:
                raise RecipeError([Problem("data.min_class_rows", f"{data['min_class_rows']} drops every class: the "
                                           f"most frequent has {int(counts.max())} training rows (of {len(counts)} "
                                           "classes); lower it")], self.source)
            if dropped:
                train = train[~train[label].isin(dropped)]
                test = test[test[label].isin(kept)] if test is not None and label in test.columns else test
                valid = valid[valid[label].isin(kept)] if valid is not None and label in valid.columns else valid
        max_rows = data.get("max_rows")
        # A fixed subsample, whatever the seed: the same recipe always sees the same rows.
        train = _subsample(train, max_rows, 0)
        test = _subsample(test, max_rows, 1) if test is not None else None
        valid = _subsample(valid, max_rows, 2) if valid is not None else None
        # The frames keep their data file's row numbers as index, named after the file: messages
        # about rows name them ("items.csv row 12"), whatever the split, filters and labels kept.
        found: set[Path] = set()

        def prepared(key: str, part):
            if part is None:
                return None
            folders = list(dict.fromkeys([*self._files_dirs(), *image_folders(files.get(key), self.base_dir)]))
            part = resolve_image_paths(part, folders, roles, source=names[key], inputs=features, found_in=found)
            return with_file_rows(part, names[key])

        train, test, valid = prepared("train", train), prepared("test", test), prepared("valid", valid)
        own = {folder for file in files.values() if file is not None for folder in data_file_folders(file)}
        self.files_found_in = [folder for folder in [*self._files_dirs(), *image_folders(None, self.base_dir)]
                               if folder in found and folder not in own]
        if len(train) == 0:
            raise RecipeError([Problem("data", f"no training rows in {what}")], self.source)
        result = RecipeData(X_train=train[features], y_train=train[label], label=label, source=what,
                            dropped_classes=dropped, unlabelled_rows=unlabelled, other_split_rows=other_split_rows)
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


def _test_rows_seen_in_training(data: "RecipeData") -> int:
    """How many test rows have exactly the features of a training row (0 when a cell cannot be
    compared, such as an image array)."""
    if data.X_test is None or not len(data.X_test):
        return 0
    from .data import Table, rows_repeated

    features = list(data.X_train.columns)
    if any(c not in data.X_test.columns for c in features):
        return 0
    train = Table({str(c): data.X_train[c].tolist() for c in features})
    return rows_repeated(Table({str(c): data.X_test[c].tolist() for c in features}), train)


def _labelled_part(frame, features: list, label: str, weight_column: str | None, key: str, what: str,
                   source: str | None) -> tuple[Any, Any, np.ndarray | None]:
    """(features, labels, sample weights or None) of the test or validation rows ``frame``;
    :class:`RecipeError` at ``data.<key>`` when it lacks the label or a feature column."""
    absent = [c for c in [label, *features] if c not in frame.columns]
    if absent:
        raise RecipeError([Problem(f"data.{key}", f"{what} lack the columns {shown_names(absent)}")], source)
    weights = None
    if weight_column is not None and weight_column in frame.columns:
        weights = _weights(frame, weight_column, what, source)
    return frame[features], frame[label], weights


def _weights(frame, column: str, what: str, source: str | None) -> np.ndarray:
    """Column ``column`` of ``frame`` as sample weights: :class:`RecipeError` at
    ``data.weight_column`` when a value is missing, not a number or negative."""
    values, problem = weight_column_values(frame, column)
    if problem:
        raise RecipeError([Problem("data.weight_column", f"{problem} in {what}")], source)
    return values


def _inline(value: Any) -> str:
    import json

    try:
        return json.dumps(value, default=str) if not isinstance(value, str) else value
    except (TypeError, ValueError):  # pragma: no cover
        return repr(value)


def _replaced_by_space(key: str, value: Any, space: dict) -> str:
    """A note for ``automm validate``'s ``key`` row when ``search.search_space`` takes precedence
    over (part of) ``components.<key>``: encoders per modality or input, fusion and augmentations whole
    (a null there replaces nothing)."""
    if space.get(key) is None:
        return ""
    if key == "encoders" and isinstance(value, dict) and isinstance(space[key], dict):
        replaced = [name for name in value if name in space[key]]
        return f"  (search_space.encoders replaces {', '.join(replaced)})" if replaced else ""
    return f"  (replaced by search_space.{key})"


def _split_rows(frame, column: str, data: Mapping, source: str | None):
    """(train, test, validation or None) rows of ``frame`` by the split column's values;
    :class:`RecipeError` for a value of data.*_values that no row has."""
    problems = split_value_problems(frame[column].unique().tolist(), data)
    if problems:
        raise RecipeError(problems, source)
    values = frame[column].map(split_text)  # (a fold column read as floats: 0.0 is the value 0)
    as_list = lambda v: [split_text(x) for x in (v if isinstance(v, list) else [v])]  # noqa: E731
    train = frame[values.isin(as_list(data.get("train_values", "train")))]
    test = frame[values.isin(as_list(data.get("test_values", "test")))]
    valid = frame[values.isin(as_list(data["valid_values"]))] if data.get("valid_values") is not None else None
    return train, test, valid


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
    other_split_rows: dict = field(default_factory=dict)  # rows of other split values left out, per value
    w_train: Any = None   # sample weights (data.weight_column), or None
    w_test: Any = None
    X_val: Any = None     # validation data (data.valid or data.valid_values), or None
    y_val: Any = None
    w_val: Any = None


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
    if isinstance(recipe, Recipe):  # its content is interpolated already: escaped, it reads the same again
        return _escape_env(copy.deepcopy(recipe.content)), recipe.source, recipe.base_dir
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
    raise RecipeError(f"expected a recipe file path or a mapping, found {show_value(recipe)}")


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
    references = _env_references(content)
    problems: list[Problem] = []
    content = _interpolate(content, "", problems)
    found, name = get_key_path(content, PARAM_PATHS["study_name"])
    if found and isinstance(name, int) and not isinstance(name, bool):  # study_name: 2024 (or ${STUDY}): that name
        set_key_path(content, PARAM_PATHS["study_name"], str(name))
    problems = check_recipe(content, check_data=check_data, require_data=require_data, base_dir=folder, known=problems)
    if problems:
        raise RecipeError(_unique(problems), source)
    if isinstance(recipe, Recipe):  # a loaded recipe's references, for the values the overrides left as they were
        for path, raw in recipe.env_references.items():
            if path not in references and get_key_path(content, path) == get_key_path(recipe.content, path):
                references[path] = raw
    return Recipe(content=content, source=source, base_dir=folder, env_references=references)


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
    data = loaded.load_data()
    return loaded.estimator(cls), data


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
        return {_plain(k, path, problems): _plain(v, join_path(path, k), problems) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    problems.append(Problem(path, f"a {type(value).__name__} object cannot be written to a recipe; "
                                  "give it by name instead"))
    return None


def to_recipe(estimator) -> dict:
    """A recipe (plain mapping, ready for :func:`dump_recipe`) that rebuilds ``estimator``;
    for a fitted estimator without ``random_state``, the seed it used, so that fitting the
    recipe on the same data gives the same model on CPU. A password in ``storage`` is never
    written: an estimator from a recipe whose storage named environment variables gets that
    reference back; any other URL's password is written as ``***``, with a warning."""
    params = estimator.get_params(deep=False)
    if isinstance(params.get("random_state"), np.random.RandomState):  # no seed to write: the one drawn, if fitted
        params["random_state"] = None
    problems: list[Problem] = []
    unmapped = sorted(set(params) - set(PARAM_PATHS) - set(PYTHON_ONLY_PARAMS))
    for name in unmapped:
        problems.append(Problem(name, f"the {type(estimator).__name__} parameter {name!r} has no recipe key "
                                      "(automm.recipes.PARAM_PATHS)"))
    for name in PYTHON_ONLY_PARAMS:
        if params.get(name):
            problems.append(Problem(name, f"{name} are Python objects, which a recipe cannot hold (the estimator it "
                                          f"rebuilt would train without them): set_params({name}=None) first, and "
                                          "give them to the estimator built from the recipe"))
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
            set_key_path(recipe, path, _plain(params[name], path, problems))
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
    storage = recipe["search"].get("storage")
    reference, given = (context.get("env_references") or {}).get(_STORAGE, (None, None))
    if isinstance(storage, str) and not (reference is not None and storage == given):
        recipe["search"]["storage"] = redact_url(storage)
        if recipe["search"]["storage"] != storage:
            import warnings

            warnings.warn("search.storage: the password of the storage URL is written as *** in the recipe; give "
                          "the URL from an environment variable (search.storage: ${AUTOMM_STORAGE}) or with --set "
                          "search.storage=URL", AutoMMWarning, stacklevel=user_stacklevel())
    order = {"data": list(SECTION_KEYS["data"])}
    if recipe["data"]:
        recipe["data"] = {k: recipe["data"][k] for k in order["data"] if k in recipe["data"]}
    else:
        del recipe["data"]
    ordered = _escape_env({k: recipe[k] for k in TOP_KEYS if k in recipe})
    # the recipe's own ${NAME}s, for the values the fit did not change: the same run, given the same environment
    for path, (raw, value) in (context.get("env_references") or {}).items():
        found, written = get_key_path(ordered, path)
        if found and written == _escape_env(value):
            set_key_path(ordered, path, raw)
    return ordered


def dump_recipe(recipe: Mapping) -> str:
    """YAML text of a recipe mapping (key order kept)."""
    import yaml

    return yaml.dump(dict(recipe), Dumper=_recipe_yaml()[1], sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)


# ---------------------------------------------------------------------------------- metrics and fit


@dataclass
class FitResult:
    """What :func:`fit_recipe` did."""

    estimator: Any
    recipe: Recipe
    data: RecipeData
    model_dir: str | None
    test_metrics: dict | None
    seconds: float
    saved_instead_of: str | None = None  # the output folder asked for, where the model was saved beside it

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
            "fit_seconds": round(self.seconds, 2),
            **self.estimator.fit_summary(),  # (its validation_rows: what the kept model was scored on)
            # the rows of the data's own validation split, whatever the kept model was scored on
            "validation_split_rows": int(len(self.data.X_val)) if self.data.X_val is not None else 0,
            "model_dir": self.model_dir,
            **({"saved_instead_of": self.saved_instead_of} if self.saved_instead_of else {}),
            "metric": self.metric,
            "test": self.test_metrics,
        }
        if positive_class(self.estimator) is not None:  # whose F1 "f1" is (a binary problem's second class)
            summary["positive_class"] = positive_class(self.estimator)
        if self.data.unlabelled_rows.get("test"):  # a test set all of whose rows lacked a label is no test set
            summary["unlabelled_test_rows"] = int(self.data.unlabelled_rows["test"])
        weight_column = self.recipe.section("data").get("weight_column")
        if weight_column:
            summary["weight_column"] = weight_column
            summary["test_weighted"] = self.data.w_test is not None
        return summary


def _check_test_inputs(estimator, data) -> None:
    """The test rows' inputs checked as ``fit`` checks the training rows' (images, audio and other
    files that cannot be read; more than the few tolerated stop it), before the fit: not after
    it, when a finished model has replaced the previous one and the test score fails."""
    from .data import as_table, infer_roles, validate_columns

    reg = _registry.get_registry()
    with all_warnings_left_out():  # the fit says what the columns' roles call for
        roles = infer_roles(as_table((data.X_train,), plugin_manager=reg.plugin_manager), estimator.column_types,
                            reg.plugin_manager, estimator._known_roles(reg))
        test = as_table((data.X_test,), plugin_manager=reg.plugin_manager)
    try:
        with all_warnings_left_out():  # a few unreadable test files: predict names them after the fit
            validate_columns(test, roles, named_roles=estimator.column_types or ())
    except InputError as exc:
        raise InputError(f"the test rows: {exc}"
                         f"{column_types_hint(str(exc), estimator, data.X_train)}") from None


def column_types_hint(message: str, estimator: Any, frame: Any) -> str:
    """``"; data.column_types.title says 'numeric'"`` when ``message`` is about a column whose
    role the recipe set (``estimator.column_types``) to another than its values read as (in
    ``frame``, the training rows): the likely cause of values that do not fit it; "" otherwise
    (a role as declared as read: the values are at fault, e.g. image files not found)."""
    column_types = estimator.column_types
    named = re.search(r"column '([^']+)'", message)
    if not isinstance(column_types, Mapping) or named is None:
        return ""
    column = named.group(1)
    role = next((v for k, v in column_types.items() if str(k) == column), None)
    if role is None:
        return ""
    if column in getattr(frame, "columns", ()):
        from .data import as_table, infer_roles

        reg = _registry.get_registry()
        try:
            with all_warnings_left_out():
                read = infer_roles(as_table((frame[[column]],), plugin_manager=reg.plugin_manager), None,
                                   reg.plugin_manager, estimator._known_roles(reg))[column]
        except Exception:  # noqa: BLE001 - a hint only
            read = None
        if read == role:
            return ""
    return f"; data.column_types.{column} says {role!r}: is that the column's role?"


def recipe_keys_named(message: str, label: str) -> str:
    """``message`` of an error of ``AutoMM.fit`` starting with the recipe key it is about:
    ``problem_type: ...`` becomes ``problem.type (problem_type): ...``, ``y: ...`` becomes
    ``data.label 'price' (y): ...``, ``X_val: ...`` the validation rows'."""
    match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])*): ", message)
    if not match:
        return message
    name, subscripts = match.group(1), match.group(2)
    keys = re.findall(r"\[\s*'?\"?([^\]'\"]*)'?\"?\s*\]", subscripts)
    if name in PARAM_PATHS:
        where = ".".join([PARAM_PATHS[name], *keys])
    elif name in ("y", "y_val"):
        where = f"data.label {label!r}" + (" of the validation rows" if name == "y_val" else "")
    else:
        return message
    return f"{where} ({name}{subscripts}): {message[match.end():]}"


def fit_recipe(recipe: Any, overrides: Iterable[str] = (), *, verbose: int | None = None,
               log: Callable[[str], None] | None = None, output_dir: str | None = None,
               save: bool = True, overwrite: bool | None = None,
               replace_with: str = ("set output.overwrite: true (or fit_recipe(overwrite=True)) to replace it, "
                                    "or set another output.dir")) -> FitResult:
    """Validate the recipe, read its data, fit, save the model to ``output.dir`` (with the
    ``recipe.yaml`` that reproduces it) and score the test set when there is one.

    A model already in that folder is replaced only when ``overwrite`` (None: the recipe's
    ``output.overwrite``) is true; else the fit is refused before the data are read, naming the
    folder (``replace_with``: the ways out, for that message). Where the folder changed while
    the fit ran so that the model cannot be saved there (another process saved a model in it),
    the model is saved beside it, in a new folder ``<output.dir>.<UTC time>`` (``model_dir``;
    ``saved_instead_of`` names the folder asked for), with an :class:`AutoMMWarning`. A fit that
    fails leaves none of the folders made for its model."""
    from .persistence import remove_made_folders

    start = time.monotonic()
    log = log or (lambda message: None)
    loaded = load_recipe(recipe, overrides, check_data=True, require_data=True)
    target = output_dir or loaded.output_dir
    overwrite = loaded.overwrite if overwrite is None else bool(overwrite)
    argument = "output.dir" if output_dir is None else "output directory"
    made: list[str] = []
    if save and target:  # before the data are read and the fit: a long fit whose model cannot be saved would be lost
        from .persistence import check_save_target

        made = check_save_target(target, argument, overwrite, replace_with)
    try:
        return _fit_loaded(loaded, start, log, verbose, target if save else None, overwrite, argument)
    except BaseException:
        remove_made_folders(made)  # (those a model was saved in, or another save uses, are not empty)
        raise


def _fit_loaded(loaded: Recipe, start: float, log: Callable[[str], None], verbose: int | None,
                target: str | None, overwrite: bool, argument: str) -> FitResult:
    """:func:`fit_recipe` once its output folder is checked: read the data, fit, save to ``target``
    (None: not saved), score the test set."""
    data = loaded.load_data()
    estimator = loaded.estimator()  # (after the data: its recipe notes where their files were found)
    if verbose is not None:
        estimator.set_params(verbose=int(verbose))
    test_rows = f", {len(data.X_test)} test rows" if data.X_test is not None else ", no test set"
    if data.X_val is not None:
        test_rows = f", {len(data.X_val)} validation rows" + test_rows
    log(f"data: {data.source}: {len(data.X_train)} train rows{test_rows}; label {data.label!r}; "
        f"features {', '.join(map(str, data.X_train.columns))}")
    if data.unlabelled_rows:
        log("left out rows without a label: " + ", ".join(f"{n} {part}" for part, n in data.unlabelled_rows.items()))
    seen = _test_rows_seen_in_training(data)
    if seen:
        log(f"note: {seen} of {len(data.X_test)} test rows have the features of a training row (repeated rows): "
            "the test score counts rows the model has seen")
    if data.other_split_rows:
        shown = ", ".join(f"{n} {value!r}" for value, n in list(data.other_split_rows.items())[:5])
        log(f"left out rows of other split values: {shown}{' ...' if len(data.other_split_rows) > 5 else ''} "
            "(data.train_values, test_values and valid_values name the ones used)")
    problem = str(estimator.problem_type)
    if problem == "auto" and data.y_test is not None:  # as fit will read the labels (amounts: no classes)
        with all_warnings_left_out():  # (a host may run recipes in threads: see process_state)
            try:
                problem = estimator._resolve_problem_type(estimator._labels_array(data.y_train))
            except Exception:  # noqa: BLE001 - fit says what is wrong
                problem = "regression"
    if data.X_test is not None and data.y_test is not None and problem != "regression":
        trained = set(data.y_train.tolist())
        unseen = [v for v in data.y_test.tolist() if v not in trained]
        if unseen:
            from .suggestions import quoted_values

            shown = quoted_values(sorted(set(unseen), key=str)[:5])
            log(f"note: {len(unseen)} of {len(data.X_test)} test rows have a label no training row has ({shown}): "
                "the model cannot predict them, and the test scores count them as errors")
    if data.dropped_classes:
        shown = ", ".join(map(str, data.dropped_classes[:10])) + (" ..." if len(data.dropped_classes) > 10 else "")
        log(f"data.min_class_rows: dropped {len(data.dropped_classes)} rare classes ({shown})")
    if data.X_test is not None:
        _check_test_inputs(estimator, data)
    log("fitting ...")
    try:
        estimator.fit(data.X_train, data.y_train, sample_weight=data.w_train, X_val=data.X_val, y_val=data.y_val,
                      sample_weight_val=data.w_val)
    except InputError as exc:  # said in the recipe's keys, which the user edits, not AutoMM's arguments
        raise InputError(recipe_keys_named(str(exc), data.label)
                         + column_types_hint(str(exc), estimator, data.X_train)) from exc
    log(f"fitted in {getattr(estimator, 'fit_seconds_', time.monotonic() - start):.1f} s")
    model_dir = saved_instead_of = None
    if target:
        model_dir, saved_instead_of = _save_fitted(estimator, target, overwrite, argument)
        log(f"saved the model to {model_dir}")
    test_metrics = None
    if data.X_test is not None:
        predictions = estimator.predict(data.X_test)
        test_metrics = compute_metrics(estimator.problem_type_, data.y_test.to_numpy(), predictions,
                                       sample_weight=data.w_test, positive=positive_class(estimator))
    return FitResult(estimator=estimator, recipe=loaded, data=data, model_dir=model_dir, test_metrics=test_metrics,
                     seconds=time.monotonic() - start, saved_instead_of=saved_instead_of)


def _save_fitted(estimator: Any, target: str, overwrite: bool, argument: str) -> tuple[str, str | None]:
    """Save the fitted ``estimator`` to ``target`` with the ``recipe.yaml`` that reproduces it;
    returns where it was saved and, where ``target`` was refused (it changed while the fit ran:
    another process saved a model there), the folder asked for, the model then saved beside it
    in a new folder ``<target>.<UTC time>``: a finished fit is never lost."""
    from .persistence import SAVED_RECIPE_HEADER, save_model

    def save(path: str, replace: bool, hint: str | None) -> str:
        reproduce = to_recipe(estimator)
        reproduce.setdefault("output", {})["dir"] = _escape_env(str(Path(path).expanduser().resolve()))
        # the recipe goes in with the model, in one step: never a new model beside an old recipe
        return save_model(estimator, path, beside={"recipe.yaml": SAVED_RECIPE_HEADER + dump_recipe(reproduce)},
                          overwrite=replace, replace_hint=hint, argument=argument)

    try:
        return save(target, overwrite, "it was saved there while this fit ran"), None
    except FileExistsError as refused:  # checked before the fit, so changed since
        reason = str(refused)  # (the name is unbound after the except block)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        for number in range(1, 100):
            beside = f"{Path(target).expanduser()}.{stamp}" + (f"-{number}" if number > 1 else "")
            if os.path.lexists(beside):
                continue
            try:
                model_dir = save(beside, False, None)
            except FileExistsError:  # taken meanwhile: the next name
                continue
            except OSError as exc:
                raise OSError(exc.errno, f"{refused}; and this fit's model could not be saved beside it either: "
                                         f"{exc.strerror or exc}") from exc
            break
        else:  # pragma: no cover - 99 saves in one second
            raise refused from None
    import warnings

    warnings.warn(f"{reason}; this fit's model is saved beside it instead, to {model_dir!r}", AutoMMWarning,
                  stacklevel=user_stacklevel())
    return model_dir, str(Path(target).expanduser())
