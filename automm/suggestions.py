"""Did-you-mean hints: the known name a misspelt, differently cased or abbreviated one stands for.

Every message that rejects a name (a recipe key, a column, a metric, an encoder pattern) ends with
the same hint, from here.
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import Any, Iterable, Mapping

__all__ = ["close_match", "did_you_mean", "quoted_values", "rename_hint", "elided_repr", "unique_target",
           "written_alike", "shown_apart", "labels_written_otherwise", "NAMES_SHOWN", "shown_names", "shown_roles"]


def close_match(found: Any, candidates: Iterable[Any], words: bool = False) -> str | None:
    """The candidate name ``found`` is most likely a misspelling, other case or abbreviation of
    (with ``words``, also one word of: ``flip`` of ``horizontal_flip``; a hint's rule, too loose
    to decide that one name stands for another)."""
    if not isinstance(found, str):
        return None
    names = [c for c in candidates if isinstance(c, str)]
    # the same name in another case before a merely similar one ('Image', not 'image_2', for 'image')
    close = [c for c in names if c == found] or [c for c in names if c.lower() == found.lower()][:1]
    if not close:
        close = difflib.get_close_matches(found, names, n=1, cutoff=0.6)
        if not close and len(found) >= 2:  # an abbreviation of exactly one candidate
            starts = [c for c in names if c.lower().startswith(found.lower())]
            close = starts if len(starts) == 1 else []
            if not close and words and len(found) >= 4:  # a word of exactly one ("flip": horizontal_flip)
                holding = [c for c in names if found.lower() in c.lower().replace("-", "_").split("_")]
                close = holding if len(holding) == 1 else []
    return close[0] if close else None


def rename_hint(missing: Iterable[Any], found: Iterable[Any]) -> str:
    """``"; rename 'Title' to 'title', 'Image' to 'image'?"``: for each of the ``missing`` names, the
    one of the ``found`` names it most likely is (:func:`close_match`; names differing only in case
    first, each found name given once), else ``""``."""
    missing, left = list(missing), [str(c) for c in found]
    chosen: dict[int, str] = {}
    for exact in (True, False):
        for i, name in enumerate(missing):
            if i not in chosen and left:
                close = close_match(str(name), left)
                if close is not None and (not exact or close.lower() == str(name).lower()):
                    chosen[i] = close
                    left.remove(close)
    renamed = [f"{chosen[i]!r} to {name!r}" for i, name in enumerate(missing) if i in chosen]
    return f"; rename {', '.join(renamed)}?" if renamed else ""


def did_you_mean(found: Any, candidates: Iterable[Any]) -> str:
    """``"; did you mean 'name'?"`` for :func:`close_match`'s candidate, else ``""``."""
    close = close_match(found, candidates, words=True)
    return f"; did you mean {close!r}?" if close is not None else ""


