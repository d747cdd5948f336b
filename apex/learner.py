"""The Ape-X / DQN learner: the n-step (double) Q loss on a batch of transitions; and Gorila's
learner in a bundle, which computes the gradient of the same loss and leaves the step to the
parameter server.

One update (Horgan et al. 2018, Algorithm 2): sample a batch by priority, compute the n-step
(double) Q loss weighted by importance weights, then the runtime's `finish_update`: one Adam step
with gradient-norm clipping, new priorities |TD| for the batch (with --prioritized), the target
network copied every `target_update_interval` updates or Polyak-averaged every update. Batches,
prefetching and the rate limit are the runtime's (`common.distributed.learner_loop`).

A Gorila bundle's learner (Nair et al. 2015, Algorithm 1) samples a uniform batch from its bundle's
own replay and computes the gradient of the same loss with respect to the bundle's copy of the
server's parameters, against its copy of the server's target; the runtime's bundle loop
(`common.distributed.bundle`) sends it to the parameter server.
"""
from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
import torch

from apex.config import Config
from apex.loss import PRIORITY_FLOOR, double_q_nstep_loss
from apex.network import make_network
from common.counters import RunCounters
from common.distributed.learner_loop import finish_update, learner_state, load_learner_state
from common.distributed.seams import ParameterChannel, ReplayClient
from common.replay.transition import TransitionBatch, TransitionBlock


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


def batch_loss(net: torch.nn.Module, target: torch.nn.Module, batch: DeviceBatch, double: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """`double_q_nstep_loss` of `net` on `batch`, bootstrapping from `target` (the selector: `net`
    with `double`, else `target`, which makes it DQN's max_a Q_target); returns (loss, abs_td [B])."""
    q_tm1 = net(batch.obs)  # [B, A]
    with torch.no_grad():
        q_t_value = target(batch.next_obs)
        q_t_selector = net(batch.next_obs) if double else q_t_value
    return double_q_nstep_loss(q_tm1, batch.action, batch.reward, batch.discount, q_t_value, q_t_selector,
                               batch.weight)


class Learner:
    def __init__(self, cfg: Config, obs_shape: tuple[int, ...], num_actions: int, device: torch.device,
                 replay: ReplayClient[TransitionBlock, TransitionBatch], counters: RunCounters):
        self.cfg, self.device, self.replay, self.counters = cfg, device, replay, counters
        torch.manual_seed(cfg.seed)
        self.net = make_network(cfg, obs_shape, num_actions).to(device)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.updates = 0
        self.beta = cfg.beta if cfg.prioritized else 0.0
        self.rng = np.random.default_rng(cfg.seed + 7)

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def sample(self) -> DeviceBatch:
        return to_device(self.replay.sample(self.cfg.batch_size, self.beta, self.rng), self.device)

    def update(self, batch: DeviceBatch) -> np.ndarray:
        """One gradient step on `batch`; writes its new priorities; returns abs_td [B] float32."""
        loss, abs_td = batch_loss(self.net, self.target, batch, self.cfg.double)
        abs_td = abs_td.detach().cpu().numpy()
        finish_update(self, loss, self.cfg.max_grad_norm, self.cfg.target_update_interval, batch.key,
                      np.maximum(abs_td, PRIORITY_FLOOR) if self.cfg.prioritized else None, self.cfg.target_tau)
        return abs_td

    def state_dict(self) -> dict[str, Any]:
        return learner_state(self)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)


class BundleLearner:
    """Gorila: the learner of bundle `rank`, on `replay` (the bundle's own, uniform) and `net` (the
    bundle's copy of the server's parameters, shared with its actor); its target copy follows
    `target_params`, which the server publishes every time it copies its target."""

    def __init__(self, rank: int, cfg: Config, replay: ReplayClient[TransitionBlock, TransitionBatch],
                 net: torch.nn.Module, target_params: ParameterChannel):
        self.cfg, self.replay, self.net, self.target_params = cfg, replay, net, target_params
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.target_version = target_params.poll(self.target, -1)
        self.rng = np.random.default_rng(cfg.seed + 1000 * (rank + 1) + 7)
        self.device = torch.device("cpu")

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def sample(self) -> DeviceBatch:
        return to_device(self.replay.sample(self.cfg.batch_size, 0.0, self.rng), self.device)

    def gradient(self, batch: DeviceBatch | None = None) -> float:
        """The loss gradient on `batch` (default: a fresh sample) into `net`'s .grad; returns the loss."""
        self.target_version = self.target_params.poll(self.target, self.target_version)
        batch = self.sample() if batch is None else batch
        self.net.zero_grad(set_to_none=True)
        loss, _ = batch_loss(self.net, self.target, batch, self.cfg.double)
        loss.backward()
        return float(loss.detach())
