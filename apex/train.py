"""Train Ape-X DQN (`python -m apex.train`) or serial DQN (`python -m apex.train --serial`).

main(cfg) owns every process and shared object of the run: the shared replay, the published
parameters, the progress counters, the rate-limit tensor, the actor processes and the evaluator.
The learner runs in this process, between the owner loop's checks; so do the actors in serial mode.
"""
from __future__ import annotations

import sys
from pathlib import Path

from apex.actor import Actor, run_actor
from apex.config import Config, make_config
from apex.learner import Learner
from common.checkpoint import network_signature, save_checkpoint
from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.learner_loop import ParallelLearnerWork, SerialWork, resolve_device, start_actors
from common.distributed.params import PublishedParams
from common.evaluation import run_evaluator
from common.logger import RunLogger
from common.owner import own_run
from common.recipe import checkpoint_payload, prepare_run, restore
from common.replay.transition import TransitionReplay, TransitionReplayConfig
from common.run import RunSummary, write_config
from common.supervisor import Supervisor, eprint


def replay_config(cfg: Config, obs_shape: tuple[int, ...]) -> TransitionReplayConfig:
    """Stacked frames [S, H, W] are stored one frame per step; vectors [D] as they are."""
    stacked = len(obs_shape) == 3
    return TransitionReplayConfig(
        capacity=cfg.replay_capacity, frame_shape=obs_shape[1:] if stacked else obs_shape,
        frame_dtype="uint8" if stacked else "float32", frame_stack=obs_shape[0] if stacked else None,
        alpha=cfg.alpha if cfg.prioritized else 0.0)  # alpha 0: every priority^alpha is 1, uniform


def main(cfg: Config) -> RunSummary:
    obs_shape, num_actions, run_dir = prepare_run(cfg)
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    replay = TransitionReplay.create(replay_config(cfg, obs_shape))
    work: ParallelLearnerWork | SerialWork | None = None
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


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m apex.train")


if __name__ == "__main__":
    sys.exit(cli())
