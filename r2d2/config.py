"""Configuration of R2D2; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import make_family_config
from common.distributed.config import SequenceRunConfig


@dataclass(frozen=True)
class Config(SequenceRunConfig):
    """R2D2 (Kapturowski et al. 2019): Ape-X's actors and learner with an LSTM Q-network trained on
    stored sequences, burn-in from the stored recurrent state, n-step double Q-learning on rescaled
    values. With --serial, the same actors, replay and learner run in turn in one process."""

    env_id: str = "ALE/Pong-v5"
    """gymnasium id; ALE/... ids get the DQN Atari protocol"""

    envs_per_actor: int = 16
    """environments per actor, stepped together with one batched forward pass (on CPU one LSTM step
    costs about the same for 4 envs as for 16: its weights are read once per call)"""
    replay_block_size: int = 4

    n_step: int = 5
    gamma: float = 0.997
    lr: float = 1e-4
    adam_eps: float = 1e-3
    batch_size: int = 64
    replay_capacity: int = 25_000
    """sequences held by the replay (on Atari about 312 KB of shared memory each: every 84x84 frame is stored
    once, and overlapping sequences share theirs)"""
    alpha: float = 0.9
    beta: float = 0.6
    learning_starts: int = 1000
    hidden_size: int = 512
    diagnostic_interval: int = 100
    """learner updates between Q-value discrepancy measurements (stored vs zero vs actor's state)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("diagnostic_interval")

    @property
    def algo(self) -> str:
        return "r2d2"


# Small control tasks and small images (MinAtar's): short sequences, a small network, frequent target
# copies, learning within a minute.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=2_000_000, envs_per_actor=4, sequence_length=40, sequence_overlap=20, burn_in=10, gamma=0.99, lr=1e-3,
    adam_eps=1e-8, target_update_interval=100, batch_size=32, replay_capacity=10_000, learning_starts=64,
    samples_per_insert=16.0, hidden_size=64, lstm_size=64, param_refresh_steps=100, replay_block_size=2,
    eval_interval_seconds=2.0, log_interval_seconds=2.0, checkpoint_interval_seconds=60.0,
)


# Small images (MinAtar's): a quarter of the replay ratio. At 16 samples per insert each frame is trained on
# many times more often than in DQN's replay, the learner holds the actor to its pace, and MinAtar Space
# Invaders stalled below DQN's published figure; at 4 it climbs past it (benchmarks/results/minatar.md).
SMALL_IMAGE_DEFAULTS: dict[str, Any] = {**VECTOR_DEFAULTS, "samples_per_insert": 4.0}


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults (or, when
    resuming, on top of the resumed run's config.json)."""
    return make_family_config(Config, overrides, VECTOR_DEFAULTS, small_image_defaults=SMALL_IMAGE_DEFAULTS)
