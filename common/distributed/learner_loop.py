"""The learner side of the runtime: its device, the rate limit, batch prefetching, the end of every
update (optimizer step, target copy, priority write-back), checkpoint state, and the owner loop's
work in parallel mode (actors in their own processes) and serial mode (actors and learner in turn).

One update (Horgan et al. 2018, Algorithm 2; Kapturowski et al. 2019, section 2.3): sample a batch
by priority, compute the algorithm's loss, one Adam step with gradient-norm clipping, new priorities
for the batch, a target copy every `target_update_interval` updates (or Polyak averaging), then the
parameters are published for the actors. In parallel mode a `Prefetcher` thread samples the next
batch (and moves it to the learner's device) while the current update runs, so a GPU learner never
waits on the replay; serial mode samples in line.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from common.counters import RunCounters
from common.distributed.actor_loop import Actor
from common.distributed.config import ReplayRunConfig
from common.distributed.seams import ParameterChannel, ReplayClient
from common.errors import RunFailure, UsageError
from common.replay.base import ReplayBase
from common.supervisor import Supervisor

WORK_SECONDS = 0.02  # learner (and serial actor) work between two checks of the owner loop


class Learner(Protocol):
    """What the runtime does with an algorithm's learner."""
    net: nn.Module
    target: nn.Module
    optimizer: torch.optim.Optimizer
    updates: int
    counters: RunCounters
    replay: ReplayClient

    def ready(self) -> bool:
        """Enough items in the replay to learn from."""
        ...

    def sample(self) -> Any:
        """A batch from the replay, on the learner's device."""
        ...

    def update(self, batch: Any) -> np.ndarray:
        """One update on `batch` (ending in `finish_update`); returns the batch's new priorities."""
        ...


def resolve_device(name: str) -> torch.device:
    """The learner's device for --device `name`; raises UsageError for cuda where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but CUDA is not available here")
    return torch.device(name)


def finish_update(learner: Learner, loss: torch.Tensor, max_grad_norm: float, target_update_interval: int,
                  keys: np.ndarray, priorities: np.ndarray | None, target_tau: float = 0.0) -> None:
    """The end of every update: one clipped optimizer step, the target network copied every
    `target_update_interval` updates (or, with `target_tau` > 0, Polyak-averaged every update), the
    batch's new `priorities` written back (None: the replay is uniform, nothing to write)."""
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(learner.net.parameters(), max_grad_norm)
    learner.optimizer.step()
    learner.updates += 1
    if target_tau > 0:
        with torch.no_grad():
            for target, online in zip(learner.target.parameters(), learner.net.parameters()):
                target.lerp_(online, target_tau)
    elif learner.updates % target_update_interval == 0:
        learner.target.load_state_dict(learner.net.state_dict())
    if priorities is not None:
        learner.replay.update_priorities(keys, priorities)
    learner.counters.updates[0] = learner.updates


def learner_state(learner: Learner) -> dict[str, Any]:
    """What a checkpoint keeps of a learner (the replay is saved apart, at a clean stop: `TrainRun`)."""
    return {"model": learner.net.state_dict(), "target": learner.target.state_dict(),
            "optimizer": learner.optimizer.state_dict(), "updates": learner.updates}


def load_learner_state(learner: Learner, saved: dict[str, Any]) -> None:
    learner.net.load_state_dict(saved["model"])
    learner.target.load_state_dict(saved["target"])
    learner.optimizer.load_state_dict(saved["optimizer"])
    learner.updates = int(saved["updates"])
    learner.counters.updates[0] = learner.updates


def resume_note(learner: Learner) -> str:
    """The learner's part of the "resumed from" line of a replay-family run (`TrainRun` adds the replay's)."""
    return f" and {learner.updates:,} updates"


class RateLimit:
    """Keeps sampled items per inserted item near `samples_per_insert` after learning starts.

    The learner may update while it has sampled at most `slack` items more than the ratio allows;
    actors may insert while the replay is at most `slack / samples_per_insert` inserts ahead (the
    limit they read from `insert_limit`, a shared int64 tensor; -1: no limit).
    """

    def __init__(self, samples_per_insert: float, batch_size: int, insert_limit: torch.Tensor | None = None):
        self.ratio = samples_per_insert
        self.batch_size = batch_size
        self.slack = 32 * batch_size
        self.insert_limit = insert_limit
        self.start: tuple[int, int] | None = None  # (inserted, updates) when learning started

    def begin(self, inserted: int, updates: int) -> None:
        self.start = (inserted, updates)

    def may_update(self, inserted: int, updates: int) -> bool:
        if self.ratio <= 0 or self.start is None:
            return True
        sampled = (updates - self.start[1] + 1) * self.batch_size
        return sampled <= self.ratio * (inserted - self.start[0]) + self.slack

    def publish(self, updates: int) -> None:
        """Tell the actors how far they may insert after `updates` updates."""
        if self.insert_limit is None or self.ratio <= 0 or self.start is None:
            return
        sampled = (updates - self.start[1]) * self.batch_size
        self.insert_limit[0] = self.start[0] + int((sampled + self.slack) / self.ratio)


