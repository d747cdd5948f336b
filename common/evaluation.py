"""Evaluation of a shared model in its own process, with greedy actions on full games."""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.envs import episode_return, make_env
from common.errors import UsageError
from common.video import EpisodeRecorder, recordable_env

VIDEO_FPS = 30


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
                  policy_for: PolicyFor | None = None, video_dir: Path | None = None,
                  video_interval_seconds: float = 0.0) -> None:
    """Every interval_seconds: copy the shared model, play `episodes` games, publish the result.

    policy_for(model, env) -> (policy, env), for a policy that reads more than the observation (R2D2
    takes the previous reward): the policy over the local copy `model`, and the env wrapped to give it
    what it reads. Pass it with functools.partial, so that the evaluator still pickles for `spawn`.

    With video_interval_seconds > 0, the first game of the first evaluation, and then of the first one
    at least that many seconds after the last recording, is recorded to video_dir/eval-<steps>.mp4
    (`common.video`: one frame per agent step).
    """
    model = copy.deepcopy(shared_model)
    env, use_render = _evaluator_env(env_id, seed, sticky_actions, frame_stack, video_interval_seconds > 0)
    next_time = time.monotonic() + interval_seconds
    next_video = next_time
    round_ = 0
    while not should_stop():
        wait = next_time - time.monotonic()
        if wait > 0:  # one reading of the clock: a second one may already be past next_time
            time.sleep(min(0.05, wait))
            continue
        env_steps = counters.total_steps()
        model.load_state_dict(shared_model.state_dict())
        recorder = None
        if use_render is not None and video_dir is not None and time.monotonic() >= next_video:
            video_dir.mkdir(parents=True, exist_ok=True)
            recorder = EpisodeRecorder(env, video_dir / f"eval-{env_steps:012d}.mp4", VIDEO_FPS, use_render)
            next_video = time.monotonic() + video_interval_seconds
        played = env if recorder is None else recorder
        policy, played = policy_for(model, played) if policy_for is not None else (model, played)
        returns = evaluate(policy, played, episodes, seed + 100_000 * round_, should_stop)
        if recorder is not None:
            recorder.finish()
        if len(returns) == episodes:
            counters.add_eval(env_steps, float(np.mean(returns)), float(np.std(returns)), episodes)
        round_ += 1
        next_time = time.monotonic() + interval_seconds
    env.close()


def _evaluator_env(env_id: str, seed: int, sticky_actions: bool, frame_stack: int,
                   record: bool) -> tuple[gym.Env, bool | None]:
    """The evaluator's env, and whether its screens come from render() when recording (None: no videos).
    An env that cannot be recorded is said once on stderr, and the run goes on without videos."""
    if record:
        try:
            return recordable_env(env_id, seed, sticky_actions, frame_stack)
        except UsageError as err:
            print(f"evaluator: no videos: {err}", file=sys.stderr, flush=True)
    return make_env(env_id, seed, training=False, sticky_actions=sticky_actions, frame_stack=frame_stack), None
