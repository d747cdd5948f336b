"""Train Ape-X DQN (`python -m apex.train`) or serial DQN (`python -m apex.train --serial`).

main(cfg) owns every process and shared object of the run: the shared replay, the published
parameters, the progress counters, the rate-limit tensor, the actor processes and the evaluator.
The learner runs in this process, between the owner loop's checks; so do the actors in serial mode.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from apex.actor import Actor, run_actor
from apex.config import Config, make_config
from apex.learner import Learner, Prefetcher, RateLimit, resolve_device
from apex.network import PublishedParams
from common.checkpoint import load_checkpoint, network_signature, save_checkpoint
from common.cli import run_cli
from common.errors import UsageError
from common.counters import RunCounters
from common.envs import make_env
from common.evaluation import run_evaluator
from common.logger import RunLogger
from common.owner import own_run
from common.replay.base import ReplayBase
from common.replay.transition import TransitionReplay, TransitionReplayConfig
from common.run import RunSummary, default_run_dir, write_config
from common.supervisor import Supervisor, eprint

WORK_SECONDS = 0.02  # learner (and serial actor) work between two checks of the owner loop


def replay_config(cfg: Config, obs_shape: tuple[int, ...]) -> TransitionReplayConfig:
    """Stacked frames [S, H, W] are stored one frame per step; vectors [D] as they are."""
    stacked = len(obs_shape) == 3
    return TransitionReplayConfig(
        capacity=cfg.replay_capacity, frame_shape=obs_shape[1:] if stacked else obs_shape,
        frame_dtype="uint8" if stacked else "float32", frame_stack=obs_shape[0] if stacked else None,
        alpha=cfg.alpha if cfg.prioritized else 0.0)  # alpha 0: every priority^alpha is 1, uniform


class ApexWork:
    """The learner's share of the owner loop: updates with prefetched batches, under the rate limit."""

    def __init__(self, learner: Learner, params: PublishedParams, rate: RateLimit):
        self.learner, self.params, self.rate = learner, params, rate
        self.prefetcher: Prefetcher | None = None

    def __call__(self) -> None:
        learner = self.learner
        if self.prefetcher is None:
            if not learner.ready():
                time.sleep(0.01)
                return
            self.rate.begin(learner.inserted(), learner.updates)
            self.rate.publish(learner.updates)
            self.prefetcher = Prefetcher(learner)
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline:
            if not self.rate.may_update(learner.inserted(), learner.updates):
                time.sleep(0.001)
                continue
            batch = self.prefetcher.get(timeout=WORK_SECONDS)
            if batch is not None:
                learner.update(batch)
                self.params.publish(learner.net)
                self.rate.publish(learner.updates)

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


class SerialWork:
    """Serial DQN: every actor steps its envs once, then the learner catches up with the ratio.

    Nothing here depends on the clock except how often the owner loop gets to look, so a fixed
    seed gives the same updates; it stops exactly at total_steps.
    """

    def __init__(self, cfg: Config, actors: list[Actor], learner: Learner, params: PublishedParams):
        self.cfg, self.actors, self.learner, self.params = cfg, actors, learner, params
        self.rate = RateLimit(cfg.samples_per_insert, cfg.batch_size)

    def __call__(self) -> None:
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline and self.learner.counters.total_steps() < self.cfg.total_steps:
            for actor in self.actors:
                actor.step()
            self.learn()

    def learn(self) -> None:
        learner = self.learner
        if not learner.ready():
            return
        if self.rate.start is None:
            self.rate.begin(learner.inserted(), learner.updates)
        if self.cfg.samples_per_insert <= 0:
            self._update()
            return
        while self.rate.may_update(learner.inserted(), learner.updates):
            self._update()

    def _update(self) -> None:
        self.learner.update(self.learner.sample())
        self.params.publish(self.learner.net)

    def close(self) -> None:
        for actor in self.actors:
            actor.close()


