"""Optuna search over architectures and hyperparameters.

``AutoMM.fit`` searches instead of training its one default configuration when
:func:`search_requested` says so: ``n_trials > 1``; ``n_trials=None`` with a ``time_limit``;
a ``storage``; a ``search_space``; a list of choices as an encoder or fusion argument;
``ensemble_size > 1``; or two ``objectives``.

The space
---------
:mod:`automm.search_space` builds it from the estimator's arguments and ``search_space=`` (its
documentation gives the format): for every input the encoder among the allowed ones and that
component's own hyperparameters, the fusion, each candidate augmentation on or off, the
training hyperparameters. The first trial of a study is the default configuration (what ``fit``
trains without a search), so the search never ends worse on the holdout than the default. Next
come the presets (the default with frozen pretrained encoders, the linear model
(:mod:`automm.linear`), the nearest-neighbour model (:mod:`automm.neighbors`), the gradient-boosted
model (:mod:`automm.boosting`), replicates); sampled configurations follow. Under a time limit the
linear, nearest-neighbour and gradient-boosted models run
first, before the default, when their features are cached: they cost seconds where a network
may need minutes per epoch, so even a budget too short for one epoch of the default ends with
a model that finished (fashion subCategory, ``time_limit=20``: 0.995 test accuracy instead of
0.986; see :func:`_cheap_first`). ``search_space={"warm_start": False}`` skips the default and the
presets: every trial is then sampled.

Sampling, pruning, budget, failures
-----------------------------------
``sampler``: ``"tpe"`` (``TPESampler(multivariate=True, group=True)``; NSGA-II when two
objectives are given), ``"random"``, ``"cmaes"`` (needs the ``cmaes`` package), ``"nsgaii"`` or an
Optuna sampler object (a copy of it, tried on one draw of the space before any trial: one
that cannot draw it, a ``GridSampler`` lacking a parameter the space suggests, is refused;
a ``GridSampler``'s search ends when its grid is done); a named sampler is seeded by ``random_state``, an
object keeps its own seed (``TPESampler(seed=0)``; unseeded, it draws other configurations in each process). A study
of ``storage`` created beforehand must have the search's directions (``"maximize"``: every
score is higher-is-better). ``pruner``: ``"median"``, ``"hyperband"``,
``"successive_halving"``, ``"none"`` or an Optuna pruner; every epoch reports the best
validation score so far (``trial.report``; so a ``PatientPruner`` never prunes: ``fit``
warns) and a pruned trial stops at once. ``"median"`` is
:class:`automm.pruning.ArchitectureMedianPruner`: the median rule among the finished trials of
the same architecture (fusion and encoders), none stopped before three of its architecture have
finished, so that a slow-starting architecture is first seen at its finished score; and no
trial is pruned before :data:`PRUNING_WARMUP_FRACTION` of its planned epochs.
The default, its presets and their replicates report too but are never pruned (they are the
baseline and the ensemble's planned members). ``time_limit`` is a
hard wall clock for the whole fit: trials stop at the deadline and keep their best epoch; a
network that it stops inside its first epoch (a bag: its first fold; a later fold ends the bag
there, scored on the folds trained) is recorded as pruned ("time limit reached in its first
epoch (k of n batches)"), not scored as if trained, since it has not seen every row once, and
reports nothing to the pruner; ``fit`` warns when the model it keeps is such a one. The linear
model and the boosted trees stopped before they learned anything (one guess for every row) fail
with ``TimeoutError`` (:data:`automm.deadlines.CUT_BEFORE_LEARNING`), as before their first result. A
pretrained encoder computing features stops at the deadline too, through
:func:`automm.deadlines.check_deadline`, and the trial fails with its progress cached (``fit`` warns
when the model kept lacks that encoder so: its features took longer than estimated); a
trial stuck in code that does not watch the deadline is interrupted :data:`MIN_HARD_GRACE`
seconds (or 5% of the budget) later and fails (main thread of a POSIX process); with room for several trials, a sampled trial
trains at most :data:`TRIAL_TIME_FRACTION` of the search's time and the default, its presets
and their replicates at most :data:`WARM_START_TIME_FRACTION`, so that a slow default
configuration cannot take the whole budget. ``n_trials`` bounds the number of trials in the
study (finished ones of a resumed study count; :data:`DEFAULT_N_TRIALS` when neither is
given). A trial that raises (NaN loss, out of memory, a broken plugin, ...) is recorded as failed with its reason and the search goes on (CUDA out of
memory first retries with half the batch size, until it fits; the trial's reason then says so), unless a process's first :data:`SYSTEMATIC_FAILURES`
trials all failed for one reason (the data or the set-up, not a configuration: it stops);
``fit`` raises :class:`SearchError` with the reasons, each once with its trials, only when no
trial produced a model. Ctrl-C (``KeyboardInterrupt``) stops the search:
no trial starts after it, a trial that has trained is recorded in full first (in the main
thread the interrupt lands only inside a trial's training, see :class:`automm.interrupts.InterruptGate`), the
ones still training are recorded as failed (:data:`INTERRUPTED_REASON`;
trials in other threads stop at their next batch; forked search processes, which ignore SIGINT and
leave it to the parent, are told to stop with SIGTERM, which they take as Ctrl-C: a trial they have
trained is recorded in full first, and the study journal's lock is never left held) and the trials finished so far make the result, with a
warning and nothing retrained; with no finished trial, on a second Ctrl-C while trials in
threads or processes are stopping, or when ``fit`` runs inside scikit-learn's model selection,
``KeyboardInterrupt`` propagates. With a ``storage``, a retry of each
interrupted trial is queued: they do not count towards ``n_trials``, and running the same fit
again resumes the study and trains them first; a worker (:func:`automm.worker.run_worker`) stopped by Ctrl-C
queues a retry of its trial the same way, for the study's other processes. ``SystemExit`` (``sys.exit``
in a SIGTERM handler of the user's own) stops the search the same way (:data:`EXIT_REASON`, retried
too) but propagates, with no result.

Parallelism, storages, workers
------------------------------
Without GPUs, ``n_jobs > 1`` runs trials in that many processes (forked, sharing one study; an
in-memory study becomes a temporary journal file); a forked process trains with one thread
(torch's thread pool hangs in a process forked after it ran), so ``n_jobs=-1``, one process per
usable CPU (:func:`automm.process_state.usable_cpus`: the affinity mask, a cgroup CPU quota), uses
a machine (or a container's share) whole; the process that forked them trains with those CPUs
divided by ``n_jobs``, but never more threads than it had (``torch.get_num_threads()``: a worker of scikit-learn's
``n_jobs``, which joblib limits, or under threadpoolctl's ``threadpool_limits``). With CUDA GPUs (``device="auto"`` or
``"cuda"``), trials run in threads, one per GPU or ``n_jobs`` when larger (several then share a
GPU), the GPU ids handed out through a queue; never in forked processes, which cannot use CUDA
once the process they were forked from has. ``storage`` is an
Optuna storage: a URL (``sqlite:///file.db``, ``postgresql://user:pw@host/db``: an
``RDBStorage`` with heartbeats, a stale trial is retried), a journal file
(``"journal:///path/study.log"`` or a path ending in ``.log``/``.journal``; automm's own
heartbeats detect and retry trials of killed workers), or an Optuna storage object. With a
storage, the study is named ``study_name`` or, by default, after a fingerprint of the data (its
input values too) and the search settings, so that restarting the same ``fit`` after a crash (even ``kill -9``)
resumes the study: finished trials are kept and count towards ``n_trials``, trials of dead
workers are retried, and so are the default and presets an earlier run's time limit stopped
(:func:`_retry_stopped_presets`). Trials the study's user queued (``study.enqueue_trial``, with the names of
the leaderboard's ``params``) run first, before the default, and count towards ``n_trials``; a
name the space never suggests, or one of a branch the queued choices leave out, is warned about
(Optuna ignores it), a value its parameter cannot take fails its trial (:func:`_check_enqueued`).

:func:`automm.worker.run_worker` joins a running study from another process or machine (``automm worker
--storage URL --study NAME``). The study stores, as JSON user attributes, everything a worker
needs: the search space, the estimator's parameters, the holdout split and, when the training
data are JSON-able and under :data:`automm.study.MAX_STORED_DATA_BYTES` (file paths, texts, numbers), the data
themselves (image paths made absolute: a worker on another machine needs the same files at the
same paths). Otherwise the worker must be given the same ``X, y`` as ``fit``; their fingerprint
is checked. Trained models stay where they were trained: ``fit`` uses models from its own
process and from its ``n_jobs`` processes; a worker started with ``artifact_dir`` (a folder
``fit`` can read) leaves its best models there (:mod:`automm.trial_models`); any other chosen
trial is retrained from its stored configuration when the time limit allows.

Results
-------
``leaderboard_`` (every trial: number, state, score, components, parameters, epochs, wall
seconds, reason; see :func:`automm.leaderboard.leaderboard_frame`), ``best_trial_`` (the trial
whose model is ``model_``: the best validation score, complete trials before pruned ones, unless the ensemble's
selection keeps one other model alone) and ``study_name_``.
With ``ensemble_size > 1`` (``"auto"``, the default: 3 in a single-objective search), greedy
selection with replacement by holdout log-loss over the holdout outputs of the
``ensemble_size`` best trials (see :mod:`automm.ensemble`) may keep several of them as
``ensemble_``: ``predict``/``predict_proba`` then average the members' probabilities with the
selection weights (``transform`` still gives ``model_``'s embedding); only the models needed
are kept in memory (the best ``ensemble_size``), none is retrained (a member trained in another
process, by a worker or an earlier run of a resumed study, is retrained when the time limit
allows, else left out with a warning; a time-limited fit resuming a study keeps up to
:data:`RETRAIN_RESERVE_FRACTION` of its time for the best trials already there,
:func:`_retraining_reserve`).

k-fold bagging (``bag_folds``): a trial whose configuration is bagged (by default, "auto",
those whose encoders are all frozen: seconds per fold on cached features) trains once per fold
of all the rows (:func:`automm.pipeline.train_bagged`); its score and loss are those of its
out-of-fold outputs, every row, and its model is the average of its fold models (in
``ensemble_``, one member per fold). The first fold reports its epochs to the pruner; with the
median (or a percentile) pruner the bag then reports its out-of-fold score so far after each
fold but the last, and a pruned bag stops before its remaining folds. When every
candidate for the ensemble is a bag, greedy selection runs on the out-of-fold outputs of every
row instead of the holdout's. With
``objectives=("score", "latency")`` or ``("score", "params")`` the search is multi-objective
(NSGA-II, no pruning by epoch scores), ``pareto_front_`` lists the Pareto set and the model
chosen is, among the Pareto trials whose score is within 1% of the best score
(``score >= best - 0.01 * |best|``), the one with the smallest second objective. Both measure
what predicting new data costs: ``latency`` is milliseconds per sample to preprocess and predict
(up to 128) holdout rows, plus each encoder's one-off work per new value
(:meth:`Encoder.prepare_seconds`: a frozen encoder's features, which for the holdout rows are
already in memory); ``params`` counts the model's parameters and the weights its encoders use
outside it (:meth:`Encoder.external_parameters`: a frozen backbone), each tensor once. A trial
that the time limit cuts in its first epoch ends pruned, as in a single-objective search: Optuna
records no values for it, so it is in neither ``pareto_front_`` nor NSGA-II's population.
``plot_dir`` receives ``optimization_history.png``, ``param_importances.png`` (and
``pareto_front.png``) when matplotlib is installed (``pip install automm[plots]``); the importances
only once a finished trial has sampled parameters (a short search may run only its fixed first trials).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import logging
import math
import multiprocessing
import os
import queue
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np
import torch

from . import registry as _registry
from . import storage as _storage
from .components.image_cache import current_image_cache, shared_image_cache
from .components.stack import describe_encoders, encoder_parts
from .contracts import BUILD_FAILED
from .data import single_columns
from .deadlines import deadline_scope
from .devices import device_scope
from .files import url_problem
from .interrupts import InterruptGate, during_interrupt, hard_stop, interrupt
from .process_state import SharedChange, usable_cpus, warnings_left_out
from .exceptions import (AutoMMError, AutoMMWarning, InputError, SearchError, TimeLimitExceeded, in_chain,
                         user_stacklevel)
from .leaderboard import TRIAL_ATTR as _ATTR
from .leaderboard import rank_key as _rank_key
from .leaderboard import (choose_from_pareto, epoch_scores, foreign_trial, leaderboard_frame, pareto_frame, second_objective,
                          trial_counts, write_plots)
from .pipeline import (Candidate, PreparedData, all_encoders_frozen, augmentable_modalities, bag_folds_for, scored_on,
                       rows_scored_on, score_text, candidate_decided_score, candidate_score_text, candidate_decision_weights, candidate_temperature, decided_score,
                       comparable_rows, decision_weights, untimed_epochs_problem,
                       is_out_of_memory, pending_seconds, distinct_values,
                       pending_share, retry_with_smaller_batches, train_bagged, train_candidate, trainable_config,
                       validation_mae, validation_r2)
from .search_space import (SearchSpace, _fixed_values, _is_int, _objectives, check_search_space_structure,
                           resolved_ensemble_size)
from .storage import make_storage, own_heartbeats, parse_storage
from .study import (FINGERPRINT_ATTR, MAX_STORED_DATA_BYTES, data_fingerprint, data_payload, default_study_name,
                    prepare_study, search_fingerprint, study_spec, with_stored_split)
from .training import Callback, callback_origin, holdout_score_name, validation_metrics
from .trial_models import ModelPool, always_weighed, read_candidate

__all__ = ["search_requested", "run_search", "validate_params", "SearchSpace", "SearchError",
           "TimeLimitExceeded",
           "make_storage", "parse_storage", "choose_from_pareto", "DEFAULT_N_TRIALS", "SAMPLERS", "PRUNERS",
           "OBJECTIVES", "RESULT_ATTRIBUTES", "MAX_STORED_DATA_BYTES"]

#: Trials when a search is requested without ``n_trials`` and without ``time_limit``.
DEFAULT_N_TRIALS = 20
SAMPLERS = ("tpe", "random", "cmaes", "nsgaii")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
OBJECTIVES = ("score", "latency", "params")
#: Estimator attributes set from a search (removed again by a fit without search).
RESULT_ATTRIBUTES = ("leaderboard_", "ensemble_", "pareto_front_", "best_trial_", "study_name_")
#: With a time limit, the largest share of the search's time one trial may train (so that a
#: search explores at least 1 / TRIAL_TIME_FRACTION configurations).
TRIAL_TIME_FRACTION = 1 / 3
#: The share for the default configuration, its presets and their replicates (the trials the
#: ensemble is built on when the budget allows only a few): a from-scratch model on a few
#: thousand rows trains half as many epochs again as with a third (fashion, 600 s: 15-16
#: epochs instead of 10-11; test accuracy of the ensemble on fashion usage 0.9630 / 0.9661
#: against 0.9614 / 0.9624 on two seeds, subCategory unchanged).
WARM_START_TIME_FRACTION = 1 / 2
#: Fewest holdout rows on which ensemble selection may weigh models that only the holdout scores:
#: with fewer (25 emoji rows: a 2-row holdout), selection is a coin toss that overrode better-measured
#: models (a bag ranked first on 25 out-of-fold rows replaced by a trial right on 1 of 2 holdout rows;
#: four subsets of 20-40 rows, test accuracy 0.697 selected against 0.763 for the best-ranked model alone).
MIN_SELECTION_ROWS = 10
#: Why a search on fewer than MIN_SELECTION_ROWS validation rows stops after the default and the
#: presets (:func:`_too_few_rows_to_sample`): sampled configurations cannot be told apart there, and
#: the more are tried, the likelier one ranks first by chance (emoji category, 17-60 training
#: rows, 24 searches of time_limit=30 with automm-pretrained: test accuracy 0.489 -> 0.514, the
#: worst 0.085 -> 0.311; without it, 8 searches of 17-18 rows: 0.294 -> 0.354; fashion, 12-60 rows:
#: unchanged; every search in seconds instead of its whole time_limit).
FEW_ROWS_STOP = "too few validation rows to rank sampled configurations"
#: A trial of another process is retrained for the model only where the time left is at least this
#: many times its recorded training seconds (plus a second), and trains for at most that long.
RETRAIN_TIME_FACTOR = 1.5
#: The largest share of a time-limited search that a fit joining a study keeps, at its end, for
#: retraining the best trials already in it (:func:`_retraining_reserve`). Without it, a fit run
#: again on its study spent its whole time_limit on new trials and built its model from those
#: alone (fashion, 800 rows, a third run of time_limit=60: the study's best trials passed over
#: and the nearest-neighbour model kept alone, test accuracy 0.9900 against the 1.0000 of the two
#: runs before; with it, the earlier runs' best trials retrained and kept, 1.0000).
RETRAIN_RESERVE_FRACTION = 0.5
#: Seconds added to that reserve for the search's last trial, which may end a little after its deadline
#: (recording it, freeing its memory).
RESERVE_SLACK_S = 1.0
#: Least seconds a trial may run past the deadline before it is interrupted (see :func:`automm.interrupts.hard_stop`).
MIN_HARD_GRACE = 10.0
#: Seconds a forked search process is given, past its trials' hard stop (or, after Ctrl-C, once told to
#: stop), to record its trial and end before the process that forked it kills it.
CHILD_STOP_SECONDS = 3.0

# Those names below without a leading underscore but not in __all__ (SearchSettings, SearchContext,
# make_sampler, make_pruner, optuna_quiet, cuda_devices, run_trial_loops, hard_grace, WorkerFinished,
# FIT_ATTR, register_fit, follow_fits, tagged_seed, process_tag) are the search loop's parts that automm.worker shares.

#: The study's user attribute of each ``fit`` that runs it, suffixed by the fit's ``host:pid/id``:
#: ``{"status": "running" | "done", "n_trials", "deadline_unix", "trial_seconds"}``. One entry per
#: fit, so that several fits can share a study (the same script started on several machines): one
#: that finishes marks only itself done, and workers stop when no fit runs any more.
FIT_ATTR = "automm:fit:"
_HEARTBEAT = "automm:heartbeat"

_log = logging.getLogger("automm.search")


class SearchInterrupted(AutoMMError):
    """Stops a trial running in another thread than the one Ctrl-C interrupted."""


class WorkerFinished(Exception):
    """Raised through ``fit`` when it ran as a worker (see :func:`automm.worker.run_worker`)."""

    def __init__(self, trials: int):
        super().__init__(trials)
        self.trials = trials


# ==========================================================================================
# When to search, parameter validation
# ==========================================================================================


def search_requested(estimator) -> bool:
    """True when ``fit`` should search rather than train the one default configuration."""
    if getattr(estimator, "_automm_worker", None) is not None:
        return True
    n_trials = estimator.n_trials
    if n_trials is not None and n_trials > 1:
        return True
    if n_trials is None and estimator.time_limit is not None:
        return True
    if estimator.storage is not None or estimator.search_space is not None:
        return True
    if isinstance(estimator.fusion, (list, tuple)):
        return True
    if isinstance(estimator.encoders, Mapping) and any(isinstance(v, (list, tuple)) for v in estimator.encoders.values()):
        return True
    if isinstance(estimator.ensemble_size, int) and estimator.ensemble_size > 1:
        return True
    try:
        return len(_objectives(estimator.objectives)) > 1
    except TypeError:
        return False


def _check_untimed_max_epochs(space: Mapping[str, Any]) -> None:
    """A search space's ``max_epochs`` that trials would train for without end (a value, a choice
    or a range's high: :func:`~automm.pipeline.untimed_epochs_problem`, without a time_limit),
    refused before any trial as the estimator's ``max_epochs`` is: each trial's schedule spans them."""
    from .search_space import _param_spec

    training = space.get("training") or {}
    if "max_epochs" not in training:
        return
    where = "search_space['training']['max_epochs']"
    spec = _param_spec(training["max_epochs"], where)
    problem = untimed_epochs_problem(max([spec["value"]] if "value" in spec else spec.get("choices") or [spec["high"]]))
    if problem:
        raise InputError(f"{where}: {problem}")


def validate_params(estimator) -> None:
    """Check the search parameters of ``estimator`` (called by ``fit`` before anything else;
    imports Optuna only to check objects given as sampler, pruner or storage)."""
    def is_instance(value: Any, kind: str) -> bool:
        if value is None or isinstance(value, (str, os.PathLike, int, float)):
            return False
        import optuna

        return isinstance(value, {"sampler": optuna.samplers.BaseSampler, "pruner": optuna.pruners.BasePruner,
                                  "storage": optuna.storages.BaseStorage}[kind])

    if estimator.n_trials is not None and (not _is_int(estimator.n_trials) or estimator.n_trials < 1):
        raise InputError(f"n_trials: expected a positive integer or None, got {estimator.n_trials!r}")
    if estimator.search_space is not None:
        if not isinstance(estimator.search_space, Mapping):
            raise InputError(f"search_space: expected a dict (see automm.search_space), got {estimator.search_space!r}")
        check_search_space_structure(estimator.search_space)
        if estimator.time_limit is None:
            _check_untimed_max_epochs(estimator.search_space)
    sampler = estimator.sampler
    if not (is_instance(sampler, "sampler") or (isinstance(sampler, str) and sampler in SAMPLERS)):
        raise InputError(f"sampler: expected one of {SAMPLERS} or an Optuna sampler, got {sampler!r}")
    if (isinstance(sampler, str) and sampler == "cmaes") or type(sampler).__name__ == "CmaEsSampler":
        if importlib.util.find_spec("cmaes") is None:  # (an Optuna CmaEsSampler builds without it, then fails every
            # trial after its first few; a plugin's missing package was blamed)
            what = "sampler='cmaes'" if isinstance(sampler, str) else "sampler: CmaEsSampler"
            raise InputError(f"{what} needs the cmaes package: pip install cmaes")
    pruner = estimator.pruner
    if not (pruner is None or is_instance(pruner, "pruner") or (isinstance(pruner, str) and pruner in PRUNERS)):
        raise InputError(f"pruner: expected one of {PRUNERS}, None or an Optuna pruner, got {pruner!r}")
    if estimator.storage is not None:
        parse_storage(estimator.storage)
    if estimator.study_name is not None and (not isinstance(estimator.study_name, str) or not estimator.study_name):
        raise InputError(f"study_name: expected a non-empty string or None, got {estimator.study_name!r}")
    if estimator.n_jobs is not None and (not _is_int(estimator.n_jobs)
                                         or not (estimator.n_jobs >= 1 or estimator.n_jobs == -1)):
        raise InputError(f"n_jobs: expected a positive integer, -1 (all CPUs) or None (1), got {estimator.n_jobs!r}")
    if estimator.ensemble_size != "auto" and (not _is_int(estimator.ensemble_size) or estimator.ensemble_size < 1):
        raise InputError(f"ensemble_size: expected a positive integer or 'auto', got {estimator.ensemble_size!r}")
    try:
        objectives = _objectives(estimator.objectives)
    except TypeError:
        objectives = ()
    if (not objectives or objectives[0] != "score" or len(objectives) > 2
            or any(o not in OBJECTIVES for o in objectives) or len(set(objectives)) != len(objectives)):
        raise InputError(f"objectives: expected 'score', ('score', 'latency') or ('score', 'params'), "
                         f"got {estimator.objectives!r}")
    if len(objectives) > 1 and (sampler == "cmaes" or type(sampler).__name__ == "CmaEsSampler"):
        raise InputError("sampler: CMA-ES optimises one objective; with two objectives use 'nsgaii' (or 'tpe', "
                         "which becomes NSGA-II), 'random' or a multi-objective Optuna sampler")
    if len(objectives) > 1 and _is_int(estimator.ensemble_size) and estimator.ensemble_size > 1:
        raise InputError("ensemble_size: an ensemble is chosen by validation score only; use ensemble_size=1 "
                         "with a multi-objective search")
    bag_folds = estimator.bag_folds
    if bag_folds != "auto" and (not _is_int(bag_folds) or bag_folds < 1):
        raise InputError(f"bag_folds: expected 'auto', 1 (no bagging) or a number of folds >= 2, got {bag_folds!r}")
    if len(objectives) > 1 and _is_int(bag_folds) and bag_folds > 1:
        raise InputError("bag_folds: a multi-objective search measures one model per trial; use bag_folds=1 or 'auto'")
    if estimator.plot_dir is not None and not isinstance(estimator.plot_dir, (str, os.PathLike)):
        raise InputError(f"plot_dir: expected a directory path or None, got {estimator.plot_dir!r}")
    if (problem := url_problem(estimator.plot_dir, writing=True)) is not None:
        raise InputError(f"plot_dir: {estimator.plot_dir!r} is {problem}")
    if estimator.n_jobs not in (1, None) and is_instance(estimator.storage, "storage"):
        raise InputError("n_jobs: worker processes cannot share a storage object; pass a storage URL or a journal "
                         "file path instead")


#: Parameters that only a search reads.
_SEARCH_ONLY = ("sampler", "pruner", "plot_dir", "study_name")


def warn_unused_search_options(estimator) -> None:
    """Warn about search options that change nothing: set when ``fit`` trains one configuration
    without a search, or a pruner in a search of several objectives (which prunes nothing).
    Called by ``fit`` (after :func:`validate_params`), not by checks of a recipe."""
    from .search_space import _init_default

    try:
        objectives = _objectives(estimator.objectives)
    except TypeError:
        objectives = ()
    given = [name for name in _SEARCH_ONLY
             if not _same(getattr(estimator, name), _init_default(type(estimator), name))]
    if given and not search_requested(estimator):
        warnings.warn(f"{', '.join(given)}: given, but fit trains one configuration without a search (it searches "
                      "with n_trials > 1, a time_limit, a search_space, lists of choices, a storage, "
                      "ensemble_size > 1 or two objectives), so "
                      f"{'they are' if len(given) > 1 else 'it is'} not used", AutoMMWarning,
                      stacklevel=user_stacklevel())
    elif len(objectives) > 1 and "pruner" in given and estimator.pruner not in (None, "none"):
        warnings.warn(f"pruner: a search of {len(objectives)} objectives prunes no trial (Optuna compares trials "
                      "epoch by epoch on one score only), so the pruner is not used", AutoMMWarning,
                      stacklevel=user_stacklevel())
    elif type(estimator.pruner).__name__ == "PatientPruner":
        warnings.warn("pruner: PatientPruner never prunes here: it waits for a trial's score to fall below an earlier "
                      "one, and each epoch reports the trial's best validation score so far, which never falls; "
                      "give the pruner it wraps instead", AutoMMWarning, stacklevel=user_stacklevel())


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - an object that does not compare (an Optuna sampler)
        return value is default


# ==========================================================================================
# Storages, samplers, pruners
# ==========================================================================================


@dataclass
class SearchSettings:
    """What a search process needs besides the data (JSON-able)."""

    objectives: tuple[str, ...]
    sampler: Any                 # a name, or an Optuna sampler object (not stored)
    pruner: Any
    seed: int
    n_trials: int | None
    ensemble_size: int
    max_epochs: int
    verbose: int
    bag_folds: Any = 1           # "auto" or a number of folds (see pipeline.bag_folds_for)

    @property
    def models_kept(self) -> int:
        """How many of the best trials' models the result may be built from: ``ensemble_size``,
        1 in a multi-objective search (one model from its Pareto set)."""
        return 1 if len(self.objectives) > 1 else max(1, self.ensemble_size)


def copied_sampler(sampler):
    """A deep copy of an Optuna sampler object, each lock it holds a new one: NSGA-II's and
    NSGA-III's hold a ``threading.Lock``, which ``copy.deepcopy`` cannot copy ("cannot pickle
    '_thread.lock' object")."""
    memo: dict = {}

    def new_locks(obj: Any, depth: int) -> None:
        for value in getattr(obj, "__dict__", {}).values():
            if isinstance(value, _LOCK_TYPES):
                memo[id(value)] = threading.RLock() if isinstance(value, _RLOCK_TYPE) else threading.Lock()
            elif depth < 3 and hasattr(value, "__dict__") and not isinstance(value, type):
                new_locks(value, depth + 1)  # a sampler inside (CMA-ES's independent sampler)

    new_locks(sampler, 0)
    return copy.deepcopy(sampler, memo)


