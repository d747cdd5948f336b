"""Evaluate and record a trained run: `python -m <family>.evaluate RUN_DIR_OR_CHECKPOINT --episodes N`.

What the three families' evaluate commands share: find the checkpoint (a file, or the newest in a run
directory), rebuild the run's config from the config.json beside it with the family's make_config,
build the network as training does, load its weights once the checkpoint's meta matches (family,
algorithm, env, network shapes), and play full games greedily with the policy the run's evaluator
uses (`common.evaluation.evaluate`). A family's evaluate.py only names its parts in a `Family`.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from torch import nn

from common.atari_scores import human_normalized_score
from common.checkpoint import check_meta, find_checkpoint, load_checkpoint
from common.cli import run_cli
from common.envs import is_atari, make_env
from common.errors import UsageError
from common.evaluation import PolicyFor, evaluate
from common.recipe import EVALUATOR_SEED_OFFSET, probe_env
from common.video import EpisodeRecorder, check_writable, recordable_env


@dataclass(frozen=True)
class EvalConfig:
    """Play full games greedily with a trained checkpoint and print each return, their mean and std
    (and the human-normalized score on ALE ids); optionally record the first game as an .mp4."""

    checkpoint: str
    """a checkpoint file, or a run directory (its newest ckpt-*.pt); the run's config.json must be beside it"""
    episodes: int | None = None
    """full games to play (default: the run's --eval-episodes)"""
    seed: int | None = None
    """game i is reset with seed + i (default: the run's evaluator seed, its --seed + 999,983)"""
    sticky_actions: bool | None = None
    """ALE only: repeat the previous action with probability 0.25 (default: as the run was trained)"""
    video: str = ""
    """record the first game to this .mp4: one frame per agent step, the screen each action was chosen on"""
    video_fps: float = 30.0
    """frames per second of the video"""

    def __post_init__(self) -> None:
        if self.episodes is not None and self.episodes <= 0:
            raise ValueError(f"--episodes must be positive, got {self.episodes}")
        if self.video_fps <= 0:
            raise ValueError(f"--video-fps must be positive, got {self.video_fps}")
        if self.video and Path(self.video).suffix.lower() != ".mp4":
            raise ValueError(f"--video must name an .mp4 file, got {self.video!r}")


@dataclass(frozen=True)
class Family:
    """How a family builds what evaluation needs: the same functions its train.main uses."""

    name: str
    """the "family" entry of its checkpoints' meta"""
    make_config: Callable[[dict[str, Any]], Any]
    """its config from {field: value}, as from the command line"""
    make_net: Callable[[Any, tuple[int, ...], int], nn.Module]
    """(cfg, obs_shape, num_actions) -> the network whose state dict a checkpoint's "model" holds"""
    meta: Callable[[Any, nn.Module], dict[str, Any]]
    """(cfg, net) -> the meta its checkpoints are saved with"""
    policy_for: Callable[[Any], PolicyFor | None] = lambda cfg: None
    """cfg -> the evaluator's policy_for (None: the network itself is the greedy policy)"""


class EvalResult(NamedTuple):
    checkpoint: Path
    returns: list[float]
    video_frames: int  # 0 without a video


def run_config(family: Family, checkpoint: Path) -> Any:
    """The config of the run that wrote `checkpoint`, from the config.json beside it."""
    config_json = checkpoint.parent / "config.json"
    if not config_json.is_file():
        raise UsageError(f"no config.json beside {checkpoint}: the run's config is needed to rebuild its network")
    try:
        saved = json.loads(config_json.read_text())
        # resume: "" because the saved run may have been resumed; its config.json is the whole config
        return family.make_config({**saved, "resume": ""})
    except (TypeError, ValueError) as err:  # json's errors are ValueErrors; unknown fields TypeErrors
        raise UsageError(f"cannot use {config_json} ({err})") from None


def load_network(family: Family, ecfg: EvalConfig) -> tuple[Any, nn.Module, Path]:
    """(run config, network with the checkpoint's weights, checkpoint path); UsageError for anything unusable."""
    path = find_checkpoint(ecfg.checkpoint)
    # the family first, so another family's checkpoint is named as such rather than by its config's fields
    _, payload = load_checkpoint(path, {"family": family.name})
    cfg = run_config(family, path)
    probe = probe_env(cfg)
    obs_shape, num_actions = probe.obs_shape, probe.num_actions
    net = family.make_net(cfg, obs_shape, num_actions)
    check_meta(path, payload["meta"], family.meta(cfg, net))
    try:
        net.load_state_dict(payload["model"])
    except (KeyError, RuntimeError) as err:
        raise UsageError(f"checkpoint {path} does not fit the run's network ({err})") from None
    return cfg, net.eval(), path


def evaluate_run(family: Family, ecfg: EvalConfig) -> EvalResult:
    """Plays the games and prints each return, mean and std (and HNS on ALE ids)."""
    cfg, net, path = load_network(family, ecfg)
    episodes = ecfg.episodes or cfg.eval_episodes
    seed = cfg.seed + EVALUATOR_SEED_OFFSET if ecfg.seed is None else ecfg.seed
    sticky = cfg.sticky_actions if ecfg.sticky_actions is None else ecfg.sticky_actions
    recorder = None
    if ecfg.video:
        env, use_render = recordable_env(cfg.env_id, seed, sticky, cfg.frame_stack)
        try:
            check_writable(ecfg.video)
        except UsageError:
            env.close()
            raise
        recorder = env = EpisodeRecorder(env, ecfg.video, ecfg.video_fps, use_render)
    else:
        env = make_env(cfg.env_id, seed, training=False, sticky_actions=sticky, frame_stack=cfg.frame_stack)
    policy_for = family.policy_for(cfg)
    policy, env = policy_for(net, env) if policy_for is not None else (net, env)
    print(f"{cfg.algo} on {cfg.env_id}, {path}: greedy full games: {episodes}", flush=True)
    try:
        returns = evaluate(policy, env, episodes, seed)
    finally:
        env.close()
    for episode, value in enumerate(returns, 1):
        print(f"episode {episode}: return {value:.10g}")  # no exponent below 1e10
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(f"mean {mean:.2f}, std {std:.2f} over {len(returns)} episodes")
    if is_atari(cfg.env_id):
        print(f"human-normalized score {human_normalized_score(cfg.env_id, mean):.3f}")
    if recorder is not None:
        print(f"video {ecfg.video}: {recorder.frames} frames at {ecfg.video_fps:g} fps, one per agent step of "
              f"episode 1 (the screen each action was chosen on)", flush=True)
    return EvalResult(path, returns, recorder.frames if recorder is not None else 0)


def cli(family: Family, argv: Sequence[str] | None = None) -> int:
    """The family's `python -m <family>.evaluate`: bad input is one line on stderr and exit status 2;
    Ctrl-C, one line and 130, as training's."""
    try:
        return run_cli(partial(evaluate_run, family), lambda overrides: EvalConfig(**overrides), EvalConfig, argv,
                       prog=f"python -m {family.name}.evaluate")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
