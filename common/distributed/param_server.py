"""Gorila's parameter server (Nair et al. 2015, section 4, "Parameter server"): it owns the parameters,
the target network and the optimizer, and applies the gradients the bundles send, asynchronously, in
the order they arrive, dropping those computed on parameters more than `max_staleness` of its updates
old (section 4.1; `gradients.is_fresh`).

On one box the server runs in the train process, between the owner loop's checks
(`ParameterServerWork`); bundles reach it through seams only: gradients through a `GradientChannel`
(here `GradientSlots`), parameters and the target through two `ParameterChannel`s. After every
applied gradient it publishes the parameters; every `target_update_interval` applied gradients it
copies the target and publishes that too (Algorithm 1 syncs each learner's target network from the
server's parameters every N global steps).

Where this departs from the paper: the optimizer is the caller's (Ape-X's Adam with its gradient-norm
clip, applied here at the server), where the paper's server applies an asynchronous SGD rule in the
manner of DistBelief (Dean et al. 2012); and the parameters are one block in one process, not
sharded over machines.
"""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from typing import Any, Callable, Sequence

import torch
from torch import nn

from common.counters import RunCounters
from common.distributed.config import ReplayRunConfig
from common.distributed.gradients import GradientSlots, is_fresh, num_parameters
from common.distributed.learner_loop import WORK_SECONDS, learner_state, load_learner_state
from common.distributed.params import PublishedParams
from common.distributed.seams import GradientChannel, ParameterChannel
from common.replay.base import ReplayBase
from common.supervisor import Supervisor


class ParameterServer:
    """The server's state: `net`, its `target`, `optimizer`, and counts of applied and dropped gradients.

    Has the fields of the runtime's learner that `learner_state` saves, so its checkpoints load
    wherever an Ape-X learner's do (evaluation, resume).
    """

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, counters: RunCounters,
                 max_grad_norm: float, target_update_interval: int, max_staleness: int):
        self.net, self.optimizer, self.counters = net, optimizer, counters
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.max_grad_norm, self.target_update_interval = max_grad_norm, target_update_interval
        self.max_staleness = max_staleness
        self.updates = 0
        self.dropped = 0
        self.staleness_total = 0  # of the applied gradients: server updates between their parameters and now
        self.staleness_max = 0

    def step(self) -> bool:
        """Apply the gradient in `net`'s .grad: one clipped optimizer step; returns whether the target was copied."""
        nn.utils.clip_grad_norm_(self.net.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self.counters.updates[0] = self.updates
        if self.updates % self.target_update_interval:
            return False
        self.target.load_state_dict(self.net.state_dict())
        return True

    def count_applied(self, staleness: int) -> None:
        self.staleness_total += staleness
        self.staleness_max = max(self.staleness_max, staleness)

    def state_dict(self) -> dict[str, Any]:
        return {**learner_state(self), "dropped_gradients": self.dropped, "staleness_total": self.staleness_total,
                "staleness_max": self.staleness_max}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        load_learner_state(self, saved)
        self.dropped = int(saved.get("dropped_gradients", 0))
        self.staleness_total = int(saved.get("staleness_total", 0))
        self.staleness_max = int(saved.get("staleness_max", 0))

    def report(self) -> str:
        received = self.updates + self.dropped
        share = self.dropped / received if received else 0.0
        mean = self.staleness_total / self.updates if self.updates else 0.0
        return (f"parameter server: {self.updates:,} gradients applied, {self.dropped:,} dropped as more than "
                f"{self.max_staleness} updates stale ({share:.1%}); the applied ones were {mean:.2f} updates "
                f"stale on average, at most {self.staleness_max}")


class ParameterServerWork:
    """The owner loop's share in Gorila: serve the bundles' gradients for a short while at each call.

    Versions are those of `params`: the server remembers at how many updates it made each of its last
    `max_staleness + 1` publications, so a gradient whose version it no longer remembers (or -1: a
    bundle that may hold a torn copy) is too old to apply.
    """

    def __init__(self, server: ParameterServer, slots: GradientChannel, params: ParameterChannel,
                 target_params: ParameterChannel, initial_version: int = 0):
        self.server, self.slots, self.params, self.target_params = server, slots, params, target_params
        self.published: OrderedDict[int, int] = OrderedDict({initial_version: server.updates})

    def serve_ready(self) -> int:
        """Apply or drop every gradient waiting in a slot; returns how many were waiting."""
        ready = self.slots.full_slots()
        for slot in ready:
            self.receive(slot)
        return len(ready)

    def receive(self, slot: int) -> bool:
        """Apply (True) or drop (False) the gradient in `slot`, then free the slot."""
        server = self.server
        version = self.slots.take(slot, server.net)
        made_at = self.published.get(version)
        fresh = made_at is not None and is_fresh(made_at, server.updates, server.max_staleness)
        if fresh:
            server.count_applied(server.updates - made_at)
            if server.step():
                self.target_params.publish(server.target)
            self.published[self.params.publish(server.net)] = server.updates
            while len(self.published) > server.max_staleness + 1:
                self.published.popitem(last=False)
        else:
            server.dropped += 1
        self.slots.release(slot)
        return fresh

    def __call__(self) -> None:
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline:
            if not self.serve_ready():
                time.sleep(0.0005)

    def report(self) -> str:
        return f"{self.server.report()}; {self.slots.num_discarded():,} discarded by the bundles as loss outliers"

    def close(self) -> None:
        pass


def start_bundles(cfg: ReplayRunConfig, supervisor: Supervisor, bundle_main: Callable[..., None],
                  replays: Sequence[ReplayBase], server: ParameterServer, params: PublishedParams
                  ) -> ParameterServerWork:
    """One supervised process per bundle, each running `bundle_main(rank, cfg, replays[rank].handle,
    params, target_params, slots, counters, should_stop)`, and the server's work for the owner loop.

    `replays` (one per bundle) and `params` are the owner's; the gradient slots and the target's
    channel are made here, as shared tensors that live as long as the caller holds the work.
    """
    slots = GradientSlots(cfg.num_workers, num_parameters(server.net))
    target_params = PublishedParams(server.target)
    for rank in range(cfg.num_workers):
        supervisor.start(f"bundle-{rank}", bundle_main,
                         (rank, cfg, replays[rank].handle, params, target_params, slots, server.counters))
    return ParameterServerWork(server, slots, params, target_params, initial_version=int(params.version))
