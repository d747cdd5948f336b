"""R2D2's actor and learner on real sequences: what is stored, and where gradients may flow."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from common.counters import RunCounters
from common.distributed.params import PublishedParams
from common.evaluation import evaluate
from common.recipe import EnvProbe
from common.replay.sequence import SequenceReplay
from r2d2.actor import Actor, greedy_policy
from r2d2.config import make_config
from r2d2.envs import ENV_ID
from common.distributed.sequences import to_device
from r2d2.learner import Learner
from r2d2.network import LstmState, make_network
from r2d2.train import replay_config

LENGTH, OVERLAP = 12, 4  # the next sequence starts at step 8


@pytest.fixture(scope="module")
def stored():
    """One actor env played for 400 steps with a fixed network; the replay's items in insert order."""
    cfg = make_config({"env_id": ENV_ID, "num_workers": 1, "envs_per_actor": 1, "sequence_length": LENGTH,
                       "sequence_overlap": OVERLAP, "burn_in": 3, "n_step": 2, "epsilon_base": 0.5,
                       "epsilon_alpha": 0.0, "lstm_size": 8, "hidden_size": 16, "replay_capacity": 1000})
    torch.manual_seed(0)
    net = make_network(cfg, (2,), 2)
    replay = SequenceReplay.create(replay_config(cfg, EnvProbe((2,), 2, "float32", None)))
    actor = Actor(0, cfg, replay, PublishedParams(net), RunCounters(1))
    for _ in range(400):
        actor.step()
    actor.streams[0].writer.flush()
    count = len(replay)
    fields = ("obs", "action", "reward", "discount", "mask", "h", "c", "prev_action", "prev_reward", "episode_start",
              "next_h", "next_c")
    items = {name: replay.storage.arrays[name][:count].copy() for name in fields}
    priorities = replay.storage.ring.tree.leaves()[:count].copy()
    yield cfg, net, replay, items, priorities
    actor.close()
    replay.close()


def test_sequences_never_cross_an_episode_end_and_pad_after_it(stored):
    _, _, _, items, _ = stored
    assert 40 < len(items["mask"]) and items["episode_start"].sum() >= 10
    for mask, discount in zip(items["mask"], items["discount"]):
        count = int(mask.sum())
        assert mask.tolist() == [True] * count + [False] * (LENGTH - count)  # padding only at the end
        terminals = np.flatnonzero(discount[:count] == 0)
        assert terminals.tolist() in ([], [count - 1])  # a terminal can only be a sequence's last real step
        if count < LENGTH:  # a short sequence is an episode's last one
            assert len(terminals) == 1 or count == 0


def test_episode_starts_have_zero_state_and_later_sequences_continue_the_actor_state(stored):
    cfg, net, _, items, _ = stored
    stride = LENGTH - OVERLAP
    starts = items["episode_start"]
    assert np.all(items["h"][starts] == 0) and np.all(items["c"][starts] == 0)
    assert np.all(items["prev_action"][starts] == 0) and np.all(items["prev_reward"][starts] == 0)
    checked = 0
    for k in np.flatnonzero(~starts):
        before = k - 1  # one env: the episode's previous sequence was inserted just before
        assert np.array_equal(items["obs"][k][:OVERLAP], items["obs"][before][stride:])
        assert items["prev_action"][k] == items["action"][before][stride - 1]
        assert items["prev_reward"][k] == items["reward"][before][stride - 1]
        assert np.array_equal(items["h"][k], items["next_h"][before])
        # the stored state is what the actor's network computes over the previous sequence's first steps
        prev_action = np.concatenate([[items["prev_action"][before]], items["action"][before][:stride - 1]])
        prev_reward = np.concatenate([[items["prev_reward"][before]], items["reward"][before][:stride - 1]])
        with torch.no_grad():
            _, state = net.unroll(torch.from_numpy(items["obs"][before][:stride, None]),
                                  torch.from_numpy(prev_action[:, None]), torch.from_numpy(prev_reward[:, None]),
                                  LstmState(torch.from_numpy(items["h"][before][None]),
                                            torch.from_numpy(items["c"][before][None])))
        assert np.allclose(state.h[0].numpy(), items["h"][k], atol=1e-5)
        assert np.allclose(state.c[0].numpy(), items["c"][k], atol=1e-5)
        checked += 1
    assert checked >= 10


