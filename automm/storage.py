"""Optuna storages for shared studies: what a ``storage`` argument names, and the storage itself.

A URL (``sqlite:///file.db``, ``postgresql://user:pw@host/db``: an ``RDBStorage`` with Optuna's
heartbeats, a stale trial retried up to :data:`MAX_RETRY` times), a journal file
(``"journal:///path/study.log"``, its ``%XX`` escapes decoded as in ``sqlite://`` URLs, or a path ending in
``.log``/``.journal``, taken as written: one machine, many
processes; automm's own heartbeats detect trials of killed workers, see :func:`own_heartbeats`)
or an Optuna storage object.
"""

from __future__ import annotations

import functools
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .exceptions import InputError
from .process_state import all_warnings_left_out, warnings_left_out
from .settings import seconds_setting

__all__ = ["parse_storage", "make_storage", "check_storage", "own_heartbeats", "redact_url", "storage_file", "wait_for_storage_file",
           "StorageError", "StorageNotFoundError", "HEARTBEAT_INTERVAL", "HEARTBEAT_GRACE", "heartbeat_interval",
           "heartbeat_grace", "JOURNAL_LOCK_GRACE", "MAX_RETRY", "retry_callback"]

#: Seconds between heartbeats of a running trial, and silence after which it is declared lost,
#: unless ``AUTOMM_HEARTBEAT_INTERVAL`` / ``AUTOMM_HEARTBEAT_GRACE`` say otherwise.
HEARTBEAT_INTERVAL, HEARTBEAT_GRACE = 10.0, 60.0


