"""NGU and Agent57 on this box: what the intrinsic reward (and Agent57's second network) costs an
actor and a learner, the episodic k-NN against memory size, and both against R2D2 on the
hard-exploration chain.

    python -m benchmarks.ngu --out benchmarks/results/ngu

- actors: one R2D2, one NGU (`ngu.actor.Actor.step`) and one Agent57 actor process, each a fresh
  process with one torch thread and its family's default envs, timed in turn (R2D2, NGU, Agent57,
  R2D2, ...) on each game; the table gives each repeat's agent steps/s and NGU's and Agent57's
  fractions of the R2D2 run beside them. The goal: NGU's actor keeps at least half of R2D2's speed.
- learners: NGU's and Agent57's learner updates/s on CPU with their defaults for each game, on a
  replay of 256 sequences filled by their own actor.
- knn: seconds per call of the batched episodic k-NN (`ngu.episodic.episodic_rewards`) for each memory
  size and number of envs, 32-float embeddings.
- rewards: the intrinsic reward NGU's formula pays each step of a uniformly random policy, scored by
  untrained networks with NGU's defaults for the game, beside the game's own reward per step: the
  scale that NGU's beta weighs.
- chain: NGU, Agent57 (--eval-policy exploit) and R2D2 in serial mode with seed 0 on
  `common.chain:Chain-v0`, one after the other, for the same wall-clock time each, their greedy
  evaluations (j = 0 for NGU and Agent57) against env steps and wall seconds, as a PNG.

Writes <out>/actors.{md,csv}, learners.{md,csv}, knn.{md,csv}, rewards.{md,csv}, chain.{md,csv,png}.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measure import in_fresh_process, load_average, write_table
from benchmarks.workloads import (agent57_actor_steps, agent57_learner_updates, episodic_knn_seconds, ngu_actor_steps,
                                  ngu_learner_updates, r2d2_actor_steps)


def actor_rows(games: list[str], seconds: float, repeats: int) -> list[dict[str, Any]]:
    from r2d2.config import make_config

    rows = []
    for game in games:
        num_envs = make_config({"env_id": game}).envs_per_actor
        for repeat in range(repeats):
            r2d2 = in_fresh_process(r2d2_actor_steps, game, num_envs, seconds, 2.0)
            ngu = in_fresh_process(ngu_actor_steps, game, num_envs, seconds, 2.0)
            agent57 = in_fresh_process(agent57_actor_steps, game, num_envs, seconds, 2.0)
            rows.append({"env": game, "envs per actor": num_envs, "repeat": repeat + 1,
                         "R2D2 steps/s": round(r2d2.per_second), "NGU steps/s": round(ngu.per_second),
                         "Agent57 steps/s": round(agent57.per_second),
                         "NGU / R2D2": round(ngu.per_second / r2d2.per_second, 3),
                         "Agent57 / R2D2": round(agent57.per_second / r2d2.per_second, 3),
                         "NGU / R2D2 per CPU-s": round(ngu.per_cpu_second / r2d2.per_cpu_second, 3)})
            print(rows[-1], flush=True)
    return rows


def actor_notes(rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    for game in dict.fromkeys(row["env"] for row in rows):
        for family in ("NGU", "Agent57"):
            ratios = [row[f"{family} / R2D2"] for row in rows if row["env"] == game]
            verdict = "meets" if min(ratios) >= 0.5 else "misses" if max(ratios) < 0.5 else "straddles"
            notes.append(f"{game}: {family}'s actor runs at {min(ratios):.2f} to {max(ratios):.2f} of R2D2's speed "
                         f"(median {statistics.median(ratios):.2f}) over {len(ratios)} runs in turn: {verdict} "
                         f"the goal of at least half.")
    return notes


def learner_rows(games: list[str], seconds: float) -> list[dict[str, Any]]:
    from agent57.config import make_config as agent57_config
    from ngu.config import make_config as ngu_config

    rows = []
    for game in games:
        for family, make_config, updates in (("ngu", ngu_config, ngu_learner_updates),
                                             ("agent57", agent57_config, agent57_learner_updates)):
            cfg = make_config({"env_id": game})
            rate = in_fresh_process(updates, game, seconds, 2.0)
            rows.append({"env": game, "learner": family, "batch": cfg.batch_size, "sequence": cfg.sequence_length,
                         "updates/s": round(rate.per_second, 2), "updates per CPU-s": round(rate.per_cpu_second, 2)})
            print(rows[-1], flush=True)
    return rows


def knn_rows(sizes: list[int], env_counts: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        for envs in env_counts:
            seconds = in_fresh_process(episodic_knn_seconds, size, envs, repeats, torch_threads=None)
            rows.append({"memory size": size, "envs": envs, "us per call": round(seconds * 1e6, 1),
                         "us per env": round(seconds * 1e6 / envs, 1)})
            print(rows[-1], flush=True)
    return rows


def reward_scale(game: str, steps: int, seed: int = 0) -> dict[str, Any]:
    """Per-step intrinsic reward (NGU's defaults, untrained networks) and extrinsic reward of a uniformly
    random policy over `steps` steps of `game`."""
    import numpy as np
    import torch

    from common.envs import make_env
    from ngu.config import make_config
    from ngu.intrinsic import IntrinsicReward
    from ngu.network import make_model

    cfg = make_config({"env_id": game, "seed": seed})
    env = make_env(game, seed=seed)
    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)
    model = make_model(cfg, obs.shape, int(env.action_space.n))
    intrinsic = IntrinsicReward(model, 1, cfg.episodic_capacity, cfg.num_neighbours, cfg.max_modulation)
    intrinsic.start_episode(0, obs)
    rng = np.random.default_rng(seed)
    r_i, r_e = [], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        r_e.append(float(reward))
        r_i.append(float(intrinsic(np.asarray(obs)[None])[0]))
        if terminated or truncated:
            obs, _ = env.reset()
            intrinsic.start_episode(0, obs)
    env.close()
    r_i_array = np.array(r_i)
    return {"env": game, "steps": steps, "intrinsic mean": round(float(r_i_array.mean()), 3),
            "intrinsic median": round(float(np.median(r_i_array)), 3),
            "intrinsic p10": round(float(np.percentile(r_i_array, 10)), 3),
            "intrinsic p90": round(float(np.percentile(r_i_array, 90)), 3),
            "extrinsic mean": round(float(np.mean(r_e)), 4), "beta (NGU default)": cfg.intrinsic_beta}


def eval_curve(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "eval.csv") as f:
        return [{"env_steps": int(row["env_steps"]), "wall_seconds": float(row["wall_seconds"]),
                 "eval_return_mean": float(row["eval_return_mean"])} for row in csv.DictReader(f)]


def chain_rows(seconds: float) -> list[dict[str, Any]]:
    from agent57.config import make_config as agent57_config
    from agent57.train import main as agent57_main
    from common.chain import ENV_ID
    from ngu.config import make_config as ngu_config
    from ngu.train import main as ngu_main
    from r2d2.config import make_config as r2d2_config
    from r2d2.train import main as r2d2_main

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make_config, main, flags in (("NGU", ngu_config, ngu_main, {}),
                                               ("Agent57", agent57_config, agent57_main, {"eval_policy": "exploit"}),
                                               ("R2D2", r2d2_config, r2d2_main, {})):
            run_dir = Path(tmp) / name
            main(make_config({"env_id": ENV_ID, "serial": True, "seed": 0, "num_workers": 1,
                              "max_seconds": seconds, "run_dir": str(run_dir), **flags}))
            rows += [{"agent": name, **point} for point in eval_curve(run_dir)]
    return rows


def chain_notes(rows: list[dict[str, Any]], far: float) -> list[str]:
    notes = []
    for agent in dict.fromkeys(row["agent"] for row in rows):
        mine = [row for row in rows if row["agent"] == agent]
        first = next((row for row in mine if row["eval_return_mean"] >= far), None)
        reached = (f"first evaluation at {far:g} at {first['env_steps']:,} steps ({first['wall_seconds']:.0f} s)"
                   if first else f"no evaluation at {far:g}")
        notes.append(f"{agent}: {len(mine)} evaluations, best {max(r['eval_return_mean'] for r in mine):g}, final "
                     f"{mine[-1]['eval_return_mean']:g}; {reached}.")
    return notes


def plot_chain(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for agent in dict.fromkeys(row["agent"] for row in rows):
        mine = [row for row in rows if row["agent"] == agent]
        for ax, x in zip(axes, ("env_steps", "wall_seconds")):
            ax.plot([row[x] for row in mine], [row["eval_return_mean"] for row in mine], label=agent)
    for ax, label in zip(axes, ("env steps", "wall seconds")):
        ax.set_xlabel(label)
        ax.set_ylabel("greedy evaluation return (10 games)")
        ax.axhline(10.0, color="grey", lw=0.5, ls="--")
        ax.axhline(1.0, color="grey", lw=0.5, ls=":")
        ax.legend()
    fig.suptitle("common.chain:Chain-v0 (near reward 1, far reward 10), serial mode, seed 0")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ngu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["ALE/Pong-v5", "CartPole-v1"])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per actor run")
    parser.add_argument("--repeats", type=int, default=3, help="R2D2/NGU actor pairs per game")
    parser.add_argument("--knn-sizes", type=int, nargs="+", default=[1_000, 10_000, 30_000])
    parser.add_argument("--knn-envs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--knn-repeats", type=int, default=50)
    parser.add_argument("--chain-seconds", type=float, default=240.0, help="wall seconds of each chain run")
    parser.add_argument("--learner-games", nargs="+", default=["CartPole-v1"])
    parser.add_argument("--learner-seconds", type=float, default=20.0)
    parser.add_argument("--reward-games", nargs="+", default=["MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1",
                                                              "CartPole-v1", "common.chain:Chain-v0"])
    parser.add_argument("--reward-steps", type=int, default=3000)
    parts = ["actors", "learners", "knn", "rewards", "chain"]
    parser.add_argument("--parts", nargs="+", default=parts, choices=parts)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ngu"))
    args = parser.parse_args(argv)
    if "rewards" in args.parts:
        if args.reward_steps < 1:
            parser.error(f"--reward-steps must be at least 1, got {args.reward_steps}")
        from common.envs import make_env
        from common.errors import UsageError

        for game in args.reward_games:  # a bad id is one usage line before anything is measured
            try:
                make_env(game, seed=0).close()
            except UsageError as err:  # unknown ids and continuous actions alike
                parser.error(str(err))
    command = "python -m benchmarks.ngu " + " ".join(sys.argv[1:] if argv is None else argv)
    if "actors" in args.parts:
        load = load_average()
        rows = actor_rows(args.games, args.seconds, args.repeats)
        print(write_table("actors", list(rows[0]), rows, command, load, actor_notes(rows), args.out))
    if "learners" in args.parts:
        load = load_average()
        rows = learner_rows(args.learner_games, args.learner_seconds)
        print(write_table("learners", list(rows[0]), rows, command, load, [], args.out))
    if "knn" in args.parts:
        load = load_average()
        rows = knn_rows(args.knn_sizes, args.knn_envs, args.knn_repeats)
        print(write_table("knn", list(rows[0]), rows, command, load, [], args.out))
    if "rewards" in args.parts:
        load = load_average()
        rows = [reward_scale(game, args.reward_steps) for game in args.reward_games]
        print(write_table("rewards", list(rows[0]), rows, command, load, [], args.out))
    if "chain" in args.parts:
        from common.chain import LARGE

        load = load_average()
        rows = chain_rows(args.chain_seconds)
        print(write_table("chain", list(rows[0]), rows, command, load, chain_notes(rows, LARGE), args.out))
        plot_chain(rows, args.out / "chain.png")


if __name__ == "__main__":
    main()
