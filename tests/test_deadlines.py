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


@pytest.mark.parametrize("time_limit, least, most", [(1000, 900, 970), (40, 20, 38)])
def test_a_fit_plans_to_end_before_its_time_limit(monkeypatch, time_limit, least, most):
    """The deadline the training gets is the time limit less a reserve of 5%, at most 30 s, for
    what follows it: added instead of subtracted, fits ran past their limit by up to a minute
    (which the timed fit tests' tolerance of 3 s on a 6 s limit let through); a reserve of at least
    30 s (max() for min()) left a 40 s fit 10 s of training, and a 20 s fit none. The lower
    bounds leave room for the time before training on a busy machine."""
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
        AutoMM(time_limit=time_limit, max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
    assert least < seen["left"] <= most


def test_a_bag_whose_first_fold_the_time_limit_cuts_in_its_first_epoch_gives_way_to_one_model(monkeypatch):
    """Each fold of ``bag_folds=k`` has 1/k of the time: where the first fold did not finish its
    first epoch, fit kept that fold's barely trained model and returned with the rest of the time
    unused (emoji, time_limit=10, bag_folds=5: after 2.1 s, test 0.204; bag_folds=1: 0.472). It now
    trains one model, unbagged, in the time left, and says so."""
    from automm import AutoMM, AutoMMWarning
    from automm.training import Callback

    class PastTheFirstFoldsShare(Callback):  # a machine too slow for 1/3 of the time limit
        runs = 0

        def on_train_begin(self, trainer):
            PastTheFirstFoldsShare.runs += 1

        def on_batch_end(self, trainer, loss):
            if PastTheFirstFoldsShare.runs == 1 and trainer.config.deadline is not None:
                time.sleep(max(0.0, trainer.config.deadline - time.monotonic()) + 0.05)

    import torch

    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # its first imports, paid before the clock runs
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [PastTheFirstFoldsShare()])
    X = {"size": np.arange(120.0), "colour": ["red", "blue", "green"] * 40}
    y = np.arange(120) % 2
    with pytest.warns(AutoMMWarning, match=r"bag_folds=3: each of the 3 folds has 1/3 of the time, and the first did "
                                           r"not finish one pass over its rows \(time limit reached in its first "
                                           r"epoch \(1 of \d+ batches\)\): trained one model, unbagged"):
        model = AutoMM(bag_folds=3, time_limit=6, n_trials=1, max_epochs=2, batch_size=16, num_workers=0,
                       random_state=0).fit(X, y)
    assert PastTheFirstFoldsShare.runs == 2 and not hasattr(model, "ensemble_")
    assert model.validation_on_ == "holdout"  # the model trained on the training rows, scored on the holdout


def test_a_fit_whose_time_limit_and_grace_passed_before_training_says_so_not_that_its_code_ignored_it(monkeypatch):
    """Without a search, the hard stop was armed with the time limit and its grace already spent (a
    loaded machine's first imports take 3-18 s): its alarm went off 0.01 s into the training of
    built-in encoders that watch the deadline, and the error blamed "the trial" and "a plugin's
    Encoder.prepare that does not call automm.check_deadline". (A search says it of its trial.)"""
    import automm.estimator
    from automm import AutoMM, search

    monkeypatch.setattr(search, "MIN_HARD_GRACE", 0.5)
    first_imports = automm.estimator._import_optimizer_machinery
    monkeypatch.setattr(automm.estimator, "_import_optimizer_machinery", lambda: (first_imports(), time.sleep(1.5)))
    X = {"size": np.arange(40.0), "colour": ["red", "blue"] * 20}
    with pytest.raises(automm.TimeLimitExceeded, match=r"^time_limit=1 s ended before training started: the work "
                                                       r"before it \(reading the data, first imports\) took the budget; "
                                                       r"give fit more time$"):
        AutoMM(time_limit=1, n_trials=1, max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)
