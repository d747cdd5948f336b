"""Ape-X actors (Horgan et al. 2018, Algorithm 1): several envs per actor, one batched forward pass
for all of them, epsilon-greedy on a ladder of epsilons, n-step transitions with initial priorities
from the actor's own copy of the network, written to the shared replay in blocks.

Priorities come from Q-values the actor computes anyway to act: the transition that starts at o_t
is complete once o_{t+n} has been seen, and its bootstrap max_a Q(o_{t+n}, a) is the forward pass
that picks the action at o_{t+n}. Only a truncated episode's final observation needs a forward
pass of its own.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, NamedTuple

import numpy as np
import torch

from apex.config import Config
from apex.learner import BundleLearner
from apex.loss import PRIORITY_FLOOR
from apex.network import make_network
from common.counters import RunCounters
from common.distributed.actor_loop import ParamRefresh, act_until_stopped, actor_envs, epsilon_greedy
from common.distributed.bundle import BundlePace, LossOutliers, bundle_until_stopped
from common.distributed.seams import GradientChannel, ParameterChannel, ReplayClient
from common.envs import episode_return
from common.replay.transition import TransitionBatch, TransitionBlock, TransitionReplay, TransitionWriter


class NStepTransition(NamedTuple):
    obs_step: int
    """writer step number of o_t"""
    action: int
    reward_n: float
    """sum_{k<m} gamma^k r_{t+k}, m = n, or fewer steps at an episode end"""
    discount_n: float
    """gamma^m, or 0 if the episode terminated within the window"""
    next_obs_step: int
    """writer step number of o_{t+m}"""
    priority: float
    """|reward_n + discount_n * max_a Q(o_{t+m}, a) - Q(o_t, a_t)| (floored above zero)"""


class NStepBuffer:
    """One env's last n steps; turns them into n-step transitions with initial priorities."""

    def __init__(self, n: int, gamma: float):
        self.n = n
        self.gamma = gamma
        self.pending: deque[tuple[int, int, float, float]] = deque()  # (obs_step, action, reward, q_taken)

    def append(self, obs_step: int, action: int, reward: float, q_taken: float) -> None:
        """Record step t: o_t's step number, a_t, r_t and the actor's Q(o_t, a_t)."""
        self.pending.append((obs_step, action, reward, q_taken))

    def _emit(self, next_obs_step: int, next_value: float, terminated: bool) -> NStepTransition:
        obs_step, action, _, q_taken = self.pending[0]
        reward_n = sum(self.gamma ** k * step[2] for k, step in enumerate(self.pending))
        discount_n = 0.0 if terminated else self.gamma ** len(self.pending)
        priority = abs(reward_n + discount_n * next_value - q_taken)
        self.pending.popleft()
        return NStepTransition(obs_step, action, reward_n, discount_n, next_obs_step, max(priority, PRIORITY_FLOOR))

    def pop_ready(self, next_obs_step: int, next_value: float) -> list[NStepTransition]:
        """The transition whose window of n steps ends at o_{t+n} (the current observation), if any."""
        if len(self.pending) < self.n:
            return []
        return [self._emit(next_obs_step, next_value, terminated=False)]

    def flush(self, final_obs_step: int, final_value: float, terminated: bool) -> list[NStepTransition]:
        """At an episode end: every pending step's transition, cut short at the final observation.

        terminated: no bootstrap (discount 0); truncated: bootstrap from `final_value`.
        """
        out = []
        while self.pending:
            out.append(self._emit(final_obs_step, final_value, terminated))
        return out


def newest_frame(obs: np.ndarray, stacked: bool) -> np.ndarray:
    """What the replay stores per step: the newest frame of a stack, or the whole vector."""
    return obs[-1] if stacked else obs


