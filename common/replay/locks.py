"""A process lock that survives the death of its holder.

A writer process killed (SIGKILL, OOM) while it holds a plain multiprocessing lock leaves it held for
good, and every other process waiting on it hangs. Here the holder writes its pid into shared memory
after acquiring; a waiter that has waited `poll_seconds` checks that pid, and if that process is gone,
takes the critical section over (under a second, briefly held lock, so only one waiter does), runs
the owner's `repair` callback to undo the dead holder's half-done work, and carries on as the holder.

Left open: a holder killed between acquiring the lock and writing its pid (two instructions) is not
detected; a pid reused by a new process within the poll interval is taken for the old holder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np


def process_gone(pid: int) -> bool:
    """True if no process pid runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


class RecoverableLock:
    """Context manager over `lock`; `holder`: shared int64[1] (0 when free); `guard`: a second lock."""

    def __init__(self, lock: Any, guard: Any, holder: np.ndarray, repair: Callable[[], None] = lambda: None,
                 poll_seconds: float = 0.5):
        self.lock, self.guard, self.holder = lock, guard, holder
        self.repair = repair
        self.poll_seconds = poll_seconds

    def __enter__(self) -> "RecoverableLock":
        while not self.lock.acquire(timeout=self.poll_seconds):
            if self._take_over_from_dead_holder():
                return self
        self.holder[0] = os.getpid()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.holder[0] = 0
        self.lock.release()

    def _take_over_from_dead_holder(self) -> bool:
        dead = int(self.holder[0])
        if dead == 0 or dead == os.getpid() or not process_gone(dead):
            return False
        with self.guard:
            if int(self.holder[0]) != dead:  # another waiter took over first
                return False
            self.holder[0] = os.getpid()  # the lock stays acquired: it passes to us
        self.repair()
        return True
