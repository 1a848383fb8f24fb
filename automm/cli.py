"""The ``automm`` command line (also ``python -m automm``).

Subcommands: ``init``, ``fit``, ``predict``, ``evaluate``, ``validate``, ``plugins``, ``cache``, ``worker``; ``automm
SUBCOMMAND --help`` describes each. Results go to stdout, progress and errors to stderr.

Exit codes: 0 success; 2 usage errors, recipe errors and other mistakes in what the command
was given, found before any work (a missing file or model directory, a --filter that leaves no
row, an unusable --device, an output folder that cannot be written, a label column that is not
the model's; nothing was done); 1 failures during the work (unreadable data or images, a failed
fit, a model saved beside its folder because another save took the folder meanwhile, ...); 130
when interrupted (also when ``fit`` saved the best of what had finished). User
errors print one message and no traceback; ``--debug``
adds the traceback. ``--quiet`` silences stderr but for errors; stdout keeps the result
(``fit``'s is then only the model directory, not the summary).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import functools
import json
import math
import os
import sys
import traceback
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Sequence

from .files import is_stream, read_regular_file, url_problem, write_output
from .suggestions import shown_names, shown_roles

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG = "automm"
DEFAULT_OUTPUT_ROOT = "automm-models"


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


# ---------------------------------------------------------------------------------- output helpers
class _Out:
    """Where a command writes: results to stdout, messages to stderr unless quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    @staticmethod
    def result(text: str = "") -> None:
        print(text, file=sys.stdout)


@contextlib.contextmanager
def _warnings_as_messages(quiet: bool, debug: bool):
    """Warnings raised while a command runs, as ``automm: warning: ...`` lines on stderr (none
    when ``quiet``; Python's own format, with the source line, under ``--debug``). The warnings
    filters stay as they are, ``PYTHONWARNINGS=error`` (``-W error``) included, quiet or not."""
    if debug:
        yield
        return
    with warnings.catch_warnings():
        if quiet:  # hidden, not ignored (a filter that ignored them let -q pass what PYTHONWARNINGS=error fails)
            warnings.showwarning = lambda *args, **kwargs: None
        else:
            from .exceptions import AutoMMWarning  # (not at the top: --help and --version import no scikit-learn)

            def show(message, category, filename, lineno, file=None, line=None) -> None:
                kind = "" if category in (UserWarning, AutoMMWarning) else f" ({category.__name__})"
                print(f"{PROG}: warning{kind}: {message}", file=sys.stderr, flush=True)

            warnings.showwarning = show
        yield


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        from .evaluation import four_places

        return four_places(value)
    return str(value)


def _display_width(text: str) -> int:
    """The columns ``text`` takes in a terminal: two a wide character (Chinese, Japanese, Korean,
    full-width forms, emoji), none a combining mark or a format character (a zero-width joiner)."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.category(char) in ("Mn", "Me", "Cf") else 2 if unicodedata.east_asian_width(char) in "WF"
               else 1 for char in text)


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None, indent: str = "  ") -> str:
    """Rows as aligned text columns (aligned as a terminal shows them: a column name or a class in
    Chinese took twice the columns its length counted, and pushed the columns after it out of line)."""
    cells = [[_format_value(v) for v in row] for row in rows]
    if headers:
        cells.insert(0, list(headers))
    if not cells:
        return ""
    widths = [max(_display_width(row[i]) if i < len(row) else 0 for row in cells) for i in range(max(map(len, cells)))]
    lines = [indent + "  ".join(c + " " * (w - _display_width(c)) for c, w in zip(row, widths)).rstrip() for row in cells]
    if headers:
        lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json(payload: Any) -> str:
    def default(value: Any) -> Any:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        return str(value)

    def clean(value: Any) -> Any:  # NaN/inf are not JSON
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    return json.dumps(clean(payload), indent=2, default=default, ensure_ascii=False)


def _parse_filters(items: Sequence[str] | None) -> list[tuple[str, str]]:
    filters = []
    for item in items or ():
        if "=" not in item or not item.split("=", 1)[0]:
            raise UsageError(f"--filter: expected COLUMN=VALUE, found {item!r}")
        column, value = item.split("=", 1)
        filters.append((column, value))
    return filters


def _existing(path: str, argument: str) -> str:
    """``path``, or :class:`UsageError` naming ``argument`` when nothing is there (or it is a URL:
    automm reads local files only)."""
    _local(path, argument)
    if not os.path.exists(path):
        raise UsageError(f"{argument}: {path!r} not found (from {os.getcwd()})")
    return path


def _local(path: str, argument: str) -> None:
    """:class:`UsageError` naming ``argument`` when ``path`` is a URL (:func:`url_problem`)."""
    problem = url_problem(path)
    if problem is not None:
        raise UsageError(f"{argument}: {path!r} is {problem}")


def _data_source(path: str, argument: str = "DATA") -> str:
    """``path`` when it is a data file of a known format or a folder, else :class:`UsageError`
    naming ``argument`` (found before any work, as a missing file is)."""
    from .tables import UNKNOWN_FORMAT, data_format

    if data_format(Path(_existing(path, argument)), None) is None:
        raise UsageError(f"{argument}: {path!r}: {UNKNOWN_FORMAT}")
    return path


@contextlib.contextmanager
def _folder_as_given(argument: str = "DATA"):
    """Around reading a data folder: one that holds no images is a mistake in what was given
    (:class:`UsageError`), not a failure of the work."""
    from .folders import NoImagesError

    try:
        yield
    except NoImagesError as exc:
        raise UsageError(f"{argument}: {exc}") from None


def _read_data(path: str, filters: Sequence[tuple[str, str]], roles: dict[str, str], *, empty_ok: bool = False,
               folders: Sequence[str] = ()):
    """A data file for predict/evaluate: (the rows kept by ``filters``, with relative image paths
    looked up in the data file's folder, the working directory, then ``folders`` (the model's
    ``data.files_dir``: a file of the same name in the user's folders is theirs); the same rows as the
    file holds them). A filter that keeps no row is a :class:`UsageError` listing the column's
    values; a file without rows an :class:`InputError` unless ``empty_ok``. The frames' index is
    the rows' numbers in the file."""
    from .suggestions import did_you_mean, quoted_values
    from .tables import image_folders, read_table, resolve_image_paths

    with _folder_as_given():
        frame = read_table(_data_source(path))
    if len(frame) == 0:
        if empty_ok:
            return frame, frame
        from .exceptions import InputError

        raise InputError(f"{path}: no rows")
    for i, (column, value) in enumerate(filters):
        if column not in frame.columns:
            raise UsageError(f"--filter: no column {column!r} in {path}; columns are "
                             f"{shown_names(frame.columns, plain=True)}{did_you_mean(column, list(frame.columns))}")
        from .data import is_missing
        from .recipe_checks import split_texts

        cells = split_texts(frame[column])  # as fit reads them: a fold column read as floats (an empty cell): 2.0 is 2
        as_written = frame[column].map(lambda v: None if is_missing(v) else str(v))  # and 2.0 is 2.0
        kept = frame[(cells == value) | (as_written == value)]
        if len(kept) == 0:
            found = sorted(cells.dropna().unique().tolist())
            shown = quoted_values(found)
            rows = "the rows the filters before it keep" if i else f"the rows of {path}"
            raise UsageError(f"--filter {column}={value}: no row has {value!r} in column {column!r}; its values "
                             f"in {rows} are {shown}{did_you_mean(value, found)}")
        frame = kept
    tried = image_folders(path)  # the data file's folder, then the working directory: the user's files first,
    tried += [Path(f) for f in folders if Path(f) not in tried]  # then where the model's fit found its own
    return resolve_image_paths(frame, tried, roles, source=path, inputs=list(roles)), frame


def _device(device: str, argument: str) -> str:
    """``device`` when this machine can use it, else :class:`UsageError` naming ``argument``."""
    from .training import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"{argument}: {exc}") from None
    return device


