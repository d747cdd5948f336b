"""Evaluate and record a trained R2D2 run: `python -m r2d2.evaluate RUN_DIR --episodes 10 --video out.mp4`.

The policy is the run evaluator's: greedy on the recurrent Q-network, fed the previous action and reward.
"""
from __future__ import annotations

import sys

from common import evaluate
from r2d2.config import make_config
from r2d2.network import make_network
from r2d2.train import evaluation_policy, run_meta

FAMILY = evaluate.Family(name="r2d2", make_config=make_config, make_net=make_network, meta=run_meta,
                         policy_for=evaluation_policy)


def cli(argv: list[str] | None = None) -> int:
    return evaluate.cli(FAMILY, argv)


if __name__ == "__main__":
    sys.exit(cli())
