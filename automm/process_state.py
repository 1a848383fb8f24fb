"""Changes to process-wide state (torch's default dtype, the global random generators, Optuna's
log level and warning filters) made by blocks that may run at once in threads of one process;
torch's thread count in a process forked after its parent ran torch (:func:`torch_threads_after_fork`);
the CPUs this process may use (:func:`usable_cpus`) and torch's threads kept to them
(:func:`torch_threads_capped`)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import warnings
from typing import Any, Callable, ContextManager, Iterator

__all__ = ["SharedChange", "warnings_left_out", "all_warnings_left_out", "DEPRECATIONS", "ignore_all_but_deprecations",
           "torch_threads_after_fork", "cgroup_cpu_limit", "usable_cpus", "note_torch_threads", "torch_threads_capped"]


class SharedChange:
    """A process-wide change shared by the blocks running at once: the first block to begin
    calls ``begin()`` (which saves the state, makes the change and returns what ``end`` needs),
    the last to end calls ``end(saved)``. Each block saving and putting back what it found left
    the other's change in place for good when two overlapped in threads."""

    def __init__(self, begin: Callable[[], Any], end: Callable[[Any], None]) -> None:
        self._begin, self._end = begin, end
        self._lock = threading.Lock()
        self._users = 0
        self._saved: Any = None

    @contextlib.contextmanager
    def held(self, each: Callable[[], None] | None = None) -> Iterator[None]:
        """Within, the change holds; ``each`` (under the lock) is this block's own part of it."""
        with self._lock:
            if self._users == 0:
                self._saved = self._begin()
            self._users += 1
        try:
            if each is not None:
                with self._lock:
                    each()
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    saved, self._saved = self._saved, None
                    self._end(saved)


_FILTERS: dict[tuple[type, str], SharedChange] = {}
_FILTERS_LOCK = threading.Lock()


def _insert_filter(category: type[Warning], message: str) -> tuple:
    # a filter object of its own, put first and removed by identity (as optuna_quiet's): removing an
    # equal one would take out the user's
    ours = ("ignore", re.compile(re.escape(message), re.I) if message else None, category, None, 0)
    warnings.filters.insert(0, ours)
    getattr(warnings, "_filters_mutated", lambda: None)()
    return ours


def _remove_filter(ours: tuple) -> None:
    found = [i for i, entry in enumerate(warnings.filters) if entry is ours]
    if found:  # (else gone already: the caller reset the filters)
        del warnings.filters[found[0]]
        getattr(warnings, "_filters_mutated", lambda: None)()


def warnings_left_out(category: type[Warning] = Warning, message: str = "") -> ContextManager[None]:
    """Warnings of ``category`` whose message starts with ``message`` left out within, in any
    thread: one filter shared by the blocks running at once (:class:`SharedChange`), removed when
    the last ends. ``warnings.catch_warnings`` saves and puts back the process's filters, so two
    such blocks overlapping in threads (a search's trial threads on GPUs, a host's own threads)
    left the first one's filter in place for good. For a narrow filter only: while a block runs,
    the other threads' warnings it matches are left out too (:func:`all_warnings_left_out` for
    every warning)."""
    key = (category, message)
    with _FILTERS_LOCK:
        change = _FILTERS.get(key)
        if change is None:
            change = _FILTERS[key] = SharedChange(lambda: _insert_filter(category, message), _remove_filter)
    return change.held()


