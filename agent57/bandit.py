"""Agent57's meta-controller: a sliding-window UCB bandit over the N policies (Badia et al. 2020,
"Agent57", section 4 and Appendix D; after Garivier and Moulines 2011).

At each episode start the bandit picks an arm j (a pair beta_j, gamma_j): every arm once first; then,
with probability epsilon, a uniform arm; otherwise

    argmax_j  mean_j + beta sqrt(1 / N_j)

where N_j is how often arm j was played among the last `window` episodes (of all arms) and mean_j the
mean of its rewards among those; an arm not played in the window has N_j = 0 and an infinite bonus.
The reward of an arm is the undiscounted extrinsic return of the episode it chose. Windows: 160
episodes for an actor, 3,600 for the evaluator (which plays the best windowed mean, epsilon 0.01).

The bandit's memory is three arrays it is handed (`BanditState`): the run's owner keeps them in
shared memory, one row per actor, so a restarted actor goes on with its predecessor's bandit and a
checkpoint holds every actor's.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BanditState(NamedTuple):
    """One bandit's memory: the ring of its last `window` (arm, reward) pairs and its counters."""
    arms: np.ndarray      # [W] int64
    rewards: np.ndarray   # [W] float64
    counters: np.ndarray  # [2] int64: rewards received so far, arms given out so far

    @classmethod
    def zeros(cls, window: int) -> "BanditState":
        return cls(np.zeros(window, np.int64), np.zeros(window, np.float64), np.zeros(2, np.int64))


class SlidingWindowUCB:
    def __init__(self, num_arms: int, state: BanditState, epsilon: float = 0.5, beta: float = 1.0,
                 rng: np.random.Generator | None = None):
        if num_arms < 1 or len(state.arms) < 1:
            raise ValueError(f"a bandit needs arms and a window, got {num_arms} arms, window {len(state.arms)}")
        self.num_arms, self.state, self.epsilon, self.beta = num_arms, state, epsilon, beta
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def window(self) -> int:
        return len(self.state.arms)

    def counts_and_means(self) -> tuple[np.ndarray, np.ndarray]:
        """[N] windowed counts and [N] windowed mean rewards (0 where not played in the window)."""
        held = min(int(self.state.counters[0]), self.window)
        arms, rewards = self.state.arms[:held], self.state.rewards[:held]  # the ring's order does not matter
        counts = np.bincount(arms, minlength=self.num_arms).astype(np.float64)
        sums = np.bincount(arms, weights=rewards, minlength=self.num_arms)
        return counts, np.divide(sums, counts, out=np.zeros(self.num_arms), where=counts > 0)

    def scores(self) -> np.ndarray:
        """[N] windowed mean + beta sqrt(1 / count), +inf for arms not in the window."""
        counts, means = self.counts_and_means()
        bonus = np.divide(self.beta, np.sqrt(counts), out=np.full(self.num_arms, np.inf), where=counts > 0)
        return means + bonus

    def select(self) -> int:
        """The arm of the next episode."""
        given = int(self.state.counters[1])
        if given < self.num_arms:
            arm = given
        elif self.rng.random() < self.epsilon:
            arm = int(self.rng.integers(self.num_arms))
        else:
            arm = int(np.argmax(self.scores()))
        self.state.counters[1] = given + 1
        return arm

    def greedy(self) -> int:
        """The arm with the best windowed mean (arm 0 before any reward)."""
        counts, means = self.counts_and_means()
        return int(np.argmax(np.where(counts > 0, means, -np.inf))) if counts.any() else 0

    def update(self, arm: int, reward: float) -> None:
        """The return of the episode that `arm` played."""
        received = int(self.state.counters[0])
        slot = received % self.window
        self.state.arms[slot], self.state.rewards[slot] = arm, reward
        self.state.counters[0] = received + 1
