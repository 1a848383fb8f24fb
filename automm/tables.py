"""Data files as tables: reading CSV, TSV, Parquet files and image folders, their headers,
image paths relative to a folder, and the label and weight columns of labelled rows.

Shared by recipes (:mod:`automm.recipes`), the command line and ``automm init``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import numpy as np

from .exceptions import AutoMMWarning, InputError

__all__ = ["read_table", "read_header", "read_column", "read_csv_keeping_codes", "data_format", "parquet_engine", "image_folders",
           "data_file_folders", "resolve_image_paths", "labelled_rows", "whole_number_labels", "weight_column_values",
           "ROWS_NOTE", "UNKNOWN_FORMAT", "with_file_rows"]

#: How messages number the rows of a data file.
ROWS_NOTE = "numbered from 0 after the header, as pandas reads the file"


def data_format(file: Path, declared: str | None) -> str | None:
    """``declared``, else the format ``file``'s name says (a compression suffix skipped), 'folder'
    for a directory; None when the name says nothing."""
    if declared:
        return declared
    if file.is_dir():
        return "folder"
    suffixes = [s.lower() for s in file.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    return {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}.get(last)


def parquet_engine() -> str | None:
    """The installed package pandas can read Parquet with, or None."""
    import importlib.util

    for engine in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(engine) is not None:
            return engine
    return None


def read_header(file: Path, fmt: str) -> list[str]:
    """The column names of a data file (or an image folder's table) without reading its rows."""
    import pandas as pd

    if fmt == "folder":
        from .folders import folder_columns

        return folder_columns(file)
    if fmt == "parquet":
        if parquet_engine() == "pyarrow":
            import pyarrow.parquet as pq

            schema = pq.read_schema(str(file))
            index = _saved_index_fields(schema.pandas_metadata)
            columns = [n for n in schema.names if n not in index]
            named = [n for n in index.values() if n is not None and n not in columns]
            return [str(c) for c in [*named, *columns]]
        return [str(c) for c in read_table(file, fmt).columns]
    frame = pd.read_csv(file, nrows=0, **_text_options(file, fmt))
    return [str(c) for c in frame.columns]


def _saved_index_fields(metadata: Mapping | None) -> dict[str, Any]:
    """The fields of a Parquet file that hold the index pandas saved with it, each with the
    index's name (None for an unnamed one, stored as ``__index_level_0__``)."""
    if not metadata:
        return {}
    names = {c.get("field_name"): c.get("name") for c in metadata.get("columns", []) if isinstance(c, Mapping)}
    return {field: names.get(field) for field in metadata.get("index_columns", []) if isinstance(field, str)}


def _without_saved_index(frame):
    """A frame read from Parquet with its rows numbered from 0 as stored: the index pandas saved
    with it (the row labels of a filtered or concatenated frame) is no column of the data, but a
    named one (``df.set_index("sku")``) is a column again, first, as it was before ``set_index``
    (and as :func:`read_header` lists it)."""
    import pandas as pd

    named = [name for name in frame.index.names if name is not None and name not in frame.columns]
    if named and not isinstance(frame.index, pd.RangeIndex):  # (a RangeIndex is saved as no column)
        frame = frame.reset_index(level=named)
    return frame.reset_index(drop=True)


#: What a data file whose name says no format is told.
UNKNOWN_FORMAT = "cannot tell the format from the name; use a .csv, .tsv or .parquet file, or a folder of images"


def read_table(path: str | os.PathLike, fmt: str | None = None):
    """A DataFrame from a CSV/TSV/Parquet file, or from a folder of images (class folders:
    :func:`automm.folders.read_image_folder`); :class:`InputError` naming the file if unreadable."""
    import pandas as pd

    file = Path(path)
    if file.is_dir() and fmt in (None, "folder"):
        from .folders import read_image_folder

        return read_image_folder(file)
    if not file.is_file():
        raise FileNotFoundError(f"data file not found: {str(file)!r}")
    fmt = data_format(file, fmt)
    if fmt is None:
        raise InputError(f"{str(file)!r}: {UNKNOWN_FORMAT}")
    try:
        if fmt == "parquet":
            if parquet_engine() is None:
                raise InputError(f"{str(file)!r}: reading Parquet needs the pyarrow package: pip install pyarrow")
            return _without_saved_index(pd.read_parquet(file))
        frame, encoding = _read_text_table(file, fmt)
        if encoding not in ("utf-8", "utf-16") and _in_legacy_non_latin_encoding(file):
            if (where := _utf8_but_for(file)) is not None:  # not a legacy encoding: iconv -f GBK would garble it
                raise InputError(f"{str(file)!r} is UTF-8 text but for bytes that are not, the first at byte "
                                 f"{where[0]} (line {where[1]} of the file): read as {encoding} all its other "
                                 "texts would be nonsense; correct that line and any other such (text pasted from "
                                 "a file in another encoding, such as Windows-1252), or read the file with "
                                 "pandas.read_csv(path, encoding_errors='replace') and pass the frame to fit or "
                                 "predict")
            raise InputError(f"{str(file)!r} is not UTF-8 text, and most of its non-ASCII bytes come in runs, as the "
                             "letters of Chinese, Japanese, Korean, Thai, Arabic, Hebrew, Cyrillic or Greek text do "
                             "in a legacy encoding (GBK, Big5, Shift-JIS, EUC-KR, Windows-1256, ...): read as "
                             f"{encoding} its texts would be nonsense, and automm does not guess which encoding it "
                             "is; save the file as UTF-8 (e.g. iconv -f GBK -t UTF-8 old.csv > new.csv), or read "
                             "it with pandas.read_csv(path, encoding=...) and pass the frame to fit or predict")
        if encoding not in ("utf-8", "utf-16"):  # (UTF-16 says by its byte-order mark what it is)
            import warnings

            from .exceptions import user_stacklevel

            warnings.warn(f"{str(file)!r} is not UTF-8 text: read as {encoding} (Windows and older Western "
                          "European files); check its accented letters, or save it as UTF-8",
                          AutoMMWarning, stacklevel=user_stacklevel())
        return frame
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - parser/encoding errors in a user's file
        raise InputError(f"{str(file)!r}: cannot read it as {fmt}: {type(exc).__name__}: {exc}") from None


def read_as_written(path: str | os.PathLike, columns: list, fmt: str | None = None):
    """Columns of a data file as the file writes them: a CSV or TSV file's cells as their text
    (``1001``, not the ``1001.0`` of a column with an empty cell; ``1.50``; an empty cell empty);
    other formats' values as stored. Rows numbered as :func:`read_table` numbers them."""
    import pandas as pd

    file = Path(path)
    fmt = data_format(file, fmt)
    if fmt not in ("csv", "tsv"):
        return read_table(file, fmt)[columns]
    options = _text_options(file, fmt)
    options.pop("decimal", None)  # (the text as written)
    return pd.read_csv(file, usecols=columns, dtype=str, keep_default_na=False, **options)[columns]


def read_column(file: Path, fmt: str, column: str):
    """One column of a data file (or of an image folder's table) as a Series, the other
    columns left unread where the format allows."""
    import pandas as pd

    if fmt == "folder":
        return read_table(file, fmt)[column]
    if fmt == "parquet":
        return pd.read_parquet(file, columns=[column])[column]
    return _read_text_table(file, fmt, usecols=[column])[0][column]


#: How much of a text data file is read to tell its encoding and separator.
_SNIFF_BYTES = 1 << 16
#: The byte-order marks of UTF-8 and UTF-16, with which Excel starts the text files it saves ("CSV
#: UTF-8", "Unicode text").
_BYTE_ORDER_MARKS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def starts_with_byte_order_mark(path: str | os.PathLike) -> bool:
    """Whether a CSV or TSV data file starts with a byte-order mark, as Excel saves them: ``automm
    predict`` writes its predictions with one too, since Excel reads a CSV file without one in the
    system's legacy code page (Chinese or Arabic class names as mojibake)."""
    file = Path(path)
    if data_format(file, None) not in ("csv", "tsv") or not file.is_file():
        return False
    with _open_bytes(file) as handle:
        return handle.read(3).startswith(_BYTE_ORDER_MARKS)


def _open_bytes(file: Path):
    """``file`` opened for reading its bytes as pandas reads them: a compressed file
    (``.gz``, ``.bz2``, ``.xz``, ``.zip``, ``.zst``, as :func:`data_format` accepts) decompressed."""
    suffix = file.suffix.lower()
    if suffix == ".gz":
        import gzip

        return gzip.open(file, "rb")
    if suffix == ".bz2":
        import bz2

        return bz2.open(file, "rb")
    if suffix == ".xz":
        import lzma

        return lzma.open(file, "rb")
    if suffix == ".zip":
        import zipfile

        archive = zipfile.ZipFile(file)
        return archive.open(archive.namelist()[0])
    if suffix == ".zst":
        import zstandard  # (pandas needs it to read such a file too)

        return zstandard.open(file, "rb")
    return open(file, "rb")


def _text_options(file: Path, fmt: str) -> dict:
    """``sep`` and ``encoding`` for ``pandas.read_csv`` of a CSV or TSV file: UTF-8 unless its
    first bytes are not (then Windows-1252, else Latin-1, which reads any byte); for a CSV
    file, ``;`` with decimal commas when its header line has semicolons and no comma (as
    spreadsheets in many countries write CSV)."""
    import codecs

    with _open_bytes(file) as handle:
        head = handle.read(_SNIFF_BYTES)
    text = None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark (Excel's "Unicode text")
        text = head.decode("utf-16", errors="ignore")
        header = text.lstrip("\ufeff").split("\n", 1)[0]
        sep = "\t" if fmt == "tsv" or ("\t" in header and "," not in header) else ","
        whole = len(head) < _SNIFF_BYTES
        return {"sep": sep, "encoding": "utf-16", **_trailing_delimiter_options(text, sep, whole, file)}
    for encoding in _ENCODINGS:
        try:  # (an incomplete character at the end of the bytes read is no error)
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) < _SNIFF_BYTES)
            break
        except UnicodeDecodeError:
            continue
    sep = "\t" if fmt == "tsv" else ","
    header = (text or "").lstrip("\ufeff").split("\n", 1)[0]
    whole = len(head) < _SNIFF_BYTES
    if fmt != "tsv" and ";" in header and ("," not in header or _semicolons_separate(text or "", whole)):
        # (such files write decimal commas: 3,5)
        return {"sep": ";", "decimal": ",", "encoding": encoding, **_trailing_delimiter_options(text, ";", whole, file)}
    return {"sep": sep, "encoding": encoding, **_trailing_delimiter_options(text, sep, whole, file)}


