"""The owner's side of a run, shared by every family: supervise children, log, evaluate, checkpoint, stop.

`own_run` is what a family's `train.main(cfg)` calls once it has built its shared objects and started
its children: it runs the owner loop until a stop condition (total steps, wall-clock budget, stop
return) or Ctrl-C / SIGTERM, then stops every child, writes the final checkpoint and the learning
curve and prints the summary. Between its checks the loop calls `work()`: a short sleep for the
asynchronous family, learner updates for Ape-X, actor steps and updates for serial DQN.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

from common.counters import RunCounters
from common.logger import RunLogger
from common.run import Progress, RunSummary
from common.supervisor import DeferredInterrupt, Supervisor, eprint


class RunLimits(Protocol):
    """The config fields the owner loop reads (every family's Config has them)."""
    total_steps: int
    max_seconds: float
    stop_return: float | None
    log_interval_seconds: float
    checkpoint_interval_seconds: float

    @property
    def frames_per_step(self) -> int: ...


def _idle() -> None:
    time.sleep(0.05)


def own_run(cfg: RunLimits, counters: RunCounters, supervisor: Supervisor, logger: RunLogger,
            summary: RunSummary, wall_offset: float, checkpoint: Callable[..., Path],
            work: Callable[[], None] = _idle) -> RunSummary:
    """Runs the owner loop, then shuts down; `checkpoint(wall_seconds, final=False)` saves and returns
    the path (`final=True` for the last one, after every child has stopped).

    Children must already be started. Ctrl-C (or SIGTERM) ends the loop at its next check with stop
    reason "interrupted"; the final checkpoint is written in every case, and a first signal while it is
    written waits for it (a second one stops at once).
    """
    interrupt = DeferredInterrupt()
    start = time.monotonic()
    wall = lambda: wall_offset + time.monotonic() - start  # noqa: E731
    try:
        interrupt.install()
        summary.stop_reason = supervise(cfg, counters, supervisor, logger, summary, wall, checkpoint, work,
                                        interrupt.check)
    except KeyboardInterrupt:
        summary.stop_reason = "interrupted"
        eprint("interrupted: stopping workers and saving a final checkpoint")
    finally:
        try:  # still deferred: a first signal here must not cut the final save short; a second one does
            supervisor.shutdown()
            summary.env_steps = counters.total_steps()
            summary.wall_seconds = wall()
            summary.checkpoint = checkpoint(summary.wall_seconds, final=True)
            summary.restarts = supervisor.restarts
            summary.plot = logger.plot()
            logger.close()
        finally:
            interrupt.restore()
    if interrupt.requested and summary.stop_reason != "interrupted":  # after the loop's last check
        summary.stop_reason = "interrupted"
        eprint("interrupted as the run ended: the final checkpoint was written")
    summary.report()
    return summary


def supervise(cfg: RunLimits, counters: RunCounters, supervisor: Supervisor, logger: RunLogger,
              summary: RunSummary, wall: Callable[[], float], checkpoint: Callable[[float], Path],
              work: Callable[[], None] = _idle, check_interrupt: Callable[[], None] = lambda: None) -> str:
    """The owner's loop: work, restart dead children, log, evaluate, checkpoint; returns why it stopped.
    `check_interrupt` raises KeyboardInterrupt where a stop was asked for (`DeferredInterrupt.check`)."""
    progress = Progress(counters, cfg.frames_per_step, wall())
    seen_evals = 0
    last_ckpt = wall()
    try:
        while True:
            check_interrupt()
            work()
            supervisor.restart_dead()
            progress.poll_returns()
            evals, seen_evals = counters.new_evals(seen_evals)
            for env_steps, mean, std, episodes in evals:
                logger.log_eval({"wall_seconds": round(wall(), 3), "env_steps": env_steps,
                                 "env_frames": env_steps * cfg.frames_per_step, "eval_return_mean": mean,
                                 "eval_return_std": std, "episodes": episodes,
                                 "unix_time": round(time.time(), 3)})
                summary.add_eval(mean)
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    return f"evaluation mean {mean:.2f} reached --stop-return {cfg.stop_return:g}"
            now, steps = wall(), counters.total_steps()
            if now - progress.last_time >= cfg.log_interval_seconds:
                logger.log_metrics(progress.row(now, supervisor.restarts))
            if now - last_ckpt >= cfg.checkpoint_interval_seconds:
                checkpoint(now)
                last_ckpt = now
            if steps >= cfg.total_steps:
                return f"reached --total-steps {cfg.total_steps:,}"
            if cfg.max_seconds and now >= cfg.max_seconds:
                return f"reached --max-seconds {cfg.max_seconds:g}"
    finally:
        supervisor.stop_event.set()  # the final row counts no step taken after the decision to stop
        logger.log_metrics(progress.row(wall(), supervisor.restarts))
