"""The one train recipe: what every family's `train.main(cfg)` does around its own parts.

A family's main probes its env (`probe_env`), builds what is its own (shared model or replay,
learner, ...), then opens a `TrainRun` with its checkpoint metadata and state: that restores a
--resume, writes config.json, opens the logger and the supervisor. The family starts its children
on `run.supervisor`, the evaluator with `run.start_evaluator`, and hands the owner loop over with
`run.own(work)`, which checkpoints through `run.checkpoint` and returns the summary. A replay family
also hands its replay to `TrainRun`, which saves it with the final checkpoint and restores it on --resume.

Bad input found here (an env that does not run, a run directory that cannot be written, a checkpoint
or saved replay that does not fit) is a UsageError: one line from `common.cli.run_cli`, in every
entry point.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from common.checkpoint import load_checkpoint, network_signature, prune_replays, replay_file, save_checkpoint
from common.config import RunConfig
from common.counters import RunCounters
from common.envs import make_env, stacked_frames
from common.errors import UsageError
from common.evaluation import PolicyFor, run_evaluator
from common.logger import RunLogger
from common.networks import check_obs_shape
from common.owner import own_run
from common.run import RunSummary, default_run_dir, write_config
from common.supervisor import Supervisor, eprint

EVALUATOR_SEED_OFFSET = 999_983
"""The evaluator's env is seeded cfg.seed + this: a prime above every training env's seed (worker i
uses seed + 1000 * (i + 1) and its envs count up from there), so evaluation never replays the
episodes of a training env."""


class Checkpointed(Protocol):
    """What a family keeps in its checkpoints besides the counters (model, target, optimizer, ...)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, saved: dict[str, Any]) -> None: ...


class EnvProbe(NamedTuple):
    obs_shape: tuple[int, ...]
    num_actions: int
    obs_dtype: str
    """"uint8" (Atari frames, byte images) or "float32" (vectors, float images): how replays store it"""
    stacked_frames: int | None
    """k for stacks of k one-channel frames that each step shifts by one (common.envs.stacked_frames)"""


class SavedReplay(Protocol):
    """A replay that a run saves at a clean stop and restores on --resume (both replays of
    `common/replay/`, through `common/replay/persist.py`)."""

    def save(self, path: Path) -> float: ...

    def load(self, path: Path) -> float: ...

    def __len__(self) -> int: ...


