"""A conformance kit for plugin authors: check a component against automm's contracts.

Call these from your plugin's tests (plain functions, usable with pytest or anything else);
each raises :class:`ConformanceError` (an ``AssertionError``) naming the component and the
broken contract, and returns a small report when everything holds::

    from automm.testing import check_component_registration, check_encoder

    def test_my_plugin_registers_cleanly():
        check_component_registration(my_plugin_module)

    def test_my_encoder():
        check_encoder("my_encoder", ["some", "sample", "values"], output_dim=16)

What is checked (see each function for details):

* the registration: name, modality, factory, JSON-serialisable defaults, declared
  ``output_dim`` (an int or a function of the hyperparameters);
* the declared output width equals the built component's ``output_dim`` and the width of
  the tensor its ``forward`` returns;
* the search-space function suggests only parameters whose names start with the prefix,
  replays identically under :class:`optuna.trial.FixedTrial`, and returns keyword
  arguments the factory accepts;
* ``get_state`` is JSON-serialisable and, with the ``state_dict`` written through
  safetensors, rebuilds a component giving identical outputs (what ``AutoMM.save`` /
  ``AutoMM.load`` do);
* ``pending_share`` is 0.0 for the values just ``prepare``\\ d (no one-off work left);
* it runs on CPU, handles a missing value (:data:`~automm.MISSING`), gives finite
  outputs, passes gradients when it is not frozen, and is deterministic under a seed (each
  check seeds torch's generator as the core does, then puts back the states torch's, numpy's
  and Python's global generators had: the caller's random draws go on as if it had not run);
* an encoder tagged ``"linear"`` has a linear form: with ``linear=True, output_dim=k``
  its ``forward`` equals ``linear_design(batch) @ W`` after ``set_linear_weight(W)``;
* augmentations return a value of the same kind and depend only on the generator;
* off the CPU (a copy moved to PyTorch's ``meta`` device, as the trainer moves a component to
  its GPU): an encoder still preprocesses on the CPU, and its ``forward``, a fusion's
  ``forward`` and a batch augmentation's steps make no tensor on the CPU beside their inputs;
* an installed distribution declares an ``automm`` entry point that loads and registers what
  it should (:func:`check_installed`).

The kit follows the core's protocol: an encoder is built by its factory, ``fit`` on the
training values (with a missing one among them), ``prepare``\\ d with all values (with a
temporary ``cache_dir``), then ``preprocess``/``collate``/``forward``.
"""

from __future__ import annotations

import copy
import functools
import json
import pickle
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence, TypeVar, cast

import numpy as np
import torch

from .components.base import MISSING, Augmentation, BatchAugmentation, Encoder, Fusion
from .contracts import augment_input_problem, sample_problem
from .exceptions import PluginError
from .model import fusion_width_problem, move_to_device
from .registry import ComponentSpec, Registry, SearchSpaceError, get_plugin_manager, get_registry
from .search_space import component_prefix

__all__ = [
    "ConformanceError",
    "ComponentReport",
    "check_encoder",
    "check_fusion",
    "check_augmentation",
    "check_search_space",
    "check_component_registration",
    "check_installed",
    "check_role_inference",
    "default_sample",
    "CHECKED_INPUT",
]

#: The input name in the prefix :func:`check_search_space` gives an encoder's search space (the
#: search gives ``<input>.<name>.``, the input being e.g. ``text_0``; a search space that writes
#: its own prefix instead of the one it receives fails here as it would in the search).
CHECKED_INPUT = "checked_input"

#: PyTorch's device of tensors without data: a component moved there runs on any machine as it
#: would on the trainer's GPU (where it must make its new tensors beside its inputs).
META = torch.device("meta")


class ConformanceError(AssertionError):
    """A component breaks one of automm's contracts."""


@dataclass
class ComponentReport:
    """What a check found: the spec, the hyperparameters used, the outputs computed, and
    the hyperparameters each search-space draw returned."""

    spec: ComponentSpec
    hyperparameters: dict
    output_dim: int | None = None
    outputs: torch.Tensor | None = None
    search_draws: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- helpers -----------------------------------------------------------------------------

_Check = TypeVar("_Check", bound=Callable[..., Any])


def _random_state_kept(check: _Check) -> _Check:
    """``check`` run with torch's, numpy's and Python's global generators put back as it found
    them: the kit seeds torch's to build components as the core does, and a plugin author's
    test suite must not draw other numbers after it than without it."""
    @functools.wraps(check)
    def kept(*args: Any, **kwargs: Any) -> Any:
        from .estimator import global_random_state_kept  # (scikit-learn's import, on first use only)

        with global_random_state_kept():
            return check(*args, **kwargs)
    return cast(_Check, kept)  # (functools.wraps keeps its signature for help() and IDEs)


def _fail(spec: ComponentSpec | str, message: str) -> None:
    name = spec if isinstance(spec, str) else spec.label
    raise ConformanceError(f"{name}: {message}")


def _worker_copy(spec: ComponentSpec, component: Any) -> Any:
    """``component`` as a DataLoader worker started with spawn receives it: it must pickle
    (``pickle.dumps``), and the copy is rebuilt through the same reduce / ``__getstate__`` /
    ``__setstate__`` protocol by ``copy.deepcopy``, so no pickle is ever loaded."""
    try:
        pickle.dumps(component)
        return copy.deepcopy(component)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"cannot be pickled (DataLoader worker processes need it): {exc!r}")


def _resolve(kind: str, name_or_spec: str | ComponentSpec, registry: Registry | None) -> ComponentSpec:
    if isinstance(name_or_spec, ComponentSpec):
        if name_or_spec.kind != kind:
            _fail(name_or_spec, f"expected a {kind}, got a {name_or_spec.kind}")
        return name_or_spec
    return (registry or get_registry()).get(kind, name_or_spec)


