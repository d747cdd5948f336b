"""Ape-X on this box: actor throughput on Atari, learner updates/s, and CartPole wall clock to solve.

  actor:   agent steps/s of one actor (its `envs_per_actor` envs, one batched forward pass per step,
           n-step buffers, initial priorities and replay inserts: `apex.actor.Actor.step`) on
           ALE/Pong-v5, against raw stepping measured in the same run: the same envs as the actor
           builds them (the full DQN protocol) with random actions and no agent, and bare ALE
           (`ale.act`, no wrappers) in emulator frames/s. Each is measured in its own fresh process
           with one torch thread, as an actor process runs.
  learner: updates/s at batch 512 on Atari frames (`Learner.update` on prefetched batches, priorities
           written back, parameters published), on CPU with 1 and 2 torch threads, and on CUDA if present.
  solve:   wall seconds from the command's start until `python -m apex.train --num-workers 1
           --stop-return 475` exits with an evaluation mean >= 475 on CartPole-v1, median over seeds.
Writes benchmarks/results/apex.{csv,md}.

    python -m benchmarks.apex                 # everything, 3 seeds
    python -m benchmarks.apex --skip-solve    # throughput only
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import (ATARI, apex_actor_steps, apex_learner_updates, bare_ale_frames, first_reaching,
                                in_fresh_process, load_average, wrapper_env_steps, write_table)


def seconds_to_solve(seed: int, max_seconds: float, tmp: Path) -> tuple[float, float]:
    """(wall seconds of the whole command, env steps at the first evaluation >= 475); inf if unsolved."""
    from common.logger import read_csv

    run_dir = tmp / f"solve-{seed}"
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "apex.train", "--env-id", "CartPole-v1", "--num-workers", "1",
                             "--seed", str(seed), "--stop-return", "475", "--max-seconds", str(max_seconds),
                             "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=max_seconds + 120)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"apex.train failed:\n{result.stderr[-2000:]}")
    reached = first_reaching(read_csv(run_dir / "eval.csv"), 475)
    print(f"solve seed {seed}: {seconds:.1f} s, reached: {reached is not None}", flush=True)
    return (seconds, reached["env_steps"]) if reached is not None else (float("inf"), float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[4, 8], help="envs per actor to measure")
    parser.add_argument("--seeds", type=int, default=3, help="CartPole seeds for the solve time")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="budget per CartPole run")
    parser.add_argument("--skip-solve", action="store_true", help="throughput only")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    load_at_start = load_average()

    def add(measure: str, setting: str, value: float, unit: str) -> None:
        rows.append({"measure": measure, "setting": setting, "value": value, "unit": unit})

    bare = round(in_fresh_process(bare_ale_frames, ATARI, args.seconds).per_second, 1)
    add("bare ALE (ale.act, no wrappers)", ATARI, bare, "frames/s")
    for num_envs in args.envs:
        raw = round(in_fresh_process(wrapper_env_steps, ATARI, num_envs, args.seconds).per_second, 1)
        actor = round(in_fresh_process(apex_actor_steps, ATARI, num_envs, args.seconds).per_second, 1)
        add("raw env stepping (DQN protocol, random actions)", f"{ATARI}, {num_envs} envs", raw, "agent steps/s")
        add("Ape-X actor, per actor process", f"{ATARI}, {num_envs} envs", actor, "agent steps/s")
        add("Ape-X actor, per actor process", f"{ATARI}, {num_envs} envs", round(4 * actor, 1), "frames/s")
        add("actor / raw env stepping", f"{ATARI}, {num_envs} envs", round(actor / raw, 3), "ratio")
    for threads in (1, 2):
        rate = in_fresh_process(apex_learner_updates, ATARI, "cpu", args.seconds, torch_threads=threads)
        add("learner updates", f"batch 512, Atari, cpu, {threads} torch threads", round(rate.per_second, 2),
            "updates/s")
    import torch
    if torch.cuda.is_available():
        rate = in_fresh_process(apex_learner_updates, ATARI, "cuda", args.seconds)
        add("learner updates", f"batch 512, Atari, cuda ({torch.cuda.get_device_name()})",
            round(rate.per_second, 2), "updates/s")
    notes = ["Actor and raw figures come from fresh processes of this same run, one torch thread each. "
             "Frames are emulator frames (4 per agent step)."]
    if not args.skip_solve:
        with tempfile.TemporaryDirectory() as tmp:
            solved = [seconds_to_solve(seed, args.max_seconds, Path(tmp)) for seed in range(args.seeds)]
        seconds = [s for s, _ in solved]
        add("CartPole-v1 solved (eval mean >= 475), Ape-X 1 actor process",
            f"median of {args.seeds} seeds", round(statistics.median(seconds), 1), "wall s from command start")
        add("CartPole-v1 solved: env steps used", f"median of {args.seeds} seeds",
            statistics.median(steps for _, steps in solved), "agent steps")
        notes.append("CartPole wall seconds per seed: " + ", ".join(f"{s:.1f}" for s in seconds)
                     + " (inf: not within the budget).")
    command = "python -m benchmarks.apex" + " ".join([""] + sys.argv[1:])
    print(write_table("apex", ["measure", "setting", "value", "unit"], rows, command, load_at_start, notes))


if __name__ == "__main__":
    main()
