"""The search's gradient-boosted model: scikit-learn's histogram gradient boosting on the table columns.

A network over many table columns drowns in the ones that say nothing (``benchmarks/RESULTS.md``,
session 56), where trees split on the few that tell the label. On 1,000 fashion rows
(``time_limit=30``, three seeds), a column that tells the label (a tenth of its values another
class's) beside 192 columns of noise: subCategory / usage test accuracy 0.736 / 0.864 without
this model, 0.875 / 0.908 with it (``HistGradientBoostingClassifier`` alone 0.872 / 0.915); four
attributes beside 193 columns of noise 0.486 / 0.767, then 0.501 / 0.777 (0.510 / 0.777); the
clean columns alone, and with the title, as before within 0.005. The search trains it as one of its first trials, in seconds,
whenever the data have table columns (see :func:`boosting_config`), and the ensemble always
weighs it beside the networks (:func:`automm.trial_models.always_weighed`).

It is an ordinary :class:`~automm.model.MultimodalNet` (so saving, loading, prediction and the
ensemble need nothing special): the table input through the ``boosted_trees`` encoder
(:class:`~automm.components.trees.BoostedTreesEncoder`: the ``tabular`` encoder's preprocessing,
then the trees' summed leaf values per output), summed by the ``sum`` fusion, whose bias is
the trees' baseline. Other inputs are left out. :func:`train_boosting` grows the trees on the
training rows with scikit-learn (categories split natively, sample and class weights as every
loss reads them), the deadline and Ctrl-C watched after every iteration, stopping early by the
holdout's loss and keeping the iterations up to its lowest; then, as the linear model does, it
grows that many again on the training and holdout rows together.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .deadlines import CUT_BEFORE_LEARNING
from .exceptions import InputError
from .interrupts import InterruptGate
from .training import validation_metrics

__all__ = ["BOOSTING_SOLVER", "BOOSTED_ENCODER", "N_ITER_NO_CHANGE", "LOSS_TOLERANCE", "is_boosted", "boosting_config",
           "boosting_refusal", "trees_of", "train_boosting"]

#: ``training.solver`` of the search's gradient-boosted model.
BOOSTING_SOLVER = "boosting"

#: The encoder that holds the trees (:mod:`automm.components.trees`).
BOOSTED_ENCODER = "boosted_trees"

#: Iterations in which the holdout loss must fall by :data:`LOSS_TOLERANCE`, else boosting stops
#: (scikit-learn's ``n_iter_no_change``).
N_ITER_NO_CHANGE = 10

#: How much lower the holdout loss (per row) must fall in those iterations (scikit-learn's ``tol``;
#: its 1e-7 grew a label one column tells without error, fashion's masterCategory of 2,000 rows, to
#: all 500 iterations, the loss falling by under 1e-5 an iteration after the 70th: 4.7 s to fit, 0.44 s
#: to predict 1,000 rows; now 70, 0.7 s and 0.08 s, the same test accuracy; usage, season as before).
LOSS_TOLERANCE = 1e-4

#: The logit of a class no training row holds, below the lowest of the others' baselines.
ABSENT_CLASS_LOGIT = -30.0


def is_boosted(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is a gradient-boosted model: the search's (``training.solver``), or any
    configuration with the ``boosted_trees`` encoder (a user may name it; it learns by growing
    trees, not by gradient steps)."""
    if (config.get("training") or {}).get("solver") == BOOSTING_SOLVER:
        return True
    return any(isinstance(choice, Mapping) and choice.get("name") == BOOSTED_ENCODER
               for choice in (config.get("encoders") or {}).values())


def boosting_refusal(config: Mapping[str, Any], inputs: Sequence[Any] = ()) -> str | None:
    """Why ``config`` cannot be trained as a gradient-boosted model (None: it can): the
    ``boosted_trees`` encoder is a model of the table columns alone, and grows no embedding
    that a fusion could join with other inputs' encoders. The other inputs are named with their
    columns, as ``inputs`` (:class:`~automm.data.InputSpec`) give them (a column of many
    categories read as text: ``text_0`` alone did not say which)."""
    from .suggestions import shown_names

    others = {name: choice.get("name") for name, choice in (config.get("encoders") or {}).items()
              if not (isinstance(choice, Mapping) and choice.get("name") == BOOSTED_ENCODER)}
    if not others:
        return None
    columns = {spec.name: list(spec.columns) for spec in inputs}
    shown = ", ".join(f"{name}={encoder!r}" + (f" (columns {shown_names(columns[name])})" if columns.get(name) else "")
                      for name, encoder in others.items())
    return (f"encoders: 'boosted_trees' makes a model of the table columns alone (gradient-boosted trees, grown by "
            f"scikit-learn, not trained as part of a network), so it cannot be fused with the encoders of the other "
            f"inputs ({shown}); leave those columns out of X, or give the table another encoder (e.g. 'tabular'): "
            "a search with ensemble_size above 1 trains the gradient-boosted model beside the networks by itself")


