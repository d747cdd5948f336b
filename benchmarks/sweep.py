"""Defaults that carry: candidate settings of each family on several tasks and seeds, beside SB3.

For every seed, task and candidate (interleaved in that order, so that the box's drift spreads over all
candidates), this runs the command a user runs (`python -m a3c.train --algo a3c --env-id ... FLAGS`,
`python -m apex.train ...`, or benchmarks.sb3_baseline for stable-baselines3's A2C and DQN with their
defaults) and stops it at its first greedy evaluation (mean of 10 games) that reaches the task's
threshold, or at --max-seconds of training. The figure is the wall time from launching the process to
that evaluation, start-up included (for SB3, less the time it spent evaluating: our runs evaluate in a
process of their own), and the agent steps by then. Every run gets --eval-interval-seconds and the same
cores (benchmarks.compare's plan: a3c C workers, apex C - 1 actors + learner).

Candidates are tried on the tasks of their kind of observation (common.envs.observation_kind): vector
candidates on vector tasks, small-image ones on small images. `--tasks ENV=THRESHOLD` adds a task;
gymnasium's reward_threshold is used where there is one.

Writes <out>/runs/<env>/<candidate>/seed<k>/{run.json,eval.csv,train.log}, <out>/sweep.md and .csv
(per task and candidate: seeds that reached the threshold, median seconds and steps, min-max), and
<out>/sweep.png (seconds to threshold, each seed a dot, a cross at the budget where it did not get there).

    python -m benchmarks.sweep                                    # 3 tasks x 27 or 19 candidates x 3 seeds
    python -m benchmarks.sweep --tasks CartPole-v1 --candidates a3c sb3-a2c --seeds 1 --out /tmp/sweep
    python -m benchmarks.sweep --report-only
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a3c.config import A3C_VECTOR_DEFAULTS
from benchmarks.compare import env_slug, process_plan, run_to_end, threshold_for, train_command
from benchmarks.measure import cpu_model, first_reaching
from common.envs import observation_kind
from common.errors import UsageError
from common.logger import read_csv
from common.recipe import describe_env

RESULTS = Path("benchmarks/results/sweep")
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Candidate:
    name: str
    method: str
    """one of benchmarks.compare.ALGOS, or sb3-a2c / sb3-dqn"""
    kind: str
    """the kind of observation it is tried on: vector or small_image"""
    flags: tuple[str, ...] = ()

    @property
    def is_sb3(self) -> bool:
        return self.method.startswith("sb3-")


PAPER_Q_FLAGS = ("--eps-anneal-frames", "4000000", "--target-update-frames", "40000", "--optimizer", "rmsprop",
                 "--lr", "7e-4")
"""The async Q methods' Atari values (the paper's schedules, section 8, and the shared RMSProp at 7e-4): their
small-image defaults before the sweep."""

A3C_VECTOR_BEFORE = ("--max-grad-norm", "40", "--weight-init", "torch", "--adam-beta2", "0.999")
"""A3C's vector clip, initial weights and Adam decay before the no-clip defaults: the gamma and optimizer
candidates below were weighed with them, and keep them."""

A3C_VECTOR_NOW = tuple(text for field, value in A3C_VECTOR_DEFAULTS.items()
                       for text in (f"--{field.replace('_', '-')}", str(value)))
"""A3C's vector defaults (a3c/config.py), as flags for the other policy methods."""

