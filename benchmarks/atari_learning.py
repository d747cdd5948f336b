"""How fast the methods learn one Atari game on this box: frames and minutes to given returns.

Runs `python -m a3c.train --algo A --env-id ENV --num-workers C --max-seconds S` (or apex/r2d2's
command) for each algorithm, one after the other, through benchmarks.compare's runner (CSVs and
output kept under <out>/runs/), then writes <out>/learning.md and .csv (for each algorithm and each
threshold: wall minutes and env frames until the greedy evaluation mean, and until the training
return of the last 20 games, first reach it) and <out>/learning.png (training and evaluation return
against env frames and wall minutes).

    python -m benchmarks.atari_learning --algos a3c --max-seconds 2700 --out benchmarks/results/pong_a3c
    python -m benchmarks.atari_learning --report-only --out benchmarks/results/pong_a3c
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.compare import ALGOS, Preset, eval_frames, load_runs, run_one
from benchmarks.measure import cpu_model, first_reaching

THRESHOLDS = (0.0, 18.0)
FIELDS = ["algo", "processes", "seed", "curve", "threshold", "minutes", "frames", "best", "final",
          "frames_per_second", "load_before", "load_after"]


def reaching(rows: list[dict[str, float]], key: str, threshold: float, env_id: str) -> tuple[float, float]:
    """(wall minutes, env frames) at the first row whose `key` reaches threshold; inf, inf if none."""
    hit = first_reaching([{**r, "eval_return_mean": r[key]} for r in rows if not math.isnan(r[key])], threshold)
    if hit is None:
        return math.inf, math.inf
    return hit["wall_seconds"] / 60.0, eval_frames(hit, env_id)


def table(env_id: str, runs: dict[str, list[dict[str, Any]]], thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    rows = []
    for algo, seeds in runs.items():
        for run in seeds:
            info, metrics, evals = run["info"], run["metrics"], run["evals"]
            last = metrics[-1] if metrics else {}
            fps = last["env_frames"] / last["wall_seconds"] if last.get("wall_seconds") else math.nan
            for curve, rows_, key in (("evaluation", evals, "eval_return_mean"),
                                      ("training (last 20 games)", metrics, "episode_return_mean")):
                values = [r[key] for r in rows_ if not math.isnan(r[key])]
                for threshold in thresholds:
                    minutes, frames = reaching(rows_, key, threshold, env_id)
                    rows.append({"algo": algo, "processes": info["processes"], "seed": info["seed"], "curve": curve,
                                 "threshold": threshold, "minutes": minutes, "frames": frames,
                                 "best": max(values) if values else math.nan,
                                 "final": values[-1] if values else math.nan, "frames_per_second": fps,
                                 "load_before": info["load_before"], "load_after": info["load_after"]})
    return rows


def _reached(row: dict[str, Any]) -> str:
    if not math.isfinite(row["minutes"]):
        return "not reached"
    return f"{row['minutes']:.1f} min / {row['frames'] / 1e6:.1f}M frames"


def markdown(env_id: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    lines = [f"# {env_id}: minutes and frames to a return", ""]
    if meta:
        lines += [f"`{meta['command']}` at {meta['commit']} on {meta['machine']}; started {meta['started']}.", ""]
    lines += ["Evaluation: greedy games (mean of the run's --eval-episodes); training: raw score of the last 20 "
              "games of all workers. Time is the run's own clock; the evaluator shares the cores.", "",
              "| algo | processes | seed | curve | threshold | first reached | best | final | frames/s | load |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['algo']} | {r['processes']} | {r['seed']} | {r['curve']} | {r['threshold']:g} "
                     f"| {_reached(r)} | {r['best']:.1f} | {r['final']:.1f} | {r['frames_per_second']:,.0f} "
                     f"| {r['load_before']:.2f} -> {r['load_after']:.2f} |")
    return lines + ["", f"![{env_id}](learning.png)"]


def plot(out: Path, env_id: str, runs: dict[str, list[dict[str, Any]]], thresholds: tuple[float, ...]) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey=True)
    for row, (name, source, key) in enumerate((("training return (last 20 games)", "metrics", "episode_return_mean"),
                                                ("evaluation return (greedy)", "evals", "eval_return_mean"))):
        for col, x in enumerate(("env_frames", "wall_seconds")):
            ax = axes[row][col]
            for algo, seeds in runs.items():
                for run in seeds:
                    points = [r for r in run[source] if not math.isnan(r[key])]
                    xs = [eval_frames(r, env_id) / 1e6 if x == "env_frames" else r["wall_seconds"] / 60 for r in points]
                    ax.plot(xs, [r[key] for r in points], label=f"{algo} seed {run['info']['seed']}")
            for threshold in thresholds:
                ax.axhline(threshold, color="k", linestyle="--", alpha=0.3)
            ax.set_xlabel("env frames (millions)" if x == "env_frames" else "wall minutes")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    fig.suptitle(f"{env_id}: training and evaluation return")
    fig.tight_layout()
    path = out / "learning.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(out: Path, env_id: str, thresholds: tuple[float, ...]) -> list[str]:
    meta = json.loads((out / "benchmark.json").read_text()) if (out / "benchmark.json").is_file() else {}
    runs = load_runs(out, env_id)
    rows = table(env_id, runs, thresholds)
    lines = markdown(env_id, rows, meta)
    (out / "learning.md").write_text("\n".join(lines) + "\n")
    with open(out / "learning.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if runs:
        plot(out, env_id, runs, thresholds)
    return lines


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="ALE/Pong-v5")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=["a3c"])
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per algorithm")
    parser.add_argument("--max-seconds", type=float, default=2700.0, help="wall-clock budget of each run")
    parser.add_argument("--eval-interval-seconds", type=float, default=60.0)
    parser.add_argument("--eval-episodes", type=int, default=5, help="greedy games per evaluation")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="worker processes of each run")
    parser.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[],
                        help="the rest of the command line goes to every training command (say, --lr 1e-4)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pong_a3c"))
    parser.add_argument("--report-only", action="store_true", help="redraw the table and plot from <out>/runs")
    args = parser.parse_args(argv)
    thresholds = tuple(args.thresholds)
    if not args.report_only:
        if args.cores < 1 or args.seeds < 1 or args.max_seconds <= 0:
            parser.error("--cores and --seeds must be at least 1, --max-seconds positive")
        args.out.mkdir(parents=True, exist_ok=True)
        flags = {args.env_id: {algo: ("--eval-episodes", str(args.eval_episodes), *args.train_flags)
                               for algo in args.algos}}
        preset = Preset((args.env_id,), tuple(args.algos), args.max_seconds, args.seeds, args.eval_interval_seconds,
                        flags)
        started, commit = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), _commit()
        for algo in args.algos:
            for seed in range(args.seeds):
                info = run_one(args.out, algo, args.env_id, seed, args.cores, preset, args.max_seconds, None)
                print(f"{algo} seed {seed}: exit {info['returncode']} after {info['seconds']:.0f} s", flush=True)
        meta = {"command": "python -m benchmarks.atari_learning " + " ".join(sys.argv[1:] if argv is None else argv),
                "commit": commit, "machine": f"{os.cpu_count()} cores ({cpu_model()})", "started": started}
        (args.out / "benchmark.json").write_text(json.dumps(meta, indent=2) + "\n")
    print("\n".join(report(args.out, args.env_id, thresholds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
