"""NGU's episodic novelty: a per-env memory of this episode's embeddings and the k-NN kernel reward.

Badia et al. 2020 ("Never Give Up"), section 2 and Algorithm 1 (Appendix A), with Table 6's values:
for the embedding f(x_t) of the current observation and the memory M of the embeddings seen so far in
this episode,

    d_i   = |f(x_t) - N_i|^2 for the k nearest neighbours N_1..N_k of f(x_t) in M
    d2_m  <- running mean of the squared k-NN distances, updated with d_1..d_k      (Alg. 1, line 4)
    d_n   = max(d_i / d2_m - xi, 0)           the cluster distance xi: max, not min (line 6)
    K_i   = eps / (d_n + eps)                 the inverse kernel (line 7)
    s     = sqrt(sum_i K_i) + c               (line 8)
    r_episodic = 1 / s, or 0 when s > s_m     (line 9)

with k = 10, xi = 0.008, eps = 1e-4, c = 0.001, s_m = 8 and a memory of 30,000 embeddings, emptied at
every episode start. The query is searched before it is added (M holds the earlier steps of the
episode, as Algorithm 1 reads); at an episode's first step M is empty and the reward is 0, where
the paper leaves it undefined (its formula would give 1 / c = 1,000, far above any later reward).
When M holds fewer than k embeddings, all of them are the neighbours. d2_m is one running mean per
env over all its episodes (the paper does not reset it).

The search is the actor's hot path: `episodic_rewards` is one numba kernel over all envs of an actor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class EpisodicParams:
    """Algorithm 1's constants (NGU Table 6)."""

    k: int = 10
    cluster_distance: float = 0.008
    kernel_epsilon: float = 1e-4
    c: float = 0.001
    max_similarity: float = 8.0


@numba.njit(cache=True)
def _reward_of(dists: np.ndarray, mean_state: np.ndarray, e: int, params: tuple) -> float:
    """Algorithm 1, lines 4-9, for the k squared distances `dists` of env e."""
    _, xi, eps, c, s_m = params
    # line 4: the running mean of squared k-NN distances, over every distance this env has seen
    for d in dists:
        mean_state[e, 1] += 1.0
        mean_state[e, 0] += (d - mean_state[e, 0]) / mean_state[e, 1]
    d2_m = mean_state[e, 0]
    total = 0.0
    for d in dists:
        d_n = d / d2_m if d2_m > 0.0 else 0.0  # line 5 (all neighbours at 0: every one is the same state)
        d_n = max(d_n - xi, 0.0)  # line 6
        total += eps / (d_n + eps)  # line 7
    s = np.sqrt(total) + c  # line 8
    return 0.0 if s > s_m else 1.0 / s  # line 9


@numba.njit(cache=True, fastmath=True)
def _squared_distances(rows: np.ndarray, query: np.ndarray, out: np.ndarray) -> None:
    """out[i] = |rows[i] - query|^2, summed in float32 so that the inner loop vectorises."""
    for i in range(out.shape[0]):
        acc = np.float32(0.0)
        for j in range(query.shape[0]):
            diff = rows[i, j] - query[j]
            acc += diff * diff
        out[i] = acc


@numba.njit(cache=True)
def episodic_rewards(memory: np.ndarray, sizes: np.ndarray, queries: np.ndarray, mean_state: np.ndarray,
                     k: int, xi: float, eps: float, c: float, s_m: float) -> np.ndarray:
    """r_episodic of each env's query against its memory.

    memory: [E, M, D] float32, env e's first min(sizes[e], M) rows in use; sizes: [E] int64;
    queries: [E, D] float32; mean_state: [E, 2] float64 (running mean of squared k-NN distances and
    its count), updated in place -> [E] float64.
    """
    num_envs, capacity, _ = memory.shape
    out = np.zeros(num_envs)
    params = (k, xi, eps, c, s_m)
    for e in range(num_envs):
        n = min(sizes[e], capacity)
        if n == 0:
            continue
        dists = np.empty(n, np.float32)
        _squared_distances(memory[e, :n], queries[e], dists)
        nearest = np.partition(dists, k - 1)[:k] if n > k else dists
        out[e] = _reward_of(nearest.astype(np.float64), mean_state, e, params)
    return out


class EpisodicMemory:
    """The episodic memories of an actor's E envs: capacity embeddings of dimension D each, a ring
    (the oldest are overwritten once an episode outgrows it), emptied by `reset(e)` at an episode start."""

    def __init__(self, num_envs: int, dim: int, capacity: int = 30_000, params: EpisodicParams = EpisodicParams()):
        self.memory = np.zeros((num_envs, capacity, dim), np.float32)
        self.sizes = np.zeros(num_envs, np.int64)
        self.mean_state = np.zeros((num_envs, 2), np.float64)
        self.params = params

    def reset(self, env: int, embedding: np.ndarray | None = None) -> None:
        """Empty env's memory at an episode start; then hold `embedding` [D] (the first observation's),
        if given, so that coming back to the start is not new."""
        self.sizes[env] = 0
        if embedding is not None:
            self.memory[env, 0] = embedding
            self.sizes[env] = 1

    def step(self, embeddings: np.ndarray) -> np.ndarray:
        """embeddings: [E, D] of this step's observations -> r_episodic [E]; then adds them."""
        p = self.params
        rewards = episodic_rewards(self.memory, self.sizes, np.ascontiguousarray(embeddings, np.float32),
                                   self.mean_state, p.k, p.cluster_distance, p.kernel_epsilon, p.c, p.max_similarity)
        capacity = self.memory.shape[1]
        rows = self.sizes % capacity
        self.memory[np.arange(len(rows)), rows] = embeddings
        self.sizes += 1
        return rewards
