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


class SharedRMSprop:
    """The rule above over one list of parameters, with its statistics in tensors that share_memory() moves
    to shared memory, so that every worker the optimizer is pickled to steps the same parameters and g.

    Not a torch.optim.Optimizer: the base class's param groups, hooks and state_dict go unused here, and
    its constructor imports torch._dynamo, which took a second of every run's start-up on a 2-core box.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, alpha: float = 0.99, eps: float = 0.1,
                 max_grad_norm: float | None = None):
        """max_grad_norm: scale the gradients down to this total norm first, as clip_grad_norm_ does."""
        self.params = list(params)
        if not self.params:
            raise ValueError("SharedRMSprop got no parameters")
        for p in self.params:
            dense = p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)
            if p.dtype != torch.float32 or not dense:
                raise ValueError("SharedRMSprop needs dense float32 parameters")
        self.square_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.max_grad_norm = max_grad_norm
        self._flat_views: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None

    def __getstate__(self) -> dict:  # numpy views would pickle as copies: each process makes its own
        return {**self.__dict__, "_flat_views": None}

    def share_memory(self) -> "SharedRMSprop":
        for square_avg in self.square_avgs:
            square_avg.share_memory_()
        return self

    def statistics(self) -> list[torch.Tensor]:
        """The shared squared-gradient averages, in parameter order (what a checkpoint keeps)."""
        return list(self.square_avgs)

    @torch.no_grad()
    def load_statistics(self, saved: list[torch.Tensor]) -> None:
        """Copies saved averages into the shared tensors in place, so sharing is kept."""
        mine = self.statistics()
        if len(saved) != len(mine) or any(a.shape != b.shape for a, b in zip(saved, mine)):
            raise ValueError("optimizer statistics do not match the network")
        for dst, src in zip(mine, saved):
            dst.copy_(src)

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    @torch.no_grad()
    def step(self) -> None:
        """Applies each parameter's .grad (clipped to max_grad_norm in total) with the rule above;
        parameters without a gradient are left alone."""
        params, square_avgs = self._views()
        grads = []
        for p in self.params:
            if p.grad is not None:
                grad = p.grad if p.grad.stride() == p.stride() else torch.empty_like(p).copy_(p.grad)
                grads.append(_flat(grad))
        if len(grads) < len(self.params):  # only those with a gradient
            present = [k for k, p in enumerate(self.params) if p.grad is not None]
            if not present:
                return
            params, square_avgs = tuple(params[k] for k in present), tuple(square_avgs[k] for k in present)
        _rmsprop_rules(params, tuple(grads), square_avgs, np.float32(self.lr), np.float32(self.alpha),
                       np.float32(self.eps), np.float64(self.max_grad_norm or 0.0))

    def _views(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Flat numpy views of the parameters and their statistics, made once in each process."""
        if self._flat_views is None:
            self._flat_views = (tuple(_flat(p) for p in self.params), tuple(_flat(s) for s in self.square_avgs))
        return self._flat_views
