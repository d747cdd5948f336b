"""Soak study: a long run of a replay method with its memory sampled over time and its actors killed.

Runs `python -m <family>.train --env-id ENV --max-seconds S` and every --sample-seconds records the
resident memory of the train process and of each child (VmRSS, and its private part RssAnon and shared
part RssShmem: touching pages of the shared replay raises a process's RSS without any leak), by name (the supervisor puts each
child's name in its environment as ASYNCRL_CHILD), and the bytes in use in /dev/shm (the whole box's:
run it on a quiet box). Every
--kill-seconds it SIGKILLs a random actor: the run must restart it and still finish its budget with
its learning curve. Writes benchmarks/results/soak/<family>.csv (one row per sample and process),
<family>.png (private memory and /dev/shm against minutes, kills marked) and soak.md (per family:
private memory after warm-up and at the end, its growth per minute over the second half, kills, restarts the run logged, the final
evaluation).

    python -m benchmarks.soak --families apex r2d2 --minutes 30 --env-id ALE/Pong-v5
    python -m benchmarks.soak --families apex --minutes 2 --env-id CartPole-v1 --kill-seconds 30
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import RESULTS_DIR, load_average
from common.supervisor import CHILD_NAME_VARIABLE

PAGE_KIB = 1024


def descendants(pid: int) -> list[int]:
    """The live descendants of pid, from /proc/<pid>/task/<tid>/children."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = [int(c) for c in Path(f"/proc/{parent}/task/{tid}/children").read_text().split()]
            except OSError:
                continue
            found += children
            frontier += children
    return found


def process_name(pid: int) -> str:
    """The supervisor's name of a child (actor-0, evaluator, ...), "train" for the rest."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    prefix = CHILD_NAME_VARIABLE.encode() + b"="
    names = [item[len(prefix):].decode() for item in environ if item.startswith(prefix)]
    return names[0] if names else "other"


def memory_mib(pid: int) -> dict[str, float] | None:
    """VmRSS, and its private part RssAnon and its shared-memory part RssShmem, in MiB. A process's RSS
    grows with every page of the shared replay it touches (an actor writing its inserts, the learner
    sampling), which is not a leak; RssAnon is what the process itself holds."""
    fields = {"VmRSS:": "rss_mib", "RssAnon:": "anon_mib", "RssShmem:": "shmem_mib"}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    found = {fields[line.split()[0]]: int(line.split()[1]) / 1024 for line in lines if line.split()[:1] and
             line.split()[0] in fields}
    return found if len(found) == len(fields) else None


def shm_used_mib() -> float:
    stats = os.statvfs("/dev/shm")
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize / 2**20


def soak(family: str, env_id: str, minutes: float, sample_seconds: float, kill_seconds: float, out: Path,
         seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    kills: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"soak-{family}-") as tmp:
        run_dir = Path(tmp) / "run"
        log_path = out / f"{family}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", f"{family}.train", "--env-id", env_id, "--max-seconds",
                                     str(minutes * 60), "--run-dir", str(run_dir), "--save-replay", "false"],
                                    stdout=log, stderr=subprocess.STDOUT)
            start = time.monotonic()
            next_kill = start + kill_seconds
            while proc.poll() is None:
                now = time.monotonic() - start
                pids = [proc.pid] + descendants(proc.pid)
                names = {pid: ("train" if pid == proc.pid else process_name(pid)) for pid in pids}
                shm = shm_used_mib()
                for pid in pids:
                    memory = memory_mib(pid)
                    if memory is not None:
                        rows.append({"minutes": round(now / 60, 3), "process": names[pid], "pid": pid,
                                     **{k: round(v, 1) for k, v in memory.items()}, "shm_mib": round(shm, 1)})
                actors = [pid for pid, name in names.items() if name.startswith("actor")]
                if time.monotonic() >= next_kill and actors and now < minutes * 60 - 10:  # not while it stops
                    victim = rng.choice(actors)
                    os.kill(victim, signal.SIGKILL)
                    kills.append(now / 60)
                    print(f"{family}: killed {names[victim]} (pid {victim}) at {now / 60:.1f} min", flush=True)
                    next_kill += kill_seconds
                time.sleep(sample_seconds)
        log_text = log_path.read_text()
        evals = (run_dir / "eval.csv").read_text().splitlines()[1:] if (run_dir / "eval.csv").exists() else []
    write_rows(out / f"{family}.csv", rows)
    plot(out / f"{family}.png", family, env_id, rows, kills)
    return summarize(family, [row for row in rows if row["minutes"] <= minutes], kills, log_text, evals,
                     proc.returncode)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["minutes", "process", "pid", "rss_mib", "anon_mib", "shmem_mib",
                                               "shm_mib"])
        writer.writeheader()
        writer.writerows(rows)


def totals(rows: list[dict[str, Any]], field: str = "anon_mib") -> list[tuple[float, float, float]]:
    """(minutes, `field` summed over every process, /dev/shm in use) per sample."""
    by_time: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        by_time.setdefault(row["minutes"], []).append(row)
    return [(t, sum(r[field] for r in sample), sample[0]["shm_mib"]) for t, sample in sorted(by_time.items())]


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of value against minutes."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else float("nan")


def summarize(family: str, rows: list[dict[str, Any]], kills: list[float], log_text: str, evals: list[str],
              returncode: int | None) -> dict[str, Any]:
    """The figures of soak.md from the samples within the run's budget (its shutdown left out)."""
    series = totals(rows)
    end = series[-1][0] if series else 0.0
    second_half = [(t, rss) for t, rss, _ in series if t >= end / 2]
    warm = next(((rss, shm) for t, rss, shm in series if t >= end / 4), (float("nan"), float("nan")))
    return {"family": family, "minutes": round(end, 1), "exit": returncode,
            "private_after_warmup_mib": round(warm[0]), "private_at_end_mib": round(series[-1][1]) if series else None,
            "private_growth_mib_per_min_2nd_half": round(slope_per_minute(second_half), 2),
            "shm_after_warmup_mib": round(warm[1]), "shm_at_end_mib": round(series[-1][2]) if series else None,
            "kills": len(kills), "restarts_logged": log_text.count("restarting it"),
            "final_eval": evals[-1].split(",")[3] if evals else None}