class Actor:
    """`envs_per_actor` envs of actor `rank`, its network copy, n-step buffers and replay writers."""

    def __init__(self, rank: int, cfg: Config, replay: ReplayClient[TransitionBlock, TransitionBatch],
                 params: ParameterChannel, counters: RunCounters, counter_row: int | None = None):
        self.rank, self.cfg, self.counters = rank, cfg, counters
        self.row = rank if counter_row is None else counter_row
        num = cfg.envs_per_actor
        seed, self.envs, self.rng, self.epsilons = actor_envs(rank, cfg)
        self.num_actions = int(self.envs[0].action_space.n)
        obs_shape = self.envs[0].observation_space.shape
        self.stacked = replay.config.frame_stack is not None
        self.net = make_network(cfg, obs_shape, self.num_actions)
        self.refresh = ParamRefresh(params, self.net, cfg.param_refresh_steps)
        self.replay = replay
        history = max(64, cfg.n_step + replay.config.stack + 2)
        self.writers = [TransitionWriter(replay, cfg.replay_block_size, history) for _ in range(num)]
        self.buffers = [NStepBuffer(cfg.n_step, cfg.gamma) for _ in range(num)]
        self.obs: list[np.ndarray] = []
        self.steps: list[int] = []  # writer step number of each env's current observation
        for e, env in enumerate(self.envs):
            obs, _ = env.reset(seed=seed + e)
            self.obs.append(obs)
            self.steps.append(self.writers[e].add_frame(newest_frame(obs, self.stacked), True))

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """obs: [E, *obs_shape] -> [E, A] float32."""
        with torch.inference_mode():
            return self.net(torch.from_numpy(obs)).numpy()

    def step(self) -> None:
        """One step of every env: one forward pass, epsilon-greedy actions, transitions to the writers."""
        q = self.q_values(np.stack(self.obs))  # [E, A]
        values = q.max(axis=1)
        for e, buffer in enumerate(self.buffers):
            self._write(e, buffer.pop_ready(self.steps[e], float(values[e])))
        actions = epsilon_greedy(q, self.epsilons, self.rng)
        for e, env in enumerate(self.envs):
            action = int(actions[e])
            obs, reward, terminated, truncated, info = env.step(action)
            self.buffers[e].append(self.steps[e], action, float(reward), float(q[e, action]))
            finished = episode_return(info)
            if finished is not None:
                self.counters.add_episode(self.row, finished)
            step = self.writers[e].add_frame(newest_frame(obs, self.stacked), False)
            if terminated or truncated:
                final_value = 0.0 if terminated else float(self.q_values(obs[None]).max())
                self._write(e, self.buffers[e].flush(step, final_value, terminated))
                obs, _ = env.reset()
                step = self.writers[e].add_frame(newest_frame(obs, self.stacked), True)
            self.obs[e], self.steps[e] = obs, step
        self.counters.steps[self.row] += len(self.envs)
        self.refresh.count(len(self.envs))

    def _write(self, e: int, transitions: list[NStepTransition]) -> None:
        for t in transitions:
            self.writers[e].add(t.obs_step, t.action, t.reward_n, t.discount_n, t.next_obs_step, t.priority)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def run_actor(rank: int, cfg: Config, replay_handle, params: ParameterChannel, counters: RunCounters,
              insert_limit: torch.Tensor, should_stop: Callable[[], bool]) -> None:
    """An actor process: step until told to stop, pausing while the replay is ahead of `insert_limit`
    (the learner's rate limit; negative: no limit)."""
    replay = TransitionReplay.attach(replay_handle)
    try:
        act_until_stopped(Actor(rank, cfg, replay, params, counters), replay, insert_limit, should_stop)
    finally:
        replay.close()


def run_bundle(rank: int, cfg: Config, replay_handle, params: ParameterChannel, target_params: ParameterChannel,
               slots: GradientChannel, counters: RunCounters, should_stop: Callable[[], bool]) -> None:
    """A Gorila bundle process (`common.distributed.bundle`): this actor on the bundle's own replay, and
    a `BundleLearner` on the same replay and the actor's copy of the parameters."""
    replay = TransitionReplay.attach(replay_handle)
    try:
        actor = Actor(rank, cfg, replay, params, counters)
        learner = BundleLearner(rank, cfg, replay, actor.net, target_params)
        bundle_until_stopped(rank, actor, learner, replay, slots, actor.refresh.now,
                             BundlePace(cfg.samples_per_insert, cfg.batch_size),
                             LossOutliers(cfg.gorila_loss_outlier_stds), should_stop)
    finally:
        replay.close()
