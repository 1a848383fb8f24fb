"""Settings read from the environment (``AUTOMM_*`` variables), one parser per kind of value."""

from __future__ import annotations

import math
import os

__all__ = ["megabytes_setting", "seconds_setting"]


def megabytes_setting(name: str, default_bytes: int) -> int:
    """Bytes given by environment variable ``name`` in megabytes (2**20 bytes; fractions allowed,
    ``0`` for none), or ``default_bytes`` when it is unset or blank. Anything else (a negative
    number, ``inf``, ``nan``, ``2G``) raises a ValueError naming the variable and its value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return int(default_bytes)
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = math.nan
    if not megabytes >= 0 or math.isinf(megabytes):
        raise ValueError(f"{name} must be a number of megabytes >= 0; got {raw!r}")
    return int(megabytes * 2 ** 20)


def seconds_setting(name: str, default: float) -> float:
    """Seconds (> 0) given by environment variable ``name``, or ``default`` when it is unset or
    blank; anything else raises a ValueError naming the variable and its value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be a number of seconds > 0; got {raw!r}")
    return seconds