def plot(path: Path, family: str, env_id: str, rows: list[dict[str, Any]], kills: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    series = totals(rows)
    ax.plot([t for t, _, _ in series], [rss for _, rss, _ in series], label="private (RssAnon), all processes", lw=2)
    ax.plot([t for t, _, _ in series], [shm for _, _, shm in series], label="/dev/shm in use", lw=2)
    for name in sorted({row["process"] for row in rows}):
        mine = [row for row in rows if row["process"] == name]
        ax.plot([r["minutes"] for r in mine], [r["anon_mib"] for r in mine], lw=0.8, alpha=0.7, label=f"{name} private")
    for t in kills:
        ax.axvline(t, color="red", lw=0.5, alpha=0.5)
    ax.set_xlabel("minutes (red lines: an actor SIGKILLed)")
    ax.set_ylabel("MiB")
    ax.set_title(f"{family} on {env_id}: memory over a soak run")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["apex", "r2d2"], choices=["apex", "r2d2"])
    parser.add_argument("--env-id", default="ALE/Pong-v5")
    parser.add_argument("--minutes", type=float, default=30.0, help="budget of each run")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--kill-seconds", type=float, default=60.0, help="seconds between actor kills")
    parser.add_argument("--seed", type=int, default=0, help="which actors are killed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "soak")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load_at_start = load_average()
    results = [soak(family, args.env_id, args.minutes, args.sample_seconds, args.kill_seconds, args.out, args.seed)
               for family in args.families]
    columns = list(results[0])
    lines = [f"`python -m benchmarks.soak {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"{os.cpu_count()} cores; 1-minute load average {load_at_start:.2f} at the start, "
             f"{load_average():.2f} at the end. Warm-up: the first quarter of the run.", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in results]
    lines += [""] + [f"![{r['family']}]({r['family']}.png)" for r in results]
    (args.out / "soak.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