def _json_roundtrip(spec: ComponentSpec, what: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        _fail(spec, f"{what} is not JSON-serialisable: {exc}")


def _safetensors_roundtrip(spec: ComponentSpec, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state_dict as AutoMM.save writes it and AutoMM.load reads it back."""
    from safetensors.torch import load, save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    try:
        return load(save(state)) if state else {}
    except Exception as exc:  # noqa: BLE001 - e.g. shared (tied) tensors
        _fail(spec, f"state_dict cannot be written with safetensors: {exc}")


def _assert_close(spec: ComponentSpec, what: str, first: torch.Tensor, second: torch.Tensor,
                  atol: float) -> None:
    if first.shape != second.shape:
        _fail(spec, f"{what}: shapes differ, {tuple(first.shape)} vs {tuple(second.shape)}")
    if not torch.allclose(first.float(), second.float(), atol=atol, rtol=0.0, equal_nan=False):
        diff = (first.float() - second.float()).abs().max().item()
        _fail(spec, f"{what}: outputs differ (max abs difference {diff:.3g} > {atol:g})")


def _check_output(spec: ComponentSpec, what: str, out: Any, batch_size: int, width: int | None) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        _fail(spec, f"{what} must return a tensor, got {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != batch_size:
        _fail(spec, f"{what} must return shape (batch={batch_size}, width), got {tuple(out.shape)}")
    if width is not None and out.shape[1] != width:
        _fail(spec, f"{what} returned width {out.shape[1]}, but the component declares output_dim={width}; "
                    "set self.output_dim to the width forward returns")
    if not torch.is_floating_point(out):
        _fail(spec, f"{what} must return floating-point values, got {out.dtype}")
    if not torch.isfinite(out).all():
        _fail(spec, f"{what} returned NaN or infinite values")
    if out.device.type != "cpu":
        _fail(spec, f"{what} returned a tensor on {out.device}; on CPU inputs it must stay on CPU")
    return out


def _declared_dim(spec: ComponentSpec, hyperparameters: Mapping[str, Any]) -> int | None:
    try:
        return spec.expected_output_dim(**hyperparameters)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"its output_dim function fails on hyperparameters {dict(hyperparameters)}: {exc!r}")


def _named_parameters_requiring_grad(module: torch.nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad]


def default_sample(modality: str) -> Any:
    """A natural sample for a modality's augmentations: an image tensor (3, 32, 32) in
    [0, 1], a token list, or a tabular row. Other modalities must pass their own."""
    generator = torch.Generator().manual_seed(0)
    if modality == "image":
        return torch.rand(3, 32, 32, generator=generator)
    if modality == "text":
        return "the quick brown fox jumps over the lazy dog".split()
    if modality == "tabular":
        return {"a": 1.5, "b": "x"}
    raise ValueError(f"no default sample for modality {modality!r}; pass sample=...")


# -- search spaces -----------------------------------------------------------------------

@_random_state_kept
def check_search_space(name_or_spec: str | ComponentSpec, kind: str = "encoder", *, prefix: str | None = None,
                       n_draws: int = 3, seed: int = 0, registry: Registry | None = None) -> list[dict]:
    """Run the component's search space on real Optuna trials (``n_draws`` random ones),
    check that every parameter name starts with ``prefix`` (default: the prefix the search
    gives the component, ``"<input>.<name>."`` for an encoder with an input named
    :data:`CHECKED_INPUT`, ``"fusion.<name>."``, ``"augment.<name>."``), that
    replaying the same values through :class:`optuna.trial.FixedTrial` returns the same
    keyword arguments, and that these are JSON-serialisable, keyword-shaped (no prefix left
    in them) and taken by the factory (:meth:`~automm.registry.ComponentSpec.accepted_hyperparameters`),
    as is every parameter name it suggests (less the prefix: what ``search_space=`` narrows).
    Returns the keyword arguments of each draw (factory kwargs)."""
    import optuna

    spec = _resolve(kind, name_or_spec, registry)
    if spec.search_space is None:
        return []
    if prefix is None:
        prefix = component_prefix(kind, spec.name, CHECKED_INPUT if kind == "encoder" else None)
    draws = []
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(max(1, n_draws)):
            trial = study.ask()
            try:
                kwargs = spec.suggest(trial, prefix)
            except SearchSpaceError as exc:  # names the component and the fix itself
                raise ConformanceError(str(exc)) from None
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"search space fails on an Optuna trial: {exc!r}")
            if not isinstance(kwargs, dict):
                _fail(spec, f"search space must return a dict of factory keyword arguments, got {type(kwargs).__name__}")
            wrong = [p for p in trial.params if not p.startswith(prefix)]
            if wrong:
                _fail(spec, f"search space suggested parameters {wrong} that do not start with the prefix {prefix!r}")
            leaked = [k for k in kwargs if not isinstance(k, str) or k.startswith(prefix) or not k.isidentifier()]
            if leaked:
                _fail(spec, f"search space must return factory keyword names (no prefix), got keys {leaked}")
            # a user narrows or fixes a searched parameter by its name (search_space=): a name the
            # factory does not take is refused there, and fixing what it feeds leaves it sampled
            taken = spec.accepted_hyperparameters()
            untaken = [] if taken is None else [p[len(prefix):] for p in trial.params if p[len(prefix):] not in taken]
            if untaken:
                _fail(spec, f"search space suggests {untaken}, which the factory does not take: users cannot narrow "
                            "or fix them with search_space=; suggest under the factory's keyword names (and "
                            "return them), e.g. a factory keyword min_scale rather than scale=[min_scale, 1.0]")
            _json_roundtrip(spec, "the search space's hyperparameters", kwargs)
            try:
                replayed = spec.suggest(optuna.trial.FixedTrial(dict(trial.params)), prefix)
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"search space fails under optuna.trial.FixedTrial({trial.params}): {exc!r}")
            if replayed != kwargs:
                _fail(spec, f"search space is not a function of the trial's parameters: {kwargs} on the trial, "
                            f"{replayed} when replayed with FixedTrial")
            study.tell(trial, 0.0)
            draws.append(kwargs)
    finally:
        optuna.logging.set_verbosity(previous)
    return draws


# -- encoders ----------------------------------------------------------------------------

def _build_encoder(spec: ComponentSpec, hyperparameters: Mapping[str, Any], seed: int) -> Encoder:
    torch.manual_seed(seed)
    try:
        encoder = spec.create(**hyperparameters)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"factory fails with hyperparameters {dict(spec.hyperparameters(**hyperparameters))}: {exc!r}")
    if not isinstance(encoder, Encoder):
        _fail(spec, f"factory must return an automm.Encoder, got {type(encoder).__name__}")
    return encoder


def _encode(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any], augment: Callable | None = None
            ) -> torch.Tensor:
    try:
        samples = [encoder.preprocess(v, augment if v is not MISSING else None) for v in values]
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"preprocess fails: {exc!r}")
    try:
        batch = encoder.collate(samples)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"collate fails on {len(samples)} samples: {exc!r}")
    try:
        return encoder(batch)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"forward fails: {exc!r}")


def _check_empty_rows(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any]) -> None:
    """:meth:`Encoder.empty_rows` of a batch of the fitted values: ``None`` or a (batch,) bool
    tensor, and none of those values (seen in fit) read as nothing (but those the core would
    read as missing anyway, such as an empty text)."""
    from .data import _missing_text, is_missing

    missing = _missing_text if spec.modality == "text" else is_missing
    values = [v for v in values if not isinstance(v, (str, float, type(None))) or not missing(v)]
    if not values:
        return
    empty = encoder.empty_rows(encoder.collate([encoder.preprocess(v) for v in values]))
    if empty is None:
        return
    if not isinstance(empty, torch.Tensor) or empty.dtype != torch.bool or tuple(empty.shape) != (len(values),):
        got = (f"a {empty.dtype} tensor of shape {tuple(empty.shape)}" if isinstance(empty, torch.Tensor)
               else f"a {type(empty).__name__}")
        _fail(spec, f"empty_rows returned {got} for a batch of {len(values)} values; it must return None or a "
                    f"({len(values)},) bool tensor")
    if bool(empty.any()):
        _fail(spec, f"empty_rows reads values seen in fit as nothing (rows {torch.nonzero(empty).flatten().tolist()}): "
                    "the model would read them as missing")


def _check_select_rows(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any], out: torch.Tensor,
                       atol: float) -> None:
    """The model runs an encoder on the rows of a batch that have its input only
    (:meth:`Encoder.select_rows`): those rows must encode as they do in the whole batch."""
    batch = encoder.collate([encoder.preprocess(v) for v in values])
    rows = torch.tensor([i for i in range(len(values) - 1) if i != 1], dtype=torch.long)  # a gap, the missing left out
    try:
        selected = encoder.select_rows(batch, rows)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"select_rows fails: {exc!r}")
    if selected is None:  # it cannot select: the model runs it on every row
        return
    try:
        got = encoder(selected)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"forward fails on the batch of select_rows(batch, rows={rows.tolist()}): {exc!r}")
    _check_output(spec, f"forward on select_rows(batch, rows={rows.tolist()})", got, len(rows), int(encoder.output_dim))
    _assert_close(spec, f"rows {rows.tolist()} encoded from select_rows(batch, rows) vs in the whole batch "
                        "(select_rows must return the batch collate makes of those rows' samples)",
                  got, out[rows], atol)


def _tabular_arguments(spec: ComponentSpec, rows: Sequence[Any], missing_value: Any,
                       hyperparameters: Mapping[str, Any]) -> tuple[Any, dict]:
    """A table encoder's missing row and ``column_roles`` as the core passes them (see :func:`check_encoder`)."""
    if not all(isinstance(row, Mapping) for row in rows):
        _fail(spec, "a tabular encoder's sample values must be rows: dicts of column values")
    columns = list(dict.fromkeys(column for row in rows for column in row))
    if missing_value is None:
        missing_value = {column: MISSING for column in columns}
    hyperparameters = dict(hyperparameters)
    if "column_roles" not in hyperparameters:
        from .roles import ROLE_TO_MODALITY, infer_role_builtin

        def role(column: str) -> str:  # the core's rule; a role outside the table's (text) read as categories
            present = [value for row in rows if (value := row.get(column, MISSING)) is not MISSING]
            found = infer_role_builtin(present) if present else "categorical"
            return found if ROLE_TO_MODALITY.get(found) == "tabular" else "categorical"

        hyperparameters["column_roles"] = {column: role(column) for column in columns}
    return missing_value, hyperparameters


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in a preprocessed sample (a tensor, or dicts, lists and tuples of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _moved_to_meta(module: torch.nn.Module) -> torch.nn.Module | None:
    """A copy of ``module`` on the ``meta`` device, or None where it cannot be moved there (not
    the device checks' business)."""
    moved = copy.deepcopy(module)
    try:
        return moved.to(META)
    except Exception:  # noqa: BLE001
        return None


def _check_preprocess_off_device(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any], atol: float) -> None:
    """``preprocess`` runs in the data loader on the CPU while the trainer has moved the network to
    its device (a GPU): a copy moved to PyTorch's ``meta`` device (parameters and buffers with no
    data, so this runs on any machine) must preprocess exactly as the original does, on the CPU."""
    moved = _moved_to_meta(encoder)
    if moved is None:
        return
    with torch.no_grad():
        try:
            samples = [moved.preprocess(v, None) for v in values]
        except Exception as exc:  # noqa: BLE001
            _fail(spec, "preprocess fails once the network is moved to another device (the trainer moves it to "
                        "the GPU while the data loader preprocesses on the CPU; keep preprocessing tensors out of "
                        f"the module's parameters, buffers and children): {exc!r}")
        expected = [encoder.preprocess(v, None) for v in values]
    for got, want in zip(samples, expected):
        got_tensors, want_tensors = _tensors(got), _tensors(want)
        off = sorted({str(t.device) for t in got_tensors if t.device.type != "cpu"})
        if off:
            _fail(spec, f"preprocess returns tensors on {off} once the network is moved there; samples must stay "
                        "on the CPU (the trainer moves each batch to its device)")
        if len(got_tensors) != len(want_tensors):
            _fail(spec, "preprocess returns different samples once the network is moved to another device")
        for first, second in zip(want_tensors, got_tensors):
            _assert_close(spec, "preprocess with the network on another device vs on the CPU", first, second, atol)
    try:
        batch = moved.collate(samples)
    except Exception:  # noqa: BLE001 - collate is checked on the CPU
        return
    with torch.no_grad():
        _off_cpu(spec, "forward", lambda: moved(move_to_device(batch, META)))


@_random_state_kept
def check_encoder(name_or_spec: str | ComponentSpec, sample_values: Sequence[Any], *,
                  missing_value: Any = None, seed: int = 0, atol: float = 1e-5, check_search: bool = True,
                  build_search_draws: bool = True, n_search_draws: int = 2, check_pickle: bool = True,
                  check_linear: bool = True, cache_dir: str | None = None, registry: Registry | None = None,
                  **hyperparameters: Any) -> ComponentReport:
    """Check an encoder on ``sample_values`` (a few raw values of its modality, at least
    two, none missing; ``missing_value`` is added as the core would pass a missing one:
    :data:`~automm.MISSING` by default) with the registered defaults updated by ``hyperparameters``.

    A ``tabular`` encoder gets what the core gives it: ``sample_values`` are rows (dicts of
    column values, a missing cell :data:`~automm.MISSING`), the missing value by default a row
    whose every cell is missing, and ``column_roles`` (unless passed) each column's role read
    from the rows by the core's rule (a role outside the table's, text, read as ``"categorical"``).

    Checks the registration (modality, declared output width), the protocol (``fit`` →
    ``prepare`` → ``preprocess`` → ``collate`` → ``forward``) on CPU in eval mode, output
    shape/dtype/finiteness, that a missing value works alone and mixed with present ones,
    that ``preprocess`` accepts an (identity) ``augment`` (and, for an encoder declaring
    ``static_preprocess``, ignores it and returns the same sample every time), that a non-frozen encoder passes
    gradients to some parameter in training mode, determinism (two builds under the same
    seed agree), pickling (DataLoader workers), that ``preprocess`` gives the same CPU samples
    once the network is moved to another device (the trainer's GPU), the save/load round trip (JSON state +
    safetensors ``state_dict`` into a fresh build under another seed gives identical
    outputs), the search space (see :func:`check_search_space`; with
    ``build_search_draws`` every draw must also build an encoder of the declared width) and,
    for an encoder tagged ``"linear"`` (unless ``check_linear`` is false, e.g. where
    ``hyperparameters`` rule the linear form out), its linear form, and what predicting new
    values costs (``prepare_seconds``, ``external_parameters``)."""
    spec = _resolve("encoder", name_or_spec, registry)
    values = list(sample_values)
    if len(values) < 2:
        _fail(spec, "check_encoder needs at least two sample values")
    if not spec.modality:
        _fail(spec, "an encoder must be registered with a modality")
    if spec.modality == "tabular":
        missing_value, hyperparameters = _tabular_arguments(spec, values, missing_value, hyperparameters)
    elif missing_value is None:
        missing_value = MISSING
    hp = spec.hyperparameters(**hyperparameters)
    _json_roundtrip(spec, "the default hyperparameters", spec.defaults)
    declared = _declared_dim(spec, hp)
    report = ComponentReport(spec=spec, hyperparameters=hp)
    all_values = values + [missing_value]

    with tempfile.TemporaryDirectory(prefix="automm-check-") as tmp:
        cache = cache_dir or tmp

        def trained(seed_: int) -> Encoder:
            encoder = _build_encoder(spec, hyperparameters, seed_)
            if encoder.modality and encoder.modality != spec.modality:
                _fail(spec, f"registered for modality {spec.modality!r} but the encoder says {encoder.modality!r}")
            try:
                fitted = encoder.fit(all_values)
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"fit fails on the sample values (with a missing one): {exc!r}")
            if fitted is not None and fitted is not encoder:
                _fail(spec, "fit must return self (or None)")
            try:
                encoder.prepare(all_values, cache_dir=cache)
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"prepare fails: {exc!r}")
            try:
                pending = float(encoder.pending_share(all_values, cache_dir=cache))
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"pending_share fails: {exc!r}")
            if pending != 0.0:  # prepare did the one-off work of exactly these values
                _fail(spec, f"pending_share says {pending} of the values just prepared still need their one-off "
                            "work; it must be 0.0 for them (a share from 0.0 to 1.0)")
            return encoder.eval()

        encoder = trained(seed)
        width = int(encoder.output_dim)
        if declared is not None and declared != width:
            _fail(spec, f"declares output_dim={declared} for {hp}, but the built encoder has output_dim={width}")
        report.output_dim = width
        with torch.no_grad():
            out = _check_output(spec, "forward", _encode(spec, encoder, all_values), len(all_values), width)
            alone = _check_output(spec, "forward on a batch of one missing value",
                                  _encode(spec, encoder, [missing_value]), 1, width)
            del alone
            _assert_close(spec, "the same values encoded twice (eval mode), not deterministic: preprocess and forward "
                                "must draw no random numbers (an augmentation draws its own from its generator)", out,
                          _encode(spec, encoder, all_values), max(atol, 1e-4))
            single = _check_output(spec, "forward on a batch of one value", _encode(spec, encoder, values[:1]), 1, width)
            _assert_close(spec, "a value encoded alone vs in a batch (eval mode)", single, out[:1], max(atol, 1e-4))
            _check_select_rows(spec, encoder, all_values, out, max(atol, 1e-4))
            _check_empty_rows(spec, encoder, values)
            augment_calls = []

            def identity(value: Any) -> Any:
                augment_calls.append(1)
                problem = augment_input_problem(spec.modality, value)
                if problem is not None:
                    _fail(spec, problem)
                return value

            augmented = _encode(spec, encoder, values, augment=identity)
            _check_output(spec, "forward after preprocess(value, augment=identity)", augmented, len(values), width)
        static = bool(getattr(encoder, "static_preprocess", False))
        if static:
            _check_static_preprocess(spec, encoder, values)
        report.outputs = out

        # determinism under a seed
        again = trained(seed)
        with torch.no_grad():
            _assert_close(spec, f"two builds under seed {seed} (deterministic); draw initial weights from "
                                f"torch's generator, which the core seeds, never from random or numpy", out,
                          _encode(spec, again, all_values), atol)

        # gradients (on the second build: training mode may update statistics such as BatchNorm's)
        if not again.frozen:
            trainable = _named_parameters_requiring_grad(again)
            if not trainable:
                _fail(spec, "is not frozen (frozen=False) but has no trainable parameters; set frozen=True")
            again.train()
            torch.manual_seed(seed)
            loss = _encode(spec, again, all_values).float().pow(2).mean()
            if not loss.requires_grad:
                _fail(spec, f"is not frozen (frozen=False), but forward's output carries no gradient in training mode "
                            f"(computed under torch.no_grad() or detached), so its parameters {trainable[:3]} never "
                            "train; set frozen=True if its weights never change")
            loss.backward()
            with_grad = [n for n, p in again.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
            if not with_grad:
                _fail(spec, "no parameter receives a gradient from forward's output in training mode")
        elif _named_parameters_requiring_grad(again):
            report.notes.append("frozen=True but some parameters require gradients (e.g. a trainable adapter)")
        del again

        # pickling (DataLoader workers started with spawn receive the encoder pickled)
        if check_pickle:
            clone = _worker_copy(spec, encoder)
            with torch.no_grad():
                _assert_close(spec, "a pickled copy", out, _encode(spec, clone.eval(), all_values), atol)

        _check_preprocess_off_device(spec, encoder, all_values, atol)

        # save / load round trip
        try:
            state = encoder.get_state()
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"get_state fails: {exc!r}")
        if not isinstance(state, Mapping):
            _fail(spec, f"get_state must return a dict, got {type(state).__name__}")
        state = _json_roundtrip(spec, "get_state()", dict(state))
        weights = _safetensors_roundtrip(spec, encoder)
        restored = _build_encoder(spec, hyperparameters, seed + 1)
        try:
            restored.set_state(state)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"set_state(get_state()) fails: {exc!r}")
        try:
            restored.load_state_dict(weights, strict=True)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"load_state_dict(state_dict) after set_state fails: {exc}")
        # prediction prepares the new values only: a value's output must not depend on which
        # other values prepare was given (prepare is for one-off work such as cached features);
        # checked after the round trip, so that state fit learns but does not save is named as such
        try:
            restored.prepare([values[0], missing_value], cache_dir=cache)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"prepare fails on a restored encoder: {exc!r}")
        with torch.no_grad():
            prepared_alone = _encode(spec, restored.eval(), values[:1])
        try:
            restored.prepare(all_values, cache_dir=cache)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"prepare fails on a restored encoder: {exc!r}")
        with torch.no_grad():
            _assert_close(spec, "save/load round trip (get_state + state_dict into a new build; what fit learns "
                                "belongs in get_state/set_state or in parameters and persistent buffers)", out,
                          _encode(spec, restored.eval(), all_values), atol)
        _assert_close(spec, "a value encoded after prepare of other values (what the encoder learns belongs in "
                            "fit: prepare gets the new values at predict)", out[:1], prepared_alone, max(atol, 1e-4))

        if check_linear and "linear" in spec.tags:
            _check_linear_form(spec, hyperparameters, all_values, cache, seed, atol)
            report.notes.append("linear form checked")

    # search space
    if check_search and spec.search_space is not None:
        draws = check_search_space(spec, "encoder", n_draws=n_search_draws, seed=seed)
        report.search_draws = draws
        if build_search_draws:
            for draw in draws:
                params = dict(hyperparameters)
                params.update(draw)
                built = _build_encoder(spec, params, seed)
                expected = _declared_dim(spec, spec.hyperparameters(**params))
                if expected is not None and expected != int(built.output_dim):
                    _fail(spec, f"declares output_dim={expected} for search draw {draw}, but the built encoder "
                                f"has output_dim={built.output_dim}")
                with tempfile.TemporaryDirectory(prefix="automm-check-") as tmp:
                    try:
                        built.fit(all_values)
                        built.prepare(all_values, cache_dir=cache_dir or tmp)
                    except Exception as exc:  # noqa: BLE001
                        _fail(spec, f"fit or prepare fails for search draw {draw}: {exc!r}")
                    with torch.no_grad():
                        _check_output(spec, f"forward of search draw {draw}", _encode(spec, built.eval(), all_values),
                                      len(all_values), int(built.output_dim))
    if not static and not augment_calls:
        _check_augment_ignored(spec, registry or get_registry(), report)
    _check_costs(spec, encoder, values, report)
    return report


