"""The CPUs automm may use (``process_state.usable_cpus``): the affinity mask (taskset, SLURM) capped
by a cgroup CPU quota (docker --cpus, a Kubernetes limit), not ``os.cpu_count()``, and what automm
sizes by it: DataLoader workers, ``n_jobs=-1``, a searching process's threads, torch's threads in
``fit`` and ``predict``. The quota files are fakes in a temporary folder."""
import os
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from automm import AutoMM, InputError, process_state, search
from automm.data import InputSpec
from helpers import NoFork, study_a_worker_joins


def machine(monkeypatch, tmp_path, cpus=64, affinity=None, proc="0::/\n", files=None):
    """A machine of ``cpus`` CPUs, this process's affinity mask ``affinity`` CPUs (all by default),
    its /proc/self/cgroup ``proc`` and cgroup files ``files`` (path under the cgroup root → text)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for path, text in (files or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (tmp_path / "proc_cgroup").write_text(proc)
    monkeypatch.setattr(process_state, "CGROUP_ROOT", str(root), raising=False)
    monkeypatch.setattr(process_state, "PROC_CGROUP", str(tmp_path / "proc_cgroup"), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity or cpus)), raising=False)
    monkeypatch.delattr(os, "process_cpu_count", raising=False)


@pytest.mark.parametrize("files, proc, limit", [
    ({}, "0::/\n", None),                                                  # no cgroup files at all
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),                         # v2, no quota
    ({"cpu.max": "200000 100000\n"}, "0::/\n", 2.0),                       # v2: docker run --cpus=2
    ({"cpu.max": "150000 100000\n"}, "0::/docker/0123abc\n", 1.5),         # a container's view: its cgroup is the root
    ({"cpu.max": "garbage\n"}, "0::/\n", None),
    ({"kubepods/pod1/cpu.max": "200000 100000\n", "kubepods/pod1/ctr/cpu.max": "max 100000\n"},
     "0::/kubepods/pod1/ctr\n", 2.0),                                      # the pod's limit, above the container
    ({"kubepods/pod1/cpu.max": "800000 100000\n", "kubepods/pod1/ctr/cpu.max": "50000 100000\n"},
     "0::/kubepods/pod1/ctr\n", 0.5),                                      # the smallest
    ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/\n3:memory:/\n", 0.5),                                # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "4:cpu:/\n", None),  # v1, no quota
    ({"cpu/cpu.cfs_quota_us": "300000\n"}, "4:cpu:/\n", None),             # v1, no period file
])
def test_cgroup_cpu_quota(monkeypatch, tmp_path, files, proc, limit):
    machine(monkeypatch, tmp_path, files=files, proc=proc)
    assert process_state.cgroup_cpu_limit() == limit


@pytest.mark.parametrize("affinity, quota, usable", [
    (None, None, 64),        # a whole 64-CPU machine
    (3, None, 3),            # taskset -c 0-2, SLURM --cpus-per-task=3
    (None, "200000", 2),     # docker run --cpus=2
    (None, "150000", 2),     # --cpus=1.5: rounded up
    (None, "20000", 1),      # --cpus=0.2: at least 1
    (3, "800000", 3),        # the smaller of the two
])
def test_usable_cpus_are_the_affinity_mask_capped_by_the_quota(monkeypatch, tmp_path, affinity, quota, usable):
    files = {"cpu.max": f"{quota} 100000\n"} if quota else {}
    machine(monkeypatch, tmp_path, affinity=affinity, files=files)
    assert process_state.usable_cpus() == usable


def test_usable_cpus_without_an_affinity_mask(monkeypatch, tmp_path):
    machine(monkeypatch, tmp_path, cpus=8, files={"cpu.max": "400000 100000\n"})
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    assert process_state.usable_cpus() == 4
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert process_state.usable_cpus() == 1


@pytest.mark.parametrize("affinity, files, workers, processes", [
    (None, {"cpu.max": "200000 100000\n"}, 0, 2),   # docker --cpus=2 on 64 CPUs: 4 workers, 64 processes before
    (3, {}, 1, 3),                                  # taskset -c 0-2 on 64 CPUs: 4 workers, 64 processes before
    (None, {}, 4, 64),                              # the whole machine, as before
])
def test_workers_and_n_jobs_follow_the_usable_cpus(monkeypatch, tmp_path, affinity, files, workers, processes):
    import multiprocessing

    machine(monkeypatch, tmp_path, affinity=affinity, files=files)
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    specs = [InputSpec(name="image_0", modality="image", columns=["image"])]
    assert AutoMM()._resolved_num_workers(specs) == workers
    assert search.trial_loops(-1, []) == processes


def test_a_searching_process_trains_with_its_share_of_the_usable_cpus(monkeypatch, tmp_path):
    """n_jobs=2 under taskset -c 0-3 on 16 CPUs: the process that forked the search trained with
    min(16 // 2, its 4 threads) = 4 threads beside its forked process, on 4 CPUs; now 4 // 2 = 2."""
    machine(monkeypatch, tmp_path, cpus=16, affinity=4)
    seen = []
    monkeypatch.setattr(search.multiprocessing, "get_context", lambda method: type("Fork", (), {"Process": NoFork}))
    monkeypatch.setattr(search, "_worker_loop", lambda ctx, study: seen.append(torch.get_num_threads()))
    ctx = type("Context", (), {"deadline": None, "child_tags": [], "interrupted": threading.Event()})()
    previous = torch.get_num_threads()
    torch.set_num_threads(4)  # torch follows the affinity mask
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            search._run_trials(ctx, None, ("memory", None), 2, [])
        assert seen == [2] and torch.get_num_threads() == 4
        assert any("n_jobs=2 on 4 usable CPUs" in str(w.message) for w in caught)
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def threads_seen(monkeypatch):
    """torch's thread count as fit trains and as predict runs the model."""
    seen = {}

    def noting(name, method):
        def noted(self, *args, **kwargs):
            seen.setdefault(name, torch.get_num_threads())
            return method(self, *args, **kwargs)
        return noted

    monkeypatch.setattr(AutoMM, "_fit", noting("fit", AutoMM._fit))
    monkeypatch.setattr(AutoMM, "_raw_outputs_of_table", noting("predict", AutoMM._raw_outputs_of_table))
    previous = torch.get_num_threads()
    yield seen
    torch.set_num_threads(previous)


def _fit_and_predict(seen):
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"x": rng.randn(40), "z": rng.randn(40)})
    model = AutoMM(max_epochs=1, random_state=0).fit(X, np.where(X.x > 0, "a", "b"))
    model.predict(X.head(4))
    return seen, torch.get_num_threads()