def _semicolons_separate(text: str, whole: bool) -> bool:
    """Whether a CSV file whose header line has both semicolons and commas (``id;Preis, EUR``: a
    spreadsheet quotes no name for a comma it does not separate by) separates its fields by
    semicolons: its first data rows have as many fields as their header by semicolons (one more: a
    delimiter ending each line), and not by commas or with fewer fields by commas; a header alone,
    when it has more fields by semicolons."""
    import csv
    import io

    def read(sep: str) -> list[list[str]]:
        rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=sep) if row]
        return rows[:101] if whole else rows[:-1][:101]  # (the last row read may be cut short)

    def fits(fields: list[int]) -> bool:
        return len(fields) > 1 and all(n in (fields[0], fields[0] + 1) for n in fields[1:])

    by_semicolons = read(";")
    semicolons, commas = [len(row) for row in by_semicolons], [len(row) for row in read(",")]
    if len(semicolons) <= 1 or len(commas) <= 1:  # a header alone: the delimiter that finds more fields
        return bool(semicolons and commas) and semicolons[0] > commas[0]
    if fits(semicolons) and fits(commas) and semicolons[0] == commas[0]:
        # as many fields either way (id;Preis, EUR over 1;3,5): semicolons where the data rows' commas
        # are decimal commas, each in a number of its own
        with_commas = [field for row in by_semicolons[1:] for field in row if "," in field]
        return bool(with_commas) and all(_DECIMAL_COMMA.fullmatch(field) for field in with_commas)
    return fits(semicolons) and (not fits(commas) or semicolons[0] > commas[0])


