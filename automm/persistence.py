"""Saving and loading fitted models as plain files: JSON + safetensors, no pickle.

A model directory holds ``automm.json`` (format version, library versions, estimator class
and parameters, problem type, classes, inputs, components and their hyperparameters),
``preprocessing.json`` (each encoder's learned state, e.g. vocabularies) and
``weights.safetensors``; an ensemble (a search with ``ensemble_size > 1``) stores its first
member there and every other member's preprocessing and weights under ``members/<k>/``, the
members' configurations, weights and temperatures in the manifest (format version 2; 3 when
a member's logits are scaled by a temperature). Writing goes to a temporary sibling directory
that replaces the target only once complete, so an interrupted save never leaves a half-written model and
never destroys the previous one; the other files of a model's folder (notes, predictions, plots)
are carried into the new one (hard links, no copying where the file system allows).

The manifest names the plugin and package of every component (``components``: the encoders and
fusions, which loading needs; ``augmentations``: those the model's configurations and parameters
name, which only a new fit needs), the output container ``set_output`` chose for ``transform``
(``set_output``) and the metadata routing requests set on the estimator (``metadata_requests``:
``set_fit_request``, ``set_score_request``, ...). Directories saved without the last three load as before.

The manifest records each other file's SHA-256 and size (``files``), and its own digest
(``manifest_sha256``, over the rest of it: :func:`manifest_digest`). Loading reads the manifest,
refuses one that no longer matches its digest,
then every file whole, and checks it against its digest before building anything: a file that a
save replaced meanwhile (the manifest has changed) starts the reading again, one that does not
match an unchanged manifest is damaged (:class:`ModelFormatError` naming it). Directories
written before the digests load as they are, the manifest read again at the end to see that no
save replaced the folder while its files were read.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .exceptions import AutoMMWarning, InputError, ModelFormatError, UnknownComponentError, user_stacklevel
from .components.stack import encoder_names, encoder_parts
from .builtin import DEFAULT_PLUGINS
from .feature_cache import check_cache_dir
from .files import read_regular_file, url_problem
from .suggestions import elided_repr

__all__ = ["save_model", "load_model", "check_save_target", "remove_made_folders", "manifest_digest", "FORMAT_VERSION",
           "MANIFEST", "MANIFEST_DIGEST", "WEIGHTS", "PREPROCESSING"]

FORMAT_VERSION = 13  # the version this code reads; single models are still written as version 1, ensembles
#: as 2, 3 when a member has a temperature (which a version-2 reader would ignore), or 4 when the
#: ensemble pools probabilities logarithmically (which a version-3 reader would average); 5 when the
#: decision rule weighs the classes (automm.decision; a version-4 reader would take the argmax); 6
#: when a lone classifier's logits are scaled by a temperature (a version-5 reader would ignore it); 7
#: when an encoder needs it (``Encoder.min_format_version``): a gru or transformer that leaves out words
#: never seen in fit (a version-6 reader would read them as the unknown word) or a colour_histogram
#: (which a version-6 reader lacks); 8 when a text encoder was fitted on texts holding a letter it reads
#: in another form (Greek accents, Turkish İ and ı, the Arabic tatweel: ``automm.components.text``'s
#: ``fold_letter_forms``; a version-7 reader would read them as other words); 9 when the search's linear
#: model compares two inputs of one modality (an encoder stack's ``compared`` parts and the ``sum``
#: fusion's ``compared`` pairs, which a version-8 reader cannot build); 10 when a model holds the
#: ``boosted_trees`` encoder (the search's gradient-boosted model, which a version-9 reader lacks); 11
#: when a ``hashed_ngram`` network keeps the rows of its fitted buckets only (``kept_buckets``, which a
#: version-10 reader would read as a row per bucket, and fail to load); 12 when a ``hashed_ngram`` was
#: fitted on texts holding letters of Thai, Lao, Khmer, Myanmar, ... (``automm.components.text``'s
#: ``unspaced_alphabet_words``: a run of them one word; a version-11 reader would read a letter a token),
#: or a text encoder on texts holding Arabic or Hebrew vowel signs (``fold_vowel_marks``: left out; a
#: version-11 reader would read a word with one as another word); 13 when a text encoder was fitted on
#: texts holding decimal digits other than 0-9 (Arabic-Indic, Devanagari, Thai, ...: ``fold_digits``, read
#: as 0-9; a version-12 reader would read them as other words), or a ``gru`` or ``transformer`` on texts
#: holding letters of Thai, Lao, Khmer, Myanmar, ... (``unspaced_alphabet_words``: a run of them read in the
#: pieces learned in fit; a version-12 reader would read a letter a token). The
#: files' digests (manifest key ``files``) need no version: a reader that ignores them predicts the same,
#: and neither do hyperparameters that only training reads (``Encoder.training_only_hyperparameters``,
#: e.g. the tabular encoder's ``category_dropout``): left out of the saved configurations, which an
#: older reader, whose encoder lacks them, could not build, and kept beside them (``training_only``).
MEMBERS = "members"
MANIFEST = "automm.json"
#: The first line of the ``recipe.yaml`` that ``automm fit`` saves with a model: it describes that
#: model (its label, split, files), so a save that replaces the model does not keep it.
SAVED_RECIPE_HEADER = "# The recipe that reproduces this model (written by automm fit).\n"
WEIGHTS = "weights.safetensors"
PREPROCESSING = "preprocessing.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in {MANIFEST}")


def _history_json(history: list) -> list:
    """``history_`` as JSON; a TypeError naming the record and key of a value that cannot be (one a
    training callback added: a tensor, an object), before anything is written."""
    try:
        return _jsonable(history)
    except TypeError:
        for number, record in enumerate(history):
            for key, value in record.items():
                try:
                    _jsonable(value)
                except TypeError:
                    raise TypeError(f"cannot save the model: history_[{number}][{key!r}] (epoch "
                                    f"{record.get('epoch', '?')}) is a {type(value).__name__}, which {MANIFEST} cannot "
                                    "store; a callback that adds to an epoch's record should add numbers, texts, "
                                    "booleans, None, or lists and dicts of them (e.g. float(value))") from None
        raise


def _encode_classes(classes: np.ndarray) -> dict:
    return {"dtype": classes.dtype.str if classes.dtype != object else "object", "values": _jsonable(classes)}


def _decode_classes(data: dict, manifest_path: Path | None = None) -> np.ndarray:
    """The classes that :func:`_encode_classes` recorded in ``data``; :class:`ModelFormatError`
    naming ``manifest_path`` when its dtype or values cannot make them."""
    try:
        if data["dtype"] == "object":
            return np.array(data["values"], dtype=object)
        return np.array(data["values"], dtype=np.dtype(data["dtype"]))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ModelFormatError(f"{manifest_path or MANIFEST}: 'classes' should have a numpy 'dtype' and its "
                               f"'values', got {data!r} ({exc})") from None


def _file_record(data: bytes) -> dict:
    """What the manifest records of a model file whose content is ``data``."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


#: The manifest key of the manifest's own digest (:func:`manifest_digest`).
MANIFEST_DIGEST = "manifest_sha256"


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The SHA-256 of ``manifest`` without its own digest, as canonical JSON (keys sorted, no
    spaces): recorded at save, checked at load, so that a manifest damaged or edited since
    (a flipped bit in an image size or an ensemble weight) is refused, not read as it is."""
    content = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST}
    content = json.loads(json.dumps(content, ensure_ascii=False))  # as read back: keys strings (class_weight's 0, 1)
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_bytes(path: Path, data: bytes, sync: bool = True) -> dict:
    """Write ``data`` to ``path`` (synced to disk when ``sync``); returns its :func:`_file_record`."""
    with open(path, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    return _file_record(data)


def _write_json(path: Path, payload: Any) -> dict:
    """Write ``payload`` as JSON to ``path``, synced; returns the file's :func:`_file_record`."""
    text = json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)
    return _write_bytes(path, text.encode("utf-8"))


def _automm_version() -> str:
    import automm

    return automm.__version__


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import automm

    found = {"automm": automm.__version__, "torch": torch.__version__}
    for name in ("numpy", "scikit-learn", "safetensors", "optuna"):  # (optuna: what a search sampled)
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            pass
    return found


