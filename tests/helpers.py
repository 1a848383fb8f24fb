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
