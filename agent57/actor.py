"""Agent57 actors (Badia et al. 2020, "Agent57", section 4): NGU's actors with a policy chosen by a
bandit and the Q-values of two networks.

Each actor process keeps one sliding-window UCB bandit (`agent57.bandit`) over the N policies: each
of its envs asks it for an arm j at every episode start and pays it the episode's undiscounted
extrinsic return at the end (the training env's reward, clipped on Atari, summed by the actor: on
Atari a training episode ends at a lost life, where the game's score is not yet final). The bandit's
memory is the actor's row of the owner's shared arrays, so a restarted actor keeps it.

Acting: one step of each network (`r2d2.network.act_step` on each one's LSTM cell), epsilon-greedy
on Q = Q_e + beta_j Q_i, behaviour probabilities as NGU's. The intrinsic reward is NGU's
(`ngu.intrinsic`). The replay keeps the pair's state side by side (`agent57.network.join_state`).
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agent57.bandit import BanditState, SlidingWindowUCB
from agent57.config import Config
from agent57.family import gammas
from agent57.network import Agent57Model, make_model, mixed_q
from common.counters import RunCounters
from common.distributed.actor_loop import (ParamRefresh, act_until_stopped, actor_envs, epsilon_greedy,
                                           epsilon_greedy_probs)
from common.distributed.seams import ParameterChannel, ReplayClient
from common.envs import LastReward, episode_return
from common.networks import LstmState
from common.replay.sequence import SequenceBatch, SequenceBlock, SequenceReplay, SequenceWriter
from ngu.family import betas
from ngu.intrinsic import EvaluatorIntrinsic, IntrinsicReward
from r2d2.network import act_step, shared_cell

EXTRAS = ("intrinsic", "behaviour_prob", "policy")
"""The sequence replay's extra columns of an Agent57 step, in this order (NGU's)."""

EVAL_BANDIT_WINDOW, EVAL_BANDIT_EPSILON = 3600, 0.01


def family_of(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(betas [N], gammas [N]) of the run's policies."""
    return betas(cfg.num_policies, cfg.intrinsic_beta), gammas(cfg.num_policies, cfg.gamma, cfg.gamma_1,
                                                               cfg.gamma_min)


