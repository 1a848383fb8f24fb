"""The version of automm and of its first-party plugins has one source: the package's
``__version__``, which the distribution's metadata (``importlib.metadata.version``) is built from."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [(ROOT, "automm"), (ROOT / "plugins" / "automm-pretrained", "automm_pretrained"),
            (ROOT / "plugins" / "automm-audio", "automm_audio")]


def _built(project: Path, hook: str, out: Path) -> Path:
    """What setuptools' PEP 517 ``hook`` (``build_wheel``, ``prepare_metadata_for_build_wheel``)
    writes into ``out`` for ``project``, run in a process of its own."""
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", f"import setuptools.build_meta as b, sys; print(b.{hook}(sys.argv[1]))",
                           str(out)], cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("project, package", PROJECTS, ids=[package for _, package in PROJECTS])
def test_the_distribution_version_is_the_package_version(project, package, tmp_path):
    """pyproject.toml and __init__.py each said "0.1.0": a release that bumped one of them
    would install a package whose __version__ (what models and studies record) and metadata
    disagree. The metadata built from a copy whose __version__ is bumped says the bumped one."""
    pytest.importorskip("setuptools")
    copy = tmp_path / "project"
    (copy / package).mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(project / name, copy / name)
    init = (project / package / "__init__.py").read_text()
    assert len(re.findall(r'^__version__ = "[^"]+"$', init, re.M)) == 1
    (copy / package / "__init__.py").write_text(re.sub(r'^__version__ = "[^"]+"$', '__version__ = "9.8.7"', init,
                                                       flags=re.M))
    metadata = (_built(copy, "prepare_metadata_for_build_wheel", tmp_path / "metadata") / "METADATA").read_text()
    assert re.search(r"^Version: (.*)$", metadata, re.M).group(1) == "9.8.7"


def test_import_and_the_command_line_help_load_no_torch():
    """``import automm`` imported torch and scikit-learn (``automm --version`` took 8.8 s on a loaded
    2-core machine); the public names now load on first use, and each is the object it was."""
    code = ("import sys, automm; from automm import cli; cli.main(['--version']); "
            "print(sorted(m for m in ('torch', 'sklearn', 'optuna', 'pandas') if m in sys.modules)); "
            "from automm import AutoMM, InputError, list_encoders; from automm.estimator import AutoMM as A; "
            "import automm.exceptions as e; print(AutoMM is A, InputError is e.InputError, "
            "sorted(set(automm.__all__) - set(dir(automm))), callable(automm.pipeline.make_loader))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["[]", "True True [] True"]
    with pytest.raises(AttributeError, match="module 'automm' has no attribute 'no_such_name'"):
        import automm

        automm.no_such_name


def test_the_wheel_ships_py_typed(tmp_path):
    """automm's public API has type hints, but the package had no ``py.typed`` marker: mypy on a
    program using automm said 'module is installed, but missing library stubs or py.typed marker'
    and checked none of its calls."""
    pytest.importorskip("setuptools")
    assert (ROOT / "automm" / "py.typed").is_file()
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "automm", copy / "automm", ignore=shutil.ignore_patterns("__pycache__", "images"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    import zipfile

    with zipfile.ZipFile(_built(copy, "build_wheel", tmp_path / "wheel")) as wheel:
        assert "automm/py.typed" in wheel.namelist()


def test_every_estimator_parameter_has_a_type_hint_that_resolves():
    """The estimator's parameters had no annotations: mypy and IDEs typed ``AutoMM(time_limit=...)``
    as Any and could not flag ``AutoMM(max_epochs="20")``. Each parameter's hint must resolve
    (no misspelt name, which only a type checker would otherwise meet) and say what it accepts."""
    import typing

    import optuna

    from automm import AutoMM, AutoMMClassifier, AutoMMRegressor
    from automm import estimator

    hints = typing.get_type_hints(AutoMM.__init__, {**vars(estimator), "optuna": optuna})
    names = AutoMM._get_param_names()
    assert sorted(set(names) - set(hints)) == []
    assert hints["time_limit"] == typing.Optional[float]
    assert optuna.samplers.BaseSampler in typing.get_args(hints["sampler"])
    for cls in (AutoMMClassifier, AutoMMRegressor):  # they inherit the one signature
        assert cls._get_param_names() == names
