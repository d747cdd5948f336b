"""A partially observed control task for R2D2's learning test: CartPole-v1 without the velocities.

CartPole's observation is (cart position, cart velocity, pole angle, pole angular velocity); keeping
only the positions makes one observation insufficient to act well, so a policy needs memory (the
standard POMDP variant, e.g. Meng et al. 2021, "Memory-based Deep Reinforcement Learning for POMDPs").
Importing this module registers it with gymnasium, so `make_env("r2d2.envs:CartPoleNoVelocity-v1", ...)`
works in every process (gymnasium imports the module named before the colon).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

POSITIONS = [0, 2]
"""Indices of CartPole's observation that stay: cart position and pole angle."""


class DropVelocities(gym.ObservationWrapper):
    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low[POSITIONS], space.high[POSITIONS], dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[POSITIONS].astype(np.float32)


def make_cartpole_no_velocity(**kwargs) -> gym.Env:
    return DropVelocities(gym.make("CartPole-v1", **kwargs))


if "CartPoleNoVelocity-v1" not in gym.registry:
    gym.register("CartPoleNoVelocity-v1", entry_point=make_cartpole_no_velocity)

ENV_ID = "r2d2.envs:CartPoleNoVelocity-v1"
