"""What every training entry point does around its own parts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.checkpoint import load_checkpoint
from common.counters import RunCounters
from common.envs import make_env
from common.errors import UsageError
from common.run import default_run_dir


def restore(cfg: Any, meta: dict, learner: Any, counters: RunCounters) -> float:
    """Loads --resume into the learner and counters; returns the run's wall seconds so far."""
    path, payload = load_checkpoint(cfg.resume, meta)
    try:
        learner.load_state_dict(payload)
        counters.load_state_dict(payload["counters"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise UsageError(f"checkpoint {path} does not fit this run ({err})") from None
    print(f"resumed from {path} at {counters.total_steps():,} steps and {learner.updates:,} updates "
          f"(the replay refills before learning goes on)", flush=True)
    return float(payload.get("wall_seconds", 0.0))


def prepare_run(cfg: Any) -> tuple[tuple[int, ...], int, Path]:
    """The env's observation shape and action count and the run directory; raises UsageError for a
    bad env id."""
    torch.set_num_threads(1)
    probe = make_env(cfg.env_id, cfg.seed)
    obs_shape, num_actions = tuple(probe.observation_space.shape), int(probe.action_space.n)
    probe.close()
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg.algo, cfg.env_id, cfg.seed)
    return obs_shape, num_actions, run_dir


def checkpoint_payload(meta: dict, learner: Any, counters: RunCounters, wall_seconds: float) -> dict[str, Any]:
    """Everything a resume needs except the replay contents (which can be gigabytes; a resumed run refills)."""
    return {"meta": meta, **learner.state_dict(), "counters": counters.state_dict(), "wall_seconds": wall_seconds}
