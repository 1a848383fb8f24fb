"""Where a migrating user's names are here: the keywords and methods of AutoGluon's
``MultiModalPredictor`` that a user coming from it writes, each with what does it in automm.

The estimator's errors for an unexpected keyword or a missing attribute end with these hints.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["FOREIGN_KEYWORDS", "FOREIGN_METHODS"]


def _label_name(value: Any) -> str:
    """The label column a ``label=`` keyword named, for a message's example (``'label'`` if not a name)."""
    return repr(value) if isinstance(value, str) else "'label'"


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
        "path": lambda v: "; a fitted model is written with save(path) and read with AutoMM.load(path)",
        "sample_weight": lambda v: "; sample weights are fit's: fit(X, y, sample_weight=w)",
    },
    "fit": {
        "label": lambda v: (f"; the labels are y: fit(X.drop(columns=[{_label_name(v)}]), X[{_label_name(v)}]) "
                            "(the table without its label column, then the labels)"),
        "train_data": lambda v: "; fit takes the inputs, then the labels: fit(X, y)",
        "tuning_data": lambda v: ("; validation rows are X_val and y_val: fit(X, y, X_val=V.drop(columns=[label]), "
                                  "y_val=V[label])"),
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


#: Methods of AutoGluon's ``MultiModalPredictor`` (which a migrating user calls): what does it here.
FOREIGN_METHODS: dict[str, str] = {
    "evaluate": ("score(X, y) gives accuracy (R² for regression); for several metrics: from automm.evaluation "
                 "import compute_metrics, positive_class; compute_metrics(model.problem_type_, y, "
                 "model.predict(X), positive=positive_class(model)) (or automm evaluate MODEL_DIR data.csv)"),
    "leaderboard": "the search's trials are the attribute leaderboard_ (a DataFrame), after a fit that searched",
    "extract_embedding": ("transform(X) gives the fused embedding, one row per sample (a DataFrame after "
                          "set_output(transform='pandas'))"),
}
