"""Network parts shared by the algorithm families: observation torsos."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class AtariTorso(nn.Module):
    """Mnih et al. 2016 (A3C) torso: 16 8x8/4, 32 4x4/2, 256 fully connected, ReLUs.

    obs: [B, 4, 84, 84] uint8 -> [B, 256] float32.

    channels_last=True keeps the convolution weights channels-last (NHWC in memory; shapes and results are
    unchanged), and the input takes that layout while still uint8, so oneDNN runs the convolutions
    channels-last. The A3C family uses it for its small-batch forward and backward passes, where it is
    faster; the replay family's actors and learners, whose batched inference and target networks run
    without gradients, keep the default layout, where channels-last is slower
    (benchmarks/results/torso_layout.md).
    """

    def __init__(self, in_channels: int = 4, hidden: int = 256, channels_last: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 8, stride=4)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2)
        self.fc = nn.Linear(32 * 9 * 9, hidden)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.conv1.to(memory_format=self.memory_format)
        self.conv2.to(memory_format=self.memory_format)
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # The input takes the weights' layout while it is still uint8 (a quarter of the bytes to move that
        # the convolution would otherwise convert, forward and backward); uint8 times a float scalar is
        # then float32 in one pass. The ReLUs and the flatten are plain calls: every module call costs
        # microseconds in a worker's batch-1 acting forward.
        x = F.relu(self.conv1(obs.contiguous(memory_format=self.memory_format) * (1.0 / 255.0)))
        x = F.relu(self.conv2(x))
        return F.relu(self.fc(x.flatten(1)))


class MlpTorso(nn.Module):
    """Two ReLU layers for vector observations. obs: [B, D] float32 -> [B, hidden]."""

    def __init__(self, obs_dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def check_obs_shape(obs_shape: Sequence[int]) -> None:
    """Raises ValueError unless a torso takes observations of `obs_shape`: [C, 84, 84] or [D]."""
    shape = tuple(obs_shape)
    if not ((len(shape) == 3 and shape[1:] == (84, 84) and shape[0] >= 1) or (len(shape) == 1 and shape[0] >= 1)):
        raise ValueError(f"no network takes observations of shape {list(shape)}: the torsos take frame stacks "
                         f"[C, 84, 84] and vectors [D]")


def make_torso(obs_shape: Sequence[int], hidden: int, channels_last: bool = False) -> nn.Module:
    """AtariTorso for stacked frames [C, 84, 84] (channels_last: see AtariTorso), MlpTorso for flat vectors [D]."""
    check_obs_shape(obs_shape)
    if len(obs_shape) == 3:
        return AtariTorso(obs_shape[0], hidden, channels_last)
    return MlpTorso(obs_shape[0], hidden)


def dueling_aggregate(value: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al. 2016, equation 9).

    value: [B, 1]; advantage: [B, A] -> q: [B, A].
    """
    return value + advantage - advantage.mean(dim=-1, keepdim=True)
