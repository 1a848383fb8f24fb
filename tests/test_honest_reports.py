import re

import numpy as np
import pytest

from automm import AutoMM
from automm.pipeline import PreparedData, comparable_rows


def _data(targets, valid, metric):
    targets = np.asarray(targets)
    train = np.setdiff1d(np.arange(len(targets)), valid)
    return PreparedData(inputs=[], values={}, targets=targets, problem_type="multiclass", n_outputs=3,
                        train_index=train, valid_index=np.asarray(valid), seed=0, device=None, num_workers=0,
                        metric=metric)


def test_a_bags_class_averaged_score_covers_the_holdouts_classes():
    data = _data([0, 0, 1, 1, 0, 1, 2, 2], valid=[0, 2], metric="balanced_accuracy")
    assert comparable_rows(data, data.rows).tolist() == [0, 1, 2, 3, 4, 5]
    assert comparable_rows(_data([0, 0, 1, 1, 0, 1, 2, 2], [0, 2], "accuracy"), data.rows).tolist() == list(range(8))


def test_fit_warns_when_the_holdout_lacks_a_class_of_a_class_averaged_metric():
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=200).tolist()}
    y = np.where(np.array(X["x"]) > 0, "a", "b").astype(object)
    y[:1] = "rare"  # (a class of 2 rows or more has a row in the holdout: test_rare_classes)
    with pytest.warns(UserWarning, match="hold no row of 1 class \\('rare'\\).* say nothing of it \\(a class of a "
                                         "single row stays in training"):
        AutoMM(metric="balanced_accuracy", max_epochs=1, random_state=0).fit(X, list(y))


def test_fit_warns_when_the_holdout_lacks_the_positive_class_of_f1():
    """4 positives in 300 rows left none in the 30-row holdout: every model's F1 there was 0, silently.
    (The holdout holds one of them now: test_rare_classes; a single positive row stays in training,
    where no larger holdout_frac helps.)"""
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=300).tolist()}
    y = np.array(["no"] * 300, dtype=object)
    y[150] = "yes"
    with pytest.warns(UserWarning, match="hold no row of the positive class 'yes', so every model's validation F1 "
                                         "is 0") as caught:
        AutoMM(metric="f1", max_epochs=1, random_state=0).fit(X, list(y))
    assert not [w for w in caught if "holdout_frac" in str(w.message)]


def _table(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return {"x": x.tolist(), "z": rng.normal(size=n).tolist()}, np.where(x > 0, "a", "b").tolist()


def test_fit_summary_says_what_the_validation_score_was_measured_on(tmp_path):
    """A holdout score of 80 rows and an out-of-fold one of 800 looked alike in fit_summary."""
    X, y = _table(200)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, y)
    summary = model.fit_summary()
    assert (summary["validation_on"], summary["validation_rows"]) == ("holdout", 20)
    loaded = AutoMM.load(model.save(tmp_path / "m"))
    assert (loaded.fit_summary()["validation_on"], loaded.fit_summary()["validation_rows"]) == ("holdout", 20)

    bagged = AutoMM(max_epochs=1, random_state=0, num_workers=0, bag_folds=3).fit(X, y).fit_summary()
    assert (bagged["validation_on"], bagged["validation_rows"]) == ("out-of-fold", 200)  # a bag folds every row

    Xv, yv = _table(30, seed=1)
    given = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, y, X_val=Xv, y_val=yv).fit_summary()
    assert (given["validation_on"], given["validation_rows"]) == ("X_val", 30)

    tiny_X, tiny_y = _table(8, seed=2)
    with pytest.warns(UserWarning, match="too few to hold any out"):
        tiny = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(tiny_X, tiny_y).fit_summary()
    assert (tiny["validation_on"], tiny["validation_rows"]) == ("training rows", 8)


def test_a_searchs_summary_names_the_rows_its_kept_models_score_is_on():
    X, y = _table(200)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=0, n_trials=3).fit(X, y)
    summary = model.fit_summary()
    board = model.leaderboard_.set_index("number")
    if "ensemble" in summary:
        assert summary["validation_on"] in ("holdout", "out-of-fold")
        assert summary["validation_rows"] == (20 if summary["validation_on"] == "holdout" else 200)
    else:
        assert summary["validation_rows"] == board.loc[summary["best_trial"], "rows"]


