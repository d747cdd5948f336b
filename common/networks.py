"""Network parts shared by the algorithm families: observation torsos."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.envs import SMALL_IMAGE_SIDE



class LstmState(NamedTuple):
    """A one-layer LSTM's state (R2D2, NGU): h, c [B, H] float32."""
    h: torch.Tensor
    c: torch.Tensor

class ImageTorso(nn.Module):
    """Convolutions sized for the image, then one fully connected layer; ReLUs throughout.

    obs: [B, C, H, W] uint8 (divided by 255) or float32 (taken as it is) -> [B, hidden] float32.
    Images of 36 pixels or more a side get the A3C torso (Mnih et al. 2016, section 8: 16 8x8/4,
    32 4x4/2, 256 fully connected), which an 84x84 Atari stack was made for; smaller ones, where an
    8x8/4 convolution would see two positions, get MinAtar's reference network (Young and Tian 2019:
    16 3x3/1, then the fully connected layer).

    channels_last=True keeps the convolution weights channels-last (NHWC in memory; shapes and results are
    unchanged), and the input takes that layout while still uint8, so oneDNN runs the convolutions
    channels-last. The A3C family uses it for its small-batch forward and backward passes, where it is
    faster; the replay family's actors and learners, whose batched inference and target networks run
    without gradients, keep the default layout, where channels-last is slower
    (benchmarks/results/torso_layout.md).
    """

    def __init__(self, obs_shape: Sequence[int] = (4, 84, 84), hidden: int = 256, channels_last: bool = False):
        super().__init__()
        channels, height, width = obs_shape
        if min(height, width) >= SMALL_IMAGE_SIDE:
            self.conv1 = nn.Conv2d(channels, 16, 8, stride=4)
            self.conv2: nn.Conv2d | None = nn.Conv2d(16, 32, 4, stride=2)
        else:
            self.conv1, self.conv2 = nn.Conv2d(channels, 16, 3, stride=1), None
        with torch.no_grad():
            flat = self._convolve(torch.zeros(1, channels, height, width)).numel()
        self.fc = nn.Linear(flat, hidden)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.conv1.to(memory_format=self.memory_format)
        if self.conv2 is not None:
            self.conv2.to(memory_format=self.memory_format)
        self.out_dim = hidden

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        return F.relu(self.conv2(x)) if self.conv2 is not None else x

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # The input takes the weights' layout while it is still uint8 (a quarter of the bytes to move that
        # the convolution would otherwise convert, forward and backward); uint8 times a float scalar is
        # then float32 in one pass. The ReLUs and the flatten are plain calls: every module call costs
        # microseconds in a worker's batch-1 acting forward.
        x = obs.contiguous(memory_format=self.memory_format)
        x = x * (1.0 / 255.0) if x.dtype == torch.uint8 else x
        return F.relu(self.fc(self._convolve(x).flatten(1)))


class MlpTorso(nn.Module):
    """Two ReLU layers for vector observations. obs: [B, D] float32 -> [B, hidden]."""

    def __init__(self, obs_dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def check_obs_shape(obs_shape: Sequence[int]) -> None:
    """Raises ValueError unless a torso takes observations of `obs_shape`: images [C, H, W] of at least
    3x3 pixels (ImageTorso's smallest convolution) or vectors [D]."""
    shape = tuple(obs_shape)
    if not ((len(shape) == 3 and min(shape) >= 1 and min(shape[1:]) >= 3) or (len(shape) == 1 and shape[0] >= 1)):
        raise ValueError(f"no network takes observations of shape {list(shape)}: the torsos take images "
                         f"[C, H, W] of 3x3 pixels or more and vectors [D]")


def make_torso(obs_shape: Sequence[int], hidden: int, channels_last: bool = False) -> nn.Module:
    """ImageTorso for images [C, H, W] (channels_last: see ImageTorso), MlpTorso for flat vectors [D]."""
    check_obs_shape(obs_shape)
    if len(obs_shape) == 3:
        return ImageTorso(obs_shape, hidden, channels_last)
    return MlpTorso(obs_shape[0], hidden)


def dueling_aggregate(value: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a') (Wang et al. 2016, equation 9).

    value: [B, 1]; advantage: [B, A] -> q: [B, A].
    """
    return value + advantage - advantage.mean(dim=-1, keepdim=True)
