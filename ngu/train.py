"""Train NGU (`python -m ngu.train`, or `--serial` for actors and learner in turn in one process).

main(cfg) owns every process and shared object of the run, as R2D2's does: the shared sequence replay
(with NGU's extra columns), the published model (Q-network, embedding and RND together), the progress
counters, the rate-limit tensor, the actor processes and the evaluator. The learner runs in this
process between the owner loop's checks, driven by the runtime's work objects.
"""
from __future__ import annotations

import sys
from functools import partial
from typing import Any

from torch import nn

from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.backend import open_backend
from common.distributed.learner_loop import resolve_device, resume_note
from common.envs import is_atari
from common.evaluation import PolicyFor
from common.recipe import EnvProbe, TrainRun, checkpoint_meta, probe_env
from common.replay.sequence import SequenceReplay, SequenceReplayConfig
from common.run import RunSummary
from ngu.actor import EXTRAS, Actor, greedy_policy, run_actor
from ngu.config import Config, make_config
from ngu.intrinsic import EvaluatorIntrinsic
from ngu.learner import Learner


def replay_config(cfg: Config, env: EnvProbe) -> SequenceReplayConfig:
    """R2D2's sequence replay, with the intrinsic reward, behaviour probability and j of every step."""
    return SequenceReplayConfig(
        capacity=cfg.replay_capacity, obs_shape=env.obs_shape, state_size=cfg.lstm_size,
        length=cfg.sequence_length, overlap=cfg.sequence_overlap, obs_dtype=env.obs_dtype, alpha=cfg.alpha,
        frame_stack=env.stacked_frames, extras=EXTRAS)


def run_meta(cfg: Config, net: nn.Module) -> dict[str, Any]:
    """What this family's checkpoints must match to be resumed or evaluated."""
    return checkpoint_meta(cfg, "ngu", net)


def evaluation_policy(cfg: Config) -> PolicyFor:
    """The evaluator's policy_for: greedy with j = 0, fed the previous reward (clipped on Atari, as the
    actors saw it) and its own intrinsic reward, kept across evaluations."""
    return partial(greedy_policy, clip=is_atari(cfg.env_id), cfg=cfg,
                   intrinsic=EvaluatorIntrinsic(cfg.episodic_capacity, cfg.num_neighbours, cfg.max_modulation))


def main(cfg: Config) -> RunSummary:
    env = probe_env(cfg, threads=cfg.learner_threads)
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    backend = open_backend(cfg, SequenceReplay, replay_config(cfg, env))
    work = None
    try:
        learner = Learner(cfg, env.obs_shape, env.num_actions, device, backend.replay, counters)
        run = TrainRun(cfg, run_meta(cfg, learner.net), learner, counters, partial(resume_note, learner),
                       backend.saved_replay)
        params = backend.params(learner.net)
        print(f"ngu on {cfg.env_id}: {backend.mode} x {cfg.envs_per_actor} envs, {cfg.num_policies} policies, learner on "
              f"{device}, run dir {run.run_dir}", flush=True)
        work = backend.start(run.supervisor, Actor, run_actor, learner, params, counters)
        run.start_evaluator(params.model, evaluation_policy(cfg))
        return run.own(work)
    finally:
        if work is not None:
            work.close()
        backend.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m ngu.train")


if __name__ == "__main__":
    sys.exit(cli())
