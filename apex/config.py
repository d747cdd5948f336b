"""Configuration of Ape-X DQN and of serial DQN; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import make_family_config
from common.distributed.config import ReplayRunConfig


@dataclass(frozen=True)
class Config(ReplayRunConfig):
    """Ape-X DQN (Horgan et al. 2018): actor processes with an epsilon ladder feed a shared prioritized
    replay; one learner trains a dueling double DQN on n-step returns. With --serial, the same actor,
    replay and learner run in turn in one process as DQN (Mnih et al. 2015) with switchable parts.
    With --gorila, the same actor and loss run as Gorila's bundles (Nair et al. 2015) around a
    parameter server (`common.distributed.param_server`)."""

    serial: bool = False
    """run actors and learner in turn in one process (DQN; deterministic for a fixed seed)"""
    double: bool = True
    """double-Q target: the online network picks the bootstrap action, the target network values it"""
    dueling: bool = True
    """dueling head: Q = V + A - mean(A) (Wang et al. 2016)"""
    prioritized: bool = True
    """prioritized sampling with importance weights (Schaul et al. 2016); false: uniform"""
    target_tau: float = 0.0
    """0: copy the target network every target_update_interval updates; >0: Polyak-average it by tau every update"""

    replay_capacity: int = 1_000_000
    """transitions held by the replay (about 7.2 KiB of shared memory each on Atari); with --gorila, by each
    bundle's replay"""

    gorila: bool = False
    """Gorila's bundled mode (Nair et al. 2015): --num-workers bundles, each an actor, its own uniform
    replay and a learner sending loss gradients to a parameter server in the train process; a bundle
    refreshes its parameters before every gradient and every --param-refresh-steps env steps, and its
    target every --target-update-interval server updates (--prioritized and the replay's saving do not
    apply)"""
    gorila_max_staleness: int = 64
    """with --gorila: the parameter server drops a gradient computed on parameters more than this many of
    its updates old (Nair et al. 2015, section 4.1); keep it above the number of bundles"""
    gorila_loss_outlier_stds: float = 0.0
    """with --gorila: a bundle discards a gradient whose loss is more than this many running standard
    deviations above its running mean loss (Nair et al. 2015, section 4.1; 0: every gradient is sent)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_unit_interval("target_tau")
        if self.n_step + 1 > 64:
            raise ValueError(f"--n-step must be below 64, got {self.n_step}")
        self.require_non_negative("gorila_max_staleness", "gorila_loss_outlier_stds")
        if self.gorila and self.serial:
            raise ValueError("--gorila and --serial are two different modes: choose one")
        if self.gorila and self.backend == "ray":
            raise ValueError("--gorila runs on the local backend only: its bundles learn on replays of their own")
        if self.gorila and self.target_tau > 0:
            raise ValueError("--gorila copies the target every --target-update-interval server updates; "
                             "--target-tau does not apply")

    @property
    def algo(self) -> str:
        return "dqn" if self.serial else "gorila" if self.gorila else "apex"


# Small control tasks and small images (MinAtar's): the Atari values (50k transitions before learning,
# 2,500 updates between target copies, batch 512) would spend minutes before the first useful update.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=2_000_000, lr=1e-3, adam_eps=1e-8, target_update_interval=250, batch_size=64,
    replay_capacity=100_000, learning_starts=1_000, samples_per_insert=4.0, hidden_size=128,
    param_refresh_steps=100, replay_block_size=16, eval_interval_seconds=2.0, log_interval_seconds=2.0,
    checkpoint_interval_seconds=60.0,
)


# A Gorila bundle refreshes its copy of the parameters before every gradient (Algorithm 1), and its
# actor every 16 env steps as well, instead of 100 or 400: between two gradients it acts on parameters
# no older than those its gradients are computed on.
GORILA_DEFAULTS: dict[str, Any] = dict(param_refresh_steps=16)


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults (or, when
    resuming, on top of the resumed run's config.json)."""
    if overrides.get("gorila"):
        small = {**VECTOR_DEFAULTS, **GORILA_DEFAULTS}
        return make_family_config(Config, overrides, small, GORILA_DEFAULTS, small_image_defaults=small)
    return make_family_config(Config, overrides, VECTOR_DEFAULTS, small_image_defaults=VECTOR_DEFAULTS)