def _cache_dir_arg(cache_dir: str | None):
    """``--cache-dir`` as the feature cache reads it (:func:`resolve_cache_dir`: ``~`` expanded,
    None the default folder); a usage error when it names a file, a URL, or nothing (an unset variable,
    ``--cache-dir "$CACHE"``: read as the current directory, it put a ``features`` folder there)."""
    from .feature_cache import resolve_cache_dir

    if cache_dir is not None and not str(cache_dir).strip():
        raise UsageError("--cache-dir: an empty path; give the feature cache's folder, or leave --cache-dir out for "
                         "the default")
    if (problem := url_problem(cache_dir, writing=True)) is not None:
        raise UsageError(f"--cache-dir: {cache_dir!r} is {problem}")
    root = resolve_cache_dir(cache_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--cache-dir: {str(root)!r} is a file, not a cache directory")
    inside = _cache_holding(root)
    if inside is not None:  # (read as a cache of its own: 0 files shown, none cleared, all computed again)
        raise UsageError(f"--cache-dir: {str(root)!r} is a folder inside the feature cache {str(inside)!r} (which "
                         "holds features/<encoder>/...); give that folder")
    return root


def _cache_holding(root) -> "Path | None":
    """The feature cache whose ``features`` folder, or one of whose encoders' folders, ``root`` is
    (``--cache-dir ~/.cache/automm/features``), else None: a cache holds ``features/<namespace>/<xx>/``."""
    import re

    def shards(folder) -> bool:
        try:
            return any(entry.is_dir() and re.fullmatch(r"[0-9a-f]{2}", entry.name) for entry in folder.iterdir())
        except OSError:
            return False

    if not root.is_dir() or (root / "features").is_dir():
        return None
    if root.name == "features" and any(shards(entry) for entry in root.iterdir() if entry.is_dir()):
        return root.parent
    if root.parent.name == "features" and shards(root):
        return root.parent.parent
    return None


def _load_model(model_dir: str, device: str, cache_dir: str | None = None):
    """The model of ``model_dir`` on ``device``; ``cache_dir`` (``--cache-dir``): where its frozen
    encoders keep the features of new data, in place of the folder it was fitted with."""
    from .estimator import AutoMM
    from .persistence import MANIFEST

    _device(device, "--device")
    if cache_dir is not None:
        _cache_dir_arg(cache_dir)
    if not os.path.isdir(_existing(model_dir, "MODEL_DIR")):
        raise UsageError(f"MODEL_DIR: {model_dir!r} is a file, not a model directory")
    if not os.path.isfile(os.path.join(model_dir, MANIFEST)):
        raise UsageError(f"MODEL_DIR: {model_dir!r} holds no automm model (no {MANIFEST}); give a directory "
                         "written by 'automm fit'")
    return AutoMM.load(model_dir, device=device, cache_dir=cache_dir)


CACHE_DIR_HELP = ("where the model's frozen pretrained encoders keep the features of new data (this machine's "
                  "feature cache), in place of the cache_dir it was fitted with (default: that one, else "
                  "$AUTOMM_CACHE_DIR, else $XDG_CACHE_HOME/automm, else ~/.cache/automm)")
COLUMNS_HELP = ("for a model fitted on unnamed inputs (positional lists or an array, in Python: inputs x0, x1, ...): "
                "the data's columns that hold them, in order, e.g. --columns image,name")


def _input_columns(estimator, columns: str | None) -> dict[str, str]:
    """The data column of each of the model's inputs: its own name, or for a model fitted on
    unnamed inputs (``x0``, ``x1``, ...: positional lists or an array, in Python) the columns
    ``--columns`` names, in order."""
    if columns is None:
        return {c: c for c in estimator.columns_}
    named = [c.strip() for c in columns.split(",")]
    if not estimator.input_positional_:
        raise UsageError(f"--columns: the model was fitted on named columns ({', '.join(estimator.columns_)}), which "
                         "the data must have; --columns names the data's columns for a model fitted on unnamed "
                         "inputs")
    if len(named) != len(estimator.columns_) or not all(named) or len(set(named)) != len(named):
        raise UsageError(f"--columns: the model has {len(estimator.columns_)} inputs "
                         f"({_positional_inputs(estimator)}); give as many distinct columns, got {columns!r}")
    return dict(zip(estimator.columns_, named))


def _positional_inputs(estimator) -> str:
    return ", ".join(f"{c}: {estimator.column_roles_.get(c, '?')}" for c in estimator.columns_)


def _columns_by_role(estimator, frame) -> list[str] | None:
    """The columns of ``frame`` that hold a model's unnamed inputs, in the model's order, where
    their roles (read from the first rows, as ``fit`` reads them) tell them apart: each input's the
    one column of its role (a text or a categorical one for either); else None."""
    from . import registry
    from .data import as_table, infer_roles
    from .process_state import all_warnings_left_out

    reg = registry.get_registry()
    try:
        with all_warnings_left_out():
            head = frame.head(200)
            roles = infer_roles(as_table((head,), plugin_manager=reg.plugin_manager), None, reg.plugin_manager,
                                estimator._known_roles(reg))
    except Exception:  # noqa: BLE001 - a hint only
        return None
    words = ("text", "categorical")
    found = []
    for column in estimator.columns_:
        role = estimator.column_roles_.get(column)
        same = [c for c, r in roles.items() if r == role]
        if len(same) != 1 and role in words:
            same = [c for c, r in roles.items() if r in words]
        if len(same) != 1 or same[0] in found:
            return None
        found.append(same[0])
    return [str(c) for c in found]


def _data_roles(estimator, columns: dict[str, str]) -> dict[str, str]:
    """The role of each data column that feeds the model (for looking up relative image paths)."""
    return {columns[c]: role for c, role in estimator.column_roles_.items() if c in columns}


def _model_inputs(estimator, frame, data_path: str, columns: dict[str, str] | None = None) -> tuple:
    """The inputs ``predict`` needs, taken from the columns of ``frame`` (``columns``: the data
    column of each model input, see :func:`_input_columns`)."""
    from .exceptions import InputError
    from .suggestions import did_you_mean
    from .tables import with_file_rows

    columns = columns or {c: c for c in estimator.columns_}
    missing = [columns[c] for c in estimator.columns_ if columns[c] not in frame.columns]
    if missing and estimator.input_positional_ and missing == list(estimator.columns_):
        guess = _columns_by_role(estimator, frame)
        order = ", then ".join(f"its {estimator.column_roles_.get(c, '?')} column" for c in estimator.columns_)
        raise UsageError(f"{data_path}: the model was fitted on unnamed inputs ({_positional_inputs(estimator)}); "
                         f"name the data's columns that hold them, in order ({order}), with --columns"
                         + (f" (e.g. --columns {','.join(guess)})" if guess else "")
                         + f"; its columns are {shown_names(frame.columns, plain=True)}")
    if missing:
        unused = [c for c in frame.columns if c not in columns.values()]  # (not one the model reads already)
        if len(missing) == 1:
            hint = did_you_mean(missing[0], unused)
        else:  # each its own, as AutoMM.predict says them ('Title' for 'title')
            from .suggestions import rename_hint

            hint = rename_hint(missing, unused)
        if estimator.input_positional_ and any(name != given for name, given in columns.items()):
            # (named by --columns: not "the model was trained on" them, nor to be added empty)
            raise UsageError(f"--columns: {data_path} has no column(s) {missing}; its columns are "
                             f"{shown_names(frame.columns, plain=True)}{hint}")
        them = "it" if len(missing) == 1 else "them"
        raise InputError(f"{data_path}: lacks the column(s) {shown_names(missing)} the model was trained on (to "
                         f"predict without {them}, add {them} with every cell empty); its columns are "
                         f"{shown_names(frame.columns, plain=True)}{hint}")
    frame = with_file_rows(frame, data_path)
    if estimator.input_positional_:
        return tuple(frame[columns[c]] for c in estimator.columns_)
    return (frame[list(estimator.columns_)],)


# ---------------------------------------------------------------------------------- fit
def _draft(data, label: str, argument: str = "DATA", **kwargs):
    """A data file's drafted recipe; a ``--label`` that names no column is a usage error, as is a
    folder without images (named as ``argument``)."""
    from .drafting import LabelColumnError, draft_recipe

    try:
        with _folder_as_given(argument):
            return draft_recipe(data, label, **kwargs)
    except LabelColumnError as exc:
        raise UsageError(str(exc)) from None


def _recipe_or_draft(args: argparse.Namespace):
    """The recipe ``automm fit`` runs: RECIPE read, or a data file's drafted recipe (``--label``)."""
    from .recipes import load_recipe
    from .tables import data_format

    overrides = list(args.overrides or [])
    is_data = Path(args.recipe).suffix.lower() not in (".yaml", ".yml") and \
        (data_format(Path(args.recipe), None) is not None or args.label is not None)
    if is_data:
        _data_source(args.recipe, "RECIPE")
    if not is_data:
        if args.label is not None:
            raise UsageError("--label goes with a data file (automm fit DATA.csv --label COLUMN); a recipe names its "
                             "label in data.label")
        return load_recipe(args.recipe, overrides, check_data=True, require_data=True)
    if args.label is None:
        raise UsageError(f"{args.recipe} is a data file: name the column to predict with --label COLUMN "
                         f"(or draft a recipe to edit first: automm init {args.recipe} --label COLUMN -o recipe.yaml)")
    draft = _draft(args.recipe, args.label, "RECIPE", recipe_dir=Path.cwd(), columns=_columns_set(overrides))
    _Out(args.quiet or args.json).log(f"drafted a recipe from {args.recipe}: {draft.describe()}")
    recipe = load_recipe(draft.content, overrides, base_dir=Path.cwd(), check_data=True, require_data=True)
    recipe.source = args.recipe
    return recipe


def _columns_set(overrides: Sequence[str]) -> list[str] | None:
    """The feature columns ``--set data.columns=[...]`` names (the draft of a data file uses
    them, not its own), or None: not set, or not a list of names (the recipe's check says so)."""
    from .recipes import RecipeError, apply_overrides

    try:
        columns = apply_overrides({}, overrides).get("data", {}).get("columns")
    except (RecipeError, AttributeError):
        return None
    return [str(c) for c in columns] if isinstance(columns, list) and columns else None


def _training_line(summary: dict, of_best: str = "") -> tuple[str, str]:
    """How the kept model (``of_best``: an ensemble's best trial, named after the label) was
    trained: epochs, or the settings the linear or the nearest-neighbour model tried and the one
    it kept, or the gradient-boosted model's iterations."""
    from .boosting import BOOSTING_SOLVER
    from .linear import LINEAR_SOLVER
    from .neighbors import NEIGHBORS_SOLVER

    reason = f" ({summary['stop_reason']})" if summary.get("stop_reason") else ""
    kept = summary.get("kept_setting") or {}
    if summary.get("solver") == LINEAR_SOLVER and "l2_c" in kept:
        return f"L2 penalty{of_best}", f"C = {kept['l2_c']:g} kept of {summary['epochs_run']} strengths tried{reason}"
    if summary.get("solver") == NEIGHBORS_SOLVER and "k" in kept:
        return f"neighbours{of_best}", (f"k = {kept['k']}, temperature {kept['temperature']:g} kept of "
                                        f"{summary['epochs_run']} settings tried{reason}")
    if summary.get("solver") == BOOSTING_SOLVER and "n_iter" in kept:
        return f"boosting{of_best}", (f"learning rate {kept['learning_rate']:g}, up to {kept['max_leaf_nodes']} leaves "
                                      f"a tree{reason}")
    return f"epochs{of_best}", f"{summary['epochs_run']} run, best {summary['best_epoch']}{reason}"


def _check_file_target(target: Path, argument: str) -> None:
    """:class:`UsageError` naming ``argument`` when no file can be written at ``target``: its
    folder is missing or cannot be written (tried by creating and removing a file there, which
    is what writing it whole will do)."""
    import tempfile

    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"{argument}: folder {str(folder)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".automm-write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"{argument}: folder {str(folder)!r} cannot be written ({exc.strerror or exc})") from None


def _check_not_overwriting(target: Path, data: str, model_dir: str | None = None) -> None:
    """:class:`UsageError` when ``-o`` names the data file the command reads or a file of the
    model (replaced, they would be lost); any other file is replaced, as ``>`` does."""
    from .persistence import MEMBERS, MODEL_ENTRIES

    if not target.exists():
        return
    if Path(data).is_file() and os.path.samefile(target, data):
        raise UsageError(f"-o: {str(target)!r} is the data file DATA: it would be replaced; write to another file"
                         + (" (--keep COLUMN carries data columns into the predictions)" if model_dir else ""))
    if model_dir is None or not Path(model_dir).is_dir():
        return
    where, model = target.resolve(), Path(model_dir).resolve()
    if (where.parent == model and where.name in (*MODEL_ENTRIES, "recipe.yaml")) or model / MEMBERS in where.parents:
        raise UsageError(f"-o: {str(target)!r} is a file of the model {model_dir!r}: the predictions would replace "
                         "it; write them to another file")


