"""Shared-memory numpy arrays allocated from a `(name, shape, dtype)` spec, with one owner.

The owner process calls `SharedArrays.create(specs, fill)`: every array of the spec lives in one POSIX
shared-memory segment named `asyncrl_<ownerpid>_<uuid>` (each array 64-byte aligned). Its picklable
`handle` is passed to `spawn`ed children, which call `SharedArrays.attach(handle)`. Only the owner
unlinks the segment (`close()`); a child's `close()` only unmaps.

Python's resource_tracker is kept out of it on purpose. Before 3.13 a `SharedMemory(name)` that merely
attaches is registered with the tracker of the attaching process; a process outside the owner's tree
then has its own tracker, which "cleans up" (unlinks) the owner's segment with a "leaked shared_memory"
warning when that process exits. Registration is therefore suppressed for both create and attach
(`track=False` on 3.13+), and crash safety comes from `cleanup_stale_segments()` instead: every new
owner first unlinks the `asyncrl_*` segments whose owner pid is dead.
"""
from __future__ import annotations

import os
import threading
import uuid
import weakref
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Mapping, Sequence

import numpy as np

SEGMENT_PREFIX = "asyncrl_"
SHM_DIR = "/dev/shm"
_ALIGN_BYTES = 64

ArraySpec = tuple[str, tuple[int, ...], "np.dtype | str | type"]
"""One shared array: (name, shape, dtype)."""

_TRACK_KWARG = "track" in SharedMemory.__init__.__code__.co_varnames
_REGISTER_LOCK = threading.Lock()


@dataclass(frozen=True)
class ShmHandle:
    """Picklable description of an owner's segment: enough for a child to attach."""

    segment_name: str
    specs: tuple[tuple[str, tuple[int, ...], str], ...]


def _normalise(specs: Sequence[ArraySpec]) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    out = []
    for name, shape, dtype in specs:
        out.append((str(name), tuple(int(d) for d in shape), np.dtype(dtype).str))
    names = [s[0] for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate array names in spec: {names}")
    return tuple(out)


def _layout(specs: Sequence[tuple[str, tuple[int, ...], str]]) -> tuple[list[int], int]:
    """Byte offset of each array and the total segment size, each array 64-byte aligned."""
    offsets, cursor = [], 0
    for _, shape, dtype in specs:
        cursor = -(-cursor // _ALIGN_BYTES) * _ALIGN_BYTES
        offsets.append(cursor)
        cursor += int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return offsets, max(cursor, 1)


def _open_untracked(name: str, create: bool, size: int = 0) -> SharedMemory:
    """Open a segment without registering it with this process's resource_tracker."""
    if _TRACK_KWARG:  # Python 3.13+
        return SharedMemory(name=name, create=create, size=size, track=False)
    with _REGISTER_LOCK:
        saved = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None
        try:
            return SharedMemory(name=name, create=create, size=size)
        finally:
            resource_tracker.register = saved


def _unlink_by_name(name: str) -> bool:
    """Unlink segment `name` if it exists; True when this call removed it."""
    try:
        os.unlink(os.path.join(SHM_DIR, name))
        return True
    except FileNotFoundError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def cleanup_stale_segments() -> list[str]:
    """Unlink every `/dev/shm/asyncrl_<pid>_*` segment whose owner pid is dead; return their names.

    Called by every new owner, so a crashed (SIGKILLed) owner's segments are removed on the next start.
    A dead owner's pid reused by an unrelated live process keeps its segments until that pid dies too.
    """
    removed = []
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.startswith(SEGMENT_PREFIX):
            continue
        pid_text = entry[len(SEGMENT_PREFIX):].split("_", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        if _unlink_by_name(entry):
            removed.append(entry)
    return removed


def _finalize_owner(shm: SharedMemory, owner_pid: int) -> None:
    """Unmap, and unlink when run in the owner (at close, or at interpreter exit if close was missed)."""
    try:
        shm.close()
    except BufferError:  # arrays still referenced somewhere; the mapping goes with the process
        pass
    if os.getpid() == owner_pid:
        _unlink_by_name(shm.name)


class SharedArrays:
    """Named numpy arrays over one shared-memory segment; `arrays[name]` is a view of shared memory."""

    def __init__(self, shm: SharedMemory, handle: ShmHandle, is_owner: bool) -> None:
        self._shm = shm
        self.handle = handle
        self.is_owner = is_owner
        offsets, _ = _layout(handle.specs)
        self.arrays: dict[str, np.ndarray] = {
            name: np.ndarray(shape, dtype=np.dtype(dtype), buffer=shm.buf, offset=offset)
            for (name, shape, dtype), offset in zip(handle.specs, offsets)
        }
        pid = os.getpid() if is_owner else -1
        self._finalizer = weakref.finalize(self, _finalize_owner, shm, pid)

    @classmethod
    def create(
        cls, specs: Sequence[ArraySpec], fill: Mapping[str, float | int] | None = None
    ) -> "SharedArrays":
        """Allocate a new segment for `specs` (owner side); arrays named in `fill` are set to that value.

        Arrays not in `fill` start zeroed (a fresh POSIX segment is zero-filled).
        """
        cleanup_stale_segments()
        norm = _normalise(specs)
        _, size = _layout(norm)
        name = f"{SEGMENT_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:16]}"
        shm = _open_untracked(name, create=True, size=size)
        out = cls(shm, ShmHandle(name, norm), is_owner=True)
        for key, value in (fill or {}).items():
            out.arrays[key].fill(value)
        return out

    @classmethod
    def attach(cls, handle: ShmHandle) -> "SharedArrays":
        """Map an owner's segment in this process (child side); closing never unlinks it."""
        shm = _open_untracked(handle.segment_name, create=False)
        return cls(shm, handle, is_owner=False)

    @staticmethod
    def nbytes_for(specs: Sequence[ArraySpec]) -> int:
        """Size in bytes of a segment for `specs` (alignment padding included), without allocating it."""
        return _layout(_normalise(specs))[1]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def nbytes(self) -> int:
        """Size of the segment in bytes (alignment padding included)."""
        return _layout(self.handle.specs)[1]

    def close(self) -> None:
        """Drop the array views and unmap; the owner also unlinks the segment. Idempotent."""
        self.arrays = {}
        self._finalizer()
