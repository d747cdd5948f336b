"""Gorila's parameter server against K bundles: gradients applied per second, how stale the applied ones
were, and the share dropped as stale.

For each K, one run of the command users run, `python -m apex.train --gorila --num-workers K
--max-seconds S --eval-interval-seconds 0` (CartPole-v1 unless --env-id), then from its metrics.csv the
rate of applied gradients from the first row with an applied gradient to the last row (the bundles'
learning starts excluded), and from its output the server's count of dropped gradients. Every bundle is
a process of its own: past the box's cores the bundles share them, and the rate says so.
Writes benchmarks/results/gorila.{csv,md}.

    python -m benchmarks.gorila                           # K = 1 2 4 8, 30 s each
    python -m benchmarks.gorila --bundles 1 2 --seconds 20

Time and frames to 475 on CartPole-v1 against Ape-X, the same cores, one run each:

    python -m benchmarks.compare --env-ids CartPole-v1 --algos apex gorila --seeds 1 --max-seconds 120 \\
        --out benchmarks/results/compare/gorila_cartpole
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measure import load_average, write_table
from common.logger import read_csv

REPORT = re.compile(r"parameter server: ([\d,]+) gradients applied, ([\d,]+) dropped")
STALENESS = re.compile(r"the applied ones were ([\d.]+) updates stale on average, at most (\d+)")


def applied_per_second(metrics: list[dict[str, float]]) -> float:
    """Applied gradients per second from the first metrics row with one applied to the last row (nan if
    fewer than two such rows)."""
    rows = [row for row in metrics if row["updates"] > 0]
    if len(rows) < 2 or rows[-1]["wall_seconds"] <= rows[0]["wall_seconds"]:
        return float("nan")
    return (rows[-1]["updates"] - rows[0]["updates"]) / (rows[-1]["wall_seconds"] - rows[0]["wall_seconds"])


def server_counts(output: str) -> tuple[int, int]:
    """(applied, dropped) from the parameter server's last line of a run's output."""
    found = REPORT.findall(output)
    if not found:
        raise ValueError("no 'parameter server:' line in the run's output")
    applied, dropped = found[-1]
    return int(applied.replace(",", "")), int(dropped.replace(",", ""))


def server_staleness(output: str) -> tuple[float, int]:
    """(mean, most) server updates between an applied gradient's parameters and the server's, from the
    parameter server's last line of a run's output."""
    found = STALENESS.findall(output)
    if not found:
        raise ValueError("no staleness of the applied gradients in the run's output")
    mean, most = found[-1]
    return float(mean), int(most)


def measure(bundles: int, env_id: str, seconds: float, tmp: Path, extra: list[str]) -> dict[str, Any]:
    run_dir = tmp / f"k{bundles}"
    result = subprocess.run([sys.executable, "-m", "apex.train", "--gorila", "--env-id", env_id, "--num-workers",
                             str(bundles), "--max-seconds", str(seconds), "--eval-interval-seconds", "0",
                             "--log-interval-seconds", "1", "--run-dir", str(run_dir), *extra],
                            capture_output=True, text=True, timeout=seconds + 180)
    if result.returncode != 0:
        raise RuntimeError(f"apex.train --gorila failed:\n{result.stderr[-2000:]}")
    metrics = read_csv(run_dir / "metrics.csv")
    applied, dropped = server_counts(result.stdout)
    mean_staleness, max_staleness = server_staleness(result.stdout)
    row = {"bundles": bundles, "applied_per_second": round(applied_per_second(metrics), 1),
           "env_steps_per_second": round(metrics[-1]["env_steps"] / metrics[-1]["wall_seconds"], 1),
           "applied": applied, "staleness_mean": mean_staleness, "staleness_max": max_staleness,
           "dropped": dropped, "dropped_share": f"{dropped / max(applied + dropped, 1):.1%}"}
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", type=int, nargs="+", default=[1, 2, 4, 8], help="values of K to run")
    parser.add_argument("--seconds", type=float, default=30.0, help="--max-seconds of each run")
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args, extra = parser.parse_known_args()  # anything else goes to apex.train
    load_at_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(k, args.env_id, args.seconds, Path(tmp), extra) for k in args.bundles]
    command = "python -m benchmarks.gorila " + " ".join(sys.argv[1:])
    notes = ["applied_per_second: gradients the parameter server applied per second after the first one; "
             "env_steps_per_second: over the whole run, the bundles' learning starts included; "
             "staleness_mean, staleness_max: server updates between the parameters an applied gradient was "
             "computed on and the server's own when it applied it."]
    print(write_table("gorila", list(rows[0]), rows, command.strip(), load_at_start, notes, args.out))


if __name__ == "__main__":
    main()
