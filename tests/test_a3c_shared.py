"""The shared RMSProp follows the paper's rule, and model and statistics really are shared."""
import math

import pytest
import torch
from torch import nn

from a3c.config import make_config
from a3c.optim import SharedAdam, SharedRMSprop
from a3c.train import build_shared
from common.supervisor import CTX


def test_rmsprop_step_matches_hand_computation():
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SharedRMSprop([w], lr=0.1, alpha=0.9, eps=0.1)
    w.grad = torch.tensor([2.0, 0.0])
    opt.step()
    # g = 0.9 * 0 + 0.1 * grad^2 = (0.4, 0); w -= 0.1 * grad / sqrt(g + 0.1) = 0.2 / sqrt(0.5)
    assert opt.statistics()[0].tolist() == pytest.approx([0.4, 0.0])
    assert w.tolist() == pytest.approx([1.0 - 0.2 / math.sqrt(0.5), -2.0])
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    # g = 0.9 * (0.4, 0) + 0.1 * (1, 1) = (0.46, 0.1)
    assert opt.statistics()[0].tolist() == pytest.approx([0.46, 0.1])
    assert w.tolist() == pytest.approx([1.0 - 0.2 / math.sqrt(0.5) - 0.1 / math.sqrt(0.56),
                                        -2.0 - 0.1 / math.sqrt(0.2)])


def test_rmsprop_clips_the_total_gradient_norm_first():
    w = nn.Parameter(torch.tensor([0.0, 0.0]))
    b = nn.Parameter(torch.tensor([0.0]))
    opt = SharedRMSprop([w, b], lr=0.1, alpha=0.9, eps=0.1, max_grad_norm=1.0)
    w.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    opt.step()
    # total norm 5 -> gradients scaled by 1/5: (0.6, 0), (0.8); g = 0.1 * grad^2 = (0.036, 0), (0.064)
    assert opt.statistics()[0].tolist() == pytest.approx([0.036, 0.0])
    assert opt.statistics()[1].tolist() == pytest.approx([0.064])
    assert w.tolist() == pytest.approx([-0.1 * 0.6 / math.sqrt(0.136), 0.0])
    assert b.tolist() == pytest.approx([-0.1 * 0.8 / math.sqrt(0.164)])
    # under the limit nothing is scaled: norm 0.5
    w.grad, b.grad = torch.tensor([0.3, 0.0]), torch.tensor([0.4])
    opt.step()
    assert opt.statistics()[1].tolist() == pytest.approx([0.9 * 0.064 + 0.1 * 0.16])


def test_a_clip_of_zero_applies_the_whole_gradient():
    w = nn.Parameter(torch.tensor([0.0]))
    b = nn.Parameter(torch.tensor([0.0]))
    opt = SharedRMSprop([w, b], lr=0.1, alpha=0.9, eps=0.1, max_grad_norm=0.0)
    w.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    opt.step()
    # unscaled: g = 0.1 * grad^2 = 0.9, 1.6
    assert [t.item() for t in opt.statistics()] == pytest.approx([0.9, 1.6])
    assert (w.item(), b.item()) == pytest.approx((-0.1 * 3.0 / math.sqrt(1.0), -0.1 * 4.0 / math.sqrt(1.7)))


def test_rmsprop_on_a_channels_last_weight_matches_the_rule_elementwise():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last))
    grads = [torch.randn(8, 4, 3, 3), torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)]
    square_avg, expected = torch.zeros(8, 4, 3, 3), w.detach().clone()
    for grad in grads:
        square_avg = 0.9 * square_avg + 0.1 * grad * grad
        expected -= 0.01 * grad / torch.sqrt(square_avg + 0.1)
    opt = SharedRMSprop([w], lr=0.01, alpha=0.9, eps=0.1)
    for grad in grads:  # an NCHW and an NHWC gradient on an NHWC weight
        w.grad = grad
        opt.step()
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(opt.statistics()[0], square_avg, atol=1e-6)
    assert torch.allclose(w.detach(), expected, atol=1e-6)


def _step_in_child(shared, done):
    model = shared.model
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    shared.optimizer.step()
    shared.counters.steps[0] += 7
    done.set()


def test_a_step_in_one_process_is_seen_in_another():
    cfg = make_config({"algo": "nstep-q", "env_id": "CartPole-v1"})
    shared = build_shared(cfg, (4,), 2)
    before = [p.detach().clone() for p in shared.model.parameters()]
    shared.optimizer._views()  # the parent's numpy views must not travel: pickled, they would be copies
    done = CTX.Event()
    child = CTX.Process(target=_step_in_child, args=(shared, done))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and done.is_set()
    # the parent sees the child's parameter update, its RMSProp statistics and its counter
    for p, old in zip(shared.model.parameters(), before):
        assert not torch.equal(p, old)
    # all-ones gradients have total norm sqrt(n), clipped to max_grad_norm: each becomes c
    n = sum(p.numel() for p in shared.model.parameters())
    c = min(1.0, cfg.max_grad_norm / math.sqrt(n))
    for stat in shared.optimizer.statistics():
        assert torch.allclose(stat, torch.full_like(stat, (1.0 - cfg.rmsprop_alpha) * c * c))
    assert shared.counters.total_steps() == 7
    # the optimizer in the child stepped the very tensors of the shared model
    expected = before[0] - cfg.lr * c / math.sqrt((1.0 - cfg.rmsprop_alpha) * c * c + cfg.rmsprop_eps)
    assert torch.allclose(next(shared.model.parameters()), expected)


