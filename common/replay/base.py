"""The part both prioritized replays share: item keys, the priority tree, the lock, weights, save/load (`persist.py`).

`TransitionReplay` (Ape-X, `common/replay/transition.py`) and `SequenceReplay` (R2D2,
`common/replay/sequence.py`) each own one `PriorityRing` over their shared arrays and add their own
item storage. Every item gets a *key*: its insert number (0, 1, 2, ...), stored per slot
(`slot = key % capacity`, -1 when empty or evicted). Priority updates carry keys, so an update for an
item overwritten since it was sampled sees a different key in its slot and is dropped instead of
clobbering the new item's priority.

Concurrency: one `multiprocessing` lock (spawn context) guards every write *and* every sample. The
learner picks slots, computes weights and gathers the batch's data while holding the lock, so no writer
can touch an item between its selection and its copy: a batch is never torn (half old, half new item).
The cost is that writers wait for one gather (about a millisecond for 512 Atari stacks).
The lock is a `RecoverableLock` (`common/replay/locks.py`): if a writer dies holding it, the next process that
waits takes it over and `PriorityRing.repair` drops the items the dead writer had claimed but not
published and rebuilds the trees, so nobody hangs and no half-written item is ever sampled.
"""
from __future__ import annotations

import multiprocessing as mp
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numba
import numpy as np

from common.replay.locks import RecoverableLock
from common.replay.persist import load_replay, save_replay
from common.replay.shm import ShmHandle, SharedArrays
from common.replay.sumtree import SumTree, tree_specs

SENTINEL_FLOAT = -42.42
"""Fill of float item buffers (rewards, discounts, recurrent state) before any write."""
SENTINEL_INT = -1
"""Fill of integer item buffers (actions, keys, frame references) before any write."""
SENTINEL_BYTE = 0xA5
"""Fill of uint8 observation buffers before any write."""

# Slots of the shared int64 `counters` array.
ITEMS_INSERTED = 0
TAIL_KEY = 1  # keys below this were evicted early (frames reused); see PriorityRing.evict_before
FRAMES_INSERTED = 2
ITEMS_PUBLISHED = 3  # keys below this are fully written; see PriorityRing.repair
NUM_COUNTERS = 4


class Inserted(NamedTuple):
    """What an insert reports back to its writer."""

    keys: np.ndarray
    """[M] int64: keys of the items inserted (for priority updates)."""
    frame_ids: np.ndarray
    """[F] int64: global ids of the frames the block brought, for later blocks to refer to (empty
    for a replay that stores whole observations)."""
    dropped: int = 0
    """Items of the block not inserted because a frame they refer to had already been overwritten."""


def sentinel_for(dtype: np.dtype | str | type) -> float | int:
    """The sentinel a new buffer of `dtype` is filled with."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return SENTINEL_BYTE
    if np.issubdtype(dtype, np.floating):
        return SENTINEL_FLOAT
    if dtype == np.bool_:
        return False
    return SENTINEL_INT


def ring_specs(capacity: int) -> list[tuple[str, tuple[int, ...], Any]]:
    """Shared arrays of a PriorityRing: keys, counters, running max priority and the trees."""
    return [
        ("key", (capacity,), np.int64),
        ("counters", (NUM_COUNTERS,), np.int64),
        ("max_priority", (1,), np.float64),
        ("lock_holder", (1,), np.int64),
        *tree_specs(capacity),
    ]


def ring_fill() -> dict[str, float | int]:
    """Initial values of the ring's arrays (keys empty, trees empty, max priority 1)."""
    return {"key": -1, "counters": 0, "max_priority": 1.0, "lock_holder": 0, "sum_nodes": 0.0,
            "min_nodes": np.inf}


@dataclass(frozen=True)
class ReplayHandle:
    """Picklable (while spawning) handle of a replay: its config, segment and lock."""

    config: Any
    shm: ShmHandle
    lock: Any
    guard: Any


