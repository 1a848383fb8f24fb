"""Settings read from the environment (``AUTOMM_*`` variables), one parser per kind of value."""

from __future__ import annotations

import math
import os
from typing import Callable

from .exceptions import InputError

__all__ = ["megabytes_setting", "seconds_setting"]


def _number_setting(name: str, valid: Callable[[float], bool], expected: str) -> float | None:
    """Environment variable ``name`` as a finite number that is ``valid``, or None when it is unset
    or blank; anything else raises an :class:`~automm.InputError` (a ValueError) naming the variable,
    ``expected`` and the value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not valid(value) or math.isinf(value):  # (NaN is valid under no test)
        raise InputError(f"{name} must be {expected}; got {raw!r}")
    return value


def megabytes_setting(name: str, default_bytes: int) -> int:
    """Bytes given by environment variable ``name`` in megabytes (2**20 bytes; fractions allowed,
    ``0`` for none), or ``default_bytes`` when it is unset or blank. Anything else (a negative
    number, ``inf``, ``nan``, ``2G``) raises a ValueError naming the variable and its value."""
    megabytes = _number_setting(name, lambda v: v >= 0, "a number of megabytes >= 0")
    return int(default_bytes) if megabytes is None else int(megabytes * 2 ** 20)


def seconds_setting(name: str, default: float) -> float:
    """Seconds (> 0) given by environment variable ``name``, or ``default`` when it is unset or
    blank; anything else raises a ValueError naming the variable and its value."""
    seconds = _number_setting(name, lambda v: v > 0, "a number of seconds > 0")
    return float(default) if seconds is None else seconds
