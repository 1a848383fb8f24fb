"""Did-you-mean hints: the known name a misspelt, differently cased or abbreviated one stands for.

Every message that rejects a name (a recipe key, a column, a metric, an encoder pattern) ends with
the same hint, from here.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

__all__ = ["close_match", "did_you_mean", "quoted_values"]


def close_match(found: Any, candidates: Iterable[Any]) -> str | None:
    """The candidate name ``found`` is most likely a misspelling, other case or abbreviation of."""
    if not isinstance(found, str):
        return None
    names = [c for c in candidates if isinstance(c, str)]
    close = difflib.get_close_matches(found, names, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in names}
        if found.lower() in lowered:
            close = [lowered[found.lower()]]
        elif len(found) >= 2:  # an abbreviation of exactly one candidate
            starts = [c for c in names if c.lower().startswith(found.lower())]
            close = starts if len(starts) == 1 else []
    return close[0] if close else None


def did_you_mean(found: Any, candidates: Iterable[Any]) -> str:
    """``"; did you mean 'name'?"`` for :func:`close_match`'s candidate, else ``""``."""
    close = close_match(found, candidates)
    return f"; did you mean {close!r}?" if close is not None else ""


def quoted_values(values: Iterable[Any], limit: int = 20) -> str:
    """The first ``limit`` of ``values`` quoted (numpy scalars as plain values), ``...`` after
    them when there are more: what a message shows of the values a name could have been."""
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")