#: How ``automm fit`` replaces a model saved before: the end of its refusal's message.
REPLACE_WITH = ("pass --overwrite (or set output.overwrite: true in the recipe) to replace it, or give another "
                "folder with -o DIR")


def _check_output_dir(path: str, argument: str, overwrite: bool = False) -> list[str]:
    """:class:`UsageError` naming ``argument`` when no model can be saved at ``path``, or a model
    is there and not ``overwrite`` (checked before the data are read: a long fit whose model
    cannot be saved would be lost); returns the folders the check made, for
    :func:`~automm.persistence.remove_made_folders` where nothing is saved after all."""
    from .exceptions import InputError
    from .persistence import check_save_target

    try:
        return check_save_target(path, argument, overwrite, REPLACE_WITH)
    except OSError as exc:  # FileExistsError included
        raise UsageError(exc.strerror or str(exc)) from None
    except InputError as exc:  # (a URL)
        raise UsageError(str(exc)) from None


def _check_storage(storage: Any) -> None:
    """Open ``search.storage`` before the data are read and checked (minutes for many images):
    a database that cannot be reached, a misspelt database name or a journal on a read-only
    disk is a usage error (exit 2) at once, named by its recipe key."""
    from .exceptions import InputError
    from .storage import check_storage

    try:
        check_storage(storage)
    except InputError as exc:
        raise UsageError(f"search.storage: {str(exc).removeprefix('storage: ')}") from None


def cmd_fit(args: argparse.Namespace) -> int:
    out = _Out(args.quiet or args.json)
    recipe = _recipe_or_draft(args)
    verbose = 0 if (args.quiet or args.json) else recipe.params().get("verbose", 1)  # (output.verbose: 0 honoured)
    if args.output is not None and not str(args.output).strip():  # an unset $MODEL_DIR: not the recipe's folder
        raise UsageError("-o: an empty path; give the folder to save the model to")
    output_dir = args.output or recipe.output_dir or os.path.join(DEFAULT_OUTPUT_ROOT, recipe.name)
    overwrite = bool(args.overwrite) or recipe.overwrite
    made = _check_output_dir(output_dir, "-o" if args.output else "output.dir" if recipe.output_dir else
                             f"output directory (default {output_dir})", overwrite)
    try:
        result = _fit_checked(args, recipe, out, verbose, output_dir, overwrite)
    except BaseException:
        from .persistence import remove_made_folders

        remove_made_folders(made)  # nothing saved: no empty automm-models/ left behind
        raise
    summary = result.summary()
    leaderboard = getattr(result.estimator, "leaderboard_", None)
    # Ctrl-C: the model is the best of what had finished, saved as asked; the exit status says so
    # (a script must not take it for a whole fit), and so does stderr, even under -q and --json
    code = EXIT_INTERRUPTED if summary.get("interrupted") else EXIT_OK
    if code == EXIT_INTERRUPTED:
        print(f"{PROG}: interrupted: the model{' saved to ' + str(result.model_dir) if result.model_dir else ''} is "
              "the best of what had finished (exit status 130)", file=sys.stderr)
    elif result.saved_instead_of:  # another save took the folder while this fit ran: not where asked
        code = EXIT_FAILURE
        print(f"{PROG}: error: the model was not saved to {result.saved_instead_of!r}, which changed while this fit "
              "ran (another process saved a model there, or put files there); this fit's model is saved beside it, to "
              f"{result.model_dir!r} (exit status 1)", file=sys.stderr)
    if args.json:
        if leaderboard is not None and hasattr(leaderboard, "to_dict"):
            summary["leaderboard"] = leaderboard.head(50).to_dict(orient="records")
        out.result(_json(summary))
        return code
    if args.quiet:  # for scripts: the one thing they need, where the model is
        out.result(str(result.model_dir))
        return code
    out.result(_fit_report(summary, leaderboard))
    return code


def _fit_checked(args: argparse.Namespace, recipe: Any, out: _Out, verbose: int, output_dir: str, overwrite: bool):
    """``automm fit`` once its output folder is checked: the other checks, then the fit."""
    from .exceptions import AutoMMWarning
    from .recipes import fit_recipe

    device = recipe.params().get("device")
    if isinstance(device, str):
        _device(device, "training.device")
    _check_storage(recipe.params().get("storage"))
    out.log(f"recipe {args.recipe}: valid" if args.label is None else f"recipe drafted from {args.recipe}: valid")
    # Progress printed by the training or the search goes to stderr: stdout is for the result.
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # a model saved beside the folder asked for: said once, as an error (cmd_fit), not also as a warning
        warnings.filterwarnings("ignore", message=r"(?s).*this fit's model is saved beside it instead",
                                category=AutoMMWarning)
        return fit_recipe(recipe, verbose=verbose, log=out.log, output_dir=output_dir, overwrite=overwrite,
                          replace_with=REPLACE_WITH)


def _fit_report(summary: dict, leaderboard: Any) -> str:
    problem = summary["problem_type"] + (f", {summary['n_classes']} classes" if "n_classes" in summary else "")
    inputs = summary["components"].get("inputs", {})

    def named(name: str) -> str:  # an input with the columns it reads: image_1 (back)
        columns = inputs.get(name) or []
        if not columns or columns == [name]:
            return name
        shown = ", ".join(columns[:3]) + (f", ... ({len(columns)} columns)" if len(columns) > 3 else "")
        return f"{name} ({shown})"

    encoders = ", ".join(f"{named(k)}: {v}" for k, v in summary["components"]["encoders"].items())
    positive = summary.get("positive_class")
    ensemble = summary.get("ensemble") or {}
    # with an ensemble of several models, the components and training shown are its best trial's;
    # a bag without a search (bag_folds) has fold models but no trials
    searched = summary.get("best_trial") is not None
    of_best = f" (trial {summary['best_trial']})" if searched and ensemble.get("models", 1) > 1 else ""
    rows = [
        ("recipe", summary["recipe"]),
        ("data", summary["data"]),
        ("label", f"{summary['label']} ({problem})"),
        # the validation rows of the data's own split only: a holdout is taken from the training
        # rows (the validation line below counts it)
        ("rows", f"{summary['train_rows']} train, "
                 + (f"{summary['validation_split_rows']} validation, " if summary.get("validation_split_rows") else "")
                 + f"{summary['test_rows']} test"),
        *([("sample weights", f"column {summary['weight_column']!r}"
                              + ("" if summary.get("test_weighted") else " (not in the test data: test unweighted)"))]
          if summary.get("weight_column") else []),
        *([("columns", shown_roles(summary["columns"], form="{column}: {role}"))] if summary.get("columns") else []),
        (f"encoders{of_best}", encoders),
        (f"fusion{of_best}", summary["components"]["fusion"]),
        _training_line(summary, of_best),
        (f"validation {_metric_label(summary.get('validation_metric', 'score'), positive)}"
         + (f" ({summary['validation_on']}, {summary['validation_rows']} rows)" if summary.get("validation_on")
            and summary.get("validation_rows") is not None else ""), summary["validation_score"]),
        *([(f"validation {summary.get('validation_metric', 'score')} of predict's decisions"
            + (f" (of {positive!r})" if summary.get("validation_metric") == "f1" and positive is not None else ""),
            summary["predict_validation_score"])] if summary.get("predict_validation_score") is not None else []),
        *([(f"validation {key[11:]}", summary[key]) for key in ("validation_r2", "validation_rmse", "validation_mae")
           if key in summary]),
        *([("search", _trials_line(summary["trials"])
                      + (f", study {summary['study_name']}" if summary.get("study_name") else ""))]
          if "trials" in summary else []),
        *([("ensemble", _ensemble_line(summary["ensemble"], searched))] if summary.get("ensemble") else []),
        *([("pareto", _pareto_line(summary["pareto"]))] if summary.get("pareto") else []),
        *([("decision", _decision_line(summary["decision_weights"]))] if summary.get("decision_weights") else []),
        ("fit time", f"{summary['fit_seconds']:.1f} s"),
        ("model", summary["model_dir"]),
    ]
    test = summary.get("test")
    if test:
        headline = summary["metric"]
        rows.append((f"test {_metric_label(headline, positive)}", test.get(headline)))
        rows += [(f"test {_metric_label(k, positive)}", v) for k, v in test.items() if k not in ("n", headline)]
    elif summary.get("unlabelled_test_rows") and not summary.get("test_rows"):
        rows.append(("test", f"none: its {summary['unlabelled_test_rows']} rows have no label"))
    else:
        rows.append(("test", "no test set in the recipe"))
    text = "\nsummary\n" + _table(rows)
    if leaderboard is not None and hasattr(leaderboard, "head") and len(leaderboard):
        text += (f"\n\nleaderboard (top {min(10, len(leaderboard))} of {len(leaderboard)} trials)\n"
                 + _leaderboard_table(leaderboard.head(10), inputs))
    return text


def _metric_label(metric: str, positive: Any = None) -> str:
    """A metric's name in a report: ``f1`` with the class it is the F1 of (``f1 of 'ok'``: with
    labels 'defect' and 'ok', the positive class, the second of ``classes_``, is the majority)."""
    return f"{metric} of {positive!r}" if metric == "f1" and positive is not None else metric


def _trials_line(trials: dict) -> str:
    counts = ", ".join(f"{trials[k]} {k}" for k in ("finished", "pruned", "failed") if trials.get(k))
    return f"{trials['total']} trials" + (f" ({counts})" if counts else "")


def _pareto_line(pareto: dict) -> str:
    cost = pareto["objectives"][1]
    chosen = pareto["chosen"]
    return (f"{pareto['size']} trial{'s' if pareto['size'] != 1 else ''} on the front of score and {cost}; chose trial {chosen['trial']} "
            f"(score {_format_value(chosen['score'])}, {cost} {chosen[cost]:g})")


def _ensemble_line(ensemble: dict, searched: bool = True) -> str:
    if not searched:  # a bag of one configuration's fold models, no search: no trial to name
        return f"{ensemble['models']} fold models averaged (bag_folds); {ensemble['pooling']} pooling"
    if len(ensemble["members"]) == 1:  # one bagged trial kept alone: its fold models, no ensemble of trials
        return (f"{ensemble['models']} fold models of trial {ensemble['members'][0]['trial']} averaged (bag_folds); "
                f"{ensemble['pooling']} pooling")
    members = ", ".join(f"trial {m['trial']} ({m['weight']:.2f})" for m in ensemble["members"])
    return f"{members}; {ensemble['pooling']} pooling"