# The defaults are the first of each family and kind; the others are the changes the sweep weighs.
CANDIDATES = (
    Candidate("a3c", "a3c", "vector"),
    # The vector defaults before (the clip of 40, torch's initial weights, Adam's beta2 0.999), each alone:
    Candidate("a3c clip 40", "a3c", "vector", ("--max-grad-norm", "40")),
    Candidate("a3c torch-init", "a3c", "vector", ("--weight-init", "torch")),
    Candidate("a3c beta2 0.999", "a3c", "vector", ("--adam-beta2", "0.999")),
    Candidate("a3c before", "a3c", "vector", A3C_VECTOR_BEFORE),
    # The vector defaults before this sweep chose gamma 0.98 with Adam:
    Candidate("a3c gamma 0.95 rmsprop", "a3c", "vector",
              (*A3C_VECTOR_BEFORE, "--gamma", "0.95", "--optimizer", "rmsprop")),
    Candidate("a3c gamma 0.99 rmsprop", "a3c", "vector",
              (*A3C_VECTOR_BEFORE, "--gamma", "0.99", "--optimizer", "rmsprop")),
    # SB3's A2C optimizer: RMSProp with its epsilon 1e-5 at lr 7e-4, where ours is the paper's 0.1.
    Candidate("a3c gamma 0.99 rmsprop-eps 1e-5", "a3c", "vector",
              (*A3C_VECTOR_BEFORE, "--gamma", "0.99", "--optimizer", "rmsprop", "--rmsprop-eps", "1e-5",
               "--lr", "7e-4")),
    Candidate("a3c gamma 0.99 adam", "a3c", "vector", (*A3C_VECTOR_BEFORE, "--gamma", "0.99")),
    Candidate("a3c gamma 0.97 rmsprop", "a3c", "vector",
              (*A3C_VECTOR_BEFORE, "--gamma", "0.97", "--optimizer", "rmsprop")),
    Candidate("a3c gamma 0.98 rmsprop", "a3c", "vector",
              (*A3C_VECTOR_BEFORE, "--gamma", "0.98", "--optimizer", "rmsprop")),
    Candidate("a3c gamma 0.99 adam 5e-4", "a3c", "vector", (*A3C_VECTOR_BEFORE, "--gamma", "0.99", "--lr", "5e-4")),
    # A3C-LSTM, A2C and REINFORCE with their vector defaults of the sweep that weighed these (RMSProp,
    # gamma 0.95, clip 40), with only the clip taken off, and with A3C's (A3C-LSTM's defaults since):
    *(Candidate(name, method, "vector", flags) for method in ("a3c-lstm", "a2c", "reinforce")
      for name, flags in ((method, ()), (f"{method} gamma 0.98 adam", ("--gamma", "0.98", "--optimizer", "adam")),
                          (f"{method} no clip", ("--max-grad-norm", "0")), (f"{method} a3c's", A3C_VECTOR_NOW))),
    Candidate("apex", "apex", "vector"),
    Candidate("sb3-a2c", "sb3-a2c", "vector"),
    Candidate("sb3-dqn", "sb3-dqn", "vector"),
    Candidate("a3c", "a3c", "small_image"),
    # The small-image defaults are the frames' Adam and windows at lr 5e-4; the frames' own step (tuned on
    # Pong, and the small-image default before this sweep) and a larger one:
    Candidate("a3c lr 1e-4", "a3c", "small_image", ("--lr", "1e-4")),
    Candidate("a3c lr 1e-3", "a3c", "small_image", ("--lr", "1e-3")),
    # The other policy methods take A3C's small-image defaults; the step before, for each:
    *(Candidate(name, method, "small_image", flags) for method in ("a3c-lstm", "reinforce")
      for name, flags in ((method, ()), (f"{method} lr 1e-4", ("--lr", "1e-4")))),
    # A2C's are 5-step windows at 1e-3; A3C's 20-step windows at both of A3C's steps, its defaults before:
    Candidate("a2c", "a2c", "small_image"),
    *(Candidate(f"a2c t_max 20 lr {lr}", "a2c", "small_image", ("--t-max", "20", "--lr", lr))
      for lr in ("5e-4", "1e-4")),
    # The async Q methods' small-image defaults are MinAtar's DQN's schedules (epsilon over 100k frames,
    # target every 1k) with Adam at 1e-4; against them, RMSProp, a larger step, and the paper's Atari values:
    *(Candidate(name, method, "small_image", flags) for method in ("q1", "nstep-q")
      for name, flags in ((method, ()), (f"{method} paper", PAPER_Q_FLAGS))),
    Candidate("q1 rmsprop", "q1", "small_image", ("--optimizer", "rmsprop", "--lr", "7e-4")),
    Candidate("q1 lr 5e-4", "q1", "small_image", ("--lr", "5e-4")),
    Candidate("apex", "apex", "small_image"),
    Candidate("sb3-a2c", "sb3-a2c", "small_image"),
    Candidate("sb3-dqn", "sb3-dqn", "small_image"),
)
# MiniCatch's rewards are +1 and -1 a game: a mean of 10 games of 0.8 or more is 9 catches of 10.
TASKS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "common.catch:MiniCatch-v0": 0.8}


