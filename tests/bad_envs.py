"""Envs that go wrong in the ways a user's own env can, registered on import so that
`make_env("tests.bad_envs:ResetRaises-v0", ...)` builds them in any process (tests/test_hardening.py)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class ResetRaises(gym.Env):
    """Builds, then fails in reset, as an env whose simulator is missing does."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("the simulator is not installed\n(a second line of detail)")


class StepRaises(ResetRaises):
    """Resets, then fails in its first step."""

    def reset(self, *, seed=None, options=None):
        super(ResetRaises, self).reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        raise ValueError("step needs a connection")


class Box4D(gym.Env):
    """Observations of 4 dimensions (a short clip of RGB images): no network here takes them."""

    observation_space = gym.spaces.Box(0, 255, (2, 16, 16, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros((2, 16, 16, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((2, 16, 16, 3), np.uint8), 0.0, False, False, {}


class WrongShape(StepRaises):
    """Announces 3-vectors and returns 5-vectors."""

    def reset(self, *, seed=None, options=None):
        return np.zeros(5, np.float32), {}


for _name, _cls in [("ResetRaises-v0", ResetRaises), ("StepRaises-v0", StepRaises), ("Box4D-v0", Box4D),
                    ("WrongShape-v0", WrongShape)]:
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls, max_episode_steps=100)
