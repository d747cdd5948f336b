"""Run progress in shared memory: steps, updates, episode returns and evaluation results.

Each worker writes only its own row, so no write needs a lock and a worker killed mid-write can
damage nothing but its own last increment. The owner (the train process) is the only reader that
acts on them: it logs, checkpoints and decides when to stop.
"""
from __future__ import annotations

import torch

RETURN_RING = 64
EVAL_RING = 256


class RunCounters:
    def __init__(self, num_workers: int):
        self.steps = torch.zeros(num_workers, dtype=torch.int64).share_memory_()
        self.updates = torch.zeros(num_workers, dtype=torch.int64).share_memory_()
        self.episodes = torch.zeros(num_workers, dtype=torch.int64).share_memory_()
        self.returns = torch.zeros(num_workers, RETURN_RING, dtype=torch.float64).share_memory_()
        # One row per evaluation: env_steps, return mean, return std, episodes. Written by the evaluator.
        self.evals = torch.zeros(EVAL_RING, 4, dtype=torch.float64).share_memory_()
        self.num_evals = torch.zeros(1, dtype=torch.int64).share_memory_()

    @property
    def num_workers(self) -> int:
        return self.steps.numel()

    def total_steps(self) -> int:
        return int(self.steps.sum())

    def total_updates(self) -> int:
        return int(self.updates.sum())

    def add_episode(self, worker: int, episode_return: float) -> None:
        count = int(self.episodes[worker])
        self.returns[worker, count % RETURN_RING] = episode_return
        self.episodes[worker] = count + 1  # published after the value is in place

    def new_returns(self, seen: torch.Tensor) -> list[float]:
        """Returns finished since `seen` (episodes per worker, updated in place), oldest first."""
        out: list[float] = []
        counts = self.episodes.clone()
        for worker in range(self.num_workers):
            first = max(int(seen[worker]), int(counts[worker]) - RETURN_RING)
            out.extend(float(self.returns[worker, i % RETURN_RING]) for i in range(first, int(counts[worker])))
        seen.copy_(counts)
        return out

    def add_eval(self, env_steps: int, mean: float, std: float, episodes: int) -> None:
        count = int(self.num_evals[0])
        self.evals[count % EVAL_RING] = torch.tensor([env_steps, mean, std, episodes], dtype=torch.float64)
        self.num_evals[0] = count + 1

    def new_evals(self, seen: int) -> tuple[list[tuple[int, float, float, int]], int]:
        """(rows since `seen`, new seen count)."""
        count = int(self.num_evals[0])
        rows = [self.evals[i % EVAL_RING].tolist() for i in range(max(seen, count - EVAL_RING), count)]
        return [(int(s), m, sd, int(n)) for s, m, sd, n in rows], count

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"steps": self.steps.clone(), "updates": self.updates.clone()}

    def load_state_dict(self, saved: dict[str, torch.Tensor]) -> None:
        """Restores progress; a resumed run may have a different number of workers."""
        self.steps.zero_()
        self.updates.zero_()
        self.steps[0] = int(saved["steps"].sum())
        self.updates[0] = int(saved["updates"].sum())
