"""Prioritized replay throughput: ours (common/replay/transition.py) against cpprb, side by side.

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
import time

import numpy as np

from benchmarks.measure import (BATCH_SIZE, fill_transition_replay, in_fresh_process, insert_rate, load_average,
                                sample_update_rate, synthetic_frames, timed_rate, write_table)
from common.replay.transition import TransitionReplay, TransitionReplayConfig

try:
    import cpprb
except ImportError:  # optional `bench` extra
    cpprb = None


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

    def step() -> int:
        batch = buffer.sample(BATCH_SIZE, beta=0.4)
        buffer.update_priorities(batch["indexes"], rng.uniform(0.1, 10.0, BATCH_SIZE))
        return 1

    return timed_rate(step, seconds).per_second


def measure_ours(config: TransitionReplayConfig, seconds: float) -> dict:
    """Fill ours to capacity, then sample+update and insert rates."""
    replay = TransitionReplay.create(config)
    t0 = time.perf_counter()
    fill_transition_replay(replay, config.capacity, np.random.default_rng(0))
    print(f"  ours filled {len(replay)} in {time.perf_counter() - t0:.1f}s", flush=True)
    row = {"ours_batches_per_s": round(sample_update_rate(replay, BATCH_SIZE, seconds).per_second, 1),
           "shm_bytes_per_item": round(replay.nbytes / config.capacity)}
    for writers in (1, 2):
        row[f"insert_items_per_s_{writers}w"] = round(insert_rate(replay, writers, seconds))
    replay.close()
    return row


def measure_cpprb(capacity: int, atari: bool, seconds: float) -> dict:
    """Fill cpprb's PrioritizedReplayBuffer to capacity, then its sample+update rate."""
    buffer = make_cpprb(capacity, atari)
    t0 = time.perf_counter()
    fill_cpprb(buffer, capacity, atari, np.random.default_rng(0))
    print(f"  cpprb filled {buffer.get_stored_size()} in {time.perf_counter() - t0:.1f}s", flush=True)
    return {"cpprb_batches_per_s": round(cpprb_sample_update(buffer, seconds), 1)}


def run_case(name: str, config: TransitionReplayConfig, atari: bool, seconds: float) -> dict:
    print(f"[{name}] capacity {config.capacity}", flush=True)
    ours = in_fresh_process(measure_ours, config, seconds, torch_threads=None)
    row = {"case": name, "capacity": config.capacity, **ours}
    if cpprb is None:
        print(f"[{name}] cpprb not installed (pip install -e '.[bench]'): comparison skipped", flush=True)
        row.update(cpprb_batches_per_s="n/a", speedup="n/a")
    else:
        row.update(in_fresh_process(measure_cpprb, config.capacity, atari, seconds, torch_threads=None))
        row["speedup"] = round(row["ours_batches_per_s"] / row["cpprb_batches_per_s"], 2)
    print(row, flush=True)
    return row


NOTES = ["Batch 512 (sample + update priorities). Each library runs in its own fresh process. cpprb allocates two "
         "fresh arrays per batch, so its Atari rate depends on glibc's heap state (it ran about 2x faster after large "
         "frees by other code in one shared process); ours recycles released batch buffers. Shared memory per Atari "
         "item counts frames, frame-ring slack, references and both trees."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100k capacity and 1 s per measurement")
    parser.add_argument("--atari-capacity", type=int, default=None, help="Atari capacity (default 1M, 100k quick)")
    args = parser.parse_args()
    capacity = 100_000 if args.quick else 1_000_000
    seconds = 1.0 if args.quick else 4.0
    cartpole = TransitionReplayConfig(capacity, frame_shape=(4,), frame_dtype="float32")
    atari = TransitionReplayConfig(args.atari_capacity or capacity, frame_shape=(84, 84), frame_stack=4)
    load_at_start = load_average()
    rows = [run_case("cartpole", cartpole, False, seconds), run_case("atari", atari, True, seconds)]
    command = "python -m benchmarks.replay" + (" --quick" if args.quick else "")
    print(write_table("replay", list(rows[0]), rows, command, load_at_start, NOTES))


if __name__ == "__main__":
    main()