@contextlib.contextmanager
def all_warnings_left_out() -> Iterator[None]:
    """Every warning but a deprecation notice left out within (:func:`ignore_all_but_deprecations`),
    in the main thread only (in another, they show), as
    :func:`automm.components.image.pixel_limit_warning_left_out` does: a filter shared by the
    threads would leave out the other threads' warnings meanwhile, and ``warnings.catch_warnings``
    in several threads at once left an "ignore" of every warning in place for good."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings():
        ignore_all_but_deprecations()
        yield


#: The categories of warning in which a dependency says that one of its APIs will change or go
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def ignore_all_but_deprecations() -> None:
    """Inside ``warnings.catch_warnings()``: every warning left out but the :data:`DEPRECATIONS`,
    which the filters found there still decide (``-W error::DeprecationWarning``, the test suite's
    ``filterwarnings``): a block that leaves out what it says again or means to hide (an ill-defined
    F1, Optuna's ``ExperimentalWarning``) no longer hides that automm calls an API a dependency's
    next release removes."""
    found = list(warnings.filters)
    warnings.simplefilter("ignore")
    for category in DEPRECATIONS:  # where no filter found matches: Python's own fallback
        warnings.simplefilter(getattr(warnings, "defaultaction", "default"), category)
    kept = []  # the filters found that match a deprecation, narrowed to it (an "error" of every Warning)
    for action, message, category, module, lineno in found:
        for deprecation in DEPRECATIONS:
            if issubclass(category, deprecation):
                kept.append((action, message, category, module, lineno))
                break
            if issubclass(deprecation, category):
                kept.append((action, message, deprecation, module, lineno))
    for action, message, category, module, lineno in reversed(kept):  # each put first: the first found first
        warnings.filterwarnings(action, _pattern(message), category, _pattern(module), lineno)


def _pattern(matched: Any) -> str:
    """A warnings filter's message or module as ``warnings.filterwarnings`` takes it: a regular
    expression's pattern; Python's own default filters hold a plain name, matched whole."""
    if matched is None:
        return ""
    return matched.pattern if isinstance(matched, re.Pattern) else re.escape(str(matched)) + r"\Z"


#: (process id, torch threads) where automm last ran torch (a model loaded, fitted or predicting);
#: a forked process inherits its parent's
_TORCH_RAN: tuple[int, int] | None = None
#: [process id, parent's (process id, torch threads), warned] of this process when it was forked after its
#: parent ran torch on more than one thread
_FORKED_AFTER_TORCH: list | None = None
#: the process id where this thread's torch threads were seen to (torch's thread count is each thread's own)
_THREAD_SEEN = threading.local()


def torch_threads_after_fork() -> None:
    """Called where automm is about to run torch (``load``, ``fit``, ``predict``, ``transform``).
    torch's CPU thread pool (OpenMP) does not survive ``os.fork()``: a process forked after its
    parent ran torch on more than one thread (a model loaded there: gunicorn ``--preload``, a
    ``multiprocessing`` pool with fork) hung or crashed (SIGSEGV) at its first prediction, with plain
    torch too. Such a process is set to one torch thread, with a warning, before automm's first work
    in it; one whose threads the caller set to 1 already is left as it is. Each of its threads at its
    first call: ``torch.set_num_threads`` sets the calling thread's count (and new threads'), so the
    thread that forked, whose count is its own, hung when it predicted after a request thread had."""
    global _TORCH_RAN, _FORKED_AFTER_TORCH
    import torch

    ran, pid = _TORCH_RAN, os.getpid()
    if ran is not None and ran[0] != pid and ran[1] > 1:
        _FORKED_AFTER_TORCH = [pid, ran, False]
    forked = _FORKED_AFTER_TORCH
    if forked is not None and forked[0] == pid and getattr(_THREAD_SEEN, "pid", None) != pid:
        _THREAD_SEEN.pid = pid
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
            if not forked[2]:
                forked[2] = True
                parent, parent_threads = forked[1]
                from .exceptions import AutoMMWarning, user_stacklevel

                warnings.warn(f"this process (pid {pid}) was forked from one that had run torch on {parent_threads} "
                              f"threads (pid {parent}: a model loaded, fitted or predicting there), and torch's thread "
                              f"pool does not survive a fork: {threads} threads would hang or crash it, so torch runs on "
                              "1 thread here; call torch.set_num_threads(1) in each forked worker before its first "
                              "prediction, or load the model in the worker, or start workers with the 'spawn' or "
                              "'forkserver' method", AutoMMWarning, stacklevel=user_stacklevel())
    _TORCH_RAN = (pid, torch.get_num_threads())


#: where the cgroup file systems are mounted, and the file naming this process's cgroups
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except (OSError, ValueError):
        return None


def _quota(quota: str | None, period: str | None) -> float | None:
    """quota / period in CPUs, or None for no quota ("max", -1) or values that are not numbers."""
    try:
        quota_us, period_us = int(quota), int(period)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # "max", a missing file
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _v2_limit(folder: str) -> float | None:
    parts = (_read(os.path.join(folder, "cpu.max")) or "").split()  # "max 100000", "200000 100000"
    return _quota(*parts) if len(parts) == 2 else None


def _v1_limit(folder: str) -> float | None:
    return _quota(_read(os.path.join(folder, "cpu.cfs_quota_us")), _read(os.path.join(folder, "cpu.cfs_period_us")))


def cgroup_cpu_limit() -> float | None:
    """The CPUs' worth of time a cgroup CPU quota gives this process (``docker run --cpus=1.5``, a
    Kubernetes CPU limit: 1.5), the smallest among its cgroup and those above it; None without a
    quota (or off Linux). Reads cgroup v2's ``cpu.max`` ("max 100000": none, "200000 100000": 2)
    and v1's ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us``."""
    paths = {"v2": "/", "v1": "/"}
    for line in (_read(PROC_CGROUP) or "").splitlines():  # "0::/path" (v2), "4:cpu,cpuacct:/path" (v1)
        fields = line.strip().split(":", 2)
        if len(fields) == 3 and fields[0] == "0" and not fields[1]:
            paths["v2"] = fields[2]
        elif len(fields) == 3 and "cpu" in fields[1].split(","):
            paths["v1"] = fields[2]
    v1_root = next((os.path.join(CGROUP_ROOT, name) for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                    if os.path.isdir(os.path.join(CGROUP_ROOT, name))), None)
    limits = []
    for root, path, limit in ((CGROUP_ROOT, paths["v2"], _v2_limit), (v1_root, paths["v1"], _v1_limit)):
        if root is None:
            continue
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:  # a cgroup outside this namespace's: its root is the nearest seen
            parts = []
        # this process's cgroup and each above it, the root last (in a container the root is the
        # container's own cgroup, while the path names it as the host does)
        for depth in range(len(parts), -1, -1):
            found = limit(os.path.join(root, *parts[:depth]))
            if found is not None:
                limits.append(found)
    return min(limits) if limits else None


