"""Process supervision shared by every family: start, watch, restart and stop child processes.

The train process owns one Supervisor, and through it every child. Children are started with the
`spawn` context and with SIGINT ignored (inherited across exec, so a Ctrl-C that reaches the whole
process group during a child's start-up cannot kill it half-way); they run one torch thread and
leave when the shared stop event is set or their parent is gone. Shutdown sets the event, joins with
a timeout, and only then terminates (and finally kills) stragglers.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

CTX = mp.get_context("spawn")
# A child that dies this soon after its start, this many times in a row, is a bug, not bad luck.
QUICK_DEATH_SECONDS = 10.0
MAX_QUICK_DEATHS = 3
CHILD_NAME_VARIABLE = "ASYNCRL_CHILD"


def quick_deaths_after(quick_deaths: int, lived: float, name: str, last: str) -> int:
    """A worker's count of quick deaths in a row after one more death, `lived` seconds after its start;
    RuntimeError (naming `last`, what it died of) when that makes MAX_QUICK_DEATHS."""
    quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
    if quick_deaths >= MAX_QUICK_DEATHS:
        raise RuntimeError(f"{name} died {MAX_QUICK_DEATHS} times within {QUICK_DEATH_SECONDS:.0f} s of starting "
                           f"({last})")
    return quick_deaths


class StopSignal:
    """What a child polls to know it should leave: the stop event, or its parent's death."""

    def __init__(self, event: Any, parent_pid: int):
        """`parent_pid`: the pid of the process that started this one, taken there: the child's own
        getppid() at this point is already the reaper's if the parent was killed while the child
        was still importing, and the child then ran on for good."""
        self.event = event
        self.parent_pid = parent_pid

    def __call__(self) -> bool:
        return self.event.is_set() or os.getppid() != self.parent_pid


def _child_main(target: Callable[..., None], args: tuple, stop_event: Any, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)
    target(*args, StopSignal(stop_event, parent_pid))


@dataclass
class _Child:
    name: str
    target: Callable[..., None]
    args: tuple
    process: Any = None
    started: float = 0.0
    restarts: int = 0
    quick_deaths: int = 0


class Supervisor:
    def __init__(self, log: Callable[[str], None] = print):
        self.stop_event = CTX.Event()
        self.children: list[_Child] = []
        self.log = log
        self.elsewhere_restarts = 0  # of workers another backend restarted (Ray's actors), for the run's count

    def start(self, name: str, target: Callable[..., None], args: tuple) -> None:
        """Starts `target(*args, should_stop)` in a new process; `target` must be a top-level function, or a
        functools.partial of one (it is pickled for `spawn`)."""
        child = _Child(name, target, args)
        self.children.append(child)
        self._launch(child)

    def _launch(self, child: _Child) -> None:
        child.process = CTX.Process(target=_child_main, name=child.name, daemon=True,
                                    args=(child.target, child.args, self.stop_event, os.getpid()))
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        # The name in the child's environment tells outside tools which process is which (ps e, /proc/<pid>/environ).
        os.environ[CHILD_NAME_VARIABLE] = child.name
        try:
            child.process.start()
        finally:
            signal.signal(signal.SIGINT, previous)
            os.environ.pop(CHILD_NAME_VARIABLE, None)
        child.started = time.monotonic()

    def restart_dead(self) -> int:
        """Restarts every child that died while the run goes on; returns how many were restarted."""
        if self.stop_event.is_set():
            return 0
        restarted = 0
        for child in self.children:
            if child.process.is_alive():
                continue
            code = child.process.exitcode
            lived = time.monotonic() - child.started
            child.quick_deaths = quick_deaths_after(child.quick_deaths, lived, child.name,
                                                    f"last exit code {code}; see its error above")
            child.restarts += 1
            self.log(f"{child.name} (pid {child.process.pid}) died with exit code {code} "
                     f"after {lived:.1f} s; restarting it (restart {child.restarts})")
            child.process.close()
            self._launch(child)
            restarted += 1
        return restarted

    @property
    def restarts(self) -> int:
        return sum(child.restarts for child in self.children) + self.elsewhere_restarts

    def shutdown(self, timeout_seconds: float = 5.0) -> None:
        """Stops every child: event, join with a deadline, terminate, then kill what is left."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout_seconds
        for child in self.children:
            child.process.join(max(0.0, deadline - time.monotonic()))
        for child in self.children:
            if child.process.is_alive():
                self.log(f"{child.name} did not stop in {timeout_seconds:.0f} s; terminating it")
                child.process.terminate()
                child.process.join(2.0)
            if child.process.is_alive():
                child.process.kill()
                child.process.join(2.0)


class DeferredInterrupt:
    """Ctrl-C and SIGTERM, while the owner loop runs, as a request it honours at its next check
    (`check` raises KeyboardInterrupt there), not an exception raised wherever the main thread is: one
    raised just after a replay lock's acquire leaves the lock held for good, and the final replay save
    then waits on it forever. A second signal before the loop looks raises at once. A SIGINT the
    process ignores (a background job's) stays ignored.

        with DeferredInterrupt() as interrupt:
            while ...:
                interrupt.check()
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def install(self) -> "DeferredInterrupt":
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                continue
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def restore(self) -> None:
        """The handlers from before `install`: a signal from here on acts at once, as it did before."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def __enter__(self) -> "DeferredInterrupt":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


def eprint(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
