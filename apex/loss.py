"""The n-step (double) Q-learning loss of Ape-X and DQN, and the priorities it yields.

Time naming follows acme: `q_tm1` are Q-values at the transition's first observation o_t, `q_t_*` at
the bootstrap observation o_{t+n}; `r_t` is the n-step return and `discount_t` is gamma^n, or 0 when
the episode terminated inside the window (nothing is bootstrapped across a terminal), or gamma^k when
it was truncated after k < n steps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

PRIORITY_FLOOR = 1e-6
"""Smallest priority written to the replay: a zero-priority item would never be sampled again."""


def nstep_q_target(r_t: torch.Tensor, discount_t: torch.Tensor, q_t_value: torch.Tensor,
                   q_t_selector: torch.Tensor) -> torch.Tensor:
    """y = r_t + discount_t * q_t_value[argmax_a q_t_selector[a]].

    Double Q-learning (van Hasselt et al. 2016, equation 4) passes the online network's Q-values as
    the selector and the target network's as the value; plain DQN (Mnih et al. 2015) passes the
    target network's Q-values as both, which is max_a Q_target(o_{t+n}, a).
    r_t, discount_t: [B] float32; q_t_value, q_t_selector: [B, A] -> y: [B] float32 (no gradient).
    """
    best = q_t_selector.argmax(dim=-1, keepdim=True)  # [B, 1]
    bootstrap = q_t_value.gather(-1, best).squeeze(-1)  # [B]
    return (r_t + discount_t * bootstrap).detach()


def double_q_nstep_loss(q_tm1: torch.Tensor, a_tm1: torch.Tensor, r_t: torch.Tensor, discount_t: torch.Tensor,
                        q_t_value: torch.Tensor, q_t_selector: torch.Tensor, weight: torch.Tensor,
                        huber_delta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance-weighted Huber loss of the n-step (double) Q target; returns (loss, abs_td).

    q_tm1: [B, A] online Q(o_t, .) with gradient; a_tm1: [B] int64; r_t, discount_t: [B];
    q_t_value, q_t_selector: [B, A] (see `nstep_q_target`); weight: [B] importance weights
    (Schaul et al. 2016, section 3.4; all ones for uniform replay).
    loss = mean_b weight_b * huber(y_b - q_tm1[b, a_b]); abs_td = |y - q_tm1[a]|: [B], the new
    priorities (Horgan et al. 2018, section 3), detached.
    """
    y = nstep_q_target(r_t, discount_t, q_t_value, q_t_selector)
    q_a = q_tm1.gather(-1, a_tm1.long().unsqueeze(-1)).squeeze(-1)  # [B]
    td = y - q_a
    per_item = F.huber_loss(q_a, y, reduction="none", delta=huber_delta)  # [B]
    return (weight * per_item).mean(), td.detach().abs()
