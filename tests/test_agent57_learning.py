"""Agent57's bandit moves toward the exploiting arms on a dense task.

On CartPole-v1 the extrinsic return is all there is to gain, so the arms with a small beta_j (policies
that mostly exploit) should earn more and be chosen more. 15 of the 32 arms have beta_j below beta / 2
(j < 15), so a bandit that chose uniformly (or one whose rewards were all alike) would give them 15/32
= 0.469 of the episodes, about +-0.03 over the 300-odd episodes of the run's second half. With
epsilon 0.5 the most a bandit can give them is 0.5 + 0.5 x 0.469 = 0.734.

The policy is checked on the final checkpoint (10 games with the evaluator's policy and its own seeded
bandit), not on the evaluations during the run, whose number and timing depend on the box's speed. A
serial run is deterministic on one CPU but not across CPUs (their floating point differs), so the budget
leaves room above the bar rather than fitting one CPU's run. A run of 16,000 steps with
--bandit-epsilon 1 (every arm uniform: a bandit that learns nothing) gave them 0.450 of its second
half's 358 episodes.
"""
import csv

import numpy as np

from agent57.config import make_config
from agent57.evaluate import FAMILY
from agent57.train import main
from common.evaluate import EvalConfig, evaluate_run
from ngu.family import betas

THRESHOLD = 0.6


def test_the_bandit_moves_toward_the_low_beta_arms_on_cartpole(tmp_path):
    cfg = make_config({"env_id": "CartPole-v1", "serial": True, "seed": 0, "total_steps": 24_000,
                       "eval_interval_seconds": 0.0, "run_dir": str(tmp_path)})
    main(cfg)
    arms = np.array([int(row["arm"]) for row in csv.DictReader(open(tmp_path / "arms.csv"))])
    low = betas(cfg.num_policies, cfg.intrinsic_beta) < cfg.intrinsic_beta / 2
    assert low.mean() == 15 / 32
    later = arms[len(arms) // 2:]
    assert len(later) >= 100, f"{len(arms)} episodes"
    share = float(low[later].mean())
    assert share >= THRESHOLD, f"low-beta share {share:.3f} in the second half (uniform {low.mean():.3f})"
    final = evaluate_run(FAMILY, EvalConfig(str(tmp_path), episodes=10)).returns
    assert np.mean(final) >= 100, f"the final policy's returns {final}"
