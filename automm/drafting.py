"""A first recipe for a data file: what ``automm init DATA --label COLUMN`` writes.

It reads the file, infers each column's role with the rules ``fit`` uses (and the installed
plugins' rules), leaves out columns that cannot help (identifiers: a distinct integer or code
per row; a single value; every value missing), finds a split column (``split``, ``fold``,
``set``, ... holding ``train`` and ``test`` values), infers the problem type from the label and
writes all of it, with comments saying what was inferred, as a recipe that ``automm fit`` runs
unchanged and a user edits freely. The data file's path is written relative to the recipe's
folder, as recipes read it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .exceptions import AutoMMWarning, InputError, user_stacklevel
from .folders import TEST_NAMES, TRAIN_NAMES, VALID_NAMES
from .recipe_checks import split_text
from .roles import as_datetime, is_number, written_code
from .suggestions import shown_names, shown_roles
from .tables import _plain

__all__ = ["RecipeDraft", "draft_recipe", "DEFAULT_TIME_LIMIT", "LabelColumnError"]


class LabelColumnError(InputError):
    """The label named is not a column of the data file (a usage error on the command line)."""

#: Seconds of search a drafted recipe asks for: the budget the benchmarks measure.
DEFAULT_TIME_LIMIT = 600
#: Names of columns that tell the rows of one file apart (compared in lower case).
SPLIT_COLUMN_NAMES = ("split", "fold", "set", "subset", "partition", "dataset")
#: A column whose name says it is an identifier: ``id``, ``user_id``, ``productId``, ``ID``.
_ID_NAME = re.compile(r"^(?:id|ID|Id)$|[_\s-](?:id|ID|Id)$|(?<=[a-z])(?:Id|ID)$|^index$|^Unnamed: \d+$"
                      r"|^(?:sku|SKU|uuid|UUID|guid|GUID|key|Key|KEY)$|[_\s-](?:sku|SKU|uuid|UUID|guid|GUID)$")
#: Whole numbers all within these bounds are years (a yearly series' 1990, 1991, ...), not a row number.
_YEARS = (1800, 2100)
#: Classes with fewer training rows than this are pointed out (``data.min_class_rows``).
RARE_CLASS_ROWS = 5
#: Rows read to infer the roles (as ``fit`` does).
_SAMPLE_ROWS = 5000
#: A class label of at least this many whole numbers that fill most of their range at one step
#: (years, counts, ratings) is pointed out as a quantity that regression may be meant for.
ORDERED_LABEL_VALUES = 10
#: The share of the steps from the smallest to the largest such number that the labels must hold.
ORDERED_LABEL_FILL = 0.8


@dataclass
class RecipeDraft:
    """A drafted recipe (``content``, a recipe mapping) and what was decided, for the comments."""

    content: dict
    roles: dict[str, str]
    left_out: dict[str, str] = field(default_factory=dict)  # column -> why
    notes: list[str] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)  # what to check before fitting (also warned)

    def to_yaml(self, source: str) -> str:
        """The recipe as YAML text, headed by comments on what was inferred from ``source``."""
        from .recipes import dump_recipe

        lines = [f"# Drafted by 'automm init' from {source}: check it, then run 'automm fit' on this file.",
                 "# Column roles were inferred from the values; change data.column_types where one is wrong."]
        for column, why in self.left_out.items():
            lines.append(f"# Left out: {column!r} ({why}); add it to data.columns (and an identifier's role to "
                         "data.column_types, as fit leaves identifiers out) to use it.")
        lines += [f"# {note}" for note in self.notes]
        lines += [f"# Check: {caution}" for caution in self.cautions]
        return "\n".join(lines) + "\n" + dump_recipe(self.content)

    def describe(self) -> str:
        """One line: the label, the columns used with their roles (their count per role, for many:
        :func:`~automm.suggestions.shown_roles`), the columns left out."""
        used = shown_roles(self.roles)
        left_out = f"; left out {shown_names(self.left_out, plain=True)}" if self.left_out else ""
        return f"{self.content['data']['label']!r} from {used}{left_out}"


def _present(values: list[Any]) -> list[Any]:
    from .data import is_missing

    return [v for v in values if not is_missing(v)]


def _one_word_code(value: Any) -> bool:
    """Whether ``value`` is a code (``SKU-0012``, a UUID): a string of one word that holds a digit
    and names no file. One word: no space, and not two characters of a script written without spaces
    (Chinese, Japanese, Thai), whose phrases have none (the title "男士T恤42码" is no code)."""
    from .components.text import _in_no_space_script

    return (isinstance(value, str) and len(value.split()) == 1 and any(ch.isdigit() for ch in value)
            and not os.path.splitext(value)[1]
            and (value.isascii() or sum(_in_no_space_script(ord(ch)) for ch in value) < 2))  # (ASCII: none)


def _is_identifier(name: str, values: list[Any], n_rows: int) -> bool:
    """Whether a column tells rows apart and so cannot generalise to new ones: a distinct value
    in (nearly) every row (90% of them: repeated rows repeat their ids) that is named like an id (``id``, ``user_id``, ``productId``), or
    integers that increase down the file by one a row but where rows were deleted (a row number; not
    years, 1800 to 2100: a yearly series),
    or one-word codes that all hold a digit (``SKU-0012``, a UUID: :func:`_one_word_code`), mostly not
    amounts, measurements or dates (:func:`_written_quantity`: ``$1,234``, ``120kg``), whose words do not
    sort the rows into groups (:func:`_words_group_rows`), or strings of digits, one of them
    written with a leading zero (``"000412"``; other numbers written as strings are amounts). Distinct numbers or words
    alone are not enough: a price in cents or an emoji's short name is distinct per row and still
    informative, and so is a table sorted by such a number (prices rising by a few cents a row,
    times by 5 seconds)."""
    present = _present(values)
    if len(present) < max(2, 0.95 * n_rows):
        return False
    distinct = len(set(map(str, present)))
    if _ID_NAME.search(name):  # (a file with some rows repeated repeats their ids too)
        return distinct >= 0.9 * len(present)
    if distinct != len(present):
        return False
    if sum(as_datetime(v) is not None for v in present) >= 0.95 * len(present):
        return False  # dates or times, one per row (a daily series): the features a forecast needs
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        try:
            numbers = np.asarray(present, dtype=np.int64)
        except OverflowError:  # an int beyond 64 bits (10**400): no row number
            return False
        if _YEARS[0] <= numbers.min() and numbers.max() <= _YEARS[1]:
            return False  # years, one per row (a yearly series): its trend, not a row number
        steps = np.diff(numbers)
        # a row number counts rows: it rises by one from most rows to the next (gaps where rows were
        # deleted), not by 86,400 (Unix times of a daily series), nor by a few from most rows (a
        # price or a time in a table sorted by it: 3, 7, 2, 5 more)
        return bool(np.all(steps > 0)) and float(np.mean(steps == 1)) >= 0.5
    if all(isinstance(v, str) and is_number(v) for v in present):
        # numbers written as strings: codes where they are digits, one written with leading zeros
        # ("000412", as a number never is), else amounts ("-120", "1999": read_csv(dtype=str), JSON)
        return all(v.strip().isdigit() for v in present) and any(map(written_code, present))
    return (all(map(_one_word_code, present)) and sum(map(_written_quantity, present)) < 0.5 * len(present)
            and not _words_group_rows(present))


#: A number with its unit (``120kg``, ``5.5cm``, ``16GB``) or a size (``1920x1080``): a measurement, not a code.
_NUMBER_WITH_UNIT = re.compile(r"\s*[-+]?\d+(?:[.,]\d+)*\s*(?:[^\W\d_]{1,3}\.?|[x×]\d+(?:[.,]\d+)?)\s*")
#: What separates the numbers of an amount, a date, a time or a place (``$1,234.50``, ``3/16/2024``,
#: ``14:32``, ``48.85,2.35``); a code's groups of digits are joined by dashes (``555-0123``).
_NUMBER_MARKS = re.compile(r"[.,:/%$€£¥]")


def _written_quantity(value: str) -> bool:
    """Whether ``value`` is an amount, a measurement, a date, a time or coordinates written as text
    (``$1,234``, ``120kg``, ``3/16/2024``, ``14:32:05``): digits and the marks between numbers, no
    letter but a unit's. Distinct in every row of a small table, and still no identifier."""
    text = value.strip()
    if _NUMBER_MARKS.search(text) and not any(char.isalpha() for char in text):
        return True
    return bool(_NUMBER_WITH_UNIT.fullmatch(text))