def usable_cpus() -> int:
    """The CPUs this process may use, at least 1: those of its affinity mask (``taskset``, SLURM's
    ``--cpus-per-task``, a cpuset; ``os.cpu_count()`` where there is none), no more than a cgroup
    CPU quota rounded up (:func:`cgroup_cpu_limit`: ``docker run --cpus=2`` on a 64-core host is
    2). automm sizes by it what it sizes by CPUs: DataLoader workers, ``n_jobs=-1``, the threads
    of a process that forks search processes, torch's threads in ``fit`` and ``predict``."""
    try:
        cpus = os.process_cpu_count() if hasattr(os, "process_cpu_count") else len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # (no affinity on macOS, Windows)
        cpus = None
    cpus = cpus or os.cpu_count() or 1
    limit = _process_cgroup_limit()
    return max(1, min(cpus, math.ceil(limit)) if limit is not None else cpus)


#: :func:`cgroup_cpu_limit` as read once per process (and per cgroup files read)
_CGROUP_LIMITS: dict[tuple[int, str, str], float | None] = {}


def _process_cgroup_limit() -> float | None:
    """:func:`cgroup_cpu_limit`, read once per process: its files cost about 65 µs a reading, which
    :func:`torch_threads_capped` paid at every ``predict`` (a one-row predict takes 7 ms)."""
    key = (os.getpid(), CGROUP_ROOT, PROC_CGROUP)
    if key not in _CGROUP_LIMITS:
        _CGROUP_LIMITS[key] = cgroup_cpu_limit()
    return _CGROUP_LIMITS[key]


#: torch's thread count when automm first imported it: its default, unless the program set it before
_TORCH_FIRST_THREADS: int | None = None
#: environment variables that set torch's thread count
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def note_torch_threads() -> None:
    """Notes torch's thread count as automm first imports torch, for :func:`torch_threads_capped`."""
    global _TORCH_FIRST_THREADS
    if _TORCH_FIRST_THREADS is None:
        import torch

        _TORCH_FIRST_THREADS = torch.get_num_threads()


@contextlib.contextmanager
def torch_threads_capped() -> Iterator[None]:
    """Within (``fit``, ``predict``, ``transform``, a worker's trials), torch runs the calling
    thread's work on at most :func:`usable_cpus` threads; the caller's count is back after. torch
    sizes its thread pool by the affinity mask but not by a cgroup CPU quota: in a container
    limited to 2 CPUs on a 64-CPU host it runs a thread per core of the host on 2 CPUs' time (1 CPU
    usable under ``taskset``, torch on 8 threads: a small fit took 1.9 times as long, on 2 threads
    1.1 to 1.4 times). A count the user
    chose is left alone: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, or a count other than
    the one torch had when automm first imported it (``torch.set_num_threads`` called since)."""
    import torch

    threads = torch.get_num_threads()
    cap = None
    if threads > 1 and threads == _TORCH_FIRST_THREADS and not any(os.environ.get(v) for v in _THREAD_VARIABLES):
        cap = usable_cpus()
    if cap is None or cap >= threads:
        yield
        return
    torch.set_num_threads(cap)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
