"""Configuration of Ape-X DQN and of serial DQN; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import RunConfig, make_family_config


@dataclass(frozen=True)
class Config(RunConfig):
    """Ape-X DQN (Horgan et al. 2018): actor processes with an epsilon ladder feed a shared prioritized
    replay; one learner trains a dueling double DQN on n-step returns. With --serial, the same actor,
    replay and learner run in turn in one process as DQN (Mnih et al. 2015) with switchable parts."""

    serial: bool = False
    """run actors and learner in turn in one process (DQN; deterministic for a fixed seed)"""
    double: bool = True
    """double-Q target: the online network picks the bootstrap action, the target network values it"""
    dueling: bool = True
    """dueling head: Q = V + A - mean(A) (Wang et al. 2016)"""
    prioritized: bool = True
    """prioritized sampling with importance weights (Schaul et al. 2016); false: uniform"""
    n_step: int = 3
    """steps of reward summed before bootstrapping"""
    target_tau: float = 0.0
    """0: copy the target network every target_update_interval updates; >0: Polyak-average it by tau every update"""

    envs_per_actor: int = 4
    """environments per actor, stepped together with one batched forward pass"""
    epsilon_base: float = 0.4
    """epsilon ladder: env i of N uses epsilon_base ** (1 + epsilon_alpha * i / (N - 1))"""
    epsilon_alpha: float = 7.0
    """epsilon ladder exponent range"""
    param_refresh_steps: int = 400
    """env steps of an actor between looks at the learner's published parameters"""
    replay_block_size: int = 64
    """n-step transitions an actor env collects before one replay insert"""

    gamma: float = 0.99
    """discount"""
    lr: float = 0.00025 / 4
    """Adam learning rate"""
    adam_eps: float = 1.5e-4
    """Adam epsilon"""
    max_grad_norm: float = 40.0
    """gradient-norm clip of each update"""
    target_update_interval: int = 2500
    """learner updates between copies of the target network (when target_tau is 0)"""
    batch_size: int = 512
    """transitions per learner update"""
    replay_capacity: int = 1_000_000
    """transitions held by the replay (about 7.2 KiB of shared memory each on Atari)"""
    alpha: float = 0.6
    """priority exponent"""
    beta: float = 0.4
    """importance-sampling exponent"""
    learning_starts: int = 50_000
    """transitions in the replay before the first update"""
    samples_per_insert: float = 0.0
    """rate limit: sampled transitions per inserted one (0: none; with --serial, 0 means one update per round)"""
    hidden_size: int = 256
    """width of the torso's last layer"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("n_step", "envs_per_actor", "epsilon_base", "param_refresh_steps", "replay_block_size",
                              "lr", "adam_eps", "max_grad_norm", "target_update_interval", "batch_size",
                              "replay_capacity", "hidden_size")
        self.require_non_negative("epsilon_alpha", "alpha", "beta", "learning_starts", "samples_per_insert")
        self.require_unit_interval("gamma", open_low=True)
        self.require_unit_interval("target_tau")
        self.require_unit_interval("epsilon_base", open_low=True)
        if self.batch_size > self.replay_capacity:
            raise ValueError(f"--batch-size {self.batch_size} exceeds --replay-capacity {self.replay_capacity}")
        if self.n_step + 1 > 64:
            raise ValueError(f"--n-step must be below 64, got {self.n_step}")

    @property
    def algo(self) -> str:
        return "dqn" if self.serial else "apex"

    @property
    def num_envs(self) -> int:
        """Actor envs over all actors: the length of the epsilon ladder."""
        return self.num_workers * self.envs_per_actor


# Small control tasks: the Atari values (50k transitions before learning, 2,500 updates between target
# copies, batch 512) would spend minutes before the first useful update.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=2_000_000, lr=1e-3, adam_eps=1e-8, target_update_interval=250, batch_size=64,
    replay_capacity=100_000, learning_starts=1_000, samples_per_insert=4.0, hidden_size=128,
    param_refresh_steps=100, replay_block_size=16, eval_interval_seconds=2.0, log_interval_seconds=2.0,
    checkpoint_interval_seconds=60.0,
)


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults (or, when
    resuming, on top of the resumed run's config.json)."""
    return make_family_config(Config, overrides, VECTOR_DEFAULTS)
