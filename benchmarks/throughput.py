"""Throughput on this box, layer by layer, in one run and one table, R2D2's actor and learner figures included.

    python -m benchmarks.throughput --quick                   # 3 s per figure, about 3 minutes
    python -m benchmarks.throughput                           # 10 s per figure (learners 30 s), about 10 minutes
    python -m benchmarks.throughput --games ALE/Pong-v5 ALE/Breakout-v5   # env layers on both games
    python -m benchmarks.throughput --quick --parts env actor # the env and actor figures only

  env:     env stepping alone with random actions, per game: bare ALE (`ale.act`, one emulator frame a
           call, no observation), gymnasium's ALE env as `gym.make(game)` gives it (frameskip 4, sticky
           actions, RGB observations), our full DQN stack (`common.envs.make_env`: no-ops, max-pooled
           frameskip 4, 84x84 grayscale, fire reset, episodic life, reward clip, 4-frame stack), and
           EnvPool (optional `bench` extra) on the same protocol with one worker thread, 1 env and 16.
  actor:   on the first game, one actor process of each family, one torch thread: the A3C worker
           (`a3c.worker.run_worker`: env, inference and its window update on the shared model), the
           Ape-X actor (`apex.actor.Actor.step`) and the R2D2 actor (`r2d2.actor.Actor.step`), each
           with its family's default envs per actor; env + batched inference + replay inserts.
  learner: Ape-X updates/s at batch 512 and R2D2 sequences/s at batch 64 of 80 steps (40 of them
           burn-in), driven as the train commands drive them, on CPU with 1 and 2 torch threads and on
           CUDA when present.
  replay:  transition replay (Atari frames, 100k capacity): transitions/s inserted by one writer
           process, batches of 512 sampled + priorities updated per s; sequence replay (R2D2's Atari
           sequences): sequences/s inserted in blocks of 4, batches of 64 sampled + updated per s.

Every figure comes from a fresh process (`benchmarks.measure.in_fresh_process`) running one of the
workloads of benchmarks/workloads.py or benchmarks/measure.py. Rates are per wall-clock second and per
CPU-second of the measuring process (what it does with a core to itself); frames are emulator frames
(4 per agent step); `vs_bare_ale` is frames/s over bare ALE's frames/s on the same game in the same
run, `vs_bare_ale_cpu` the same per CPU-second (steadier on a busy box). R2D2's benchmark is the
R2D2 actor rows against the env rows and the target below, and the R2D2 learner rows. Writes
benchmarks/results/throughput.{csv,md,png}.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.measure import (ATARI, RESULTS_DIR, Rate, apex_actor_steps, apex_learner_updates, bare_ale_frames,
                                in_fresh_process, load_average, scaled, wrapper_env_steps, write_table)
from benchmarks.workloads import (SEQUENCE_BLOCK, a3c_worker_steps, envpool_steps, gym_env_steps,
                                  r2d2_actor_steps, r2d2_learner_sequences, sequence_replay_ops,
                                  transition_replay_ops)

FRAMES_PER_STEP = 4
COLUMNS = ["section", "measure", "env", "setting", "rate", "per_cpu_s", "unit", "frames_per_s", "vs_bare_ale",
           "vs_bare_ale_cpu"]
R2D2_TARGET_STEPS = 1_000  # agent steps/s an R2D2 actor process is to reach


@dataclass(frozen=True)
class Preset:
    seconds: float
    """measured seconds per figure, after the warm-up"""
    warmup_seconds: float
    learner_seconds: float
    """measured seconds per learner figure (an R2D2 update takes several seconds on a CPU)"""
    sequence_capacity: int
    """sequences in the R2D2 learner's and the sequence-replay figures' replays"""


QUICK = Preset(seconds=3.0, warmup_seconds=1.0, learner_seconds=3.0, sequence_capacity=128)
CAREFUL = Preset(seconds=10.0, warmup_seconds=2.0, learner_seconds=30.0, sequence_capacity=256)


def rounded(x: float) -> float:
    """Rounding for the table: whole units from 100 up, one decimal from 10, three below."""
    return round(x) if abs(x) >= 100 else round(x, 1) if abs(x) >= 10 else round(x, 3)


def make_row(section: str, measure: str, env: str, setting: str, unit: str, rate: Rate | float | None,
             frames_per_unit: int = 0, bare_ale: Rate | None = None, why_skipped: str = "") -> dict:
    """One table row. `rate`: a Rate, a wall-clock rate alone (float) or None (skipped, `why_skipped`).
    With `frames_per_unit`, frames/s, and with `bare_ale` (bare ALE's frames per second and per
    CPU-second) the fractions of it, are filled in."""
    row = {"section": section, "measure": measure, "env": env, "setting": setting, "unit": unit}
    if rate is None:
        return {**row, "rate": f"skipped: {why_skipped}"}
    per_second, per_cpu_second = rate if isinstance(rate, Rate) else (rate, None)
    row["rate"] = rounded(per_second)
    if per_cpu_second is not None:
        row["per_cpu_s"] = rounded(per_cpu_second)
    if frames_per_unit:
        row["frames_per_s"] = rounded(per_second * frames_per_unit)
        if bare_ale is not None:
            row["vs_bare_ale"] = round(per_second * frames_per_unit / bare_ale.per_second, 3)
            if per_cpu_second is not None:
                row["vs_bare_ale_cpu"] = round(per_cpu_second * frames_per_unit / bare_ale.per_cpu_second, 3)
    return row


def envpool_rate(env_id: str, num_envs: int, preset: Preset) -> tuple[Rate | None, str]:
    """(EnvPool's rate, "") or (None, why it was skipped)."""
    import importlib.util

    if importlib.util.find_spec("envpool") is None:
        return None, "envpool is not installed (optional: pip install -e '.[bench]')"
    try:
        return in_fresh_process(envpool_steps, env_id, num_envs, preset.seconds, preset.warmup_seconds,
                                torch_threads=None), ""
    except RuntimeError as err:
        return None, str(err).splitlines()[-1]


def env_rows(env_id: str, preset: Preset, envpool_envs: list[int]) -> tuple[list[dict], Rate]:
    """(The env layers of one game, the first being bare ALE; bare ALE's frame rate, the reference)."""
    timing = (preset.seconds, preset.warmup_seconds)
    bare = in_fresh_process(bare_ale_frames, env_id, *timing, torch_threads=None)
    steps = "agent steps/s"

    def row(measure: str, setting: str, rate: Rate | None, why_skipped: str = "") -> dict:
        return make_row("env", measure, env_id, setting, steps, rate, FRAMES_PER_STEP, bare, why_skipped)

    rows = [row("bare ALE (ale.act)", "1 frame a call, no observation; agent steps = frames / 4",
                scaled(bare, 1 / FRAMES_PER_STEP)),
            row("gymnasium ALE env", "gym.make defaults: frameskip 4, sticky actions, RGB",
                in_fresh_process(gym_env_steps, env_id, *timing, torch_threads=None)),
            row("our DQN env stack", "common.envs.make_env, 1 env",
                in_fresh_process(wrapper_env_steps, env_id, 1, *timing, torch_threads=None))]
    for num_envs in envpool_envs:
        rate, why = envpool_rate(env_id, num_envs, preset)
        rows.append(row(f"EnvPool, {num_envs} env{'s' * (num_envs > 1)}", "1 thread, our protocol", rate, why))
    return rows, bare


def actor_rows(env_id: str, preset: Preset, r2d2_envs: list[int], bare_ale: Rate | None) -> list[dict]:
    """One actor process per family, one torch thread, its family's default envs (R2D2: `r2d2_envs`)."""
    from a3c.config import make_config as make_a3c_config
    from apex.config import Config as ApexConfig

    timing = (preset.seconds, preset.warmup_seconds)
    apex_envs = ApexConfig.envs_per_actor

    def row(measure: str, setting: str, rate: Rate) -> dict:
        return make_row("actor", measure, env_id, setting, "agent steps/s", rate, FRAMES_PER_STEP, bare_ale)

    a3c = make_a3c_config({"env_id": env_id, "num_workers": 1})
    rows = [row("A3C worker (a3c.worker.run_worker)",
                f"--algo a3c defaults, 1 env, t_max {a3c.t_max}, shared {a3c.optimizer} update",
                in_fresh_process(a3c_worker_steps, env_id, *timing)),
            row("Ape-X actor (apex.actor.Actor.step)", f"{apex_envs} envs",
                in_fresh_process(apex_actor_steps, env_id, apex_envs, *timing))]
    for num_envs in r2d2_envs:
        rows.append(row("R2D2 actor (r2d2.actor.Actor.step)", f"{num_envs} envs, LSTM 512",
                        in_fresh_process(r2d2_actor_steps, env_id, num_envs, *timing)))
    return rows


def learner_rows(env_id: str, preset: Preset) -> list[dict]:
    """Ape-X and R2D2 learners on CPU with 1 and 2 torch threads, and on CUDA when present."""
    import torch

    timing = (preset.learner_seconds, preset.warmup_seconds)
    settings = [("cpu", 1), ("cpu", 2)] + ([("cuda", 1)] if torch.cuda.is_available() else [])
    rows = []
    for device, threads in settings:
        where = f"{device}, {threads} torch thread{'s' * (threads > 1)}"
        if device == "cuda":
            where = f"cuda ({torch.cuda.get_device_name()})"
        rate = in_fresh_process(apex_learner_updates, env_id, device, *timing, torch_threads=threads)
        rows.append(make_row("learner", "Ape-X learner", env_id, f"batch 512, {where}", "updates/s", rate))
        rate = in_fresh_process(r2d2_learner_sequences, env_id, device, preset.sequence_capacity, *timing,
                                torch_threads=threads)
        rows.append(make_row("learner", "R2D2 learner", env_id, f"batch 64 x 80 steps (40 burn-in), {where}",
                             "sequences/s", rate))
    return rows


def replay_rows(env_id: str, preset: Preset) -> list[dict]:
    timing = (preset.seconds, preset.warmup_seconds)
    ops = in_fresh_process(transition_replay_ops, *timing, torch_threads=None)
    rows = [make_row("replay", "transition replay: insert", env_id, "100k capacity, 1 writer process, blocks of 64",
                     "transitions/s", ops["insert"]),
            make_row("replay", "transition replay: sample + priority update", env_id, "100k capacity, batch 512",
                     "batches/s", ops["sample"])]
    ops = in_fresh_process(sequence_replay_ops, env_id, preset.sequence_capacity, *timing, torch_threads=None)
    capacity = f"{preset.sequence_capacity} sequences of 80 steps"
    rows += [make_row("replay", "sequence replay: insert", env_id, f"{capacity}, blocks of {SEQUENCE_BLOCK}",
                      "sequences/s", ops["insert"]),
             make_row("replay", "sequence replay: sample + priority update", env_id, f"{capacity}, batch 64",
                      "batches/s", ops["sample"])]
    return rows


def r2d2_note(rows: list[dict]) -> list[str]:
    """R2D2's actor figures in sentences: each R2D2 actor row against the target, then the env layers of the run."""
    actors = [r for r in rows if r["measure"].startswith("R2D2 actor") and isinstance(r["rate"], (int, float))]
    if not actors:
        return []
    lines = [f"R2D2 actor, {r['setting']}: {r['rate']:,} agent steps/s per actor process ({r['per_cpu_s']:,} per "
             f"CPU-second): {'meets' if r['rate'] >= R2D2_TARGET_STEPS else 'misses'} the R2D2 actor target of "
             f"{R2D2_TARGET_STEPS:,} in wall-clock terms." for r in actors]
    envs = [r for r in rows if r["section"] == "env" and r["env"] == actors[0]["env"]
            and r["measure"] in ("bare ALE (ale.act)", "our DQN env stack")]
    if envs:
        lines.append("In the same run on " + actors[0]["env"] + ": " + ", ".join(
            f"{r['measure']} {r['rate']:,} agent steps/s ({r['per_cpu_s']:,} per CPU-second)" for r in envs) + ".")
    return lines


def plot_env_layers(rows: list[dict], path: Path) -> None:
    """Bars of each env layer's frames per CPU-second as a fraction of bare ALE's, one colour per game
    (per CPU-second: on a shared box the wall-clock fractions move with the other work)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [r for r in rows if r["section"] == "env" and r.get("vs_bare_ale_cpu") is not None]
    if not layers:
        return
    games = list(dict.fromkeys(r["env"] for r in layers))
    names = list(dict.fromkeys(r["measure"] for r in layers))
    width = 0.8 / len(games)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for g, game in enumerate(games):
        mine = {r["measure"]: r for r in layers if r["env"] == game}
        xs = [i + (g - (len(games) - 1) / 2) * width for i, name in enumerate(names) if name in mine]
        bars = ax.bar(xs, [mine[n]["vs_bare_ale_cpu"] for n in names if n in mine], width, label=game)
        labels = [f"{rounded(mine[n]['per_cpu_s'] * FRAMES_PER_STEP):,}" for n in names if n in mine]
        ax.bar_label(bars, labels=labels, fontsize=7)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("frames per CPU-second, fraction of bare ALE")
    ax.set_ylim(0, 1.25)
    ax.set_title("Env stepping alone, one process, random actions (labels: emulator frames per CPU-second)",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def notes(rows: list[dict]) -> list[str]:
    import importlib.metadata

    try:
        envpool = f"EnvPool {importlib.metadata.version('envpool')}"
    except importlib.metadata.PackageNotFoundError:
        envpool = "EnvPool not installed"
    return r2d2_note(rows) + [
        "", "rate: per wall-clock second of this run; per_cpu_s: per CPU-second of the measuring process (all "
        "its threads), roughly what it does with a core to itself. frames_per_s: emulator frames, 4 per agent "
        "step; vs_bare_ale(_cpu): frames per second (per CPU-second) over bare ALE's for the same game in this "
        "run. Every figure comes "
        f"from a fresh process; actors run with one torch thread. {envpool}. Commands: see "
        "`python -m benchmarks.throughput --help`."]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 s per figure (default: 10 s, learners 30 s, after a longer warm-up)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per figure (overrides the preset)")
    parser.add_argument("--games", nargs="+", default=[ATARI], help="ALE ids for the env layers (actors: the first)")
    parser.add_argument("--parts", nargs="+", default=["env", "actor", "learner", "replay"],
                        choices=["env", "actor", "learner", "replay"], help="which sections to measure")
    parser.add_argument("--r2d2-envs", type=int, nargs="+", default=None,
                        help="envs per R2D2 actor to measure (default: the Atari default, 16)")
    parser.add_argument("--envpool-envs", type=int, nargs="+", default=[1, 16], help="EnvPool batch sizes")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else CAREFUL
    if args.seconds is not None:
        preset = replace(preset, seconds=args.seconds, warmup_seconds=min(preset.warmup_seconds, args.seconds),
                         learner_seconds=args.seconds)
    from r2d2.config import make_config

    r2d2_envs = args.r2d2_envs or [make_config({"env_id": args.games[0]}).envs_per_actor]
    load_at_start = load_average()
    rows: list[dict] = []
    bare_ale: dict[str, Rate] = {}
    if "env" in args.parts:
        for game in args.games:
            game_rows, bare_ale[game] = env_rows(game, preset, args.envpool_envs)
            rows += game_rows
    if "actor" in args.parts:
        rows += actor_rows(args.games[0], preset, r2d2_envs, bare_ale.get(args.games[0]))
    if "learner" in args.parts:
        rows += learner_rows(args.games[0], preset)
    if "replay" in args.parts:
        rows += replay_rows(args.games[0], preset)
    command = "python -m benchmarks.throughput" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    text = write_table("throughput", COLUMNS, rows, command, load_at_start, notes(rows))
    plot_env_layers(rows, RESULTS_DIR / "throughput.png")
    print(text)


if __name__ == "__main__":
    main()
