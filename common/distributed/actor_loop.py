"""The actor side of the runtime: an actor's envs and exploration, its parameter refresh, and the
loop an actor process runs.

An actor steps several envs with one batched forward pass, each env with its own epsilon from the
Ape-X ladder (Horgan et al. 2018, section 4.1), and looks at the learner's published parameters every
`param_refresh_steps` env steps. What it writes and how it acts beyond that is the algorithm's.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.distributed.config import ReplayRunConfig
from common.distributed.seams import ParameterChannel, ReplayClient
from common.envs import make_env


class Actor(Protocol):
    """What the runtime does with an algorithm's actor: step all its envs once, close them."""

    def step(self) -> None: ...

    def close(self) -> None: ...


def epsilon_ladder(num_envs: int, base: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """epsilon_i = base^(1 + alpha * i / (N - 1)) for env i of N (Horgan et al. 2018, section 4.1).

    Returns [N] float64; a single env gets `base`.
    """
    if num_envs == 1:
        return np.array([base])
    return base ** (1.0 + alpha * np.arange(num_envs) / (num_envs - 1))


def actor_envs(rank: int, cfg: ReplayRunConfig) -> tuple[int, list[gym.Env], np.random.Generator, np.ndarray]:
    """Actor `rank`'s seed, its `cfg.envs_per_actor` training envs (env e seeded seed + e), its
    exploration generator and its slice of the epsilon ladder."""
    num = cfg.envs_per_actor
    seed = cfg.seed + 1000 * (rank + 1)
    envs = [make_env(cfg.env_id, seed + e, training=True, sticky_actions=cfg.sticky_actions,
                     frame_stack=cfg.frame_stack) for e in range(num)]
    epsilons = epsilon_ladder(cfg.num_envs, cfg.epsilon_base, cfg.epsilon_alpha)[rank * num:(rank + 1) * num]
    return seed, envs, np.random.default_rng(seed), epsilons


def epsilon_greedy(q: np.ndarray, epsilons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """q: [E, A] -> actions [E] int64: uniform with probability epsilons[e], else argmax."""
    explore = rng.random(len(epsilons)) < epsilons
    random_actions = rng.integers(q.shape[1], size=len(epsilons))
    return np.where(explore, random_actions, q.argmax(axis=1))


def epsilon_greedy_probs(actions: np.ndarray, greedy: np.ndarray, epsilons: np.ndarray, num_actions: int) -> np.ndarray:
    """mu(a_t | x_t) of `epsilon_greedy`: epsilon / A, plus 1 - epsilon where a_t is the greedy action.
    [E] each -> [E] (for off-policy corrections such as Retrace's traces)."""
    return epsilons / num_actions + (1.0 - epsilons) * (actions == greedy)


class ParamRefresh:
    """An actor's copy `net` of the learner's network, refreshed from `params` every `every_steps` env steps."""

    def __init__(self, params: ParameterChannel, net: nn.Module, every_steps: int):
        self.params, self.net, self.every_steps = params, net, every_steps
        self.version = params.poll(net, -1)
        self.env_steps = 0

    def count(self, env_steps: int) -> None:
        """Count `env_steps` more steps; poll the parameters when a multiple of `every_steps` is passed."""
        before = self.env_steps
        self.env_steps += env_steps
        if self.env_steps // self.every_steps != before // self.every_steps:
            self.now()

    def now(self) -> int:
        """Poll the parameters at once (a Gorila bundle, before each gradient); returns the version held."""
        self.version = self.params.poll(self.net, self.version)
        return self.version


def act_until_stopped(actor: Actor, replay: ReplayClient, insert_limit: torch.Tensor,
                      should_stop: Callable[[], bool]) -> None:
    """An actor process's loop: `actor.step()` until told to stop, pausing while the replay is ahead of
    `insert_limit` (the learner's rate limit, a shared int64 tensor; negative: no limit); then closes
    the actor."""
    try:
        while not should_stop():
            limit = int(insert_limit[0])
            if 0 <= limit < replay.inserted():
                time.sleep(0.002)
                continue
            actor.step()
    finally:
        actor.close()
