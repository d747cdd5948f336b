"""Configuration of Agent57; the dataclass is also the command line. Agent57 is NGU with two changes,
so its config is NGU's with the discount schedule, the trace length and the meta-controller's fields."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.config import make_family_config
from ngu.config import VECTOR_DEFAULTS as NGU_VECTOR_DEFAULTS
from ngu.config import Config as NGUConfig


@dataclass(frozen=True)
class Config(NGUConfig):
    """Agent57 (Badia et al. 2020, "Agent57"): NGU with the state-action value split into an extrinsic
    and an intrinsic network, each trained on its own reward, and a sliding-window UCB bandit per
    actor that picks the policy j of each episode. With --serial, the same actors, replay and learner
    run in turn in one process."""

    gamma: float = 0.9999
    """gamma_0, the discount of the most exploitative policy j = 0"""
    gamma_1: float = 0.997
    """gamma_1: the discount of j = 7 and j = 8, where the schedule's two parts meet"""
    gamma_min: float = 0.99
    """gamma_2, the discount of the most exploratory policy j = N - 1"""
    sequence_length: int = 160
    """steps per stored sequence (the paper's trace length), burn-in included"""
    sequence_overlap: int = 80
    """steps shared by consecutive sequences (a replay period of 80)"""
    bandit_window: int = 160
    """episodes an actor's bandit remembers"""
    bandit_epsilon: float = 0.5
    """probability that an actor's bandit picks a uniform arm"""
    bandit_beta: float = 1.0
    """weight of the bandit's exploration bonus sqrt(1 / count)"""
    eval_policy: str = "bandit"
    """the evaluator's arm: "bandit" (its own bandit, window 3,600, epsilon 0.01) or "exploit" (j = 0)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("bandit_window")
        self.require_non_negative("bandit_beta")
        self.require_unit_interval("bandit_epsilon")
        if self.num_policies < 10:
            raise ValueError(f"--num-policies must be at least 10 for Agent57's discount schedule, got "
                             f"{self.num_policies}")
        if not self.gamma_min <= self.gamma_1 <= self.gamma:
            raise ValueError(f"the discounts must fall: --gamma {self.gamma} >= --gamma-1 {self.gamma_1} >= "
                             f"--gamma-min {self.gamma_min}")
        if self.eval_policy not in ("bandit", "exploit"):
            raise ValueError(f"--eval-policy must be bandit or exploit, got {self.eval_policy!r}")

    @property
    def algo(self) -> str:
        return "agent57"


# Small control tasks and small images: NGU's, with Agent57's schedule shifted to short horizons.
VECTOR_DEFAULTS: dict[str, Any] = {**NGU_VECTOR_DEFAULTS, "gamma": 0.997, "gamma_1": 0.99, "gamma_min": 0.95}


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults (or, when
    resuming, on top of the resumed run's config.json)."""
    return make_family_config(Config, overrides, VECTOR_DEFAULTS, small_image_defaults=VECTOR_DEFAULTS)
