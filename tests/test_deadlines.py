"""The deadline of the work in progress (automm.deadlines): scopes, nesting, threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import automm
from automm.deadlines import check_deadline, deadline_scope, time_left


def test_no_deadline_outside_a_scope():
    assert time_left() is None
    check_deadline("anything")  # does nothing


def test_a_scope_sets_the_deadline_and_the_earlier_of_two_holds():
    now = time.monotonic()
    with deadline_scope(now + 100):
        assert 99 < time_left() <= 100
        with deadline_scope(now + 10):
            assert 9 < time_left() <= 10
        with deadline_scope(now + 1000):  # a later inner deadline does not extend the outer one
            assert 99 < time_left() <= 100
        with deadline_scope(None):
            assert 99 < time_left() <= 100
        assert 99 < time_left() <= 100
    assert time_left() is None


def test_check_deadline_raises_once_past_saying_what_stopped():
    with deadline_scope(time.monotonic() - 0.001):
        with pytest.raises(automm.TimeLimitExceeded, match="stopped at the time limit: features of 3 of 9 inputs"):
            check_deadline("features of 3 of 9 inputs")
    check_deadline()


def test_a_scope_belongs_to_its_thread():
    seen = []
    with deadline_scope(time.monotonic() + 50):
        thread = threading.Thread(target=lambda: seen.append(time_left()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_a_time_limit_too_short_for_any_model_raises_time_limit_exceeded(builtin_only, emoji_sample):
    frame = emoji_sample.head(200)
    with pytest.raises(automm.TimeLimitExceeded, match=r"time_limit=0.01 s ended before any model finished.*"
                                                       r"give fit more time"):
        automm.AutoMMClassifier(time_limit=0.01, random_state=0).fit(frame[["image", "name"]], frame["category"])


def test_a_fit_plans_to_end_before_its_time_limit(monkeypatch):
    """The deadline the training gets is the time limit less a reserve (5%, at most 30 s) for
    what follows it; added instead of subtracted, fits ran past their limit by up to a minute,
    which the timed fit tests' tolerance of 3 s on a 6 s limit let through."""
    import time

    from automm import AutoMM

    seen = {}

    class Planned(Exception):
        pass

    def fit_candidates(self, data, config, deadline, graceful=True):
        seen["left"] = deadline - time.monotonic()
        raise Planned

    monkeypatch.setattr(AutoMM, "_fit_candidates", fit_candidates)
    X = {"size": np.arange(40.0), "colour": ["red", "blue"] * 20}
    with pytest.raises(Planned):
        AutoMM(time_limit=1000, max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
    assert 900 < seen["left"] <= 1000 - 30