def heartbeat_interval() -> float:
    """Seconds between a running trial's heartbeats (read when used: a bad setting is said there,
    not by ``import automm``)."""
    return seconds_setting("AUTOMM_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)


def heartbeat_grace() -> float:
    """Seconds of silence after which a running trial is declared lost."""
    return seconds_setting("AUTOMM_HEARTBEAT_GRACE", HEARTBEAT_GRACE)


#: Seconds after which the lock of a journal file left by a killed process is broken.
JOURNAL_LOCK_GRACE = 10
#: How often a trial lost with its worker is retried.
MAX_RETRY = 2


def _optuna_4_9_names() -> bool:
    """Whether Optuna names the retry of a stale trial as 4.9 and later do: the callback
    ``RetryHeartbeatStaleTrialCallback`` given to ``RDBStorage`` as ``heartbeat_stale_trial_callback``
    (before 4.9: ``RetryFailedTrialCallback``, ``failed_trial_callback``, names Optuna 6 removes)."""
    import optuna

    return hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")


def retry_callback(max_retry: int = MAX_RETRY):
    """Optuna's callback that queues a retry of a failed trial (under the name of the installed
    Optuna's version)."""
    import optuna

    callback = (optuna.storages.RetryHeartbeatStaleTrialCallback if _optuna_4_9_names()
                else optuna.storages.RetryFailedTrialCallback)
    with warnings_left_out(optuna.exceptions.ExperimentalWarning):  # (called in trial threads too)
        return callback(max_retry=max_retry)


def parse_storage(storage: Any) -> tuple[str, Any]:
    """``(kind, value)`` for a ``storage`` argument: ``("memory", None)``, ``("journal", path)``,
    ``("rdb", url)`` or ``("object", storage)``."""
    if storage is None:
        return "memory", None
    if not isinstance(storage, (str, os.PathLike)):
        import optuna

        if isinstance(storage, optuna.storages.BaseStorage):
            return "object", storage
        raise InputError(f"storage: expected an Optuna storage URL, a journal file path or a storage object, "
                         f"got {storage!r}")
    text = os.fspath(storage)
    if not text:
        raise InputError("storage: empty string")
    _refuse_scheme_without_slashes(text)
    if text.startswith("journal://"):
        path = text[len("journal://"):]
        if not path:
            raise InputError(f"storage: {text!r} names no file; use journal:///path/to/study.log")
        return "journal", _journal_file(unquote(path))  # %20 a space, as in sqlite:// URLs
    if "://" in text:
        scheme = text.split("://", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql"):
            raise InputError(f"storage: unsupported URL scheme {scheme!r}; use sqlite://, postgresql://, mysql:// "
                             "or journal:///path/file.log")
        _refuse_unreadable_url(text)
        if scheme == "postgres":
            text = "postgresql" + text[len("postgres"):]
        if text.startswith("postgresql://"):
            text = _postgres_driver() + text[len("postgresql"):]
        return "rdb", text
    if text.endswith((".log", ".journal", ".jsonl")):
        return "journal", os.path.abspath(os.path.expanduser(text))
    if text.endswith((".db", ".sqlite", ".sqlite3")):  # a path as written: SQLAlchemy reads '%' and '?' in URLs
        path = os.path.abspath(os.path.expanduser(text)).replace("%", "%25").replace("?", "%3F")
        return "rdb", "sqlite:///" + path
    raise InputError(f"storage: {text!r} is neither a storage URL (sqlite:///..., postgresql://...) nor a journal "
                     "file (journal:///path, or a path ending in .log or .journal)")


def _journal_file(path: str, paths=os.path) -> str:
    """The absolute file a ``journal://`` URL's path names. On Windows ``journal:///C:/x/study.log``
    names ``C:/x/study.log``, as ``sqlite:///C:/x/study.db`` does (taken whole, ``/C:/x/study.log``
    is no valid path there: ``\\C:\\x\\study.log``)."""
    if path[:1] in ("/", "\\") and paths.splitdrive(path[1:])[0]:
        path = path[1:]
    return paths.abspath(paths.expanduser(path))


#: The schemes a storage URL may have (``postgres`` is read as ``postgresql``).
SCHEMES = ("journal", "sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")


def _refuse_unreadable_url(url: str) -> None:
    """:class:`InputError` when what follows the password of ``url`` (up to the query), as SQLAlchemy
    reads it, holds an ``@`` (a password with an unescaped ``@``, whose rest would be taken for the
    host, or for the host and the database where it holds a ``/``, and shown in the database
    driver's error), or when SQLAlchemy cannot read the URL at all (a port ``:notaport``)."""
    import re

    # (a password ends at its first '@'; a user name may hold one, Azure's user@server)
    match = re.match(r"[\w+]+://[^:/]*:[^@]*@([^?]*)", url)
    if match is not None and "@" in match.group(1):
        raise InputError("storage: the URL holds an '@' after the one that ends its password: an '@' inside a "
                         "user name or password is written %40 (user:p%40ss@host)")
    from sqlalchemy.engine import make_url

    try:
        make_url(url)
    except ValueError as exc:  # a port that is no number: the driver's words, which name no argument
        raise InputError(f"storage: {redact_url(url)!r} is not a valid URL: {exc}") from None


def _refuse_scheme_without_slashes(text: str) -> None:
    """A storage scheme missing its ``//`` (``journal:/shared/study.log``, ``postgresql:/host/db``)
    is refused: read as a file path it would quietly make a study nobody else finds (a
    folder ``journal:`` in the working directory)."""
    scheme, colon, rest = text.partition(":")
    if not colon or rest.startswith("//") or scheme.split("+", 1)[0].lower() not in SCHEMES:
        return
    if scheme.lower() == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db
        right = f"{scheme}:///{rest}"
    else:
        right = f"{scheme}://{rest if scheme.lower() == 'journal' else rest.lstrip('/')}"
    raise InputError(f"storage: {scheme + ':'!r} must be followed by '//' (read as a file path, it would make a study "
                     f"no other process finds); did you mean {redact_url(right)!r}?")


class StorageError(InputError):
    """The storage cannot be opened or written: a database that cannot be reached or lacks its
    driver, a journal file or folder that cannot be written (``automm`` exits with 2)."""


class StorageNotFoundError(StorageError):
    """The file of a journal or SQLite storage that a worker was to join does not exist."""


def storage_file(kind: str, value: Any) -> str | None:
    """The file that holds a :func:`parse_storage` storage (a journal or SQLite file), or None
    (a database server, memory, a storage object)."""
    if kind == "journal":
        return value
    if kind == "rdb" and value.startswith("sqlite:///"):
        from sqlalchemy.engine import make_url

        path = make_url(value).database  # as SQLAlchemy opens it: %20 a space, the query left out
        return path if path and path != ":memory:" else None
    return None


def wait_for_storage_file(kind: str, value: Any, wait: float) -> None:
    """Return once the storage's file exists (at once for storages without one), waiting up to
    ``wait`` seconds for it; else :class:`StorageNotFoundError`. Opening the storage would
    create an empty file, as a misspelt path would: whoever joins a study needs it there."""
    path = storage_file(kind, value)
    if path is None:
        return
    end = time.monotonic() + max(0.0, float(wait))
    while not os.path.exists(path):
        if time.monotonic() >= end:
            raise StorageNotFoundError(f"storage: {path!r} does not exist (waited {wait:.0f} s); a worker joins a "
                                       "study that a fit created in an existing storage: check the path")
        time.sleep(min(0.5, max(0.05, end - time.monotonic())))


def _postgres_driver() -> str:
    """``postgresql+<driver>`` for the PostgreSQL driver installed (SQLAlchemy's default,
    psycopg 3, or psycopg2)."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2"
    return "postgresql"


@functools.lru_cache(maxsize=1)
def _journal_backend_class():
    """Optuna's journal file backend, writing so that a failed write leaves no line cut short.

    Optuna skips a journal's last line when it is cut short (a write that failed on a full
    disk), but the next record appended joins it into one line no reader can parse: the whole
    study then fails to load. Under the journal's lock, each append first cuts off such a
    line (with a warning) and writes its records whole or not at all (a failed write is cut
    off again), raising :class:`StorageError` naming the journal."""
    import json

    from optuna.storages.journal import JournalFileBackend

    class WholeLinesJournalFileBackend(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
            self._lock.acquire()
            try:
                _append_whole(self._file_path, data)
            finally:
                self._lock.release()

    return WholeLinesJournalFileBackend


def _append_whole(path: str, data: bytes) -> None:
    """Append ``data`` (whole lines) to the journal ``path``, after cutting off a last line left
    cut short; a failed write is cut off and :class:`StorageError` names the journal."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError as exc:
        raise _journal_error("write", path, exc) from None
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            whole = _end_of_last_whole_line(descriptor, size)
            if not _looks_like_journal(os.pread(descriptor, len(_JOURNAL_START), whole)):
                raise StorageError(f"storage: {path!r} ends in a line that is no journal record; not appending "
                                   "to it (nor cutting it off): is it a journal file?")
            os.ftruncate(descriptor, whole)
            warnings.warn(f"storage: the journal file {path!r} ended in a line cut short (a write that did not finish: "
                          f"a full disk, or a process killed while writing); its last {size - whole} bytes, which "
                          "no process could read, are removed",
                          RuntimeWarning, stacklevel=2)
            size = whole
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        except OSError as exc:
            try:
                os.ftruncate(descriptor, size)  # no line cut short left behind
            except OSError:
                pass
            raise _journal_error("write", path, exc, "; the trials it holds are kept: free space (or fix the disk) "
                                 "and run fit again to go on with the study") from None
    finally:
        os.close(descriptor)


def _journal_error(verb: str, path: str, exc: OSError, advice: str = "") -> "StorageError":
    """``storage: cannot <verb> the journal file '<path>' (<error>)<advice>``."""
    return StorageError(f"storage: cannot {verb} the journal file {path!r} ({type(exc).__name__}: "
                        f"{exc.strerror or exc}){advice}")


def _end_of_last_whole_line(descriptor: int, size: int, chunk: int = 1 << 16) -> int:
    """The size of the file up to and with its last newline (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(descriptor, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def make_storage(kind: str, value: Any):
    """An Optuna storage for :func:`parse_storage`'s result (a new connection each call). A journal
    file: its folder made, checked writable (the file, and its folder for the lock) and refused when
    it is no journal or holds a damaged line (named), its lock broken :data:`JOURNAL_LOCK_GRACE`
    seconds after a killed process left it; a database URL: Optuna's ``RDBStorage`` with heartbeats
    and stale trials retried. A storage that cannot be opened is a :class:`StorageError`."""
    import optuna
    from optuna.storages.journal import JournalFileSymlinkLock, JournalStorage

    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "object":
        return value
    heartbeat_interval(), heartbeat_grace()  # a bad setting said here, before any trial
    if kind == "journal":
        try:
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            with all_warnings_left_out():  # (a grace period under 3 s is warned about; fits may run in threads)
                lock = JournalFileSymlinkLock(str(value), grace_period=JOURNAL_LOCK_GRACE)
            backend = _journal_backend_class()(str(value), lock_obj=lock)
        except OSError as exc:
            raise _journal_error("open", str(value), exc) from None
        _check_journal_writable(str(value), lock)
        _check_journal_content(str(value))
        try:
            return JournalStorage(backend)
        except ValueError as exc:  # a damaged line (JSONDecodeError, UnicodeDecodeError, "Invalid log format.")
            raise StorageError(f"storage: the journal file {str(value)!r} is damaged ({type(exc).__name__}: {exc}"
                               f"{_first_bad_line(str(value))}); restore it from a copy, or give another "
                               "journal file") from None
    if kind == "rdb":
        engine_kwargs = {"pool_pre_ping": True} if not value.startswith("sqlite") else {"connect_args": {"timeout": 60}}
        try:
            return _open_rdb(value, engine_kwargs)
        except ImportError as exc:
            raise StorageError(f"storage: {value.split('://')[0]} needs a database driver ({exc}; for PostgreSQL: "
                             "pip install psycopg2-binary)") from None
        except Exception as exc:  # noqa: BLE001 - the database cannot be reached or opened
            if type(exc).__module__.split(".")[0] != "sqlalchemy":
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StorageError(f"storage: cannot open the database {redact_url(value)} ({reason})") from None
    raise ValueError(f"unknown storage kind {kind!r}")


#: How often opening a database is tried again after losing the race to create Optuna's tables.
_SCHEMA_RACE_RETRIES = 5


def _open_rdb(url: str, engine_kwargs: dict):
    """Optuna's ``RDBStorage`` at ``url``. Processes opening a new database at once (a fit and
    its workers) race to create Optuna's tables: a loser's CREATE fails, and it tries again once
    the winner's tables exist."""
    import optuna

    for attempt in range(_SCHEMA_RACE_RETRIES + 1):
        try:
            with warnings_left_out(optuna.exceptions.ExperimentalWarning):  # (fits may run in threads)
                callback = "heartbeat_stale_trial_callback" if _optuna_4_9_names() else "failed_trial_callback"
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval(),
                    grace_period=heartbeat_grace(), **{callback: retry_callback()})
        except Exception as exc:  # noqa: BLE001 - only the race is tried again
            if attempt == _SCHEMA_RACE_RETRIES or not _schema_race(exc):
                raise
            time.sleep(0.2 + random.random() * 0.5)