_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), _RLOCK_TYPE)


def make_sampler(settings: SearchSettings, worker_index: int):
    import optuna

    seed = (settings.seed + 7919 * worker_index) % (2**31 - 1)
    sampler = settings.sampler
    if isinstance(sampler, optuna.samplers.BaseSampler):
        # a copy: fit must not move the user's parameter on (a refit or a clone of a seeded
        # sampler would search other configurations)
        sampler = copied_sampler(sampler)
        if worker_index:
            sampler.reseed_rng()
        return sampler
    multi = len(settings.objectives) > 1
    n = settings.n_trials
    with warnings_left_out(optuna.exceptions.ExperimentalWarning):  # (a worker thread per GPU makes its own)
        if sampler == "nsgaii" or (sampler == "tpe" and multi):
            population = 50 if n is None else int(min(50, max(4, n // 4)))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        startup = 10 if n is None else int(min(10, max(3, n // 4)))
        tpe = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=startup)
        if sampler == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise InputError("sampler='cmaes' needs the cmaes package: pip install cmaes") from None
            return optuna.samplers.CmaEsSampler(seed=seed, independent_sampler=tpe, warn_independent_sampling=False,
                                                n_startup_trials=startup)
        return tpe


def make_pruner(settings: SearchSettings):
    import optuna

    pruner = settings.pruner
    if len(settings.objectives) > 1 or pruner in (None, "none"):
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        from .pruning import ArchitectureMedianPruner

        return ArchitectureMedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, settings.max_epochs),
                                              reduction_factor=3)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise InputError(f"pruner: unknown {pruner!r}")


def _quiet_optuna_begin() -> tuple:
    import optuna

    # a filter object of its own, put first and removed by identity: filterwarnings takes out an
    # equal filter the user had set, and removing by equality took theirs for good
    ours = ("ignore", None, optuna.exceptions.ExperimentalWarning, None, 0)
    warnings.filters.insert(0, ours)
    getattr(warnings, "_filters_mutated", lambda: None)()
    return optuna.logging.get_verbosity(), ours


def _quiet_optuna_end(saved: tuple) -> None:
    import optuna

    verbosity, ours = saved
    optuna.logging.set_verbosity(verbosity)
    found = [i for i, entry in enumerate(warnings.filters) if entry is ours]
    if found:  # (else gone already: the caller reset the filters)
        del warnings.filters[found[0]]
        getattr(warnings, "_filters_mutated", lambda: None)()  # (cached decisions made again)


_QUIET_OPTUNA = SharedChange(_quiet_optuna_begin, _quiet_optuna_end)


def optuna_quiet(verbose: int):
    """Optuna's log at INFO (``verbose >= 2``) or errors only, and its ``ExperimentalWarning``
    left out, within. Blocks running at once (searches in threads of one process) share one
    saved verbosity and one filter, put back and removed when the last ends: each restoring what
    it found (``warnings.catch_warnings`` too) left the verbosity at ERROR and the filter in
    place for good when two overlapped."""
    import optuna

    level = optuna.logging.INFO if verbose >= 2 else optuna.logging.ERROR
    return _QUIET_OPTUNA.held(lambda: optuna.logging.set_verbosity(level))


# ==========================================================================================
# Trained models of the best trials: memory, or files for other processes
# ==========================================================================================

# ==========================================================================================
# One trial
# ==========================================================================================


#: The failure reason of a trial stopped by Ctrl-C.
INTERRUPTED_REASON = "interrupted (KeyboardInterrupt)"
#: The failure reason of a trial stopped by ``SystemExit`` (``sys.exit`` in a SIGTERM handler of the
#: user's own): retried, as an interrupted one is.
EXIT_REASON = "interrupted (SystemExit)"
#: The failure reasons of trials cut short by Ctrl-C or ``SystemExit``, which are retried.
INTERRUPT_REASONS = (INTERRUPTED_REASON, EXIT_REASON)


@dataclass
class SearchContext:
    """Everything a search process needs to run trials (inherited by forked processes)."""

    data: PreparedData
    space: SearchSpace
    settings: SearchSettings
    storage: Any
    study_name: str
    deadline: float | None                # time.monotonic() value
    pool: ModelPool
    callbacks: list = field(default_factory=list)
    heartbeat: bool = False               # only automm's heartbeats (no Optuna heartbeats): they judge every running trial
    device_queue: Any = None              # queue.Queue of torch.device (one trial per GPU)
    child_artifact_dir: str | None = None
    worker_tag: str = ""
    child_tags: list = field(default_factory=list)  # the worker tags of this process's forked search processes
    durations: list = field(default_factory=list)  # seconds of this process's trials that were not pruned
    hard_grace: float = 10.0              # seconds past the deadline before a trial is interrupted
    attempts: int = 0                     # trials this process started
    trial_seconds: float | None = None    # the most one trial may train (None: up to the deadline)
    pending_work: float = 0.0             # estimated seconds of the one-off work kept at the search's start
                                          # (frozen features not cached: _too_slow_encoders), see _trial_deadline
    trials_at_once: int = 1               # trials run concurrently: processes or GPU threads (set by _run_trials)
    interrupted: threading.Event = field(default_factory=threading.Event)  # Ctrl-C: start nothing more
    interrupt_reason: str = INTERRUPTED_REASON  # what stopped it: Ctrl-C or SystemExit
    started: float = field(default_factory=time.time)  # when this search began (wall clock, for its summary)
    aborted: bool = False                 # Ctrl-C twice: no result
    outlives_fit: bool = False            # the study is the user's (a storage): trials cut short are retried
    fit_tag: str | None = None            # the fit's entry in the study (FIT_ATTR); None in a worker, which follows the fits
    interrupt_gate: InterruptGate = field(default_factory=InterruptGate)
    failures: list = field(default_factory=list)  # reasons of this process's failed trials
    succeeded: bool = False               # a trial of this process trained a model
    stopped_by: str | None = None         # why this process's trial loop last stopped (_stop_reason)

    def interrupt(self, exc: BaseException) -> None:
        """Start no more trials: ``exc`` (Ctrl-C or ``SystemExit``) stopped this process's search,
        and the reason of the trials it cut short says which."""
        self.interrupt_reason = EXIT_REASON if isinstance(exc, SystemExit) else INTERRUPTED_REASON
        self.interrupted.set()


#: A process whose first this many trials all failed for one same reason stops searching: the
#: cause is the data or the set-up (a plugin that cannot load, a dependency missing), not a
#: configuration, and every further trial would fail the same way until the time is up.
SYSTEMATIC_FAILURES = 5


#: A bag's report after its fold ``k`` goes at step ``FOLD_REPORT_STEP + k``, past any epoch.
FOLD_REPORT_STEP = 10_000
#: With ``pruner="median"``, a trial is not pruned before this share of its planned epochs (nor
#: before epoch 2). Learning curves cross: on emoji, frozen features, late fusion scored 0.69 /
#: 0.80 after epochs 1 / 2 and ended at 0.865 on average, gated fusion 0.75 / 0.83 and ended at
#: 0.857. Pruned from epoch 2, the search stopped every late-fusion trial, TPE learned from those
#: stops and sampled gated fusion in 297 of 378 trials, and its best finished trial (0.873) stayed
#: below the unpruned search's (0.885). On recorded curves (five searches, emoji and fashion) a
#: quarter of the schedule kept 2-4 of the 5 best trials, against 1-2 from epoch 2, at about half
#: the epochs of training every trial to its end.
PRUNING_WARMUP_FRACTION = 0.25


class _TrialReporter(Callback):
    """Reports the best validation score so far after every epoch and stops a pruned trial.

    A bag (k-fold trial) reports its first fold's epochs, then, with ``fold_reports`` (which
    implies ``report``), the out-of-fold score of the folds done after each fold but the last
    (:meth:`on_fold_end`, step :data:`FOLD_REPORT_STEP` + folds done): a bag that survives its
    first fold can still be stopped before its other folds, which are most of its cost.
    With ``prunable=False`` (the default configuration, its presets and their replicates:
    the baseline and the ensemble's planned members) the scores are still reported, so that
    the pruner can compare later trials with them, but the trial is never stopped.
    ``warmup_fraction``: no epoch before that share of the trial's planned epochs is pruned
    (see :data:`PRUNING_WARMUP_FRACTION`)."""

    def __init__(self, trial: Any, report: bool, prunable: bool = True, fold_reports: bool = False,
                 warmup_fraction: float = 0.0, interrupted: threading.Event | None = None):
        self.trial, self.report, self.prunable = trial, report, prunable
        self.interrupted = interrupted
        self.fold_reports = report and fold_reports
        self.warmup_fraction = float(warmup_fraction)
        self.pruned_reason: str | None = None
        self.folds_follow = False  # a bag's first fold: its last epoch may still save the other folds

    @property
    def pruned(self) -> bool:
        return self.pruned_reason is not None

    def on_batch_end(self, trainer, loss: float) -> None:
        # Ctrl-C reaches the main thread only: trials in other threads (one per GPU) stop here
        if self.interrupted is not None and self.interrupted.is_set():
            raise SearchInterrupted("the search was interrupted (KeyboardInterrupt)")

    def on_epoch_end(self, trainer, record: dict) -> None:
        if not self.report:
            return
        epoch = int(record["epoch"])
        value = float(trainer.best_score)
        if not math.isfinite(value) or not record.get("complete", True):
            return  # an epoch the time limit cut is no point of a learning curve
        self.trial.report(value, epoch)
        warming_up = epoch < math.ceil(self.warmup_fraction * trainer.planned_epochs)
        last = epoch >= trainer.planned_epochs and not self.folds_follow  # (stopping it would save nothing)
        if self.prunable and not warming_up and not last and self.trial.should_prune():
            self.pruned_reason = trainer.stop_reason = f"pruned at epoch {epoch}{self._compared_with()}"
            trainer.should_stop = True

    def _compared_with(self) -> str:
        """`` (what the pruner compared the trial with)`` when it says, else nothing."""
        reason = getattr(getattr(getattr(self.trial, "study", None), "pruner", None), "reason", None)
        said = reason(self.trial.number) if callable(reason) else None
        return f" ({said})" if said else ""

    def on_fold_end(self, done: int, n_folds: int, score: float) -> bool:
        """After fold ``done`` of a bag: report its out-of-fold ``score`` so far; True stops the bag."""
        if not math.isfinite(score):
            return False
        self.trial.report(float(score), FOLD_REPORT_STEP + int(done))
        if self.prunable and self.trial.should_prune():
            self.pruned_reason = f"pruned after fold {done} of {n_folds}{self._compared_with()}"
            return True
        return False


