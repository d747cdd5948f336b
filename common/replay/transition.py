"""Prioritized n-step transition replay for Ape-X, in shared memory, with each frame stored once.

Storage. Observations live in a *frame ring*: one frame (`frame_shape`, e.g. 84x84 uint8) per env
step, `num_frames` slots, each frame written once. An item (transition) stores only references:
`obs_ref: [S] int32` and `next_ref: [S] int32` frame slots (S = frame_stack, or 1 for vector
observations stored as is), plus action, reward_n, discount_n. A stack is rebuilt at sample time by
gathering its S frames; padding at an episode start (gymnasium's `FrameStackObservation` default
`padding_type="reset"`: copies of the episode's first frame) is encoded by repeating that frame's slot,
so no frame of a previous episode can appear. For Atari at 1M capacity this is 7056 bytes of frame per
transition (plus the frame-ring slack and ~120 bytes of metadata and tree), against 56 KiB for two
stored stacks.

Frame lifetime is the frame ring's (`common/replay/frames.py`). With the default frame slack
(capacity/16) its eviction only binds for very short episodes or many interleaved writers; it then
lowers the number of live items below `capacity` rather than serving wrong frames.

Writers use `TransitionWriter` (one per actor process), which keeps the actor's recent frame ids and
turns its frames and n-step transitions into `insert` calls; see `common/replay/base.py` for the lock that
makes a sampled batch untorn and for the key check that makes stale priority updates harmless.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from common.replay.base import Inserted, ReplayBase, ReplayStorage, sentinel_for
from common.replay.frames import FrameRing, frame_specs


@dataclass(frozen=True)
class TransitionReplayConfig:
    """Layout of a TransitionReplay (fixed for its lifetime; part of save files)."""

    capacity: int
    """Maximum number of live transitions (FIFO)."""
    frame_shape: tuple[int, ...]
    """Shape of one stored frame: (84, 84) for Atari, (4,) for CartPole."""
    frame_dtype: str = "uint8"
    """Dtype of stored frames."""
    frame_stack: int | None = None
    """None: an observation is one frame, batch obs [B, *frame_shape]; k: stacks of k, [B, k, *frame_shape]."""
    alpha: float = 0.6
    """Priority exponent: P(i) = p_i^alpha / sum_j p_j^alpha."""
    num_frames: int | None = None
    """Frame-ring slots; default capacity + max(capacity // 16, 1024) (2 * capacity without stacking)."""

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        if self.frame_stack is not None and self.frame_stack < 1:
            raise ValueError(f"frame_stack must be None or >= 1, got {self.frame_stack}")
        object.__setattr__(self, "frame_shape", tuple(int(d) for d in self.frame_shape))
        if self.num_frames is not None and self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")

    @property
    def stack(self) -> int:
        """Frames per observation (1 without stacking)."""
        return self.frame_stack or 1

    @property
    def frame_slots(self) -> int:
        """Size of the frame ring."""
        if self.num_frames is not None:
            return self.num_frames
        if self.frame_stack is None:
            return 2 * self.capacity
        return self.capacity + max(self.capacity // 16, 1024)


class TransitionBlock(NamedTuple):
    """M transitions and the F new frames they bring, for one `insert`."""

    frames: np.ndarray
    """[F, *frame_shape] frames not inserted before."""
    history_ids: np.ndarray
    """[H] int64 global ids of earlier frames (from earlier inserts' `Inserted.frame_ids`)."""
    obs_ref: np.ndarray
    """[M, S] int: o_t's frames, as indices into the concatenation (history_ids, the F new frames)."""
    next_ref: np.ndarray
    """[M, S] int: o_{t+n}'s frames, likewise."""
    action: np.ndarray
    """[M] int64."""
    reward: np.ndarray
    """[M] float32: n-step returns."""
    discount: np.ndarray
    """[M] float32."""
    priority: np.ndarray | None = None
    """[M] initial priorities (None: the running max priority)."""


class TransitionBatch(NamedTuple):
    """A sampled batch; B = batch size, S = frame_stack."""

    obs: np.ndarray
    """[B, S, *frame_shape] (or [B, *frame_shape] without stacking) frame_dtype: o_t."""
    action: np.ndarray
    """[B] int64: a_t."""
    reward: np.ndarray
    """[B] float32: n-step return sum_{k<n} gamma^k r_{t+k}."""
    discount: np.ndarray
    """[B] float32: gamma^n, or 0 past a terminal state."""
    next_obs: np.ndarray
    """Like obs: o_{t+n}."""
    index: np.ndarray
    """[B] int64: slots in the ring."""
    key: np.ndarray
    """[B] int64: item keys (insert numbers) to pass to `update_priorities`."""
    weight: np.ndarray
    """[B] float32: importance weights (N P(i))^-beta / max_j (N P(j))^-beta."""


class TransitionReplay(ReplayBase):
    """Shared-memory prioritized transition replay: the owner creates, spawned children `attach`."""

    def __init__(self, storage: ReplayStorage) -> None:
        super().__init__(storage)
        cfg = storage.config
        self.frame_ring = FrameRing(storage.arrays, cfg.frame_slots, (cfg.frame_slots - cfg.capacity) // 2)

    @staticmethod
    def specs(config: TransitionReplayConfig) -> list[tuple[str, tuple[int, ...], Any]]:
        n, s = config.capacity, config.stack
        return [
            *frame_specs(config.frame_slots, config.frame_shape, config.frame_dtype),
            ("obs_ref", (n, s), np.int32),
            ("next_ref", (n, s), np.int32),
            ("action", (n,), np.int64),
            ("reward", (n,), np.float32),
            ("discount", (n,), np.float32),
        ]

    @classmethod
    def create(cls, config: TransitionReplayConfig, private: bool = False) -> "TransitionReplay":
        """Allocate a new replay in shared memory (owner; it alone unlinks on close); `private`: no other
        process will attach (`ReplayStorage.create`)."""
        specs = cls.specs(config)
        return cls(ReplayStorage.create(config, specs, {name: sentinel_for(dtype) for name, _, dtype in specs},
                                        private))

    def insert(self, block: TransitionBlock) -> Inserted:
        """Write the block's new frames and its transitions under the lock (see `TransitionBlock`).

        Transitions whose history frames were overwritten meanwhile are dropped and counted.
        """
        frames, history_ids, obs_ref, next_ref, action, reward, discount, priority = block
        arrays = self.storage.arrays
        ring = self.storage.ring
        frames = np.asarray(frames).reshape(-1, *self.config.frame_shape)
        history_ids = np.asarray(history_ids, dtype=np.int64).reshape(-1)
        num_refs = len(history_ids) + len(frames)
        obs_ref, next_ref = self._check_refs(obs_ref, num_refs), self._check_refs(next_ref, num_refs)
        with self.storage.lock:
            ids, in_ring, given_ids = self.frame_ring.add(ring, frames, history_ids)
            keep = in_ring[obs_ref].all(axis=1) & in_ring[next_ref].all(axis=1)
            slots, keys = ring.claim(int(keep.sum()))
            obs_slots = self.frame_ring.slots_of(ids, obs_ref[keep])
            next_slots = self.frame_ring.slots_of(ids, next_ref[keep])
            arrays["obs_ref"][slots] = obs_slots
            arrays["next_ref"][slots] = next_slots
            arrays["action"][slots] = np.asarray(action).reshape(-1)[keep]
            arrays["reward"][slots] = np.asarray(reward).reshape(-1)[keep]
            arrays["discount"][slots] = np.asarray(discount).reshape(-1)[keep]
            self.frame_ring.pin(np.concatenate([obs_slots, next_slots], axis=1), keys)
            ring.publish(slots, keys, None if priority is None else np.asarray(priority).reshape(-1)[keep])
        return Inserted(keys, given_ids, int((~keep).sum()))

    def _check_refs(self, refs: np.ndarray, num_refs: int) -> np.ndarray:
        refs = np.asarray(refs, dtype=np.int64)
        if refs.ndim == 1 and self.config.stack == 1:
            refs = refs[:, None]
        if refs.ndim != 2 or refs.shape[1] != self.config.stack:
            raise ValueError(f"frame references must be [M, {self.config.stack}], got {refs.shape}")
        if refs.size and (refs.min() < 0 or refs.max() >= num_refs):
            raise ValueError(f"frame references must lie in [0, {num_refs})")
        return refs

    def gather(self, slots: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> TransitionBatch:
        """The transitions in `slots`, stacks rebuilt from the frame ring (the caller holds the lock)."""
        arrays = self.storage.arrays
        refs = np.stack([arrays["obs_ref"][slots], arrays["next_ref"][slots]])  # [2, B, S]
        frames = arrays["frames"]
        both = self._pool.get((2, len(slots), self.config.stack, *frames.shape[1:]), frames.dtype)
        self.frame_ring.gather(refs, both)
        action = arrays["action"][slots]
        reward = arrays["reward"][slots]
        discount = arrays["discount"][slots]
        obs, next_obs = (both[:, :, 0] if self.config.frame_stack is None else both)
        return TransitionBatch(obs, action, reward, discount, next_obs, slots, keys, weights)


class TransitionWriter:
    """One actor's side of a TransitionReplay: frames in, n-step transitions in, deduplicated inserts out.

    Per env step the actor calls `add_frame(frame, episode_start)` with the *newest* frame of its
    observation (for a `FrameStackObservation` stack, `obs[-1]`; at reset, pass `episode_start=True`)
    and gets a step number; it then adds transitions by the step numbers of o_t and o_{t+n}. Stacks
    are built as `FrameStackObservation(padding_type="reset")` builds them. Every `block_size`
    transitions (and on `flush`) one `insert` writes the new frames and the transitions.
    """

    def __init__(self, replay: TransitionReplay, block_size: int = 64, history_steps: int = 64) -> None:
        self.replay = replay
        self.block_size = block_size
        self.history_steps = max(history_steps, replay.config.stack)
        self._num_steps = 0
        self._episode_start = -1
        self._start_of: dict[int, int] = {}  # step -> first step of its episode
        self._frame_id: dict[int, int] = {}  # step -> global frame id, for flushed frames
        self._pending_frames: list[np.ndarray] = []
        self._first_pending = 0
        self._items: list[tuple[int, int, int, float, float, float | None]] = []
        self.num_dropped = 0

    def add_frame(self, frame: np.ndarray, episode_start: bool) -> int:
        """Record the newest frame of the current observation; returns its step number."""
        step = self._num_steps
        if episode_start or self._episode_start < 0:
            self._episode_start = step
        self._start_of[step] = self._episode_start
        self._pending_frames.append(np.asarray(frame))
        self._num_steps += 1
        return step

    def add(
        self, obs_step: int, action: int, reward_n: float, discount_n: float, next_obs_step: int,
        priority: float | None = None,
    ) -> None:
        """Queue transition (o_{obs_step}, action, reward_n, discount_n, o_{next_obs_step})."""
        oldest = self._num_steps - self.history_steps
        if not oldest <= obs_step <= next_obs_step < self._num_steps:
            raise ValueError(f"steps {obs_step}->{next_obs_step} outside the kept window [{oldest}, {self._num_steps})")
        if self._start_of[obs_step] != self._start_of[next_obs_step]:
            raise ValueError(f"steps {obs_step} and {next_obs_step} belong to different episodes")
        self._items.append((obs_step, next_obs_step, action, reward_n, discount_n, priority))
        if len(self._items) >= self.block_size:
            self.flush()

    def _stack_steps(self, step: int) -> list[int]:
        start = self._start_of[step]
        return [max(step - k, start) for k in range(self.replay.config.stack - 1, -1, -1)]

    def flush(self) -> None:
        """Insert the queued transitions and every frame added since the last flush."""
        if not self._items and not self._pending_frames:
            return
        obs_steps = np.array([self._stack_steps(item[0]) for item in self._items], dtype=np.int64)
        next_steps = np.array([self._stack_steps(item[1]) for item in self._items], dtype=np.int64)
        obs_steps = obs_steps.reshape(len(self._items), self.replay.config.stack)
        next_steps = next_steps.reshape(obs_steps.shape)
        all_steps = np.concatenate([obs_steps.ravel(), next_steps.ravel()])
        history = np.unique(all_steps[all_steps < self._first_pending])
        history_ids = np.array([self._frame_id[s] for s in history], dtype=np.int64)

        def local(steps: np.ndarray) -> np.ndarray:
            new = steps >= self._first_pending
            return np.where(new, len(history) + steps - self._first_pending, np.searchsorted(history, steps))

        frames = np.stack(self._pending_frames) if self._pending_frames else np.empty((0, *self.replay.config.frame_shape))
        priorities = [item[5] for item in self._items]
        _, new_ids, dropped = self.replay.insert(TransitionBlock(
            frames, history_ids, local(obs_steps), local(next_steps),
            np.array([item[2] for item in self._items], dtype=np.int64),
            np.array([item[3] for item in self._items], dtype=np.float32),
            np.array([item[4] for item in self._items], dtype=np.float32),
            None if any(p is None for p in priorities) else np.array(priorities, dtype=np.float64),
        ))
        self.num_dropped += dropped
        for offset, frame_id in enumerate(new_ids):
            self._frame_id[self._first_pending + offset] = int(frame_id)
        self._first_pending = self._num_steps
        self._pending_frames, self._items = [], []
        # A kept obs step may reach stack - 1 steps further back for its stack.
        forget_before = self._num_steps - self.history_steps - self.replay.config.stack
        for step in [s for s in self._frame_id if s < forget_before]:
            del self._frame_id[step]
            del self._start_of[step]
