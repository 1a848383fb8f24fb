"""Changes to process-wide state (torch's default dtype, the global random generators, Optuna's
log level and warning filters) made by blocks that may run at once in threads of one process."""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from typing import Any, Callable, ContextManager, Iterator

__all__ = ["SharedChange", "warnings_left_out", "all_warnings_left_out"]


class SharedChange:
    """A process-wide change shared by the blocks running at once: the first block to begin
    calls ``begin()`` (which saves the state, makes the change and returns what ``end`` needs),
    the last to end calls ``end(saved)``. Each block saving and putting back what it found left
    the other's change in place for good when two overlapped in threads."""

    def __init__(self, begin: Callable[[], Any], end: Callable[[Any], None]) -> None:
        self._begin, self._end = begin, end
        self._lock = threading.Lock()
        self._users = 0
        self._saved: Any = None

    @contextlib.contextmanager
    def held(self, each: Callable[[], None] | None = None) -> Iterator[None]:
        """Within, the change holds; ``each`` (under the lock) is this block's own part of it."""
        with self._lock:
            if self._users == 0:
                self._saved = self._begin()
            self._users += 1
        try:
            if each is not None:
                with self._lock:
                    each()
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    saved, self._saved = self._saved, None
                    self._end(saved)


_FILTERS: dict[tuple[type, str], SharedChange] = {}
_FILTERS_LOCK = threading.Lock()


def _insert_filter(category: type[Warning], message: str) -> tuple:
    # a filter object of its own, put first and removed by identity (as optuna_quiet's): removing an
    # equal one would take out the user's
    ours = ("ignore", re.compile(re.escape(message), re.I) if message else None, category, None, 0)
    warnings.filters.insert(0, ours)
    getattr(warnings, "_filters_mutated", lambda: None)()
    return ours


def _remove_filter(ours: tuple) -> None:
    found = [i for i, entry in enumerate(warnings.filters) if entry is ours]
    if found:  # (else gone already: the caller reset the filters)
        del warnings.filters[found[0]]
        getattr(warnings, "_filters_mutated", lambda: None)()


def warnings_left_out(category: type[Warning] = Warning, message: str = "") -> ContextManager[None]:
    """Warnings of ``category`` whose message starts with ``message`` left out within, in any
    thread: one filter shared by the blocks running at once (:class:`SharedChange`), removed when
    the last ends. ``warnings.catch_warnings`` saves and puts back the process's filters, so two
    such blocks overlapping in threads (a search's trial threads on GPUs, a host's own threads)
    left the first one's filter in place for good. For a narrow filter only: while a block runs,
    the other threads' warnings it matches are left out too (:func:`all_warnings_left_out` for
    every warning)."""
    key = (category, message)
    with _FILTERS_LOCK:
        change = _FILTERS.get(key)
        if change is None:
            change = _FILTERS[key] = SharedChange(lambda: _insert_filter(category, message), _remove_filter)
    return change.held()


@contextlib.contextmanager
def all_warnings_left_out() -> Iterator[None]:
    """Every warning left out within, in the main thread only (in another, they show), as
    :func:`automm.components.image.pixel_limit_warning_left_out` does: a filter shared by the
    threads would leave out the other threads' warnings meanwhile, and ``warnings.catch_warnings``
    in several threads at once left an "ignore" of every warning in place for good."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
