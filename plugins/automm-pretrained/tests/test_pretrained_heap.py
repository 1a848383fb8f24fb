"""Feature extraction keeps large tensors on the heap (no page faults per batch) on glibc."""

from __future__ import annotations

import pytest  # noqa: E402

pytest.importorskip("automm_pretrained", reason="the automm-pretrained plugin is not installed (pip install ./plugins/automm-pretrained[test])")

import ctypes

import torch

from automm_pretrained import heap
from automm_pretrained.heap import MALLOC_TUNING_ENV, heap_allocations

BIG = 16 << 20  # float32 elements: 64 MiB, above glibc's largest mmap threshold


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> _MallInfo2:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def _mmapped_bytes() -> int:
    """Bytes glibc holds in mmapped chunks (``mallinfo2().hblkhd``)."""
    return _mallinfo().hblkhd


def test_large_tensors_come_from_the_heap_not_from_mmap():
    with heap_allocations() as active:
        if not active or not hasattr(ctypes.CDLL(None), "mallinfo2"):
            pytest.skip("not glibc >= 2.33: the tuning does nothing here, or cannot be observed")
        before = _mmapped_bytes()
        tensor = torch.ones(BIG)
        inside = _mmapped_bytes() - before
        del tensor
    assert heap._depth == 0
    # glibc serves a request from a free heap chunk first, whatever its size; earlier heap
    # allocations (this block, other tests) may have left large ones. Ask for more than the
    # heap holds free, so only mmap can serve it once the thresholds are restored.
    # torch.empty does not touch the pages.
    elements = max(BIG, (_mallinfo().fordblks + (64 << 20)) // 4)
    before = _mmapped_bytes()
    tensor = torch.empty(elements)
    outside = _mmapped_bytes() - before
    del tensor
    assert inside == 0
    assert outside >= elements * 4  # glibc's usual way, restored after the block


def test_a_freed_heap_chunk_does_not_fool_the_check():
    """The restore check above holds even when the block leaves a large free chunk behind."""
    with heap_allocations() as active:
        if not active or not hasattr(ctypes.CDLL(None), "mallinfo2"):
            pytest.skip("not glibc >= 2.33: the tuning does nothing here, or cannot be observed")
        freed = torch.ones(2 * BIG)
        pinned = torch.ones(BIG // 8)  # above the freed chunk: it cannot merge into the top
        del freed
    test_large_tensors_come_from_the_heap_not_from_mmap()
    del pinned


def test_nested_blocks_restore_once_and_the_switch_turns_it_off(monkeypatch):
    with heap_allocations() as outer:
        with heap_allocations() as inner:
            assert inner == outer
            assert heap._depth == (2 if outer else 0)
        assert heap._depth == (1 if outer else 0)
    assert heap._depth == 0
    monkeypatch.setenv(MALLOC_TUNING_ENV, "0")
    with heap_allocations() as active:
        assert active is False and heap._depth == 0