class _Heartbeat:
    """Writes the time into a running trial's system attributes every ``interval`` seconds, until
    the trial has finished (a write that failed is tried again at the next)."""

    def __init__(self, storage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"automm-heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        import optuna

        while True:
            try:
                self.storage.set_trial_system_attr(self.trial_id, _HEARTBEAT, time.time())
            except (optuna.exceptions.UpdateFinishedTrialError, KeyError):  # finished, or its study deleted
                return
            except Exception:  # noqa: BLE001 - a write that failed (a locked SQLite file): the next one may not
                pass
            if self.stop_event.wait(self.interval):
                return

    def __enter__(self) -> "_Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(timeout=max(5.0, self.interval))


#: How a trial's reason starts when a component lacks an installed package (its weights, a library):
#: every trial that samples the component fails the same way, which the model kept would otherwise hide.
MISSING_PACKAGE = "missing package"


def _failure_reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if (callback := callback_origin(exc)) is not None:
        text = f"callback {callback} raised {text}"
    elif isinstance(exc, FloatingPointError):
        text = f"non-finite loss ({text})"
    elif is_out_of_memory(exc):
        text = f"out of memory ({text})"
    elif in_chain(exc, ImportError) is not None:  # (automm-pretrained's MissingWeightsError is one)
        text = f"{MISSING_PACKAGE} ({text})"
    return text if len(text) <= 500 else text[:497] + "..."


def _record_failure(trial, ctx: SearchContext, exc: BaseException, seconds: float) -> None:
    """A failed trial's reason and time on the trial (the leaderboard's ``reason``) and in the
    search's list of failures (what ``fit`` raises with when every trial fails)."""
    reason = _failure_reason(exc)
    trial.set_user_attr(_ATTR + "reason", reason)
    if reason != INTERRUPTED_REASON:
        ctx.failures.append(reason)
    trial.set_user_attr(_ATTR + "seconds", seconds)
    if ctx.settings.verbose:
        _progress(f"trial {trial.number} failed: {reason}")


def _retried_numbers(trials: Sequence[Any]) -> set[int]:
    """The numbers of the trials that a later trial retries (a lost worker's, or one cut by Ctrl-C)."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", [])}


def _progress(message: str) -> None:
    """One ``[automm] ...`` progress line of a verbose search, on stderr (stdout is the program's)."""
    print(f"[automm] {message}", file=sys.stderr, flush=True)


def _budget_trials(trials: Sequence[Any]) -> list[Any]:
    """Trials that count towards ``n_trials``: not skipped, not a failure retried elsewhere, not
    a trial of the study's user's own (:func:`~automm.leaderboard.foreign_trial`)."""
    from optuna.trial import TrialState

    retried = _retried_numbers(trials)
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return [t for t in trials if t.state in counted and not t.user_attrs.get(_ATTR + "skipped")
            and not (t.state == TrialState.FAIL and t.number in retried) and not foreign_trial(t)]


def _encoder_parts(model) -> list[tuple[str, Any]]:
    """(input name, encoder) for every Encoder module of ``model`` (a stack's parts included)."""
    from .components.base import Encoder

    return [(name, part) for name, encoder in model.encoders.items() for part in encoder.modules()
            if isinstance(part, Encoder)]


def _measure_latency(model, data: PreparedData, batch_size: int, device: torch.device) -> float:
    """Milliseconds per sample to predict new data: preprocess and predict (up to 128) holdout
    samples, plus each encoder's one-off work per new value (:meth:`Encoder.prepare_seconds`: a
    frozen encoder computing the features that, for these rows, it looks up in memory). Call it
    in the trial's :func:`~automm.devices.device_scope`."""
    from .components.image_cache import suspend_image_cache
    from .data import BatchCollator, MultimodalDataset
    from .model import move_to_device
    from .training import make_loader

    index = data.valid_index[:128]
    values = data.subset(index)
    encoders = dict(model.encoders.items())
    loader = make_loader(MultimodalDataset(values, encoders), max(1, batch_size), False, 0, 0,
                         BatchCollator(encoders))
    model = model.to(device).eval()
    best = math.inf
    # new data is decoded: not the pixels the fit's image cache holds for these rows (from-scratch
    # image encoders were timed without their decoding, frozen ones with it, in prepare_seconds)
    with torch.no_grad(), suspend_image_cache():
        for _ in range(2):
            start = time.perf_counter()
            for batch in loader:
                batch = move_to_device(batch, device)
                model(batch["inputs"], batch["masks"])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
    one_off = sum(float(part.prepare_seconds(values[name])) for name, part in _encoder_parts(model))
    return 1000.0 * (best / max(1, len(index)) + one_off)


def _count_parameters(model) -> int:
    """Every value predicting needs: the model's parameters and buffers (a nearest-neighbour
    fusion's remembered rows, batch-norm statistics, n-gram weights) and the parameters its
    encoders use outside it (:meth:`Encoder.external_parameters`, e.g. a shared frozen
    backbone), each tensor once."""
    tensors = {id(p): p for p in (*model.parameters(), *model.buffers())}
    for _, part in _encoder_parts(model):
        for p in part.external_parameters():
            tensors.setdefault(id(p), p)
    return int(sum(p.numel() for p in tensors.values()))


def _objective(trial, ctx: SearchContext):
    """Train and score the configuration of ``trial`` (see :func:`_run_objective`); a trial cut
    short by Ctrl-C is recorded as interrupted before the study marks it failed, and one failing
    outside its training (before it, or in a plugin's code after) with its reason too."""
    import optuna

    try:
        return _run_objective(trial, ctx)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            trial.set_user_attr(_ATTR + "reason", INTERRUPTED_REASON)
        raise
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        if _ATTR + "reason" not in trial.user_attrs:
            with contextlib.suppress(Exception):
                _record_failure(trial, ctx, exc, seconds=trial.user_attrs.get(_ATTR + "seconds", 0.0))
        raise


def _run_objective(trial, ctx: SearchContext):
    """Train ``trial``'s configuration in its share of the budget, record its result on it and
    return its objective values (``TrialPruned`` for a trial pruned or cut in its first epoch)."""
    attrs = trial.user_attrs  # (the marks of the default and the presets, queued with them)
    _claim_trial(trial, ctx, attrs)
    config, is_default, warm_start = _trial_config(trial, ctx, attrs)
    device = ctx.device_queue.get() if ctx.device_queue is not None else ctx.data.device
    reporter = _trial_reporter(trial, ctx, warm_start)
    heartbeat = _trial_heartbeat(trial, ctx)
    start = time.monotonic()
    try:
        candidate, extra = _train_trial(trial, ctx, config, device, reporter, heartbeat, warm_start, is_default)
    except Exception as exc:
        _record_failure(trial, ctx, exc, seconds=time.monotonic() - start)
        raise
    finally:
        if ctx.device_queue is not None:
            ctx.device_queue.put(device)
    seconds = time.monotonic() - start
    ctx.succeeded = True
    if candidate.cut_in_first_epoch and not reporter.pruned:
        # too slow for its share of the budget: its score measures a model that never saw every
        # row, not the configuration; pruned, it ranks below every finished trial
        reporter.pruned_reason = candidate.cut_in_first_epoch
        candidate = replace(candidate, stop_reason=candidate.cut_in_first_epoch)
    if not reporter.pruned and not always_weighed(config):  # (no epochs) see _stop_reason
        ctx.durations.append(seconds)
    # rows the score was measured on (the leaderboard's rows; a classification's score is ranked by
    # its lower bound on them, _rank_key)
    rows = scored_on(ctx.data, candidate)[1]
    _record_result(trial, ctx, config, candidate, rows, seconds, extra, reporter)
    return _trial_values(trial, ctx, candidate, rows, extra, reporter)


def _claim_trial(trial, ctx: SearchContext, attrs: Mapping[str, Any]) -> None:
    """Name this process on ``trial``; skip it (pruned) when other workers reached ``n_trials``."""
    import optuna

    # the process space first: a trial that names its worker names where that process ran, so that a
    # fit killed between the two writes leaves a trial the next fit finds lost at once (the other way
    # round, a worker without its space was taken for an older automm's: left running, never retried)
    trial.set_user_attr(_ATTR + "process_space", _process_space())
    trial.set_user_attr(_ATTR + "worker", ctx.worker_tag)
    if ctx.settings.n_trials is not None and not attrs.get(_ATTR + "default"):
        earlier = [t for t in _budget_trials(trial.study.get_trials(deepcopy=False)) if t.number < trial.number]
        if len(earlier) >= ctx.settings.n_trials:
            trial.set_user_attr(_ATTR + "skipped", True)
            raise optuna.TrialPruned("n_trials reached by other workers")


def _trial_config(trial, ctx: SearchContext, attrs: Mapping[str, Any]) -> tuple[dict, bool, bool]:
    """``trial``'s configuration (the default, a preset, or sampled), recorded on it as it trains
    (:func:`automm.pipeline.trainable_config`); whether it is the default, and whether it is a
    warm start (the default or a preset)."""
    is_default = bool(attrs.get(_ATTR + "default"))
    preset = attrs.get(_ATTR + "preset")
    if is_default:
        config = ctx.space.default_config
    elif preset is not None:
        config = ctx.space.presets[int(preset)]
    else:
        config = _sampled_config(trial, ctx)
    trial.set_user_attr(_ATTR + "config", config)  # (the leaderboard's, also when building its encoders fails)
    scaled = trainable_config(config, ctx.data.inputs, ctx.space.frozen_batch_scale)
    if scaled is not config:
        config = scaled
        trial.set_user_attr(_ATTR + "config", config)
    return config, is_default, is_default or preset is not None


def _sampled_config(trial, ctx: SearchContext) -> dict:
    """The configuration the sampler draws on ``trial`` (or that its queued values fix); a
    failure is recorded on the trial, with the configuration drawn so far."""
    try:
        fixed = _enqueued_values(trial)
        bad = _enqueued_problems(ctx, fixed).bad if fixed else []  # (names Optuna ignores: not checked)
        if bad:
            raise InputError(f"queued (study.enqueue_trial) with values its parameters cannot take, "
                             f"{'; '.join(bad)} (queue values of the search's space, or widen search_space)")
        return _suggest(ctx, trial)
    except Exception as exc:  # a plugin's search-space function, or an encoder built on a value of the space
        partial = getattr(exc, "automm_partial_config", None)
        if partial is not None:
            trial.set_user_attr(_ATTR + "config", partial)
        _record_failure(trial, ctx, exc, seconds=0.0)
        raise


def _trial_reporter(trial, ctx: SearchContext, warm_start: bool) -> _TrialReporter:
    """The callback that reports ``trial``'s epochs to the pruner (a warm start's never pruned)."""
    import optuna

    # fold reports only for pruners that compare trials step by step (median, percentile);
    # Hyperband and successive halving count epochs as their resource
    from .pruning import ArchitectureMedianPruner

    step_pruner = isinstance(trial.study.pruner, (optuna.pruners.PercentilePruner, ArchitectureMedianPruner))
    return _TrialReporter(trial, report=len(ctx.settings.objectives) == 1, prunable=not warm_start,
                          fold_reports=step_pruner,
                          warmup_fraction=PRUNING_WARMUP_FRACTION if ctx.settings.pruner == "median" else 0.0,
                          interrupted=ctx.interrupted)


def _trial_heartbeat(trial, ctx: SearchContext):
    """automm's heartbeat of ``trial`` (a context), or a null context where the storage needs none."""
    import optuna

    # automm's heartbeat also beside Optuna's (an RDB storage): a copy of the study (optuna.copy_study)
    # keeps it, not Optuna's, so that a trial running when the study was copied is found lost there
    beats = ctx.heartbeat or isinstance(ctx.storage, optuna.storages.RDBStorage)
    return (_Heartbeat(ctx.storage, trial._trial_id, _storage.heartbeat_interval()) if beats
            else contextlib.nullcontext())


def _train_trial(trial, ctx: SearchContext, config: dict, device: torch.device, reporter: _TrialReporter,
                 heartbeat, warm_start: bool, is_default: bool) -> tuple[Candidate, dict]:
    """``config`` trained by its deadline (:func:`_trial_deadline`; interrupted ``ctx.hard_grace``
    after it), and the second objective it is measured on: (candidate, ``{"latency_ms"|"n_params": ...}``)."""
    trial_deadline = _trial_deadline(ctx, warm_start=warm_start, config=config, is_default=is_default)
    hard_deadline = None if trial_deadline is None else trial_deadline + ctx.hard_grace
    if hard_deadline is not None and time.monotonic() >= hard_deadline:  # (the alarm would blame the trial's code)
        raise TimeLimitExceeded("the time limit had passed before this trial started: the work before it (reading "
                                "the data, estimating the encoders' one-off work, earlier trials) took the budget")
    with heartbeat, _running_notice(ctx.settings.verbose, trial.number, config, trial_deadline, ctx.data.inputs):
        with hard_stop(hard_deadline), deadline_scope(trial_deadline), device_scope(device), \
                ctx.interrupt_gate.open():
            candidate = _train(ctx, config, trial, device, reporter, trial_deadline)
        if not math.isfinite(float(candidate.best_score)):
            raise FloatingPointError("no finite validation score")
        with device_scope(device):  # where a frozen encoder's backbone runs (and is counted)
            extra = _measured_costs(ctx, candidate, device)
    return candidate, extra


def _measured_costs(ctx: SearchContext, candidate: Candidate, device: torch.device) -> dict:
    """The costs the search's objectives ask for: ``latency_ms``, ``n_params``."""
    extra = {}
    if "latency" in ctx.settings.objectives:
        extra["latency_ms"] = _measure_latency(candidate.model, ctx.data,
                                               int(candidate.config["training"]["batch_size"]), device)
    if "params" in ctx.settings.objectives:
        extra["n_params"] = _count_parameters(candidate.model)
    return extra


def _record_result(trial, ctx: SearchContext, config: dict, candidate: Candidate, rows: int, seconds: float,
                   extra: Mapping[str, Any], reporter: _TrialReporter) -> None:
    """A trained trial's score, epochs, time and stop reason on the trial (the leaderboard's), and
    its progress line."""
    score = float(candidate.best_score)
    stop_reason = candidate.stop_reason
    if candidate.config["training"]["batch_size"] != config["training"]["batch_size"]:  # retried out of memory
        stop_reason = (f"{stop_reason}; " if stop_reason else "") + (
            f"out of GPU memory with batch {config['training']['batch_size']}: "
            f"trained with batch {candidate.config['training']['batch_size']}")
    for key, value in {"score": score if math.isfinite(score) else None, "loss": candidate.best_loss, "rows": rows,
                       "epochs": len(candidate.history), "best_epoch": int(candidate.best_epoch),
                       "valid_scores": epoch_scores(candidate.history), "seconds": seconds,
                       "stop_reason": stop_reason, **extra}.items():
        trial.set_user_attr(_ATTR + key, value)
    if candidate.config is not config:
        trial.set_user_attr(_ATTR + "config", candidate.config)
    if ctx.settings.verbose:
        on = scored_on(ctx.data, candidate)[0]
        # a holdout score named by its metric alone (accuracy 0.8125); others say what they are on
        what = reporter.pruned_reason if reporter.pruned else score_text(ctx.data, score, on).removeprefix("holdout ")
        _progress(f"trial {trial.number}: {what} ({_components(config, ctx.data.inputs)}) {seconds:.1f} s")


def _trial_values(trial, ctx: SearchContext, candidate: Candidate, rows: int, extra: Mapping[str, Any],
                  reporter: _TrialReporter):
    """Offer ``trial``'s model to the pool at its rank and return its objective values, or raise
    ``TrialPruned`` for a pruned trial."""
    import optuna

    score = float(candidate.best_score)
    if len(ctx.settings.objectives) > 1:
        second = extra["latency_ms"] if "latency" in ctx.settings.objectives else float(extra["n_params"])
        if reporter.pruned:
            # only a cut in the first epoch prunes here (no reports): as in a single-objective
            # search its score is no measure of the configuration, so it ends PRUNED (Optuna
            # records no values then), outside study.best_trials, the Pareto set, and NSGA-II's
            # parents; its model is kept only until a finished trial's model is (dominated by any)
            _keep(ctx, trial, (-math.inf, math.inf), candidate)
            raise optuna.TrialPruned(reporter.pruned_reason)
        _keep(ctx, trial, (score, second), candidate)
        return score, second
    _keep(ctx, trial, _rank_key(not reporter.pruned, score, candidate.best_loss,
                                rows if ctx.data.problem_type != "regression" else None), candidate)
    if reporter.pruned:
        raise optuna.TrialPruned(reporter.pruned_reason)
    return score


def _keep(ctx: SearchContext, trial, key: Any, candidate: Candidate) -> None:
    try:
        ctx.pool.offer(trial.number, key, candidate, ctx.storage, trial._trial_id)
    except Exception as exc:  # noqa: BLE001 - the trial's result stands; only its model is not kept
        warnings.warn(f"trial {trial.number}: could not keep its trained model: {exc!r}", AutoMMWarning,
                      stacklevel=user_stacklevel())


def _trial_deadline(ctx: SearchContext, warm_start: bool = False, config: Mapping[str, Any] | None = None,
                    is_default: bool = False) -> float | None:
    """The search's deadline, or sooner when each trial may use only a share of the budget
    (:data:`WARM_START_TIME_FRACTION` for the default, presets and replicates, else
    :data:`TRIAL_TIME_FRACTION`). While one-off work was pending at the search's start
    (``ctx.pending_work``: frozen features not cached), the share is for training: a preset's
    ``config`` gets the work it still has to do on top of it, and the default, which runs before
    the presets that do that work, leaves it to them (both :data:`PENDING_MARGIN` times the estimate),
    unless trials run at once (``ctx.trials_at_once``): the work is then done beside it. The
    default used to take its whole share, leaving the trial computing the features (the linear
    model) the other half at most, which the estimate fills: on a busier machine it failed at its
    deadline and no model used them (fashion usage, 1,500 rows, an empty cache, ``time_limit=64``:
    the default kept alone, 0.926-0.928 test accuracy, against 0.940 at ``time_limit=30``, where
    EfficientNet-Lite0 was left out)."""
    if ctx.trial_seconds is None:
        return ctx.deadline
    seconds = ctx.trial_seconds * (WARM_START_TIME_FRACTION / TRIAL_TIME_FRACTION if warm_start else 1.0)
    own_work = _one_off_seconds(ctx, config) if warm_start and ctx.pending_work > 0 and config is not None else 0.0
    own = time.monotonic() + seconds + PENDING_MARGIN * own_work
    deadline = own if ctx.deadline is None else min(ctx.deadline, own)
    if is_default and ctx.deadline is not None and ctx.pending_work > own_work and ctx.trials_at_once <= 1:
        deadline = min(deadline, ctx.deadline - PENDING_MARGIN * (ctx.pending_work - own_work))
    return deadline


def _one_off_seconds(ctx: SearchContext, config: Mapping[str, Any]) -> float:
    """The estimated seconds of the one-off work ``config``'s encoders still have to do
    (:func:`automm.pipeline.pending_seconds`); 0.0 when the estimate fails."""
    try:
        return float(sum(pending_seconds(ctx.data, config).values()))
    except Exception:  # noqa: BLE001 - an estimate that fails leaves the share as it is
        return 0.0


def _train(ctx: SearchContext, config: dict, trial, device: torch.device, reporter: _TrialReporter,
           deadline: float | None = None) -> Candidate:
    """train_candidate (or train_bagged), retrying with half the batch size after CUDA runs out
    of memory (:func:`automm.pipeline.retry_with_smaller_batches`; counted in the trial's
    ``oom_retries``)."""
    n_folds = bag_folds_for(ctx.settings.bag_folds, ctx.data, config)
    if reporter is not None:
        reporter.folds_follow = n_folds > 1
    trial.set_user_attr(_ATTR + "folds", n_folds)

    def train(config: dict) -> Candidate:
        if n_folds > 1:
            return train_bagged(ctx.data, config, n_folds, deadline=deadline, callbacks=ctx.callbacks,
                                first_fold_callbacks=[reporter], verbose=max(0, ctx.settings.verbose - 1),
                                device=device,
                                on_fold_end=reporter.on_fold_end if reporter.fold_reports else None)
        return train_candidate(ctx.data, config, deadline=deadline, callbacks=[*ctx.callbacks, reporter],
                               verbose=max(0, ctx.settings.verbose - 1), device=device)

    def count(batch: int, smaller: int) -> None:
        trial.set_user_attr(_ATTR + "oom_retries", int(trial.user_attrs.get(_ATTR + "oom_retries", 0)) + 1)

    return retry_with_smaller_batches(train, config, device, on_retry=count)


#: A verbose search says that a trial is still running once it has run this long (its line with
#: its score comes when it ends: on 30,000 photos the default trial alone can take minutes).
TRIAL_RUNNING_AFTER_S = 30.0


@contextlib.contextmanager
def _running_notice(verbose: int, number: int, config: Mapping[str, Any], deadline: float | None,
                    inputs: Sequence[Any] = ()):
    """Inside the block, when ``verbose``: one progress line if the trial is still running
    after :data:`TRIAL_RUNNING_AFTER_S` (what it trains, and when its share of the budget ends)."""
    if not verbose:
        yield
        return
    start = time.monotonic()

    def say() -> None:
        now = time.monotonic()
        ends = "" if deadline is None else f"; its share of the time limit ends in {max(0.0, deadline - now):.0f} s"
        _progress(f"trial {number}: running for {now - start:.0f} s ({_components(config, inputs)}){ends}")

    timer = threading.Timer(TRIAL_RUNNING_AFTER_S, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _components(config: Mapping[str, Any], inputs: Sequence[Any] = ()) -> str:
    """A trial's encoders and fusion for its progress lines: ``text_1 (description)=hashed_ngram,
    tabular=tabular; fusion=concat``. An input of one column (``inputs``: the data's ``InputSpec``
    list) is named with it, as its user knows it (:func:`~automm.components.stack.describe_encoders`)."""
    encoders = describe_encoders(config["encoders"], {spec.name: spec.columns for spec in inputs})
    return f"{encoders}; fusion={config['fusion']['name']}"


# ==========================================================================================
# The loop of one search process
# ==========================================================================================

#: automm heartbeats of running trials on storages with Optuna's heartbeats, as this process saw them:
#: (id of the storage, trial id) -> (the heartbeat, ``time.monotonic()`` when it was first seen so)
_BEATS_SEEN: dict[tuple[int, int], tuple[float, float]] = {}
_BEATS_SEEN_LOCK = threading.Lock()


def _beats_unchanged(storage, trials: Sequence[Any]) -> dict[int, float]:
    """Per running trial of ``trials`` with an automm heartbeat, the seconds this process has seen that
    heartbeat unchanged (0 at first sight), by this machine's clock alone: the time a heartbeat holds
    is its writer's clock, which may be off (Optuna's heartbeats, on an RDB storage, are the database's)."""
    now, key = time.monotonic(), id(storage)
    unchanged = {}
    with _BEATS_SEEN_LOCK:
        for t in trials:
            beat = t.system_attrs.get(_HEARTBEAT)
            if beat is None:
                continue
            seen = _BEATS_SEEN.get((key, t._trial_id))
            if seen is None or seen[0] != beat:
                seen = _BEATS_SEEN[key, t._trial_id] = (beat, now)
            unchanged[t._trial_id] = now - seen[1]
        for gone in [k for k in _BEATS_SEEN if k[0] == key and k[1] not in unchanged]:  # (finished trials)
            del _BEATS_SEEN[gone]
    return unchanged


def _fail_lost_trials(study, storage, heartbeats: bool = True) -> None:
    """Declare running trials whose heartbeat stopped (their worker died) failed, and queue a
    retry of each (for storages without heartbeats of their own). Without ``heartbeats`` (an RDB
    storage: Optuna's heartbeats find the others after their grace), only the trials whose
    process on this machine has ended, and those whose automm heartbeat this process has seen
    unchanged for the grace: a trial that ``optuna.copy_study`` copied while running (from a journal,
    or another database: Optuna's heartbeats are not copied, so Optuna never declares it lost, and
    it stayed running for good, counted towards ``n_trials`` and waited for by the fit). Not by the
    time the heartbeat holds, its worker's clock: a running trial of a machine whose clock was a
    minute behind was declared lost where Optuna's heartbeats, the database's time, kept it."""
    import optuna
    from optuna.trial import TrialState

    now = time.time()
    grace = max(_storage.heartbeat_grace(), 2 * _storage.heartbeat_interval())
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    unchanged = {} if heartbeats else _beats_unchanged(storage, running)
    for t in running:
        last = t.system_attrs.get(_HEARTBEAT) or 0.0
        if t.datetime_start is not None:
            last = max(last, t.datetime_start.timestamp())
        if _worker_is_gone(t.user_attrs.get(_ATTR + "worker"), t.user_attrs.get(_ATTR + "process_space")):
            reason = "worker lost: its process on this machine has ended"
        elif heartbeats and now - last > grace:
            reason = f"worker lost: no heartbeat for {now - last:.0f} s"
        elif unchanged.get(t._trial_id, 0.0) > grace:
            reason = f"worker lost: no heartbeat for {unchanged[t._trial_id]:.0f} s (seen unchanged here)"
        else:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, _ATTR + "reason", reason)
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            continue  # finished meanwhile, or another worker declared it lost first
        frozen = storage.get_trial(t._trial_id)
        _storage.retry_callback()(study, frozen)


@functools.lru_cache(maxsize=1)
def _process_space() -> str | None:
    """This machine's boot and process-id namespace (Linux): process ids name the same processes
    only between workers that share it (containers with one host name may not). None elsewhere."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _worker_is_gone(worker: str | None, process_space: str | None = None) -> bool:
    """Whether a trial's worker (``host:pid``, started in ``process_space``) was a process of
    this machine that has ended (a fit killed with ``kill -9`` and started again): its trial need
    not wait out the heartbeat grace. A process of another machine or process-id namespace, or
    one this user may not signal, counts as alive (the heartbeat decides)."""
    host, _, pid = (worker or "").rpartition(":")
    if (process_space is None or process_space != _process_space() or host != socket.gethostname()
            or not pid.isdigit() or int(pid) == os.getpid()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists
        pass
    return False


def _retry_interrupted(study) -> None:
    """Queue a retry of each trial that Ctrl-C cut short (as for a trial of a killed worker):
    it does not count towards ``n_trials``, and a resumed study trains it again."""
    _retry_failed(study, lambda t: t.user_attrs.get(_ATTR + "reason") in INTERRUPT_REASONS)


def _retry_failed(study, wanted: Callable[[Any], bool]) -> list[int]:
    """Queue a retry (Optuna's retry of a failed trial) of each failed trial not retried yet that
    ``wanted`` picks; the numbers of the trials retried."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = _retried_numbers(trials)
    retry = _storage.retry_callback()
    queued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried and wanted(t):
            retry(study, t)
            queued.append(t.number)
    return queued


def _stopped_by_time(reason: str) -> bool:
    """Whether a failed trial's ``reason`` is its deadline's: ``TimeLimitExceeded`` (features not all
    computed, the search's alarm) or ``TimeoutError`` (the linear, nearest-neighbour or
    gradient-boosted model stopped before its first result, or before it learned anything)."""
    return reason.startswith((TimeLimitExceeded.__name__, TimeoutError.__name__))


def _retry_stopped_presets(study) -> list[int]:
    """Queue a retry of each trial of the default or a preset (the linear, nearest-neighbour
    and gradient-boosted models, the pretrained variants) that an earlier run's time limit
    stopped (:func:`_stopped_by_time`: most often its encoders' features not all computed, the
    rest cached), as for a trial cut short
    by Ctrl-C, for a fit joining the study (run again to resume it): its configuration was not at
    fault, and a sampled trial never draws it again. Without it, a study whose linear model the
    first run's time limit stopped never had one. Optuna runs queued trials in the order they were
    queued: a retry runs after the presets the earlier runs queued and left, before any sampled
    trial. The numbers of the trials retried."""
    return _retry_failed(study, lambda t: (
        not foreign_trial(t) and (t.user_attrs.get(_ATTR + "default") or t.user_attrs.get(_ATTR + "preset") is not None)
        and _stopped_by_time(str(t.user_attrs.get(_ATTR + "reason") or ""))))


def _has_result(study) -> bool:
    from optuna.trial import TrialState

    return any((t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.state == TrialState.RUNNING)
               and not foreign_trial(t) for t in study.get_trials(deepcopy=False))


def _fail_trials_of(study, storage, workers: set[str], reason: str) -> None:
    """Mark the running trials of ``workers`` (host:pid) failed with ``reason``."""
    import optuna
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(_ATTR + "worker") in workers:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
                storage.set_trial_user_attr(t._trial_id, _ATTR + "reason", reason)
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


@contextlib.contextmanager
def study_kept(study, storage, who: str = "this fit"):
    """Raise :class:`SearchError` naming ``study`` where the storage no longer holds it (deleted,
    ``optuna.delete_study`` or ``optuna delete-study``, while ``who`` ran its trials), instead of
    the ``KeyError`` ("Record does not exist.") Optuna raises at the next read or write of it (or
    an error its bookkeeping raised while handling that one: an ``UnboundLocalError`` on SQLite)."""
    try:
        yield
    except Exception as exc:
        if in_chain(exc, KeyError) is None:
            raise
        try:
            storage.get_study_name_from_id(study._study_id)
        except KeyError:
            raise SearchError(f"study {study.study_name!r} was deleted from its storage while {who} ran its trials "
                              "(optuna.delete_study?): its trials went with it; run fit again to begin the "
                              "study anew") from None
        except Exception:  # noqa: BLE001 - the storage cannot tell: the original error stands
            pass
        raise


def register_fit(study, tag: str, status: str, n_trials: int | None = None, deadline_unix: float | None = None,
                 trial_seconds: float | None = None) -> None:
    """Record in ``study`` the fit ``tag`` (``host:pid/id``) as "running" with its budget, or as "done"."""
    study.set_user_attr(FIT_ATTR + tag, {"status": status, "n_trials": n_trials, "deadline_unix": deadline_unix,
                                         "trial_seconds": trial_seconds, "process_space": _process_space()})


def _running_fits(attrs: Mapping[str, Any]) -> list[dict] | None:
    """The budgets of the fits of a study still running; None when no fit has registered yet.
    A fit past its deadline is not running (it was stopped, or it concludes and starts no
    trial), nor is one of this machine whose process has ended (killed)."""
    fits = [(k[len(FIT_ATTR):].partition("/")[0], v) for k, v in attrs.items()  # (host:pid, entry)
            if k.startswith(FIT_ATTR) and isinstance(v, Mapping)]
    if not fits:
        return None
    now = time.time()
    return [f for tag, f in fits if f.get("status") == "running"
            and (f.get("deadline_unix") is None or float(f["deadline_unix"]) > now)
            and not _worker_is_gone(tag, f.get("process_space"))]


def fits_budget(attrs: Mapping[str, Any]) -> dict:
    """The budget a worker follows, from a study's user attributes ``attrs``: the latest deadline
    and the largest ``n_trials`` of the fits still running (None where one has none); empty when
    no fit runs or has registered."""
    return _budget_of(_running_fits(attrs) or [])


def _budget_of(running: Sequence[Mapping[str, Any]]) -> dict:
    if not running:
        return {}

    def largest(key: str) -> Any:
        values = [f.get(key) for f in running]
        return None if any(v is None for v in values) else max(values)

    return {"n_trials": largest("n_trials"), "deadline_unix": largest("deadline_unix"),
            "trial_seconds": largest("trial_seconds")}


def follow_fits(ctx: SearchContext, attrs: Mapping[str, Any]) -> bool:
    """A worker's budget (``ctx``'s deadline, ``n_trials`` and trial time) follows the fits
    sharing its study, from the study's user attributes ``attrs`` (a fit may join, or end,
    after the worker started); returns False when the fits have all finished."""
    running = _running_fits(attrs)
    if running is None:
        return True  # no fit yet: the worker started first
    if not running:
        return False
    budget = _budget_of(running)
    deadline = budget["deadline_unix"]
    ctx.deadline = None if deadline is None else time.monotonic() + (float(deadline) - time.time())
    ctx.hard_grace = max(ctx.hard_grace, hard_grace(ctx.deadline))
    ctx.settings.n_trials = budget["n_trials"]
    ctx.trial_seconds = budget["trial_seconds"]
    return True


def _stop_reason(study, ctx: SearchContext) -> str | None:
    """Why no further trial should start, or None. Near the deadline: when less than a quarter
    of a typical unpruned trial's time is left (at most 30 s), since a trial cut that short
    (or pruned) cannot join the result; pruned trials do not count as typical, so that a search
    that prunes most trials does not start one in its last seconds. A queued linear or
    nearest-neighbour model (:func:`_cheap_model_next`), which takes seconds whatever the networks
    do, still starts while more than half a second is left."""
    if ctx.interrupted.is_set():
        return "interrupted"
    if _systematic_failure(ctx) is not None:
        return "every trial failed the same way"
    if ctx.fit_tag is None and not follow_fits(ctx, study.user_attrs):
        return "the study is finished"
    if ctx.deadline is not None:
        remaining = ctx.deadline - time.monotonic()
        typical = float(np.median(ctx.durations)) if ctx.durations else 0.0
        if remaining <= max(0.5, min(30.0, 0.25 * typical)) and (ctx.attempts or _has_result(study)) \
                and (remaining <= 0.5 or not _cheap_model_next(study, ctx)):
            return "time limit reached"  # (the first trial of a study always starts: fit needs a model)
    if ctx.settings.n_trials is not None:
        if len(_budget_trials(study.get_trials(deepcopy=False))) >= ctx.settings.n_trials:
            return "n_trials reached"
    if _too_few_rows_to_sample(study, ctx):
        return FEW_ROWS_STOP
    return None


def _cheap_model_next(study, ctx: SearchContext) -> bool:
    """Whether the next trial to run is a queued linear or nearest-neighbour model
    (:func:`automm.trial_models.always_weighed`). Queued after the default when their features
    were not cached, they came after the trial computing them, in the last seconds of the budget:
    the nearest-neighbour model (a second) was not started with 4 s left, a quarter of the
    default's 25 s not being left (fashion usage, 1,500 rows, an empty cache, ``time_limit=72``)."""
    from optuna.trial import TrialState

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if not waiting:
        return False
    preset = min(waiting, key=lambda t: t.number).user_attrs.get(_ATTR + "preset")
    presets = ctx.space.presets
    return preset is not None and 0 <= int(preset) < len(presets) and always_weighed(presets[int(preset)])


def _too_few_rows_to_sample(study, ctx: SearchContext) -> bool:
    """Whether the search ends without sampling a configuration: the rows it ranks trials on are
    fewer than :data:`MIN_SELECTION_ROWS` (its validation rows; with a number of ``bag_folds``, the
    out-of-fold rows every bagged trial is scored on), the default and the presets queued have all
    started (none waits) and one of them has a result. The user's own search (``warm_start`` false)
    and a shared study (``storage``) sample as asked."""
    from optuna.trial import TrialState

    if not ctx.space.warm_start or ctx.outlives_fit or len(ctx.data.valid_index) >= MIN_SELECTION_ROWS:
        return False
    bag_folds = ctx.settings.bag_folds
    if _is_int(bag_folds) and bag_folds > 1 and rows_scored_on(ctx.data, bagged=True)[1] >= MIN_SELECTION_ROWS:
        return False
    return (not any(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False))
            and _has_result(study))


def _warn_few_rows(estimator, ctx: SearchContext, trials: Sequence[Any]) -> None:
    """Say that a search on fewer than :data:`MIN_SELECTION_ROWS` validation rows sampled no
    configuration, and what would let it."""
    data = ctx.data
    rows = len(data.valid_index)
    fix = f"pass X_val=, y_val= of {MIN_SELECTION_ROWS} rows or more"
    if data.holdout_given:
        what = f"the {rows} rows of X_val"
    elif np.array_equal(data.valid_index, data.train_index):
        what, fix = f"the {rows} training rows (too few to hold any out)", f"give more rows, or {fix}"
    else:
        n = len(data.targets)
        what = f"a holdout of {rows} rows (holdout_frac={estimator.holdout_frac} of {n})"
        needed = next((m for m in range(n, 100 * MIN_SELECTION_ROWS)
                       if round(estimator.holdout_frac * m) >= MIN_SELECTION_ROWS), None)
        if needed is not None:
            fix = f"give {needed} rows or more, or {fix}"
    budget = (f"time_limit={estimator.time_limit:g}" if estimator.time_limit is not None
              else f"n_trials={ctx.settings.n_trials}")
    warnings.warn(f"the search tried only the default configuration and its presets ({len(trials)} trials, "
                  f"{time.time() - ctx.started:.0f} s; {budget} allowed more): it ranks trials on {what}, fewer "
                  f"than {MIN_SELECTION_ROWS}, where a sampled configuration right on 1 of 2 rows by chance "
                  "outranks better ones (emoji, 17 rows: test accuracy 0.085 kept against the default's 0.311); "
                  "to search further, " + fix, AutoMMWarning, stacklevel=user_stacklevel())


def _systematic_failure(ctx: SearchContext) -> str | None:
    """The one reason of this process's first :data:`SYSTEMATIC_FAILURES` trials, when they all
    failed with it (see there), else None."""
    if ctx.succeeded or len(ctx.failures) < SYSTEMATIC_FAILURES or len(set(ctx.failures)) > 1:
        return None
    return ctx.failures[0]


def _worker_loop(ctx: SearchContext, study) -> int:
    """Run trials of ``study`` until its budget, the deadline or the study's end."""
    import optuna

    ran = 0
    while True:
        with ctx.interrupt_gate.closed():  # Ctrl-C lands in a trial's training, or after its records
            if ctx.heartbeat:
                _fail_lost_trials(study, ctx.storage)
            elif isinstance(ctx.storage, optuna.storages.RDBStorage):  # a killed process of this machine: at once
                _fail_lost_trials(study, ctx.storage, heartbeats=False)
            reason = _stop_reason(study, ctx)
            if reason is not None:
                ctx.stopped_by = reason
                return ran
            ctx.attempts += 1
            try:
                study.optimize(lambda trial: _objective(trial, ctx), n_trials=1, catch=(Exception,))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # this worker was declared lost meanwhile; its trial is retried elsewhere
            except Exception as exc:
                # Ctrl-C inside Optuna's bookkeeping of a trial (where the gate does not hold
                # it: a handler of the user's own) can surface as another error; it is still
                # the user's interrupt
                if during_interrupt(exc):
                    raise KeyboardInterrupt from exc
                failure = _storage_failure(exc)
                if failure is not None:  # (Optuna's bookkeeping hides it behind an AssertionError)
                    raise failure from None
                raise
        ran += 1
        release_memory()
        if getattr(study, "_stop_flag", False):  # study.stop() in the trial: a GridSampler whose grid is done
            return ran  # (Optuna's own loop ends there; this one called optimize for one trial and went on)


def _storage_failure(exc: BaseException) -> BaseException | None:
    """The :class:`automm.storage.StorageError` (a journal that cannot be written) among the
    exceptions that led to ``exc``, or None."""
    from .exceptions import in_chain
    from .storage import StorageError

    return in_chain(exc, StorageError)


@contextlib.contextmanager
def objects_kept_out_of_collections():
    """While the trials run, the objects alive before them (imported modules, the data, the
    study: some 250,000-370,000) are left out of the garbage collector's scans
    (``gc.freeze``), so that :func:`release_memory`'s full collection after each trial scans
    what the trials made, not the whole heap: 0.23-0.25 s per trial before, 0.06-0.08 s
    after (10 trials of 2 epochs on 200 emoji rows, 8-10 s in all). Nothing a trial makes is frozen. Left as it is
    where this process has frozen objects already (a server that froze them before forking):
    unfreezing would undo that."""
    import gc

    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_memory() -> None:
    """Free what the last trial left: its reference cycles now, and the C heap's free pages
    back to the system (glibc). Trials build models of very different sizes; without this
    the heap kept their freed memory (emoji text search, 100 s: resident 0.6-1.2 GB per
    trial without, 0.5-0.86 GB with)."""
    import gc

    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, loaded once; None where the C library is not glibc."""
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # macOS, musl, Windows: nothing to trim
        return None


#: ``prctl`` option: the signal a process gets when its parent ends (Linux).
_PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """End this forked search process when its parent ends without stopping it (SIGTERM from a
    job scheduler or ``timeout``, SIGKILL: their default actions run no cleanup), rather than
    train on, orphaned, for the rest of the time limit: on Linux at once (``PR_SET_PDEATHSIG``),
    elsewhere within a second (a thread watching the parent's process id). Its running trial
    is then retried as a lost worker's is (after the heartbeat grace)."""
    parent = getattr(multiprocessing.parent_process(), "pid", None) or os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            set_up = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
        except (OSError, AttributeError):
            set_up = False
        if set_up:
            if os.getppid() != parent:  # it ended before the request
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="automm-parent-watch", daemon=True).start()


def _stop_on_terminate() -> None:
    """Take SIGTERM in a forked search process as Ctrl-C (:func:`automm.interrupts.interrupt`): the
    process that forked it sends it when its search was interrupted (:func:`_stop_children`), and this
    one then records the trial it has trained in full, or the one in training as interrupted, before
    it ends (a trial's record is held by its :class:`InterruptGate`). Ended at once, it lost a trial it
    had just trained (its score shown), and one killed while writing the study's journal left the
    journal's lock held: every later write, the interrupted fit's too, waited
    :data:`automm.storage.JOURNAL_LOCK_GRACE` for it. Once the parent has ended (SIGTERM from
    ``PR_SET_PDEATHSIG``, :func:`_end_with_parent`), SIGTERM still ends the process at once."""
    parent = getattr(multiprocessing.parent_process(), "pid", None) or os.getppid()

    def on_terminate(signum, frame) -> None:
        if os.getppid() != parent:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        interrupt()

    signal.signal(signal.SIGTERM, on_terminate)


def _stop_children(children: Sequence[multiprocessing.Process], graceful: bool) -> list[int]:
    """End the forked search processes still running; their process ids. ``graceful`` (the search was
    interrupted): SIGTERM, which they take as Ctrl-C (:func:`_stop_on_terminate`), and up to
    :data:`CHILD_STOP_SECONDS` for them all to record their trials and end; else (a process still
    running past its trials' hard stop is stuck), and for those still running then, SIGKILL, also when
    a second Ctrl-C stops the wait."""
    alive = [child for child in children if child.is_alive()]
    try:
        if graceful:
            for child in alive:
                child.terminate()
            end = time.monotonic() + CHILD_STOP_SECONDS
            for child in alive:
                child.join(max(0.0, end - time.monotonic()))
    finally:
        for child in alive:
            if child.is_alive():
                child.kill()
                child.join()
    return [child.pid for child in alive]


def _child_main(ctx: SearchContext, storage_ref: tuple[str, Any], index: int, threads: int) -> None:
    """Entry point of a forked search process; it trains with ``threads`` threads, which must be 1:
    torch's OpenMP pool, once the parent has run it, hangs a forked child that starts more than
    one thread (a search with ``n_jobs=2`` on a 4-CPU machine lost its second process)."""
    import optuna

    # Ctrl-C in a terminal reaches the whole process group: the parent alone handles it (it
    # stops this process with SIGTERM, taken here as Ctrl-C, and records its running trial as interrupted)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_on_terminate()
    _end_with_parent()
    try:
        torch.set_num_threads(threads)
        ctx.storage = make_storage(*storage_ref)
        ctx.pool = ModelPool(ctx.pool.k, ctx.child_artifact_dir, ctx.pool.multi)
        ctx.durations = []
        ctx.attempts = 0
        ctx.worker_tag = process_tag()
        with optuna_quiet(ctx.settings.verbose):
            study = optuna.load_study(study_name=ctx.study_name, storage=ctx.storage,
                                      sampler=make_sampler(ctx.settings, index), pruner=make_pruner(ctx.settings))
            _worker_loop(ctx, study)
    except KeyboardInterrupt:  # stopped by the parent (_stop_on_terminate), its trials recorded: no traceback
        sys.exit(1)
    except BaseException:  # noqa: BLE001 - report, then leave with an error status
        traceback.print_exc()
        raise


def cuda_devices(data: PreparedData, requested: Any) -> list[torch.device]:
    if data.device.type != "cuda" or not torch.cuda.is_available():
        return []
    if isinstance(requested, str) and requested in ("auto", "cuda"):
        return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return [data.device]


def run_trial_loops(ctx: SearchContext, study, storage_ref: tuple[str, Any], n_jobs: int, devices: list[torch.device]) -> None:
    """Run the search in this process and, as asked, in forked processes or GPU threads. On
    Ctrl-C, or ``SystemExit`` (``sys.exit`` in a SIGTERM handler of the user's own, which Optuna
    lets through without recording the trial: it stayed running in the study until its heartbeat
    lapsed), the trials this process was running are recorded as interrupted (and, in a study that
    outlives the fit, queued for a retry) before the exception propagates."""
    try:
        _run_trials(ctx, study, storage_ref, n_jobs, devices)
    except (KeyboardInterrupt, SystemExit) as exc:
        ctx.interrupt(exc)
        _fail_trials_of(study, ctx.storage, {ctx.worker_tag}, ctx.interrupt_reason)
        if ctx.outlives_fit:
            _retry_interrupted(study)
        raise


def _gpu_slots(devices: list[torch.device], n_jobs: int) -> list[torch.device]:
    """The devices of the trials run at once on CUDA: one per GPU, or ``n_jobs`` when it asks for
    more (handed out round-robin, so several trials share a GPU; ``-1`` means one per GPU)."""
    count = max(len(devices), n_jobs if n_jobs > 0 else 0)
    return [devices[i % len(devices)] for i in range(count)]


def _run_trials(ctx: SearchContext, study, storage_ref: tuple[str, Any], n_jobs: int, devices: list[torch.device]) -> None:
    """Run the trials in this process, in one thread per GPU slot (:func:`_gpu_slots`) or, without
    GPUs and with ``n_jobs > 1``, in forked processes beside it."""
    # On CUDA, trials run in threads and never in forked processes: a process forked after this one
    # has used CUDA (the default trial already has) cannot use it.
    if devices:
        slots = _gpu_slots(devices, n_jobs)
        ctx.trials_at_once = len(slots)
        if len(slots) > 1:
            _run_in_threads(ctx, study, slots)
        else:
            _worker_loop(ctx, study)
    elif n_jobs > 1:
        _run_in_processes(ctx, study, storage_ref, n_jobs)
    else:
        _worker_loop(ctx, study)


def _run_in_threads(ctx: SearchContext, study, devices: list[torch.device]) -> None:
    """One trial loop per device, each in a thread of its own, the devices handed out by a queue;
    after Ctrl-C, the other threads' trials stop at their next batch."""
    ctx.device_queue = queue.Queue()
    for device in devices:
        ctx.device_queue.put(device)
    errors: list[BaseException] = []
    stopped: list[int] = []

    fits_cache = current_image_cache()  # the fit's decoded images, shared by its trial threads

    def loop(index: int) -> None:
        try:
            with shared_image_cache(fits_cache):
                _worker_loop(ctx, study)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stopped.append(index)

    def wait_for_threads() -> None:
        # polled, not Thread.join: a join interrupted by Ctrl-C can return early on later
        # calls (CPython before 3.13), before the thread has stopped
        while len(stopped) < len(threads):
            time.sleep(0.05)
        for t in threads:
            t.join()

    threads = [threading.Thread(target=loop, args=(i,), name=f"automm-gpu-{i}") for i in range(len(devices))]
    for t in threads:
        t.start()
    try:
        wait_for_threads()
    except (KeyboardInterrupt, SystemExit) as exc:  # the other threads' trials stop at their next batch
        ctx.interrupt(exc)
        try:
            wait_for_threads()
        except KeyboardInterrupt:  # Ctrl-C again: stop waiting, no result
            ctx.aborted = True
        raise
    if errors:
        raise errors[0]


def _run_in_processes(ctx: SearchContext, study, storage_ref: tuple[str, Any], n_jobs: int) -> None:
    """A trial loop here and in ``n_jobs - 1`` forked processes (:func:`_child_main`), which are
    stopped, and their running trials recorded, when this one's loop ends."""
    try:
        mp = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork run the trials here
        warnings.warn("n_jobs > 1 needs the 'fork' start method; running the trials in this process", AutoMMWarning,
                      stacklevel=user_stacklevel())
        _worker_loop(ctx, study)
        return
    threads = _forking_process_threads(n_jobs)
    ctx.trials_at_once = n_jobs
    previous = torch.get_num_threads()
    with contextlib.suppress(Exception):  # imported by the first optimizer: import once, before forking
        importlib.import_module("torch._dynamo")
    children = []
    try:
        for index in range(1, n_jobs):
            child = mp.Process(target=_child_main, args=(ctx, storage_ref, index, 1),
                               name=f"automm-search-{index}")
            child.start()
            children.append(child)
            ctx.child_tags.append(process_tag(child.pid))
        torch.set_num_threads(threads)
        try:
            _worker_loop(ctx, study)
            _join_children(ctx, children)
        except (KeyboardInterrupt, SystemExit) as exc:
            ctx.interrupt(exc)
            raise
    finally:
        torch.set_num_threads(previous)
        _end_children(ctx, study, children)


def _forking_process_threads(n_jobs: int) -> int:
    """The threads the process that forks ``n_jobs - 1`` search processes trains with: its share of
    the usable CPUs, never more than it was given; a warning when CPUs stay idle."""
    # never more threads than this process was given: a worker of scikit-learn's n_jobs (joblib
    # limits it to cpus // n_jobs), threadpoolctl's threadpool_limits or torch.set_num_threads
    cpus = usable_cpus()
    threads = max(1, min(cpus // n_jobs, torch.get_num_threads()))
    if threads > 1:  # (forked children train with one thread: see _child_main)
        warnings.warn(f"n_jobs={n_jobs} on {cpus} usable CPUs: each forked search process trains with 1 thread "
                      "(torch's thread pool hangs in a process forked after it ran), so most CPUs stay idle; "
                      f"n_jobs=-1 runs {cpus} processes, one per CPU", AutoMMWarning,
                      stacklevel=user_stacklevel())
    return threads


def _join_children(ctx: SearchContext, children: Sequence[multiprocessing.Process]) -> None:
    """Wait for the forked search processes to end, each until its trials' hard stop at most."""
    for child in children:
        # a child's stuck trial is interrupted hard_grace after the deadline and records its
        # failure in the study: terminated at that very moment, it died holding the journal's
        # lock, which every later write then waited JOURNAL_LOCK_GRACE for (time_limit=25: 44 s)
        timeout = None if ctx.deadline is None else max(
            1.0, ctx.deadline - time.monotonic() + ctx.hard_grace + CHILD_STOP_SECONDS)
        child.join(timeout)


def _end_children(ctx: SearchContext, study, children: Sequence[multiprocessing.Process]) -> None:
    """Stop the forked search processes still running and record the trials they were running as
    interrupted (after Ctrl-C) or stopped at the time limit. Ctrl-C again while they stop kills them:
    no result, and, as in :func:`_run_in_threads`, the first interrupt propagates once their trials
    are recorded."""
    interrupted = ctx.interrupted.is_set()  # (then an interrupt propagates: this runs in a finally)
    try:
        stopped = _stop_children(children, graceful=interrupted)
    except KeyboardInterrupt:
        ctx.aborted = True
        if not interrupted:
            raise
        stopped = []
    if interrupted:  # the trials the stopped processes were running
        _fail_trials_of(study, ctx.storage, {process_tag(child.pid) for child in children},
                        ctx.interrupt_reason)
    elif stopped:
        _fail_trials_of(study, ctx.storage, {process_tag(pid) for pid in stopped},
                        "stopped at the time limit (its process was terminated)")
    for child in children:  # its pipes closed now: the traceback of an interrupted search, which an
        with contextlib.suppress(ValueError):  # interactive shell keeps, held them open (ValueError: running)
            child.close()


# ==========================================================================================
# The study: creation, stored specification, fingerprints
# ==========================================================================================


def _directions(objectives: Sequence[str]) -> list[str]:
    return ["maximize"] + ["minimize"] * (len(objectives) - 1)


def _open_study(storage, study_name: str, settings: SearchSettings):
    import optuna

    wanted = _directions(settings.objectives)
    study = optuna.create_study(storage=storage, study_name=study_name, sampler=make_sampler(settings, 0),
                                pruner=make_pruner(settings), directions=wanted, load_if_exists=True)
    # an existing study keeps its own directions (load_if_exists): one the user created to
    # minimise would rank automm's scores upside down (its best trial the worst, its sampler and
    # pruner steering away from good configurations)
    found = [d.name.lower() for d in study.directions]
    # (a study automm created for other objectives: prepare_study names them, not a study to create anew)
    if found != wanted and FINGERPRINT_ATTR not in study.user_attrs:
        raise InputError(f"study_name: study {study_name!r} in this storage was created to {' and '.join(found)} "
                         f"its values; automm's search of {', '.join(settings.objectives)} needs "
                         f"{' and '.join(wanted)} (every score is higher-is-better: an error metric such as rmse "
                         "is stored negated); create it with "
                         f"{'direction=' + repr(wanted[0]) if len(wanted) == 1 else 'directions=' + repr(wanted)}, "
                         "or choose another study_name")
    return study


# ==========================================================================================
# fit's search
# ==========================================================================================

def _trial_seconds(settings: SearchSettings, deadline: float | None) -> float | None:
    """With a time limit and room for several trials: the search's time x TRIAL_TIME_FRACTION."""
    if deadline is None or settings.n_trials == 1:
        return None
    return max(1.0, TRIAL_TIME_FRACTION * (deadline - time.monotonic()))


def hard_grace(deadline: float | None) -> float:
    """Seconds a trial may run past the search's deadline (finishing the epoch's evaluation)
    before it is interrupted: 5% of the remaining budget, at least 10 s."""
    if deadline is None:
        return MIN_HARD_GRACE
    return max(MIN_HARD_GRACE, 0.05 * (deadline - time.monotonic()))


def _settings_from(estimator, data: PreparedData) -> SearchSettings:
    n_trials = estimator.n_trials
    if n_trials is None and estimator.time_limit is None:
        n_trials = DEFAULT_N_TRIALS
        if getattr(estimator, "_automm_worker", None) is None:
            warnings.warn(f"a search with neither n_trials nor time_limit runs {DEFAULT_N_TRIALS} trials, each trained "
                          "to the end, which may take long; pass time_limit= (seconds for the whole fit) or n_trials= "
                          "to bound it", AutoMMWarning, stacklevel=user_stacklevel())
    objectives = _objectives(estimator.objectives)
    return SearchSettings(objectives=objectives, sampler=estimator.sampler,
                     pruner=estimator.pruner, seed=int(data.seed),  # random_state's, or the seed drawn for this fit
                     n_trials=n_trials, ensemble_size=resolved_ensemble_size(estimator),
                     max_epochs=int(estimator.max_epochs), verbose=int(estimator.verbose or 0),
                     bag_folds=1 if len(objectives) > 1 else estimator.bag_folds)


def trial_loops(n_jobs: int | None, devices: Sequence[torch.device]) -> int:
    """How many trials run at once for ``n_jobs`` (a fit's or a worker's): -1 is one process per
    usable CPU (:func:`~automm.process_state.usable_cpus`: a container's quota, the affinity mask), or
    on CUDA (``devices``) left as -1 for :func:`_gpu_slots` (one thread per GPU); None is 1."""
    if n_jobs == -1:
        return -1 if devices else usable_cpus()
    return 1 if n_jobs is None else int(n_jobs)


def run_search(estimator, data: PreparedData, config: dict, deadline: float | None,
               graceful: bool = True) -> Candidate:
    """Search (see the module documentation) and return the chosen candidate; its ``extras``
    hold the estimator's result attributes (:data:`RESULT_ATTRIBUTES`). Without ``graceful``,
    Ctrl-C propagates (after recording the interrupted trials) instead of ending the search."""
    worker = getattr(estimator, "_automm_worker", None)
    if worker is not None:
        from .worker import run_worker_with_data

        raise WorkerFinished(run_worker_with_data(worker, data, estimator))

    importlib.import_module("optuna")  # (imported before _too_slow_encoders weighs the time left)
    _check_plot_dir(estimator.plot_dir)
    settings = _settings_from(estimator, data)
    space, pending_work = _space_in_time(estimator, data, config, deadline)
    spec = study_spec(estimator, data, space, settings)
    data_fp = data_fingerprint(data)
    shared = estimator.storage is not None
    # (a study no fit resumes: named after the seed used, given or drawn, so that a seed repeats the search)
    fingerprint = search_fingerprint(spec, data_fp, data.metric, seed=None if shared else data.seed)
    devices = cuda_devices(data, estimator.device)
    # on CUDA, -1 is one trial per GPU (_gpu_slots), not one per CPU core
    n_jobs = trial_loops(estimator.n_jobs, devices)
    kind, value = parse_storage(estimator.storage)
    with _search_folder() as tmpdir:
        if kind == "memory" and n_jobs > 1 and not devices:  # processes share a study through a file
            kind, value = "journal", os.path.join(tmpdir, "study.log")
        study_name = estimator.study_name or default_study_name(fingerprint, spec)
        storage = make_storage(kind, value)
        ctx = _search_context(estimator, data, space, settings, storage, kind != "memory", study_name, deadline,
                              tmpdir, pending_work)
        with optuna_quiet(settings.verbose), contextlib.ExitStack() as kept:
            _check_sampler_draws(ctx)
            study = _open_study(storage, study_name, settings)
            kept.enter_context(study_kept(study, storage))
            _join_study(estimator, study, ctx, spec, fingerprint, data_fp, deadline)
            _run_fit_trials(study, ctx, (kind, value), n_jobs, devices, graceful)
            _after_trials(estimator, study, ctx, deadline)
            # after Ctrl-C, nothing is retrained: the user asked for the result now
            result = _conclude(estimator, study, ctx, time.monotonic() if ctx.interrupted.is_set() else deadline)
        result.extras["study_name_"] = study_name
        result.interrupted = result.interrupted or ctx.interrupted.is_set()
        return result


def _check_plot_dir(plot_dir: str | os.PathLike | None) -> None:
    """Before the trials: an :class:`InputError` for a ``plot_dir`` that cannot be made or written."""
    # a search is not run for plots it cannot write (without matplotlib, none are written, and the
    # end of the search says so: no empty folder made); the folders made to find out are removed
    # again, and made by write_plots once there are plots: a search whose every trial fails
    # (SearchError) leaves no empty folder behind
    if plot_dir is None or importlib.util.find_spec("matplotlib") is None:
        return
    made = _missing_folders(Path(plot_dir))
    try:
        try:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"plot_dir: cannot create the folder {str(plot_dir)!r} "
                             f"({type(exc).__name__}: {exc.strerror or exc})") from None
        _check_plot_dir_writable(plot_dir)
    finally:
        for folder in made:  # deepest first; only while empty (rmdir deletes nothing else)
            with contextlib.suppress(OSError):
                folder.rmdir()


def _space_in_time(estimator, data: PreparedData, config: dict,
                   deadline: float | None) -> tuple[SearchSpace, float]:
    """The search's space, without the encoders whose one-off work would not fit the time limit
    (:func:`_too_slow_encoders`, warned about), and the estimated seconds of the work kept."""
    space_without = functools.partial(SearchSpace.from_estimator, estimator, data.inputs, config, data.device.type,
                                      data.n_outputs, data.problem_type)
    space = space_without()
    pending_work = 0.0
    if estimator.storage is None:  # a shared study's space must not depend on one machine's cache
        left_out, pending_work = _too_slow_encoders(data, space, deadline)
        if left_out:
            _warn_too_slow(left_out, pending_work, estimator.time_limit, deadline, data.inputs)
            space = space_without(leave_out=left_out)
    return space, pending_work


@contextlib.contextmanager
def _search_folder():
    """A temporary folder of this search (its study journal, its processes' models), held while the
    search runs and removed after it; dead searches' folders are removed first."""
    _remove_dead_searches_folders()
    tmpdir = tempfile.mkdtemp(prefix=f"{_SEARCH_TMP_PREFIX}{os.getpid()}-")
    owner = _hold_search_folder(tmpdir)
    try:
        yield tmpdir
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        if owner is not None:
            os.close(owner)


def _search_context(estimator, data: PreparedData, space: SearchSpace, settings: SearchSettings, storage,
                    stored: bool, study_name: str, deadline: float | None, tmpdir: str,
                    pending_work: float) -> SearchContext:
    """The context of a fit's search (``stored``: its study is not in memory)."""
    ctx = SearchContext(data=data, space=space, settings=settings, storage=storage, study_name=study_name,
                        deadline=deadline, pool=ModelPool(settings.models_kept, None, len(settings.objectives) > 1),
                        callbacks=estimator._extra_callbacks(),
                        heartbeat=stored and own_heartbeats(storage),
                        outlives_fit=estimator.storage is not None,  # the same fit run again resumes it
                        child_artifact_dir=os.path.join(tmpdir, "models"),
                        worker_tag=process_tag(),
                        hard_grace=hard_grace(deadline), trial_seconds=_trial_seconds(settings, deadline),
                        pending_work=pending_work)
    ctx.fit_tag = f"{ctx.worker_tag}/{uuid.uuid4().hex[:8]}"  # (two fits of one process: two entries)
    return ctx


def _join_study(estimator, study, ctx: SearchContext, spec: Mapping[str, Any], fingerprint: str, data_fp: str,
                deadline: float | None) -> None:
    """Make ``study`` this fit's: its specification stored or checked (a resumed study's holdout
    split kept), the trials to retry and retrain, this fit registered as running, its sampler's
    seed, and the queue of the default and presets."""
    shared = ctx.outlives_fit
    stored = prepare_study(study, spec, fingerprint, data_fp,
                           lambda: data_payload(ctx.data, estimator.column_roles_) if shared else None)
    if stored is not None:  # resuming: keep the study's holdout split
        ctx.data = with_stored_split(ctx.data, stored)
        estimator.seed_ = ctx.data.seed
    stopped = _retry_stopped_presets(study)
    # the trials already in the study whose models the end of the search retrains: their time is kept
    reserve, retrained = _retraining_reserve(study, ctx, deadline)
    if reserve:
        ctx.deadline = deadline - reserve
        ctx.trial_seconds = _trial_seconds(ctx.settings, ctx.deadline)
        ctx.hard_grace = hard_grace(ctx.deadline)
    remaining = None if ctx.deadline is None else ctx.deadline - time.monotonic()
    register_fit(study, ctx.fit_tag, "running", ctx.settings.n_trials,
                 None if remaining is None else time.time() + remaining, ctx.trial_seconds)
    _reseed_sampler(study, ctx)
    if shared and ctx.settings.verbose:  # while workers can still help: the name they need (the storage
        # not written out: a recipe may give it through ${NAME} to keep it out of logs)
        _progress(f"study {ctx.study_name!r}: more processes join it with: automm worker --storage "
                  f"<this fit's storage> --study {shlex.quote(ctx.study_name)}")
        note = _resumed_note(study, ctx.settings, reserve, retrained, stopped)
        if note is not None:
            _progress(note)
    _check_enqueued(study, ctx)  # (the user's queued trials run first, before automm's below)
    if ctx.space.warm_start and not any(t.user_attrs.get(_ATTR + "default")
                                        for t in study.get_trials(deepcopy=False)):
        for attrs in _warm_start_queue(ctx.space, _cheap_first(ctx.data, ctx.space, deadline, ctx.settings.n_trials),
                                       time_limited=deadline is not None):
            study.enqueue_trial({}, user_attrs=attrs)


def _reseed_sampler(study, ctx: SearchContext) -> None:
    """A seed of its own for the sampler of a fit joining a study that earlier fits ran
    (:func:`_resumed_sampler_seed`); the trial processes it forks seed theirs from ``ctx.settings``."""
    import optuna

    resumed = _resumed_sampler_seed(study, ctx.settings, ctx.fit_tag)
    if resumed is not ctx.settings:
        ctx.settings = resumed
        study.sampler = make_sampler(resumed, 0)
        if isinstance(resumed.sampler, optuna.samplers.BaseSampler):  # a copy of the user's, as seeded
            study.sampler.reseed_rng()


def _run_fit_trials(study, ctx: SearchContext, storage_ref: tuple[str, Any], n_jobs: int,
                    devices: list[torch.device], graceful: bool) -> None:
    """The fit's trials (:func:`run_trial_loops`), its entry in the study marked done after them.
    Ctrl-C ends them, and propagates only without ``graceful``, after a second Ctrl-C, or when no
    trial this process can use the model of finished."""
    try:
        with objects_kept_out_of_collections():
            run_trial_loops(ctx, study, storage_ref, n_jobs, devices)
    except KeyboardInterrupt:
        if not graceful or ctx.aborted:
            raise
        usable = _usable_trials(study.get_trials(deepcopy=False))
        if not any(_at_hand(t, ctx) for t in usable):  # nothing retrained after Ctrl-C
            if usable:  # a resumed study's trials: their models are in the processes that trained them
                n = len(usable)
                warnings.warn(f"search interrupted (KeyboardInterrupt) before this fit finished a trial: "
                              f"the {n} finished trial{'s' if n != 1 else ''} of study {ctx.study_name!r} "
                              f"{'was' if n == 1 else 'were'} trained by other processes, whose models are "
                              "not here; run the same fit again to resume the study", AutoMMWarning,
                              stacklevel=user_stacklevel())
            raise
    finally:
        with contextlib.suppress(Exception):
            register_fit(study, ctx.fit_tag, "done")


def _after_trials(estimator, study, ctx: SearchContext, deadline: float | None) -> None:
    """Between the fit's last trial and its result: the trials of other processes waited for (a
    shared study), and the warnings about how the trials went."""
    if not ctx.interrupted.is_set() and ctx.stopped_by == FEW_ROWS_STOP:
        _warn_few_rows(estimator, ctx, _budget_trials(study.get_trials(deepcopy=False)))
    if ctx.outlives_fit and not ctx.interrupted.is_set():
        _wait_for_other_trials(study, ctx, deadline)
    if ctx.interrupted.is_set():
        finished = len(_usable_trials(study.get_trials(deepcopy=False)))
        warnings.warn(f"search interrupted (KeyboardInterrupt): the model is chosen from the {finished} "
                      f"trial{'s' if finished != 1 else ''} finished so far (leaderboard_ lists every trial)",
                      AutoMMWarning, stacklevel=user_stacklevel())
    _warn_inert_named_augmentations(estimator, study.get_trials(deepcopy=False), ctx)


def _check_sampler_draws(ctx: SearchContext) -> None:
    """An Optuna sampler object given as ``sampler`` that cannot draw a configuration of this
    search's space, where a random draw can (a ``GridSampler`` whose grid lacks a parameter the
    space suggests, a ``BruteForceSampler`` over continuous ranges): an :class:`InputError`
    before any trial, instead of every sampled trial failing with it (the failure blamed on a
    component's search space). A draw on a copy of it, in a study of its own, builds no model."""
    import optuna

    sampler = ctx.settings.sampler
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        return

    try:
        _suggest(ctx, _probe_trial(ctx, copied_sampler(sampler)))
    except Exception as exc:  # noqa: BLE001 - whatever the sampler raised, told apart by a random draw below
        try:
            trial = _probe_trial(ctx, optuna.samplers.RandomSampler(seed=0))
            _suggest(ctx, trial)
        except Exception:  # noqa: BLE001 - the space fails whatever draws it: the trials record why
            return
        cause = exc
        while cause.__cause__ is not None:  # (a component's search space wraps Optuna's error)
            cause = cause.__cause__
        raise InputError(f"sampler: {type(sampler).__name__} cannot draw a configuration of this search's space "
                         f"({type(cause).__name__}: {cause}); a random draw of it suggests "
                         f"{_shown_names(list(trial.params))} (the names of "
                         "leaderboard_'s 'params'); a sampler given as an object must draw every parameter "
                         "the space suggests") from None


def _suggest(ctx: SearchContext, trial) -> dict:
    """The configuration ``trial`` draws from this search's space, on the search's device (a
    component's space may depend on it: fine-tuning only on a GPU)."""
    with device_scope(ctx.data.device):
        return ctx.space.suggest(trial, frozen=lambda c: all_encoders_frozen(ctx.data.inputs, c),
                                 augmentable=lambda c: augmentable_modalities(ctx.data.inputs, c))


def _probe_trial(ctx: SearchContext, sampler, values: Mapping[str, Any] | None = None):
    """A trial of ``sampler`` in an in-memory study of its own (queued with ``values``), to draw
    the space without building a model or touching the search's study."""
    import optuna

    probe = optuna.create_study(sampler=sampler, directions=_directions(ctx.settings.objectives))
    if values:
        probe.enqueue_trial(dict(values))
    return probe.ask()


def _shown_names(names: Sequence[str]) -> str:
    """Parameter names for a message: the first eight, and how many in all."""
    return ", ".join(repr(n) for n in names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def _enqueued_values(trial) -> dict:
    """The values ``trial`` was queued with by the study's user (``study.enqueue_trial``): Optuna
    keeps them as its ``fixed_params``; automm's own queued trials hold none."""
    from optuna.trial import FrozenTrial

    # (a running Trial's from its storage: its system_attrs, deprecated, warns in Optuna 4 and is gone in 5)
    attrs = (trial.system_attrs if isinstance(trial, FrozenTrial)
             else trial.storage.get_trial_system_attrs(trial._trial_id))
    fixed = attrs.get("fixed_params")
    return dict(fixed) if isinstance(fixed, Mapping) else {}


def _space_distributions(ctx: SearchContext,
                         fixed: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], set[str]]:
    """The parameters this search's space suggests, with their distributions: the union of draws
    that take each categorical parameter's choices in turn (every encoder, fusion and
    augmentation), and of draws given the values ``fixed`` (the branches they choose: a frozen
    learning rate where they fix every encoder to a frozen one), each in a study of its own (no
    model built); and the names that the draws given ``fixed`` suggest (where one draw leaves out
    some of ``fixed``'s names, again with each choice ``fixed`` leaves open taken in turn): a name
    of ``fixed`` outside them belongs to a branch that ``fixed``'s own choices leave out. A draw
    the space fails adds nothing (the trials record why)."""
    import optuna

    found: dict[str, Any] = {}

    class Turns(optuna.samplers.RandomSampler):
        def __init__(self, turn: int):
            super().__init__(seed=turn)
            self.turn = turn

        def sample_independent(self, study, trial, name, distribution):
            if isinstance(distribution, optuna.distributions.CategoricalDistribution):
                return distribution.choices[self.turn % len(distribution.choices)]
            return super().sample_independent(study, trial, name, distribution)

    def draw(sampler, values=None) -> set[str]:
        trial = _probe_trial(ctx, sampler, values)
        # Optuna's own about a fixed value out of range (reported by name) left out: a filter shared by
        # the trial threads (warnings.catch_warnings in two at once left every warning ignored for good)
        with warnings_left_out(UserWarning, "Fixed parameter"):
            try:
                _suggest(ctx, trial)
            except Exception:  # noqa: BLE001 - the draw's parameters so far still count
                pass
        found.update({name: d for name, d in trial.distributions.items() if name not in found})
        return set(trial.distributions)

    def turns() -> int:
        return max([1] + [len(d.choices) for d in found.values()
                          if isinstance(d, optuna.distributions.CategoricalDistribution)])

    turn = 0
    while turn < turns():
        draw(Turns(turn))
        turn += 1
    reached: set[str] = set()
    if fixed:
        # a value outside its distribution would fail these draws where Optuna checks it: drawn
        # without those, so that the names after them still count
        usable = {name: value for name, value in fixed.items()
                  if name not in found or _value_problem(value, found[name]) is None}
        reached = draw(optuna.samplers.RandomSampler(seed=0), usable)
        turn = 0
        while turn < turns() and any(name in found and name not in reached for name in fixed):
            reached |= draw(Turns(turn), usable)
            turn += 1
    return found, reached


def _value_problem(value: Any, distribution: Any) -> str | None:
    """Why ``value`` is no value of ``distribution`` (an Optuna distribution), or None."""
    import optuna

    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        try:
            distribution.to_internal_repr(value)
        except (ValueError, TypeError):
            return f"not one of its choices ({', '.join(map(repr, distribution.choices))})"
        return None
    try:
        inside = distribution.low <= value <= distribution.high
    except TypeError:
        inside = False
    return None if inside is True else f"outside its range [{distribution.low:g}, {distribution.high:g}]"


@dataclass
class _QueuedProblems:
    """What is wrong with the values a user queued a trial with (:func:`_enqueued_problems`)."""

    bad: list[str]  # "'name' = value is ..." for each value its parameter cannot take
    unknown: list[str]  # names the space never suggests
    ignored: list[str]  # names of a branch the queued choices leave out
    choices: list[str]  # "'name' = value" for each queued choice of the space (a categorical parameter)
    names: list[str]  # the names the space suggests


def _enqueued_problems(ctx: SearchContext, fixed: Mapping[str, Any]) -> _QueuedProblems:
    """What is wrong with the values a user queued a trial with (``study.enqueue_trial``): each
    value its parameter cannot take (Optuna fails the trial on a categorical one, naming no
    parameter, and trains with a number out of range), the names this search's space never
    suggests and those of a branch the queued choices leave out (a fusion's parameter where they
    choose another fusion), both of which Optuna ignores without a word."""
    import optuna

    space, reached = _space_distributions(ctx, fixed)
    ignored = [name for name in fixed if name in space and name not in reached]
    problems = {name: _value_problem(value, space[name]) for name, value in fixed.items()
                if name in space and name not in ignored}
    return _QueuedProblems(
        bad=[f"{name!r} = {fixed[name]!r} is {problem}" for name, problem in problems.items() if problem is not None],
        unknown=[name for name in fixed if name not in space], ignored=ignored,
        choices=[f"{name!r} = {fixed[name]!r}" for name, problem in problems.items()
                 if problem is None and isinstance(space[name], optuna.distributions.CategoricalDistribution)],
        names=list(space))


def _check_enqueued(study, ctx: SearchContext) -> None:
    """Before any trial: warn about the trials the study's user queued (``study.enqueue_trial``,
    run first) with names this search's space never suggests or that its queued choices leave
    unused, which Optuna ignores, and with values their parameters cannot take, which fail their
    trials."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        fixed = _enqueued_values(t)
        if not fixed or any(key.startswith(_ATTR) for key in t.user_attrs):
            continue
        found = _enqueued_problems(ctx, fixed)
        if found.unknown:
            warnings.warn(f"study {ctx.study_name!r}: trial {t.number} was queued with "
                          f"{', '.join(map(repr, found.unknown))}, which this search's space never suggests: Optuna "
                          f"ignores {'it' if len(found.unknown) == 1 else 'them'} (the space's parameters: "
                          f"{_shown_names(found.names)}; the names of leaderboard_'s 'params')", AutoMMWarning,
                          stacklevel=user_stacklevel())
        if found.ignored:
            one = len(found.ignored) == 1
            chosen = f" ({', '.join(found.choices)})" if found.choices else ""
            warnings.warn(f"study {ctx.study_name!r}: trial {t.number} was queued with "
                          f"{', '.join(map(repr, found.ignored))}, which its own choices{chosen} leave unused: "
                          f"{'a parameter' if one else 'parameters'} of a branch of the space they leave out "
                          "(another encoder or fusion, an augmentation turned off), which Optuna ignores (queue "
                          f"the choice {'it belongs' if one else 'they belong'} to, or leave {'it' if one else 'them'} "
                          "out)",
                          AutoMMWarning, stacklevel=user_stacklevel())
        if found.bad:
            warnings.warn(f"study {ctx.study_name!r}: trial {t.number} was queued with values its parameters cannot "
                          f"take, {'; '.join(found.bad)}: it will fail "
                          "(queue values of the search's space, or widen search_space)", AutoMMWarning,
                          stacklevel=user_stacklevel())


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest first: what
    ``folder.mkdir(parents=True)`` would make."""
    missing = []
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _check_plot_dir_writable(plot_dir: str | os.PathLike) -> None:
    """An existing ``plot_dir`` that no file can be written in (a read-only folder or file
    system): an :class:`InputError` before the trials, not warnings after the whole search."""
    from .files import create_temporary

    try:
        descriptor, probe = create_temporary(Path(plot_dir) / "optimization_history.png")
    except OSError as exc:
        raise InputError(f"plot_dir: cannot write in the folder {str(plot_dir)!r} "
                         f"({type(exc).__name__}: {exc.strerror or exc})") from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _resumed_sampler_seed(study, settings: SearchSettings, fit_tag: str) -> SearchSettings:
    """``settings`` with a seed of its own for a fit that joins a study earlier fits ran (run
    again to resume it, or the same fit started on another machine): seeded as theirs, its
    sampler would draw their configurations again (the random first trials of TPE, NSGA-II's
    first generation), and train the same models to the same scores. A new study's first fit
    keeps the seed, so a seeded search repeats."""
    earlier = sum(1 for key in study.user_attrs if key.startswith(FIT_ATTR) and key != FIT_ATTR + fit_tag)
    if not earlier:
        return settings
    # (by its tag, not by how many fits came before: two fits started at once each count the other)
    return replace(settings, seed=tagged_seed(settings.seed, fit_tag))


def process_tag(pid: int | None = None) -> str:
    """A process's ``host:pid`` (this one's, or its child's ``pid`` on this host): the worker tag its
    trials record, and what its sampler seed is told apart by (:func:`tagged_seed`)."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def tagged_seed(seed: int, tag: str) -> int:
    """``seed`` moved on by a digest of ``tag`` (a fit's ``host:pid/id``, a worker's ``host:pid``):
    a sampler seed of its own for each process that joins a study, so that two of them given the
    same ``random_state`` draw other configurations (two workers started in containers are each
    pid 1, on hosts of their own; a seed from the pid alone was the same for both)."""
    digest = int.from_bytes(hashlib.sha256(tag.encode("utf-8")).digest()[:8], "big")
    return (seed + digest) % (2**31 - 1)


def _wait_for_other_trials(study, ctx: SearchContext, deadline: float | None) -> None:
    """Before a shared study's fit builds its model: wait for the trials other processes (workers,
    other fits) are still running, which count towards ``n_trials`` (up to the deadline and its
    grace; a lost worker's trial is declared failed by the heartbeats meanwhile)."""
    import optuna
    from optuna.trial import TrialState

    # the trials running now in worker processes (not those of other fits, which build their own
    # models and go on to their own budgets)
    fits = _fit_tags(study)
    waited = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
              if t.user_attrs.get(_ATTR + "worker") not in fits}
    said = False
    while True:
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.number in waited]
        if not running or (deadline is not None and time.monotonic() > deadline + ctx.hard_grace):
            return
        if ctx.heartbeat:
            _fail_lost_trials(study, ctx.storage)
        elif isinstance(ctx.storage, optuna.storages.RDBStorage):
            _fail_lost_trials(study, ctx.storage, heartbeats=False)
            optuna.storages.fail_stale_trials(study)
        if not said and ctx.settings.verbose:
            _progress(f"waiting for {len(running)} trial{'s' if len(running) > 1 else ''} running in other processes "
                      f"({', '.join(str(t.number) for t in running)})")
            said = True
        time.sleep(0.5)


_SEARCH_TMP_PREFIX = "automm-search-"


_OWNER_LOCK = ".owner.lock"
#: A search folder's lock file younger than this is never taken for a dead search's (between
#: making the file and locking it, its search holds no lock yet).
_OWNER_LOCK_GRACE_S = 60.0


def _hold_search_folder(tmpdir: str) -> int | None:
    """An exclusive flock on ``tmpdir``'s owner file, held (with the descriptor) for the search's
    life: the kernel (or the NFS lock manager) drops it when the process ends, however it ends,
    whatever PID namespace or host looks. None where there is no flock (Windows)."""
    from .persistence import exclusive_lock

    return exclusive_lock(os.path.join(tmpdir, _OWNER_LOCK), create=True)


def _remove_dead_searches_folders() -> None:
    """Delete the temporary folders (study journal, trial models) of searches whose process has
    ended without its ``finally`` (SIGKILL, a power cut): a folder whose owner lock nobody holds.
    A folder without one (being created, an older automm's), and one whose lock file is younger
    than :data:`_OWNER_LOCK_GRACE_S` (its search may not hold the lock yet), is left alone."""
    from .persistence import exclusive_lock

    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        lock = os.path.join(entry.path, _OWNER_LOCK)
        try:
            if (not entry.name.startswith(_SEARCH_TMP_PREFIX) or not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_uid != os.getuid()
                    or time.time() - os.stat(lock, follow_symlinks=False).st_mtime < _OWNER_LOCK_GRACE_S):
                continue
        except (OSError, AttributeError):  # no lock file; no getuid (Windows, where there is no flock either)
            continue
        held = exclusive_lock(lock)  # None: its search is alive (or no flock here)
        if held is not None:
            try:
                shutil.rmtree(entry.path, ignore_errors=True)
            finally:
                os.close(held)


#: The share of a time-limited search's time that the encoders' one-off work (frozen features
#: not yet cached) may be estimated to take; an encoder whose work would take more is left out of
#: that search (:func:`_too_slow_encoders`). The features are computed inside a trial, which
#: gets its share (a preset's, :data:`WARM_START_TIME_FRACTION`) and :data:`PENDING_MARGIN` times
#: the work's estimate, the from-scratch default before it leaving that much (:func:`_trial_deadline`):
#: work that outlasts it fails its trial and leaves no model trained on those features (fashion
#: subCategory, an empty cache, ``time_limit=150``: EfficientNet-Lite0's 7,563 photos kept, the
#: frozen trial stopped at its 71-s share with the features unfinished, 14 test errors; left out,
#: 12). The estimate runs at or a little above the real cost (``bench_pretrained.py --parts
#: throughput``, 2 CPU cores, fashion: EfficientNet-Lite0 0.96x, MiniLM 1.3-1.4x), but below it on a
#: machine that got busier (0.5-0.8x: 1,500 fashion photos estimated at 36 s took 69 s).
PENDING_TIME_SHARE = WARM_START_TIME_FRACTION
#: How much longer than estimated the one-off work may take in the trial that does it, which must also
#: fit its model after it: the estimate varies by some 10% from fit to fit (timed on a few values).
PENDING_MARGIN = 1.25
#: The share of a time-limited search's time that estimating the encoders' one-off work may take.
PROBE_TIME_SHARE = 0.1


def _too_slow_encoders(data: PreparedData, space: SearchSpace, deadline: float | None
                       ) -> tuple[dict[str, dict[str, float]], float]:
    """Encoder choices to leave out of a time-limited search because their one-off work on this
    data would not fit in it: ``({input: {encoder: estimated seconds}}, estimated seconds of the
    work of the choices kept)``.

    Every choice with work pending (:func:`automm.pipeline.pending_seconds`: frozen features not
    in the cache, e.g. a pretrained text encoder on 100,000 new texts) is estimated; the cheapest
    are kept while their sum stays within :data:`PENDING_TIME_SHARE` of the time left, the rest
    are left out, but never an input's last choice. One choice (encoder and fixed settings) on
    several inputs computes a value they share once (the feature cache is keyed by content: a
    matching task's two photo columns drawn from one catalogue), so an input's estimate counts only
    the values that no input kept with that choice holds. Without a deadline, nothing is left out."""
    if deadline is None:
        return {}, 0.0
    estimates = []
    # the estimates themselves (a frozen network loaded and run on a few values) take a share of
    # the budget at most: on a loaded machine they took 35 s of time_limit=20; a choice that
    # cannot even be timed within it is too slow for the search
    probe_seconds = max(0.5, PROBE_TIME_SHARE * (deadline - time.monotonic()))
    for input_name, choices in space.description["encoders"].items():
        for name, params in choices.items():
            config = {"encoders": {input_name: {"name": name, **_fixed_values(params)}}}
            probe_deadline = time.monotonic() + probe_seconds  # each choice its own window
            try:
                with hard_stop(probe_deadline), deadline_scope(probe_deadline):
                    seconds = pending_seconds(data, config).get(input_name, 0.0)
            except TimeLimitExceeded:
                seconds = math.inf
            except Exception:  # noqa: BLE001 - an estimate that fails leaves the choice in
                continue
            if seconds > 0:
                choice = repr(sorted(config["encoders"][input_name].items()))
                estimates.append((seconds, input_name, name, choice))
    allowed = PENDING_TIME_SHARE * max(0.0, deadline - time.monotonic())
    shared = {choice for _, _, _, choice in estimates
              if sum(other == choice for _, _, _, other in estimates) > 1}
    covered: dict[str, set] = {}  # per choice on several inputs: the values of the inputs kept with it
    distinct: dict[str, set | None] = {}  # each input's distinct values, made once

    def values_of(input_name: str) -> set | None:
        if input_name not in distinct:
            distinct[input_name] = distinct_values(data.values[input_name])
        return distinct[input_name]

    def cost(seconds: float, input_name: str, choice: str) -> float:
        if choice not in covered or not math.isfinite(seconds):
            return seconds
        own = values_of(input_name)
        return seconds * len(own - covered[choice]) / len(own) if own else seconds

    def keep(seconds: float, input_name: str, choice: str) -> float:
        if choice in shared:
            own = values_of(input_name)
            if own is not None:
                covered.setdefault(choice, set()).update(own)
        return seconds if math.isfinite(seconds) else 0.0

    left_out: dict[str, dict[str, float]] = {}
    spent = 0.0
    for seconds, input_name, name, choice in sorted(estimates):
        seconds = cost(seconds, input_name, choice)
        if seconds == 0 or spent + seconds <= allowed:  # 0: inputs kept with this choice hold its values
            spent += keep(seconds, input_name, choice)
            continue
        remaining = set(space.description["encoders"][input_name]) - set(left_out.get(input_name, {})) - {name}
        if remaining:
            left_out.setdefault(input_name, {})[name] = seconds
        else:
            spent += keep(seconds, input_name, choice)
    # a choice left out before another input kept it (its last choice) may now cost nothing more
    for seconds, input_name, name, choice in sorted(estimates):
        if name in left_out.get(input_name, {}) and choice in covered:
            seconds = cost(seconds, input_name, choice)
            if seconds == 0 or spent + seconds <= allowed:
                spent += keep(seconds, input_name, choice)
                del left_out[input_name][name]
                if not left_out[input_name]:
                    del left_out[input_name]
    return left_out, spent


def _input_named(name: str, inputs: Sequence[Any], *more: str) -> str:
    """``input 'image_1' (column 'back', ...)``: an input of one column with that column's name
    (``config_`` and the leaderboard name inputs; the user knows the columns), then ``more``."""
    column = single_columns(inputs).get(name)
    said = [f"column {column!r}"] if column is not None else []
    said += more
    return f"input {name!r}" + (f" ({', '.join(said)})" if said else "")


def _warn_too_slow(left_out: Mapping[str, Mapping[str, float]], kept: float, time_limit: Any, deadline: float,
                   inputs: Sequence[Any] = ()) -> None:
    """Say which encoders :func:`_too_slow_encoders` left out, why, and what would include them
    (with the work of those kept, ``kept`` seconds); ``inputs``' specs name each input's column."""
    reg = _registry.get_registry()
    left = max(0.0, deadline - time.monotonic())
    parts = [f"{reg.get('encoder', name).label} on "
             + _input_named(input_name, inputs, f"about {seconds:.0f} s" if math.isfinite(seconds)
                            else "too slow to time within the time limit")
             for input_name, names in left_out.items() for name, seconds in names.items()]
    total = sum(seconds for names in left_out.values() for seconds in names.values() if math.isfinite(seconds))
    # a quarter more work than estimated: the estimate varies by some 10% from fit to fit, and the
    # trial computing the features must still fit its model (fashion, an empty cache: 150 s left
    # EfficientNet-Lite0 out and suggested 180 s without it, which left it out again)
    needed = math.ceil((PENDING_MARGIN * (kept + total) / PENDING_TIME_SHARE + float(time_limit) - left) / 60.0) * 60
    them = 'it' if len(parts) == 1 else 'them'
    if any(not math.isfinite(seconds) for names in left_out.values() for seconds in names.values()):
        # an untimed choice's work is unknown: a time limit computed without it can be the one given
        # (emoji, MiniLM not timed within time_limit=60 suggested "about 60 s or more")
        advice = (f"A fit with a longer time_limit may include {them} (how long the features take could not be "
                  f"estimated within the share of time_limit={time_limit:g} allowed for estimating)")
    else:
        advice = f"A fit with time_limit of about {needed} s or more includes {them}"
    warnings.warn(f"time_limit={time_limit:g}: left out of this search: {', '.join(parts)}: the features "
                  f"{'it' if len(parts) == 1 else 'they'} would first compute for values not in the feature cache "
                  f"would take longer than one trial may run ({PENDING_TIME_SHARE:.0%} of the search's {left:.0f} s). "
                  f"{advice}; the features are then cached (cache_dir) for later fits on the same values.",
                  AutoMMWarning, stacklevel=user_stacklevel())


#: The largest share of an input's values that may still need their one-off work (features to
#: compute) for the linear, nearest-neighbour and gradient-boosted models to count as cheap (:func:`_cheap_first`).
CHEAP_PENDING_SHARE = 0.05


def _cheap_first(data: PreparedData, space: SearchSpace, deadline: float | None,
                 n_trials: int | None = None) -> bool:
    """Whether the linear, nearest-neighbour and gradient-boosted models run before the default: under a time
    limit, when their encoders have (almost) no one-off work left (:func:`pending_share`: frozen
    features cached, or none needed), and when ``n_trials`` leaves the default a trial after them.
    With a cold feature cache they would compute every feature within their share of the budget
    (fashion: minutes) and could leave the default no time; the default then runs first, as
    without a time limit, and the linear model right after it computes the features
    (:func:`_warm_start_queue`)."""
    cheap = [config for config in space.presets if always_weighed(config)]
    if deadline is None or (n_trials is not None and n_trials <= len(cheap)):
        return False
    try:
        return all(pending_share(data, config) <= CHEAP_PENDING_SHARE for config in cheap)
    except Exception:  # noqa: BLE001 - a probe that fails only keeps the usual order
        return False


def _warm_start_queue(space: SearchSpace, cheap_first: bool, time_limited: bool = False) -> list[dict]:
    """The user attributes of the trials a search starts with, in order: the default, then the
    presets (pretrained variants, the linear, nearest-neighbour and gradient-boosted models,
    replicates). With ``cheap_first`` (:func:`_cheap_first`) those three come first:
    they cost seconds where the default network may need minutes, so any budget ends with a
    model that finished. Else, under a time limit (their frozen features not yet cached), they
    come right after the default, before the pretrained variants: the first of them computes the
    features, then fits in seconds, and the variants' networks train on cached features after it
    (fashion subCategory, an empty cache, ``time_limit=240``: the pretrained network's trial used
    to compute the features and train to the deadline, leaving the linear model no time; 14 test
    errors, 9 in this order)."""
    presets = list(enumerate(space.presets))
    cheap = [index for index, config in presets if (cheap_first or time_limited) and always_weighed(config)]
    cheap_models, default = [{_ATTR + "preset": index} for index in cheap], [{_ATTR + "default": True}]
    queue = cheap_models + default if cheap_first else default + cheap_models
    queue += [{_ATTR + "preset": index} for index, _ in presets if index not in cheap]
    return queue


def _usable_trials(trials: Sequence[Any]) -> list[Any]:
    """Finished or pruned trials with a score: those whose model can be the result."""
    from optuna.trial import TrialState

    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and math.isfinite(_trial_score(t)) and not t.user_attrs.get(_ATTR + "skipped")]


