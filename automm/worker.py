"""Search workers: join a running automm study from another process or machine.

``automm worker --storage URL --study NAME`` calls :func:`run_worker`::

    from automm.worker import run_worker
    run_worker("postgresql://user:pw@db-host/automm", "automm-1f2e3d4c5b6a7980")

The study (created by ``AutoMM(storage=..., n_trials=... or time_limit=...).fit(...)``) holds,
as JSON user attributes, the search space, the estimator's parameters, the holdout split
and, for plain data (paths, texts, numbers), a copy of the training data; otherwise pass the
same ``X, y`` as ``fit``. See :mod:`automm.search` for the details.
"""

from __future__ import annotations

from .search import run_worker

__all__ = ["run_worker"]
