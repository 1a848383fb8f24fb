"""Offline comparison of ensemble selection rules (``automm.ensemble``) on the real data in
``$AUTOMM_DATA`` or ``../shared/data`` (fixed ``split`` columns), automm-pretrained installed.

Two parts:

* ``capture`` — fits ``AutoMM(time_limit=..., random_state=seed)`` per task and seed and saves, for
  every trial the ensemble weighed (the search's pool, best-ranked first), its raw holdout outputs,
  the holdout targets and its raw outputs on the test rows (a bag: each fold model's), plus the
  weights and pooling the fit chose, to ``--outputs/<task>-<seed>.npz``. The search is observed,
  not changed: ``automm.search._conclude`` and ``_obtain`` and ``automm.ensemble.calibrate`` are
  wrapped to see the pool.
* ``compare`` — reruns every rule of :data:`RULES` on the saved outputs (seconds) and prints test
  errors and test log-loss per rule and case, their sums and means, and how many cases and test rows
  each rule wins or loses against today's; first it checks that today's rule replayed gives each
  fitted model's own test errors and log-loss (``DIFFERENT`` where not).

Session 59, ``--time-limit 270``, seeds 0-5 (18 fits): today's rule 658 test errors, mean log-loss
0.1243; the best-ranked member alone 721 (0.1485). No rule won on seeds 0-2 and held on seeds 3-5;
bagged selection's sums moved from 652 to 666 with its own random seed alone (mean 658).

Takes, on 2 shared cores: ``capture`` about ``--time-limit`` plus 2 to 25 s per case (the default 270 s,
9 cases: about 40 minutes; the emoji features are computed once into the cache); ``compare`` 10-30 s.

Usage::

    python benchmarks/bench_ensemble_selection.py --parts capture --cache-dir ~/.cache/automm
    python benchmarks/bench_ensemble_selection.py --parts compare
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_pretrained.py

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

TASKS = ("fashion-subcategory", "fashion-usage", "emoji-category")


# -- capture -----------------------------------------------------------------------------

def capture(task: str, seed: int, folder: Path, **options) -> None:
    """Fit one search (``AutoMM(random_state=seed, **options)``) and save what its ensemble
    selection saw (see the module docstring)."""
    import automm.ensemble as ensemble_module
    import automm.search as search_module
    from automm import AutoMM
    from automm.components.stack import describe_encoder
    from automm.ensemble import Ensemble, ensemble_members
    from common import load_task

    train, test, image, text, label = load_task(task)
    seen: dict = {"candidates": {}, "calls": [], "concluding": False}
    originals = (search_module._conclude, search_module._obtain, ensemble_module.calibrate)

    def conclude(estimator, study, ctx, deadline):
        seen["ctx"], seen["concluding"] = ctx, True
        try:
            return originals[0](estimator, study, ctx, deadline)
        finally:
            seen["concluding"] = False

    def obtain(number, *args, **kwargs):
        candidate = originals[1](number, *args, **kwargs)
        if candidate is not None:
            seen["candidates"][number] = candidate
        return candidate

    def calibrate(outputs, *args, **kwargs):
        if seen["concluding"]:
            seen["calls"].append(list(outputs))
        return originals[2](outputs, *args, **kwargs)

    search_module._conclude, search_module._obtain, ensemble_module.calibrate = conclude, obtain, calibrate
    try:
        start = time.perf_counter()
        model = AutoMM(random_state=seed, **options)
        model.fit(train[[image, text]], train[label])
        fit_seconds = time.perf_counter() - start
    finally:
        search_module._conclude, search_module._obtain, ensemble_module.calibrate = originals
    data = seen["ctx"].data
    pool_outputs = seen["calls"][0] if seen["calls"] else []  # (the pool's; a lone model's comes after)
    oof = False  # bags alone in the pool: selected on every row's out-of-fold outputs
    trials = []
    for output in pool_outputs:  # which candidate each pooled output is (holdout: the same array; bags: a copy)
        match = [n for n, c in seen["candidates"].items() if output is c.valid_outputs]
        if not match:
            oof = True
            match = [n for n, c in seen["candidates"].items() if c.oof_outputs is not None
                     and np.array_equal(output, c.oof_outputs[data.rows])]
        trials.append(match[0])
    if oof:
        targets, row_weights = data.targets[data.rows], data.weights(data.rows)
    else:
        targets, row_weights = data.valid_targets, data.valid_weights
    codes = {c: i for i, c in enumerate(model.classes_)}
    test_targets = np.array([codes.get(v, -1) for v in test[label]])
    arrays = {"holdout_targets": np.asarray(targets), "test_targets": test_targets, "trials": np.array(trials)}
    if row_weights is not None:
        arrays["holdout_weights"] = np.asarray(row_weights)
    kept = getattr(model, "ensemble_", None)
    start = time.perf_counter()
    describe = {}
    for i, (number, output) in enumerate(zip(trials, pool_outputs)):
        candidate = seen["candidates"][number]
        arrays[f"holdout_{i}"] = np.asarray(output, dtype=np.float32)
        for k, member in enumerate(ensemble_members(number, candidate, 1.0)):
            # its log-probabilities (the logarithmic pool of one member: log_softmax, unclipped)
            model.__dict__["ensemble_"] = Ensemble([member], data.problem_type, "logarithmic")
            arrays[f"test_{i}_{k}"] = model._raw_outputs((test[[image, text]],))
        describe[int(number)] = {"encoders": {k: describe_encoder(v) for k, v in candidate.config["encoders"].items()},
                                 "fusion": candidate.config["fusion"]["name"],
                                 "solver": candidate.config["training"].get("solver"),
                                 "holdout_score": float(candidate.best_score), "folds": len(candidate.bag or [None])}
    if kept is None:
        model.__dict__.pop("ensemble_")
    else:
        model.__dict__["ensemble_"] = kept
    kept_weights = {}
    for member in kept.describe() if kept is not None else []:
        kept_weights[int(member["trial"])] = kept_weights.get(int(member["trial"]), 0.0) + member["weight"]
    probabilities = model.predict_proba(test[[image, text]])  # the fitted model's own test errors and log-loss
    known = test_targets >= 0  # (a label training never saw: an error, left out of the log-loss)
    errors = int((probabilities.argmax(1) != test_targets).sum())
    log_loss = float(-np.log(probabilities[known, test_targets[known]]).mean())
    meta = {"task": task, "seed": seed, "options": options, "fit_seconds": fit_seconds,
            "output_seconds": time.perf_counter() - start, "test_errors": errors, "test_log_loss": log_loss,
            "oof": oof,
            "pooling": kept.pooling if kept is not None else None, "kept_weights": kept_weights,
            "best_trial": int(model.best_trial_), "members": describe,
            "trials_run": len(model.leaderboard_), "n_test": len(test)}
    arrays["meta"] = np.array(json.dumps(meta))
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"{task}-{seed}.npz", **arrays)
    print(json.dumps({"part": "capture", **meta}), flush=True)


# -- compare -----------------------------------------------------------------------------

class Case:
    """One saved capture: the pool's holdout outputs (best-ranked first), targets and row weights,
    each member's fold models' test log-probabilities, the test targets."""

    def __init__(self, path: Path):
        saved = np.load(path)
        self.meta = json.loads(str(saved["meta"]))
        self.name = f"{self.meta['task']}-{self.meta['seed']}"
        self.targets = saved["holdout_targets"].astype(np.int64)
        self.weights = saved["holdout_weights"] if "holdout_weights" in saved else None
        self.holdout = [saved[f"holdout_{i}"] for i in range(len(saved["trials"]))]
        self.test = [[saved[k] for k in sorted((k for k in saved if k.startswith(f"test_{i}_")),
                                               key=lambda k: int(k.rsplit("_", 1)[1]))]
                     for i in range(len(self.holdout))]
        known = saved["test_targets"] >= 0
        self.test_targets = saved["test_targets"][known].astype(np.int64)
        self.test = [[o[known] for o in folds] for folds in self.test]

    def test_log_probabilities(self, weights, temperatures, pooling: str) -> np.ndarray:
        """The pool's test log-probabilities under ``weights`` (a bag's fold models share its
        weight, as :func:`automm.ensemble.ensemble_members` has them), ``temperatures``, ``pooling``."""
        from automm.ensemble import _log_softmax, combine

        outputs, shares = [], []
        for folds, weight, temperature in zip(self.test, weights, temperatures):
            for fold in folds:
                outputs.append(fold * temperature)
                shares.append(weight / len(folds))
        return _log_softmax(combine(outputs, shares, "multiclass", pooling))

    def predictions(self, weights, temperatures, pooling: str) -> np.ndarray:
        return self.test_log_probabilities(weights, temperatures, pooling).argmax(1)

    def evaluate(self, weights, temperatures, pooling: str) -> tuple[int, float]:
        """Test errors and log-loss (see :meth:`test_log_probabilities`)."""
        log_p = self.test_log_probabilities(weights, temperatures, pooling)
        errors = int((log_p.argmax(1) != self.test_targets).sum())
        return errors, float(-log_p[np.arange(len(self.test_targets)), self.test_targets].mean())


def _greedy(predictions, pooling, rounds, key):
    """Greedy selection with replacement as :func:`automm.ensemble.greedy_selection` (whose
    criterion is fixed), under any ``key(pooled probabilities)`` (higher is better): the best
    round's weights and key."""
    from automm.ensemble import _softmax

    logarithmic = pooling == "logarithmic"
    pooled = _softmax if logarithmic else (lambda mean: mean)
    counts, total = np.zeros(len(predictions), dtype=np.int64), np.zeros_like(predictions[0])
    best_counts, best_key = None, None
    for step in range(1, rounds + 1):
        keys = [key(pooled((total + p) / step)) for p in predictions]
        choice = max(range(len(keys)), key=lambda j: (keys[j], -j))
        counts[choice] += 1
        total = total + predictions[choice]
        if best_key is None or keys[choice] > best_key:
            best_key, best_counts = keys[choice], counts.copy()
    return best_counts / best_counts.sum(), best_key