def _check_costs(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any], report: ComponentReport) -> None:
    """What predicting new data costs beyond the module (the search's latency and params
    objectives): ``prepare_seconds`` a finite number >= 0, ``external_parameters`` tensors."""
    try:
        seconds = float(encoder.prepare_seconds(values))
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"prepare_seconds fails: {exc!r}")
    if not np.isfinite(seconds) or seconds < 0:
        _fail(spec, f"prepare_seconds must be a finite number of seconds >= 0, got {seconds!r}")
    try:
        external = list(encoder.external_parameters())
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"external_parameters fails: {exc!r}")
    wrong = [type(t).__name__ for t in external if not isinstance(t, torch.Tensor)]
    if wrong:
        _fail(spec, f"external_parameters must give tensors, got {wrong[:3]}")
    if seconds or external:
        report.notes.append(f"predicting new values costs {seconds * 1000:.2f} ms each in prepare and "
                            f"{sum(int(t.numel()) for t in external):,} weights outside the module")


def _check_linear_form(spec: ComponentSpec, hyperparameters: Mapping[str, Any], values: Sequence[Any],
                       cache: str, seed: int, atol: float, n_outputs: int = 3) -> None:
    """An encoder tagged ``"linear"``: built with ``linear=True, output_dim=n_outputs`` it has
    that width, ``linear_design`` gives one row per value, and after ``set_linear_weight(W)``
    its ``forward`` equals ``linear_design(batch) @ W``."""
    params = {**hyperparameters, "linear": True, "output_dim": n_outputs}
    declared = _declared_dim(spec, spec.hyperparameters(**params))
    encoder = _build_encoder(spec, params, seed)
    if declared != n_outputs or int(encoder.output_dim) != n_outputs:
        _fail(spec, f"is tagged 'linear', but with linear=True, output_dim={n_outputs} it declares output_dim="
                    f"{declared} and builds output_dim={encoder.output_dim}")
    try:
        encoder.fit(values)
        encoder.prepare(values, cache_dir=cache)
        batch = encoder.collate([encoder.preprocess(v, None) for v in values])
        design = encoder.linear_design(batch)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"linear form: fit, prepare, preprocess, collate or linear_design fails: {exc!r}")
    if not isinstance(design, torch.Tensor) or design.dim() != 2 or design.shape[0] != len(values):
        _fail(spec, f"linear_design must return a (rows, features) tensor with {len(values)} rows, got "
                    f"{getattr(design, 'shape', type(design).__name__)}")
    dense = design.to_dense().float() if design.is_sparse else design.float()
    if not torch.isfinite(dense).all():
        _fail(spec, "linear_design returns non-finite values")
    weight = torch.randn(design.shape[1], n_outputs, generator=torch.Generator().manual_seed(seed))
    try:
        encoder.set_linear_weight(weight)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"set_linear_weight fails on a ({design.shape[1]}, {n_outputs}) weight: {exc!r}")
    with torch.no_grad():
        out = _check_output(spec, "forward in the linear form", encoder.eval()(batch), len(values), n_outputs)
    _assert_close(spec, "linear form: forward(batch) vs linear_design(batch) @ weight", out, dense @ weight,
                  max(atol, 1e-4))


