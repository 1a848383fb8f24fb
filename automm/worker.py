"""Search workers: join a running automm study from another process or machine.

``automm worker --storage URL --study NAME`` calls :func:`run_worker`::

    from automm.worker import run_worker
    run_worker("postgresql://user:pw@db-host/automm", "automm-1f2e3d4c5b6a7980")

The study (created by ``AutoMM(storage=..., n_trials=... or time_limit=...).fit(...)``) holds,
as JSON user attributes, the search space, the estimator's parameters, the holdout split
and, for plain data (paths, texts, numbers), a copy of the training data (:mod:`automm.study`);
otherwise pass the same ``X, y`` as ``fit``. A worker runs the study's trials with the search's
own loop (:mod:`automm.search`), in this process or ``n_jobs`` forked ones on the CPU; on CUDA in
threads, one per GPU or ``n_jobs`` when larger.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .components.image_cache import image_cache
from .exceptions import AutoMMError, AutoMMWarning, InputError, user_stacklevel
from .leaderboard import TRIAL_ATTR as _ATTR
from .pipeline import PreparedData
from .process_state import note_torch_threads, torch_threads_capped
from .progress import verbose_logging
from . import search
from .search import (MIN_HARD_GRACE, SearchContext, SearchSettings, WorkerFinished, follow_fits, make_pruner,
                     make_sampler, optuna_quiet, run_trial_loops)
from .search_space import SearchSpace
from .storage import make_storage, own_heartbeats, parse_storage, wait_for_storage_file
from .study import (DATA_ATTR, DATA_FINGERPRINT_ATTR, check_components, check_stored_files, data_fingerprint,
                    data_from_spec, data_payload, data_spec, describe_difference, values_differ, wait_for_study,
                    with_stored_split)
from .trial_models import ModelPool

__all__ = ["run_worker", "run_worker_with_data", "WorkerRequest"]

note_torch_threads()  # torch's own count, before the program's code after the import may set another


@dataclass
class WorkerRequest:
    storage_ref: tuple[str, Any]
    study_name: str
    spec: dict
    artifact_dir: str | None
    n_jobs: int
    verbose: int
    storage: Any = None          # an open storage to reuse (else opened from storage_ref)
    wait_until: float | None = None  # time.monotonic() until which to wait for a fit to run the study


def run_worker(storage: Any, study_name: str, *X: Any, y: Any = None, sample_weight: Any = None,
               X_val: Any = None, y_val: Any = None, sample_weight_val: Any = None,
               device: str = "auto", n_jobs: int = 1, artifact_dir: str | os.PathLike | None = None,
               wait: float = 60.0, verbose: int = 0, given_params: Mapping[str, Any] | None = None,
               callbacks: Sequence[Any] | None = None) -> int:
    """Join the automm study ``study_name`` in ``storage`` and run its trials until the
    study's ``n_trials`` or time limit is reached or every ``fit`` running it has finished.

    Parameters
    ----------
    storage : the study's storage, as ``fit`` was given it: a URL (``postgresql://...``,
        ``sqlite:///...``) or a journal file (``journal:///path/study.log``, ``path.log``).
    study_name : the study's name (``fit`` sets ``study_name_``; by default ``automm-<fingerprint>``).
    *X, y : the training data, only needed when the study holds no copy of it (data that are not
        plain JSON, e.g. in-memory image arrays, or larger than ``MAX_STORED_DATA_BYTES``); they
        must be exactly what ``fit`` was given (their fingerprint is checked).
    sample_weight, X_val, y_val, sample_weight_val : with ``X, y``, what ``fit`` was given of
        these (part of the fingerprint); a study holding its data holds them too.
    device : "auto", "cpu", "cuda", "cuda:1", ...: where this worker trains (with several GPUs and
        "auto", one trial per GPU).
    n_jobs : trials run at once here: forked processes on the CPU; on CUDA, threads (one per GPU or n_jobs).
    artifact_dir : a folder the ``fit`` process can read (e.g. shared storage) where this worker
        leaves the trained models of its best trials, so that ``fit`` need not retrain them.
    wait : seconds to wait for the study to appear (a worker may start before ``fit``); a
        journal or SQLite file that still does not exist then is an error (it is not created).
    verbose : 0 quiet, 1 a line per trial, 2 also Optuna's log.
    given_params : the estimator's parameters the caller was given (``automm worker --recipe``: the
        recipe's); those of the search and training that differ from the study's are named in a
        warning: the worker uses the study's.
    callbacks : list of :class:`automm.Callback`, called in every training run of this worker's
        trials, as ``AutoMM(callbacks=...)``'s are in a fit's (the study keeps no callbacks: a
        fit's are its own; forked processes, ``n_jobs`` > 1 on the CPU, call their own copies).

    The worker samples the study's stored space with the study's sampler and pruner by name
    (a sampler or pruner that ``fit`` was given as an object becomes TPE / median here) and
    stops at the study's ``n_trials``, at its time limit (``fit``'s deadline, as wall-clock time)
    or when the ``fit`` that created it has finished. With several fits running the study at
    once, it follows those still running: the latest deadline, the largest ``n_trials``, and
    stops when all have finished (a fit past its deadline, or a killed one of this machine,
    counts as finished).

    Returns the number of trials this worker ran (in this process and the processes it forked).
    Command line: ``automm worker --storage URL --study NAME``.
    """
    import optuna

    from .estimator import _check_callbacks

    _check_callbacks(callbacks)  # (before waiting for the study)
    storage_ref = parse_storage(storage)
    if storage_ref[0] == "memory":
        raise InputError("storage: a worker needs the study's storage (URL or journal file)")
    start = time.monotonic()
    wait_for_storage_file(*storage_ref, wait)  # never creates the file of a misspelt storage
    backend = make_storage(*storage_ref)
    spec = wait_for_study(backend, study_name, max(0.0, wait - (time.monotonic() - start)))
    check_components(spec, study_name)  # before any trial: each would fail on a missing plugin
    if given_params:
        _warn_unused_settings(spec, given_params, study_name)
    from . import estimator as estimator_module

    cls = getattr(estimator_module, spec["estimator"], estimator_module.AutoMM)
    known = cls().get_params(deep=False)
    params = {k: v for k, v in spec["params"].items() if k in known and v is not None}
    params.update(device=device, n_jobs=n_jobs, verbose=verbose, random_state=spec["seed"], storage=None,
                  plot_dir=None, callbacks=None if callbacks is None else list(callbacks))
    estimator = cls(**params)
    request = WorkerRequest(storage_ref, study_name, spec, None if artifact_dir is None else os.path.abspath(artifact_dir),
                             int(n_jobs), int(verbose), storage=backend, wait_until=start + max(0.0, float(wait)))
    if X or y is not None:
        estimator._automm_worker = request
        try:
            estimator.fit(*X, y=y, sample_weight=sample_weight, X_val=X_val, y_val=y_val,
                          sample_weight_val=sample_weight_val)
        except WorkerFinished as done:
            return done.trials
        raise AutoMMError("the worker's fit did not reach the search")  # pragma: no cover
    study = optuna.load_study(study_name=study_name, storage=backend)
    payload = study.user_attrs.get(DATA_ATTR)
    if payload is None:
        raise InputError(f"study {study_name!r} holds no copy of its training data (not plain JSON, or too large): "
                         "pass the same X, y as fit to run_worker")
    estimator._validate_params()
    check_stored_files(spec, payload, study_name)
    data = data_from_spec(spec, payload, estimator)
    with verbose_logging(int(verbose)):
        return run_worker_with_data(request, data, estimator)


#: Parameters that are each worker's own (its machine's), not the study's (which stores neither
#: the storage nor the study name: :func:`automm.study.json_params`).
OWN_PARAMS = frozenset({"device", "n_jobs", "num_workers", "cache_dir", "verbose", "plot_dir"})


def _warn_unused_settings(spec: Mapping[str, Any], given: Mapping[str, Any], study_name: str) -> None:
    """A warning naming the search and training settings in ``given`` that differ from the study's
    (a worker's recipe saying ``time_limit: 30``: the worker ran on until the study's fits ended)."""
    from .recipe_checks import PARAM_PATHS
    from .study import json_params

    stored, differing = spec.get("params") or {}, []
    for param, value in json_params(given).items():
        if param in OWN_PARAMS or param not in stored:
            continue
        if value != stored[param]:
            differing.append(f"{PARAM_PATHS.get(param, param)} {value!r} (the study's: {stored[param]!r})")
    if differing:
        warnings.warn(f"study {study_name!r}: the recipe's {', '.join(differing)} "
                      f"{'are' if len(differing) > 1 else 'is'} not used: a worker trains with the study's settings, "
                      "those of the fit that created it, and stops when the study's fits have finished",
                      AutoMMWarning, stacklevel=user_stacklevel())


def run_worker_with_data(request: WorkerRequest, data: PreparedData, estimator=None) -> int:
    """The worker's search loop over ``data`` (checked against the study's data)."""
    import optuna

    spec = request.spec
    storage = request.storage if request.storage is not None else make_storage(*request.storage_ref)
    with optuna_quiet(request.verbose):
        probe = optuna.load_study(study_name=request.study_name, storage=storage)
        given = data_spec(data)
        if probe.user_attrs.get(DATA_FINGERPRINT_ATTR) != data_fingerprint(data) or values_differ(spec, given):
            what = describe_difference(spec, given, probe.user_attrs.get(DATA_ATTR), data_payload(data, {}))
            raise InputError(f"the data given to the worker differ from those of study {request.study_name!r}"
                             f"{': ' + what if what else ''} (pass exactly what fit was given)")
        data = with_stored_split(data, spec)
        worker_tag = search.process_tag()
        settings = SearchSettings(objectives=tuple(spec["objectives"]), sampler=spec["sampler"], pruner=spec["pruner"],
                             seed=search.tagged_seed(int(spec["seed"]), worker_tag),
                             n_trials=None, ensemble_size=int(spec["ensemble_size"]),
                             max_epochs=int(spec["max_epochs"]), verbose=request.verbose,
                             bag_folds=spec.get("bag_folds", 1))
        multi = len(settings.objectives) > 1
        keep = 0 if request.artifact_dir is None else settings.models_kept
        ctx = SearchContext(data=data, space=SearchSpace(spec["space"]), settings=settings, storage=storage,
                       study_name=request.study_name, deadline=None,
                       pool=ModelPool(keep, request.artifact_dir, multi),
                       callbacks=estimator._extra_callbacks() if estimator is not None else [],
                       heartbeat=own_heartbeats(storage), outlives_fit=True, child_artifact_dir=request.artifact_dir,
                       worker_tag=worker_tag, hard_grace=MIN_HARD_GRACE)
        # a worker started before the fit that resumes an existing study (its earlier fits all done)
        # waits for it, as it waits for a new study, rather than ending at once with 0 trials
        while not follow_fits(ctx, probe.user_attrs):
            if request.wait_until is None or time.monotonic() >= request.wait_until:
                logging.getLogger("automm.worker").warning(
                    "study %r: no fit is running it (its fits have all finished); a worker adds trials to a "
                    "running fit: start it while the fit runs, or run the fit again to resume the study",
                    request.study_name)
                return 0
            time.sleep(1.0)
            probe = optuna.load_study(study_name=request.study_name, storage=storage)
        if request.artifact_dir is not None:
            os.makedirs(request.artifact_dir, exist_ok=True)
        study = optuna.load_study(study_name=request.study_name, storage=storage,
                                  sampler=make_sampler(settings, 0), pruner=make_pruner(settings))
        devices = search.cuda_devices(data, estimator.device if estimator is not None else "auto")
        # (n_jobs=-1: one process per usable CPU, as a fit's; on CUDA one thread per GPU)
        done_before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        with image_cache(), torch_threads_capped(), search.study_kept(study, storage, "this worker"):
            run_trial_loops(ctx, study, request.storage_ref, search.trial_loops(request.n_jobs, devices), devices)
            # by tag (host:pid), not by position: a worker may also run a trial enqueued before it joined;
            # its forked search processes' trials (n_jobs > 1) are its own too
            own = {ctx.worker_tag, *ctx.child_tags}
            mine = [t for t in study.get_trials(deepcopy=False)
                    if t.user_attrs.get(_ATTR + "worker") in own and t.number not in done_before]
        return len(mine)
