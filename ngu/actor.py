"""NGU actors (Badia et al. 2020, section 3 and Appendix A): R2D2's actors with an intrinsic reward
and a policy index per env.

Each env draws its policy j uniformly from the family at every episode start and keeps it for the
episode; the LSTM is fed the previous action, the previous extrinsic and intrinsic rewards and the
one-hot j. Every step the actor scores the observations its envs reached with `IntrinsicReward`
(one batched pass of f and RND, one numba k-NN over all envs) and stores, per step, the extrinsic
reward, the discount gamma_j (0 after a terminal step), and as the replay's extra columns the
intrinsic reward, the behaviour policy's probability of the action taken (for Retrace's traces) and j.
Exploration is R2D2's epsilon-greedy on the env's epsilon from the Ape-X ladder, so
mu(a | x) = epsilon / A + (1 - epsilon) [a = argmax Q].

New sequences enter the replay at its running maximum priority (Ape-X's rule for new items): R2D2's
actors compute theirs from their own n-step TD errors, which for Retrace would need the behaviour
probabilities of the whole sequence and a target network the actor does not have.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.distributed.actor_loop import (ParamRefresh, act_until_stopped, actor_envs, epsilon_greedy,
                                           epsilon_greedy_probs)
from common.distributed.seams import ParameterChannel, ReplayClient
from common.envs import LastReward, episode_return
from common.networks import LstmState
from common.replay.sequence import SequenceBatch, SequenceBlock, SequenceReplay, SequenceWriter
from ngu.config import Config
from ngu.family import betas, gammas
from ngu.intrinsic import EvaluatorIntrinsic, IntrinsicReward
from ngu.network import NGUModel, make_model
from r2d2.network import act_step, shared_cell

EXTRAS = ("intrinsic", "behaviour_prob", "policy")
"""The sequence replay's extra columns of an NGU step, in this order."""


class Actor:
    """`envs_per_actor` envs of actor `rank`, its copy of the model, its intrinsic rewards and one
    sequence writer per env."""

    def __init__(self, rank: int, cfg: Config, replay: ReplayClient[SequenceBlock, SequenceBatch],
                 params: ParameterChannel, counters: RunCounters, counter_row: int | None = None):
        self.rank, self.cfg, self.counters = rank, cfg, counters
        self.row = rank if counter_row is None else counter_row
        seed, self.envs, self.rng, self.epsilons = actor_envs(rank, cfg)
        self.num_actions = int(self.envs[0].action_space.n)
        self.model = make_model(cfg, tuple(self.envs[0].observation_space.shape), self.num_actions)
        self.cell = shared_cell(self.model.q.lstm)
        self.refresh = ParamRefresh(params, self.model, cfg.param_refresh_steps)
        self.betas, self.gammas = betas(cfg.num_policies, cfg.intrinsic_beta), gammas(cfg.num_policies, cfg.gamma,
                                                                                    cfg.gamma_min)
        num = len(self.envs)
        self.intrinsic = IntrinsicReward(self.model, num, cfg.episodic_capacity, cfg.num_neighbours,
                                         cfg.max_modulation)
        self.writers = [SequenceWriter(replay, cfg.replay_block_size) for _ in self.envs]
        size = self.model.q.lstm_size
        self.h, self.c = np.zeros((num, size), np.float32), np.zeros((num, size), np.float32)
        self.prev_action = np.zeros(num, np.int64)
        self.prev_extrinsic, self.prev_intrinsic = np.zeros(num, np.float32), np.zeros(num, np.float32)
        self.policy = np.zeros(num, np.int64)
        self.obs = [env.reset(seed=seed + e)[0] for e, env in enumerate(self.envs)]
        for e in range(num):
            self.start_episode(e)

    def start_episode(self, e: int) -> None:
        """Env e's episode begins at self.obs[e]: zero state and inputs, a new j, an empty memory."""
        self.h[e], self.c[e] = 0.0, 0.0
        self.prev_action[e], self.prev_extrinsic[e], self.prev_intrinsic[e] = 0, 0.0, 0.0
        self.policy[e] = self.rng.integers(self.cfg.num_policies)
        self.intrinsic.start_episode(e, self.obs[e])

    def step(self) -> None:
        """One step of every env: one batched forward pass, epsilon-greedy actions, intrinsic rewards of
        the observations reached, steps to the writers."""
        with torch.inference_mode():
            q, after = act_step(self.model.q, self.cell, torch.from_numpy(np.stack(self.obs)),
                                torch.from_numpy(self.prev_action), torch.from_numpy(self.prev_extrinsic),
                                LstmState(torch.from_numpy(self.h), torch.from_numpy(self.c)),
                                self.model.q.extra_inputs(torch.from_numpy(self.prev_intrinsic),
                                                          torch.from_numpy(self.policy)))
        q, h_after, c_after = q.numpy(), after.h.numpy(), after.c.numpy()
        actions = epsilon_greedy(q, self.epsilons, self.rng)
        mu = epsilon_greedy_probs(actions, q.argmax(axis=1), self.epsilons, self.num_actions)
        outcomes = [env.step(int(a)) for env, a in zip(self.envs, actions)]
        r_i = self.intrinsic(np.stack([outcome[0] for outcome in outcomes]))
        for e, (obs, reward, terminated, truncated, info) in enumerate(outcomes):
            j = int(self.policy[e])
            self.writers[e].add_step(self.obs[e], int(actions[e]), float(reward),
                                     0.0 if terminated else float(self.gammas[j]), self.h[e], self.c[e],
                                     int(self.prev_action[e]), float(self.prev_extrinsic[e]),
                                     (r_i[e], mu[e], j))
            finished = episode_return(info)
            if finished is not None:
                self.counters.add_episode(self.row, finished)
            if terminated or truncated:
                self.writers[e].end_episode()
                self.obs[e], _ = self.envs[e].reset()
                self.start_episode(e)
            else:
                self.obs[e] = obs
                self.h[e], self.c[e] = h_after[e], c_after[e]
                self.prev_action[e], self.prev_extrinsic[e], self.prev_intrinsic[e] = actions[e], reward, r_i[e]
        self.counters.steps[self.row] += len(self.envs)
        self.refresh.count(len(self.envs))

    def close(self) -> None:
        for env in self.envs:
            env.close()


