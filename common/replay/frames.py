"""Frames stored once in a ring and referenced by the items that show them (both replays use it).

An env step's newest frame (84x84 uint8 on Atari) is written once into a ring of `num_slots` slots;
items store int32 slot references, and a batch's observations are gathered from the ring at sample
time. The row after the ring is a blank (zero) frame that padding steps refer to.

Frame lifetime. Slots are reused FIFO. Each slot remembers the newest item key that references it
(`frame_max_key`); before a slot is overwritten, every item up to that key is evicted (priority 0),
so no live item can reference a reused frame. A writer refers to frames of its earlier inserts by
their global ids (insert numbers); one whose frame was overwritten meanwhile is dropped, and history
frames older than half the ring's slack are written again as new frames, so that a lagging writer's
new item does not pin an old frame whose reuse would evict every item up to the new one.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from common.replay.base import FRAMES_INSERTED, PriorityRing, gather_rows


def frame_specs(num_slots: int, frame_shape: tuple[int, ...], dtype: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    """Shared arrays of a FrameRing: the frames (and the blank one after them), their ids and pins."""
    return [("frames", (num_slots + 1, *frame_shape), dtype), ("frame_id", (num_slots,), np.int64),
            ("frame_max_key", (num_slots,), np.int64)]


class FrameRing:
    """The frames of a replay; every method expects the caller to hold the replay's lock."""

    def __init__(self, arrays: Any, num_slots: int, refresh_age: int) -> None:
        self.frames, self.frame_id, self.frame_max_key = arrays["frames"], arrays["frame_id"], arrays["frame_max_key"]
        self.num_slots = num_slots
        self.blank = num_slots  # the zero frame that padding refers to
        self.refresh_age = max(refresh_age, 1)

    def clear_blank(self) -> None:
        """Owner, once after creation: the blank frame is zeros, not the sentinel."""
        self.frames[self.blank] = 0

    def add(self, ring: PriorityRing, frames: np.ndarray, history_ids: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Writes `frames` [F, *frame_shape] (evicting the items that pin their slots).

        Returns (ids [H + F]: `history_ids`, then the new frames' ids, in the order a block refers to
        them; ok [H + F] bool: the frame is still in the ring; the new frames' ids [F]).
        """
        if len(frames) > self.num_slots:
            raise ValueError(f"{len(frames)} frames in one insert exceed the frame ring ({self.num_slots})")
        first = int(ring.counters[FRAMES_INSERTED])
        num_given = len(frames)
        history_ids, frames = self._refresh_old_history(history_ids, frames, first)
        new_ids = np.arange(first, first + len(frames), dtype=np.int64)
        slots = new_ids % self.num_slots
        if len(frames):
            ring.evict_before(int(self.frame_max_key[slots].max()) + 1)
        self.frame_max_key[slots] = -1
        self.frame_id[slots] = new_ids
        self.frames[slots] = frames
        ring.counters[FRAMES_INSERTED] = first + len(frames)
        given_ids = new_ids[len(new_ids) - num_given:]  # after any refreshed history copies
        ids = np.concatenate([history_ids, given_ids])
        return ids, self.frame_id[ids % self.num_slots] == ids, given_ids

    def _refresh_old_history(self, history_ids: np.ndarray, frames: np.ndarray, first: int
                             ) -> tuple[np.ndarray, np.ndarray]:
        """History frames older than `refresh_age` are copied to new slots, first among the new frames;
        the returned history ids point at the copies."""
        in_ring = self.frame_id[history_ids % self.num_slots] == history_ids
        old = in_ring & (first - history_ids > self.refresh_age)
        if not old.any():
            return history_ids, frames
        copies = self.frames[history_ids[old] % self.num_slots]
        history_ids = history_ids.copy()
        history_ids[old] = first + np.arange(int(old.sum()))
        return history_ids, np.concatenate([copies, frames])

    def slots_of(self, ids: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """Slot references (int32) for block references `refs` into `ids`; -1 (padding): the blank frame."""
        return np.where(refs >= 0, ids[np.maximum(refs, 0)] % self.num_slots, self.blank).astype(np.int32)

    def pin(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """Record that item keys[m] references slots[m, ...] (blank references pin nothing)."""
        if not len(keys):
            return
        per_item = slots.reshape(len(keys), -1)
        used = per_item != self.blank
        np.maximum.at(self.frame_max_key, per_item[used], np.broadcast_to(keys[:, None], per_item.shape)[used])

    def gather(self, slots: np.ndarray, out: np.ndarray) -> None:
        """out[k] = frames[slots.flat[k]]; out holds slots.size frames."""
        gather_rows(self.frames.reshape(len(self.frames), -1), slots.reshape(-1), out.reshape(slots.size, -1))