def boosting_config(inputs: Sequence[Any], encoder_choices: Mapping[str, Mapping[str, Mapping[str, Any]]],
                    base_training: Mapping[str, Any], n_outputs: int) -> dict | None:
    """The gradient-boosted model's configuration, or None when the data have no table columns.

    ``encoder_choices`` maps each input to its encoder choices (``{encoder name:
    hyperparameters the user fixed}``); where the table's choices name ``boosted_trees``, the
    values fixed there are used, else its defaults."""
    from . import registry as _registry

    spec = _registry.get_registry().get("encoder", BOOSTED_ENCODER)
    for item in inputs:
        if item.modality != "tabular":
            continue
        fixed = dict((encoder_choices.get(item.name) or {}).get(BOOSTED_ENCODER) or {})
        params = {**spec.hyperparameters(), **fixed, "output_dim": int(n_outputs)}
        return {"encoders": {item.name: {"name": BOOSTED_ENCODER, **params}}, "fusion": {"name": "sum"},
                "augmentations": [], "training": {**base_training, "solver": BOOSTING_SOLVER}}
    return None


def trees_of(model, iterations: int, n_outputs: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first ``iterations`` boosting iterations of a fitted scikit-learn histogram gradient
    boosting ``model`` as the arrays :meth:`~automm.components.trees.BoostedTreesEncoder.set_trees`
    holds (every tree's nodes in one array; each categorical split's side of every category, an
    unknown one on its missing values' side), and the baseline of each of ``n_outputs`` outputs.
    A classifier's trees add to the logits of its classes (``model.classes_``: the indices of the
    classes its rows held); a binary one's to the second class's, the first's staying at 0."""
    from .components.trees import _CATEGORY_SLOTS, TREE_BUFFERS

    baseline = np.ravel(np.asarray(model._baseline_prediction, dtype=np.float64))
    classes = getattr(model, "classes_", None)
    if classes is None:  # regression: one output
        outputs = [0]
        bias = np.array([baseline[0]], dtype=np.float64)
    else:
        classes = np.asarray(classes, dtype=np.int64)
        outputs = [int(classes[1])] if len(baseline) == 1 else [int(c) for c in classes]
        bias = np.full(n_outputs, math.nan)
        if len(baseline) == 1:
            bias[classes] = [0.0, baseline[0]]
        else:
            bias[classes] = baseline
        bias[np.isnan(bias)] = np.nanmin(bias) + ABSENT_CLASS_LOGIT
    columns, category_codes = _feature_maps(model)
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    fields: dict[str, list[np.ndarray]] = {name: [] for name in TREE_BUFFERS}
    n_nodes = n_rows = 0

    def in_bitset(bitset: np.ndarray, values: np.ndarray) -> np.ndarray:  # (32-bit words, the lowest bit first)
        words = np.asarray(bitset, dtype=np.uint64)
        inside = np.zeros(len(values), dtype=bool)
        valid = (values >= 0) & (values < 32 * len(words))
        codes = values[valid].astype(np.uint64)
        inside[valid] = ((words[codes // np.uint64(32)] >> (codes % np.uint64(32))) & np.uint64(1)).astype(bool)
        return inside

    for per_output in model._predictors[:iterations]:
        for output, predictor in zip(outputs, per_output):
            nodes = predictor.nodes
            categorical = nodes["is_categorical"].astype(bool)
            rows = np.full(len(nodes), 0, dtype=np.int64)
            tables = []
            for index in np.flatnonzero(categorical & ~nodes["is_leaf"].astype(bool)):
                node = nodes[index]
                codes = category_codes[int(node["feature_idx"])]  # each category index's code in the trees (-1: none)
                left = in_bitset(predictor.raw_left_cat_bitsets[node["bitset_idx"]], codes)
                seen = in_bitset(known[feature_map[node["feature_idx"]]], codes)
                # scikit-learn's order: left where the split says so, else right where seen in fit, else
                # (a category it never saw) the missing values' side
                tables.append(left | (~seen & bool(node["missing_go_to_left"])))
                rows[index] = n_rows + len(tables) - 1
            threshold = nodes["num_threshold"].astype(np.float64)
            below = threshold.astype(np.float32)  # the largest float32 at or below it: x <= t alike in float32
            below = np.where(below.astype(np.float64) > threshold, np.nextafter(below, np.float32(-np.inf)), below)
            fields["node_feature"].append(columns[nodes["feature_idx"].astype(np.int64)])
            fields["node_threshold"].append(below.astype(np.float32))
            fields["node_left"].append(nodes["left"].astype(np.int64) + n_nodes)
            fields["node_right"].append(nodes["right"].astype(np.int64) + n_nodes)
            fields["node_leaf"].append(nodes["is_leaf"].astype(bool))
            fields["node_missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            fields["node_categorical"].append(categorical)
            fields["node_category_row"].append(rows)
            fields["node_value"].append(nodes["value"].astype(np.float32))
            fields["category_left"].append(np.asarray(tables, dtype=bool).reshape(-1, _CATEGORY_SLOTS))
            fields["tree_root"].append(np.array([n_nodes], dtype=np.int64))
            fields["tree_output"].append(np.array([output], dtype=np.int64))
            n_nodes += len(nodes)
            n_rows += len(tables)
    if not fields["tree_root"]:
        return None, bias.astype(np.float32)
    return {name: np.concatenate(parts) for name, parts in fields.items()}, bias.astype(np.float32)


def _feature_maps(model) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Where ``model``'s trees read the columns it was fitted on: for each feature its trees
    split on, that column's position, and for each categorical one the code its trees know each
    category index 0..255 by (-1: a category not seen in fit). With categorical columns,
    scikit-learn ordinal-encodes them first (``model._preprocessor``: their categories' codes, the
    columns moved before the others); without, it has no preprocessor and the trees read the
    columns as given."""
    from .components.trees import _CATEGORY_SLOTS

    slots = np.arange(_CATEGORY_SLOTS, dtype=np.float64)
    mask = np.asarray(model._bin_mapper.is_categorical_ if model._bin_mapper.is_categorical_ is not None
                      else np.zeros(model.n_features_in_, dtype=bool), dtype=bool)
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return np.arange(len(mask)), {j: slots.astype(np.int64) for j in np.flatnonzero(mask)}
    given = np.asarray(model.is_categorical_, dtype=bool)
    columns = np.concatenate([np.flatnonzero(given), np.flatnonzero(~given)])
    encoder = preprocessor.named_transformers_["encoder"]
    codes = {}
    for j, categories in enumerate(encoder.categories_):  # (the categorical columns come first)
        categories = np.asarray(categories, dtype=np.float64)
        code = np.full(_CATEGORY_SLOTS, -1, dtype=np.int64)
        found = np.searchsorted(categories, slots)  # (sorted, NaN last)
        hit = (found < len(categories)) & (categories[np.minimum(found, len(categories) - 1)] == slots)
        code[hit] = found[hit]
        codes[j] = code
    return columns, codes


def _hold(model, encoder, trees: dict[str, np.ndarray] | None, bias: np.ndarray) -> None:
    """Put ``trees`` into ``encoder`` and their baseline ``bias`` into ``model``'s ``sum`` fusion."""
    encoder.set_trees(trees)
    with torch.no_grad():
        model.fusion.bias.copy_(torch.as_tensor(bias))


#: Rows on which the trees read into torch are checked against scikit-learn's own predictions.
CHECKED_ROWS = 256


def _check_trees(model, encoder, boosted, inputs: np.ndarray, n_outputs: int) -> None:
    """A ``RuntimeError`` unless ``boosted``'s trees, read into ``model`` (:func:`trees_of`), give
    scikit-learn's raw predictions on ``inputs``: the trees are read from its private attributes,
    which a later release may change."""
    import sklearn

    _hold(model, encoder, *trees_of(boosted, boosted.n_iter_, n_outputs))
    with torch.no_grad():
        ours = (encoder.trees_output(torch.as_tensor(inputs)) + model.fusion.bias).numpy()
    theirs = np.asarray(boosted._raw_predict(inputs), dtype=np.float64).reshape(len(inputs), -1)
    classes = getattr(boosted, "classes_", None)
    if classes is not None:  # their columns are the classes the rows held (a binary one's: the second's)
        present = np.asarray(classes, dtype=np.int64)
        ours = ours[:, present[1:]] - ours[:, present[:1]] if theirs.shape[1] == 1 else ours[:, present]
    gap = float(np.max(np.abs(ours - theirs))) if len(inputs) else 0.0
    if not gap <= 1e-3 * max(1.0, float(np.max(np.abs(theirs), initial=0.0))):
        raise RuntimeError(f"the gradient-boosted model: the trees of scikit-learn {sklearn.__version__} read into "
                           f"torch predict otherwise than scikit-learn (by up to {gap:.3g}); this automm does not know "
                           "that release's trees: leave the model out, search_space={'boosting_model': False}")


def _outputs(model, data, index: np.ndarray) -> np.ndarray:
    """``model``'s raw outputs on ``data``'s rows ``index``, through the prediction path."""
    from .data import BatchCollator, MultimodalDataset
    from .training import make_loader, model_outputs

    encoders = dict(model.encoders.items())
    loader = make_loader(MultimodalDataset(data.subset(index), encoders), 4096, False, 0, 0, BatchCollator(encoders))
    return model_outputs(model, loader, torch.device("cpu"))


class _Watch:
    """Whether boosting stops after the iteration just grown: at the deadline, where one more
    iteration as long as the last would end past it (``reason`` "time limit"), or once
    ``interrupted()`` (Ctrl-C held: "interrupted")."""

    def __init__(self, deadline: float | None, interrupted) -> None:
        self.deadline, self.interrupted = deadline, interrupted
        self.reason: str | None = None
        self.iterations, self.last = 0, time.monotonic()

    def stop(self) -> bool:
        now = time.monotonic()
        took = now - self.last if self.iterations else 0.0  # (the first iteration's time holds the binning)
        self.iterations, self.last = self.iterations + 1, now
        if self.interrupted():
            self.reason = "interrupted"
        elif self.deadline is not None and now + took > self.deadline:
            self.reason = "time limit"
        return self.reason is not None


@functools.cache
def _watched(kind: type) -> type:
    """scikit-learn's histogram gradient boosting ``kind`` whose ``fit`` asks its ``watch`` (a
    :class:`_Watch`) after every iteration whether to stop there. scikit-learn has no callback:
    its check of early stopping by the holdout's loss, a private method called once an iteration
    with the iterations grown all whole, is where the watch is asked. (Grown up to 20 iterations
    at a time with ``warm_start``, each call binning the rows again and predicting them with
    every tree grown before, fashion's attributes beside 100 columns of noise at ``time_limit=30``
    / ``60`` took up to 32.5 / 64.2 s; the growth again on every row, one call, was not watched.)
    A ``RuntimeError`` where ``kind`` lacks that check or a validation set in ``fit`` (``X_val``,
    scikit-learn >= 1.7; 1.6's failed on it as an unexpected keyword)."""
    lacks = ("takes no validation set in fit (X_val, y_val: scikit-learn >= 1.7): upgrade scikit-learn, or"
             if "X_val" not in inspect.signature(kind.fit).parameters else
             "has no check of early stopping by the loss, in which this automm watches the deadline:"
             if not callable(getattr(kind, "_check_early_stopping_loss", None)) else None)
    if lacks:
        import sklearn

        raise RuntimeError(f"the gradient-boosted model: scikit-learn {sklearn.__version__}'s {kind.__name__} {lacks} "
                           "leave the model out, search_space={'boosting_model': False}")

    class Watched(kind):
        watch: _Watch

        def _check_early_stopping_loss(self, *args, **kwargs):
            stop = self.watch.stop()  # (first: it times every iteration)
            return super()._check_early_stopping_loss(*args, **kwargs) or stop

    Watched.__name__ = Watched.__qualname__ = kind.__name__
    return Watched


def train_boosting(data, config: dict, *, deadline: float | None = None, refit: bool = True,
                   stop_on_interrupt: bool = False):
    """Grow the gradient-boosted configuration ``config`` (see the module documentation) and
    return a :class:`~automm.pipeline.Candidate`: its ``history`` one record (the iterations
    kept, ``n_iter``, and the hyperparameters they were grown with), its holdout outputs those
    of the trees grown on the training rows as ``valid_outputs``. With ``refit`` the kept
    number of iterations is then grown again on the training and holdout rows together (not
    when the holdout is the user's validation data, never trained on, nor when the time left
    would not hold it: cut short by the deadline, the trees grown on the training rows stay),
    so ``valid_outputs`` stay honest while the model uses every row. The deadline is watched
    after every iteration (:class:`_Watch`): growth stops where one more would end past it, the
    iterations grown by then are kept; a deadline before any iteration, or before one that lowers
    the holdout loss from the start (the class priors: one guess for every row), raises
    ``TimeoutError`` (:data:`~automm.deadlines.CUT_BEFORE_LEARNING`).
    With ``stop_on_interrupt``, Ctrl-C is held (:class:`~automm.interrupts.InterruptGate`) and
    stops the growth after the iteration in progress, or the growth again on every row: the
    trees grown so far are kept (``interrupted`` is then set); in the first iteration, it raises
    ``KeyboardInterrupt`` once the iteration ends. Runs on the CPU (with scikit-learn's threads);
    training callbacks do not apply, and the search never prunes it."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from .pipeline import _SEEDED_BUILDS, Candidate, build_model

    refusal = boosting_refusal(config, data.inputs)
    if refusal:
        raise InputError(refusal)
    start = time.monotonic()
    config = copy.deepcopy(config)
    config.update(fusion={"name": "sum"}, augmentations=[])  # (a user's configuration names its own)
    config["training"] = {**config["training"], "solver": BOOSTING_SOLVER}
    (name, choice), = config["encoders"].items()
    choice["output_dim"] = int(data.n_outputs)
    classification = data.problem_type != "regression"
    with _SEEDED_BUILDS:
        torch.manual_seed(data.seed)
        model = build_model(data.inputs, config, data.n_outputs, fit_values=data.subset(data.train_index),
                            warned=data.warned).eval()
    encoder = model.encoders[name]
    rows = np.concatenate([data.train_index, data.valid_index])  # training rows first, then the holdout
    batch = encoder.preprocess_batch([data.values[name][i] for i in rows])
    n_train = len(data.train_index)
    encoder.fit_bins({key: value[:n_train] for key, value in batch.items()})
    inputs = encoder.tree_inputs(batch).numpy()
    del batch
    # a column with no value in the training rows tells the trees nothing, and scikit-learn 1.9 cannot
    # bin it (a ValueError): read as a constant, it is never split on
    inputs[:, np.isnan(inputs[:n_train]).all(axis=0)] = 0.0
    targets = data.targets[rows]
    weights = None if data.sample_weights is None else np.asarray(data.sample_weights[rows], dtype=np.float64)
    if classification and data.class_weights is not None:  # class_weight weighs each row, as every loss
        by_class = np.asarray(data.class_weights, dtype=np.float64)[targets.astype(np.int64)]
        weights = by_class if weights is None else weights * by_class
    settings = dict(learning_rate=encoder.learning_rate, max_leaf_nodes=encoder.max_leaf_nodes,
                    min_samples_leaf=encoder.min_samples_leaf, l2_regularization=encoder.l2_regularization)
    kind = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    # (early stopping by the holdout's loss as the networks' is read: weighted by the sample weights
    # alone; on the rows of the classes the training rows hold, the only ones scikit-learn scores)
    scored = np.isin(targets[n_train:], targets[:n_train]) if classification else np.ones(len(rows) - n_train, bool)
    has_holdout = bool(scored.any())

    def grower(iterations: int, patience: int):
        return _watched(kind)(**settings, max_iter=iterations, categorical_features=encoder.categorical_mask,
                              early_stopping=True, n_iter_no_change=patience, tol=LOSS_TOLERANCE, scoring="loss",
                              random_state=data.seed % (2 ** 32))

    train_part = dict(X=inputs[:n_train], y=targets[:n_train],
                      sample_weight=None if weights is None else weights[:n_train])
    valid_weights = None if data.valid_weights is None else data.valid_weights[scored]
    # (without a holdout, a training row stands in for one: the iterations are watched in the check of
    # early stopping, which then never stops them)
    valid_part = (dict(X_val=inputs[n_train:][scored], y_val=targets[n_train:][scored], sample_weight_val=valid_weights)
                  if has_holdout else dict(X_val=inputs[:1], y_val=targets[:1]))
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"the gradient-boosted model was {CUT_BEFORE_LEARNING}: it grew no tree before the "
                           "deadline")
    gate = InterruptGate() if stop_on_interrupt else None
    with gate.closed() if gate is not None else contextlib.nullcontext():
        held = (lambda: gate.pending) if gate is not None else (lambda: False)
        boosted = grower(encoder.max_iter, N_ITER_NO_CHANGE if has_holdout else encoder.max_iter + 1)
        boosted.watch = watch = _Watch(deadline, held)
        began = time.monotonic()
        boosted.fit(**train_part, **valid_part)
        grown, seconds = boosted.n_iter_, time.monotonic() - began
        if watch.reason == "interrupted" and grown < 2:  # Ctrl-C before an iteration had ended: nothing to keep
            raise KeyboardInterrupt
        if watch.reason == "interrupted":
            stop_reason = f"interrupted (KeyboardInterrupt) after {grown} iterations"
        elif watch.reason is not None:
            stop_reason = watch.reason
        elif grown < encoder.max_iter:
            stop_reason = f"holdout loss: not {LOSS_TOLERANCE:g} lower in {N_ITER_NO_CHANGE} iterations"
        else:
            stop_reason = f"max_iter={encoder.max_iter} reached"
        # the iterations up to the lowest holdout loss (scikit-learn's score is minus the loss; entry 0 is the
        # baseline); those after it are dropped before the trees are read, and checked, once
        kept = int(np.argmax(boosted.validation_score_)) if has_holdout else grown
        if kept == 0 and watch.reason == "time limit":  # (stopped by the holdout instead: the priors are its answer)
            start_point = "the class priors" if classification else "the mean"
            raise TimeoutError(f"the gradient-boosted model was {CUT_BEFORE_LEARNING}: the {grown} iteration"
                               f"{'s' if grown != 1 else ''} grown did not lower the holdout loss from its start "
                               f"({start_point}: the same guess for every row)")
        del boosted._predictors[kept:]
        _check_trees(model, encoder, boosted, inputs[:CHECKED_ROWS], data.n_outputs)
        outputs = _outputs(model, data, data.valid_index)
        valid_loss, valid_score = validation_metrics(outputs, data.valid_targets, classification, data.valid_weights,
                                                     data.metric)
        train_loss = -float(boosted.train_score_[kept]) if len(getattr(boosted, "train_score_", ())) > kept else None
        history = [{"epoch": 1, "n_iter": kept, **settings, "train_loss": train_loss, "valid_loss": valid_loss,
                    "valid_score": valid_score, "seconds": time.monotonic() - start}]
        stop_reason = f"{stop_reason}; kept {kept} iteration{'s' if kept != 1 else ''}"
        left = math.inf if deadline is None else deadline - time.monotonic()
        # (as long as the growth took an iteration, with the holdout's rows more)
        planned = (refit and not data.holdout_given and kept and watch.reason != "interrupted"
                   and seconds / grown * kept * len(rows) / max(1, n_train) < left)
        refitted = False
        if planned and not held():
            again = grower(kept, kept + 1)
            again.watch = watch_again = _Watch(deadline, held)
            again.fit(inputs, targets, sample_weight=weights, X_val=inputs[:1], y_val=targets[:1])
            refitted = again.n_iter_ == kept  # (else cut short: the trees grown on the training rows stay)
            if refitted:
                _hold(model, encoder, *trees_of(again, kept, data.n_outputs))
                stop_reason += "; grown again on the training and holdout rows"
            elif watch_again.reason == "time limit":
                stop_reason += (f"; growing them again on the training and holdout rows stopped at the time limit "
                                f"after {again.n_iter_}")
        interrupted = held()
        if interrupted:
            gate.pending = False  # (acted on: the fit ends with the trees grown so far, and says so)
            if watch.reason != "interrupted":
                stop_reason = (f"interrupted (KeyboardInterrupt) before the trees were grown again on the training "
                               f"and holdout rows: kept those grown on the training rows ({stop_reason})"
                               if planned and not refitted else
                               f"interrupted (KeyboardInterrupt) as the trees were done: kept them ({stop_reason})")
    return Candidate(config=config, model=model, history=history, best_epoch=1, best_score=float(valid_score),
                     valid_outputs=np.asarray(outputs, dtype=np.float32), stop_reason=stop_reason,
                     seconds=time.monotonic() - start, interrupted=interrupted)
