"""Train Agent57 (`python -m agent57.train`, or `--serial` for actors and learner in turn in one process).

main(cfg) owns every process and shared object of the run, as NGU's does, and one more: the actors'
bandits, three shared arrays with one row per actor (`agent57.bandit.BanditState`), which the
checkpoints keep and a resumed run restores. Between the owner loop's checks it also copies the arms
the actors' bandits were paid for into arms.csv, and at the end draws arms.png (how often each arm
was chosen against episodes).
"""
from __future__ import annotations

import csv
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from agent57.actor import EXTRAS, Actor, EvaluatorArms, greedy_policy, run_actor
from agent57.bandit import BanditState
from agent57.config import Config, make_config
from agent57.learner import Learner
from common.cli import run_cli
from common.counters import RunCounters
from common.distributed.backend import open_backend
from common.distributed.learner_loop import resolve_device, resume_note
from common.envs import is_atari
from common.evaluation import PolicyFor
from common.recipe import EnvProbe, TrainRun, checkpoint_meta, probe_env
from common.replay.sequence import SequenceReplay, SequenceReplayConfig
from common.run import RunSummary

ARM_FIELDS = ("actor", "episode", "arm", "return")


def replay_config(cfg: Config, env: EnvProbe) -> SequenceReplayConfig:
    """NGU's sequence replay, with the pair of LSTM states side by side."""
    return SequenceReplayConfig(
        capacity=cfg.replay_capacity, obs_shape=env.obs_shape, state_size=2 * cfg.lstm_size,
        length=cfg.sequence_length, overlap=cfg.sequence_overlap, obs_dtype=env.obs_dtype, alpha=cfg.alpha,
        frame_stack=env.stacked_frames, extras=EXTRAS)


def run_meta(cfg: Config, net: nn.Module) -> dict[str, Any]:
    """What this family's checkpoints must match to be resumed or evaluated."""
    return checkpoint_meta(cfg, "agent57", net)


def evaluation_policy(cfg: Config) -> PolicyFor:
    """The evaluator's policy_for: its own bandit's arm (or j = 0) for each game, kept across evaluations."""
    return partial(greedy_policy, clip=is_atari(cfg.env_id), cfg=cfg, arms=EvaluatorArms(cfg))


class Bandits:
    """Every actor's bandit memory in shared memory: arms [W, window] int64, rewards [W, window]
    float64, counters [W, 2] int64 (row r: actor r's `BanditState`)."""

    def __init__(self, num_workers: int, window: int):
        self.arms = torch.zeros(num_workers, window, dtype=torch.int64).share_memory_()
        self.rewards = torch.zeros(num_workers, window, dtype=torch.float64).share_memory_()
        self.counters = torch.zeros(num_workers, 2, dtype=torch.int64).share_memory_()

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.arms, self.rewards, self.counters

    def state(self, rank: int) -> BanditState:
        return BanditState(*(tensor[rank].numpy() for tensor in self.tensors()))

    def set_state(self, rank: int, state: BanditState) -> None:
        """Row `rank` from what a Ray actor reported (`Actor.owner_state`)."""
        for tensor, array in zip(self.tensors(), state):
            tensor[rank] = torch.from_numpy(np.asarray(array))


class RunState:
    """What a checkpoint keeps: the learner's state and the actors' bandits."""

    def __init__(self, learner: Learner, bandits: Bandits):
        self.learner, self.bandits = learner, bandits

    def state_dict(self) -> dict[str, Any]:
        return {**self.learner.state_dict(),
                "bandits": {"arms": self.bandits.arms.clone(), "rewards": self.bandits.rewards.clone(),
                            "counters": self.bandits.counters.clone()}}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.learner.load_state_dict(saved)
        for name, tensor in zip(("arms", "rewards", "counters"), self.bandits.tensors()):
            tensor.copy_(saved["bandits"][name])