def manifest_of(estimator) -> dict:
    from . import registry

    reg = registry.get_registry()

    def provenance(kind: str, name: str) -> dict:
        spec = reg.get(kind, name)
        return {"plugin": spec.provider, "package": spec.package}

    params, not_stored = {}, []
    for key, value in estimator.get_params(deep=False).items():
        if key == "storage" and isinstance(value, str):  # a model folder is copied around: no database password
            from .storage import redact_url

            value = redact_url(value)
        if key == "cache_dir" and isinstance(value, (str, os.PathLike)):
            # relative to the fit's working directory: the same folder from wherever the model is loaded
            value = os.path.abspath(os.path.expanduser(os.fspath(value)))
        try:
            params[key] = _jsonable(value)
        except TypeError:  # e.g. an Optuna sampler object: loaded as the parameter's default
            not_stored.append(key)
    ensemble = estimator.__dict__.get("ensemble_")
    config, held = _saved_config(estimator.config_, reg)
    manifest = {
        "format": "automm-model",
        "format_version": _format_version(ensemble, estimator.__dict__.get("decision_weights_"),
                                          estimator.__dict__.get("temperature_", 1.0),
                                          [estimator.model_] + [m.model for m in getattr(ensemble, "members", [])[1:]]),
        "versions": _versions(),
        "estimator": type(estimator).__name__,
        "params": params,
        "problem_type": estimator.problem_type_,
        "input_positional": estimator.input_positional_,
        "columns": list(estimator.columns_),
        "column_roles": dict(estimator.column_roles_),
        "inputs": [spec.to_dict() for spec in estimator.inputs_],
        "config": config,
        "components": [{"kind": "encoder", "input": name, "name": part, **provenance("encoder", part)}
                       for name, choice in estimator.config_["encoders"].items() for part in encoder_names(choice)]
                      + [{"kind": "fusion", "name": estimator.config_["fusion"]["name"],
                          **provenance("fusion", estimator.config_["fusion"]["name"])}],
        "n_outputs": int(estimator.model_.n_outputs),
        "batch_size": int(estimator.batch_size_),
        "seed": int(estimator.seed_),
        "history": _history_json(estimator.history_),
        "best_epoch": int(estimator.best_epoch_),
    }
    if held:
        manifest["training_only"] = held
    if any(spec.modality == "text" and spec.blank_texts_missing for spec in estimator.inputs_):
        manifest["blank_texts"] = "missing"
    if estimator.__dict__.get("decision_weights_") is not None:
        manifest["decision_weights"] = [float(w) for w in estimator.decision_weights_]
    if estimator.__dict__.get("temperature_", 1.0) != 1.0:
        manifest["temperature"] = float(estimator.temperature_)
    if estimator.__dict__.get("class_weights_") is not None:  # what class_weight weighed each class by in fit
        manifest["class_weights"] = [float(w) for w in estimator.class_weights_]
    if estimator.__dict__.get("_label_columns"):  # input columns that held the labels in fit (named at predict)
        manifest["label_columns"] = list(estimator._label_columns)
    if estimator.__dict__.get("identifier_columns_"):  # given to fit, left out of the model (counted in n_features_in_)
        manifest["identifier_columns"] = list(estimator.identifier_columns_)
    record = _fit_record(estimator)
    if record:
        manifest["fit"] = record
    if estimator.problem_type_ == "regression":
        manifest["target"] = {"mean": estimator.target_mean_, "std": estimator.target_std_}
    else:
        manifest["classes"] = _encode_classes(estimator.classes_)
    if getattr(estimator, "feature_names_in_", None) is not None:
        manifest["feature_names_in"] = list(estimator.feature_names_in_)
    if not_stored:
        manifest["params_not_stored"] = not_stored
    augmentations = _augmentation_provenance(estimator, reg)
    if augmentations:
        manifest["augmentations"] = augmentations
    output = estimator.__dict__.get("_sklearn_output_config") or {}
    if isinstance(output.get("transform"), str):  # set_output(transform=...): all that scikit-learn keeps
        manifest["set_output"] = {"transform": output["transform"]}
    requests = _metadata_requests(estimator)
    if requests:
        manifest["metadata_requests"] = requests
    if ensemble is not None:
        if ensemble.members[0].model is not estimator.model_:
            raise ValueError("ensemble_: its first member must be model_")
        members = []
        for k, member in enumerate(ensemble.members):
            config, held = _saved_config(member.config, reg)
            members.append({"path": "" if k == 0 else f"{MEMBERS}/{k}", "trial": int(member.trial),
                            "weight": float(member.weight), "score": _jsonable(float(member.score)),
                            "batch_size": int(member.batch_size), "config": config})
            if held:
                members[-1]["training_only"] = held
            if member.fold is not None:
                members[-1]["fold"] = int(member.fold)
            if member.temperature != 1.0:
                members[-1]["temperature"] = float(member.temperature)
            if k:
                known = {(c["kind"], c["name"]) for c in manifest["components"]}
                for kind, name in [("encoder", n) for c in member.config["encoders"].values() for n in encoder_names(c)] + [
                        ("fusion", member.config["fusion"]["name"])]:
                    if (kind, name) not in known:
                        manifest["components"].append({"kind": kind, "name": name, **provenance(kind, name)})
                        known.add((kind, name))
        manifest["ensemble"] = {"problem_type": ensemble.problem_type, "pooling": ensemble.pooling, "members": members}
    return manifest


def _metadata_requests(estimator) -> dict:
    """The metadata routing requests set on ``estimator`` (``set_score_request(sample_weight=True)``,
    ...): method -> {parameter: True, False, None or the alias routed to it}; {} where none was set
    (scikit-learn then routes by the class's defaults)."""
    if "_metadata_request" not in vars(estimator):
        return {}
    from sklearn.utils._metadata_requests import SIMPLE_METHODS

    routing = estimator.get_metadata_routing()
    return {method: dict(getattr(routing, method).requests) for method in SIMPLE_METHODS
            if getattr(routing, method).requests}


def _restore_metadata_requests(estimator, manifest: dict, manifest_path: Path) -> None:
    """Set the manifest's ``metadata_requests`` (:func:`_metadata_requests`) on ``estimator``, as
    its ``set_<method>_request`` calls did (whether or not metadata routing is enabled here)."""
    saved = manifest.get("metadata_requests")
    if not saved:
        return
    from sklearn.utils._metadata_requests import SIMPLE_METHODS

    routing = estimator.get_metadata_routing()
    for method, requests in saved.items():
        if method not in SIMPLE_METHODS:
            raise ModelFormatError(f"{manifest_path}: 'metadata_requests' names method {method!r}, which scikit-learn "
                                   f"does not route metadata to (one of {', '.join(SIMPLE_METHODS)})")
        for param, alias in requests.items():
            try:
                getattr(routing, method).add_request(param=param, alias=alias)
            except ValueError:
                raise ModelFormatError(f"{manifest_path}: 'metadata_requests' of {method!r}: {param!r} should be "
                                       f"true, false, null or a parameter name to route, got {alias!r}") from None
    estimator._metadata_request = routing


def _saved_config(config: Mapping[str, Any], reg) -> tuple[dict, dict]:
    """``config`` as the manifest holds it: without the hyperparameters that only training reads
    (each encoder's ``training_only_hyperparameters``), so that an older automm, whose encoder
    may lack them, builds the model all the same; prediction does not read them. Also those
    hyperparameters, input -> one dict per part of its encoder choice (inputs with none left out),
    kept beside the configuration (manifest key ``training_only``, which an older reader ignores)
    and put back by :func:`_training_only_restored`, so that a loaded model's ``config_`` is the
    one that was fitted."""
    saved, held = _jsonable(config), {}
    for input_name, choice in saved["encoders"].items():
        parts = []
        for part in encoder_parts(choice):
            parts.append({name: part.pop(name) for name in _training_only_names(part, reg) if name in part})
        if any(parts):
            held[input_name] = parts
    return saved, held


def _training_only_restored(config: dict, held: Any, where: str, reg) -> None:
    """Put the training-only hyperparameters that :func:`_saved_config` held apart (``held``, the
    manifest's ``training_only``; absent from older models: None) back into ``config``, in place;
    :class:`ModelFormatError` naming ``where`` when they do not fit its encoders. Only those the
    installed encoder declares training-only: an older plugin's, which lacks them, builds the
    model all the same (as when they were not kept at all)."""
    if held is None:
        return
    if not isinstance(held, dict):
        raise ModelFormatError(f"{where}: 'training_only' should map inputs to their encoders' training "
                               f"hyperparameters, got {held!r}")
    for input_name, values in held.items():
        choice = config["encoders"].get(input_name)
        parts = encoder_parts(choice) if choice is not None else []
        if (not isinstance(values, list) or len(values) != len(parts)
                or not all(isinstance(v, dict) for v in values)):
            raise ModelFormatError(f"{where}: 'training_only' of input {input_name!r} should hold one object per "
                                   f"part of its encoder ({len(parts)}), got {values!r}")
        for part, value in zip(parts, values):
            kept = _training_only_names(part, reg)
            part.update({name: v for name, v in value.items() if name in kept})


def _training_only_names(part: Mapping[str, Any], reg) -> tuple[str, ...]:
    """The hyperparameters of an encoder choice's ``part`` that only training reads, as its
    installed encoder declares them (``Encoder.training_only_hyperparameters``)."""
    return getattr(reg.get("encoder", part["name"]).factory, "training_only_hyperparameters", ())


