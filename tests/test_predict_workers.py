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
    import os

    from automm.data import InputSpec

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
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
