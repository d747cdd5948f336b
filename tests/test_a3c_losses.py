"""Hand-computed targets and losses of the asynchronous methods."""
import math

import numpy as np
import pytest
import torch

from a3c import loss as L
from a3c import schedules as S


def t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def test_nstep_returns_bootstrap_from_last_state():
    # gamma 0.9, rewards 1, 0, 2, bootstrap V(s_3) = 10:
    # G_2 = 2 + 0.9 * 10 = 11;  G_1 = 0 + 0.9 * 11 = 9.9;  G_0 = 1 + 0.9 * 9.9 = 9.91
    returns = L.nstep_returns(t([1.0, 0.0, 2.0]), t([0.9, 0.9, 0.9]), t(10.0))
    assert returns.tolist() == pytest.approx([9.91, 9.9, 11.0])


def test_nstep_returns_terminal_inside_window_cuts_bootstrap():
    # the episode ends at step 1 (discount 0): G_1 = r_1 = 3 whatever follows; G_0 = 1 + 0.5 * 3 = 2.5;
    # step 2 belongs to the next episode: G_2 = 4 + 0.5 * 100 = 54
    returns = L.nstep_returns(t([1.0, 3.0, 4.0]), t([0.5, 0.0, 0.5]), t(100.0))
    assert returns.tolist() == pytest.approx([2.5, 3.0, 54.0])


def test_a3c_loss_matches_hand_computation():
    # one step, two actions, logits (0, ln 3): pi = (1/4, 3/4); action 1 taken; V = 1, G = 3, advantage 2
    logits = t([[0.0, math.log(3.0)]])
    loss = L.a3c_loss(logits, t([1.0]), t([1], torch.int64), t([3.0]), entropy_coef=0.1, value_coef=0.5)
    assert loss.policy.item() == pytest.approx(-math.log(0.75) * 2.0)
    assert loss.value.item() == pytest.approx(0.5 * 4.0)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert loss.entropy.item() == pytest.approx(entropy)
    assert loss.total.item() == pytest.approx(-math.log(0.75) * 2.0 + 0.5 * 2.0 - 0.1 * entropy)


def test_a3c_policy_gradient_does_not_flow_into_the_value_through_the_advantage():
    values = t([1.0]).requires_grad_()
    logits = t([[0.0, 0.0]]).requires_grad_()
    loss = L.a3c_loss(logits, values, t([0], torch.int64), t([3.0]), entropy_coef=0.0, value_coef=0.0)
    loss.total.backward()
    assert values.grad.item() == 0.0
    # d/dlogit_0 of -log pi(0) * A with pi = (1/2, 1/2), A = 2: -(1 - 1/2) * 2 = -1
    assert logits.grad[0].tolist() == pytest.approx([-1.0, 1.0])


def test_one_step_q_and_sarsa_targets():
    q_next = t([[1.0, 5.0], [2.0, -1.0]])
    rewards, discounts = t([1.0, 2.0]), t([0.9, 0.0])
    # Q: 1 + 0.9 * max(1, 5) = 5.5; terminal: 2
    assert L.q_learning_targets(rewards, discounts, q_next).tolist() == pytest.approx([5.5, 2.0])
    # SARSA with next actions (0, 1): 1 + 0.9 * 1 = 1.9; terminal: 2
    next_actions = t([0, 1], torch.int64)
    assert L.sarsa_targets(rewards, discounts, q_next, next_actions).tolist() == pytest.approx([1.9, 2.0])


def test_q_loss_is_half_squared_error_on_taken_actions():
    q = t([[1.0, 2.0], [3.0, 4.0]])
    # (0.5 * (4 - 2)^2) + (0.5 * (2 - 3)^2) = 2 + 0.5
    assert L.q_loss(q, t([1, 0], torch.int64), t([4.0, 2.0])).item() == pytest.approx(2.5)


def test_epsilon_schedule():
    assert S.epsilon(0, 0.1, 1000) == 1.0
    assert S.epsilon(500, 0.1, 1000) == pytest.approx(0.55)
    assert S.epsilon(1000, 0.1, 1000) == pytest.approx(0.1)
    assert S.epsilon(10**9, 0.01, 1000) == pytest.approx(0.01)


def test_each_workers_final_epsilon_has_the_paper_probabilities():
    # worker 0 of 2 and worker 2 of 16, over 20,000 runs: 0.1, 0.01, 0.5 with 0.4, 0.3, 0.3
    for workers, rank in ((2, 0), (16, 2)):
        rng = np.random.default_rng(0)
        draws = np.array([S.sample_final_epsilons(workers, rng)[rank] for _ in range(20_000)])
        for value, prob in zip(S.FINAL_EPSILONS, S.FINAL_EPSILON_PROBS):
            assert np.mean(draws == value) == pytest.approx(prob, abs=0.015)


def test_final_epsilons_cover_the_distribution_evenly():
    rng = np.random.default_rng(1)
    for _ in range(1000):
        two = S.sample_final_epsilons(2, rng)
        assert two != [0.01, 0.01] and two != [0.5, 0.5]  # strata [0, 0.5) and [0.5, 1)
        ten = S.sample_final_epsilons(10, rng)
        # 4 of the 10 strata lie wholly below 0.4, and so on: counts 4, 3, 3 up to one boundary stratum
        counts = [ten.count(value) for value in S.FINAL_EPSILONS]
        assert abs(counts[0] - 4) <= 1 and abs(counts[1] - 3) <= 1 and abs(counts[2] - 3) <= 1 and sum(counts) == 10


def test_learning_rate_anneals_linearly_to_zero():
    assert S.annealed_lr(1e-3, 0, 100) == pytest.approx(1e-3)
    assert S.annealed_lr(1e-3, 25, 100) == pytest.approx(7.5e-4)
    assert S.annealed_lr(1e-3, 150, 100) == 0.0


def test_sample_categorical_draws_from_the_softmax():
    from a3c.worker import sample_categorical

    torch.manual_seed(0)
    probs = [0.5, 0.3, 0.15, 0.05]
    logits = torch.log(t(probs)) + 7.0  # softmax ignores a constant shift
    draws = [sample_categorical(logits) for _ in range(20_000)]
    # binomial standard error of a frequency of 0.5 over 20,000 draws is 0.0035
    assert (np.bincount(draws, minlength=4) / 20_000).tolist() == pytest.approx(probs, abs=0.015)
