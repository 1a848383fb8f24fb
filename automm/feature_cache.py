"""A disk cache of per-sample feature vectors, shared by processes, runs and plugins.

Any encoder whose features never change (frozen pretrained weights) can keep them here, keyed
by what each input contains; ``automm-pretrained`` does. ``AutoMM(cache_dir=...)`` reaches an
encoder as ``Encoder.prepare(values, cache_dir=...)``; ``None`` means :func:`default_cache_dir`.

Layout: ``<cache_dir>/features/<namespace>/<xx>/<key>.f32`` where ``namespace`` names the
encoder and its weights, ``key`` is the SHA-256 of (namespace, preprocessing parameters,
content digest of the input) and ``xx`` its first two hex digits. Each file is::

    MAGIC (8 bytes) | key digest (32 bytes) | n (uint32) | CRC-32 of the values (uint32) | n float32 values

(little endian). Beside the shards, ``<namespace>/settings/<sha256>.head`` records each
encoder configuration's part of the key (the namespace and parameters, no input), written with the
first feature it stores or reads there: :func:`forget_features` needs it to find one input's
features by its content, since a key cannot be read back.

Files are written to a temporary name in the same directory and renamed with
:func:`os.replace`, which is atomic on POSIX and Windows: a reader sees either no file
or a complete one, never a partial one, however many processes write at once (two
writers of one key write the same bytes; the last rename wins). A reader checks the
magic, the stored key digest and the length before trusting a file, so a file can never
be taken for another input's features, and the values' checksum, so that a file damaged
inside (a flipped bit on a bad disk) is not taken for features either: a damaged file is
ignored and rewritten. (Files of the first format, without a checksum, count as foreign.)

A file's modification time is its last use (a read moves it forward, at most once a
day), so :func:`clear_cache` can drop what no fit has used for a while; ``automm cache``
shows and clears the cache from the command line (``automm cache forget``: one input's features,
:func:`forget_features`). Clearing while fits run is safe: a
reader that misses a file computes the features again.

A process-wide in-memory layer (bounded, least recently used first out) in front of the
disk makes repeated trials in one process cost a dictionary look-up per sample.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import struct
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from .exceptions import InputError, user_stacklevel
from .files import create_temporary, read_regular_file, replace_whole, url_problem
from .settings import megabytes_setting
from .suggestions import elided_repr

__all__ = ["CACHE_ENV", "default_cache_dir", "resolve_cache_dir", "check_cache_dir", "FeatureCache", "content_digest",
           "key_digest", "clear_memory_cache", "CacheUsage", "cache_usage", "clear_cache", "Forgotten",
           "forget_features"]

CACHE_ENV = "AUTOMM_CACHE_DIR"
#: How :func:`default_cache_dir`'s error starts (a search warns of the trials it failed).
NO_CACHE_FOLDER = "no folder for the feature cache"
MAGIC = b"AMMFEAT2"
_HEADER = struct.Struct("<8s32sII")


def default_cache_dir() -> Path:
    """``$AUTOMM_CACHE_DIR`` or ``~/.cache/automm`` (``$XDG_CACHE_HOME/automm`` when set); an
    :class:`~automm.exceptions.AutoMMError` saying what to set where there is no home folder
    (``$HOME`` unset, and a user id the user database lacks: a container's ``--user 1000``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "automm"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # (Python: "Could not determine home directory.")
        from .exceptions import AutoMMError

        user = f" (uid {os.getuid()})" if hasattr(os, "getuid") else ""
        raise AutoMMError(f"{NO_CACHE_FOLDER}: ${CACHE_ENV}, $XDG_CACHE_HOME and $HOME are not set, and "
                          f"this user{user} has no home folder in the user database; set ${CACHE_ENV} (or HOME), or "
                          "give the folder: AutoMM(cache_dir=...), AutoMM.load(path, cache_dir=...), automm predict "
                          "and evaluate --cache-dir DIR") from None
    return home / ".cache" / "automm"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def check_cache_dir(cache_dir: Any) -> None:
    """An :class:`InputError` naming ``cache_dir`` when it is no folder path (None: the default),
    a URL, or a file (``fit`` and ``AutoMM.load`` alike: a model loaded with one warned at each
    prediction of new data that it could not write its features, and kept none)."""
    if cache_dir is None:
        return
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise InputError(f"cache_dir: expected a directory path or None, got {cache_dir!r}")
    if (problem := url_problem(cache_dir, writing=True)) is not None:
        raise InputError(f"cache_dir: {cache_dir!r} is {problem}")
    path = os.path.expanduser(cache_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"cache_dir: {os.fspath(cache_dir)!r} is a file, not a directory; give a folder "
                         "for the feature cache (it is made when missing)")


# -- content digests ---------------------------------------------------------------------

_file_digests: dict[tuple, str] = {}
_MAX_FILE_DIGESTS = 200_000  # about 100 MB (520 bytes an entry of a 45-character path) of memoised digests
_file_digests_lock = threading.Lock()


def _file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes. Memoised per process by (path, size, mtime_ns, ctime_ns,
    inode): a file rewritten in place gets a new mtime/ctime and so is hashed again."""
    absolute = os.path.abspath(os.fspath(path))
    st = os.stat(absolute)
    stamp = (absolute, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _file_digests_lock:
        known = _file_digests.get(stamp)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(absolute, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    value = "file:" + digest.hexdigest()
    with _file_digests_lock:
        _file_digests[stamp] = value
        if len(_file_digests) > _MAX_FILE_DIGESTS:  # a long-lived process sees new paths without end
            for old in list(_file_digests)[:_MAX_FILE_DIGESTS // 2]:  # the oldest half
                del _file_digests[old]
    return value


def content_digest(value: Any, paths: bool = False) -> str:
    """A digest of what a raw input *contains*: file bytes for paths (``os.PathLike``, and
    ``str`` when ``paths`` is true), UTF-8 for texts, bytes, array data (with dtype and
    shape), PIL pixels (with mode and size), or a tuple / dict of those. Two inputs share a
    digest only if they hold the same content."""
    if isinstance(value, str):
        if paths:
            return _file_digest(value)
        return "str:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    if isinstance(value, os.PathLike):
        return _file_digest(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        head = f"{arr.dtype.str}{arr.shape}".encode()
        return "array:" + hashlib.sha256(head + arr.tobytes()).hexdigest()
    if isinstance(value, torch.Tensor):
        return content_digest(value.detach().cpu().numpy(), paths)
    from PIL import Image

    if isinstance(value, Image.Image):
        from .components.image import exif_orientation, unread_image_file

        filename = unread_image_file(value)
        if filename is not None:  # decoded from its file (load_image): keyed by it, the image left unloaded
            return _unread_image_digest(value, _file_digest(filename))

        head = f"{value.mode}{value.size}".encode()
        # what the pixels mean besides their bytes: a palette, a transparent colour, an EXIF
        # turn (only where present: other images keep their digests)
        alpha = value.palette is not None and value.palette.mode == "RGBA"  # (convert("P") of an RGBA image)
        palette = value.getpalette("RGBA" if alpha else "RGB") if value.mode in ("P", "PA") else None
        extras = [f"palette{bytes(palette).hex()}" if palette else "",
                  f"transparency{value.info['transparency']!r}" if "transparency" in value.info else "",
                  f"orientation{orientation}" if (orientation := exif_orientation(value)) != 1 else "",
                  # 32-bit greyscale decoded from a file is 0..65535; made in memory, 0..255 when its
                  # values are (load_image reads them so): the same pixels, other images
                  f"depth-{'file' if value.format else 'memory'}" if value.mode == "I" else ""]
        return "pil:" + hashlib.sha256(head + "".join(extras).encode() + value.tobytes()).hexdigest()
    if isinstance(value, (tuple, list)):
        return "seq:" + hashlib.sha256("|".join(content_digest(v, paths) for v in value).encode()).hexdigest()
    if isinstance(value, Mapping):
        parts = [f"{k!r}={content_digest(v, paths)}" for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))]
        return "map:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
    if isinstance(value, (int, float, bool, np.number)):
        return "num:" + repr(value)
    raise TypeError(f"cannot compute a content digest of a {type(value).__name__}")


def _unread_image_digest(image: Any, file_digest: str) -> str:
    """:func:`content_digest` of a PIL image still to be decoded from the file whose digest is
    ``file_digest``: the file's bytes and how Pillow reads them (format, mode, size)."""
    head = f"{image.format}{image.mode}{image.size}".encode()
    return "pil-file:" + hashlib.sha256(head + file_digest.encode()).hexdigest()


def key_digest(namespace: str, params: Mapping[str, Any], content: str) -> bytes:
    """The 32-byte cache key of one input's features: the SHA-256 of
    ``repr((namespace, sorted (name, repr(value)) pairs of params, content))``."""
    return _keyed(_key_head(namespace, params), content)


def _key_head(namespace: str, params: Mapping[str, Any]) -> bytes:
    """The part of :func:`key_digest`'s text that one encoder configuration's keys share (bytes:
    a cache holding it still pickles, for DataLoader workers)."""
    return f"({namespace!r}, {sorted((str(k), repr(v)) for k, v in params.items())!r}, ".encode("utf-8")


def _keyed(head: bytes, content: str) -> bytes:
    return hashlib.sha256(head + f"{content!r})".encode("utf-8")).digest()


# -- the cache ---------------------------------------------------------------------------

#: Bytes an entry of the in-memory layer holds besides its values (the tensor and its numpy
#: array, the 32-byte key, the tuple, the frozenset of roots, the dict slot): about 880 measured
#: (RSS over 20,000 entries, MiniLM's 384 and EfficientNet-Lite0's 1,280 values alike).
MEMORY_ENTRY_OVERHEAD = 880


def _entry_bytes(value: torch.Tensor) -> int:
    return value.numel() * value.element_size() + MEMORY_ENTRY_OVERHEAD


class _MemoryLayer:
    """Process-wide LRU map key digest → (float32 tensor, the cache folders it is stored in),
    bounded in bytes (values and each entry's overhead)."""

    def __init__(self, max_bytes: int | None = None):
        self._max_bytes = None if max_bytes is None else int(max_bytes)
        self.items: OrderedDict[bytes, tuple[torch.Tensor, frozenset]] = OrderedDict()
        self.nbytes = 0
        self.lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        """The bound: as constructed, else :func:`feature_memory_budget`, read at first use."""
        if self._max_bytes is None:
            self._max_bytes = feature_memory_budget()
        return self._max_bytes

    def get(self, key: bytes) -> tuple[torch.Tensor, frozenset] | None:
        with self.lock:
            item = self.items.get(key)
            if item is not None:
                self.items.move_to_end(key)
            return item

    def put(self, key: bytes, value: torch.Tensor, root: Path) -> None:
        size = _entry_bytes(value)
        if size > self.max_bytes:
            return
        with self.lock:
            old = self.items.pop(key, None)
            roots = frozenset([root])
            if old is not None:
                self.nbytes -= _entry_bytes(old[0])
                roots |= old[1]  # (the same features: a key digests the input and the encoder)
            self.items[key] = (value, roots)
            self.nbytes += size
            while self.nbytes > self.max_bytes and self.items:
                _, (dropped, _) = self.items.popitem(last=False)
                self.nbytes -= _entry_bytes(dropped)

    def drop(self, key: bytes) -> None:
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.nbytes -= _entry_bytes(old[0])

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.nbytes = 0


#: Megabytes of features the process keeps in memory unless ``AUTOMM_FEATURE_MEMORY_MB`` says otherwise.
DEFAULT_FEATURE_MEMORY_MB = 2048


def feature_memory_budget() -> int:
    """Bytes of features the in-memory layer may hold: ``AUTOMM_FEATURE_MEMORY_MB`` megabytes
    (``0`` keeps none in memory), default :data:`DEFAULT_FEATURE_MEMORY_MB`."""
    return megabytes_setting("AUTOMM_FEATURE_MEMORY_MB", DEFAULT_FEATURE_MEMORY_MB * 2 ** 20)


_MEMORY = _MemoryLayer()  # its bound read at first use: a bad setting is said there, not at import


def clear_memory_cache() -> None:
    """Forget the in-memory layer (the disk cache stays)."""
    _MEMORY.clear()
    with _file_digests_lock:
        _file_digests.clear()


class FeatureCache:
    """Features of one encoder configuration (``namespace`` + ``params``) under ``root``.

    ``get(value)`` / ``put(value, features)`` address an input by its content; ``key``
    computes the digest once when a caller wants to hold on to it.
    """

    def __init__(self, root: str | os.PathLike | None, namespace: str, params: Mapping[str, Any],
                 memory: bool = True, paths: bool = False):
        self.root = resolve_cache_dir(root)
        self.namespace = str(namespace)
        self.params = dict(params)
        self.directory = self.root / "features" / _safe_name(self.namespace)
        self.memory = memory
        self.paths = paths  # str values name files (image paths): key them by the file's bytes
        self.hits = self.misses = self.writes = 0
        self._key_head = _key_head(self.namespace, self.params)  # computed once, not once per key
        self._settings_seen = False  # its settings record found or written (see _record_settings)

    # keys --------------------------------------------------------------------------
    def key(self, value: Any) -> bytes:
        return _keyed(self._key_head, content_digest(value, self.paths))

    def path_of(self, key: bytes) -> Path:
        hexkey = key.hex()
        return self.directory / hexkey[:2] / f"{hexkey}.f32"

    def _record_settings(self, always: bool = False) -> None:
        """Keep this configuration's key head under ``settings/`` (see the module doc), once per
        cache object, or (``always``: each write, a stat) again where a clear removed it meanwhile.
        A read-only cache records nothing, tried once per cache object on reading (not on each
        feature read): its features cannot be forgotten either."""
        if self._settings_seen and not always:
            return
        path = self.directory / _SETTINGS / f"{hashlib.sha256(self._key_head).hexdigest()}{_SETTINGS_SUFFIX}"
        try:
            if not path.is_file():
                replace_whole(path, lambda temporary: temporary.write_bytes(self._key_head))
        except OSError:
            pass
        self._settings_seen = True

    # reading -----------------------------------------------------------------------
    def get_by_key(self, key: bytes) -> torch.Tensor | None:
        if self.memory:
            remembered = _MEMORY.get(key)
            if remembered is not None:
                vector, roots = remembered
                if self.root not in roots:  # computed for another cache folder in this process: keep it here too
                    if self._read(key) is None:  # (once: not rewritten on every read in turn with the other folder)
                        self.put_by_key(key, vector)
                    else:
                        _MEMORY.put(key, vector, self.root)
                self.hits += 1
                return vector
        found = self._read(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._record_settings()  # (features written before settings were recorded: forgettable from now on)
        if self.memory:
            _MEMORY.put(key, found, self.root)
        return found

    def get(self, value: Any) -> torch.Tensor | None:
        return self.get_by_key(self.key(value))

    def _read(self, key: bytes) -> torch.Tensor | None:
        path = self.path_of(key)
        try:
            data, status = read_regular_file(path)  # (a pipe or a device put in its place: refused, not read)
            modified = status.st_mtime
        except OSError:  # absent (or removed by a clear meanwhile), unreadable: computed again
            return None
        if len(data) < _HEADER.size:
            return None
        magic, stored_key, n, checksum = _HEADER.unpack_from(data)
        if (magic != MAGIC or stored_key != key or len(data) != _HEADER.size + 4 * n
                or zlib.crc32(memoryview(data)[_HEADER.size:]) != checksum):
            return None  # foreign, damaged or truncated: treat as absent (it gets rewritten)
        if time.time() - modified > _TOUCH_AFTER_S:
            _mark_used(path)
        array = np.frombuffer(data, dtype="<f4", count=n, offset=_HEADER.size)
        return torch.from_numpy(array.astype(np.float32, copy=True))

    # writing -----------------------------------------------------------------------
    def put_by_key(self, key: bytes, features: torch.Tensor) -> torch.Tensor:
        vector = features.detach().to("cpu", torch.float32).reshape(-1).contiguous()
        if self.memory:
            _MEMORY.put(key, vector, self.root)
        path = self.path_of(key)
        values = vector.numpy().astype("<f4", copy=False).tobytes()
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC, key, vector.numel(), zlib.crc32(values)))
        buffer.write(values)
        try:
            fd, tmp = create_temporary(path)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(buffer.getvalue())
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            self.writes += 1
            self._record_settings(always=True)
        except OSError as exc:  # a read-only or full disk only costs recomputation later: said once
            _warn_unwritable(self.root, exc)
        return vector

    def put(self, value: Any, features: torch.Tensor) -> torch.Tensor:
        return self.put_by_key(self.key(value), features)

    # computing ---------------------------------------------------------------------
    def claim_path(self, keys: Sequence[bytes]) -> Path:
        """The file whose lock says that a process is computing the features of ``keys``."""
        digest = hashlib.sha256(b"".join(sorted(keys))).hexdigest()
        return self.directory / digest[:2] / f".{digest}.claim"

    @contextlib.contextmanager
    def claim(self, keys: Sequence[bytes], wait: float = 0.0) -> Iterator[bool]:
        """While a process computes the features of ``keys`` (a batch), others that would compute
        the same batch wait for them instead (several jobs started at once on one cache): yields
        True where this process should compute them (it holds the claim, or no claim can be made:
        a read-only cache, a system without ``flock``), False where another holds it. ``wait``:
        seconds to wait for another's claim, polling, before computing them all the same. The lock
        goes with its process, killed too; its file is removed when the batch is done."""
        path = self.claim_path(keys)
        try:
            import fcntl

            path.parent.mkdir(parents=True, exist_ok=True)
            # (its mode follows the umask, as the features' do: a team sharing the cache under umask 002
            # opens another's claim to wait for it; 0o644 refused them, and each computed the batch too)
            descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        except (ImportError, OSError):
            yield True
            return
        try:
            give_up = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= give_up:
                        yield wait > 0  # held elsewhere: waited long enough (compute), or not to wait
                        return
                    time.sleep(min(0.2, max(0.0, give_up - time.monotonic())))
                except OSError:  # no locks on this file system
                    yield True
                    return
            try:
                yield True
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # (a process that opened it meanwhile finds the batch cached)
        finally:
            os.close(descriptor)


