"""How the asynchronous methods scale with workers on this box (Mnih et al. 2016, Table 2 and Figure 3).

For each method and worker count, two measurements through the same command users run
(`python -m a3c.train`):
  throughput:      steady-state env frames/s over --seconds with evaluation off;
  data efficiency: wall clock from the command's start until an evaluation mean reaches --threshold,
                   and the env frames used by then (median over --seeds).
Writes <out>/scaling.csv, <out>/scaling.md (speedups in the shape of the paper's Table 2) and
<out>/scaling.png.

    python -m benchmarks.thread_scaling                      # CartPole-v1, all five methods, 1..cores workers
    python -m benchmarks.thread_scaling --env-id ALE/Pong-v5 --algos a3c --workers 1 --no-solve
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.logger import read_csv

ALGOS = ["a3c", "a3c-lstm", "q1", "sarsa1", "nstep-q"]
WARMUP_SECONDS = 3.0


def run_train(args: list[str], run_dir: Path, timeout: float) -> float:
    """Runs `python -m a3c.train args`; returns its wall-clock seconds from start to exit."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "a3c.train", *args, "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"a3c.train {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return time.monotonic() - start


def throughput(env_id: str, algo: str, workers: int, seconds: float, tmp: Path) -> float:
    """Steady-state env frames/s: from the first metrics row after warm-up to the last."""
    run_dir = tmp / f"tp-{algo}-{workers}"
    run_train(["--env-id", env_id, "--algo", algo, "--num-workers", str(workers), "--max-seconds", str(seconds),
               "--eval-interval-seconds", "0", "--log-interval-seconds", "1", "--total-steps", str(10**12)],
              run_dir, timeout=seconds + 120)
    rows = [r for r in read_csv(run_dir / "metrics.csv") if r["env_steps"] > 0]
    rows = [r for r in rows if r["wall_seconds"] >= rows[0]["wall_seconds"] + WARMUP_SECONDS][:-1]
    if len(rows) < 2:
        raise RuntimeError(f"{algo} with {workers} workers: too short a run to measure, raise --seconds")
    first, last = rows[0], rows[-1]
    return (last["env_frames"] - first["env_frames"]) / (last["wall_seconds"] - first["wall_seconds"])


def time_to_threshold(env_id: str, algo: str, workers: int, threshold: float, max_seconds: float,
                      seed: int, tmp: Path) -> tuple[float, float]:
    """(wall seconds from the command's start, env frames) until an evaluation mean >= threshold.

    Both are inf when the threshold is not reached within max_seconds.
    """
    run_dir = tmp / f"solve-{algo}-{workers}-{seed}"
    seconds = run_train(["--env-id", env_id, "--algo", algo, "--num-workers", str(workers), "--seed", str(seed),
                         "--stop-return", str(threshold), "--max-seconds", str(max_seconds)],
                        run_dir, timeout=max_seconds + 120)
    reached = [r for r in read_csv(run_dir / "eval.csv") if r["eval_return_mean"] >= threshold]
    if not reached:
        return float("inf"), float("inf")
    return seconds, reached[0]["env_frames"]


def _table(title: str, rows: list[dict], workers: list[int], cell) -> list[str]:
    lines = ["", title, "", "| method | " + " | ".join(f"{w} workers" for w in workers) + " |",
             "|---|" + "---|" * len(workers)]
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = {r["workers"]: r for r in rows if r["algo"] == algo}
        lines.append(f"| {algo} | " + " | ".join(cell(mine[w], mine[workers[0]]) for w in workers) + " |")
    return lines