def _schema_race(exc: BaseException) -> bool:
    """Whether ``exc`` is another process creating the same tables at the same moment (PostgreSQL:
    a duplicate key in pg_type or "already exists"; MySQL: "already exists")."""
    if type(exc).__name__ not in ("IntegrityError", "ProgrammingError", "OperationalError"):
        return False
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "already exists" in text or ("duplicate key" in text and "pg_" in text)


def check_storage(storage: Any) -> None:
    """Open the storage that ``storage`` (a URL or a journal file) names and close it again: a
    database that cannot be reached, a misspelt database name or a journal on a read-only disk
    raises :class:`InputError` now, before the data are read and checked. A storage object, or
    None, is not checked. The database's connections are closed (:func:`make_storage` opens a
    pool of them, which would otherwise stay open until the garbage collector finds it)."""
    if not isinstance(storage, (str, os.PathLike)):
        return
    opened = make_storage(*parse_storage(storage))
    engine = getattr(opened, "engine", None)  # an RDBStorage's SQLAlchemy engine
    if engine is not None:
        engine.dispose()


#: How every record of an Optuna journal begins (``json.dumps`` of ``{"op_code": ..., ...}``).
_JOURNAL_START = b'{"op_code":'


def _looks_like_journal(head: bytes) -> bool:
    """Whether ``head``, the first bytes of a file or of its last line, can begin a journal record
    (a prefix of one too: a first write cut short)."""
    n = min(len(head), len(_JOURNAL_START))
    return head[:n] == _JOURNAL_START[:n]