class PriorityRing:
    """Keys, priorities^alpha in a SumTree, and the FIFO cursor of `capacity` slots.

    All methods except `update_priorities` expect the caller to hold `lock`.
    """

    def __init__(self, arrays: SharedArrays, capacity: int, alpha: float, lock: Any) -> None:
        self.capacity = capacity
        self.alpha = alpha
        self.lock = lock
        self.key = arrays["key"]
        self.counters = arrays["counters"]
        self.max_priority = arrays["max_priority"]
        self.tree = SumTree(capacity, arrays["sum_nodes"], arrays["min_nodes"])

    def size(self) -> int:
        """Number of live items."""
        inserted = int(self.counters[ITEMS_INSERTED])
        return inserted - max(int(self.counters[TAIL_KEY]), inserted - self.capacity, 0)

    def claim(self, num_items: int) -> tuple[np.ndarray, np.ndarray]:
        """Keys and slots for `num_items` new items: (slots [M] int64, keys [M] int64)."""
        if num_items > self.capacity:
            raise ValueError(f"a block of {num_items} items exceeds capacity {self.capacity}")
        first = int(self.counters[ITEMS_INSERTED])
        keys = np.arange(first, first + num_items, dtype=np.int64)
        self.counters[ITEMS_INSERTED] = first + num_items
        return keys % self.capacity, keys

    def publish(self, slots: np.ndarray, keys: np.ndarray, priorities: np.ndarray | None) -> None:
        """Make written items sampleable; priorities None means the running max priority."""
        if priorities is None:
            priorities = np.full(len(slots), self.max_priority[0])
        priorities = _checked_priorities(priorities, len(slots))
        if priorities.size:
            self.max_priority[0] = max(self.max_priority[0], float(priorities.max()))
        self.key[slots] = keys
        self.tree.update(slots, priorities ** self.alpha)
        if len(keys):
            self.counters[ITEMS_PUBLISHED] = int(keys.max()) + 1

    def repair(self) -> None:
        """After a writer died inside the lock: drop what it claimed but did not publish, rebuild the trees.

        Claimed slots may hold half-written data under the previous item's priority, and the dead
        writer may have stopped half-way up a tree update; the trees are rebuilt from their leaves.
        """
        keys = np.arange(int(self.counters[ITEMS_PUBLISHED]), int(self.counters[ITEMS_INSERTED]))
        slots = keys % self.capacity
        self.key[slots] = -1
        leaves = self.tree.leaves().copy()
        leaves[slots] = 0.0
        self.tree.reset()
        self.tree.update(np.arange(self.capacity), leaves)
        self.counters[ITEMS_PUBLISHED] = self.counters[ITEMS_INSERTED]

    def evict_before(self, tail_key: int) -> None:
        """Evict every live item with key < tail_key (FIFO order is kept: only the oldest go)."""
        old_tail = max(int(self.counters[TAIL_KEY]), int(self.counters[ITEMS_INSERTED]) - self.capacity, 0)
        if tail_key <= old_tail:
            return
        keys = np.arange(old_tail, tail_key, dtype=np.int64)
        slots = keys % self.capacity
        live = self.key[slots] == keys
        self.key[slots[live]] = -1
        self.tree.update(slots[live], np.zeros(int(live.sum())))
        self.counters[TAIL_KEY] = tail_key

    def sample(
        self, batch_size: int, beta: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stratified sample by priority^alpha: (slots [B], keys [B], weights [B] float32).

        weight_i = (N * P(i))^-beta / max_j (N * P(j))^-beta = (p_i / p_min)^-beta with p = priority^alpha,
        P(i) = p_i / sum_j p_j and p_min the smallest live p (Schaul et al. 2016, section 3.4).
        """
        if self.size() == 0:
            raise ValueError("cannot sample an empty replay")
        slots, values = self.tree.sample(batch_size, rng)
        weights = (values / self.tree.min_priority) ** (-beta)
        return slots, self.key[slots].copy(), weights.astype(np.float32)

    def sample_at(self, values: np.ndarray, beta: float, min_priority: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The items at prefix sums `values` [B] of priority^alpha, drawn by a caller that samples a larger
        replay of which this is one shard: (slots [B], keys [B], weights [B] float32), the weights
        against that replay's smallest priority^alpha `min_priority` (as `sample`'s, section 3.4)."""
        if self.size() == 0:
            raise ValueError("cannot sample an empty replay")
        total = self.tree.total
        slots = self.tree.find(np.minimum(np.asarray(values, dtype=np.float64), np.nextafter(total, 0.0)))
        weights = (self.tree.leaves()[slots] / min_priority) ** (-beta)
        return slots, self.key[slots].copy(), weights.astype(np.float32)

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """Set priorities of sampled items (takes the lock); items overwritten since are skipped.

        keys: [B] int64 from a batch; priorities: [B] > 0 (a repeated key: the last value wins).
        Returns the number of priorities applied.
        """
        keys = np.asarray(keys, dtype=np.int64)
        priorities = _checked_priorities(priorities, len(keys))
        slots = keys % self.capacity
        with self.lock:
            live = self.key[slots] == keys
            applied = priorities[live]
            self.tree.update(slots[live], applied ** self.alpha)
            if applied.size:
                self.max_priority[0] = max(self.max_priority[0], float(applied.max()))
        return int(live.sum())


def _checked_priorities(priorities: np.ndarray, count: int) -> np.ndarray:
    priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
    if priorities.shape != (count,):
        raise ValueError(f"expected {count} priorities, got shape {priorities.shape}")
    if not np.all(np.isfinite(priorities)) or np.any(priorities < 0):
        raise ValueError("priorities must be finite and >= 0")
    return priorities


@numba.njit(cache=True, nogil=True)
def gather_rows(source, rows, out):
    """out[k] = source[rows[k]]; source: [R, D], rows: [K] int, out: [K, D] (same dtype)."""
    for k in range(rows.shape[0]):
        row = rows[k]
        for d in range(source.shape[1]):  # an explicit loop: numba compiles a slice assignment to slower code here
            out[k, d] = source[row, d]


def _refcount(buffers: list, i: int) -> int:
    return sys.getrefcount(buffers[i])


_FREE_REFCOUNT = _refcount([np.empty(0)], 0)  # a buffer referenced by the pool's list alone


class BufferPool:
    """Recycles batch arrays once no caller holds them (nor a view of them, nor a tensor over them).

    Large fresh arrays cost a page fault per 4 KiB on first write, which for 512 Atari stacks costs
    more than the gather itself. A pooled buffer is handed out again only when its reference count
    shows that the pool alone holds it, so a batch kept by the caller (in a prefetch queue, say) is
    never overwritten. Not thread-safe: call it under the replay's lock.
    """

    def __init__(self, max_buffers: int = 4) -> None:
        self.max_buffers = max_buffers
        self._buffers: list[np.ndarray] = []
        self._next_evicted = 0

    def get(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An array of `shape` and `dtype` that nobody else references (contents undefined)."""
        for i in range(len(self._buffers)):  # by index: a loop variable would count as a reference
            same_layout = self._buffers[i].shape == shape and self._buffers[i].dtype == dtype
            if same_layout and _refcount(self._buffers, i) == _FREE_REFCOUNT:
                return self._buffers[i]
        fresh = np.empty(shape, dtype)
        if len(self._buffers) < self.max_buffers:
            self._buffers.append(fresh)
        else:  # all busy: forget one (its holder keeps it alive) and pool the fresh one instead
            self._buffers[self._next_evicted] = fresh
            self._next_evicted = (self._next_evicted + 1) % self.max_buffers
        return fresh


class ReplayStorage:
    """A replay's shared arrays, its PriorityRing and lock: create (owner) or attach (child), save, close."""

    def __init__(self, config: Any, arrays: SharedArrays, raw_lock: Any, guard: Any,
                 fill: dict[str, float | int] | None = None) -> None:
        self.config = config
        self.arrays = arrays
        self.fill = fill or {}  # the owner's: what `clear` refills with
        self._raw_lock, self._guard = raw_lock, guard
        self.ring = PriorityRing(arrays, config.capacity, config.alpha, None)
        self.lock = RecoverableLock(raw_lock, guard, arrays["lock_holder"], repair=self.ring.repair)
        self.ring.lock = self.lock

    @classmethod
    def create(
        cls, config: Any, specs: Sequence[tuple[str, tuple[int, ...], Any]], fill: dict[str, float | int],
        private: bool = False,
    ) -> "ReplayStorage":
        """Allocate `specs` plus the ring's arrays, filled per `fill` (sentinels) and `ring_fill()`.
        `private`: no spawned process will attach (a Ray shard), so the locks' semaphores need no name
        in /dev/shm, where a killed owner would leave them."""
        fill = {**fill, **ring_fill()}
        arrays = SharedArrays.create([*ring_specs(config.capacity), *specs], fill)
        ctx = mp.get_context("fork" if private else "spawn")  # a fork context's semaphores are unlinked at once
        return cls(config, arrays, ctx.Lock(), ctx.Lock(), fill)

    @classmethod
    def attach(cls, handle: ReplayHandle) -> "ReplayStorage":
        """Attach to an owner's replay from a spawned child."""
        return cls(handle.config, SharedArrays.attach(handle.shm), handle.lock, handle.guard)

    @property
    def handle(self) -> ReplayHandle:
        """Pass this to `spawn`ed processes (as a Process argument: the lock pickles only then)."""
        return ReplayHandle(self.config, self.arrays.handle, self._raw_lock, self._guard)

    def clear(self) -> None:
        """Owner: every array back to its fill at creation (the replay empty, as new). The caller holds the lock."""
        for name, array in self.arrays.arrays.items():
            if name != "lock_holder":
                array.fill(self.fill.get(name, 0))

    def close(self) -> None:
        """Owner: unmap and unlink the segment; child: unmap only. The replay is unusable after."""
        self.ring = None
        self.arrays.close()


class ReplayBase:
    """What both replays do alike over their ReplayStorage: attach, handle, size, priorities, save, close."""

    def __init__(self, storage: ReplayStorage) -> None:
        self.storage = storage
        self.config = storage.config
        self._pool = BufferPool()

    @classmethod
    def attach(cls, handle: ReplayHandle):
        """Attach from a spawned child to the replay whose `handle` it was given."""
        return cls(ReplayStorage.attach(handle))

    @staticmethod
    def specs(config: Any) -> list[tuple[str, tuple[int, ...], Any]]:
        """The replay's own shared arrays (besides the ring's) for `config`."""
        raise NotImplementedError

    @classmethod
    def shared_bytes(cls, config: Any) -> int:
        """Bytes of shared memory a replay of `config` takes, computed without allocating it."""
        return SharedArrays.nbytes_for([*ring_specs(config.capacity), *cls.specs(config)])

    @property
    def handle(self) -> ReplayHandle:
        """Picklable handle for `spawn`ed children (pass it as a Process argument)."""
        return self.storage.handle

    def __len__(self) -> int:
        with self.storage.lock:
            return self.storage.ring.size()

    def inserted(self) -> int:
        """Items ever inserted (evicted ones included): what a rate limit counts."""
        return int(self.storage.ring.counters[ITEMS_INSERTED])

    @property
    def nbytes(self) -> int:
        """Bytes of shared memory held by this replay."""
        return self.storage.arrays.nbytes

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator):
        """Draw a batch in proportion to priority^alpha (stratified) and gather it under the lock."""
        with self.storage.lock:
            return self.gather(*self.storage.ring.sample(batch_size, beta, rng))

    def sample_at(self, values: np.ndarray, beta: float, min_priority: float):
        """The batch at prefix sums `values` of priority^alpha, weighted against `min_priority`
        (`PriorityRing.sample_at`: this replay is one shard of a larger one)."""
        with self.storage.lock:
            return self.gather(*self.storage.ring.sample_at(values, beta, min_priority))

    def gather(self, slots: np.ndarray, keys: np.ndarray, weights: np.ndarray):
        """The batch of the items in `slots` (the caller holds the lock)."""
        raise NotImplementedError

    def priority_totals(self) -> tuple[float, float, int, int]:
        """(sum of priority^alpha, its smallest positive value (inf if none), live items, items ever inserted)."""
        with self.storage.lock:
            ring = self.storage.ring
            return ring.tree.total, ring.tree.min_priority, ring.size(), int(ring.counters[ITEMS_INSERTED])

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """New priorities for sampled keys; items overwritten since sampling are left alone. Returns count applied."""
        return self.storage.ring.update_priorities(keys, priorities)

    def save(self, path: str | Path, say: Callable[[str], None] = print) -> float:
        """Contents, priorities, keys and cursors to `path`, streamed (`common/replay/persist.py`);
        writers wait meanwhile. Returns the seconds it took."""
        return save_replay(self, path, say)

    def load(self, path: str | Path, say: Callable[[str], None] = print) -> float:
        """Restore a `save` of a replay of the same class and config; ValueError if the file is
        truncated, corrupt or differs (see `load_replay`). Returns the seconds it took."""
        return load_replay(self, path, say)

    def clear(self) -> None:
        """Owner: empty the replay, as new (its blank frame zeros). The caller holds the lock."""
        self.storage.clear()
        frame_ring = getattr(self, "frame_ring", None)
        if frame_ring is not None:
            frame_ring.clear_blank()

    def close(self) -> None:
        """Owner: unlink the shared memory; child: detach only."""
        self.storage.close()
