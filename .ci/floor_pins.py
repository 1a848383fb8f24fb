"""Print each dependency (and test extra) of the given pyproject.toml files pinned to its declared
lower bound, one requirement per line: ``"optuna>=4.3"`` becomes ``optuna==4.3``. torch (the CPU
build is installed first) and automm's own packages are left out; a name declared twice keeps its
highest floor."""

from __future__ import annotations

import re
import sys
import tomllib

SKIPPED = {"torch", "automm", "automm-pretrained", "automm-audio"}


def floors(paths: list[str]) -> dict[str, str]:
    """Each requirement's name (lower case) and its lower bound, over every file of ``paths``."""
    found: dict[str, str] = {}
    for path in paths:
        with open(path, "rb") as handle:
            project = tomllib.load(handle)["project"]
        requirements = list(project.get("dependencies", ())) + list(
            project.get("optional-dependencies", {}).get("test", ()))
        for requirement in requirements:
            match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement)
            if match is None:
                continue
            name, version = match.group(1).lower(), match.group(2)
            if name in SKIPPED:
                continue
            old = found.get(name)
            if old is None or _as_numbers(version) > _as_numbers(old):
                found[name] = version
    return found


def _as_numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


if __name__ == "__main__":
    for name, version in sorted(floors(sys.argv[1:]).items()):
        print(f"{name}=={version}")
