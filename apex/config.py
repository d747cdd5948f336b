"""Configuration of Ape-X DQN and of serial DQN; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.envs import frames_per_step, is_atari
from common.owner import config_with_resume


@dataclass(frozen=True)
class Config:
    """Ape-X DQN (Horgan et al. 2018): actor processes with an epsilon ladder feed a shared prioritized
    replay; one learner trains a dueling double DQN on n-step returns. With --serial, the same actor,
    replay and learner run in turn in one process as DQN (Mnih et al. 2015) with switchable parts."""

    env_id: str = "CartPole-v1"
    """gymnasium id; ALE/... ids get the DQN Atari protocol"""
    seed: int = 0
    """base random seed; actor i uses seed + 1000 * (i + 1)"""
    num_workers: int = 2
    """actor processes (with --serial: actors stepped in turn in the one process)"""
    total_steps: int = 50_000_000
    """agent steps summed over all actor envs"""
    max_seconds: float = 0.0
    """wall-clock budget of the run in seconds, counted across resumes (0: none)"""
    stop_return: float | None = None
    """stop once an evaluation mean reaches this return"""
    run_dir: str = ""
    """where metrics, checkpoints and plots go (default: runs/<apex|dqn>-<env>-<seed>-<time>)"""
    resume: str = ""
    """checkpoint file or run directory to continue from (the replay is not saved: it refills)"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """learner device; auto uses CUDA when present. Actors always run on the CPU"""
    sticky_actions: bool = False
    """ALE only: repeat the previous action with probability 0.25 (Machado et al. 2018)"""

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

    eval_interval_seconds: float = 30.0
    """seconds between evaluations of the published model (0: no evaluation)"""
    eval_episodes: int = 10
    """episodes per evaluation, greedy actions"""
    log_interval_seconds: float = 5.0
    """seconds between progress lines and metrics rows"""
    checkpoint_interval_seconds: float = 300.0
    """seconds between checkpoints (the last two are kept)"""

    def __post_init__(self) -> None:
        positive = ("num_workers", "total_steps", "n_step", "envs_per_actor", "epsilon_base", "param_refresh_steps",
                    "replay_block_size", "lr", "adam_eps", "max_grad_norm", "target_update_interval", "batch_size",
                    "replay_capacity", "hidden_size", "eval_episodes", "log_interval_seconds",
                    "checkpoint_interval_seconds")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_seconds", "eval_interval_seconds", "epsilon_alpha", "alpha", "beta",
                     "learning_starts", "samples_per_insert"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"--gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 <= self.target_tau <= 1.0:
            raise ValueError(f"--target-tau must be in [0, 1], got {self.target_tau}")
        if self.epsilon_base > 1.0:
            raise ValueError(f"--epsilon-base must be at most 1, got {self.epsilon_base}")
        if self.num_workers > 256:
            raise ValueError(f"--num-workers {self.num_workers} is more processes than any box runs well")
        if self.batch_size > self.replay_capacity:
            raise ValueError(f"--batch-size {self.batch_size} exceeds --replay-capacity {self.replay_capacity}")
        if self.n_step + 1 > 64:
            raise ValueError(f"--n-step must be below 64, got {self.n_step}")

    @property
    def algo(self) -> str:
        return "dqn" if self.serial else "apex"

    @property
    def frames_per_step(self) -> int:
        return frames_per_step(self.env_id)

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
    env_id = overrides.get("env_id", Config.env_id)
    defaults = {"env_id": env_id} if is_atari(env_id) else {"env_id": env_id, **VECTOR_DEFAULTS}
    return config_with_resume(Config, overrides, defaults)