def _at_hand(trial, ctx: SearchContext) -> bool:
    """Whether ``trial``'s model is here without retraining it: in this process, or in a worker's files."""
    return ctx.pool.get(trial.number) is not None or _model_folder(trial) is not None


def _model_folder(trial) -> str | None:
    """The folder a worker saved ``trial``'s model in (its ``artifact_dir``), where this process finds it."""
    path = trial.user_attrs.get(_ATTR + "artifact")
    return path if path and os.path.isfile(os.path.join(path, "candidate.json")) else None


def _trial_score(t) -> float:
    score = t.user_attrs.get(_ATTR + "score")
    if score is None:
        return math.nan
    return float(score)


def _retrain_seconds(trial) -> float:
    """The seconds retraining ``trial``'s model is given: :data:`RETRAIN_TIME_FACTOR` times its
    recorded training time, and a second."""
    return RETRAIN_TIME_FACTOR * float(trial.user_attrs.get(_ATTR + "seconds") or 0.0) + 1.0


def _model_order(study, usable: Sequence[Any], objectives: Sequence[str],
                 classification: bool = True) -> tuple[list[int], list | None]:
    """The numbers of the ``usable`` trials in the order the model is built from them: ranked by
    :func:`_rank_key` (a ``classification``'s scores by their lower bound on their rows), then the
    earlier trial; in a multi-objective search the Pareto choice first.
    With it, the Pareto points ``(number, score, cost)`` (else None)."""
    from optuna.trial import TrialState

    ranked = sorted(usable, key=lambda t: (*_rank_key(t.state == TrialState.COMPLETE, _trial_score(t),
                                                      t.user_attrs.get(_ATTR + "loss"),
                                                      t.user_attrs.get(_ATTR + "rows") if classification else None),
                                           -t.number), reverse=True)
    order = [t.number for t in ranked]
    if len(objectives) <= 1:
        return order, None
    second = second_objective(objectives)
    pareto = [t for t in study.best_trials if t.user_attrs.get(_ATTR + second) is not None]
    points = [(t.number, _trial_score(t), float(t.user_attrs[_ATTR + second])) for t in pareto]
    chosen = choose_from_pareto(points) if points else order[0]
    return [chosen] + [n for n in order if n != chosen], points


