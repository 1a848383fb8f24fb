"""Where a migrating user's names are here: the keywords, methods and metric names of AutoGluon's
``MultiModalPredictor`` (and Keras's and AutoKeras's ``epochs``, ``validation_split``, ...) that a
user coming from them writes, each with what does it in automm.

The estimator's errors for an unexpected keyword, a missing attribute or an unknown metric end
with these hints: a mapping, where a did-you-mean by spelling would miss (``seed``) or mislead
(``classes``: not ``class_weight``).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["FOREIGN_KEYWORDS", "FOREIGN_METHODS", "FOREIGN_METRICS"]


def _label_name(value: Any) -> str:
    """The label column a ``label=`` keyword named, for a message's example (``'label'`` if not a name)."""
    return repr(value) if isinstance(value, str) else "'label'"


def _number(value: Any, kind: type, otherwise: Any) -> str:
    """``value`` for a message's example where it is a number of ``kind`` (not a bool), else ``otherwise``."""
    return repr(value) if isinstance(value, kind) and not isinstance(value, bool) else str(otherwise)


#: AutoGluon's names of automm's metrics (its ``eval_metric`` values): name -> ``metric=`` here.
FOREIGN_METRICS: dict[str, str] = {
    "acc": "accuracy", "f1_macro": "macro_f1", "f1_weighted": "weighted_f1", "f1_micro": "accuracy",
    "root_mean_squared_error": "rmse", "mean_squared_error": "rmse", "mean_absolute_error": "mae",
}

#: AutoGluon's ``hyperparameter_tune_kwargs`` keys and named values: key -> (automm's parameter,
#: AutoGluon's names of automm's values, lower case; None: a number, as given).
_TUNE_KWARGS = {"num_trials": ("n_trials", None),
                "searcher": ("sampler", {"bayes": "tpe"}),
                "scheduler": ("pruner", {"asha": "successive_halving", "fifo": "none"})}


def _metric_hint(value: Any) -> str:
    """``metric=`` with ``value`` written as automm names it (AutoGluon's ``'acc'``: ``'accuracy'``)."""
    from .training import CLASSIFICATION_METRICS, REGRESSION_METRICS

    known = ["auto", *CLASSIFICATION_METRICS, *REGRESSION_METRICS]
    ours = (value if value in known else FOREIGN_METRICS.get(value)) if isinstance(value, str) else None
    if ours is not None:
        return f"; the metric that validation scores and the search ranks by is metric=: AutoMM(metric={ours!r})"
    return f"; the metric that validation scores and the search ranks by is metric=, one of {known}"


def _trials_hint(value: Any) -> str:
    """``n_trials=`` with the number given (AutoGluon's ``num_trials``, AutoKeras's ``max_trials``)."""
    return f"; the number of configurations a search tries is n_trials=: AutoMM(n_trials={_number(value, int, '...')})"


def _tune_hint(value: Any) -> str:
    """The search's parameters that AutoGluon's ``hyperparameter_tune_kwargs`` ``value`` stands for
    (those of its values that automm has: no ``sampler`` for its ``"grid"`` searcher)."""
    from .search import PRUNERS, SAMPLERS

    given = value if isinstance(value, dict) else {}
    ours_named = {"sampler": SAMPLERS, "pruner": PRUNERS}
    written = []
    for key, (ours, names) in _TUNE_KWARGS.items():
        chosen = given.get(key)
        if names is None:  # a number of trials
            usable = isinstance(chosen, int) and not isinstance(chosen, bool)
        else:  # a name: automm's for it, where automm has one
            chosen = names.get(chosen.lower(), chosen.lower()) if isinstance(chosen, str) else None
            usable = chosen in ours_named[ours]
        if usable:
            written.append(f"{ours}={chosen!r}")
    example = f" (here AutoMM({', '.join(written)}))" if written else ""
    return ("; the search is the estimator's: n_trials= (num_trials), time_limit=, sampler= (searcher: 'tpe', "
            f"'random', ...), pruner= (scheduler: 'median', 'successive_halving' for ASHA, ...){example}")


def _save_hint(value: Any) -> str:
    """AutoGluon's ``path=`` and ``save_path=``: where a model is written."""
    return "; a fitted model is written with save(path) and read with AutoMM.load(path)"


def _classes_hint(value: Any) -> str:
    """AutoGluon's ``classes=`` and ``num_classes=``: the classes come from ``y``."""
    return "; the classes are the labels in fit's y (the attribute classes_ after fit)"