def test_predict_proba_is_float64_and_its_rows_sum_to_one():
    """float32 rows summed to 1 within 2.4e-7 only: assert_allclose(p.sum(1), 1) failed on 30 of 108 rows."""
    X, y = _table(120)
    labels = np.where(np.asarray(X["z"]) > 0.5, "c", np.asarray(y, dtype=object)).tolist()
    proba = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, labels).predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=0, atol=1e-12)


def test_a_searchs_bags_and_their_ensemble_are_scored_on_the_same_rows():
    """Under macro F1 a bag's score covers the holdout's classes, but leaderboard_ gave it every
    row, and the ensemble of bags was scored on every row: 0.13 against its members' 0.27 and 0.22."""
    rng = np.random.default_rng(0)
    y = np.array([f"c{i % 4}" for i in range(200)] + [f"r{i}" for i in range(10)])  # 10 classes of one row
    X = {"x": (rng.normal(size=len(y)) + np.array([int(v[1:]) * (3 if v[0] == "r" else 1) for v in y])).tolist()}
    with pytest.warns(UserWarning, match="validation rows hold no row of 10 classes"):
        model = AutoMM(n_trials=2, bag_folds=3, metric="macro_f1", max_epochs=2, random_state=0, num_workers=0,
                       search_space={"linear_model": False, "neighbors_model": False, "warm_start": False}).fit(X, y)
    summary, board = model.fit_summary(), model.leaderboard_
    assert summary["validation_on"] == "out-of-fold" and "ensemble" in summary
    assert summary["validation_rows"] == 200 and set(board["rows"]) == {200}  # the rows of the holdout's 4 classes
    assert summary["validation_score"] >= board["score"].max() - 0.05


def test_predicts_own_score_is_on_the_rows_of_the_validation_score():
    """A bag's validation score leaves out the rows of classes the holdout lacks (comparable_rows);
    predict's own score counted them: a class of one row, wrong out of fold, made it 0.64 beside a
    validation score of 0.77 for decisions chosen because they scored better."""
    from automm.pipeline import decided_score

    data = _data([0, 0, 0, 1, 1, 1, 2], valid=[0, 3], metric="balanced_accuracy")
    outputs = np.log(np.array([[.9, .1, 0], [.9, .1, 0], [.4, .6, 0], [.1, .9, 0], [.1, .9, 0], [.1, .9, 0],
                               [.5, .5, 0]]) + 1e-6)
    score = decided_score(data, outputs, data.rows, np.array([1.0, 0.5, 1.0]))
    assert score == pytest.approx(1.0)  # rows 0-5, classes 0 and 1: each right under the weights; not (1 + 1 + 0) / 3


def _prune_at(step_wanted):
    """An Optuna step pruner (a percentile one, so that bags report after each fold) that prunes a
    trial once it has reported ``step_wanted(steps)``."""
    import optuna

    class Pruner(optuna.pruners.PercentilePruner):
        def __init__(self):
            super().__init__(50.0)

        def prune(self, study, trial):
            return step_wanted(set(trial.intermediate_values))

    return Pruner()


@pytest.mark.parametrize("when, folds_scored", [("epoch 1", 1), ("fold 2", 2)])
def test_a_pruned_bags_rows_are_those_of_the_folds_it_was_scored_on(when, folds_scored):
    """A bag pruned in its first fold is scored on that fold's rows (40 of 200), one pruned after
    fold 2 out of fold on the rows of those two folds (80); leaderboard_ said 20 rows, the holdout's,
    which neither score was measured on (and fit_summary, when such a bag was kept, said "holdout")."""
    from automm.search import FOLD_REPORT_STEP

    X, y = _table(200)
    pruner = _prune_at((lambda steps: 1 in steps) if when == "epoch 1" else (lambda steps: FOLD_REPORT_STEP + 2 in steps))
    model = AutoMM(n_trials=2, bag_folds=5, max_epochs=2, random_state=0, num_workers=0, pruner=pruner,
                   search_space={"warm_start": False, "linear_model": False, "neighbors_model": False}).fit(X, y)
    board = model.leaderboard_
    assert list(board["state"]) == ["PRUNED", "PRUNED"]
    assert all(reason.startswith("pruned at epoch 1" if when == "epoch 1" else "pruned after fold 2")
               for reason in board["reason"])
    assert set(board["rows"]) == {40 * folds_scored}
    summary = model.fit_summary()
    assert (summary["validation_on"], summary["validation_rows"]) == ("out-of-fold", 40 * folds_scored)


