"""Evaluate and record a trained Ape-X or DQN run: `python -m apex.evaluate RUN_DIR --episodes 10 --video out.mp4`.

The Q-network itself is the greedy policy, as in the run's evaluator.
"""
from __future__ import annotations

import sys

from apex.config import make_config
from apex.network import make_network
from apex.train import run_meta
from common import evaluate

FAMILY = evaluate.Family(name="apex", make_config=make_config, make_net=make_network, meta=run_meta)


def cli(argv: list[str] | None = None) -> int:
    return evaluate.cli(FAMILY, argv)


if __name__ == "__main__":
    sys.exit(cli())