def start_actors(cfg: Any, supervisor: Supervisor, actor_cls: Callable[..., Any], actor_main: Callable[..., None],
                 replay: ReplayBase, learner: Any, params: PublishedParams,
                 counters: RunCounters) -> ApexWork | SerialWork:
    """The actors and the learner's share of the owner loop (Ape-X and R2D2).

    Serial: `actor_cls(rank, cfg, replay, params, counters)` in this process, stepped by SerialWork.
    Otherwise one supervised process per actor running `actor_main(rank, cfg, replay handle, params,
    counters, insert limit, should_stop)`, and ApexWork for the learner under the rate limit.
    """
    if cfg.serial:
        actors = [actor_cls(rank, cfg, replay, params, counters) for rank in range(cfg.num_workers)]
        return SerialWork(cfg, actors, learner, params)
    insert_limit = torch.full((1,), -1, dtype=torch.int64).share_memory_()
    for rank in range(cfg.num_workers):
        supervisor.start(f"actor-{rank}", actor_main, (rank, cfg, replay.handle, params, counters, insert_limit))
    return ApexWork(learner, params, RateLimit(cfg.samples_per_insert, cfg.batch_size, insert_limit))


def restore(cfg: Config, meta: dict, learner: Learner, counters: RunCounters) -> float:
    """Loads --resume into the learner and counters; returns the run's wall seconds so far."""
    path, payload = load_checkpoint(cfg.resume, meta)
    try:
        learner.load_state_dict(payload)
        counters.load_state_dict(payload["counters"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"checkpoint {path} does not fit this run ({err})") from None
    print(f"resumed from {path} at {counters.total_steps():,} steps and {learner.updates:,} updates "
          f"(the replay refills before learning goes on)", flush=True)
    return float(payload.get("wall_seconds", 0.0))


def prepare_run(cfg: Any) -> tuple[tuple[int, ...], int, torch.device, Path]:
    """The env's observation shape and action count, the learner's device and the run directory
    (Ape-X and R2D2 configs); raises UsageError for a bad env id or an absent CUDA."""
    torch.set_num_threads(1)
    probe = make_env(cfg.env_id, cfg.seed)
    obs_shape, num_actions = tuple(probe.observation_space.shape), int(probe.action_space.n)
    probe.close()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but CUDA is not available here")
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.algo, cfg.env_id, cfg.seed)
    return obs_shape, num_actions, device, run_dir


def main(cfg: Config) -> RunSummary:
    obs_shape, num_actions, device, run_dir = prepare_run(cfg)
    counters = RunCounters(cfg.num_workers)
    replay = TransitionReplay.create(replay_config(cfg, obs_shape))
    work: ApexWork | SerialWork | None = None
    try:
        learner = Learner(cfg, obs_shape, num_actions, device, replay, counters)
        meta = {"family": "apex", "algo": cfg.algo, "env_id": cfg.env_id, "dueling": cfg.dueling,
                "network": network_signature(learner.net)}
        wall_offset = restore(cfg, meta, learner, counters) if cfg.resume else 0.0
        params = PublishedParams(learner.net)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, cfg)
        logger = RunLogger(run_dir, append=bool(cfg.resume), title=f"{cfg.algo} on {cfg.env_id}")
        mode = "serial" if cfg.serial else f"{cfg.num_workers} actor processes"
        print(f"{cfg.algo} on {cfg.env_id}: {mode} x {cfg.envs_per_actor} envs, learner on {device}, "
              f"run dir {run_dir}", flush=True)

        supervisor = Supervisor(log=eprint)
        work = start_actors(cfg, supervisor, Actor, run_actor, replay, learner, params, counters)
        if cfg.eval_interval_seconds > 0:
            supervisor.start("evaluator", run_evaluator,
                             (params.model, cfg.env_id, cfg.sticky_actions, cfg.eval_interval_seconds,
                              cfg.eval_episodes, cfg.seed + 999_983, counters))
        summary = RunSummary(run_dir=run_dir, env_id=cfg.env_id)

        def checkpoint(wall_seconds: float) -> Path:
            return save_checkpoint(run_dir, counters.total_steps(),
                                   checkpoint_payload(meta, learner, counters, wall_seconds))

        return own_run(cfg, counters, supervisor, logger, summary, wall_offset, checkpoint, work)
    finally:
        if work is not None:
            work.close()
        replay.close()


def checkpoint_payload(meta: dict, learner: Learner, counters: RunCounters, wall_seconds: float) -> dict[str, Any]:
    """Everything a resume needs except the replay contents (which can be gigabytes; a resumed run refills)."""
    return {"meta": meta, **learner.state_dict(), "counters": counters.state_dict(), "wall_seconds": wall_seconds}


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m apex.train")


if __name__ == "__main__":
    sys.exit(cli())
