"""What a notebook user sees: warnings that point at their own line (shown again each time a cell
runs), and no empty plot in ``plot_dir``."""

import warnings

import numpy as np
import pytest

from automm import AutoMM, AutoMMClassifier, AutoMMWarning
from automm.exceptions import user_stacklevel
from helpers import CtrlC, tiny


@pytest.fixture(scope="module")
def fitted(emoji_split):
    train, test = emoji_split
    return AutoMMClassifier(**tiny(max_epochs=1)).fit(train[["image", "name"]], train["category"]), test


def test_a_warning_points_at_the_users_line_and_shows_each_time(fitted):
    """Jupyter shows a warning once per line that it names: one naming a line inside automm
    showed once per kernel, so re-running a cell hid it."""
    clf, test = fitted
    bad = test[["image", "name"]].copy()
    bad.loc[0, "image"] = "/no/such/picture.png"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")  # Python's and Jupyter's: once per warning and line
        clf.predict(bad)
        clf.predict(bad)
        clf.score(bad, test["category"])
    unreadable = [w for w in record if "cannot be read" in str(w.message)]
    assert len(unreadable) == 3
    assert {w.filename for w in unreadable} == {__file__}


def test_fit_warnings_point_at_the_users_line(emoji_split, monkeypatch):
    train, _ = emoji_split
    X, y = train[["image", "name"]], train["category"]
    with pytest.warns(UserWarning, match="column-vector y") as record:
        AutoMMClassifier(**tiny(max_epochs=1)).fit(X, np.asarray(y, dtype=object).reshape(-1, 1))
    assert [w.filename for w in record if "column-vector" in str(w.message)] == [__file__]
    monkeypatch.setattr(AutoMM, "_extra_callbacks", lambda self: [CtrlC(epoch=2)])
    with pytest.warns(UserWarning, match=r"fit interrupted \(KeyboardInterrupt\)") as record:
        AutoMM(**tiny(max_epochs=3)).fit(X, y)
    assert [w.filename for w in record if "interrupted" in str(w.message)] == [__file__]


def test_user_stacklevel_skips_automm_and_the_libraries_calling_it():
    assert user_stacklevel() == 1  # called from here, outside automm
    namespace = {"__name__": "automm_someplugin.module", "user_stacklevel": user_stacklevel}
    exec("def level():\n    return user_stacklevel()", namespace)
    assert namespace["level"]() == 2  # the plugin's frame is skipped: this test's line


def test_user_stacklevel_in_a_worker_process_names_the_call_into_automm():
    """In a joblib worker of ``cross_val_score(n_jobs=2)`` the stack holds no line of the user's:
    every warning named ``multiprocessing/process.py:108: self._target(...)``; now scikit-learn's
    ``estimator.fit(X_train, ...)``. Frames under those modules' names stand in for the worker's."""
    def frame_of(module, source):
        namespace = {"__name__": module, "user_stacklevel": user_stacklevel}
        exec(source, namespace)
        return namespace["call"]
    fit = frame_of("automm.estimator", "def call():\n    return user_stacklevel()")
    fit_and_score = frame_of("sklearn.model_selection._validation", "def call(f):\n    return f()")
    for starter in ("multiprocessing.process", "threading", "concurrent.futures.process"):
        run = frame_of(starter, "def call(f, g):\n    return f(g)")
        assert run(fit_and_score, fit) == 2  # the frame that called automm, not the starter's (3)
    user = frame_of("__main__", "def call(f, g):\n    return f(g)")
    assert user(fit_and_score, fit) == 3  # a line of the user's still wins


def test_no_importance_plot_from_too_few_sampled_trials(tmp_path):
    """A short search ends with its fixed first trials only: optuna drew empty axes."""
    import optuna

    from automm.leaderboard import write_plots

    OURS = {"automm:config": {}}  # (automm's trials, as a search records them: a user's own are not plotted)
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.7):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}, user_attrs=OURS))
    with pytest.warns(UserWarning, match="no param_importances.png: 0 finished trials sampled parameters, and "
                                         "importances need at least 10") as record:
        written = write_plots(study, tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in written] == ["optimization_history.png"]
    # (the first of the warnings recorded: matplotlib 3.7's use of pyparsing 3.3 warns too)
    assert [w.filename for w in record if w.category is AutoMMWarning] == [__file__]
    # a few sampled trials: every parameter came out about equally important, which says nothing
    rng = np.random.default_rng(0)
    space = {"x": optuna.distributions.FloatDistribution(0, 1), "y": optuna.distributions.FloatDistribution(0, 1)}
    for _ in range(9):
        x, y = rng.uniform(size=2)
        study.add_trial(optuna.trial.create_trial(value=float(x), params={"x": x, "y": y}, distributions=space,
                                                  user_attrs=OURS))
    with pytest.warns(UserWarning, match="9 finished trials sampled parameters"):
        assert len(write_plots(study, tmp_path / "few")) == 1
    study.add_trial(optuna.trial.create_trial(value=0.6, params={"x": 0.6, "y": 0.1}, distributions=space, user_attrs=OURS))
    assert len(write_plots(study, tmp_path / "more")) == 2


def test_plots_leave_matplotlib_as_they_found_it(tmp_path):
    """Optuna's plots set the ggplot style for the whole process: a notebook's own figures after a
    search with plot_dir had a grey background and a grid (16 settings changed); and a plot that
    could not be written (its file's name taken by a folder) left its figure open in pyplot, one
    more at each search, shown by a notebook and never freed."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    import optuna

    from automm.leaderboard import write_plots

    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.7):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={},
                                                  user_attrs={"automm:config": {}}))

    def settings():
        return {key: matplotlib.rcParams[key] for key in matplotlib.rcParams if key != "backend"}

    before, figures = settings(), plt.get_fignums()
    with pytest.warns(AutoMMWarning, match="no param_importances.png"):
        assert len(write_plots(study, tmp_path / "plots")) == 1
    assert settings() == before and plt.get_fignums() == figures
    (tmp_path / "taken" / "optimization_history.png").mkdir(parents=True)
    with pytest.warns(AutoMMWarning) as record:
        assert write_plots(study, tmp_path / "taken") == []
    assert any("could not draw optimization_history.png" in str(w.message) for w in record)
    assert settings() == before and plt.get_fignums() == figures