def test_load_statistics_keeps_sharing():
    w = nn.Parameter(torch.zeros(3))
    opt = SharedRMSprop([w], lr=0.1).share_memory()
    stat = opt.statistics()[0]
    opt.load_statistics([torch.tensor([1.0, 2.0, 3.0])])
    assert opt.statistics()[0] is stat and stat.is_shared()
    assert stat.tolist() == [1.0, 2.0, 3.0]


def test_rmsprop_leaves_a_parameter_without_gradient_alone():
    w, b = nn.Parameter(torch.tensor([1.0])), nn.Parameter(torch.tensor([5.0]))
    opt = SharedRMSprop([w, b], lr=0.1, alpha=0.9, eps=0.1, max_grad_norm=1.0)
    b.grad = torch.tensor([3.0])
    opt.step()
    # only b's gradient counts towards the clip: norm 3 -> 1; g_b = 0.1 * 1 = 0.1; b -= 0.1 * 1 / sqrt(0.2)
    assert w.tolist() == [1.0] and opt.statistics()[0].tolist() == [0.0]
    assert opt.statistics()[1].tolist() == pytest.approx([0.1])
    assert b.tolist() == pytest.approx([5.0 - 0.1 / math.sqrt(0.2)])


def test_adam_step_matches_hand_computation():
    """Kingma & Ba 2015, Algorithm 1, with beta1 0.9, beta2 0.999, eps 1e-8."""
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SharedAdam([w], lr=0.1)
    w.grad = torch.tensor([2.0, 0.0])
    opt.step()
    # t = 1: m = 0.1 * 2 = 0.2, v = 0.001 * 4 = 0.004; m / 0.1 = 2, v / 0.001 = 4: w0 -= 0.1 * 2 / 2
    # a zero gradient leaves w1 alone (m = v = 0)
    assert w.tolist() == pytest.approx([0.9, -2.0])
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    # t = 2: m = 0.9 * 0.2 + 0.1 = 0.28, v = 0.999 * 0.004 + 0.001 = 0.004996;
    #   1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999: w0 -= 0.1 * (0.28 / 0.19) / sqrt(0.004996 / 0.001999)
    # w1: m = 0.1, v = 0.001: w1 -= 0.1 * (0.1 / 0.19) / sqrt(0.001 / 0.001999)
    assert w.tolist() == pytest.approx([0.9 - 0.093218, -2.0 - 0.074413], abs=1e-5)
    m, v, t = opt.statistics()
    assert m.tolist() == pytest.approx([0.28, 0.1], rel=1e-4) and v.tolist() == pytest.approx([0.004996, 0.001], rel=1e-4)
    assert t.tolist() == [2]


def test_adam_first_step_is_lr_per_parameter_whatever_the_gradient_scale():
    """With bias correction Adam's first step moves each parameter by lr, where RMSProp with a small eps
    and g starting at 0 moves it by lr / sqrt(1 - alpha) = 10 lr."""
    for scale in (1e-3, 1.0, 1e3):  # well above Adam's eps of 1e-8
        w, r = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(3))
        adam, rmsprop = SharedAdam([w], lr=1e-3), SharedRMSprop([r], lr=1e-3, alpha=0.99, eps=1e-16)
        w.grad = r.grad = torch.tensor([scale, -scale, 2 * scale])
        adam.step()
        rmsprop.step()
        assert w.tolist() == pytest.approx([-1e-3, 1e-3, -1e-3], rel=1e-3)
        assert r.tolist() == pytest.approx([-1e-2, 1e-2, -1e-2], rel=1e-3)


def test_adam_statistics_round_trip_through_load_statistics():
    w = nn.Parameter(torch.zeros(2))
    opt = SharedAdam([w], lr=0.1).share_memory()
    w.grad = torch.tensor([1.0, 2.0])
    opt.step()
    saved = [t.clone() for t in opt.statistics()]
    other = SharedAdam([nn.Parameter(torch.zeros(2))], lr=0.1).share_memory()
    other.load_statistics(saved)
    assert all(torch.equal(a, b) for a, b in zip(other.statistics(), saved))
    assert all(t.is_shared() for t in other.statistics())
    with pytest.raises(ValueError):
        SharedRMSprop([nn.Parameter(torch.zeros(2))], lr=0.1).load_statistics(saved)


def test_rmsprop_from_an_initial_g_of_one_starts_as_sgd():
    """TensorFlow's RMSProp (OpenAI baselines' A2C) starts g at 1: g = 0.9 * 1 + 0.1 * 2^2 = 1.3."""
    w = nn.Parameter(torch.tensor([1.0]))
    opt = SharedRMSprop([w], lr=0.1, alpha=0.9, eps=1e-5, initial_g=1.0)
    w.grad = torch.tensor([2.0])
    opt.step()
    assert opt.statistics()[0].tolist() == pytest.approx([1.3])
    assert w.tolist() == pytest.approx([1.0 - 0.1 * 2.0 / math.sqrt(1.3 + 1e-5)])
