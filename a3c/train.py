"""Train an asynchronous method: `python -m a3c.train --algo a3c --env-id CartPole-v1`.

main(cfg) owns every process and shared object of the run: the shared model (and target network),
the shared RMSProp statistics, the progress counters, the worker processes and the evaluator.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from a3c.config import Config, make_config
from a3c.network import make_model
from a3c.optim import SharedRMSprop
from a3c.worker import SharedParts, run_worker
from common.checkpoint import load_checkpoint, network_signature, save_checkpoint
from common.cli import run_cli
from common.errors import UsageError
from common.counters import RunCounters
from common.envs import make_env
from common.evaluation import run_evaluator
from common.logger import RunLogger
from common.owner import own_run
from common.run import RunSummary, default_run_dir, write_config
from common.supervisor import Supervisor, eprint


def build_shared(cfg: Config, obs_shape: tuple[int, ...], num_actions: int) -> SharedParts:
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, obs_shape, num_actions).share_memory()
    target = None
    if not cfg.is_policy_method:
        target = make_model(cfg, obs_shape, num_actions)
        target.load_state_dict(model.state_dict())
        target.share_memory()
    optimizer = SharedRMSprop(model.parameters(), cfg.lr, cfg.rmsprop_alpha, cfg.rmsprop_eps,
                              cfg.max_grad_norm).share_memory()
    target_epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
    return SharedParts(model, target, target_epoch, optimizer, RunCounters(cfg.num_workers))


def checkpoint_payload(cfg: Config, meta: dict, shared: SharedParts, wall_seconds: float) -> dict:
    return {
        "meta": meta,
        "model": shared.model.state_dict(),
        "target": shared.target.state_dict() if shared.target is not None else {},
        "optimizer": shared.optimizer.statistics(),
        "counters": shared.counters.state_dict(),
        "wall_seconds": wall_seconds,
    }


def restore(cfg: Config, meta: dict, shared: SharedParts) -> float:
    """Loads --resume into the shared objects in place; returns the run's wall seconds so far."""
    path, payload = load_checkpoint(cfg.resume, meta)
    try:
        shared.model.load_state_dict(payload["model"])
        if shared.target is not None:
            shared.target.load_state_dict(payload["target"])
        shared.optimizer.load_statistics(payload["optimizer"])
        shared.counters.load_state_dict(payload["counters"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"checkpoint {path} does not fit this run ({err})") from None
    frames = shared.counters.total_steps() * cfg.frames_per_step
    shared.target_epoch[0] = frames // cfg.target_update_frames
    print(f"resumed from {path} at {shared.counters.total_steps():,} steps", flush=True)
    return float(payload.get("wall_seconds", 0.0))


def main(cfg: Config) -> RunSummary:
    torch.set_num_threads(1)
    probe = make_env(cfg.env_id, cfg.seed)
    obs_shape, num_actions = probe.observation_space.shape, int(probe.action_space.n)
    probe.close()
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.algo, cfg.env_id, cfg.seed)
    shared = build_shared(cfg, obs_shape, num_actions)
    meta = {"family": "a3c", "algo": cfg.algo, "env_id": cfg.env_id,
            "network": network_signature(shared.model)}
    wall_offset = restore(cfg, meta, shared) if cfg.resume else 0.0
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    logger = RunLogger(run_dir, append=bool(cfg.resume), title=f"{cfg.algo} on {cfg.env_id}")
    print(f"{cfg.algo} on {cfg.env_id}: {cfg.num_workers} workers, run dir {run_dir}", flush=True)

    supervisor = Supervisor(log=eprint)
    for rank in range(cfg.num_workers):
        supervisor.start(f"worker-{rank}", run_worker, (rank, cfg, shared))
    if cfg.eval_interval_seconds > 0:
        supervisor.start("evaluator", run_evaluator,
                         (shared.model, cfg.env_id, cfg.sticky_actions, cfg.eval_interval_seconds,
                          cfg.eval_episodes, cfg.seed + 999_983, shared.counters))
    summary = RunSummary(run_dir=run_dir, env_id=cfg.env_id)

    def checkpoint(wall_seconds: float) -> Path:
        return save_checkpoint(run_dir, shared.counters.total_steps(),
                               checkpoint_payload(cfg, meta, shared, wall_seconds))

    return own_run(cfg, shared.counters, supervisor, logger, summary, wall_offset, checkpoint)


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m a3c.train")


if __name__ == "__main__":
    sys.exit(cli())