def elided_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, its middle left out past ``limit`` characters (an int of 401 digits, a
    page of text: a message shows which value, not all of it; a customer's review quoted whole
    put their name and e-mail address into every log that kept the message). Its end stays: two
    paths of one long folder differ there. The one way messages shorten a value."""
    shown = repr(value)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit // 2]}...{shown[-10:]} ({len(shown)} characters)"


def quoted_values(values: Iterable[Any], limit: int = 20, *, whole: bool = False) -> str:
    """The first ``limit`` of ``values`` quoted (numpy scalars as plain values, a long text cut:
    :func:`elided_repr`, unless ``whole``: names a user must type again, such as a storage's
    study names), ``...`` after them when there are more: what a message shows of the values a
    name could have been, or of a column's values."""
    values = list(values)
    quote = repr if whole else elided_repr
    shown = ", ".join(quote(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


#: How many names a message lists whole (:func:`shown_names`, :func:`shown_roles`): a table of 1,000
#: columns, each named, made one error message or summary line of 15,000 to 29,000 characters.
NAMES_SHOWN = 20


def shown_names(names: Iterable[Any], limit: int = NAMES_SHOWN, *, plain: bool = False) -> str:
    """``names`` (a table's columns) as a message lists them, ``['a', 'b']`` (``plain``: ``a, b``);
    more than ``limit`` of them, the first ``limit // 2`` and how many there are in all:
    ``['a', 'b', ... (1000 in all)]``."""
    names = list(names)
    shown = names if len(names) <= limit else names[:max(1, limit // 2)]
    text = ", ".join(str(n) if plain else repr(n) for n in shown)
    if len(shown) < len(names):
        text += f", ... ({len(names)} in all)"
    return text if plain else f"[{text}]"


def shown_roles(roles: Mapping[Any, str], limit: int = NAMES_SHOWN, form: str = "{column} ({role})") -> str:
    """Each column with its role (``form``: ``title (text), price (numeric)``); more than ``limit``
    columns, how many of each role, with the first three of its columns, roles in the order of their
    first column: ``999 columns: 1 image (image), 1 text (title), 662 numeric (f0000_price, f0001_flag,
    f0002_count, ...), ...``."""
    if len(roles) <= limit:
        return ", ".join(form.format(column=column, role=role) for column, role in roles.items())
    by_role: dict[str, list[Any]] = {}
    for column, role in roles.items():
        by_role.setdefault(role, []).append(column)
    return f"{len(roles)} columns: " + ", ".join(
        f"{len(columns)} {role} ({', '.join(map(str, columns[:3]))}{', ...' if len(columns) > 3 else ''})"
        for role, columns in by_role.items())


def unique_target(found: Any, targets: Iterable[tuple[Any, str]], *, fuzzy: bool = True) -> str | None:
    """Where the name ``found`` belongs, given ``(name, target)`` pairs (e.g. a recipe key and
    its key path): the target of ``found``, or (``fuzzy``) of the name it most likely stands
    for (:func:`close_match`), when exactly one target has that name; else None."""
    pairs = [(name, target) for name, target in targets if isinstance(name, str)]
    names = [name for name, _ in pairs]
    name = found if found in names else close_match(found, names) if fuzzy else None
    matches = {target for candidate, target in pairs if candidate == name}
    return matches.pop() if name is not None and len(matches) == 1 else None


def written_alike(value: str) -> str:
    """What ``value`` reads as, whatever its case, its spaces and how its accented letters are
    encoded (Unicode's composed ``'\\xe9'`` or ``'e'`` followed by a combining accent, as macOS
    writes file names, NFKC): labels with the same key are most likely one label written two ways."""
    return " ".join(unicodedata.normalize("NFKC", value).split()).casefold()


def shown_apart(values: Iterable[Any]) -> list[str]:
    """``repr`` of each of ``values``, or their ``ascii`` when two of them would look the same
    (``'Schuh\\xe9'`` and ``'Schuhe\\u0301'``: the same letters, written in two Unicode forms)."""
    values = list(values)
    shown = [repr(v) for v in values]
    if len({unicodedata.normalize("NFC", s) for s in shown}) < len(set(shown)):
        shown = [ascii(v) for v in values]
    return shown


def labels_written_otherwise(labels: Iterable[Any], classes: Iterable[Any]) -> str:
    """For labels that are none of ``classes``: ``"; N of them are a class written otherwise ..."``
    when some are one of ``classes`` with other case, spaces or Unicode form of its accents
    (:func:`written_alike`), naming the first such pair and the Unicode form its class is written in
    (a class from macOS file names may be NFD); else ``""``."""
    keys: dict[str, Any] = {}
    for c in classes:
        if isinstance(c, str):
            keys.setdefault(written_alike(c), c)
    pairs = [(v, keys[written_alike(v)]) for v in labels if isinstance(v, str) and written_alike(v) in keys]
    if not pairs:
        return ""
    label, cls = pairs[0]
    shown = shown_apart([label, cls])
    form = "NFD" if unicodedata.is_normalized("NFD", cls) and not unicodedata.is_normalized("NFC", cls) else "NFC"
    return (f"; {len(pairs)} of them are a class written otherwise (e.g. {shown[0]} for the class {shown[1]}: other "
            "case, spaces or Unicode form of accented letters); write them as the classes are written, "
            f"e.g. unicodedata.normalize({form!r}, label).strip()")
