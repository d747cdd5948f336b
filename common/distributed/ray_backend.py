"""The Ray backend (`--backend ray`): the same actors and learner, with actors on any node of a Ray cluster.

`RayBackend` owns what the run starts in Ray: the replay shards and the parameter store, pinned to the
learner's node (this process's), and one `ActorHost` per actor, placed by Ray wherever a CPU is free.
Each host builds the algorithm's own actor around a `ShardWriter` (its replay) and a `StoreReader`
(its parameters) and steps it until told to stop. The owner loop's work (`RayActorsWork`) polls each
host for its progress with one request in flight per host, passing the learner's rate limit along,
restarts a host that died (or whose node went), and runs the learner as in local parallel mode.

At the end (a clean stop, Ctrl-C, SIGTERM or an error) every Ray actor of the run is stopped and
killed, the shards' shared memory is released, and a Ray instance the run started is shut down.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from common.counters import RunCounters
from common.distributed.config import ReplayRunConfig
from common.distributed.learner_loop import Learner, ParallelLearnerWork, RateLimit
from common.distributed.ray_params import ParamStore, RayParams, StoreReader
from common.distributed.ray_replay import ReplayShard, ShardedReplay, ShardWriter
from common.errors import RunFailure, UsageError
from common.recipe import one_line
from common.replay.base import ReplayBase
from common.replay.shm import cleanup_stale_segments
from common.supervisor import Supervisor, eprint, quick_deaths_after

OBJECT_STORE_BYTES = 1 << 30
"""Object store of a Ray instance the run starts: parameters, blocks and batches in flight fit many times."""
STOP_SECONDS = 10.0
POLL_SECONDS = 0.05
"""Between two progress requests to one actor: how soon it hears of the rate limit's pause."""


class ActorHost:
    """One actor of the run as a Ray actor: the algorithm's actor on a `ShardWriter` and a `StoreReader`.

    `run` steps it until `stop`; `progress`, answered from a second thread meanwhile, reports steps and
    finished episodes and says whether to pause (the learner's rate limit).
    """

    def __init__(self, rank: int, cfg: ReplayRunConfig, make_actor: Callable[..., Any], shard: Any,
                 replay_config: Any, store: Any):
        torch.set_num_threads(1)
        self.rank = rank
        self.counters = RunCounters(cfg.num_workers)
        self.seen = torch.zeros(cfg.num_workers, dtype=torch.int64)
        self.writer = ShardWriter(shard, replay_config, cfg.inserts_in_flight)
        self.actor = make_actor(rank, cfg, self.writer, StoreReader(store), self.counters)
        self.stopping = threading.Event()
        self.paused = False
        self.node = f"{ray.get_runtime_context().get_node_id()} ({ray.util.get_node_ip_address()})"

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.paused:
                    time.sleep(0.002)
                    continue
                self.actor.step()
        finally:
            self.actor.close()
            self.writer.flush()

    def progress(self, paused: bool) -> tuple[int, list[float], str, Any]:
        """(env steps, episode returns finished since the last call, the node it runs on, the actor's
        `owner_state()` if it keeps one for the owner)."""
        self.paused = paused
        owner_state = getattr(self.actor, "owner_state", None)
        return (int(self.counters.steps[self.rank]), self.counters.new_returns(self.seen), self.node,
                owner_state() if owner_state is not None else None)

    def stop(self) -> None:
        self.stopping.set()


@dataclass
class _Host:
    rank: int
    handle: Any = None
    running: Any = None  # the ref of its `run`
    asked: Any = None  # the ref of its pending `progress`
    asked_at: float = 0.0
    started: float = 0.0
    node: str = ""  # where it runs, once it has answered
    base_steps: int = 0  # steps of the run's earlier hosts of this rank
    restarts: int = 0
    quick_deaths: int = 0


