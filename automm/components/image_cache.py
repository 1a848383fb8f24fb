"""A bounded in-memory cache of decoded, resized images, shared by the trials of one fit.

Every epoch of every trial decodes the same image files again and resizes them to the same
side. On 2 CPU cores that is about a quarter of a small CNN's epoch (fashion photos, 224 px
JPEGs at 64 px: 6 s of a 23 s epoch). Inside :func:`image_cache` the first decode of an image at
a given side is kept, as the uint8 pixels *before* augmentation, so every later epoch, trial and
prediction at that side reuses it; augmentations still run on every access.

- Scoped, per thread: :class:`automm.AutoMM` opens it around ``fit`` and around each prediction;
  outside a scope nothing is kept, and leaving the outermost scope frees everything. A scope belongs
  to the thread that opened it (a search's trial threads join their fit's with
  :func:`shared_image_cache`): a ``predict`` in one thread never reads what a ``fit`` in another
  cached, so a file rewritten at the same path, or an array changed in place, between two
  predictions is decoded anew however long another thread's fit runs.
- Bounded: at most ``AUTOMM_IMAGE_CACHE_MB`` megabytes, pixels and each entry's overhead
  (default: 512 MB or 1/16 of the machine's memory, whichever is smaller; ``0`` turns the cache off). When full it stops adding; it never
  evicts, because every epoch visits every image once, in a new order, and a fixed cached subset
  serves that pattern best.
- Exact: a path is keyed by its string (files are assumed not to change during one fit); any other
  value (array, PIL image, bytes) by its identity, and the cache keeps a reference to it, so a key
  can never be reused by a different object. Cached and uncached pixels are identical.
- Per process: DataLoader worker processes decode for themselves (they do not see the main process's
  cache), forked search processes start from a copy of it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Iterator

import torch

from ..settings import megabytes_setting

__all__ = ["image_cache", "suspend_image_cache", "shared_image_cache", "current_image_cache", "cached_pixels",
           "cache_stats", "image_cache_budget"]

_DEFAULT_MB = 512
#: Bytes an entry holds besides its pixels (the tensor and its storage, the key, the dict slot):
#: about 700 measured (RSS over 20,000 entries), whatever the side; at 32 px, 23% of the pixels.
ENTRY_OVERHEAD = 768


def image_cache_budget() -> int:
    """The cache's size limit in bytes: ``AUTOMM_IMAGE_CACHE_MB`` megabytes when set, else the smaller
    of 512 MB and 1/16 of physical memory. ``0`` turns the cache off."""
    budget = _DEFAULT_MB * 2 ** 20
    with contextlib.suppress(ValueError, OSError, AttributeError):
        budget = min(budget, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 16)
    return megabytes_setting("AUTOMM_IMAGE_CACHE_MB", budget)


class _Cache:
    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self.entries: dict[tuple, tuple[Any, torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0


_lock = threading.Lock()  # guards a shared cache's entries (a search's trial threads fill one cache)
_local = threading.local()  # this thread's scope: .cache, .depth, .suspended


def _reset_lock_after_fork() -> None:  # a fork taken while another thread held the lock
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


@contextlib.contextmanager
def image_cache() -> Iterator[None]:
    """Keep decoded images for the duration of the block, in this thread (re-entrant: nested
    blocks share the outermost block's cache, which is freed when it ends)."""
    depth = getattr(_local, "depth", 0)
    if depth == 0:
        budget = image_cache_budget()
        _local.cache = _Cache(budget) if budget > 0 else None
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth -= 1
        if _local.depth == 0:
            _local.cache = None


def current_image_cache() -> _Cache | None:
    """This thread's open cache (None outside a scope), for :func:`shared_image_cache`."""
    return getattr(_local, "cache", None)


@contextlib.contextmanager
def shared_image_cache(cache: _Cache | None) -> Iterator[None]:
    """Use ``cache`` (another thread's :func:`current_image_cache`) in this thread for the block:
    the trial threads of one search share their fit's decoded images."""
    saved = (getattr(_local, "cache", None), getattr(_local, "depth", 0))
    _local.cache, _local.depth = cache, saved[1] + 1
    try:
        yield
    finally:
        _local.cache, _local.depth = saved


@contextlib.contextmanager
def suspend_image_cache() -> Iterator[None]:
    """Neither read nor fill the cache inside the block, in this thread: for one-off passes over
    images that will not be decoded again at this size (e.g. a frozen encoder computing cached features)."""
    _local.suspended = getattr(_local, "suspended", 0) + 1
    try:
        yield
    finally:
        _local.suspended -= 1


def _key(value: Any, size: int) -> tuple:
    if isinstance(value, str):
        return ("path", value, size)
    if isinstance(value, os.PathLike):
        return ("path", os.fspath(value), size)
    return ("object", id(value), size)


def cached_pixels(value: Any, size: int, decode: Callable[[Any, int], torch.Tensor]) -> torch.Tensor:
    """``decode(value, size)`` (a uint8 tensor), served from the cache inside :func:`image_cache`.
    The returned tensor may be shared: callers must not modify it in place."""
    cache = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "suspended", 0) or torch.utils.data.get_worker_info() is not None:
        return decode(value, size)
    key = _key(value, size)
    entry = cache.entries.get(key)
    if entry is not None and (key[0] == "path" or entry[0] is value):
        cache.hits += 1
        return entry[1]
    pixels = decode(value, size)
    cache.misses += 1
    nbytes = pixels.numel() * pixels.element_size() + ENTRY_OVERHEAD
    with _lock:
        if cache.used + nbytes <= cache.budget and key not in cache.entries:
            cache.entries[key] = (None if key[0] == "path" else value, pixels)
            cache.used += nbytes
    return pixels


def cache_stats() -> dict[str, int] | None:
    """Entries, bytes used, hits and misses of this thread's open cache (``None`` outside a scope)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        return None
    return {"entries": len(cache.entries), "bytes": cache.used, "budget": cache.budget,
            "hits": cache.hits, "misses": cache.misses}
