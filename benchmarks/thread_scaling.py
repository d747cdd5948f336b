"""How each family scales with processes on this box (Mnih et al. 2016, Table 2 and Figure 3).

--family async: the asynchronous methods (`python -m a3c.train --algo ...`) with 1..N worker processes;
A2C, synchronous in one process, with 1..N envs (--num-envs) in the same columns.
--family replay: Ape-X and R2D2 (`python -m apex.train`, `python -m r2d2.train`) with 1..N actor
processes (--num-workers) and the learner in the train process, run with --samples-per-insert 0 (the
paper's free-running actors and learner; a rate limit would tie the actors' pace to the learner's).
For each method and process count, two measurements through the same command users run:
  throughput:      steady-state env frames/s over --seconds with evaluation off (for the replay family
                   also learner updates/s; its steady state starts once the learner has started), the
                   median of --repeats runs taken in turn over the process counts, so that a slow spell
                   of the box falls on every count alike;
  box ceiling:     with --ceiling, in the same rounds, k unrelated copies of the 1-process command at once:
                   their summed frames/s over one copy alone is the speedup the box itself gives k
                   processes that share nothing, the most any method can reach on it;
  data efficiency: wall clock from the command's start until it logs an evaluation mean at --threshold
                   (eval.csv's unix_time), and the env frames used by then (median over --seeds; the family's
                   own defaults); the CSV also keeps each run's seconds to its exit, after its shutdown.
Writes <out>/scaling.csv, <out>/scaling.md (speedups in the shape of the paper's Table 2) and
<out>/scaling.png; <out> defaults to benchmarks/results/thread_scaling (async) or
benchmarks/results/thread_scaling_replay (replay).

    python -m benchmarks.thread_scaling                      # CartPole-v1, every method, 1..cores workers (a2c: envs)
    python -m benchmarks.thread_scaling --family replay --no-solve       # Ape-X and R2D2, 1..cores actors
    python -m benchmarks.thread_scaling --env-id ALE/Pong-v5 --algos a3c --workers 1 --no-solve
    python -m benchmarks.thread_scaling --workers 1 2 --no-solve --repeats 5   # speedups with less noise
    python -m benchmarks.thread_scaling --workers 1 2 --no-solve --repeats 5 --ceiling  # and the box's own
    python -m benchmarks.thread_scaling --algos a3c a2c --workers 1 2 4 8 16 --no-solve \
        --out benchmarks/results/thread_scaling_a2c       # A3C against workers, A2C against envs
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import ASYNC_ALGOS, first_reaching, train_module
from common.logger import read_csv

FAMILIES = {"async": ASYNC_ALGOS, "replay": ("apex", "r2d2")}
UNITS = {"async": "workers", "replay": "actors"}
REPLAY_THROUGHPUT_FLAGS = ["--samples-per-insert", "0"]
WARMUP_SECONDS = 3.0
ASYNC_FIELDS = ["env_id", "algo", "workers", "frames_per_second", "frames_per_second_per_worker", "threshold",
                "seconds_to_threshold", "frames_to_threshold", "seconds_per_seed", "exit_seconds_per_seed",
                "frames_per_second_runs", "ceiling_frames_per_second", "ceiling_frames_per_second_runs"]
REPLAY_FIELDS = [*ASYNC_FIELDS, "updates_per_second", "load_average"]


def family_of(algo: str) -> str:
    return next(family for family, algos in FAMILIES.items() if algo in algos)


def default_workers(cores: int) -> list[int]:
    """1..cores up to 8, then doubling up to cores (a 64-core box would otherwise take 64 runs per method)."""
    counts = list(range(1, min(cores, 8) + 1))
    while counts[-1] * 2 < cores:
        counts.append(counts[-1] * 2)
    return counts if counts[-1] == cores else [*counts, cores]


def count_args(algo: str, count: int) -> list[str]:
    """A2C scales with the envs its one process steps, every other method with its processes."""
    return ["--num-envs" if algo == "a2c" else "--num-workers", str(count)]


def train_command(algo: str, args: list[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", *train_module(algo), *args, "--run-dir", str(run_dir)]


def run_train(args: list[str], run_dir: Path, timeout: float, algo: str = "a3c") -> tuple[float, float]:
    """Runs `python -m <algo's module> args`; returns (unix time at its start, wall seconds from start to exit)."""
    started, start = time.time(), time.monotonic()
    run_together([train_command(algo, args, run_dir)], timeout)
    return started, time.monotonic() - start


def run_together(commands: list[list[str]], timeout: float) -> None:
    """Runs the commands at once and waits for all of them; raises RuntimeError if one fails."""
    with tempfile.TemporaryFile() as log:  # a pipe nobody reads could fill and stall a run
        procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log) for command in commands]
        try:
            codes = [proc.wait(timeout=timeout) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if any(codes):
            log.seek(0)
            together = f" (one of {len(commands)} at once)" if len(commands) > 1 else ""
            raise RuntimeError(f"{' '.join(commands[0][2:])}{together} failed:\n"
                               f"{log.read().decode(errors='replace')[-2000:]}")


def steady_rates(rows: list[dict[str, float]], learner: bool) -> tuple[float, float]:
    """(env frames/s, updates/s) between the first metrics row WARMUP_SECONDS after the first step (after the
    first update with `learner`) and the last row but one (the last counts the shutdown); raises ValueError
    when fewer than two rows remain."""
    started = [r for r in rows if r["env_steps"] > 0 and (r["updates"] > 0 or not learner)]
    window = [r for r in started if r["wall_seconds"] >= started[0]["wall_seconds"] + WARMUP_SECONDS][:-1] \
        if started else []
    if len(window) < 2:
        raise ValueError("too short a run to measure")
    first, last = window[0], window[-1]
    seconds = last["wall_seconds"] - first["wall_seconds"]
    return (last["env_frames"] - first["env_frames"]) / seconds, (last["updates"] - first["updates"]) / seconds


def throughput(env_id: str, algo: str, workers: int, seconds: float, tmp: Path,
               copies: int = 1) -> tuple[float, float]:
    """Steady-state (env frames/s, learner updates/s) of one run with `workers` workers or actors; with
    `copies` > 1, of that many unrelated runs at once (seeds 0, 1, ...), summed."""
    replay = family_of(algo) == "replay"
    run_dirs = [tmp / f"tp-{algo}-{workers}-{copy}" for copy in range(copies)]
    args = ["--env-id", env_id, *count_args(algo, workers), "--max-seconds", str(seconds),
            "--eval-interval-seconds", "0", "--log-interval-seconds", "1", "--total-steps", str(10**12),
            *(REPLAY_THROUGHPUT_FLAGS if replay else [])]
    run_together([train_command(algo, [*args, "--seed", str(copy)], run_dir)
                  for copy, run_dir in enumerate(run_dirs)], timeout=seconds + 120)
    try:
        rates = [steady_rates(read_csv(run_dir / "metrics.csv"), learner=replay) for run_dir in run_dirs]
    except ValueError:
        raise RuntimeError(f"{algo} with {workers} workers: too short a run to measure, raise --seconds") from None
    return sum(f for f, _ in rates), sum(u for _, u in rates)


def time_to_threshold(env_id: str, algo: str, workers: int, threshold: float, max_seconds: float,
                      seed: int, tmp: Path) -> tuple[float, float, float]:
    """(wall seconds from the command's start until it logged an evaluation mean >= threshold, env frames by
    then, wall seconds from its start to its exit). The first two are inf when the threshold is not reached
    within max_seconds. The exit comes after the reach by the shutdown: joining the workers, the final
    checkpoint and the learning-curve PNG."""
    run_dir = tmp / f"solve-{algo}-{workers}-{seed}"
    started, seconds = run_train(["--env-id", env_id, *count_args(algo, workers), "--seed", str(seed),
                                  "--stop-return", str(threshold), "--max-seconds", str(max_seconds)],
                                 run_dir, timeout=max_seconds + 120, algo=algo)
    return (*reached_at(read_csv(run_dir / "eval.csv"), threshold, started), seconds)


def reached_at(evals: list[dict[str, float]], threshold: float, started: float) -> tuple[float, float]:
    """(seconds from the unix time `started` to the first evaluation mean >= threshold, its env frames);
    both inf when none reaches it."""
    row = first_reaching(evals, threshold)
    return (row["unix_time"] - started, row["env_frames"]) if row is not None else (math.inf, math.inf)


def _table(title: str, rows: list[dict], workers: list[int], cell, unit: str = "workers") -> list[str]:
    lines = ["", title, "", "| method | " + " | ".join(f"{w} {unit}" for w in workers) + " |",
             "|---|" + "---|" * len(workers)]
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = {r["workers"]: r for r in rows if r["algo"] == algo}
        lines.append(f"| {algo} | " + " | ".join(cell(mine[w], mine[workers[0]]) for w in workers) + " |")
    return lines


def _speedup(base_seconds: float, seconds: float) -> str:
    """base / seconds as '1.80x'; '-' where either run did not reach the threshold."""
    return f"{base_seconds / seconds:.2f}x" if math.isfinite(base_seconds) and math.isfinite(seconds) else "-"


def _solve_cell(row: dict, base: dict) -> str:
    exits = f"; exits: {row['exit_seconds_per_seed']}" if row.get("exit_seconds_per_seed") else ""
    return (f"{row['seconds_to_threshold']:.1f} s / {row['frames_to_threshold']:,.0f} "
            f"(seeds: {row['seconds_per_seed']}{exits})")


def _ceiling_cell(row: dict, base: dict) -> str:
    if row is base:
        return "1.00x"
    ceiling = row["ceiling_frames_per_second"]
    return (f"{ceiling / base['frames_per_second']:.2f}x ({ceiling:,.0f}); "
            f"{row['frames_per_second'] / ceiling:.0%} of it")


def write_table(rows: list[dict], workers: list[int], out: Path, env_id: str, load: str = "") -> None:
    replay = family_of(rows[0]["algo"]) == "replay"
    unit = UNITS["replay" if replay else "async"]
    loads = [r["load_average"] for r in rows if r.get("load_average") is not None]
    if loads:  # the loads saved with each run: the line reads the same when a redraw rebuilds it
        load = f"{min(loads):.2f}-{max(loads):.2f} at the start of the runs"
    if not load and (out / "scaling.md").is_file():  # a redraw of a CSV without loads keeps the measured line
        prefix = "1-minute load average "
        line = next((x for x in (out / "scaling.md").read_text().splitlines() if x.startswith(prefix)), "")
        load = line[len(prefix):].split(" (other work")[0]
    lines = [f"# {'Actor' if replay else 'Thread'} scaling on {env_id} ({os.cpu_count()} cores)"]
    if replay:
        lines += ["", f"k actor processes and the learner in the train process, with "
                      f"`{' '.join(REPLAY_THROUGHPUT_FLAGS)}` for throughput (actors and learner run free); "
                      f"the data-efficiency runs use the family's defaults."]
    if load:
        lines += ["", f"1-minute load average {load} (other work on the box lowers every figure)."]
    if any(r["algo"] == "a2c" for r in rows):
        lines += ["", "a2c runs in one process: its columns count the envs it steps together (--num-envs)."]
    repeats = max(len((r.get("frames_per_second_runs") or "").split()) for r in rows)
    if repeats > 1:
        lines += ["", f"Each throughput is the median of {repeats} runs, taken in turn over the worker counts "
                      f"(every run's frames/s: scaling.csv, frames_per_second_runs)."]
    lines += _table(f"Throughput speedup over {workers[0]} {unit if replay else 'worker(s)'} "
                    f"(env frames/s in brackets):", rows, workers,
                    lambda r, base: f"{r['frames_per_second'] / base['frames_per_second']:.2f}x "
                                    f"({r['frames_per_second']:,.0f})", unit)
    if replay:
        lines += _table("Learner updates/s in the same runs:", rows, workers,
                        lambda r, base: f"{r['updates_per_second']:,.1f}", unit)
    if any(r.get("ceiling_frames_per_second") for r in rows):
        lines += _table("The box's ceiling, in the same rounds: k unrelated 1-worker runs at once, their summed "
                        "frames/s over the 1-worker run's (summed frames/s in brackets); then the method's "
                        "speedup as a fraction of it:", rows, workers, _ceiling_cell, unit)
    solved = any(r["seconds_to_threshold"] is not None for r in rows)
    if solved and len(workers) > 1:
        lines += _table(f"Training speedup, as in the paper's Table 2: wall time to the threshold with one "
                        f"{unit[:-1]} over wall time with k {unit} (medians over seeds; the time includes start-up):",
                        rows, workers,
                        lambda r, base: _speedup(base["seconds_to_threshold"], r["seconds_to_threshold"]), unit)
    if solved:
        if any(r.get("exit_seconds_per_seed") for r in rows):
            title = ("Data efficiency: median wall seconds from the command's start until it logs an evaluation "
                     "mean at the threshold / env frames by then (inf: not within the budget); then each seed's "
                     "seconds, and each seed's seconds until the command exited (after its shutdown):")
        else:  # results from before eval.csv had unix_time, timed to the command's exit
            title = ("Data efficiency: median wall seconds from the command's start / env frames until the "
                     "evaluation mean reaches the threshold (inf: not within the budget):")
        lines += _table(title, rows, workers, _solve_cell, unit)
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows: list[dict], workers: list[int], out: Path, env_id: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    replay = family_of(rows[0]["algo"]) == "replay"
    fig, axes = plt.subplots(1, 2 if replay else 1, figsize=(11 if replay else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = sorted((r for r in rows if r["algo"] == algo), key=lambda r: r["workers"])
        base = mine[0]["frames_per_second"] / mine[0]["workers"]
        ax.plot([r["workers"] for r in mine], [r["frames_per_second"] / base for r in mine], marker="o", label=algo)
        if replay:
            axes[0, 1].plot([r["workers"] for r in mine], [r["updates_per_second"] for r in mine], marker="o",
                            label=algo)
    ax.plot(workers, workers, "k--", alpha=0.4, label="linear")
    ax.set_xlabel("actor processes" if replay else "workers")
    ax.set_ylabel("throughput speedup (env frames/s)" if replay else "throughput speedup")
    ax.set_title(f"{'Actor' if replay else 'Thread'} scaling on {env_id}")
    if replay:
        axes[0, 1].set_xlabel("actor processes")
        axes[0, 1].set_ylabel("learner updates/s")
        axes[0, 1].set_title("Learner updates/s in the same runs")
    for ax in axes[0]:
        ax.set_xticks(workers)
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
        for key in ("frames_per_second", "seconds_to_threshold", "frames_to_threshold", "updates_per_second",
                    "load_average", "ceiling_frames_per_second"):
            row[key] = float(row[key]) if row.get(key) else None
    return rows


def measure_throughput(args: argparse.Namespace, algo: str,
                       tmp: Path) -> tuple[dict[int, list[tuple[float, float]]], dict[int, list[float]]]:
    """({workers: [(env frames/s, updates/s) of each run]}, {workers: [box-ceiling frames/s of each run]}):
    --repeats rounds, each over every worker count, and with --ceiling over k unrelated 1-worker runs at once
    for every count k > 1."""
    rates: dict[int, list[tuple[float, float]]] = {workers: [] for workers in args.workers}
    ceiling: dict[int, list[float]] = {workers: [] for workers in args.workers if args.ceiling and workers > 1}
    for _ in range(args.repeats):
        for workers in args.workers:
            rates[workers].append(throughput(args.env_id, algo, workers, args.seconds, tmp))
        for workers in ceiling:
            ceiling[workers].append(throughput(args.env_id, algo, 1, args.seconds, tmp, copies=workers)[0])
    return rates, ceiling


def measure(args: argparse.Namespace, algo: str, workers: int, rates: list[tuple[float, float]], load: float,
            tmp: Path, ceiling: list[float] | None = None) -> dict:
    """One row of the table: the median of the throughput runs `rates` (and of the box-ceiling runs
    `ceiling`) and, unless --no-solve, data efficiency over seeds."""
    fps = statistics.median(f for f, _ in rates)
    updates_per_second = statistics.median(u for _, u in rates)
    row = {"env_id": args.env_id, "algo": algo, "workers": workers, "frames_per_second": fps,
           "frames_per_second_per_worker": fps / workers, "updates_per_second": updates_per_second,
           "frames_per_second_runs": " ".join(f"{f:.0f}" for f, _ in rates),
           "load_average": load, "seconds_to_threshold": None, "frames_to_threshold": None,
           "threshold": args.threshold}
    if ceiling:
        row["ceiling_frames_per_second"] = statistics.median(ceiling)
        row["ceiling_frames_per_second_runs"] = " ".join(f"{f:.0f}" for f in ceiling)
    if not args.no_solve:
        runs = [time_to_threshold(args.env_id, algo, workers, args.threshold, args.max_seconds, seed, tmp)
                for seed in range(args.seeds)]
        row["seconds_to_threshold"] = statistics.median(s for s, _, _ in runs)
        row["frames_to_threshold"] = statistics.median(f for _, f, _ in runs)
        row["seconds_per_seed"] = " ".join(f"{s:.1f}" for s, _, _ in runs)
        row["exit_seconds_per_seed"] = " ".join(f"{e:.1f}" for _, _, e in runs)
    print(f"{algo:9s} {'envs' if algo == 'a2c' else UNITS[family_of(algo)]} {workers:2d}: {fps:10,.0f} frames/s"
          + (f", {updates_per_second:,.1f} updates/s" if family_of(algo) == "replay" else "")
          + ("" if args.no_solve else f", solved in {row['seconds_to_threshold']:.1f} s "
             f"(seeds: {row['seconds_per_seed']})")
          + (f"; {workers} unrelated 1-worker runs at once: {row['ceiling_frames_per_second']:,.0f} frames/s"
             if ceiling else ""), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="async",
                        help="async: the a3c.train methods; replay: Ape-X and R2D2 with 1..N actor processes")
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--algos", nargs="+", choices=[a for algos in FAMILIES.values() for a in algos],
                        help="methods of the family (default: all of them)")
    parser.add_argument("--workers", nargs="+", type=int, default=default_workers(os.cpu_count() or 1),
                        help="worker (async) or actor (replay) process counts (default: 1..cores, doubling past 8)")
    parser.add_argument("--seconds", type=float, help="length of each throughput run (default: 15 for async, "
                                                      "30 for replay, whose learner first waits for --learning-starts)")
    parser.add_argument("--threshold", type=float, default=475.0, help="evaluation mean that counts as solved")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="budget of each data-efficiency run")
    parser.add_argument("--seeds", type=int, default=3, help="data-efficiency runs per method and worker count")
    parser.add_argument("--repeats", type=int, default=1,
                        help="throughput runs per method and worker count; the table shows their median")
    parser.add_argument("--ceiling", action="store_true",
                        help="also run k unrelated 1-worker runs at once for each count k > 1: the speedup the "
                             "box gives processes that share nothing (async family)")
    parser.add_argument("--no-solve", action="store_true", help="measure throughput only")
    parser.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/thread_scaling for "
                                                 "async, benchmarks/results/thread_scaling_replay for replay)")
    parser.add_argument("--report-only", action="store_true", help="redraw table and chart from <out>/scaling.csv")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (30.0 if args.family == "replay" else 15.0)
    args.out = args.out or Path("benchmarks/results/thread_scaling" + ("_replay" if args.family == "replay" else ""))
    if args.report_only:
        rows = read_rows(args.out / "scaling.csv")
        workers = sorted({r["workers"] for r in rows})
        write_table(rows, workers, args.out, rows[0]["env_id"])
        plot(rows, workers, args.out, rows[0]["env_id"])
        return 0
    algos = args.algos or list(FAMILIES[args.family])
    if any(family_of(algo) != args.family for algo in algos):
        parser.error(f"--algos of the {args.family} family: {', '.join(FAMILIES[args.family])}")
    if args.ceiling and (args.family != "async" or 1 not in args.workers):
        parser.error("--ceiling is for the async family, with 1 among --workers")
    if min(args.workers) < 1 or args.seconds <= WARMUP_SECONDS or args.seeds < 1 or args.repeats < 1:
        parser.error("workers must be >= 1, --seconds above the warm-up of 3 s, --seeds and --repeats >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in algos:
            load = os.getloadavg()[0]
            rates, ceiling = measure_throughput(args, algo, Path(tmp))
            rows += [measure(args, algo, workers, rates[workers], load, Path(tmp), ceiling.get(workers))
                     for workers in args.workers]
    with open(args.out / "scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPLAY_FIELDS if args.family == "replay" else ASYNC_FIELDS,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_table(rows, sorted(args.workers), args.out, args.env_id,
                load=f"{load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    plot(rows, sorted(args.workers), args.out, args.env_id)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as err:  # a failed or too-short run, a missing CSV to redraw
        sys.exit(f"thread_scaling: {err}")
