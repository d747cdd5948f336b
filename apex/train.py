"""Train Ape-X DQN (`python -m apex.train`), serial DQN (`python -m apex.train --serial`) or Gorila
(`python -m apex.train --gorila`).

main(cfg) owns every process and shared object of the run: the shared replay, the published
parameters, the progress counters, the rate-limit tensor, the actor processes and the evaluator.
The learner runs in this process, between the owner loop's checks; so do the actors in serial mode.
With --gorila it owns one replay per bundle, the bundle processes, and the parameter server, which
runs in this process in the learner's place (`common.distributed.param_server`).
"""
from __future__ import annotations

import sys
from functools import partial
from typing import Any

import torch
from torch import nn

from apex.actor import Actor, run_actor, run_bundle
from apex.config import Config, make_config
from apex.learner import Learner
from apex.network import make_network
from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.backend import open_backend
from common.distributed.learner_loop import resolve_device, resume_note
from common.distributed.param_server import ParameterServer, start_bundles
from common.distributed.params import PublishedParams
from common.recipe import EnvProbe, TrainRun, checkpoint_meta, probe_env
from common.replay.transition import TransitionReplay, TransitionReplayConfig
from common.run import RunSummary


def replay_config(cfg: Config, env: EnvProbe) -> TransitionReplayConfig:
    """Stacked frames [S, H, W] are stored one frame per step; other images and vectors as they are.
    Gorila's bundles sample their replays uniformly, as in the paper."""
    stack = env.stacked_frames
    return TransitionReplayConfig(
        capacity=cfg.replay_capacity, frame_shape=env.obs_shape[1:] if stack else env.obs_shape,
        frame_dtype=env.obs_dtype, frame_stack=stack,
        alpha=cfg.alpha if cfg.prioritized and not cfg.gorila else 0.0)  # alpha 0: every priority^alpha is 1, uniform


def run_meta(cfg: Config, net: nn.Module) -> dict[str, Any]:
    """What this family's checkpoints must match to be resumed or evaluated."""
    return checkpoint_meta(cfg, "apex", net, dueling=cfg.dueling)


def main(cfg: Config) -> RunSummary:
    env = probe_env(cfg, threads=cfg.learner_threads)
    if cfg.gorila:
        return train_gorila(cfg, env)
    obs_shape, num_actions = env.obs_shape, env.num_actions
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    backend = open_backend(cfg, TransitionReplay, replay_config(cfg, env))
    work = None
    try:
        learner = Learner(cfg, obs_shape, num_actions, device, backend.replay, counters)
        run = TrainRun(cfg, run_meta(cfg, learner.net), learner, counters, partial(resume_note, learner),
                       backend.saved_replay)
        params = backend.params(learner.net)
        print(f"{cfg.algo} on {cfg.env_id}: {backend.mode} x {cfg.envs_per_actor} envs, learner on {device}, "
              f"run dir {run.run_dir}", flush=True)
        work = backend.start(run.supervisor, Actor, run_actor, learner, params, counters)
        run.start_evaluator(params.model)
        return run.own(work)
    finally:
        if work is not None:
            work.close()
        backend.close()


def train_gorila(cfg: Config, env: EnvProbe) -> RunSummary:
    """Gorila's bundled mode. Each bundle's replay is uniform and is not saved at a clean stop: a
    resumed run refills them (the server's parameters, target and optimizer are in the checkpoint)."""
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    replays: list[TransitionReplay] = []
    try:
        for _ in range(cfg.num_workers):
            replays.append(TransitionReplay.create(replay_config(cfg, env)))
        torch.manual_seed(cfg.seed)
        net = make_network(cfg, env.obs_shape, env.num_actions).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        server = ParameterServer(net, optimizer, counters, cfg.max_grad_norm, cfg.target_update_interval,
                                 cfg.gorila_max_staleness)
        run = TrainRun(cfg, run_meta(cfg, server.net), server, counters, partial(resume_note, server))
        params = PublishedParams(server.net)
        print(f"gorila on {cfg.env_id}: {cfg.num_workers} bundles x {cfg.envs_per_actor} envs, parameter server "
              f"on {device}, run dir {run.run_dir}", flush=True)
        work = start_bundles(cfg, run.supervisor, run_bundle, replays, server, params)
        run.start_evaluator(params.model)
        summary = run.own(work)
        print(work.report(), flush=True)
        return summary
    finally:
        for replay in replays:
            replay.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m apex.train")


if __name__ == "__main__":
    sys.exit(cli())