def test_a_candidate_handed_over_in_files_keeps_what_its_score_was_measured_on(tmp_path):
    """A search process hands its models to fit through files (n_jobs > 1, artifact_dir): a pruned
    bag's "out-of-fold, 80 rows" came back as the holdout's."""
    import dataclasses
    import types

    import torch

    from automm import trial_models
    from automm.pipeline import Candidate

    X, y = _table(60)
    model = AutoMM(max_epochs=1, random_state=0, num_workers=0).fit(X, y)
    candidate = Candidate(config=model.config_, model=model.model_, history=list(model.history_), best_epoch=1,
                          best_score=0.5, valid_outputs=None, stop_reason="pruned after fold 2 of 5", seconds=1.0,
                          scored_on=("out-of-fold", 80))
    data = types.SimpleNamespace(inputs=model.inputs_, device=torch.device("cpu"))
    for number, scored_on in ((3, ("out-of-fold", 80)), (4, None)):  # (None: scored_on's rule, from the data)
        trial_models.write_candidate(dataclasses.replace(candidate, scored_on=scored_on), tmp_path / f"trial-{number}")
        again = trial_models.read_candidate(tmp_path / f"trial-{number}", data)
        assert again.scored_on == scored_on and again.best_score == 0.5


def test_a_search_that_keeps_one_bag_does_not_call_it_an_ensemble_of_trials(capsys):
    """ensemble_size=1 and a bagged best trial: the search said "kept an ensemble of trials 0
    (1.00), linear pooling" and automm fit "ensemble  trial 0 (1.00)", for one trial's fold models."""
    from automm.cli import _fit_report

    X, y = _table(200)
    model = AutoMM(n_trials=2, bag_folds=3, ensemble_size=1, max_epochs=1, random_state=0, num_workers=0, verbose=1,
                   search_space={"warm_start": False, "linear_model": False, "neighbors_model": False}).fit(X, y)
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[automm] search done")][-1]
    assert "ensemble" not in last
    assert last.endswith(f"kept trial {model.best_trial_} (out-of-fold accuracy {model.best_score_:.4f}), "
                         "its 3 fold models averaged (bag_folds)"), last
    summary = model.fit_summary()
    assert [m["trial"] for m in summary["ensemble"]["members"]] == [model.best_trial_]
    report = _fit_report({**summary, "recipe": "r.yaml", "data": "d.csv", "label": "y", "train_rows": 200,
                          "test_rows": 0, "model_dir": "m"}, None)
    line = next(line for line in report.splitlines() if line.strip().startswith("ensemble"))
    assert line.split(None, 1)[1] == f"3 fold models of trial {model.best_trial_} averaged (bag_folds); linear pooling"


def test_a_bagged_trials_line_says_its_score_is_out_of_fold(capsys):
    """A bag's line read "trial 1: accuracy 0.7700", as a holdout-scored trial's "trial 0: accuracy
    0.7000" does (emoji: 300 out-of-fold rows beside a 30-row holdout, in one search)."""
    X, y = _table(200)
    model = AutoMM(n_trials=2, bag_folds=3, max_epochs=1, random_state=0, num_workers=0, verbose=1,
                   search_space={"warm_start": False, "linear_model": False, "neighbors_model": False}).fit(X, y)
    lines = [line for line in capsys.readouterr().err.splitlines() if re.match(r"\[automm\] trial \d: ", line)]
    board = model.leaderboard_.set_index("number")
    assert len(lines) == 2
    for line in lines:
        number = int(line.split()[2][:-1])
        assert line.startswith(f"[automm] trial {number}: out-of-fold accuracy {board.loc[number, 'score']:.4f} ("), line


def test_the_warning_of_a_majority_positive_class_never_rounds_it_to_half():
    """201 positives of 400: "'yes', which is the majority (50% of the rows)": a half is no majority
    (and 399 of 400 would have read "100% of the rows", leaving no row of 'no')."""
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=400).tolist()}
    for positives, shown in ((201, "50.2%"), (399, "99.8%"), (300, "75%")):
        y = ["yes"] * positives + ["no"] * (400 - positives)
        with pytest.warns(UserWarning, match=rf"'yes', which is the majority \({re.escape(shown)} of the rows\)"):
            AutoMM(metric="f1", max_epochs=1, random_state=0, num_workers=0).fit(X, y)