def _decision_line(weights: dict) -> str:
    ranked = sorted(weights.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{c} {w:.3g}" for c, w in ranked[:6]) + (", ..." if len(ranked) > 6 else "")
    return f"class probabilities weighted for the metric: {shown}"


LEADERBOARD_COLUMNS = ("number", "state", "score", "r2", "mae", "rows", "latency_ms", "n_params", "encoders", "fusion", "augmentations",
                       "epochs", "best_epoch", "seconds", "reason")
#: Leaderboard columns of counts: shown as integers (a trial still running leaves them empty,
#: which makes pandas hold them as floats).
INTEGER_COLUMNS = ("number", "rows", "n_params", "epochs", "best_epoch")


def _leaderboard_table(frame, inputs: dict | None = None) -> str:
    """The leaderboard's readable columns (parameters and configurations are in --json); an
    input of one column (``inputs``: each input's columns) is named with it in ``encoders``,
    ``text_1 (description)=hashed_ngram``, as the trials' progress lines name it."""
    import pandas as pd

    from .components.stack import describe_encoders

    if inputs and "encoders" in frame.columns and "config" in frame.columns:
        frame = frame.copy()
        frame["encoders"] = [
            describe_encoders(config["encoders"], inputs) if isinstance(config, dict) and config.get("encoders") else shown
            for config, shown in zip(frame["config"], frame["encoders"])]

    # the rows each score was measured on: a classification's order goes by them too (a bag's
    # out-of-fold accuracy ahead of a higher one on a small holdout, leaderboard.rank_key); none
    # recorded (a regression's trials of a study made before automm recorded theirs): no empty column
    columns = [c for c in LEADERBOARD_COLUMNS if c in frame.columns and (c != "rows" or frame[c].notna().any())]
    if not columns:
        columns = [c for c in frame.columns
                   if all(v is None or isinstance(v, (str, int, float, bool)) for v in frame[c].tolist())][:8]

    def cell(value: Any, column: str) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        text = value if isinstance(value, float) else str(value)
        width = 96 if column == "encoders" else 48  # (room for the columns' names)
        return text if isinstance(text, float) or len(text) <= width else text[:width - 3] + "..."
    rows = [[cell(v, c) for v, c in zip(record, columns)]
            for record in frame[columns].itertuples(index=False, name=None)]
    return _table(rows, headers=columns)


# ---------------------------------------------------------------------------------- predict / evaluate
@contextlib.contextmanager
def _progress_on_stderr(quiet: bool):
    """Around a prediction: what plugins report of their work (e.g. features being computed for
    new images, which can take minutes) as ``[automm] ...`` lines on stderr; stdout is for the
    result."""
    from .progress import verbose_logging

    with contextlib.redirect_stdout(sys.stderr), verbose_logging(0 if quiet else 1):
        yield


#: The ``-o`` values that name this process's standard output: written through ``sys.stdout``
#: (as without ``-o``), since opening the path again fails on a socket and replaces a file that
#: stdout appends to (``>> log``).
_STDOUT_PATHS = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def _is_stdout(output: str | None) -> bool:
    return output is None or str(output) in _STDOUT_PATHS


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from .tables import data_format, starts_with_byte_order_mark

    out = _Out(args.quiet)
    filters = _parse_filters(args.filter)
    if args.output is not None and not str(args.output).strip():
        raise UsageError("-o: an empty path; name the CSV file to write")
    target = None if _is_stdout(args.output) else Path(args.output)
    if target is not None and not is_stream(target):  # before predicting: predictions that cannot be written would be lost
        _check_file_target(Path(os.path.realpath(target)), "-o")  # (a device or a pipe, /dev/stdout, is written to)
        if target.is_dir():
            raise UsageError(f"-o: {str(target)!r} is a folder; name the CSV file to write")
    _data_source(args.data)
    if target is not None:
        _check_not_overwriting(target, args.data, args.model_dir)
    estimator = _load_model(args.model_dir, args.device, args.cache_dir)
    if args.proba and estimator.problem_type_ == "regression":
        raise UsageError("--proba: a regression model has no class probabilities")
    columns = _input_columns(estimator, args.columns)
    frame, as_written = _read_data(args.data, filters, _data_roles(estimator, columns), empty_ok=True,
                                   folders=_recipe_files_dirs(args.model_dir))
    keep = list(args.keep or [])
    if data_format(Path(args.data), None) == "folder" and "image" not in keep:
        keep.insert(0, "image")  # a folder's rows are its images: say which file each prediction is for
    absent = [c for c in keep if c not in frame.columns]
    if absent:
        raise UsageError(f"--keep: no column(s) {absent} in {args.data}")
    keep = list(dict.fromkeys(keep))  # a column named twice is copied once
    written = {"prediction"} | ({f"proba_{label}" for label in estimator.classes_} if args.proba else set())
    taken = [c for c in keep if c in written]
    if taken:  # the kept values would be replaced by the model's, silently
        raise UsageError(f"--keep: column(s) {taken} of {args.data} have the name of a column the predictions "
                         "write; rename them in the data file")
    if keep and data_format(Path(args.data), None) in ("csv", "tsv"):  # the cells' text: 1001, not 1001.0
        from .tables import read_as_written

        as_written = read_as_written(args.data, keep).loc[as_written.index]
    result = as_written[keep].copy() if keep else pd.DataFrame(index=frame.index)  # the values as the file has them
    if len(frame) == 0:  # a day without new rows: the predictions file has its header and no row
        _model_inputs(estimator, frame, args.data, columns)  # (its columns are still checked)
        result["prediction"] = pd.Series(dtype=object)
        probabilities = np.zeros((0, len(estimator.classes_))) if args.proba else None
        out.log(f"{args.data} has no rows: no predictions")
    else:
        inputs = _model_inputs(estimator, frame, args.data, columns)
        with _progress_on_stderr(args.quiet):
            result["prediction"], probabilities = estimator._predictions_and_probabilities(inputs)  # one pass
            probabilities = probabilities if args.proba else None
    if probabilities is not None:
        for j, label in enumerate(estimator.classes_):
            result[f"proba_{label}"] = probabilities[:, j]
    if estimator.problem_type_ != "regression":  # class names come from the model (maybe another's)
        result["prediction"] = result["prediction"].map(_spreadsheet_safe)
    if target is None:
        result.to_csv(sys.stdout, index=False)
    else:
        # (a path of --keep or a folder's images that holds the escapes of file-name bytes: those bytes;
        # a byte-order mark where the data file has one, as Excel saves it, for Excel to read it as UTF-8)
        encoding = "utf-8-sig" if not is_stream(target) and starts_with_byte_order_mark(args.data) else "utf-8"
        write_output(target, lambda path: result.to_csv(path, index=False, errors="surrogateescape", encoding=encoding))
        out.log(f"wrote {len(result)} predictions to {args.output}")
    return EXIT_OK


#: Cell starts a spreadsheet runs as a formula (OWASP "CSV injection"); ``+`` and ``-`` only
#: with a formula's or a DDE call's marks after them, so that classes such as ``-ve``, ``+1 star``
#: or ``-1`` are written as they are.
_FORMULA_START = ("=", "@", "\t", "\r")
_SIGNED_FORMULA_MARKS = ("(", "|", "!", "=")


def _spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is a text that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|' /C calc'!A0``): a model's class names may be
    anyone's, and the predictions file is what people open in Excel or LibreOffice."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_FORMULA_START) or (
            value[0] in "+-" and any(mark in value[1:] for mark in _SIGNED_FORMULA_MARKS)):
        return "'" + value
    return value


def _recipe_data_value(model_dir: str, key: str) -> Any:
    """``data.<key>`` of the recipe saved with the model, if any, its environment references
    (``${LABEL}``, which the saved recipe keeps as the recipe wrote them) read as ``fit`` read
    them; :class:`UsageError` when one names a variable that is not set."""
    from .recipes import _interpolate

    data = _saved_recipe_section(model_dir)
    value = copy.deepcopy(data.get(key)) if isinstance(data, dict) else None
    problems: list = []
    value = _interpolate(value, f"data.{key}", problems)
    if problems:
        option = {"label": "--label COLUMN", "weight_column": "--weight-column COLUMN"}.get(key, "")
        raise UsageError(f"{Path(model_dir) / 'recipe.yaml'}: {str(problems[0]).split('; set it')[0]}: set it"
                         + (f", or pass {option}" if option else ""))
    return value


def _recipe_data_written(model_dir: str, key: str) -> Any:
    """``data.<key>`` of the model's saved recipe as written (``${NAME}`` not expanded): what
    messages show, so that a model folder's recipe cannot print an environment variable it names."""
    data = _saved_recipe_section(model_dir)
    return data.get(key) if isinstance(data, dict) else None


def _saved_recipe_section(model_dir: str) -> Any:
    """The ``data`` section of the ``recipe.yaml`` saved with the model, or None (no such file,
    one that is not a regular file (a pipe would block the read for ever, a device such as
    ``/dev/zero`` fill the memory), not UTF-8 or not YAML)."""
    import yaml

    file = Path(model_dir) / "recipe.yaml"
    try:
        status = file.stat()
        return _saved_recipe_data(str(file), status.st_mtime_ns, status.st_size)
    except (OSError, ValueError, TypeError, RecursionError, yaml.YAMLError):  # (ValueError: not UTF-8, a bad date)
        return None


@functools.lru_cache(maxsize=8)
def _saved_recipe_data(file: str, mtime_ns: int, size: int) -> Any:
    """The ``data`` section of a model's saved ``recipe.yaml`` (read once per version of the file:
    ``evaluate`` asks for several of its keys)."""
    from .recipes import _too_large, load_yaml

    content = load_yaml(read_regular_file(file)[0].decode("utf-8"))
    if _too_large(content):  # a "billion laughs" file: its aliases expanded by _interpolate would never end
        return None
    return content.get("data") if isinstance(content, dict) else None


def _recipe_data_key(model_dir: str, key: str) -> str | None:
    """``data.<key>`` (a column name) of the recipe saved with the model, if any."""
    value = _recipe_data_value(model_dir, key)
    return value if isinstance(value, str) else None


