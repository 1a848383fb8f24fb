"""The deadline of the work in progress, for code that runs long outside the training loop.

The search runs each trial inside :func:`deadline_scope` (its share of ``time_limit``). The
trainer, the linear and the nearest-neighbour models watch their deadline themselves; code that
the core calls and that may run for minutes, such as a pretrained encoder computing features in
:meth:`automm.Encoder.prepare`, calls :func:`check_deadline` between batches (and keeps what it
has computed, e.g. in its cache) so that the trial stops at its deadline rather than being
interrupted by the search's alarm some seconds later. Outside a scope (a fit without a time
limit, prediction) there is no deadline and :func:`check_deadline` does nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Iterator

from .exceptions import TimeLimitExceeded

__all__ = ["CUT_BEFORE_LEARNING", "check_deadline", "deadline_scope", "fit_deadline", "time_left"]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("automm_deadline", default=None)


#: What the ``TimeoutError`` of a model that its deadline stopped before it learned anything says
#: (the linear model at its starting point, boosted trees at the class priors): kept, it would give
#: every row one same guess, so its trial fails (the search's reason) rather than finishing.
CUT_BEFORE_LEARNING = "cut by the time limit before it learned"


#: Seconds kept at the end of a fit that writes the search's plots (``plot_dir``): importing
#: matplotlib and drawing them took 1.8 s on 2 cores (at most 10% of ``time_limit`` is kept so).
PLOT_SECONDS = 2.0


def fit_deadline(start: float, time_limit: float, plots: bool = False) -> float:
    """When a fit started at ``start`` (``time.monotonic()``) with ``time_limit`` seconds must end
    its training and search: 5% of the limit, at most 30 s, is kept for the work after them, and
    with ``plots`` (a ``plot_dir``) :data:`PLOT_SECONDS` more, so that the whole ``fit`` ends
    within ``time_limit``."""
    reserve = min(30.0, 0.05 * float(time_limit)) + (min(PLOT_SECONDS, 0.1 * float(time_limit)) if plots else 0.0)
    return start + float(time_limit) - reserve


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Run the block with ``deadline`` (a ``time.monotonic()`` value, or None for none) as the
    current deadline; within an outer scope the earlier of the two holds. Per thread."""
    outer = _deadline.get()
    if deadline is None or (outer is not None and outer <= deadline):
        yield
        return
    token = _deadline.set(float(deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds until the current deadline (negative once past), or None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def check_deadline(doing: str = "") -> None:
    """Raise :class:`automm.TimeLimitExceeded` when the current deadline has passed; ``doing``
    says what was stopped (it becomes the failed trial's reason)."""
    left = time_left()
    if left is not None and left <= 0:
        raise TimeLimitExceeded(f"stopped at the time limit{': ' + doing if doing else ''}")