def _pool_inputs(scaled, pooling):
    from automm.ensemble import _log_softmax, _softmax

    return [_log_softmax(o) if pooling == "logarithmic" else _softmax(o) for o in scaled]


def _temperatures(case: Case, prior: bool):
    from automm.ensemble import calibrate
    from automm.pipeline import TEMPERATURE_PRIOR_SD

    return calibrate(case.holdout, case.targets, "multiclass", case.weights,
                     prior_sd=TEMPERATURE_PRIOR_SD if prior else None)


def rule_current(case, seed, prior=False):
    """Today's: temperatures without the prior, :func:`automm.ensemble.select_ensemble`."""
    from automm.ensemble import select_ensemble

    temperatures = _temperatures(case, prior)
    weights, pooling = select_ensemble([o * t for o, t in zip(case.holdout, temperatures)], case.targets,
                                       "multiclass", sample_weights=case.weights)
    return weights, temperatures, pooling


def rule_prior(case, seed):
    """Today's selection on temperatures fitted under the prior (as a lone model's)."""
    return rule_current(case, seed, prior=True)


def rule_best(case, seed):
    """The best-ranked member alone, at its temperature under the prior (``ensemble_size=1``)."""
    weights = np.zeros(len(case.holdout))
    weights[0] = 1.0
    return weights, _temperatures(case, True), "linear"


