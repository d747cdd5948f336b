"""NGU's networks: the Q-network conditioned on the policy index, the embedding f, and RND.

Badia et al. 2020 ("Never Give Up"):
- Q-network (section 3, Appendix F): R2D2's torso -> LSTM -> dueling head, whose LSTM also takes the
  policy index j as a one-hot, and the previous extrinsic and intrinsic rewards besides the previous
  action; one network serves the whole family of N policies.
- Embedding f (section 2, Appendix A.1): a torso to a small vector, trained as a Siamese inverse-dynamics
  model: an MLP on (f(x_t), f(x_{t+1})) predicts a_t, so f keeps what the agent controls.
- RND (Burda et al. 2019): a fixed random target g and a trained predictor g_hat on observations
  normalised by running statistics; err(x) = |g_hat(x) - g(x)|^2.
- The modulator (section 2): alpha_t = 1 + (err(x_t) - mu_e) / sigma_e with running mean and std of the
  errors, and r_i = r_episodic * min(max(alpha_t, 1), L), L = 5.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.networks import make_torso
from r2d2.network import LstmState, R2D2Network


class NGUNetwork(R2D2Network):
    """R2D2's recurrent dueling Q-network with the LSTM input extended by the previous intrinsic reward and
    the policy's one-hot j (Appendix F)."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, num_policies: int, hidden_size: int,
                 lstm_size: int):
        super().__init__(obs_shape, num_actions, hidden_size, lstm_size, extra_inputs=1 + num_policies)
        self.num_policies = num_policies

    def unroll_ngu(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_extrinsic: torch.Tensor,
                   prev_intrinsic: torch.Tensor, policy: torch.Tensor,
                   state: LstmState) -> tuple[torch.Tensor, LstmState]:
        """obs: [T, B, *obs_shape]; prev_action: [T, B] int64; prev_extrinsic, prev_intrinsic: [T, B]
        float32; policy: [T, B] int64 (j) -> (q: [T, B, A], the state after step T - 1)."""
        return self.unroll(obs, prev_action, prev_extrinsic, state, self.extra_inputs(prev_intrinsic, policy))

    def extra_inputs(self, prev_intrinsic: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        """The LSTM's inputs past R2D2's: the previous intrinsic reward and the one-hot j.
        prev_intrinsic [...] float32, policy [...] int64 -> [..., 1 + N]."""
        return torch.cat([prev_intrinsic.float().unsqueeze(-1), F.one_hot(policy.long(), self.num_policies).float()],
                         dim=-1)

    def step_ngu(self, obs: torch.Tensor, prev_action: torch.Tensor, prev_extrinsic: torch.Tensor,
                 prev_intrinsic: torch.Tensor, policy: torch.Tensor,
                 state: LstmState) -> tuple[torch.Tensor, LstmState]:
        """One step for B envs (each input without the T axis) -> (q [B, A], state)."""
        q, state = self.unroll_ngu(obs.unsqueeze(0), prev_action.unsqueeze(0), prev_extrinsic.unsqueeze(0),
                                   prev_intrinsic.unsqueeze(0), policy.unsqueeze(0), state)
        return q.squeeze(0), state


class EmbeddingNetwork(nn.Module):
    """f: observation -> [B, embedding_size], and the inverse-dynamics head on (f(x_t), f(x_{t+1}))."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, hidden_size: int, embedding_size: int = 32):
        super().__init__()
        self.torso = make_torso(obs_shape, hidden_size)
        self.embed = nn.Linear(self.torso.out_dim, embedding_size)
        self.inverse = nn.Sequential(nn.Linear(2 * embedding_size, 128), nn.ReLU(), nn.Linear(128, num_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return F.relu(self.embed(self.torso(obs)))

    def action_logits(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """[B, A] logits of the action taken between obs and next_obs (the Siamese inverse model)."""
        return self.inverse(torch.cat([self(obs), self(next_obs)], dim=-1))


def inverse_dynamics_loss(embedding: EmbeddingNetwork, obs: torch.Tensor, next_obs: torch.Tensor,
                          action: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the taken action under the inverse model (NGU Appendix A.1). obs, next_obs:
    [B, *obs_shape]; action: [B] int64 -> scalar."""
    return F.cross_entropy(embedding.action_logits(obs, next_obs), action.long())


def merge_moments(mean, var, count, batch_mean, batch_var, batch_count):
    """The mean, variance and count of two sets merged from their moments (Chan et al. 1979); works
    on numpy arrays and on torch tensors alike."""
    total = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * batch_count / total
    new_var = (var * count + batch_var * batch_count + delta * delta * count * batch_count / total) / total
    return new_mean, new_var, total


class RunningMeanStd:
    """Mean and variance of a stream of arrays of one shape, merged batch by batch."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, np.float64)
        if batch.shape[0] == 0:
            return
        self.mean, self.var, self.count = merge_moments(self.mean, self.var, self.count, batch.mean(axis=0),
                                                        batch.var(axis=0), batch.shape[0])

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)


class RND(nn.Module):
    """Random network distillation (Burda et al. 2019): a fixed random target and a trained predictor,
    both a torso to `output_size`, on observations normalised per element by running statistics and
    clipped to [-5, 5]. The statistics are buffers, so the learner's updates of them reach the actors
    with the parameters."""

    def __init__(self, obs_shape: Sequence[int], hidden_size: int, output_size: int = 128):
        super().__init__()
        self.target = nn.Sequential(make_torso(obs_shape, hidden_size), nn.Linear(hidden_size, output_size))
        self.predictor = nn.Sequential(make_torso(obs_shape, hidden_size), nn.Linear(hidden_size, output_size))
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.register_buffer("obs_mean", torch.zeros(tuple(obs_shape)))
        self.register_buffer("obs_var", torch.ones(tuple(obs_shape)))
        self.register_buffer("obs_count", torch.zeros(()))

    @torch.no_grad()
    def update_obs_stats(self, obs: torch.Tensor) -> None:
        """Merge a batch [N, *obs_shape] into the observation statistics."""
        if len(obs) == 0:
            return
        x = obs.float()
        mean, var, count = merge_moments(self.obs_mean, self.obs_var, self.obs_count, x.mean(dim=0),
                                         x.var(dim=0, unbiased=False), float(len(x)))
        self.obs_mean.copy_(mean), self.obs_var.copy_(var), self.obs_count.copy_(count)

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs.float() - self.obs_mean) / (self.obs_var.sqrt() + 1e-8)).clamp(-5.0, 5.0)

    def error(self, obs: torch.Tensor) -> torch.Tensor:
        """[B] squared prediction error |g_hat(x) - g(x)|^2 (with gradient to the predictor)."""
        x = self.normalise(obs)
        return (self.predictor(x) - self.target(x)).pow(2).sum(dim=-1)


def modulated_intrinsic(r_episodic: np.ndarray, rnd_error: np.ndarray, error_stats: RunningMeanStd,
                        max_modulation: float = 5.0) -> np.ndarray:
    """r_i = r_episodic * min(max(alpha, 1), L) with alpha = 1 + (err - mu_e) / sigma_e (NGU section 2),
    mu_e and sigma_e the running statistics of the errors seen before this batch, which it then updates.
    r_episodic, rnd_error: [B] -> [B]."""
    alpha = 1.0 + (rnd_error - error_stats.mean) / max(float(error_stats.std), 1e-8)
    error_stats.update(rnd_error)
    return r_episodic * np.clip(alpha, 1.0, max_modulation)


class NGUModel(nn.Module):
    """Everything the learner trains and publishes to the actors: the Q-network, the embedding f and RND."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, num_policies: int, hidden_size: int,
                 lstm_size: int, embedding_size: int, rnd_output_size: int):
        super().__init__()
        self.q = NGUNetwork(obs_shape, num_actions, num_policies, hidden_size, lstm_size)
        self.embedding = EmbeddingNetwork(obs_shape, num_actions, hidden_size, embedding_size)
        self.rnd = RND(obs_shape, hidden_size, rnd_output_size)


def make_model(cfg, obs_shape: tuple[int, ...], num_actions: int) -> NGUModel:
    """The NGU model of an `ngu.config.Config`."""
    return NGUModel(obs_shape, num_actions, cfg.num_policies, cfg.hidden_size, cfg.lstm_size, cfg.embedding_size,
                    cfg.rnd_output_size)
