"""What every training entry point shares around a run: its directory, config file and summary."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_run_dir(algo: str, env_id: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{algo}-{env_id.replace('/', '_')}-s{seed}-{stamp}"


def write_config(run_dir: Path, cfg: Any) -> None:
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")


@dataclass
class RunSummary:
    """The outcome of one run, printed at its end and returned by main(cfg)."""
    run_dir: Path
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
            f"evaluations {len(self.eval_means)}: final {self.final_eval:.2f}, best {self.best_eval:.2f}",
            f"checkpoint {self.checkpoint}",
            f"learning curve {self.plot}",
        ]
        print("\n".join("summary: " + line for line in lines), flush=True)
