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
import csv
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ATARI = "ALE/Pong-v5"


def timed_rate(step: Callable[[], int], seconds: float, warmup_seconds: float = 1.0) -> float:
    """Units per second of `step()` (which returns the units it did) after a warm-up."""
    end = time.perf_counter() + warmup_seconds
    while time.perf_counter() < end:
        step()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += step()
    return done / (time.perf_counter() - start)


def raw_env_steps(num_envs: int, seconds: float) -> dict[str, Any]:
    """The actor's envs (full protocol) with random actions: agent steps/s, no network, no replay."""
    from common.envs import make_env

    envs = [make_env(ATARI, e) for e in range(num_envs)]
    for e, env in enumerate(envs):
        env.reset(seed=e)
    rng = np.random.default_rng(0)

    def step() -> int:
        for env in envs:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                env.reset()
        return len(envs)

    return {"raw_env_steps_per_s": round(timed_rate(step, seconds), 1)}


def bare_ale_frames(seconds: float) -> dict[str, Any]:
    """Emulator frames/s of bare ALE (`ale.act`, random actions, no preprocessing)."""
    import gymnasium as gym
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(ATARI, frameskip=1, repeat_action_probability=0.0)
    env.reset(seed=0)
    ale = env.unwrapped.ale
    actions = env.unwrapped._action_set
    rng = np.random.default_rng(0)

    def step() -> int:
        for _ in range(100):
            ale.act(actions[int(rng.integers(len(actions)))])
            if ale.game_over():
                ale.reset_game()
        return 100

    return {"bare_ale_frames_per_s": round(timed_rate(step, seconds), 1)}


def actor_steps(num_envs: int, seconds: float) -> dict[str, Any]:
    """One Ape-X actor's agent steps/s on ALE (the code an actor process runs)."""
    from apex.actor import Actor
    from apex.config import make_config
    from apex.network import PublishedParams, QNetwork
    from apex.train import replay_config
    from common.counters import RunCounters
    from common.replay_transition import TransitionReplay

    cfg = make_config({"env_id": ATARI, "num_workers": 1, "envs_per_actor": num_envs, "replay_capacity": 100_000})
    replay = TransitionReplay.create(replay_config(cfg, (4, 84, 84)))
    try:
        params = PublishedParams(QNetwork((4, 84, 84), 6, cfg.hidden_size, cfg.dueling))
        actor = Actor(0, cfg, replay, params, RunCounters(1))

        def step() -> int:
            actor.step()
            return num_envs

        rate = timed_rate(step, seconds)
        actor.close()
    finally:
        replay.close()
    return {"actor_steps_per_s": round(rate, 1), "actor_frames_per_s": round(4 * rate, 1)}


def learner_updates(device: str, threads: int, seconds: float) -> dict[str, Any]:
    """Learner updates/s at batch 512 on a replay of random Atari frames."""
    import torch

    from apex.config import make_config
    from apex.learner import Learner, RateLimit
    from apex.network import PublishedParams
    from apex.train import ApexWork, replay_config
    from common.counters import RunCounters
    from common.replay_transition import TransitionReplay

    torch.set_num_threads(threads)
    cfg = make_config({"env_id": ATARI, "replay_capacity": 20_000, "learning_starts": 5_000, "device": device})
    replay = TransitionReplay.create(replay_config(cfg, (4, 84, 84)))
    rng = np.random.default_rng(0)
    count = 10_000
    frames = rng.integers(0, 256, size=(count + 3, 84, 84), dtype=np.uint8)
    refs = np.arange(count)[:, None] + np.arange(4)[None, :]
    replay.insert(frames, [], refs[:-1], refs[1:], rng.integers(6, size=count - 1),
                  rng.random(count - 1), np.full(count - 1, 0.97), rng.random(count - 1) + 0.1)
    work = None
    try:
        learner = Learner(cfg, (4, 84, 84), 6, torch.device(device), replay, RunCounters(1))
        work = ApexWork(learner, PublishedParams(learner.net), RateLimit(0.0, cfg.batch_size))
        work()  # starts the prefetch thread

        def step() -> int:
            before = learner.updates
            work()
            if device == "cuda":
                torch.cuda.synchronize()
            return learner.updates - before

        rate = timed_rate(step, seconds, warmup_seconds=2.0)
    finally:
        if work is not None:
            work.close()
        replay.close()
    return {"learner_updates_per_s": round(rate, 2), "device": device, "threads": threads}


