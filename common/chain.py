"""A hard-exploration task: a chain with a small reward next to the start and a large one far away.

States 0 .. N-1 on a line; the agent starts at state 1. In each state one of the two actions moves on
("right") and the other back ("left"); which is which is drawn once per state from a fixed seed, as in
DeepSea (Osband et al. 2019), so no single action goes right everywhere. Left from state 1 reaches
state 0, which pays 1 and ends the episode (one step from the start: any policy finds it), and
left from any other state falls back to state 1. State N-1 pays 10 and ends the episode: N - 2 right
moves in a row, which uniform random actions make with probability 2^-(N-2) (1 in 16,384 for N = 16)
and epsilon-greedy exploration around a policy that goes left far less often. An episode also ends
after 2 N steps (a truncation, not a terminal). The observation is the one-hot of the state. The
optimal return is 10; settling for the distractor gives 1.

Importing this module registers it with gymnasium as `common.chain:Chain-v0` (N = 16); other lengths
are `gym.make("common.chain:Chain-v0", length=N)`.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

SMALL, LARGE = 1.0, 10.0
RIGHT_SEED = 2019


class Chain(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, length: int = 16):
        if length < 4:
            raise ValueError(f"a chain needs at least 4 states, got {length}")
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)  # left, right
        self.state = 1
        self.steps = 0
        self.right = np.random.default_rng(RIGHT_SEED).integers(0, 2, length)  # the action that moves on, per state

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state, self.steps = 1, 0
        return self._obs(), {}

    def step(self, action):
        moves_on = int(action) == self.right[self.state]
        self.state = self.state + 1 if moves_on else (0 if self.state == 1 else 1)
        self.steps += 1
        if self.state == 0:
            return self._obs(), SMALL, True, False, {}
        if self.state == self.length - 1:
            return self._obs(), LARGE, True, False, {}
        return self._obs(), 0.0, False, self.steps >= 2 * self.length, {}


if "Chain-v0" not in gym.registry:
    gym.register("Chain-v0", entry_point=Chain, reward_threshold=LARGE)

ENV_ID = "common.chain:Chain-v0"
