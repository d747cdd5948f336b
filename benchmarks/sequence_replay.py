"""R2D2's sequence replay on Atari: frames stored once (the frame ring) against whole 4-frame stacks per
step (the stacked layout), both measured in the same run.

    python -m benchmarks.sequence_replay     # about 30 s

Shared memory per 80-step sequence (length 80, overlap 40, LSTM 512) and what fits in 8 GB, from each
layout's array specs at R2D2's default capacity (nothing that large is allocated); Ape-X's transition
replay per transition for comparison; and sample-64 + priority-update batches/s on a filled replay of
256 synthetic sequences per layout, the layouts measured in alternation, best of the rounds (other
work on the box only ever lowers a rate). Writes benchmarks/results/sequence_replay.{csv,md}.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.measure import load_average, sample_update_rate, write_table
from benchmarks.workloads import fill_sequence_replay
from common.replay.sequence import SequenceReplay, SequenceReplayConfig
from common.replay.transition import TransitionReplay, TransitionReplayConfig
from r2d2.config import Config as R2D2Config

ATARI_OBS = (4, 84, 84)
EIGHT_GB = 8e9
COLUMNS = ["layout", "item", "shared_bytes_per_item", "items_in_8_GB", "batches_per_s", "sequences_per_s"]


def layouts(capacity: int) -> dict[str, SequenceReplayConfig]:
    cfg = R2D2Config()
    common = dict(capacity=capacity, obs_shape=ATARI_OBS, state_size=cfg.lstm_size, length=cfg.sequence_length,
                  overlap=cfg.sequence_overlap, alpha=cfg.alpha)
    return {"stacked (whole stacks per step)": SequenceReplayConfig(**common),
            "frame ring (each frame once)": SequenceReplayConfig(**common, frame_stack=ATARI_OBS[0])}


def filled(config: SequenceReplayConfig) -> SequenceReplay:
    replay = SequenceReplay.create(config)
    fill_sequence_replay(replay, np.random.default_rng(0))
    return replay


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements per layout")
    parser.add_argument("--capacity", type=int, default=256, help="sequences in the sampled replays")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    batch_size = R2D2Config().batch_size
    rows = []
    for name, config in layouts(R2D2Config().replay_capacity).items():
        per_item = SequenceReplay.shared_bytes(config) / config.capacity
        rows.append({"layout": name, "item": "sequence", "shared_bytes_per_item": round(per_item),
                     "items_in_8_GB": int(EIGHT_GB // per_item)})
    transitions = TransitionReplayConfig(1_000_000, frame_shape=ATARI_OBS[1:], frame_stack=ATARI_OBS[0])
    per_transition = TransitionReplay.shared_bytes(transitions) / transitions.capacity
    rows.append({"layout": "Ape-X transition replay (each frame once)", "item": "transition",
                 "shared_bytes_per_item": round(per_transition), "items_in_8_GB": int(EIGHT_GB // per_transition)})

    replays = [filled(config) for config in layouts(args.capacity).values()]
    try:
        best = [0.0] * len(replays)
        for _ in range(args.rounds):
            for i, replay in enumerate(replays):
                best[i] = max(best[i], sample_update_rate(replay, batch_size, args.seconds, 1.0).per_second)
    finally:
        for replay in replays:
            replay.close()
    for row, rate in zip(rows, best):
        row.update(batches_per_s=round(rate, 2), sequences_per_s=round(rate * batch_size))
    notes = [f"Sequences: length {R2D2Config().sequence_length}, overlap {R2D2Config().sequence_overlap}, LSTM "
             f"{R2D2Config().lstm_size}; bytes per sequence at --replay-capacity {R2D2Config().replay_capacity:,} "
             f"(the frame ring's slack included); transitions at 1,000,000. Sampling: batches of {batch_size} "
             f"with a priority update, {args.capacity} synthetic sequences per replay, best of {args.rounds} "
             f"alternating rounds of {args.seconds:g} s."]
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.sequence_replay", *given])
    print(write_table("sequence_replay", COLUMNS, rows, command, load_at_start, notes))


if __name__ == "__main__":
    main()
