"""The interfaces between the runtime's processes and what they share.

Actors and the learner reach the replay only through a `ReplayClient` and the learner's parameters
only through a `ParameterChannel`; Gorila's bundles send gradients only through a `GradientChannel`.
The shared-memory replays (`common.replay`), `common.distributed.params.PublishedParams` and
`common.distributed.gradients.GradientSlots` implement them for one machine; a backend spanning
machines implements the same ones, so nothing here names a lock, a segment or a counter slot.
"""
from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np
from torch import nn

from common.replay.base import Inserted

BlockT = TypeVar("BlockT", contravariant=True)
BatchT = TypeVar("BatchT", covariant=True)


class ReplayClient(Protocol[BlockT, BatchT]):
    """A prioritized replay as its writers and its learner see it."""

    config: Any
    """The replay's layout (capacity, frame shape and stack, sequence length, ...): plain data."""

    def insert(self, block: BlockT) -> Inserted:
        """Insert a block of items, each with its initial priority (None: the running max priority)."""
        ...

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> BatchT:
        """A batch drawn in proportion to priority^alpha, with importance weights and item keys."""
        ...

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """New priorities for sampled keys; keys of items evicted since are ignored. Returns how many applied."""
        ...

    def inserted(self) -> int:
        """Items ever inserted, evicted ones included."""
        ...

    def __len__(self) -> int:
        """Items that can be sampled now."""
        ...


class ParameterChannel(Protocol):
    """The learner's parameters as it publishes them and actors poll them."""

    def publish(self, model: nn.Module) -> int:
        """Learner: make `model`'s parameters the current ones; returns their version (it only grows)."""
        ...

    def poll(self, into: nn.Module, have_version: int) -> int:
        """Reader: copy the current parameters into `into` if their version differs from `have_version`;
        returns the version `into` holds now (-1 if it may hold a mix, so the next poll copies again)."""
        ...


class GradientChannel(Protocol):
    """Gorila: the bundles' gradients on their way to the parameter server, one slot per bundle."""

    def is_empty(self, slot: int) -> bool:
        """Bundle: whether the server has taken its last gradient, so a new one may be put."""
        ...

    def put(self, slot: int, net: nn.Module, version: int) -> None:
        """Bundle: `net`'s parameter gradients, computed on parameters of `version` (the `ParameterChannel`'s)."""
        ...

    def discard(self, slot: int) -> None:
        """Bundle: count a gradient it computed and did not send (a loss outlier)."""
        ...

    def num_discarded(self) -> int:
        """Gradients the bundles discarded, all slots together."""
        ...

    def full_slots(self) -> list[int]:
        """Server: the slots holding a gradient."""
        ...

    def take(self, slot: int, into: nn.Module) -> int:
        """Server: the slot's gradient into `into`'s .grad; returns its version."""
        ...

    def release(self, slot: int) -> None:
        """Server: the slot is free for its bundle's next gradient."""
        ...