#: A number written with a decimal comma (``3,5``, ``-1.234,50``): a field of a semicolon-separated file.
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d{1,3}(?:[.\s]?\d{3})*,\d+\s*")


def _trailing_delimiter_options(text: str | None, sep: str, whole: bool, file: Path) -> dict:
    """``{"index_col": False}`` when every data row of ``text`` (a file's first bytes, all of it
    when ``whole``) ends with a delimiter its header line lacks (``a,b,`` under ``x,y``: some
    exporters end each line so): pandas would take the first column for the rows' index and
    shift every other column's name one to the left. Rows that have a value there are another
    matter (R's ``write.table`` row names before a header without their column): left to pandas.
    Some rows with that one field more and others without it (a value with no column, or a
    delimiter ending some lines only): an :class:`InputError` naming ``file``'s lines, where
    pandas would shift the columns' names, or fail at the second kind of line."""
    import csv
    import io

    if not text:
        return {}
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=sep)
    rows = [(reader.line_num, row) for row in reader if row]
    if not whole:
        rows = rows[:-1]  # (the last row read may be cut short)
    header, data = (rows[0][1], rows[1:1000]) if rows else ([], [])
    longer = [(line, row) for line, row in data if len(row) == len(header) + 1]
    if data and len(longer) == len(data) and all(not row[-1].strip() for _, row in data):
        return {"index_col": False}
    if longer and len(longer) < len(data):
        line, row = next(((line, row) for line, row in longer if row[-1].strip()), longer[0])
        other, fields = next((line, len(row)) for line, row in data if len(row) != len(header) + 1)
        fix = (f"its last field, {row[-1]!r}, has no column: name that column in the header, quote the values that "
               f"hold a {sep!r}, or remove the extra fields" if row[-1].strip() else
               "a delimiter ends some lines but not all: remove those delimiters, or end every line with one")
        raise InputError(f"{str(file)!r}: line {line} has {len(row)} fields, one more than the header's {len(header)}, "
                         f"while line {other} has {fields}; {fix}")
    return {}


