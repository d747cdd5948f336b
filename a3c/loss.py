"""Targets and losses of the asynchronous methods (Mnih et al. 2016, Algorithms S1-S3), of A2C (their
synchronous batch of N windows) and of REINFORCE (Williams 1992).

Time is the leading dimension T of one worker's window of consecutive steps. `discount_t` is
gamma * (1 - terminated_t): zero where step t ended the episode, so nothing is bootstrapped across it.
The windows are summed, not averaged, as the paper accumulates gradients over the steps of a window.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

def nstep_returns(r_t: torch.Tensor, discount_t: torch.Tensor, bootstrap: torch.Tensor) -> torch.Tensor:
    """G_t = r_t + discount_t * G_{t+1}, with G_T = bootstrap.

    r_t, discount_t: [T] float32; bootstrap: [] float32 (V(s_T) or max_a Q_target(s_T, a)), a constant.
    Returns G: [T], without gradient.
    """
    # on Python floats: a window is at most a few steps, and tensor ops per step cost more than the sums
    returns, g = [], float(bootstrap)
    for r, discount in zip(reversed(r_t.tolist()), reversed(discount_t.tolist())):
        g = r + discount * g
        returns.append(g)
    return torch.tensor(returns[::-1], dtype=r_t.dtype)


class A3CLoss(NamedTuple):
    total: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor


def a3c_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor,
             entropy_coef: float, value_coef: float) -> A3CLoss:
    """Actor-critic loss of Algorithm S3 with the entropy bonus of section 4.

    logits: [T, A]; values: [T]; actions: [T] int64; returns: [T] (n-step G_t).
    policy = -sum_t log pi(a_t|s_t) * (G_t - V(s_t))   (advantage held constant)
    value  = sum_t 0.5 * (G_t - V(s_t))^2
    entropy = sum_t H(pi(.|s_t))
    total = policy + value_coef * value - entropy_coef * entropy
    """
    log_probs = F.log_softmax(logits, dim=-1)  # [T, A]
    log_pi_a = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)  # [T]
    advantages = returns - values
    policy = -(log_pi_a * advantages.detach()).sum()
    value = 0.5 * advantages.pow(2).sum()
    entropy = -(log_probs.exp() * log_probs).sum()
    return A3CLoss(policy + value_coef * value - entropy_coef * entropy, policy, value, entropy)


def nstep_returns_batched(r_t: torch.Tensor, discount_t: torch.Tensor, bootstrap: torch.Tensor) -> torch.Tensor:
    """nstep_returns for N windows at once, column n being env n's: G_t = r_t + discount_t * G_{t+1}, G_T = bootstrap.

    r_t, discount_t: [T, N] float32; bootstrap: [N] (V(s_T) of each env), a constant. Returns G: [T, N].
    """
    returns = torch.empty_like(r_t)
    g = bootstrap.detach()
    for t in reversed(range(r_t.shape[0])):
        g = r_t[t] + discount_t[t] * g
        returns[t] = g
    return returns


def a2c_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor, r_t: torch.Tensor,
             discount_t: torch.Tensor, bootstrap: torch.Tensor, entropy_coef: float, value_coef: float) -> A3CLoss:
    """A3C's loss on a synchronous batch of N envs' T-step windows (A2C: Wu et al. 2017, OpenAI baselines).

    logits: [T, N, A]; values: [T, N]; actions: [T, N] int64; r_t, discount_t: [T, N]; bootstrap: [N].
    Summed over envs as over steps, so it equals sum_n a3c_loss(env n's window with its n-step returns);
    baselines averages instead, which the gradient-norm clip and RMSProp's eps would see as a smaller step.
    """
    returns = nstep_returns_batched(r_t, discount_t, bootstrap)
    return a3c_loss(logits.flatten(0, 1), values.flatten(), actions.flatten(), returns.flatten(), entropy_coef,
                    value_coef)


def monte_carlo_returns(r_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_k gamma^k r_{t+k} to the end of the episode (Williams 1992; Sutton & Barto 2018, section 13.3).

    r_t: [T] float32, every reward of one whole episode. Returns G: [T], without gradient.
    """
    return nstep_returns(r_t, torch.full_like(r_t, gamma), torch.zeros(()))


def reinforce_loss(logits: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, baseline: torch.Tensor | None,
                   entropy_coef: float, value_coef: float) -> A3CLoss:
    """REINFORCE with an optional learned baseline (Williams 1992, eq. 11; Sutton & Barto 2018, section 13.4).

    logits: [T, A]; actions: [T] int64; returns: [T] Monte-Carlo G_t; baseline: [T] b(s_t) = V(s_t), or None.
    policy = -sum_t log pi(a_t|s_t) * (G_t - b(s_t))   (b held constant; b = 0 without a baseline)
    value  = sum_t 0.5 * (G_t - b(s_t))^2              (0 without a baseline)
    entropy and total as in a3c_loss, whose policy loss this is with G_t from the whole episode.
    """
    if baseline is not None:
        return a3c_loss(logits, baseline, actions, returns, entropy_coef, value_coef)
    log_probs = F.log_softmax(logits, dim=-1)  # [T, A]
    log_pi_a = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)  # [T]
    policy = -(log_pi_a * returns.detach()).sum()
    entropy = -(log_probs.exp() * log_probs).sum()
    return A3CLoss(policy - entropy_coef * entropy, policy, torch.zeros(()), entropy)


def q_learning_targets(r_t: torch.Tensor, discount_t: torch.Tensor, q_target_t: torch.Tensor) -> torch.Tensor:
    """1-step Q-learning: y = r_t + discount_t * max_a Q_target(s_{t+1}, a).

    r_t, discount_t: [T]; q_target_t: [T, A] target-network values at s_{t+1}. Returns [T].
    """
    return r_t + discount_t * q_target_t.max(dim=1).values


def sarsa_targets(r_t: torch.Tensor, discount_t: torch.Tensor, q_target_t: torch.Tensor,
                  a_t: torch.Tensor) -> torch.Tensor:
    """1-step SARSA: y = r_t + discount_t * Q_target(s_{t+1}, a_{t+1}), a_{t+1} the action taken next.

    a_t: [T] int64, the actions taken at s_{t+1}. Returns [T].
    """
    return r_t + discount_t * q_target_t.gather(1, a_t.unsqueeze(1)).squeeze(1)


def q_loss(q_tm1: torch.Tensor, a_tm1: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_t 0.5 * (y_t - Q(s_t, a_t))^2, targets held constant. q_tm1: [T, A]; a_tm1, targets: [T]."""
    q_a = q_tm1.gather(1, a_tm1.unsqueeze(1)).squeeze(1)
    return 0.5 * (targets.detach() - q_a).pow(2).sum()
