"""Configuration of the asynchronous methods; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.envs import frames_per_step, is_atari
from common.owner import config_with_resume

Algo = Literal["a3c", "a3c-lstm", "q1", "sarsa1", "nstep-q"]
POLICY_ALGOS = ("a3c", "a3c-lstm")


@dataclass(frozen=True)
class Config:
    """Asynchronous methods of Mnih et al. 2016: A3C (feed-forward and LSTM), 1-step Q, 1-step SARSA and
    n-step Q, trained Hogwild-style by worker processes sharing one model and one RMSProp."""

    algo: Algo = "a3c"
    """which method: a3c, a3c-lstm, q1 (1-step Q), sarsa1 (1-step SARSA) or nstep-q"""
    env_id: str = "CartPole-v1"
    """gymnasium id; ALE/... ids get the DQN Atari protocol"""
    seed: int = 0
    """base random seed; worker i uses seed + 1000 * (i + 1)"""
    num_workers: int = 2
    """actor-learner processes"""
    total_steps: int = 10_000_000
    """agent steps summed over workers; the learning rate anneals to 0 over them"""
    max_seconds: float = 0.0
    """wall-clock budget of the run in seconds, counted across resumes (0: none)"""
    stop_return: float | None = None
    """stop once an evaluation mean reaches this return"""
    run_dir: str = ""
    """where metrics, checkpoints and plots go (default: runs/<algo>-<env>-<seed>-<time>)"""
    resume: str = ""
    """checkpoint file or run directory to continue from"""
    device: Literal["auto", "cpu"] = "auto"
    """async workers update a CPU model in shared memory, so auto means cpu here"""
    sticky_actions: bool = False
    """ALE only: repeat the previous action with probability 0.25 (Machado et al. 2018)"""

    lr: float = 7e-4
    """initial RMSProp learning rate, annealed linearly to 0 over total_steps"""
    rmsprop_alpha: float = 0.99
    """shared RMSProp decay of the squared-gradient average"""
    rmsprop_eps: float = 0.1
    """shared RMSProp epsilon, added inside the square root as in the paper"""
    max_grad_norm: float = 40.0
    """gradient-norm clip of each worker's update"""
    gamma: float = 0.99
    """discount"""
    t_max: int = 5
    """rollout length of a3c, a3c-lstm and nstep-q; steps of gradient accumulation of q1 and sarsa1"""
    entropy_coef: float = 0.01
    """A3C entropy bonus weight"""
    value_coef: float = 0.5
    """A3C weight of the value loss 0.5 * (G - V)^2"""
    hidden_size: int = 256
    """width of the torso's last layer"""
    lstm_size: int = 256
    """a3c-lstm: LSTM units after the torso"""
    eps_anneal_frames: int = 4_000_000
    """Q methods: frames (summed over workers) over which epsilon anneals from 1 to its final value"""
    target_update_frames: int = 40_000
    """Q methods: frames (summed over workers) between refreshes of the shared target network"""

    eval_interval_seconds: float = 30.0
    """seconds between evaluations of the shared model (0: no evaluation)"""
    eval_episodes: int = 10
    """episodes per evaluation, greedy actions"""
    log_interval_seconds: float = 5.0
    """seconds between progress lines and metrics rows"""
    checkpoint_interval_seconds: float = 300.0
    """seconds between checkpoints (the last two are kept)"""

    def __post_init__(self) -> None:
        positive = ("num_workers", "total_steps", "lr", "t_max", "hidden_size", "lstm_size",
                    "eps_anneal_frames", "target_update_frames", "eval_episodes",
                    "log_interval_seconds", "checkpoint_interval_seconds", "max_grad_norm", "rmsprop_eps")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_seconds", "eval_interval_seconds", "entropy_coef", "value_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"--gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 <= self.rmsprop_alpha < 1.0:
            raise ValueError(f"--rmsprop-alpha must be in [0, 1), got {self.rmsprop_alpha}")
        if self.num_workers > 512:
            raise ValueError(f"--num-workers {self.num_workers} is more processes than any box runs well")

    @property
    def frames_per_step(self) -> int:
        return frames_per_step(self.env_id)

    @property
    def is_policy_method(self) -> bool:
        return self.algo in POLICY_ALGOS


# Small control tasks learn in seconds; the Atari values of the paper would be far too slow there.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=1_000_000, lr=1e-3, gamma=0.95, hidden_size=64, lstm_size=64,
    eps_anneal_frames=100_000, target_update_frames=5_000, eval_interval_seconds=2.0,
    log_interval_seconds=2.0, checkpoint_interval_seconds=60.0,
)


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults
    (or on top of the resumed run's config.json)."""
    env_id = overrides.get("env_id", Config.env_id)
    family = {"env_id": env_id} if is_atari(env_id) else {"env_id": env_id, **VECTOR_DEFAULTS}
    if not is_atari(env_id) and overrides.get("algo") == "a3c-lstm":
        # policy and value share the LSTM there: a smaller value weight keeps its gradients from
        # swamping the policy's (the feed-forward A3C has a value torso of its own on vector tasks)
        family["value_coef"] = 0.25
    return config_with_resume(Config, overrides, family)
