"""Train an asynchronous method: `python -m a3c.train --algo a3c --env-id CartPole-v1`.

main(cfg) owns every process and shared object of the run: the shared model (and target network),
the shared RMSProp statistics, the progress counters, the worker processes and the evaluator.
A2C (`--algo a2c`) has no workers: its envs are stepped and its updates made in this process, by the
owner loop's work (a3c/a2c.py).
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from a3c.a2c import A2CWork
from a3c.config import Config, make_config
from a3c.network import make_model
from a3c.optim import SharedAdam, SharedRMSprop
from a3c.worker import SharedParts, run_worker
from common.cli import run_cli
from common.counters import RunCounters
from common.recipe import TrainRun, checkpoint_meta, probe_env
from common.run import RunSummary


def run_meta(cfg: Config, model: nn.Module) -> dict[str, Any]:
    """What this family's checkpoints must match to be resumed or evaluated."""
    return checkpoint_meta(cfg, "a3c", model)


def build_shared(cfg: Config, obs_shape: tuple[int, ...], num_actions: int) -> SharedParts:
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, obs_shape, num_actions).share_memory()
    target = None
    if not cfg.is_policy_method:
        target = make_model(cfg, obs_shape, num_actions)
        target.load_state_dict(model.state_dict())
        target.share_memory()
    if cfg.optimizer == "adam":
        optimizer = SharedAdam(model.parameters(), cfg.lr, beta2=cfg.adam_beta2, eps=cfg.adam_eps,
                               max_grad_norm=cfg.max_grad_norm)
    else:
        optimizer = SharedRMSprop(model.parameters(), cfg.lr, cfg.rmsprop_alpha, cfg.rmsprop_eps, cfg.max_grad_norm,
                                  cfg.rmsprop_initial_g)
    optimizer.share_memory()
    target_epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
    learners = 1 if cfg.algo == "a2c" else cfg.num_workers
    return SharedParts(model, target, target_epoch, optimizer, RunCounters(learners))


class SharedState:
    """What a checkpoint keeps of the shared parts besides the counters."""

    def __init__(self, cfg: Config, shared: SharedParts):
        self.cfg, self.shared = cfg, shared

    def state_dict(self) -> dict[str, Any]:
        shared = self.shared
        return {"model": shared.model.state_dict(),
                "target": shared.target.state_dict() if shared.target is not None else {},
                "optimizer": shared.optimizer.statistics()}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """In place, into the shared objects; the counters are loaded already."""
        shared = self.shared
        shared.model.load_state_dict(saved["model"])
        if shared.target is not None:
            shared.target.load_state_dict(saved["target"])
        shared.optimizer.load_statistics(saved["optimizer"])
        frames = shared.counters.total_steps() * self.cfg.frames_per_step
        shared.target_epoch[0] = frames // self.cfg.target_update_frames


def main(cfg: Config) -> RunSummary:
    env = probe_env(cfg)
    obs_shape, num_actions = env.obs_shape, env.num_actions
    shared = build_shared(cfg, obs_shape, num_actions)
    run = TrainRun(cfg, run_meta(cfg, shared.model), SharedState(cfg, shared), shared.counters)
    if cfg.algo == "a2c":
        return main_a2c(cfg, run, shared)
    print(f"{cfg.algo} on {cfg.env_id}: {cfg.num_workers} workers, run dir {run.run_dir}", flush=True)
    for rank in range(cfg.num_workers):
        run.supervisor.start(f"worker-{rank}", run_worker, (rank, cfg, shared))
    run.start_evaluator(shared.model)
    return run.own()


def main_a2c(cfg: Config, run: TrainRun, shared: SharedParts) -> RunSummary:
    """A2C: the evaluator is the only child; the owner loop steps the envs and updates between its checks."""
    work = A2CWork(cfg, shared)
    print(f"a2c on {cfg.env_id}: {cfg.num_envs} envs in this process, run dir {run.run_dir}", flush=True)
    try:
        run.start_evaluator(shared.model)
        return run.own(work)
    finally:
        work.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m a3c.train")


if __name__ == "__main__":
    sys.exit(cli())
