"""The distributions of automm and of its first-party plugins: one source for the version (the
package's ``__version__``), what the wheels and the sdist hold, and the declared dependencies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
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


def _present(project: Path) -> Path:
    """``project``, or a skip where this source tree lacks it (an unpacked sdist of automm has no plugins)."""
    if not (project / "pyproject.toml").is_file():
        pytest.skip(f"{project.name} is not in this source tree")
    return project


def _pyproject(project: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((_present(project) / "pyproject.toml").read_text())


def _copy(project: Path, package: str, to: Path, *folders: str) -> Path:
    """A copy of ``project`` to build from: its metadata files, ``package`` (without the emoji
    pictures, which take the time) and ``folders``."""
    skip = shutil.ignore_patterns("images")
    shutil.copytree(project / package, to / package, ignore=skip)
    for folder in folders:
        shutil.copytree(project / folder, to / folder, ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (project / name).is_file():
            shutil.copy(project / name, to / name)
    return to


@pytest.mark.parametrize("project, package", PROJECTS, ids=[package for _, package in PROJECTS])
def test_the_distribution_version_is_the_package_version(project, package, tmp_path):
    """pyproject.toml and __init__.py each said "0.1.0": a release that bumped one of them
    would install a package whose __version__ (what models and studies record) and metadata
    disagree. The metadata built from a copy whose __version__ is bumped says the bumped one."""
    pytest.importorskip("setuptools", minversion="77")  # build-system.requires
    _present(project)
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


@pytest.mark.parametrize("project, package", PROJECTS, ids=[package for _, package in PROJECTS])
def test_the_wheel_ships_py_typed_and_its_licences(project, package, tmp_path):
    """automm's public API has type hints, but the package had no ``py.typed`` marker: mypy on a
    program using automm said 'module is installed, but missing library stubs or py.typed marker'
    and checked none of its calls; so it still did for the plugins (typed as much). And no
    distribution held the text of its licence (Apache-2.0 asks for it), nor did the core's metadata
    name the licences of the emoji sample its wheel embeds (pictures CC BY 4.0, metadata MIT)."""
    pytest.importorskip("setuptools", minversion="77")  # build-system.requires
    with zipfile.ZipFile(_built(_copy(_present(project), package, tmp_path / "project"), "build_wheel",
                                tmp_path / "wheel")) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"{package}/py.typed" in names
    licence_files = re.findall(r"^License-File: (.*)$", metadata, re.M)
    assert "LICENSE" in licence_files
    assert all(any(n.endswith(f".dist-info/licenses/{f}") for n in names) for f in licence_files)
    expression = set(re.search(r"^License-Expression: (.*)$", metadata, re.M).group(1).split(" AND "))
    if package == "automm":
        assert expression == {"Apache-2.0", "CC-BY-4.0", "MIT"}
        assert {"automm/datasets/emoji_sample/ATTRIBUTION.md",
                "automm/datasets/emoji_sample/LICENSE-metadata-MIT"} <= set(licence_files)
    else:
        assert expression == {"Apache-2.0"}
    assert (project / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()  # one licence, copied


def test_the_sdist_holds_what_the_test_suite_reads(tmp_path):
    """The sdist held the test modules setuptools picks by name (tests/test_*.py), but not their
    conftest.py and helpers.py, nor the recipes, docs and benchmark script they read: of the
    test modules unpacked from it, half failed to import ('No module named helpers') and
    test_architecture_doc failed on the missing docs (test_readme reads every docs/ page). Nothing
    compiled comes along."""
    pytest.importorskip("setuptools", minversion="77")  # build-system.requires
    copy = _copy(ROOT, "automm", tmp_path / "project", "tests", "recipes", "docs", "benchmarks")
    (copy / "tests" / "__pycache__").mkdir(exist_ok=True)
    (copy / "tests" / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"")
    with tarfile.open(_built(copy, "build_sdist", tmp_path / "sdist")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    needed = {"LICENSE", "docs/architecture.md", "benchmarks/gpu_check.py", "tests/conftest.py", "tests/helpers.py",
              "automm/datasets/emoji_sample/emoji_sample.csv"}
    needed |= {path.relative_to(ROOT).as_posix() for folder in ("tests", "recipes", "docs")
               for path in (ROOT / folder).iterdir() if path.suffix in (".py", ".yaml", ".md")}
    assert sorted(needed - names) == []
    assert [name for name in names if "__pycache__" in name or name.endswith(".pyc")] == []


@pytest.mark.parametrize("project", [p for p, _ in PROJECTS[1:]], ids=[name for _, name in PROJECTS[1:]])
def test_each_plugin_requires_a_range_of_the_core_that_holds_this_core(project):
    """The plugins required plain ``automm``: any release of the core, past or future, satisfied
    pip, though they call the core's API of this release series (FeatureCache.claim,
    check_deadline, compute_device). Each names a range that holds this core's version and
    stops before the next minor release, where a 0.x API may change."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    import automm

    wanted = [Requirement(r) for r in _pyproject(project)["project"]["dependencies"]]
    (core,) = [r for r in wanted if r.name == "automm"]
    version = Version(automm.__version__)
    assert core.specifier.contains(version, prereleases=True)
    assert not core.specifier.contains(f"{version.major}.{version.minor + 1}.0")
    assert not core.specifier.contains("0.0.1")