def _write_weights(model, path: Path, metadata: dict | None = None, sync: bool = True) -> dict:
    """Write ``model``'s ``state_dict`` to ``path`` as safetensors (synced to disk when ``sync``);
    returns the file's :func:`_file_record`.

    Written through :func:`open`, so the file's mode follows the umask like every other file of
    the model (safetensors' own ``save_file`` creates files readable by their owner only, which
    hides a saved model from the rest of a team or from a search worker run as another user)."""
    from safetensors.torch import save

    state, storages = {}, set()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if tensor.numel() and storage in storages:  # an encoder inputs share (shared_encoders): a copy under
            tensor = tensor.clone()                 # each input's name, which an older automm reads too
        storages.add(storage)
        state[key] = tensor
    return _write_bytes(path, save(state, metadata=metadata), sync=sync)


def _make_staging_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named directory in ``parent`` whose mode follows the umask
    (:func:`tempfile.mkdtemp` makes it owner-only, and it becomes the saved model's folder)."""
    while True:
        path = parent / f"{prefix}{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def write_model_files(model, directory: Path, sync: bool = True) -> dict:
    """Write one model's weights and its encoders' preprocessing state into ``directory``
    (the weights synced to disk when ``sync``); returns each file's name -> :func:`_file_record`."""
    directory.mkdir(parents=True, exist_ok=True)
    return {WEIGHTS: _write_weights(model, directory / WEIGHTS, metadata={"format": "automm-model"}, sync=sync),
            PREPROCESSING: _write_json(directory / PREPROCESSING,
                                       {name: _jsonable(enc.get_state()) for name, enc in model.encoders.items()})}


def _refuse_to_overwrite(target: Path, argument: str = "path", overwrite: bool = True,
                         replace_hint: str | None = None) -> None:
    """Raise, naming ``argument``, unless a save can put a model at ``target``: nothing there, an
    empty folder, or, where ``overwrite`` is true, an automm model's folder that is neither a mount
    point (it cannot be renamed aside) nor write-protected (its old model could not be removed).
    ``overwrite`` false: a model there is a :class:`FileExistsError` whose message ends with
    ``replace_hint``, the ways out (how to replace it, or save elsewhere)."""
    if os.path.ismount(target) or str(target) in _mount_points():
        raise _mount_point_error(target, argument)
    try:
        with os.scandir(target) as listing:  # one listing: a concurrent save may swap the folder meanwhile
            entries = {entry.name: entry for entry in listing}
    except FileNotFoundError:
        return
    except NotADirectoryError:
        if not target.exists():  # a folder above it is a file, which making the staging folder names
            return
        raise FileExistsError(f"{argument}: {str(target)!r} exists and is not a directory; "
                              "not overwriting it") from None
    if not entries:
        return
    if MANIFEST not in entries or not entries[MANIFEST].is_file():
        raise FileExistsError(f"{argument}: {str(target)!r} is a non-empty directory that is not an automm "
                              "model; not overwriting it")
    if not overwrite:
        hint = replace_hint or "pass overwrite=True to replace it, or save to another folder"
        raise FileExistsError(f"{argument}: {str(target)!r} holds a model already{_saved_when(target)}; not "
                              f"replacing it: {hint}")
    if not os.access(target, os.W_OK | os.X_OK):
        if _read_only_file_system(target):
            raise PermissionError(f"{argument}: {str(target)!r} is on a read-only file system; save elsewhere")
        raise PermissionError(f"{argument}: {str(target)!r} is write-protected, so the model in it could not be "
                              f"removed once replaced; make it writable (chmod u+w {str(target)!r}) or save elsewhere")


def _saved_when(folder: Path) -> str:
    """`` (saved 2026-12-07 07:41 UTC)``: when the model in ``folder`` was saved (its manifest's
    modification time), or "" where that cannot be read."""
    try:
        stamp = os.stat(folder / MANIFEST).st_mtime
    except OSError:
        return ""
    return f" (saved {datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)"


def _read_only_file_system(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (where chmod cannot help)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False


def _mount_points() -> set[str]:
    """The mount points listed in ``/proc/self/mountinfo`` (Linux; elsewhere none): a bind mount
    of a folder of the same file system (``docker -v``) is one that :func:`os.path.ismount` misses."""
    import re

    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            fields = [line.split(" ") for line in handle]
    except OSError:
        return set()
    return {re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4]) for f in fields if len(f) > 4}


def _mount_point_error(target: Path, argument: str = "path") -> FileExistsError:
    return FileExistsError(f"{argument}: {str(target)!r} is a mount point, which a save cannot replace whole; "
                           f"save into a folder inside it, e.g. {str(target / 'model')!r}")