#: The encodings a text data file is read in, in order: the first its bytes decode in.
_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # (Latin-1 decodes any byte)

#: A run of this many non-ASCII bytes or more, each from the next at most one ASCII byte apart (the
#: second byte of a Shift-JIS or Big5 character may be one), is a word of another script than
#: Latin in a legacy encoding (two characters of GBK, Shift-JIS, EUC-KR or Big5; four letters of
#: Windows-1256 or -1251), not a Western European word's accented letters ("ção", "Größe", "été").
_LEGACY_RUN = 4



def _in_legacy_non_latin_encoding(file: Path, enough: int = 1 << 16, chunk: int = 1 << 20) -> bool:
    """Whether a file that is not UTF-8 holds text of another script than Latin in a legacy
    encoding: most of its non-ASCII bytes (of the first ``enough`` found) in runs of
    :data:`_LEGACY_RUN` or more, at least 16 of them (a Windows-1252 file has its accented
    letters apart: "Café crème"). A chunk's bytes are compared at once (numpy): a large file
    with few accented letters is scanned whole, at the speed of reading it."""
    seen = in_runs = 0
    with _open_bytes(file) as handle:
        while seen < enough and (block := handle.read(chunk)):
            where = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) >= 0x80)
            if not where.size:
                continue
            breaks = np.flatnonzero(np.diff(where) > 2)  # more than one ASCII byte between two: a new run
            lengths = np.diff(np.concatenate(([0], breaks + 1, [where.size])))
            seen += int(where.size)
            in_runs += int(lengths[lengths >= _LEGACY_RUN].sum())
    return in_runs >= 16 and in_runs > seen / 2