def test_a_score_short_of_one_is_never_shown_as_one():
    """One error among 30,000 test rows (accuracy 0.99997) read "test accuracy  1.0000", and a holdout
    score of 0.99996 "trial 3: accuracy 1.0000": four places rounded a score to a perfect one (or a
    regression's small error, -0.00003, to "-0.0000"); they show the digits that tell it apart."""
    from automm.cli import _format_value
    from automm.pipeline import score_text

    assert _format_value(1 - 1 / 30000) == "0.99997" and _format_value(-0.00003) == "-0.00003"
    assert [_format_value(v) for v in (1.0, 0.0, 0.93751, 0.5)] == ["1.0000", "0.0000", "0.9375", "0.5000"]
    assert _format_value(float("nan")) == "nan"
    data = _data([0, 1, 1, 0], valid=[0, 1], metric="accuracy")
    assert score_text(data, 0.99996) == "holdout accuracy 0.99996" and score_text(data, 1.0) == "holdout accuracy 1.0000"


def test_the_search_plots_name_the_metric_their_scores_are(tmp_path, monkeypatch):
    """optimization_history.png's axis read "validation score": for a regression, the negated MSE of
    the standardised targets (-0.68) beside an R² of 0.25 everywhere else, unnamed."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda figure=None: (figures.append(figure), close(figure)))
    rng = np.random.default_rng(0)
    X = {"x": rng.normal(size=120).tolist()}
    with pytest.warns(UserWarning, match="no param_importances.png"):  # (too few trials for it)
        AutoMM(n_trials=2, max_epochs=1, random_state=0, num_workers=0, plot_dir=str(tmp_path),
               problem_type="regression", search_space={"linear_model": False}).fit(X, (np.asarray(X["x"]) * 3).tolist())
    (figure,) = [f for f in figures if isinstance(f, Figure)]  # (matplotlib 3.7 closes "all" choosing its backend)
    assert figure.axes[0].get_ylabel() == "validation neg_mse (standardised)"


def test_a_pruning_reason_never_shows_a_trial_equal_to_the_median_it_fell_below():
    """"best 0.9233 below the median 0.9233": four significant digits rounded 0.92333 and the median
    0.92334 to one number, so the stated reason read as false."""
    import optuna

    from automm.leaderboard import TRIAL_ATTR
    from automm.pruning import ArchitectureMedianPruner

    pruner = ArchitectureMedianPruner(n_startup_trials=3, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", pruner=pruner)

    def run(curve, finish=True):
        trial = study.ask()
        trial.set_user_attr(TRIAL_ATTR + "config", {"encoders": {"tabular": {"name": "tabular"}},
                                                    "fusion": {"name": "concat"}})
        for step, value in enumerate(curve, 1):
            trial.report(value, step)
        if finish:
            study.tell(trial, curve[-1])
        return trial

    for value in (0.9, 0.92334, 0.95):
        run([value])
    stopped = run([0.92333], finish=False)
    assert pruner.prune(study, study._storage.get_trial(stopped._trial_id))
    assert pruner.reason(stopped.number) == ("best 0.92333 below the median 0.92334 of 3 finished trials of its "
                                             "architecture")
    weaker = run([0.81], finish=False)  # (apart at four digits: as before)
    assert pruner.prune(study, study._storage.get_trial(weaker._trial_id))
    assert pruner.reason(weaker.number).startswith("best 0.81 below the median 0.9233 of")


def test_a_worker_of_several_processes_counts_the_trials_of_each(tmp_path):
    """`automm worker --n-jobs 2` ran 8 trials, 4 in each of its processes, and said "done: this worker
    ran 4 trial(s)": only those of the process it was started in."""
    import optuna

    from automm import search
    from automm.leaderboard import TRIAL_ATTR
    from automm.worker import run_worker

    X, y = _table(200)
    journal = str(tmp_path / "study.log")
    AutoMM(n_trials=1, max_epochs=1, ensemble_size=1, random_state=0, num_workers=0, storage=journal,
           study_name="w").fit(X, y)
    study = optuna.load_study(study_name="w", storage=search.make_storage("journal", journal))
    search.register_fit(study, "elsewhere:1", "running", n_trials=7)  # (a fit on another machine, still running)
    ran = run_worker(journal, "w", n_jobs=2, wait=5, device="cpu")
    tags = [t.user_attrs.get(TRIAL_ATTR + "worker") for t in study.get_trials(deepcopy=False)]
    assert len(tags) == 7 and len(set(tags)) == 2  # this process (the fit's trial and the worker's) and its fork
    assert ran == len(tags) - 1  # all but the fit's trial 0