def _staging_dir(target: Path, argument: str = "path", made: list[Path] | None = None) -> Path:
    """A new staging folder beside ``target`` (its parents made; those this call made appended to
    ``made``, outermost first); an error names ``target``'s folder."""
    made = [] if made is None else made
    tries = 3
    try:
        while True:
            made.extend(_make_folders(target.parent))
            try:
                return _make_staging_dir(target.parent, f".{target.name}.saving-")
            except FileNotFoundError:  # a failed fit removed the (empty) parent it had made, meanwhile
                tries -= 1
                if not tries:
                    raise
    except OSError as exc:  # named by the folder asked for, not by the staging folder's name
        raise OSError(exc.errno, f"{argument}: cannot write a model in {str(target.parent)!r} "
                                 f"({exc.strerror or exc})") from None


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns those this call made, outermost first
    (one a concurrent save made meanwhile is not this call's)."""
    missing = [level for level in (folder, *folder.parents) if not os.path.lexists(level)]
    made = []
    for level in reversed(missing):
        try:
            level.mkdir()
        except FileExistsError:
            if not level.is_dir():
                raise
            continue
        made.append(level)
    return made


def remove_made_folders(folders: Sequence[str | os.PathLike]) -> None:
    """Remove ``folders`` (:func:`check_save_target`'s, outermost first) innermost first, each only
    while it is empty: a fit that saved nothing leaves no folder its check made. One a concurrent
    save has put something in stays, and so do those above it."""
    for folder in reversed(list(folders)):
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            continue
        except OSError:  # not empty: another save's, or the user's, now
            return


def _check_path_type(path: Any, argument: str, writing: bool = False) -> None:
    """An :class:`InputError` naming ``argument`` when ``path`` is not a path (None, a number):
    not Python's TypeError, which names neither the argument nor automm; or a URL (``s3://...``,
    which a save wrote to a local folder ``s3:``, and a load named as a missing ``https:/...``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{argument}: expected a folder's path (str or os.PathLike), got {path!r}")
    if (problem := url_problem(path, writing)) is not None:
        raise InputError(f"{argument}: {path!r} is {problem}")


def _save_target(path: str | os.PathLike, argument: str) -> Path:
    """``path`` (``~`` expanded) made absolute, its parent folders' links resolved; a link at
    ``path`` itself is refused: a save replaces the folder at its path, and through a link it
    would replace whatever model the link points to (one another user may own)."""
    _check_path_type(path, argument, writing=True)
    given = Path(path).expanduser()
    if given.is_symlink():
        raise InputError(f"{argument}: {str(path)!r} is a symbolic link (to {os.readlink(given)!r}); a save replaces "
                         "the folder at its path: save to the folder the link points to, or remove the link")
    absolute = Path(os.path.abspath(given))  # ("." and ".." normalised: the folder's own name)
    return absolute.parent.resolve() / absolute.name


def check_save_target(path: str | os.PathLike, argument: str = "path", overwrite: bool = True,
                      replace_hint: str | None = None) -> list[str]:
    """Raise now what :func:`save_model` would raise for ``path`` before writing anything (not
    a model's folder, a mount point, a write-protected model folder, a model's folder when not
    ``overwrite``, its message ending with ``replace_hint``, or a folder where nothing can be
    written; the message starts with ``argument``), so that a long fit is not run for a model that cannot be saved. Leaves no
    trace but the parent folders it made, which it returns (outermost first) for
    :func:`remove_made_folders` to remove when no model is saved after all."""
    target = _save_target(path, argument)
    with _saves_serialized(target.parent):  # not while a concurrent save swaps its model in
        _refuse_to_overwrite(target, argument, overwrite, replace_hint)
    made: list[Path] = []
    try:
        shutil.rmtree(_staging_dir(target, argument, made), ignore_errors=True)
    except BaseException:
        remove_made_folders(made)
        raise
    return [str(folder) for folder in made]


def save_model(estimator, path: str | os.PathLike, beside: Mapping[str, str] | None = None,
               overwrite: bool = True, argument: str = "path", replace_hint: str | None = None) -> str:
    """Write ``estimator`` to directory ``path`` (``~`` expanded); replaces a previous automm
    model there only after the new one is complete, and only when ``overwrite`` is true (else
    refused, the message ending with ``replace_hint``; ``argument`` names ``path`` in it).
    Refuses to overwrite anything else.
    ``beside``: text files (name -> text) that go into the folder with the model, in place of
    the previous folder's files of those names, in the same step (``automm fit``'s
    ``recipe.yaml``); not part of the model (load does not check them)."""
    target = _save_target(path, argument)
    with _saves_serialized(target.parent):  # not while a concurrent save swaps its model in
        _refuse_to_overwrite(target, argument, overwrite, replace_hint)
    manifest = manifest_of(estimator)
    with _saves_serialized(target.parent):  # made and locked at once: never taken for a killed save's
        staging = _staging_dir(target)
        held = exclusive_lock(staging)  # (while its save writes it)
    retired, stale, abandoned = None, [], []
    try:
        try:
            files = write_model_files(estimator.model_, staging)
            ensemble = estimator.__dict__.get("ensemble_")
            for info, member in zip(manifest.get("ensemble", {}).get("members", [])[1:],
                                    ensemble.members[1:] if ensemble is not None else []):
                written = write_model_files(member.model, staging / info["path"])
                files.update({f"{info['path']}/{name}": record for name, record in written.items()})
            for name, text in (beside or {}).items():
                (staging / name).write_text(text, encoding="utf-8")
            manifest["files"] = dict(sorted(files.items()))  # what load checks every file against
            manifest[MANIFEST_DIGEST] = manifest_digest(manifest)  # and the manifest against
            _write_json(staging / MANIFEST, manifest)  # written last: its presence marks a complete model
        except OSError as exc:  # a full disk or quota: its write names no file (or a staging file of ours)
            if exc.errno is None or (exc.filename is not None and str(staging) not in str(exc.filename)):
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc  # (the model there stays)
        with _saves_serialized(target.parent):
            _refuse_to_overwrite(target, argument, overwrite, replace_hint)  # again: another save or a user may have changed it
            # models put aside by saves killed before they deleted them (with a model at the path, and
            # under the lock, no save is between its renames: they are no one's)
            stale = [target.parent / name for name in _retired_beside(target)] if target.exists() else []
            abandoned = _abandoned_staging(target, staging)  # half-written by saves killed while writing
            retired = _put_in_place(staging, target)
    finally:
        if held is not None:
            os.close(held)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for folder in [retired, *stale] if retired is not None else []:
        _remove_retired(folder, target)
    for folder in abandoned:
        shutil.rmtree(folder, ignore_errors=True)
    return str(target)


def exclusive_lock(path: str | os.PathLike, create: bool = False) -> int | None:
    """A descriptor of ``path`` (a folder, or a file, made when ``create``) holding an exclusive
    ``flock`` on it, released when the descriptor is closed or the process ends, killed too;
    None where another holds it, or there is no such lock (Windows)."""
    try:
        import fcntl

        descriptor = os.open(path, (os.O_CREAT | os.O_RDWR) if create else os.O_RDONLY, 0o600)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _abandoned_staging(target: Path, own: Path) -> list[Path]:
    """The staging folders beside ``target`` whose saves were killed while writing them (no
    process holds them: :func:`exclusive_lock`). Called under :func:`_saves_serialized`, which every
    save holds while it makes and locks its staging folder."""
    try:
        names = [entry.name for entry in target.parent.iterdir()
                 if entry.name.startswith(f".{target.name}.saving-") and entry.name != own.name]
    except OSError:
        return []
    abandoned = []
    for name in names:
        descriptor = exclusive_lock(target.parent / name)
        if descriptor is not None:
            os.close(descriptor)
            abandoned.append(target.parent / name)
    return abandoned


@contextlib.contextmanager
def _saves_serialized(folder: Path):
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself: no file is made)
    so that concurrent saves, from any process, put their models in place one at a time. Where
    there is no such lock (Windows, some network file systems) the save goes on without it."""
    try:
        import fcntl

        descriptor = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        descriptor = None
    if descriptor is None:  # (outside the except: the body's errors get no unrelated context)
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _put_in_place(staging: Path, target: Path) -> Path | None:
    """Rename the complete model folder ``staging`` to ``target``. A model already there gets
    the other files of its folder carried into ``staging`` and is swapped out: in one step where
    the system can exchange two folders (:func:`_exchange`), else renamed aside first and put
    back when the second rename fails or is interrupted (Ctrl-C between the two); returns where
    the replaced model went (None when there was none). :class:`OSError` naming ``target`` when
    another process changed it meanwhile (only where :func:`_saves_serialized` has no lock)."""
    retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    exchanged = False
    try:
        try:
            if not target.exists():
                os.replace(staging, target)
                return None
            _carry_other_files(target, staging)
            inside = _working_directory_inside(target)
            exchanged = _exchange(staging, target)
            if not exchanged:
                os.replace(target, retired)
        except OSError as exc:
            if exc.errno == errno.EBUSY:  # a mount point that the checks missed
                raise _mount_point_error(target) from None
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise OSError(exc.errno, f"path: {str(target)!r} was changed by a concurrent save while this one put "
                                     "its model in place; this model was not saved: save it again") from None
        os.replace(staging, retired if exchanged else target)  # (exchanged: staging holds the model replaced)
    except BaseException:
        if not exchanged and retired.exists() and not target.exists():
            try:
                os.replace(retired, target)
            except OSError:
                raise OSError(errno.EEXIST, f"path: a concurrent save put its model in {str(target)!r} while this "
                                            f"one put its own in place; this model was not saved, and the one "
                                            f"replaced is kept in {str(retired)!r}") from None
        raise
    if inside is not None:  # the process worked in the folder replaced: on in the new one
        _enter_deepest(target, inside)
    return retired


def _exchange(first: Path, second: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``): a save killed
    at any moment leaves either model at the target, never neither. False where the system or
    the file system cannot (nothing changed then)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        rename = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a C library without it (glibc before 2.28)
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    if rename(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):  # not offered here
        return False
    raise OSError(code, os.strerror(code), str(second))


def _remove_retired(retired: Path, target: Path) -> None:
    """Delete ``retired``, the folder of the model a save replaced at ``target``; a warning
    names it when it cannot be deleted whole (the model it holds takes space)."""
    failures = []

    def note(function, path, exc):
        failures.append((path, exc))

    if sys.version_info >= (3, 12):
        shutil.rmtree(retired, onexc=note)
    else:
        shutil.rmtree(retired, onerror=lambda function, path, info: note(function, path, info[1]))
    if failures and os.path.lexists(retired):
        path, exc = failures[0]
        warnings.warn(f"path: the model replaced in {str(target)!r} could not be deleted "
                      f"({getattr(exc, 'strerror', None) or exc}: {path}); it is left in {str(retired)!r}: "
                      "delete it yourself", AutoMMWarning, stacklevel=user_stacklevel())


#: What a saved model consists of, replaced by the next save; anything else in its folder is kept
#: (but ``automm fit``'s ``recipe.yaml``, which goes with its model: :func:`_written_by_fit`).
MODEL_ENTRIES = (MANIFEST, WEIGHTS, PREPROCESSING, MEMBERS)


def _written_by_fit(entry: Path) -> bool:
    """Whether ``entry`` is the ``recipe.yaml`` that ``automm fit`` saved with the model in its
    folder (a regular file starting with :data:`SAVED_RECIPE_HEADER`; a user's own is kept)."""
    if entry.name != "recipe.yaml" or entry.is_symlink() or not entry.is_file():
        return False
    header = SAVED_RECIPE_HEADER.encode("utf-8")
    try:
        with open(entry, "rb") as handle:
            return handle.read(len(header)) == header
    except OSError:
        return False


def _carry_other_files(target: Path, staging: Path) -> None:
    """Give the new model's folder every entry of the old one that is not part of the model (a
    user's notes, predictions, plots): hard links where the file system allows, copies
    elsewhere, so that the old files stay whole until the new folder is in place. The
    ``recipe.yaml`` that ``automm fit`` saved with the old model goes with it: beside another
    model, ``automm evaluate`` would score that model against the old one's label."""
    for entry in target.iterdir():
        if entry.name in MODEL_ENTRIES or entry.name.startswith(f".{target.name}.") or _written_by_fit(entry):
            continue
        if (staging / entry.name).exists():  # the new save's own (automm fit's recipe.yaml)
            continue
        destination = staging / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), destination)
        else:
            _link_or_copy(entry, destination)