def one_line(err: BaseException) -> str:
    """An exception as one short line: its type and its message with the whitespace collapsed."""
    message = " ".join(str(err).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def describe_env(env_id: str, seed: int = 0, frame_stack: int = 1) -> EnvProbe:
    """What the networks and replays need to know of the env, once a reset and one step went through;
    raises UsageError for an env we cannot run: an id that does not build, observations no network takes
    (`common.networks.check_obs_shape`), a reset or step that raises or returns what the env's
    observation space does not announce."""
    probe = make_env(env_id, seed, frame_stack=frame_stack)
    try:
        space = probe.observation_space
        obs_shape = tuple(space.shape)
        raw_space = probe.unwrapped.observation_space
        if isinstance(raw_space, gym.spaces.Box) and len(raw_space.shape) > 3:
            raise UsageError(f"env {env_id!r} observes {len(raw_space.shape)}-D arrays {list(raw_space.shape)}; "
                             f"asyncrl's networks take vectors and images")
        try:
            check_obs_shape(obs_shape)
        except ValueError as err:
            raise UsageError(f"env {env_id!r}: {err}") from None
        _try_reset_and_step(probe, env_id, seed, obs_shape)
        return EnvProbe(obs_shape, int(probe.action_space.n), str(np.dtype(space.dtype)), stacked_frames(probe))
    finally:
        probe.close()


def probe_env(cfg: RunConfig, threads: int = 1) -> EnvProbe:
    """describe_env for the run's env, in the owner process, whose torch then keeps to `threads` threads
    (one unless it is a learner given more)."""
    torch.set_num_threads(threads)
    return describe_env(cfg.env_id, cfg.seed, cfg.frame_stack)


def _try_reset_and_step(env: gym.Env, env_id: str, seed: int, obs_shape: tuple[int, ...]) -> None:
    """A failure in the env's own code is the user's to fix: one line naming the env and the error."""
    stage = "reset"
    try:
        obs, _ = env.reset(seed=seed)
        if np.shape(obs) == obs_shape:
            stage = "step"
            obs = env.step(env.action_space.sample())[0]
    except Exception as err:  # noqa: BLE001 - whatever the env's code raises
        raise UsageError(f"env {env_id!r} fails in {stage}: {one_line(err)}") from None
    if np.shape(obs) != obs_shape:
        raise UsageError(f"env {env_id!r} returns observations of shape {list(np.shape(obs))} from {stage}, "
                         f"its observation space says {list(obs_shape)}")


def checkpoint_meta(cfg: Any, family: str, net: nn.Module, **extra: Any) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: family, algorithm, env, the network's shapes, `extra`."""
    return {"family": family, "algo": cfg.algo, "env_id": cfg.env_id, **extra, "network": network_signature(net)}


def restore(resume: str, meta: dict[str, Any], state: Checkpointed, counters: RunCounters) -> tuple[Path, float]:
    """Loads the checkpoint `resume` into the counters and `state`; returns its path and the run's wall
    seconds so far.

    The counters come first, so a state can derive from them (A3C's target epoch). Raises UsageError
    for a checkpoint of another run or layout."""
    path, payload = load_checkpoint(resume, meta)
    try:
        counters.load_state_dict(payload["counters"])
        state.load_state_dict(payload)
    except (KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"checkpoint {path} does not fit this run ({one_line(err)})") from None
    return path, float(payload.get("wall_seconds", 0.0))


class TrainRun:
    """A run's directory, config file, logger, supervisor and checkpoints, resumed if asked.

    `state` and `counters` are what a checkpoint holds (with `meta`, which a resume must match);
    `resume_note()` goes into the "resumed from" line. A `replay` (the replay family's) is saved beside
    the final checkpoint of a clean stop unless --save-replay is false, and restored by --resume
    unless --resume-replay is false (`common/replay/persist.py`).
    """

    def __init__(self, cfg: Any, meta: dict[str, Any], state: Checkpointed, counters: RunCounters,
                 resume_note: Callable[[], str] = lambda: "", replay: SavedReplay | None = None):
        self.cfg, self.meta, self.state, self.counters, self.replay = cfg, meta, state, counters, replay
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.algo, cfg.env_id, cfg.seed)
        self.wall_offset = 0.0
        if cfg.resume:
            path, self.wall_offset = restore(cfg.resume, meta, state, counters)
            replay_note = self._restore_replay(path)
            print(f"resumed from {path} at {counters.total_steps():,} steps{resume_note()}{replay_note}", flush=True)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_config(self.run_dir, cfg)
            self.logger = RunLogger(self.run_dir, append=bool(cfg.resume), title=f"{cfg.algo} on {cfg.env_id}")
        except OSError as err:
            reason = "a file of that name exists" if self.run_dir.is_file() else err.strerror or one_line(err)
            where = f" ({err.filename})" if err.filename and str(err.filename) != str(self.run_dir) else ""
            raise UsageError(f"cannot write the run directory {self.run_dir}: {reason}{where}") from None
        self.supervisor = Supervisor(log=eprint)

    def _restore_replay(self, checkpoint: Path) -> str:
        """Loads the replay saved with `checkpoint` if there is one and the user wants it; returns what
        the "resumed from" line says of it."""
        if self.replay is None:
            return ""
        saved = replay_file(checkpoint)
        if not self.cfg.resume_replay:
            return "; the replay refills before learning goes on (--resume-replay false)"
        if not saved.is_file():
            return "; no replay was saved with it (not a clean stop, or --save-replay false): it refills"
        try:
            seconds = self.replay.load(saved)
        except (ValueError, OSError) as err:
            reason = str(err) if isinstance(err, ValueError) else f"{saved}: {err.strerror or one_line(err)}"
            raise UsageError(f"cannot restore the replay: {reason}; --resume-replay false resumes without it"
                             ) from None
        return f"; the replay's {len(self.replay):,} items restored from {saved.name} in {seconds:.1f} s"

    def start_evaluator(self, model: nn.Module, policy_for: PolicyFor | None = None) -> None:
        """A supervised process that plays greedy episodes with `model` (a shared-memory copy) every
        --eval-interval-seconds (none with 0), recording one to run_dir/videos every
        --video-interval-seconds."""
        cfg = self.cfg
        if cfg.eval_interval_seconds <= 0:
            return
        evaluator = partial(run_evaluator, policy_for=policy_for, video_dir=self.run_dir / "videos",
                            video_interval_seconds=cfg.video_interval_seconds)
        self.supervisor.start("evaluator", evaluator,
                              (model, cfg.env_id, cfg.sticky_actions, cfg.frame_stack, cfg.eval_interval_seconds,
                               cfg.eval_episodes,
                               cfg.seed + EVALUATOR_SEED_OFFSET, self.counters))

    def checkpoint(self, wall_seconds: float, final: bool = False) -> Path:
        """Saves meta, state, counters and wall seconds (the last two checkpoints are kept); with
        `final` (every child stopped), the replay too, after the checkpoint: a run killed while the
        replay is written loses the replay, not the checkpoint. Only the newest checkpoint's replay
        is kept: a replay of an older one is deleted."""
        path = save_checkpoint(self.run_dir, self.counters.total_steps(),
                               {"meta": self.meta, **self.state.state_dict(), "counters": self.counters.state_dict(),
                                "wall_seconds": wall_seconds})
        if self.replay is None:
            return path
        saved = replay_file(path)
        if final and self.cfg.save_replay:
            try:
                seconds = self.replay.save(saved)
                print(f"saved the replay ({len(self.replay):,} items, {saved.stat().st_size / 2**30:.2f} GiB) "
                      f"to {saved} in {seconds:.1f} s", flush=True)
            except OSError as err:  # a full disk: the checkpoint is safe, the replay refills on --resume
                eprint(f"could not save the replay to {saved}: {err.strerror or one_line(err)}")
        if not saved.is_file():  # the replay of an older checkpoint no longer matches the newest one
            saved = None
        prune_replays(self.run_dir, keep=saved)
        return path

    def own(self, work: Callable[[], None] | None = None) -> RunSummary:
        """The owner loop until a stop condition, then shutdown, final checkpoint and summary."""
        summary = RunSummary(run_dir=self.run_dir, env_id=self.cfg.env_id)
        extra = {} if work is None else {"work": work}
        return own_run(self.cfg, self.counters, self.supervisor, self.logger, summary, self.wall_offset,
                       self.checkpoint, **extra)
