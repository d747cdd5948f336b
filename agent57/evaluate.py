"""Evaluate and record a trained Agent57 run: `python -m agent57.evaluate RUN_DIR --episodes 10`.

The policy is the run evaluator's: greedy on Q_e + beta_j Q_i, with j from a bandit of its own
(window 3,600, epsilon 0.01), or j = 0 for a run trained with --eval-policy exploit.
"""
from __future__ import annotations

import sys

from agent57.config import make_config
from agent57.network import make_model
from agent57.train import evaluation_policy, run_meta
from common import evaluate

FAMILY = evaluate.Family(name="agent57", make_config=make_config, make_net=make_model, meta=run_meta,
                         policy_for=evaluation_policy)


def cli(argv: list[str] | None = None) -> int:
    return evaluate.cli(FAMILY, argv)


if __name__ == "__main__":
    sys.exit(cli())