def _warn_training_split_rows(model_dir: str, frame, filters) -> None:
    """Warn when ``frame`` holds rows of the split the model was fitted on (its recipe's
    ``data.split_column`` with ``train_values`` or ``valid_values``) and no ``--filter`` chose
    rows by that column: their predictions are of rows the model has seen."""
    try:
        column = _recipe_data_key(model_dir, "split_column")
    except UsageError:
        return
    if column is None or column not in frame.columns or any(c == column for c, _ in filters):
        return
    from .exceptions import AutoMMWarning
    from .recipe_checks import split_text, split_texts

    def values(key: str, default: Any) -> list[str]:
        try:
            value = _recipe_data_value(model_dir, key)
        except UsageError:
            value = None
        value = default if value is None else value
        return [split_text(v) for v in (value if isinstance(value, list) else [value])]

    fitted = values("train_values", "train") + values("valid_values", [])
    seen = int(split_texts(frame[column]).isin(fitted).sum())  # matched as fit matched them (0.0 is 0)
    if seen:
        test = values("test_values", "test")
        warnings.warn(f"{seen} of {len(frame)} rows are of the split the model was fitted on ({column!r} "
                      f"{' or '.join(map(repr, fitted))}, as its recipe.yaml says): the metrics count rows the model "
                      f"has seen; pass --filter {column}={test[0]} to score its test rows alone", AutoMMWarning)


def _recipe_files_dirs(model_dir: str) -> list[str]:
    """``data.files_dir`` of the recipe saved with the model (absolute folders where ``fit``
    found the data's relative file paths): looked up by ``predict`` and ``evaluate`` too, after the
    data file's folder and the working directory."""
    try:
        value = _recipe_data_value(model_dir, "files_dir")
    except UsageError:
        return []
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, str) and os.path.isabs(item) and os.path.isdir(item)]


def _some(values: Sequence[Any], n: int = 8) -> str:
    """The first ``n`` of ``values`` quoted, and how many there are."""
    from .suggestions import quoted_values

    return f"{quoted_values(values, n)} ({len(values)})"


def _unseen_labels(labels, classes: Sequence[Any], label: str, argument: str, chosen: bool) -> int:
    """How many of ``labels`` are none of the model's ``classes``; :class:`UsageError` naming
    ``argument`` when none of them is one, or, for a column the user ``chosen`` (``--label`` naming
    another column than the label of the model's recipe), when most of them (over half the rows) are
    none: the column is not what the model predicts (masterCategory on a subCategory model), its
    score would mean nothing."""
    from .suggestions import labels_written_otherwise

    seen = labels.isin(list(classes))
    unseen = int((~seen).sum())
    if not seen.any():
        raise UsageError(f"{argument}: no value of column {label!r} is one of the model's classes, so no "
                         f"prediction could be right: is it the column the model predicts? Model classes: "
                         f"{_some(classes)}; values of {label!r}: {_some(labels.unique())}"
                         f"{labels_written_otherwise(labels, classes)}")
    if chosen and unseen * 2 > len(labels):
        unknown = labels[~seen]
        raise UsageError(f"{argument}: {unseen} of {len(labels)} rows hold a value of column {label!r} that is none "
                         f"of the model's classes, so most predictions could not be right: is it the column the "
                         f"model predicts? Values that are no class: {_some(unknown.unique())}; model classes: "
                         f"{_some(classes)}{labels_written_otherwise(unknown, classes)}")
    return unseen


def _amounts(frame, label: str, argument: str):
    """``frame`` with its column ``label`` as the numbers a regression model's scores compare its
    predictions with; :class:`UsageError` naming ``argument`` when some are no numbers (a column of
    names scored a regression model: an unexpected ValueError, once every row was predicted)."""
    import pandas as pd

    amounts = pd.to_numeric(frame[label], errors="coerce")
    wrong = frame[label][amounts.isna()]
    if len(wrong):
        raise UsageError(f"{argument}: {len(wrong)} of {len(frame)} values of column {label!r} are no numbers, and "
                         "the model is a regression, which predicts amounts: is it the column the model predicts? "
                         f"Values that are no numbers: {_some(wrong.unique())}")
    return frame.assign(**{label: amounts})


def _labels_as_classes(labels, classes: Sequence[Any]):
    """The label column ``labels`` (a Series) written as the model's ``classes`` are, where the file
    read them otherwise: whole numbers read as floats (an empty cell), numbers written as strings,
    codes written as numbers; else as it is."""
    import numpy as np
    import pandas as pd

    classes_dtype = np.asarray(classes).dtype
    if classes_dtype.kind in "iu" and labels.dtype.kind == "f" and bool((labels % 1 == 0).all()):
        return labels.astype(classes_dtype)  # whole numbers read as floats (an empty cell)
    if classes_dtype.kind in "iuf" and labels.dtype.kind not in "iufb":
        # numbers the model learnt as classes, written here as strings ('001': codes now read
        # as written, where automm once read them as numbers): compared as numbers
        as_numbers = pd.to_numeric(labels, errors="coerce")
        if as_numbers.notna().all():
            return as_numbers.astype(classes_dtype) if bool((as_numbers % 1 == 0).all()) else as_numbers
    elif classes_dtype.kind in "OUS" and labels.dtype.kind in "iuf" and all(isinstance(c, str) for c in classes):
        # codes the model learnt as text ('007', '100': its training file wrote some with leading
        # zeros), read here as numbers (this file has none): compared as written
        return labels.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    return labels


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .exceptions import InputError
    from .evaluation import compute_metrics, positive_class
    from .suggestions import did_you_mean
    from .tables import labelled_rows, weight_column_values

    out = _Out(args.quiet or args.json)
    filters = _parse_filters(args.filter)
    if args.label:
        own = None  # the recipe's label, if it names one: --label may name another column
        with contextlib.suppress(UsageError):  # (a variable it names not set here)
            own = _recipe_data_key(args.model_dir, "label")
        label = args.label
    else:
        label = own = _recipe_data_key(args.model_dir, "label")
    _data_source(args.data)
    estimator = _load_model(args.model_dir, args.device, args.cache_dir)
    if label is None:
        raise UsageError(f"evaluate: pass --label COLUMN ({args.model_dir} has no recipe.yaml naming the label)")
    columns = _input_columns(estimator, args.columns)
    frame, _ = _read_data(args.data, filters, _data_roles(estimator, columns), folders=_recipe_files_dirs(args.model_dir))
    if label not in frame.columns:
        problem = UsageError if args.label else InputError
        written = label if args.label else _recipe_data_written(args.model_dir, "label")
        raise problem(f"{args.data}: no label column {written!r}; columns are {shown_names(frame.columns, plain=True)}"
                      f"{did_you_mean(label, list(frame.columns))}")
    unlabelled: dict[str, int] = {}
    frame = labelled_rows(frame, label, "rows", unlabelled)
    if unlabelled:
        out.log(f"ignoring {unlabelled['rows']} rows without a label")
        if len(frame) == 0:
            raise InputError(f"{args.data}: no rows with a label in column {label!r}")
    _warn_training_split_rows(args.model_dir, frame, filters)
    unseen = 0
    argument = "--label" if args.label else f"data.label of {os.path.join(args.model_dir, 'recipe.yaml')}"
    # (a model without a recipe naming its label, saved by AutoMM.save: --label may be its own)
    if estimator.problem_type_ == "regression":
        frame = _amounts(frame, label, argument)
    else:
        frame = frame.assign(**{label: _labels_as_classes(frame[label], estimator.classes_)})
        unseen = _unseen_labels(frame[label], estimator.classes_, label, argument,
                                chosen=bool(args.label) and own is not None and args.label != own)
        if unseen:
            from .exceptions import AutoMMWarning
            from .suggestions import labels_written_otherwise

            unknown = frame[label][~frame[label].isin(list(estimator.classes_))]
            warnings.warn(f"{unseen} of {len(frame)} rows have a label in column {label!r} that the model never "
                          f"saw in training (it cannot predict them: they count as errors); model classes: "
                          f"{_some(estimator.classes_)}{labels_written_otherwise(unknown, estimator.classes_)}",
                          AutoMMWarning)
    weights = None
    weight_column = args.weight_column
    if weight_column is None:
        with contextlib.suppress(UsageError):  # (a variable not set here: the metrics unweighted, as without the column)
            weight_column = _recipe_data_key(args.model_dir, "weight_column")
    if weight_column is not None and (args.weight_column or weight_column in frame.columns):
        if weight_column not in frame.columns:
            raise UsageError(f"--weight-column: {args.data} has no column {weight_column!r}; columns are "
                             f"{shown_names(frame.columns, plain=True)}"
                             f"{did_you_mean(weight_column, list(frame.columns))}")
        weights, problem = weight_column_values(frame, weight_column)
        if problem:
            raise InputError(f"{args.data}: {problem}")
    with _progress_on_stderr(args.quiet or args.json):
        predictions = estimator.predict(*_model_inputs(estimator, frame, args.data, columns))
    positive = positive_class(estimator)
    metrics = compute_metrics(estimator.problem_type_, frame[label].to_numpy(), predictions, sample_weight=weights,
                              positive=positive)
    if args.json:
        out.result(_json({"model": args.model_dir, "data": args.data, "label": label,
                          "weight_column": weight_column if weights is not None else None,
                          "problem_type": estimator.problem_type_, "unseen_label_rows": unseen,
                          **({"positive_class": positive} if positive is not None else {}), "metrics": metrics}))
    else:
        out.result(_table([(_metric_label(k, positive), v) for k, v in metrics.items()], headers=("metric", "value")))
    return EXIT_OK


# ---------------------------------------------------------------------------------- init
def cmd_init(args: argparse.Namespace) -> int:
    from .recipes import load_recipe

    target = None if _is_stdout(args.output) else Path(args.output)
    stream = target is not None and is_stream(target)  # a device or a pipe (/dev/stdout): written to, not replaced
    if target is not None and target.is_dir():
        raise UsageError(f"-o: {str(target)!r} is a folder; name the recipe file to write")
    if target is not None and not stream and target.exists() and not args.force:
        raise UsageError(f"-o: {str(target)!r} exists; pass --force to replace it")
    if target is not None and not stream:
        _check_file_target(Path(os.path.realpath(target)), "-o")
    _data_source(args.data)
    if target is not None:
        _check_not_overwriting(target, args.data)  # (even with --force)
    # the recipe's paths are relative to the folder of the file written, the end of a link's
    # chain (where fit reads them from); a stream's recipe, as stdout's, to the working directory
    recipe_dir = Path(os.path.realpath(target)).parent if target is not None and not stream else Path.cwd()
    time_limit = None if args.no_search else args.time_limit
    draft = _draft(args.data, args.label, recipe_dir=recipe_dir, time_limit=time_limit)
    load_recipe(draft.content, base_dir=recipe_dir, check_data=True, require_data=True)  # as 'fit' will read it
    text = draft.to_yaml(Path(args.data).name)
    if target is None:
        _Out.result(text.rstrip())
        return EXIT_OK
    write_output(target, lambda path: path.write_text(text, encoding="utf-8"))  # never a half-written recipe
    out = _Out(args.quiet)
    out.log(f"wrote {target}: {draft.describe()}")
    out.log(f"next: automm fit {target}")
    _Out.result(str(target))
    return EXIT_OK


