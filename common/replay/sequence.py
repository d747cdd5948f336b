"""Prioritized fixed-length sequence replay for R2D2, in shared memory.

An item is one sequence of `length` steps (burn-in included) of one episode, the recurrent state (h, c)
the actor's network had at its first step, a per-step mask (0 for padding past the episode's end) and
one priority. For R2D2's network it also keeps the action and reward that came before the first step
(the LSTM's inputs there), whether the first step starts an episode (its stored state is then exactly
the zero state), and the state the actor had at step `length - overlap`, where the episode's next
sequence starts (for the learner's stale-state diagnostic).

Observations. With `frame_stack` k (Atari's 4-frame stacks), each frame is stored once in a frame
ring (`common/replay/frames.py`) and a sequence keeps int32 references [length, k] to its steps'
frames, so the steps that overlapping sequences share, and the frames that consecutive stacks share,
take memory once; padding steps refer to a blank frame. Without `frame_stack` each sequence stores its
steps' whole observations (vector observations, where a reference would save nothing; for Atari the
stacked layout that benchmarks/sequence_replay.py measures the frame ring against).

Extra columns. `extras` names float32 values an algorithm keeps per step besides R2D2's (NGU: the
intrinsic reward, the behaviour policy's probability of the action, the policy index); each sequence
stores them per step, `extra` [length, X], and the values of the step before its first, `prev_extra`
[X] (zeros at an episode start), as it stores the previous action and reward.

`SequenceWriter` cuts an actor's stream into such sequences: a new one starts every `length - overlap`
steps (R2D2: length 80, overlap 40), sequences never cross an episode boundary, and the last one of an
episode is padded. Locking, keys and weights are those of `common/replay/base.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from common.replay.base import Inserted, ReplayBase, ReplayStorage, sentinel_for
from common.replay.frames import FrameRing, frame_specs


@dataclass(frozen=True)
class SequenceReplayConfig:
    """Layout of a SequenceReplay (fixed for its lifetime; part of save files)."""

    capacity: int
    """Maximum number of live sequences (FIFO)."""
    obs_shape: tuple[int, ...]
    """Shape of one step's observation."""
    state_size: int
    """Size of each of the recurrent state vectors h and c."""
    length: int = 80
    """Steps per sequence (burn-in + unroll)."""
    overlap: int = 40
    """Steps shared by consecutive sequences of one episode."""
    obs_dtype: str = "uint8"
    """Dtype of stored observations."""
    alpha: float = 0.9
    """Priority exponent (R2D2 uses 0.9)."""
    frame_stack: int | None = None
    """k: an observation is a stack of k frames (obs_shape[0] == k), each frame stored once in a frame
    ring; None: every sequence stores its steps' whole observations."""
    extras: tuple[str, ...] = ()
    """Names of float32 columns stored per step besides R2D2's (see the module's docstring)."""
    num_frames: int | None = None
    """Frame-ring slots with frame_stack; default (capacity + max(capacity // 16, 16)) * (length - overlap)
    + 2 * length * frame_stack, the frames of `capacity` sequences that start no episode plus slack."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_shape", tuple(int(d) for d in self.obs_shape))
        object.__setattr__(self, "extras", tuple(str(name) for name in self.extras))
        if self.capacity < 1 or self.length < 1 or self.state_size < 1:
            raise ValueError("capacity, length and state_size must be >= 1")
        if not 0 <= self.overlap < self.length:
            raise ValueError(f"overlap must lie in [0, length={self.length}), got {self.overlap}")
        if self.frame_stack is not None and self.obs_shape[:1] != (self.frame_stack,):
            raise ValueError(f"frame_stack {self.frame_stack} needs observations [{self.frame_stack}, ...], "
                             f"got {self.obs_shape}")

    @property
    def stack(self) -> int:
        """Stored frames per step: frame_stack, or 1 (the whole observation)."""
        return self.frame_stack or 1

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """What one stored frame is: a stack's frame, or a whole observation."""
        return self.obs_shape[1:] if self.frame_stack else self.obs_shape

    @property
    def frame_slots(self) -> int:
        stride = self.length - self.overlap
        return self.num_frames or ((self.capacity + max(self.capacity // 16, 16)) * stride
                                   + 2 * self.length * self.stack)


class SequenceBlock(NamedTuple):
    """M sequences for one `insert`; T = length, S = stored frames per step, H = state size."""

    frames: np.ndarray
    """[F, *frame_shape]: frames not inserted before."""
    history_ids: np.ndarray
    """[H'] int64: global ids of frames of earlier inserts (from their `Inserted.frame_ids`; frame ring only)."""
    obs_ref: np.ndarray
    """[M, T, S] int: each step's frames as indices into (history_ids, the F frames); -1 on padding steps."""
    action: np.ndarray
    """[M, T] int64."""
    reward: np.ndarray
    """[M, T] float32."""
    discount: np.ndarray
    """[M, T] float32."""
    mask: np.ndarray
    """[M, T] bool."""
    h: np.ndarray
    """[M, H] float32; c, next_h, next_c alike."""
    c: np.ndarray
    prev_action: np.ndarray
    """[M] int64; prev_reward [M] float32, episode_start [M] bool."""
    prev_reward: np.ndarray
    episode_start: np.ndarray
    next_h: np.ndarray
    next_c: np.ndarray
    priority: np.ndarray | None = None
    """[M] initial priorities (None: the running max priority)."""
    extra: np.ndarray | None = None
    """[M, T, X] float32: the config's `extras` per step (None: X = 0)."""
    prev_extra: np.ndarray | None = None
    """[M, X] float32: the extras of the step before the first (zeros at an episode start)."""


class SequenceBatch(NamedTuple):
    """A sampled batch; B = batch size, T = sequence length, H = state size."""

    obs: np.ndarray
    """[B, T, *obs_shape] obs_dtype (zeros on padding steps)."""
    action: np.ndarray
    """[B, T] int64: action taken at each step."""
    reward: np.ndarray
    """[B, T] float32: reward after each step."""
    discount: np.ndarray
    """[B, T] float32: gamma, or 0 after a terminal step."""
    mask: np.ndarray
    """[B, T] bool: False for padding steps past the episode's end."""
    h: np.ndarray
    """[B, H] float32: recurrent state at the first step."""
    c: np.ndarray
    """[B, H] float32."""
    prev_action: np.ndarray
    """[B] int64: the action before the first step (0 at an episode start)."""
    prev_reward: np.ndarray
    """[B] float32: the reward before the first step (0 at an episode start)."""
    episode_start: np.ndarray
    """[B] bool: the first step is an episode's first step."""
    next_h: np.ndarray
    """[B, H] float32: recurrent state at step `length - overlap`, the next sequence's first step
    (zeros if the sequence ends before it)."""
    next_c: np.ndarray
    """[B, H] float32."""
    extra: np.ndarray
    """[B, T, X] float32: the config's `extras` per step (zeros on padding)."""
    prev_extra: np.ndarray
    """[B, X] float32: the extras of the step before the first (zeros at an episode start)."""
    index: np.ndarray
    """[B] int64: slots in the ring."""
    key: np.ndarray
    """[B] int64: item keys to pass to `update_priorities`."""
    weight: np.ndarray
    """[B] float32: importance weights, max-normalised."""


_ITEM_FIELDS = ("action", "reward", "discount", "mask", "h", "c", "prev_action", "prev_reward", "episode_start",
                "next_h", "next_c")


class SequenceReplay(ReplayBase):
    """Shared-memory prioritized sequence replay: the owner creates, spawned children `attach`."""

    def __init__(self, storage: ReplayStorage) -> None:
        super().__init__(storage)
        cfg = storage.config
        self.frame_ring = None if cfg.frame_stack is None else FrameRing(
            storage.arrays, cfg.frame_slots, (cfg.frame_slots - cfg.capacity * (cfg.length - cfg.overlap)) // 2)

    @staticmethod
    def specs(config: SequenceReplayConfig) -> list[tuple[str, tuple[int, ...], Any]]:
        n, t, hidden = config.capacity, config.length, config.state_size
        if config.frame_stack is None:
            observations = [("obs", (n, t, *config.obs_shape), config.obs_dtype)]
        else:
            observations = [*frame_specs(config.frame_slots, config.frame_shape, config.obs_dtype),
                            ("obs_ref", (n, t, config.stack), np.int32)]
        return [
            *observations,
            ("action", (n, t), np.int64),
            ("reward", (n, t), np.float32),
            ("discount", (n, t), np.float32),
            ("mask", (n, t), np.bool_),
            ("h", (n, hidden), np.float32),
            ("c", (n, hidden), np.float32),
            ("prev_action", (n,), np.int64),
            ("prev_reward", (n,), np.float32),
            ("episode_start", (n,), np.bool_),
            ("next_h", (n, hidden), np.float32),
            ("next_c", (n, hidden), np.float32),
            *([("extra", (n, t, len(config.extras)), np.float32), ("prev_extra", (n, len(config.extras)), np.float32)]
              if config.extras else []),
        ]

    @classmethod
    def create(cls, config: SequenceReplayConfig, private: bool = False) -> "SequenceReplay":
        """Allocate a new replay in shared memory (owner; it alone unlinks on close); `private`: no other
        process will attach (`ReplayStorage.create`)."""
        specs = cls.specs(config)
        replay = cls(ReplayStorage.create(config, specs, {name: sentinel_for(dtype) for name, _, dtype in specs},
                                          private))
        if replay.frame_ring is not None:
            replay.frame_ring.clear_blank()
        return replay

    def insert(self, block: SequenceBlock) -> Inserted:
        """Write the block's new frames and its sequences under the lock (see `SequenceBlock`).

        Sequences that refer to a history frame overwritten meanwhile are dropped and counted.
        """
        cfg, arrays, ring = self.config, self.storage.arrays, self.storage.ring
        frames = np.asarray(block.frames, dtype=cfg.obs_dtype).reshape(-1, *cfg.frame_shape)
        history_ids = np.asarray(block.history_ids, dtype=np.int64).reshape(-1)
        refs = np.asarray(block.obs_ref, dtype=np.int64)
        num = len(refs)
        if refs.shape != (num, cfg.length, cfg.stack) or refs.size and refs.max() >= len(history_ids) + len(frames):
            raise ValueError(f"obs_ref must be [M, {cfg.length}, {cfg.stack}] indices into the block's frames")
        if self.frame_ring is None and len(history_ids):
            raise ValueError("a replay of whole observations takes no history frames")
        values = {name: np.asarray(getattr(block, name)) for name in _ITEM_FIELDS}
        if cfg.extras:
            values["extra"], values["prev_extra"] = np.asarray(block.extra), np.asarray(block.prev_extra)
        elif block.extra is not None and np.size(block.extra):
            raise ValueError("this replay stores no extra columns")
        for name, value in values.items():
            expected = (num, *arrays[name].shape[1:])
            if value.shape != expected:
                raise ValueError(f"{name} must have shape {expected}, got {value.shape}")
        with self.storage.lock:
            if self.frame_ring is None:
                given_ids, keep = np.empty(0, np.int64), np.ones(num, bool)
            else:
                ids, in_ring, given_ids = self.frame_ring.add(ring, frames, history_ids)
                keep = np.where(refs >= 0, in_ring[np.maximum(refs, 0)], True).all(axis=(1, 2))
            slots, keys = ring.claim(int(keep.sum()))
            if self.frame_ring is None:
                step_refs = refs[keep, :, 0]  # [M', T]
                obs = frames[np.maximum(step_refs, 0)]
                obs[step_refs < 0] = 0
                arrays["obs"][slots] = obs
            else:
                slot_refs = self.frame_ring.slots_of(ids, refs[keep])
                arrays["obs_ref"][slots] = slot_refs
                self.frame_ring.pin(slot_refs, keys)
            for name, value in values.items():
                arrays[name][slots] = value[keep]
            ring.publish(slots, keys, None if block.priority is None else np.asarray(block.priority)[keep])
        return Inserted(keys, given_ids, int((~keep).sum()))

    def gather(self, slots: np.ndarray, keys: np.ndarray, weights: np.ndarray) -> SequenceBatch:
        """The sequences in `slots`, observations gathered from the frame ring if any (the caller holds the lock)."""
        cfg, arrays = self.config, self.storage.arrays
        if self.frame_ring is None:
            obs = arrays["obs"][slots]
        else:
            refs = arrays["obs_ref"][slots]  # [B, T, S]
            obs = self._pool.get((len(slots), cfg.length, *cfg.obs_shape), np.dtype(cfg.obs_dtype))
            self.frame_ring.gather(refs, obs)
        data = {name: arrays[name][slots] for name in _ITEM_FIELDS}
        if cfg.extras:
            data["extra"], data["prev_extra"] = arrays["extra"][slots], arrays["prev_extra"][slots]
        else:
            data["extra"] = np.zeros((len(slots), cfg.length, 0), np.float32)
            data["prev_extra"] = np.zeros((len(slots), 0), np.float32)
        return SequenceBatch(obs=obs, **data, index=slots, key=keys, weight=weights)


class _Step(NamedTuple):
    first_frame: int  # the writer's number of the first frame of this step's observation
    action: int
    reward: float
    discount: float
    h: np.ndarray
    c: np.ndarray
    prev_action: int
    prev_reward: float
    extra: np.ndarray  # [X] float32: this step's extras
    prev_extra: np.ndarray  # [X] float32: the extras of the step before (zeros at an episode start)


class SequenceWriter:
    """One actor's side of a SequenceReplay: steps in, overlapping padded sequences out.

    Call `add_step` for every env step with the observation it acted on and the recurrent state the
    network had *before* that step (and, for R2D2, the previous action and reward it was fed), and
    `end_episode` after the episode's last step; with the config's `extras`, each step's values of
    them. `priority_fn(sequence_fields) -> float` gives a
    sequence's initial priority (None: the replay's running max priority); it is called when the
    sequence is cut, before the next step.

    Frames are numbered in the order the writer sees them: an episode's first observation brings all
    its k frames, every later one its newest frame (a stack is a sliding window over the episode's
    frames), so step t of an episode shows frames base + t ... base + t + k - 1.
    """

    def __init__(
        self,
        replay: SequenceReplay,
        block_size: int = 8,
        priority_fn: Callable[[dict[str, np.ndarray]], float] | None = None,
    ) -> None:
        self.replay = replay
        self.block_size = block_size
        self.priority_fn = priority_fn
        self.stack = replay.config.stack
        self.shares_frames = replay.config.frame_stack is not None
        self._steps: list[_Step] = []
        self._starts_episode = True  # the open sequence's first step is an episode's first step
        self._num_new = 0  # steps of the open sequence not yet in any emitted sequence
        self._ready: list[dict[str, np.ndarray]] = []
        self._next_frame = 0
        self._in_episode = False  # a step of the current episode was added
        self._frames: dict[int, np.ndarray] = {}  # frames not inserted yet, or (whole observations) still needed
        self._frame_ids: dict[int, int] = {}  # the replay's id of each inserted frame still needed
        self._no_extra = np.zeros(len(replay.config.extras), np.float32)
        self._last_extra = self._no_extra  # the extras of the episode's previous step
        self.num_dropped = 0

    def _add_frames(self, obs: np.ndarray) -> int:
        """Number the frames `obs` brings; returns the number of its first frame."""
        if not self.shares_frames:
            new = [obs]
        else:
            new = [obs[-1]] if self._in_episode else list(obs)
        for frame in new:
            self._frames[self._next_frame] = np.array(frame)
            self._next_frame += 1
        self._in_episode = True
        return self._next_frame - self.stack

    def add_step(self, obs: np.ndarray, action: int, reward: float, discount: float, h: np.ndarray, c: np.ndarray,
                 prev_action: int = 0, prev_reward: float = 0.0, extra: Sequence[float] = ()) -> None:
        """Append one step (`extra`: its values of the config's `extras`); emits a sequence when
        `length` steps are open."""
        extra = np.asarray(extra, np.float32)
        if extra.shape != self._no_extra.shape:
            raise ValueError(f"extra must hold {len(self._no_extra)} values {self.replay.config.extras}, got {extra.shape}")
        first_frame = self._add_frames(np.asarray(obs))
        self._steps.append(_Step(first_frame, action, reward, discount, h, c, prev_action, prev_reward, extra,
                                 self._last_extra))
        self._last_extra = extra
        self._num_new += 1
        cfg = self.replay.config
        if len(self._steps) == cfg.length:
            self._emit()
            self._steps = self._steps[cfg.length - cfg.overlap:]
            self._num_new = 0
            self._starts_episode = False

    def end_episode(self) -> None:
        """Emit the episode's last, padded sequence if it holds steps not yet emitted."""
        if self._num_new > 0:
            self._emit()
        self._steps, self._num_new = [], 0
        self._starts_episode = True
        self._in_episode = False
        self._last_extra = self._no_extra

    def _emit(self) -> None:
        cfg = self.replay.config
        count = len(self._steps)
        steps = _Step(*zip(*self._steps))
        seq = {
            "obs_ref": np.full((cfg.length, self.stack), -1, np.int64),
            "action": np.zeros(cfg.length, dtype=np.int64),
            "reward": np.zeros(cfg.length, dtype=np.float32),
            "discount": np.zeros(cfg.length, dtype=np.float32),
            "mask": np.arange(cfg.length) < count,
        }
        seq["obs_ref"][:count] = np.array(steps.first_frame)[:, None] + np.arange(self.stack)
        for name in ("action", "reward", "discount"):
            seq[name][:count] = getattr(steps, name)
        first = self._steps[0]
        seq["h"], seq["c"] = np.asarray(first.h, np.float32), np.asarray(first.c, np.float32)
        seq["prev_action"], seq["prev_reward"] = np.int64(first.prev_action), np.float32(first.prev_reward)
        seq["episode_start"] = np.bool_(self._starts_episode)
        seq["extra"] = np.zeros((cfg.length, len(self._no_extra)), np.float32)
        seq["extra"][:count] = np.stack(steps.extra)
        seq["prev_extra"] = first.prev_extra
        stride = cfg.length - cfg.overlap
        after = self._steps[stride] if count > stride else None
        zeros = np.zeros(cfg.state_size, np.float32)
        seq["next_h"] = zeros if after is None else np.asarray(after.h, np.float32)
        seq["next_c"] = zeros if after is None else np.asarray(after.c, np.float32)
        # now, while the caller's state matches this sequence (an actor reads its own Q-values of these steps)
        seq["priority"] = None if self.priority_fn is None else float(self.priority_fn(seq))
        self._ready.append(seq)
        if len(self._ready) >= self.block_size:
            self.flush()

    def flush(self) -> None:
        """Insert the emitted sequences (and, with a frame ring, every frame seen since the last insert)."""
        if not self._ready:
            return
        fields = {name: np.stack([seq[name] for seq in self._ready]) for name in self._ready[0] if name != "priority"}
        refs = fields.pop("obs_ref")  # the writer's frame numbers, -1 on padding
        if self.shares_frames:
            history = sorted(n for n in np.unique(refs[refs >= 0]) if n in self._frame_ids)
            new = sorted(self._frames)
        else:
            history, new = [], np.unique(refs[refs >= 0]).tolist()
        order = np.array(history + new, dtype=np.int64)  # ascending: inserted frames are the older ones
        frames = np.stack([self._frames[n] for n in new]) if new else np.empty((0, *self.replay.config.frame_shape))
        priority = None if self.priority_fn is None else np.array([seq["priority"] for seq in self._ready])
        inserted = self.replay.insert(SequenceBlock(
            frames, np.array([self._frame_ids[n] for n in history], np.int64),
            np.where(refs >= 0, np.searchsorted(order, refs), -1), **fields, priority=priority))
        self.num_dropped += inserted.dropped
        self._ready = []
        if self.shares_frames:
            self._frame_ids.update(zip(new, inserted.frame_ids.tolist()))
            self._frames.clear()
        oldest = self._steps[0].first_frame if self._steps else self._next_frame  # the open sequence's frames
        for numbers in (self._frames, self._frame_ids):
            for n in [n for n in numbers if n < oldest]:
                del numbers[n]
