"""Column-role inference: which columns are images, texts, numbers or categories.

Built-in rules run last (``trylast``) so that a plugin can claim columns of its own
modality (for example audio files) through ``automm_infer_column_role``.
"""

from __future__ import annotations

import datetime
import decimal
import math
import numbers
import os
import re
from typing import Any, Callable, Sequence

import numpy as np

from .hookspecs import hookimpl

__all__ = ["BASE_ROLES", "IMAGE_EXTENSIONS", "ROLE_TO_MODALITY", "as_datetime", "infer_role_builtin", "is_number",
           "share_at_least",
           "written_bool", "written_code", "written_missing", "written_seasons", "read_words", "written_duration", "stray_numbers", "text_or_categorical", "is_image_bytes", "is_heif_bytes", "names_image_files",
           "modality_of_role", "looks_like_image_path"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ico",
                    ".jp2", ".tga", ".ppm", ".pgm", ".pbm", ".avif", ".heic", ".heif")
#: The roles automm knows without plugins (a plugin's modality is a role too).
BASE_ROLES = ("image", "text", "numeric", "categorical", "datetime")
#: Roles whose columns share one tabular input; every other role is its own modality.
ROLE_TO_MODALITY = {"numeric": "tabular", "categorical": "tabular", "datetime": "tabular"}
#: A date or date-time written in ISO 8601 (what a CSV file holds): ``2024-03-05``,
#: ``2024-03-05 14:30``, ``2024-03-05T14:30:00.5+01:00``, ``...Z``.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?")
#: A month written in ISO 8601 (``2024-03``: its first day); not ``2024-3``, ``202403`` or ``03-2024``.
_ISO_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")


#: The zone at the end of an ISO 8601 time: ``Z``, ``+01:00``, ``+0100`` or ``+01`` (the sign, hours, minutes).
_ISO_ZONE = re.compile(r"(?:Z|([+-])(\d{2}):?(\d{2})?)$")


def modality_of_role(role: str) -> str:
    return ROLE_TO_MODALITY.get(role, role)


