"""A dependency's notice that an API automm calls is deprecated (``DeprecationWarning``,
``PendingDeprecationWarning``, ``FutureWarning``): it fails the test suite where automm causes it,
and the blocks that leave other warnings out never hide it."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import optuna
import pytest

from automm.evaluation import compute_metrics
from automm.process_state import all_warnings_left_out


@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
@pytest.mark.parametrize("module", ["automm.data", "automm_pretrained.encoders", "automm_audio.signal"])
def test_a_deprecation_that_automm_causes_fails_the_suite(category, module):
    """pyproject's ``filterwarnings``: a deprecated call in automm or a first-party plugin (the
    warning attributed to its module, as a dependency's ``stacklevel`` does) is an error in the
    tests, so that CI, which installs the newest releases, says so before one removes the API."""
    with pytest.raises(category, match="will be removed"):
        warnings.warn_explicit("x is deprecated and will be removed", category, "source.py", 1, module=module)


@pytest.mark.parametrize("module", ["torch.utils._pytree", "pandas.core.frame", "test_deprecations"])
def test_a_dependencys_own_deprecation_only_shows(module):
    """One raised inside a dependency (torch's import warns of its own LeafSpec) is not automm's to
    fix: it shows, as pytest shows warnings, and fails nothing."""
    with pytest.warns(FutureWarning, match="LeafSpec"):
        warnings.warn_explicit("isinstance(treespec, LeafSpec) is deprecated", FutureWarning, "source.py", 1,
                               module=module)


def _deprecating(function):
    """``function`` warning as scikit-learn does of a deprecated argument (attributed to its caller)."""
    @functools.wraps(function)
    def deprecated(*args, **kwargs):
        warnings.warn(f"{function.__name__}: this default is deprecated in 1.10 and will change in 1.12",
                      FutureWarning, stacklevel=2)
        return function(*args, **kwargs)

    return deprecated


def test_test_metrics_leave_a_dependencys_deprecation_to_the_filters(monkeypatch):
    """``compute_metrics`` (``automm fit``'s and ``evaluate``'s test metrics) left out every warning
    to hide the ill-defined F1 of a class never predicted, and with it scikit-learn's notices that
    the metrics it calls are deprecated: ``-W error::FutureWarning`` passed, nobody was told."""
    y_true, y_pred = np.array(["a", "b", "c", "a"]), np.array(["a", "a", "a", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the ill-defined F1 and the class only predicted: still left out
        ill_defined = compute_metrics("multiclass", y_true, y_pred)
    assert ill_defined["macro_f1"] == pytest.approx(0.1) and ill_defined["accuracy"] == 0.25
    import sklearn.metrics

    monkeypatch.setattr(sklearn.metrics, "f1_score", _deprecating(sklearn.metrics.f1_score))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(FutureWarning, match="f1_score: this default is deprecated"):
            compute_metrics("multiclass", y_true, y_pred)
    with pytest.warns(FutureWarning, match="f1_score") as shown:
        assert compute_metrics("multiclass", y_true, y_pred) == ill_defined
    assert shown[0].filename == compute_metrics.__code__.co_filename  # (the line of automm that calls it)


def test_all_warnings_left_out_leaves_deprecations_to_the_filters_found():
    """The plots, the recipes' checks before a fit and the journal's lock leave out every warning
    (Optuna's ``ExperimentalWarning``, what the fit says again) but a deprecation, which the
    filters found decide: ``error`` raises, Python's default ``ignore`` of a ``DeprecationWarning``
    outside ``__main__`` shows nothing, a filter naming a message or a module keeps to it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with all_warnings_left_out():
            warnings.warn("left out", UserWarning)
            warnings.warn("left out", RuntimeWarning)
            warnings.warn("left out", optuna.exceptions.ExperimentalWarning)
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                with pytest.raises(category):
                    warnings.warn("deprecated", category)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("error", message="plot_", category=Warning)
        warnings.filters.insert(0, ("error", None, PendingDeprecationWarning, "automm.plots", 0))  # (as Python's own:
        getattr(warnings, "_filters_mutated", lambda: None)()  # a module named as a plain name, matched whole)
        with all_warnings_left_out():
            warnings.warn("left out", UserWarning)
            warnings.warn("not shown", DeprecationWarning)
            warnings.warn("shown", FutureWarning)
            with pytest.raises(FutureWarning, match="plot_x"):
                warnings.warn("plot_x is deprecated", FutureWarning)
            with pytest.raises(PendingDeprecationWarning):
                warnings.warn_explicit("pending", PendingDeprecationWarning, "plots.py", 1, module="automm.plots")
            warnings.warn_explicit("pending", PendingDeprecationWarning, "plots.py", 1, module="automm.plots_x")
    assert [(w.category, str(w.message)) for w in caught] == [(FutureWarning, "shown"),
                                                               (PendingDeprecationWarning, "pending")]
