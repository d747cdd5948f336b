"""Seconds to save and restore a full Atari-shaped transition replay (`common/replay/persist.py`).

    python -m benchmarks.replay_persistence                      # 100k transitions, about 0.75 GB
    python -m benchmarks.replay_persistence --capacity 1000000   # the Atari default, about 7.5 GB

Fills a TransitionReplay of 4-stacked 84x84 uint8 frames to capacity (synthetic episodes, random
priorities), saves it with `replay.save` as a clean stop does, restores it into a new replay with
`replay.load` as `--resume` does, and checks that both sample the same batch. Reports seconds, GB/s
and how far the process's resident memory rose during each, sampled every 5 ms (the replays' own
shared memory is resident before either starts, so the rise is what streaming costs: a chunk, not a copy). The file goes
to a temporary directory (--dir) and is deleted. Writes benchmarks/results/replay_persistence.{csv,md}.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import fill_transition_replay, load_average, write_table
from common.replay.transition import TransitionReplay, TransitionReplayConfig

COLUMNS = ["transitions", "file_gib", "save_seconds", "save_gb_per_s", "save_peak_rss_growth_mib",
           "restore_seconds", "restore_gb_per_s", "restore_peak_rss_growth_mib"]


def rss_mib() -> float:
    """This process's resident memory now (shared-memory pages it touched included)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakGrowth:
    """How far resident memory rose above its level at the start of the `with` block (sampled every 5 ms)."""

    def __enter__(self) -> "PeakGrowth":
        self.start = self.peak = rss_mib()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mib())

    @property
    def mib(self) -> float:
        return self.peak - self.start


def measure(capacity: int, directory: Path) -> dict[str, float]:
    config = TransitionReplayConfig(capacity, frame_shape=(84, 84), frame_stack=4)
    replay = TransitionReplay.create(config)
    fill_transition_replay(replay, capacity, np.random.default_rng(0))
    restored = TransitionReplay.create(config)  # created (and filled with sentinels) before timing starts
    path = directory / "replay-000000000000.bin"
    try:
        with PeakGrowth() as save_growth:
            start = time.perf_counter()
            replay.save(path)
            save_seconds = time.perf_counter() - start
        size = path.stat().st_size
        with PeakGrowth() as restore_growth:
            start = time.perf_counter()
            restored.load(path)
            restore_seconds = time.perf_counter() - start
        batches = [r.sample(64, 0.4, np.random.default_rng(1)) for r in (replay, restored)]
        for a, b in zip(*batches):
            assert np.array_equal(a, b), "the restored replay samples what the saved one does"
    finally:
        path.unlink(missing_ok=True)
        replay.close()
        restored.close()
    return {"transitions": capacity, "file_gib": round(size / 2**30, 3),
            "save_seconds": round(save_seconds, 2), "save_gb_per_s": round(size / 1e9 / save_seconds, 2),
            "save_peak_rss_growth_mib": round(save_growth.mib), "restore_seconds": round(restore_seconds, 2),
            "restore_gb_per_s": round(size / 1e9 / restore_seconds, 2),
            "restore_peak_rss_growth_mib": round(restore_growth.mib)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, nargs="+", default=[100_000],
                        help="transitions in the replay (several: one row each, measured in turn)")
    parser.add_argument("--dir", default=None, help="where the file is written (default: a temporary directory)")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    rows = []
    for capacity in args.capacity:
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            rows.append(measure(capacity, Path(directory)))
        print(rows[-1], flush=True)
    notes = ["Save and restore stream 64 MiB chunks between shared memory and the file, with a CRC-32 per array.",
             "The file was just written, so the restore reads it from the page cache: a cold read from disk "
             "is bounded by the disk instead."]
    command = " ".join(["python -m benchmarks.replay_persistence", *(sys.argv[1:] if argv is None else argv)])
    print(write_table("replay_persistence", COLUMNS, rows, command, load_at_start, notes))


if __name__ == "__main__":
    main()
