"""Image folders as tables: the layout image datasets are often shipped in.

``photos/cat/1.jpg, photos/dog/2.jpg`` (one folder per class), optionally under split folders
(``photos/train/cat/1.jpg, photos/test/cat/9.jpg``), or images directly in the folder (no
label: what ``predict`` reads). :func:`read_image_folder` turns such a folder into the table
automm takes everywhere else (``image``, ``label``, ``split`` columns), so ``AutoMM().fit``,
recipes (``data.path`` naming the folder) and ``automm init`` / ``fit`` / ``predict`` /
``evaluate`` read it like a CSV file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .exceptions import InputError
from .files import holds_name_escapes
from .roles import IMAGE_EXTENSIONS

__all__ = ["read_image_folder", "NoImagesError", "SPLIT_FOLDER_NAMES", "FOLDER_COLUMNS", "TRAIN_NAMES", "TEST_NAMES", "VALID_NAMES"]


class NoImagesError(InputError):
    """A folder given as data holds no image files: a mistake in what was given."""


#: Names of the parts of a data set (folder names here; split column values for ``automm init``).
TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "testing")
VALID_NAMES = ("valid", "validation", "val", "dev")
#: Top-level folder names read as splits (their subfolders are then the classes).
SPLIT_FOLDER_NAMES = TRAIN_NAMES + TEST_NAMES + VALID_NAMES
#: The columns of a folder's table, in order (``split`` only when the folder has split folders).
FOLDER_COLUMNS = ("image", "label", "split")


def _images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not hidden), sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_split_layout(subfolders: list[Path]) -> bool:
    """Whether the folders directly in a root are all named like splits."""
    return bool(subfolders) and all(p.name.lower() in SPLIT_FOLDER_NAMES for p in subfolders)


def folder_columns(path: str | os.PathLike) -> list[str]:
    """The columns :func:`read_image_folder` gives for ``path``, without listing every image."""
    return list(FOLDER_COLUMNS if _is_split_layout(_subfolders(Path(path))) else FOLDER_COLUMNS[:2])


def _folder_label(name: str) -> str:
    """A class folder's name as a label: its bytes read as UTF-8 whatever the file-name encoding
    (``café`` where that is ASCII, the C locale with UTF-8 mode off, rather than the escapes of its
    bytes), and bytes that are no UTF-8 written as ``\\xe9``: the same classes in every locale."""
    return os.fsencode(name).decode("utf-8", "backslashreplace") if holds_name_escapes([name]) else name


def read_image_folder(path: str | os.PathLike) -> pd.DataFrame:
    """A pandas DataFrame of the images under ``path``: ``image`` (absolute path), ``label``
    (the name of the class folder holding it; missing (NaN) for an image directly in ``path``) and,
    when every folder directly in ``path`` is named like a split (``train``, ``test``,
    ``valid``, ...: :data:`SPLIT_FOLDER_NAMES`), ``split`` (that name). Images are the files
    with an image extension; hidden files and deeper folders are left out. Raises
    :class:`InputError` when ``path`` is not a folder or holds no image."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path: expected a folder's path (str or os.PathLike), got {path!r}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{str(path)!r} is not a folder")
    rows: list[tuple] = []
    subfolders = _subfolders(root)
    split = _is_split_layout(subfolders)
    parts = [(p, p.name) for p in subfolders] if split else [(root, None)]
    for folder, split_name in parts:
        for image in _images_in(folder):
            rows.append((str(image.resolve()), None, split_name))
        for class_folder in _subfolders(folder):
            label = _folder_label(class_folder.name)
            for image in _images_in(class_folder):
                rows.append((str(image.resolve()), label, split_name))
    if not rows:
        layout = "class folders of images (photos/cat/1.jpg), optionally under train/ and test/ folders"
        raise NoImagesError(f"{str(path)!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); expected {layout}")
    escaped = holds_name_escapes(text for row in rows for text in row)  # (Arrow strings refuse them)
    frame = pd.DataFrame(rows, columns=list(FOLDER_COLUMNS), dtype=object if escaped else None)
    return frame if split else frame.drop(columns="split")
