"""R2D2's loss by hand: value rescaling, the priority mix, n-step windows inside sequences, burn-in."""
import math

import numpy as np
import pytest
import torch

from r2d2.loss import priority_mix, r2d2_loss, sequence_nstep, value_rescale, value_rescale_inv


def test_value_rescale_by_hand():
    # h(3) = (sqrt(4) - 1) + 0.003; h(-8) = -(sqrt(9) - 1) - 0.008; h(99) = (sqrt(100) - 1) + 0.099
    x = torch.tensor([0.0, 3.0, -8.0, 99.0], dtype=torch.float64)
    assert value_rescale(x).tolist() == pytest.approx([0.0, 1.003, -2.008, 9.099], abs=1e-12)
    assert value_rescale_inv(torch.tensor([1.003, -2.008, 9.099], dtype=torch.float64)).tolist() == \
        pytest.approx([3.0, -8.0, 99.0], abs=1e-9)


def test_value_rescale_inverse_round_trip():
    x = torch.cat([torch.logspace(-6, 5, 200, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    x = torch.cat([x, -x])
    assert torch.allclose(value_rescale_inv(value_rescale(x)), x, rtol=1e-9, atol=1e-9)
    assert torch.allclose(value_rescale(value_rescale_inv(x)), x, rtol=1e-9, atol=1e-9)


def test_priority_mix_over_valid_steps_only():
    # sequence 0: |td| 1, 3, 2 -> 0.9 * 3 + 0.1 * 2 = 2.9
    # sequence 1: the 5 is masked, 1 and 1 remain -> 0.9 * 1 + 0.1 * 1 = 1.0; sequence 2: nothing valid -> 0
    abs_td = torch.tensor([[1.0, 5.0, 7.0], [3.0, 1.0, 7.0], [2.0, 1.0, 7.0]])
    valid = torch.tensor([[True, False, False], [True, True, False], [True, True, False]])
    assert priority_mix(abs_td, valid, eta=0.9).tolist() == pytest.approx([2.9, 1.0, 0.0])


def test_nstep_windows_with_a_terminal_a_truncation_and_the_sequence_end():
    # n = 3, gamma = 0.5, T = 6. Columns: (a) terminates after step 3 (discount 0) then pads;
    # (b) is truncated after step 3 (discount still gamma, next observation not stored) then pads;
    # (c) fills the sequence without an episode end.
    gamma, n = 0.5, 3
    r = torch.tensor([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [3.0, 1.0, 1.0], [4.0, 1.0, 1.0], [0.0, 0.0, 1.0],
                      [0.0, 0.0, 1.0]])
    d = torch.tensor([[gamma] * 3, [gamma] * 3, [gamma] * 3, [0.0, gamma, gamma], [0.0, 0.0, gamma],
                      [0.0, 0.0, gamma]])
    mask = torch.tensor([[True] * 3] * 4 + [[False, False, True]] * 2)
    out = sequence_nstep(r, d, mask, n)
    # (a) t0: 1 + .5*2 + .25*3 = 2.75, bootstrap 3 with .125; t1: 2 + .5*3 + .25*4 = 4.5, terminal in the
    #     window -> discount 0; t2: 3 + .5*4 = 5; t3: 4 (the terminal step trains on its reward alone).
    assert out.reward_n[:4, 0].tolist() == pytest.approx([2.75, 4.5, 5.0, 4.0])
    assert out.discount_n[:4, 0].tolist() == pytest.approx([0.125, 0.0, 0.0, 0.0])
    assert out.trainable[:, 0].tolist() == [True, True, True, True, False, False]
    # (b) only t0 has its bootstrap observation (step 3) stored: 1 + .5 + .25 = 1.75, discount .125
    assert out.reward_n[0, 1].item() == pytest.approx(1.75) and out.discount_n[0, 1].item() == pytest.approx(0.125)
    assert out.trainable[:, 1].tolist() == [True, False, False, False, False, False]
    # (c) windows are cut at the last stored step 5: t3 -> 1 + .5 = 1.5 with .25; t4 -> 1 with .5;
    #     t5 has nothing stored after it.
    assert out.bootstrap.tolist() == [3, 4, 5, 5, 5, 6]
    assert out.reward_n[3:5, 2].tolist() == pytest.approx([1.5, 1.0])
    assert out.discount_n[3:5, 2].tolist() == pytest.approx([0.25, 0.5])
    assert out.trainable[:, 2].tolist() == [True] * 5 + [False]


def loss_inputs():
    """T = 3, B = 1, A = 2, n = 2, gamma = 0.5, no episode end."""
    h4, h8 = value_rescale(torch.tensor(4.0)).item(), value_rescale(torch.tensor(8.0)).item()
    q_target = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]], [[h4, h8]]])
    q_selector = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    # y_0 = h(1 + .5 * 2 + .25 * 4) = h(3) = 1.003; y_1 = h(2 + .5 * 4) = h(4). The online net picks
    # action 0 at step 2, whose target value is 4, not the target net's max 8 (double Q).
    q_tm1 = torch.tensor([[[1.003 - 0.5, 9.0]], [[9.0, h4 - 1.0]], [[0.0, 0.0]]], requires_grad=True)
    return dict(q_tm1=q_tm1, a_tm1=torch.tensor([[0], [1], [0]]), r_t=torch.tensor([[1.0], [2.0], [0.0]]),
                discount_t=torch.tensor([[0.5], [0.5], [0.5]]), mask=torch.tensor([[True], [True], [True]]),
                q_target=q_target, q_selector=q_selector,
                weight=torch.tensor([2.0]), n=2)


