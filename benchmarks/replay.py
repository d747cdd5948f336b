"""Prioritized replay throughput: ours (common/replay_transition.py) against cpprb, side by side.

    python -m benchmarks.replay            # 1M capacity, about 3 minutes
    python -m benchmarks.replay --quick    # 100k capacity, well under a minute

Measures, for small items (CartPole: float32[4] obs) and Atari items (4 stacked 84x84 uint8 frames,
synthetic): sample a batch of 512 + update its priorities, batches/s, on a full replay, for ours and
for cpprb's `PrioritizedReplayBuffer` holding the same fields (obs, action, reward, discount, next
obs; cpprb in its memory-saving Atari layout `next_of="obs"`, `stack_compress="obs"`); insert
throughput (items/s, blocks of 64 through `TransitionWriter`) with 1 and 2 spawned writer processes;
shared-memory bytes per Atari transition. Writes benchmarks/results/replay.{csv,md}.
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import time
from typing import Callable

import numpy as np

from common.replay_transition import TransitionReplay, TransitionReplayConfig, TransitionWriter

BATCH_SIZE = 512
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
EPISODE_STEPS = 10_000  # synthetic fill: one episode per insert chunk
N_STEP = 3

try:
    import cpprb
except ImportError:  # optional `bench` extra
    cpprb = None


def rate(step: Callable[[], None], seconds: float) -> float:
    """Calls per second of `step` over about `seconds` (after 5 warm-up calls)."""
    for _ in range(5):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def synthetic_frames(count: int, frame_shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """`count` frames cycling through 97 random ones (random bytes for 7 GB would dominate the fill)."""
    pool = (rng.random((97, *frame_shape)) * 255).astype(dtype)
    return pool[np.arange(count) % 97]


def fill_ours(replay: TransitionReplay, rng: np.random.Generator) -> None:
    """Fill to capacity with episodes of EPISODE_STEPS frames: n-step transitions, reset-padded stacks."""
    cfg = replay.config
    stack = cfg.stack
    while len(replay) < cfg.capacity:
        num = min(EPISODE_STEPS, cfg.capacity - len(replay) + N_STEP)
        t = np.arange(num - N_STEP)
        offsets = np.arange(-stack + 1, 1)
        obs_ref = np.maximum(t[:, None] + offsets, 0)  # [M, S]
        next_ref = np.maximum(t[:, None] + N_STEP + offsets, 0)
        replay.insert(
            synthetic_frames(num, cfg.frame_shape, cfg.frame_dtype, rng), [], obs_ref, next_ref,
            rng.integers(0, 6, len(t)), rng.random(len(t)), np.full(len(t), 0.99 ** N_STEP),
            rng.uniform(0.1, 10.0, len(t)),
        )


def ours_sample_update(replay: TransitionReplay, seconds: float) -> float:
    rng = np.random.default_rng(0)

    def step() -> None:
        batch = replay.sample(BATCH_SIZE, 0.4, rng)
        replay.update_priorities(batch.key, rng.uniform(0.1, 10.0, BATCH_SIZE))

    return rate(step, seconds)


def make_cpprb(capacity: int, atari: bool):
    """cpprb buffer with the same fields; for Atari its frame-saving layout (stack as the last axis)."""
    if atari:
        env_dict = {"obs": {"shape": (84, 84, 4), "dtype": np.uint8}, "act": {"dtype": np.int64},
                    "rew": {"dtype": np.float32}, "discount": {"dtype": np.float32}}
        return cpprb.PrioritizedReplayBuffer(capacity, env_dict, next_of="obs", stack_compress="obs")
    env_dict = {"obs": {"shape": 4, "dtype": np.float32}, "next_obs": {"shape": 4, "dtype": np.float32},
                "act": {"dtype": np.int64}, "rew": {"dtype": np.float32}, "discount": {"dtype": np.float32}}
    return cpprb.PrioritizedReplayBuffer(capacity, env_dict)


def fill_cpprb(buffer, capacity: int, atari: bool, rng: np.random.Generator) -> None:
    chunk = 1000 if atari else 100_000
    for start in range(0, capacity, chunk):
        num = min(chunk, capacity - start)
        common = dict(act=rng.integers(0, 6, num), rew=rng.random(num), discount=np.full(num, 0.97),
                      priorities=rng.uniform(0.1, 10.0, num))
        if atari:
            frames = synthetic_frames(num + 3 + 1, (84, 84), "uint8", rng)
            stacks = np.lib.stride_tricks.sliding_window_view(frames, 4, axis=0)  # [num+1, 84, 84, 4]
            buffer.add(obs=stacks[:num], next_obs=stacks[1:num + 1], **common)
        else:
            obs = rng.random((num + 1, 4)).astype(np.float32)
            buffer.add(obs=obs[:num], next_obs=obs[1:], **common)


def cpprb_sample_update(buffer, seconds: float) -> float:
    rng = np.random.default_rng(0)

    def step() -> None:
        batch = buffer.sample(BATCH_SIZE, beta=0.4)
        buffer.update_priorities(batch["indexes"], rng.uniform(0.1, 10.0, BATCH_SIZE))

    return rate(step, seconds)


def insert_worker(handle, atari: bool, seconds: float, start, counts, slot: int) -> None:
    """One actor: frames and 1-step transitions through a TransitionWriter for `seconds`."""
    replay = TransitionReplay.attach(handle)
    writer = TransitionWriter(replay, block_size=64)
    rng = np.random.default_rng(slot)
    frames = synthetic_frames(64, replay.config.frame_shape, replay.config.frame_dtype, rng)
    start.wait()
    deadline, count, previous = time.perf_counter() + seconds, 0, None
    while time.perf_counter() < deadline:
        step = writer.add_frame(frames[count % 64], episode_start=previous is None or count % 1000 == 0)
        if previous is not None and count % 1000 != 0:
            writer.add(previous, 1, 1.0, 0.99, step, priority=1.0)
        previous, count = step, count + 1
    writer.flush()
    counts[slot] = count
    replay.close()


def insert_rate(replay: TransitionReplay, atari: bool, num_writers: int, seconds: float) -> float:
    """Total transitions/s of `num_writers` spawned writer processes."""
    ctx = mp.get_context("spawn")
    start, counts = ctx.Event(), ctx.Array("q", num_writers)
    procs = [ctx.Process(target=insert_worker, args=(replay.handle, atari, seconds, start, counts, i))
             for i in range(num_writers)]
    for proc in procs:
        proc.start()
    time.sleep(3.0)  # let the children import numpy/numba before the clock starts
    start.set()
    for proc in procs:
        proc.join(seconds + 60)
        if proc.exitcode != 0:
            raise RuntimeError(f"insert writer exited with {proc.exitcode}")
    return sum(counts) / seconds


def measure_ours(config: TransitionReplayConfig, atari: bool, seconds: float) -> dict:
    """Fill ours to capacity, then sample+update and insert rates."""
    replay = TransitionReplay.create(config)
    t0 = time.perf_counter()
    fill_ours(replay, np.random.default_rng(0))
    print(f"  ours filled {len(replay)} in {time.perf_counter() - t0:.1f}s", flush=True)
    row = {"ours_batches_per_s": round(ours_sample_update(replay, seconds), 1),
           "shm_bytes_per_item": round(replay.nbytes / config.capacity)}
    for writers in (1, 2):
        row[f"insert_items_per_s_{writers}w"] = round(insert_rate(replay, atari, writers, seconds))
    replay.close()
    return row


def measure_cpprb(capacity: int, atari: bool, seconds: float) -> dict:
    """Fill cpprb's PrioritizedReplayBuffer to capacity, then its sample+update rate."""
    buffer = make_cpprb(capacity, atari)
    t0 = time.perf_counter()
    fill_cpprb(buffer, capacity, atari, np.random.default_rng(0))
    print(f"  cpprb filled {buffer.get_stored_size()} in {time.perf_counter() - t0:.1f}s", flush=True)
    return {"cpprb_batches_per_s": round(cpprb_sample_update(buffer, seconds), 1)}


