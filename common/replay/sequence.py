"""Prioritized fixed-length sequence replay for R2D2, in shared memory.

An item is one sequence of `length` steps (burn-in included) of one episode, the recurrent state (h, c)
the actor's network had at its first step, a per-step mask (0 for padding past the episode's end) and
one priority. For R2D2's network it also keeps the action and reward that came before the first step
(the LSTM's inputs there), whether the first step starts an episode (its stored state is then exactly
the zero state), and the state the actor had at step `length - overlap`, where the episode's next
sequence starts (for the learner's stale-state diagnostic).

`SequenceWriter` cuts an actor's stream into such sequences: a new one starts every `length - overlap`
steps (R2D2: length 80, overlap 40), sequences never cross an episode boundary, and the last one of an
episode is padded. Locking, keys and weights are those of `common/replay/base.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from common.replay.base import Inserted, ReplayBase, ReplayStorage, sentinel_for


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_shape", tuple(int(d) for d in self.obs_shape))
        if self.capacity < 1 or self.length < 1 or self.state_size < 1:
            raise ValueError("capacity, length and state_size must be >= 1")
        if not 0 <= self.overlap < self.length:
            raise ValueError(f"overlap must lie in [0, length={self.length}), got {self.overlap}")


class SequenceBlock(NamedTuple):
    """M sequences for one `insert`: per-step fields [M, T, ...], h, c, next_h, next_c [M, H];
    priority, prev_action, prev_reward, episode_start [M] (None: the running max priority; zeros / False)."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    mask: np.ndarray
    h: np.ndarray
    c: np.ndarray
    priority: np.ndarray | None = None
    prev_action: np.ndarray | None = None
    prev_reward: np.ndarray | None = None
    episode_start: np.ndarray | None = None
    next_h: np.ndarray | None = None
    next_c: np.ndarray | None = None


class SequenceBatch(NamedTuple):
    """A sampled batch; B = batch size, T = sequence length, H = state size."""

    obs: np.ndarray
    """[B, T, *obs_shape] obs_dtype."""
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
    index: np.ndarray
    """[B] int64: slots in the ring."""
    key: np.ndarray
    """[B] int64: item keys to pass to `update_priorities`."""
    weight: np.ndarray
    """[B] float32: importance weights, max-normalised."""


_STEP_FIELDS = ("obs", "action", "reward", "discount", "mask")
_SEQUENCE_FIELDS = ("h", "c", "prev_action", "prev_reward", "episode_start", "next_h", "next_c")


class SequenceReplay(ReplayBase):
    """Shared-memory prioritized sequence replay: the owner creates, spawned children `attach`."""

    @classmethod
    def create(cls, config: SequenceReplayConfig) -> "SequenceReplay":
        """Allocate a new replay in shared memory (owner; it alone unlinks on close)."""
        n, t, hidden = config.capacity, config.length, config.state_size
        specs = [
            ("obs", (n, t, *config.obs_shape), config.obs_dtype),
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
        ]
        fill = {name: sentinel_for(dtype) for name, _, dtype in specs}
        return cls(ReplayStorage.create(config, specs, fill))

    def insert(self, block: SequenceBlock) -> Inserted:
        """Write the block's sequences under the lock; returns their keys."""
        obs, action, reward, discount, mask, h, c, priority, prev_action, prev_reward, episode_start, next_h, \
            next_c = block
        num = len(obs)
        zeros = lambda *shape: np.zeros((num, *shape))  # noqa: E731
        values = dict(obs=obs, action=action, reward=reward, discount=discount, mask=mask, h=h, c=c,
                      prev_action=zeros() if prev_action is None else prev_action,
                      prev_reward=zeros() if prev_reward is None else prev_reward,
                      episode_start=zeros() if episode_start is None else episode_start,
                      next_h=zeros(np.shape(h)[-1]) if next_h is None else next_h,
                      next_c=zeros(np.shape(c)[-1]) if next_c is None else next_c)
        arrays = self.storage.arrays
        for name, value in values.items():
            expected = (num, *arrays[name].shape[1:])
            if np.shape(value) != expected:
                raise ValueError(f"{name} must have shape {expected}, got {np.shape(value)}")
        with self.storage.lock:
            slots, keys = self.storage.ring.claim(num)
            for name, value in values.items():
                arrays[name][slots] = value
            self.storage.ring.publish(slots, keys, priority)
        return Inserted(keys, np.empty(0, np.int64))

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> SequenceBatch:
        """Draw a batch in proportion to priority^alpha (stratified) and gather it under the lock."""
        arrays = self.storage.arrays
        with self.storage.lock:
            slots, keys, weights = self.storage.ring.sample(batch_size, beta, rng)
            data = {name: arrays[name][slots] for name in (*_STEP_FIELDS, *_SEQUENCE_FIELDS)}
        return SequenceBatch(**data, index=slots, key=keys, weight=weights)