def looks_like_image_path(value: Any) -> bool:
    """A path or URL of an image file, by its extension (a URL's query and fragment left out:
    ``https://cdn/x.jpg?v=2``), or an image's ``data:`` URI. URLs count so that their column is an
    image column, which then refuses them, saying so: automm never downloads. Spaces around a
    path (a spreadsheet's cell ``"1.jpg "``) are left out, as reading the file leaves them out."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = str(value).strip().lower()
    if text.startswith("data:image/"):
        return True
    if "://" in text[:20]:
        text = text.split("#", 1)[0].split("?", 1)[0]
    return text.endswith(IMAGE_EXTENSIONS)


#: Leading bytes of encoded images: PNG, JPEG, GIF, BMP, TIFF (both byte orders); WebP is RIFF....WEBP.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


#: The brands of an ISO media file's ``ftyp`` box (its bytes 8 to 12) that make it a HEIF image: an
#: iPhone's HEIC photo, which Pillow reads only with the pillow-heif plugin.
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def is_heif_bytes(data: bytes) -> bool:
    """Whether ``data`` (a file's first 12 bytes or more) begin a HEIF (HEIC) image."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def is_image_bytes(data: bytes) -> bool:
    """Whether ``data`` (a file's first 12 bytes or more) begin an encoded image."""
    return (data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
            or is_heif_bytes(data))


#: How many of a column's first values :func:`names_image_files` opens.
_FILES_LOOKED_AT = 20


def names_image_files(values: Sequence[Any], folders: Sequence[Any] = ()) -> bool:
    """Whether ``values`` are paths of image files whose names lack an image extension
    (``photos/1234``, a content-addressed store's ``ab/cd12...``): at least 80% of the first 20
    strings name a file, absolute or under the current directory or one of ``folders``, whose
    first bytes are an image's (:func:`is_image_bytes`). Opens at most 20 files."""
    strings = [v for v in values[:_FILES_LOOKED_AT] if isinstance(v, (str, os.PathLike)) and str(v).strip()]
    if not strings or len(strings) < 0.8 * min(len(values), _FILES_LOOKED_AT):
        return False
    bases = [""] + [os.fspath(f) for f in folders]
    images = 0
    for value in strings:
        text = os.fspath(value)
        if "\n" in text or len(text) > 4096:
            continue
        for base in ([""] if os.path.isabs(text) else bases):
            path = os.path.join(base, text)
            try:
                if os.path.isfile(path):
                    with open(path, "rb") as file:
                        images += is_image_bytes(file.read(12))
                    break
            except (OSError, ValueError):  # unreadable, or a name the system refuses
                continue
    return images >= 0.8 * min(len(values), _FILES_LOOKED_AT)


def as_datetime(value: Any) -> datetime.datetime | None:
    """``value`` as a :class:`datetime.datetime` when it is a point in time: a ``datetime`` (a
    pandas ``Timestamp`` is one), a ``date`` (at midnight), a numpy ``datetime64`` or an ISO 8601
    string (a month, ``"2024-03"``, at its first day's midnight); None for anything else and for
    missing times (``NaT``). Time zones are kept."""
    if isinstance(value, datetime.datetime):
        return None if value != value else value  # NaT is a datetime that is not equal to itself
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        moment = value.astype("datetime64[us]").item()
        return moment if isinstance(moment, datetime.datetime) else None  # out of datetime's range
    start_time = getattr(value, "start_time", None)  # a pandas Period (a day, a month): its start
    if start_time is not None and type(value).__name__ == "Period":
        return None if start_time != start_time else start_time.to_pydatetime()
    if isinstance(value, str):
        text = value.strip()
        month = _ISO_YEAR_MONTH.fullmatch(text)
        if month:
            try:
                return datetime.datetime(int(month.group(1)), int(month.group(2)), 1)
            except ValueError:  # e.g. 2024-13, 0000-01
                return None
        if not _ISO_DATETIME.fullmatch(text):
            return None
        if len(text) > 10 and text[10] not in "T ":  # a date with its zone ("2024-03-05+01:00", "...Z"):
            text = text[:10] + "T00:00" + text[10:]  # midnight there (fromisoformat read "+01:00" as 01:00)
        # the zone as every supported Python reads it (3.10's fromisoformat takes "+01:00" only, not
        # "Z", "+0100" or "+01")
        zone = _ISO_ZONE.search(text[10:])
        if zone:
            sign, hours, minutes = zone.group(1) or "+", zone.group(2) or "00", zone.group(3) or "00"
            text = text[:10 + zone.start()] + f"{sign}{hours}:{minutes}"
        if "." in text:  # fromisoformat takes at most 6 digits of a second
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = head + "." + tail[:min(digits, 6)].ljust(6, "0") + tail[digits:]
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:  # e.g. 2024-02-30
            return None
    return None


def written_seasons(values: Sequence[Any]) -> bool:
    """Whether ``values`` (present ones) are all seasons or fiscal years written as their two
    years, ``"2009-10"``, ``"2010-11"``: each one's second number the last two digits of the year
    after its first. From 2000 to 2011 these are months too (:func:`as_datetime` reads
    ``"2010-11"`` as November 2010), so a column of them alone is read as one of seasons, not of
    dates: their months would be noise."""
    if not values:
        return False
    for value in values:
        match = _ISO_YEAR_MONTH.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None or int(match.group(2)) != (int(match.group(1)) + 1) % 100:
            return False
    return True


#: A duration as pandas writes one to a CSV file (``"0 days 00:45:32"``, ``"-1 days +23:59:59.5"``)
#: or as ``str(datetime.timedelta)`` (``"1 day, 2:03:04"``).
_WRITTEN_DURATION = re.compile(r"\s*(-?\d+) days?,? ([+-]?)(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)\s*$")


def written_duration(value: Any) -> float | None:
    """The seconds of a duration written as pandas or Python writes a ``timedelta``
    (``"0 days 00:45:32"``: a CSV file's duration column), else None."""
    match = _WRITTEN_DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    days, sign, hours, minutes, seconds = match.groups()
    clock = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return int(days) * 86400.0 + (-clock if sign == "-" else clock)


def written_bool(value: Any) -> float | None:
    """1.0 or 0.0 for ``"True"`` / ``"False"`` (any case, spaces around): a bool a JSON or CSV caller
    sends as text to a numeric column fitted on bools; else None."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return 1.0 if word == "true" else 0.0
    return None


#: How pandas and Python write a missing value as text (``str`` or ``astype(str)`` of NaN, NaT,
#: ``pandas.NA`` and None), compared in lower case: what a frame turned into strings (``astype(str)``,
#: JSON, a CSV file written so) holds where a number or a time was missing.
WRITTEN_MISSING = frozenset({"nan", "nat", "<na>", "none"})


def written_missing(value: Any) -> bool:
    """Whether ``value`` is a missing value as pandas writes one (:data:`WRITTEN_MISSING`: ``"nan"``,
    ``"NaN"``, ``"NaT"``, ``"<NA>"``, ``"None"``, spaces around allowed): missing in a number or
    date-time column, as ``""`` is, not a value that is not a number or time."""
    return isinstance(value, str) and value.strip().lower() in WRITTEN_MISSING


def is_number(value: Any) -> bool:
    """Whether a numeric column's ``value`` reads as a number, as the table encoder reads it: a
    duration (as seconds; also written, :func:`written_duration`), or anything ``float`` takes but
    a container: numbers of any kind (``Decimal``, ``Fraction``, numpy scalars, bools) and strings
    such as ``"1.5"``, ``" -2e3 "``, ``"nan"``; not ``"$5"``, ``"1,234"`` or a word."""
    if isinstance(value, (datetime.timedelta, np.timedelta64)) or written_duration(value) is not None:
        return True
    if isinstance(value, (np.ndarray, list, tuple, dict, set)):
        return False
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _utf8_text(value: bytes | bytearray) -> bool:
    """Whether ``value`` decodes as UTF-8 into printable text (tabs and newlines allowed)."""
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text.strip()) and all(c.isprintable() or c in "\t\n\r" for c in text)


def _is_image_object(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):  # an encoded image, unless UTF-8 text that begins none
        return is_image_bytes(bytes(value[:16])) or not _utf8_text(value)
    if isinstance(value, np.ndarray) and value.ndim >= 2:
        return True
    from PIL import Image

    return isinstance(value, Image.Image)


#: Cell values read as a list of items (tags, keywords, categories): joined into one text.
LIST_TYPES = (list, tuple, set, frozenset)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int, float, np.number, np.bool_))


def is_items(value: Any) -> bool:
    """Whether a cell holds a list of items: a list, tuple or set, or a 1-D numpy array (what
    ``list(embeddings)`` puts in a DataFrame, and pandas gives for a Parquet list column)."""
    return isinstance(value, LIST_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1)


def is_number_vector(value: Any) -> bool:
    """Whether ``value`` is a list, tuple or 1-D array of numbers: a vector, such as an embedding."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.size == 0:
            return False
        if value.dtype.kind in "iuf":
            return True
        value = value.tolist()
    return (isinstance(value, LIST_TYPES) and len(value) > 0
            and all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) for v in value))


