"""An actor's transitions in the replay, across terminated and truncated episodes; serial determinism."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from apex.actor import Actor
from apex.config import make_config
from apex.learner import Learner
from apex.network import QNetwork
from apex.train import main, replay_config
from common.counters import RunCounters
from common.distributed.params import PublishedParams
from common.recipe import EnvProbe
from common.replay.transition import TransitionBlock, TransitionReplay

LENGTHS = (4, 2, 5)  # episode k lasts LENGTHS[k] steps; even k terminate, odd k are truncated
GAMMA, N = 0.5, 3


class CountingEnv(gym.Env):
    """Observation [t, k] at step t of episode k; reward t + 1 for the step taken at t."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.t, self.episode], dtype=np.float32)

    def step(self, action):
        self.t += 1
        ended = self.t == LENGTHS[self.episode % len(LENGTHS)]
        terminated, truncated = ended and self.episode % 2 == 0, ended and self.episode % 2 == 1
        return self._obs(), float(self.t), terminated, truncated, {}


gym.register("asyncrl-test/Counting-v0", entry_point=CountingEnv)


def expected_transitions():
    """(obs, reward_n, discount_n, next_obs) per step, computed from the definition."""
    out = []
    for k, length in enumerate(LENGTHS):
        rewards = [t + 1.0 for t in range(length)]
        for t in range(length):
            m = min(N, length - t)
            reward_n = sum(GAMMA ** j * rewards[t + j] for j in range(m))
            terminal_in_window = k % 2 == 0 and t + m == length
            discount_n = 0.0 if terminal_in_window else GAMMA ** m
            out.append(((t, k), reward_n, discount_n, (t + m, k)))
    return sorted(out)


def test_actor_writes_nstep_transitions_across_episode_ends():
    # Hand check of the first rows: episode 0, t = 0: 1 + 0.5 * 2 + 0.25 * 3 = 2.75, discount 0.125,
    # next o_3; t = 2: 3 + 0.5 * 4 = 5, terminal inside the window, discount 0, next o_4.
    # Episode 1 (truncated after 2): t = 0: 1 + 0.5 * 2 = 2, discount 0.25 (bootstrapped), next o_2.
    expected = expected_transitions()
    assert ((0, 0), 2.75, 0.125, (3, 0)) in expected and ((2, 0), 5.0, 0.0, (4, 0)) in expected
    assert ((0, 1), 2.0, 0.25, (2, 1)) in expected

    cfg = make_config({"env_id": "asyncrl-test/Counting-v0", "num_workers": 1, "envs_per_actor": 1,
                       "n_step": N, "gamma": GAMMA, "prioritized": False, "replay_block_size": 2,
                       "replay_capacity": 64, "hidden_size": 8})
    replay = TransitionReplay.create(replay_config(cfg, EnvProbe((2,), 2, "float32", None)))
    try:
        params = PublishedParams(QNetwork((2,), 2, 8, dueling=True))
        actor = Actor(0, cfg, replay, params, RunCounters(1))
        for _ in range(sum(LENGTHS)):
            actor.step()
        for writer in actor.writers:
            writer.flush()
        assert len(replay) == len(expected)
        batch = replay.sample(len(expected), 0.0, np.random.default_rng(0))  # uniform: each item once
        got = sorted((tuple(int(x) for x in batch.obs[i]), float(batch.reward[i]),
                      float(batch.discount[i]), tuple(int(x) for x in batch.next_obs[i]))
                     for i in range(len(expected)))
        assert len(set(batch.key.tolist())) == len(expected)
        assert [(o, pytest.approx(r), pytest.approx(d), n) for o, r, d, n in expected] == got
        actor.close()
    finally:
        replay.close()


def serial_weights(tmp_path, name):
    cfg = make_config({"serial": True, "total_steps": 2400, "learning_starts": 400, "eval_interval_seconds": 0.0,
                       "run_dir": str(tmp_path / name), "seed": 3})
    summary = main(cfg)
    assert summary.env_steps == 2400, "serial mode stops exactly at --total-steps"
    return torch.load(summary.checkpoint, weights_only=True)


def test_serial_dqn_is_deterministic_for_a_fixed_seed(tmp_path):
    first, second = serial_weights(tmp_path, "a"), serial_weights(tmp_path, "b")
    assert first["updates"] == second["updates"] > 100
    for name, tensor in first["model"].items():
        assert torch.equal(tensor, second["model"][name]), name


def tiny_learner(**overrides):
    cfg = make_config({"batch_size": 4, "learning_starts": 8, "hidden_size": 8, "replay_capacity": 64, **overrides})
    replay = TransitionReplay.create(replay_config(cfg, EnvProbe((4,), 2, "float32", None)))
    count = 16
    refs = np.arange(2 * count).reshape(count, 2)
    replay.insert(TransitionBlock(np.random.default_rng(0).standard_normal((2 * count, 4)).astype(np.float32), [],
                                  refs[:, :1], refs[:, 1:], np.arange(count) % 2, np.ones(count), np.full(count, 0.9),
                                  np.ones(count)))
    return Learner(cfg, (4,), 2, torch.device("cpu"), replay, RunCounters(1)), replay


def test_target_network_polyak_and_hard_copies():
    learner, replay = tiny_learner(target_tau=0.25)
    old_target = {k: v.clone() for k, v in learner.target.state_dict().items()}
    learner.update(learner.sample())
    for name, online in learner.net.state_dict().items():  # target <- 0.75 target + 0.25 online
        assert torch.allclose(learner.target.state_dict()[name], 0.75 * old_target[name] + 0.25 * online)
    replay.close()
    learner, replay = tiny_learner(target_update_interval=3)
    initial = learner.target.state_dict()["head.weight"].clone()
    for _ in range(2):
        learner.update(learner.sample())
    assert torch.equal(learner.target.state_dict()["head.weight"], initial), "no copy before 3 updates"
    learner.update(learner.sample())
    assert torch.equal(learner.target.state_dict()["head.weight"], learner.net.state_dict()["head.weight"])
    replay.close()


def test_learner_writes_priorities_back():
    # Every item starts at priority 1; after one update the sampled items hold |td| (floored), alpha 0.6.
    learner, replay = tiny_learner(alpha=0.6)
    batch = learner.sample()
    abs_td = learner.update(batch)
    leaves = replay.storage.ring.tree.leaves()
    keys = batch.key
    last = {int(k): float(p) for k, p in zip(keys, np.maximum(abs_td, 1e-6))}  # a repeated key: last wins
    for key, priority in last.items():
        assert leaves[key] == pytest.approx(priority ** 0.6, rel=1e-5)
    untouched = [k for k in range(16) if k not in last]
    assert all(leaves[k] == 1.0 for k in untouched)
    replay.close()