def rule_accuracy_first(case, seed):
    """Greedy selection ranking rounds by holdout accuracy, then log-loss; the pooling with the
    better (accuracy, -log-loss)."""
    from automm.ensemble import POOLINGS, _criterion, DEFAULT_ROUNDS

    temperatures = _temperatures(case, False)
    scaled = [o * t for o, t in zip(case.holdout, temperatures)]
    best = None
    for pooling in POOLINGS:
        weights, key = _greedy(_pool_inputs(scaled, pooling), pooling, DEFAULT_ROUNDS,
                               lambda p: _criterion(p, case.targets, "multiclass", case.weights))
        if best is None or key > best[0]:
            best = (key, weights, pooling)
    return best[1], temperatures, best[2]


def _bagged(case, seed, draw, bags=25):
    """Caruana et al. 2006's bagged selection over holdout rows: today's rule on each of ``bags``
    row samples (``draw(rng, n)`` gives the rows), the weights averaged; the temperatures and the
    pooling those of the whole holdout."""
    from automm.ensemble import greedy_selection

    temperatures = _temperatures(case, False)
    scaled = [o * t for o, t in zip(case.holdout, temperatures)]
    _, _, pooling = rule_current(case, seed)
    rng = np.random.default_rng(seed)
    total = np.zeros(len(scaled))
    for _ in range(bags):
        rows = draw(rng, len(case.targets))
        weights = greedy_selection([o[rows] for o in scaled], case.targets[rows], "multiclass", pooling=pooling,
                                   sample_weights=None if case.weights is None else case.weights[rows])[0]
        total += weights
    return total / bags, temperatures, pooling


def rule_bagged_bootstrap(case, seed):
    """Bagged selection on bootstrap samples of the holdout rows (25)."""
    return _bagged(case, seed, lambda rng, n: rng.integers(0, n, n))


