"""Each family's acting speed on a small image game and on an 84x84 Atari game, against the bare env.

For each env id: agent steps/s of the bare env as gymnasium makes it (random actions; for ALE v5 ids
frameskip 4 and RGB observations, for MinAtar its own 10x10xC grids), of our env stack
(`common.envs.make_env`: channels-first bytes, or the DQN protocol on ALE), and of one acting process of
each family with its default envs: the A3C worker (inference and its window update), the Ape-X actor
and the R2D2 actor (batched inference and replay inserts). Each figure comes from a fresh process with
one torch thread, as a worker or actor runs. Writes benchmarks/results/image_envs.{csv,md,png}.

    python -m benchmarks.image_envs                                   # MinAtar Breakout and Pong, 8 s each
    python -m benchmarks.image_envs --envs MinAtar/SpaceInvaders-v1 --seconds 20
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks.measure import (RESULTS_DIR, apex_actor_steps, in_fresh_process, load_average, wrapper_env_steps,
                                write_table)
from benchmarks.workloads import a3c_worker_steps, gym_env_steps, r2d2_actor_steps

COLUMNS = ["env_id", "what", "steps_per_second", "steps_per_cpu_second", "vs_bare_env_cpu"]


def measure(env_id: str, seconds: float) -> list[dict[str, Any]]:
    from apex.config import make_config as apex_config
    from r2d2.config import make_config as r2d2_config

    apex_envs = apex_config({"env_id": env_id}).envs_per_actor
    r2d2_envs = r2d2_config({"env_id": env_id}).envs_per_actor
    warmup = 2.0
    figures = [
        ("bare env (gym.make)", in_fresh_process(gym_env_steps, env_id, seconds, warmup, torch_threads=None)),
        ("our env stack (make_env)", in_fresh_process(wrapper_env_steps, env_id, 1, seconds, warmup, torch_threads=None)),
        ("A3C worker", in_fresh_process(a3c_worker_steps, env_id, seconds, warmup)),
        (f"Ape-X actor, {apex_envs} envs", in_fresh_process(apex_actor_steps, env_id, apex_envs, seconds, warmup)),
        (f"R2D2 actor, {r2d2_envs} envs", in_fresh_process(r2d2_actor_steps, env_id, r2d2_envs, seconds, warmup)),
    ]
    bare = figures[0][1].per_cpu_second
    return [{"env_id": env_id, "what": what, "steps_per_second": round(rate.per_second),
             "steps_per_cpu_second": round(rate.per_cpu_second), "vs_bare_env_cpu": round(rate.per_cpu_second / bare, 4)}
            for what, rate in figures]


def plot(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(row["env_id"] for row in rows))
    fig, axes = plt.subplots(1, len(env_ids), figsize=(6 * len(env_ids), 3.5), squeeze=False)
    for ax, env_id in zip(axes[0], env_ids):
        mine = [row for row in rows if row["env_id"] == env_id]
        ax.barh([row["what"] for row in mine][::-1], [row["steps_per_cpu_second"] for row in mine][::-1])
        ax.set_xscale("log")
        ax.set_xlabel("agent steps per CPU-second (log)")
        ax.set_title(env_id)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "image_envs.png", dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["MinAtar/Breakout-v1", "ALE/Pong-v5"])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    rows = [row for env_id in args.envs for row in measure(env_id, args.seconds)]
    notes = ["Agent steps (on ALE, 4 emulator frames each). Per CPU-second is what the process does with a "
             "core to itself, steadier than wall-clock figures on a shared box; vs_bare_env_cpu divides it by "
             "the bare env's in the same run."]
    print(write_table("image_envs", COLUMNS, rows, "python -m benchmarks.image_envs " + " ".join(argv or sys.argv[1:]),
                      load_at_start, notes))
    plot(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
