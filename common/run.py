"""What every training entry point shares around a run: its directory, config file and summary."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections import deque
from typing import Any

from common.atari_scores import human_normalized_score
from common.counters import RunCounters
from common.envs import is_atari


def default_run_dir(algo: str, env_id: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{algo}-{env_id.replace('/', '_')}-s{seed}-{stamp}"


def write_config(run_dir: Path, cfg: Any) -> None:
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")


@dataclass
class RunSummary:
    """The outcome of one run, printed at its end and returned by main(cfg)."""
    run_dir: Path
    env_id: str = ""
    stop_reason: str = ""
    env_steps: int = 0
    wall_seconds: float = 0.0
    restarts: int = 0
    eval_means: list[float] = field(default_factory=list)
    checkpoint: Path | None = None
    plot: Path | None = None

    def add_eval(self, mean: float) -> None:
        self.eval_means.append(mean)

    @property
    def best_eval(self) -> float:
        return max(self.eval_means) if self.eval_means else math.nan

    @property
    def final_eval(self) -> float:
        return self.eval_means[-1] if self.eval_means else math.nan

    def report(self) -> None:
        lines = [
            f"stopped: {self.stop_reason}",
            f"steps {self.env_steps:,} in {self.wall_seconds:.1f} s "
            f"({self.env_steps / max(self.wall_seconds, 1e-9):,.0f} steps/s), worker restarts {self.restarts}",
            f"evaluations {len(self.eval_means)}: final {self.final_eval:.2f}, best {self.best_eval:.2f}"
            + (f" (human-normalized {human_normalized_score(self.env_id, self.best_eval):.3f})"
               if is_atari(self.env_id) and self.eval_means else ""),
            f"checkpoint {self.checkpoint}",
            f"learning curve {self.plot}",
        ]
        print("\n".join("summary: " + line for line in lines), flush=True)


class Progress:
    """Turns the shared counters into metrics rows: rates since the last row, recent returns."""

    def __init__(self, counters: RunCounters, frames_per_step: int, now: float):
        self.counters = counters
        self.frames_per_step = frames_per_step
        self.seen_episodes = counters.episodes.clone()
        self.recent: deque[float] = deque(maxlen=20)
        self.last_time, self.last_steps = now, counters.total_steps()

    def poll_returns(self) -> None:
        self.recent.extend(self.counters.new_returns(self.seen_episodes))

    def row(self, now: float, restarts: int) -> dict[str, Any]:
        self.poll_returns()
        steps = self.counters.total_steps()
        rate = (steps - self.last_steps) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_steps = now, steps
        return {"wall_seconds": round(now, 3), "env_steps": steps, "env_frames": steps * self.frames_per_step,
                "updates": self.counters.total_updates(), "steps_per_second": round(rate, 1),
                "frames_per_second": round(rate * self.frames_per_step, 1),
                "episodes": int(self.counters.episodes.sum()),
                "episode_return_mean": sum(self.recent) / len(self.recent) if self.recent else math.nan,
                "restarts": restarts}