_unwritable_warned: set[str] = set()
_unwritable_lock = threading.Lock()


def _warn_unwritable(root: Path, exc: OSError) -> None:
    """Warn, once per cache directory and process, that features cannot be stored there."""
    with _unwritable_lock:
        if str(root) in _unwritable_warned:
            return
        _unwritable_warned.add(str(root))
    warnings.warn(f"automm: cannot write the feature cache under {str(root)!r} ({type(exc).__name__}: "
                  f"{exc}); the features are used but not kept, so every fit or prediction of these inputs computes them "
                  f"again. Give a writable folder as AutoMM(cache_dir=...) (a loaded model: AutoMM.load(path, "
                  f"cache_dir=...)) or ${CACHE_ENV}.", RuntimeWarning, stacklevel=user_stacklevel())


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep[:120] or "default"


# -- what the cache holds, and clearing it -----------------------------------------------

_TOUCH_AFTER_S = 86400.0          # a read marks a file used when its last mark is older than a day
_ORPHAN_AFTER_S = 3600.0          # a temporary file this old was left by a writer that died
_FEATURE_FILE = re.compile(r"[0-9a-f]{64}\.f32")
_TEMPORARY_FILE = re.compile(r"\.[0-9a-f]{64}(\.f32\.[0-9a-f]+\.tmp|\.claim)")  # (a claim: a batch being computed)
_SHARD = re.compile(r"[0-9a-f]{2}")
_SETTINGS = "settings"             # <namespace>/settings/<sha256 of a key head>.head (FeatureCache._record_settings)
_SETTINGS_SUFFIX = ".head"
_SETTINGS_FILE = re.compile(r"[0-9a-f]{64}\.head")


