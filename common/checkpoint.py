"""Checkpoints: written atomically, the last two kept, read with torch.load(weights_only=True).

A checkpoint is a dict of tensors and plain values with a "meta" entry naming the algorithm, env
and network it belongs to; loading one into a run of another env or network is refused with a
one-line UsageError instead of a shape error deep inside torch.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.errors import UsageError

KEEP = 2
_NAME = re.compile(r"ckpt-(\d+)\.pt$")


def network_signature(model: nn.Module) -> list[list[Any]]:
    """[name, shape] of every tensor in the state dict: two models load into each other iff equal."""
    return [[name, list(t.shape)] for name, t in model.state_dict().items()]


def network_difference(saved: Any, expected: list[list[Any]]) -> str:
    """How a saved `network_signature` differs from this run's: missing, unexpected and reshaped tensors."""
    if not isinstance(saved, list):
        return "the checkpoint has no network signature: an older layout"
    saved_shapes = {str(name): shape for name, shape in saved}
    shapes = {str(name): shape for name, shape in expected}

    def listed(what: str, names: list[str]) -> list[str]:
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return [f"{what} {', '.join(names[:3])}{more}"] if names else []

    parts = (listed("missing", [n for n in shapes if n not in saved_shapes])
             + listed("unexpected", [n for n in saved_shapes if n not in shapes])
             + listed("other shape", [f"{n} {saved_shapes[n]} (this run {shapes[n]})" for n in shapes
                                      if n in saved_shapes and saved_shapes[n] != shapes[n]]))
    return "; ".join(parts) or "the same tensors in another order"


def save_checkpoint(run_dir: Path, env_steps: int, payload: dict[str, Any]) -> Path:
    """Writes run_dir/ckpt-<env_steps>.pt atomically and deletes all but the newest KEEP."""
    path = run_dir / f"ckpt-{env_steps:012d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    for old in sorted(run_dir.glob("ckpt-*.pt"), key=_steps)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def replay_file(checkpoint: Path) -> Path:
    """Where the replay saved with `run_dir/ckpt-<steps>.pt` goes: `run_dir/replay-<steps>.bin`."""
    return checkpoint.with_name(checkpoint.name.replace("ckpt-", "replay-", 1)).with_suffix(".bin")


def prune_replays(run_dir: Path, keep: Path | None = None) -> None:
    """Deletes every saved replay in `run_dir` but `keep`, and any left half-written by a killed save."""
    for path in [*run_dir.glob("replay-*.bin"), *run_dir.glob("replay-*.bin.tmp")]:
        if path != keep:
            path.unlink(missing_ok=True)


def _steps(path: Path) -> int:
    match = _NAME.search(path.name)
    return int(match.group(1)) if match else -1


def find_checkpoint(where: str | Path) -> Path:
    """The checkpoint file itself, or the newest one in a run directory."""
    where = Path(where)
    if where.is_file():
        return where
    found = sorted(where.glob("ckpt-*.pt"), key=_steps) if where.is_dir() else []
    if not found:
        raise UsageError(f"no checkpoint found at {where}")
    return found[-1]


def load_checkpoint(where: str | Path, expected_meta: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Loads and checks a checkpoint against this run's meta (algo, env, network)."""
    path = find_checkpoint(where)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a truncated or foreign file
        raise UsageError(f"cannot read checkpoint {path}: corrupt or not an asyncrl checkpoint "
                         f"({type(err).__name__})") from None
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} is not an asyncrl checkpoint (no meta entry)")
    check_meta(path, meta, expected_meta)
    return path, payload


def check_meta(path: Path, meta: dict[str, Any], expected_meta: dict[str, Any]) -> None:
    """Raises UsageError naming the first entry of `expected_meta` that the checkpoint's meta differs in."""
    for key, value in expected_meta.items():
        if meta.get(key) == value:
            continue
        if key == "network":
            raise UsageError(f"checkpoint {path} holds a network of other shapes than this run's "
                             f"({network_difference(meta.get(key), value)})")
        raise UsageError(f"checkpoint {path} was made for {key} {meta.get(key)!r}, not {value!r}")
