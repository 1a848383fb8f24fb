"""The median pruner the search uses by default: the median rule among trials of one architecture.

Optuna's :class:`~optuna.pruners.MedianPruner` stops a trial whose best score so far is below the
median of every finished trial's score at the same step. Learning curves of different
architectures cross: on emoji, late fusion trails attention and gated fusion after a few epochs
and ends above both. Compared with all trials, its first trials were stopped early; TPE ranks a
stopped trial below every finished one, learned "late fusion is bad" and sampled the other
fusions for the rest of the search (363 of 376 trials; ``benchmarks/RESULTS.md``, session 18).

:class:`ArchitectureMedianPruner` applies the same rule among the finished trials of the same
architecture (:func:`architecture_of`: the fusion and each input's encoder), and stops nothing of
an architecture until ``n_startup_trials`` of its trials have finished: every architecture the
sampler tries is first seen at its real, finished score, and pruning then stops the weak
hyperparameters within it.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .components.stack import describe_encoder
from .evaluation import enough_digits
from .leaderboard import TRIAL_ATTR

__all__ = ["ArchitectureMedianPruner", "architecture_of"]


def architecture_of(trial: FrozenTrial) -> tuple | None:
    """(fusion, (input, encoder) pairs) of the configuration a trial trains (its ``automm:config``
    user attribute, written before training), or None for a trial without one."""
    config = trial.user_attrs.get(TRIAL_ATTR + "config")
    if not isinstance(config, dict):
        return None
    encoders = tuple(sorted((name, describe_encoder(choice)) for name, choice in config.get("encoders", {}).items()))
    return str(config.get("fusion", {}).get("name")), encoders


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` to four significant digits, or as many more (up to 12) as it takes to tell two
    different numbers apart: not "best 0.9233 below the median 0.9233" for 0.92333 and 0.92334."""
    return enough_digits(lambda digits: (f"{a:.{digits}g}", f"{b:.{digits}g}"), 4, 12,
                         lambda pair: pair[0] == pair[1] and a != b)


class ArchitectureMedianPruner(optuna.pruners.BasePruner):
    """Stops a trial whose best intermediate value so far is worse than the median of the finished
    trials of its architecture at the same step; never before ``n_warmup_steps``, nor while fewer
    than ``n_startup_trials`` trials of its architecture have finished. Single-objective studies."""

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 2):
        if n_startup_trials < 1 or n_warmup_steps < 0:
            raise ValueError("n_startup_trials must be >= 1 and n_warmup_steps >= 0")
        self.n_startup_trials = int(n_startup_trials)
        self.n_warmup_steps = int(n_warmup_steps)
        self._why: dict[int, str] = {}  # trial number -> what its last stop compared it with

    def reason(self, number: int) -> str | None:
        """What the stop of trial ``number`` compared it with (``"best 0.81 below the median
        0.85 of 4 finished trials of its architecture"``), None when it was not stopped here."""
        return self._why.get(number)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        architecture = architecture_of(trial)
        if architecture is None:
            return False
        peers = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if architecture_of(t) == architecture]
        if len(peers) < self.n_startup_trials:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        values = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        if not values:
            return True
        best = max(values) if maximize else min(values)
        at_step = [t.intermediate_values[step] for t in peers if step in t.intermediate_values]
        at_step = [v for v in at_step if not math.isnan(v)]
        if not at_step:
            return False
        median = float(np.median(at_step))
        stop = best < median if maximize else best > median
        if stop:
            shown_best, shown_median = _apart(best, median)
            self._why[trial.number] = (f"best {shown_best} {'below' if maximize else 'above'} the median {shown_median} "
                                       f"of {len(at_step)} finished trials of its architecture")
        return stop

    def __repr__(self) -> str:  # shown in the search's settings
        return (f"ArchitectureMedianPruner(n_startup_trials={self.n_startup_trials}, "
                f"n_warmup_steps={self.n_warmup_steps})")
