"""Evaluate and record a trained A3C-family run: `python -m a3c.evaluate RUN_DIR --episodes 10 --video out.mp4`.

The model itself is the greedy policy (the arg max of its logits or Q-values), as in the run's evaluator.
"""
from __future__ import annotations

import sys

from a3c.config import make_config
from a3c.network import make_model
from a3c.train import run_meta
from common import evaluate

FAMILY = evaluate.Family(name="a3c", make_config=make_config, make_net=make_model, meta=run_meta)


def cli(argv: list[str] | None = None) -> int:
    return evaluate.cli(FAMILY, argv)


if __name__ == "__main__":
    sys.exit(cli())
