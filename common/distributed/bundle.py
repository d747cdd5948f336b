"""Gorila's bundled mode (Nair et al. 2015, section 4 and Algorithm 1), the bundles' side.

A bundle is one process with an actor, its own replay and a learner. The actor steps its envs with its
copy of the server's parameters (refreshed every `param_refresh_steps` env steps) and writes to the
bundle's replay. Before each gradient the bundle brings that copy to the server's latest parameters,
as Algorithm 1 does; the learner then computes the loss gradient on a uniform batch of the replay with
respect to the copy, against its copy of the target network, and sends it to the parameter server with
the version of the parameters it was computed on. The server may drop it as stale
(`common.distributed.param_server`). The server has applied the bundle's previous gradient by the time
its slot is free, so with one bundle every gradient is computed on the server's current parameters, as
serial DQN's are (gradients one update old learned more slowly: `benchmarks/results/minatar.md`).

Acting and learning alternate to keep `samples_per_insert` (sampled transitions per inserted one) in the
bundle, once its replay holds `learning_starts` items; 0 means one gradient per actor step. A bundle
whose last gradient the server has not taken yet waits for it rather than acting on: the server's pace
throttles the bundles, as the learner's rate limit throttles Ape-X's actors.

With `LossOutliers` on, a bundle also applies the paper's second rule of section 4.1 and discards a
gradient whose loss is far above the losses it has seen; the channel counts the discarded ones.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Protocol

from torch import nn

from common.distributed.actor_loop import Actor
from common.distributed.seams import GradientChannel, ReplayClient


class BundleLearner(Protocol):
    """What the runtime does with an algorithm's learner in a bundle."""

    net: nn.Module
    """the bundle's copy of the server's parameters, shared with its actor"""

    def ready(self) -> bool:
        """Enough items in the bundle's replay to learn from."""
        ...

    def gradient(self) -> float:
        """The loss gradient of one batch into `net`'s .grad; returns the loss."""
        ...


class BundlePace:
    """Decides, step by step, whether a bundle acts or learns next (the module docstring's rule)."""

    def __init__(self, samples_per_insert: float, batch_size: int):
        self.ratio, self.batch_size = samples_per_insert, batch_size
        self.start: tuple[int, int] | None = None  # (inserted, actor steps) when learning started
        self.gradients = 0
        self.actor_steps = 0

    def learn_next(self, inserted: int) -> bool:
        if self.start is None:
            self.start = (inserted, self.actor_steps)
        if self.ratio <= 0:
            return self.gradients < self.actor_steps - self.start[1]
        return (self.gradients + 1) * self.batch_size <= self.ratio * (inserted - self.start[0])


class LossOutliers:
    """Nair et al. 2015, section 4.1, the learners' rule: discard a gradient whose loss lies more than
    `num_stds` running standard deviations above the running mean of the losses the learner has seen.

    The running statistics are exponentially weighted (`decay`), since the losses drift as learning
    goes on, and count every loss, discarded ones too; the first `warmup` gradients are all kept while
    they settle. `num_stds` 0 keeps every gradient.
    """

    def __init__(self, num_stds: float, decay: float = 0.99, warmup: int = 100):
        self.num_stds, self.decay, self.warmup = num_stds, decay, warmup
        self.mean = self.var = 0.0
        self.seen = 0

    def keep(self, loss: float) -> bool:
        if self.num_stds <= 0:
            return True
        keep = self.seen < self.warmup or loss <= self.mean + self.num_stds * math.sqrt(self.var)
        if self.seen == 0:
            self.mean = loss
        else:
            delta = loss - self.mean
            self.mean += (1 - self.decay) * delta
            self.var = self.decay * (self.var + (1 - self.decay) * delta * delta)
        self.seen += 1
        return keep


def bundle_until_stopped(rank: int, actor: Actor, learner: BundleLearner, replay: ReplayClient,
                         slots: GradientChannel, refresh: Callable[[], int], pace: BundlePace,
                         outliers: LossOutliers, should_stop: Callable[[], bool]) -> None:
    """Bundle `rank`'s loop until told to stop; `refresh()` brings the bundle's copy of the parameters to
    the server's latest and returns their version. Closes the actor at the end."""
    try:
        while not should_stop():
            if not learner.ready() or not pace.learn_next(replay.inserted()):
                actor.step()
                pace.actor_steps += 1
            elif slots.is_empty(rank):
                version = refresh()
                loss = learner.gradient()
                pace.gradients += 1
                if outliers.keep(loss):
                    slots.put(rank, learner.net, version)
                else:
                    slots.discard(rank)
            else:  # the server has not taken the last gradient yet
                time.sleep(0.0005)
    finally:
        actor.close()