def _link_or_copy(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _enter_deepest(folder: Path, inside: Path) -> None:
    """Change into ``folder / inside``, or the deepest of its parents that exists (a subfolder of
    the old model, such as ``members/2``, may not be in the new one)."""
    path = folder / inside
    while path != folder and not path.is_dir():
        path = path.parent
    try:
        os.chdir(path)
    except OSError:  # the model is saved; where the process works is its own affair
        pass


def _working_directory_inside(folder: Path) -> Path | None:
    """The working directory relative to ``folder`` when it is ``folder`` or inside it."""
    try:
        return Path.cwd().resolve().relative_to(folder)
    except (OSError, ValueError):
        return None


def _parse_json(path: Path, data: bytes) -> dict:
    """The JSON object that ``data``, the content of model file ``path``, holds, or
    :class:`ModelFormatError` naming the file."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # (RecursionError: nested deeper than any model writes)
        raise ModelFormatError(f"{path}: cannot be read as JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _read_model_file(path: Path) -> bytes:
    """The content of model file ``path``, or :class:`ModelFormatError` naming it."""
    try:
        return read_regular_file(path)[0]
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def read_model_files(directory: Path, inputs: list, config: dict, n_outputs: int, files: dict | None = None):
    """The model that :func:`write_model_files` wrote into ``directory``, built from ``config``
    (on the CPU, in evaluation mode) from ``files`` (the contents of its two files, by name)
    or, when None, the files read now; :class:`ModelFormatError` when its files cannot be read
    or do not match ``config``."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from .pipeline import build_model

    if files is None:
        files = {name: _read_model_file(directory / name) for name in (PREPROCESSING, WEIGHTS)}
    model = build_model(inputs, config, n_outputs, states=_parse_json(directory / PREPROCESSING, files[PREPROCESSING]))
    try:
        model.load_state_dict(load(files[WEIGHTS]), strict=True)
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise ModelFormatError(f"{directory / WEIGHTS}: weights cannot be read or do not match the described "
                               f"model: {exc}") from None
    return model.eval()


#: How many times :func:`load_model` reads a model's folder that saves keep replacing meanwhile.
READ_ATTEMPTS = 5


class _FolderReplaced(Exception):
    """A save replaced the model's folder while it was being read."""


def _retired_beside(directory: Path) -> list[str]:
    """The names of the folders beside ``directory`` where saves put its previous models aside."""
    try:
        return sorted(entry.name for entry in directory.parent.iterdir()
                      if entry.name.startswith(f".{directory.name}.old-"))
    except OSError:
        return []


def _being_saved(directory: Path) -> bool:
    """Whether a save of ``directory`` may be between its two renames (its retired folder beside
    it; a staging folder alone may be what a killed save left, or a first save's)."""
    return bool(_retired_beside(directory))


def _check_unchanged(directory: Path, manifest_bytes: bytes) -> None:
    """Raise :class:`_FolderReplaced` when the manifest in ``directory`` is no longer ``manifest_bytes``."""
    try:
        with open(directory / MANIFEST, "rb") as handle:
            now = handle.read()
    except OSError:
        raise _FolderReplaced() from None
    if now != manifest_bytes:
        raise _FolderReplaced()


def _member_paths(manifest: dict, manifest_path: Path) -> list[str]:
    """The folders, relative to the model's, of an ensemble's members after the first (checked:
    ``members/<k>``, nothing outside the model's folder)."""
    import re

    paths = []
    for k, info in enumerate(manifest.get("ensemble", {}).get("members", [])):
        path = info.get("path", "")
        if (k == 0 and path != "") or (k > 0 and not re.fullmatch(rf"{MEMBERS}/[0-9]+", str(path))):
            raise ModelFormatError(f"{manifest_path}: bad ensemble member path {path!r}")
        if k:
            paths.append(path)
    return paths


def _read_folder_once(directory: Path) -> tuple[dict, dict]:
    """One reading of the model in ``directory``: its manifest and the content of every file it
    names, each checked against its recorded digest. Raises :class:`_FolderReplaced` when a save
    replaced the folder meanwhile."""
    manifest_path = directory / MANIFEST
    try:
        manifest_bytes = read_regular_file(manifest_path)[0]
    except OSError as exc:
        if not directory.exists():
            if _being_saved(directory):  # between a save's two renames
                raise _FolderReplaced() from None
            raise ModelFormatError(f"path: {_where(directory)} does not exist") from None
        if not directory.is_dir():
            raise ModelFormatError(f"path: {str(directory)!r} is a file, not a model's folder") from None
        if not manifest_path.exists():
            raise ModelFormatError(f"path: {str(directory)!r} holds no automm model (no {MANIFEST})") from None
        raise ModelFormatError(f"{manifest_path}: cannot be read: {exc.strerror or exc}") from None
    manifest = _parse_json(manifest_path, manifest_bytes)
    recorded = manifest.get(MANIFEST_DIGEST)  # absent from directories saved before it
    if recorded is not None and recorded != manifest_digest(manifest):
        _check_unchanged(directory, manifest_bytes)
        raise ModelFormatError(f"{manifest_path}: does not match its own digest, recorded at save: the file is "
                               "damaged, or was edited since")
    version = manifest.get("format_version", 0)
    if manifest.get("format") == "automm-model" and not _is_whole(version):
        raise ModelFormatError(f"{manifest_path}: unsupported format 'automm-model' version {version!r}: "
                               f"'format_version' should be a whole number, got {type(version).__name__}")
    if manifest.get("format") != "automm-model" or not _is_whole(version) or version > FORMAT_VERSION:
        raise ModelFormatError(f"{manifest_path}: unsupported format {manifest.get('format')!r} version "
                               f"{version!r}; this automm reads version {FORMAT_VERSION}")
    _check_manifest(manifest, manifest_path)
    names = [PREPROCESSING, WEIGHTS] + [f"{path}/{name}" for path in _member_paths(manifest, manifest_path)
                                        for name in (PREPROCESSING, WEIGHTS)]
    records = manifest.get("files")  # absent from directories saved before the digests
    if records is not None and not isinstance(records, dict):
        raise ModelFormatError(f"{manifest_path}: 'files' should map each file to its digest, got {records!r}")
    contents = {}
    for name in names:
        path = directory / name
        expected = records.get(name) if records is not None else None
        if records is not None and not (isinstance(expected, dict) and isinstance(expected.get("sha256"), str)):
            raise ModelFormatError(f"{manifest_path}: records no digest of {name} ('files')")
        try:
            data = read_regular_file(path)[0]
        except OSError as exc:
            _check_unchanged(directory, manifest_bytes)
            raise ModelFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        if expected is not None and _file_record(data)["sha256"] != expected["sha256"]:
            _check_unchanged(directory, manifest_bytes)
            size = expected.get("size")
            size = f" ({len(data)} bytes, saved with {size})" if isinstance(size, int) and size != len(data) else ""
            raise ModelFormatError(f"{path}: does not match the digest recorded at save in {MANIFEST}: the file is "
                                   f"damaged{size}")
        contents[name] = data
    if records is None:  # no digests to tell: the folder is one save if its manifest stayed the same
        _check_unchanged(directory, manifest_bytes)
    return manifest, contents


def _where(directory: Path) -> str:
    """``directory`` for a message: a relative one with the working directory it was looked up
    from, as the CLI says it (``'modelA' (from /home/me)``)."""
    return repr(str(directory)) + ("" if directory.is_absolute() else f" (from {os.getcwd()})")


def _read_folder(directory: Path) -> tuple[dict, dict]:
    """The manifest of the model in ``directory`` and the content of every file it names, all of
    one save (read again when a save replaced the folder meanwhile)."""
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            time.sleep(0.01 * 2 ** attempt)
        try:
            return _read_folder_once(directory)
        except _FolderReplaced:
            continue
    if not directory.exists():  # what looked like a save between its renames is a leftover
        leftovers = ", ".join(repr(name) for name in _retired_beside(directory))
        raise ModelFormatError(f"path: {_where(directory)} does not exist" + (
            f" (beside it: {leftovers}, a model that a save moved aside and did not delete)" if leftovers else ""))
    raise ModelFormatError(f"path: the model in {str(directory)!r} was replaced by a save while it was being read, "
                           f"{READ_ATTEMPTS} times in a row; load it once the saving has stopped")


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_config(value: Any) -> bool:
    """Whether ``value`` has the shape of a model's configuration (``config_``)."""
    return (isinstance(value, dict) and isinstance(value.get("encoders"), dict)
            and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in value["encoders"].values())
            and isinstance(value.get("fusion"), dict) and isinstance(value["fusion"].get("name"), str)
            and isinstance(value.get("training"), dict) and isinstance(value.get("augmentations", []), list))


def _is_input(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("modality"), str)
            and _is_names(value.get("columns")) and isinstance(value.get("column_roles", {}), dict))


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


