"""Agent57's two changes to NGU against hand-computed values (Badia et al. 2020, "Agent57"): the
discount schedule (Appendix A), the sliding-window UCB bandit (section 4), the split value heads,
each trained on its own reward, acting greedily on Q_e + beta_j Q_i (section 4)."""
import math

import numpy as np
import pytest
import torch

from agent57.bandit import BanditState, SlidingWindowUCB
from agent57.config import make_config
from agent57.family import gammas
from agent57.learner import Learner
from agent57.network import join_state, mixed_q, split_state
from common.chain import ENV_ID
from common.counters import RunCounters
from common.distributed.sequences import DeviceSequences
from common.networks import LstmState


def test_the_discount_schedule_at_hand_computed_arms():
    g = gammas(32, 0.9999, 0.997, 0.99)
    sigmoid = 1 / (1 + math.exp(20 / 3))  # j = 1: sigmoid(10 (2 - 6) / 6) = 0.0012706
    assert g[0] == pytest.approx(0.9999)
    assert g[1] == pytest.approx(0.997 + 0.0029 * sigmoid) and g[1] == pytest.approx(0.99700368, abs=1e-8)
    assert g[7] == pytest.approx(0.997) and g[8] == pytest.approx(0.997)
    # j = 20: 1 - exp((11 log 0.003 + 12 log 0.01) / 23) = 1 - exp(-5.180983) = 1 - 0.0056225 = 0.9943775
    assert g[20] == pytest.approx(0.9943775, abs=1e-7)
    assert g[31] == pytest.approx(0.99)
    with pytest.raises(ValueError, match="at least 10 policies"):
        gammas(8)


def bandit(arms: int, window: int, epsilon: float = 0.0) -> SlidingWindowUCB:
    return SlidingWindowUCB(arms, BanditState.zeros(window), epsilon, 1.0, np.random.default_rng(0))


def test_every_arm_is_played_once_before_any_repeat():
    b = bandit(5, 100, epsilon=0.5)
    first = [b.select() for _ in range(5)]
    for arm in first:
        b.update(arm, 0.0)
    assert sorted(first) == [0, 1, 2, 3, 4]


def test_the_window_forgets_the_other_arms_pulls():
    b = bandit(3, 10)
    for _ in range(10):
        b.update(0, 1.0)
    for _ in range(10):
        b.update(1, 0.5)
    counts, means = b.counts_and_means()
    assert counts.tolist() == [0, 10, 0] and means[1] == pytest.approx(0.5)
    assert b.scores()[0] == math.inf  # forgotten: a new arm again


def test_with_epsilon_0_the_choice_follows_mean_plus_bonus():
    b = bandit(3, 10)
    b.state.counters[1] = 3  # the first round is over
    for arm, reward in [(0, 1.0)] * 4 + [(1, 2.0)] + [(2, 0.0)] * 5:
        b.update(arm, reward)
    # scores: 1 + 1/sqrt(4) = 1.5, 2 + 1/sqrt(1) = 3.0, 0 + 1/sqrt(5) = 0.447
    assert b.scores() == pytest.approx([1.5, 3.0, 1 / math.sqrt(5)])
    assert b.select() == 1
    b.state.rewards[4] = 0.2  # arm 1's only reward: 0.2 + 1 = 1.2 < 1.5
    assert b.select() == 0


def test_the_mixed_greedy_action_weighs_the_intrinsic_head_by_beta_j():
    q_e, q_i = torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0, 3.0]])
    assert mixed_q(q_e, q_i, torch.tensor([0.3]))[0].tolist() == pytest.approx([1.0, 1.4])
    assert int(mixed_q(q_e, q_i, torch.tensor([0.3])).argmax()) == 1
    assert int(mixed_q(q_e, q_i, torch.tensor([0.0])).argmax()) == 0


def test_the_pair_state_splits_back_into_its_halves():
    extrinsic, intrinsic = LstmState(torch.ones(2, 3), -torch.ones(2, 3)), LstmState(2 * torch.ones(2, 3),
                                                                                     torch.zeros(2, 3))
    back = split_state(join_state(extrinsic, intrinsic))
    assert all(torch.equal(a, b) for a, b in zip(back[0] + back[1], extrinsic + intrinsic))


def test_each_head_learns_its_own_reward():
    """Both heads zeroed (Q = 0), a one-step sequence that terminates with r_e = 0 and r_i = 2: the
    extrinsic head's target is h(0) = 0, the intrinsic head's h(2) = sqrt(3) - 1 + 0.002 = 0.734051,
    whatever beta_j (here policy 31, beta 0.3)."""
    cfg = make_config({"env_id": ENV_ID, "burn_in": 0, "sequence_length": 2, "sequence_overlap": 1,
                       "lstm_size": 4, "hidden_size": 8})
    learner = Learner(cfg, (16,), 2, torch.device("cpu"), replay=None, counters=RunCounters(1))
    with torch.no_grad():
        for model in (learner.net, learner.target):
            for head in model.heads():
                for layer in (head.value, head.advantage):
                    layer.weight.zero_(), layer.bias.zero_()
    state = LstmState(torch.zeros(1, 8), torch.zeros(1, 8))
    extra = torch.tensor([[[2.0, 0.5, 31.0]], [[0.0, 0.0, 31.0]]])  # [T, B, (r_i, mu, j)]
    batch = DeviceSequences(
        obs=torch.zeros(2, 1, 16), action=torch.zeros(2, 1, dtype=torch.int64), reward=torch.zeros(2, 1),
        discount=torch.zeros(2, 1), mask=torch.tensor([[True], [False]]),
        prev_action=torch.zeros(2, 1, dtype=torch.int64), prev_reward=torch.zeros(2, 1), state=state,
        next_state=state, episode_start=torch.ones(1, dtype=torch.bool), weight=torch.ones(1),
        key=np.zeros(1, np.int64), extra=extra, prev_extra=torch.cat([torch.zeros(1, 1, 3), extra[:-1]]))
    _, priority, (y_e, y_i) = learner.retrace_losses(batch, learner.q_values(batch))
    assert float(y_e[0, 0]) == 0.0
    assert float(y_i[0, 0]) == pytest.approx(math.sqrt(3) - 1 + 0.002, abs=1e-6)
    assert float(priority[0]) == pytest.approx(math.sqrt(3) - 1 + 0.002, abs=1e-6)  # max of the heads' errors
