"""What a finished study reports: the leaderboard, the model chosen from a Pareto set, plots."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .components.stack import describe_encoder
from .exceptions import AutoMMWarning, user_stacklevel
from .process_state import SharedChange, all_warnings_left_out

__all__ = ["leaderboard_frame", "trial_counts", "write_plots", "choose_from_pareto", "pareto_frame", "second_objective",
           "rank_key", "RANK_Z", "TRIAL_ATTR", "foreign_trial", "epoch_scores"]

#: The prefix of automm's user attributes on an Optuna trial (``"automm:score"``, ...).
TRIAL_ATTR = "automm:"


def foreign_trial(trial: Any) -> bool:
    """Whether ``trial`` is not one of automm's: a finished or pruned trial with none of automm's
    attributes (added to the study by its user: ``study.optimize`` of another objective,
    ``study.add_trial``), which automm's trials all record before they end. It counts towards no
    ``n_trials`` and is no row of the leaderboard. A running trial (one just started records its
    worker a moment later) and a failed one (Optuna fails a lost worker's) are taken for automm's."""
    return (trial.state.name in ("COMPLETE", "PRUNED")
            and not any(key.startswith(TRIAL_ATTR) for key in trial.user_attrs))


def epoch_scores(history: Sequence[dict]) -> list[float | None]:
    """Each record's ``valid_score`` of a training run's ``history`` (a trial's ``valid_scores``
    in the leaderboard): a float, or None where it is missing or not finite (JSON for a study's
    storage)."""
    scores = []
    for record in history:
        value = record.get("valid_score")
        value = None if value is None else float(value)
        scores.append(value if value is not None and math.isfinite(value) else None)
    return scores


#: How many standard errors :func:`rank_key` takes off a score measured on few rows.
RANK_Z = 1.0


def rank_key(state_complete: bool, score: float, loss: float | None = None, rows: int | None = None) -> tuple:
    """Better trials sort higher: complete before pruned, then validation score, then (ties
    are common on a small holdout) lower validation loss. Nothing timing-dependent, so a
    search ranks its trials the same way whatever the machine's speed.

    ``rows`` (given for an accuracy) is how many rows the score was measured on; the score is
    then ranked by its lower one-standard-error bound (Wilson's, :data:`RANK_Z` standard errors:
    about ``score - sqrt(score (1 - score) / rows)``, but not of width 0 at 0 or 1, where 2 of 2
    holdout rows right outranked trials scored on every row).
    A bagged trial is scored on every row and the others on the holdout alone, and the best
    of many accuracies on a few hundred rows is mostly the luckiest: on emoji (145 holdout
    rows), a from-scratch trial's holdout accuracy outranked the out-of-fold accuracy (1,446
    rows) of frozen-feature bags and lost 2 points on test. Among trials scored on the same
    rows the order is unchanged (the bound grows with the score above 0.1 for 10 rows or more)."""
    loss_value = float(loss) if loss is not None and math.isfinite(loss) else math.inf
    value = float(score) if math.isfinite(score) else -math.inf
    if rows and math.isfinite(value) and 0.0 <= value <= 1.0:
        z2 = RANK_Z * RANK_Z
        value = (value + z2 / (2 * rows) - RANK_Z * math.sqrt(value * (1.0 - value) / rows + z2 / (4 * rows * rows))) \
            / (1.0 + z2 / rows)
    return (bool(state_complete), value, -loss_value)


def choose_from_pareto(points: Sequence[tuple[int, float, float]], tolerance: float = 0.01) -> int:
    """The trial number chosen from a Pareto set of ``(number, score, cost)``: among the trials
    whose score is within ``tolerance`` (relative) of the best score, the cheapest; ties go to
    the better score, then the lower number."""
    best = max(score for _, score, _ in points)
    eligible = [p for p in points if p[1] >= best - tolerance * abs(best)]
    return min(eligible, key=lambda p: (p[2], -p[1], p[0]))[0]


def second_objective(objectives: Sequence[str]) -> str:
    return "latency_ms" if "latency" in objectives else "n_params"


def pareto_frame(points: Sequence[tuple[int, float, float]], chosen: int, second: str):
    import pandas as pd

    frame = pd.DataFrame(points, columns=["number", "score", second])
    frame["chosen"] = frame["number"] == chosen
    return frame.sort_values(["score", second], ascending=[False, True]).reset_index(drop=True)


def leaderboard_frame(trials: Sequence[Any], objectives: Sequence[str] = ("score",), classification: bool = True):
    """A pandas DataFrame with one row per trial (skipped over-budget trials, queued ones that
    never started, such as a preset the budget left no room for, and trials not automm's,
    :func:`foreign_trial`, left out), the finished trials
    first, best first (then pruned, running and failed ones, by their partial scores): number, state, score (best holdout score), [latency_ms | n_params], encoders,
    fusion, augmentations, params (Optuna's), config (the full configuration), epochs,
    best_epoch (of the first fold when bagged), valid_scores (each epoch's validation score, a
    list: of the first fold when bagged; None where not recorded), folds (1: holdout; k: k-fold bag, score
    out-of-fold), rows (how many rows the score was measured on), seconds (wall), reason (failure, stop or pruning reason), default (the
    default configuration's trial), worker (host:pid), start and complete (local times). A
    ``classification``'s scores rank by their lower bound on their rows (:func:`rank_key`); a
    regression's, which are no shares of rows right, by their value."""
    import pandas as pd

    retried_as: dict[int, int] = {}
    for t in trials:
        for original in t.system_attrs.get("retry_history", []):
            retried_as[original] = t.number
    trials = [t for t in trials
              if not (t.user_attrs.get(TRIAL_ATTR + "skipped") or t.state.name == "WAITING" or foreign_trial(t))]
    rows = []
    for t in trials:
        attrs = t.user_attrs
        config = attrs.get(TRIAL_ATTR + "config") or {}
        state = t.state.name
        reason = attrs.get(TRIAL_ATTR + "reason") if state == "FAIL" else attrs.get(TRIAL_ATTR + "stop_reason")
        if state == "FAIL" and not reason:  # usually failed by the storage (Optuna's heartbeats): its worker was lost
            reason = "failed with no reason recorded (its worker was probably lost: no heartbeat)"
        if state == "FAIL" and t.number in retried_as:
            reason = f"{reason or 'failed'}; retried as trial {retried_as[t.number]}"
        row = {
            "number": t.number, "state": state, "score": attrs.get(TRIAL_ATTR + "score"),
            "encoders": ", ".join(f"{k}={describe_encoder(v)}" for k, v in (config.get("encoders") or {}).items()) or None,
            # a trial whose components' search spaces failed has no configuration; its params name the fusion
            "fusion": (config.get("fusion") or {}).get("name") if config else t.params.get("fusion"),
            "augmentations": ", ".join(a["name"] for a in config.get("augmentations") or []) if config else None,
            "params": dict(t.params), "config": config or None,
            "epochs": attrs.get(TRIAL_ATTR + "epochs"), "best_epoch": attrs.get(TRIAL_ATTR + "best_epoch"),
            "valid_scores": attrs.get(TRIAL_ATTR + "valid_scores"), "folds": attrs.get(TRIAL_ATTR + "folds"), "rows": attrs.get(TRIAL_ATTR + "rows"), "seconds": attrs.get(TRIAL_ATTR + "seconds"), "reason": reason,
            "default": bool(attrs.get(TRIAL_ATTR + "default", False)), "worker": attrs.get(TRIAL_ATTR + "worker"),
            "start": t.datetime_start, "complete": t.datetime_complete,
        }
        if len(objectives) > 1:
            key = second_objective(objectives)
            row[key] = attrs.get(TRIAL_ATTR + key)
        rows.append(row)
    columns = ["number", "state", "score"] + ([second_objective(objectives)] if len(objectives) > 1 else []) + [
        "encoders", "fusion", "augmentations", "params", "config", "epochs", "best_epoch", "valid_scores", "folds", "rows",
        "seconds", "reason", "default", "worker", "start", "complete"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["score"] = frame["score"].astype(float)
        for column in ("epochs", "best_epoch", "folds", "rows"):  # counts, missing while a trial runs
            frame[column] = pd.array([None if v is None or v != v else int(v) for v in frame[column]], dtype="Int64")
        # as the search ranks them (rank_key: finished trials first, a pruned trial's score being
        # partial; an accuracy by its lower bound over the rows it was measured on, so a bag's
        # out-of-fold score is not ranked below a luckier holdout score), then the earlier trial
        def score_of(t) -> float:
            value = t.user_attrs.get(TRIAL_ATTR + "score")
            return math.nan if value is None else float(value)

        keys = [rank_key(t.state.name == "COMPLETE", score_of(t),
                         t.user_attrs.get(TRIAL_ATTR + "loss"),
                         t.user_attrs.get(TRIAL_ATTR + "rows") if classification else None)
                for t in trials]
        frame = frame.assign(_done=[k[0] for k in keys], _value=[k[1] for k in keys], _loss=[k[2] for k in keys])
        frame = frame.sort_values(["_done", "_value", "_loss", "number"], ascending=[False, False, False, True],
                                  na_position="last").drop(columns=["_done", "_value", "_loss"])
    return frame.reset_index(drop=True)


def trial_counts(frame) -> dict[str, int]:
    """A leaderboard's trials: ``total``, then how many ``finished``, were ``pruned``, ``failed``."""
    states = frame["state"].value_counts()
    return {"total": int(len(frame)), **{word: int(states.get(state, 0)) for state, word in
                                         (("COMPLETE", "finished"), ("PRUNED", "pruned"), ("FAIL", "failed"))}}


#: The fewest finished trials with sampled parameters that ``param_importances.png`` is drawn from:
#: with fewer, every parameter came out about equally important (1/n each), which says nothing.
MIN_IMPORTANCE_TRIALS = 10


def _own_trials_study(study):
    """``study``, or, where it holds trials not automm's (:func:`foreign_trial`: its user's own), an
    in-memory copy of its finished trials without them, which the plots draw as the search's."""
    trials = study.get_trials(deepcopy=False)
    if not any(foreign_trial(t) for t in trials):
        return study
    import optuna

    own = optuna.create_study(directions=study.directions)
    own.add_trials([t for t in trials if t.state.is_finished() and not foreign_trial(t)])
    return own


def _style_begin():
    import matplotlib

    kept = matplotlib.rc_context()  # (saves matplotlib's settings, puts them back at its end)
    kept.__enter__()
    return kept


#: matplotlib's settings kept while plots are drawn: Optuna's plots set the ``ggplot`` style for the
#: whole process (``plt.style.use``), so that a notebook's own figures after a search had its grey
#: background and grid; put back when the last of the searches plotting at once (in threads) ends
_PLOT_STYLE = SharedChange(_style_begin, lambda kept: kept.__exit__(None, None, None))


def write_plots(study, plot_dir: str | os.PathLike, objectives: Sequence[str] = ("score",),
                score_name: str = "validation score") -> list[str]:
    """Optimisation history and parameter importances (and the Pareto front of a
    multi-objective search) as PNG files in ``plot_dir``; returns the paths written. Needs
    matplotlib (``pip install automm[plots]``); otherwise warns and writes nothing. ``score_name``
    labels the trials' score (``"validation accuracy"``: the search says which metric it is).
    matplotlib's settings are left as found, and no figure stays open, also where a plot fails."""
    try:
        import matplotlib.pyplot as plt
        from optuna.trial import TrialState
        from optuna.visualization import matplotlib as ovm
    except ImportError:
        warnings.warn("plot_dir: matplotlib is not installed (pip install automm[plots]); no plots written",
                      AutoMMWarning, stacklevel=user_stacklevel())
        return []
    directory = Path(plot_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # the search is done: its model matters more than its plots
        warnings.warn(f"plot_dir: cannot create the folder {str(directory)!r} ({exc}); no plots written", AutoMMWarning,
                      stacklevel=user_stacklevel())
        return []
    study = _own_trials_study(study)
    multi = len(objectives) > 1
    score = (lambda t: t.values[0]) if multi else None
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history.png",
         lambda: ovm.plot_optimization_history(study, target=score, target_name=score_name)),
    ]
    sampled = sum(bool(t.params) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if sampled >= MIN_IMPORTANCE_TRIALS:
        jobs.append(("param_importances.png",
                     lambda: ovm.plot_param_importances(study, target=score, target_name=score_name,
                                                        params=_most_important(study, score))))
    else:  # optuna would draw empty axes, or importances of a few points: noise
        warnings.warn(f"plot_dir: no param_importances.png: {sampled} finished trial{'s' if sampled != 1 else ''} "
                      f"sampled parameters, and importances need at least {MIN_IMPORTANCE_TRIALS} (a search's first "
                      "trials are fixed configurations: the default and its variants; a longer search samples)",
                      AutoMMWarning, stacklevel=user_stacklevel())
    if multi:
        jobs.append(("pareto_front.png", lambda: ovm.plot_pareto_front(
            study, target_names=[score_name, second_objective(objectives)])))
    written = []
    with _PLOT_STYLE.held():
        for name, make in jobs:
            opened, figure = set(plt.get_fignums()), None
            try:
                with all_warnings_left_out():  # (a search may run in a host's thread)
                    axes = make()
                figure = axes.figure if hasattr(axes, "figure") else np.ravel(axes)[0].figure
                if name == "param_importances.png":  # one readable line per parameter
                    figure.set_size_inches(9, 1.5 + 0.4 * len(figure.axes[0].get_yticklabels()))
                figure.tight_layout()
                # written whole beside it and renamed: a link planted at the name (a shared folder) is
                # replaced, not followed (savefig would overwrite the file it points to)
                from .files import replace_whole

                replace_whole(directory / name, lambda path: figure.savefig(path, dpi=100, format="png"))
                written.append(str(directory / name))
            except Exception as exc:  # noqa: BLE001 - e.g. too few finished trials for importances
                warnings.warn(f"plot_dir: could not draw {name}: {exc}", AutoMMWarning, stacklevel=user_stacklevel())
            finally:  # (a figure left open stayed in pyplot's list: a notebook showed it, and it was never freed)
                for left in ([figure] if figure is not None else set(plt.get_fignums()) - opened):
                    plt.close(left)
    return written


#: The parameters a parameter-importance plot shows at most (the most important).
MAX_PLOTTED_PARAMS = 15


def _most_important(study, target) -> list[str] | None:
    """The :data:`MAX_PLOTTED_PARAMS` most important parameters of ``study`` (None: all, when
    there are no more than that); a search's conditional spaces have dozens."""
    import optuna

    importances = optuna.importance.get_param_importances(study, target=target)
    return list(importances)[:MAX_PLOTTED_PARAMS] if len(importances) > MAX_PLOTTED_PARAMS else None
