"""``automm.devices``: an encoder's one-off work (``Encoder.prepare``) learns where the fit, a
search trial or a prediction runs, so a frozen encoder computes its features there (a fit with
``device="cpu"`` on a machine with a GPU keeps them on the CPU)."""

from __future__ import annotations

import threading

import torch

import automm
from automm import AutoMM, Encoder, MISSING, hookimpl
from automm.devices import compute_device, device_scope
from automm import search

from helpers import tiny


def test_a_scope_sets_the_device_per_thread_and_restores_the_outer_one():
    assert compute_device() is None
    with device_scope("cpu"):
        assert compute_device() == torch.device("cpu")
        with device_scope("meta"):
            assert compute_device() == torch.device("meta")
        assert compute_device() == torch.device("cpu")
        seen = []
        thread = threading.Thread(target=lambda: seen.append(compute_device()))
        thread.start()
        thread.join()
        assert seen == [None]  # a thread sets its own (a search's GPU threads: each its GPU)
    assert compute_device() is None


def test_a_gpu_with_an_index_is_also_cudas_current_device_in_the_scope(monkeypatch):
    entered = []

    class Recorder:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            entered.append("exit")

    monkeypatch.setattr(torch.cuda, "device", Recorder)
    with device_scope("cuda:1"):
        assert compute_device() == torch.device("cuda:1") and entered == [torch.device("cuda:1")]
    assert entered[-1] == "exit"
    entered.clear()
    with device_scope("cpu"), device_scope("cuda"):  # no index: CUDA's current device stays as it is
        pass
    assert entered == []


class _Recording(Encoder):
    """Records where ``prepare`` was asked to work."""

    modality = "text"
    seen: list = []

    def __init__(self, output_dim=4):
        super().__init__()
        self.output_dim = output_dim
        self.linear = torch.nn.Linear(1, output_dim)

    def prepare(self, values, *, cache_dir=None):
        _Recording.seen.append((threading.current_thread().name, compute_device()))

    def preprocess(self, value, augment=None):
        return torch.tensor([0.0 if value is MISSING else float(len(str(value)))])

    def forward(self, batch):
        return self.linear(batch)


def _recording_space(trial, prefix):
    _Recording.seen.append(("space", compute_device()))
    return {"output_dim": trial.suggest_categorical(f"{prefix}output_dim", [4, 8])}


class _RecordingPlugin:
    @hookimpl
    def automm_register_encoders(self, register):
        register("recording", _Recording, modality="text", output_dim=lambda hp: hp["output_dim"],
                 defaults={"output_dim": 4}, search_space=_recording_space)


def test_prepare_runs_on_the_device_of_the_fit_the_trial_and_the_prediction(fresh_registry, monkeypatch):
    fresh_registry(_RecordingPlugin())
    texts = [f"{text} number {i}" for i, text in enumerate(["a red cup", "the blue hat", "one green box"] * 8)]
    labels = [0, 1] * 12
    _Recording.seen = []
    model = AutoMM(**tiny(encoders={"text": "recording"}, device="cpu")).fit(texts, labels)
    assert {device for _, device in _Recording.seen} == {torch.device("cpu")}
    _Recording.seen = []
    model.predict(["a new text"])
    assert _Recording.seen and {device for _, device in _Recording.seen} == {torch.device("cpu")}
    # trials in the GPU threads (two CPU "GPUs" here): each trial's own device, in its own thread
    monkeypatch.setattr(search, "cuda_devices", lambda data, requested: [torch.device("cpu")] * 2)
    _Recording.seen = []
    # (120 rows: a holdout of 10, on which the search samples configurations after the default)
    many = [f"{text} number {i}" for i, text in enumerate(["a red cup", "the blue hat", "one green box"] * 40)]
    AutoMM(**tiny(encoders={"text": "recording"}, n_trials=4, ensemble_size=1, pruner="none", device="cpu",
                  search_space={"linear_model": False})).fit(many, [0, 1] * 60)
    in_threads = [device for thread, device in _Recording.seen if thread.startswith("automm-gpu-")]
    assert in_threads and set(in_threads) == {torch.device("cpu")}
    # sampled trials draw their configuration knowing the device too (a space may depend on it)
    in_spaces = [device for what, device in _Recording.seen if what == "space"]
    assert in_spaces and set(in_spaces) == {torch.device("cpu")}
    assert automm.devices.compute_device() is None  # nothing leaks out of the fit


def test_a_model_pickled_on_a_gpu_unpickles_and_predicts_where_there_is_none(monkeypatch):
    """``joblib.dump`` of a model fitted on a GPU, loaded on a CPU-only server: its CUDA tensors,
    pickled as they were, could not be read there ("Attempting to deserialize object on a CUDA
    device but torch.cuda.is_available() is False"), and its ``device_`` would still say CUDA."""
    import copy
    import pickle

    import numpy as np
    import torch.serialization

    texts = [f"{text} number {i}" for i, text in enumerate(["a red cup", "the blue hat", "one green box"] * 8)]
    labels = [0, 1] * 12
    model = AutoMM(**tiny(device="cpu", bag_folds=2)).fit(texts, labels)  # a bag: model_ is its first member's
    expected = model.predict_proba(texts)
    networks = (model.model_, model.ensemble_)
    model.device_ = torch.device("cuda")  # as a fit on a GPU leaves it
    on_the_gpu = {t.untyped_storage().data_ptr() for net in [model.model_, *(m.model for m in model.ensemble_.members)]
                  for t in (*net.parameters(), *net.buffers())} - {0}
    cpu_tag = torch.serialization.location_tag
    with monkeypatch.context() as patched:  # its tensors' storages are CUDA ones, as a GPU's are pickled
        patched.setattr(torch.serialization, "location_tag",
                        lambda storage: "cuda:0" if storage.data_ptr() in on_the_gpu else cpu_tag(storage))
        pickled = pickle.dumps(model)
    assert (model.model_, model.ensemble_, model.device_) == (*networks, torch.device("cuda"))  # left as it was
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # unpickled on a CPU-only server
    back = pickle.loads(pickled)
    assert back.device_ == torch.device("cpu")
    assert {p.device.type for p in back.model_.parameters()} == {"cpu"}
    assert back.ensemble_.members[0].model is back.model_  # shared as before
    np.testing.assert_allclose(back.predict_proba(texts), expected, atol=1e-6)
    shallow = copy.copy(model)  # a shallow copy shares the networks, with no pickled round trip
    assert shallow.model_ is model.model_ and shallow.ensemble_ is model.ensemble_