#: What each parameter that loading, predicting and ``fit_summary`` read must hold (key ->
#: (whether a value does, what it should be)): the rest only a new ``fit`` reads, which checks them.
_PARAMS_READ = {
    "num_workers": (lambda v: v == "auto" or (_is_whole(v) and v >= 0), "'auto' or a whole number >= 0"),
    "verbose": (lambda v: isinstance(v, int) and v >= 0, "a whole number >= 0"),
    "amp": (lambda v: isinstance(v, bool), "true or false"),
    "cache_dir": (lambda v: v is None or isinstance(v, str), "a directory path or null"),
    "metric": (lambda v: isinstance(v, str), "a metric's name"),
    "problem_type": (lambda v: isinstance(v, str), "a problem type's name"),
    "class_weight": (lambda v: v is None or v == "balanced" or (isinstance(v, dict) and all(
        _is_finite(w) and w >= 0 for w in v.values())), "null, 'balanced' or an object of weights >= 0"),
}

#: What each entry of the manifest's ``fit`` record must hold (``fit_summary`` reads them).
_FIT_KEYS = {
    "validation_score": (_is_number, "a number"),
    "predict_validation_score": (_is_number, "a number"),
    "validation_r2": (_is_finite, "a finite number"),
    "fit_seconds": (lambda v: _is_finite(v) and v >= 0, "a number of seconds >= 0"),
    "validation_rows": (lambda v: _is_whole(v) and v >= 0, "a whole number >= 0"),
    "best_trial": (_is_whole, "a whole number"),
    "trials": (lambda v: isinstance(v, dict) and all(_is_whole(n) and n >= 0 for n in v.values()),
               "an object of trial counts"),
    "pareto": (lambda v: isinstance(v, dict), "an object"),
    "stop_reason": (lambda v: isinstance(v, str), "a text"),
    "study_name": (lambda v: isinstance(v, str), "a text"),
    "validation_on": (lambda v: isinstance(v, str), "a text"),
}


def _is_member(value: Any) -> bool:
    return (isinstance(value, dict) and _is_whole(value.get("trial")) and _is_number(value.get("weight"))
            and _is_whole(value.get("batch_size")) and _is_config(value.get("config")))


#: What each key of the manifest must hold: key -> (whether a value does, what it should be).
#: Keys marked optional may be absent (older models, or not of every kind of model).
_MANIFEST_KEYS = {
    "params": (lambda v: isinstance(v, dict), "an object of the estimator's parameters"),
    "input_positional": (lambda v: isinstance(v, bool), "true or false"),
    "columns": (_is_names, "a list of column names"),
    "column_roles": (lambda v: isinstance(v, dict) and all(isinstance(r, str) for r in v.values()),
                     "an object of each column's role"),
    "inputs": (lambda v: isinstance(v, list) and v and all(_is_input(i) for i in v),
               "a list of inputs, each with its 'name', 'modality' and 'columns'"),
    "config": (_is_config, "the model's configuration, with its 'encoders', 'fusion' and 'training'"),
    "components": (lambda v: isinstance(v, list) and all(isinstance(c, dict) and isinstance(c.get("kind"), str)
                                                         and isinstance(c.get("name"), str) for c in v),
                   "a list of components, each with its 'kind' and 'name'"),
    "batch_size": (lambda v: _is_whole(v) and v >= 1, "a whole number >= 1"),
    "seed": (lambda v: _is_whole(v) and 0 <= v < 2**32, "a whole number in [0, 2**32 - 1]"),
    "history": (lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v), "a list of epoch records"),
    "best_epoch": (lambda v: _is_whole(v) and v >= 0, "a whole number >= 0"),
}
_OPTIONAL_MANIFEST_KEYS = {
    "estimator": (lambda v: isinstance(v, str), "a class name"),
    "target": (lambda v: isinstance(v, dict) and _is_finite(v.get("mean")) and _is_finite(v.get("std"))
               and v["std"] > 0, "the regression target's 'mean' and 'std' (finite numbers, the 'std' > 0)"),
    "feature_names_in": (_is_names, "a list of feature names"),
    "decision_weights": (lambda v: isinstance(v, list) and all(_is_finite(w) and w > 0 for w in v),
                         "a list of numbers > 0"),
    "temperature": (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "a number > 0"),
    "class_weights": (lambda v: isinstance(v, list) and all(_is_finite(w) and w >= 0 for w in v),
                      "a list of numbers >= 0"),
    "label_columns": (_is_names, "a list of column names"),
    "identifier_columns": (_is_names, "a list of column names"),
    "fit": (lambda v: isinstance(v, dict), "an object"),
    "metadata_requests": (lambda v: isinstance(v, dict) and all(
        isinstance(r, dict) and all(isinstance(p, str) and (a is None or isinstance(a, (bool, str)))
                                    for p, a in r.items()) for r in v.values()),
        "an object of each method's requests, e.g. {'score': {'sample_weight': true}}"),
    "ensemble": (lambda v: isinstance(v, dict) and isinstance(v.get("problem_type"), str)
                 and isinstance(v.get("members"), list) and v["members"] and all(_is_member(m) for m in v["members"]),
                 "the ensemble's 'problem_type' and 'members', each with its 'trial', 'weight', 'batch_size' "
                 "and 'config'"),
}


def _check_manifest(manifest: dict, manifest_path: Path) -> None:
    """:class:`ModelFormatError` naming ``manifest_path`` and the key when a key that loading
    reads is missing or holds the wrong kind of value (:data:`_MANIFEST_KEYS`)."""
    for keys, required in ((_MANIFEST_KEYS, True), (_OPTIONAL_MANIFEST_KEYS, False)):
        for key, (valid, expected) in keys.items():
            if key not in manifest:
                if required:
                    raise ModelFormatError(f"{manifest_path}: lacks {key!r} ({expected})")
                continue
            if not valid(manifest[key]):
                raise ModelFormatError(f"{manifest_path}: {key!r} should be {expected}, got "
                                       f"{elided_repr(manifest[key], 204)}")
    for key, entries in (("params", _PARAMS_READ), ("fit", _FIT_KEYS)):
        for name, (valid, expected) in entries.items():
            if name in manifest.get(key, {}) and not valid(manifest[key][name]):
                raise ModelFormatError(f"{manifest_path}: {name!r} of {key!r} should be {expected}, got "
                                       f"{elided_repr(manifest[key][name], 204)}")




def _check_outputs(manifest: dict, manifest_path: Path) -> None:
    """:class:`ModelFormatError` unless the manifest's classes (or regression target), decision
    weights and ``n_outputs`` agree: a model whose outputs outnumber its classes would fail in
    ``predict``, one with fewer would never predict some of them."""
    n_outputs, problem_type = manifest.get("n_outputs"), manifest.get("problem_type")
    if not isinstance(n_outputs, int) or isinstance(n_outputs, bool) or n_outputs < 1:
        raise ModelFormatError(f"{manifest_path}: 'n_outputs' should be a whole number >= 1, got {n_outputs!r}")
    if problem_type == "regression":
        if n_outputs != 1 or not isinstance(manifest.get("target"), dict):
            raise ModelFormatError(f"{manifest_path}: a regression model has 1 output and a 'target' record, this "
                                   f"one {n_outputs} outputs and target {manifest.get('target')!r}")
        return
    if problem_type not in ("binary", "multiclass"):
        raise ModelFormatError(f"{manifest_path}: unknown 'problem_type' {problem_type!r}; expected 'binary', "
                               "'multiclass' or 'regression'")
    classes = manifest.get("classes")
    values = classes.get("values") if isinstance(classes, dict) else None
    if not isinstance(values, list):
        raise ModelFormatError(f"{manifest_path}: a {problem_type} model needs its 'classes' (dtype and values), "
                               f"got {classes!r}")
    _decode_classes(classes, manifest_path)
    if len(values) != n_outputs:
        raise ModelFormatError(f"{manifest_path}: 'classes' lists {len(values)} classes but the model has "
                               f"{n_outputs} outputs ('n_outputs'), one per class")
    for key in ("decision_weights", "class_weights"):
        weights = manifest.get(key)
        if weights is not None and (not isinstance(weights, list) or len(weights) != n_outputs):
            raise ModelFormatError(f"{manifest_path}: {key!r} should hold one weight per class "
                                   f"({n_outputs}), got {weights!r}")


def _why_missing(plugin: str | None, purpose: str = "load this model") -> str:
    """Why a component a model needs (to do ``purpose``) is not registered: its plugin skipped,
    autoloading off, or the plugin not installed."""
    from . import registry

    skipped = registry.skipped_plugins()
    if plugin in skipped:
        return f"which is installed but skipped: {skipped[plugin]['reason']}"
    if registry.autoload_disabled():
        return (f"which is not loaded: {registry.DISABLE_AUTOLOAD_ENV} is set, so only the built-in plugins are; "
                f"unset it (or install the plugin) to {purpose}")
    return f"which is not installed; install it to {purpose}"