def _retraining_reserve(study, ctx: SearchContext, deadline: float | None) -> tuple[float, list[int]]:
    """The seconds a time-limited fit joining a study (run again to resume it) keeps at the end of
    its search, and the trials they are for: the trials already in the study that its model would be
    built from as they rank now (the best, the ensemble's candidates, the linear and
    nearest-neighbour models), whose models are not at hand (trained by an earlier run's process),
    each counted at :func:`_retrain_seconds`, best first, within :data:`RETRAIN_RESERVE_FRACTION` of
    the time left, and :data:`RESERVE_SLACK_S` more; those that this fit's own trials outrank are
    not retrained, and their time stays unused."""
    if deadline is None:
        return 0.0, []
    usable = [t for t in _usable_trials(study.get_trials(deepcopy=False))
              if isinstance(t.user_attrs.get(_ATTR + "config"), Mapping)]
    if not usable:
        return 0.0, []
    order, _ = _model_order(study, usable, ctx.settings.objectives, ctx.data.problem_type != "regression")
    by_number = {t.number: t for t in usable}
    wanted = ctx.settings.models_kept
    weighed = [n for n in order[wanted:] if wanted > 1 and always_weighed(by_number[n].user_attrs[_ATTR + "config"])]
    budget = RETRAIN_RESERVE_FRACTION * (deadline - time.monotonic())
    reserve, numbers = RESERVE_SLACK_S, []
    for number in order[:wanted] + weighed:
        trial = by_number[number]
        if _at_hand(trial, ctx):
            continue
        seconds = _retrain_seconds(trial)
        if reserve + seconds <= budget:
            reserve += seconds
            numbers.append(number)
    return (reserve, numbers) if numbers else (0.0, [])


