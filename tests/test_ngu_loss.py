"""NGU's transformed Retrace (Badia et al. 2020, Appendix E; Munos et al. 2016, equation 3) by hand.

h(x) = sign(x) (sqrt(|x| + 1) - 1) + 0.001 x, so h(3) = 1 + 0.003 = 1.003, h(8) = 2 + 0.008 = 2.008,
h(2) = sqrt(3) - 1 + 0.002 = 0.7340508, and h^-1(h(x)) = x. A sequence of three steps, gamma 0.5,
lambda 0.95:
    t = 0: r = 1, Q(x_1) under pi = h(4):  h(1 + 0.5 * 4) = h(3) = 1.003,  Q(x_0, a_0) = 0.5: delta_0 = 0.503
    t = 1: r = 2, Q(x_2) under pi = h(12): h(2 + 0.5 * 12) = h(8) = 2.008, Q(x_1, a_1) = 2.0: delta_1 = 0.008
    t = 2: terminal, r = 3:                h(3) = 1.003,                   Q(x_2, a_2) = 1.0: delta_2 = 0.003
"""
import math

import pytest
import torch

from ngu.loss import ngu_loss, retrace_targets, retrace_traces
from r2d2.loss import value_rescale

H = lambda x: value_rescale(torch.tensor(float(x))).item()  # noqa: E731


def column(*values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype).unsqueeze(1)  # [T, 1]


def sequence(c1=0.95, c2=0.95, terminal_at=2, mask=(True, True, True)):
    q_a = column(0.5, 2.0, 1.0)
    v_next = column(H(4), H(12), 123.0)  # the last is never read: x_3 is not stored
    r = column(1.0, 2.0, 3.0)
    discount = column(*[0.0 if t == terminal_at else 0.5 for t in range(3)])
    c = column(0.95, c1, c2)
    return retrace_targets(q_a, v_next, r, discount, c, column(*mask, dtype=torch.bool))


def test_the_retrace_target_of_a_short_sequence():
    """A_2 = 0.003; A_1 = 0.008 + 0.5 * 0.95 * 0.003 = 0.009425; A_0 = 0.503 + 0.5 * 0.95 * 0.009425 = 0.5074769."""
    assert H(3) == pytest.approx(1.003) and H(8) == pytest.approx(2.008)
    y, trainable = sequence()
    assert trainable.squeeze(1).tolist() == [True, True, True]
    assert y.squeeze(1).tolist() == pytest.approx([0.5 + 0.507476875, 2.0 + 0.009425, 1.003], abs=2e-5)  # float32 h and h^-1


def test_an_off_policy_action_cuts_the_trace():
    """c_1 = 0 (a_1 was not the greedy action): A_0 = delta_0 alone, y_0 = 1.003; later steps are unchanged."""
    y, _ = sequence(c1=0.0)
    assert y.squeeze(1).tolist() == pytest.approx([1.003, 2.009425, 1.003], abs=2e-5)  # float32 h and h^-1


def test_an_episode_end_inside_the_sequence_stops_bootstrap_and_trace():
    """Step 1 terminal, step 2 padding: delta_1 = h(2) - 2.0 = -1.2659492; A_0 = 0.503 + 0.475 * delta_1."""
    y, trainable = sequence(terminal_at=1, mask=(True, True, False))
    delta_1 = math.sqrt(3) - 1 + 0.002 - 2.0
    assert trainable.squeeze(1).tolist() == [True, True, False]
    assert y.squeeze(1).tolist()[:2] == pytest.approx([0.5 + 0.503 + 0.475 * delta_1, 2.0 + delta_1], abs=2e-5)  # float32 h and h^-1


def test_the_last_stored_step_trains_only_when_it_terminates():
    _, trainable = sequence(terminal_at=-1)
    assert trainable.squeeze(1).tolist() == [True, True, False]


def test_traces_are_lambda_times_the_clipped_ratio():
    pi = torch.tensor([[1.0], [0.0], [1.0]])
    mu = torch.tensor([[0.25], [0.5], [1.0]])
    assert retrace_traces(pi, mu, 0.95).squeeze(1).tolist() == pytest.approx([0.95, 0.0, 0.95])


def test_the_loss_is_half_the_squared_error_over_trained_steps_after_burn_in():
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]], requires_grad=True)
    y = torch.tensor([[2.0, 1.0], [4.0, 3.0], [9.0, 9.0]])
    trainable = torch.tensor([[True, True], [True, True], [False, True]])
    loss, priority = ngu_loss(q, y, trainable, torch.tensor([1.0, 0.5]), torch.tensor([1, 0]))
    # sequence 0 trains step 1 only (burn-in 1, step 2 untrainable): 0.5 * 2^2 = 2; sequence 1: steps 0-2,
    # 0.5 * (1 + 9 + 81) / 3 = 15.1667, weighted 0.5 -> 7.5833; the mean over sequences: (2 + 7.5833) / 2
    assert loss.item() == pytest.approx((2.0 + 0.5 * 0.5 * 91 / 3) / 2)
    assert priority.tolist() == pytest.approx([2.0, 0.9 * 9 + 0.1 * 13 / 3])
