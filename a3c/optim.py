"""Shared optimizers of the asynchronous methods: the paper's RMSProp (Mnih et al. 2016, section 4
"Optimization" and section 8) and Adam (Kingma & Ba 2015), A3C's default on frames (README).

RMSProp:

    g = alpha * g + (1 - alpha) * grad^2
    theta = theta - lr * grad / sqrt(g + eps)

The statistics (g; Adam's moments and step count) live in shared memory, so every worker both reads
and updates the same ones, which the paper found more robust than per-thread statistics.
torch.optim.RMSprop puts eps outside the square root and keeps its state per process, so neither
matches; this optimizer is the paper's rule.
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
def _clip_scale(grads, max_norm: np.float64) -> np.float32:
    """clip_grad_norm_'s coefficient: what scales the gradients' total norm down to max_norm (1 if
    it is below, or if max_norm is 0)."""
    total = 0.0
    for grad in grads:
        for i in range(grad.size):
            total += np.float64(grad[i]) * grad[i]
    if max_norm > 0.0:
        return np.float32(min(1.0, max_norm / (np.sqrt(total) + 1e-6)))
    return np.float32(1.0)


@numba.njit(fastmath=True, error_model="numpy", nogil=True, cache=True)
def _rmsprop_rules(params, grads, square_avgs, lr: np.float32, alpha: np.float32, eps: np.float32,
                   max_norm: np.float64) -> None:
    """In place, over equal-length tuples of 1-D float32 views: grads scaled down to a total norm of
    max_norm (if max_norm > 0) as clip_grad_norm_ does, then the rule above, elementwise."""
    scale = _clip_scale(grads, max_norm)
    one_minus_alpha = np.float32(1.0) - alpha
    for k in range(len(params)):
        param, grad, square_avg = params[k], grads[k], square_avgs[k]
        for i in range(param.size):
            g = grad[i] * scale
            s = alpha * square_avg[i] + one_minus_alpha * g * g
            square_avg[i] = s
            param[i] -= lr * g / np.sqrt(s + eps)


@numba.njit(fastmath=True, error_model="numpy", nogil=True, cache=True)
def _adam_rules(params, grads, exp_avgs, exp_avg_sqs, lr: np.float32, beta1: np.float32, beta2: np.float32,
                eps: np.float32, step: np.int64, max_norm: np.float64) -> None:
    """Kingma & Ba 2015, Algorithm 1, in place (the clip first, as in _rmsprop_rules); `step` is t >= 1.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  theta -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
    """
    scale = _clip_scale(grads, max_norm)
    step_size = np.float32(lr / (1.0 - np.float64(beta1) ** step))
    inv_sqrt_bias2 = np.float32(1.0 / np.sqrt(1.0 - np.float64(beta2) ** step))
    for k in range(len(params)):
        param, grad, exp_avg, exp_avg_sq = params[k], grads[k], exp_avgs[k], exp_avg_sqs[k]
        for i in range(param.size):
            g = grad[i] * scale
            m = beta1 * exp_avg[i] + (np.float32(1.0) - beta1) * g
            v = beta2 * exp_avg_sq[i] + (np.float32(1.0) - beta2) * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            param[i] -= step_size * m / (np.sqrt(v) * inv_sqrt_bias2 + eps)


def _flat(tensor: torch.Tensor) -> np.ndarray:
    """A 1-D numpy view of a dense tensor's memory in storage order (channels-last weights too)."""
    if tensor.is_contiguous():  # the common case, and the cheaper view
        return tensor.detach().numpy().reshape(-1)
    return tensor.detach().as_strided((tensor.numel(),), (1,)).numpy()


