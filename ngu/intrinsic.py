"""NGU's intrinsic reward as an actor computes it, per env, every step (Badia et al. 2020, section 2):

    r_i = r_episodic * min(max(alpha, 1), L)

r_episodic from the episodic memory of this episode's embeddings f(x) (Algorithm 1, `ngu.episodic`),
alpha from RND's error on x against its running statistics (`ngu.network.modulated_intrinsic`).

The reward of the step from x_t to x_{t+1} is the novelty of x_{t+1}, where the action led: the memory
holds x_0 .. x_t when x_{t+1} is scored. An episode's first observation only enters the memory; so
the LSTM's previous intrinsic reward at x_t is the novelty of x_t itself, and the evaluator, which
scores each observation it acts on, feeds it the same input as the actors did.

The error statistics behind alpha are each actor's own (the paper does not say whose); RND's
observation statistics are the learner's, published with the parameters.
"""
from __future__ import annotations

import numpy as np
import torch

from ngu.episodic import EpisodicMemory, EpisodicParams
from ngu.network import NGUModel, RunningMeanStd, modulated_intrinsic


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
