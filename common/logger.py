"""Run logging: metrics.csv, eval.csv, TensorBoard events, progress lines and a learning-curve PNG."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

METRICS_FIELDS = ["wall_seconds", "env_steps", "env_frames", "updates", "steps_per_second",
                  "frames_per_second", "episodes", "episode_return_mean", "restarts"]
# unix_time: when the owner logged the evaluation, for timing a run from outside it (its wall_seconds count
# from the owner loop's start, after the imports and the set-up).
EVAL_FIELDS = ["wall_seconds", "env_steps", "env_frames", "eval_return_mean", "eval_return_std", "episodes",
               "unix_time"]


class _CsvLog:
    def __init__(self, path: Path, fields: Sequence[str], append: bool):
        exists = append and path.is_file() and path.stat().st_size > 0
        if exists:  # a resumed run keeps its file's columns, should they differ from this version's
            with open(path, newline="") as f:
                fields = next(csv.reader(f), None) or fields
        self.file = open(path, "a" if exists else "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=list(fields), extrasaction="ignore")
        if not exists:
            self.writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow(row)
        self.file.flush()


class RunLogger:
    """Writes one run's logs; `append=True` continues the files of a resumed run."""

    def __init__(self, run_dir: Path, append: bool, title: str, tensorboard: bool = True):
        self.run_dir = run_dir
        self.title = title
        self.metrics = _CsvLog(run_dir / "metrics.csv", METRICS_FIELDS, append)
        self.evals = _CsvLog(run_dir / "eval.csv", EVAL_FIELDS, append)
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tb"))

    def log_metrics(self, row: dict[str, Any]) -> None:
        self.metrics.write(row)
        if self.tb is not None:
            for key in ("steps_per_second", "episode_return_mean", "updates"):
                if row.get(key) is not None and not math.isnan(row[key]):
                    self.tb.add_scalar(f"train/{key}", row[key], row["env_steps"])
        ret = row["episode_return_mean"]
        print(f"[{row['wall_seconds']:7.1f}s] steps {row['env_steps']:>11,} frames {row['env_frames']:>12,} "
              f"| {row['steps_per_second']:8,.0f} steps/s {row['frames_per_second']:8,.0f} frames/s "
              f"| return {'   n/a' if math.isnan(ret) else f'{ret:8.2f}'} (last 20) "
              f"| updates {row['updates']:,}", flush=True)

    def log_eval(self, row: dict[str, Any]) -> None:
        self.evals.write(row)
        if self.tb is not None:
            self.tb.add_scalar("eval/return_mean", row["eval_return_mean"], row["env_steps"])
        print(f"[{row['wall_seconds']:7.1f}s] eval at {row['env_steps']:,} steps: "
              f"{row['eval_return_mean']:.2f} +- {row['eval_return_std']:.2f} over {row['episodes']} episodes",
              flush=True)

    def plot(self) -> Path | None:
        """learning_curve.png: training and evaluation return against env frames and wall clock."""
        return plot_learning_curve(self.run_dir, self.title)

    def close(self) -> None:
        self.metrics.file.close()
        self.evals.file.close()
        if self.tb is not None:
            self.tb.close()


def read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


def plot_learning_curve(run_dir: Path, title: str) -> Path | None:
    metrics, evals = read_csv(run_dir / "metrics.csv"), read_csv(run_dir / "eval.csv")
    if not metrics and not evals:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x in zip(axes, ("env_frames", "wall_seconds")):
        if metrics:
            ax.plot([r[x] for r in metrics], [r["episode_return_mean"] for r in metrics],
                    label="training return (last 20 episodes)", alpha=0.7)
        if evals:
            xs = [r[x] for r in evals]
            mean = [r["eval_return_mean"] for r in evals]
            std = [r["eval_return_std"] for r in evals]
            (line,) = ax.plot(xs, mean, marker=".", label="evaluation return (mean and std)")
            ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=line.get_color(), alpha=0.2)
        ax.set_xlabel(x.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return")
    axes[0].legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    path = run_dir / "learning_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
