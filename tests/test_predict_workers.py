"""DataLoader workers: none for a request of a few rows, none outside the main thread (several
threads predicting or training at once crashed: torch watches workers from the main thread), and
the num_workers parameter honoured after load; classes a model cannot save refused before training."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from automm import AutoMM
from automm.datasets import load_emoji_sample


def _model(tmp_path):
    frame = load_emoji_sample().head(64)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=2,
                   encoders={"image": {"name": "cnn", "image_size": 16, "width": 8, "depth": 1, "output_dim": 8}})
    model.fit(frame[["image", "name"]], frame["category"])
    model.save(tmp_path / "model")
    return AutoMM.load(tmp_path / "model"), frame[["image", "name"]]


def test_prediction_workers(tmp_path):
    model, X = _model(tmp_path)
    assert model._prediction_workers() == 2
    model.set_params(num_workers=0)
    assert model._prediction_workers() == 0  # set_params after load is honoured
    model.set_params(num_workers=2)
    from automm.training import make_loader

    def workers_of_a_loader(rows=8):
        return make_loader(list(range(rows)), 2, False, 2, 0, lambda b: b).num_workers

    assert workers_of_a_loader() == 2
    # fewer rows than four batches (a request, a small holdout each epoch): no processes started
    assert workers_of_a_loader(1) == workers_of_a_loader(7) == 0
    assert make_loader(list(range(7)), 2, True, 2, 0, lambda b: b).num_workers == 0
    with ThreadPoolExecutor(1) as pool:  # not from another thread (a server's, or a search's trial thread)
        assert pool.submit(workers_of_a_loader).result() == 0

    chunks = [X.iloc[i:i + 8] for i in range(0, 64, 8)]
    sequential = [model.predict_proba(c) for c in chunks]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(model.predict_proba, chunks))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, threaded))


def test_classes_that_a_model_cannot_save_are_refused_before_training():
    """Timestamps as classes trained, then save raised TypeError (automm fit lost the model)."""
    import pandas as pd
    import pytest

    from automm import InputError

    X = pd.DataFrame({"a": np.arange(40.0)})
    y = np.where(X.a > 20, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08"))
    with pytest.raises(InputError, match="classes of type Timestamp"):
        AutoMM(max_epochs=1, problem_type="binary").fit(X, y)


def test_auto_workers_only_where_processes_fork(monkeypatch):
    """num_workers="auto" started DataLoader workers under spawn too (macOS, Windows): each loader's
    workers imported torch and automm again, every epoch and evaluation (a 1-epoch fit of 200 emoji:
    85 s instead of 14 s), and reran an unguarded script's top level, which crashed the fit."""
    import multiprocessing

    import automm.estimator
    from automm.data import InputSpec

    monkeypatch.setattr(automm.estimator, "usable_cpus", lambda: 8)  # (the CPUs usable: test_usable_cpus)
    specs = [InputSpec(name="image_0", modality="image", columns=["image"])]
    model = AutoMM()
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    assert model._resolved_num_workers(specs) == 4
    for method in ("spawn", "forkserver"):
        monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False, m=method: m)
        assert model._resolved_num_workers(specs) == 0
        assert AutoMM(num_workers=2)._resolved_num_workers(specs) == 2  # asked for: honoured
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: None)  # not set: the default
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn", "fork", "forkserver"])
    assert model._resolved_num_workers(specs) == 0


def test_workers_forked_after_their_parent_loaded_a_model_predict_on_one_thread(tmp_path):
    """gunicorn --preload: the parent loads the model, forked workers predict. torch's thread pool,
    run in the parent on 2 threads (loading the weights copies them in parallel), does not survive
    a fork: each worker hung (or crashed, SIGSEGV) at its first prediction. A forked worker now sets
    torch to one thread before automm's first work in it, with a warning saying why."""
    import os
    import signal
    import warnings

    import pytest
    import torch

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this system")
    fitted, X = _model(tmp_path)
    expected = fitted.predict_proba(X)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = AutoMM.load(tmp_path / "model")  # (nothing predicted in the parent: a preloading server)
        torch.ones(2 ** 21).add_(1)  # the pool started for sure, whatever the load's sizes
        def worker() -> bool:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                same = np.allclose(model.predict_proba(X), expected, atol=1e-6)
            warned = any("torch.set_num_threads(1)" in str(w.message) for w in caught)
            return same and warned and torch.get_num_threads() == 1

        code = _exit_code_of_forked(worker)
        assert code == 0, {-signal.SIGKILL: "the worker hung", -signal.SIGSEGV: "the worker crashed (SIGSEGV)",
                           3: "no warning, other probabilities or more threads"}.get(code, code)
        assert torch.get_num_threads() == 2  # the parent's own threads are left alone
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.predict_proba(X.head(2))  # and predicts on them, without a word
    finally:
        torch.set_num_threads(previous)