def _mark_used(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only (shared) cache: its files just keep their age
        pass


@dataclass(frozen=True)
class CacheUsage:
    """What one namespace (an encoder and its weights) holds in a cache directory."""

    namespace: str
    files: int = 0
    bytes: int = 0
    first_use: float | None = None   # POSIX time of the least recently used file
    last_use: float | None = None    # ... and of the most recently used one
    orphans: int = 0                 # temporary files left by writers that died
    disk_bytes: int = 0              # what the feature files take on disk (whole blocks: a 5 KB file takes 8 KB)
    undeleted: int = 0               # clear_cache: files it could not delete (a read-only cache, another user's)


def _namespaces(root: Path) -> list[Path]:
    features = root / "features"
    if features.is_symlink():  # a link is not followed: the folder it names (another user's cache) is not this cache's
        from .exceptions import AutoMMWarning

        warnings.warn(f"cache_dir: {str(features)!r} is a link (to {os.readlink(features)!r}), which is not followed: "
                      "its files are neither counted nor deleted here; point cache_dir (--cache-dir) at the folder "
                      "holding them, or link the whole cache folder instead", AutoMMWarning, stacklevel=3)
        return []
    try:
        # a link is not followed: a namespace linked to another folder (another user's cache) is not this cache's
        return sorted(entry for entry in features.iterdir() if entry.is_dir() and not entry.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _walk(directory: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """``("feature" | "orphan", path, stat)`` for each of a namespace's feature files and
    temporary files older than an hour; anything else in the folder is not the cache's and is
    left alone."""
    now = time.time()
    try:
        shards = [entry for entry in os.scandir(directory)
                  if entry.is_dir(follow_symlinks=False) and _SHARD.fullmatch(entry.name)]
    except OSError:
        return
    for shard in shards:
        try:
            entries = list(os.scandir(shard.path))
        except OSError:
            continue
        for entry in entries:
            kind = ("feature" if _FEATURE_FILE.fullmatch(entry.name)
                    else "orphan" if _TEMPORARY_FILE.fullmatch(entry.name) else None)
            if kind is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:  # removed meanwhile
                continue
            if kind == "feature" or now - st.st_mtime > _ORPHAN_AFTER_S:
                yield kind, entry.path, st


def _summary(namespace: str, files: Sequence[tuple[str, str, os.stat_result]]) -> CacheUsage:
    """``files`` (as :func:`_walk` yields them) counted and summed."""
    features = [st for kind, _, st in files if kind == "feature"]
    stamps = [st.st_mtime for st in features]
    return CacheUsage(namespace, len(features), sum(st.st_size for st in features), min(stamps, default=None),
                      max(stamps, default=None), sum(1 for kind, _, _ in files if kind == "orphan"),
                      sum(_on_disk(st) for st in features))


def _on_disk(st: os.stat_result) -> int:
    """The bytes a file occupies on disk (its allocated blocks; its size where the system does not say)."""
    blocks = getattr(st, "st_blocks", None)
    return int(blocks) * 512 if blocks is not None else int(st.st_size)


def cache_usage(cache_dir: str | os.PathLike | None = None) -> list[CacheUsage]:
    """One :class:`CacheUsage` per namespace under ``cache_dir`` (``None``: the default)."""
    root = resolve_cache_dir(cache_dir)
    return [_summary(directory.name, list(_walk(directory))) for directory in _namespaces(root)]


def _matching(root: Path, encoder: str | None) -> list[Path]:
    import fnmatch

    namespaces = _namespaces(root)
    if encoder is None:
        return namespaces
    pattern = str(encoder)
    wildcard = any(c in pattern for c in "*?[")
    chosen = [d for d in namespaces if fnmatch.fnmatchcase(d.name, pattern)
              or (not wildcard and d.name.rsplit("-", 1)[0] == pattern)]
    if not chosen:
        from .exceptions import InputError
        from .suggestions import did_you_mean

        names = sorted({d.name.rsplit("-", 1)[0] for d in namespaces})
        held = f"features of {', '.join(repr(d.name) for d in namespaces)}" if namespaces else "no features"
        raise InputError(f"encoder: no features of {pattern!r} in the cache under {str(root)!r}, which holds {held}"
                         + did_you_mean(pattern, names))
    return chosen


def clear_cache(cache_dir: str | os.PathLike | None = None, *, encoder: str | None = None,
                unused_days: float | None = None, dry_run: bool = False) -> CacheUsage:
    """Delete cached features; returns what was (``dry_run``: would be) deleted, summed.

    ``encoder``: only this encoder's namespaces (its name, e.g. ``"minilm"``, or a namespace
    pattern such as ``"efficientnet_lite0-*"``); ``unused_days``: only files no fit has read or
    written for that many days. Temporary files left by writers that died are always removed.
    Only the cache's own files are touched (``features/<namespace>/<xx>/<sha256>.f32``); empty
    folders go too. Safe while fits run: what they miss they compute again."""
    if unused_days is not None:
        try:
            days = float(unused_days)
        except (TypeError, ValueError):
            days = -1.0
        if isinstance(unused_days, bool) or not days >= 0:  # NaN too
            from .exceptions import InputError

            raise InputError(f"unused_days: expected a number of days >= 0 (or None), got {unused_days!r}")
        unused_days = days
    root = resolve_cache_dir(cache_dir)
    # a read marks its file at most once per _TOUCH_AFTER_S: a file marked that long before the
    # cutoff may have been read since, so only files marked earlier still are surely unused
    cutoff = None if unused_days is None else time.time() - unused_days * 86400.0 - _TOUCH_AFTER_S

    deleted: list[tuple[str, str, os.stat_result]] = []
    refused: list[tuple[str, OSError]] = []
    for directory in _matching(root, encoder):
        for kind, path, st in _walk(directory):
            if kind == "feature" and cutoff is not None and st.st_mtime >= cutoff:
                continue  # used recently: kept
            if not dry_run:
                try:
                    os.unlink(path)
                except FileNotFoundError:  # removed meanwhile by another clear
                    continue
                except OSError as exc:  # e.g. another user's files in a shared cache
                    refused.append((path, exc))
                    continue
            deleted.append((kind, path, st))
        if not dry_run:
            for shard in sorted(directory.iterdir()) if directory.is_dir() else []:
                if _SHARD.fullmatch(shard.name):
                    _remove_if_empty(shard)
            _forget_settings_if_empty(directory)
            _remove_if_empty(directory)
    if refused:
        path, exc = refused[0]
        others = f"the other {len(deleted)} were deleted" if deleted else "none was deleted"
        warnings.warn(f"could not delete {len(refused)} of the cache's files (the first, {path}: "
                      f"{exc.strerror or exc}); {others}", RuntimeWarning, stacklevel=user_stacklevel())
    return replace(_summary(encoder or "*", deleted), undeleted=len(refused))


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # not empty (kept files, or one written meanwhile), or gone already
        pass


def _forget_settings_if_empty(directory: Path) -> None:
    """A namespace's settings records removed once it holds no features (so that its emptied
    folder goes too); a writer that stores features meanwhile records its settings again."""
    try:
        with os.scandir(directory) as entries:
            if any(_SHARD.fullmatch(entry.name) for entry in entries):
                return
        records = list(os.scandir(directory / _SETTINGS))
    except OSError:
        return
    for entry in records:
        if _SETTINGS_FILE.fullmatch(entry.name):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    _remove_if_empty(directory / _SETTINGS)


# -- forgetting one input's features -----------------------------------------------------

@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_features` deleted (``dry_run``: would delete)."""

    files: int = 0                   # feature files
    bytes: int = 0
    disk_bytes: int = 0
    undeleted: int = 0               # files it could not delete (a read-only cache, another user's)
    #: per input given (``paths``, then ``texts``, then ``values``): the namespaces its features were found in
    found: tuple[tuple[str, ...], ...] = ()
    #: namespaces holding features whose settings no record names (written by an automm before
    #: settings were recorded, and not used since): one input's features cannot be found there
    unsearched: tuple[str, ...] = ()


def _file_contents(path: Any) -> bytes:
    """The bytes of the file ``path`` names; an :class:`InputError` naming ``paths`` where it
    names none (a key holds a file's content, not its name)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"paths: expected file paths (str or os.PathLike), got {type(path).__name__} "
                         f"{elided_repr(path)}; give texts as texts=, other in-memory values as values=")
    name = os.fspath(path)
    try:
        data, _ = read_regular_file(os.path.expanduser(name))
    except FileNotFoundError:
        raise InputError(f"paths: {name!r}: no such file. Features are kept under a digest of a file's bytes, not "
                         "its name: forget them before the file is deleted, or give a copy of it") from None
    except OSError as exc:
        from .files import file_kind

        try:
            kind = file_kind(os.stat(os.path.expanduser(name)).st_mode)
        except OSError:
            kind = "a regular file"
        why = f"is {kind}, not a file" if kind != "a regular file" else f"cannot be read ({exc.strerror or exc})"
        raise InputError(f"paths: {name!r} {why}") from None
    return data


def _content_forms(value: Any, kind: str) -> set[str]:
    """The content digests (:func:`content_digest`) under which an encoder may have keyed
    ``value``: a file's bytes read from its path (``kind`` "file"), as encoded bytes, or as a
    PIL image opened from it and not loaded; a text (``"text"``) as it is and NFKC-normalised
    (as automm-pretrained's MiniLM keys it); anything else (``"value"``) as it is."""
    if kind == "text":
        import unicodedata

        text = value.encode("utf-8", "replace").decode("utf-8")  # (a lone surrogate, as MiniLM reads it)
        return {content_digest(value), content_digest(text), content_digest(unicodedata.normalize("NFKC", text))}
    if kind == "value" and not isinstance(value, (bytes, bytearray, memoryview)):
        return {content_digest(value, paths=True)}
    data = bytes(value)
    as_file = "file:" + hashlib.sha256(data).hexdigest()  # (as _file_digest reads a file of these bytes)
    forms = {as_file, content_digest(data)}
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:  # (the header only: a PIL image keyed by its file)
            forms.add(_unread_image_digest(image, as_file))
    except Exception:  # noqa: BLE001 - not an image Pillow reads: no such form
        pass
    return forms


def _settings_heads(directory: Path) -> list[bytes]:
    """The key heads a namespace's settings records hold (see :meth:`FeatureCache._record_settings`)."""
    heads = []
    try:
        entries = list(os.scandir(directory / _SETTINGS))
    except OSError:
        return heads
    for entry in entries:
        if _SETTINGS_FILE.fullmatch(entry.name):
            try:
                data, _ = read_regular_file(entry.path)
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == entry.name[:64]:  # (not a damaged or foreign file)
                heads.append(data)
    return heads


def forget_features(paths: Iterable[str | os.PathLike] = (), *, texts: Iterable[str] = (),
                    values: Iterable[Any] = (), cache_dir: str | os.PathLike | None = None,
                    encoder: str | None = None, dry_run: bool = False) -> Forgotten:
    """Delete the cached features of some inputs (a person's photo and texts), under every
    encoder configuration that cached them; the rest of the cache stays.

    ``paths``: files, found by their bytes, whatever their name (read now: forget a file before
    deleting it); ``texts``: texts; ``values``: other inputs as they were given to ``fit`` or
    ``predict`` (encoded bytes, arrays, PIL images). ``encoder``: only this encoder's namespaces,
    as :func:`clear_cache` takes it. Features a running process (a service) holds in memory stay
    there until it ends; this process's in-memory layer forgets them too. Returns what was
    deleted; :attr:`Forgotten.unsearched` names namespaces whose features cannot be told apart by
    input (written by an automm that did not record their settings, and not used since: clear them
    whole with :func:`clear_cache`)."""
    given = {"paths": paths, "texts": texts, "values": values}
    for name, items in given.items():
        if isinstance(items, (str, bytes, os.PathLike)) or not hasattr(items, "__iter__"):
            raise InputError(f"{name}: expected a list, got {type(items).__name__} {elided_repr(items)}"
                             + (f"; give one as [{elided_repr(items)}]" if isinstance(items, (str, bytes, os.PathLike))
                                else ""))
        given[name] = list(items)  # (a pandas column, an array)
    paths, texts, values = given["paths"], given["texts"], given["values"]
    inputs = []
    for path in paths:
        inputs.append(_content_forms(_file_contents(path), "file"))  # (each file read before anything is deleted)
    for text in texts:
        if not isinstance(text, str):
            raise InputError(f"texts: expected str, got {type(text).__name__} {elided_repr(text)}")
        inputs.append(_content_forms(text, "text"))
    for value in values:
        if isinstance(value, (str, os.PathLike)):
            raise InputError(f"values: {elided_repr(value)} is a {type(value).__name__}; give files as paths= (found by "
                             "their bytes) and texts as texts=")
        try:
            inputs.append(_content_forms(value, "value"))
        except TypeError as exc:
            raise InputError(f"values: {exc}") from None
    root = resolve_cache_dir(cache_dir)
    deleted: list[os.stat_result] = []
    refused: list[tuple[Path, OSError]] = []
    found: list[list[str]] = [[] for _ in inputs]
    unsearched = []
    for directory in _matching(root, encoder):
        heads = _settings_heads(directory)
        if not heads:
            if any(kind == "feature" for kind, _, _ in _walk(directory)):
                unsearched.append(directory.name)
            continue
        shards: set[Path] = set()
        for position, forms in enumerate(inputs):
            for head in heads:
                for form in forms:
                    key = _keyed(head, form)
                    hexkey = key.hex()
                    path = directory / hexkey[:2] / f"{hexkey}.f32"
                    if not dry_run:
                        _MEMORY.drop(key)
                    try:
                        st = path.stat(follow_symlinks=False)
                        if not dry_run:
                            os.unlink(path)
                    except FileNotFoundError:  # not cached (or removed meanwhile)
                        continue
                    except OSError as exc:
                        refused.append((path, exc))
                        continue
                    deleted.append(st)
                    shards.add(path.parent)
                    if directory.name not in found[position]:
                        found[position].append(directory.name)
        if not dry_run and shards:  # (emptied folders go, as clear_cache's do)
            for shard in sorted(shards):
                _remove_if_empty(shard)
            _forget_settings_if_empty(directory)
            _remove_if_empty(directory)
    if unsearched:
        from .exceptions import AutoMMWarning

        first = unsearched[0]
        warnings.warn(f"cache_dir {str(root)!r}: the features of {', '.join(map(repr, unsearched))} were written by an "
                      "automm that did not record their settings, so one input's features cannot be found there "
                      f"(they are recorded at their next use); delete them all with automm cache clear --encoder "
                      f"{first} (clear_cache(encoder={first!r})): the next fit computes them again", AutoMMWarning,
                      stacklevel=user_stacklevel())
    if refused:
        path, exc = refused[0]
        warnings.warn(f"could not delete {len(refused)} of the features to forget (the first, {path}: "
                      f"{exc.strerror or exc})", RuntimeWarning, stacklevel=user_stacklevel())
    return Forgotten(len(deleted), sum(st.st_size for st in deleted), sum(_on_disk(st) for st in deleted),
                     len(refused), tuple(tuple(names) for names in found), tuple(unsearched))

