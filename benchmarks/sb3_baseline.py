"""What a user would pick instead: stable-baselines3's A2C or DQN with its defaults, timed as our runs are.

One run: `A2C("MlpPolicy", env)` or `DQN("MlpPolicy", env)` on `gymnasium.make(env_id)` (one env, SB3's
defaults; images are flattened by MlpPolicy, as a user of a small-image task would get them), learning
for --total-steps (SB3's DQN anneals epsilon over a fraction of them: 10% of 1M by default), with a
greedy evaluation of --eval-episodes games every --eval-interval-seconds of its own training, written
to <run-dir>/eval.csv in our columns plus `eval_seconds`: the time spent evaluating so far, which
benchmarks.sweep subtracts (our runs evaluate in a process of their own, on another core). The run
stops at --max-seconds, or at the first evaluation that reaches --stop-at.

    python -m benchmarks.sb3_baseline --algo a2c --env-id CartPole-v1 --run-dir /tmp/sb3 --stop-at 475
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from common.logger import EVAL_FIELDS

SB3_FIELDS = [*EVAL_FIELDS, "eval_seconds"]


def evaluate(model, env, episodes: int, seed: int) -> list[float]:
    """Greedy (deterministic) returns of `episodes` games."""
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=("a2c", "dqn"), required=True)
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--eval-interval-seconds", type=float, default=2.0)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--stop-at", type=float, default=float("inf"), help="stop at the first evaluation this good")
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.total_steps < 1 or args.max_seconds <= 0 or args.eval_interval_seconds <= 0 or args.eval_episodes < 1:
        parser.error("--total-steps and --eval-episodes must be at least 1, the seconds positive")
    try:
        import gymnasium as gym
        from stable_baselines3 import A2C, DQN
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError:
        print("benchmarks.sb3_baseline needs stable-baselines3: pip install -e \".[bench]\"", file=sys.stderr)
        return 2
    try:
        env, eval_env = gym.make(args.env_id), gym.make(args.env_id)
    except (gym.error.Error, ImportError) as e:
        print(f"unknown env {args.env_id!r}: {e}", file=sys.stderr)
        return 2
    args.run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(args.run_dir / "eval.csv", "w", newline="")
    log = csv.DictWriter(log_file, fieldnames=SB3_FIELDS)
    log.writeheader()
    model = (A2C if args.algo == "a2c" else DQN)("MlpPolicy", env, seed=args.seed)
    start = time.monotonic()

    class Evaluate(BaseCallback):
        """Every eval_interval_seconds of training: a greedy evaluation, its time kept apart."""

        def __init__(self):
            super().__init__()
            self.eval_seconds = 0.0
            self.next_eval = args.eval_interval_seconds

        def _on_step(self) -> bool:
            training = time.monotonic() - start - self.eval_seconds
            if training >= args.max_seconds:
                return False
            if training < self.next_eval:
                return True
            self.next_eval += args.eval_interval_seconds
            began = time.monotonic()
            returns = evaluate(self.model, eval_env, args.eval_episodes, seed=10_000 + self.num_timesteps)
            self.eval_seconds += time.monotonic() - began
            mean = float(np.mean(returns))
            log.writerow({"wall_seconds": round(training, 3), "env_steps": self.num_timesteps,
                       "env_frames": self.num_timesteps, "eval_return_mean": mean,
                       "eval_return_std": float(np.std(returns)), "episodes": len(returns),
                       "unix_time": time.time(), "eval_seconds": round(self.eval_seconds, 3)})
            log_file.flush()
            print(f"[{training:7.1f}s] steps {self.num_timesteps:,} eval {mean:.2f}", flush=True)
            return mean < args.stop_at

    model.learn(total_timesteps=args.total_steps, callback=Evaluate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
