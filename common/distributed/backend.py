"""Where a replay-family run's actors and replay live: `--backend local` (default) or `--backend ray`.

A family's train.py asks `open_backend` for its replay, its parameter channel and its actors, and
closes the backend at the end; the two backends differ only behind the seams (`seams.py`):

- local: one shared-memory replay, `PublishedParams`, actor processes under the run's supervisor
  (or, with --serial, actors and learner in turn in this process);
- ray: replay shards and a parameter store on this node, actors as Ray actors anywhere in the
  cluster (`common.distributed.ray_backend`, imported only when asked for: Ray is an optional extra).
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable

from torch import nn

from common.counters import RunCounters
from common.distributed.config import ReplayRunConfig
from common.distributed.learner_loop import Learner, ParallelLearnerWork, SerialActorLearnerWork, start_actors
from common.distributed.params import PublishedParams
from common.errors import UsageError
from common.replay.base import ReplayBase
from common.supervisor import Supervisor


class LocalBackend:
    """Actor processes on this machine around one shared-memory replay (`start_actors`)."""

    def __init__(self, cfg: ReplayRunConfig, replay_cls: type[ReplayBase], replay_config: Any):
        self.cfg = cfg
        self.replay = replay_cls.create(replay_config)

    @property
    def mode(self) -> str:
        return "serial" if self.cfg.serial else f"{self.cfg.num_workers} actor processes"

    @property
    def saved_replay(self) -> ReplayBase:
        """The replay a clean stop saves beside the final checkpoint."""
        return self.replay

    def params(self, model: nn.Module) -> PublishedParams:
        return PublishedParams(model)

    def start(self, supervisor: Supervisor, make_actor: Callable[..., Any], actor_main: Callable[..., None],
              learner: Learner, params: PublishedParams, counters: RunCounters,
              on_actor_state: Callable[[int, Any], None] | None = None
              ) -> ParallelLearnerWork | SerialActorLearnerWork:
        """The actors, and the owner loop's work. `on_actor_state(rank, state)` takes what an actor's
        `owner_state()` reports, where the owner cannot read it in place (not here: shared memory)."""
        return start_actors(self.cfg, supervisor, make_actor, actor_main, self.replay, learner, params, counters)

    def close(self) -> None:
        self.replay.close()


def open_backend(cfg: ReplayRunConfig, replay_cls: type[ReplayBase], replay_config: Any) -> Any:
    """The run's backend (`LocalBackend`, or `RayBackend` with the same calls), its replay ready."""
    if cfg.backend == "ray":
        if importlib.util.find_spec("ray") is None:
            raise UsageError('--backend ray needs Ray, which is not installed: pip install -e ".[ray]"')
        from common.distributed.ray_backend import RayBackend
        return RayBackend(cfg, replay_cls, replay_config)
    return LocalBackend(cfg, replay_cls, replay_config)