def _check_static_preprocess(spec: ComponentSpec, encoder: Encoder, values: Sequence[Any]) -> None:
    """``static_preprocess=True`` promises one sample per value, whatever ``augment`` is: the core
    then preprocesses each row once and reuses the sample in every epoch."""
    def forbidden(value: Any) -> Any:
        raise _AugmentCalled

    for value in values:
        first = encoder.preprocess(value, None)
        try:
            second = encoder.preprocess(value, forbidden)
        except _AugmentCalled:
            _fail(spec, "declares static_preprocess=True, but preprocess applied augment")
        if not _equal(first, second):
            _fail(spec, "declares static_preprocess=True, but preprocess gave two different samples for one value")


def _check_augment_ignored(spec: ComponentSpec, registry: Registry, report: ComponentReport) -> None:
    """An encoder whose ``preprocess`` never applies ``augment`` must say so with
    ``static_preprocess = True``: otherwise the search samples its modality's augmentations for
    trials that use it, and they change nothing."""
    names = registry.names("augmentation", modality=spec.modality)
    if not names:
        report.notes.append(f"preprocess ignores augment (no {spec.modality} augmentation is registered now)")
        return
    _fail(spec, f"preprocess never applies augment, yet static_preprocess is False: the search would sample "
                f"{spec.modality} augmentations ({', '.join(names)}) for trials with this encoder, and they would "
                "change nothing; apply augment to the value's natural form (an image tensor in [0, 1], a token "
                "list) or set static_preprocess = True")