class RayBackend:
    """What the run starts in Ray, and the end of it (module docstring)."""

    def __init__(self, cfg: ReplayRunConfig, replay_cls: type[ReplayBase], replay_config: Any):
        self.cfg = cfg
        self.started_ray = False
        self.shards: list[Any] = []
        self.store: Any = None
        self.hosts: list[_Host] = []
        self.replay_config = dataclasses.replace(replay_config,
                                                 capacity=math.ceil(replay_config.capacity / cfg.replay_shards))
        try:
            self._connect()
            here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
            on_learner_node = dict(num_cpus=0, scheduling_strategy=here, max_restarts=0)
            self.shards = [ray.remote(ReplayShard).options(name=None, **on_learner_node).remote(
                replay_cls, self.replay_config) for _ in range(cfg.replay_shards)]
            self.store = ray.remote(ParamStore).options(**on_learner_node).remote()
            self.replay = ShardedReplay(self.shards, replay_config)
            self.replay.refresh()  # every shard is up
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        quiet = dict(logging_level=logging.WARNING, include_dashboard=False, configure_logging=True,
                     log_to_driver=True)
        if self.cfg.ray_address:
            if self.cfg.ray_address != "auto":
                _check_reachable(self.cfg.ray_address)  # ray.init retries an unreachable address for minutes
            try:
                ray.init(address=self.cfg.ray_address, **quiet)
            except ConnectionError as err:
                raise UsageError(f"cannot join a Ray cluster at --ray-address {self.cfg.ray_address}: "
                                 f"{one_line(err)}") from None
        else:
            # "local": a new instance even where RAY_ADDRESS names a running one
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, self.cfg.num_workers),
                     object_store_memory=OBJECT_STORE_BYTES, **quiet)
            self.started_ray = True

    @property
    def mode(self) -> str:
        where = self.cfg.ray_address or "a Ray instance of its own"
        return f"{self.cfg.num_workers} Ray actors on {where}, replay in {self.cfg.replay_shards} shards"

    @property
    def saved_replay(self) -> None:
        """The shards are not saved at a clean stop: a resumed run refills its replay."""
        return None

    def params(self, model: torch.nn.Module) -> RayParams:
        return RayParams(model, self.store, self.cfg.publish_seconds)

    def start(self, supervisor: Supervisor, make_actor: Callable[..., Any], actor_main: Callable[..., None],
              learner: Learner, params: RayParams, counters: RunCounters,
              on_actor_state: Callable[[int, Any], None] | None = None) -> "RayActorsWork":
        """As `LocalBackend.start`; the actors are Ray actors (`actor_main` is not used), and each one's
        `owner_state()` goes to `on_actor_state` with its progress."""
        self.make_actor, self.supervisor = make_actor, supervisor
        for rank in range(self.cfg.num_workers):
            host = _Host(rank, base_steps=int(counters.steps[rank]))  # a resumed run's steps are in row 0
            self.hosts.append(host)
            self._launch(host)
        insert_limit = torch.full((1,), -1, dtype=torch.int64)
        rate = RateLimit(self.cfg.samples_per_insert, self.cfg.batch_size, insert_limit)
        return RayActorsWork(self, ParallelLearnerWork(learner, params, rate), insert_limit, counters,
                             on_actor_state)

    def _launch(self, host: _Host) -> None:
        shard = self.shards[host.rank % len(self.shards)]
        host.handle = ray.remote(ActorHost).options(num_cpus=1, max_concurrency=2, max_restarts=0).remote(
            host.rank, self.cfg, self.make_actor, shard, self.replay_config, self.store)
        host.running = host.handle.run.remote()
        host.asked, host.node = None, ""
        host.started = time.monotonic()

    def restart(self, host: _Host, counters: RunCounters, error: BaseException) -> None:
        lived = time.monotonic() - host.started
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        host.quick_deaths = quick_deaths_after(host.quick_deaths, lived, f"Ray actor {host.rank}", f"last: {reason}")
        host.restarts += 1
        self.supervisor.elsewhere_restarts += 1
        host.base_steps = int(counters.steps[host.rank])
        eprint(f"Ray actor {host.rank} died after {lived:.1f} s ({reason}); restarting it (restart {host.restarts})")
        ray.kill(host.handle, no_restart=True)
        self._launch(host)

    def close(self) -> None:
        """Stops and kills every Ray actor of the run, releases the shards' memory, shuts down a Ray it started."""
        if not ray.is_initialized():
            return
        try:
            for host in self.hosts:
                _quietly(lambda: host.handle.stop.remote())
            running = [host.running for host in self.hosts if host.running is not None]
            _quietly(lambda: ray.wait(running, num_returns=len(running), timeout=STOP_SECONDS))
            for host in self.hosts:
                _quietly(lambda: ray.kill(host.handle, no_restart=True))
            _quietly(lambda: ray.get([shard.close.remote() for shard in self.shards], timeout=STOP_SECONDS))
            for actor in [*self.shards, self.store]:
                if actor is not None:
                    _quietly(lambda: ray.kill(actor, no_restart=True))
        finally:
            self.hosts, self.shards, self.store = [], [], None
            if self.started_ray:
                ray.shutdown()
            cleanup_stale_segments()  # of a shard killed before it could release its segment