def _resumed_note(study, settings: SearchSettings, reserve: float, numbers: Sequence[int],
                  stopped: Sequence[int] = ()) -> str | None:
    """The progress line of a fit joining a study that holds trials already: how many, how they
    ended, that ``n_trials`` counts them, the trials the time limit stopped that are queued again
    (:func:`_retry_stopped_presets`) and the time kept to retrain the best of them
    (:func:`_retraining_reserve`); None for a new study."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING and not foreign_trial(t)]
    if not trials:
        return None
    words = ((TrialState.COMPLETE, "finished"), (TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed"),
             (TrialState.RUNNING, "running"))
    counts = ", ".join(f"{n} {word}" for state, word in words if (n := sum(t.state == state for t in trials)))
    counted = f"; n_trials={settings.n_trials} counts them" if settings.n_trials is not None else ""
    note = (f"study {study.study_name!r} resumed with {len(trials)} trial{'s' if len(trials) != 1 else ''} "
            f"already in it ({counts}{counted})")
    if stopped:
        note += (f"; trial{'s' if len(stopped) > 1 else ''} {', '.join(map(str, stopped))}, which the time limit "
                 f"stopped, queued again (after the trials queued before)")
    if numbers:
        note += (f"; {reserve:.0f} s of the time limit kept to retrain the best of them at the end "
                 f"(trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}), whose models are "
                 "not in this process")
    return note


def _obtain(number: int, trial, ctx: SearchContext, deadline: float | None) -> Candidate | None:
    """The trained model of trial ``number``: from memory, from a worker's files, or retrained."""
    candidate = ctx.pool.get(number)
    if candidate is not None:
        return candidate
    path = _model_folder(trial)
    if path is not None:
        try:
            return read_candidate(Path(path), ctx.data)
        except Exception as exc:  # noqa: BLE001 - fall back to retraining
            _log.warning("could not read the model of trial %d from %s: %r", number, path, exc)
    return _retrained(number, trial, ctx, deadline)