# ---------------------------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace) -> int:
    from .recipes import RecipeError, dump_recipe, load_recipe

    try:
        recipe = load_recipe(args.recipe, list(args.overrides or []), check_data=not args.no_data,
                             require_data=True)
    except RecipeError as exc:
        if args.json:
            _Out.result(_json({"recipe": args.recipe, "valid": False,
                               "problems": [p.to_dict() for p in exc.problems]}))
            return EXIT_USAGE
        raise
    if args.json:
        _Out.result(_json({"recipe": args.recipe, "valid": True, "problems": []}))
    elif args.show:
        _Out.result(dump_recipe(recipe.shown()).rstrip())
    else:
        _Out.result(f"{args.recipe}: valid" + (" (data files not read)" if args.no_data else ""))
        _Out.result(_table(recipe.describe()))
    return EXIT_OK


# ---------------------------------------------------------------------------------- plugins
def _plugin_inventory() -> dict:
    from . import __version__
    from .builtin import DEFAULT_PLUGINS
    from .registry import KINDS, autoload_disabled, get_registry, skipped_plugins

    reg = get_registry()
    pm = reg.plugin_manager
    components = []
    for kind in KINDS:
        for spec in reg.specs(kind):
            package = spec.package or (f"automm {__version__} (built-in)" if spec.provider in DEFAULT_PLUGINS else None)
            components.append({"kind": kind, "name": spec.name, "modality": spec.modality, "plugin": spec.provider,
                               "package": package, "description": spec.description})
    plugins = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        builtin = name in DEFAULT_PLUGINS
        package = reg.package_of(name) or (f"automm {__version__} (built-in)" if builtin else None)
        plugins.append({"name": name, "package": package, "builtin": builtin,
                        "components": sum(1 for c in components if c["plugin"] == name)})
    skipped = [{"name": name, **info} for name, info in sorted(skipped_plugins().items())]
    return {"plugins": plugins, "components": components, "skipped": skipped, "autoload": not autoload_disabled()}


def cmd_plugins(args: argparse.Namespace) -> int:
    inventory = _plugin_inventory()
    if args.json:
        _Out.result(_json(inventory))
        return EXIT_OK
    plugins, components = inventory["plugins"], inventory["components"]
    if not inventory["autoload"]:
        from .registry import DISABLE_AUTOLOAD_ENV

        _Out.result(f"{DISABLE_AUTOLOAD_ENV} is set: installed plugins are not loaded, only the built-ins\n")
    _Out.result(f"plugins ({len(plugins)})")
    _Out.result(_table([(p["name"], p["package"] or "-", p["components"]) for p in plugins],
                       headers=("plugin", "package", "components")))
    if inventory["skipped"]:
        _Out.result(f"\nskipped plugins ({len(inventory['skipped'])})")
        _Out.result(_table([(p["name"], p["package"] or "-", p["reason"]) for p in inventory["skipped"]],
                           headers=("plugin", "package", "why")))
    _Out.result(f"\ncomponents ({len(components)})")
    _Out.result(_table([(c["kind"], c["name"], c["modality"] or "-", c["plugin"], c["package"] or "-")
                        for c in components], headers=("kind", "name", "modality", "plugin", "package")))
    return EXIT_OK


# ---------------------------------------------------------------------------------- cache
def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # pragma: no cover


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d")


