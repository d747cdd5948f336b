"""Shared RMSProp (Mnih et al. 2016, section 4 "Optimization" and section 8).

    g = alpha * g + (1 - alpha) * grad^2
    theta = theta - lr * grad / sqrt(g + eps)

The statistics g live in shared memory, so every worker both reads and updates the same g, which the
paper found more robust than per-thread statistics. torch.optim.RMSprop puts eps outside the square
root and keeps its state per process, so neither matches; this optimizer is the paper's rule.
Updates are Hogwild: no lock, as in the paper.
"""
from __future__ import annotations

from typing import Iterable

import torch


class SharedRMSprop(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.Tensor], lr: float, alpha: float = 0.99, eps: float = 0.1):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def share_memory(self) -> "SharedRMSprop":
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["square_avg"].share_memory_()
        return self

    def statistics(self) -> list[torch.Tensor]:
        """The shared squared-gradient averages, in parameter order (what a checkpoint keeps)."""
        return [self.state[p]["square_avg"] for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def load_statistics(self, saved: list[torch.Tensor]) -> None:
        """Copies saved averages into the shared tensors in place, so sharing is kept."""
        mine = self.statistics()
        if len(saved) != len(mine) or any(a.shape != b.shape for a, b in zip(saved, mine)):
            raise ValueError("optimizer statistics do not match the network")
        for dst, src in zip(mine, saved):
            dst.copy_(src)

    def set_lr(self, lr: float) -> None:
        for group in self.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One pass of the rule over all parameters at once, with torch's multi-tensor (foreach) kernels."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            square_avgs = [self.state[p]["square_avg"] for p in params]
            torch._foreach_mul_(square_avgs, group["alpha"])
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - group["alpha"])
            steps = torch._foreach_add(square_avgs, group["eps"])
            torch._foreach_rsqrt_(steps)
            torch._foreach_mul_(steps, grads)
            torch._foreach_add_(params, steps, alpha=-group["lr"])
        return None