#: A character of two, three or four bytes as UTF-8 writes it.
_UTF8_CHARACTER = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _utf8_but_for(file: Path, head: int = 1 << 22, chunk: int = 1 << 20) -> tuple[int, int] | None:
    """(byte offset, line from 1) of the first byte that is not UTF-8 in a file whose first
    ``head`` bytes are otherwise UTF-8 text (nine in ten of their non-ASCII bytes in UTF-8
    characters: a UTF-8 file with a row pasted from a Windows-1252 one), else None."""
    import codecs

    with _open_bytes(file) as handle:
        block = handle.read(head)
        non_ascii = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) >= 0x80))
        if sum(map(len, _UTF8_CHARACTER.findall(block))) < 0.9 * non_ascii:
            return None
        decoder, offset, lines = codecs.getincrementaldecoder("utf-8")(), 0, 1
        while True:
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:  # (its bytes begin with those a character cut at the last block held)
                return offset - (len(exc.object) - len(block)) + exc.start, lines + exc.object.count(b"\n", 0, exc.start)
            if not block:
                return None
            offset, lines = offset + len(block), lines + block.count(b"\n")
            block = handle.read(chunk)


def _read_text_table(file: Path, fmt: str, usecols: list | None = None):
    """(frame, encoding) of a CSV or TSV file (:func:`read_csv_keeping_codes` with the options of
    :func:`_text_options`); a byte past the first ones looked at that the encoding chosen from
    them cannot decode moves on to the next of :data:`_ENCODINGS`."""
    options = _text_options(file, fmt)
    known = options["encoding"] in _ENCODINGS
    for encoding in _ENCODINGS[_ENCODINGS.index(options["encoding"]):] if known else [options["encoding"]]:
        try:
            return read_csv_keeping_codes(file, {**options, "encoding": encoding}, usecols), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


#: A cell that starts with a zero followed by a digit (``007``, ``"00412"``), at a line's or field's start.
_LEADING_ZERO = re.compile(rb'[,;\t\n"][ +-]*0[0-9]')  # (a data row starts after a newline; a simple class scans fast)


def _has_leading_zero(file: Path, chunk: int = 1 << 24) -> bool:
    """Whether a cell of the text file starts with a zero followed by a digit (:data:`_LEADING_ZERO`),
    the file scanned a chunk at a time (never whole in memory)."""
    with _open_bytes(file) as handle:
        tail = b""
        while block := handle.read(chunk):
            joined = tail + block
            if _LEADING_ZERO.search(joined):
                return True
            tail = joined[-16:]  # a match across the chunks' border ("," "0" "7" split)
    return False


def read_csv_keeping_codes(file: Path, options: dict, usecols: list | None = None):
    """``pandas.read_csv`` as pandas types the columns, except that a number column in which a
    value is written with leading zeros (``"00412"``, ``"007"``: codes, not amounts) keeps the
    strings as written. Only such columns are read a second time, as text."""
    import pandas as pd

    frame = pd.read_csv(file, usecols=usecols, **options)
    whole = [c for c in frame.columns if frame[c].dtype.kind in "iu" or (  # (codes are whole numbers)
        frame[c].dtype.kind == "f" and bool((frame[c].dropna() % 1 == 0).all()) and frame[c].notna().any())]
    if whole and _has_leading_zero(file):  # (a quick look first: most files have none)
        written = pd.read_csv(file, usecols=whole, dtype=str, **options)
        for column in whole:
            text = written[column].str.lstrip(" +-")
            if (text.str.startswith("0") & text.str.slice(1, 2).str.isdigit()).any():
                frame[column] = written[column].to_numpy()  # (row by row: a first column read as the index has no
                # missing values in the second reading, "" instead)
    _warn_words_read_as_missing(file, options, frame)
    return frame


