"""Stopping a search's trials safely: Ctrl-C only where nothing but the trial in training is
lost (:class:`InterruptGate`), and a hard stop of a trial stuck past its deadline in code that
does not watch it (:func:`hard_stop`)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

from .exceptions import TimeLimitExceeded, in_chain

__all__ = ["InterruptGate", "interrupt", "hard_stop", "running", "during_interrupt"]

#: The main thread's :class:`InterruptGate` while it is closed, for :func:`interrupt`.
_closed_gate: InterruptGate | None = None


class InterruptGate:
    """Lets Ctrl-C (SIGINT, raised as ``KeyboardInterrupt``) land where a search loses nothing
    but the trial in training: inside :meth:`open` blocks (a trial's training). Elsewhere in a
    :meth:`closed` block (sampling, keeping a trained model, Optuna's record of a finished trial)
    an interrupt is held, and raised when the block ends or the next :meth:`open` block begins.
    Acts in the main thread, with Python's default SIGINT handler in place, or SIGINT ignored (a
    script's background job: Ctrl-C stays ignored, and the interrupt that :func:`interrupt` makes
    of the command line's SIGTERM is held); else a no-op."""

    def __init__(self) -> None:
        self.pending = False
        self.active = False
        self.ignored = False  # SIGINT was ignored when the block began: left so

    def _hold(self, signum, frame) -> None:
        self.pending = True

    @staticmethod
    def _applies() -> bool:
        return (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_IGN))

    @contextlib.contextmanager
    def closed(self):
        global _closed_gate
        if self.active or not self._applies():
            yield
            return
        self.pending, self.active = False, True
        self.ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        if not self.ignored:
            signal.signal(signal.SIGINT, self._hold)
        _closed_gate = self
        try:
            yield
        finally:
            self.active, _closed_gate = False, None
            if not self.ignored:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def open(self):
        global _closed_gate
        if not self.active or threading.current_thread() is not threading.main_thread():
            yield
            return
        if not self.ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _closed_gate = None
        try:
            if self.pending:
                self.pending = False
                raise KeyboardInterrupt
            yield
        finally:
            _closed_gate = self
            if not self.ignored:
                signal.signal(signal.SIGINT, self._hold)


def interrupt() -> None:
    """Interrupt the main thread as Ctrl-C does, from a signal handler of its own (the command
    line's SIGTERM): held by a closed :class:`InterruptGate` (also where SIGINT is ignored, as in a
    script's background job: Python's SIGINT handler put in its place let the interrupt land in
    Optuna's record of a finished trial, which was then recorded as interrupted and lost), else
    raised as SIGINT with Python's handler (put back where SIGINT was ignored)."""
    if _closed_gate is not None:
        _closed_gate.pending = True
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.SIGINT)


#: The longest alarm :func:`hard_stop` sets (seconds, about 31 years): a longer deadline is one.
MAX_ALARM_SECONDS = 1e9


#: What an encoder's method does, as :func:`running` names it.
_ENCODER_WORK = {"fit": "fitting its preprocessing", "preprocess_batch": "preprocessing the rows",
                 "preprocess": "preprocessing a row", "prepare": "preparing (its one-off work)",
                 "forward": "in its forward pass"}


def _on_alarm(signum, frame) -> None:
    raise TimeLimitExceeded(f"the trial ran past the time limit in code that does not watch it and was interrupted: "
                            f"{running(frame)}")


def running(frame) -> str:
    """What the code interrupted at ``frame`` was doing, for the alarm's message: the innermost
    encoder's method on the stack (a plugin's told to call ``automm.check_deadline``), else
    automm's innermost function (the core's own work: reading the table, ...), else "code outside automm"."""
    base = sys.modules.get("automm.components.base")  # (no import in a signal handler)
    Encoder = base.Encoder if base is not None else ()
    core = None
    while frame is not None:
        module, code = frame.f_globals.get("__name__", "?"), frame.f_code
        owner = frame.f_locals.get("self") if "self" in code.co_varnames else None
        if isinstance(owner, Encoder):
            kind = type(owner)
            work = _ENCODER_WORK.get(code.co_name, f"in its {code.co_name}")
            caller = _caller(frame.f_back)
            if kind.__module__.partition(".")[0] == "automm":
                return f"automm's {kind.__name__} {work} ({kind.__name__}.{code.co_name}{caller})"
            return (f"a plugin's encoder {kind.__name__} {work} ({kind.__module__}.{kind.__qualname__}.{code.co_name}"
                    f"{caller}), which does not call automm.check_deadline")
        if core is None and module.partition(".")[0] == "automm" and module != __name__:
            core = f"automm's own {module}.{getattr(code, 'co_qualname', code.co_name)}{_caller(frame.f_back)}"
        frame = frame.f_back
    return core or "code outside automm"


def _caller(frame) -> str:
    """``", called from automm.pipeline.train_candidate"``: the innermost automm function at ``frame`` or above."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "?")
        if module.partition(".")[0] == "automm":
            return f", called from {module}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}"
        frame = frame.f_back
    return ""


@contextlib.contextmanager
def hard_stop(deadline: float | None):
    """Interrupt the block (raising :class:`TimeLimitExceeded`) at ``deadline`` (a
    ``time.monotonic()`` value), with ``SIGALRM``: main thread of a POSIX process only. An alarm
    already set (e.g. pytest-timeout's) is kept: when it is due first, nothing is armed; else it
    is set again, for the time it had left, when the block ends."""
    if deadline is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    # (at most MAX_ALARM_SECONDS: setitimer refuses a longer one, time_limit=1e300 failed every trial
    # with "OverflowError: timestamp out of range for platform time_t"; an alarm decades away is none)
    delay = min(MAX_ALARM_SECONDS, max(0.01, deadline - time.monotonic()))
    previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    if previous_delay and previous_delay <= delay:
        yield
        return
    previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
    armed = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            left = previous_delay - (time.monotonic() - armed)
            signal.setitimer(signal.ITIMER_REAL, max(0.001, left), previous_interval)


def during_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a ``KeyboardInterrupt`` was being handled."""
    return in_chain(exc, KeyboardInterrupt) is not None