def _check_reachable(address: str, timeout_seconds: float = 5.0) -> None:
    """UsageError unless something listens at host:port."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address must be auto or host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_seconds).close()
    except OSError as err:
        raise UsageError(f"cannot reach a Ray cluster at --ray-address {address}: {err.strerror or err}") from None


def _quietly(call: Callable[[], Any]) -> None:
    """A step of the shutdown that may find its Ray actor (or Ray itself) gone already."""
    try:
        call()
    except (RayActorError, RayTaskError, GetTimeoutError, ValueError):
        pass
    except Exception as err:  # one failure must not keep the rest from being stopped
        eprint(f"while stopping Ray actors: {type(err).__name__}: {err}")


class RayActorsWork:
    """The owner loop's work on the Ray backend: poll and restart the hosts, then the learner's share."""

    def __init__(self, backend: RayBackend, learner_work: ParallelLearnerWork, insert_limit: torch.Tensor,
                 counters: RunCounters, on_actor_state: Callable[[int, Any], None] | None = None):
        self.backend, self.learner_work = backend, learner_work
        self.insert_limit, self.counters, self.on_actor_state = insert_limit, counters, on_actor_state

    def __call__(self) -> None:
        replay = self.backend.replay
        replay.refresh_if_stale()
        limit = int(self.insert_limit[0])
        paused = 0 <= limit < replay.inserted()
        for host in self.backend.hosts:
            self._poll(host, paused)
        self.learner_work()

    def _poll(self, host: _Host, paused: bool) -> None:
        finished, _ = ray.wait([host.running], timeout=0)
        if finished:  # `run` ends only when told to stop: this host failed
            try:
                ray.get(host.running)
                error: BaseException = RuntimeError("its run ended")
            except (RayActorError, RayTaskError) as err:
                error = err
            self.backend.restart(host, self.counters, error)
            return
        if host.asked is not None:
            ready, _ = ray.wait([host.asked], timeout=0)
            if not ready or time.monotonic() - host.asked_at < POLL_SECONDS:
                return
            try:
                steps, returns, node, owner_state = ray.get(host.asked)
            except RayActorError as err:
                self.backend.restart(host, self.counters, err)
                return
            if not host.node:
                host.node = node
                print(f"Ray actor {host.rank} runs on node {node}", flush=True)
            self.counters.steps[host.rank] = host.base_steps + steps
            for episode_return in returns:
                self.counters.add_episode(host.rank, episode_return)
            if owner_state is not None and self.on_actor_state is not None:
                self.on_actor_state(host.rank, owner_state)
        host.asked, host.asked_at = host.handle.progress.remote(paused), time.monotonic()

    def close(self) -> None:
        self.learner_work.close()
        try:
            self.backend.replay.drain(STOP_SECONDS)
        except (RayActorError, RayTaskError, RunFailure):  # a shard that died or hung: its updates are lost
            pass
