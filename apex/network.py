"""The Q-network (optionally dueling) and the versioned shared copy of its parameters.

The learner owns its network (on its device); actors and the evaluator read a CPU copy in shared
memory that the learner publishes under a version number (`PublishedParams`), so an actor copies the
parameters only when they changed and never copies a half-written set.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from common.networks import make_torso


def dueling_aggregate(value: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al. 2016, equation 9).

    value: [B, 1]; advantage: [B, A] -> q: [B, A].
    """
    return value + advantage - advantage.mean(dim=-1, keepdim=True)


class QNetwork(nn.Module):
    """Shared torso (Atari conv or MLP, `common.networks`) then a linear Q head, or dueling value and
    advantage heads. The torso's last fully connected layer is shared by both streams."""

    def __init__(self, obs_shape: Sequence[int], num_actions: int, hidden_size: int, dueling: bool):
        super().__init__()
        self.torso = make_torso(obs_shape, hidden_size)
        self.head = nn.Linear(self.torso.out_dim, num_actions)  # the advantage stream when dueling
        self.value = nn.Linear(self.torso.out_dim, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs: [B, *obs_shape] -> q: [B, A] float32."""
        x = self.torso(obs)
        if self.value is None:
            return self.head(x)
        return dueling_aggregate(self.value(x), self.head(x))

    def initial_state(self, batch: int = 1) -> None:
        return None

    def greedy_action(self, obs: torch.Tensor, state: None) -> tuple[int, None]:
        return int(self(obs.unsqueeze(0)).argmax(-1)), None


class PublishedParams:
    """A CPU copy of the learner's network in shared memory, with a version number (a seqlock).

    The learner is the only writer: it makes the version odd, copies, then makes it even again.
    A reader copies only when the version is even and differs from its own, and keeps the copy only
    if the version is unchanged afterwards, so it never keeps a mix of two publications.
    """

    def __init__(self, model: nn.Module):
        self.model = copy.deepcopy(model).cpu().share_memory()
        self.version = torch.zeros(1, dtype=torch.int64).share_memory_()

    def publish(self, model: nn.Module) -> None:
        """Learner: copy `model`'s parameters (from any device) into the shared copy."""
        self.version += 1
        with torch.no_grad():
            for shared, source in zip(self.model.state_dict().values(), model.state_dict().values()):
                shared.copy_(source, non_blocking=False)
        self.version += 1

    def pull(self, into: nn.Module, have_version: int) -> int:
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
        return -1  # still torn: the next pull copies again whatever the version
