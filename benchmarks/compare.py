"""Asynchronous against replay-based methods on one box: the same wall-clock budget and the same cores.

For each env, algorithm and seed, one run after the other, this runs the command users run
(`python -m a3c.train --algo ...`, `python -m apex.train [--serial | --gorila]`, `python -m r2d2.train`) with
--max-seconds, and keeps its metrics.csv, eval.csv, config.json and output under
<out>/runs/<env>/<algo>/seed<k>/. Then, per env: <env>.md and <env>.csv (final and best evaluation
return, wall seconds and env frames until the evaluation mean first reaches the threshold, frames/s,
and the human-normalized score on ALE games) and <env>.png (evaluation return against wall clock and
against env frames: mean over seeds and min-max band); <out>/summary.md has every table.

Cores: every run is given the same --cores C (default: all of this box's):
  a3c, a3c-lstm, q1, sarsa1, nstep-q, reinforce: C worker processes (each acts and learns);
  a2c: one process stepping --num-envs envs (its default) and learning, whatever C is;
  apex, r2d2, ngu, agent57: C - 1 actor processes (at least 1) and the learner in the train process;
  gorila: C - 1 bundle processes (at least 1) and the parameter server in the train process;
  dqn: `apex.train --serial`, actors and learner in turn in one process, whatever C is.
Every run also has an evaluator process playing greedy games every --eval-interval-seconds.
Wall seconds are the run's own clock (as in its CSVs), from the start of training, not process start-up.

Thresholds: gymnasium's reward_threshold on control tasks (475 CartPole-v1, -100 Acrobot-v1), the human
score (HNS 1) on ALE games (14.6 Pong, 30.5 Breakout), the published DQN at 5M frames on MinAtar games
(10 Breakout, 43 Space Invaders).

    python -m benchmarks.compare --preset quick                          # 2 envs x 6 algos x 2 seeds x 25 s
    python -m benchmarks.compare --preset atari --max-seconds 7200 --seeds 3   # on a workstation
    python -m benchmarks.compare --preset minatar                        # 5M frames each, 2 games x 13 algos x 3 seeds
    python -m benchmarks.compare --preset exploration                    # the chain and CartPole, r2d2 ngu agent57
    python -m benchmarks.compare --preset quick --report-only            # redraw from the saved runs
    python -m benchmarks.compare --preset minatar --algos a3c --seeds 2 --first-seed 1   # add seeds 1 and 2
    python -m benchmarks.compare --env-ids CartPole-v1 --algos a3c apex --seeds 1 --max-seconds 30 --out /tmp/c
    python -m benchmarks.compare --env-ids CartPole-v1 --algos a3c a2c --seeds 3 --max-seconds 60 \
        --out benchmarks/results/compare/a3c_a2c                    # asynchronous against synchronous
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from a3c.config import POLICY_ALGOS, Config
from benchmarks.measure import ASYNC_ALGOS, cpu_model, first_reaching, train_module
from common.atari_scores import SCORES, game_name, human_normalized_score
from common.envs import frames_per_step, is_atari
from common.logger import read_csv

ALGOS = (*ASYNC_ALGOS, "apex", "dqn", "r2d2", "gorila", "ngu", "agent57")
RESULTS = Path("benchmarks/results/compare")
CURVE_POINTS = 200


@dataclass(frozen=True)
class Preset:
    env_ids: tuple[str, ...]
    algos: tuple[str, ...] = ALGOS
    max_seconds: float = 20.0
    seeds: int = 2
    eval_interval_seconds: float = 2.0
    flags: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """env id -> algo -> flags added to that algo's command on that env (shown in the table)"""