def parse_task(text: str) -> tuple[str, float]:
    """"ENV=THRESHOLD", or ENV with its threshold from TASKS or gymnasium's reward_threshold; ValueError
    for a task without one, or whose env the toolkit cannot run (`describe_env`)."""
    env_id, _, threshold = text.partition("=")
    try:  # an unknown env first: it has no threshold either, but that is not what is wrong with it
        describe_env(env_id)
    except UsageError as err:
        raise ValueError(str(err)) from None
    value = float(threshold) if threshold else TASKS.get(env_id, threshold_for(env_id))
    if math.isnan(value):
        raise ValueError(f"{env_id} has no threshold: give one as {env_id}=THRESHOLD")
    return env_id, value


def command_for(candidate: Candidate, env_id: str, seed: int, cores: int, max_seconds: float,
                eval_interval_seconds: float, threshold: float, run_dir: Path) -> list[str]:
    if candidate.is_sb3:
        return [sys.executable, "-m", "benchmarks.sb3_baseline", "--algo", candidate.method[4:], "--env-id", env_id,
                "--seed", str(seed), "--max-seconds", str(max_seconds), "--eval-interval-seconds",
                str(eval_interval_seconds), "--stop-at", str(threshold), "--run-dir", str(run_dir)]
    return [*train_command(candidate.method, env_id, seed, cores, max_seconds, eval_interval_seconds,
                           candidate.flags, None), "--run-dir", str(run_dir)]


def to_threshold(evals: list[dict[str, float]], threshold: float, launched: float) -> tuple[float, float]:
    """(seconds from launch, agent steps) at the first evaluation reaching threshold; inf, inf if none.
    An evaluation's time is its unix_time less the run's time spent evaluating before it (SB3's)."""
    row = first_reaching(evals, threshold)
    if row is None:
        return math.inf, math.inf
    return row["unix_time"] - launched - _evaluating(row), row["env_steps"]


def startup_seconds(evals: list[dict[str, float]], launched: float) -> float:
    """Seconds from launch to the start of the run's own clock, read from its first evaluation (nan if none)."""
    if not evals:
        return math.nan
    return evals[0]["unix_time"] - launched - evals[0]["wall_seconds"] - _evaluating(evals[0])


def _evaluating(row: dict[str, float]) -> float:
    """Seconds the run had spent evaluating by this row: SB3's column; 0 for ours, which evaluate aside."""
    evaluating = row.get("eval_seconds", math.nan)
    return 0.0 if math.isnan(evaluating) else evaluating


