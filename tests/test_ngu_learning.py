"""NGU reaches the far reward of a hard-exploration chain; R2D2, on the same box for the same time,
settles for the near one.

`common.chain:Chain-v0` (common/chain.py): 16 states, a reward of 1 one step left of the start that
ends the episode, a reward of 10 at the far end behind 14 right moves in a row, where "right" is a
different action in each state and any wrong move falls back to the start. Both agents run with their
small-task defaults in serial mode (one process each), at the same time: R2D2 as a command in the
background, NGU here, until NGU's greedy evaluations reach 10; then R2D2 is stopped, so it had at least
NGU's wall-clock budget. The evaluator plays the exploiting policy j = 0 (beta 0), so a pass means the
extrinsic Q-values of j = 0 learned the far reward from what the exploring policies found.

Measured (seed 0; serial mode is deterministic, the wall-clock times are not): NGU's greedy evaluation
reached 10 at 22.5k steps (34 s), while R2D2 evaluated 1.0 throughout (its episodes end at the
distractor after a step or two). Broken by hand: NGU with --intrinsic-beta 0 (no intrinsic reward in
any policy's reward) evaluated 1.0 in all 121 evaluations of 250 s (26.7k steps), as R2D2 does.
Agent57 reaches the far reward too, but its serial run takes four times NGU's steps, too long for the
suite (the commit that took it out has the timings): `python -m benchmarks.compare --preset exploration`
measures it on the chain, and Agent57's learning test is its bandit's on CartPole
(tests/test_agent57_learning.py).
"""
import csv
import os
import signal

from common.chain import ENV_ID, LARGE, SMALL
from ngu.config import make_config
from ngu.train import main
from tests.helpers import start_training


def evaluations(run_dir, log) -> list[float]:
    assert (run_dir / "eval.csv").is_file(), log.read_text()
    return [float(row["eval_return_mean"]) for row in csv.DictReader(open(run_dir / "eval.csv"))]


def test_ngu_reaches_the_far_reward_where_r2d2_settles_for_the_near_one(tmp_path):
    r2d2 = start_training("r2d2.train", "--env-id", ENV_ID, "--serial", "--seed", "0", "--num-workers", "1",
                          "--max-seconds", "900", "--run-dir", str(tmp_path / "r2d2"), log=tmp_path / "r2d2.log")
    try:
        ngu = main(make_config({"env_id": ENV_ID, "serial": True, "seed": 0, "num_workers": 1, "stop_return": LARGE,
                                "max_seconds": 300.0, "run_dir": str(tmp_path / "ngu")}))
    finally:
        if r2d2.poll() is None:
            os.killpg(r2d2.pid, signal.SIGTERM)
            r2d2.wait(timeout=60)
    assert ngu.best_eval >= LARGE, f"NGU evaluations {ngu.eval_means}"
    r2d2_evaluations = evaluations(tmp_path / "r2d2", tmp_path / "r2d2.log")
    assert len(r2d2_evaluations) >= 5 and max(r2d2_evaluations) <= SMALL, f"R2D2 evaluations {r2d2_evaluations}"