def _retrained(number: int, trial, ctx: SearchContext, deadline: float | None) -> Candidate | None:
    """Trial ``number``'s configuration trained again, when it has one and its retraining fits
    the time left (:func:`_retrain_seconds`); None otherwise, or when the retraining ran out of time."""
    config = trial.user_attrs.get(_ATTR + "config")
    if config is None:
        return None
    if deadline is not None:
        # no more than the time its retraining was counted at, so that it leaves the others' (see _retraining_reserve)
        own = time.monotonic() + _retrain_seconds(trial)
        if own > deadline:
            return None
        deadline = own
    if ctx.settings.verbose:
        _progress(f"retraining trial {number} (its model is in another process)")
    n_folds = int(trial.user_attrs.get(_ATTR + "folds") or 1)
    try:
        if n_folds > 1:
            return train_bagged(ctx.data, config, n_folds, deadline=deadline, callbacks=ctx.callbacks)
        return train_candidate(ctx.data, config, deadline=deadline, callbacks=ctx.callbacks, verbose=0)
    except (TimeoutError, TimeLimitExceeded) as exc:
        # a retraining slower than its trial was (a busier machine): the trial is passed over, as one not
        # retrainable in time (the warnings name it), rather than the whole search's model lost with it
        if ctx.settings.verbose:
            _progress(f"retraining trial {number} did not finish in its {_retrain_seconds(trial):.0f} s "
                      f"({type(exc).__name__}: {exc}): left out")
        return None


def _grouped_reasons(failed: Sequence[Any], shown: int = 5) -> str:
    """The failure reasons of ``failed`` trials, each once with the trials that had it."""
    by_reason: dict[str, list[int]] = {}
    for t in failed:
        by_reason.setdefault(t.user_attrs.get(_ATTR + "reason", "unknown reason"), []).append(t.number)
    parts = []
    for reason, numbers in list(by_reason.items())[:shown]:
        which = f"trial {numbers[0]}" if len(numbers) == 1 else \
            f"trials {', '.join(map(str, numbers[:3]))}{', ...' if len(numbers) > 3 else ''} ({len(numbers)})"
        parts.append(f"{which}: {reason}")
    hidden = len(by_reason) - shown
    more = f"; and {hidden} other reason{'s' if hidden > 1 else ''}" if hidden > 0 else ""
    return "; ".join(parts) + more


def _with_units(leaderboard, data: PreparedData):
    """A regression's ``leaderboard`` with a column after ``score`` that gives each trial's score as
    its line and ``fit_summary()`` do (its ``score`` is the negated error of the standardised
    targets, which ranks the same): ranked by squared error, ``r2``, its R² on the rows it was
    scored on; under ``metric="mae"``, ``mae``, its error in the target's units."""
    if "score" not in leaderboard.columns:
        return leaderboard

    def measured_on(folds: int, state: str) -> str:
        # (a bag stopped before its last fold, pruned, is scored out of fold on the folds it trained;
        # one finished, as rows_scored_on says: out of fold, or on X_val when given)
        return "out-of-fold" if folds > 1 and state != "COMPLETE" else rows_scored_on(data, bagged=folds > 1)[0]

    if validation_r2(data, 0.0, "holdout") is not None:
        # (no folds recorded: a trial failed before its training, or still running)
        on = [measured_on(folds, state) for folds, state in zip(leaderboard["folds"].fillna(1), leaderboard["state"])]
        column, values = "r2", [validation_r2(data, score, what) for score, what in zip(leaderboard["score"], on)]
    elif validation_mae(data, 0.0) is not None:
        column, values = "mae", [validation_mae(data, score) for score in leaderboard["score"]]
    else:
        return leaderboard
    leaderboard.insert(leaderboard.columns.get_loc("score") + 1, column, values)
    leaderboard[column] = leaderboard[column].astype(float)
    return leaderboard


def _conclude(estimator, study, ctx: SearchContext, deadline: float | None) -> Candidate:
    """The search's result: the best-ranked trial's model, or, with ``ensemble_size`` > 1, the
    greedy ensemble (:func:`automm.ensemble.select_ensemble`) of the best trials' temperature-scaled
    holdout (or out-of-fold) outputs, the linear, nearest-neighbour and gradient-boosted models
    always in its pool (:func:`always_weighed`); models trained elsewhere are retrained when the
    time allows. On a holdout of fewer than :data:`MIN_SELECTION_ROWS` rows no ensemble is
    weighed: the best-ranked model is kept alone. :class:`SearchError` (or
    :class:`TimeLimitExceeded`) when no trial produced a model."""
    trials = study.get_trials(deepcopy=False)
    leaderboard = _with_units(leaderboard_frame(trials, ctx.settings.objectives, ctx.data.problem_type != "regression"),
                           ctx.data)
    usable = _usable_trials(trials)
    if not usable:
        raise _no_model_error(trials, deadline, estimator.time_limit)
    # the pool's order (see _rank_key), then the earlier trial
    order, points = _model_order(study, usable, ctx.settings.objectives, ctx.data.problem_type != "regression")
    extras: dict[str, Any] = {"leaderboard_": leaderboard}
    multi = len(ctx.settings.objectives) > 1
    if multi:
        second = second_objective(ctx.settings.objectives)
        extras["pareto_front_"] = pareto_frame(points, order[0], second)
    by_number = {t.number: t for t in trials}
    candidates = _result_candidates(study, order, by_number, ctx, deadline)
    best_number, best = candidates[0]
    if multi and best_number != order[0]:  # the rule's choice passed over (its model not here, see
        # _warn_passed_over): the front marks the model kept, or none when that trial is off it
        extras["pareto_front_"] = pareto_frame(points, best_number, second)
    extras["best_trial_"] = best_number
    pool, outputs_are_oof = _selection_pool(candidates, best_number, ctx.data)
    pooled = None
    if len(pool) > 1 or (pool and pool[0][1].bag is not None):
        best_number, pooled = _select_members(pool, best_number, outputs_are_oof, ctx.data, estimator.time_limit)
        if pooled is not None:
            extras["ensemble_"] = pooled.ensemble
        # the selection's choice, also when it keeps one model that is not the best-ranked
        # (e.g. the linear model over a bag whose out-of-fold score ranks it first)
        best = next(c for n, c in candidates if n == best_number)
        extras["best_trial_"] = best_number
    if not ctx.interrupted.is_set():  # (after Ctrl-C, trials cut short say nothing of their inputs)
        kept_configs = [m.config for m in extras["ensemble_"].members] if "ensemble_" in extras else [best.config]
        _warn_unused_inputs(ctx.data.inputs, kept_configs, trials)
        _warn_unbuildable(trials)
        if ctx.deadline is not None:
            _warn_unfinished_features(ctx.data, kept_configs, trials, estimator.time_limit)
    if estimator.plot_dir is not None:
        write_plots(study, estimator.plot_dir, ctx.settings.objectives,
                    score_name=f"validation {holdout_score_name(ctx.data.metric, ctx.data.problem_type)}")
    if ctx.settings.verbose:
        _progress(_summary(leaderboard, extras.get("ensemble_"), best_number, candidate_score_text(ctx.data, best),
                           ctx.interrupted.is_set(), since=ctx.started, own_tags={ctx.worker_tag, *ctx.child_tags}))
    return _result(ctx.data, best, pooled, extras)


def _no_model_error(trials: Sequence[Any], deadline: float | None, time_limit: Any) -> AutoMMError:
    """What ``fit`` raises when no trial produced a model: :class:`TimeLimitExceeded` when the time
    limit stopped every trial, else :class:`SearchError` with the trials' failure reasons."""
    from optuna.trial import TrialState

    failed = [t for t in trials if t.state == TrialState.FAIL]
    reasons = [t.user_attrs.get(_ATTR + "reason", "") for t in failed]
    if deadline is not None and all(_stopped_by_time(r) for r in reasons):
        what = f" ({_grouped_reasons(failed)})" if failed else ""
        return TimeLimitExceeded(f"time_limit={time_limit:g} s ended before any model finished{what}; "
                                 "give fit more time")
    if failed:
        return SearchError(f"all {len(failed)} trials of the search failed: {_grouped_reasons(failed)}")
    return SearchError("no trial of the search finished (the time limit is too short for one epoch?)")


def _result_candidates(study, order: Sequence[int], by_number: Mapping[int, Any], ctx: SearchContext,
                       deadline: float | None) -> list[tuple[int, Candidate]]:
    """(number, model) of the trials the result is built from, best-ranked first: the best
    ``ensemble_size`` whose models are here or retrainable in time (the others warned about),
    then, for an ensemble, the linear, nearest-neighbour and boosted models whatever their rank."""
    candidates: list[tuple[int, Candidate]] = []
    wanted = ctx.settings.models_kept
    missing: list[int] = []  # trials among the best whose models are neither here nor retrainable in time
    for number in order[: max(wanted * 2, 2) if wanted > 1 else len(order)]:
        candidate = _obtain(number, by_number[number], ctx, deadline)
        if candidate is not None:
            candidates.append((number, candidate))
        else:
            missing.append(number)
        if len(candidates) >= wanted:
            break
    if not candidates:
        raise SearchError("the models of the best trials are not available here and the time limit leaves no time "
                          "to retrain one")
    fits = _fit_tags(study)
    _warn_passed_over(order[:order.index(candidates[0][0])], candidates[0][0], by_number, ctx.data, fits)
    first = order.index(candidates[0][0])
    _warn_members_left_out([n for n in missing if order.index(n) > first], by_number, fits)
    if wanted > 1:  # the linear, nearest-neighbour and boosted models join the pool whatever their rank
        chosen = {n for n, _ in candidates}
        for number in order:
            trial = by_number[number]
            if number not in chosen and always_weighed(trial.user_attrs.get(_ATTR + "config") or {}):
                candidate = _obtain(number, trial, ctx, deadline)
                if candidate is not None:
                    candidates.append((number, candidate))
    return candidates