def run_actor(rank: int, cfg: Config, replay_handle, params: ParameterChannel, counters: RunCounters,
              insert_limit: torch.Tensor, should_stop: Callable[[], bool]) -> None:
    """An actor process (see `common.distributed.actor_loop.act_until_stopped`)."""
    replay = SequenceReplay.attach(replay_handle)
    try:
        act_until_stopped(Actor(rank, cfg, replay, params, counters), replay, insert_limit, should_stop)
    finally:
        replay.close()


class GreedyPolicy(nn.Module):
    """`common.evaluation`'s policy interface over NGU's model: policy j = 0 (beta 0, the exploiter),
    greedy, fed the previous action and extrinsic reward (from the env) and the intrinsic reward,
    scored on each observation it acts on with an episodic memory of its own."""

    def __init__(self, model: NGUModel, env: LastReward, cfg: Config, intrinsic: IntrinsicReward):
        super().__init__()
        self.model, self.env, self.cfg, self.intrinsic = model, env, cfg, intrinsic

    def initial_state(self) -> tuple[LstmState, int, bool]:
        self.env.last_reward = 0.0
        return self.model.q.initial_state(1), 0, True

    def greedy_action(self, obs: torch.Tensor,
                      state: tuple[LstmState, int, bool]) -> tuple[int, tuple[LstmState, int, bool]]:
        lstm, prev_action, first = state
        x = obs.unsqueeze(0)
        if first:
            self.intrinsic.start_episode(0, x[0].numpy())
            novelty = 0.0
        else:
            novelty = float(self.intrinsic(x.numpy())[0])
        q, lstm = self.model.q.step_ngu(x, torch.tensor([prev_action]), torch.tensor([self.env.last_reward]),
                                        torch.tensor([novelty]), torch.zeros(1, dtype=torch.int64), lstm)
        action = int(q.argmax(-1))
        return action, (lstm, action, False)


def greedy_policy(model: NGUModel, env: gym.Env, clip: bool, cfg: Config,
                  intrinsic: EvaluatorIntrinsic) -> tuple[GreedyPolicy, LastReward]:
    """`common.evaluation.run_evaluator`'s policy_for: the env wrapped to keep its last reward, and the
    greedy j = 0 policy over `model` that reads it, with the evaluator's intrinsic reward."""
    env = LastReward(env, clip)
    return GreedyPolicy(model, env, cfg, intrinsic.of(model)), env