def missing_augmentation_plugin(estimator, argument: str, name: Any) -> str | None:
    """For augmentation ``name`` (named by parameter ``argument``) that no plugin registers now but
    that the loaded ``estimator``'s model recorded (manifest key ``augmentations``): the message
    naming the plugin and package to install. None otherwise (a model saved before augmentations
    were recorded, or a name it never used)."""
    from . import registry

    info = (estimator.__dict__.get("_augmentation_providers") or {}).get(name) if isinstance(name, str) else None
    if info is None or name in registry.get_registry().names("augmentation"):
        return None
    return (f"{argument}: augmentation {name!r} comes from plugin {info.get('plugin')!r} (package "
            f"{info.get('package') or 'unknown'}), {_why_missing(info.get('plugin'), 'fit this model again')}")


def _augmentation_name(item: Any) -> Any:
    """The name of an augmentation choice (a name, or a mapping with ``name``)."""
    return item.get("name") if isinstance(item, Mapping) else item


def augmentation_parameters(estimator) -> list[tuple[str, Any]]:
    """``(parameter, name)`` of each augmentation ``estimator``'s ``augmentations`` and
    ``search_space['augmentations']`` parameters name."""
    named = [("augmentations", item) for item in
             (estimator.augmentations if isinstance(estimator.augmentations, (list, tuple)) else [])]
    space = estimator.search_space.get("augmentations") if isinstance(estimator.search_space, Mapping) else None
    named += [("search_space['augmentations']", item) for item in
              (space if isinstance(space, (Mapping, list, tuple)) else [])]
    return [(argument, _augmentation_name(item)) for argument, item in named]


def _augmentation_names(estimator) -> list[str]:
    """The augmentations a fitted ``estimator`` names: in its kept configuration, its ensemble
    members' and its parameters (:func:`augmentation_parameters`)."""
    configs = [estimator.config_] + [m.config for m in getattr(estimator.__dict__.get("ensemble_"), "members", [])]
    names = [_augmentation_name(choice) for config in configs for choice in config.get("augmentations", [])]
    names += [name for _, name in augmentation_parameters(estimator)]
    return list(dict.fromkeys(name for name in names if isinstance(name, str)))


def _augmentation_provenance(estimator, reg) -> list[dict]:
    """The manifest's ``augmentations``: the plugin and package of each augmentation the model
    names (:func:`_augmentation_names`): the registry's, else what the loaded model recorded."""
    recorded = estimator.__dict__.get("_augmentation_providers") or {}
    found = []
    for name in _augmentation_names(estimator):
        if name in reg.names("augmentation"):
            spec = reg.get("augmentation", name)
            found.append({"name": name, "plugin": spec.provider, "package": spec.package})
        elif name in recorded:  # its plugin is gone since the load: what the model recorded
            found.append({"name": name, **recorded[name]})
    return found


def _saved_augmentations(manifest: dict, manifest_path: Path) -> dict:
    """The manifest's ``augmentations`` as name -> ``{"plugin", "package"}`` (none recorded: {})."""
    entries = manifest.get("augmentations", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                for e in entries):
        raise ModelFormatError(f"{manifest_path}: 'augmentations' should list each augmentation's name, plugin and "
                               f"package, got {entries!r}")
    return {e["name"]: {"plugin": e.get("plugin"), "package": e.get("package")} for e in entries}


def _saved_output(manifest: dict, manifest_path: Path) -> dict:
    """The manifest's ``set_output`` (keyword -> container, e.g. ``{"transform": "pandas"}``; none: {})."""
    output = manifest.get("set_output", {})
    if not isinstance(output, dict) or set(output) - {"transform"} or not all(isinstance(v, str)
                                                                             for v in output.values()):
        raise ModelFormatError(f"{manifest_path}: 'set_output' should be like {{'transform': 'pandas'}}, got "
                               f"{output!r}")
    return output


def _estimator_class(manifest: dict, expected_class, directory: Path):
    """The class :func:`load_model` rebuilds the model as: the saved one when it is
    ``expected_class`` or a subclass of it, else ``expected_class``, unless that is a classifier
    asked for a regression model or the other way round (:class:`ModelFormatError`)."""
    from . import estimator as estimator_module

    wanted = expected_class or estimator_module.AutoMM
    saved = getattr(estimator_module, str(manifest.get("estimator")), None)
    if isinstance(saved, type) and issubclass(saved, wanted):
        return saved
    problem_type = manifest["problem_type"]
    regression = problem_type == "regression"
    if issubclass(wanted, estimator_module.AutoMMClassifier if regression else estimator_module.AutoMMRegressor):
        kind = "regression" if regression else f"{problem_type} classification"
        right = "AutoMMRegressor" if regression else "AutoMMClassifier"
        raise ModelFormatError(f"path: {str(directory)!r} holds a {kind} model (saved from "
                               f"{manifest.get('estimator')}), which {wanted.__name__}.load does not load: load it "
                               f"with {right}.load or AutoMM.load")
    return wanted


def load_model(path: str | os.PathLike, device: str | torch.device = "auto", expected_class=None,
               cache_dir: str | os.PathLike | None = None):
    """Rebuild an estimator saved by :func:`save_model`, as ``expected_class`` (see
    :func:`_estimator_class`; None: :class:`~automm.AutoMM`, which loads every model).
    ``cache_dir``: where it keeps its frozen encoders' features, in place of the ``cache_dir``
    parameter saved with it (None: that one). The manifest's classes, decision weights and outputs
    must agree (:func:`_check_outputs`); a model saved before blank texts were missing texts (no
    ``"blank_texts": "missing"``) reads them as it was saved (``InputSpec.blank_texts_missing``);
    a component whose plugin is missing is a :class:`ModelFormatError` naming the plugin, its package
    and why it is not loaded; one that another version of its package cannot build or read, naming
    both versions."""
    from . import registry
    from .data import InputSpec
    from .training import resolve_device

    try:
        device_ = resolve_device(device)
    except ValueError as exc:
        raise InputError(f"device: {exc}") from None
    check_cache_dir(cache_dir)
    _check_path_type(path, "path")
    directory = Path(path).expanduser()
    manifest, files = _read_folder(directory)
    _check_outputs(manifest, directory / MANIFEST)
    augmentations = _saved_augmentations(manifest, directory / MANIFEST)
    output = _saved_output(manifest, directory / MANIFEST)
    cls = _estimator_class(manifest, expected_class, directory)
    reg = registry.get_registry()
    other_packages = []  # components whose package here is not the one the model was saved with
    for info in manifest["components"]:
        try:
            spec = reg.get(info["kind"], info["name"])
        except UnknownComponentError:
            if info.get("plugin") in DEFAULT_PLUGINS:  # a built-in of another automm (no package to install)
                saved_with = manifest.get("versions", {}).get("automm") if isinstance(manifest.get("versions"),
                                                                                      dict) else None
                current = _automm_version()
                which = (saved_with if saved_with and saved_with != current  # (one version number, builds apart)
                         else f"a later build of {current}" if saved_with else "version unknown")
                raise ModelFormatError(
                    f"the model needs {info['kind']} {info['name']!r}, built into the automm that saved it "
                    f"({which}); this automm ({current}) does not have it: load "
                    "the model with an automm that does (upgrade automm)") from None
            raise ModelFormatError(
                f"the model needs {info['kind']} {info['name']!r} from plugin {info.get('plugin')!r} (package "
                f"{info.get('package') or 'unknown'}), {_why_missing(info.get('plugin'))}") from None
        saved = info.get("package")
        if saved and spec.package and saved != spec.package:
            other_packages.append(f"{info['kind']} {info['name']!r} of {saved} (here {spec.package})")
        if saved and spec.package and registry.distribution_name(saved) != registry.distribution_name(spec.package):
            warnings.warn(f"{path}: the model was saved with {info['kind']} {info['name']!r} of package {saved}; "
                          f"here that name comes from {spec.package}, which may read its weights differently "
                          f"(install {registry.distribution_name(saved)} to predict as it did)", AutoMMWarning,
                          stacklevel=user_stacklevel())
    _training_only_restored(manifest["config"], manifest.get("training_only"), str(directory / MANIFEST), reg)
    for k, info in enumerate(manifest.get("ensemble", {}).get("members", [])):
        _training_only_restored(info["config"], info.get("training_only"),
                                f"{directory / MANIFEST}: ensemble member {k}", reg)

    params = {k: v for k, v in manifest["params"].items() if k in cls().get_params(deep=False)}
    if isinstance(params.get("class_weight"), dict) and "classes" in manifest:  # JSON made its keys strings
        by_text = {str(c): c for c in _decode_classes(manifest["classes"], directory / MANIFEST).tolist()}
        params["class_weight"] = {by_text.get(k, k): w for k, w in params["class_weight"].items()}
    if cache_dir is not None:
        params["cache_dir"] = os.fspath(cache_dir)  # (a Path would not be saved again)
        # and in place of an encoder's own cache_dir, which would otherwise win (the training
        # machine's folder, which the serving one may not have)
        _own_cache_dirs_replaced(manifest["config"]["encoders"], params["cache_dir"])
        for info in manifest.get("ensemble", {}).get("members", []):
            _own_cache_dirs_replaced(info.get("config", {}).get("encoders", {}), params["cache_dir"])
    estimator = cls(**params)
    _restore_metadata_requests(estimator, manifest, directory / MANIFEST)  # (before building the model)
    inputs = [InputSpec.from_dict(d) for d in manifest["inputs"]]
    if manifest.get("blank_texts") != "missing":  # saved before blank texts were missing ones: texts, as then
        for spec in inputs:
            spec.blank_texts_missing = False
    config = manifest["config"]
    from .estimator import global_random_state_kept

    with global_random_state_kept(), _naming_other_packages(other_packages):
        # (the networks' initial weights, replaced by the saved ones, would draw from the host's
        # torch generator: a load changed the stream a host had seeded)
        model = read_model_files(directory, inputs, config, manifest["n_outputs"],
                                 {name: files.pop(name) for name in (PREPROCESSING, WEIGHTS)})
    estimator.model_ = model.to(device_)
    estimator.device_ = device_
    estimator.problem_type_ = manifest["problem_type"]
    estimator.input_positional_ = manifest["input_positional"]
    estimator.columns_ = manifest["columns"]
    estimator.identifier_columns_ = list(manifest.get("identifier_columns", []))
    estimator.n_features_in_ = len(manifest["columns"]) + len(estimator.identifier_columns_)
    estimator.column_roles_ = manifest["column_roles"]
    estimator.inputs_ = inputs
    estimator.config_ = config
    estimator.encoder_choices_ = dict(config["encoders"])
    estimator.fusion_choice_ = dict(config["fusion"])
    estimator.augmentation_choices_ = list(config.get("augmentations", []))
    estimator.batch_size_ = manifest["batch_size"]
    estimator.num_workers_ = estimator._resolved_num_workers(inputs)
    estimator.seed_ = manifest["seed"]
    estimator.history_ = manifest["history"]
    estimator.best_epoch_ = manifest["best_epoch"]
    if "classes" in manifest:
        estimator.classes_ = _decode_classes(manifest["classes"], directory / MANIFEST)
    if "target" in manifest:
        estimator.target_mean_ = manifest["target"]["mean"]
        estimator.target_std_ = manifest["target"]["std"]
    if "feature_names_in" in manifest:
        estimator.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
    estimator.decision_weights_ = (np.asarray(manifest["decision_weights"], dtype=np.float64)
                                   if "decision_weights" in manifest else None)
    estimator.temperature_ = float(manifest.get("temperature", 1.0))
    # (absent: no class_weight, or a model saved before automm recorded them)
    estimator.class_weights_ = manifest.get("class_weights")
    estimator._label_columns = tuple(manifest.get("label_columns", ()))
    for key, attr in _FIT_RECORD:  # what fit did (fit_summary); absent from older directories
        if key in manifest.get("fit", {}):
            setattr(estimator, attr, manifest["fit"][key])
    if "ensemble" in manifest:
        with global_random_state_kept(), _naming_other_packages(other_packages):
            estimator.ensemble_ = _load_ensemble(directory, manifest, files, inputs, estimator.model_, device_)
    estimator._augmentation_providers = augmentations  # names their package if a refit needs them gone
    if output:
        estimator.set_output(**output)
    return estimator