class SharedOptimizer:
    """A rule over one list of parameters, with its statistics in tensors that share_memory() moves to
    shared memory, so that every worker the optimizer is pickled to steps the same parameters and
    statistics. Subclasses give the statistics (one list of tensors shaped like the parameters per
    kind) and the rule.

    Not a torch.optim.Optimizer: the base class's param groups, hooks and state_dict go unused here, and
    its constructor imports torch._dynamo, which took a second of every run's start-up on a 2-core box.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, max_grad_norm: float | None, kinds: int):
        """max_grad_norm: scale the gradients down to this total norm first, as clip_grad_norm_ does."""
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got no parameters")
        for p in self.params:
            dense = p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)
            if p.dtype != torch.float32 or not dense:
                raise ValueError(f"{type(self).__name__} needs dense float32 parameters")
        self.stats = [[torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
                      for _ in range(kinds)]
        self.lr, self.max_grad_norm = lr, max_grad_norm
        self._flat_views: tuple[tuple[np.ndarray, ...], ...] | None = None

    def __getstate__(self) -> dict:  # numpy views would pickle as copies: each process makes its own
        return {**self.__dict__, "_flat_views": None}

    def share_memory(self):
        for tensor in self.statistics():
            tensor.share_memory_()
        return self

    def statistics(self) -> list[torch.Tensor]:
        """The shared statistics, kind by kind in parameter order (what a checkpoint keeps)."""
        return [tensor for kind in self.stats for tensor in kind]

    @torch.no_grad()
    def load_statistics(self, saved: list[torch.Tensor]) -> None:
        """Copies saved statistics into the shared tensors in place, so sharing is kept."""
        mine = self.statistics()
        if len(saved) != len(mine) or any(a.shape != b.shape for a, b in zip(saved, mine)):
            raise ValueError("optimizer statistics do not match the network and optimizer")
        for dst, src in zip(mine, saved):
            dst.copy_(src)

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    @torch.no_grad()
    def step(self) -> None:
        """Applies each parameter's .grad (clipped to max_grad_norm in total) with the rule;
        parameters without a gradient are left alone."""
        views = self._views()
        grads = []
        for p in self.params:
            if p.grad is not None:
                grad = p.grad if p.grad.stride() == p.stride() else torch.empty_like(p).copy_(p.grad)
                grads.append(_flat(grad))
        if len(grads) < len(self.params):  # only those with a gradient
            present = [k for k, p in enumerate(self.params) if p.grad is not None]
            if not present:
                return
            views = tuple(tuple(group[k] for k in present) for group in views)
        self._apply(views[0], tuple(grads), views[1:], np.float64(self.max_grad_norm or 0.0))

    def _apply(self, params, grads, stats, max_norm: np.float64) -> None:
        raise NotImplementedError

    def _views(self) -> tuple[tuple[np.ndarray, ...], ...]:
        """Flat numpy views of the parameters and each kind of statistics, made once in each process."""
        if self._flat_views is None:
            self._flat_views = tuple(tuple(_flat(t) for t in group) for group in (self.params, *self.stats))
        return self._flat_views


class SharedRMSprop(SharedOptimizer):
    """The paper's RMSProp (module docstring): one statistic, g, per parameter."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, alpha: float = 0.99, eps: float = 0.1,
                 max_grad_norm: float | None = None, initial_g: float = 0.0):
        """initial_g: the value g starts from; TensorFlow's RMSProp (OpenAI baselines' A2C) starts at 1,
        so the first updates are plain SGD and the per-parameter scaling comes in over about 1/(1 - alpha)
        updates."""
        super().__init__(params, lr, max_grad_norm, kinds=1)
        self.alpha, self.eps = alpha, eps
        for square_avg in self.stats[0]:
            square_avg.fill_(initial_g)

    def _apply(self, params, grads, stats, max_norm: np.float64) -> None:
        _rmsprop_rules(params, grads, stats[0], np.float32(self.lr), np.float32(self.alpha), np.float32(self.eps),
                       max_norm)


class SharedAdam(SharedOptimizer):
    """Adam (Kingma & Ba 2015) with shared moments and a shared step count t, as pytorch-a3c shares it.

    Its bias correction makes the first steps about lr per parameter, where an RMSProp with a small eps
    and g starting at 0 moves each parameter by up to 10 lr (g is (1 - alpha) grad^2 after one step).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, max_grad_norm: float | None = None):
        super().__init__(params, lr, max_grad_norm, kinds=2)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.step_count = torch.zeros(1, dtype=torch.int64)

    def share_memory(self) -> "SharedAdam":
        self.step_count.share_memory_()
        return super().share_memory()

    def statistics(self) -> list[torch.Tensor]:
        """First moments, second moments (each in parameter order), then the step count."""
        return [*super().statistics(), self.step_count]

    def _apply(self, params, grads, stats, max_norm: np.float64) -> None:
        self.step_count += 1  # Hogwild like the rest: two workers may read the same t, which is harmless
        _adam_rules(params, grads, stats[0], stats[1], np.float32(self.lr), np.float32(self.beta1),
                    np.float32(self.beta2), np.float32(self.eps), np.int64(self.step_count[0]), max_norm)
