"""Evaluate and record a trained NGU run: `python -m ngu.evaluate RUN_DIR --episodes 10 --video out.mp4`.

The policy is the run evaluator's: j = 0 (beta 0), greedy, fed its previous action, extrinsic and
intrinsic rewards.
"""
from __future__ import annotations

import sys

from common import evaluate
from ngu.config import make_config
from ngu.network import make_model
from ngu.train import evaluation_policy, run_meta

FAMILY = evaluate.Family(name="ngu", make_config=make_config, make_net=make_model, meta=run_meta,
                         policy_for=evaluation_policy)


def cli(argv: list[str] | None = None) -> int:
    return evaluate.cli(FAMILY, argv)


if __name__ == "__main__":
    sys.exit(cli())
