"""The Ray backend against the local shared-memory backend, same box, same actors.

  runs:     Ape-X on ALE/Pong-v5 for --seconds with 2 actors x 4 envs, once with `--backend local` and
            once with `--backend ray` on a one-machine `ray.cluster_utils.Cluster` whose head node (the
            learner's: replay shards, parameter store) has no CPUs, so every actor is on the second node.
            Inserted transitions/s (env steps/s: every step makes one n-step transition) and learner
            updates/s over the run, from its metrics.csv, after `learning_starts`.
  crossing: the cost per inserted Atari transition of crossing the object store: blocks of 64
            transitions with 64 new 84x84 frames (an actor env's block) inserted into a `ReplayShard` through
            a `ShardWriter` (Ray), against the same blocks inserted into a local `TransitionReplay`.
Writes benchmarks/results/ray_backend.{csv,md,png}.

    python -m benchmarks.ray_backend                 # both parts
    python -m benchmarks.ray_backend --parts crossing
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import RESULTS_DIR, load_average, write_table

FRAME_BYTES = 84 * 84
BLOCK = 64


def object_store_bytes(address: str) -> int:
    """Bytes of primary copies in the object stores of every node of the cluster at `address`: what someone
    still references (Ray's memory summary). The secondary copies that a node keeps of objects it fetched
    from another are a cache, evicted as it fills, and not counted."""
    from ray._private.internal_api import get_memory_info_reply, get_state_from_address
    return int(get_memory_info_reply(get_state_from_address(address)).store_stats.object_store_bytes_primary_copy)


def driver_references() -> int:
    """Object references this process holds (what a leak in the learner's loop would grow)."""
    import ray
    return len(ray._private.worker.global_worker.core_worker.get_all_reference_counts())


def atari_blocks(count: int, rng: np.random.Generator) -> list[Any]:
    """`count` blocks of BLOCK transitions, each bringing BLOCK new frames and stacking 4."""
    from common.replay.transition import TransitionBlock
    refs = np.clip(np.arange(BLOCK)[:, None] + np.arange(-3, 1)[None, :], 0, BLOCK - 1)
    return [TransitionBlock(rng.integers(0, 255, (BLOCK, 84, 84), dtype=np.uint8), np.empty(0, np.int64),
                            refs, np.minimum(refs + 1, BLOCK - 1), np.zeros(BLOCK, np.int64),
                            np.ones(BLOCK, np.float32), np.full(BLOCK, 0.99, np.float32), np.ones(BLOCK))
            for _ in range(count)]


def crossing(seconds: float) -> list[dict[str, Any]]:
    import ray

    from common.distributed.ray_replay import ReplayShard, ShardWriter
    from common.replay.transition import TransitionReplay, TransitionReplayConfig

    config = TransitionReplayConfig(capacity=100_000, frame_shape=(84, 84), frame_stack=4)
    blocks = atari_blocks(16, np.random.default_rng(0))
    rows = []
    local = TransitionReplay.create(config)
    try:
        rows.append(_insert_rate("local TransitionReplay.insert", local.insert, blocks, seconds))
    finally:
        local.close()
    ray.init(num_cpus=2, object_store_memory=1 << 30, include_dashboard=False)
    try:
        shard = ray.remote(ReplayShard).options(num_cpus=0).remote(TransitionReplay, config)
        for in_flight in (1, 4):
            writer = ShardWriter(shard, config, in_flight)
            rows.append(_insert_rate(f"Ray ShardWriter, {in_flight} in flight", writer.insert, blocks, seconds,
                                     writer.flush))
        ray.get(shard.close.remote())
    finally:
        ray.shutdown()
    base = rows[0]["us_per_transition"]
    for row in rows:
        row["crossing_us_per_transition"] = round(row["us_per_transition"] - base, 1)
    return rows


def _insert_rate(case: str, insert, blocks: list[Any], seconds: float, finish=lambda: None) -> dict[str, Any]:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        insert(blocks[done % len(blocks)])
        done += 1
    finish()
    elapsed = time.perf_counter() - start
    per = elapsed / (done * BLOCK)
    print(f"{case}: {done * BLOCK / elapsed:,.0f} transitions/s", flush=True)
    return {"part": "crossing", "case": case, "transitions_per_second": round(done * BLOCK / elapsed),
            "us_per_transition": round(per * 1e6, 1), "updates_per_second": None, "crossing_us_per_transition": None}


def run_apex(backend: str, seconds: float, tmp: Path, address: str = "") -> dict[str, Any]:
    from common.logger import read_csv

    run_dir = tmp / backend
    flags = ["--backend", backend] + (["--ray-address", address] if address else [])
    cmd = [sys.executable, "-m", "apex.train", "--env-id", "ALE/Pong-v5", "--num-workers", "2", "--envs-per-actor",
           "4", "--learning-starts", "5000", "--batch-size", "64", "--replay-capacity", "100000",
           "--max-seconds", str(seconds), "--eval-interval-seconds", "0", "--log-interval-seconds", "2",
           "--run-dir", str(run_dir), *flags]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 300)
    rows = [r for r in read_csv(run_dir / "metrics.csv") if float(r["updates"]) > 0]
    first, last = rows[0], rows[-1]
    span = float(last["wall_seconds"]) - float(first["wall_seconds"])
    steps = (float(last["env_steps"]) - float(first["env_steps"])) / span
    updates = (float(last["updates"]) - float(first["updates"])) / span
    print(f"{backend}: {steps:,.0f} inserted transitions/s, {updates:,.1f} updates/s over {span:.0f} s", flush=True)
    return {"part": "runs", "case": f"Ape-X on Pong, backend {backend}", "transitions_per_second": round(steps),
            "us_per_transition": round(1e6 / steps, 1), "updates_per_second": round(updates, 1),
            "crossing_us_per_transition": None}


def runs(seconds: float) -> list[dict[str, Any]]:
    import ray
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_apex("local", seconds, Path(tmp))]
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                                "object_store_memory": 1 << 30})
        cluster.add_node(num_cpus=2, object_store_memory=1 << 30)
        try:
            rows.append(run_apex("ray", seconds, Path(tmp), cluster.address))
        finally:
            ray.shutdown()
            cluster.shutdown()
    return rows


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    ax.barh([r["case"] for r in rows], [r["transitions_per_second"] for r in rows], color="tab:blue")
    ax.set_xscale("log")  # runs near 10^3, inserts alone near 10^4-10^6
    ax.set_xlabel("inserted transitions/s")
    ax.invert_yaxis()
    ax.set_title("Ray backend against local shared memory (2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("runs", "crossing"), default=["runs", "crossing"])
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each Ape-X run")
    parser.add_argument("--crossing-seconds", type=float, default=10.0, help="seconds per insert measurement")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    rows: list[dict[str, Any]] = []
    if "runs" in args.parts:
        rows += runs(args.seconds)
    if "crossing" in args.parts:
        rows += crossing(args.crossing_seconds)
    notes = [
        "runs: inserted transitions/s are env steps/s after learning starts (one n-step transition a step); "
        "the actors of the ray run are on the cluster's second node, on this same machine.",
        f"crossing: blocks of {BLOCK} transitions, each with {BLOCK} new 84x84 frames ({BLOCK * FRAME_BYTES:,} bytes); "
        "its last column is the time per transition above the local insert's.",
    ]
    command = "python -m benchmarks.ray_backend " + " ".join(sys.argv[1:] if argv is None else argv)
    print(write_table("ray_backend", list(rows[0]), rows, command, load_at_start, notes))
    chart(rows, RESULTS_DIR / "ray_backend.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