def test_fit_and_predict_run_torch_on_the_usable_cpus_under_a_quota(monkeypatch, tmp_path, threads_seen):
    """torch sizes its threads by the affinity mask, not by a cgroup quota: in a container given 1
    CPU on a larger host, fit and predict ran torch's 2 threads (on 64 cores, 32 to 64)."""
    machine(monkeypatch, tmp_path, cpus=2, files={"cpu.max": "100000 100000\n"})
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(process_state, "_TORCH_FIRST_THREADS", 2, raising=False)  # torch's default here
    assert _fit_and_predict(threads_seen) == ({"fit": 1, "predict": 1}, 2)  # the caller's 2 back after
    threads_seen.clear()
    with pytest.raises(InputError):
        AutoMM(max_epochs=1).fit(pd.DataFrame({"x": [1.0, 2.0]}), ["a"])  # a fit that fails
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("chosen", ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "set_num_threads"])
def test_a_thread_count_the_user_chose_is_left_alone(monkeypatch, tmp_path, threads_seen, chosen):
    machine(monkeypatch, tmp_path, cpus=4, files={"cpu.max": "100000 100000\n"})
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(process_state, "_TORCH_FIRST_THREADS", 4 if chosen == "set_num_threads" else 2)
    if chosen != "set_num_threads":
        monkeypatch.setenv(chosen, "2")
    assert _fit_and_predict(threads_seen) == ({"fit": 2, "predict": 2}, 2)


def test_a_worker_runs_one_process_per_usable_cpu_and_torch_on_them(monkeypatch, tmp_path):
    """``automm worker --n-jobs -1`` in a container given 1 CPU of 2: 2 trial processes, and its
    own trials on torch's 2 threads."""
    import automm.worker as worker

    study_a_worker_joins(tmp_path)
    machine(monkeypatch, tmp_path, cpus=2, files={"cpu.max": "100000 100000\n"})
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(variable, raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(process_state, "_TORCH_FIRST_THREADS", 2, raising=False)
    given = []
    monkeypatch.setattr(worker, "run_trial_loops", lambda ctx, study, ref, n_jobs, devices:
                        given.append((n_jobs, torch.get_num_threads())))
    try:
        worker.run_worker(str(tmp_path / "s.log"), "s", n_jobs=-1, device="cpu")
        assert given == [(1, 1)] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