# (package, the first release that has what automm calls, what it calls, the file that calls it)
NEEDED_RELEASES = [
    ("torch", "2.3", 'torch.amp.GradScaler("cuda"', "automm/training.py"),  # every Trainer; 2.2: AttributeError
    ("torch", "2.4", 'return device.type in ("cpu", "cuda")', "automm/training.py"),  # fused AdamW on the CPU
]


@pytest.mark.parametrize("package, release, call, where", NEEDED_RELEASES,
                         ids=[f"{n[0]}>={n[1]}" for n in NEEDED_RELEASES])
def test_the_dependency_floors_hold_the_apis_automm_calls(package, release, call, where):
    """pyproject.toml asked for torch>=2.1, but every fit builds ``torch.amp.GradScaler("cuda", ...)``
    (torch 2.3 on: on 2.1 and 2.2 every fit failed with an AttributeError) and, on the CPU, a fused
    AdamW (torch 2.4 on: on 2.3 every CPU fit failed, "`fused=True` requires all the params to be
    floating point Tensors of supported devices: ['cuda', 'xpu', 'privateuseone']"). Each floor is
    at least the first release with what automm calls (a row whose call is gone is to be dropped)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    assert call in (ROOT / where).read_text()
    (floor,) = [r for r in map(Requirement, _pyproject(ROOT)["project"]["dependencies"]) if r.name == package]
    lowest = [Version(s.version) for s in floor.specifier if s.operator in (">=", ">", "~=", "==")]
    assert lowest and max(lowest) >= Version(release), f"{floor} admits releases before {release}"


def test_every_estimator_parameter_has_a_type_hint_that_resolves():
    """The estimator's parameters had no annotations: mypy and IDEs typed ``AutoMM(time_limit=...)``
    as Any and could not flag ``AutoMM(max_epochs="20")``. Each parameter's hint must resolve
    (no misspelt name, which only a type checker would otherwise meet) and say what it accepts."""
    import typing

    import optuna

    from automm import AutoMM, AutoMMClassifier, AutoMMRegressor

    hints = typing.get_type_hints(AutoMM.__init__)  # (as a user's tool calls it: no names lent)
    names = AutoMM._get_param_names()
    assert sorted(set(names) - set(hints)) == []
    assert hints["time_limit"] == typing.Optional[float]
    assert optuna.samplers.BaseSampler in typing.get_args(hints["sampler"])
    for cls in (AutoMMClassifier, AutoMMRegressor):  # they inherit the one signature
        assert cls._get_param_names() == names


def test_the_public_api_has_type_hints_that_resolve():
    """``typing.get_type_hints(AutoMM.__init__)`` raised NameError (optuna's types were imported for
    type checkers only), and fit, predict, score, transform, create_encoder and load_dataset had no
    types (Any to mypy, whose ``--strict`` refused every call of fit); ``AutoMM.load`` took a device
    as a str only. Every public callable's hints resolve at run time, and the main ones say what
    they return."""
    import inspect
    import typing

    import numpy as np
    import pandas as pd
    import torch

    import automm
    from automm import testing
    from automm.components.base import Encoder, Fusion
    from automm.datasets import load_emoji_sample

    def hints(obj):
        return typing.get_type_hints(obj)  # a NameError or a SyntaxError fails the test

    public = [getattr(automm, name) for name in automm.__all__ if name != "__version__"]
    public += [getattr(testing, name) for name in testing.__all__]
    for obj in public:
        if inspect.isclass(obj):
            for name, member in vars(obj).items():
                if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__"):
                    hints(member)
                elif isinstance(member, classmethod):
                    hints(member.__func__)
        elif inspect.isfunction(obj):
            hints(obj)
    AutoMM = automm.AutoMM
    assert hints(AutoMM.fit)["return"] is hints(AutoMM.load)["return"]  # the class it is called on
    assert hints(AutoMM.from_recipe)["return"] is hints(AutoMM.load)["return"]
    for method in (AutoMM.predict, AutoMM.transform, AutoMM.get_feature_names_out):
        assert hints(method)["return"] is np.ndarray
    assert hints(AutoMM.score)["return"] is float
    assert torch.device in typing.get_args(hints(AutoMM.load)["device"])  # as AutoMM(device=...) takes it
    assert hints(automm.create_encoder)["return"] is Encoder
    assert hints(automm.create_fusion)["return"] is Fusion
    for function in (automm.load_dataset, automm.read_image_folder, load_emoji_sample):
        assert hints(function)["return"] is pd.DataFrame
