"""Sampled sequences on the learner's device, time-major: what the recurrent learners (R2D2, NGU,
Agent57) train on, and how they sample them (`SequenceSampling`).

`to_device` also lays out the LSTM's previous-step inputs of every step: the stored action, reward and
extras before step 0, then the sequence's own, shifted by one.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from common.distributed.config import SequenceRunConfig
from common.distributed.seams import ReplayClient
from common.networks import LstmState
from common.replay.sequence import SequenceBatch


class DeviceSequences(NamedTuple):
    """A SequenceBatch as time-major tensors on the learner's device; T = steps, B = sequences."""
    obs: torch.Tensor          # [T, B, *obs_shape]
    action: torch.Tensor       # [T, B] int64: a_t
    reward: torch.Tensor       # [T, B] float32: r_t
    discount: torch.Tensor     # [T, B] float32: gamma, or 0 after a terminal step
    mask: torch.Tensor         # [T, B] bool: False on padding
    prev_action: torch.Tensor  # [T, B] int64: a_{t-1} (the LSTM's input)
    prev_reward: torch.Tensor  # [T, B] float32: r_{t-1}
    state: LstmState           # h, c [B, H]: the actor's state before step 0
    next_state: LstmState      # h, c [B, H]: the actor's state before step `length - overlap`
    episode_start: torch.Tensor  # [B] bool
    weight: torch.Tensor       # [B] float32: importance weights
    key: np.ndarray            # [B] int64: replay keys, for the priority update
    extra: torch.Tensor        # [T, B, X] float32: the replay's extra columns (NGU's)
    prev_extra: torch.Tensor   # [T, B, X] float32: each step's previous extras (the LSTM's input)


def to_device(batch: SequenceBatch, device: torch.device) -> DeviceSequences:
    def move(array: np.ndarray, time_major: bool = False) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array.swapaxes(0, 1) if time_major else array))
        return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor

    # the LSTM's previous action and reward: the stored ones before step 0, then the sequence's own
    prev_action = np.concatenate([batch.prev_action[:, None], batch.action[:, :-1]], axis=1)  # [B, T]
    prev_reward = np.concatenate([batch.prev_reward[:, None], batch.reward[:, :-1]], axis=1)
    prev_extra = np.concatenate([batch.prev_extra[:, None], batch.extra[:, :-1]], axis=1)  # [B, T, X]
    return DeviceSequences(
        move(batch.obs, True), move(batch.action, True), move(batch.reward, True), move(batch.discount, True),
        move(batch.mask, True), move(prev_action, True), move(prev_reward, True),
        LstmState(move(batch.h), move(batch.c)), LstmState(move(batch.next_h), move(batch.next_c)),
        move(batch.episode_start), move(batch.weight), batch.key, move(batch.extra, True), move(prev_extra, True))


class SequenceSampling:
    """What the recurrent learners (R2D2, NGU, Agent57) do alike before their loss: wait for enough
    sequences, sample a prioritized batch onto the device, and say which sequences burn in."""

    cfg: SequenceRunConfig
    replay: ReplayClient
    device: torch.device
    rng: np.random.Generator

    def ready(self) -> bool:
        return len(self.replay) >= max(self.cfg.learning_starts, self.cfg.batch_size)

    def sample(self) -> DeviceSequences:
        return to_device(self.replay.sample(self.cfg.batch_size, self.cfg.beta, self.rng), self.device)

    def burn_in_lengths(self, batch: DeviceSequences) -> torch.Tensor:
        """[B] int64: cfg.burn_in, or 0 for sequences that start an episode (their zero state is exact)."""
        return torch.where(batch.episode_start, 0, self.cfg.burn_in).long()
