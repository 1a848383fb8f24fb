"""Progress messages of the core and of plugins, shown while a fit is verbose.

The core and plugins report progress that a user waits through (features being computed, a
worker's trials) as ``logging`` records at INFO on the ``automm`` logger or a child of it
(``logging.getLogger("automm.<plugin>")``). They show nowhere by default, as library logs
should not; :func:`verbose_logging`, which ``AutoMM.fit`` and :func:`automm.worker.run_worker`
open when ``verbose >= 1``, prints them as ``[automm] message`` lines beside the search's
per-trial lines, unless the application has given the ``automm`` logger handlers of its own.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from typing import Iterator

__all__ = ["LOGGER_NAME", "verbose_logging"]

#: The logger the core's and plugins' progress records go to (plugins: a child of it).
LOGGER_NAME = "automm"

_lock = threading.Lock()
_depth = 0                                  # verbose scopes open (nested or in other threads)
_saved: list = [logging.NOTSET, True]       # the logger's level and propagate before the first


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes (progress, as a fit's epochs:
    stdout is left to the program's results)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - a closed stream must not stop a fit
            self.handleError(record)


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("[automm] %(message)s"))


@contextlib.contextmanager
def verbose_logging(verbose: int) -> Iterator[None]:
    """While open with ``verbose >= 1``: INFO records (DEBUG too at ``verbose >= 3``) of the
    ``automm`` logger and its children printed on stderr as ``[automm] ...``, and not passed
    on to the root logger's handlers meanwhile (no line twice). Nothing changes when the
    application configured that logger itself (it has handlers other than this one), nor at
    ``verbose=0``. Nested and concurrent fits share one handler; the last to close removes it."""
    global _depth
    logger = logging.getLogger(LOGGER_NAME)
    with _lock:
        if verbose < 1 or any(h is not _HANDLER for h in logger.handlers):
            engaged = False
        else:
            engaged = True
            if _depth == 0:
                _saved[:] = [logger.level, logger.propagate]
                logger.addHandler(_HANDLER)
                logger.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO)
                logger.propagate = False
            _depth += 1
    try:
        yield
    finally:
        if engaged:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    logger.removeHandler(_HANDLER)
                    logger.setLevel(_saved[0])
                    logger.propagate = _saved[1]
