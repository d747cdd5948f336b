"""R2D2 actors (Kapturowski et al. 2019, section 2.3): Ape-X's actors with a recurrent state.

Each env keeps its LSTM state, previous action and previous reward across steps and resets all three
to zero at an episode start. Its stream is cut into overlapping sequences by a `SequenceWriter`, which
stores the state the network had before each sequence's first step. A sequence's initial priority is
computed from the Q-values the actor already computed to act (its own network, real state, no target
network), with the learner's loss function, so no extra forward pass is needed.

Speed: the actor's forward pass runs the LSTM as one `nn.LSTMCell` step on the network's own LSTM
parameters (`r2d2.network.act_step`). The results agree with `R2D2Network.step` to float rounding;
tests/test_benchmarks_throughput.py checks it.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.distributed.actor_loop import ParamRefresh, act_until_stopped, actor_envs, epsilon_greedy
from common.distributed.seams import ParameterChannel, ReplayClient
from common.envs import LastReward, episode_return
from common.replay.sequence import SequenceBatch, SequenceBlock, SequenceReplay, SequenceWriter
from r2d2.config import Config
from r2d2.loss import r2d2_loss
from r2d2.network import LstmState, R2D2Network, act_step, make_network, shared_cell


class EnvStream:
    """One env's recurrent context and the Q-values of its open sequence (for initial priorities)."""

    def __init__(self, cfg: Config, writer: SequenceWriter, lstm_size: int):
        self.cfg, self.writer = cfg, writer
        self.q_history: list[np.ndarray] = []  # [A] per step of the current episode, newest last
        self.reset(lstm_size)
        writer.priority_fn = self.priority

    def reset(self, lstm_size: int) -> None:
        self.h = np.zeros(lstm_size, np.float32)
        self.c = np.zeros(lstm_size, np.float32)
        self.prev_action, self.prev_reward = 0, 0.0
        self.q_history = []

    def priority(self, seq: dict[str, np.ndarray]) -> float:
        """The learner's priority of a sequence the writer just cut (its last `count` steps were ours)."""
        count = int(seq["mask"].sum())
        q = np.zeros((len(seq["mask"]), 1, self.q_history[-1].shape[0]), np.float32)
        q[:count, 0] = np.stack(self.q_history[-count:])
        q = torch.from_numpy(q)
        column = lambda name: torch.from_numpy(np.asarray(seq[name])).unsqueeze(1)  # noqa: E731  [T, 1]
        burn_in = torch.tensor([0 if seq["episode_start"] else self.cfg.burn_in])
        _, priority = r2d2_loss(q, column("action"), column("reward"), column("discount"), column("mask"), q, q,
                                torch.ones(1), burn_in, self.cfg.n_step, self.cfg.eta)
        return float(priority[0])


class Actor:
    """`envs_per_actor` envs of actor `rank`, its network copy and one sequence writer per env."""

    def __init__(self, rank: int, cfg: Config, replay: ReplayClient[SequenceBlock, SequenceBatch],
                 params: ParameterChannel, counters: RunCounters, counter_row: int | None = None):
        self.rank, self.cfg, self.counters = rank, cfg, counters
        self.row = rank if counter_row is None else counter_row
        seed, self.envs, self.rng, self.epsilons = actor_envs(rank, cfg)
        self.num_actions = int(self.envs[0].action_space.n)
        self.net = make_network(cfg, tuple(self.envs[0].observation_space.shape), self.num_actions)
        self.cell = shared_cell(self.net.lstm)
        self.refresh = ParamRefresh(params, self.net, cfg.param_refresh_steps)
        self.streams = [EnvStream(cfg, SequenceWriter(replay, cfg.replay_block_size), self.net.lstm_size)
                        for _ in self.envs]
        self.obs = [env.reset(seed=seed + e)[0] for e, env in enumerate(self.envs)]

    def step(self) -> None:
        """One step of every env: one batched forward pass, epsilon-greedy actions, steps to the writers."""
        streams = self.streams
        state = LstmState(torch.from_numpy(np.stack([s.h for s in streams])),
                          torch.from_numpy(np.stack([s.c for s in streams])))
        with torch.inference_mode():
            q, after = act_step(self.net, self.cell, torch.from_numpy(np.stack(self.obs)),
                                torch.tensor([s.prev_action for s in streams]),
                                torch.tensor([s.prev_reward for s in streams], dtype=torch.float32), state)
        q, h_after, c_after = q.numpy(), after.h.numpy(), after.c.numpy()
        actions = epsilon_greedy(q, self.epsilons, self.rng)
        for e, (env, stream) in enumerate(zip(self.envs, streams)):
            action = int(actions[e])
            obs, reward, terminated, truncated, info = env.step(action)
            stream.q_history.append(q[e])
            stream.writer.add_step(self.obs[e], action, float(reward), 0.0 if terminated else self.cfg.gamma,
                                   stream.h, stream.c, stream.prev_action, stream.prev_reward)
            finished = episode_return(info)
            if finished is not None:
                self.counters.add_episode(self.row, finished)
            if terminated or truncated:
                stream.writer.end_episode()
                stream.reset(self.net.lstm_size)
                obs, _ = env.reset()
            else:
                stream.h, stream.c = h_after[e].copy(), c_after[e].copy()
                stream.prev_action, stream.prev_reward = action, float(reward)
                del stream.q_history[:-self.cfg.sequence_length]
            self.obs[e] = obs
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
    """`common.evaluation`'s policy interface over R2D2's network: the state it threads
    through an episode is (LSTM state, previous action); the previous reward comes from the env."""

    def __init__(self, net: R2D2Network, env: LastReward):
        super().__init__()
        self.net, self.env = net, env

    def initial_state(self) -> tuple[LstmState, int]:
        self.env.last_reward = 0.0
        return self.net.initial_state(1), 0

    def greedy_action(self, obs: torch.Tensor, state: tuple[LstmState, int]) -> tuple[int, tuple[LstmState, int]]:
        lstm, prev_action = state
        q, lstm = self.net.step(obs.unsqueeze(0), torch.tensor([prev_action]),
                                torch.tensor([self.env.last_reward]), lstm)
        action = int(q.argmax(-1))
        return action, (lstm, action)


def greedy_policy(net: R2D2Network, env: gym.Env, clip: bool) -> tuple[GreedyPolicy, LastReward]:
    """`common.evaluation.run_evaluator`'s policy_for: the env wrapped to keep its last reward, and the
    greedy policy over `net` that reads it."""
    env = LastReward(env, clip)
    return GreedyPolicy(net, env), env
