"""NGU's intrinsic reward as an actor computes it, per env, every step (Badia et al. 2020, section 2):

    r_i = r_episodic * min(max(alpha, 1), L)

r_episodic from the episodic memory of this episode's embeddings f(x) (Algorithm 1, `ngu.episodic`),
alpha from RND's error on x against its running statistics (`ngu.network.modulated_intrinsic`).

The reward of the step from x_t to x_{t+1} is the novelty of x_{t+1}, where the action led: the memory
holds x_0 .. x_t when x_{t+1} is scored. An episode's first observation only enters the memory; so
the LSTM's previous intrinsic reward at x_t is the novelty of x_t itself, and the evaluator, which
scores each observation it acts on, feeds it the same input as the actors did.

The error statistics behind alpha are each actor's own (the paper does not say whose); RND's
observation statistics are the learner's, published with the parameters. The learner trains the
embedding and RND's predictor with an `IntrinsicTrainer`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ngu.episodic import EpisodicMemory, EpisodicParams
from ngu.loss import aux_loss, aux_transitions
from ngu.network import RND, EmbeddingNetwork, NGUModel, RunningMeanStd, modulated_intrinsic


class IntrinsicReward:
    """The intrinsic rewards of E envs with the (refreshed) `model`'s f and RND."""

    def __init__(self, model: NGUModel, num_envs: int, capacity: int, num_neighbours: int, max_modulation: float):
        self.model = model
        self.memory = EpisodicMemory(num_envs, model.embedding.embed.out_features, capacity,
                                     EpisodicParams(k=num_neighbours))
        self.error_stats = RunningMeanStd()
        self.max_modulation = max_modulation

    @torch.no_grad()
    def start_episode(self, env: int, obs: np.ndarray) -> None:
        """Empty env's memory and put its first observation `obs` in."""
        self.memory.reset(env, self.model.embedding(torch.from_numpy(np.asarray(obs)[None]))[0].numpy())

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs: [E, *obs_shape], each env's newest observation -> r_i [E] float64; adds them to the memories."""
        x = torch.from_numpy(obs)
        r_episodic = self.memory.step(self.model.embedding(x).numpy())
        return modulated_intrinsic(r_episodic, self.model.rnd.error(x).numpy(), self.error_stats, self.max_modulation)


class EvaluatorIntrinsic:
    """The evaluator's intrinsic reward, kept across its evaluation rounds: alpha's error statistics
    need the history an actor's have (fresh ones make alpha up to L times larger than the actors'
    was, and the network is fed rewards it never saw). The evaluator's model copy is one object for
    the whole run, refreshed in place, so one `IntrinsicReward` over it serves every round."""

    def __init__(self, capacity: int, num_neighbours: int, max_modulation: float):
        self.capacity, self.num_neighbours, self.max_modulation = capacity, num_neighbours, max_modulation
        self.reward: IntrinsicReward | None = None

    def of(self, model: NGUModel) -> IntrinsicReward:
        if self.reward is None or self.reward.model is not model:
            self.reward = IntrinsicReward(model, 1, self.capacity, self.num_neighbours, self.max_modulation)
        return self.reward


class IntrinsicTrainer:
    """The learner's side of the intrinsic reward (NGU Appendix A): on the last `steps` transitions of
    each sampled sequence, RND's observation statistics take in x_{t+1}, then one step of the
    embedding's inverse model and RND's predictor with their own Adam (lr 5e-4), gradients clipped."""

    def __init__(self, embedding: EmbeddingNetwork, rnd: RND, lr: float, steps: int, max_grad_norm: float):
        self.embedding, self.rnd, self.steps, self.max_grad_norm = embedding, rnd, steps, max_grad_norm
        self.parameters = [*embedding.parameters(), *rnd.predictor.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)

    def update(self, obs: torch.Tensor, action: torch.Tensor, mask: torch.Tensor) -> float:
        """obs: [T, B, *obs_shape]; action, mask: [T, B] -> the summed loss of this step. Leaves no gradient."""
        obs, next_obs, action = aux_transitions(obs, action, mask, self.steps)
        self.rnd.update_obs_stats(next_obs)
        loss = aux_loss(self.embedding, self.rnd, obs, next_obs, action)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved)
