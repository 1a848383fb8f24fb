"""docs/architecture.md is the map of the code a new maintainer reads first: its tables name every
module of automm/, automm/components/ and the first-party plugins (and no module that is not there),
the hooks of automm/hookspecs.py and the subcommands of the ``automm`` command; its Plugins section
names the members of the encoder interface; it stays short enough to read; and every module's
``__all__`` names what it has."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import automm

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def _rows() -> dict[str, str]:
    """The module table: each row's path (``automm/data.py``) -> what the row says it owns."""
    return dict(re.findall(r"^\| `([^`]+)` \| (.*) \|$", DOC.read_text(encoding="utf-8"), re.M))


def _section(title: str) -> str:
    """The text of the section ``## title``, up to the next one."""
    return DOC.read_text(encoding="utf-8").split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_module_is_named_in_the_architecture_doc_and_every_named_module_exists():
    """The table lacked automm/__init__.py (the public API) and automm/__main__.py (python -m automm),
    and named the plugins' distributions but none of their modules."""
    rows = _rows()
    folders = ["automm", "automm/components", *(path.relative_to(ROOT).as_posix()
                                                 for path in sorted(ROOT.glob("plugins/*/automm_*")))]
    modules = [path.relative_to(ROOT).as_posix() for folder in folders
               for path in sorted((ROOT / folder).glob("*.py")) if path.stat().st_size]  # (an empty __init__: no row)
    assert [module for module in modules if module not in rows] == []
    checked = [path for path in rows if not path.startswith("plugins/") or (ROOT / "plugins").is_dir()]  # (sdist: none)
    assert [path for path in checked if not (ROOT / path).exists()] == []


def test_the_hookspecs_row_names_exactly_the_hooks():
    from automm import hookspecs

    hooks = {name for name, value in vars(hookspecs).items()
             if name.startswith("automm_") and inspect.isfunction(value)}
    named = set(re.findall(r"`(automm_\w+)`", _rows()["automm/hookspecs.py"]))
    assert hooks and named == hooks


def test_the_cli_row_names_exactly_the_subcommands():
    import argparse

    from automm.cli import build_parser

    (subparsers,) = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    row = _rows()["automm/cli.py"]
    named = set(re.findall(r"`(\w+)`", row.split("(", 1)[1].split(")", 1)[0]))  # "the `automm` command (`init`, ...)"
    assert named == set(subparsers.choices)


def test_the_plugins_section_names_every_member_of_the_encoder_interface():
    """The map lacked empty_rows, get_state / set_state, training_only_hyperparameters and
    min_format_version: what a plugin author implements or sets had no place on it."""
    from automm.components.base import Encoder

    section = _section("Plugins")
    members = [name for name in vars(Encoder) if not name.startswith("_")]
    assert [name for name in members if f"`{name}`" not in section] == []


def test_the_architecture_doc_stays_readable():
    """It had grown to 56 KB, its module rows run-on paragraphs of up to 3,200 characters: detail
    belongs in the docstrings, the map says where to look."""
    text = DOC.read_text(encoding="utf-8")
    assert len(text) < 20_000
    assert [line[:40] for line in text.splitlines() if len(line) > (300 if line.startswith("|") else 200)] == []


def test_every_name_in_a_modules_all_exists_once():
    for info in pkgutil.walk_packages(automm.__path__, "automm."):
        module = importlib.import_module(info.name)
        names = list(getattr(module, "__all__", ()))
        assert [name for name in names if not hasattr(module, name)] == [], info.name
        assert len(names) == len(set(names)), info.name


def _code_text() -> str:
    """automm's code and its first-party plugins'."""
    files = [*ROOT.glob("automm/**/*.py"), *ROOT.glob("plugins/*/automm_*/**/*.py")]
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def test_every_name_the_architecture_doc_gives_is_in_the_code():
    """A map that names a function, class, constant or attribute the code no longer has sends a new
    maintainer looking for it: each name in code style (``usable_cpus``, ``SearchContext.interrupt``)
    is a word of the code, and one qualified by a module of automm (``estimator.float32_default``,
    ``search.register_fit``) is that module's attribute (or written so in the code: the recipe key
    ``data.files_dir``, Optuna's ``study.enqueue_trial``); a module file (``roles.py``) is one of
    automm's or its plugins'. Every section, not only the tables."""
    code = _code_text()
    words = set(re.findall(r"\w+", code))
    files = {path.name for path in [*ROOT.glob("automm/**/*.py"), *ROOT.glob("plugins/*/automm_*/*.py")]}
    text = DOC.read_text(encoding="utf-8")
    if not (ROOT / "plugins").is_dir():  # (an sdist: the plugins' rows name their code, which it lacks)
        text = re.sub(r"^\| `plugins/.*\n", "", text, flags=re.M)
    stale = []
    for section in re.split(r"^## ", text, flags=re.M):
        path = section.split("\n", 1)[0]  # (the section's title)
        for name in re.findall(r"`([A-Za-z_][\w.]*)(?:\(\))?`", section):
            parts = name.split(".")
            if parts[-1] == "py":
                if name not in files:
                    stale.append(f"{path}: {name}")
                continue
            if any(part not in words for part in parts if part not in ("py", "json", "yaml", "safetensors")):
                stale.append(f"{path}: {name}")
                continue
            module = parts[1] if parts[0] == "automm" and len(parts) > 2 else parts[0]
            if len(parts) > 1 and (ROOT / "automm" / f"{module}.py").is_file() and name not in code:
                value = importlib.import_module(f"automm.{module}")
                for attribute in parts[parts.index(module) + 1:]:
                    if not hasattr(value, attribute):
                        stale.append(f"{path}: {name}")
                        break
                    value = getattr(value, attribute)
    assert stale == []
