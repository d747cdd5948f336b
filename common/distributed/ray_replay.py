"""The Ray backend's replay: shards as Ray actors on the learner's node, sampled as one replay.

Each `ReplayShard` wraps the local replay class (`TransitionReplay`, `SequenceReplay`) with
capacity / shards. The learner's `ShardedReplay` keeps sampling prioritized over the whole replay
(Schaul et al. 2016, section 3.3, stratified): from every shard's sum and minimum of priority^alpha
(as each reported them with the previous batch) it draws the batch's B stratified prefix sums over
their total and sends each shard the ones that fall in its range, so the batch splits across shards in
proportion to their totals, as a single sum-tree over the whole replay would draw. Those totals are one
round trip old (the priority updates that travel with the batch and the inserts since change them), so
a shard scales its draws to its own total at the time: within a shard, draws follow its current
priorities. Importance weights use the global minimum (section 3.4).
A global key is the shard's key times the number of shards plus the shard's index, so a priority
update reaches its shard and a stale one is dropped there, as locally.

An actor writes to one shard (its frames are referred to by later blocks of the same writer). Its
`ShardWriter` keeps at most `max_in_flight` inserts unanswered: an insert returns at once with ids of
the writer's own numbering for the new frames, and the shard's ids replace them in the blocks that
refer to them, once their insert has been answered.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, NamedTuple, Sequence

import numpy as np
import ray
from ray.exceptions import GetTimeoutError

from common.errors import RunFailure
from common.replay.base import Inserted, ReplayBase

FRAME_IDS_KEPT = 1 << 16
"""Frame ids a writer can still translate: far more than any writer's history window."""
NOT_A_FRAME = -2
"""An id no frame ever has (evicted slots read -1): a block's reference to it is dropped by the shard."""
ANSWER_SECONDS = 60.0
"""How long the learner waits on the shards' answer to one request before it stops the run: a shard
answers in milliseconds, so only a hung one (alive to Ray, so never restarted) takes this long."""


def answers_within(refs: Any, seconds: float, asked: str) -> Any:
    """`ray.get(refs)`, or RunFailure after `seconds`; `asked` names the request ("the replay shards for a
    batch")."""
    try:
        return ray.get(refs, timeout=seconds)
    except GetTimeoutError:
        raise RunFailure(f"no answer from {asked} in {seconds:g} s: stopping the run") from None


