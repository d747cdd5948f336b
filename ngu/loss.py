"""NGU's loss: transformed Retrace over stored sequences, with R2D2's value rescaling h.

Badia et al. 2020 ("Never Give Up"), Appendix E, after Munos et al. 2016 (Retrace, equation 3) and
R2D2's transformed operator (Kapturowski et al. 2019, section 2; h from Pohlen et al. 2018). In h-space,
with Q the target network's values, pi the target policy and mu the behaviour policy:

    delta_s = h(r_s + gamma_s h^-1(sum_a pi(a | x_{s+1}) Q(x_{s+1}, a))) - Q(x_s, a_s)
    c_s     = lambda min(1, pi(a_s | x_s) / mu(a_s | x_s))
    y_t     = Q(x_t, a_t) + sum_{s >= t} (prod_{i=t+1}^{s} gamma_{i-1} c_i) delta_s

computed backwards as A_t = delta_t + gamma_t c_{t+1} A_{t+1}, y_t = Q(x_t, a_t) + A_t. gamma_s is the
policy's discount gamma_j, or 0 after a terminal step (which cuts both the bootstrap and the trace).
The target policy is greedy on the online network's Q (Appendix E), so sum_a pi Q is Q at the online
arg max and c_s is lambda where the actor took that action and 0 where it did not (mu <= 1).

Inside a sequence, step t trains when its next observation is stored or it terminates; the last
stored step bootstraps only through delta (no trace past the sequence). Naming as in r2d2/loss.py.
"""
from __future__ import annotations

import torch

from apex.loss import PRIORITY_FLOOR
from ngu.network import RND, EmbeddingNetwork, inverse_dynamics_loss
from r2d2.loss import RESCALE_EPS, priority_mix, value_rescale, value_rescale_inv


def retrace_traces(pi_a: torch.Tensor, mu_a: torch.Tensor, lam: float) -> torch.Tensor:
    """c_t = lambda min(1, pi(a_t | x_t) / mu(a_t | x_t)). pi_a, mu_a: [T, B] float32 -> [T, B]."""
    return lam * torch.clamp(pi_a / mu_a.clamp(min=1e-8), max=1.0)


def retrace_targets(q_a: torch.Tensor, v_next: torch.Tensor, r_t: torch.Tensor, discount_t: torch.Tensor,
                    c_t: torch.Tensor, mask: torch.Tensor,
                    eps: float = RESCALE_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformed Retrace targets of every step of a batch of sequences; returns (y, trainable).

    q_a: [T, B] target Q(x_t, a_t) in h-space; v_next: [T, B] target Q of x_{t+1} under pi in h-space
    (any value where x_{t+1} is not stored); r_t: [T, B] reward after a_t; discount_t: [T, B] gamma_j,
    or 0 after a terminal step; c_t: [T, B] traces (`retrace_traces`); mask: [T, B] bool, False on
    padding past the episode's end -> y: [T, B] in h-space, trainable: [T, B] bool.
    """
    steps = q_a.shape[0]
    next_stored = torch.cat([mask[1:], torch.zeros_like(mask[:1])])
    terminal = discount_t == 0
    trainable = mask & (next_stored | terminal)
    bootstrap = torch.where(next_stored & ~terminal, discount_t * value_rescale_inv(v_next, eps),
                            torch.zeros_like(v_next))
    delta = torch.where(trainable, value_rescale(r_t + bootstrap, eps) - q_a, torch.zeros_like(q_a))
    advantage = torch.zeros_like(q_a)
    running = torch.zeros_like(q_a[0])
    for t in reversed(range(steps)):
        follow = next_stored[t] & ~terminal[t]  # the trace goes on into step t + 1
        carry = discount_t[t] * (c_t[t + 1] if t + 1 < steps else torch.zeros_like(running)) * running
        running = delta[t] + torch.where(follow, carry, torch.zeros_like(running))
        advantage[t] = running
    return q_a + advantage, trainable


def ngu_loss(q_tm1: torch.Tensor, y: torch.Tensor, trainable: torch.Tensor, weight: torch.Tensor,
             burn_in: torch.Tensor, eta: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance-weighted squared error to the Retrace targets; returns (loss, priority).

    q_tm1: [T, B] online Q(x_t, a_t) with gradient; y, trainable: from `retrace_targets`; weight: [B];
    burn_in: [B] int64 steps that only warm up the state. loss = mean_b weight_b mean_{t trained}
    0.5 (y_t - q_t)^2; priority: [B] R2D2's mix of max and mean |y - q| over the trained steps.
    """
    steps = q_tm1.shape[0]
    after_burn_in = torch.arange(steps, device=q_tm1.device).unsqueeze(1) >= burn_in.unsqueeze(0)
    trained = trainable & after_burn_in
    td = torch.where(trained, y.detach() - q_tm1, torch.zeros_like(q_tm1))
    per_sequence = 0.5 * (td * td).sum(dim=0) / trained.sum(dim=0).clamp(min=1)
    priority = priority_mix(td.detach().abs(), trained, eta).clamp(min=PRIORITY_FLOOR)
    return (weight * per_sequence).mean(), priority


def last_transitions(mask: torch.Tensor, count: int) -> torch.Tensor:
    """[T - 1, B] bool: the last `count` steps t of each sequence whose next observation is stored too.
    mask: [T, B] bool."""
    pairs = mask[:-1] & mask[1:]
    from_end = pairs.flip(0).cumsum(0).flip(0)  # pairs at or after t
    return pairs & (from_end <= count)


def aux_transitions(obs: torch.Tensor, action: torch.Tensor, mask: torch.Tensor,
                    count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The transitions the embedding and RND train on (Appendix A: the last 5 of each sequence).
    obs: [T, B, *obs_shape]; action, mask: [T, B] -> (x_t, x_{t+1}, a_t), [M, ...] each."""
    chosen = last_transitions(mask, count)
    return obs[:-1][chosen], obs[1:][chosen], action[:-1][chosen]


def aux_loss(embedding: EmbeddingNetwork, rnd: RND, obs: torch.Tensor, next_obs: torch.Tensor,
             action: torch.Tensor) -> torch.Tensor:
    """The embedding's inverse-dynamics cross-entropy plus RND's mean squared prediction error on x_{t+1}."""
    return inverse_dynamics_loss(embedding, obs, next_obs, action) + rnd.error(next_obs).mean()
