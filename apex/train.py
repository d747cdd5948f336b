"""Train Ape-X DQN (`python -m apex.train`) or serial DQN (`python -m apex.train --serial`).

main(cfg) owns every process and shared object of the run: the shared replay, the published
parameters, the progress counters, the rate-limit tensor, the actor processes and the evaluator.
The learner runs in this process, between the owner loop's checks; so do the actors in serial mode.
"""
from __future__ import annotations

import sys
from functools import partial

from apex.actor import Actor, run_actor
from apex.config import Config, make_config
from apex.learner import Learner
from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.learner_loop import (ParallelLearnerWork, SerialActorLearnerWork, resolve_device,
                                             resume_note, start_actors)
from common.distributed.params import PublishedParams
from common.recipe import TrainRun, checkpoint_meta, probe_env
from common.replay.transition import TransitionReplay, TransitionReplayConfig
from common.run import RunSummary


def replay_config(cfg: Config, obs_shape: tuple[int, ...]) -> TransitionReplayConfig:
    """Stacked frames [S, H, W] are stored one frame per step; vectors [D] as they are."""
    stacked = len(obs_shape) == 3
    return TransitionReplayConfig(
        capacity=cfg.replay_capacity, frame_shape=obs_shape[1:] if stacked else obs_shape,
        frame_dtype="uint8" if stacked else "float32", frame_stack=obs_shape[0] if stacked else None,
        alpha=cfg.alpha if cfg.prioritized else 0.0)  # alpha 0: every priority^alpha is 1, uniform


def main(cfg: Config) -> RunSummary:
    obs_shape, num_actions = probe_env(cfg)
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    replay = TransitionReplay.create(replay_config(cfg, obs_shape))
    work: ParallelLearnerWork | SerialActorLearnerWork | None = None
    try:
        learner = Learner(cfg, obs_shape, num_actions, device, replay, counters)
        meta = checkpoint_meta(cfg, "apex", learner.net, dueling=cfg.dueling)
        run = TrainRun(cfg, meta, learner, counters, partial(resume_note, learner), replay)
        params = PublishedParams(learner.net)
        mode = "serial" if cfg.serial else f"{cfg.num_workers} actor processes"
        print(f"{cfg.algo} on {cfg.env_id}: {mode} x {cfg.envs_per_actor} envs, learner on {device}, "
              f"run dir {run.run_dir}", flush=True)
        work = start_actors(cfg, run.supervisor, Actor, run_actor, replay, learner, params, counters)
        run.start_evaluator(params.model)
        return run.own(work)
    finally:
        if work is not None:
            work.close()
        replay.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m apex.train")


if __name__ == "__main__":
    sys.exit(cli())
