"""Evaluation of a shared model in its own process, with greedy actions on full games."""
from __future__ import annotations

import copy
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.envs import episode_return, make_env


def evaluate(model: nn.Module, env: gym.Env, episodes: int, seed: int,
             should_stop: Callable[[], bool] = lambda: False) -> list[float]:
    """Raw returns of `episodes` full games played greedily; fewer if asked to stop.

    `model` needs `initial_state()` and `greedy_action(obs, state) -> (action, state)`.
    """
    returns: list[float] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        state = model.initial_state()
        while True:
            with torch.inference_mode():
                action, state = model.greedy_action(torch.as_tensor(obs), state)
            obs, _, terminated, truncated, info = env.step(action)
            finished = episode_return(info)
            if finished is not None:
                returns.append(finished)
                break
            if terminated or truncated:  # cannot happen without the statistics wrapper; kept as a guard
                break
            if should_stop():
                return returns
    return returns


PolicyFor = Callable[[nn.Module, gym.Env], tuple[Any, gym.Env]]


def run_evaluator(shared_model: nn.Module, env_id: str, sticky_actions: bool, frame_stack: int, interval_seconds: float,
                  episodes: int, seed: int, counters: RunCounters, should_stop: Callable[[], bool],
                  policy_for: PolicyFor | None = None) -> None:
    """Every interval_seconds: copy the shared model, play `episodes` games, publish the result.

    policy_for(model, env) -> (policy, env), for a policy that reads more than the observation (R2D2
    takes the previous reward): the policy over the local copy `model`, and the env wrapped to give it
    what it reads. Pass it with functools.partial, so that the evaluator still pickles for `spawn`.
    """
    model = copy.deepcopy(shared_model)
    env = make_env(env_id, seed, training=False, sticky_actions=sticky_actions, frame_stack=frame_stack)
    policy, env = policy_for(model, env) if policy_for is not None else (model, env)
    next_time = time.monotonic() + interval_seconds
    round_ = 0
    while not should_stop():
        if time.monotonic() < next_time:
            time.sleep(min(0.05, next_time - time.monotonic()))
            continue
        env_steps = counters.total_steps()
        model.load_state_dict(shared_model.state_dict())
        returns = evaluate(policy, env, episodes, seed + 100_000 * round_, should_stop)
        if len(returns) == episodes:
            counters.add_eval(env_steps, float(np.mean(returns)), float(np.std(returns)), episodes)
        round_ += 1
        next_time = time.monotonic() + interval_seconds
    env.close()
