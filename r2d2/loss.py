"""The R2D2 loss: n-step double Q-learning inside stored sequences, with invertible value rescaling.

Kapturowski et al. 2019 (R2D2), section 2: the target of step t is
    y_t = h(sum_{k<m} gamma^k r_{t+k} + gamma^m Q_target(o_{t+m}, argmax_a Q_online(o_{t+m}, a)) mapped by h^-1)
with h from Pohlen et al. 2018 (Ape-X DQfD, section 3.2); the sequence's priority mixes the max and the
mean absolute TD error (R2D2 section 2.3). Time naming follows acme: `q_tm1` at the step whose action
is trained, `r_t` and `discount_t` the reward and discount that followed it.

Inside a sequence a step's window is m = n steps, cut short where the stored sequence ends (it then
bootstraps from the sequence's last stored observation) or where the episode terminates (no bootstrap).
A step trains when its bootstrap observation is stored, or when its episode terminates inside its
window; so padding never trains and is never bootstrapped from, and neither is the missing observation
after a time-limit truncation. Steps before `burn_in` only warm up the recurrent state.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from apex.loss import PRIORITY_FLOOR, nstep_q_target

RESCALE_EPS = 1e-3


def value_rescale(x: torch.Tensor, eps: float = RESCALE_EPS) -> torch.Tensor:
    """h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x (Pohlen et al. 2018, section 3.2). x: any shape."""
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0) + eps * x


def value_rescale_inv(x: torch.Tensor, eps: float = RESCALE_EPS) -> torch.Tensor:
    """h^-1(x) = sign(x) (((sqrt(1 + 4 eps (|x| + 1 + eps)) - 1) / (2 eps))^2 - 1)
    (Pohlen et al. 2018, Proposition A.2). x: any shape."""
    root = (torch.sqrt(1.0 + 4.0 * eps * (x.abs() + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return torch.sign(x) * (root * root - 1.0)


def priority_mix(abs_td: torch.Tensor, valid: torch.Tensor, eta: float = 0.9) -> torch.Tensor:
    """p = eta max_t |delta_t| + (1 - eta) mean_t |delta_t| over the valid steps (R2D2 section 2.3).

    abs_td: [T, B] float32; valid: [T, B] bool -> p: [B] float32 (0 where no step is valid).
    """
    masked = torch.where(valid, abs_td, torch.zeros_like(abs_td))
    count = valid.sum(dim=0)
    mean = masked.sum(dim=0) / count.clamp(min=1)
    return eta * masked.max(dim=0).values + (1.0 - eta) * mean


class SequenceTargets(NamedTuple):
    """n-step quantities of every step of a batch of sequences; T = steps, B = sequences."""
    reward_n: torch.Tensor    # [T, B] float32: sum_{k<m} (prod_{j<k} discount_{t+j}) r_{t+k}
    discount_n: torch.Tensor  # [T, B] float32: prod_{j<m} discount_{t+j} (0 if the episode terminated)
    bootstrap: torch.Tensor   # [T] int64: t + m, the step bootstrapped from (T: none stored)
    trainable: torch.Tensor   # [T, B] bool: the step has a proper target


def _pad(x: torch.Tensor, steps: int, fill: float | bool) -> torch.Tensor:
    """x: [T, ...] -> [T + steps, ...], the new steps filled with `fill`."""
    return torch.cat([x, torch.full((steps,) + x.shape[1:], fill, dtype=x.dtype, device=x.device)])


def sequence_nstep(r_t: torch.Tensor, discount_t: torch.Tensor, mask: torch.Tensor, n: int) -> SequenceTargets:
    """Windows of n steps inside sequences. r_t, discount_t: [T, B] float32 (discount_t is gamma, or
    0 after a terminal step); mask: [T, B] bool (False: padding past the episode's end).

    Step t bootstraps from step b = min(t + n, T - 1), or, for the last step, from a step T that is
    never stored (it can train only when it is terminal).
    """
    steps = r_t.shape[0]
    time = torch.arange(steps, device=r_t.device)
    bootstrap = torch.clamp(time + n, max=steps - 1)
    bootstrap[-1] = steps
    length = bootstrap - time  # [T] m
    r_pad, d_pad, m_pad = _pad(r_t, n, 0.0), _pad(discount_t, n, 0.0), _pad(mask, n, False)
    reward_n = torch.zeros_like(r_t)
    discount_n = torch.ones_like(r_t)
    terminated = torch.zeros_like(mask)
    for k in range(n):
        inside = (k < length).unsqueeze(1)  # [T, 1]
        r_k, d_k, m_k = r_pad[k:k + steps], d_pad[k:k + steps], m_pad[k:k + steps]
        reward_n = torch.where(inside, reward_n + discount_n * r_k, reward_n)
        terminated = terminated | (inside & m_k & (d_k == 0))
        discount_n = torch.where(inside, discount_n * d_k, discount_n)
    discount_n = torch.where(terminated, torch.zeros_like(discount_n), discount_n)
    trainable = mask & (m_pad[bootstrap] | terminated)
    return SequenceTargets(reward_n, discount_n, bootstrap, trainable)


def r2d2_loss(q_tm1: torch.Tensor, a_tm1: torch.Tensor, r_t: torch.Tensor, discount_t: torch.Tensor,
              mask: torch.Tensor, q_target: torch.Tensor, q_selector: torch.Tensor, weight: torch.Tensor,
              burn_in: torch.Tensor, n: int = 5, eta: float = 0.9,
              eps: float = RESCALE_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance-weighted n-step double-Q loss on rescaled values over sequences; returns (loss, priority).

    q_tm1: [T, B, A] online Q with gradient after burn-in; a_tm1: [T, B] int64; r_t, discount_t: [T, B];
    mask: [T, B] bool; q_target, q_selector: [T, B, A] target and online Q, no gradient (double Q,
    van Hasselt et al. 2016); weight: [B] importance weights; burn_in: [B] int64, the steps of each
    sequence that only warm up the state (0 when it starts an episode: the stored zero state is exact).
    loss = mean_b weight_b * mean_{t trained} 0.5 (y_t - q_tm1[t, a_t])^2; priority: [B] from
    `priority_mix` over the trained steps (floored above zero), detached.
    """
    steps = q_tm1.shape[0]
    nstep = sequence_nstep(r_t, discount_t, mask, n)
    zero = torch.zeros_like(q_target[:1])
    value_b = value_rescale_inv(torch.cat([q_target, zero])[nstep.bootstrap], eps)  # [T, B, A]
    selector_b = torch.cat([q_selector, zero])[nstep.bootstrap]
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731  [T * B, ...]
    y = nstep_q_target(flat(nstep.reward_n), flat(nstep.discount_n), flat(value_b), flat(selector_b))
    y = value_rescale(y.reshape(nstep.reward_n.shape), eps)  # [T, B]
    q_a = q_tm1.gather(-1, a_tm1.long().unsqueeze(-1)).squeeze(-1)  # [T, B]
    after_burn_in = torch.arange(steps, device=q_tm1.device).unsqueeze(1) >= burn_in.unsqueeze(0)
    trained = nstep.trainable & after_burn_in
    td = torch.where(trained, y - q_a, torch.zeros_like(q_a))
    per_sequence = 0.5 * (td * td).sum(dim=0) / trained.sum(dim=0).clamp(min=1)  # [B]
    priority = priority_mix(td.detach().abs(), trained, eta).clamp(min=PRIORITY_FLOOR)
    return (weight * per_sequence).mean(), priority