class _AugmentCalled(Exception):
    pass


# -- fusions -----------------------------------------------------------------------------

@_random_state_kept
def check_fusion(name_or_spec: str | ComponentSpec, input_dims: Mapping[str, int] | None = None,
                 n_outputs: int = 3, *, batch_size: int = 6, seed: int = 0, atol: float = 1e-5,
                 check_search: bool = True, n_search_draws: int = 2, registry: Registry | None = None,
                 **hyperparameters: Any) -> ComponentReport:
    """Check a fusion built as ``factory(input_dims, n_outputs, **hyperparameters)``:
    output shape (``output_dim``; ``n_outputs`` when ``produces_outputs``), finite outputs
    with some inputs missing and with every input of a sample missing, that a missing
    input's embedding (even NaN) does not change the output and a present input's does, that
    it also builds and runs on the first input alone and on the inputs renamed (a fusion gets
    whatever inputs the data have), gradients, determinism, the state_dict round trip, and the
    search space (every draw must build and run)."""
    spec = _resolve("fusion", name_or_spec, registry)
    dims = dict(input_dims or {"image_0": 8, "text_0": 5, "tabular": 3})
    hp = spec.hyperparameters(**hyperparameters)
    _json_roundtrip(spec, "the default hyperparameters", spec.defaults)
    report = ComponentReport(spec=spec, hyperparameters=hp)
    generator = torch.Generator().manual_seed(seed)
    embeddings = {name: torch.randn(batch_size, d, generator=generator) for name, d in dims.items()}
    names = sorted(dims)
    masks = {name: torch.ones(batch_size, dtype=torch.bool) for name in names}
    for i, name in enumerate(names):  # sample i lacks input i; the last sample lacks everything
        if i < batch_size - 1:
            masks[name][i] = False
        masks[name][batch_size - 1] = False

    def build(seed_: int, params: Mapping[str, Any]) -> Fusion:
        torch.manual_seed(seed_)
        try:
            fusion = spec.create(dict(dims), int(n_outputs), **params)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"factory(input_dims={dims}, n_outputs={n_outputs}) fails with {dict(params)}: {exc!r}")
        if not isinstance(fusion, Fusion):
            _fail(spec, f"factory must return an automm.Fusion, got {type(fusion).__name__}")
        return fusion.eval()

    def run(fusion: Fusion, embs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        try:
            return fusion(dict(embs), dict(masks))
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"forward fails: {exc!r}")

    fusion = build(seed, hyperparameters)
    problem = fusion_width_problem(fusion, int(n_outputs))
    if problem is not None:
        _fail(spec, problem)
    width = int(fusion.output_dim)
    declared = _declared_dim(spec, hp)
    if declared is not None and declared != width and not getattr(fusion, "produces_outputs", False):
        _fail(spec, f"registers output_dim={declared} for {dict(hp)}, but the built fusion has output_dim={width} "
                    "(a fusion's width is its output_dim attribute; register none, or the same)")
    with torch.no_grad():
        out = _check_output(spec, "forward", run(fusion, embeddings), batch_size, width)
        poisoned = {name: torch.where(masks[name].unsqueeze(1), emb, torch.full_like(emb, float("nan")))
                    for name, emb in embeddings.items()}
        leaked = run(fusion, poisoned)
        if isinstance(leaked, torch.Tensor) and leaked.shape == out.shape:
            if not torch.isfinite(leaked).all():
                _fail(spec, f"forward with NaN in the missing inputs' embeddings returned NaN or infinite values; "
                            f"{MASKS_HINT}")
            if not torch.allclose(out.float(), leaked.float(), atol=atol, rtol=0.0):
                diff = (out.float() - leaked.float()).abs().max().item()
                _fail(spec, f"the missing inputs' embeddings changed the output (replaced by NaN: max abs difference "
                            f"{diff:.3g}); {MASKS_HINT}")
        _check_output(spec, "forward with NaN in missing inputs", leaked, batch_size, width)
        others = torch.Generator().manual_seed(seed + 1)
        moved = None  # (built when needed) its weights moved off their initial values

        def unchanged(model: Fusion, reference: torch.Tensor, name: str, replaced: torch.Tensor) -> bool:
            changed = run(model, {**embeddings, name: replaced})
            return (isinstance(changed, torch.Tensor) and changed.shape == reference.shape
                    and torch.allclose(reference[masks[name]].float(), changed[masks[name]].float(), atol=atol,
                                       rtol=0.0))

        for name in names:  # a fusion that leaves an input out (a product of the first two) trains without it
            replaced = torch.randn(embeddings[name].shape, generator=others)
            if unchanged(fusion, out, name, replaced):
                # an input's gate may start closed (Flamingo's tanh gate, ReZero: a parameter at 0), which
                # training opens: an input left out is left out whatever the weights
                if moved is None:
                    moved = copy.deepcopy(fusion)
                    noise = torch.Generator().manual_seed(seed + 2)
                    for parameter in moved.parameters():
                        if parameter.is_floating_point():
                            parameter.add_(torch.randn(parameter.shape, generator=noise).to(parameter) * 0.5)
                    moved_out = run(moved, embeddings)
                if not (isinstance(moved_out, torch.Tensor) and unchanged(moved, moved_out, name, replaced)):
                    continue
                _fail(spec, f"the output does not depend on input {name!r}: its embedding replaced by other values "
                            f"changed no row that has it (inputs {dims}); a fusion must use every input it is given, "
                            "read their names and widths from input_dims")
        for row in range(batch_size):  # prediction batches rows as it likes: one alone must give the same
            try:
                single = fusion({k: v[row:row + 1] for k, v in embeddings.items()},
                                {k: v[row:row + 1] for k, v in masks.items()})
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"forward fails on a batch of one row: {exc!r}")
            _assert_close(spec, f"row {row} fused alone vs in a batch (eval mode: a row's output must not depend on "
                                "the other rows of its batch)", out[row:row + 1], single, max(atol, 1e-4))
    report.output_dim, report.outputs = width, out
    for other_dims in _other_inputs(dims):
        _check_fusion_on(spec, other_dims, n_outputs, batch_size, seed, hyperparameters)

    # gradients (on another build: training mode may update statistics such as BatchNorm's,
    # which the round trips below compare with ``out``)
    trainee = build(seed, hyperparameters).train()
    if _named_parameters_requiring_grad(trainee):
        torch.manual_seed(seed)
        loss = run(trainee, embeddings).pow(2).mean()
        if not loss.requires_grad:
            _fail(spec, "forward's output carries no gradient in training mode (computed under torch.no_grad() or "
                        "detached), so none of its parameters trains")
        loss.backward()
        if not any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainee.parameters()):
            _fail(spec, "no parameter receives a gradient in training mode")
    del trainee

    with torch.no_grad():
        _assert_close(spec, f"two builds under seed {seed} (deterministic)", out,
                      run(build(seed, hyperparameters), embeddings), atol)
        restored = build(seed + 1, hyperparameters)
        try:
            restored.load_state_dict(_safetensors_roundtrip(spec, fusion), strict=True)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"load_state_dict(state_dict) fails: {exc}")
        _assert_close(spec, "state_dict round trip", out, run(restored, embeddings), atol)
        _worker_copy(spec, fusion)
        _check_fusion_off_cpu(spec, fusion, embeddings, masks)

    if check_search and spec.search_space is not None:
        report.search_draws = check_search_space(spec, "fusion", n_draws=n_search_draws, seed=seed)
        for draw in report.search_draws:
            params_ = dict(hyperparameters)
            params_.update(draw)
            with torch.no_grad():
                built = build(seed, params_)
                _check_output(spec, f"forward of search draw {draw}", run(built, embeddings), batch_size,
                              int(built.output_dim))
    return report


