"""Configuration of NGU; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import make_family_config
from common.distributed.config import SequenceRunConfig


@dataclass(frozen=True)
class Config(SequenceRunConfig):
    """NGU (Badia et al. 2020, "Never Give Up"): R2D2's actors, sequence replay and recurrent
    Q-network, with an intrinsic reward (episodic novelty modulated by RND's life-long novelty) and a
    family of N policies that weigh it by beta_j and discount by gamma_j; trained with transformed
    Retrace. With --serial, the same actors, replay and learner run in turn in one process."""

    env_id: str = "ALE/Pong-v5"
    """gymnasium id; ALE/... ids get the DQN Atari protocol"""

    envs_per_actor: int = 16
    """environments per actor, stepped together with one batched forward pass"""
    replay_block_size: int = 4
    gamma: float = 0.997
    """gamma_0, the discount of the most exploitative policy (NGU's gamma_max)"""
    gamma_min: float = 0.99
    """gamma_{N-1}, the discount of the most exploratory policy"""
    num_policies: int = 32
    """N: the policies of the family, j = 0 (beta 0) .. N - 1 (beta = --intrinsic-beta)"""
    intrinsic_beta: float = 0.3
    """beta: the weight of the intrinsic reward in the most exploratory policy's reward"""
    retrace_lambda: float = 0.95
    """lambda of the Retrace traces"""
    lr: float = 1e-4
    adam_eps: float = 1e-3
    batch_size: int = 64
    replay_capacity: int = 25_000
    """sequences held by the replay"""
    alpha: float = 0.9
    beta: float = 0.6
    learning_starts: int = 1000
    hidden_size: int = 512

    episodic_capacity: int = 30_000
    """embeddings an env's episodic memory holds (the oldest are overwritten past it)"""
    num_neighbours: int = 10
    """k of the episodic memory's k-NN"""
    embedding_size: int = 32
    """size of the controllable-state embedding f"""
    rnd_output_size: int = 128
    """size of RND's target and predictor outputs"""
    max_modulation: float = 5.0
    """L: the life-long modulator is clipped into [1, L]"""
    aux_lr: float = 5e-4
    """Adam learning rate of the embedding's inverse model and of RND's predictor"""
    aux_steps: int = 5
    """transitions at the end of each sampled sequence that train the embedding and RND"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("num_policies", "episodic_capacity", "num_neighbours", "embedding_size",
                              "rnd_output_size", "aux_lr", "aux_steps")
        self.require_non_negative("intrinsic_beta")
        self.require_unit_interval("gamma_min", open_low=True)
        self.require_unit_interval("retrace_lambda")
        if self.max_modulation < 1.0:
            raise ValueError(f"--max-modulation must be at least 1, got {self.max_modulation}")
        if self.gamma_min > self.gamma:
            raise ValueError(f"--gamma-min {self.gamma_min} is above --gamma {self.gamma} (gamma_max)")

    @property
    def algo(self) -> str:
        return "ngu"


# Small control tasks and small images: R2D2's small-task values, the intrinsic reward on top.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=2_000_000, envs_per_actor=4, sequence_length=40, sequence_overlap=20, burn_in=10, gamma=0.99,
    gamma_min=0.95, lr=1e-3, adam_eps=1e-8, target_update_interval=100, batch_size=32, replay_capacity=10_000,
    learning_starts=64, samples_per_insert=16.0, hidden_size=64, lstm_size=64, param_refresh_steps=100,
    replay_block_size=2, eval_interval_seconds=2.0, log_interval_seconds=2.0, checkpoint_interval_seconds=60.0,
)


# Small images (MinAtar's): a thirtieth of the paper's beta. The episodic reward's formula gives each step of
# a short episode tens of units of novelty where a game pays a few points an episode, and at beta 0.3 the
# shared network learns the exploratory policies' values at the expense of j = 0's (the scale gap Agent57
# splits its value function for).
SMALL_IMAGE_DEFAULTS: dict[str, Any] = {**VECTOR_DEFAULTS, "intrinsic_beta": 0.01}


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults (or, when
    resuming, on top of the resumed run's config.json)."""
    return make_family_config(Config, overrides, VECTOR_DEFAULTS, small_image_defaults=SMALL_IMAGE_DEFAULTS)
