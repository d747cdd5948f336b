"""The command-line contract every training entry point shares (`python -m a3c.train`, `apex.train`,
`r2d2.train`): one frozen dataclass that each family's Config extends with its own fields.

A family redeclares a field here only to change its default or to say more in its `--help`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from common.envs import frames_per_step, observation_kind
from common.resume import config_with_resume

C = TypeVar("C", bound="RunConfig")
MAX_WORKERS = 512


@dataclass(frozen=True)
class RunConfig:
    env_id: str = "CartPole-v1"
    """gymnasium id (module:Id imports the module first); ALE/Pong-v5 and PongNoFrameskip-v4 style ids get
    the DQN Atari protocol, image envs a convolutional torso"""
    seed: int = 0
    """base random seed; worker (actor) i uses seed + 1000 * (i + 1)"""
    num_workers: int = 2
    """worker processes: actor-learners, or the actors of a replay method (with --serial: stepped in turn
    in the one process)"""
    total_steps: int = 50_000_000
    """agent steps summed over all workers and their envs"""
    max_seconds: float = 0.0
    """wall-clock budget of the run in seconds, counted across resumes (0: none)"""
    stop_return: float | None = None
    """stop once an evaluation mean reaches this return"""
    run_dir: str = ""
    """where metrics, checkpoints and plots go (default: runs/<algo>-<env>-<seed>-<time>)"""
    resume: str = ""
    """checkpoint file or run directory to continue from (with the replay saved at a clean stop, if any)"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """learner device; auto uses CUDA when present. Actors always run on the CPU"""
    sticky_actions: bool = False
    """ALE only: repeat the previous action with probability 0.25 (Machado et al. 2018)"""
    frame_stack: int = 1
    """non-Atari envs: stack the last k observations along the channels (ALE ids always stack 4)"""

    eval_interval_seconds: float = 30.0
    """seconds between evaluations of the current model (0: no evaluation)"""
    eval_episodes: int = 10
    """episodes per evaluation, greedy actions"""
    video_interval_seconds: float = 0.0
    """seconds between evaluation games recorded to run_dir/videos/eval-<steps>.mp4, one frame per agent
    step (0: none)"""
    log_interval_seconds: float = 5.0
    """seconds between progress lines and metrics rows"""
    checkpoint_interval_seconds: float = 300.0
    """seconds between checkpoints (the last two are kept)"""

    def __post_init__(self) -> None:
        self.require_positive("num_workers", "total_steps", "eval_episodes", "frame_stack", "log_interval_seconds",
                              "checkpoint_interval_seconds")
        self.require_non_negative("max_seconds", "eval_interval_seconds", "video_interval_seconds")
        if self.num_workers > MAX_WORKERS:
            raise ValueError(f"--num-workers {self.num_workers} is more processes than any box runs well")

    def require_positive(self, *names: str) -> None:
        for name in names:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")

    def require_non_negative(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")

    def require_unit_interval(self, *names: str, open_low: bool = False, open_high: bool = False) -> None:
        """0 <= value <= 1 for each field named (0 < value with open_low, value < 1 with open_high)."""
        for name in names:
            value = getattr(self, name)
            if not (0.0 < value if open_low else 0.0 <= value) or not (value < 1.0 if open_high else value <= 1.0):
                interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
                raise ValueError(f"--{name.replace('_', '-')} must be in {interval}, got {value}")

    @property
    def frames_per_step(self) -> int:
        return frames_per_step(self.env_id)


def make_family_config(cls: type[C], overrides: dict[str, Any], vector_defaults: dict[str, Any],
                       frame_defaults: dict[str, Any] | None = None,
                       small_image_defaults: dict[str, Any] | None = None) -> C:
    """The config for command-line `overrides` on top of the family's defaults for the env's kind of
    observation (common.envs.observation_kind): the dataclass defaults plus `frame_defaults` for frames
    (ALE ids, images of 36 pixels a side or more), plus `small_image_defaults` for small images (MinAtar's;
    frame_defaults when None), plus `vector_defaults` for vectors (or, when resuming, on top of the
    resumed run's config.json)."""
    env_id = overrides.get("env_id", cls.env_id)
    kind = observation_kind(env_id)
    family = {"vector": vector_defaults, "frames": frame_defaults or {},
              "small_image": small_image_defaults if small_image_defaults is not None else frame_defaults or {}}[kind]
    defaults = {"env_id": env_id, **family}
    return config_with_resume(cls, overrides, defaults)