def test_loss_and_priority_by_hand():
    # td_0 = 0.5, td_1 = 1 (its window is cut at the last stored step); step 2 has no stored successor.
    # loss = 2 * 0.5 * (0.25 + 1) / 2 = 0.625; priority = 0.9 * 1 + 0.1 * 0.75 = 0.975
    inputs = loss_inputs()
    loss, priority = r2d2_loss(**inputs, burn_in=torch.tensor([0]))
    assert loss.item() == pytest.approx(0.625, rel=1e-5)
    assert priority.tolist() == pytest.approx([0.975], rel=1e-5)
    loss.backward()
    # d loss / d q = -weight * td / trained steps: -2 * 0.5 / 2 and -2 * 1 / 2
    grad = inputs["q_tm1"].grad[:, 0].flatten()
    assert grad.tolist() == pytest.approx([-0.5, 0.0, 0.0, -1.0, 0.0, 0.0], abs=1e-5)


def test_burn_in_steps_are_excluded_from_loss_and_priority():
    # burn_in 1: only step 1 trains: loss = 2 * 0.5 * 1 = 1, priority 0.9 + 0.1 = 1; no gradient at step 0.
    inputs = loss_inputs()
    loss, priority = r2d2_loss(**inputs, burn_in=torch.tensor([1]))
    assert loss.item() == pytest.approx(1.0, rel=1e-5) and priority.tolist() == pytest.approx([1.0], rel=1e-5)
    loss.backward()
    assert inputs["q_tm1"].grad[0].abs().sum().item() == 0.0
    # whatever the burn-in steps' Q-values are, the loss is the same
    changed = loss_inputs()
    changed["q_tm1"] = changed["q_tm1"].detach().clone()
    changed["q_tm1"][0] = 1000.0
    assert r2d2_loss(**changed, burn_in=torch.tensor([1]))[0].item() == pytest.approx(1.0, rel=1e-5)


def test_priority_floor_for_a_sequence_with_nothing_to_train():
    inputs = loss_inputs()
    _, priority = r2d2_loss(**inputs, burn_in=torch.tensor([3]))
    assert 0 < priority.item() < 1e-5 and math.isfinite(priority.item())


def test_nstep_windows_match_a_step_by_step_reading_of_the_definition():
    # Random sequences (a real prefix, optionally ending in a terminal, then padding) against loops.
    rng = np.random.default_rng(0)
    steps, batch, n = 9, 64, 4
    count = rng.integers(0, steps + 1, batch)
    mask = np.arange(steps)[:, None] < count[None]
    reward = np.where(mask, rng.normal(size=(steps, batch)), 0.0)
    discount = np.where(mask, 0.9, 0.0)
    ends = (count > 0) & (count < steps) & (rng.random(batch) < 0.5)
    discount[count[ends] - 1, np.flatnonzero(ends)] = 0.0
    out = sequence_nstep(torch.tensor(reward), torch.tensor(discount), torch.tensor(mask), n)
    for b in range(batch):
        for t in range(steps):
            end = min(t + n, steps - 1) if t < steps - 1 else steps
            total, product, terminated = 0.0, 1.0, False
            for j in range(t, end):
                total += product * reward[j, b]
                terminated |= bool(mask[j, b] and discount[j, b] == 0)
                product *= discount[j, b]
            stored = end < steps and mask[end, b]
            assert out.trainable[t, b].item() == bool(mask[t, b] and (stored or terminated))
            if out.trainable[t, b]:
                assert out.reward_n[t, b].item() == pytest.approx(total)
                assert out.discount_n[t, b].item() == pytest.approx(0.0 if terminated else product)
