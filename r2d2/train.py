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
from typing import Callable

from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.learner_loop import (ParallelLearnerWork, SerialActorLearnerWork, resolve_device,
                                             resume_note, start_actors)
from common.distributed.params import PublishedParams
from common.envs import is_atari
from common.logger import RunLogger
from common.recipe import TrainRun, checkpoint_meta, probe_env
from common.replay.sequence import SequenceReplay, SequenceReplayConfig
from common.run import RunSummary
from r2d2.actor import Actor, greedy_policy, run_actor
from r2d2.config import Config, make_config
from r2d2.learner import Learner

DIAGNOSTIC_FIELDS = ("updates", "loss", "dq_stored", "dq_zero")


def replay_config(cfg: Config, obs_shape: tuple[int, ...]) -> SequenceReplayConfig:
    """Atari's uint8 stacks [S, H, W] are stored one frame per step, shared by the sequences that
    show it; float32 vectors as whole observations."""
    stacked = len(obs_shape) == 3
    return SequenceReplayConfig(
        capacity=cfg.replay_capacity, obs_shape=obs_shape, state_size=cfg.lstm_size, length=cfg.sequence_length,
        overlap=cfg.sequence_overlap, obs_dtype="uint8" if stacked else "float32", alpha=cfg.alpha,
        frame_stack=obs_shape[0] if stacked else None)


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


def main(cfg: Config) -> RunSummary:
    obs_shape, num_actions = probe_env(cfg)
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    replay = SequenceReplay.create(replay_config(cfg, obs_shape))
    work: ParallelLearnerWork | SerialActorLearnerWork | None = None
    diagnostics: DiagnosticLog | None = None
    try:
        learner = Learner(cfg, obs_shape, num_actions, device, replay, counters)
        run = TrainRun(cfg, checkpoint_meta(cfg, "r2d2", learner.net), learner, counters, partial(resume_note, learner),
                       replay)
        params = PublishedParams(learner.net)
        diagnostics = DiagnosticLog(run.run_dir, bool(cfg.resume), run.logger, learner)
        mode = "serial" if cfg.serial else f"{cfg.num_workers} actor processes"
        print(f"r2d2 on {cfg.env_id}: {mode} x {cfg.envs_per_actor} envs, learner on {device}, "
              f"run dir {run.run_dir}", flush=True)
        work = start_actors(cfg, run.supervisor, Actor, run_actor, replay, learner, params, counters)
        run.start_evaluator(params.model, partial(greedy_policy, clip=is_atari(cfg.env_id)))
        return run.own(with_diagnostics(work, diagnostics))
    finally:
        if work is not None:
            work.close()
        if diagnostics is not None:
            diagnostics.close()
        replay.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m r2d2.train")


if __name__ == "__main__":
    sys.exit(cli())
