"""Shared RMSProp (Mnih et al. 2016, section 4 "Optimization" and section 8).

    g = alpha * g + (1 - alpha) * grad^2
    theta = theta - lr * grad / sqrt(g + eps)

The statistics g live in shared memory, so every worker both reads and updates the same g, which the
paper found more robust than per-thread statistics. torch.optim.RMSprop puts eps outside the square
root and keeps its state per process, so neither matches; this optimizer is the paper's rule.
Updates are Hogwild: no lock, as in the paper.

The whole step is one numba call over all parameters: one pass over the gradients for their total
norm (the clip), then one loop per parameter that reads grad, g and theta once and writes g and theta
once, with the clip folded in as a scale on grad. Written with torch's multi-tensor ops it took six
passes over the 2.6 MB fully connected layer of the Atari network, plus two to clip: on a one-core
worker that memory traffic was a tenth of each step's time. One call instead of a norm and a call per
parameter also saves the Python overhead that dominated the step of a small network.
"""
from __future__ import annotations

from typing import Iterable

import numba
import numpy as np
import torch


@numba.njit(fastmath=True, error_model="numpy", nogil=True, cache=True)
def _rmsprop_rules(params, grads, square_avgs, lr: np.float32, alpha: np.float32, eps: np.float32,
                   max_norm: np.float64) -> None:
    """In place, over equal-length tuples of 1-D float32 views: grads scaled down to a total norm of
    max_norm (if max_norm > 0) as clip_grad_norm_ does, then the rule above, elementwise."""
    total = 0.0
    for grad in grads:
        for i in range(grad.size):
            total += np.float64(grad[i]) * grad[i]
    scale = np.float32(1.0)
    if max_norm > 0.0:
        scale = np.float32(min(1.0, max_norm / (np.sqrt(total) + 1e-6)))  # clip_grad_norm_'s coefficient
    one_minus_alpha = np.float32(1.0) - alpha
    for k in range(len(params)):
        param, grad, square_avg = params[k], grads[k], square_avgs[k]
        for i in range(param.size):
            g = grad[i] * scale
            s = alpha * square_avg[i] + one_minus_alpha * g * g
            square_avg[i] = s
            param[i] -= lr * g / np.sqrt(s + eps)


def _flat(tensor: torch.Tensor) -> np.ndarray:
    """A 1-D numpy view of a dense tensor's memory in storage order (channels-last weights too)."""
    if tensor.is_contiguous():  # the common case, and the cheaper view
        return tensor.detach().numpy().reshape(-1)
    return tensor.detach().as_strided((tensor.numel(),), (1,)).numpy()


class SharedRMSprop(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.Tensor], lr: float, alpha: float = 0.99, eps: float = 0.1,
                 max_grad_norm: float | None = None):
        """max_grad_norm: scale the gradients down to this total norm first, as clip_grad_norm_ does (the
        norm of each param group's gradients; the workers use one group)."""
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))
        self.max_grad_norm = max_grad_norm
        self._flat_views: list[list[tuple[np.ndarray, np.ndarray]]] | None = None
        for group in self.param_groups:
            for p in group["params"]:
                if p.dtype != torch.float32 or not (p.is_contiguous() or
                                                    p.is_contiguous(memory_format=torch.channels_last)):
                    raise ValueError("SharedRMSprop needs dense float32 parameters")
                self.state[p]["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def __setstate__(self, state: dict) -> None:  # unpickled in a worker: the attributes __getstate__ drops
        super().__setstate__(state)
        self.max_grad_norm = state.get("max_grad_norm")
        self._flat_views = None

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "max_grad_norm": self.max_grad_norm}

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
        """Applies each parameter's .grad (clipped to max_grad_norm in total) with the rule above."""
        max_norm = np.float64(self.max_grad_norm or 0.0)
        for group, views in zip(self.param_groups, self._views()):
            lr, alpha, eps = (np.float32(group[key]) for key in ("lr", "alpha", "eps"))
            params, grads, square_avgs = [], [], []
            for p, (param, square_avg) in zip(group["params"], views):
                if p.grad is not None:
                    grad = p.grad if p.grad.stride() == p.stride() else torch.empty_like(p).copy_(p.grad)
                    params.append(param)
                    grads.append(_flat(grad))
                    square_avgs.append(square_avg)
            if params:
                _rmsprop_rules(tuple(params), tuple(grads), tuple(square_avgs), lr, alpha, eps, max_norm)
        return None

    def _views(self) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """Flat numpy views of each parameter and its statistics, made once in each process."""
        if self._flat_views is None:
            self._flat_views = [[(_flat(p), _flat(self.state[p]["square_avg"])) for p in group["params"]]
                                for group in self.param_groups]
        return self._flat_views