def test_initial_priority_is_the_learner_priority_with_the_actor_network(stored):
    cfg, net, replay, items, priorities = stored
    learner = Learner(cfg, (2,), 2, torch.device("cpu"), replay, RunCounters(1))
    learner.net.load_state_dict(net.state_dict())
    learner.target.load_state_dict(net.state_dict())
    learner.optimizer = torch.optim.SGD(learner.net.parameters(), lr=0.0)  # measure, do not move
    batch = replay.sample(16, 0.0, np.random.default_rng(1))
    expected = learner.update(to_device(batch, torch.device("cpu")))
    stored_priority = priorities[batch.index] ** (1 / cfg.alpha)
    assert np.allclose(stored_priority, expected, rtol=1e-4)


def test_burn_in_steps_pass_no_gradient_except_at_episode_starts(stored):
    cfg, _, replay, _, _ = stored
    learner = Learner(cfg, (2,), 2, torch.device("cpu"), replay, RunCounters(1))
    batch = to_device(replay.sample(32, 0.0, np.random.default_rng(2)), torch.device("cpu"))
    assert batch.episode_start.any() and (~batch.episode_start).any()
    obs = batch.obs.clone().requires_grad_(True)
    q = learner.online_q(batch._replace(obs=obs))
    q[cfg.burn_in:].sum().backward()
    grad = obs.grad[:cfg.burn_in].abs().sum(dim=(0, 2))  # [B]
    assert torch.all(grad[~batch.episode_start] == 0)
    assert torch.all(grad[batch.episode_start] > 0)


def test_network_unroll_equals_steps_and_reads_previous_action_and_reward():
    torch.manual_seed(0)
    net = make_network(make_config({"env_id": ENV_ID, "lstm_size": 8, "hidden_size": 16}), (2,), 3)
    obs, prev_action, prev_reward = torch.randn(5, 2, 2), torch.randint(3, (5, 2)), torch.randn(5, 2)
    state = net.initial_state(2)
    assert state.h.shape == (2, 8) and not state.h.any() and not state.c.any()
    q_unrolled, final = net.unroll(obs, prev_action, prev_reward, state)
    for t in range(5):
        q_t, state = net.step(obs[t], prev_action[t], prev_reward[t], state)
        assert torch.allclose(q_t, q_unrolled[t], atol=1e-6)
    assert torch.allclose(state.h, final.h, atol=1e-6)
    q_other_action, _ = net.unroll(obs, (prev_action + 1) % 3, prev_reward, net.initial_state(2))
    q_other_reward, _ = net.unroll(obs, prev_action, prev_reward + 1, net.initial_state(2))
    assert not torch.allclose(q_other_action, q_unrolled) and not torch.allclose(q_other_reward, q_unrolled)


class _RewardsEnv(gym.Env):
    """Three steps per game with rewards 5, -3, 2; observations are the step index."""
    observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)
    REWARDS = (5.0, -3.0, 2.0)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward = self.REWARDS[self.t]
        self.t += 1
        return np.full(1, self.t, np.float32), reward, self.t == 3, False, {}


class _RecordingNet:
    """Stands in for R2D2Network: records the previous action and reward each step is given."""

    def __init__(self):
        self.seen: list[tuple[int, float]] = []

    def initial_state(self, batch: int):
        return None

    def step(self, obs, prev_action, prev_reward, lstm):
        self.seen.append((int(prev_action), float(prev_reward)))
        return torch.tensor([[0.0, 1.0]]), lstm  # always action 1


@pytest.mark.parametrize("clip, rewards", [(True, [0.0, 1.0, -1.0]), (False, [0.0, 5.0, -3.0])])
def test_the_evaluator_policy_reads_the_previous_action_and_reward(clip, rewards):
    net = _RecordingNet()
    policy, env = greedy_policy(net, gym.wrappers.RecordEpisodeStatistics(_RewardsEnv()), clip=clip)
    assert evaluate(policy, env, episodes=2, seed=0) == [4.0, 4.0]  # raw game score either way
    # each game starts from action 0 and reward 0; then the last step's action and (clipped) reward
    assert net.seen == list(zip([0, 1, 1], rewards)) * 2