#: What a component that makes CPU tensors beside its inputs is told.
DEVICE_HINT = ("make new tensors on the device of the tensors given (torch.zeros(..., device=emb.device), "
               "torch.zeros_like(emb)); draw random numbers on the CPU generator given and move them there "
               "(torch.rand(n, generator=generator).to(masks[name].device))")


def _off_cpu(spec: ComponentSpec, what: str, call: Callable[[], Any]) -> None:
    """Run ``call`` (a component's step on inputs and parameters moved to the ``meta`` device, as
    the trainer moves them to its GPU; runs on any machine): a tensor it makes on the CPU beside
    them fails it, and so does a result left on the CPU. A step that meta tensors cannot run for
    another reason (reading a value, ``.item()``) is not this check's business."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001
        if "device" in str(exc):
            _fail(spec, f"{what} fails once its inputs are on another device than the CPU (the trainer's GPU): "
                        f"{exc}; {DEVICE_HINT}")
        return
    left = sorted({str(t.device) for t in _tensors(result) if t.device.type != "meta"})
    if left:
        _fail(spec, f"{what} returns tensors on {left} when its inputs are on another device (the trainer's GPU); "
                    f"{DEVICE_HINT}")


def _check_fusion_off_cpu(spec: ComponentSpec, fusion: Fusion, embeddings: Mapping[str, torch.Tensor],
                          masks: Mapping[str, torch.Tensor]) -> None:
    moved = _moved_to_meta(fusion)
    if moved is None:
        return
    with torch.no_grad():
        _off_cpu(spec, "forward", lambda: moved(move_to_device(dict(embeddings), META),
                                                move_to_device(dict(masks), META)))


#: What a fusion whose output depends on a missing input's embedding is told.
MASKS_HINT = ("a missing input's embedding (even NaN) must not change the output: use masks[name] to ignore "
              "missing inputs, e.g. torch.where(masks[name][:, None], emb, 0) before any layer touches emb")


def _other_inputs(dims: Mapping[str, int]) -> list[dict[str, int]]:
    """Other inputs a fusion may be given: the first input alone, and every input renamed."""
    names = sorted(dims)
    renamed = {f"{('audio', 'image', 'text', 'video')[i % 4]}_{i + 1}": dims[name] for i, name in enumerate(names)}
    return [{names[0]: dims[names[0]]}, renamed]


def _check_fusion_on(spec: ComponentSpec, dims: Mapping[str, int], n_outputs: int, batch_size: int, seed: int,
                     hyperparameters: Mapping[str, Any]) -> None:
    """The fusion builds and runs on the inputs ``dims`` (the last sample lacking all of them)."""
    from .contracts import FUSION_INPUTS_HINT

    torch.manual_seed(seed)
    try:
        fusion = spec.create(dict(dims), int(n_outputs), **hyperparameters)
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"factory(input_dims={dict(dims)}, n_outputs={n_outputs}) fails: {exc!r}{FUSION_INPUTS_HINT}")
    generator = torch.Generator().manual_seed(seed)
    embeddings = {name: torch.randn(batch_size, d, generator=generator) for name, d in dims.items()}
    masks = {name: torch.arange(batch_size) < batch_size - 1 for name in dims}
    with torch.no_grad():
        try:
            out = fusion.eval()(embeddings, masks)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"forward fails on inputs {dict(dims)}: {exc!r}{FUSION_INPUTS_HINT}")
        _check_output(spec, f"forward on inputs {dict(dims)}", out, batch_size, int(fusion.output_dim))


# -- augmentations -----------------------------------------------------------------------

#: What an augmentation that is not deterministic under its generator is told.
RANDOM_HINT = ("draw every random number from the generator argument (e.g. torch.rand(1, generator=generator)), "
               "never from random, numpy or torch's global generators")

def _same_kind(spec: ComponentSpec, before: Any, after: Any) -> None:
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor):
            _fail(spec, f"must return a tensor for a tensor sample, got {type(after).__name__}")
        if after.dim() != before.dim() or after.shape[0] != before.shape[0] or after.dtype != before.dtype:
            _fail(spec, f"changed the sample's kind: {tuple(before.shape)} {before.dtype} -> "
                        f"{tuple(after.shape)} {after.dtype}; return a value of the kind it was given")
        if torch.is_floating_point(after) and not torch.isfinite(after).all():
            _fail(spec, "returned NaN or infinite values")
    elif isinstance(before, (list, tuple)):
        if not isinstance(after, (list, tuple)):
            _fail(spec, f"must return a list for a list sample, got {type(after).__name__}")
    elif isinstance(before, Mapping):
        if not isinstance(after, Mapping):
            _fail(spec, f"must return a mapping for a mapping sample, got {type(after).__name__}")
    elif type(after) is not type(before):
        _fail(spec, f"returned a {type(after).__name__} for a {type(before).__name__} sample")


def _equal(first: Any, second: Any) -> bool:
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        return first.shape == second.shape and torch.equal(first, second)
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return first.keys() == second.keys() and all(_equal(first[k], second[k]) for k in first)
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(_equal(a, b) for a, b in zip(first, second))
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return bool(np.array_equal(first, second))
    return first == second


@_random_state_kept
def check_augmentation(name_or_spec: str | ComponentSpec, sample: Any = None, *, seed: int = 0, n_calls: int = 8,
                       check_search: bool = True, n_search_draws: int = 2, registry: Registry | None = None,
                       **hyperparameters: Any) -> ComponentReport:
    """Check an augmentation. Sample augmentations are called on ``sample`` (default:
    :func:`default_sample` of the modality) ``n_calls`` times: each result must be of the
    same kind, the sample must not be modified in place, and the same generator seed must
    give the same result. Batch augmentations (modality ``"batch"``) are checked on masks
    (same keys, shapes and dtype; a dropped input may only turn True into False) and on
    fused embeddings with soft targets (same shapes; targets still sum to 1; targets carrying
    the sample weights as one more last column keep their width, the class columns mixed as
    without it)."""
    spec = _resolve("augmentation", name_or_spec, registry)
    if not spec.modality:
        _fail(spec, "an augmentation must be registered with a modality (or 'batch')")
    hp = spec.hyperparameters(**hyperparameters)
    _json_roundtrip(spec, "the default hyperparameters", spec.defaults)
    report = ComponentReport(spec=spec, hyperparameters=hp)

    def build(params: Mapping[str, Any]):
        try:
            return spec.create(**params)
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"factory fails with {dict(spec.hyperparameters(**params))}: {exc!r}")

    def exercise(aug: Any) -> None:
        if spec.modality == "batch":
            if not isinstance(aug, BatchAugmentation):
                _fail(spec, f"a 'batch' augmentation must be an automm.BatchAugmentation, got {type(aug).__name__}")
            _exercise_batch(spec, aug, seed, n_calls)
        else:
            if not isinstance(aug, Augmentation) and not callable(aug):
                _fail(spec, f"must be an automm.Augmentation (callable), got {type(aug).__name__}")
            value = default_sample(spec.modality) if sample is None else sample
            _exercise_sample(spec, aug, value, seed, n_calls)

    exercise(build(hyperparameters))
    _worker_copy(spec, build(hyperparameters))
    if check_search and spec.search_space is not None:
        report.search_draws = check_search_space(spec, "augmentation", n_draws=n_search_draws, seed=seed)
        for draw in report.search_draws:
            params = dict(hyperparameters)
            params.update(draw)
            exercise(build(params))
    return report


def _exercise_sample(spec: ComponentSpec, aug: Any, value: Any, seed: int, n_calls: int) -> None:
    original = copy.deepcopy(value)
    for call in range(n_calls):
        try:
            first = aug(copy.deepcopy(value) if call % 2 else value, torch.Generator().manual_seed(seed + call))
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"fails on the sample: {exc!r}")
        # before the determinism check: a random change in place makes the second call see another sample
        if not _equal(value, original):
            _fail(spec, "modified its input sample in place; return a new value instead")
        try:
            second = aug(copy.deepcopy(value), torch.Generator().manual_seed(seed + call))
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"fails on the sample: {exc!r}")
        problem = sample_problem(spec.modality, value, first)  # what the core checks as it trains
        if problem is not None:
            _fail(spec, problem)
        _same_kind(spec, value, first)
        if not _equal(first, second):
            _fail(spec, f"is not deterministic: the same generator seed gave different results; {RANDOM_HINT}")


def _exercise_batch(spec: ComponentSpec, aug: BatchAugmentation, seed: int, n_calls: int) -> None:
    batch = 8
    for call in range(n_calls):
        generator_seed = seed + call
        masks = {"image_0": torch.tensor([True, True, False, True, True, False, True, True]),
                 "text_0": torch.tensor([True, False, True, True, True, True, False, True])}
        results = []
        for _ in range(2):
            try:
                results.append(aug.apply_masks({k: v.clone() for k, v in masks.items()},
                                               torch.Generator().manual_seed(generator_seed)))
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"apply_masks fails: {exc!r}")
        new = results[0]
        if set(new) != set(masks):
            _fail(spec, f"apply_masks changed the inputs: {sorted(masks)} -> {sorted(new)}")
        for name in masks:
            if new[name].shape != masks[name].shape or new[name].dtype != torch.bool:
                _fail(spec, f"apply_masks must keep (B,) bool masks; {name}: {tuple(new[name].shape)} {new[name].dtype}")
            if (new[name] & ~masks[name]).any():
                _fail(spec, f"apply_masks turned a missing input ({name}) into a present one")
        if not all(torch.equal(results[0][k], results[1][k]) for k in masks):
            _fail(spec, f"apply_masks is not deterministic under the same generator seed; {RANDOM_HINT}")
        g = torch.Generator().manual_seed(1000 + generator_seed)
        fused = torch.randn(batch, 6, generator=g)
        targets = torch.softmax(torch.randn(batch, 3, generator=g), dim=1)
        outs = []
        for _ in range(2):
            try:
                outs.append(aug.apply_fused(fused.clone(), targets.clone(), torch.Generator().manual_seed(generator_seed)))
            except Exception as exc:  # noqa: BLE001
                _fail(spec, f"apply_fused fails: {exc!r}")
        (new_fused, new_targets), (again_fused, again_targets) = outs
        if new_fused.shape != fused.shape or new_targets.shape != targets.shape:
            _fail(spec, "apply_fused must keep the shapes of the fused embeddings and the targets")
        if not torch.allclose(new_targets.sum(1), torch.ones(batch), atol=1e-5):
            _fail(spec, "apply_fused must keep soft class targets summing to 1")
        if not (torch.equal(new_fused, again_fused) and torch.equal(new_targets, again_targets)):
            _fail(spec, f"apply_fused is not deterministic under the same generator seed; {RANDOM_HINT}")
        # with sample weights the targets carry the rows' weights as one more last column
        weighted = torch.cat([targets, torch.rand(batch, 1, generator=g) + 0.5], dim=1)
        try:
            _, out = aug.apply_fused(fused.clone(), weighted.clone(), torch.Generator().manual_seed(generator_seed))
        except Exception as exc:  # noqa: BLE001
            _fail(spec, f"apply_fused fails on targets with the sample weights' column: {exc!r}")
        if out.shape != weighted.shape:
            _fail(spec, "apply_fused must keep the targets' width when they carry the sample weights' column")
        if not torch.allclose(out[:, :-1], new_targets, atol=1e-5):
            _fail(spec, "apply_fused must treat the sample weights' last column apart from the class targets "
                        "(mixing rows mixes their weights)")
    # on the trainer's device (here ``meta``), with the trainer's CPU generator
    masks = {"image_0": torch.ones(batch, dtype=torch.bool), "text_0": torch.ones(batch, dtype=torch.bool)}
    _off_cpu(spec, "apply_masks", lambda: aug.apply_masks(move_to_device(masks, META),
                                                          torch.Generator().manual_seed(seed)))
    _off_cpu(spec, "apply_fused", lambda: aug.apply_fused(torch.zeros(batch, 6, device="meta"),
                                                          torch.full((batch, 3), 1 / 3, device="meta"),
                                                          torch.Generator().manual_seed(seed)))


# -- registration ------------------------------------------------------------------------

@_random_state_kept
def check_component_registration(plugin: Any, *, build_encoders: bool = False,
                                 expected: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[ComponentSpec]]:
    """Register ``plugin`` (a module or object with ``@automm.hookimpl`` functions) in a
    private registry beside the built-ins (the process-wide registry is not touched) and
    check what it registers: valid unique names (a clash with a built-in or another
    component fails), callable factories, a modality for encoders and augmentations,
    JSON-serialisable defaults, a callable search space, and an ``output_dim`` that is an
    int or works on the defaults; each sample dataset loads as a DataFrame with a ``split``
    column of ``train``/``test`` rows and the columns it declares. ``build_encoders=True``
    also builds each encoder with its defaults and compares the widths. ``expected`` (kind →
    names) must all be registered. Returns the plugin's specs by kind (``encoder``,
    ``fusion``, ``augmentation``, ``dataset``)."""
    from .registry import _plugin_name, unknown_hooks

    pm = get_plugin_manager(load_entrypoints=False)
    name = _plugin_name(plugin)
    if pm.is_registered(plugin) or pm.has_plugin(name):
        registry = Registry(pm)
    else:
        try:
            pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001
            _fail(f"plugin {name!r}", f"cannot be registered with pluggy: {exc!r}")
        try:
            registry = Registry(pm)
        except Exception as exc:  # noqa: BLE001
            _fail(f"plugin {name!r}", f"registration fails: {exc}")
    for said in unknown_hooks(pm, plugin):  # (before "registers nothing": the likely reason)
        _fail(f"plugin {name!r}", said)
    found: dict[str, list[ComponentSpec]] = {}
    for kind in ("encoder", "fusion", "augmentation", "dataset"):
        found[kind] = [s for s in registry.specs(kind) if s.provider == name]
    if not any(found.values()) and not _has_role_hook(plugin):
        _fail(f"plugin {name!r}", "registers no encoder, fusion, augmentation or dataset and infers no column role")
    for spec in found["dataset"]:
        _check_dataset(spec)
    for kind, specs in found.items():
        for spec in specs:
            _json_roundtrip(spec, "the default hyperparameters", spec.defaults)
            if spec.search_space is not None and not callable(spec.search_space):
                _fail(spec, "search_space is not callable")
            if kind == "encoder":
                if spec.output_dim is None:
                    _fail(spec, "an encoder must declare output_dim (an int or a function of the hyperparameters)")
                declared = _declared_dim(spec, spec.defaults)
                if declared is None or declared <= 0:
                    _fail(spec, f"declares a non-positive output_dim {declared}")
                if build_encoders:
                    built = _build_encoder(spec, {}, 0)
                    if int(built.output_dim) != declared:
                        _fail(spec, f"declares output_dim={declared} but builds with {built.output_dim}")
    for kind, names in (expected or {}).items():
        missing = sorted(set(names) - {s.name for s in found.get(kind, [])})
        if missing:
            _fail(f"plugin {name!r}", f"does not register the {kind}s {missing}")
    return found


@_random_state_kept
def check_installed(distribution: str, *, expected: Mapping[str, Sequence[str]] | None = None
                    ) -> dict[str, list[ComponentSpec]]:
    """Check an installed distribution (``"automm-shout"``) as automm finds it: it declares an
    entry point in the ``automm`` group (``[project.entry-points.automm]`` in its
    ``pyproject.toml``), each entry point imports and was not skipped by this process's registry,
    and what each registers passes :func:`check_component_registration`. ``expected`` (kind →
    names) must all be registered. Returns the specs by kind, of every entry point together."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find_distribution

    from .registry import (DISABLE_AUTOLOAD_ENV, ENTRY_POINT_GROUP, autoload_disabled, distribution_name, get_registry,
                           skipped_plugins)

    where = f"distribution {distribution!r}"
    try:
        dist = find_distribution(distribution)
    except PackageNotFoundError:
        _fail(where, "is not installed in this environment (pip install it, e.g. pip install -e . in its folder)")
    points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    if not points:
        _fail(where, f"declares no entry point in the {ENTRY_POINT_GROUP!r} group, so automm never loads it; add "
                     f"[project.entry-points.{ENTRY_POINT_GROUP}] with a line 'my_plugin = \"my_module\"' to its "
                     "pyproject.toml and install it again")
    if autoload_disabled():
        _fail(where, f"is not loaded by automm here: {DISABLE_AUTOLOAD_ENV} is set, so only the built-in plugins "
                     "are; unset it")
    skipped = skipped_plugins()
    registry = get_registry()
    package = f"{dist.metadata['Name']} {dist.version}"
    found: dict[str, list[ComponentSpec]] = {kind: [] for kind in ("encoder", "fusion", "augmentation", "dataset")}
    for point in points:
        for key in (point.name, f"{point.name} ({package})"):
            if key in skipped and skipped[key]["package"] == package:
                _fail(where, f"entry point {point.name!r} is skipped by automm: {skipped[key]['reason']}")
        holder = registry.package_of(point.name)
        if distribution_name(holder) != dist.metadata["Name"]:
            _fail(where, f"entry point {point.name!r} is not what automm loaded under that name "
                         f"({'the plugin of ' + holder if holder else 'nothing was'}); rename the entry point")
        try:
            plugin = point.load()
        except Exception as exc:  # noqa: BLE001
            _fail(where, f"entry point {point.name!r} = {point.value!r} cannot be imported: {exc!r}")
        for kind, specs in check_component_registration(plugin).items():
            # as the registry holds them (a private manager's registration knows no package)
            found[kind].extend(replace(spec, package=package) for spec in specs)
    for kind, names in (expected or {}).items():
        missing = sorted(set(names) - {s.name for s in found.get(kind, [])})
        if missing:
            _fail(where, f"does not register the {kind}s {missing} (its entry points: "
                         f"{', '.join(f'{p.name} = {p.value}' for p in points)})")
    return found