def test_a_forked_worker_predicting_in_a_request_thread_then_in_its_main_thread_does_not_hang(tmp_path):
    """torch.set_num_threads sets the calling thread's count (and new threads'): a forked worker set to
    one thread in the request thread that predicted first kept the parent's two in its main thread,
    which hung at its own prediction (a server answering in a thread pool and warming up in its main thread)."""
    import os
    import signal
    import threading
    import warnings

    import pytest
    import torch

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this system")
    model, X = _model(tmp_path)
    X = X.head(8)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = model.predict_proba(X)  # the parent predicts on 2 threads
        torch.ones(2 ** 21).add_(1)
        def worker() -> bool:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                found = []
                request = threading.Thread(target=lambda: found.append(model.predict_proba(X)))
                request.start()
                request.join()
                found.append(model.predict_proba(X))  # the main thread, after the request's
            same = len(found) == 2 and all(np.allclose(f, expected, atol=1e-6) for f in found)
            warned = sum("torch.set_num_threads(1)" in str(w.message) for w in caught)
            return same and warned == 1 and torch.get_num_threads() == 1

        code = _exit_code_of_forked(worker)
        assert code == 0, {-signal.SIGKILL: "the worker's main thread hung", -signal.SIGSEGV: "the worker crashed",
                           3: "not one warning, other probabilities or more threads"}.get(code, code)
        assert torch.get_num_threads() == 2  # the parent's own threads are left alone
    finally:
        torch.set_num_threads(previous)


def _exit_code_of_forked(worker, seconds: float = 60) -> int:
    """The exit code of a forked process running ``worker`` (0 where it returns True, 3 where
    False, 1 where it raises), killed (-SIGKILL) if it has not ended within ``seconds``: hung in
    torch's C code, where no Python signal handler runs."""
    import os
    import signal
    import time

    pid = os.fork()
    if pid == 0:  # the worker: its exit status is the test's verdict
        status = 1
        try:
            status = 0 if worker() else 3
        finally:
            os._exit(status)
    deadline = time.monotonic() + seconds
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        done = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(done[1])


def test_a_fit_or_prediction_failing_in_its_workers_leaves_no_worker_processes(monkeypatch):
    """An exception raised while a loader's worker processes ran (images that no longer decode, a
    plugin's preprocess failing, Ctrl-C) held the loader's iterator in its traceback, which an
    interactive shell keeps (sys.last_traceback): its 2 workers (forks of the whole process), their
    feeder threads and temporary folders stayed until the next error replaced it."""
    import multiprocessing

    import pytest

    from automm.components.image import CNNEncoder
    from helpers import tiny

    frame = load_emoji_sample().head(64)
    X, y = frame[["image", "name"]], frame["category"]
    model = AutoMM(**tiny(max_epochs=1, batch_size=8)).fit(X, y).set_params(num_workers=2)

    def broken(self, value, augment=False):
        raise RuntimeError("the image store went away")

    monkeypatch.setattr(CNNEncoder, "preprocess", broken)  # (in the forked workers too)
    with pytest.raises(RuntimeError, match="the image store went away") as failed_fit:
        AutoMM(**tiny(max_epochs=1, num_workers=2, batch_size=8)).fit(X, y)
    assert failed_fit.value.__traceback__ is not None  # (held, as a shell holds it)
    assert multiprocessing.active_children() == []
    with pytest.raises(RuntimeError, match="the image store went away") as failed_prediction:
        model.predict(X)  # 64 rows: 4 batches, with workers
    assert failed_prediction.value.__traceback__ is not None
    assert multiprocessing.active_children() == []


def test_loader_workers_leave_the_start_method_unfixed(monkeypatch):
    """torch's loaders started their workers from multiprocessing's default context, which fixed
    the process's start method for good: a program's multiprocessing.set_start_method("spawn")
    after a fit or prediction with workers raised "context has already been set"."""
    import multiprocessing

    from helpers import tiny

    frame = load_emoji_sample().head(64)
    X, y = frame[["image", "name"]], frame["category"]
    model = AutoMM(**tiny(max_epochs=1, batch_size=8)).fit(X, y).set_params(num_workers=2)
    # (as in a fresh process: no start method chosen yet; put back after the test)
    monkeypatch.setattr(multiprocessing.context._default_context, "_actual_context", None)
    model.predict(X)  # 64 rows: 4 batches, with workers
    assert multiprocessing.get_start_method(allow_none=True) is None