class Actor:
    """`envs_per_actor` envs of actor `rank`, its copy of the model, its bandit, its intrinsic rewards
    and one sequence writer per env."""

    def __init__(self, rank: int, cfg: Config, replay: ReplayClient[SequenceBlock, SequenceBatch],
                 params: ParameterChannel, counters: RunCounters, bandit: BanditState,
                 counter_row: int | None = None):
        self.rank, self.cfg, self.counters = rank, cfg, counters
        self.row = rank if counter_row is None else counter_row
        seed, self.envs, self.rng, self.epsilons = actor_envs(rank, cfg)
        self.num_actions = int(self.envs[0].action_space.n)
        self.model = make_model(cfg, tuple(self.envs[0].observation_space.shape), self.num_actions)
        self.cells = [shared_cell(head.lstm) for head in self.model.heads()]
        self.refresh = ParamRefresh(params, self.model, cfg.param_refresh_steps)
        self.betas, self.gammas = family_of(cfg)
        self.bandit = SlidingWindowUCB(cfg.num_policies, bandit, cfg.bandit_epsilon, cfg.bandit_beta,
                                       np.random.default_rng(seed + 17))
        num = len(self.envs)
        self.intrinsic = IntrinsicReward(self.model, num, cfg.episodic_capacity, cfg.num_neighbours,
                                         cfg.max_modulation)
        self.writers = [SequenceWriter(replay, cfg.replay_block_size) for _ in self.envs]
        size = 2 * self.model.lstm_size  # (extrinsic, intrinsic) side by side
        self.h, self.c = np.zeros((num, size), np.float32), np.zeros((num, size), np.float32)
        self.prev_action = np.zeros(num, np.int64)
        self.prev_extrinsic, self.prev_intrinsic = np.zeros(num, np.float32), np.zeros(num, np.float32)
        self.policy = np.zeros(num, np.int64)
        self.episode_return = np.zeros(num)
        self.obs = [env.reset(seed=seed + e)[0] for e, env in enumerate(self.envs)]
        for e in range(num):
            self.start_episode(e)

    def owner_state(self) -> BanditState:
        """What the run's owner keeps of this actor (in checkpoints and arms.csv): its bandit's memory. On
        the local backend the owner reads it in place; a Ray actor reports it with its progress."""
        return self.bandit.state

    def start_episode(self, e: int) -> None:
        """Env e's episode begins at self.obs[e]: zero state and inputs, the bandit's arm, an empty memory."""
        self.h[e], self.c[e] = 0.0, 0.0
        self.prev_action[e], self.prev_extrinsic[e], self.prev_intrinsic[e] = 0, 0.0, 0.0
        self.policy[e] = self.bandit.select()
        self.episode_return[e] = 0.0
        self.intrinsic.start_episode(e, self.obs[e])

    def act(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both networks' step on every env -> (mixed Q [E, A], h and c after the step [E, 2H])."""
        size = self.model.lstm_size
        obs = torch.from_numpy(np.stack(self.obs))
        prev_action, prev_extrinsic = torch.from_numpy(self.prev_action), torch.from_numpy(self.prev_extrinsic)
        extra = self.model.q_e.extra_inputs(torch.from_numpy(self.prev_intrinsic), torch.from_numpy(self.policy))
        q, h, c = [], [], []
        with torch.inference_mode():
            for k, (head, cell) in enumerate(zip(self.model.heads(), self.cells)):
                part = slice(k * size, (k + 1) * size)
                state = LstmState(torch.from_numpy(self.h[:, part]), torch.from_numpy(self.c[:, part]))
                q_k, after = act_step(head, cell, obs, prev_action, prev_extrinsic, state, extra)
                q.append(q_k), h.append(after.h), c.append(after.c)
            mixed = mixed_q(q[0], q[1], torch.from_numpy(self.betas[self.policy]).float())
        return mixed.numpy(), torch.cat(h, -1).numpy(), torch.cat(c, -1).numpy()

    def step(self) -> None:
        """One step of every env: both networks, epsilon-greedy on the mixed Q, intrinsic rewards of the
        observations reached, steps to the writers, returns to the bandit."""
        q, h_after, c_after = self.act()
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
            self.episode_return[e] += reward
            finished = episode_return(info)
            if finished is not None:
                self.counters.add_episode(self.row, finished)
            if terminated or truncated:
                self.writers[e].end_episode()
                self.bandit.update(j, float(self.episode_return[e]))
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
              insert_limit: torch.Tensor, should_stop: Callable[[], bool], *,
              bandits: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    """An actor process (see `common.distributed.actor_loop.act_until_stopped`); `bandits` are the
    owner's shared arrays of every actor's bandit, of which row `rank` is this actor's."""
    replay = SequenceReplay.attach(replay_handle)
    try:
        state = BanditState(*(array[rank].numpy() for array in bandits))
        act_until_stopped(Actor(rank, cfg, replay, params, counters, state), replay, insert_limit, should_stop)
    finally:
        replay.close()


class EvaluatorArms:
    """The evaluator's meta-controller, kept across its evaluation rounds: its own bandit (window
    3,600, epsilon 0.01, paid each evaluation game's return), or always j = 0 with --eval-policy
    exploit. A game's return is paid when the next game asks for its arm. It also keeps the
    evaluator's intrinsic reward across rounds (`ngu.intrinsic.EvaluatorIntrinsic`)."""

    def __init__(self, cfg: Config):
        self.intrinsic = EvaluatorIntrinsic(cfg.episodic_capacity, cfg.num_neighbours, cfg.max_modulation)
        self.exploit = cfg.eval_policy == "exploit"
        self.bandit = SlidingWindowUCB(cfg.num_policies, BanditState.zeros(EVAL_BANDIT_WINDOW), EVAL_BANDIT_EPSILON,
                                       cfg.bandit_beta, np.random.default_rng(cfg.seed + 23))
        self.arm: int | None = None
        self.game_return = 0.0

    def next_game(self, last_reward: float) -> int:
        """The arm of the game that starts; `last_reward` is the last step's reward of the one before."""
        if self.arm is not None:
            self.bandit.update(self.arm, self.game_return + last_reward)
        self.arm = 0 if self.exploit else self.bandit.select()
        self.game_return = 0.0
        return self.arm


class GreedyPolicy(nn.Module):
    """`common.evaluation`'s policy interface over Agent57's model: at each game's start an arm from
    `arms`; then greedy on Q_e + beta_j Q_i, fed the previous action, extrinsic and intrinsic rewards
    (its own, scored as an actor scores them)."""

    def __init__(self, model: Agent57Model, env: LastReward, cfg: Config, arms: EvaluatorArms,
                 intrinsic: IntrinsicReward):
        super().__init__()
        self.model, self.env, self.cfg, self.arms, self.intrinsic = model, env, cfg, arms, intrinsic
        self.betas = family_of(cfg)[0]

    def initial_state(self) -> tuple[LstmState, LstmState, int, bool]:
        self.arms.next_game(self.env.last_reward)
        self.env.last_reward = 0.0
        return self.model.q_e.initial_state(1), self.model.q_i.initial_state(1), 0, True

    def greedy_action(self, obs: torch.Tensor, state):
        state_e, state_i, prev_action, first = state
        self.arms.game_return += self.env.last_reward
        x = obs.unsqueeze(0)
        if first:
            self.intrinsic.start_episode(0, x[0].numpy())
            novelty = 0.0
        else:
            novelty = float(self.intrinsic(x.numpy())[0])
        arm = self.arms.arm
        inputs = (x, torch.tensor([prev_action]), torch.tensor([self.env.last_reward]), torch.tensor([novelty]),
                  torch.tensor([arm]))
        q_e, state_e = self.model.q_e.step_ngu(*inputs, state_e)
        q_i, state_i = self.model.q_i.step_ngu(*inputs, state_i)
        action = int(mixed_q(q_e, q_i, torch.tensor([self.betas[arm]], dtype=torch.float32)).argmax(-1))
        return action, (state_e, state_i, action, False)


def greedy_policy(model: Agent57Model, env: gym.Env, clip: bool, cfg: Config,
                  arms: EvaluatorArms) -> tuple[GreedyPolicy, LastReward]:
    """`common.evaluation.run_evaluator`'s policy_for: the env wrapped to keep its last reward, and the
    greedy policy over `model` on the arm `arms` picks for each game."""
    env = LastReward(env, clip)
    return GreedyPolicy(model, env, cfg, arms, arms.intrinsic.of(model)), env
