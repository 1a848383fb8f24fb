"""Optuna search over architectures and hyperparameters (being written; see issue 3)."""

from __future__ import annotations

__all__ = ["search_requested", "run_search"]


def search_requested(estimator) -> bool:
    """True when ``fit`` should search rather than train the one default configuration."""
    return False


def run_search(estimator, data, config, deadline):  # pragma: no cover - replaced by the search
    raise NotImplementedError