class Prefetcher:
    """A thread that keeps up to `depth` sampled batches ready for the learner."""

    def __init__(self, learner: Learner, depth: int = 2):
        self.learner = learner
        self.batches: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.learner.sample()
                while not self.stopping.is_set():
                    try:
                        self.batches.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as err:  # handed to the learner's thread, which raises it
            self.error = err

    def get(self, timeout: float = 1.0) -> Any | None:
        """The next batch, or None if none came within `timeout` seconds."""
        if isinstance(self.error, RunFailure):
            raise self.error  # already says what failed
        if self.error is not None:
            raise RuntimeError("the prefetch thread failed") from self.error
        try:
            return self.batches.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5.0)


class ParallelLearnerWork:
    """Parallel mode, the owner's share: learner updates on prefetched batches under the rate limit
    while the actors run in their own processes."""

    def __init__(self, learner: Learner, params: ParameterChannel, rate: RateLimit):
        self.learner, self.params, self.rate = learner, params, rate
        self.prefetcher: Prefetcher | None = None

    def __call__(self) -> None:
        learner, replay = self.learner, self.learner.replay
        if self.prefetcher is None:
            if not learner.ready():
                time.sleep(0.01)
                return
            self.rate.begin(replay.inserted(), learner.updates)
            self.rate.publish(learner.updates)
            self.prefetcher = Prefetcher(learner)
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline:
            if not self.rate.may_update(replay.inserted(), learner.updates):
                time.sleep(0.001)
                continue
            batch = self.prefetcher.get(timeout=WORK_SECONDS)
            if batch is not None:
                learner.update(batch)
                self.params.publish(learner.net)
                self.rate.publish(learner.updates)

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


class SerialActorLearnerWork:
    """Serial mode: every actor steps its envs once, then the learner catches up with the ratio, all
    in the owner's process.

    Nothing here depends on the clock except how often the owner loop gets to look, so a fixed
    seed gives the same updates; it stops exactly at total_steps.
    """

    def __init__(self, cfg: ReplayRunConfig, actors: list[Actor], learner: Learner, params: ParameterChannel):
        self.cfg, self.actors, self.learner, self.params = cfg, actors, learner, params
        self.rate = RateLimit(cfg.samples_per_insert, cfg.batch_size)

    def __call__(self) -> None:
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline and self.learner.counters.total_steps() < self.cfg.total_steps:
            for actor in self.actors:
                actor.step()
            self.learn()

    def learn(self) -> None:
        learner = self.learner
        if not learner.ready():
            return
        if self.rate.start is None:
            self.rate.begin(learner.replay.inserted(), learner.updates)
        if self.cfg.samples_per_insert <= 0:
            self._update()
            return
        while self.rate.may_update(learner.replay.inserted(), learner.updates):
            self._update()

    def _update(self) -> None:
        self.learner.update(self.learner.sample())
        self.params.publish(self.learner.net)

    def close(self) -> None:
        for actor in self.actors:
            actor.close()


def start_actors(cfg: ReplayRunConfig, supervisor: Supervisor, make_actor: Callable[..., Actor],
                 actor_main: Callable[..., None], replay: ReplayBase, learner: Learner, params: ParameterChannel,
                 counters: RunCounters) -> ParallelLearnerWork | SerialActorLearnerWork:
    """The actors, and the work the owner loop does between its checks. `replay` is the owner's
    shared-memory replay: actor processes attach to it through its handle.

    Serial: `make_actor(rank, cfg, replay, params, counters)` in this process, stepped by
    SerialActorLearnerWork.
    Otherwise one supervised process per actor running `actor_main(rank, cfg, replay.handle, params,
    counters, insert limit, should_stop)`, and ParallelLearnerWork for the learner under the rate limit.
    """
    if cfg.serial:
        actors = [make_actor(rank, cfg, replay, params, counters) for rank in range(cfg.num_workers)]
        return SerialActorLearnerWork(cfg, actors, learner, params)
    insert_limit = torch.full((1,), -1, dtype=torch.int64).share_memory_()
    for rank in range(cfg.num_workers):
        supervisor.start(f"actor-{rank}", actor_main, (rank, cfg, replay.handle, params, counters, insert_limit))
    return ParallelLearnerWork(learner, params, RateLimit(cfg.samples_per_insert, cfg.batch_size, insert_limit))