def _child(queue, fn, args) -> None:
    queue.put(fn(*args))


def in_fresh_process(fn: Callable[..., dict], *args) -> dict:
    """Run fn(*args) in a new spawned process: neither library inherits the other's heap state
    (glibc's malloc thresholds move with earlier large frees and change page-fault costs)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def run_case(name: str, config: TransitionReplayConfig, atari: bool, seconds: float) -> dict:
    print(f"[{name}] capacity {config.capacity}", flush=True)
    row = {"case": name, "capacity": config.capacity, **in_fresh_process(measure_ours, config, atari, seconds)}
    if cpprb is None:
        print(f"[{name}] cpprb not installed (pip install -e '.[bench]'): comparison skipped", flush=True)
        row.update(cpprb_batches_per_s="n/a", speedup="n/a")
    else:
        row.update(in_fresh_process(measure_cpprb, config.capacity, atari, seconds))
        row["speedup"] = round(row["ours_batches_per_s"] / row["cpprb_batches_per_s"], 2)
    print(row, flush=True)
    return row


def write_results(rows: list, command: str) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    columns = list(rows[0])
    with open(os.path.join(RESULTS_DIR, "replay.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"`{command}` on {os.cpu_count()} CPUs, batch {BATCH_SIZE} (sample + update priorities)", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    lines += ["", "Each library runs in its own fresh process. cpprb allocates two fresh arrays per batch, so its"
              " Atari rate depends on glibc's heap state (it ran about 2x faster after large frees by other code"
              " in one shared process); ours recycles released batch buffers. Shared memory per Atari item"
              " counts frames, frame-ring slack, references and both trees."]
    table = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS_DIR, "replay.md"), "w") as f:
        f.write(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100k capacity and 1 s per measurement")
    parser.add_argument("--atari-capacity", type=int, default=None, help="Atari capacity (default 1M, 100k quick)")
    args = parser.parse_args()
    capacity = 100_000 if args.quick else 1_000_000
    seconds = 1.0 if args.quick else 4.0
    cartpole = TransitionReplayConfig(capacity, frame_shape=(4,), frame_dtype="float32")
    atari = TransitionReplayConfig(args.atari_capacity or capacity, frame_shape=(84, 84), frame_stack=4)
    rows = [run_case("cartpole", cartpole, False, seconds), run_case("atari", atari, True, seconds)]
    command = "python -m benchmarks.replay" + (" --quick" if args.quick else "")
    print(write_results(rows, command))


if __name__ == "__main__":
    main()
