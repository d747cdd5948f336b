"""The workloads that benchmarks/throughput.py times, each run by `benchmarks.measure.in_fresh_process`:
gymnasium's and EnvPool's env stepping, one A3C worker, one R2D2 actor, the R2D2 learner and the two
replays' operations. Each returns a `Rate` (per wall-clock second and per CPU-second) or a dict of them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.measure import (BATCH_SIZE, Rate, StopAfter, actor_rate, env_shape, env_steps, fill_transition_replay,
                                insert_rate, learner_rate, sample_update_rate, scaled, synthetic_frames, timed_rate)

SEQUENCE_BLOCK = 4  # sequences per insert, as an R2D2 actor env inserts them (replay_block_size)


def gym_env_steps(env_id: str, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of `gym.make(env_id)` with its defaults (ALE v5: frameskip 4, sticky actions 0.25;
    MinAtar's own grids), random actions."""
    import ale_py
    import gymnasium as gym

    from common.envs import register_env_family

    gym.register_envs(ale_py)
    register_env_family(env_id)
    return env_steps([gym.make(env_id)], seconds, warmup_seconds)


def envpool_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of an EnvPool batch of `num_envs` envs, one worker thread, synchronous steps, on
    our protocol (no-ops, frameskip 4, 84x84 grayscale, 4-frame stack, fire reset, episodic life,
    reward clip, 27,000-step cap); EnvPool resets finished envs itself."""
    import envpool

    env = envpool.make(env_id.removeprefix("ALE/"), env_type="gymnasium", num_envs=num_envs, batch_size=num_envs,
                       num_threads=1, episodic_life=True, reward_clip=True, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    num_actions = int(env.action_space.n)

    def step() -> int:
        env.step(rng.integers(num_actions, size=num_envs))
        return num_envs

    return timed_rate(step, seconds, warmup_seconds)


def a3c_worker_steps(env_id: str, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of one A3C worker (`a3c.worker.run_worker`, the default --algo a3c) on the shared
    model and optimizer, counted from the worker's step counter."""
    from a3c.config import make_config
    from a3c.train import build_shared
    from a3c.worker import run_worker

    cfg = make_config({"env_id": env_id, "num_workers": 1})
    obs_shape, num_actions = env_shape(env_id)[:2]
    shared = build_shared(cfg, obs_shape, num_actions)
    stop = StopAfter(lambda: int(shared.counters.steps[0]), seconds, warmup_seconds)
    run_worker(0, cfg, shared, stop)
    return stop.rate()


def r2d2_actor_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of one R2D2 actor (`r2d2.actor.Actor.step`: its envs, one batched LSTM step,
    sequence cutting, initial priorities, replay inserts)."""
    from r2d2.actor import Actor
    from r2d2.config import make_config
    from r2d2.network import make_network
    from r2d2.train import replay_config

    return _sequence_actor_steps(Actor, make_config, make_network, replay_config, env_id, num_envs, seconds,
                                 warmup_seconds)


def ngu_actor_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of one NGU actor (`ngu.actor.Actor.step`: R2D2's work, plus the embedding and RND
    on the observations reached and the episodic k-NN of all its envs)."""
    from ngu.actor import Actor
    from ngu.config import make_config
    from ngu.network import make_model
    from ngu.train import replay_config

    return _sequence_actor_steps(Actor, make_config, make_model, replay_config, env_id, num_envs, seconds,
                                 warmup_seconds)


