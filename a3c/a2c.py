"""A2C: A3C made synchronous (Wu et al. 2017, OpenAI baselines' a2c), stepped by the owner loop.

One process steps cfg.num_envs envs together (gymnasium's SyncVectorEnv over common.envs.make_env),
picks all their actions with one batched forward, and after t_max steps makes one update on the
[t_max, num_envs] batch with A3C's loss (`a3c.loss.a2c_loss`), network and optimizer (the shared RMSProp
or Adam of a3c/optim.py, of which this process is the only writer). So A2C and A3C differ only in
synchrony: no worker processes, no Hogwild, no stale local copies. The evaluator reads the same
shared-memory model, as it does A3C's.

Unlike A3C's, a window does not stop at an episode's end: an env that ends is reset in the same step
(gymnasium's SAME_STEP autoreset), its discount is 0 at a termination, and at a truncation its reward
takes gamma * V(final observation), so its return bootstraps from the state it was cut at.
"""
from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from a3c import loss as L
from a3c.config import Config
from a3c.worker import SharedParts, apply_gradients
from common.envs import make_env

WORK_SECONDS = 0.02
"""batches and updates between two checks of the owner loop (logging, evaluations, stop conditions)"""


class Batch(NamedTuple):
    """t_max steps of num_envs envs, time first."""
    obs: torch.Tensor        # [T+1, N, *obs_shape]: s_0 .. s_T of each env (s_t after a reset is the new episode's)
    actions: torch.Tensor    # [T, N] int64
    rewards: torch.Tensor    # [T, N] float32, plus gamma * V(final observation) where step t truncated the episode
    discounts: torch.Tensor  # [T, N] float32: gamma, 0 where step t ended the episode


def batch_loss(cfg: Config, model: torch.nn.Module, batch: Batch) -> L.A3CLoss:
    """A2C's loss on a batch: one forward over s_0 .. s_T of every env, V(s_T) the constant bootstrap."""
    steps, envs = batch.actions.shape
    logits, values, _ = model(batch.obs.flatten(0, 1))
    logits = logits.view(steps + 1, envs, -1)  # [T+1, N, A]
    values = values.view(steps + 1, envs)  # [T+1, N]
    return L.a2c_loss(logits[:-1], values[:-1], batch.actions, batch.rewards, batch.discounts, values[-1].detach(),
                      cfg.entropy_coef, cfg.value_coef)


class A2CWork:
    """The owner loop's `work`: collects batches and updates the shared model for WORK_SECONDS at a time.

    Env n is seeded cfg.seed + 1000 + n (worker 0's seeds in A3C) plus the steps done so far, so that a
    resumed run does not replay the episodes it started with.
    """

    def __init__(self, cfg: Config, shared: SharedParts):
        self.cfg, self.shared = cfg, shared
        first_seed = cfg.seed + 1000 + shared.counters.total_steps()
        seeds = [first_seed + n for n in range(cfg.num_envs)]
        builders = [partial(make_env, cfg.env_id, seed, training=True, sticky_actions=cfg.sticky_actions,
                            frame_stack=cfg.frame_stack) for seed in seeds]
        self.envs = SyncVectorEnv(builders, autoreset_mode=AutoresetMode.SAME_STEP)
        obs, _ = self.envs.reset(seed=seeds)
        self.obs = torch.as_tensor(obs)
        torch.manual_seed(first_seed)
        self.params = list(shared.model.parameters())

    def __call__(self) -> None:
        deadline = time.monotonic() + WORK_SECONDS
        counters = self.shared.counters
        while time.monotonic() < deadline and counters.total_steps() < self.cfg.total_steps:
            loss = batch_loss(self.cfg, self.shared.model, self.collect())
            # the model is the shared one itself: its parameters are both the "local" and the shared list
            apply_gradients(self.cfg, self.params, self.params, self.shared, loss.total)
            counters.updates[0] += 1

    def collect(self) -> Batch:
        cfg, model, counters = self.cfg, self.shared.model, self.shared.counters
        obs, actions, rewards, discounts = [self.obs], [], [], []
        for _ in range(cfg.t_max):
            with torch.no_grad():
                logits, _, _ = model(self.obs)
            action = (logits - torch.empty_like(logits).exponential_().log_()).argmax(-1)  # Gumbel-max, per row
            next_obs, reward, terminated, truncated, info = self.envs.step(action.numpy())
            reward = torch.as_tensor(reward, dtype=torch.float32)
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:
                with torch.no_grad():
                    _, final_values, _ = model(torch.as_tensor(np.stack(info["final_obs"][cut])))
                reward[cut] += cfg.gamma * final_values
            self._count_episodes(info)
            self.obs = torch.as_tensor(next_obs)
            obs.append(self.obs)
            actions.append(action)
            rewards.append(reward)
            discounts.append(torch.as_tensor(cfg.gamma * ~(terminated | truncated), dtype=torch.float32))
        counters.steps[0] += cfg.t_max * cfg.num_envs
        return Batch(torch.stack(obs), torch.stack(actions), torch.stack(rewards), torch.stack(discounts))

    def _count_episodes(self, info: dict) -> None:
        final = info.get("final_info", {})
        if "episode" in final:  # raw game returns, at a real game over (common.envs.episode_return)
            for n in np.flatnonzero(final["_episode"]):
                self.shared.counters.add_episode(0, float(final["episode"]["r"][n]))

    def close(self) -> None:
        self.envs.close()
