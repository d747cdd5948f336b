"""The one train recipe: what every family's `train.main(cfg)` does around its own parts.

A family's main probes its env (`probe_env`), builds what is its own (shared model or replay,
learner, ...), then opens a `TrainRun` with its checkpoint metadata and state: that restores a
--resume, writes config.json, opens the logger and the supervisor. The family starts its children
on `run.supervisor`, the evaluator with `run.start_evaluator`, and hands the owner loop over with
`run.own(work)`, which checkpoints through `run.checkpoint` and returns the summary.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

import numpy as np

import torch
from torch import nn

from common.checkpoint import load_checkpoint, network_signature, save_checkpoint
from common.config import RunConfig
from common.counters import RunCounters
from common.envs import make_env, stacked_frames
from common.errors import UsageError
from common.evaluation import PolicyFor, run_evaluator
from common.logger import RunLogger
from common.owner import own_run
from common.run import RunSummary, default_run_dir, write_config
from common.supervisor import Supervisor, eprint

EVALUATOR_SEED_OFFSET = 999_983
"""The evaluator's env is seeded cfg.seed + this: a prime above every training env's seed (worker i
uses seed + 1000 * (i + 1) and its envs count up from there), so evaluation never replays the
episodes of a training env."""


class Checkpointed(Protocol):
    """What a family keeps in its checkpoints besides the counters (model, target, optimizer, ...)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, saved: dict[str, Any]) -> None: ...


class EnvProbe(NamedTuple):
    obs_shape: tuple[int, ...]
    num_actions: int
    obs_dtype: str
    """"uint8" (Atari frames, byte images) or "float32" (vectors, float images): how replays store it"""
    stacked_frames: int | None
    """k for stacks of k one-channel frames that each step shifts by one (common.envs.stacked_frames)"""


def describe_env(env_id: str, seed: int = 0, frame_stack: int = 1) -> EnvProbe:
    """What the networks and replays need to know of the env; raises UsageError for an env id we cannot run."""
    probe = make_env(env_id, seed, frame_stack=frame_stack)
    space = probe.observation_space
    probe.close()
    return EnvProbe(tuple(space.shape), int(probe.action_space.n), str(np.dtype(space.dtype)), stacked_frames(probe))


def probe_env(cfg: RunConfig) -> EnvProbe:
    """describe_env for the run's env, in the owner process, whose torch then keeps to one thread."""
    torch.set_num_threads(1)
    return describe_env(cfg.env_id, cfg.seed, cfg.frame_stack)


def checkpoint_meta(cfg: Any, family: str, net: nn.Module, **extra: Any) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: family, algorithm, env, the network's shapes, `extra`."""
    return {"family": family, "algo": cfg.algo, "env_id": cfg.env_id, **extra, "network": network_signature(net)}


def restore(resume: str, meta: dict[str, Any], state: Checkpointed, counters: RunCounters,
            note: Callable[[], str] = lambda: "") -> float:
    """Loads the checkpoint `resume` into the counters and `state`; returns the run's wall seconds so far.

    The counters come first, so a state can derive from them (A3C's target epoch). Raises UsageError
    for a checkpoint of another run or shape."""
    path, payload = load_checkpoint(resume, meta)
    try:
        counters.load_state_dict(payload["counters"])
        state.load_state_dict(payload)
    except (KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"checkpoint {path} does not fit this run ({err})") from None
    print(f"resumed from {path} at {counters.total_steps():,} steps{note()}", flush=True)
    return float(payload.get("wall_seconds", 0.0))


class TrainRun:
    """A run's directory, config file, logger, supervisor and checkpoints, resumed if asked.

    `state` and `counters` are what a checkpoint holds (with `meta`, which a resume must match);
    `resume_note()` ends the "resumed from" line.
    """

    def __init__(self, cfg: Any, meta: dict[str, Any], state: Checkpointed, counters: RunCounters,
                 resume_note: Callable[[], str] = lambda: ""):
        self.cfg, self.meta, self.state, self.counters = cfg, meta, state, counters
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.algo, cfg.env_id, cfg.seed)
        self.wall_offset = restore(cfg.resume, meta, state, counters, resume_note) if cfg.resume else 0.0
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.run_dir, cfg)
        self.logger = RunLogger(self.run_dir, append=bool(cfg.resume), title=f"{cfg.algo} on {cfg.env_id}")
        self.supervisor = Supervisor(log=eprint)

    def start_evaluator(self, model: nn.Module, policy_for: PolicyFor | None = None) -> None:
        """A supervised process that plays greedy episodes with `model` (a shared-memory copy) every
        --eval-interval-seconds (none with 0), recording one to run_dir/videos every
        --video-interval-seconds."""
        cfg = self.cfg
        if cfg.eval_interval_seconds <= 0:
            return
        evaluator = partial(run_evaluator, policy_for=policy_for, video_dir=self.run_dir / "videos",
                            video_interval_seconds=cfg.video_interval_seconds)
        self.supervisor.start("evaluator", evaluator,
                              (model, cfg.env_id, cfg.sticky_actions, cfg.frame_stack, cfg.eval_interval_seconds,
                               cfg.eval_episodes,
                               cfg.seed + EVALUATOR_SEED_OFFSET, self.counters))

    def checkpoint(self, wall_seconds: float) -> Path:
        """Saves meta, state, counters and wall seconds (the last two checkpoints are kept)."""
        return save_checkpoint(self.run_dir, self.counters.total_steps(),
                               {"meta": self.meta, **self.state.state_dict(), "counters": self.counters.state_dict(),
                                "wall_seconds": wall_seconds})

    def own(self, work: Callable[[], None] | None = None) -> RunSummary:
        """The owner loop until a stop condition, then shutdown, final checkpoint and summary."""
        summary = RunSummary(run_dir=self.run_dir, env_id=self.cfg.env_id)
        extra = {} if work is None else {"work": work}
        return own_run(self.cfg, self.counters, self.supervisor, self.logger, summary, self.wall_offset,
                       self.checkpoint, **extra)