PRESETS = {
    # 2 envs x 6 algos x 2 seeds x (25 s + start-up and shutdown) fits 15 minutes on 2 cores. Left out:
    # sarsa1 (q1 with the on-policy target; the paper's curves of the two track each other) and a3c-lstm
    # (a3c with memory, of no use on fully observed tasks, at 2/3 of a3c's frames/s); --algos adds them.
    "quick": Preset(("CartPole-v1", "Acrobot-v1"), algos=("a3c", "q1", "nstep-q", "apex", "dqn", "r2d2"),
                    max_seconds=25.0, flags={
        # With the vector-task gamma 0.95 of A2C and REINFORCE a reward 100 steps away is worth 0.006: on
        # Acrobot's -1 per step until the swing-up, A3C at 0.95 stayed at -500 (tried: 40 s, 60k steps).
        # The Q methods' is 0.99; A3C's and A3C-LSTM's own default (0.98, from the defaults sweep) needs no flag.
        "Acrobot-v1": {algo: ("--gamma", "0.99") for algo in POLICY_ALGOS if algo not in ("a3c", "a3c-lstm")},
    }),
    "atari": Preset(("ALE/Pong-v5", "ALE/Breakout-v5"), max_seconds=3600.0, seeds=3, eval_interval_seconds=120.0),
    # The hard-exploration chain (far reward 10, a distractor of 1 next to the start) and a dense task:
    # what the intrinsic reward buys, and what it costs where there is nothing to find.
    "exploration": Preset(("common.chain:Chain-v0", "CartPole-v1"), algos=("r2d2", "ngu", "agent57"),
                          max_seconds=300.0, seeds=2),
    # MinAtar's published curves are at 5M frames (one frame per step; sticky actions 0.1 are MinAtar's
    # own default): every method stops there, the wall-clock budget only bounds a run that is too slow.
    "minatar": Preset(("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1"), max_seconds=4 * 3600.0, seeds=3,
                      eval_interval_seconds=60.0, flags={
        env_id: {algo: ("--total-steps", "5000000") for algo in ALGOS}
        for env_id in ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1")}),
}


def process_plan(algo: str, cores: int) -> tuple[int, str]:
    """(--num-workers, what the run's processes are) for `cores` cores; see the module docstring."""
    if algo == "a2c":
        return 1, f"1 process ({Config.num_envs} envs)"
    if algo in ASYNC_ALGOS:
        return cores, f"{cores} workers"
    if algo == "dqn":
        return 1, "1 process (serial)"
    actors = max(1, cores - 1)
    if algo == "gorila":
        return actors, f"{actors} bundle{'s' if actors > 1 else ''} + parameter server"
    return actors, f"{actors} actor{'s' if actors > 1 else ''} + learner"


def train_command(algo: str, env_id: str, seed: int, cores: int, max_seconds: float,
                  eval_interval_seconds: float, flags: tuple[str, ...], device: str | None) -> list[str]:
    num_workers, _ = process_plan(algo, cores)
    command = [sys.executable, "-m", *train_module(algo), "--env-id", env_id, "--seed", str(seed),
               "--num-workers", str(num_workers), "--max-seconds", str(max_seconds),
               "--eval-interval-seconds", str(eval_interval_seconds), *flags]
    if device and algo not in ASYNC_ALGOS:  # the async workers always update a CPU model
        command += ["--device", device]
    return command


def env_slug(env_id: str) -> str:
    return env_id.replace("/", "_")


# (DQN, AC(lambda)) at 5M frames on MinAtar, as the issue read them off the MinAtar repository's curves
# (mean of 30 seeds' training episodes; not checked here, the curves are images).
MINATAR_PUBLISHED = {"MinAtar/Breakout-v1": (10.0, 17.5), "MinAtar/SpaceInvaders-v1": (43.0, 185.0)}


def threshold_for(env_id: str) -> float:
    """The human score on ALE games, the published DQN figure at 5M frames on MinAtar games (the issue's
    goal for every method), gymnasium's reward_threshold elsewhere (nan when there is none)."""
    if is_atari(env_id):
        return SCORES[game_name(env_id)][1] if game_name(env_id) in SCORES else math.nan
    if env_id in MINATAR_PUBLISHED:
        return MINATAR_PUBLISHED[env_id][0]
    import importlib

    import gymnasium as gym

    try:
        if ":" in env_id:  # "module:Name-v0": gymnasium.make imports the module, gymnasium.spec does not
            module, env_id = env_id.split(":", 1)
            importlib.import_module(module)
        threshold = gym.spec(env_id).reward_threshold
    except (gym.error.Error, ImportError):
        return math.nan
    return math.nan if threshold is None else float(threshold)


def run_to_end(proc: subprocess.Popen, timeout: float) -> int:
    """Waits for a training process; past the timeout, SIGTERM (it stops its children as on Ctrl-C), then kill."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_one(out: Path, algo: str, env_id: str, seed: int, cores: int, preset: Preset, max_seconds: float,
            device: str | None) -> dict[str, Any]:
    """Runs one training command and keeps its CSVs, config and output under out/runs/; returns its run.json."""
    flags = preset.flags.get(env_id, {}).get(algo, ())
    keep = out / "runs" / env_slug(env_id) / algo / f"seed{seed}"
    keep.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:  # checkpoints and TensorBoard events are not kept
        command = train_command(algo, env_id, seed, cores, max_seconds, preset.eval_interval_seconds, flags, device)
        command += ["--run-dir", str(Path(tmp) / "run")]
        with open(keep / "train.log", "w") as log:
            returncode = run_to_end(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT),
                                    timeout=max_seconds + 180)
        for name in ("metrics.csv", "eval.csv", "config.json"):
            if (Path(tmp) / "run" / name).is_file():
                shutil.copy(Path(tmp) / "run" / name, keep / name)
    info = {"algo": algo, "env_id": env_id, "seed": seed, "cores": cores, "processes": process_plan(algo, cores)[1],
            "max_seconds": max_seconds, "flags": " ".join(flags), "returncode": returncode,
            "seconds": round(time.monotonic() - start, 1),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "command": " ".join(["python", *command[1:-2]])}
    (keep / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


# --- what the saved runs say -------------------------------------------------------------------------

def eval_frames(row: dict[str, float], env_id: str) -> float:
    """An eval row's env frames (older eval.csv files have only env_steps)."""
    frames = row.get("env_frames", math.nan)
    return row["env_steps"] * frames_per_step(env_id) if math.isnan(frames) else frames


def time_to_threshold(evals: list[dict[str, float]], threshold: float, env_id: str) -> tuple[float, float]:
    """(wall seconds, env frames) at the first evaluation whose mean reaches threshold; inf, inf if none."""
    row = first_reaching(evals, threshold)
    return (row["wall_seconds"], eval_frames(row, env_id)) if row is not None else (math.inf, math.inf)


def run_stats(metrics: list[dict[str, float]], evals: list[dict[str, float]], threshold: float,
              env_id: str) -> dict[str, float]:
    """One run's figures: final and best evaluation mean, time and frames to threshold, average frames/s."""
    seconds, frames = time_to_threshold(evals, threshold, env_id)
    last = metrics[-1] if metrics else {"env_frames": math.nan, "wall_seconds": math.nan}
    return {"final": evals[-1]["eval_return_mean"] if evals else math.nan,
            "best": max(r["eval_return_mean"] for r in evals) if evals else math.nan,
            "seconds_to_threshold": seconds, "frames_to_threshold": frames,
            "frames_per_second": last["env_frames"] / last["wall_seconds"] if last["wall_seconds"] else math.nan}


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Over seeds: mean and std of the final mean, mean of the best, medians to threshold (inf where a
    seed did not reach it), how many seeds reached it, mean frames/s."""
    finals = [s["final"] for s in per_seed]
    return {"seeds": len(per_seed), "final_mean": float(np.mean(finals)), "final_std": float(np.std(finals)),
            "best_mean": float(np.mean([s["best"] for s in per_seed])),
            "seconds_to_threshold": statistics.median(s["seconds_to_threshold"] for s in per_seed),
            "frames_to_threshold": statistics.median(s["frames_to_threshold"] for s in per_seed),
            "seeds_reached": sum(math.isfinite(s["seconds_to_threshold"]) for s in per_seed),
            "seconds_per_seed": " ".join(f"{s['seconds_to_threshold']:.1f}" for s in per_seed),
            "frames_per_second": float(np.mean([s["frames_per_second"] for s in per_seed]))}


def curve_band(curves: list[tuple[list[float], list[float]]], points: int = CURVE_POINTS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, min, max) over seeds' (x, y) curves, each interpolated linearly on a shared grid and
    absent outside its own x range, so the mean at any x is over the seeds that have reached it."""
    curves = [(xs, ys) for xs, ys in curves if xs]
    grid = np.linspace(min(xs[0] for xs, _ in curves), max(xs[-1] for xs, _ in curves), points)
    stacked = np.full((len(curves), points), np.nan)
    for i, (xs, ys) in enumerate(curves):
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        stacked[i, inside] = np.interp(grid[inside], xs, ys)
    with warnings.catch_warnings():  # a gap that no seed covers stays nan: a gap in the line
        warnings.simplefilter("ignore", RuntimeWarning)
        return grid, np.nanmean(stacked, axis=0), np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0)


def load_runs(out: Path, env_id: str) -> dict[str, list[dict[str, Any]]]:
    """algo -> its seeds' {info, metrics, evals} for env_id, in ALGOS order."""
    runs: dict[str, list[dict[str, Any]]] = {}
    base = out / "runs" / env_slug(env_id)
    for algo in ALGOS:
        for seed_dir in sorted((base / algo).glob("seed*")):
            if (seed_dir / "run.json").is_file():
                runs.setdefault(algo, []).append({"info": json.loads((seed_dir / "run.json").read_text()),
                                                  "metrics": read_csv(seed_dir / "metrics.csv"),
                                                  "evals": read_csv(seed_dir / "eval.csv")})
    return runs


def table_rows(env_id: str, runs: dict[str, list[dict[str, Any]]], threshold: float) -> list[dict[str, Any]]:
    rows = []
    for algo, seeds in runs.items():
        done = [s for s in seeds if s["evals"]]
        row = {"env_id": env_id, "algo": algo, "processes": seeds[0]["info"]["processes"],
               "flags": seeds[0]["info"]["flags"], "threshold": threshold,
               "failed_runs": sum(s["info"]["returncode"] != 0 for s in seeds),
               "runs_without_evaluation": len(seeds) - len(done)}
        if done:
            row.update(aggregate([run_stats(s["metrics"], s["evals"], threshold, env_id) for s in done]))
            if is_atari(env_id):
                row["hns_final"] = human_normalized_score(env_id, row["final_mean"])
                row["hns_best"] = human_normalized_score(env_id, row["best_mean"])
        rows.append(row)
    return rows


def _reach(r: dict[str, Any]) -> str:
    median = f"{r['seconds_to_threshold']:.1f} s / {r['frames_to_threshold']:,.0f}" \
        if math.isfinite(r["seconds_to_threshold"]) else "not reached"
    return f"{median} (seconds per seed: {r['seconds_per_seed']})"


def markdown(env_id: str, rows: list[dict[str, Any]], header: list[str]) -> list[str]:
    atari = is_atari(env_id)
    lines = [f"## {env_id}", "", *header, "",
             "| algo | processes | extra flags | final eval | best eval | median time / frames to threshold "
             "| frames/s (run average) |" + (" HNS final | HNS best |" if atari else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if atari else "")]
    for r in rows:
        if "final_mean" not in r:
            lines.append(f"| {r['algo']} | {r['processes']} | {r['flags']} | no evaluation "
                         f"({r['failed_runs']} failed runs) | | | |" + (" | |" if atari else ""))
            continue
        reach = _reach(r)
        lines.append(f"| {r['algo']} | {r['processes']} | {r['flags']} | {r['final_mean']:.1f} ± {r['final_std']:.1f} "
                     f"| {r['best_mean']:.1f} | {reach} | {r['frames_per_second']:,.0f} |"
                     + (f" {r['hns_final']:.3f} | {r['hns_best']:.3f} |" if atari else ""))
    return lines


def plot_curves(out: Path, env_id: str, runs: dict[str, list[dict[str, Any]]], threshold: float) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, x in zip(axes, ("wall_seconds", "env_frames")):
        for algo, seeds in runs.items():
            curves = [([r["wall_seconds"] if x == "wall_seconds" else eval_frames(r, env_id) for r in s["evals"]],
                       [r["eval_return_mean"] for r in s["evals"]]) for s in seeds]
            if not any(xs for xs, _ in curves):
                continue
            grid, mean, low, high = curve_band(curves)
            (line,) = ax.plot(grid, mean, label=f"{algo} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.15)
        if math.isfinite(threshold):
            ax.axhline(threshold, color="k", linestyle="--", alpha=0.4, label=f"threshold {threshold:g}")
        ax.set_xlabel("wall seconds" if x == "wall_seconds" else "env frames")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("evaluation return (mean over seeds, min-max band)")
    axes[1].legend(loc="best", fontsize=8)
    fig.suptitle(f"{env_id}: evaluation return against wall clock and env frames")
    fig.tight_layout()
    path = out / f"{env_slug(env_id)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


CSV_FIELDS = ["env_id", "algo", "processes", "flags", "seeds", "final_mean", "final_std", "best_mean", "threshold",
              "seconds_to_threshold", "frames_to_threshold", "seeds_reached", "seconds_per_seed", "frames_per_second",
              "hns_final", "hns_best", "failed_runs", "runs_without_evaluation"]


def report(out: Path, env_ids: list[str]) -> list[str]:
    """Writes <env>.md, <env>.csv and <env>.png for each env from out/runs, and out/summary.md; returns its lines."""
    meta = json.loads((out / "benchmark.json").read_text()) if (out / "benchmark.json").is_file() else {}
    lines = ["# Async against replay: the same budget and cores", "",
             "Each run gets the same C cores: the a3c family C worker processes (a2c one process stepping its "
             "envs), apex and r2d2 C - 1 actor processes and the learner in the train process, gorila C - 1 "
             "bundles and the parameter server in the train process, dqn one process (serial, it cannot use more). "
             "Every run also has an evaluator process (greedy games, mean of 10). Curves: evaluation mean over "
             "seeds, band from the lowest to the highest seed.", ""]
    if meta:
        lines += [f"`{meta['command']}` on {meta['cores']} of {meta['machine']}; started {meta['started']}, "
                  f"total {meta['total_seconds'] / 60:.1f} min for {meta['runs']} runs.", ""]
    for env_id in env_ids:
        runs = load_runs(out, env_id)
        if not runs:
            continue
        threshold = threshold_for(env_id)
        infos = [s["info"] for seeds in runs.values() for s in seeds]
        loads = [i[k] for i in infos for k in ("load_before", "load_after")]
        budgets = " or ".join(f"{b:g}" for b in sorted({i["max_seconds"] for i in infos}))
        header = [f"Budget {budgets} s of wall clock per run on {infos[0]['cores']} cores; "
                  f"threshold {threshold:g}{_published(env_id)} (medians over seeds; time is the run's own clock). "
                  f"1-minute load average {min(loads):.2f}-{max(loads):.2f} around the runs "
                  f"(other work on the box lowers every figure)."]
        rows = table_rows(env_id, runs, threshold)
        env_lines = markdown(env_id, rows, header) + ["", f"![{env_id}]({env_slug(env_id)}.png)"]
        (out / f"{env_slug(env_id)}.md").write_text("\n".join(env_lines) + "\n")
        with open(out / f"{env_slug(env_id)}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        plot_curves(out, env_id, runs, threshold)
        lines += env_lines + [""]
    (out / "summary.md").write_text("\n".join(lines))
    return lines


def _published(env_id: str) -> str:
    if env_id not in MINATAR_PUBLISHED:
        return ""
    return f", the published DQN at 5M frames (AC(lambda): {MINATAR_PUBLISHED[env_id][1]:g})"


def saved_env_ids(out: Path) -> list[str]:
    """The env ids of the runs saved under out/runs, in the order the last comparison ran them."""
    meta = json.loads((out / "benchmark.json").read_text()) if (out / "benchmark.json").is_file() else {}
    infos = (json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/*/seed*/run.json")))
    saved = dict.fromkeys(info["env_id"] for info in infos)
    return [e for e in meta.get("env_ids", []) if e in saved] + [e for e in saved if e not in meta.get("env_ids", [])]


def stale_runs(algo_dir: Path, seeds: range, keep_other_seeds: bool) -> list[Path]:
    """The saved runs a new command replaces: every seed of the algorithm (so that no run of an older command
    is averaged with the new ones), or with --first-seed only the seeds it runs again."""
    saved = sorted(algo_dir.glob("seed*"))
    return [d for d in saved if not keep_other_seeds or d.name in {f"seed{k}" for k in seeds}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--env-ids", nargs="+", help="instead of the preset's envs")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, help="instead of the preset's algorithms")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per algorithm (default: the preset's)")
    parser.add_argument("--first-seed", type=int,
                        help="seeds K..K+N-1 instead, keeping the saved runs of the other seeds (adds seeds to a "
                             "comparison one command at a time)")
    parser.add_argument("--max-seconds", type=float, help="wall-clock budget of each run (default: the preset's)")
    parser.add_argument("--eval-interval-seconds", type=float, help="between evaluations (default: the preset's)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores given to every run")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="apex, dqn, r2d2 learner device")
    parser.add_argument("--out", type=Path, help=f"results folder (default {RESULTS}/<preset>)")
    parser.add_argument("--report-only", action="store_true", help="redraw tables and plots from <out>/runs")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    if args.eval_interval_seconds:
        preset = replace(preset, eval_interval_seconds=args.eval_interval_seconds)
    env_ids = args.env_ids or list(preset.env_ids)
    out = args.out or RESULTS / args.preset
    if args.report_only:
        print("\n".join(report(out, args.env_ids or saved_env_ids(out))))
        return 0
    algos, seeds = args.algos or list(preset.algos), args.seeds or preset.seeds
    max_seconds = args.max_seconds or preset.max_seconds
    adds_seeds = args.first_seed is not None
    first_seed = args.first_seed if adds_seeds else 0
    if args.cores < 1 or seeds < 1 or max_seconds <= 0 or first_seed < 0:
        parser.error("--cores and --seeds must be at least 1, --max-seconds positive, --first-seed not negative")
    seed_list = range(first_seed, first_seed + seeds)
    for env_id in env_ids:  # runs of other algorithms stay: a comparison can be extended one algorithm at a time
        for algo in algos:
            for stale in stale_runs(out / "runs" / env_slug(env_id) / algo, seed_list, adds_seeds):
                shutil.rmtree(stale)
    out.mkdir(parents=True, exist_ok=True)
    start, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for env_id in env_ids:
        for algo in algos:
            for seed in seed_list:
                info = run_one(out, algo, env_id, seed, args.cores, preset, max_seconds, args.device)
                print(f"{env_id} {algo} seed {seed}: exit {info['returncode']} after {info['seconds']:.0f} s "
                      f"(load {info['load_before']:.2f} -> {info['load_after']:.2f}); "
                      f"{(time.monotonic() - start) / 60:.1f} min so far", flush=True)
    meta = {"command": "python -m benchmarks.compare " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": f"{os.cpu_count()} cores ({cpu_model()})", "cores": args.cores, "started": started,
            "env_ids": env_ids,
            "total_seconds": round(time.monotonic() - start, 1), "runs": len(env_ids) * len(algos) * seeds}
    (out / "benchmark.json").write_text(json.dumps(meta, indent=2) + "\n")
    print("\n".join(report(out, env_ids)))
    print(f"total {meta['total_seconds'] / 60:.1f} min for {meta['runs']} runs; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