def cmd_cache(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .exceptions import InputError
    from .feature_cache import cache_usage, clear_cache

    root = _cache_dir_arg(args.cache_dir)
    if args.action != "forget" and (args.inputs or args.texts):
        raise UsageError(f"{'PATH arguments go' if args.inputs else '--text goes'} with 'automm cache forget' (automm "
                         f"cache {args.action} takes no inputs)")
    if args.action == "forget":
        return _cache_forget(args, root)
    if args.action != "clear":
        if args.encoder is not None or args.unused_days is not None or args.dry_run:
            raise UsageError("--encoder, --unused-days and --dry-run go with 'automm cache clear' (--encoder and "
                             "--dry-run also with 'automm cache forget')")
        usages = cache_usage(root)
        if args.json:
            _Out.result(_json({"cache_dir": str(root), "namespaces": [asdict(u) for u in usages]}))
            return EXIT_OK
        _Out.result(f"feature cache: {root} ({_size(sum(u.bytes for u in usages))} in "
                    f"{sum(u.files for u in usages)} files, {_size(sum(u.disk_bytes for u in usages))} on disk)"
                    + ("" if root.exists() else "; no such folder"))
        if usages:
            _Out.result(_table([(u.namespace, u.files, _size(u.bytes), _size(u.disk_bytes), _when(u.first_use),
                                 _when(u.last_use)) for u in usages],
                               headers=("encoder (weights)", "files", "size", "on disk", "least recent use",
                                        "last use")))
        orphans = sum(u.orphans for u in usages)
        if orphans:
            _Out.result(f"{orphans} temporary files left by interrupted writes ('automm cache clear' removes them)")
        return EXIT_OK
    try:
        removed = clear_cache(root, encoder=args.encoder, unused_days=args.unused_days, dry_run=args.dry_run)
    except InputError as exc:  # a misspelt --encoder
        argument, _, message = str(exc).partition(":")
        raise UsageError(f"--{argument.replace('_', '-')}:{message}") from exc
    code = EXIT_FAILURE if removed.undeleted else EXIT_OK  # (some files could not be deleted)
    if args.json:
        _Out.result(_json(dict(asdict(removed), cache_dir=str(root), dry_run=args.dry_run)))
        return code
    line = (f"{'would delete' if args.dry_run else 'deleted'} {removed.files} feature files "
            f"({_size(removed.bytes)}, {_size(removed.disk_bytes)} on disk) under {root}"
            + ("" if root.exists() else " (no such folder)"))
    if removed.orphans:
        line += f", and {removed.orphans} temporary files left by interrupted writes"
    if removed.undeleted:  # (the warning above names the first and why)
        line += f"; {removed.undeleted} files could not be deleted"
    _Out.result(line)
    return code


def _cache_forget(args: argparse.Namespace, root) -> int:
    """``automm cache forget PATH... [--text TEXT]...``: :func:`~automm.feature_cache.forget_features`."""
    from dataclasses import asdict

    from .exceptions import InputError
    from .feature_cache import forget_features
    from .suggestions import elided_repr

    if not args.inputs and not args.texts:
        raise UsageError("automm cache forget: give the files (PATH ...) or texts (--text TEXT) whose cached features "
                         "to delete")
    if args.unused_days is not None:
        raise UsageError("--unused-days goes with 'automm cache clear'")
    try:
        forgotten = forget_features(args.inputs, texts=args.texts, cache_dir=root, encoder=args.encoder,
                                    dry_run=args.dry_run)
    except InputError as exc:  # a file that is not there, a misspelt --encoder
        argument, _, message = str(exc).partition(":")
        option = {"paths": "PATH", "texts": "--text"}.get(argument, f"--{argument.replace('_', '-')}")
        raise UsageError(f"{option}:{message}") from exc
    # (some files could not be deleted, or some namespaces not searched: their features may remain)
    code = EXIT_FAILURE if forgotten.undeleted or forgotten.unsearched else EXIT_OK
    named = list(args.inputs) + [f"text {elided_repr(t)}" for t in args.texts]
    if args.json:
        _Out.result(_json(dict(asdict(forgotten), inputs=named, cache_dir=str(root), dry_run=args.dry_run)))
        return code
    for name, namespaces in zip(named, forgotten.found):
        _Out.result(f"{name}: " + (f"{'would delete' if args.dry_run else 'deleted'} its features of "
                                   f"{', '.join(namespaces)}" if namespaces else "no features in the cache"))
    line = (f"{'would delete' if args.dry_run else 'deleted'} {forgotten.files} feature files "
            f"({_size(forgotten.bytes)}, {_size(forgotten.disk_bytes)} on disk) under {root}"
            + ("" if root.exists() else " (no such folder)"))
    if forgotten.undeleted:  # (the warning names the first and why)
        line += f"; {forgotten.undeleted} files could not be deleted"
    _Out.result(line)
    return code


# ---------------------------------------------------------------------------------- worker
def cmd_worker(args: argparse.Namespace) -> int:
    from .exceptions import InputError
    from .storage import StorageError, check_storage, parse_storage, redact_url, storage_file, wait_for_storage_file
    from .study import StudyNotFoundError
    from .worker import run_worker

    out = _Out(args.quiet)
    if args.device is not None:
        _device(args.device, "--device")
    if args.n_jobs is not None and not (args.n_jobs >= 1 or args.n_jobs == -1):
        raise UsageError(f"--n-jobs: expected a positive number of trials at once, or -1 for one per usable CPU "
                         f"(per GPU on CUDA), found {args.n_jobs}")
    try:
        kind, url = parse_storage(args.storage)
        if args.recipe is not None:  # the storage before the recipe's data are read
            if storage_file(kind, url) is not None:  # a file, waited for (never created: a misspelt path)
                wait_for_storage_file(kind, url, 60.0 if args.wait is None else args.wait)
            elif kind == "rdb":  # a database server, reached
                check_storage(args.storage)
    except (InputError, StorageError) as exc:
        raise UsageError(f"--storage: {str(exc).removeprefix('storage: ')}") from None
    inputs: tuple = ()
    labels = None
    options_weights: dict = {}
    if args.recipe is not None:
        from .recipes import load_recipe

        ignored = [text.partition("=")[0].strip() for text in args.overrides or []
                   if not text.partition("=")[0].strip().startswith("data.")]
        if ignored:  # the study holds everything else, as the fit that created it set it
            raise UsageError(f"worker: --set {ignored[0]}: a worker reads only the recipe's data (data.*); its "
                             "training and search settings are the study's, those of the fit that created it")
        recipe = load_recipe(args.recipe, list(args.overrides or []), check_data=True, require_data=True)
        options_weights["given_params"] = recipe.params()  # (those the study sets otherwise: named in a warning)
        data = recipe.load_data()
        inputs, labels = (data.X_train,), data.y_train
        options_weights |= {k: v for k, v in {"sample_weight": data.w_train, "X_val": data.X_val, "y_val": data.y_val,
                                             "sample_weight_val": data.w_val}.items() if v is not None}
        out.log(f"data: {data.source}: {len(data.X_train)} train rows (must be what the study's fit was given)")
    elif args.overrides:
        raise UsageError("worker: --set needs --recipe")
    options = {"device": args.device, "n_jobs": args.n_jobs, "artifact_dir": args.artifact_dir, "wait": args.wait,
               "verbose": 0 if args.quiet else 1}
    options = {k: v for k, v in options.items() if v is not None}
    out.log(f"joining study {args.study!r} on {redact_url(args.storage)}")
    try:
        trials = run_worker(args.storage, args.study, *inputs, y=labels, **options_weights, **options)
    except StorageError as exc:  # not there, cannot be reached or written
        raise UsageError(f"--storage: {str(exc).removeprefix('storage: ')}") from None
    except StudyNotFoundError as exc:
        raise UsageError(f"--study: {exc}") from None
    out.log(f"done: this worker ran {trials} trial(s)")
    _Out.result(str(trials))
    return EXIT_OK


# ---------------------------------------------------------------------------------- parser
def _seconds(least: str):
    """An argparse type: a finite number of seconds ``> 0`` or ``>= 0`` (``least``; argparse names
    the option when it raises): `--time-limit -5` was found as the drafted recipe's
    search.time_limit, after the data were read, and `--wait -1` was taken."""
    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (value > 0 if least == "> 0" else value >= 0) or math.isinf(value):
            raise argparse.ArgumentTypeError(f"expected a number of seconds {least}, found {text!r}")
        return value
    return seconds


def _days(text: str) -> float:
    """A number of days >= 0 (argparse names the option when this raises)."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not days >= 0 or math.isinf(days):
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, found {text!r}")
    return days


#: The commands whose paths may come among their options, and the argument that takes them.
_PATHS_AMONG_OPTIONS = {"cache": "inputs"}


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose errors (exit 2) show the usage of the command that failed, the
    subcommand's for its own arguments, and point to its ``--help``; an unknown option of a
    command that takes ``--set`` says how to set a recipe key instead."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.subcommands: dict[str, _Parser] = {}  # set by build_parser on the top-level parser

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        parsed, unknown = self.parse_known_args(argv, namespace)
        command = getattr(parsed, "command", None)
        if unknown and command in _PATHS_AMONG_OPTIONS and not any(token.startswith("-") for token in unknown):
            # argparse takes a command's positionals once, before its first option: the paths after an
            # option ('automm cache forget --cache-dir DIR photo.jpg') were left unrecognised
            dest = _PATHS_AMONG_OPTIONS[command]
            setattr(parsed, dest, [*getattr(parsed, dest), *unknown])
            unknown = []
        if unknown:  # argparse reports these with the top-level usage: the subcommand's is the one to read
            after = command in argv and unknown[0] in argv and argv.index(unknown[0]) > argv.index(command)
            parser = self.subcommands.get(command, self) if after else self
            parser.fail(f"unrecognized arguments: {' '.join(unknown)}", parser._set_hint(unknown, argv))
        return parsed

    def error(self, message: str):
        self.fail(message)

    def fail(self, message: str, hint: str = "") -> None:
        """Exit 2 after the usage, ``message``, ``hint`` and where the help is."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{hint}\n(see '{self.prog} --help')\n")

    def _set_hint(self, unknown: Sequence[str], argv: Sequence[str]) -> str:
        """For a command with ``--set``: how to give the recipe key an unknown option names
        (``--max-epochs 1`` → ``--set training.max_epochs=1``), else how ``--set`` is written."""
        from .recipe_checks import recipe_key_path

        options = [token for token in unknown if token.startswith("--") and len(token) > 2]
        if not options or not any(action.dest == "overrides" for action in self._actions):
            return ""
        for option in options:
            name, equals, value = option[2:].partition("=")
            path = recipe_key_path(name.replace("-", "_"), fuzzy=False)
            if path is None:
                continue
            if not equals:
                following = argv[argv.index(option) + 1:argv.index(option) + 2] if option in argv else []
                value = following[0] if following and not following[0].startswith("--") else "VALUE"
            return f"; recipe values are changed with --set: did you mean --set {path}={value}?"
        return "; recipe values are changed with --set KEY.PATH=VALUE (e.g. --set training.max_epochs=5)"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    def options(quiet_help: str) -> argparse.ArgumentParser:
        parent = argparse.ArgumentParser(add_help=False)
        parent.add_argument("--quiet", "-q", action="store_true", help=quiet_help)
        parent.add_argument("--debug", action="store_true", help="show the traceback of any error")
        return parent

    common = options("nothing on stderr but errors (no progress, messages or warnings); the result on stdout "
                     "is unchanged")
    override = argparse.ArgumentParser(add_help=False)
    override.add_argument("--set", dest="overrides", action="append", metavar="KEY.PATH=VALUE",
                          help="set a recipe key (value read as YAML), e.g. --set training.max_epochs=5; repeatable")

    parser = _Parser(prog=PROG, description="automm: multimodal AutoML (images, texts, tables) from YAML recipes.",
                     epilog="Exit codes: 0 success; 2 a mistake in the command, recipe or the files and "
                            "options it names (nothing was done); 1 a failure during the work; 130 interrupted "
                            "(Ctrl-C or SIGTERM: fit saves the best of what had finished). "
                            "Run 'automm SUBCOMMAND --help' for details.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", dest="top_debug", action="store_true", help="show the traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    parser.subcommands = sub.choices

    p = sub.add_parser("init", parents=[common], help="draft a recipe for a data file",
                       description="Read DATA (a CSV/TSV/Parquet file, or a folder of class folders of images), "
                                   "infer each column's role, leave out identifiers and constant columns, find a "
                                   "split column (split, fold, set, ... with train and test values), infer the "
                                   "problem type from the label, and write a recipe that 'automm fit' runs as it "
                                   "is, with comments on what was inferred.")
    p.add_argument("data", metavar="DATA", help="data file (one row per sample, a column per input and the label) "
                                                "or image folder (columns image, label, split)")
    p.add_argument("--label", required=True, metavar="COLUMN", help="the column to predict")
    p.add_argument("--output", "-o", metavar="RECIPE.yaml", default="-",
                   help="recipe file to write (default: stdout; data paths are written relative to its folder when at most two levels up, else absolute)")
    p.add_argument("--force", action="store_true", help="replace RECIPE.yaml if it exists")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--time-limit", type=_seconds("> 0"), default=600, metavar="SECONDS",
                        help="the search's budget (default: 600)")
    budget.add_argument("--no-search", action="store_true", help="one default model instead of a search")
    p.set_defaults(func=cmd_init)

    fit_options = options("print only the model directory (for scripts; --json gives the whole summary) and "
                          "nothing on stderr but errors")
    p = sub.add_parser("fit", parents=[fit_options, override], help="train from a recipe and save the model",
                       description="Validate RECIPE, read its data, train, save the model (with a recipe.yaml that "
                                   "reproduces it) and print a summary: validation score, leaderboard when there "
                                   "was a search, test metrics when the recipe has a test set. Progress goes to "
                                   "stderr, the summary to stdout.")
    p.add_argument("recipe", metavar="RECIPE",
                   help="YAML recipe file, or a data file (CSV/TSV/Parquet) or image folder with --label")
    p.add_argument("--label", metavar="COLUMN", help="with a data file: the column to predict; the recipe is "
                                                     "drafted as 'automm init' drafts it (--set changes it) and "
                                                     "saved with the model")
    p.add_argument("--output", "-o", metavar="DIR",
                   help=f"model directory (default: the recipe's output.dir, else {DEFAULT_OUTPUT_ROOT}/RECIPE_NAME)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the model an earlier run saved in the model directory (the recipe's "
                        "output.overwrite: true does too); without it, fit refuses such a folder before "
                        "reading the data. The folder's other files stay; a folder of other files is "
                        "never written into")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (and nothing on stderr)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", parents=[common], help="predict labels (and probabilities) for a data file",
                       description="Predict with a saved model for every row of DATA (CSV/TSV/Parquet, or a "
                                   "folder of images); relative image paths are looked up in DATA's folder, then "
                                   "the current directory, then the folders the model's recipe.yaml names "
                                   "(data.files_dir). Writes CSV with a 'prediction' column (after the "
                                   "'image' column for a folder of images, and the --keep columns; proba_<class> "
                                   "columns with --proba).")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a directory written by 'automm fit' or AutoMM.save")
    p.add_argument("data", metavar="DATA", help="data file with the model's input columns")
    p.add_argument("--output", "-o", metavar="OUT.csv", default="-",
                   help="output CSV (default: stdout), UTF-8, with a byte-order mark where DATA has one (as Excel "
                        "saves CSV UTF-8 and Unicode text, so that Excel reads it as UTF-8)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--keep", action="append", metavar="COLUMN", help="copy this input column to the output "
                                                                     "as the file has it (e.g. an id); repeatable")
    p.add_argument("--filter", action="append", metavar="COLUMN=VALUE", help="only rows where COLUMN equals VALUE; "
                                                                             "repeatable")
    p.add_argument("--device", default="cpu", help="torch device for prediction (default: cpu)")
    p.add_argument("--cache-dir", metavar="DIR", help=CACHE_DIR_HELP)
    p.add_argument("--columns", metavar="COL,COL", help=COLUMNS_HELP)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", parents=[common], help="score a saved model on labelled data",
                       description="Score a saved model on DATA: accuracy, balanced accuracy, macro/weighted F1 for "
                                   "classification; R2, RMSE, MAE for regression. Labels that are none of the "
                                   "model's classes are scored as errors, with a warning; a --label column other "
                                   "than the label of the model's recipe.yaml, whose values, in over half the rows, "
                                   "are none of them, is refused (exit 2: it is not the column the model predicts).")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a directory written by 'automm fit' or AutoMM.save")
    p.add_argument("data", metavar="DATA", help="labelled data file (CSV/TSV/Parquet) or folder of class folders of "
                                                "images, with the model's input columns and the label column")
    p.add_argument("--label", metavar="COLUMN", help="label column (default: the one in MODEL_DIR/recipe.yaml)")
    p.add_argument("--weight-column", metavar="COLUMN",
                   help="weigh the metrics by this column (default: data.weight_column of MODEL_DIR/recipe.yaml, "
                        "when the data have it)")
    p.add_argument("--filter", action="append", metavar="COLUMN=VALUE", help="only rows where COLUMN equals VALUE, "
                                                                             "e.g. --filter split=test; repeatable")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--device", default="cpu", help="torch device for prediction (default: cpu)")
    p.add_argument("--cache-dir", metavar="DIR", help=CACHE_DIR_HELP)
    p.add_argument("--columns", metavar="COL,COL", help=COLUMNS_HELP)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("validate", parents=[common, override], help="check a recipe without running it",
                       description="Check RECIPE (and the header of its data files) and report every problem with "
                                   "its key path. Exit 0 when valid, 2 otherwise.")
    p.add_argument("recipe", metavar="RECIPE", help="YAML recipe file")
    p.add_argument("--no-data", action="store_true", help="do not read the data files (check the recipe alone)")
    p.add_argument("--json", action="store_true", help='print {"valid": ..., "problems": [{"path", "message"}]}')
    p.add_argument("--show", action="store_true", help="print the recipe as used (overrides and ${ENV} applied; a storage "
                                                     "password as ***)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plugins", parents=[common], help="list installed plugins and their components",
                       description="List the installed plugins (built-in and from the 'automm' entry-point group) "
                                   "and every component with its kind, modality, plugin and package.")
    p.add_argument("--json", action="store_true", help="print the inventory as JSON")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("cache", parents=[common], help="show, clear or forget inputs of the feature cache",
                       description="Show what the feature cache of frozen pretrained encoders holds (per encoder "
                                   "and weights: files, size, least recent and last use), clear it, or forget "
                                   "some inputs' features (a person's photo and texts: 'automm cache forget "
                                   "photo.jpg --text \"...\"'; a file is found by its bytes, so forget it before "
                                   "deleting it). Clearing and forgetting only cost recomputation: the next fit "
                                   "computes the features it misses, and fits running meanwhile are safe.")
    p.add_argument("action", nargs="?", choices=("info", "clear", "forget"), default="info",
                   help="info (default): what the cache holds; clear: delete cached features; forget: delete the "
                        "features of the files PATH and the texts --text, under every encoder that cached them")
    p.add_argument("inputs", nargs="*", metavar="PATH", help="forget: files whose features to delete")
    p.add_argument("--text", dest="texts", action="append", default=[], metavar="TEXT",
                   help="forget: a text whose features to delete (repeat for several)")
    p.add_argument("--cache-dir", metavar="DIR", help="the cache folder (default: $AUTOMM_CACHE_DIR, else "
                                                       "$XDG_CACHE_HOME/automm, else ~/.cache/automm), as "
                                                       "given to AutoMM(cache_dir=...)")
    p.add_argument("--encoder", metavar="NAME", help="clear, forget: only this encoder's features (e.g. minilm), "
                                                     "or a namespace pattern (efficientnet_lite0-*)")
    p.add_argument("--unused-days", type=_days, metavar="DAYS", help="clear: only features no fit has used for "
                                                                     "DAYS days")
    p.add_argument("--dry-run", action="store_true", help="clear, forget: say what would be deleted, delete nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("worker", parents=[common], help="join a running search study",
                       description="Run trials of a search study shared through an Optuna storage (a journal file "
                                   "or PostgreSQL), alongside other workers on this or other machines, until the "
                                   "study's n_trials or time limit is reached or its fits have finished. Prints the "
                                   "number of trials this worker ran.")
    p.add_argument("--storage", default=os.environ.get("AUTOMM_STORAGE") or None,
                   required=not os.environ.get("AUTOMM_STORAGE"), metavar="URL",
                   help="Optuna storage URL, e.g. postgresql://user:pass@host/db; default $AUTOMM_STORAGE (which "
                        "keeps a password off the command line, where other users of the machine can see it)")
    p.add_argument("--study", required=True, metavar="NAME", help="study name")
    p.add_argument("--recipe", metavar="RECIPE", help="the recipe whose 'automm fit' created the study: its "
                                                        "training data are used when the study holds no copy of them")
    p.add_argument("--device", default=None, help="where this worker trains: auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="trials run at once here: processes on the CPU; on CUDA, threads (one per GPU, or N if more)")
    p.add_argument("--artifact-dir", metavar="DIR", help="a folder the fit process can read, for this worker's best "
                                                         "models")
    p.add_argument("--wait", type=_seconds(">= 0"), default=None, metavar="SECONDS",
                   help="how long to wait for the study to appear (default: 60)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY.PATH=VALUE",
                   help="set a data key of --recipe (value read as YAML), e.g. --set data.path=/mnt/data/train.csv; "
                        "repeatable (a worker's training and search settings are the study's)")
    p.set_defaults(func=cmd_worker)
    return parser


# ---------------------------------------------------------------------------------- main
def _user_error_types() -> tuple[type, ...]:
    from sklearn.exceptions import NotFittedError

    from .exceptions import AutoMMError

    return (AutoMMError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
            PermissionError, NotFittedError)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a job scheduler's stop, ``timeout``, ``kill``) handled as Ctrl-C is: ``fit``
    keeps and saves the best of what had finished and exits with 130, rather than dying with
    nothing saved nor said. The handler interrupts as Ctrl-C does (:func:`automm.interrupts.interrupt`),
    so the search holds it while a finished trial is recorded. Where SIGINT is ignored (a
    background job of a script, ``automm fit ... &``, as entrypoint scripts that forward SIGTERM
    start it) SIGTERM still stops it as Ctrl-C does (it had died at once, nothing saved), and is
    held there too (it landed in Optuna's record: the finished trial was lost, and no model saved).
    In forked processes (the search's, data loaders'), SIGTERM keeps its default action."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    main_pid = os.getpid()

    previous_interrupt = signal.getsignal(signal.SIGINT)

    def on_terminate(signum, frame):
        if os.getpid() != main_pid:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        print(f"{PROG}: terminated (SIGTERM): stopping as on Ctrl-C", file=sys.stderr)
        from .interrupts import interrupt  # (here: `automm --version` loads no scikit-learn)

        interrupt()

    try:
        previous = signal.signal(signal.SIGTERM, on_terminate)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_interrupt is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False) or args.top_debug)
    from .recipes import RecipeError

    quiet = bool(getattr(args, "quiet", False) or getattr(args, "json", False))
    try:
        with _warnings_as_messages(quiet, debug), _terminate_as_interrupt():
            code = args.func(args)
        sys.stdout.flush()
        return code
    except RecipeError as exc:
        return _fail(exc, EXIT_USAGE, debug)
    except UsageError as exc:
        return _fail(exc, EXIT_USAGE, debug)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (e.g. '| head')
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:  # pragma: no cover
            pass
        return EXIT_FAILURE
    except _user_error_types() as exc:
        return _fail(exc, EXIT_FAILURE, debug)
    except Warning as exc:  # a warning that the warnings filters (PYTHONWARNINGS=error, -W error) make an error
        return _fail(RuntimeError(f"{exc} (a warning, {type(exc).__name__}, made an error by the warnings filters: "
                                  "PYTHONWARNINGS or python -W)"), EXIT_FAILURE, debug)
    except UnicodeEncodeError as exc:
        if not _stdout_cannot_write(exc):  # (a bare `raise` here printed the traceback)
            return _unexpected(exc, debug)
        return _fail(UsageError(
            f"standard output writes {exc.encoding} only (sys.stdout.encoding), and the output holds "
            f"{exc.object[exc.start:exc.start + 1]!a}: run automm with PYTHONIOENCODING=utf-8 (or PYTHONUTF8=1, or under a "
            "UTF-8 locale such as LC_ALL=C.UTF-8), or write to a file (predict and init: -o FILE, in UTF-8)"), EXIT_FAILURE, debug)
    except Exception as exc:  # noqa: BLE001 - a bug or an unexpected failure: short message unless --debug
        return _unexpected(exc, debug)