def _warn_words_read_as_missing(file: Path, options: dict, frame) -> None:
    """Warn, naming them, when a column of strings lost values that pandas reads as missing though
    they are written out (``"NA"``, ``"None"``, ``"null"``, ``"n/a"``): Namibia's country code, the
    answer "None". Numbers columns are left alone (``NA`` is what R writes for a missing number)."""
    import warnings

    import pandas as pd

    from .exceptions import user_stacklevel

    holed = [c for c in frame.columns if (frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype))
             and frame[c].isna().any() and frame[c].notna().any()]
    if not holed:
        return
    written = pd.read_csv(file, usecols=holed, dtype=str, keep_default_na=False, na_values=[], **options)
    for column in holed:
        words = written[column][frame[column].isna().to_numpy()].str.strip()  # (row by row, as above)
        words = words[words != ""]
        if len(words):
            counts = words.value_counts()
            shown = ", ".join(f"{w!r} ({n})" for w, n in counts.head(3).items())
            warnings.warn(f"{str(file)!r}: column {column!r} has {len(words)} values written as words that are read as "
                          f"missing ({shown}), as pandas reads a CSV file; if they are values (a country code 'NA', an "
                          "answer 'None'), give the data as a Parquet file, or as a DataFrame read with "
                          "pandas.read_csv(..., keep_default_na=False)", AutoMMWarning, stacklevel=user_stacklevel())


def image_folders(data_file: str | os.PathLike | None, *more: str | os.PathLike) -> list[Path]:
    """Where the relative file paths (images, audio, ...) of a data file are looked up, in order: the data
    file's folders (:func:`data_file_folders`), the ``more`` folders (a recipe's), then the current directory."""
    folders = (data_file_folders(data_file) if data_file is not None else []) + \
        [Path(os.path.abspath(f)) for f in more] + [Path.cwd()]
    return list(dict.fromkeys(folders))


def data_file_folders(data_file: str | os.PathLike) -> list[Path]:
    """The folder of ``data_file`` as named and, where it is a symbolic link (``ln -s
    /mnt/lake/items.csv .``), the folder of the file it names, whose relative paths it holds."""
    named = Path(os.path.abspath(data_file)).parent
    real = Path(os.path.realpath(data_file)).parent
    try:
        same = real == named or os.path.samefile(real, named)  # (a folder of the path a link: one folder)
    except OSError:
        same = False
    return [named] if same else [named, real]


#: Suffixes of the media files a column of a plugin's modality may name (audio, video, arrays).
MEDIA_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4", ".avi", ".mov", ".mkv", ".npy")
#: Roles whose values are never file paths.
_VALUE_ROLES = ("text", "categorical", "numeric", "datetime")


def _image_columns(frame, roles: Mapping[str, str], folders: Sequence[Path] = ()) -> list[str]:
    """The columns whose relative paths are to be looked up: of role image, or, role unknown,
    whose values look like image paths or name image files in ``folders`` (without an
    extension); and of a plugin's modality (audio) when their values look like media file
    names (a plugin's values may be strings that are no paths at all)."""
    from .roles import looks_like_image_path, names_image_files

    columns = []
    for column in frame.columns:
        role = roles.get(column)
        if role in _VALUE_ROLES:
            continue
        values = [v for v in frame[column].head(500).tolist() if isinstance(v, str) and v.strip()]
        if role == "image" or (values and sum(
                looks_like_image_path(v) or (role is not None and _media_name(v)) for v in values) >= 0.8 * len(values)
                or (role is None and names_image_files(values, folders))):
            columns.append(column)
    return columns


def _media_name(value: str) -> bool:
    return value.lower().endswith(MEDIA_SUFFIXES)