class SequenceWriter:
    """One actor's side of a SequenceReplay: steps in, overlapping padded sequences out.

    Call `add_step` for every env step with the recurrent state the network had *before* that step
    (and, for R2D2, the previous action and reward it was fed), and `end_episode` after the episode's
    last step. `priority_fn(sequence_fields) -> float` gives a sequence's initial priority (None: the
    replay's running max priority); it is called when the sequence is cut, before the next step.
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
        self._steps: list[tuple] = []  # (obs, action, reward, discount, h, c, prev_action, prev_reward)
        self._starts_episode = True  # the open sequence's first step is an episode's first step
        self._num_new = 0  # steps of the open sequence not yet in any emitted sequence
        self._ready: list[dict[str, np.ndarray]] = []

    def add_step(self, obs: np.ndarray, action: int, reward: float, discount: float, h: np.ndarray, c: np.ndarray,
                 prev_action: int = 0, prev_reward: float = 0.0) -> None:
        """Append one step; emits a sequence when `length` steps are open."""
        self._steps.append((obs, action, reward, discount, h, c, prev_action, prev_reward))
        self._num_new += 1
        if len(self._steps) == self.replay.config.length:
            self._emit()
            self._steps = self._steps[self.replay.config.length - self.replay.config.overlap:]
            self._num_new = 0
            self._starts_episode = False

    def end_episode(self) -> None:
        """Emit the episode's last, padded sequence if it holds steps not yet emitted."""
        if self._num_new > 0:
            self._emit()
        self._steps, self._num_new = [], 0
        self._starts_episode = True

    def _emit(self) -> None:
        cfg = self.replay.config
        count = len(self._steps)
        seq = {
            "obs": np.zeros((cfg.length, *cfg.obs_shape), dtype=cfg.obs_dtype),
            "action": np.zeros(cfg.length, dtype=np.int64),
            "reward": np.zeros(cfg.length, dtype=np.float32),
            "discount": np.zeros(cfg.length, dtype=np.float32),
            "mask": np.arange(cfg.length) < count,
        }
        for name, column in zip(("obs", "action", "reward", "discount"), zip(*self._steps)):
            seq[name][:count] = np.stack(column) if name == "obs" else column
        seq["h"] = np.asarray(self._steps[0][4], dtype=np.float32)
        seq["c"] = np.asarray(self._steps[0][5], dtype=np.float32)
        seq["prev_action"] = np.int64(self._steps[0][6])
        seq["prev_reward"] = np.float32(self._steps[0][7])
        seq["episode_start"] = np.bool_(self._starts_episode)
        stride = cfg.length - cfg.overlap
        after = self._steps[stride] if count > stride else None
        seq["next_h"] = np.zeros(cfg.state_size, np.float32) if after is None else np.asarray(after[4], np.float32)
        seq["next_c"] = np.zeros(cfg.state_size, np.float32) if after is None else np.asarray(after[5], np.float32)
        # now, while the caller's state matches this sequence (an actor reads its own Q-values of these steps)
        seq["priority"] = None if self.priority_fn is None else float(self.priority_fn(seq))
        self._ready.append(seq)
        if len(self._ready) >= self.block_size:
            self.flush()

    def flush(self) -> None:
        """Insert the emitted sequences."""
        if not self._ready:
            return
        batch = {name: np.stack([seq[name] for seq in self._ready]) for name in self._ready[0] if name != "priority"}
        priority = None if self.priority_fn is None else np.array([seq["priority"] for seq in self._ready])
        self.replay.insert(SequenceBlock(**batch, priority=priority))
        self._ready = []
