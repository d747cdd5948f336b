"""Is an A3C family network still responding to its input? Checks each checkpoint of a run.

For every checkpoint of the run directories given (or of a fresh network built from a config), on
the frames of one game played with random actions (evaluation env, fixed seed): the fraction of each
ReLU layer's units (conv channels, fc units) that fire on at least one frame, the spread of the value
head across frames, the mean policy entropy, and how often each action is the most likely one. A
torso whose units are dead for every frame gives the same output for every state (value std 0.00).

    python -m benchmarks.torso_health runs/a3c-ALE_Pong-v5-0-*/
    python -m benchmarks.torso_health --fresh --env-id ALE/Pong-v5 --weight-init torch
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from a3c.config import Config
from a3c.network import make_model
from common.envs import make_env

FRAMES = 300


def game_frames(env_id: str, count: int = FRAMES, seed: int = 1) -> torch.Tensor:
    env = make_env(env_id, seed, training=False)
    obs, _ = env.reset(seed=seed)
    frames = []
    for _ in range(count):
        frames.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return torch.as_tensor(np.stack(frames))


@torch.no_grad()
def health(model: torch.nn.Module, frames: torch.Tensor) -> dict[str, float]:
    """Alive fractions of the Atari torso's three ReLU layers, value spread, entropy, greedy actions."""
    torso = model.torso
    h1 = F.relu(torso.conv1(frames.float() / 255.0))
    h2 = F.relu(torso.conv2(h1))
    h3 = F.relu(torso.fc(h2.flatten(1)))
    logits, values, _ = model(frames, model.initial_state())  # an LSTM unrolls over the frames as one game
    log_probs = F.log_softmax(logits, -1)
    greedy = np.bincount(logits.argmax(-1).numpy(), minlength=logits.shape[-1]) / len(frames)
    return {"conv1_alive": float(h1.gt(0).any(0).flatten(1).any(1).float().mean()),
            "conv2_alive": float(h2.gt(0).any(0).flatten(1).any(1).float().mean()),
            "fc_alive": float(h3.gt(0).any(0).float().mean()),
            "value_mean": float(values.mean()), "value_std": float(values.std()),
            "entropy": float(-(log_probs.exp() * log_probs).sum(-1).mean()),
            "greedy_actions": " ".join(f"{p:.2f}" for p in greedy)}


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", type=Path, help="a3c.train run directories")
    parser.add_argument("--fresh", action="store_true", help="a fresh network of the config given by the flags")
    parser.add_argument("--env-id", default="ALE/Pong-v5")
    parser.add_argument("--algo", default="a3c", choices=["a3c", "a3c-lstm"])
    parser.add_argument("--weight-init", default="orthogonal", choices=["torch", "orthogonal"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.fresh and not args.run_dirs:
        parser.error("give run directories or --fresh")
    rows = []
    if args.fresh:
        cfg = Config(env_id=args.env_id, algo=args.algo, weight_init=args.weight_init)
        torch.manual_seed(args.seed)
        frames = game_frames(cfg.env_id)
        model = make_model(cfg, frames.shape[1:], int(make_env(cfg.env_id, 0).action_space.n))
        rows.append({"checkpoint": f"fresh ({args.weight_init} init, seed {args.seed})", **health(model, frames)})
    for run_dir in args.run_dirs:
        cfg = Config(**json.loads((run_dir / "config.json").read_text()))
        frames = game_frames(cfg.env_id)
        for path in checkpoints(run_dir):
            payload = torch.load(path, weights_only=True)
            model = make_model(cfg, frames.shape[1:], payload["model"]["policy.bias"].numel())
            model.load_state_dict(payload["model"])
            rows.append({"checkpoint": str(path), **health(model, frames)})
    for row in rows:
        print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