#: A word of an ASCII text as the text encoders read it: letters and digits.
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def _words_group_rows(codes: list[Any]) -> bool:
    """Whether a word of ``codes`` (letters only, as the text encoders read it) is in some rows, at
    least 3 and 1% of them, but not in 90%: a part that sorts the codes into groups (a product line's
    ``TS-`` of ``TS-0412``, a URL's ``/women/shoes/``), which a text encoder learns from. A prefix of
    (nearly) every code (``ORD-``, ``https://shop.example.com/p/``) tells nothing, and a hash's words
    meet by chance in 2 rows."""
    from collections import Counter

    from .roles import read_words

    def words(code: str) -> set[str]:  # (an ASCII code's words as the tokenizer reads them, 10x faster)
        return set(_ASCII_WORD.findall(code.lower()) if code.isascii() else read_words(code))

    counts = Counter(word for code in codes for word in words(str(code)) if word.isalpha())
    return any(max(3, 0.01 * len(codes)) <= count < 0.9 * len(codes) for count in counts.values())


def _evenly_spaced_numbers(labels) -> tuple[int, int, int, int] | None:
    """``(count, smallest, largest, step)`` of the distinct values of a label column (a pandas
    Series) when they are whole numbers, at least :data:`ORDERED_LABEL_VALUES` of them, holding
    :data:`ORDERED_LABEL_FILL` of the values from the smallest to the largest at their common step
    (2008, 2009, ..., 2019: years; 0, 5, ..., 100: scores), else None. Numbers a user made
    categories, strings and booleans are none."""
    import pandas as pd

    if isinstance(labels.dtype, pd.CategoricalDtype) or labels.dtype.kind not in "iuf":
        return None
    values = pd.unique(labels.dropna().to_numpy(dtype=np.float64))
    if len(values) < ORDERED_LABEL_VALUES or not np.all(np.isfinite(values)) or np.any(values % 1 != 0) \
            or np.max(np.abs(values)) >= 2 ** 53:
        return None
    values = np.sort(values.astype(np.int64))
    step = int(np.gcd.reduce(np.diff(values)))
    if len(values) < ORDERED_LABEL_FILL * ((int(values[-1]) - int(values[0])) // step + 1):
        return None
    return len(values), int(values[0]), int(values[-1]), step


def _split_column(frame, label: str) -> tuple[str, list, list, list] | None:
    """(column, train values, test values, validation values) of the first column named like a
    split whose values include a train and a test value."""
    for column in frame.columns:
        if column == label or str(column).lower() not in SPLIT_COLUMN_NAMES:
            continue
        values = [v for v in frame[column].dropna().unique().tolist()]
        lowered: dict[str, list] = {}  # every spelling of a value: "train", "Train", "train "
        for v in values:
            lowered.setdefault(str(v).strip().lower(), []).append(v)
        train, test, valid = ([v for k in names if k in lowered for v in lowered[k]]
                              for names in (TRAIN_NAMES, TEST_NAMES, VALID_NAMES))
        if train and test:
            return str(column), train, test, valid
    return None


#: Names of a column that splits the rows whatever else it could be ("set", "dataset" can be features).
_SURE_SPLIT_NAMES = ("split", "fold", "partition", "subset")


def _unread_split_caution(column: str, counts, left_out: bool) -> str:
    """What to check of a column named like a split whose values name no train and test rows: its
    values, and the data keys that would split by them (a train and a validation value, as
    such; others in the order of their names, for the user to choose)."""
    values = list(counts.index)
    lowered = {str(v).strip().lower(): v for v in values}
    train = next((lowered[k] for k in TRAIN_NAMES if k in lowered), None)
    valid = next((lowered[k] for k in VALID_NAMES if k in lowered), None)
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.items())
    if train is not None:
        others = [v for v in values if v != train]
        keys = (f"data.train_values: [{train}], data.valid_values: [{valid}] (its rows then validate, as X_val), or "
                f"data.test_values: [{valid}] (its rows then score the model)" if valid is not None
                else f"data.train_values: [{train}], data.test_values: [{', '.join(map(str, others))}]")
        what = f"{train!r} names training rows, and no value test rows"
    else:
        keys = (f"data.train_values: [{values[0]}], data.test_values: [{values[1]}] (the most rows train; or the "
                "values meant)")
        what = "none of its values names training or test rows as automm reads them (train, test, valid, ...)"
    kept = "it is left out of the features" if left_out else "it is kept as a feature"
    return (f"column {column!r} is named like a split, with values {shown}: {what}, and {kept}; if it splits "
            f"the rows, set data.split_column: {column}, {keys}")