def _check_journal_content(path: str) -> None:
    """:class:`StorageError` when ``path`` holds something other than an Optuna journal (a
    SQLite file given as ``journal://``, a data file, notes): appending would damage it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_JOURNAL_START))
    except OSError:
        return
    if head and not _looks_like_journal(head):
        raise StorageError(f"storage: {path!r} is not an Optuna journal file (it begins {head!r}); a journal is "
                           "only appended to, never made from another file: give a new or a journal file's path"
                           + (" (a SQLite file: sqlite:///PATH)" if head.startswith(b"SQLite") else ""))


def _first_bad_line(path: str) -> str:
    """``; line N is not a journal record`` for the first such line of ``path`` (else "")."""
    import json

    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    json.loads(line)
                except ValueError:
                    return f"; line {number} is not a journal record"
    except OSError:
        pass
    return ""


def _check_journal_writable(path: str, lock) -> None:
    """:class:`InputError` unless this process can append to the journal file and take its lock
    (a symbolic link beside it): every process of a study writes both, and a read-only disk or
    folder would otherwise fail at the first trial, or deep inside Optuna."""
    where = "file"
    try:
        with open(path, "ab"):
            pass
        where = "folder (for its lock file) of"
        lock.acquire()
        lock.release()
    except OSError as exc:
        raise StorageError(f"storage: cannot write the journal {where} {path!r} ({type(exc).__name__}: "
                         f"{exc.strerror or exc}); every process of a study writes to it: put it on a "
                         "writable (shared) disk") from None


def redact_url(url: str) -> str:
    """A storage URL as it may be shown: its password (``user:PASSWORD@``, as SQLAlchemy reads
    it: the user up to the first ``:``, possibly empty or holding ``@`` as Azure's ``user@server``
    logins do, the password up to the next ``@``; a ``password=`` query parameter) as ``***``."""
    import re

    # (a password holding an unescaped ``@``, which SQLAlchemy would end at its first ``@``: all of it up to the host)
    # (and its rest a '/' too, p@ss/w@rd, which SQLAlchemy would read as host and database)
    url = re.sub(r"(://[^:/]*):[^@]*@(?:[^@?]*@)*", r"\1:***@", url)
    return re.sub(r"([?&](?:ssl)?password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


def own_heartbeats(storage) -> bool:
    """Whether automm's heartbeats are a shared storage's only ones, which judge every running
    trial (RDB storages have Optuna's; automm writes its own there too, which judge the trials
    that carry them: those of a study ``optuna.copy_study`` copied, which keeps no Optuna heartbeat)."""
    import optuna

    if isinstance(storage, optuna.storages.InMemoryStorage):
        return False
    return not (isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None)
