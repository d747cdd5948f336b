"""Every method on the MinAtar games in one table and one chart, from the comparisons' saved tables.

The MinAtar runs were made over several sessions, one `benchmarks.compare` command per row, into the folders
of SOURCES (benchmarks/results/minatar.md says which defaults and load each folder's rows had). This
takes each game and method's current row: a newer folder's row replaces an older one's (a rerun with new
defaults), except from a folder that only added seeds (`--first-seed`), whose row stands beside the older
one. It writes benchmarks/results/compare/minatar_summary/{summary.md, summary.csv, summary.png}: per game,
each method's last and best greedy evaluation against the published DQN and AC(lambda) figures at 5M
frames (the issue's goal: at or above DQN's), and the frames it took to reach DQN's figure.

    python -m benchmarks.minatar_summary
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from benchmarks.compare import ALGOS, MINATAR_PUBLISHED, RESULTS, env_slug

GAMES = tuple(MINATAR_PUBLISHED)
# (folder under benchmarks/results/compare, whether it only added seeds), in the order their rows replace
# each other: oldest first, except that a rerun of a folder's seed with a longer budget follows that folder
SOURCES = (("minatar", False), ("minatar_others", False), ("minatar_more", False), ("minatar_a2c", False),
           ("minatar_replay", False), ("minatar_si", False), ("minatar_gorila_5m", False), ("minatar_seeds", True),
           ("minatar_r2d2", False), ("minatar_gorila_fresh", False),
           ("minatar_gorila_fresh_seeds", True), ("minatar_si_replay", False))
FIELDS = ["env_id", "algo", "folder", "seeds", "final_mean", "final_std", "best_mean", "frames_to_threshold",
          "seeds_reached", "frames_per_second", "meets_goal"]


def current_rows(tables: list[tuple[str, bool, list[dict[str, str]]]]) -> list[dict[str, str]]:
    """tables: (folder, adds_seeds, its CSV rows), oldest first. Per (game, method) the newest folder's row,
    and after it the rows of newer folders that only added seeds; in GAMES and ALGOS order."""
    kept: dict[tuple[str, str], list[dict[str, str]]] = {}
    for folder, adds_seeds, rows in tables:
        for row in rows:
            key = (row["env_id"], row["algo"])
            row = {**row, "folder": folder}
            kept[key] = kept.get(key, []) + [row] if adds_seeds else [row]
    order = {algo: i for i, algo in enumerate(ALGOS)}
    keys = sorted(kept, key=lambda k: (GAMES.index(k[0]) if k[0] in GAMES else len(GAMES), order.get(k[1], 99)))
    return [row for key in keys for row in kept[key]]


def meets_goal(row: dict[str, str]) -> bool:
    """The last evaluation (mean over seeds) is at or above the published DQN figure at 5M frames. A run that
    stopped short of 5M frames and is above it there is above it at equal frames too, DQN's curve rising."""
    return float(row["final_mean"]) >= MINATAR_PUBLISHED[row["env_id"]][0]


def markdown(rows: list[dict[str, str]]) -> list[str]:
    lines = []
    for game in GAMES:
        dqn, ac_lambda = MINATAR_PUBLISHED[game]
        lines += [f"## {game} (published at 5M frames: DQN {dqn:g}, AC(lambda) {ac_lambda:g})", "",
                  "| algo | folder | seeds | greedy eval, last | best | frames to DQN's figure (median) "
                  "| frames/s | last at or above DQN's |", "|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["env_id"] == game):
            frames = float(r["frames_to_threshold"])
            reach = f"{frames / 1e6:.2f}M" if math.isfinite(frames) else "not reached"
            lines.append(f"| {r['algo']} | {r['folder']} | {r['seeds']} | {float(r['final_mean']):.1f} "
                         f"± {float(r['final_std']):.1f} | {float(r['best_mean']):.1f} | {reach} "
                         f"({r['seeds_reached']} of {r['seeds']}) | {float(r['frames_per_second']):,.0f} "
                         f"| {'yes' if meets_goal(r) else 'no'} |")
        lines.append("")
    return lines


def plot(rows: list[dict[str, str]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GAMES), figsize=(12, 5.5))
    for ax, game in zip(axes, GAMES):
        game_rows = [r for r in rows if r["env_id"] == game]
        labels = [f"{r['algo']} ({r['folder']}, {r['seeds']} seed{'s' if int(r['seeds']) > 1 else ''})"
                  for r in game_rows]
        y = range(len(game_rows))
        ax.barh(y, [float(r["final_mean"]) for r in game_rows],
                color=["tab:blue" if meets_goal(r) else "tab:red" for r in game_rows], alpha=0.7,
                label="last evaluation (red: below DQN's figure)")
        ax.scatter([float(r["best_mean"]) for r in game_rows], y, color="k", marker="|", s=120, label="best evaluation")
        dqn, ac_lambda = MINATAR_PUBLISHED[game]
        ax.axvline(dqn, color="k", linestyle="--", label="published DQN at 5M frames")
        ax.axvline(ac_lambda, color="k", linestyle=":", label="published AC(lambda) at 5M frames")
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{game} (DQN {dqn:g}, AC(lambda) {ac_lambda:g})", fontsize=10)
        ax.set_xlabel("greedy evaluation return (mean of 10 games)")
        ax.grid(axis="x", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("MinAtar: every method against the published figures at 5M frames")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def read_tables(results: Path) -> list[tuple[str, bool, list[dict[str, str]]]]:
    tables = []
    for folder, adds_seeds in SOURCES:
        rows = []
        for game in GAMES:
            path = results / folder / f"{env_slug(game)}.csv"
            if path.is_file():
                with open(path, newline="") as f:
                    rows += [r for r in csv.DictReader(f) if r.get("final_mean")]
        tables.append((folder, adds_seeds, rows))
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folder holding SOURCES' folders")
    parser.add_argument("--out", type=Path, default=RESULTS / "minatar_summary")
    args = parser.parse_args(argv)
    rows = current_rows(read_tables(args.results))
    if not rows:
        print(f"no MinAtar comparison tables under {args.results}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"cannot write the summary to {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    lines = ["# MinAtar: every method against the published figures", "",
             "Collected by `python -m benchmarks.minatar_summary` from the folders named in each row (each "
             "folder's own summary.md has its commands, budgets and load).", ""] + markdown(rows)
    lines += ["![MinAtar](summary.png)"]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    with open(args.out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "meets_goal": meets_goal(r)} for r in rows)
    plot(rows, args.out / "summary.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
