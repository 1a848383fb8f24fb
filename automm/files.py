"""Files written whole or not at all: a reader (another process, a later run) sees the old
file or the new one, never a part, and a failure leaves no temporary file behind."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, Callable

__all__ = ["create_temporary", "replace_whole", "read_regular_file", "is_stream", "write_output", "file_kind",
           "is_url", "url_problem", "holds_name_escapes", "lookup_problem"]


def read_regular_file(path: str | os.PathLike) -> tuple[bytes, os.stat_result]:
    """The content and status of ``path`` when it is a regular file (after links); else
    :class:`OSError`: a FIFO (which would block the read for ever), a device (``/dev/zero``,
    read until memory runs out), a folder. Opened without blocking, so a FIFO is refused at once."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, a device or a folder)")
        return handle.read(), status


def file_kind(mode: int) -> str:
    """What a file of ``mode`` (``os.stat(path).st_mode``) is, for a message naming a path that
    is not a regular file: ``"a directory"``, ``"a pipe (FIFO)"``, ``"a device"``, ``"a socket"``
    (``"a regular file"`` for one)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def lookup_problem(path: str | os.PathLike, error: OSError | ValueError, opening: bool = False) -> str:
    """Why the file at ``path`` cannot be read, from the ``error`` that looking it up (``os.stat``)
    or, with ``opening``, opening it raised, for a message that names the path: ``"file not found"``
    only where nothing is there, else what is: a symbolic link to a missing file, a loop of links, a
    name too long, a folder on the way this user may not search, a disk's own error (a stale
    network share)."""
    if isinstance(error, ValueError):  # (os.stat's "embedded null byte")
        return "not a file path (it holds a NUL character)"
    number = getattr(error, "errno", None)
    if number == errno.ENOENT:
        try:
            return f"a symbolic link to a missing file ({os.readlink(path)!r})"
        except (OSError, ValueError):  # not a link: nothing there
            return "file not found"
    if number == errno.ENOTDIR:
        part = _file_on_the_way(path)
        return "file not found" + (f" ({str(part)!r} is a file, not a folder)" if part is not None else "")
    if number == errno.ELOOP:
        return "a loop of symbolic links (each names another, none a file)"
    if number == errno.ENAMETOOLONG:
        text = os.fsencode(path)
        longest = max(len(part) for part in text.split(os.fsencode(os.sep)))
        return ("a name too long for the system (" + (f"a name of {longest} bytes; most allow 255)" if longest > 255
                                                      else f"a path of {len(text):,} bytes, more than it allows)"))
    if number in (errno.EACCES, errno.EPERM):
        return ("permission denied (this user may not read it)" if opening
                else "permission denied (this user may not open a folder on its path)")
    return f"{error.strerror or type(error).__name__} (errno {errno.errorcode.get(number, number)})"


def _file_on_the_way(path: str | os.PathLike) -> Path | None:
    """The first folder of ``path`` that is a file instead (``photos.zip`` in ``photos.zip/1.jpg``)."""
    for part in reversed(Path(path).parents):
        try:
            if stat.S_ISREG(os.stat(part).st_mode):
                return part
        except (OSError, ValueError):
            return None
    return None


def is_url(value: Any) -> bool:
    """A URL (``https://``, ``s3://``, ``gs://``, ``file://`` ...) or a ``data:`` URI: never fetched."""
    return isinstance(value, str) and (bool(_URL_SCHEME.match(value)) or value[:5].lower() == "data:")


#: A URL's scheme (letters, digits, ``+ - .``, starting with a letter) and ``://``.
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,15}://")


def url_problem(path: Any, writing: bool = False) -> str | None:
    """Why ``path`` (a file a user named: data, recipe, model) cannot be read where it is a URL
    (:func:`is_url`), for a message ``f"{path!r} is {problem}"``; else None. ``writing``: a
    folder automm writes (a model's, the plots', the feature cache), which a URL is not either:
    as a path, ``s3://bucket/m`` was a local folder ``s3:/bucket/m``."""
    if not is_url(path):
        return None
    if path.lower().startswith("file://"):
        return f"a file:// URL; give the {'folder' if writing else 'file'}'s path itself (the part after file://)"
    if writing:
        return "a URL; automm writes to local folders only (it never uploads): give a local folder"
    return "a URL; automm reads local files only (it never downloads): download it and give its path"


def holds_name_escapes(texts: Any) -> bool:
    """Whether a text among ``texts`` holds the escapes (lone surrogates) of file-name bytes that
    this Python's file-name encoding cannot read (a folder ``dätä`` where it is ASCII: the C locale
    with UTF-8 mode off): such a path opens its file only as it is, and a pandas column of Arrow
    strings cannot hold it (keep it in an ``object`` column)."""
    try:
        "".join(t for t in texts if isinstance(t, str)).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def create_temporary(path: str | os.PathLike) -> tuple[int, str]:
    """Open a new, uniquely named temporary file ``.<name>.<random>.tmp`` beside ``path`` for
    writing; returns its descriptor and name. Its folder is made when missing (also when a
    concurrent clear of the feature cache removed it meanwhile). Its mode follows the umask
    (:func:`tempfile.mkstemp` makes it owner-only), so a cache directory shared by a team stays
    readable by all of them."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    attempts = 10
    for attempt in range(attempts):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:  # no folder yet, or one removed by a clear: made (again) only then
            if attempt == attempts - 1:
                raise
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except FileNotFoundError:  # a clear removed a folder above it meanwhile: try again
                continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover - 48 random bits each


def replace_whole(target: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """``write(path)`` to a new temporary file beside ``target``, then renamed over it
    (:func:`os.replace`, atomic): an earlier file there is replaced whole or not at all, and
    concurrent writers never share a temporary file."""
    target = Path(target)
    fd, temporary = create_temporary(target)
    os.close(fd)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def is_stream(path: str | os.PathLike) -> bool:
    """Whether ``path`` is, after links, something other than a regular file or a folder: a
    device (``/dev/stdout``, ``/dev/null``) or a pipe (a FIFO), which is written to, not replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # not there (or a dangling link): a new file
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_output(target: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write an output file a user named (``-o``) as the shell's ``>`` writes it, but whole: a
    device or a pipe (``-o /dev/stdout``, a FIFO) is written to, where :func:`replace_whole`
    would put a regular file in its place (``/dev/stdout`` itself, for root) or fail on its
    folder's permissions; a link is followed, and the file it names replaced whole (the link stays).
    Returns the path written (the file at the end of the links, or ``target`` for a stream)."""
    target = Path(target)
    if is_stream(target):
        write(target)
        return target
    resolved = Path(os.path.realpath(target))
    replace_whole(resolved, write)
    return resolved