class ArmLog:
    """Copies each episode the bandits were paid for to arms.csv; draws arms.png at the end."""

    def __init__(self, run_dir: Path, bandits: Bandits, num_arms: int, append: bool):
        self.path, self.bandits, self.num_arms = run_dir / "arms.csv", bandits, num_arms
        exists = append and self.path.is_file()
        self.file = open(self.path, "a" if exists else "w", newline="")
        self.writer = csv.writer(self.file)
        if not exists:
            self.writer.writerow(ARM_FIELDS)
        self.seen = bandits.counters[:, 0].clone()  # episodes of each actor already in the file

    def poll(self) -> None:
        counters = self.bandits.counters[:, 0].clone()
        window = self.bandits.arms.shape[1]
        for rank in torch.nonzero(counters > self.seen).flatten().tolist():
            first = max(int(self.seen[rank]), int(counters[rank]) - window)  # older ones left the ring unread
            for episode in range(first, int(counters[rank])):
                slot = episode % window
                self.writer.writerow((rank, episode, int(self.bandits.arms[rank, slot]),
                                      float(self.bandits.rewards[rank, slot])))
        self.seen = counters

    def close(self) -> None:
        self.poll()
        self.file.close()
        plot_arms(self.path, self.num_arms, self.path.with_suffix(".png"))


def plot_arms(path: Path, num_arms: int, out: Path) -> None:
    """arms.png: the share of episodes that chose each arm, in bins of episodes (all actors together)."""
    with open(path) as f:
        arms = np.array([int(row["arm"]) for row in csv.DictReader(f)])
    if len(arms) == 0:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = max(1, min(50, len(arms) // max(2 * num_arms, 1)))
    edges = np.linspace(0, len(arms), bins + 1).astype(int)
    shares = np.stack([np.bincount(arms[a:b], minlength=num_arms) / max(b - a, 1) for a, b in zip(edges, edges[1:])])
    fig, ax = plt.subplots(figsize=(8, 4))
    image = ax.imshow(shares.T, aspect="auto", origin="lower", cmap="viridis",
                      extent=(0, len(arms), -0.5, num_arms - 0.5))
    fig.colorbar(image, ax=ax, label=f"share of episodes (uniform: {1 / num_arms:.3f})")
    ax.set_xlabel("episodes (all actors, in the order they ended)")
    ax.set_ylabel("arm j (0: beta 0, longest horizon)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def with_arm_log(work: Callable[[], None], log: ArmLog) -> Callable[[], None]:
    def step() -> None:
        work()
        log.poll()
    return step


def main(cfg: Config) -> RunSummary:
    env = probe_env(cfg, threads=cfg.learner_threads)
    device = resolve_device(cfg.device)
    counters = RunCounters(cfg.num_workers)
    backend = open_backend(cfg, SequenceReplay, replay_config(cfg, env))
    bandits = Bandits(cfg.num_workers, cfg.bandit_window)
    work = None
    arm_log: ArmLog | None = None
    try:
        learner = Learner(cfg, env.obs_shape, env.num_actions, device, backend.replay, counters)
        run = TrainRun(cfg, run_meta(cfg, learner.net), RunState(learner, bandits), counters,
                       partial(resume_note, learner), backend.saved_replay)
        params = backend.params(learner.net)
        arm_log = ArmLog(run.run_dir, bandits, cfg.num_policies, bool(cfg.resume))
        print(f"agent57 on {cfg.env_id}: {backend.mode} x {cfg.envs_per_actor} envs, {cfg.num_policies} arms, learner on "
              f"{device}, run dir {run.run_dir}", flush=True)

        def make_actor(rank: int, cfg: Config, replay, params, counters) -> Actor:
            # In a Ray actor, `bandits` is a copy taken at its start: the owner's row then, which the
            # actor reports back as it changes (`Actor.owner_state`, `Bandits.set_state`).
            return Actor(rank, cfg, replay, params, counters, bandits.state(rank))

        work = backend.start(run.supervisor, make_actor, partial(run_actor, bandits=bandits.tensors()), learner,
                             params, counters, on_actor_state=bandits.set_state)
        run.start_evaluator(params.model, evaluation_policy(cfg))
        return run.own(with_arm_log(work, arm_log))
    finally:
        if work is not None:
            work.close()
        if arm_log is not None:
            arm_log.close()
        backend.close()


def cli(argv: list[str] | None = None) -> int:
    return run_cli(main, make_config, Config, argv, prog="python -m agent57.train")


if __name__ == "__main__":
    sys.exit(cli())