class ReplayShard:
    """One shard: a replay of the run's class and layout with its share of the capacity (a Ray actor)."""

    def __init__(self, replay_cls: type[ReplayBase], config: Any):
        self.replay = replay_cls.create(config, private=True)

    def insert(self, block: Any) -> Inserted:
        return self.replay.insert(block)

    def totals(self) -> tuple[float, float, int, int]:
        return self.replay.priority_totals()

    def sample_at(self, values: np.ndarray, assumed_total: float, beta: float, min_priority: float,
                  updates: Sequence[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[Any, tuple[float, float, int, int]]:
        """Applies the learner's priority `updates` (keys, priorities) first, then (the batch at `values`, or
        None if there are none; this shard's totals after).

        `values` are prefix sums in [0, assumed_total), the total the learner last heard of; the updates and
        inserts since have changed it, so they are scaled to the shard's own total (clamped instead, the
        excess of a shrunk total would pile onto its last item). The weights' minimum is the smaller of
        the learner's global one and this shard's own, which is never stale."""
        self.apply_updates(updates)
        totals = self.replay.priority_totals()  # sampling leaves them as they are
        batch = None
        if len(values):
            own_total, own_min = totals[:2]
            if assumed_total > 0:
                values = np.asarray(values, dtype=np.float64) * (own_total / assumed_total)
            batch = self.replay.sample_at(values, beta, min(min_priority, own_min))
        return batch, totals

    def apply_updates(self, updates: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """The learner's queued priority updates, (keys, priorities) each; stale keys are dropped."""
        for keys, priorities in updates:
            self.replay.update_priorities(keys, priorities)

    def close(self) -> None:
        self.replay.close()


class Totals(NamedTuple):
    """What the learner knows of the shards: [K] each."""

    sums: np.ndarray
    mins: np.ndarray
    sizes: np.ndarray
    inserted: np.ndarray


def split_prefix_sums(sums: np.ndarray, uniforms: np.ndarray) -> list[np.ndarray]:
    """Stratified prefix sums over the shards' concatenated priorities, each given to the shard it falls in.

    sums: [K] sums of priority^alpha; uniforms: [B] in [0, 1). Draw k is u_k = (k + uniforms[k]) * total / B,
    one per equal-mass stratum (as `common.replay.sumtree.tree_sample_stratified`); returns, per shard,
    the draws in its range [offset, offset + sum) less its offset.
    """
    sums = np.asarray(sums, dtype=np.float64)
    batch = len(uniforms)
    draws = (np.arange(batch) + np.asarray(uniforms)) * sums.sum() / batch
    offsets = np.concatenate([[0.0], np.cumsum(sums)])
    shard_of = np.clip(np.searchsorted(offsets, draws, side="right") - 1, 0, len(sums) - 1)
    return [draws[shard_of == k] - offsets[k] for k in range(len(sums))]


def global_keys(local_keys: np.ndarray, shard: int, num_shards: int) -> np.ndarray:
    return np.asarray(local_keys, dtype=np.int64) * num_shards + shard


def concat_batches(parts: Sequence[Any]) -> Any:
    """One batch (a NamedTuple of batch-first arrays) from the shards' parts, in order; always a copy,
    since what Ray hands over is read-only (torch warns of such arrays, and a learner may write)."""
    return type(parts[0])(*(np.concatenate(fields) for fields in zip(*parts)))


class ShardedReplay:
    """The learner's `ReplayClient` over the shards. Inserts come from the actors' `ShardWriter`s.

    One round trip per batch: each shard gets its draws together with the priority updates queued for it
    since the last batch, and answers with its part and its totals after, which split the next batch.
    `inserted()` and `len()` read the totals last reported; `refresh` asks for them (the owner loop does,
    when no batch has reported for `REFRESH_SECONDS`). A queue of updates that no batch takes (the rate
    limit holds the learner) is sent on its own once it holds `max_queued` batches' worth.
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, shards: Sequence[Any], config: Any, max_queued: int = 4,
                 answer_seconds: float = ANSWER_SECONDS):
        self.shards, self.config, self.max_queued = list(shards), config, max_queued
        self.answer_seconds = answer_seconds
        self.lock = threading.Lock()  # the prefetch thread samples while the owner loop updates and refreshes
        self.queued: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in self.shards]
        self.known = Totals(*(np.zeros(len(self.shards)) for _ in range(4)))
        self.known_at = -float("inf")

    def _set_known(self, rows: Sequence[tuple[float, float, int, int]]) -> Totals:
        totals = Totals(*(np.array(column) for column in zip(*rows)))
        with self.lock:
            self.known, self.known_at = totals, time.monotonic()
        return totals

    def _answers(self, refs: list[Any], what: str, seconds: float | None = None) -> list[Any]:
        return answers_within(refs, self.answer_seconds if seconds is None else seconds, f"the replay shards {what}")

    def refresh(self) -> Totals:
        return self._set_known(self._answers([s.totals.remote() for s in self.shards], "for their totals"))

    def refresh_if_stale(self) -> None:
        if time.monotonic() - self.known_at > self.REFRESH_SECONDS:
            self.refresh()

    def inserted(self) -> int:
        return int(self.known.inserted.sum())

    def __len__(self) -> int:
        return int(self.known.sizes.sum())

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> Any:
        totals = self.known if self.known.sums.sum() > 0 else self.refresh()
        if not totals.sums.sum() > 0:
            raise ValueError("cannot sample an empty replay")
        values = split_prefix_sums(totals.sums, rng.random(batch_size))
        with self.lock:
            updates, self.queued = self.queued, [[] for _ in self.shards]
        min_priority = float(totals.mins.min())
        answers = self._answers([shard.sample_at.remote(v, total, beta, min_priority, u)
                                 for shard, v, total, u in zip(self.shards, values, totals.sums, updates)],
                                "for a batch")
        self._set_known([row for _, row in answers])
        return concat_batches([part._replace(key=global_keys(part.key, k, len(self.shards)))
                               for k, (part, _) in enumerate(answers) if part is not None])

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """Queues each shard its keys' priorities for the next batch; returns how many were queued (a shard
        drops the stale ones)."""
        keys, priorities = np.asarray(keys, dtype=np.int64), np.asarray(priorities)
        shard_of = keys % len(self.shards)
        with self.lock:
            for k in range(len(self.shards)):
                mine = shard_of == k
                if mine.any():
                    self.queued[k].append((keys[mine] // len(self.shards), priorities[mine]))
            full = max(len(q) for q in self.queued) >= self.max_queued
        if full:
            self.drain()
        return len(keys)

    def drain(self, seconds: float | None = None) -> None:
        """Sends the queued priority updates now and waits for them (at most `seconds`)."""
        with self.lock:
            updates, self.queued = self.queued, [[] for _ in self.shards]
        self._answers([shard.apply_updates.remote(u) for shard, u in zip(self.shards, updates) if u],
                      "to priority updates", seconds)


class ShardWriter:
    """An actor's `ReplayClient` for inserting into its shard, with at most `max_in_flight` inserts
    unanswered (the module docstring). The writers of one actor share it."""

    def __init__(self, shard: Any, config: Any, max_in_flight: int):
        self.shard, self.config, self.max_in_flight = shard, config, max_in_flight
        self.in_flight: deque[tuple[Any, int, int]] = deque()  # (ref, first local frame id, frames)
        self.next_local = 0
        self.global_of = np.full(FRAME_IDS_KEPT, NOT_A_FRAME, dtype=np.int64)  # local id % kept -> shard id
        self.local_at = np.full(FRAME_IDS_KEPT, -1, dtype=np.int64)  # the local id each entry is for
        self.num_inserted = 0
        self.num_dropped = 0

    def insert(self, block: Any) -> Inserted:
        history = np.asarray(block.history_ids, dtype=np.int64)
        while self.in_flight and len(history) and self.in_flight[0][1] <= history.max():
            self._answer_oldest()  # the block refers to frames whose shard ids are not known yet
        block = block._replace(history_ids=self._translate(history))
        first, count = self.next_local, len(block.frames)
        self.next_local += count
        self.in_flight.append((self.shard.insert.remote(block), first, count))
        while len(self.in_flight) > self.max_in_flight:
            self._answer_oldest()
        return Inserted(np.empty(0, np.int64), np.arange(first, first + count, dtype=np.int64), 0)

    def _translate(self, local_ids: np.ndarray) -> np.ndarray:
        known = self.local_at[local_ids % FRAME_IDS_KEPT] == local_ids
        return np.where(known, self.global_of[local_ids % FRAME_IDS_KEPT], NOT_A_FRAME)

    def _answer_oldest(self) -> None:
        ref, first, count = self.in_flight.popleft()
        answer: Inserted = ray.get(ref)
        if len(answer.frame_ids) == count:  # a replay that stores whole observations gives no frame ids
            local = np.arange(first, first + count, dtype=np.int64)
            self.local_at[local % FRAME_IDS_KEPT] = local
            self.global_of[local % FRAME_IDS_KEPT] = answer.frame_ids
        self.num_inserted += len(answer.keys)
        self.num_dropped += answer.dropped

    def inserted(self) -> int:
        """Items this writer has seen inserted (answered inserts only)."""
        return self.num_inserted

    def __len__(self) -> int:
        return self.num_inserted

    def flush(self) -> None:
        """Wait for every insert in flight."""
        while self.in_flight:
            self._answer_oldest()
