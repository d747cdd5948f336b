"""The shared RMSProp follows the paper's rule, and model and statistics really are shared."""
import math

import pytest
import torch
from torch import nn

from a3c.config import make_config
from a3c.optim import SharedRMSprop
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
    done = CTX.Event()
    child = CTX.Process(target=_step_in_child, args=(shared, done))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and done.is_set()
    # the parent sees the child's parameter update, its RMSProp statistics and its counter
    for p, old in zip(shared.model.parameters(), before):
        assert not torch.equal(p, old)
    for stat in shared.optimizer.statistics():
        assert torch.allclose(stat, torch.full_like(stat, 1.0 - cfg.rmsprop_alpha))
    assert shared.counters.total_steps() == 7
    # the optimizer in the child stepped the very tensors of the shared model
    expected = before[0] - cfg.lr / math.sqrt(1.0 - cfg.rmsprop_alpha + cfg.rmsprop_eps)
    assert torch.allclose(next(shared.model.parameters()), expected)


def test_load_statistics_keeps_sharing():
    w = nn.Parameter(torch.zeros(3))
    opt = SharedRMSprop([w], lr=0.1).share_memory()
    stat = opt.statistics()[0]
    opt.load_statistics([torch.tensor([1.0, 2.0, 3.0])])
    assert opt.statistics()[0] is stat and stat.is_shared()
    assert stat.tolist() == [1.0, 2.0, 3.0]