def _check_dataset(spec: ComponentSpec) -> None:
    try:
        frame = spec.factory()
    except Exception as exc:  # noqa: BLE001
        _fail(spec, f"its loader raised {exc!r}")
    columns = [str(c) for c in getattr(frame, "columns", [])]
    if not hasattr(frame, "iloc") or "split" not in columns:
        _fail(spec, "its loader must return a pandas DataFrame with a 'split' column")
    splits = set(frame["split"])
    if not {"train", "test"} <= splits:
        _fail(spec, f"its 'split' column must hold 'train' and 'test' rows, found {sorted(map(str, splits))}")
    if spec.columns is not None and list(spec.columns) != columns:
        _fail(spec, f"declares columns {list(spec.columns)} but loads {columns}")


def _has_role_hook(plugin: Any) -> bool:
    return callable(getattr(plugin, "automm_infer_column_role", None))


#: The data of :func:`check_role_inference` that the built-in rules read, which no plugin's rule may claim.
_BUILT_IN_KINDS = ("numbers", "texts", "dates", "image paths", "booleans")


@_random_state_kept
def check_role_inference(plugin: Any, column_values: Sequence[Any], expected_role: str,
                         column_name: str = "column") -> str:
    """Check that, with ``plugin`` registered (beside the built-ins, in a private plugin
    manager), column-role inference gives ``expected_role`` for a column holding
    ``column_values``, and that the plugin's rule answers (rather than raises) for the columns
    of other data every fit asks it about: numbers, texts, dates, images' paths, dicts, bytes;
    of those the built-in rules read (numbers, texts, dates, images' paths, booleans) it must
    claim none for another role than theirs. Returns the role."""
    import datetime

    import pluggy

    from . import hookspecs
    from .data import _role_sample, ask_role_rules
    from .registry import _plugin_name

    pm = get_plugin_manager(load_entrypoints=False)
    if not pm.is_registered(plugin):
        pm.register(plugin, name=_plugin_name(plugin))
    alone = pluggy.PluginManager(hookspecs.PROJECT_NAME)  # the plugin's rule asked as the core asks it
    alone.add_hookspecs(hookspecs)
    alone.register(plugin, name=_plugin_name(plugin))
    foreign = {"numbers": [1.5, 2, -3.25], "texts": ["a red shirt", "", "x"], "dates": [datetime.date(2024, 3, 5)],
               "image paths": ["a.png", "b.jpg"], "dicts": [{"a": 1}, {}], "bytes": [b"\x00\x01", b""],
               "booleans": [True, False], "arrays": [np.zeros((2, 2))]}
    builtins = get_plugin_manager(load_entrypoints=False)
    for kind, values in foreign.items():
        try:
            role = ask_role_rules(alone, "column", values)
        except PluginError as exc:
            cause = exc.__cause__
            raise ConformanceError(f"plugin {_plugin_name(plugin)!r}: automm_infer_column_role raises on a column of "
                                   f"{kind} ({type(cause).__name__}: {cause}); every fit asks it about every column: "
                                   "return None for values that are not your modality's") from None
        # the data the built-in rules read: a rule that claims them takes every user's ordinary columns
        if kind in _BUILT_IN_KINDS and role not in (None, ask_role_rules(builtins, "column", values)):
            raise ConformanceError(f"plugin {_plugin_name(plugin)!r}: automm_infer_column_role claims a column of "
                                   f"{kind} ({values!r}) as {role!r}; its rule is asked before the built-in ones "
                                   "about every column of every fit: return None for values that are not your "
                                   "modality's (a user names the role of one that is with column_types=)")
    # what the core asks the rule about: the column's present values (missing ones left out), sampled
    role = pm.hook.automm_infer_column_role(name=column_name, values=_role_sample(list(column_values)))
    if role != expected_role:
        raise ConformanceError(f"plugin {_plugin_name(plugin)!r}: column {column_name!r} inferred as {role!r}, "
                               f"expected {expected_role!r}")
    return role