def _child(queue, fn, args) -> None:
    import torch

    torch.set_num_threads(1)  # as in an actor process; learner_updates sets its own
    queue.put(fn(*args))


def in_fresh_process(fn: Callable[..., dict], *args) -> dict:
    """Runs fn(*args) in a fresh spawned process with one torch thread unless fn sets its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    print(fn.__name__, args, result, flush=True)
    return result


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
    reached = [r for r in read_csv(run_dir / "eval.csv") if r["eval_return_mean"] >= 475]
    print(f"solve seed {seed}: {seconds:.1f} s, reached: {bool(reached)}", flush=True)
    return (seconds, reached[0]["env_steps"]) if reached else (float("inf"), float("inf"))


def write_results(rows: list[dict[str, Any]], notes: list[str], command: str) -> str:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with open(RESULTS_DIR / "apex.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["measure", "setting", "value", "unit"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"`{command}` on {os.cpu_count()} CPUs", "", "| measure | setting | value | unit |", "|---|---|---|---|"]
    lines += [f"| {r['measure']} | {r['setting']} | {r['value']:,} | {r['unit']} |" for r in rows]
    lines += [""] + notes
    table = "\n".join(lines) + "\n"
    (RESULTS_DIR / "apex.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[4, 8], help="envs per actor to measure")
    parser.add_argument("--seeds", type=int, default=3, help="CartPole seeds for the solve time")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="budget per CartPole run")
    parser.add_argument("--skip-solve", action="store_true", help="throughput only")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    load_at_start = os.getloadavg()[0]

    def add(measure: str, setting: str, value: float, unit: str) -> None:
        rows.append({"measure": measure, "setting": setting, "value": value, "unit": unit})

    bare = in_fresh_process(bare_ale_frames, args.seconds)["bare_ale_frames_per_s"]
    add("bare ALE (ale.act, no wrappers)", ATARI, bare, "frames/s")
    for num_envs in args.envs:
        raw = in_fresh_process(raw_env_steps, num_envs, args.seconds)["raw_env_steps_per_s"]
        actor = in_fresh_process(actor_steps, num_envs, args.seconds)["actor_steps_per_s"]
        add("raw env stepping (DQN protocol, random actions)", f"{ATARI}, {num_envs} envs", raw, "agent steps/s")
        add("Ape-X actor, per actor process", f"{ATARI}, {num_envs} envs", actor, "agent steps/s")
        add("Ape-X actor, per actor process", f"{ATARI}, {num_envs} envs", round(4 * actor, 1), "frames/s")
        add("actor / raw env stepping", f"{ATARI}, {num_envs} envs", round(actor / raw, 3), "ratio")
    for threads in (1, 2):
        result = in_fresh_process(learner_updates, "cpu", threads, args.seconds)
        add("learner updates", f"batch 512, Atari, cpu, {threads} torch threads", result["learner_updates_per_s"],
            "updates/s")
    import torch
    if torch.cuda.is_available():
        result = in_fresh_process(learner_updates, "cuda", 1, args.seconds)
        add("learner updates", f"batch 512, Atari, cuda ({torch.cuda.get_device_name()})",
            result["learner_updates_per_s"], "updates/s")
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
    notes.append(f"1-minute load average at the start {load_at_start:.2f} and at the end {os.getloadavg()[0]:.2f} "
                 f"(other work on the box makes every figure here lower).")
    command = "python -m benchmarks.apex" + " ".join([""] + sys.argv[1:])
    print(write_results(rows, notes, command))


if __name__ == "__main__":
    main()
