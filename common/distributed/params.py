"""The shared-memory `ParameterChannel`: a versioned CPU copy of the learner's network.

The learner owns its network (on its device); actors and the evaluator read a CPU copy in shared
memory that the learner publishes under a version number, so an actor copies the parameters only
when they changed and never keeps a half-written set.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class PublishedParams:
    """A CPU copy of the learner's network in shared memory, with a version number (a seqlock).

    The learner is the only writer: it makes the version odd, copies, then makes it even again.
    A reader copies only when the version is even and differs from its own, and keeps the copy only
    if the version is unchanged afterwards, so it never keeps a mix of two publications.
    """

    def __init__(self, model: nn.Module):
        self.model = copy.deepcopy(model).cpu().share_memory()
        self.version = torch.zeros(1, dtype=torch.int64).share_memory_()

    def publish(self, model: nn.Module) -> int:
        """Learner: copy `model`'s parameters (from any device) into the shared copy; returns the new version."""
        self.version += 1
        with torch.no_grad():
            for shared, source in zip(self.model.state_dict().values(), model.state_dict().values()):
                shared.copy_(source, non_blocking=False)
        self.version += 1
        return int(self.version)

    def poll(self, into: nn.Module, have_version: int) -> int:
        """Reader: refresh `into` if a newer complete publication exists; returns the version it holds."""
        for _ in range(3):  # a publication that lands mid-copy: copy again
            version = int(self.version)
            if version == have_version or version % 2:
                return have_version
            with torch.no_grad():
                for local, shared in zip(into.state_dict().values(), self.model.state_dict().values()):
                    local.copy_(shared)
            if int(self.version) == version:
                return version
        return -1  # still torn: the next poll copies again whatever the version