def resolve_image_paths(frame, folders: Sequence[Path], roles: Mapping[str, str] | None = None, *,
                        source: str | None = None, inputs: Collection[str] | None = None,
                        found_in: set[Path] | None = None):
    """A copy of ``frame`` whose relative file paths (in columns of role image or of a plugin's
    modality, or that look like image or media file names) point into the first of ``folders``
    where the file exists (else the first).

    With ``source`` (the data's name, for messages), :class:`InputError` when more of a column's
    relative paths than the images' tolerance (:data:`automm.data.IMAGE_TOLERANCE`) are in none
    of the folders, naming the folders tried and the first such rows (by ``frame``'s index: the
    data file's rows, as long as the caller kept them); only for the columns in ``inputs`` when
    given (those a model reads: a column it ignores may hold paths to anything). ``found_in``
    collects the folders where files were found. With ``source``, a warning when paths among a
    column's first :data:`_SHADOW_CHECKS` name files in more than one folder (the user's
    ``a.png`` and the trainer's): which one is read is then a matter of the folders' order."""
    folders = [Path(f) for f in folders]
    columns = _image_columns(frame, roles or {}, folders)
    if not columns:
        return frame
    frame = frame.copy()
    for column in columns:
        resolved, unfound, present, shadowed = [], [], 0, []
        for row, value in zip(frame.index, frame[column].tolist()):
            if (not isinstance(value, str) or not value.strip() or "://" in value or os.path.isabs(value.strip())
                    or _home_path(value)):  # (~/photos/1.jpg: expanded where the images are read)
                present += isinstance(value, str) and bool(value.strip())
                resolved.append(value)
                continue
            present += 1
            folder, there = _located(value, folders)
            if not there and value != value.strip():  # ("1.jpg ": a spreadsheet's cell; the file is 1.jpg)
                value = value.strip()
                folder, there = _located(value, folders)
            if folder is None:
                unfound.append((row, value))
            elif there:  # (else a link to a missing file, a name too long ...: the image check names it, and why)
                if found_in is not None:
                    found_in.add(folder)
                if source is not None and present <= _SHADOW_CHECKS and not shadowed:
                    shadowed = [(value, folder, other) for other in folders[folders.index(folder) + 1:]
                                if _another_file(folder / value, other / value)][:1]
            resolved.append(str((folder if folder is not None else folders[0]) / value))
        if source is not None and unfound and (inputs is None or column in inputs):
            from .data import IMAGE_TOLERANCE, backslash_hint, dangling_link_hint, unicode_form_hint, variable_hint

            if len(unfound) > IMAGE_TOLERANCE * present:
                shown = ", ".join(f"row {row} ({value!r})" for row, value in unfound[:3])
                raise InputError(f"{source}: column {column!r}: {len(unfound)} of {present} relative paths "
                                 f"are in none of the folders tried ({', '.join(map(str, folders))}): {shown}"
                                 f"{' ...' if len(unfound) > 3 else ''} (rows {ROWS_NOTE}); make the paths relative "
                                 f"to the data file's folder, or absolute{backslash_hint([v for _, v in unfound])}"
                                 f"{unicode_form_hint([v for _, v in unfound], folders)}"
                                 f"{dangling_link_hint([v for _, v in unfound], folders)}"
                                 f"{variable_hint([v for _, v in unfound])}")
        if shadowed:
            value, folder, other = shadowed[0]
            warnings.warn(f"{source}: column {column!r}: {value!r} names a file both in {folder} and in {other} "
                          f"(other files); the first is read, as for every path found in several of the folders tried "
                          f"({', '.join(map(str, folders))}): make the paths absolute to choose",
                          AutoMMWarning, stacklevel=2)
        frame[column] = _as_column(resolved, frame.index)
    return frame


def _as_column(paths: list, index):
    """``paths`` as a column: as pandas stores them, but kept as Python objects where they hold the
    escapes of file-name bytes (:func:`automm.files.holds_name_escapes`), which Arrow strings refuse."""
    import pandas as pd

    from .files import holds_name_escapes

    return pd.Series(paths, index=index, dtype=object) if holds_name_escapes(paths) else paths


