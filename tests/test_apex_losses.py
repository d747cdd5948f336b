"""Hand-computed truths of Ape-X's parts: targets, loss, dueling head and n-step buffer."""
import pytest
import torch

from apex.actor import NStepBuffer, NStepTransition
from apex.loss import double_q_nstep_loss, nstep_q_target
from apex.network import QNetwork
from common.networks import dueling_aggregate


def test_double_q_nstep_target_by_hand():
    # gamma 0.9, n 3. Item 0: rewards 1, 0, 2 -> r = 1 + 0.9 * 0 + 0.81 * 2 = 2.62, discount 0.729.
    #   online Q(o_{t+3}) = [3, 2] picks action 0; the target values it at 1: y = 2.62 + 0.729 * 1 = 3.349.
    #   Plain DQN takes the target's max, 5: y = 2.62 + 0.729 * 5 = 6.265.
    # Item 1: rewards 1, 1, then the episode terminated inside the window: r = 1 + 0.9 = 1.9,
    #   discount 0, so y = 1.9 whatever the Q-values say.
    r_t = torch.tensor([2.62, 1.9])
    discount_t = torch.tensor([0.729, 0.0])
    q_t_target = torch.tensor([[1.0, 5.0], [100.0, -100.0]])
    q_t_online = torch.tensor([[3.0, 2.0], [-7.0, 7.0]])
    double = nstep_q_target(r_t, discount_t, q_t_target, q_t_online)
    assert double.tolist() == pytest.approx([3.349, 1.9])
    plain = nstep_q_target(r_t, discount_t, q_t_target, q_t_target)
    assert plain.tolist() == pytest.approx([6.265, 1.9])


def test_importance_weighted_huber_loss_and_priorities():
    # Q(o_t, a_t) = 2.5 (item 0, action 1) and -1 (item 1, action 0); targets y = 3 and 2 (discount 0).
    # td = 0.5 -> huber 0.5 * 0.5^2 = 0.125; td = 3 -> huber 3 - 0.5 = 2.5.
    # Weights 1 and 0.5: loss = (1 * 0.125 + 0.5 * 2.5) / 2 = 0.6875; priorities |td| = 0.5, 3.
    q_tm1 = torch.tensor([[9.0, 2.5], [-1.0, 9.0]], requires_grad=True)
    a_tm1 = torch.tensor([1, 0])
    zeros = torch.zeros(2, 2)
    loss, abs_td = double_q_nstep_loss(q_tm1, a_tm1, torch.tensor([3.0, 2.0]), torch.zeros(2), zeros, zeros,
                                       torch.tensor([1.0, 0.5]))
    assert loss.item() == pytest.approx(0.6875)
    assert abs_td.tolist() == pytest.approx([0.5, 3.0])
    loss.backward()
    # d loss / d q: item 0: -td * w / B = -0.5 / 2; item 1: clipped to -1 * 0.5 / 2; others untouched.
    assert q_tm1.grad.flatten().tolist() == pytest.approx([0.0, -0.25, -0.25, 0.0])


def test_dueling_aggregation_by_hand():
    # V = 2, A = [1, 2, 6], mean A = 3: Q = 2 + A - 3 = [0, 1, 5].
    assert dueling_aggregate(torch.tensor([[2.0]]), torch.tensor([[1.0, 2.0, 6.0]])).tolist() == [[0.0, 1.0, 5.0]]
    net = QNetwork((4,), 3, 8, dueling=True)
    obs = torch.randn(5, 4)
    before = net(obs)
    with torch.no_grad():
        net.head.bias += 10.0  # a constant added to every advantage leaves Q unchanged
        net.value.bias += 1.0  # while V moves every Q by the same amount
    assert torch.allclose(net(obs), before + 1.0, atol=1e-5)


def test_nstep_buffer_across_episode_ends():
    # gamma 0.5, n 3. Episode 1: o_0..o_3 at steps 0..3, rewards 1, 2, 3, 4, terminated after o_3.
    buffer = NStepBuffer(3, 0.5)
    q_taken = [0.5, 0.5, 0.5, 1.0]
    emitted = []
    for t, reward in enumerate([1.0, 2.0, 3.0]):
        emitted += buffer.pop_ready(t, next_value=99.0)
        buffer.append(t, t % 2, reward, q_taken[t])
    # At o_3 the window of o_0 is full: r = 1 + 0.5 * 2 + 0.25 * 3 = 2.75, discount 0.125,
    # bootstrap max Q(o_3) = 4: priority |2.75 + 0.125 * 4 - 0.5| = 2.75.
    emitted += buffer.pop_ready(3, next_value=4.0)
    assert emitted == [NStepTransition(0, 0, 2.75, 0.125, 3, 2.75)]
    buffer.append(3, 1, 4.0, q_taken[3])
    # Terminal after step 3 (final observation at step 4): no bootstrap, windows cut short.
    # From o_1: 2 + 0.5 * 3 + 0.25 * 4 = 4.5; from o_2: 3 + 0.5 * 4 = 5; from o_3: 4.
    assert buffer.flush(4, final_value=123.0, terminated=True) == [
        NStepTransition(1, 1, 4.5, 0.0, 4, 4.0), NStepTransition(2, 0, 5.0, 0.0, 4, 4.5),
        NStepTransition(3, 1, 4.0, 0.0, 4, 3.0)]
    # Episode 2 (steps 5, 6) is truncated after two steps: bootstrap from the final observation (value 2).
    buffer.append(5, 0, 1.0, 0.0)
    assert buffer.pop_ready(6, next_value=0.0) == []
    buffer.append(6, 1, 1.0, 0.0)
    # From o_5: r = 1 + 0.5 = 1.5, discount 0.25, priority 1.5 + 0.5 = 2; from o_6: 1, 0.5, 1 + 1 = 2.
    assert buffer.flush(7, final_value=2.0, terminated=False) == [
        NStepTransition(5, 0, 1.5, 0.25, 7, 2.0), NStepTransition(6, 1, 1.0, 0.5, 7, 2.0)]
    assert not buffer.pending
