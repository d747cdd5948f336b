"""The Ape-X / DQN learner: sample, update, write priorities back, publish parameters.

One update (Horgan et al. 2018, Algorithm 2): sample a batch by priority, compute the n-step
(double) Q loss weighted by importance weights, one Adam step with gradient-norm clipping, new
priorities |TD| for the batch, then the parameters are published for the actors. The target
network is copied every `target_update_interval` updates, or Polyak-averaged every update.

In Ape-X a `Prefetcher` thread samples the next batch (and moves it to the learner's device) while
the current update runs, so a GPU learner never waits on the replay. Serial mode samples in line.
"""
from __future__ import annotations

import copy
import queue
import threading
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from apex.config import Config
from apex.loss import PRIORITY_FLOOR, double_q_nstep_loss
from apex.network import QNetwork
from common.counters import RunCounters
from common.replay.base import ITEMS_INSERTED
from common.replay.transition import TransitionBatch, TransitionReplay


class DeviceBatch(NamedTuple):
    """A TransitionBatch as tensors on the learner's device; B = batch size."""
    obs: torch.Tensor       # [B, *obs_shape] (uint8 frames or float32 vectors): o_t
    action: torch.Tensor    # [B] int64: a_t
    reward: torch.Tensor    # [B] float32: n-step return
    discount: torch.Tensor  # [B] float32: gamma^n, or 0 past a terminal
    next_obs: torch.Tensor  # [B, *obs_shape]: o_{t+n}
    weight: torch.Tensor    # [B] float32: importance weights
    key: np.ndarray         # [B] int64: replay keys, for the priority update


def to_device(batch: TransitionBatch, device: torch.device) -> DeviceBatch:
    def move(array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor

    return DeviceBatch(move(batch.obs), move(batch.action), move(batch.reward), move(batch.discount),
                       move(batch.next_obs), move(batch.weight), batch.key)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class RateLimit:
    """Keeps sampled transitions per inserted transition near `samples_per_insert` after learning starts.

    The learner may update while it has sampled at most `slack` transitions more than the ratio allows;
    actors may insert while the replay is at most `slack / samples_per_insert` inserts ahead (the
    limit they read from `insert_limit`, a shared int64 tensor; -1: no limit).
    """

    def __init__(self, samples_per_insert: float, batch_size: int, insert_limit: torch.Tensor | None = None):
        self.ratio = samples_per_insert
        self.batch_size = batch_size
        self.slack = 32 * batch_size
        self.insert_limit = insert_limit
        self.start: tuple[int, int] | None = None  # (inserted, updates) when learning started

    def begin(self, inserted: int, updates: int) -> None:
        self.start = (inserted, updates)

    def may_update(self, inserted: int, updates: int) -> bool:
        if self.ratio <= 0 or self.start is None:
            return True
        sampled = (updates - self.start[1] + 1) * self.batch_size
        return sampled <= self.ratio * (inserted - self.start[0]) + self.slack

    def publish(self, updates: int) -> None:
        """Tell the actors how far they may insert after `updates` updates."""
        if self.insert_limit is None or self.ratio <= 0 or self.start is None:
            return
        sampled = (updates - self.start[1]) * self.batch_size
        self.insert_limit[0] = self.start[0] + int((sampled + self.slack) / self.ratio)


class Learner:
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: TransitionReplay, counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net = QNetwork(obs_shape, num_actions, cfg.hidden_size, cfg.dueling).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.updates = 0
        self.beta = cfg.beta if cfg.prioritized else 0.0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def inserted(self) -> int:
        """Transitions ever inserted into the replay."""
        return int(self.replay.storage.ring.counters[ITEMS_INSERTED])

    def sample(self) -> DeviceBatch:
        return to_device(self.replay.sample(self.cfg.batch_size, self.beta, self.rng), self.device)

    def update(self, batch: DeviceBatch) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns abs_td [B] float32."""
        q_tm1 = self.net(batch.obs)  # [B, A]
        with torch.no_grad():
            q_t_value = self.target(batch.next_obs)
            q_t_selector = self.net(batch.next_obs) if self.cfg.double else q_t_value
        loss, abs_td = double_q_nstep_loss(q_tm1, batch.action, batch.reward, batch.discount,
                                           q_t_value, q_t_selector, batch.weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self._update_target()
        abs_td = abs_td.cpu().numpy()
        if self.cfg.prioritized:
            self.replay.update_priorities(batch.key, np.maximum(abs_td, PRIORITY_FLOOR))
        self.counters.updates[0] = self.updates
        return abs_td

    def _update_target(self) -> None:
        tau = self.cfg.target_tau
        if tau > 0:
            with torch.no_grad():
                for target, online in zip(self.target.parameters(), self.net.parameters()):
                    target.lerp_(online, tau)
        elif self.updates % self.cfg.target_update_interval == 0:
            self.target.load_state_dict(self.net.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return learner_state(self)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)


def learner_state(learner: Any) -> dict[str, Any]:
    """What a checkpoint keeps of a learner with `net`, `target`, `optimizer` and `updates` (Ape-X, R2D2)."""
    return {"model": learner.net.state_dict(), "target": learner.target.state_dict(),
            "optimizer": learner.optimizer.state_dict(), "updates": learner.updates}


def load_learner_state(learner: Any, saved: dict[str, Any]) -> None:
    learner.net.load_state_dict(saved["model"])
    learner.target.load_state_dict(saved["target"])
    learner.optimizer.load_state_dict(saved["optimizer"])
    learner.updates = int(saved["updates"])
    learner.counters.updates[0] = learner.updates


class Prefetcher:
    """A thread that keeps up to `depth` sampled batches ready for the learner."""

    def __init__(self, learner: Learner, depth: int = 2):
        self.learner = learner
        self.batches: queue.Queue[DeviceBatch] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.learner.sample()
                while not self.stopping.is_set():
                    try:
                        self.batches.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as err:  # handed to the learner's thread, which raises it
            self.error = err

    def get(self, timeout: float = 1.0) -> DeviceBatch | None:
        """The next batch, or None if none came within `timeout` seconds."""
        if self.error is not None:
            raise RuntimeError("the prefetch thread failed") from self.error
        try:
            return self.batches.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5.0)

