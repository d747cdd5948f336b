"""The fields every algorithm on the replay runtime shares (Ape-X, R2D2, and those to come).

`ReplayRunConfig` is data only, between `RunConfig` and the family configs: the runtime reads these
fields (actor envs, epsilon ladder, parameter refresh, rate limit, serial mode) and the families'
learners share the rest, so each is declared, documented and checked once. A family redeclares a
field only to change its default (a bare `name: type = value` keeps the help here) or to say more.
The fields that count replay items say their unit: a transition for Ape-X, a sequence for R2D2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.config import RunConfig


@dataclass(frozen=True)
class ReplayRunConfig(RunConfig):
    serial: bool = False
    """run actors and learner in turn in one process (deterministic for a fixed seed)"""
    backend: Literal["local", "ray"] = "local"
    """local: actor processes on this machine around one shared-memory replay; ray: actors as Ray actors
    on any node of a Ray cluster, the replay as shards on this (the learner's) node (pip install -e ".[ray]")"""
    ray_address: str = ""
    """with --backend ray: empty starts a Ray instance on this machine for the run; auto or host:port joins
    a running cluster"""
    replay_shards: int = 2
    """with --backend ray: Ray actors the replay is split over, each holding replay_capacity / replay_shards"""
    inserts_in_flight: int = 4
    """with --backend ray: replay inserts an actor may have sent and not yet seen answered"""
    publish_seconds: float = 0.2
    """with --backend ray: seconds between two publications of the learner's parameters to the object store"""

    envs_per_actor: int = 4
    """environments per actor, stepped together with one batched forward pass"""
    epsilon_base: float = 0.4
    """epsilon ladder: env i of N uses epsilon_base ** (1 + epsilon_alpha * i / (N - 1))"""
    epsilon_alpha: float = 7.0
    """epsilon ladder exponent range"""
    param_refresh_steps: int = 400
    """env steps of an actor between looks at the learner's published parameters"""
    replay_block_size: int = 64
    """replay items (n-step transitions for Ape-X, sequences for R2D2) an actor env collects before one
    replay insert"""

    n_step: int = 3
    """steps of reward summed before bootstrapping"""
    gamma: float = 0.99
    """discount"""
    lr: float = 0.00025 / 4
    """Adam learning rate"""
    adam_eps: float = 1.5e-4
    """Adam epsilon"""
    max_grad_norm: float = 40.0
    """gradient-norm clip of each update"""
    target_update_interval: int = 2500
    """learner updates between copies of the target network"""
    batch_size: int = 512
    """replay items per learner update (transitions for Ape-X, sequences for R2D2)"""
    replay_capacity: int = 1_000_000
    """replay items held by the replay (transitions for Ape-X, sequences for R2D2)"""
    alpha: float = 0.6
    """priority exponent"""
    beta: float = 0.4
    """importance-sampling exponent"""
    learning_starts: int = 50_000
    """replay items in the replay before the first update (transitions for Ape-X, sequences for R2D2)"""
    samples_per_insert: float = 0.0
    """rate limit: sampled replay items per inserted one (0: none; with --serial, 0 means one update per round)"""
    hidden_size: int = 256
    """width of the torso's last layer"""
    learner_threads: int = 1
    """torch threads of the train process, where the learner runs (with --serial, the actors too); 1 leaves
    the other cores to the actor processes. A CPU learner on a machine with idle cores updates faster with
    more"""

    save_replay: bool = True
    """on a clean stop (Ctrl-C, SIGTERM, the end of the budget) write the replay next to the final
    checkpoint, for --resume to restore (false: no disk cost; a resumed run then refills the replay)"""
    resume_replay: bool = True
    """with --resume, restore the replay saved next to the checkpoint if there is one (false: refill it)"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("replay_shards", "inserts_in_flight", "publish_seconds")
        if self.backend == "ray" and self.serial:
            raise ValueError("--serial runs actors and learner in one process; --backend ray needs them apart")
        if self.backend == "ray" and self.replay_capacity < self.replay_shards:
            raise ValueError(f"--replay-capacity {self.replay_capacity} is below --replay-shards {self.replay_shards}")
        self.require_positive("envs_per_actor", "epsilon_base", "param_refresh_steps", "replay_block_size", "n_step",
                              "lr", "adam_eps", "max_grad_norm", "target_update_interval", "batch_size",
                              "replay_capacity", "hidden_size", "learner_threads")
        self.require_non_negative("epsilon_alpha", "alpha", "beta", "learning_starts", "samples_per_insert")
        self.require_unit_interval("gamma", open_low=True)
        self.require_unit_interval("epsilon_base", open_low=True)
        if self.batch_size > self.replay_capacity:
            raise ValueError(f"--batch-size {self.batch_size} exceeds --replay-capacity {self.replay_capacity}")

    @property
    def num_envs(self) -> int:
        """Actor envs over all actors: the length of the epsilon ladder."""
        return self.num_workers * self.envs_per_actor


@dataclass(frozen=True)
class SequenceRunConfig(ReplayRunConfig):
    """The fields of the recurrent families on stored sequences (R2D2, NGU): what a sequence is, how
    its recurrent state is warmed up, how its priority is mixed (Kapturowski et al. 2019, section 2.3)."""

    sequence_length: int = 80
    """steps per stored sequence, burn-in included"""
    sequence_overlap: int = 40
    """steps shared by consecutive sequences of one episode"""
    burn_in: int = 40
    """steps that only warm up the recurrent state from the stored one, without gradient or loss
    (sequences that start an episode have the exact zero state and train from their first step)"""
    eta: float = 0.9
    """sequence priority: eta * max |TD| + (1 - eta) * mean |TD|"""
    lstm_size: int = 512
    """LSTM units"""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("sequence_length", "lstm_size")
        self.require_non_negative("burn_in", "sequence_overlap")
        self.require_unit_interval("eta")
        if self.sequence_overlap >= self.sequence_length:
            raise ValueError(f"--sequence-overlap {self.sequence_overlap} must be below --sequence-length "
                             f"{self.sequence_length}")
        if self.burn_in >= self.sequence_length:
            raise ValueError(f"--burn-in {self.burn_in} leaves nothing of --sequence-length {self.sequence_length} "
                             f"to train on")