def _home_path(value: str) -> bool:
    """Whether ``value`` is a path from a home folder (``~/photos/1.jpg``, ``~ann/1.jpg``): absolute
    once expanded, as :mod:`automm.data` expands it where the images are read."""
    text = value.strip()
    return text.startswith("~") and os.path.isabs(os.path.expanduser(text))


#: How many of a column's relative paths :func:`resolve_image_paths` looks for in the later folders too.
_SHADOW_CHECKS = 200


def _located(value: str, folders: Sequence[Path]) -> tuple[Path | None, bool]:
    """The first of ``folders`` that holds the file ``value``, and True; else the first where the
    system names something other than a missing file (a symbolic link to a missing file, a loop of
    links, a name too long, a folder this user may not open), and False, for the image check to say
    which; else (None, False)."""
    named = None
    for folder in folders:
        try:
            os.stat(folder / value)
            return folder, True
        except (FileNotFoundError, NotADirectoryError):
            if named is None and os.path.islink(folder / value):
                named = folder
        except (OSError, ValueError):
            if named is None:
                named = folder
    return named, False


def _another_file(path: Path, other: Path) -> bool:
    """Whether ``other`` exists and is not the file ``path`` is."""
    try:
        return other.exists() and not os.path.samefile(path, other)
    except OSError:
        return False


def with_file_rows(frame, source: str | os.PathLike):
    """``frame`` (whose index holds its rows' numbers in the data file ``source``) with that index
    named ``"<file name> row"``: messages about rows then say ``items.csv row 12``
    (:meth:`automm.data.Table.row_name`), whatever filters and splits kept."""
    return frame.rename_axis(f"{Path(source).name} row")


def labelled_rows(frame, label: str, part: str, counts: dict[str, int]):
    """The rows of ``frame`` (None stays None) that have a label; counts the others in ``counts``.
    A label column of :func:`whole_number_labels` comes back as numpy integers."""
    if frame is None or label not in frame.columns:
        return frame
    from .data import is_missing

    keep = [not is_missing(v) for v in frame[label].tolist()]
    if not all(keep):
        counts[part] = len(keep) - sum(keep)
        frame = frame[keep]
    if _is_nullable_integer(frame[label]):
        frame = frame.assign(**{label: frame[label].astype(frame[label].dtype.numpy_dtype)})
    return frame


def whole_number_labels(frame, label: str):
    """``frame`` with its label column as pandas' nullable integers where pandas read it as floats
    only because of its empty cells (``3`` read as ``3.0``): once :func:`labelled_rows` has left
    those rows out, the labels are the integers of the same file without them, its classes
    (``3``, not ``3.0``) and its problem type alike."""
    if frame is None or label not in frame.columns:
        return frame
    values = frame[label]
    if values.dtype.kind != "f" or not values.isna().any():
        return frame
    present = values.dropna()
    if not len(present) or not bool(((present % 1 == 0) & (present.abs() < 2 ** 63)).all()):
        return frame
    return frame.assign(**{label: values.astype("Int64")})


def _is_nullable_integer(values) -> bool:
    import pandas as pd

    return (isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and values.dtype.kind in "iu"
            and not values.isna().any())


def weight_column_values(frame, column: str) -> tuple[np.ndarray, str | None]:
    """Column ``column`` of ``frame`` as sample weights, and what is wrong with it (None when
    every value is a number >= 0)."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if not len(bad):
        return values, None
    word = frame.index.name or "row"  # "w.csv row 12" where the index holds the file's rows (with_file_rows)
    shown = ", ".join(f"{word} {_plain(frame.index[i])}: {_plain(frame[column].iloc[i])!r}" for i in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return values, f"column {column!r} needs numbers >= 0; {len(bad)} rows are not ({shown}{more})"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (shown as ``-1.0``, not ``np.float64(-1.0)``)."""
    return value.item() if isinstance(value, np.generic) else value
