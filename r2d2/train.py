"""Train R2D2 (`python -m r2d2.train`, or `--serial` for actors and learner in turn in one process).

main(cfg) owns every process and shared object of the run: the shared sequence replay, the published
parameters, the progress counters, the rate-limit tensor, the actor processes and the evaluator. The
learner runs in this process between the owner loop's checks, driven by the runtime's work objects
(`common.distributed.learner_loop`); so do the actors in serial mode.
"""
from __future__ import annotations

import csv
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable

from torch import nn

from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.backend import open_backend
from common.distributed.learner_loop import resolve_device, resume_note
from common.envs import is_atari
from common.evaluation import PolicyFor
from common.logger import RunLogger
from common.recipe import EnvProbe, TrainRun, checkpoint_meta, probe_env
from common.replay.sequence import SequenceReplay, SequenceReplayConfig
from common.run import RunSummary
from r2d2.actor import Actor, greedy_policy, run_actor
from r2d2.config import Config, make_config
from r2d2.learner import Learner

DIAGNOSTIC_FIELDS = ("updates", "loss", "dq_stored", "dq_zero")


def replay_config(cfg: Config, env: EnvProbe) -> SequenceReplayConfig:
    """Stacks of frames [S, H, W] (Atari's) are stored one frame per step, shared by the sequences that
    show it; other images and vectors as whole observations."""
    return SequenceReplayConfig(
        capacity=cfg.replay_capacity, obs_shape=env.obs_shape, state_size=cfg.lstm_size,
        length=cfg.sequence_length, overlap=cfg.sequence_overlap, obs_dtype=env.obs_dtype, alpha=cfg.alpha,
        frame_stack=env.stacked_frames)


class DiagnosticLog:
    """Writes the learner's Q-value discrepancy rows to q_discrepancy.csv (and TensorBoard, and stdout)."""

    def __init__(self, run_dir: Path, append: bool, logger: RunLogger, learner: Learner):
        path = run_dir / "q_discrepancy.csv"
        exists = append and path.is_file()
        self.file = open(path, "a" if exists else "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=DIAGNOSTIC_FIELDS)
        if not exists:
            self.writer.writeheader()
        self.logger, self.learner = logger, learner

    def flush(self) -> None:
        for row in self.learner.diagnostics:
            self.writer.writerow(row)
            if self.logger.tb is not None:
                for key in ("loss", "dq_stored", "dq_zero"):
                    self.logger.tb.add_scalar(f"learner/{key}", row[key], row["updates"])
        if self.learner.diagnostics:
            row = self.learner.diagnostics[-1]
            print(f"update {row['updates']:,}: loss {row['loss']:.4f}, Q discrepancy after burn-in from the stored "
                  f"state {row['dq_stored']:.3f}, from the zero state {row['dq_zero']:.3f}", flush=True)
            self.file.flush()
        self.learner.diagnostics.clear()

    def close(self) -> None:
        self.flush()
        self.file.close()


def with_diagnostics(work: Callable[[], None], diagnostics: DiagnosticLog) -> Callable[[], None]:
    def step() -> None:
        work()
        diagnostics.flush()
    return step


def run_meta(cfg: Config, net: nn.Module) -> dict[str, Any]:
    """What this family's checkpoints must match to be resumed or evaluated."""
    return checkpoint_meta(cfg, "r2d2", net)


def evaluation_policy(cfg: Config) -> PolicyFor:
    """The evaluator's policy_for: the recurrent greedy policy, which reads the previous reward (clipped
    on Atari, as the actors saw it)."""
    return partial(greedy_policy, clip=is_atari(cfg.env_id))


def main(cfg: Config) -> RunSummary:
    env = probe_env(cfg, threads=cfg.learner_threads)
    obs_shape, num_actions = env.obs_shape, env.num_actions
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    backend = open_backend(cfg, SequenceReplay, replay_config(cfg, env))
    work = None
    diagnostics: DiagnosticLog | None = None
    try:
        learner = Learner(cfg, obs_shape, num_actions, device, backend.replay, counters)
        run = TrainRun(cfg, run_meta(cfg, learner.net), learner, counters, partial(resume_note, learner),
                       backend.saved_replay)
        params = backend.params(learner.net)
        diagnostics = DiagnosticLog(run.run_dir, bool(cfg.resume), run.logger, learner)
        print(f"r2d2 on {cfg.env_id}: {backend.mode} x {cfg.envs_per_actor} envs, learner on {device}, "
              f"run dir {run.run_dir}", flush=True)
        work = backend.start(run.supervisor, Actor, run_actor, learner, params, counters)
        run.start_evaluator(params.model, evaluation_policy(cfg))
        return run.own(with_diagnostics(work, diagnostics))
    finally:
        if work is not None:
            work.close()
        if diagnostics is not None:
            diagnostics.close()
        backend.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m r2d2.train")


if __name__ == "__main__":
    sys.exit(cli())