def _selection_pool(candidates: Sequence[tuple[int, Candidate]], best_number: int,
                    data: PreparedData) -> tuple[list[tuple[int, Candidate]], bool]:
    """The candidates an ensemble may be selected from (those with holdout outputs, none unless the
    best is one), and whether they are all bags, selected on their out-of-fold outputs."""
    # a pruned bagged trial has only its first fold and no holdout outputs: it cannot join an ensemble
    pool = [(n, c) for n, c in candidates if c.valid_outputs is not None]
    if pool and pool[0][0] != best_number:
        pool = []
    outputs_are_oof = all(c.oof_outputs is not None for _, c in pool)
    if len(pool) > 1 and not outputs_are_oof and len(data.valid_index) < MIN_SELECTION_ROWS:
        pool = pool[:1]  # too few holdout rows to weigh models by: the best-ranked model (as ensemble_size=1)
        outputs_are_oof = pool[0][1].oof_outputs is not None
    return pool, outputs_are_oof


@dataclass
class _Pooled:
    """The ensemble a selection kept: its members' pooled score and decision rule."""

    ensemble: Any
    score: float
    decision_weights: np.ndarray | None
    decided_score: float | None
    scored_on: tuple[str, int] | None  # out-of-fold rows ("out-of-fold", n); None: the best member's holdout


def _select_members(pool: Sequence[tuple[int, Candidate]], best_number: int, outputs_are_oof: bool,
                    data: PreparedData, time_limit: Any) -> tuple[int, _Pooled | None]:
    """Calibrate the ``pool``'s outputs and select its ensemble: the number of the trial whose model
    is ``model_`` (the best trial, when selected) and the ensemble when it has several members."""
    from .ensemble import Ensemble, calibrate, combine, ensemble_members, select_ensemble

    # the rows the pooled members' score is on: the rows their own scores are on
    scored = slice(None)
    if outputs_are_oof:  # bags: select on every row, not the holdout
        rows = data.rows
        outputs, targets = [c.oof_outputs[rows] for _, c in pool], data.targets[rows]
        row_weights = data.weights(rows)
        comparable = comparable_rows(data, rows)
        scored = np.isin(rows, comparable)
    else:
        outputs, targets = [c.valid_outputs for _, c in pool], data.valid_targets
        row_weights = data.valid_weights
    # (one bag too: its fold models' outputs scaled as its out-of-fold outputs ask)
    temperatures = calibrate(outputs, targets, data.problem_type, row_weights)
    scaled = [o * t for o, t in zip(outputs, temperatures)]
    weights, pooling = ((np.ones(1), "linear") if len(pool) == 1
                        else select_ensemble(scaled, targets, data.problem_type, sample_weights=row_weights))
    members = [member for (n, c), w, t in zip(pool, weights, temperatures) if w > 0
               for member in ensemble_members(n, c, float(w), t)]
    # the best trial first (its first fold is model_), then by weight
    members.sort(key=lambda m: (m.trial != best_number, -m.weight, -m.score, m.trial, m.fold or 0))
    if len(members) <= 1:
        return members[0].trial, None
    ensemble = Ensemble(members, data.problem_type, pooling)
    pooled = combine(scaled, weights, data.problem_type, pooling)
    decision_rows = data.rows if outputs_are_oof else data.valid_index
    decision = decision_weights(data, pooled, decision_rows)
    decided = decided_score(data, pooled, decision_rows, decision)
    # the kept model's score: the pooled members' on the rows the weights were chosen on (a bag's: of
    # the holdout's classes under a class-averaged metric, as the members' own scores, pipeline.comparable_rows)
    score = validation_metrics(pooled[scored], targets[scored], data.problem_type != "regression",
                               None if row_weights is None else row_weights[scored], data.metric)[1]
    _warn_cut_members(pool, weights, time_limit)
    return members[0].trial, _Pooled(ensemble, score, decision, decided,
                                     ("out-of-fold", len(comparable)) if outputs_are_oof else None)


def _warn_cut_members(pool: Sequence[tuple[int, Candidate]], weights: Sequence[float], time_limit: Any) -> None:
    """Warn when members of the ensemble kept did not finish one pass over the training rows (the
    model kept alone is warned about by ``fit``)."""
    cut = [(n, float(w), c.cut_in_first_epoch) for (n, c), w in zip(pool, weights)
           if w > 0 and c.cut_in_first_epoch]
    if cut:
        shown = "; ".join(f"trial {n} (weight {w / sum(weights):.2f}: {why})" for n, w, why in cut)
        warnings.warn(f"time_limit={time_limit}: the ensemble kept has {'members' if len(cut) > 1 else 'a member'} "
                      f"that did not finish one pass over the training rows ({shown}): more time gives a better model",
                      AutoMMWarning, stacklevel=user_stacklevel())


def _result(data: PreparedData, best: Candidate, pooled: _Pooled | None, extras: dict) -> Candidate:
    """The search's result as a candidate: ``best``'s model with the pooled ensemble's score and
    decision rule, or, kept alone, its own at its own temperature."""
    if pooled is None:  # one model: its own outputs decide, at its own temperature
        temperature = candidate_temperature(data, best) if best.bag is None else 1.0
        scaled = replace(best, temperature=temperature)
        decision = candidate_decision_weights(data, scaled)
        decided = candidate_decided_score(data, replace(scaled, decision_weights=decision))
        score, measured = best.best_score, scored_on(data, best)
    else:  # the pooled members' score, on the rows their own scores are on
        temperature, decision, decided, score = 1.0, pooled.decision_weights, pooled.decided_score, pooled.score
        measured = pooled.scored_on or scored_on(data, replace(best, oof_outputs=None))
    return Candidate(config=best.config, model=best.model, history=best.history, best_epoch=best.best_epoch,
                     best_score=score, valid_outputs=best.valid_outputs, stop_reason=best.stop_reason,
                     seconds=best.seconds, extras=extras, decision_weights=decision, decided_score=decided,
                     temperature=temperature, scored_on=measured)


#: What to do about models of trials trained in another process that this one cannot read: a
#: fit's models last as long as it does (a later fit of the study retrains them), a worker's are
#: read from its artifact_dir.
_LONGER_TIME_LIMIT = ("run fit again with a longer time_limit (a fit resuming a study keeps up to "
                      f"{RETRAIN_RESERVE_FRACTION:.0%} of it to retrain the best trials already there)")
_FROM_WORKERS_ADVICE = ("start workers with an artifact_dir (automm worker --artifact-dir) that this process reads, or "
                        + _LONGER_TIME_LIMIT)


def _fit_tags(study) -> set[str]:
    """The process tags (host:pid) of the fits that joined ``study``, this one's too: a trial
    tagged with one ran in a fit, not in a worker."""
    return {k[len(FIT_ATTR):].partition("/")[0] for k in study.user_attrs if k.startswith(FIT_ATTR)}


def _from_fit(trial, fits: Collection[str]) -> bool:
    return trial.user_attrs.get(_ATTR + "worker") in fits


def _trained_by(trial, fits: Collection[str]) -> str:
    """Who trained ``trial``, for a message: ``fit vm:17827`` or ``worker vm:17``."""
    tag = trial.user_attrs.get(_ATTR + "worker") or "unknown"
    return f"fit {tag}" if _from_fit(trial, fits) else f"worker {tag}"


def _ran_where(trials: Sequence[Any], fits: Collection[str]) -> str:
    return "ran in an earlier fit of the study" if all(_from_fit(t, fits) for t in trials) else "ran in another process"


def _not_here_advice(trials: Sequence[Any], fits: Collection[str]) -> str:
    """What to do about ``trials``, whose models this process cannot read: trained by an earlier
    fit of the study (its models went with it: only time to retrain them helps), by workers
    (an ``artifact_dir`` hands their models over), or both."""
    earlier = sum(_from_fit(t, fits) for t in trials)
    if earlier == len(trials):
        return ("an earlier fit's models end with it, so a fit resuming its study retrains them: " + _LONGER_TIME_LIMIT)
    if not earlier:
        return _FROM_WORKERS_ADVICE
    return ("for the trials of earlier fits, whose models end with them, " + _LONGER_TIME_LIMIT
            + "; for the workers', start them with an artifact_dir (automm worker --artifact-dir) that this process reads")


def _warn_inert_named_augmentations(estimator, trials: Sequence[Any], ctx: SearchContext) -> None:
    """Warn when a per-sample augmentation the user named (``augmentations=``,
    ``search_space['augmentations']``) could act in none of the search's networks: the encoders
    of its modality read features computed once (frozen, cached) in every trial, which then
    neither samples nor lists it; a fit without a search warns the same way."""
    from .persistence import augmentation_parameters

    reg = _registry.get_registry()
    inputs = ctx.data.inputs
    named = [name for _, name in augmentation_parameters(estimator)
             if isinstance(name, str) and name in ctx.space.description["augmentations"]]
    modalities = {name: reg.get("augmentation", name).modality for name in dict.fromkeys(named)}
    named = [name for name, modality in modalities.items() if modality != "batch"]
    if not named:
        return
    configs = [config for config in (t.user_attrs.get(_ATTR + "config") for t in trials)
               if isinstance(config, Mapping) and not always_weighed(config)
               and all(spec.name in (config.get("encoders") or {}) for spec in inputs)]
    if not configs:
        return
    live: set[str] = set()
    for config in configs:
        with contextlib.suppress(Exception):  # (an encoder that cannot be built: its trial failed)
            live |= augmentable_modalities(inputs, config)
    inert = [name for name in named if modalities[name] not in live]
    if inert:
        one = len(inert) == 1
        warnings.warn(f"augmentations: {', '.join(map(repr, inert))} acted in none of the search's "
                      f"{len(configs)} network trials: the encoders of {'its' if one else 'their'} modality read "
                      f"features computed once (frozen, cached) in each, so the models trained without "
                      f"{'it' if one else 'them'}", AutoMMWarning, stacklevel=user_stacklevel())


def _warn_passed_over(passed: Sequence[int], kept: int, by_number: Mapping[int, Any], data: PreparedData,
                      fits: Collection[str] = ()) -> None:
    """Warn when better trials than the one the model starts from were passed over: trained by
    another process (a worker, an earlier fit: ``fits``, :func:`_fit_tags`) whose model this one
    cannot read, with too little time left to retrain them."""
    if not passed:
        return
    best = by_number[passed[0]]
    others = f" and {len(passed) - 1} other{'s' if len(passed) > 2 else ''}" if len(passed) > 1 else ""
    warnings.warn(f"the study's best trial {passed[0]} ({_trial_score_text(data, best)}, "
                  f"{_trained_by(best, fits)}){others} {_ran_where([by_number[n] for n in passed], fits)}, whose "
                  f"model{'s' if others else ''} this one cannot read, and time_limit left no time to retrain "
                  f"{'them' if others else 'it'}: the model is built from trial "
                  f"{kept} ({_trial_score_text(data, by_number[kept])}); "
                  f"{_not_here_advice([by_number[n] for n in passed], fits)}",
                  AutoMMWarning, stacklevel=user_stacklevel())


def _trial_score_text(data: PreparedData, trial) -> str:
    """A finished trial's score as messages show it, named (:func:`score_text`), with the rows it
    was measured on (:func:`rows_scored_on`: a bagged trial's out-of-fold rows, ...)."""
    bagged = int(trial.user_attrs.get(_ATTR + "folds") or 1) > 1
    return score_text(data, _trial_score(trial), rows_scored_on(data, bagged)[0])


def _warn_members_left_out(numbers: Sequence[int], by_number: Mapping[int, Any], fits: Collection[str] = ()) -> None:
    """Warn when trials ranked among those the ensemble chooses from were left out: trained in
    another process (an earlier run of a resumed study, a worker), whose model this one cannot
    read, with too little time left to retrain them."""
    if not numbers:
        return
    listed = ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")
    warnings.warn(f"trial{'s' if len(numbers) > 1 else ''} {listed} (among the best) "
                  f"{_ran_where([by_number[n] for n in numbers], fits)}, "
                  f"whose model{'s' if len(numbers) > 1 else ''} this one cannot read, and time_limit left no time "
                  f"to retrain {'them' if len(numbers) > 1 else 'it'}: the ensemble is chosen without "
                  f"{'them' if len(numbers) > 1 else 'it'}; {_not_here_advice([by_number[n] for n in numbers], fits)}",
                  AutoMMWarning, stacklevel=user_stacklevel())


def _warn_unused_inputs(inputs: Sequence[Any], kept_configs: Sequence[dict], trials: Sequence[Any]) -> None:
    """Warn about each input the kept model(s) leave out although trials tried it and every one
    of those failed (e.g. an audio column of unreadable files: the linear model finishes on the
    other columns, and the result would quietly ignore that column), with the failures' reasons."""
    from optuna.trial import TrialState

    used = {name for config in kept_configs for name in config.get("encoders", {})}
    retried = _retried_numbers(trials)

    def judged(t) -> bool:  # a trial whose outcome says something of its configuration
        reason = t.user_attrs.get(_ATTR + "reason") or ""
        return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and t.number not in retried and reason not in INTERRUPT_REASONS
            and not reason.startswith("worker lost"))

    for spec in inputs:
        if spec.name in used:
            continue
        tried = [t for t in trials if spec.name in ((t.user_attrs.get(_ATTR + "config") or {}).get("encoders") or {})
                 and judged(t)]
        failed = [t for t in tried if t.state == TrialState.FAIL]
        if tried and len(failed) == len(tried):
            warnings.warn(f"the model kept does not use column{'s' if len(spec.columns) > 1 else ''} "
                          f"{', '.join(map(repr, spec.columns))} ({spec.modality}): every trial with it failed "
                          f"({_grouped_reasons(failed, shown=1)})", AutoMMWarning, stacklevel=user_stacklevel())


def _warn_unfinished_features(data: PreparedData, kept_configs: Sequence[dict], trials: Sequence[Any],
                              time_limit: Any) -> None:
    """Warn, once, about the encoder choices the kept model(s) leave out because the time limit
    stopped the trials that had them before their one-off work was done (frozen features of values
    not in the feature cache, still pending now), with what would include them. No error: the search
    kept them because their work was estimated to fit (:func:`_too_slow_encoders`), and it took longer
    on a machine busier than when it was timed (fashion, 800 photos, time_limit=60, an empty cache:
    trial 1, the linear model computing EfficientNet-Lite0's features, failed 27 s in, in one run of
    five, with nothing but its leaderboard row to say so)."""
    from optuna.trial import TrialState

    used = {(name, part["name"]) for config in kept_configs
            for name, choice in (config.get("encoders") or {}).items() for part in encoder_parts(choice)}
    retried = _retried_numbers(trials)
    stopped: dict[tuple[str, str], tuple[dict, dict]] = {}  # (input, encoder) -> its configuration, trials
    for t in trials:
        reason = t.user_attrs.get(_ATTR + "reason") or ""
        if (t.state != TrialState.FAIL or t.number in retried or foreign_trial(t)
                or not reason.startswith(TimeLimitExceeded.__name__)):
            continue
        for name, choice in ((t.user_attrs.get(_ATTR + "config") or {}).get("encoders") or {}).items():
            for part in encoder_parts(choice):
                if (name, part["name"]) not in used:
                    stopped.setdefault((name, part["name"]), (dict(part), {}))[1][t.number] = t
    reg = _registry.get_registry()
    unfinished, failed = [], {}
    for (name, encoder), (part, cut) in stopped.items():
        try:
            if pending_share(data, {"encoders": {name: part}}) > 0:
                unfinished.append(f"{reg.get('encoder', encoder).label} on {_input_named(name, data.inputs)}")
                failed.update(cut)
        except Exception:  # noqa: BLE001 - (its trials' reasons say what it was)
            continue
    if not unfinished:
        return
    trials_cut = sorted(failed.values(), key=lambda t: t.number)
    which = f"trial {trials_cut[0].number}" if len(trials_cut) == 1 else f"{len(trials_cut)} trials"
    them = "it" if len(unfinished) == 1 else "them"
    warnings.warn(f"time_limit={time_limit:g}: the model kept does not use {', '.join(unfinished)}: the time limit "
                  f"stopped {which} with {them} before the features of the values not in the feature cache were "
                  f"computed ({_grouped_reasons(trials_cut, shown=1)}). No error: the features took longer than the "
                  "search had left them (longer than estimated: a busier or slower machine than when they were timed). "
                  "What was computed stays in the cache (cache_dir): the same fit again, or one with a longer "
                  f"time_limit, includes {them}", AutoMMWarning, stacklevel=user_stacklevel())


def _warn_unbuildable(trials: Sequence[Any]) -> None:
    """Warn about trials that failed because a component could not be built with the settings
    the search gave it (``search_space={"encoders": {"text": {"hashed_ngram": {"emb_dim": -5}}}}``):
    a mistake in the space, not bad luck, which the model kept would otherwise hide; and, first,
    about trials that failed because a component lacks an installed package (its weights) or the
    feature cache a folder (no home folder: a container's ``--user 1000``)."""
    from optuna.trial import TrialState

    from .feature_cache import NO_CACHE_FOLDER

    reasons = {t.number: t.user_attrs.get(_ATTR + "reason") or "" for t in trials if t.state == TrialState.FAIL}
    # (queued ones the search never ran, and the study's user's own trials: not counted)
    trials = [t for t in trials if t.state != TrialState.WAITING and not foreign_trial(t)]
    missing = [t for t in trials if t.number in reasons and reasons[t.number].startswith(MISSING_PACKAGE)]
    if missing:
        warnings.warn(f"{len(missing)} of {len(trials)} trials failed because a component needs a package that is "
                      f"not installed; install it, or leave the component out with encoders=: "
                      f"{_grouped_reasons(missing, shown=2)}", AutoMMWarning, stacklevel=user_stacklevel())
    homeless = [t for t in trials if t.number in reasons and NO_CACHE_FOLDER in reasons[t.number]]
    if homeless:
        warnings.warn(f"{len(homeless)} of {len(trials)} trials failed because their encoders keep features in the "
                      f"feature cache, which has no folder here: {_grouped_reasons(homeless, shown=1)}",
                      AutoMMWarning, stacklevel=user_stacklevel())
    failed = [t for t in trials if t.number in reasons and BUILD_FAILED in reasons[t.number]
              and not reasons[t.number].startswith(MISSING_PACKAGE)]
    if failed:
        warnings.warn(f"{len(failed)} of {len(trials)} trials failed because a component could not be built with "
                      f"the settings the search gave it; check search_space and the component arguments: "
                      f"{_grouped_reasons(failed, shown=2)}", AutoMMWarning, stacklevel=user_stacklevel())
    # a plugin component that broke its contract (a search space naming a parameter without its
    # prefix, a fusion returning another width than its output_dim, an augmentation returning
    # another kind): every trial that samples it fails, which the model kept would otherwise hide
    broken = [t for t in trials if t.number in reasons and BUILD_FAILED not in reasons[t.number]
              and reasons[t.number].startswith(("PluginError", "SearchSpaceError"))]
    if broken:
        warnings.warn(f"{len(broken)} of {len(trials)} trials failed because a plugin component broke its contract "
                      f"(automm.testing's check_* functions find this without a search): "
                      f"{_grouped_reasons(broken, shown=2)}", AutoMMWarning, stacklevel=user_stacklevel())


def _summary(leaderboard, ensemble, best_number: int, best_score: str, interrupted: bool,
             since: float, own_tags: set[str] | None = None) -> str:
    """One line on what the search did (its trials as ``leaderboard_`` lists them) and what it
    kept (printed when ``verbose``): the kept trial's ``best_score`` as :func:`score_text` writes it
    (``"holdout accuracy 0.8125"``), or an ensemble's trials and weights (a bagged trial kept alone is
    its fold models, not an ensemble of trials); ``since``, when this fit's search began (``time.time()``): its
    own seconds, and how many trials it ran when the study held others (a resumed study, or trials
    of workers and other fits: those of ``own_tags``, this fit's processes, are its own)."""
    import datetime

    counts = ", ".join(f"{n} {word}" for word, n in trial_counts(leaderboard).items() if word != "total" and n)
    began = datetime.datetime.fromtimestamp(since)  # (Optuna's trial times are naive local times)
    mine = leaderboard["start"] >= began
    if own_tags is not None:  # (trials of workers and other fits started since, too)
        mine &= leaderboard["worker"].isin(own_tags)
    own = int(mine.sum())
    earlier = f", {own} of them by this fit" if own < len(leaderboard) else ""
    took = f" in {time.time() - since:.0f} s{earlier}"
    by_trial = ensemble.by_trial() if ensemble is not None else []
    if len(by_trial) > 1:
        trials = ", ".join(f"{t['trial']} ({t['weight']:.2f})" for t in by_trial)
        kept = f"an ensemble of trials {trials}, {ensemble.pooling} pooling"
    elif by_trial:  # one bagged trial's fold models: no ensemble of trials
        kept = f"trial {best_number} ({best_score}), its {by_trial[0]['models']} fold models averaged (bag_folds)"
    else:
        kept = f"trial {best_number} ({best_score})"
    return f"search {'interrupted' if interrupted else 'done'}: {len(leaderboard)} trials ({counts}){took}; kept {kept}"