def joined_items(value: Any) -> Any:
    """A list, tuple, set or 1-D array of words or other scalars (tags: ``["red", "cotton"]``) as
    one text (``"red, cotton"``; a set's items sorted), so that text and category encoders read its
    items; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, LIST_TYPES) and all(_scalar(v) for v in value):
        items = [str(v) for v in value]
        return ", ".join(sorted(items) if isinstance(value, (set, frozenset)) else items)
    return value


#: The share of a column's values that must be numbers for a column of strings with a few others
#: (``"$5"``, ``"n.a."``: what a CSV file's number column gives pandas then) to read as numbers.
NUMBERS_AMONG_STRINGS = 0.95


def stray_numbers(values: Sequence[Any]) -> bool:
    """Whether ``values`` are numbers (or strings of numbers: ``"2.5"``) but for a few strings
    that are not, at most 5%: a CSV file's number column with a stray value, which pandas then
    reads as strings. Strings of numbers alone (no stray) are not: a user made them strings. A
    missing value as pandas writes one (:func:`written_missing`: ``"NaT"``) is such a stray, but
    missing, not counted among the 5%."""
    missing = sum(map(written_missing, values))  # ("NaT", "None": missing, not strays)
    numbers = sum(is_number(v) and not written_missing(v) and not (isinstance(v, str) and written_code(v))
                  for v in values)
    return (0 < numbers < len(values) and numbers >= NUMBERS_AMONG_STRINGS * (len(values) - missing)
            and all(isinstance(v, (str, bool, int, float, np.number, np.bool_)) for v in values))


def _written_amounts(values: Sequence[Any]) -> bool:
    """Whether ``values`` are all strings of numbers (no code with leading zeros), some of them
    not whole (``"12.50"``): a number column written as strings (``read_csv(dtype=str)``, JSON)."""
    if not all(isinstance(v, str) and is_number(v) and not written_code(v) for v in values):
        return False
    return any(not float(v).is_integer() for v in values if math.isfinite(float(v)))


def written_code(value: str) -> bool:
    """Whether the string ``value`` is a number written with leading zeros (``"00412"``): a code."""
    return bool(_LEADING_ZERO.match(value))


#: A number written with leading zeros (``"00412"``): a code, not an amount.
_LEADING_ZERO = re.compile(r"\s*[+-]?0\d")


#: The types of plain numbers (what ``tolist()`` of a number column gives): a column of them is numeric.
_PLAIN_NUMBERS = frozenset({int, float, bool, np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                            np.uint32, np.uint64, np.float16, np.float32, np.float64})


def share_at_least(share: float, values: Sequence[Any], test: Callable[[Any], bool]) -> bool:
    """Whether at least ``share`` of ``values`` pass ``test`` (``sum(map(test, values)) >= share *
    len(values)``), asking no further once the answer is known: 101 numbers of 500 tell that they
    are not 80% image paths."""
    needed = share * len(values)
    room = len(values) - needed  # how many may fail
    passed = failed = 0
    for value in values:
        if test(value):
            passed += 1
            if passed >= needed:
                return True
        else:
            failed += 1
            if failed > room:
                return False
    return passed >= needed


def infer_role_builtin(values: Sequence[Any]) -> str:
    """The built-in rules: image objects or image paths (by their extension, or, without one,
    by the files' first bytes: :func:`names_image_files`) → ``image``; dates and times (objects or
    ISO 8601 strings, 95% of the values; not seasons, :func:`written_seasons`) → ``datetime``;
    numbers (and durations), or numbers with a few strings that are not (:func:`stray_numbers`) →
    ``numeric``; strings with several words or mostly unique → ``text``; other strings →
    ``categorical``."""
    if values and all(type(v) in _PLAIN_NUMBERS for v in values):
        return "numeric"  # (what the rules below read them as, value by value: 4 ms a column of 500)
    values = [joined_items(v) for v in values]
    if not values:
        return "categorical"
    # image objects (PIL images, arrays, bytes, records) and image paths, mixed or not
    if share_at_least(0.8, values, lambda v: _is_image_object(v) or looks_like_image_path(v)):
        return "image"
    if names_image_files(values):
        return "image"  # image files named without an extension
    # (missing values as pandas writes them, "nan", "NaT", "<NA>", "None": a frame through JSON or
    # astype(str) in part, a CSV file's "NaT", which pandas does not read as missing; missing values,
    # as the table encoder reads them; without this, 10% of them made a price column text)
    written = [v for v in values if not written_missing(v)]
    if written and share_at_least(0.95, written, lambda v: as_datetime(v) is not None) and not written_seasons(written):
        return "datetime"
    if written and all(isinstance(v, (bool, numbers.Real, decimal.Decimal, np.number, np.bool_, datetime.timedelta))
                       and not isinstance(v, (complex, np.complexfloating)) for v in written):
        return "numeric"  # durations count as seconds; Decimal (SQL NUMERIC) and Fraction are numbers too
    if written and all(written_duration(v) is not None for v in written):
        return "numeric"  # durations a CSV file wrote ("0 days 00:45:32"): seconds, as timedelta values
    if _written_amounts(values):
        return "numeric"  # "12.50", "3e-4": strings of numbers with a fraction are amounts, not codes
    if stray_numbers(values):
        return "numeric"  # the few others count as missing, with a warning (automm.data.validate_numbers)
    return text_or_categorical(values)


def read_words(text: str) -> list[str]:
    """The words of ``text`` as the text encoders read them (:func:`~automm.components.text.tokenize`,
    punctuation and symbols left out): each character of a script written without spaces (Chinese,
    Japanese, Thai) one word, where ``str.split`` sees a whole phrase as one."""
    from .components.text import tokenize

    return [token for token in tokenize(text) if any(char.isalnum() for char in token)]


def _word_count(text: str) -> float:
    """About how many words ``text`` holds: its words as the text encoders read them (punctuation
    left out), two characters counting as a word in scripts written without spaces (Chinese,
    Japanese, Thai), where ``str.split`` saw a whole sentence as one word."""
    from .components.text import _in_no_space_script

    words = read_words(text)
    unspaced = sum(1 for token in words if _in_no_space_script(ord(token[0])))
    return len(words) - unspaced + unspaced / 2


def text_or_categorical(values: Sequence[Any]) -> str:
    """``text`` for values mostly unique (more than half distinct among 20 or more, or every one
    of 5 or more), long (over 40 characters on average) or of 3 words or more on average, else
    ``categorical``."""
    texts = [str(v) for v in values]
    unique_ratio = len(set(texts)) / len(texts)
    mean_chars = float(np.mean([len(t) for t in texts]))
    # every value distinct (names, titles of a few rows): as categories, each would be seen once
    # and every new value read as missing
    all_distinct = len(texts) >= 5 and unique_ratio == 1.0
    if (unique_ratio > 0.5 and len(texts) >= 20) or all_distinct or mean_chars > 40:
        return "text"
    # counted last, on values of 40 characters on average at most: tokenizing 500 descriptions of
    # 20,000 characters each took 12 s
    mean_words = float(np.mean([len(t.split()) if t.isascii() else _word_count(t) for t in texts]))
    return "text" if mean_words >= 3 else "categorical"


@hookimpl(trylast=True)
def automm_infer_column_role(name: str, values: Sequence[Any]) -> str | None:
    return infer_role_builtin(values)