#: Where a keyword of AutoGluon's ``MultiModalPredictor`` (which a migrating user writes) is here:
#: method ("" the constructor) -> keyword -> the hint (a function of the value given).
FOREIGN_KEYWORDS: dict[str, dict[str, Callable[[Any], str]]] = {
    "": {
        "label": lambda v: (f"; the labels are fit's y: AutoMM().fit(X, y), e.g. with a table that holds them "
                            f"fit(frame.drop(columns=[{_label_name(v)}]), frame[{_label_name(v)}])"),
        "presets": lambda v: ("; there are no presets: time_limit= (seconds) sets how long fit searches, n_trials= "
                              "how many configurations it tries; without either it trains the default one once"),
        "hyperparameters": lambda v: ("; components are chosen with encoders=, fusion= and augmentations= (a list: "
                                      "choices to search), training with max_epochs=, learning_rate=, ..., the "
                                      "search's ranges with search_space="),
        "path": _save_hint,
        "save_path": _save_hint,
        "sample_weight": lambda v: "; sample weights are fit's: fit(X, y, sample_weight=w)",
        "eval_metric": _metric_hint,
        "validation_metric": _metric_hint,
        "seed": lambda v: f"; the seed is random_state=: AutoMM(random_state={_number(v, int, 0)})",
        "verbosity": lambda v: ("; what fit shows is AutoMM(verbose=...): 0 nothing (the default), 1 its progress "
                                "on stderr, 2 also each epoch's record"),
        "enable_progress_bar": lambda v: ("; fit shows its progress (a bar in a terminal or a notebook) under "
                                          "AutoMM(verbose=1)"),
        "num_gpus": lambda v: ("; the device is AutoMM(device=...): 'auto' (the default: CUDA when available), 'cpu', "
                               "'cuda' or 'cuda:1'"),
        "hyperparameter_tune_kwargs": _tune_hint,
        "pretrained": lambda v: ("; the default encoders learn from scratch (cnn, hashed_ngram); frozen pretrained "
                                 "ones come with the automm-pretrained plugin: encoders={'image': "
                                 "'efficientnet_lite0', 'text': 'minilm'} (a search, time_limit=, tries them when "
                                 "it is installed)"),
        "classes": _classes_hint,
        "num_classes": _classes_hint,
        "pipeline": lambda v: ("; the task is AutoMM(problem_type=...): 'auto' (read from y), 'binary', 'multiclass' "
                               "or 'regression'"),
        "use_ensemble": lambda v: ("; the ensemble is AutoMM(ensemble_size=...): 'auto' (the default: up to 3 of a "
                                   "search's best trials), 1 (the best trial alone)"),
        "epochs": lambda v: ("; the most epochs a model trains is max_epochs=: "
                             f"AutoMM(max_epochs={_number(v, int, 20)})"),
        "num_trials": _trials_hint,
        "max_trials": _trials_hint,
        "validation_split": lambda v: ("; the share of the rows held out for validation is holdout_frac=: "
                                       f"AutoMM(holdout_frac={_number(v, float, 0.1)})"),
    },
    "fit": {
        "label": lambda v: (f"; the labels are y: fit(X.drop(columns=[{_label_name(v)}]), X[{_label_name(v)}]) "
                            "(the table without its label column, then the labels)"),
        "train_data": lambda v: "; fit takes the inputs, then the labels: fit(X, y)",
        "tuning_data": lambda v: ("; validation rows are X_val and y_val: fit(X, y, X_val=V.drop(columns=[label]), "
                                  "y_val=V[label])"),
        "validation_data": lambda v: "; validation rows are X_val and y_val: fit(X, y, X_val=X_val, y_val=y_val)",
    },
    "predict": {
        "as_pandas": lambda v: "; it returns an array: pandas.Series(model.predict(X), index=X.index)",
    },
    "predict_proba": {
        "as_pandas": lambda v: ("; it returns an array whose columns are the classes in the order of classes_: "
                                "pandas.DataFrame(model.predict_proba(X), columns=model.classes_, index=X.index)"),
        "as_multiclass": lambda v: "; it gives one column per class, a binary problem's two too, in the order of classes_",
    },
    "transform": {
        "as_pandas": lambda v: "; for a DataFrame of the embedding: model.set_output(transform='pandas')",
    },
    "score": {
        "metrics": lambda v: ("; score gives accuracy (R² for regression), as scikit-learn expects; for several "
                              "metrics: from automm.evaluation import compute_metrics, positive_class; "
                              "compute_metrics(model.problem_type_, y, model.predict(X), positive=positive_class(model))"),
    },
}


#: Methods and attributes of AutoGluon's ``MultiModalPredictor`` (which a migrating user calls or
#: reads): what does it here.
FOREIGN_METHODS: dict[str, str] = {
    "evaluate": ("score(X, y) gives accuracy (R² for regression); for several metrics: from automm.evaluation "
                 "import compute_metrics, positive_class; compute_metrics(model.problem_type_, y, "
                 "model.predict(X), positive=positive_class(model)) (or automm evaluate MODEL_DIR data.csv)"),
    "leaderboard": "the search's trials are the attribute leaderboard_ (a DataFrame), after a fit that searched",
    "extract_embedding": ("transform(X) gives the fused embedding, one row per sample (a DataFrame after "
                          "set_output(transform='pandas'))"),
    "class_labels": "the classes are the attribute classes_, in the order of predict_proba's columns",
    "positive_class": ("from automm.evaluation import positive_class; positive_class(model) (a binary model's "
                       "second class of classes_)"),
    "eval_metric": ("the metric is the parameter metric; the one a fit scored validation by: "
                    "fit_summary()['validation_metric']"),
}
