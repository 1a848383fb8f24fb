"""Changes to process-wide state (torch's default dtype, the global random generators, Optuna's
log level and warning filters) made by blocks that may run at once in threads of one process."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

__all__ = ["SharedChange"]


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