def rule_bagged_halves(case, seed):
    """Bagged selection on random halves of the holdout rows (25)."""
    return _bagged(case, seed, lambda rng, n: rng.permutation(n)[: max(1, n // 2)])


def _shrunk(case, seed, strength, toward="ranked"):
    """Today's weights moved towards one member alone (``toward``: ``"ranked"``, the best-ranked;
    ``"loss"``, the one of the lowest holdout log-loss, the greedy selection's first choice;
    ``"errors"``, the one of the fewest holdout errors, then the lowest log-loss): a share
    ``d / (d + strength)`` kept, ``d`` the holdout rows on which the members kept disagree (their
    argmax differs)."""
    from automm.ensemble import _criterion, _softmax

    weights, temperatures, pooling = rule_current(case, seed)
    kept = [o for o, w in zip(case.holdout, weights) if w > 0]
    answers = np.stack([o.argmax(1) for o in kept])
    disagreeing = int((answers != answers[0]).any(0).sum())
    share = disagreeing / (disagreeing + strength)
    alone = 0
    if toward != "ranked":
        scores = [_criterion(_softmax(o * t), case.targets, "multiclass", case.weights)
                  for o, t in zip(case.holdout, temperatures)]  # (accuracy, -log-loss)
        alone = max(range(len(weights)), key=lambda i: (scores[i] if toward == "errors" else scores[i][1], -i))
    best = np.zeros(len(weights))
    best[alone] = 1.0
    return share * weights + (1 - share) * best, temperatures, pooling


def rule_shrink_5(case, seed):
    return _shrunk(case, seed, 5.0)


def rule_shrink_20(case, seed):
    return _shrunk(case, seed, 20.0)


def rule_shrink_5_lowest_loss(case, seed):
    return _shrunk(case, seed, 5.0, toward="loss")


def rule_shrink_20_lowest_loss(case, seed):
    return _shrunk(case, seed, 20.0, toward="loss")


def rule_shrink_5_fewest_errors(case, seed):
    return _shrunk(case, seed, 5.0, toward="errors")


def rule_gate(case, seed, z=1.0):
    """Today's ensemble only where its holdout log-loss beats the best-ranked member's (at its
    temperature under the prior) by ``z`` standard errors of the rows' paired differences; else
    that member alone."""
    from automm.ensemble import combine

    weights, temperatures, pooling = rule_current(case, seed)
    best_weights, best_temperatures, _ = rule_best(case, seed)

    def row_losses(w, t, p):
        pooled = combine([o * s for o, s in zip(case.holdout, t)], w, "multiclass", p).astype(np.float64)
        log_p = pooled - np.log(np.exp(pooled).sum(1, keepdims=True))
        return -log_p[np.arange(len(case.targets)), case.targets]

    gain = row_losses(best_weights, best_temperatures, "linear") - row_losses(weights, temperatures, pooling)
    if gain.mean() > z * gain.std(ddof=1) / np.sqrt(len(gain)):
        return weights, temperatures, pooling
    return best_weights, best_temperatures, "linear"


def rule_uniform(case, seed):
    """Equal weights over the pool, linear pooling, temperatures without the prior."""
    return np.full(len(case.holdout), 1.0 / len(case.holdout)), _temperatures(case, False), "linear"


def rule_linear_pool(case, seed):
    """Today's selection under the linear pool alone."""
    from automm.ensemble import greedy_selection

    temperatures = _temperatures(case, False)
    weights = greedy_selection([o * t for o, t in zip(case.holdout, temperatures)], case.targets, "multiclass",
                               pooling="linear", sample_weights=case.weights)[0]
    return weights, temperatures, "linear"


def rule_log_pool(case, seed):
    """Today's selection under the logarithmic pool alone."""
    from automm.ensemble import greedy_selection

    temperatures = _temperatures(case, False)
    weights = greedy_selection([o * t for o, t in zip(case.holdout, temperatures)], case.targets, "multiclass",
                               pooling="logarithmic", sample_weights=case.weights)[0]
    return weights, temperatures, "logarithmic"


#: The rules compared, today's first: each ``rule(case, seed) -> (weights, temperatures, pooling)``.
RULES = {"current": rule_current, "prior_temperatures": rule_prior, "best_alone": rule_best,
         "accuracy_first": rule_accuracy_first, "bagged_bootstrap": rule_bagged_bootstrap,
         "bagged_halves": rule_bagged_halves, "shrink_5": rule_shrink_5, "shrink_20": rule_shrink_20,
         "shrink_5_lowest_loss": rule_shrink_5_lowest_loss, "shrink_20_lowest_loss": rule_shrink_20_lowest_loss,
         "shrink_5_fewest_errors": rule_shrink_5_fewest_errors, "gate_1se": rule_gate, "uniform": rule_uniform,
         "linear_pool": rule_linear_pool, "log_pool": rule_log_pool}


def compare(folder: Path, names: list[str]) -> None:
    """Each rule's test errors and log-loss per case, their sum and mean, in how many cases it
    makes fewer / more errors than today's rule, and on how many test rows it fixes / breaks
    today's answer."""
    cases = [Case(folder / f"{name}.npz") for name in names if (folder / f"{name}.npz").exists()]
    if not cases:
        raise SystemExit(f"no saved outputs in {folder} (run --parts capture first)")
    for case in cases:  # the harness replays the fit: today's rule gives the fitted model's test results
        errors, log_loss = case.evaluate(*rule_current(case, case.meta["seed"]))
        fitted = case.meta["test_errors"], case.meta.get("test_log_loss")
        same = errors == fitted[0] and (fitted[1] is None or abs(log_loss - fitted[1]) < 1e-4)
        temperatures = _temperatures(case, True)
        alone = [case.evaluate(np.eye(len(case.holdout))[i], temperatures, "linear")[0]
                 for i in range(len(case.holdout))]
        print(f"# {case.name}: pool {len(case.holdout)} trials {case.meta['members']}; kept "
              f"{case.meta['kept_weights']} {case.meta['pooling']}; holdout {len(case.targets)} rows; test errors "
              f"{errors} offline, {fitted[0]} by the fitted model{'' if same else ' (DIFFERENT)'}; each member alone "
              f"(pool order): {alone}", flush=True)
    print(f"{'rule':<24}" + "".join(f"{c.name[:12] + c.name[-2:]:>16}" for c in cases)
          + f"{'errors':>7}{'mean ll':>9}{'cases -/+':>10}{'rows -/+':>10}")
    today = [case.predictions(*rule_current(case, case.meta["seed"])) for case in cases]
    records = []
    for name, rule in RULES.items():
        results, fixed, broken = [], 0, 0
        for case, before in zip(cases, today):
            weights, temperatures, pooling = rule(case, case.meta["seed"])
            results.append(case.evaluate(weights, temperatures, pooling))
            after = case.predictions(weights, temperatures, pooling)
            fixed += int(((before != case.test_targets) & (after == case.test_targets)).sum())
            broken += int(((before == case.test_targets) & (after != case.test_targets)).sum())
        fewer = sum(e < base[0] for (e, _), base in zip(results, records[0]["results"])) if records else 0
        more = sum(e > base[0] for (e, _), base in zip(results, records[0]["results"])) if records else 0
        print(f"{name:<24}" + "".join(f"{e:>7} {ll:>8.4f}" for e, ll in results)
              + f"{sum(e for e, _ in results):>7}{np.mean([ll for _, ll in results]):>9.4f}"
              + f"{f'{fewer}/{more}':>10}{f'{fixed}/{broken}':>10}", flush=True)
        records.append({"part": "compare", "rule": name, "results": results, "fixed": fixed, "broken": broken})
    print("# cases -/+: cases with fewer / more test errors than today's rule (current); rows -/+: test rows it gets "
          "wrong and the rule right / right and the rule wrong")
    for record in records:
        errors = {c.name: e for c, (e, _) in zip(cases, record.pop("results"))}
        print(json.dumps({**record, "errors": errors}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="capture,compare")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--time-limit", type=float, default=270.0)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--outputs", default="/tmp/automm-ensemble-outputs")
    args = parser.parse_args(argv)
    from common import describe_setup

    print(describe_setup(args), flush=True)
    folder = Path(args.outputs)
    tasks, seeds = [t for t in args.tasks.split(",") if t], [int(s) for s in args.seeds.split(",")]
    if "capture" in args.parts:
        for task in tasks:
            for seed in seeds:
                capture(task, seed, folder, time_limit=args.time_limit, cache_dir=args.cache_dir)
    if "compare" in args.parts:
        compare(folder, [f"{task}-{seed}" for task in tasks for seed in seeds])


if __name__ == "__main__":
    main()