def _path_from(folder: Path, file: Path) -> str:
    """``file`` relative to ``folder`` when it is near (at most two levels up), else absolute."""
    absolute = file.resolve()
    try:
        relative = Path(os.path.relpath(absolute, folder.resolve()))
    except ValueError:  # another drive (Windows)
        return absolute.as_posix()
    return relative.as_posix() if relative.parts[:3].count("..") <= 2 else absolute.as_posix()


def draft_recipe(data: str | os.PathLike, label: str, *, recipe_dir: str | os.PathLike = ".",
                 time_limit: float | None = DEFAULT_TIME_LIMIT, name: str | None = None,
                 columns: Sequence[str] | None = None) -> RecipeDraft:
    """Draft a recipe that trains on ``data`` (a CSV, TSV or Parquet file) to predict ``label``.

    ``recipe_dir`` is the folder the recipe will be written to (the data path is written
    relative to it); ``time_limit`` the search's budget (None: one default model, no search);
    ``columns`` the feature columns to use (``automm fit DATA --set data.columns=[...]``) in place
    of those the draft would choose: their roles are inferred, and the cautions are about them
    alone (a name that is no column of ``data`` is left for the recipe's check to report).
    Raises :class:`InputError` when the file cannot be read or has no column ``label``.
    """
    from . import registry as _registry
    from .data import as_table, infer_roles
    from .estimator import AutoMM
    from .suggestions import did_you_mean
    from .tables import (data_file_folders, image_folders, labelled_rows, read_table, resolve_image_paths,
                         whole_number_labels)
    from .roles import BASE_ROLES

    data = Path(data)
    frame = read_table(data)
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        repeated = list(dict.fromkeys(n for n in names if names.count(n) > 1))
        raise InputError(f"{str(data)!r}: column names must be unique, got {shown_names(names)} "
                         f"({shown_names(repeated)} more than once)")
    if label not in names:
        hint = did_you_mean(label, names) or "."
        raise LabelColumnError(f"--label: {str(data)!r} has no column {label!r}{hint} Its columns: "
                               f"{shown_names(names, plain=True)}")
    frame.columns = names
    frame = whole_number_labels(frame, label)
    labelled = labelled_rows(frame, label, "rows", {})
    if labelled.empty:
        raise InputError(f"--label: every value of column {label!r} in {str(data)!r} is missing")
    sample = labelled.head(_SAMPLE_ROWS)
    notes: list[str] = []
    left_out: dict[str, str] = {}

    split = _split_column(frame, label)
    used = [c for c in names if c != label and (split is None or c != split[0])]
    unread_splits = []  # columns named like a split whose values name no train and test rows
    for column in list(used):
        values = sample[column].tolist()
        present = _present(values)
        if str(column).lower() in SPLIT_COLUMN_NAMES and 2 <= len(set(map(str, present))) <= 3:
            counts = frame[column].dropna().map(split_text).value_counts()
            if str(column).lower() in _SURE_SPLIT_NAMES:  # ("set", "dataset" may be a feature: kept, said)
                left_out[column] = "named like a split (see Check)"
            unread_splits.append((column, counts))
        elif not present:
            left_out[column] = "every value is missing"
        elif len(set(map(str, present))) == 1 and len(present) > 1:
            left_out[column] = f"one value, {present[0]!r}"
        elif _is_identifier(column, values, len(sample)):
            left_out[column] = "a distinct value per row: an identifier"
    used = [c for c in used if c not in left_out]
    chosen = [c for c in dict.fromkeys(columns or ()) if c in names and c != label]
    if chosen:  # the user's choice: nothing of it is left out, nothing else is used
        used, left_out = chosen, {}
    if not used:
        raise InputError(f"{str(data)!r}: no column is left to learn {label!r} from "
                         f"(left out: {', '.join(f'{c} ({why})' for c, why in left_out.items()) or 'none'})")

    registry = _registry.get_registry()
    known = sorted({*BASE_ROLES, *registry.modalities()} - {"tabular"})
    # relative image paths are looked up where the recipe's fit will look for them
    found: set[Path] = set()
    resolved = resolve_image_paths(sample[used], image_folders(data, recipe_dir), found_in=found)
    # found only through the current directory: the recipe names it, to run from anywhere
    files_dirs = [folder for folder in found
                  if folder not in (*data_file_folders(data), Path(os.path.abspath(recipe_dir)))]
    roles = infer_roles(as_table([resolved]), None, registry.plugin_manager, known)

    cautions = [_unread_split_caution(column, counts, column in left_out) for column, counts in unread_splits]
    if _is_identifier(label, labelled[label].tolist(), len(labelled)):
        cautions.append(f"the label {label!r} looks like an identifier (a distinct value per row), which no model "
                        "can learn to predict; is it the column to predict?")
    estimator = AutoMM()
    labels = estimator._labels_array(labelled[label])
    from .data import declared_categorical

    with warnings.catch_warnings():  # (its caution below says more, in a recipe's words)
        warnings.filterwarnings("ignore", r"y: \d+ evenly spaced whole numbers", AutoMMWarning)
        problem_type = estimator._resolve_problem_type(labels, declared_classes=declared_categorical(labelled[label]))
    if problem_type != "regression":
        training = labelled if split is None else labelled[labelled[split[0]].isin(split[1])]
        counts = training[label].astype(str).value_counts()
        if len(counts) < 2:
            raise InputError(f"--label: column {label!r} holds one value ({counts.index[0]!r}) in the "
                             f"{'training ' if split is not None else ''}rows of {str(data)!r}: no model can learn "
                             "to predict it; is it the column to predict?")
        notes.append(f"The label {label!r} has {len(counts)} classes: problem.type {problem_type}.")
        rare = counts[counts < RARE_CLASS_ROWS]
        if len(rare):
            one = len(rare) == 1
            notes.append(f"{len(rare)} of them {'has' if one else 'have'} fewer than {RARE_CLASS_ROWS} training rows "
                         f"({', '.join(map(repr, rare.index[:5]))}{', ...' if len(rare) > 5 else ''}); "
                         f"data.min_class_rows: {RARE_CLASS_ROWS} would leave {'it' if one else 'them'} out.")
        spaced = _evenly_spaced_numbers(labelled[label])
        if spaced is not None:
            n, low, high, step = spaced
            cautions.append(f"the label {label!r} holds {n} evenly spaced whole numbers, {low} to {high}"
                            f"{f' by {step}' if step != 1 else ''}, drafted as {n} classes: learnt apart, their order "
                            "unused, a value no training row holds never predicted; if they are years, amounts or "
                            "another ordered quantity, problem.type: regression may be meant (it predicts numbers, "
                            "between them too)")
        cautions += _answer_columns(training, label, [c for c in used if roles[c] in ("categorical", "text")])
    else:
        notes.append(f"The label {label!r} holds numbers: problem.type regression (set it to multiclass if they "
                     "are class codes).")

    data_path = _path_from(Path(recipe_dir), data)
    section: dict[str, Any] = {"path": Path(data_path).as_posix(), "label": label}
    if files_dirs:
        shown = [_path_from(Path(recipe_dir), folder) for folder in files_dirs]
        section["files_dir"] = shown[0] if len(shown) == 1 else shown
    if split is not None:
        column, train, test, valid = split
        section.update(split_column=column, train_values=[_plain(v) for v in train],
                       test_values=[_plain(v) for v in test])
        if valid:
            section["valid_values"] = [_plain(v) for v in valid]
        rows = {k: int(frame[column].isin(v).sum()) for k, v in (("train", train), ("test", test), ("valid", valid))}
        notes.append(f"Rows split by column {column!r}: {rows['train']} train, {rows['test']} test"
                     + (f", {rows['valid']} validation" if valid else "") + ".")
        other = frame[column][~frame[column].isin([*train, *test, *valid])]
        if len(other):
            counts = other.astype(str).value_counts()
            shown = ", ".join(f"{value!r} ({n})" for value, n in counts.head(5).items())
            cautions.append(f"{len(other)} rows of column {column!r} are neither train nor test (values {shown}"
                            f"{', ...' if len(counts) > 5 else ''}) and are left out; add their values to "
                            "data.train_values or data.test_values if they belong there")
    else:
        notes.append("No split column found: every row trains (the score is the holdout's); to keep test rows "
                     "apart, give data.split_column with data.train_values / data.test_values, or data.train "
                     "and data.test files.")
    section["columns"] = used
    section["column_types"] = {c: roles[c] for c in used}

    stem = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", data.stem).strip("-") or "model"
    content: dict[str, Any] = {
        "version": 1,
        "description": f"{label} from {shown_names(used, plain=True)} (drafted by automm init from {data.name})",
        "data": section,
        "problem": {"type": problem_type, "metric": "auto"},
    }
    if time_limit is not None:
        content["search"] = {"time_limit": float(time_limit) if not float(time_limit).is_integer()
                             else int(time_limit)}
    content["output"] = {"dir": f"automm-models/{stem}"}
    content["seed"] = 0
    for caution in cautions:
        warnings.warn(caution, AutoMMWarning, stacklevel=user_stacklevel())
    return RecipeDraft(content, {c: roles[c] for c in used}, left_out, notes, cautions)


def _answer_columns(rows, label: str, columns: list[str]) -> list[str]:
    """Cautions for columns that determine a class label: every value of the column goes with one
    label (and repeats: two or more rows per value on average), e.g. a sub-category when the label
    is its category. A model reads the answer off such a column, which new rows may not have."""
    cautions = []
    labelled = rows[rows[label].notna()]
    for column in columns:
        pairs = labelled[[column, label]].dropna().astype(str)
        n_values = pairs[column].nunique()
        if len(pairs) < 20 or n_values < 2 or n_values > len(pairs) / 2:
            continue
        if (pairs.groupby(column)[label].nunique() == 1).all():
            cautions.append(f"column {column!r} determines the label: each of its {n_values} values goes with one "
                            f"{label!r} value, so a model would read the answer off it; leave it out of "
                            "data.columns unless new rows will have it")
    return cautions
