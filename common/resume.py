"""The config of a resumed run: the saved config.json, with only what the user overrides changed.

Its own module so that `common/config.py`, which builds every family's config through it, imports
nothing of the owner loop.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


def config_with_resume(cls: type[C], overrides: dict[str, Any], family_defaults: dict[str, Any]) -> C:
    """The config for command-line `overrides` on top of `family_defaults` (fields of `cls`).

    When resuming, the resumed run's config.json is the base instead, so only what the user overrides
    changes; the run directory defaults to the resumed one. Raises ValueError for an unusable resume.
    """
    if overrides.get("resume"):
        saved = Path(overrides["resume"])
        config_json = (saved if saved.is_dir() else saved.parent) / "config.json"
        if not config_json.is_file():
            raise ValueError(f"cannot resume from {saved}: no config.json beside it")
        try:
            base = cls(**json.loads(config_json.read_text()))
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot resume from {saved}: unreadable config.json ({err})") from None
        if "run_dir" not in overrides:
            overrides = {**overrides, "run_dir": str(config_json.parent)}
        return dataclasses.replace(base, **overrides)
    return dataclasses.replace(cls(**family_defaults), **overrides)
