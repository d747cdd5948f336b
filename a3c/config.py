"""Configuration of the asynchronous methods; the dataclass is also the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from common.config import RunConfig, make_family_config

Algo = Literal["a3c", "a3c-lstm", "q1", "sarsa1", "nstep-q", "a2c", "reinforce"]
POLICY_ALGOS = ("a3c", "a3c-lstm", "a2c", "reinforce")
Q_ALGOS = ("q1", "sarsa1", "nstep-q")


@dataclass(frozen=True)
class Config(RunConfig):
    """Asynchronous methods of Mnih et al. 2016: A3C (feed-forward and LSTM), 1-step Q, 1-step SARSA and
    n-step Q, trained Hogwild-style by worker processes sharing one model and one RMSProp; and their
    neighbours in the lineage: REINFORCE (Williams 1992) on the same workers, and A2C, A3C made
    synchronous (N envs stepped together in one process, one update per batch)."""

    num_workers: int = 2
    """actor-learner processes"""
    total_steps: int = 10_000_000
    """agent steps summed over workers; the learning rate anneals to 0 over them"""
    device: Literal["auto", "cpu"] = "auto"
    """async workers update a CPU model in shared memory, so auto means cpu here"""

    algo: Algo = "a3c"
    """which method: a3c, a3c-lstm, q1 (1-step Q), sarsa1 (1-step SARSA), nstep-q, a2c (synchronous A3C)
    or reinforce (Monte-Carlo policy gradient)"""
    num_envs: int = 16
    """a2c: envs stepped together in the one learner process (a2c does not use --num-workers)"""
    reinforce_baseline: bool = True
    """reinforce: subtract a learned state value from the return (trained by squared error)"""

    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    """shared optimizer: the paper's RMSProp (eps inside the square root) or Adam (as pytorch-a3c)"""
    lr: float = 7e-4
    """initial learning rate, annealed linearly to 0 over total_steps"""
    rmsprop_alpha: float = 0.99
    """shared RMSProp decay of the squared-gradient average"""
    rmsprop_eps: float = 0.1
    """shared RMSProp epsilon, added inside the square root as in the paper"""
    rmsprop_initial_g: float = 0.0
    """value the shared RMSProp's squared-gradient average starts from (TensorFlow's RMSProp: 1)"""
    adam_beta2: float = 0.999
    """shared Adam decay of the squared-gradient average"""
    adam_eps: float = 1e-8
    """shared Adam epsilon, added to the square root of the bias-corrected second moment"""
    max_grad_norm: float = 40.0
    """gradient-norm clip of each worker's update (0: no clip)"""
    gamma: float = 0.99
    """discount"""
    t_max: int = 5
    """rollout length of a3c, a3c-lstm, a2c (per env) and nstep-q; steps of gradient accumulation of q1 and
    sarsa1 (reinforce's rollout is the whole episode)"""
    entropy_coef: float = 0.01
    """A3C entropy bonus weight"""
    value_coef: float = 0.5
    """A3C weight of the value loss 0.5 * (G - V)^2"""
    hidden_size: int = 256
    """width of the torso's last layer"""
    weight_init: Literal["torch", "orthogonal"] = "orthogonal"
    """initial weights: torch's defaults, or orthogonal with a near-uniform first policy (OpenAI baselines)"""
    lstm_size: int = 256
    """a3c-lstm: LSTM units after the torso"""
    eps_anneal_frames: int = 4_000_000
    """Q methods: frames (summed over workers) over which epsilon anneals from 1 to its final value"""
    target_update_frames: int = 40_000
    """Q methods: frames (summed over workers) between refreshes of the shared target network"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("lr", "t_max", "num_envs", "hidden_size", "lstm_size", "eps_anneal_frames",
                              "target_update_frames", "rmsprop_eps", "adam_eps")
        self.require_non_negative("entropy_coef", "value_coef", "rmsprop_initial_g", "max_grad_norm")
        self.require_unit_interval("gamma", open_low=True)
        self.require_unit_interval("rmsprop_alpha", "adam_beta2", open_high=True)

    @property
    def is_policy_method(self) -> bool:
        return self.algo in POLICY_ALGOS


# Small control tasks learn in seconds; the Atari values of the paper would be far too slow there.
VECTOR_DEFAULTS: dict[str, Any] = dict(
    total_steps=1_000_000, lr=1e-3, gamma=0.95, hidden_size=64, lstm_size=64, weight_init="torch",
    eps_anneal_frames=100_000, target_update_frames=5_000, eval_interval_seconds=2.0,
    log_interval_seconds=2.0, checkpoint_interval_seconds=60.0,
)
# On top of VECTOR_DEFAULTS, per method:
#  Q methods: CartPole's greedy policies failed by drifting off the track after some 200 steps. A drift
#    builds over many steps: gamma 0.99 sees far enough ahead, and a target refreshed every 500 frames
#    lets a 1-step target carry the failure back within seconds (one step per refresh).
#  a3c: chosen by the defaults sweep (benchmarks.sweep, benchmarks/results/sweep/README.md): gamma 0.95 left
#    Acrobot's swing-up unlearned in one seed of three and 0.99 lost CartPole; gamma 0.98 with Adam
#    reached both thresholds in every seed. No clip: the joint norm is the value error's, so a clip
#    shrank the policy gradient of just the windows that end an episode (the ones that punish the
#    action the policy leans to), and the policy could lock onto one action for good; Adam bounds each
#    step anyway. Adam's beta2 0.99 (the paper's RMSProp decay) keeps an episode's end after a long quiet
#    stretch from moving every weight at once by several steps' worth. Orthogonal weights start the
#    policy uniform, as on frames.
#  a3c-lstm: A3C's, with the value on a feed-forward torso of its own as A3C's (a3c/network.py): sharing
#    the LSTM, the value's gradients swamped the policy's features and Acrobot went unlearned with any
#    of the settings the sweep tried.
A3C_VECTOR_DEFAULTS: dict[str, Any] = dict(gamma=0.98, optimizer="adam", adam_beta2=0.99, max_grad_norm=0.0,
                                           weight_init="orthogonal")
Q_VECTOR_DEFAULTS: dict[str, Any] = dict(gamma=0.99, target_update_frames=500)
VECTOR_DEFAULTS_BY_ALGO: dict[str, dict[str, Any]] = {
    "a3c": A3C_VECTOR_DEFAULTS, "a3c-lstm": A3C_VECTOR_DEFAULTS, "q1": Q_VECTOR_DEFAULTS,
    "sarsa1": Q_VECTOR_DEFAULTS, "nstep-q": Q_VECTOR_DEFAULTS,
}


# On frames (ALE ids and other image envs), A3C and A3C-LSTM depart from the paper's optimizer and window:
# a shared Adam at 1e-4 with 20-step windows (pytorch-a3c's settings) learned Pong on this box, where the
# paper's RMSProp (eps 0.1, lr 7e-4, 5 steps) left the policy near uniform after 3.3M frames and larger
# steps killed the torso (README, "A3C on Pong"). The Q methods keep the paper's values.
POLICY_FRAME_DEFAULTS: dict[str, Any] = dict(optimizer="adam", lr=1e-4, t_max=20)
# A2C and REINFORCE take A3C's, so that each differs from A3C only in synchrony or in its return estimate.
FRAME_DEFAULTS_BY_ALGO: dict[str, dict[str, Any]] = {algo: POLICY_FRAME_DEFAULTS for algo in POLICY_ALGOS}
# Small images (MinAtar's 10x10 grids, through their small torso) take the same at a step five times larger:
# the small torso learns far slower at the frames' step (the defaults sweep, benchmarks/results/sweep/README.md).
POLICY_SMALL_IMAGE_DEFAULTS: dict[str, Any] = dict(POLICY_FRAME_DEFAULTS, lr=5e-4)
# The Q methods on small images: MinAtar's DQN's schedules (examples/dqn.py: epsilon annealed over 100k
# frames, target every 1k) in place of the paper's Atari ones (4M, 40k), which kept them near random play
# for most of MinAtar's 5M frames, and Adam at the frames' step, well ahead of the paper's RMSProp on
# MinAtar Breakout in the defaults sweep (benchmarks/results/sweep/README.md).
Q_SMALL_IMAGE_DEFAULTS: dict[str, Any] = dict(eps_anneal_frames=100_000, target_update_frames=1_000,
                                               optimizer="adam", lr=1e-4)
# A2C's batch is 16 envs x the window: at A3C's 20-step windows it made 16 times fewer updates than A3C's
# workers and ended MinAtar Breakout below DQN's figure; OpenAI baselines' 5-step windows with twice the
# step took it well above (benchmarks/results/minatar.md).
A2C_SMALL_IMAGE_DEFAULTS: dict[str, Any] = dict(POLICY_SMALL_IMAGE_DEFAULTS, t_max=5, lr=1e-3)
SMALL_IMAGE_DEFAULTS_BY_ALGO: dict[str, dict[str, Any]] = {
    **{algo: POLICY_SMALL_IMAGE_DEFAULTS for algo in POLICY_ALGOS}, "a2c": A2C_SMALL_IMAGE_DEFAULTS,
    **{algo: Q_SMALL_IMAGE_DEFAULTS for algo in Q_ALGOS},
}


def make_config(overrides: dict[str, Any]) -> Config:
    """The config for the given command-line values on top of the env family's defaults
    (or on top of the resumed run's config.json)."""
    algo = overrides.get("algo", Config.algo)
    return make_family_config(Config, overrides, {**VECTOR_DEFAULTS, **VECTOR_DEFAULTS_BY_ALGO.get(algo, {})},
                              FRAME_DEFAULTS_BY_ALGO.get(algo, {}), SMALL_IMAGE_DEFAULTS_BY_ALGO.get(algo, {}))