def _sequence_actor_steps(actor_class: Any, make_config: Any, make_net: Any, replay_config: Any, env_id: str,
                          num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    from common.counters import RunCounters
    from common.distributed.params import PublishedParams
    from common.replay.sequence import SequenceReplay

    cfg = make_config({"env_id": env_id, "num_workers": 1, "envs_per_actor": num_envs, "replay_capacity": 64})
    env = env_shape(env_id)
    replay = SequenceReplay.create(replay_config(cfg, env))
    try:
        params = PublishedParams(make_net(cfg, env.obs_shape, env.num_actions))
        return actor_rate(actor_class(0, cfg, replay, params, RunCounters(1)), num_envs, seconds, warmup_seconds)
    finally:
        replay.close()


def agent57_actor_steps(env_id: str, num_envs: int, seconds: float, warmup_seconds: float) -> Rate:
    """Agent steps/s of one Agent57 actor (`agent57.actor.Actor.step`: NGU's work with two networks'
    steps, and the bandit at each episode start)."""
    from agent57.actor import Actor
    from agent57.bandit import BanditState
    from agent57.config import make_config
    from agent57.network import make_model
    from agent57.train import replay_config

    cfg = make_config({"env_id": env_id})

    def actor_class(*args: Any) -> Any:
        return Actor(*args, BanditState.zeros(cfg.bandit_window))

    return _sequence_actor_steps(actor_class, make_config, make_model, replay_config, env_id, num_envs, seconds,
                                 warmup_seconds)


def ngu_learner_updates(env_id: str, seconds: float, warmup_seconds: float) -> Rate:
    """NGU learner updates/s (its batch and sequence defaults for env_id), on a replay of 256 sequences
    filled by an NGU actor."""
    from ngu.actor import Actor
    from ngu.config import make_config
    from ngu.learner import Learner
    from ngu.train import replay_config

    return _sequence_learner_updates(make_config, replay_config, Learner, Actor, (), env_id, seconds, warmup_seconds)


def agent57_learner_updates(env_id: str, seconds: float, warmup_seconds: float) -> Rate:
    """Agent57 learner updates/s (two networks), as `ngu_learner_updates`."""
    from agent57.actor import Actor
    from agent57.bandit import BanditState
    from agent57.config import make_config
    from agent57.learner import Learner
    from agent57.train import replay_config

    window = make_config({"env_id": env_id}).bandit_window
    return _sequence_learner_updates(make_config, replay_config, Learner, Actor, (BanditState.zeros(window),), env_id,
                                     seconds, warmup_seconds)


def _sequence_learner_updates(make_config: Any, replay_config: Any, learner_class: Any, actor_class: Any,
                              actor_extra: tuple, env_id: str, seconds: float, warmup_seconds: float) -> Rate:
    import torch

    from common.counters import RunCounters
    from common.distributed.params import PublishedParams
    from common.replay.sequence import SequenceReplay

    cfg = make_config({"env_id": env_id, "num_workers": 1, "replay_capacity": 256})
    env = env_shape(env_id)
    replay = SequenceReplay.create(replay_config(cfg, env))
    try:
        learner = learner_class(cfg, env.obs_shape, env.num_actions, torch.device("cpu"), replay, RunCounters(1))
        actor = actor_class(0, cfg, replay, PublishedParams(learner.net), RunCounters(1), *actor_extra)
        while len(replay) < 2 * cfg.batch_size:
            actor.step()
        actor.close()
        return learner_rate(learner, seconds, warmup_seconds)
    finally:
        replay.close()


def episodic_knn_seconds(memory_size: int, num_envs: int, repeats: int, dim: int = 32) -> float:
    """Seconds per call of NGU's batched episodic k-NN (`ngu.episodic.episodic_rewards`) over `num_envs`
    memories of `memory_size` random embeddings of `dim` floats each (median of `repeats` calls)."""
    import time

    from ngu.episodic import EpisodicParams, episodic_rewards

    rng = np.random.default_rng(0)
    memory = rng.random((num_envs, memory_size, dim), dtype=np.float32)
    sizes = np.full(num_envs, memory_size, np.int64)
    mean_state = np.zeros((num_envs, 2))
    p = EpisodicParams()
    times = []
    for _ in range(repeats + 1):  # the first call compiles (or loads the cache)
        queries = rng.random((num_envs, dim), dtype=np.float32)
        start = time.perf_counter()
        episodic_rewards(memory, sizes, queries, mean_state, p.k, p.cluster_distance, p.kernel_epsilon, p.c,
                         p.max_similarity)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def sequence_block(replay: Any, num: int, rng: np.random.Generator) -> Any:
    """`num` full synthetic sequences for `replay.insert`, cut from one episode as an actor cuts them
    (consecutive ones overlapping), with random frames, actions, rewards, states and priorities."""
    from common.replay.sequence import SequenceBlock

    cfg = replay.config
    stride = cfg.length - cfg.overlap
    steps = stride * np.arange(num)[:, None] + np.arange(cfg.length)  # [M, T]: each step's number
    frames = synthetic_frames(int(steps.max()) + cfg.stack, cfg.frame_shape, cfg.obs_dtype, rng)
    state = lambda: rng.standard_normal((num, cfg.state_size)).astype(np.float32)  # noqa: E731
    return SequenceBlock(frames, np.empty(0, np.int64), steps[..., None] + np.arange(cfg.stack),
                         action=rng.integers(0, 6, (num, cfg.length)), reward=rng.random((num, cfg.length)),
                         discount=np.full((num, cfg.length), 0.997), mask=np.ones((num, cfg.length), bool),
                         h=state(), c=state(), prev_action=np.zeros(num, np.int64), prev_reward=np.zeros(num),
                         episode_start=np.zeros(num, bool), next_h=state(), next_c=state(),
                         priority=rng.uniform(0.1, 10.0, num))


def r2d2_setup(env_id: str, capacity: int, device: str = "cpu") -> tuple[Any, Any]:
    """(R2D2's Atari config with `capacity` sequences, its sequence replay filled with synthetic ones)."""
    from common.replay.sequence import SequenceReplay
    from r2d2.config import make_config
    from r2d2.train import replay_config

    cfg = make_config({"env_id": env_id, "replay_capacity": capacity, "learning_starts": 0, "device": device})
    replay = SequenceReplay.create(replay_config(cfg, env_shape(env_id)))
    fill_sequence_replay(replay, np.random.default_rng(0))
    return cfg, replay


def fill_sequence_replay(replay: Any, rng: np.random.Generator) -> None:
    """Fill `replay` with synthetic sequences, in blocks of up to 64 cut from one episode each (long
    episodes, as Atari's: a frame ring then holds its capacity of sequences)."""
    capacity = replay.config.capacity
    while len(replay) < capacity:
        replay.insert(sequence_block(replay, min(64, capacity - len(replay)), rng))


def r2d2_learner_sequences(env_id: str, device: str, capacity: int, seconds: float, warmup_seconds: float) -> Rate:
    """R2D2 learner sequences/s (updates/s x batch 64) on a replay of synthetic sequences."""
    import torch

    from common.counters import RunCounters
    from r2d2.learner import Learner

    cfg, replay = r2d2_setup(env_id, capacity, device)
    try:
        obs_shape, num_actions = env_shape(env_id)[:2]
        learner = Learner(cfg, obs_shape, num_actions, torch.device(device), replay, RunCounters(1))
        return scaled(learner_rate(learner, seconds, warmup_seconds), cfg.batch_size)
    finally:
        replay.close()


def transition_replay_ops(seconds: float, warmup_seconds: float) -> dict[str, Any]:
    """Atari transition replay, 100k capacity, filled: inserts/s of one writer process (wall clock
    only: the writer is another process) and sample-512 + priority-update batches/s."""
    from common.replay.transition import TransitionReplay, TransitionReplayConfig

    replay = TransitionReplay.create(TransitionReplayConfig(100_000, frame_shape=(84, 84), frame_stack=4))
    try:
        fill_transition_replay(replay, 100_000, np.random.default_rng(0))
        return {"insert": insert_rate(replay, 1, seconds),
                "sample": sample_update_rate(replay, BATCH_SIZE, seconds, warmup_seconds)}
    finally:
        replay.close()


def sequence_replay_ops(env_id: str, capacity: int, seconds: float, warmup_seconds: float) -> dict[str, Rate]:
    """R2D2's sequence replay, filled: sequences/s inserted in blocks of 4 (evicting the oldest) and
    sample-64 + priority-update batches/s."""
    _, replay = r2d2_setup(env_id, capacity)
    try:
        block = sequence_block(replay, SEQUENCE_BLOCK, np.random.default_rng(1))

        def insert() -> int:
            replay.insert(block)
            return SEQUENCE_BLOCK

        return {"insert": timed_rate(insert, seconds, warmup_seconds),
                "sample": sample_update_rate(replay, 64, seconds, warmup_seconds)}
    finally:
        replay.close()
