"""Keep a batch's large tensors on the heap while features are computed (glibc only).

glibc serves an allocation above its mmap threshold (never more than 32 MiB) with a fresh
``mmap`` and unmaps it when it is freed. A 224-px CNN batch has activations of 50-150 MiB,
so every batch page-faults them in again from zeroed pages: on 2 CPU cores that kernel time
was as large as the convolutions themselves (EfficientNet-Lite0, batch 32, 2 threads: 42 s per
1,000 images; 20 s without it). :func:`heap_allocations` turns ``mmap`` off
for the duration and restores glibc's steady-state thresholds afterwards, trimming what was
freed. ``AUTOMM_MALLOC_TUNING=0`` turns it off; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Iterator

__all__ = ["heap_allocations", "MALLOC_TUNING_ENV"]

MALLOC_TUNING_ENV = "AUTOMM_MALLOC_TUNING"

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_MAX_DEFAULT = 65536          # glibc's default number of mmapped chunks
_MMAP_THRESHOLD_AFTER = 32 << 20   # the most glibc's own dynamic threshold ever grows to
_TRIM_THRESHOLD_AFTER = 64 << 20   # twice that, as glibc sets it
_TRIM_THRESHOLD_DURING = 1 << 30

_lock = threading.Lock()
_depth = 0


@functools.cache
def _load_glibc():
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (not musl, not macOS)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


def _glibc():
    """The C library when it is glibc and the tuning is not switched off, else None."""
    if os.environ.get(MALLOC_TUNING_ENV, "1").strip() == "0":
        return None
    return _load_glibc()


@contextlib.contextmanager
def heap_allocations() -> Iterator[bool]:
    """Within the block, large allocations come from the heap, not from ``mmap``; yields
    whether the tuning is active. Re-entrant and thread-safe (the outermost block restores)."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_DURING)
            libc.mallopt(_M_MMAP_MAX, 0)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_AFTER)
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_AFTER)
                libc.malloc_trim(0)
