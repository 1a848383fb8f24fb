"""Shared fixtures: the real data folder (skipped when absent), registry isolation, Ctrl-C that
interrupts, a fit stopped where its training would start, and components' refusals worked out once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_interrupts():
    """Ctrl-C raises KeyboardInterrupt during the tests (those that send it check what fit does
    then), also where the suite was started with SIGINT ignored: a background job of a shell
    without job control (``pytest &`` in a script, ``nohup``), where Python installs no handler."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def shared_data_dir() -> Path:
    """``$AUTOMM_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("AUTOMM_DATA", REPO.parent / "shared" / "data"))


def require_dataset(name: str) -> Path:
    """The folder of dataset ``name`` (``fashion``, ``emoji``), or skip the test with a reason."""
    folder = shared_data_dir() / name
    if not (folder / f"{name}.csv").is_file():
        pytest.skip(f"real data {folder} is absent (set AUTOMM_DATA to the shared data folder)")
    return folder


@pytest.fixture
def fashion_dir() -> Path:
    return require_dataset("fashion")


@pytest.fixture
def emoji_dir() -> Path:
    return require_dataset("emoji")


@pytest.fixture
def emoji_sample():
    from automm.datasets import load_emoji_sample

    return load_emoji_sample()


@pytest.fixture(scope="session")
def emoji_split():
    """The embedded emoji sample's (train, test) rows, each indexed from 0."""
    from automm.datasets import load_emoji_sample

    frame = load_emoji_sample()
    return frame[frame.split == "train"].reset_index(drop=True), frame[frame.split == "test"].reset_index(drop=True)


@pytest.fixture
def builtin_only(monkeypatch):
    """A registry with the built-in plugins only (installed plugins switched off)."""
    import automm
    from automm.registry import DISABLE_AUTOLOAD_ENV

    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    automm.reset_registry()
    yield
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    automm.reset_registry()


@pytest.fixture
def fresh_registry():
    """Yields ``register(*plugins)`` that rebuilds the registry with extra in-process plugins;
    the default registry is restored afterwards."""
    import automm

    def register(*plugins):
        return automm.reset_registry(plugins)

    yield register
    automm.reset_registry()


@pytest.fixture
def refusals_remembered(monkeypatch):
    """Each component built once per set of values to learn whether it refuses them (a recipe's
    checks build its components: a hashed_ngram's embedding drawn, 0.2 s), for tests that check
    many recipes giving mostly the same values; a component's answer depends on its values alone."""
    from automm import search_space

    build = search_space.component_refusal
    answers = {}

    def remembered(component, params, **context):
        key = (id(component), json.dumps([params, context], sort_keys=True, default=repr))
        if key not in answers:  # (the component held with its answer: no other takes its id)
            answers[key] = component, build(component, params, **context)
        return answers[key][1]

    monkeypatch.setattr(search_space, "component_refusal", remembered)


class _TrainingStarted(Exception):
    """Raised in place of training: the fit got past every check before it."""


@pytest.fixture
def stop_at_training(monkeypatch):
    """``fit`` raises :class:`_TrainingStarted` where training would begin (the fixture's value):
    a test of what ``fit`` checks before any work, with no training."""
    import automm.estimator

    def started(*args, **kwargs):
        raise _TrainingStarted

    monkeypatch.setattr(automm.estimator.AutoMM, "_fit_candidates", started)
    return _TrainingStarted