def _unexpected(exc: BaseException, debug: bool) -> int:
    """A failure automm did not foresee (a bug to report, or the machine's state: a full disk):
    one line on stderr (the traceback with ``--debug``), exit 1."""
    if debug:
        traceback.print_exc()
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:  # the machine's state, not a bug to report
        where = f" (writing {exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}: free some space, or write elsewhere",
              file=sys.stderr)
    elif not debug:
        print(f"{PROG}: error: {type(exc).__name__}: {exc}{_undecodable_name_hint(exc)}\n"
              "(unexpected; rerun with --debug for the traceback)", file=sys.stderr)
    return EXIT_FAILURE


def _undecodable_name_hint(exc: BaseException) -> str:
    """Where ``exc`` is text that cannot be encoded for holding the escapes of bytes that are no
    text in a file-name encoding other than UTF-8 (a folder ``dätä`` under the C locale with
    UTF-8 mode off): what runs it."""
    import codecs

    if not (isinstance(exc, UnicodeEncodeError) and isinstance(exc.object, str)
            and any("\udc80" <= c <= "\udcff" for c in exc.object[exc.start:exc.end])):
        return ""
    encoding = sys.getfilesystemencoding()
    if codecs.lookup(encoding).name == "utf-8":
        return ""
    return (f"; a file or folder name holds letters that this Python's file-name encoding, {encoding!r} "
            "(sys.getfilesystemencoding()), cannot read: run it with PYTHONUTF8=1, or under a UTF-8 locale "
            "(LC_ALL=C.UTF-8)")


def _stdout_cannot_write(exc: UnicodeEncodeError) -> bool:
    """Whether ``exc`` is standard output's: an encoding that lacks a character of the results
    (ASCII, where the C locale has Python's UTF-8 mode turned off)."""
    import codecs

    try:
        return codecs.lookup(exc.encoding).name == codecs.lookup(sys.stdout.encoding or "utf-8").name != "utf-8"
    except (LookupError, TypeError):
        return False


#: ``errno`` values of a full disk or quota: an output cannot be written (exit 1, no "unexpected").
_DISK_FULL = tuple(getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name))


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    message = str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    elif isinstance(exc, OSError) and exc.filename and exc.strerror:
        message = f"{exc.strerror}: {exc.filename}"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