@contextlib.contextmanager
def _naming_other_packages(other_packages: list[str]):
    """Around building a loaded model: when a component comes from another package or version than
    the one the model was saved with (``other_packages``, each ``"fusion 'lowrank' of automm-lowrank
    0.1.0 (here automm-lowrank 0.2.0)"``), a failure to build it or to read its weights is a
    :class:`ModelFormatError` that says so, not a plugin's broken factory or a damaged file."""
    from .exceptions import PluginError

    try:
        yield
    except (PluginError, ModelFormatError) as exc:
        if not other_packages:
            raise
        raise ModelFormatError(f"the model was saved with {', '.join(other_packages)}, which cannot load it: "
                               f"install the package it was saved with to load it ({exc})") from exc


def _own_cache_dirs_replaced(choices: Any, cache_dir: str) -> None:
    """Set every ``cache_dir`` an encoder choice (or a stack's part) names in ``choices`` to
    ``cache_dir``, in place."""
    if isinstance(choices, dict):
        for key, value in choices.items():
            if key == "cache_dir" and value is not None:
                choices[key] = cache_dir
            else:
                _own_cache_dirs_replaced(value, cache_dir)
    elif isinstance(choices, list):
        for value in choices:
            _own_cache_dirs_replaced(value, cache_dir)


#: What ``fit`` did, kept with the model for :meth:`~automm.AutoMM.fit_summary` (manifest key
#: ``fit``; nothing prediction reads): the summary's key -> the estimator's attribute.
_FIT_RECORD = (("validation_score", "best_score_"), ("stop_reason", "stop_reason_"),
               ("fit_seconds", "fit_seconds_"), ("best_trial", "best_trial_"), ("study_name", "study_name_"),
               ("trials", "trial_counts_"), ("pareto", "pareto_summary_"),
               ("predict_validation_score", "decided_score_"), ("validation_on", "validation_on_"),
               ("validation_rows", "validation_rows_"), ("validation_r2", "validation_r2_"))


def _fit_record(estimator) -> dict:
    """The ``fit`` record of a fitted ``estimator``: those keys of its ``fit_summary()``."""
    summary = estimator.fit_summary()
    return {key: _jsonable(summary[key]) for key, _ in _FIT_RECORD if summary.get(key) is not None}


def _format_version(ensemble, decision_weights=None, temperature: float = 1.0, models=()) -> int:
    """The oldest format that holds ``ensemble`` (None: a single model), the decision rule's
    ``decision_weights``, a lone classifier's ``temperature`` (an older reader would ignore them
    and predict otherwise) and the encoders of ``models`` (each module's ``min_format_version``)
    in full."""
    needed = max([getattr(module, "min_format_version", 1) for model in models for module in model.modules()],
                 default=1)
    return max(needed, _format_version_of_outputs(ensemble, decision_weights, temperature))


def _format_version_of_outputs(ensemble, decision_weights=None, temperature: float = 1.0) -> int:
    """The oldest format that holds ``ensemble``, ``decision_weights`` and ``temperature`` (see
    :func:`_format_version`)."""
    if temperature != 1.0:
        return 6
    if decision_weights is not None:
        return 5
    if ensemble is None:
        return 1
    if ensemble.pooling != "linear":
        return 4
    return 3 if any(m.temperature != 1.0 for m in ensemble.members) else 2


def _load_ensemble(directory: Path, manifest: dict, files: dict, inputs: list, first_model, device):
    """The ensemble of a model directory (its first member is the already loaded model; ``files``:
    the content of every member's files, by their path in the directory, as :func:`_read_folder` read them)."""
    from .ensemble import POOLINGS, Ensemble, EnsembleMember

    members = []
    for k, info in enumerate(manifest["ensemble"]["members"]):
        path = info.get("path", "")
        if k == 0:
            model = first_model
        else:
            member_dir = directory / path
            try:
                model = read_model_files(member_dir, inputs, info["config"], manifest["n_outputs"],
                                         {name: files.pop(f"{path}/{name}") for name in (PREPROCESSING, WEIGHTS)})
            except (RuntimeError, OSError, ValueError, ModelFormatError) as exc:
                raise ModelFormatError(f"{member_dir}: ensemble member {k} cannot be loaded: {exc}") from None
            model = model.to(device)
        score = info.get("score")
        temperature = info.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
            raise ModelFormatError(f"{directory / MANIFEST}: ensemble member {k} has a bad temperature {temperature!r}")
        members.append(EnsembleMember(trial=int(info["trial"]), weight=float(info["weight"]), config=info["config"],
                                      model=model, batch_size=int(info["batch_size"]),
                                      score=float(score) if isinstance(score, (int, float)) else float("nan"),
                                      fold=int(info["fold"]) if isinstance(info.get("fold"), int) else None,
                                      temperature=float(temperature)))
    pooling = manifest["ensemble"].get("pooling", "linear")
    if pooling not in POOLINGS:
        raise ModelFormatError(f"{directory / MANIFEST}: unknown ensemble pooling {pooling!r}; expected one of "
                               f"{list(POOLINGS)}")
    return Ensemble(members, manifest["ensemble"]["problem_type"], pooling)