def write_table(rows: list[dict], workers: list[int], out: Path, env_id: str, load: str = "") -> None:
    lines = [f"# Thread scaling on {env_id} ({os.cpu_count()} cores)"]
    if load:
        lines += ["", f"1-minute load average {load} (other work on the box lowers every figure)."]
    lines += _table(f"Throughput speedup over {workers[0]} worker(s) (env frames/s in brackets):", rows, workers,
                    lambda r, base: f"{r['frames_per_second'] / base['frames_per_second']:.2f}x "
                                    f"({r['frames_per_second']:,.0f})")
    solved = any(r["seconds_to_threshold"] is not None for r in rows)
    if solved and len(workers) > 1:
        lines += _table("Training speedup, as in the paper's Table 2: wall time to the threshold with one worker "
                        "over wall time with k workers (medians over seeds; the time includes start-up):",
                        rows, workers,
                        lambda r, base: f"{base['seconds_to_threshold'] / r['seconds_to_threshold']:.2f}x")
    if solved:
        lines += _table("Data efficiency: median wall seconds from the command's start / env frames until the "
                        "evaluation mean reaches the threshold (inf: not within the budget):", rows, workers,
                        lambda r, base: f"{r['seconds_to_threshold']:.1f} s / {r['frames_to_threshold']:,.0f} "
                                        f"(seeds: {r['seconds_per_seed']})")
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows: list[dict], workers: list[int], out: Path, env_id: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = sorted((r for r in rows if r["algo"] == algo), key=lambda r: r["workers"])
        base = mine[0]["frames_per_second"] / mine[0]["workers"]
        ax.plot([r["workers"] for r in mine], [r["frames_per_second"] / base for r in mine], marker="o", label=algo)
    ax.plot(workers, workers, "k--", alpha=0.4, label="linear")
    ax.set_xlabel("workers")
    ax.set_ylabel("throughput speedup")
    ax.set_xticks(workers)
    ax.set_title(f"Thread scaling on {env_id}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=100)
    plt.close(fig)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["workers"] = int(row["workers"])
        for key in ("frames_per_second", "seconds_to_threshold", "frames_to_threshold"):
            row[key] = float(row[key]) if row[key] else None
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--algos", nargs="+", default=ALGOS, choices=ALGOS)
    parser.add_argument("--workers", nargs="+", type=int, default=list(range(1, (os.cpu_count() or 1) + 1)))
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each throughput run")
    parser.add_argument("--threshold", type=float, default=475.0, help="evaluation mean that counts as solved")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="budget of each data-efficiency run")
    parser.add_argument("--seeds", type=int, default=3, help="data-efficiency runs per method and worker count")
    parser.add_argument("--no-solve", action="store_true", help="measure throughput only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/thread_scaling"))
    parser.add_argument("--report-only", action="store_true", help="redraw table and chart from <out>/scaling.csv")
    args = parser.parse_args(argv)
    if args.report_only:
        rows = read_rows(args.out / "scaling.csv")
        workers = sorted({r["workers"] for r in rows})
        write_table(rows, workers, args.out, rows[0]["env_id"])
        plot(rows, workers, args.out, rows[0]["env_id"])
        return 0
    if min(args.workers) < 1 or args.seconds <= WARMUP_SECONDS or args.seeds < 1:
        parser.error("workers must be >= 1, --seconds above the warm-up of 3 s, --seeds >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            for workers in args.workers:
                fps = throughput(args.env_id, algo, workers, args.seconds, Path(tmp))
                row = {"env_id": args.env_id, "algo": algo, "workers": workers, "frames_per_second": fps,
                       "frames_per_second_per_worker": fps / workers,
                       "seconds_to_threshold": None, "frames_to_threshold": None, "threshold": args.threshold}
                if not args.no_solve:
                    runs = [time_to_threshold(args.env_id, algo, workers, args.threshold, args.max_seconds,
                                              seed, Path(tmp)) for seed in range(args.seeds)]
                    row["seconds_to_threshold"] = statistics.median(s for s, _ in runs)
                    row["frames_to_threshold"] = statistics.median(f for _, f in runs)
                    row["seconds_per_seed"] = " ".join(f"{s:.1f}" for s, _ in runs)
                print(f"{algo:9s} workers {workers:2d}: {fps:10,.0f} frames/s"
                      + ("" if args.no_solve else f", solved in {row['seconds_to_threshold']:.1f} s "
                         f"(seeds: {row['seconds_per_seed']})"), flush=True)
                rows.append(row)
    fields = ["env_id", "algo", "workers", "frames_per_second", "frames_per_second_per_worker", "threshold",
              "seconds_to_threshold", "frames_to_threshold", "seconds_per_seed"]
    with open(args.out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_table(rows, sorted(args.workers), args.out, args.env_id,
                load=f"{load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    plot(rows, sorted(args.workers), args.out, args.env_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
