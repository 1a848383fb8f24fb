"""Small settings that keep estimator tests CPU-sized (seconds each), and test callbacks."""

import signal
import threading
import time

import pytest
import torch

from automm.training import Callback

TINY = dict(
    encoders={"image": {"name": "cnn", "image_size": 32, "width": 8, "depth": 2, "output_dim": 32},
              "text": {"name": "hashed_ngram", "n_buckets": 4096, "emb_dim": 32, "output_dim": 32}},
    fusion={"name": "concat", "proj_dim": 32, "hidden_dim": 32},
    max_epochs=2, batch_size=32, num_workers=0, random_state=0,
)


def tiny(**overrides):
    params = dict(TINY)
    params.update(overrides)
    return params


def forward_rows(model, values):
    """``model``'s outputs (numpy) for every row of ``values`` (``{input name: column}``), in one batch."""
    import torch

    from automm.data import BatchCollator, MultimodalDataset

    encoders = dict(model.encoders.items())
    dataset = MultimodalDataset(values, encoders)
    batch = BatchCollator(encoders)([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        return model(batch["inputs"], batch["masks"]).numpy()


def seen_columns(design, seen=None):
    """A sparse design matrix (a torch tensor, rows by columns: a hashed n-gram input's buckets) as
    a scipy CSR matrix of its columns ``seen`` (by default those any of its rows holds), and ``seen``:
    what a scikit-learn reference fits, kept sparse (a dense copy of 2**18 buckets per row took 5x as
    long to fit, and 200 MB)."""
    import numpy as np
    import scipy.sparse

    coo = design.coalesce()
    rows, columns = coo.indices().numpy()
    matrix = scipy.sparse.csr_matrix((coo.values().numpy(), (rows, columns)), shape=tuple(coo.shape))
    matrix.eliminate_zeros()
    seen = np.flatnonzero(matrix.getnnz(axis=0)) if seen is None else seen
    return matrix[:, seen], seen


class CtrlC(Callback):
    """Sends SIGINT to the main thread (as Ctrl-C in a terminal does) at the first batch of
    epoch ``epoch`` of the ``at``-th training run it sees, so that the interrupt lands inside
    that run."""

    def __init__(self, at: int = 1, epoch: int = 1):
        self.at, self.epoch = at, epoch
        self.runs, self.sent, self.lock = 0, False, threading.Lock()
        self.epochs: dict[int, int] = {}  # thread -> epoch of its current run

    def on_train_begin(self, trainer) -> None:
        with self.lock:
            self.runs += 1

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        self.epochs[threading.get_ident()] = epoch

    def on_batch_end(self, trainer, loss: float) -> None:
        with self.lock:  # (trials in threads share this callback: one signal only)
            send = (self.runs >= self.at and self.epochs.get(threading.get_ident(), 1) >= self.epoch
                    and not self.sent)
            self.sent = self.sent or send
        if send:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.5)  # (in the main thread the signal interrupts this sleep)


def write_manifest(path, manifest: dict) -> None:
    """Write a model's ``automm.json`` (``path``) as a model saved before the manifest's own
    digest: what the tests that edit a manifest by hand stand for."""
    import json

    from automm.persistence import MANIFEST_DIGEST

    path.write_text(json.dumps({k: v for k, v in manifest.items() if k != MANIFEST_DIGEST}))


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Tiny models gain nothing from threads, and threads stall badly on a busy machine: a test
    module that imports this fixture runs its tests on one torch thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run_in_threads(*targets, timeout: float = 20.0) -> None:
    """Start a thread for each of ``targets`` (callables), then wait for them all; the first
    exception a target raised (an ``assert`` in a thread) is raised here, and a thread still
    running after ``timeout`` fails the test (else either only printed, the test passing)."""
    errors: list[BaseException] = []

    def run(target):
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    running = [target for target, thread in zip(targets, threads) if thread.is_alive()]
    assert not running, f"still running after {timeout} s: {running}"


class VirtualClock:
    """A ``time.monotonic`` that only :meth:`sleep` moves: the code timed by it (a ``Trainer``'s
    epochs, batches and holdout evaluations) takes no time, so what it decides from durations and
    a deadline is the same on an idle machine and a loaded one. ``install(monkeypatch, module)``
    gives it to a module that calls ``time.monotonic()``."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def install(self, monkeypatch, module) -> "VirtualClock":
        import types

        monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=self.monotonic, sleep=self.sleep))
        return self


def budget_from_the_first_trial(monkeypatch, time_limit: float) -> dict:
    """Start the ``time_limit`` of a search when its first trial starts: the work before the
    trials (reading the data, first imports, timing the encoders, opening the study) takes seconds
    more on a loaded machine and ate the few seconds a test's fit had (its first trial then started
    past the deadline). The search's deadline, its trials' shares and its hard grace are set again
    from there, as ``fit`` and ``run_search`` set them; the returned dict's ``"start"`` is when the
    trials began (a ``time.monotonic()`` value)."""
    from automm import search
    from automm.deadlines import fit_deadline

    run_trial_loops, began = search.run_trial_loops, {}

    def from_the_first_trial(ctx, *args, **kwargs):
        if not began:
            began["start"] = time.monotonic()
            ctx.deadline = fit_deadline(began["start"], time_limit)
            ctx.trial_seconds = search._trial_seconds(ctx.settings, ctx.deadline)
            ctx.hard_grace = search.hard_grace(ctx.deadline)
        return run_trial_loops(ctx, *args, **kwargs)

    monkeypatch.setattr(search, "run_trial_loops", from_the_first_trial)
    return began


def budget_from_the_training(monkeypatch, time_limit: float) -> dict:
    """As :func:`budget_from_the_first_trial` for a fit without a search: its ``time_limit``
    starts when ``fit`` has read the data and turns to training (``AutoMM._fit_candidates``)."""
    from automm import AutoMM
    from automm.deadlines import fit_deadline

    fit_candidates, began = AutoMM._fit_candidates, {}

    def from_the_training(self, data, config, deadline, *args, **kwargs):
        if deadline is not None:
            began["start"] = time.monotonic()
            deadline = fit_deadline(began["start"], time_limit)
        return fit_candidates(self, data, config, deadline, *args, **kwargs)

    monkeypatch.setattr(AutoMM, "_fit_candidates", from_the_training)
    return began


class NoFork:
    """A stand-in for ``multiprocessing.Process`` whose processes never run (for tests that look at
    the forking process, not at what it forks)."""

    pid = 0

    def __init__(self, *args, **kwargs): ...
    def start(self): ...
    def join(self, timeout=None): ...
    def is_alive(self): return False
    def close(self): ...


def study_a_worker_joins(tmp_path):
    """A journal study at ``tmp_path / "s.log"`` named ``"s"``: one finished trial of a fit on 60
    rows of one number, and a running fit of 5 trials registered for a worker to join."""
    import numpy as np
    import optuna
    import pandas as pd

    from automm import AutoMM, search

    rng = np.random.RandomState(0)
    x = rng.randn(60)
    AutoMM(n_trials=1, max_epochs=1, storage=str(tmp_path / "s.log"), study_name="s", random_state=0,
           ensemble_size=1).fit(pd.DataFrame({"x": x}), np.where(x > 0, "a", "b"))
    study = optuna.load_study(study_name="s", storage=search.make_storage("journal", str(tmp_path / "s.log")))
    search.register_fit(study, "elsewhere:1", "running", n_trials=5)  # a fit the worker joins
    return study