def run_one(out: Path, candidate: Candidate, env_id: str, threshold: float, seed: int, cores: int,
            max_seconds: float, eval_interval_seconds: float) -> dict[str, Any]:
    keep = out / "runs" / env_slug(env_id) / candidate.name.replace(" ", "_") / f"seed{seed}"
    keep.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        command = command_for(candidate, env_id, seed, cores, max_seconds, eval_interval_seconds, threshold, run_dir)
        with open(keep / "train.log", "w") as log:
            launched = time.time()
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            while proc.poll() is None and time.time() - launched < max_seconds + 120:
                if first_reaching(read_csv(run_dir / "eval.csv"), threshold) is not None:
                    break
                time.sleep(POLL_SECONDS)
            returncode = run_to_end(proc, timeout=0)  # now: SIGTERM, then kill after a minute
        evals = read_csv(run_dir / "eval.csv")
        if (run_dir / "eval.csv").is_file():
            shutil.copy(run_dir / "eval.csv", keep / "eval.csv")
    seconds, steps = to_threshold(evals, threshold, launched)
    info = {"candidate": candidate.name, "method": candidate.method, "flags": " ".join(candidate.flags),
            "env_id": env_id, "threshold": threshold, "seed": seed, "cores": cores, "max_seconds": max_seconds,
            "processes": "1 process (SB3)" if candidate.is_sb3 else process_plan(candidate.method, cores)[1],
            "returncode": returncode, "seconds_to_threshold": seconds, "steps_to_threshold": steps,
            "best": max((r["eval_return_mean"] for r in evals), default=math.nan),
            "startup_seconds": startup_seconds(evals, launched),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "command": " ".join(["python", *command[1:-2]])}
    (keep / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


# --- the table ---------------------------------------------------------------------------------------

def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One task and candidate over its seeds: how many reached the threshold, median (inf where most did
    not) and min-max seconds and steps, mean best evaluation."""
    seconds = [r["seconds_to_threshold"] for r in runs]
    steps = [r["steps_to_threshold"] for r in runs]
    return {"seeds": len(runs), "reached": sum(math.isfinite(s) for s in seconds),
            "median_seconds": statistics.median(seconds), "min_seconds": min(seconds), "max_seconds": max(seconds),
            "median_steps": statistics.median(steps), "best_mean": statistics.fmean(r["best"] for r in runs),
            "median_startup": _median_of_known([r.get("startup_seconds", math.nan) for r in runs])}


def _median_of_known(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def load(out: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(env id, candidate) -> its runs' run.json, in the order they ran."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    infos = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/*/seed*/run.json"))]
    for info in infos:
        groups.setdefault((info["env_id"], info["candidate"]), []).append(info)
    return groups


def table(groups: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    order: dict[str, int] = {}
    for i, c in enumerate(CANDIDATES):  # a name shared by two kinds ranks by its first place
        order.setdefault(c.name, i)
    rows = [{"env_id": env_id, "candidate": name, "method": runs[0]["method"], "flags": runs[0]["flags"],
             "threshold": runs[0]["threshold"], "budget": runs[0]["max_seconds"], **summarize(runs)}
            for (env_id, name), runs in groups.items()]
    return sorted(rows, key=lambda r: (r["env_id"], order.get(r["candidate"], len(order)), r["candidate"]))


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if math.isfinite(value) else "not reached"


def markdown(rows: list[dict[str, Any]], header: list[str]) -> list[str]:
    lines = [*header]
    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        task = [r for r in rows if r["env_id"] == env_id]
        lines += ["", f"## {env_id} (threshold {task[0]['threshold']:g}, budget {task[0]['budget']:g} s)", "",
                  "| candidate | method | flags | reached | median time to threshold | fastest | slowest "
                  "| median steps | best eval (mean) | median start-up |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in task:
            steps = f"{r['median_steps']:,.0f}" if math.isfinite(r["median_steps"]) else "-"
            lines.append(f"| {r['candidate']} | {r['method']} | {r['flags']} | {r['reached']}/{r['seeds']} "
                         f"| {_seconds(r['median_seconds'])} | {_seconds(r['min_seconds'])} "
                         f"| {_seconds(r['max_seconds'])} | {steps} | {r['best_mean']:.1f} "
                         f"| {r['median_startup']:.1f} s |")
    return lines


def plot(out: Path, groups: dict[tuple[str, str], list[dict[str, Any]]], rows: list[dict[str, Any]]) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(r["env_id"] for r in rows))
    fig, axes = plt.subplots(1, len(env_ids), figsize=(6 * len(env_ids), 4.5), squeeze=False)
    for ax, env_id in zip(axes[0], env_ids):
        task = [r for r in rows if r["env_id"] == env_id]
        for y, r in enumerate(task):
            runs = groups[(env_id, r["candidate"])]
            done = [x["seconds_to_threshold"] for x in runs if math.isfinite(x["seconds_to_threshold"])]
            ax.scatter(done, [y] * len(done), color="C0", s=25)
            missed = len(runs) - len(done)
            if missed:
                ax.scatter([r["budget"]] * missed, [y] * missed, color="C3", marker="x", s=40)
            if math.isfinite(r["median_seconds"]):
                ax.plot([r["median_seconds"]] * 2, [y - 0.3, y + 0.3], color="k")
        ax.set_yticks(range(len(task)), [r["candidate"] for r in task], fontsize=8)
        ax.set_xlabel("seconds from launch to the threshold (dots: seeds, bar: median, x: not reached)")
        ax.set_title(f"{env_id} (threshold {task[0]['threshold']:g})", fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path = out / "sweep.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


CSV_FIELDS = ["env_id", "candidate", "method", "flags", "threshold", "budget", "seeds", "reached", "median_seconds",
              "min_seconds", "max_seconds", "median_steps", "best_mean", "median_startup"]


def report(out: Path) -> list[str]:
    meta = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").is_file() else {}
    groups = load(out)
    rows = table(groups)
    loads = [r[k] for runs in groups.values() for r in runs for k in ("load_before", "load_after")]
    header = ["# Defaults that carry: seconds from launch to the threshold", "",
              "Each run stops at its first greedy evaluation (mean of 10 games) at or above the task's threshold; "
              "seconds count from launching the process (start-up included; SB3's less its evaluations). "
              "Median over seeds, with the fastest and slowest; a seed that did not get there counts as "
              "infinitely slow. Start-up: from launch to the start of the run's own clock (imports, processes, "
              "the model)."]
    if meta:
        header += ["", f"`{meta['command']}` on {meta['cores']} of {meta['machine']}, started {meta['started']}, "
                   f"{meta['total_seconds'] / 60:.1f} min."]
    if loads:
        header += ["", f"1-minute load average {min(loads):.2f}-{max(loads):.2f} around the runs."]
    lines = markdown(rows, header) + ["", "![sweep](sweep.png)"]
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if rows:
        plot(out, groups, rows)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="ENV or ENV=THRESHOLD")
    parser.add_argument("--candidates", nargs="+", help="candidate names (default: all of each task's kind)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="training budget of each run")
    parser.add_argument("--eval-interval-seconds", type=float, default=2.0)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores given to every run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="redraw the table and chart from <out>/runs")
    args = parser.parse_args(argv)
    if args.report_only:
        print("\n".join(report(args.out)))
        return 0
    if args.seeds < 1 or args.cores < 1 or args.max_seconds <= 0 or args.eval_interval_seconds <= 0:
        parser.error("--seeds and --cores must be at least 1, the seconds positive")
    known = {c.name for c in CANDIDATES}
    if args.candidates and not set(args.candidates) <= known:
        parser.error(f"unknown candidates {sorted(set(args.candidates) - known)}; known: {sorted(known)}")
    try:
        tasks = [parse_task(t) for t in args.tasks]
    except ValueError as e:
        parser.error(str(e))
    kinds = {env_id: observation_kind(env_id) for env_id, _ in tasks}  # each builds the env once
    plan = [(env_id, threshold, c) for env_id, threshold in tasks for c in CANDIDATES
            if c.kind == kinds[env_id] and (not args.candidates or c.name in args.candidates)]
    args.out.mkdir(parents=True, exist_ok=True)
    start, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for seed in range(args.seeds):
        for env_id, threshold, candidate in plan:
            info = run_one(args.out, candidate, env_id, threshold, seed, args.cores, args.max_seconds,
                           args.eval_interval_seconds)
            print(f"{env_id} {candidate.name} seed {seed}: {_seconds(info['seconds_to_threshold'])} "
                  f"(best {info['best']:.1f}, load {info['load_before']:.2f}); "
                  f"{(time.monotonic() - start) / 60:.1f} min so far", flush=True)
    meta = {"command": "python -m benchmarks.sweep " + shlex.join(sys.argv[1:] if argv is None else argv),
            "machine": f"{os.cpu_count()} cores ({cpu_model()})", "cores": args.cores, "started": started,
            "total_seconds": round(time.monotonic() - start, 1)}
    (args.out / "sweep.json").write_text(json.dumps(meta, indent=2) + "\n")
    print("\n".join(report(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
