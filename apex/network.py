"""Ape-X's and DQN's Q-network, optionally dueling (Wang et al. 2016)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from apex.config import Config
from common.networks import dueling_aggregate, make_torso


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


def make_network(cfg: Config, obs_shape: Sequence[int], num_actions: int) -> QNetwork:
    return QNetwork(obs_shape, num_actions, cfg.hidden_size, cfg.dueling)
